"""Incremental updates from Python, and batch arrays of 1M points."""
import numpy as np
import pytest
import reference as ref

from hftcore_ext.indicators import ATR, EMA, RSI, VWAP, Bundle

N = 1_000_000
rng = np.random.default_rng(0)
CLOSE = 1500 * np.exp(np.cumsum(rng.normal(0, 0.001, N)))
HIGH = CLOSE * (1 + np.abs(rng.normal(0, 0.001, N)))
LOW = CLOSE * (1 - np.abs(rng.normal(0, 0.001, N)))
VOL = rng.integers(1, 1000, N).astype(float)


def warmed(ind, *args):
    for _ in range(100):
        ind(*args)


# ---------------------------------------------------------------- one update from Python

def _nautilus(name):
    ind = pytest.importorskip("nautilus_trader.indicators")
    mat = ind.MovingAverageType.WILDER
    return {"ema": lambda: ind.ExponentialMovingAverage(20),
            "rsi": lambda: ind.RelativeStrengthIndex(14, mat),
            "atr": lambda: ind.AverageTrueRange(14, mat),
            "vwap": lambda: ind.VolumeWeightedAveragePrice()}[name]()


def _talipp(name):
    ind = pytest.importorskip("talipp.indicators")
    return {"ema": lambda: ind.EMA(20), "rsi": lambda: ind.RSI(14)}[name]()


@pytest.mark.benchmark(group="update EMA(20)")
def test_hftcore_ema_update(benchmark):
    e = EMA(20)
    warmed(e.update, 1500.0)
    benchmark(e.update, 1500.5)


@pytest.mark.benchmark(group="update EMA(20)")
def test_nautilus_ema_update_raw(benchmark):
    e = _nautilus("ema")
    warmed(e.update_raw, 1500.0)
    benchmark(e.update_raw, 1500.5)


@pytest.mark.benchmark(group="update EMA(20)")
def test_talipp_ema_add(benchmark):
    e = _talipp("ema")
    for _ in range(100):
        e.add(1500.0)
    benchmark.pedantic(e.add, (1500.5,), rounds=2000, iterations=1)


@pytest.mark.benchmark(group="update EMA(20)")
def test_pure_python_ema_update(benchmark):
    e = ref.EMA(20)
    warmed(e.update, 1500.0)
    benchmark(e.update, 1500.5)


@pytest.mark.benchmark(group="update RSI(14) Wilder")
def test_hftcore_rsi_update(benchmark):
    r = RSI(14)
    warmed(r.update, 1500.0)
    benchmark(r.update, 1500.5)


@pytest.mark.benchmark(group="update RSI(14) Wilder")
def test_nautilus_rsi_update_raw(benchmark):
    r = _nautilus("rsi")
    warmed(r.update_raw, 1500.0)
    benchmark(r.update_raw, 1500.5)


@pytest.mark.benchmark(group="update RSI(14) Wilder")
def test_talipp_rsi_add(benchmark):
    r = _talipp("rsi")
    for _ in range(100):
        r.add(1500.0)
    benchmark.pedantic(r.add, (1500.5,), rounds=2000, iterations=1)


@pytest.mark.benchmark(group="update RSI(14) Wilder")
def test_pure_python_rsi_update(benchmark):
    r = ref.RSI(14)
    warmed(r.update, 1500.0)
    benchmark(r.update, 1500.5)


@pytest.mark.benchmark(group="update ATR(14) Wilder")
def test_hftcore_atr_update(benchmark):
    a = ATR(14)
    warmed(a.update, 1501.0, 1499.0, 1500.0)
    benchmark(a.update, 1502.0, 1499.5, 1500.5)


@pytest.mark.benchmark(group="update ATR(14) Wilder")
def test_nautilus_atr_update_raw(benchmark):
    a = _nautilus("atr")
    warmed(a.update_raw, 1501.0, 1499.0, 1500.0)
    benchmark(a.update_raw, 1502.0, 1499.5, 1500.5)


@pytest.mark.benchmark(group="update ATR(14) Wilder")
def test_pure_python_atr_update(benchmark):
    a = ref.ATR(14)
    warmed(a.update, 1501.0, 1499.0, 1500.0)
    benchmark(a.update, 1502.0, 1499.5, 1500.5)


@pytest.mark.benchmark(group="update VWAP")
def test_hftcore_vwap_update(benchmark):
    v = VWAP()
    benchmark(v.update, 1500.5, 10.0)


@pytest.mark.benchmark(group="update VWAP")
def test_nautilus_vwap_update_raw(benchmark):
    import datetime as dt
    v = _nautilus("vwap")
    ts = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone.utc)
    benchmark(v.update_raw, 1500.5, 10.0, ts)


@pytest.mark.benchmark(group="update VWAP")
def test_pure_python_vwap_update(benchmark):
    v = ref.VWAP()
    benchmark(v.update, 1500.5, 10.0)


@pytest.mark.benchmark(group="update whole bundle (6 indicators), one bar")
def test_hftcore_bundle_update(benchmark):
    b = Bundle()
    for i in range(100):
        b.update(1501.0, 1499.0, 1500.0 + i % 3, 10.0)
    benchmark(b.update, 1502.0, 1499.5, 1500.5, 10.0)


@pytest.mark.benchmark(group="update whole bundle (6 indicators), one bar")
def test_hftcore_six_separate_updates(benchmark):
    from hftcore_ext.indicators import Slope
    f, s, r, a, v, sl = EMA(20), EMA(50), RSI(14), ATR(14), VWAP(), Slope(20)

    def six(h, l, c, vol):
        f.update(c)
        s.update(c)
        r.update(c)
        a.update(h, l, c)
        v.update((h + l + c) / 3, vol)
        sl.update(c)
    for i in range(100):
        six(1501.0, 1499.0, 1500.0 + i % 3, 10.0)
    benchmark(six, 1502.0, 1499.5, 1500.5, 10.0)


# ---------------------------------------------------------------- batch, 1M points

@pytest.mark.benchmark(group="batch EMA(20), 1M points")
def test_hftcore_ema_batch(benchmark):
    benchmark(lambda: EMA(20).batch(CLOSE))


@pytest.mark.benchmark(group="batch EMA(20), 1M points")
def test_talib_ema(benchmark):
    talib = pytest.importorskip("talib")
    benchmark(talib.EMA, CLOSE, 20)


@pytest.mark.benchmark(group="batch EMA(20), 1M points")
def test_pure_python_ema_list(benchmark):
    xs = CLOSE.tolist()
    benchmark.pedantic(ref.ema, (xs, 20), rounds=1, iterations=1)


@pytest.mark.benchmark(group="batch RSI(14), 1M points")
def test_hftcore_rsi_batch(benchmark):
    benchmark(lambda: RSI(14).batch(CLOSE))


@pytest.mark.benchmark(group="batch RSI(14), 1M points")
def test_talib_rsi(benchmark):
    talib = pytest.importorskip("talib")
    benchmark(talib.RSI, CLOSE, 14)


@pytest.mark.benchmark(group="batch RSI(14), 1M points")
def test_pure_python_rsi_list(benchmark):
    xs = CLOSE.tolist()
    benchmark.pedantic(ref.rsi, (xs, 14), rounds=1, iterations=1)


@pytest.mark.benchmark(group="batch ATR(14), 1M points")
def test_hftcore_atr_batch(benchmark):
    benchmark(lambda: ATR(14).batch(HIGH, LOW, CLOSE))


@pytest.mark.benchmark(group="batch ATR(14), 1M points")
def test_talib_atr(benchmark):
    talib = pytest.importorskip("talib")
    benchmark(talib.ATR, HIGH, LOW, CLOSE, 14)


@pytest.mark.benchmark(group="batch ATR(14), 1M points")
def test_pure_python_atr_list(benchmark):
    h, l, c = HIGH.tolist(), LOW.tolist(), CLOSE.tolist()
    benchmark.pedantic(ref.atr, (h, l, c, 14), rounds=1, iterations=1)


# ------------------------------------------------------- declared-indicator classes, 1M points
# Each beside TA-Lib in the same group (target: <= 1.0x TA-Lib's time); SUPERTREND and
# DONCHIAN have no TA-Lib function: beside TA-Lib's ATR (SuperTrend's inner loop) and
# MAX + MIN (the channel), and the plain-Python references on a 100k slice.

def _new_indicators():
    from hftcore_ext import indicators as ind
    return {
        "SMA(20)": (lambda: ind.SMA(20).batch(CLOSE), lambda t: t.SMA(CLOSE, 20)),
        "WMA(20)": (lambda: ind.WMA(20).batch(CLOSE), lambda t: t.WMA(CLOSE, 20)),
        "STDDEV(20)": (lambda: ind.STDDEV(20, 1.0).batch(CLOSE),
                       lambda t: t.STDDEV(CLOSE, 20, 1.0)),
        "BBANDS(20, 2)": (lambda: ind.BBANDS(20, 2.0, 2.0).batch(CLOSE),
                          lambda t: t.BBANDS(CLOSE, 20, 2.0, 2.0)),
        "MACD(12, 26, 9)": (lambda: ind.MACD(12, 26, 9).batch(CLOSE),
                            lambda t: t.MACD(CLOSE, 12, 26, 9)),
        "STOCH(14, 3, 3)": (lambda: ind.STOCH(14, 3, 3).batch(HIGH, LOW, CLOSE),
                            lambda t: t.STOCH(HIGH, LOW, CLOSE, 14, 3, 0, 3, 0)),
        "ADX(14)": (lambda: ind.ADX(14).batch(HIGH, LOW, CLOSE),
                    lambda t: t.ADX(HIGH, LOW, CLOSE, 14)),
        "PLUS_DI(14)": (lambda: ind.PLUS_DI(14).batch(HIGH, LOW, CLOSE),
                        lambda t: t.PLUS_DI(HIGH, LOW, CLOSE, 14)),
        "MINUS_DI(14)": (lambda: ind.MINUS_DI(14).batch(HIGH, LOW, CLOSE),
                         lambda t: t.MINUS_DI(HIGH, LOW, CLOSE, 14)),
        "OBV": (lambda: ind.OBV().batch(CLOSE, VOL), lambda t: t.OBV(CLOSE, VOL)),
        "SUPERTREND(10, 3) vs TA-Lib ATR(10)": (
            lambda: ind.SUPERTREND(10, 3.0).batch(HIGH, LOW, CLOSE),
            lambda t: t.ATR(HIGH, LOW, CLOSE, 10)),
        "DONCHIAN(20) vs TA-Lib MAX + MIN": (
            lambda: ind.DONCHIAN(20).batch(HIGH, LOW),
            lambda t: (t.MAX(HIGH, 20), t.MIN(LOW, 20))),
    }


NEW = list(_new_indicators())


@pytest.mark.parametrize("name", NEW)
def test_hftcore_new_batch(benchmark, name):
    benchmark.group = f"batch {name}, 1M points"
    benchmark(_new_indicators()[name][0])


@pytest.mark.parametrize("name", NEW)
def test_talib_new(benchmark, name):
    talib = pytest.importorskip("talib")
    benchmark.group = f"batch {name}, 1M points"
    fn = _new_indicators()[name][1]
    benchmark(fn, talib)


@pytest.mark.parametrize("name", ["SUPERTREND(10, 3) vs TA-Lib ATR(10)",
                                  "DONCHIAN(20) vs TA-Lib MAX + MIN"])
def test_pure_python_reference_100k(benchmark, name):
    benchmark.group = f"batch {name}, 1M points"
    k = 100_000
    h, l, c = HIGH[:k].tolist(), LOW[:k].tolist(), CLOSE[:k].tolist()
    if name.startswith("SUPERTREND"):
        benchmark.pedantic(ref.supertrend, (h, l, c, 10, 3.0), rounds=1, iterations=1)
    else:
        benchmark.pedantic(ref.donchian, (h, l, 20), rounds=1, iterations=1)
    benchmark.extra_info["points"] = k


# ---------------------------------------------------------------- the bank's read-out

def _bank_with(specs):
    from hftcore_ext.candles import CandleBank
    bank = CandleBank(1, (60,), history=200, indicators=specs)
    n = 5_000
    ts = 1_795_664_700 * 10**9 + np.arange(n, dtype=np.int64) * 60 * 10**9
    bank.ingest_bars(np.zeros(n, np.int32), ts, CLOSE[:n], HIGH[:n], LOW[:n], CLOSE[:n],
                     VOL[:n], 60)
    return bank


@pytest.mark.benchmark(group="read declared indicators of one series (5 specs, 11 values)")
def test_hftcore_bank_indicators_dict(benchmark):
    from hftcore.indicators import bbands, ema, macd, rsi, sma
    bank = _bank_with((ema(10), sma(50), rsi(14), bbands(20, 2), macd(12, 26, 9)))
    benchmark(bank.indicators, 0, 0)


@pytest.mark.benchmark(group="read declared indicators of one series (5 specs, 11 values)")
def test_hftcore_bank_indicator_values_array(benchmark):
    from hftcore.indicators import bbands, ema, macd, rsi, sma
    bank = _bank_with((ema(10), sma(50), rsi(14), bbands(20, 2), macd(12, 26, 9)))
    benchmark(bank.indicator_values, 0, 0)


@pytest.mark.benchmark(group="read declared indicators of one series (5 specs, 11 values)")
def test_hftcore_bank_fixed_bundle_dict(benchmark):
    bank = _bank_with(())
    keys = ("ema20", "ema50", "rsi", "atr", "vwap", "slope")
    benchmark(bank.bundle_dict, 0, 0, keys)


@pytest.mark.benchmark(group="history(sym, tf, 100): views of the ring")
def test_hftcore_bank_history_views(benchmark):
    bank = _bank_with(())
    benchmark(bank.history, 0, 0, 100)


# ------------------------------------------------------- cost of declaring in the close path

def _ingest_bars(specs, n=200_000):
    from hftcore_ext.candles import CandleBank
    ts = 1_795_664_700 * 10**9 + np.arange(n, dtype=np.int64) * 60 * 10**9
    sym = np.zeros(n, np.int32)

    def run():
        bank = CandleBank(1, (60, 300, 900), history=200, indicators=specs)
        bank.ingest_bars(sym, ts, CLOSE[:n], HIGH[:n], LOW[:n], CLOSE[:n], VOL[:n], 60)
    return run


@pytest.mark.benchmark(group="ingest 200k 1m bars into 1m/5m/15m")
def test_hftcore_ingest_fixed_bundle_only(benchmark):
    benchmark(_ingest_bars(()))


@pytest.mark.benchmark(group="ingest 200k 1m bars into 1m/5m/15m")
def test_hftcore_ingest_with_5_declared(benchmark):
    from hftcore.indicators import bbands, ema, macd, rsi, sma
    benchmark(_ingest_bars((ema(10), sma(50), rsi(14), bbands(20, 2), macd(12, 26, 9))))
