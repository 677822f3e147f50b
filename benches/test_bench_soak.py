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
