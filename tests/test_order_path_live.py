"""The order path's shortcuts hold with the live broker: marking reads the ticker's
prices (not KiteBroker's REST batch), finished Kite orders are forgotten, a hook on
the portfolio still sees every fill, and a stop's fill stays a stop in the report long
after the paper broker forgot the order (from an outside review of the order path)."""

from __future__ import annotations

import types

import kiteconnect
import numpy as np
import pytest

from hftcore.engines.brokers import PaperBroker
from hftcore.engines.charges import ZERO_CHARGES
from hftcore.engines.market_data import MarketDataEngine
from hftcore.gate import RiskLimits
from hftcore.instruments import InstrumentTable
from hftcore.kite.broker import KiteBroker
from hftcore.kite.feed import KiteTickerFeed
from hftcore.kite.server import KiteServer
from hftcore.orders import OrderIntent
from hftcore.report import MARK_KINDS, _mark_columns
from hftcore.services import EventBus, ExecutionService, MarketDataService, PortfolioService
from test_kite_broker import _wait


@pytest.fixture
def live():
    with KiteServer(heartbeat_s=0.1, fill_delay=0.05) as srv:
        kite = kiteconnect.KiteConnect(srv.api_key, root=srv.url, timeout=0.3)
        kite.set_access_token(srv.access_token)
        feed = KiteTickerFeed(srv.api_key, srv.access_token, InstrumentTable.nse_default(),
                              symbols=["INFY"], url=srv.ws_url, stale_after=2.0,
                              backoff_initial=0.05).start()
        assert feed.wait_connected(3)
        broker = KiteBroker(kite, ticker=feed, lookup_delay=0.05)
        try:
            yield srv, feed, broker
        finally:
            broker.stop()
            feed.stop()


@pytest.mark.parametrize("through_mds", [False, True])
def test_kite_broker_as_price_source_marks_positions_from_the_ticker_and_halts(live,
                                                                               through_mds):
    """KiteBroker.get_ltps is a {symbol: price} REST batch: marking must neither read its
    keys as prices nor leave the ticker for a rate-limited REST call."""
    srv, feed, broker = live
    bus = EventBus()
    portfolio = PortfolioService(1_000_000.0, bus)
    source = None
    if through_mds:
        source = MarketDataService(broker, MarketDataEngine(InstrumentTable.nse_default(), [60]),
                                   cache_ttl_seconds=0)
    ex = ExecutionService(broker, portfolio, bus, "live", 100,
                          risk=RiskLimits(max_daily_loss=500.0), price_source=source)
    ex.execute(OrderIntent("INFY", "BUY", 0.9, "t", quantity=5))
    assert _wait(lambda: portfolio.position_quantity("INFY") == 5)
    assert _wait(lambda: bool(srv._clients) and
                 any(408065 in s for s in srv._clients.values()))
    srv.push_ticks({"INFY": 1400.0})
    assert _wait(lambda: feed.get_ltp("INFY") == 1400.0)
    n = len(srv.requests)
    totals = portfolio.get_totals()
    assert totals["unrealized_pnl"] == pytest.approx(5 * (1400.0 - 1580.50))
    assert [p for _, p in srv.requests[n:]] == []          # the ticker's price, no REST call
    ex.check_daily_loss()
    assert ex.halted is not None and "daily loss" in ex.halted


def test_execution_forgets_complete_kite_orders(live):
    """A live broker's fills after place_order are not on order.fills: the order's
    routing entries still go once it is complete."""
    _, _, broker = live
    bus = EventBus()
    portfolio = PortfolioService(1_000_000.0, bus)
    ex = ExecutionService(broker, portfolio, bus, "live", 100)
    for i in range(3):
        ex.execute(OrderIntent("INFY", "BUY" if i % 2 == 0 else "SELL", 0.9, "t", quantity=1))
    assert _wait(lambda: portfolio.get_totals()["fills"] == 3)
    assert _wait(lambda: (len(ex._key_of), len(ex._order_of), len(ex._seen)) == (0, 0, 0))


class _Px:
    def __init__(self):
        self.p = {"INFY": 1000.0}

    def get_ltp(self, s):
        return self.p.get(s)


def test_a_record_fill_hook_on_the_portfolio_still_sees_every_fill():
    portfolio = PortfolioService(1e6)
    seen = []
    orig = portfolio.record_fill

    def audited(fill):
        seen.append(fill["fill_id"])
        return orig(fill)

    portfolio.record_fill = audited
    px = _Px()
    ex = ExecutionService(PaperBroker(px), portfolio, EventBus(), "paper", price_source=px)
    ex.execute(OrderIntent("INFY", "BUY", quantity=2))
    assert portfolio.position_quantity("INFY") == 2 and seen == ["PB000000001-1"]


def test_a_stop_fill_is_a_stop_in_the_report_after_the_broker_forgot_the_order():
    px = _Px()
    broker = PaperBroker(px, charges=ZERO_CHARGES)
    bus = EventBus()
    fills = []
    bus.subscribe("order.filled", lambda e: fills.append(e["payload"]))
    ex = ExecutionService(broker, PortfolioService(1e9, bus), bus, "paper", 10,
                          risk=RiskLimits(max_order_value=None, max_orders_per_second=None,
                                          max_orders_per_minute=None, max_orders_per_day=None,
                                          check_buying_power=False), price_source=px)
    ex.execute(OrderIntent("INFY", "BUY", quantity=1))
    sl = ex.execute(OrderIntent("INFY", "SELL", quantity=1, order_type="SL-M",
                                trigger_price=990.0))
    px.p["INFY"] = 985.0
    broker.on_price("INFY", 985.0)
    assert broker.get_order(sl.order_id).status == "COMPLETE"
    for i in range(broker.book.KEEP_DONE + 5):
        broker.place_order("INFY", "BUY" if i % 2 else "SELL", 1)
    assert broker.get_order(sl.order_id) is None                 # forgotten by the broker
    assert [f["order_type"] for f in fills[:3]] == ["MARKET", "SL-M", "MARKET"]
    session = types.SimpleNamespace(fills=fills, broker=broker)
    index = np.array(sorted(f["ts"] for f in fills), dtype=np.int64)
    _, _, kind = _mark_columns(session, index, 1)["INFY"]
    assert MARK_KINDS[kind[1]][0] == "stop"
