"""The compiled event lane (hftcore_ext.lane) beside its plain-Python twins.

Two groups, each run with the compiled lane and with ``tests/twin_lane.py``'s twins
swapped in (the gate's book, the fusion, the dashboard's intake; nothing else differs):

- the pre-trade gate alone: ``PreTradeGate.check`` of a LIMIT buy with 40 other
  orders working on the symbol, then ``release`` (what every order pays);
- the whole decision path: tick -> run_symbol -> execute (paper) -> portfolio ->
  dashboard, the same path as ``test_bench_pipeline.py``.

p50/p99 go to extra_info.
"""
import numpy as np
import pytest
from twin_lane import FeedIntakeTwin, RiskBookTwin, fuse_twin

from hftcore import (InstrumentTable, MarketDataEngine, PaperBroker, RiskLimits, Signal,
                     StrategyEngineV3, SyntheticFeed, ZERO_CHARGES)
from hftcore.services import (DashboardFeed, EventBus, ExecutionService, MarketDataService,
                              PortfolioService, StrategyService)
from hftcore_ext.lane import RiskBook

LANES = ("compiled", "twin")


class Alternate:
    name = "alternate"
    flip = 0

    def evaluate(self, symbol, timeframe, bundle, ltp):
        return Signal(self.name, symbol, timeframe, "BUY" if Alternate.flip % 2 else "SELL", 1.0,
                      "alternate")


def make_world(lane: str):
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
                                          max_orders_per_minute=None, max_orders_per_day=None))
    gate = ex.gate
    dash = DashboardFeed(bus)
    if lane == "twin":                                   # the one thing that differs
        gate._book = RiskBookTwin(*gate._book_limits())
        engine.fuse = lambda signals, p, s: fuse_twin(
            signals, p, s, engine.weights, engine.primary_weight, engine.secondary_weight,
            engine.min_confidence)
        fast = dash._in
        twin = FeedIntakeTwin(fast.signals, fast.orders)
        twin.bind(dash._lock, dash._now_ns, dash._other_event, dash._fold)
        bus.unsubscribe("*", fast.on_event)
        dash._in = twin
        bus.subscribe("*", twin.on_event)
    else:
        assert isinstance(gate._book, RiskBook)
    ts = int(feed.data().ts_ns[-1])
    return dict(mds=mds, strat=strat, ex=ex, gate=gate, ts=[ts])


def percentiles(benchmark):
    data = np.array(benchmark.stats.stats.data) * 1e6
    benchmark.extra_info["p50_us"] = float(np.percentile(data, 50))
    benchmark.extra_info["p99_us"] = float(np.percentile(data, 99))


@pytest.mark.benchmark(group="pre-trade gate: check + release, 40 orders working")
@pytest.mark.parametrize("lane", LANES)
def test_gate_check(benchmark, lane):
    w = make_world(lane)
    gate = w["gate"]
    ltp = w["mds"].get_ltp("RELIANCE")
    below = round(ltp * 0.95 * 10) / 10
    for i in range(40):                                   # resting bids and offers
        side = "BUY" if i % 2 else "SELL"
        d = gate.check(f"rest{i}", "RELIANCE", side, 10, "LIMIT",
                       below if side == "BUY" else round(ltp * 1.05 * 10) / 10)
        assert d.rule == "", d
    n = [0]

    def one():
        n[0] += 1
        key = f"k{n[0]}"
        d = gate.check(key, "RELIANCE", "BUY", 5, "LIMIT", below)
        gate.release(key)
        return d

    d = benchmark.pedantic(one, rounds=5000, iterations=1, warmup_rounds=200)
    assert d.rule == "" and d.quantity == 5
    percentiles(benchmark)


@pytest.mark.benchmark(group="decision path, compiled event lane vs its twins")
@pytest.mark.parametrize("lane", LANES)
def test_decision_path(benchmark, lane):
    w = make_world(lane)

    def decision():
        w["ts"][0] += 1000
        w["mds"].on_tick("RELIANCE", w["ts"][0], 1545.2, 10)
        Alternate.flip += 1
        return w["ex"].execute(w["strat"].run_symbol("RELIANCE", w["ts"][0]))

    result = benchmark.pedantic(decision, rounds=3000, iterations=1, warmup_rounds=200)
    assert result.status == "FILLED", result
    percentiles(benchmark)
