"""KiteBroker through the real kiteconnect client against the local Kite server."""

import threading
import time

import pytest

kiteconnect = pytest.importorskip("kiteconnect")
pytest.importorskip("websockets")

from hftcore.instruments import InstrumentTable
from hftcore.kite.broker import KiteBroker, RateLimiter, parse_kite_time
from hftcore.kite.feed import KiteTickerFeed
from hftcore.kite.server import KiteServer
from hftcore.services import PortfolioService


def _wait(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


class Events:
    def __init__(self):
        self.items, self.lock = [], threading.Lock()

    def __call__(self, kind, order, fill):
        with self.lock:
            self.items.append((kind, order, fill))

    def kinds(self):
        with self.lock:
            return [k for k, _, _ in self.items]

    def fills(self):
        with self.lock:
            return [f for k, _, f in self.items if k == "fill"]


@pytest.fixture
def srv():
    with KiteServer(heartbeat_s=0.1, fill_delay=0.05, timeout_sleep=0.6) as s:
        yield s


@pytest.fixture
def kite(srv):
    k = kiteconnect.KiteConnect(srv.api_key, root=srv.url, timeout=0.3)
    k.set_access_token(srv.access_token)
    return k


@pytest.fixture
def ticker(srv):
    feed = KiteTickerFeed(srv.api_key, srv.access_token, InstrumentTable.nse_default(),
                          symbols=["INFY"], url=srv.ws_url, stale_after=2.0,
                          backoff_initial=0.05).start()
    assert feed.wait_connected(3)
    yield feed
    feed.stop()


@pytest.fixture
def broker(kite, ticker):
    b = KiteBroker(kite, ticker=ticker, lookup_delay=0.05, backoff_429=0.05)
    ev = Events()
    b.add_listener(ev)
    b.events = ev
    yield b
    b.stop()


def test_kite_broker_market_order_fills_from_order_updates(broker, srv):
    order = broker.place_order("INFY", "BUY", 5)
    assert order.status == "OPEN" and order.order_id
    assert _wait(lambda: broker.events.kinds() == ["fill"])
    (fill,) = broker.events.fills()
    assert (fill.order_id, fill.symbol, fill.side, fill.quantity, fill.price_paise) == \
        (order.order_id, "INFY", "BUY", 5, 158050)
    assert fill.fees_paise > 0 and fill.fees_paise == sum(fill.charges.values())
    assert abs(fill.ts / 1e9 - time.time()) < 5          # Kite's IST time, read as IST
    assert order.status == "COMPLETE" and order.filled == 5
    (row,) = srv.all_orders()
    assert row["market_protection"] == -1
    assert row["tag"].startswith(broker.tag_prefix) and len(row["tag"]) <= 20
    broker.poll()                                        # the trade, by id: already counted
    assert broker.events.kinds() == ["fill"]


def test_kite_broker_partial_fill_then_cancel_is_partial_never_complete(broker, srv):
    srv.script("partial", quantity=2)
    order = broker.place_order("INFY", "BUY", 5, order_type="LIMIT", price=1580.5)
    assert _wait(lambda: broker.events.kinds() == ["fill"])
    assert order.status == "OPEN" and order.filled == 2
    assert broker.open_orders("INFY") == [order]
    assert broker.cancel_order(order.order_id)
    assert _wait(lambda: broker.events.kinds() == ["fill", "cancelled"])
    assert order.status == "CANCELLED" and order.filled == 2 and order.quantity == 5
    assert broker.open_orders() == []
    broker.poll()
    assert broker.events.kinds() == ["fill", "cancelled"]     # nothing twice


def test_kite_broker_rejection_after_a_200(broker, srv):
    srv.script("reject", message="RMS:Margin Exceeds")
    order = broker.place_order("INFY", "SELL", 3)
    assert order.status == "OPEN"                       # Kite said 200 ...
    assert _wait(lambda: broker.events.kinds() == ["rejected"])
    assert order.status == "REJECTED" and "Margin Exceeds" in order.message
    assert order.filled == 0


def test_kite_broker_cancel_pending_then_fill(broker, srv):
    srv.cancel_mode = "pending_then_fill"
    srv.script("rest")
    order = broker.place_order("INFY", "BUY", 4, order_type="LIMIT", price=1570.0)
    assert _wait(lambda: broker.kite_status(order.order_id) == "OPEN")
    assert broker.cancel_order(order.order_id)
    assert _wait(lambda: order.status == "COMPLETE")
    assert broker.events.kinds() == ["fill"]
    assert broker.events.fills()[0].quantity == 4
    hist = [r["status"] for r in srv.orders[order.order_id]]
    assert "CANCEL PENDING" in hist and hist[-1] == "COMPLETE"


def test_kite_broker_modify_and_stop_orders(broker, srv):
    srv.script("rest")
    order = broker.place_order("INFY", "BUY", 2, order_type="LIMIT", price=1500.0)
    assert _wait(lambda: broker.kite_status(order.order_id) == "OPEN")
    assert broker.modify_order(order.order_id, price=1501.5, quantity=3)
    assert broker.events.kinds() == ["modified"]
    row = srv.all_orders()[0]
    assert (row["price"], row["quantity"]) == (1501.5, 3)
    assert order.price_paise == 150150 and order.quantity == 3
    time.sleep(0.1)
    assert broker.events.kinds() == ["modified"]         # the update echo is not a 2nd event
    srv.script("rest")
    stop = broker.place_order("INFY", "SELL", 1, order_type="SL-M", trigger_price=1500.0)
    assert stop.status == "TRIGGER PENDING"
    srow = srv.all_orders()[1]
    assert (srow["trigger_price"], srow["market_protection"]) == (1500.0, -1)


def test_kite_broker_429_backs_off_and_the_limiter_keeps_under_10_per_second(broker, srv):
    srv.inject("POST", "/orders", "429", times=2)
    first = broker.place_order("INFY", "BUY", 1)
    assert first.status == "OPEN" and broker.retried_429 == 2
    assert len(srv.all_orders()) == 1                    # refused twice, placed once
    orders = [broker.place_order("INFY", "BUY", 1) for _ in range(11)]
    assert all(o.status in ("OPEN", "COMPLETE") for o in orders)
    assert len(srv.all_orders()) == 12
    assert srv.max_orders_in_window(1.0) <= 10
    assert srv.rejected_429 == 0                         # the limiter waited instead


def test_kite_rate_limiter_waits_per_window_and_never_drops():
    now = {"t": 0.0}
    waits = []

    def sleep(s):
        waits.append(round(s, 6))
        now["t"] += s
    lim = RateLimiter(((10, 1.0), (400, 60.0), (5000, 86400.0)), clock=lambda: now["t"],
                      sleep=sleep, margin=0.0)
    for _ in range(400):
        lim.acquire()
    assert now["t"] == pytest.approx(39.0)               # 10 a second
    lim.acquire()                                       # the 401st waits for the minute
    assert now["t"] == pytest.approx(60.0)
    assert sum(waits) == pytest.approx(60.0) and lim.waited == pytest.approx(60.0)


def test_kite_broker_timeout_on_placement_is_resolved_by_tag(broker, srv):
    srv.inject("POST", "/orders", "timeout")             # recorded, answer never comes
    order = broker.place_order("INFY", "BUY", 5, tag="mytag1")
    assert order.status in ("OPEN", "COMPLETE") and order.order_id
    assert broker.lookups >= 1
    assert [o["order_id"] for o in srv.orders_with_tag("mytag1")] == [order.order_id]
    assert len(srv.all_orders()) == 1                    # exactly one order at the exchange
    assert _wait(lambda: order.status == "COMPLETE")
    assert sum(f.quantity for f in broker.fills_of(order.order_id)) == 5
    listened = {f.fill_id for f in broker.events.fills()}
    assert not listened & {f.fill_id for f in order.fills}    # returned or heard, not both


def test_kite_broker_html_page_and_missing_content_type_are_looked_up(broker, srv):
    srv.inject("POST", "/orders", "html500")
    a = broker.place_order("INFY", "BUY", 1)
    srv.inject("POST", "/orders", "no_content_type")
    b = broker.place_order("INFY", "BUY", 1)
    assert a.order_id and b.order_id and a.order_id != b.order_id
    assert len(srv.all_orders()) == 2


def test_kite_broker_unknown_outcome_never_resends_and_adopts_later(broker, srv):
    srv.inject("POST", "/orders", "html500")             # placed, but ...
    srv.inject("GET", "/orders", "html500", times=3)     # ... every lookup fails
    order = broker.place_order("INFY", "BUY", 2, tag="lost1")
    assert order.status == "REJECTED" and "outcome unknown" in order.message
    assert len(srv.orders_with_tag("lost1")) == 1        # not sent a second time
    broker.poll()                                        # the fallback finds it
    kinds = broker.events.kinds()
    assert kinds[0] == "placed" and "fill" in kinds
    assert broker.get_order(srv.orders_with_tag("lost1")[0]["order_id"]).filled == 2


def test_kite_broker_polling_fallback_uses_trade_ids(kite, srv):
    broker = KiteBroker(kite)                            # no ticker: polling only
    ev = Events()
    broker.add_listener(ev)
    order = broker.place_order("INFY", "BUY", 5)
    time.sleep(0.1)
    assert ev.kinds() == []
    broker.poll()
    (fill,) = ev.fills()
    assert fill.fill_id == srv.trades[0]["trade_id"] and fill.quantity == 5
    assert order.status == "COMPLETE"
    broker.poll()
    assert len(ev.fills()) == 1


def test_kite_broker_token_expiry_halts_cleanly(broker, srv):
    srv.expire_token()
    order = broker.place_order("INFY", "BUY", 1)
    assert order.status == "REJECTED" and broker.halted
    assert "token" in broker.halt_reason.lower()
    assert broker.events.kinds() == ["halted"]
    n = len(srv.requests)
    again = broker.place_order("INFY", "BUY", 1)
    assert again.status == "REJECTED" and again.message.startswith("halted")
    assert len(srv.requests) == n                        # nothing sent after the halt
    assert broker.events.kinds() == ["halted"]


def test_kite_broker_reconciliation_mismatch_refuses_to_trade(kite, srv):
    srv.set_position("TCS", 10, 3100.0)
    broker = KiteBroker(kite)
    ev = Events()
    broker.add_listener(ev)
    portfolio = PortfolioService(1_000_000.0)
    report = broker.require_reconciled(portfolio)
    assert not report.ok
    assert report.differences == [{"symbol": "TCS", "broker_quantity": 10,
                                   "local_quantity": 0, "broker_avg_price": 3100.0,
                                   "broker_last_price": 3100.0}]
    assert broker.halted and "TCS: Kite 10, local 0" in broker.halt_reason
    assert broker.place_order("INFY", "BUY", 1).status == "REJECTED"
    assert srv.all_orders() == [] and ev.kinds() == ["halted"]


def test_kite_broker_reconciliation_adopts_only_when_asked(kite, srv):
    srv.set_position("TCS", 10, 3100.0)
    broker = KiteBroker(kite)
    portfolio = PortfolioService(1_000_000.0)
    report = broker.require_reconciled(portfolio, adopt=True)
    assert not report.ok and not broker.halted
    assert portfolio.position_quantity("TCS") == 10
    assert portfolio.get_position("TCS")["avg_price"] == 3100.0
    assert broker.reconcile(portfolio).ok
    # someone else's resting order at Kite: fail closed even with adoption
    other = kiteconnect.KiteConnect(srv.api_key, root=srv.url)
    other.set_access_token(srv.access_token)
    srv.script("rest")
    other.place_order("regular", exchange="NSE", tradingsymbol="SBIN", transaction_type="BUY",
                      quantity=1, product="MIS", order_type="LIMIT", price=700.0)
    report = broker.require_reconciled(portfolio, adopt=True)
    assert report.unknown_open_orders[0]["tradingsymbol"] == "SBIN" and broker.halted


def test_kite_broker_ltp_from_the_ticker_else_one_batched_quote(broker, kite, srv, ticker):
    assert _wait(lambda: bool(srv._clients) and
                 any(408065 in s for s in srv._clients.values()))
    srv.push_ticks({"INFY": 1590.0})
    assert _wait(lambda: ticker.get_ltp("INFY") == 1590.0)
    n = len(srv.requests)
    assert broker.get_ltp("INFY") == 1590.0 and len(srv.requests) == n
    assert broker.get_ltp("TCS") == 3120.4               # not subscribed: /quote/ltp
    assert broker.get_ltps(["TCS", "SBIN", "NOPE"]).keys() == {"TCS", "SBIN"}
    assert [p for m, p in srv.requests[n:]] == ["/quote/ltp", "/quote/ltp"]


def test_kite_broker_rejects_bad_orders_without_calling_kite(broker, srv):
    assert broker.place_order("NOPE", "BUY", 1).status == "REJECTED"
    assert broker.place_order("INFY", "HOLD", 1).status == "REJECTED"
    assert broker.place_order("INFY", "BUY", 0).status == "REJECTED"
    assert broker.place_order("INFY", "BUY", 1, order_type="LIMIT").status == "REJECTED"
    assert broker.place_order("INFY", "BUY", 1, tag="bad-tag").status == "REJECTED"
    assert broker.place_order("INFY", "BUY", 1, product="BO").status == "REJECTED"
    assert srv.all_orders() == []


def test_kite_times_are_ist():
    import datetime as dt
    utc = dt.datetime(2026, 11, 27, 3, 45, tzinfo=dt.timezone.utc)       # 09:15 IST
    assert parse_kite_time("2026-11-27 09:15:00", 0) == int(utc.timestamp()) * 10**9
    assert parse_kite_time(dt.datetime(2026, 11, 27, 9, 15), 0) == int(utc.timestamp()) * 10**9
    assert parse_kite_time(None, 7) == 7


def test_kite_broker_postbacks_are_checked_then_applied(kite, srv):
    import hashlib
    import json
    broker = KiteBroker(kite)                            # no ticker: postbacks carry the state
    ev = Events()
    broker.add_listener(ev)
    order = broker.place_order("INFY", "BUY", 5)
    assert _wait(lambda: srv.all_orders()[0]["status"] == "COMPLETE")
    row = dict(srv.all_orders()[0])
    row["checksum"] = hashlib.sha256((row["order_id"] + row["order_timestamp"] + "forged")
                                     .encode()).hexdigest()
    assert not broker.on_postback(json.dumps(row), srv.api_secret)
    assert ev.kinds() == [] and order.status == "OPEN"
    row["checksum"] = hashlib.sha256((row["order_id"] + row["order_timestamp"]
                                      + srv.api_secret).encode()).hexdigest()
    assert broker.on_postback(json.dumps(row), srv.api_secret)
    assert ev.kinds() == ["fill"] and order.status == "COMPLETE"
    assert broker.on_postback(row, srv.api_secret)       # the same postback again: no new fill
    assert ev.kinds() == ["fill"]
