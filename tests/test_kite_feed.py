"""KiteTickerFeed against the local Kite server's real websocket."""

import time

import numpy as np
import pytest

pytest.importorskip("websockets")

from hftcore.engines.market_data import MarketDataEngine
from hftcore.instruments import InstrumentTable
from hftcore.kite.feed import KiteTickerFeed
from hftcore.kite.server import KiteServer
from hftcore.services import EventBus


def _wait(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def srv():
    with KiteServer(heartbeat_s=0.05) as s:
        yield s


def _feed(srv, **kw):
    args = {"symbols": ["INFY", "TCS"], "mode": "quote", "url": srv.ws_url, "stale_after": 1.0,
            "backoff_initial": 0.05, "backoff_max": 0.2, "connect_timeout": 1.0}
    args.update(kw)
    return KiteTickerFeed(srv.api_key, srv.access_token, InstrumentTable.nse_default(), **args)


def _subscribed(srv, n=2):
    return lambda: sum(len(s) for s in srv._clients.values()) >= n


def _collect(feed, n, timeout=3.0):
    got = []
    end = time.monotonic() + timeout
    while sum(len(b) for b in got) < n and time.monotonic() < end:
        b = feed.get(timeout=0.05)
        if b is not None:
            got.append(b)
    return got


def test_kite_feed_ticks_become_arrays_with_volume_differences(srv):
    with _feed(srv) as feed:
        assert feed.wait_connected(3) and _wait(_subscribed(srv))
        srv.push_ticks({"INFY": 1581.0, "TCS": 3120.5}, quantity=10)
        srv.push_ticks({"INFY": 1581.5}, quantity=7)
        b1, b2 = _collect(feed, 3)
        inst = feed.instruments
        assert b1.sym.dtype == np.int32 and b1.ts_ns.dtype == np.int64
        assert b1.sym.tolist() == [inst.id_of("INFY"), inst.id_of("TCS")]
        assert b1.price.tolist() == [1581.0, 3120.5]
        assert b1.volume.tolist() == [0.0, 0.0]          # first tick: no previous day total
        assert b2.volume.tolist() == [7.0]               # 17 cumulative - 10
        assert feed.get_ltp("INFY") == 1581.5 and feed.get_ltp("SBIN") is None
        st = feed.staleness()
        assert set(st) == {"INFY", "TCS"} and st["INFY"] < 1.0
        assert _wait(lambda: feed.heartbeats > 0)               # 1-byte frames, not ticks


def test_kite_feed_full_mode_uses_the_exchange_epoch_not_the_local_zone(srv):
    with _feed(srv, mode="full", symbols=["INFY"]) as feed:
        assert feed.wait_connected(3) and _wait(_subscribed(srv, 1))
        assert _wait(lambda: next(iter(srv._clients.values())).get(408065) == "full")
        srv.push_ticks({"INFY": 1580.0}, exchange_ts=1_764_215_100)   # 2025-11-27 09:15 IST
        (b,) = _collect(feed, 1)
        assert b.ts_ns.tolist() == [1_764_215_100 * 10**9]


def test_kite_feed_reconnects_and_resubscribes_after_a_drop(srv):
    with _feed(srv) as feed:
        assert feed.wait_connected(3) and _wait(_subscribed(srv))
        srv.drop_connections()
        assert _wait(lambda: feed.connects == 2 and _subscribed(srv)())
        assert srv.ws_connects == 2
        subs = [v for a, v in srv.subscribe_log if a == "subscribe"]
        assert len(subs) == 2 and sorted(subs[1]) == sorted([408065, 2953217])
        srv.push_ticks({"TCS": 3121.0})
        (b,) = _collect(feed, 1)
        assert b.price.tolist() == [3121.0]


def test_kite_feed_watchdog_catches_a_silent_socket(srv):
    bus = EventBus(100)
    stale = []
    bus.subscribe("feed.stale", lambda e: stale.append(e["payload"]))
    with _feed(srv, stale_after=0.3, bus=bus) as feed:
        assert feed.wait_connected(3)
        srv.silence()                                     # socket open, nothing sent
        assert _wait(lambda: feed.stale_events >= 1, 3)
        assert stale[0]["symbol"] is None and stale[0]["seconds"] >= 0.3
        assert "no message" in stale[0]["reason"]
        srv.silence(False)
        assert _wait(lambda: feed.connects >= 2 and feed.connected.is_set(), 3)


def test_kite_feed_stops_reconnecting_on_a_refused_token(srv):
    bus = EventBus(100)
    stale = []
    bus.subscribe("feed.stale", lambda e: stale.append(e["payload"]))
    srv.expire_token()
    feed = _feed(srv, bus=bus).start()
    try:
        assert _wait(lambda: feed.halted, 3)
        time.sleep(0.3)                                   # several back-off periods
        assert srv.ws_refused == 1 and feed.connects == 0
        assert "403" in feed.error and "403" in stale[0]["reason"]
        assert list(feed.batches(0.05)) == []             # batches() ends: nothing to stream
    finally:
        feed.stop()


def test_kite_feed_slow_consumer_never_blocks_the_reader(srv):
    with _feed(srv, queue_size=2) as feed:
        assert feed.wait_connected(3) and _wait(_subscribed(srv))
        for k in range(10):
            srv.push_ticks({"INFY": 1580.0 + k * 0.05})
        assert _wait(lambda: feed.ticks == 10)
        assert feed.dropped_batches == 8 and feed.dropped_ticks == 8
        assert feed.get_ltp("INFY") == pytest.approx(1580.45)  # the reader kept up
        kept = feed.drain()
        assert kept.price.tolist() == pytest.approx([1580.40, 1580.45])


def test_kite_feed_batches_and_poll_close_candles_on_the_clock(srv):
    table = InstrumentTable.nse_default()
    engine = MarketDataEngine(table, timeframes=("1m",))
    t0 = 1_764_215_100 * 10**9                             # 2025-11-27 09:15:00 IST
    now = {"ns": t0}
    feed = KiteTickerFeed(srv.api_key, srv.access_token, table, symbols=["INFY"], mode="quote",
                          url=srv.ws_url, engine=engine, clock=lambda: now["ns"],
                          symbol_stale_after=0.2, bus=EventBus(10))
    with feed:
        assert feed.wait_connected(3) and _wait(_subscribed(srv, 1))
        srv.push_ticks({"INFY": 1580.0})
        srv.push_ticks({"INFY": 1582.0})
        got = 0
        for batch in feed.batches(0.05):
            engine.ingest(batch)
            got += len(batch)
            if got >= 2:
                break
        assert engine.get_candles("INFY", "1m") == []    # the minute has not ended
        time.sleep(0.25)
        assert t0 + 0.25e9 <= feed.exchange_now_ns() < t0 + 2e9   # the exchange's clock runs on
        assert feed.poll() == 0
        assert feed.poll(t0 + 61 * 10**9) == 1              # no tick arrives: the timer closes it
        (candle,) = engine.get_candles("INFY", "1m")
        assert (candle["open"], candle["close"]) == (1580.0, 1582.0)
        events = feed.bus.get_recent_events("feed.stale")
        assert [e["payload"]["symbol"] for e in events] == ["INFY"]
        feed.poll()
        assert len(feed.bus.get_recent_events("feed.stale")) == 1   # once until it ticks


def test_kite_feed_subscribe_and_unsubscribe_while_connected(srv):
    with _feed(srv, symbols=["INFY"]) as feed:
        assert feed.wait_connected(3) and _wait(_subscribed(srv, 1))
        feed.subscribe(["TCS"], mode="full")
        assert _wait(lambda: next(iter(srv._clients.values())).get(2953217) == "full")
        assert feed.subscriptions() == {"INFY": "quote", "TCS": "full"}
        feed.unsubscribe(["INFY"])
        assert _wait(lambda: 408065 not in next(iter(srv._clients.values())))
        srv.push_ticks({"INFY": 1590.0, "TCS": 3125.0})
        (b,) = _collect(feed, 1)
        assert b.sym.tolist() == [feed.instruments.id_of("TCS")]
        with pytest.raises(ValueError, match="unknown symbol"):
            feed.subscribe(["NOPE"])
