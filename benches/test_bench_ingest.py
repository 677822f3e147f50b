"""Tick ingest: ticks -> candles on 3 timeframes -> all indicators, per tick and in batch."""
import numpy as np
import pytest

import reference as ref
from hftcore_ext.candles import CandleBank

T0 = 1_795_664_700 * 10**9       # 2026-11-26 09:15 IST
N_TICKS = 1_000_000


def make_ticks(n_symbols, n=N_TICKS, seed=0):
    rng = np.random.default_rng(seed)
    sym = rng.integers(0, n_symbols, n).astype(np.int32)
    ts = T0 + np.sort(rng.integers(0, 6 * 3600 * 10**9, n)).astype(np.int64)
    price = np.round(1000 * np.exp(np.cumsum(rng.normal(0, 1e-4, n))), 2)
    vol = rng.integers(1, 500, n).astype(np.float64)
    return sym, ts, price, vol


@pytest.mark.parametrize("n_symbols", [10, 1_000, 10_000])
@pytest.mark.benchmark(group="batch tick ingest, 1M ticks, 3 timeframes, all indicators")
def test_hftcore_ingest_ticks(benchmark, n_symbols):
    ticks = make_ticks(n_symbols)
    # a fresh bank each round: re-ingesting old ticks would only exercise the 'late' path
    benchmark.pedantic(lambda bank: bank.ingest_ticks(*ticks),
                       setup=lambda: ((CandleBank(n_symbols, (60, 300, 900), history=100),), {}),
                       rounds=5, iterations=1)
    benchmark.extra_info["ticks_per_s"] = N_TICKS / benchmark.stats.stats.median
    benchmark.extra_info["state_bytes_per_symbol"] = CandleBank(1, (60, 300, 900), 100).nbytes


@pytest.mark.benchmark(group="per-tick ingest from Python, 100k ticks, 1,000 symbols")
def test_hftcore_on_tick_loop(benchmark):
    sym, ts, price, vol = (a[:100_000].tolist() for a in make_ticks(1000, 100_000))

    def run(bank):
        on_tick = bank.on_tick
        for s, t, p, v in zip(sym, ts, price, vol):
            on_tick(s, t, p, v)
    benchmark.pedantic(run, setup=lambda: ((CandleBank(1000, (60, 300, 900), 100),), {}),
                       rounds=3, iterations=1)


@pytest.mark.benchmark(group="per-tick ingest from Python, 100k ticks, 1,000 symbols")
def test_pure_python_aggregate_reference(benchmark):
    """The reference aggregation (candles for one timeframe only, no indicators)."""
    sym, ts, price, vol = make_ticks(1000, 100_000)
    by_sym = {}
    for s, t, p, v in zip(sym.tolist(), ts.tolist(), price.tolist(), vol.tolist()):
        by_sym.setdefault(s, []).append((t, p, v))

    def run():
        for ticks in by_sym.values():
            ref.aggregate(ticks, 60)
    benchmark.pedantic(run, rounds=3, iterations=1)
