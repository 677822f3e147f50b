"""The compiled event lane (hftcore_ext.lane) beside its plain-Python twins.

Two groups, each run with the compiled lane and with ``tests/twin_lane.py``'s twins
swapped in (the gate's book, the fusion, the dashboard's intake; nothing else differs):

- the pre-trade gate alone: ``PreTradeGate.check`` of a LIMIT buy with 40 other
  orders working on the symbol, then ``release`` (what every order pays);
- the whole decision path: tick -> run_symbol -> execute (paper) -> portfolio ->
  dashboard, the same path as ``test_bench_pipeline.py``.

p50/p99 go to extra_info.
"""
import pytest
from test_bench_pipeline import Alternate, build_world, percentiles
from twin_lane import FeedIntakeTwin, RiskBookTwin, fuse_twin

from hftcore_ext.lane import RiskBook

LANES = ("compiled", "twin")


def make_world(lane: str) -> dict:
    """The pipeline benchmark's world with buying power on, and for ``lane="twin"``
    every compiled lane piece swapped for its twin."""
    w = build_world(check_buying_power=True)
    gate, engine, dash, bus = w["ex"].gate, w["engine"], w["dash"], w["bus"]
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
    w["gate"] = gate
    return w


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
