"""Compiled indicators against TA-Lib and against the plain-Python references."""
import math

import numpy as np
import pytest
import reference as ref
import talib
from hypothesis import given
from hypothesis import strategies as st

from hftcore_ext.indicators import (
    ADX,
    ATR,
    BBANDS,
    DONCHIAN,
    EMA,
    MACD,
    MINUS_DI,
    OBV,
    PLUS_DI,
    RSI,
    SMA,
    STDDEV,
    STOCH,
    SUPERTREND,
    VWAP,
    WMA,
    Bundle,
    Slope,
)


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


# ---------------------------------------------------------------- declared-indicator classes
# kernel vs the plain-Python references (TA-Lib parity: tests/test_indicators_talib.py)

bars = st.lists(st.tuples(st.floats(1.0, 1e4), st.floats(0, 50), st.floats(0, 1),
                          st.integers(0, 10_000)), max_size=300)


def hlcv(rows):
    close = np.array([r[0] for r in rows], float)
    high = close + np.array([r[1] for r in rows], float)
    low = close - np.array([r[1] * r[2] for r in rows], float)
    return high, low, close, np.array([r[3] for r in rows], float)


def scale_of(xs):
    return max([abs(x) for x in xs if not math.isnan(x)], default=1.0)


@given(prices, periods)
def test_sma_wma_agree_with_reference(xs, n):
    a = np.array(xs, float)
    assert_close(SMA(n).batch(a), ref.sma(xs, n), rtol=1e-9, atol=1e-9 * scale_of(xs))
    assert_close(WMA(n).batch(a), ref.wma(xs, n), rtol=1e-9, atol=1e-9 * scale_of(xs))


@given(prices, periods, st.floats(0.5, 3.0))
def test_stddev_and_bbands_agree_with_reference(xs, n, k):
    a = np.array(xs, float)
    tol = 1e-7 * scale_of(xs)            # a two-pass reference vs shifted running sums
    assert_close(STDDEV(n, k).batch(a), ref.stddev(xs, n, k), rtol=0, atol=tol)
    for got, want in zip(BBANDS(n, k, 1.0).batch(a), ref.bbands(xs, n, k, 1.0)):
        assert_close(got, want, rtol=0, atol=tol)


@given(prices, st.integers(2, 15), st.integers(0, 20), st.integers(1, 12))
def test_macd_agrees_with_reference(xs, fast, extra, signal):
    got = MACD(fast, fast + extra, signal).batch(np.array(xs, float))
    for g, w in zip(got, ref.macd(xs, fast, fast + extra, signal)):
        assert_close(g, w, rtol=0, atol=1e-9 * scale_of(xs))


@given(bars, st.integers(1, 20), st.integers(1, 5), st.integers(1, 5))
def test_stoch_agrees_with_reference(rows, fk, sk, sd):
    high, low, close, _ = hlcv(rows)
    for g, w in zip(STOCH(fk, sk, sd).batch(high, low, close),
                    ref.stoch(high, low, close, fk, sk, sd)):
        assert_close(g, w, rtol=0, atol=1e-9)


@given(bars, st.integers(2, 30))
def test_adx_and_dis_agree_with_reference(rows, n):
    high, low, close, _ = hlcv(rows)
    want = ref.adx(high, low, close, n)
    assert_close(ADX(n).batch(high, low, close), want[0], rtol=0, atol=1e-9)
    assert_close(PLUS_DI(n).batch(high, low, close), want[1], rtol=0, atol=1e-9)
    assert_close(MINUS_DI(n).batch(high, low, close), want[2], rtol=0, atol=1e-9)


@given(bars)
def test_obv_agrees_with_reference(rows):
    _, _, close, vol = hlcv(rows)
    assert_close(OBV().batch(close, vol), ref.obv(close, vol), rtol=0)


@given(bars, st.integers(1, 20), st.floats(0.5, 4.0))
def test_supertrend_agrees_with_reference(rows, n, mult):
    high, low, close, _ = hlcv(rows)
    for g, w in zip(SUPERTREND(n, mult).batch(high, low, close),
                    ref.supertrend(high, low, close, n, mult)):
        assert_close(g, w, rtol=1e-9, atol=1e-9)


@given(bars, st.integers(1, 30))
def test_donchian_agrees_with_reference(rows, n):
    high, low, _, _ = hlcv(rows)
    for g, w in zip(DONCHIAN(n).batch(high, low), ref.donchian(high, low, n)):
        assert_close(g, w, rtol=0)


def test_nan_bars_are_skipped_like_the_references():
    high, low, close = random_walk(400, seed=11)
    close[[50, 51, 200]] = np.nan
    high[120] = np.nan
    vol = np.arange(400, dtype=float)
    assert_close(SMA(10).batch(close), ref.sma(close, 10), rtol=1e-9)
    for g, w in zip(STOCH(14, 3, 3).batch(high, low, close), ref.stoch(high, low, close, 14, 3, 3)):
        assert_close(g, w, rtol=0, atol=1e-9)
    assert_close(ADX(14).batch(high, low, close), ref.adx(high, low, close, 14)[0],
                 rtol=0, atol=1e-9)
    assert_close(OBV().batch(close, vol), ref.obv(close, vol), rtol=0)


def _feed(ind, cols, lo, hi):
    return [ind.update(*[c[i] for c in cols]) for i in range(lo, hi)]


@pytest.mark.parametrize("make,inputs", [
    (lambda: SMA(7), "c"), (lambda: WMA(7), "c"), (lambda: STDDEV(7, 2.0), "c"),
    (lambda: BBANDS(7, 2.0, 1.0), "c"), (lambda: MACD(3, 8, 4), "c"),
    (lambda: STOCH(5, 3, 2), "hlc"), (lambda: ADX(5), "hlc"), (lambda: PLUS_DI(5), "hlc"),
    (lambda: MINUS_DI(5), "hlc"), (lambda: OBV(), "cv"), (lambda: SUPERTREND(5, 2.0), "hlc"),
    (lambda: DONCHIAN(6), "hl")])
def test_update_then_batch_continues_the_same_state(make, inputs):
    """update() for a while, then batch() on the rest == batch() of everything;
    reset() starts over."""
    high, low, close = random_walk(2_000, seed=12)
    vol = np.random.default_rng(3).integers(1, 100, 2_000).astype(float)
    cols = [{"h": high, "l": low, "c": close, "v": vol}[k] for k in inputs]
    full = make().batch(*cols)
    full = full if isinstance(full, tuple) else (full,)
    a = make()
    stepped = _feed(a, cols, 0, 700)
    rest = a.batch(*[c[700:] for c in cols])
    rest = rest if isinstance(rest, tuple) else (rest,)
    for k, f in enumerate(full):
        np.testing.assert_array_equal(rest[k], f[700:])
        col = [s[k] if isinstance(s, tuple) else s for s in stepped]
        np.testing.assert_array_equal(np.array(col), f[:700])
    assert a.initialized and a.count == 2_000
    a.reset()
    assert a.count == 0 and not a.initialized
    again = a.batch(*cols)
    again = again if isinstance(again, tuple) else (again,)
    for k, f in enumerate(full):
        np.testing.assert_array_equal(again[k], f)


def test_multi_output_update_returns_talib_order():
    b = BBANDS(3, 2.0, 2.0)
    for x in (1.0, 2.0):
        assert all(math.isnan(v) for v in b.update(x))
    upper, middle, lower = b.update(3.0)
    sd = math.sqrt(2 / 3)
    assert (upper, middle, lower) == pytest.approx((2 + 2 * sd, 2.0, 2 - 2 * sd))
    assert b.value == (upper, middle, lower)
    d = DONCHIAN(2)
    d.update(10.0, 8.0)
    assert d.update(9.0, 7.0) == (10.0, 8.5, 7.0)


@pytest.mark.parametrize("make", [
    lambda: SMA(0), lambda: WMA(2.5), lambda: STDDEV(5, float("nan")), lambda: BBANDS(5, "2"),
    lambda: MACD(26, 12, 9), lambda: MACD(1, 26, 9), lambda: MACD(12, 26, 0),
    lambda: STOCH(0, 3, 3),
    lambda: ADX(1), lambda: PLUS_DI(True), lambda: SUPERTREND(10, 0.0),
    lambda: SUPERTREND(10, -1.0), lambda: DONCHIAN(0)])
def test_new_constructors_reject_bad_parameters(make):
    with pytest.raises(ValueError):
        make()


def test_batch_rejects_arrays_of_different_lengths():
    with pytest.raises(ValueError):
        STOCH().batch(np.ones(5), np.ones(5), np.ones(4))
    with pytest.raises(ValueError):
        OBV().batch(np.ones(5), np.ones(6))


# ---------------------------------------------------------------- registry and specs

def test_registry_entries_name_their_class_kernel_inputs_and_outputs():
    from hftcore.indicators import REGISTRY
    kinds = {d.kind for d in REGISTRY.values()}
    assert len(kinds) == len(REGISTRY)                     # one kernel code per entry
    for name, d in REGISTRY.items():
        ind = d.cls(*[p[2] for p in d.params])              # the defaults construct
        assert d.name == name and set(d.inputs) <= {"open", "high", "low", "close", "volume"}
        cols = {"high": np.array([11.0, 12.0]), "low": np.array([9.0, 10.0]),
                "close": np.array([10.0, 11.0]), "volume": np.array([5.0, 6.0])}
        out = ind.batch(*[cols[k] for k in d.inputs])       # inputs in batch() order
        assert len(out if isinstance(out, tuple) else (out,)) == len(d.outputs)


def test_spec_keys_are_stable_and_hashable():
    from hftcore.indicators import bbands, ema, macd, obv, sma, stoch, supertrend
    assert ema(10).key == "ema_10" and sma(50).key == "sma_50"
    assert bbands(20, 2).key == "bbands_20_2.0_2.0" == bbands(20, 2.0, 2.0).key
    assert bbands(20, 2, 1.5).key == "bbands_20_2.0_1.5"
    assert macd().key == "macd_12_26_9" and obv().key == "obv"
    assert supertrend(7, 2).key == "supertrend_7_2.0" and stoch().key == "stoch_14_3_3"
    assert bbands(20, 2).output_names == ("bbands_20_2.0_2.0.upper", "bbands_20_2.0_2.0.middle",
                                          "bbands_20_2.0_2.0.lower")
    assert sma(50).output_names == ("sma_50",)
    assert len({ema(10), ema(10), sma(10)}) == 2
    assert ema(10, as_="fast").key == "fast" and ema(10, as_="fast").output_names == ("fast",)


def test_spec_make_gives_the_compiled_indicator():
    from hftcore.indicators import bbands
    _, _, close = random_walk(500, seed=13)
    got = bbands(10, 1.5).make().batch(close)
    want = BBANDS(10, 1.5, 1.5).batch(close)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_parse_reads_calls_and_keys():
    from hftcore.indicators import bbands, macd, parse, plus_di, sma
    assert parse("sma(50)") == sma(50) and parse("sma_50") == sma(50)
    assert parse("bbands(20, 2)") == bbands(20, 2) == parse("bbands_20_2.0_2.0")
    assert parse("macd") == macd() and parse("plus_di_7") == plus_di(7)


@pytest.mark.parametrize("call", [
    lambda m: m.spec("nope", 3), lambda m: m.sma(2.5), lambda m: m.sma(0), lambda m: m.ema(True),
    lambda m: m.macd(26, 12), lambda m: m.spec("sma", 1, 2), lambda m: m.spec("sma", length=3),
    lambda m: m.bbands(20, float("inf")), lambda m: m.ema(5, as_="not a name"),
    lambda m: m.parse("sma(x)"), lambda m: m.parse("zigzag_3")])
def test_bad_specs_raise_value_error(call):
    import hftcore.indicators as m
    with pytest.raises(ValueError):
        call(m)


junk = st.one_of(st.none(), st.booleans(), st.integers(-10**7, 10**7), st.text(max_size=3),
                 st.floats(allow_nan=True, allow_infinity=True),
                 st.lists(st.integers(), max_size=2))


ARITY = {SMA: 1, WMA: 1, STDDEV: 2, BBANDS: 3, MACD: 3, STOCH: 3, ADX: 1, PLUS_DI: 1,
         MINUS_DI: 1, SUPERTREND: 2, DONCHIAN: 1}


@given(st.sampled_from(list(ARITY)), st.lists(junk, max_size=3))
def test_constructors_take_junk_with_value_error_only(cls, args):
    """Any values (up to the parameter count) build a working indicator or raise ValueError."""
    args = args[:ARITY[cls]]
    try:
        ind = cls(*args)
    except ValueError:
        return
    out = ind.update(*([1.0] * (3 if cls in (STOCH, ADX, PLUS_DI, MINUS_DI, SUPERTREND)
                              else 2 if cls is DONCHIAN else 1)))
    assert out is not None


def test_batch_rejects_wrong_dtypes_with_value_error():
    with pytest.raises(ValueError):
        SMA(3).batch(np.arange(10))                       # int64, not float64
    with pytest.raises(ValueError):
        DONCHIAN(3).batch(np.ones((2, 2)), np.ones((2, 2)))
