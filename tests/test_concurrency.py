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


def test_market_data_engine_ingests_in_one_thread_while_others_read():
    """Two feed threads ingest different symbols (the batches run without the GIL) while
    readers take bundles and candles: no crash, and the end state equals a serial run."""
    import numpy as np
    from hftcore import MarketDataEngine, SyntheticFeed
    feed = SyntheticFeed(["RELIANCE", "TCS"], seed=9)
    data = feed.data()
    per_symbol = {s: type(data)(*(f[data.sym == s] for f in data)) for s in np.unique(data.sym)}
    chunks = {s: [type(t)(*(f[i:i + 500] for f in t)) for i in range(0, len(t), 500)]
              for s, t in per_symbol.items()}
    serial = MarketDataEngine(feed.instruments)
    for s in chunks:
        for c in chunks[s]:
            serial.ingest(c)

    engine = MarketDataEngine(feed.instruments)
    stop = threading.Event()
    errors, reads = [], {"n": 0}

    def writer(s):
        try:
            for c in chunks[s]:
                engine.ingest(c)
        except Exception as exc:          # pragma: no cover
            errors.append(repr(exc))

    def reader():
        try:
            while not stop.is_set():
                for sym in ("RELIANCE", "TCS"):
                    engine.get_indicators(sym, "5m", live=True)
                    engine.get_candles(sym, "1m", 50)
                    engine.get_ltp(sym)
                reads["n"] += 1
        except Exception as exc:          # pragma: no cover
            errors.append(repr(exc))

    writers = [threading.Thread(target=writer, args=(s,)) for s in chunks]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    stop.set()
    for t in readers:
        t.join(timeout=10)
    assert not errors and not any(t.is_alive() for t in writers + readers)
    for sym in ("RELIANCE", "TCS"):
        for tf in ("1m", "5m", "15m"):
            assert engine.get_indicators(sym, tf) == serial.get_indicators(sym, tf)
        assert engine.get_candles(sym, "1m", 400) == serial.get_candles(sym, "1m", 400)
    assert reads["n"] > 0
