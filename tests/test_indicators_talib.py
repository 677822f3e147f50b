"""TA-Lib parity of the declared-indicator classes: random walks and the bundled candles.

Every comparison also pins TA-Lib's warm-up: NaN exactly where TA-Lib outputs NaN.
Tolerances are relative to the output's scale (1e-9 of the price, or of 100 for the
oscillators), since MACD, its histogram and the DIs cross zero.
"""
import csv
from pathlib import Path

import numpy as np
import pytest
import talib

from hftcore_ext.indicators import (
    ADX,
    BBANDS,
    DONCHIAN,
    MACD,
    MINUS_DI,
    OBV,
    PLUS_DI,
    SMA,
    STDDEV,
    STOCH,
    SUPERTREND,
    WMA,
)

CANDLES = sorted((Path(__file__).resolve().parent.parent / "examples/data/candles").glob("*.csv"))


def random_walk(n, seed):
    rng = np.random.default_rng(seed)
    close = 1500 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    spread = np.abs(rng.normal(0, 0.002, n)) * close
    high = close + spread * rng.random(n)
    low = close - spread * rng.random(n)
    volume = rng.integers(1, 10_000, n).astype(float)
    return high, low, close, volume


def real_candles(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("high", "low", "close", "volume"))


def series():
    out = [pytest.param(random_walk(200_000, seed), id=f"walk{seed}") for seed in (1, 2)]
    out += [pytest.param(real_candles(p), id=p.stem) for p in CANDLES]
    return out


def same(got, want, scale):
    got, want = np.asarray(got, float), np.asarray(want, float)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want)), "warm-up (NaN) positions differ"
    m = ~np.isnan(want)
    assert m.any()
    np.testing.assert_allclose(got[m], want[m], rtol=1e-9, atol=1e-9 * scale)


def test_the_bundled_candles_are_there():
    assert len(CANDLES) >= 2 and all(len(real_candles(p)[2]) > 1000 for p in CANDLES)


@pytest.mark.parametrize("data", series())
@pytest.mark.parametrize("n", [2, 20, 50])
def test_sma_wma(data, n):
    _, _, close, _ = data
    same(SMA(n).batch(close), talib.SMA(close, n), close.max())
    same(WMA(n).batch(close), talib.WMA(close, n), close.max())


@pytest.mark.parametrize("data", series())
@pytest.mark.parametrize("n,k", [(2, 1.0), (20, 1.0), (20, 2.5)])
def test_stddev(data, n, k):
    _, _, close, _ = data
    same(STDDEV(n, k).batch(close), talib.STDDEV(close, n, k), close.max())


@pytest.mark.parametrize("data", series())
@pytest.mark.parametrize("n,up,dn", [(20, 2.0, 2.0), (5, 1.0, 3.0), (2, 2.0, 2.0)])
def test_bbands(data, n, up, dn):
    _, _, close, _ = data
    for got, want in zip(BBANDS(n, up, dn).batch(close), talib.BBANDS(close, n, up, dn)):
        same(got, want, close.max())


@pytest.mark.parametrize("data", series())
@pytest.mark.parametrize("fast,slow,signal", [(12, 26, 9), (5, 35, 5), (3, 3, 1), (2, 10, 20)])
def test_macd(data, fast, slow, signal):
    _, _, close, _ = data
    for got, want in zip(MACD(fast, slow, signal).batch(close),
                         talib.MACD(close, fast, slow, signal)):
        same(got, want, close.max())


@pytest.mark.parametrize("data", series())
@pytest.mark.parametrize("fk,sk,sd", [(14, 3, 3), (5, 3, 3), (1, 1, 1), (21, 7, 2)])
def test_stoch(data, fk, sk, sd):
    high, low, close, _ = data
    for got, want in zip(STOCH(fk, sk, sd).batch(high, low, close),
                         talib.STOCH(high, low, close, fk, sk, 0, sd, 0)):
        same(got, want, 100)


@pytest.mark.parametrize("data", series())
@pytest.mark.parametrize("n", [2, 14, 30])
def test_adx_and_directional_indicators(data, n):
    high, low, close, _ = data
    same(ADX(n).batch(high, low, close), talib.ADX(high, low, close, n), 100)
    same(PLUS_DI(n).batch(high, low, close), talib.PLUS_DI(high, low, close, n), 100)
    same(MINUS_DI(n).batch(high, low, close), talib.MINUS_DI(high, low, close, n), 100)
    a = ADX(n)
    for i in range(300):
        a.update(high[i], low[i], close[i])
    assert a.plus_di == pytest.approx(talib.PLUS_DI(high[:300], low[:300], close[:300], n)[-1])
    assert a.minus_di == pytest.approx(talib.MINUS_DI(high[:300], low[:300], close[:300], n)[-1])


@pytest.mark.parametrize("data", series())
def test_obv(data):
    _, _, close, volume = data
    same(OBV().batch(close, volume), talib.OBV(close, volume), volume.sum())


def test_flat_windows_match_talib():
    """Zero ranges: STOCH's flat window is 0, a constant window's deviation is exactly 0,
    and a zero true range leaves the DIs at 0 - all as TA-Lib has them."""
    close = np.full(400, 100.0)
    close[200:] = 101.0
    high = low = close.copy()
    for got, want in zip(STOCH(14, 3, 3).batch(high, low, close),
                         talib.STOCH(high, low, close, 14, 3, 0, 3, 0)):
        same(got, want, 100)
    same(STDDEV(10).batch(close), talib.STDDEV(close, 10), 100)
    for got, want in zip(BBANDS(10).batch(close), talib.BBANDS(close, 10)):
        same(got, want, 100)
    same(ADX(5).batch(high, low, close), talib.ADX(high, low, close, 5), 100)
    same(PLUS_DI(5).batch(high, low, close), talib.PLUS_DI(high, low, close, 5), 100)
    assert STDDEV(10).batch(close)[-1] == 0.0


def test_fine_tick_variance_is_not_zeroed():
    """A tiny real spread on a large price keeps its digits (TA-Lib's shifted variance),
    where E[x^2] - E[x]^2 would cancel to noise."""
    close = np.array([1000.0, 1000.001, 1000.0, 1000.0001, 1000.0] * 20)
    same(STDDEV(2).batch(close), talib.STDDEV(close, 2), 1e-6)
    assert STDDEV(2).batch(close)[1] == pytest.approx(0.0005, rel=1e-9)


# ---------------------------------------------------------------- not in TA-Lib: references

def test_supertrend_and_donchian_match_references_on_real_candles():
    import reference as ref
    for path in CANDLES:
        high, low, close, _ = real_candles(path)
        st, d = SUPERTREND(10, 3.0).batch(high, low, close)
        rst, rd = ref.supertrend(high, low, close, 10, 3.0)
        same(st, rst, close.max())
        same(d, rd, 1)
        assert set(np.unique(d[~np.isnan(d)])) == {-1.0, 1.0}      # it does flip on real data
        assert np.isnan(st[9]) and not np.isnan(st[10])           # first value at the first ATR
        for got, want in zip(DONCHIAN(20).batch(high, low), ref.donchian(high, low, 20)):
            same(got, want, close.max())
        u, _, lo = DONCHIAN(20).batch(high, low)
        same(u, talib.MAX(high, 20), close.max())                  # and TA-Lib's MAX / MIN
        same(lo, talib.MIN(low, 20), close.max())
