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
