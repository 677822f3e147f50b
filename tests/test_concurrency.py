"""Threads publishing, (un)subscribing, filling and snapshotting at once for a few seconds:
no exception, no deadlock, and every total exact afterwards."""
import json
import os
import threading
import time

from figures import report
from hftcore.services import DashboardFeed, EventBus, PortfolioService

SECONDS = float(os.environ.get("HFTCORE_STRESS_SECONDS", "3"))
SYMBOLS = ["RELIANCE", "TCS", "INFY", "SBIN"]


def test_everything_at_once_for_seconds_with_exact_totals():
    bus = EventBus(buffer_size=10_000)
    portfolio = PortfolioService(10_000_000.0, bus)
    bus.subscribe("order.filled", portfolio.on_fill)
    dash = DashboardFeed(bus, max_signals=50, max_orders=50)
    delivered = {"n": 0}
    lock = threading.Lock()

    def count(event):
        with lock:
            delivered["n"] += 1
    bus.subscribe("signals.*", count)

    stop = threading.Event()
    errors, ops = [], {"publish": 0, "fill": 0, "churn": 0, "snapshot": 0}
    fills_sent = {}

    def guard(fn, key):
        def run(k):
            n = 0
            try:
                while not stop.is_set():
                    fn(k, n)
                    n += 1
            except Exception as exc:      # pragma: no cover - reported below
                errors.append(repr(exc))
            with lock:
                ops[key] += n
        return run

    def publisher(k, n):
        bus.publish("signals.raw", {"k": k, "n": n})

    def filler(k, n):
        side = "BUY" if n % 2 == 0 else "SELL"
        qty = 1 + n % 5 if side == "BUY" else 1 + (n - 1) % 5
        bus.publish("order.filled", {"fill_id": f"{k}-{n}", "symbol": SYMBOLS[(k + n // 2) % 4],
                                     "side": side, "quantity": qty,
                                     "price_paise": 150_000 + (n % 9) * 5, "fees_paise": 3})
        fills_sent[k] = n + 1

    def churner(k, n):
        h = lambda e: None                # noqa: E731
        bus.subscribe("*", h)
        bus.unsubscribe("*", h)
        time.sleep(0)                     # yield: a tight loop would only measure GIL convoys

    def reader(k, n):
        json.dumps(dash.get_snapshot())
        portfolio.get_snapshot()
        bus.get_recent_events("signals.raw", limit=100)
        time.sleep(0.001)

    threads = ([threading.Thread(target=guard(publisher, "publish"), args=(k,)) for k in range(3)]
               + [threading.Thread(target=guard(filler, "fill"), args=(k,)) for k in range(3)]
               + [threading.Thread(target=guard(churner, "churn"), args=(k,)) for k in range(2)]
               + [threading.Thread(target=guard(reader, "snapshot"), args=(k,)) for k in range(2)])
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not [t for t in threads if t.is_alive()], "deadlock: threads still running"
    assert not errors, errors

    totals = portfolio.get_totals()
    n_fills = sum(fills_sent.values())
    assert totals["fills"] == n_fills == ops["fill"]
    assert totals["fees_paise"] == 3 * n_fills and totals["balanced"]
    assert delivered["n"] == ops["publish"]
    snap = dash.get_snapshot()
    assert snap["system"]["events"]["signals.raw"] == ops["publish"]
    assert snap["system"]["events"]["order.filled"] == n_fills
    assert bus.published == ops["publish"] + 2 * n_fills      # each fill -> portfolio.updated
    report("concurrency test", f"{len(threads)} threads for {SECONDS:.0f} s: "
                               f"{ops['publish']:,} publishes, {n_fills:,} fills, "
                               f"{ops['churn']:,} subscribe/unsubscribe pairs, "
                               f"{ops['snapshot']:,} snapshot rounds; totals exact")
