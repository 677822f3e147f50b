"""Parameter-sweep throughput: ``hftcore optimize``'s runner on 1 worker (in process) and on
a local Dask cluster of 2 worker processes, beside backtesting.py's ``Backtest.optimize``,
on the same grid of EMA periods over the same bundled 1-minute candles (INFY).

hftcore runs its full session per parameter set (services, charges, the report's
statistics); the strategy is ``ema_trend`` with ``min_gap_atr=0`` (long when EMA fast >
EMA slow, short below), swept over the bundle's EMA periods (``indicators.ema_fast`` x
``indicators.ema_slow``).  backtesting.py sweeps an EMA crossover strategy over the same
periods.  The cluster's start-up (about 5 s: two Python processes importing hftcore) is
outside the timing and reported in extra_info, as is the data scatter.

HFTCORE_BENCH_SWEEP=small (CI) sweeps 2 x 2 sets instead of 4 x 4.
"""
import os
import time
from pathlib import Path

import numpy as np
import pytest

from hftcore import research as rs
from hftcore.cli import _config, _instruments, build_parser, load_feed

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles"
SMALL = os.environ.get("HFTCORE_BENCH_SWEEP") == "small"
FAST = [5, 10] if SMALL else [5, 10, 15, 20]
SLOW = [30, 50] if SMALL else [30, 40, 50, 60]
GROUP = f"sweep {len(FAST)}x{len(SLOW)} EMA periods, INFY 1m candles"


def _payload():
    args = build_parser().parse_args([
        "optimize", "--data", str(DATA), "--symbols", "INFY", "--strategy", "ema_trend",
        "--grid", f"indicators.ema_fast={','.join(map(str, FAST))}",
        "--grid", f"indicators.ema_slow={','.join(map(str, SLOW))}"])
    cfg = _config(args)
    cfg.strategies = {"ema_trend": {"weight": 1.0, "params": {"min_gap_atr": 0.0}}}
    feed = load_feed(args, cfg, _instruments(cfg))
    grid = rs.parse_grid(args.grid)
    sets = rs.param_sets(grid, ["indicators.ema_fast < indicators.ema_slow"])
    return rs.payload_for(args, cfg, feed.data(), feed.instruments, list(grid)), sets, \
        len(feed.data())


def _record(benchmark, runs, bars, **extra):
    med = benchmark.stats.stats.median
    benchmark.extra_info["backtests_per_s"] = runs / med
    benchmark.extra_info["bars_per_s"] = runs * bars / med
    benchmark.extra_info.update(extra)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("workers", [1, 2])
def test_hftcore_optimize(benchmark, workers):
    payload, sets, bars = _payload()
    t0 = time.perf_counter()
    with rs.Runner(payload, workers=workers) as runner:
        runner.warm()                         # imports done on every worker, as in a long sweep
        startup = time.perf_counter() - t0
        rows = benchmark.pedantic(rs.sweep, (runner, sets), {"on_result": lambda d, t: None},
                                  rounds=2 if workers == 1 else 1, iterations=1)
    assert len(rows) == len(sets) and all(r["# Trades"] > 0 for r in rows)
    _record(benchmark, len(sets), bars, workers=workers, startup_s=startup)


def _ema(close, n):
    from hftcore_ext.indicators import EMA
    return EMA(int(n)).batch(np.asarray(close, np.float64))


try:                                   # module level: backtesting.py pickles it to its pool
    import backtesting as _bt

    class EmaCross(_bt.Strategy):
        n1, n2 = 10, 30

        def init(self):
            self.fast = self.I(_ema, self.data.Close, self.n1)
            self.slow = self.I(_ema, self.data.Close, self.n2)

        def next(self):
            if self.fast[-1] > self.slow[-1] and not self.position.is_long:
                self.position.close()
                self.buy(size=10)
            elif self.fast[-1] < self.slow[-1] and not self.position.is_short:
                self.position.close()
                self.sell(size=10)
except ImportError:                    # pragma: no cover - the bench extra installs it
    _bt = None


@pytest.mark.benchmark(group=GROUP)
def test_backtesting_py_optimize(benchmark):
    if _bt is None:
        pytest.skip("backtesting.py is not installed")
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(DATA / "INFY.csv")
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("date")))
    df = df.rename(columns=str.capitalize)

    def run():
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _bt.Backtest(df, EmaCross, cash=1_000_000, commission=0.0003).optimize(
                n1=FAST, n2=SLOW, constraint=lambda p: p.n1 < p.n2, maximize="Sharpe Ratio",
                return_heatmap=True)
    _stats, heatmap = benchmark.pedantic(run, rounds=1, iterations=1)
    runs = sum(1 for f in FAST for s in SLOW if f < s)
    assert len(heatmap) == runs
    _record(benchmark, runs, len(df), workers=os.cpu_count())
