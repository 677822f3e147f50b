"""tick -> run_symbol -> execute (paper) -> portfolio -> dashboard, one symbol, by stage.

A strategy that alternates BUY and SELL makes every decision produce an order and a
fill, so each measured pass crosses every service.  p50/p99 go to extra_info.
"""
import numpy as np
import pytest

from hftcore import (InstrumentTable, MarketDataEngine, PaperBroker, RiskLimits, Signal,
                     StrategyEngineV3, SyntheticFeed, ZERO_CHARGES)
from hftcore.services import (DashboardFeed, EventBus, ExecutionService, MarketDataService,
                              PortfolioService, StrategyService)


class Alternate:
    name = "alternate"
    flip = 0

    def evaluate(self, symbol, timeframe, bundle, ltp):
        return Signal(self.name, symbol, timeframe, "BUY" if Alternate.flip % 2 else "SELL", 1.0,
                      "alternate")


def build_world(check_buying_power: bool = False) -> dict:
    """One symbol wired through the six services (also used by test_bench_lane.py)."""
    instruments = InstrumentTable.nse_default()
    feed = SyntheticFeed(["RELIANCE"], instruments=instruments, seed=3)
    mde = MarketDataEngine(instruments)
    for b in feed.batches(300):
        mde.ingest(b)
    bus = EventBus()
    mds = MarketDataService(mde, mde, cache_ttl_seconds=0)
    engine = StrategyEngineV3([Alternate()])
    strat = StrategyService(engine, mds, bus)
    port = PortfolioService(1e9, bus)
    bus.subscribe("order.filled", port.on_fill)
    ex = ExecutionService(PaperBroker(mds, instruments, charges=ZERO_CHARGES), port, bus,
                          max_position_size=10**6,
                          risk=RiskLimits(max_order_value=None, max_orders_per_second=None,
                                          max_orders_per_minute=None, max_orders_per_day=None,
                                          check_buying_power=check_buying_power))
    dash = DashboardFeed(bus)
    ts = int(feed.data().ts_ns[-1])
    return dict(mds=mds, strat=strat, ex=ex, dash=dash, ts=[ts], bus=bus, engine=engine)


@pytest.fixture(scope="module")
def world():
    return build_world()


def percentiles(benchmark):
    data = np.array(benchmark.stats.stats.data) * 1e6
    benchmark.extra_info["p50_us"] = float(np.percentile(data, 50))
    benchmark.extra_info["p99_us"] = float(np.percentile(data, 99))


def decision(w):
    w["ts"][0] += 1000
    w["mds"].on_tick("RELIANCE", w["ts"][0], 1545.2, 10)
    Alternate.flip += 1
    intent = w["strat"].run_symbol("RELIANCE", w["ts"][0])
    return w["ex"].execute(intent)


@pytest.mark.benchmark(group="decision path, one symbol (tick -> dashboard)")
def test_hftcore_whole_path(benchmark, world):
    result = benchmark.pedantic(decision, (world,), rounds=3000, iterations=1, warmup_rounds=200)
    assert result.status == "FILLED"
    percentiles(benchmark)


@pytest.mark.benchmark(group="decision path, one symbol (tick -> dashboard)")
def test_hftcore_whole_path_tuned_gc(benchmark, world):
    """The same, after hftcore.tune_gc() (what the hftcore command does)."""
    import gc

    from hftcore import tune_gc
    previous = tune_gc()
    try:
        result = benchmark.pedantic(decision, (world,), rounds=3000, iterations=1,
                                    warmup_rounds=200)
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
    assert result.status == "FILLED"
    percentiles(benchmark)


@pytest.mark.benchmark(group="decision path, one symbol (tick -> dashboard)")
def test_stage_1_on_tick(benchmark, world):
    def tick():
        world["ts"][0] += 1000
        world["mds"].on_tick("RELIANCE", world["ts"][0], 1545.2, 10)
    benchmark.pedantic(tick, rounds=3000, iterations=1, warmup_rounds=100)
    percentiles(benchmark)


@pytest.mark.benchmark(group="decision path, one symbol (tick -> dashboard)")
def test_stage_2_run_symbol(benchmark, world):
    benchmark.pedantic(world["strat"].run_symbol, ("RELIANCE",), rounds=3000, iterations=1,
                       warmup_rounds=100)
    percentiles(benchmark)


@pytest.mark.benchmark(group="decision path, one symbol (tick -> dashboard)")
def test_stage_3_execute_portfolio_dashboard(benchmark, world):
    def setup():
        Alternate.flip += 1
        return (world["strat"].run_symbol("RELIANCE"),), {}
    benchmark.pedantic(world["ex"].execute, setup=setup, rounds=3000, iterations=1,
                       warmup_rounds=100)
    percentiles(benchmark)


@pytest.mark.benchmark(group="decision path, one symbol (tick -> dashboard)")
def test_stage_4_dashboard_snapshot(benchmark, world):
    benchmark.pedantic(world["dash"].get_snapshot, rounds=300, iterations=1)
    percentiles(benchmark)
