"""Compiled indicators against TA-Lib and against the plain-Python references."""
import math

import numpy as np
import pytest
import talib
from hypothesis import given, strategies as st

import reference as ref
from hftcore_ext.indicators import ATR, EMA, RSI, VWAP, Bundle, Slope


def random_walk(n, seed=1):
    rng = np.random.default_rng(seed)
    close = 1500 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    spread = np.abs(rng.normal(0, 0.002, n)) * close
    high = close + spread * rng.random(n)
    low = close - spread * rng.random(n)
    return high, low, close


def assert_close(got, want, rtol=1e-9, atol=0.0):
    got, want = np.asarray(got, float), np.asarray(want, float)
    assert np.array_equal(np.isnan(got), np.isnan(want)), "warm-up (NaN) positions differ"
    m = ~np.isnan(want)
    np.testing.assert_allclose(got[m], want[m], rtol=rtol, atol=atol)


# ---------------------------------------------------------------- TA-Lib

@pytest.mark.parametrize("n", [1, 2, 10, 20, 50])
def test_ema_matches_talib_on_long_random_walk(n):
    _, _, close = random_walk(200_000)
    assert_close(EMA(n).batch(close), talib.EMA(close, n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi_matches_talib_wilder(n):
    _, _, close = random_walk(200_000, seed=2)
    assert_close(RSI(n).batch(close), talib.RSI(close, n))


@pytest.mark.parametrize("n", [1, 14, 30])
def test_atr_matches_talib_wilder(n):
    high, low, close = random_walk(200_000, seed=3)
    assert_close(ATR(n).batch(high, low, close), talib.ATR(high, low, close, n))


@pytest.mark.parametrize("n", [2, 20, 64])
def test_slope_matches_talib_linearreg_slope(n):
    _, _, close = random_walk(50_000, seed=4)
    # relative to the price scale: the slope itself crosses zero
    assert_close(Slope(n).batch(close), talib.LINEARREG_SLOPE(close, n), rtol=0, atol=1e-9 * 1500)


def test_equal_highs_lows_and_flat_prices_match_talib():
    close = np.full(500, 100.0)
    close[250:] = 101.0
    high = low = close.copy()
    assert_close(ATR(14).batch(high, low, close), talib.ATR(high, low, close, 14))
    assert_close(RSI(14).batch(close), talib.RSI(close, 14))     # flat: 0 by TA-Lib's rule
    assert_close(EMA(10).batch(close), talib.EMA(close, 10))


# ---------------------------------------------------------------- references (hypothesis)

prices = st.lists(st.one_of(st.floats(1.0, 1e5), st.just(float("nan"))), max_size=300)
periods = st.integers(1, 40)


@given(prices, periods)
def test_ema_agrees_with_reference(xs, n):
    # the kernel computes x*k + ema*(1-k); the reference (x - ema)*k + ema loses digits to
    # cancellation after a large jump, so compare relative to the input scale
    scale = max([abs(x) for x in xs if x == x], default=1.0)
    assert_close(EMA(n).batch(np.array(xs, float)), ref.ema(xs, n), rtol=1e-12, atol=1e-12 * scale)


@given(prices, periods)
def test_rsi_agrees_with_reference(xs, n):
    assert_close(RSI(n).batch(np.array(xs, float)), ref.rsi(xs, n), rtol=1e-9, atol=1e-9)


@given(st.lists(st.tuples(st.floats(1.0, 1e4), st.floats(0, 50), st.floats(0, 1)), max_size=300),
       periods)
def test_atr_agrees_with_reference(bars, n):
    close = np.array([b[0] for b in bars], float)
    high = close + np.array([b[1] for b in bars], float)
    low = close - np.array([b[1] * b[2] for b in bars], float)
    assert_close(ATR(n).batch(high, low, close), ref.atr(high, low, close, n), rtol=1e-9)


@given(st.lists(st.tuples(st.floats(1.0, 1e4), st.one_of(st.floats(0, 1e6), st.just(0.0),
                                                           st.just(float("nan")))), max_size=300))
def test_vwap_agrees_with_reference_and_ignores_zero_volume(trades):
    p = np.array([t[0] for t in trades], float)
    v = np.array([t[1] for t in trades], float)
    assert_close(VWAP().batch(p, v), ref.vwap(p, v), rtol=1e-12)


@given(prices, st.integers(2, 64))
def test_slope_agrees_with_reference(xs, n):
    got = Slope(n).batch(np.array(xs, float))
    assert_close(got, ref.slope(xs, n), rtol=1e-6, atol=1e-6)


@given(prices, periods)
def test_update_and_batch_share_state(xs, n):
    """Half by update(), half by batch() == all by batch()."""
    a, b = EMA(n), EMA(n)
    half = len(xs) // 2
    for x in xs[:half]:
        a.update(x)
    rest = a.batch(np.array(xs[half:], float))
    full = b.batch(np.array(xs, float))
    assert_close(rest, full[half:], rtol=0)


# ---------------------------------------------------------------- behaviour

def test_values_are_nan_until_warmed_up():
    e = EMA(3)
    assert math.isnan(e.update(1.0)) and math.isnan(e.update(2.0))
    assert e.update(3.0) == 2.0 and e.initialized and e.count == 3


def test_nan_input_is_ignored_and_leaves_state_unchanged():
    r = RSI(2)
    for x in (1.0, 2.0, 3.0):
        r.update(x)
    before = r.value
    assert r.update(float("nan")) == before and r.count == 2


def test_reset_starts_over():
    v = VWAP()
    v.update(100.0, 10)
    v.reset()
    assert math.isnan(v.value) and v.volume == 0


@pytest.mark.parametrize("cls,bad", [(EMA, 0), (EMA, -1), (RSI, 2.5), (ATR, "14"), (Slope, 1),
                                     (Slope, 65), (EMA, True)])
def test_constructors_reject_bad_periods(cls, bad):
    with pytest.raises(ValueError):
        cls(bad)


def test_bundle_batch_equals_individual_indicators():
    high, low, close = random_walk(5_000, seed=9)
    vol = np.ones_like(close) * 10
    out = Bundle().batch(high, low, close, vol)
    assert_close(out[:, 0], EMA(20).batch(close), rtol=0)
    assert_close(out[:, 1], EMA(50).batch(close), rtol=0)
    assert_close(out[:, 2], RSI(14).batch(close), rtol=0)
    assert_close(out[:, 3], ATR(14).batch(high, low, close), rtol=0)
    assert_close(out[:, 4], VWAP().batch((high + low + close) / 3, vol), rtol=0)
    assert_close(out[:, 5], Slope(20).batch(close), rtol=0)
    b = Bundle()
    for i in range(len(close)):
        b.update(high[i], low[i], close[i], vol[i])
    assert_close(np.array(b.values), out[-1], rtol=0)
