"""Soak: millions of events through the bus with subscribers and history on; reports
throughput and resident memory, which must stay flat (bounded ring, bounded dashboard).

HFTCORE_SOAK_EVENTS sets the count (default 10,000,000; `.ci/run` uses fewer).
"""
import os
import time

import pytest

from hftcore.services import DashboardFeed, EventBus

EVENTS = int(os.environ.get("HFTCORE_SOAK_EVENTS", "10000000"))


def rss_mib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.benchmark(group="soak: bus with subscribers and history")
def test_soak_bus(benchmark):
    bus = EventBus(buffer_size=10_000)
    dash = DashboardFeed(bus)
    seen = [0]

    def count(event):
        seen[0] += 1
    bus.subscribe("signals.*", count)
    rss = []

    def run():
        payload = {"symbol": "RELIANCE", "action": "BUY", "confidence": 0.5}
        step = max(EVENTS // 10, 1)
        t0 = time.perf_counter()
        for i in range(EVENTS):
            bus.publish("signals.raw" if i & 1 else "order.filled", payload)
            if i % step == 0:
                rss.append(rss_mib())
        return time.perf_counter() - t0
    seconds = benchmark.pedantic(run, rounds=1, iterations=1)
    rss.append(rss_mib())
    assert seen[0] == EVENTS // 2 and bus.published == EVENTS
    assert len(dash.get_snapshot()["signals"]) == 100
    growth = rss[-1] - rss[1] if len(rss) > 2 else 0.0
    benchmark.extra_info.update(events=EVENTS, events_per_s=EVENTS / seconds,
                                rss_start_mib=rss[0], rss_end_mib=rss[-1],
                                rss_growth_after_warmup_mib=growth)
    assert growth < 20, f"memory grew {growth:.1f} MiB after warm-up: {rss}"


SOAK_DAYS = int(os.environ.get("HFTCORE_SOAK_DAYS", "300"))


@pytest.mark.benchmark(group="soak: a long backtest's memory")
def test_soak_session_memory(benchmark):
    """A backtest of SOAK_DAYS days of 1-minute bars, an EMA(2/5) crossover trading ~300
    times a day: resident memory after each simulated day must stay flat once warm
    (the fills beyond one chunk are on disk, orders and their bookkeeping are bounded)."""
    import numpy as np
    from test_bench_backtest import synthetic_bars
    from hftcore import ArrayFeed, Bars, EmaCross, InstrumentTable, RiskLimits
    from hftcore.session import PaperSession

    n = SOAK_DAYS * 1440
    ts, o, h, lo, c, v = synthetic_bars(n, seed=11)
    instruments = InstrumentTable()
    instruments.add("RELIANCE", tick_size=0.1)
    feed = ArrayFeed(Bars(np.zeros(n, np.int32), ts, o, h, lo, c, v, 60), instruments)
    session = PaperSession(feed, capital=1e9, primary_tf="1m", secondary_tf="1m",
                           strategy_engine=EmaCross(fast=2, slow=5, quantity=10),
                           max_position_size=10, square_off=False, fill_at="close",
                           risk=RiskLimits(max_order_value=None, max_orders_per_second=None,
                                           max_orders_per_minute=None, max_orders_per_day=None,
                                           check_buying_power=False))
    rss = []
    step = session.step

    def day(batch):
        step(batch)
        rss.append(rss_mib())
    session.step = day
    benchmark.pedantic(session.run, rounds=1, iterations=1)
    fills = len(session.fills)
    # warm once every bounded store is full: the fills kept in memory (keep + chunk), the
    # paper broker's finished orders, the latency samples (131,072 decisions)
    warm = len(rss) // 2
    per_day = (rss[-1] - rss[warm]) / max(len(rss) - 1 - warm, 1)
    benchmark.extra_info.update(days=len(rss), fills=fills, fills_per_day=fills / len(rss),
                                rss_start_mib=rss[0], rss_end_mib=rss[-1],
                                rss_growth_per_day_after_warmup_mib=per_day,
                                fills_on_disk=repr(session.fills))
    assert fills > 100 * len(rss), f"{fills} fills in {len(rss)} days: too few to soak"
    if len(rss) >= 200:        # the short CI pass is too short to fill the bounded stores
        assert per_day < 0.03, f"memory grew {per_day:.3f} MiB a day after warm-up: {rss}"
