"""One execution path for paper and live: the pre-trade gate, the broker protocol,
the order lifecycle, brackets, charges per order and exactly-once fills.

Each ``test_regression_*`` reproduces a bypass found on the old code (issue 9)."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftcore import (ZERO_CHARGES, ChargeSchedule, InstrumentTable, KiteBroker, OrderIntent,
                     PaperBroker)
from hftcore.engines.brokers import OrderBook
from hftcore.gate import RiskLimits
from hftcore.services import EventBus, ExecutionService, PortfolioService


class Prices:
    """A price source: ``get_ltp`` from a dict the test moves."""

    def __init__(self, **p):
        self.p = dict(p)

    def get_ltp(self, s):
        return self.p.get(s)


NO_RATE = dict(max_orders_per_second=None, max_orders_per_minute=None, max_orders_per_day=None)


def wire(broker=None, capital=1e7, max_position_size=100, mode="paper", prices=None, **risk):
    prices = prices or Prices(SBIN=900.0, RELIANCE=1500.0, INFY=1600.0, TCS=3000.0)
    broker = broker or PaperBroker(prices, charges=ZERO_CHARGES)
    bus = EventBus(10_000)
    portfolio = PortfolioService(capital, bus)
    bus.subscribe("order.filled", portfolio.on_fill)          # the spec's wiring
    ex = ExecutionService(broker, portfolio, bus, mode=mode, max_position_size=max_position_size,
                          risk=RiskLimits(**risk), price_source=prices)
    return ex, portfolio, bus, broker, prices


def buy(symbol="SBIN", qty=10, **kw):
    return OrderIntent(symbol, "BUY", 0.9, "test", quantity=qty, **kw)


def sell(symbol="SBIN", qty=10, **kw):
    return OrderIntent(symbol, "SELL", 0.9, "test", quantity=qty, **kw)


def events(bus, kind):
    return [e["payload"] for e in bus.get_recent_events(kind, limit=10_000)]


class FakeKite:
    """The Kite client's order calls, accepting everything (the exchange decides later)."""

    def __init__(self):
        self.placed = []

    def place_order(self, **kw):
        self.placed.append(kw)
        return f"2401{len(self.placed):08d}"

    def modify_order(self, **kw):
        return kw["order_id"]

    def cancel_order(self, variety, order_id, **kw):
        return order_id

    def orders(self):
        return [{"order_id": f"2401{i + 1:08d}", "tag": kw.get("tag"), "status": "OPEN",
                 "filled_quantity": 0, "quantity": kw["quantity"]}
                for i, kw in enumerate(self.placed)]

    def trades(self):
        return []

    def ltp(self, keys):
        return {}


class LiveDouble:
    """A live-shaped broker: the same protocol, ``live = True``, orders come back
    OPEN and their fills, cancels and rejections arrive later (``deliver()``), as
    Kite's order updates do.  Execution itself is a PaperBroker's."""

    live = True

    def __init__(self, prices, **kw):
        self.inner = PaperBroker(prices, charges=kw.pop("charges", ZERO_CHARGES), **kw)
        self.instruments = self.inner.instruments
        self._queue = []
        self._listeners = []
        self.inner.add_listener(lambda *ev: self._queue.append(ev))
        self.placed = 0

    def add_listener(self, cb):
        self._listeners.append(cb)

    def deliver(self):
        while self._queue:
            ev = self._queue.pop(0)
            for cb in self._listeners:
                cb(*ev)

    def place_order(self, symbol, side, quantity, order_type="MARKET", price=None,
                    product="MIS", trigger_price=None, tag=None):
        self.placed += 1
        o = self.inner.place_order(symbol, side, quantity, order_type, price, product,
                                   trigger_price, tag)
        if o.status == "REJECTED":
            return o
        from hftcore.engines.brokers import BrokerOrder
        return BrokerOrder(o.order_id, o.symbol, side, quantity, o.order_type, o.price_paise,
                           o.product, "OPEN", tag=o.tag)         # what Kite's reply tells

    def modify_order(self, order_id, quantity=None, price=None, trigger_price=None):
        return self.inner.modify_order(order_id, quantity, price, trigger_price)

    def cancel_order(self, order_id):
        return self.inner.cancel_order(order_id)

    def get_order(self, order_id):
        return self.inner.get_order(order_id)

    def open_orders(self, symbol=None):
        return self.inner.open_orders(symbol)

    def get_ltp(self, symbol):
        return self.inner.get_ltp(symbol)

    def on_price(self, symbol, price):
        return self.inner.on_price(symbol, price)


# ---------------------------------------------------------------- regressions (issue 9)

def test_regression_resting_orders_count_against_max_position_size():
    ex, portfolio, bus, broker, prices = wire(max_position_size=100)
    results = [ex.execute(buy(qty=100, order_type="LIMIT", limit_price=890.0)) for _ in range(3)]
    assert [r.status for r in results] == ["PLACED", "REJECTED", "REJECTED"]
    assert {r.rule for r in results[1:]} == {"max_position"}
    prices.p["SBIN"] = 880.0
    broker.on_price("SBIN", 880.0)
    assert portfolio.position_quantity("SBIN") == 100


def test_regression_live_market_orders_count_while_in_flight():
    prices = Prices(SBIN=900.0)
    ex, *_ = wire(KiteBroker(FakeKite()), mode="live", prices=prices)
    results = [ex.execute(buy(qty=100)) for _ in range(5)]
    assert [r.status for r in results] == ["PLACED"] + ["REJECTED"] * 4
    assert all(r.rule == "max_position" for r in results[1:])


class SlowBroker(PaperBroker):
    """Takes 1 ms to place; checks that no fill ever takes the position past the limit."""

    def __init__(self, prices, limit):
        super().__init__(prices, charges=ZERO_CHARGES)
        self.limit, self.position, self.worst = limit, Counter(), 0
        self.add_listener(self._track)
        self._track_lock = threading.Lock()

    def _track(self, kind, order, fill):
        if kind == "fill":
            with self._track_lock:
                signed = fill.quantity if fill.side == "BUY" else -fill.quantity
                self.position[fill.symbol] += signed
                self.worst = max(self.worst, abs(self.position[fill.symbol]))
                assert abs(self.position[fill.symbol]) <= self.limit

    def place_order(self, *a, **kw):
        time.sleep(0.001)
        return super().place_order(*a, **kw)


def test_regression_check_and_reserve_is_atomic_across_threads():
    prices = Prices(SBIN=900.0)
    broker = SlowBroker(prices, 100)
    ex, portfolio, *_ = wire(broker, prices=prices, **NO_RATE)
    results = []
    threads = [threading.Thread(target=lambda: results.append(ex.execute(buy(qty=100))))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == ["FILLED", "REJECTED", "REJECTED", "REJECTED"]
    assert portfolio.position_quantity("SBIN") == 100 == broker.worst


def test_regression_value_limits_apply_to_live_brokers():
    prices = Prices(RELIANCE=1500.0)
    kite = FakeKite()
    ex, *_ = wire(KiteBroker(kite), mode="live", prices=prices, max_order_value=1000.0,
                  max_position_size=10**6)
    r = ex.execute(buy("RELIANCE", 100_000))
    assert r.status == "REJECTED" and r.rule == "max_order_value" and kite.placed == []


def test_regression_mode_must_match_the_broker():
    prices = Prices(SBIN=900.0)
    with pytest.raises(ValueError, match="real orders would be sent"):
        ExecutionService(KiteBroker(FakeKite()), PortfolioService(), EventBus(), mode="paper",
                         price_source=prices)
    with pytest.raises(ValueError, match="paper broker"):
        ExecutionService(PaperBroker(prices), PortfolioService(), EventBus(), mode="live")

    class Undeclared:
        instruments = InstrumentTable.nse_default()

        def place_order(self, *a, **kw):
            raise AssertionError("never called")

    with pytest.raises(ValueError, match="must declare live"):
        ExecutionService(Undeclared(), PortfolioService(), EventBus(), price_source=prices)


def test_fill_events_carry_the_mode_of_the_broker():
    prices = Prices(SBIN=900.0)
    double = LiveDouble(prices)
    ex, portfolio, bus, *_ = wire(double, mode="live", prices=prices)
    ex.execute(buy())
    double.deliver()
    assert [e["mode"] for e in events(bus, "order.filled")] == ["live"]


def test_regression_square_off_passes_the_halt_the_rate_and_the_value_limit():
    symbols = [i.symbol for i in InstrumentTable.nse_default()][:12]
    prices = Prices(**{s: 1000.0 for s in symbols})
    ex, portfolio, bus, broker, _ = wire(prices=prices, max_daily_loss=100.0,
                                         max_orders_per_second=None)
    for s in symbols:
        assert ex.execute(buy(s, 100)).status == "FILLED"
    ex.risk = RiskLimits(max_daily_loss=100.0, max_order_value=50_000.0)  # 10/s, Rs 50k cap
    for s in symbols:
        prices.p[s] = 990.0                         # Rs 12,000 down: the halt fires
    portfolio.update_prices(prices.p)
    assert ex.execute(buy(symbols[0], 1)).rule == "halted" and ex.halted
    assert len(events(bus, "risk.halted")) == 1
    results = ex.square_off(reason="daily-loss halt")       # 12 exits at one instant,
    assert [r.status for r in results] == ["FILLED"] * 12   # each worth Rs 99,000
    assert portfolio.get_snapshot()["position_count"] == 0 and ex.squareoff_failures == 0


def test_square_off_that_fails_is_counted_and_published():
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    ex.execute(buy(qty=10))
    prices.p["SBIN"] = None                          # no market: a paper MARKET order can't fill
    results = ex.square_off()
    assert results[0].status == "REJECTED" and ex.squareoff_failures == 1
    assert events(bus, "risk.squareoff_failed")[0]["symbol"] == "SBIN"


def test_regression_buying_power_limits_what_capital_can_buy():
    ex, portfolio, bus, *_ = wire(capital=1000.0, max_position_size=10**6)
    r = ex.execute(buy("RELIANCE", 200))             # Rs 3 lakh with Rs 1,000
    assert r.status == "REJECTED" and r.rule == "buying_power" and "available 1,000.00" in r.message
    assert ex.execute(buy("SBIN", 5)).status == "FILLED"        # Rs 4,500 at 5x MIS: Rs 900
    assert ex.execute(buy("SBIN", 1)).rule == "buying_power"     # Rs 100 left < Rs 180
    assert ex.execute(buy("SBIN", 1, product="CNC")).rule == "buying_power"


def test_working_orders_reserve_buying_power_until_they_end():
    ex, portfolio, bus, broker, _ = wire(capital=10_000.0, max_position_size=10**6)
    r = ex.execute(buy("SBIN", 50, order_type="LIMIT", limit_price=890.0))   # margin 8,900
    assert r.status == "PLACED" and ex.gate.reserved_margin == pytest.approx(8900.0)
    assert ex.execute(buy("SBIN", 10, order_type="LIMIT", limit_price=890.0)).rule == "buying_power"
    assert broker.cancel_order(r.order_id)
    assert ex.gate.reserved_margin == 0
    assert ex.execute(buy("SBIN", 10, order_type="LIMIT", limit_price=890.0)).status == "PLACED"


def test_cnc_sells_need_holdings():
    ex, portfolio, *_ = wire()
    r = ex.execute(sell("SBIN", 10, product="CNC"))
    assert r.rule == "holdings"
    assert ex.execute(buy("SBIN", 10, product="CNC")).status == "FILLED"
    assert ex.execute(sell("SBIN", 10, product="CNC")).status == "FILLED"


def test_regression_the_configured_price_band_is_the_only_one():
    ex, *_ = wire(price_band=0.5)
    r = ex.execute(buy("SBIN", 10, order_type="LIMIT", limit_price=600.0))   # 33% under LTP
    assert r.status == "PLACED"
    ex2, *_ = wire(price_band=0.2)
    assert ex2.execute(buy("SBIN", 10, order_type="LIMIT", limit_price=600.0)).rule == "price_band"


def test_regression_kite_broker_checks_the_grid_and_does_not_raise():
    kite = FakeKite()
    broker = KiteBroker(kite)
    o = broker.place_order("SBIN", "BUY", 1, "LIMIT", 900.03)
    assert o.status == "REJECTED" and "tick grid" in o.message and kite.placed == []
    ex, *_ = wire(broker, mode="live")
    r = ex.execute(buy("SBIN", 1, order_type="LIMIT", limit_price=float("nan")))
    assert r.status == "REJECTED" and r.rule == "price" and kite.placed == []


def test_regression_brokerage_cap_is_per_order_not_per_fill():
    prices = Prices(SBIN=1000.0)
    b = PaperBroker(prices, max_fill_quantity=40)
    o = b.place_order("SBIN", "BUY", 100)            # Rs 1 lakh: 0.03% = Rs 30, capped at 20
    b.on_price("SBIN", 1000.0)
    b.on_price("SBIN", 1000.0)
    assert o.status == "COMPLETE" and len(o.fills) == 3
    assert [f.charges["brokerage"] for f in o.fills] == [1200, 800, 0]    # old: 1200, 1200, 600
    whole = ChargeSchedule().order_charges("BUY", 100 * 100_000, "MIS")
    assert o.charges == {k: v for k, v in whole.items() if k != "total"}
    assert o.fees_paise == whole["total"] == sum(f.fees_paise for f in o.fills)


def test_regression_partial_fill_then_cancel_is_reported_as_such():
    prices = Prices(SBIN=900.0)
    broker = PaperBroker(prices, charges=ZERO_CHARGES, max_fill_quantity=40)
    ex, portfolio, bus, *_ = wire(broker, prices=prices)
    r = ex.execute(buy(qty=100))
    assert r.status == "PLACED" and r.filled_quantity == 40
    assert broker.cancel_order(r.order_id)
    (cancel,) = events(bus, "order.cancelled")
    assert (cancel["filled_quantity"], cancel["cancelled_quantity"]) == (40, 60)
    (fill,) = events(bus, "order.filled")
    assert fill["order_status"] == "PARTIAL" and fill["pending_quantity"] == 60
    assert portfolio.position_quantity("SBIN") == 40 and ex.gate.working_count() == 0


def test_rejection_after_acceptance_is_an_event_and_frees_the_limit():
    prices = Prices(SBIN=900.0)
    double = LiveDouble(prices)
    ex, portfolio, bus, *_ = wire(double, mode="live", prices=prices)
    r = ex.execute(buy(qty=100, order_type="LIMIT", limit_price=880.0))
    assert r.status == "PLACED"
    order = double.inner.get_order(r.order_id)
    double.inner._open["SBIN"].remove(order)
    double.inner.book.finish(order, "REJECTED", "RMS: margin exceeds")
    double.inner.book.flush()
    double.deliver()
    (rej,) = events(bus, "order.rejected")
    assert rej["stage"] == "exchange" and rej["message"] == "RMS: margin exceeds"
    assert ex.execute(buy(qty=100)).status == "PLACED"          # the limit is free again


# ---------------------------------------------------------------- order types, brackets

def test_stop_loss_orders_trigger_on_the_grid_and_gap_fills_at_the_open():
    prices = Prices(SBIN=900.0)
    b = PaperBroker(prices, charges=ZERO_CHARGES)
    sl = b.place_order("SBIN", "SELL", 10, "SL-M", trigger_price=890.0)
    assert sl.status == "TRIGGER PENDING"
    b.on_bar("SBIN", 899.0, 901.0, 891.0, 895.0)
    assert sl.status == "TRIGGER PENDING"
    b.on_bar("SBIN", 885.0, 886.0, 880.0, 882.0)             # gapped below the trigger
    assert sl.status == "COMPLETE" and sl.fills[0].price_paise == 88500
    lim = b.place_order("SBIN", "SELL", 10, "SL", 887.0, trigger_price=888.0)
    b.on_bar("SBIN", 890.0, 890.5, 887.5, 888.0)              # triggers, limit reached in-bar
    assert lim.status == "COMPLETE" and lim.fills[0].price_paise == 88800


def test_bracket_exits_follow_the_entry_and_cancel_each_other():
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    r = ex.execute(buy(qty=10, stop_loss=890.0, target=920.0))
    assert r.status == "FILLED"
    working = {o.order_type: o for o in broker.open_orders("SBIN")}
    assert working["SL-M"].trigger_paise == 89000 and working["LIMIT"].price_paise == 92000
    assert all(o.quantity == 10 and o.side == "SELL" for o in working.values())
    # an exit does not count as a new short: another entry still has room
    assert ex.execute(buy(qty=90)).status == "FILLED"
    broker.on_bar("SBIN", 905.0, 921.0, 904.0, 915.0)         # the target is reached
    assert working["LIMIT"].status == "COMPLETE" and working["SL-M"].status == "CANCELLED"
    assert portfolio.position_quantity("SBIN") == 90 and broker.open_orders("SBIN") == []


def test_bracket_stop_exits_and_target_is_cancelled():
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    ex.execute(sell(qty=10, stop_loss=910.0, target=880.0))
    broker.on_bar("SBIN", 905.0, 912.0, 900.0, 911.0)
    assert portfolio.position_quantity("SBIN") == 0 and broker.open_orders() == []
    fills = events(bus, "order.filled")
    assert [(f["side"], f["price"]) for f in fills] == [("SELL", 900.0), ("BUY", 910.0)]


def test_regression_a_bracket_entry_filled_through_its_stop_exits_at_market():
    """A resting entry that gaps through its own stop: the SL-M would be refused (its
    trigger is already crossed) and the position left unprotected; the stop is hit,
    so the exit goes at market."""
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    r = ex.execute(buy(qty=10, order_type="LIMIT", limit_price=899.0, stop_loss=895.0,
                       target=910.0))
    assert r.status == "PLACED"
    prices.p["SBIN"] = 890.0
    broker.on_bar("SBIN", 890.0, 891.0, 889.0, 890.0)         # gapped below entry and stop
    broker.on_price("SBIN", 890.0)                            # the next price fills the exit
    assert [(f["side"], f["price"]) for f in events(bus, "order.filled")] == \
        [("BUY", 890.0), ("SELL", 890.0)]
    assert portfolio.position_quantity("SBIN") == 0 and broker.open_orders() == []
    assert ex.rejections["trigger"] == 0


def _target(qty, **kw):
    return OrderIntent("SBIN", "BUY", 0.9, "test", target_position=qty, **kw)


def test_regression_target_position_ignores_bracket_stops_and_reversal_cancels_them():
    """A bracket's working stop is protection, not a move towards the target; when the
    position it protects is reversed, it is cancelled (it used to stay working and later
    open a position from flat)."""
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    assert ex.execute(_target(-50, stop_loss=910.0)).status == "FILLED"
    (stop,) = broker.open_orders("SBIN")
    assert (stop.side, stop.order_type, stop.quantity) == ("BUY", "SL-M", 50)
    r = ex.execute(_target(50))                      # from -50 to +50: buy 100, not 50
    assert r.status == "FILLED" and r.quantity == 100
    assert portfolio.position_quantity("SBIN") == 50
    assert stop.status == "CANCELLED" and broker.open_orders("SBIN") == []
    broker.on_bar("SBIN", 905.0, 915.0, 900.0, 912.0)  # through the old stop's trigger
    assert portfolio.position_quantity("SBIN") == 50


def test_regression_a_reversal_with_a_stop_protects_the_new_position_only():
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    ex.execute(sell(qty=50))
    r = ex.execute(_target(50, stop_loss=890.0))     # buys 100: 50 cover, 50 new long
    assert r.status == "FILLED" and r.quantity == 100
    (stop,) = broker.open_orders("SBIN")
    assert (stop.side, stop.order_type, stop.quantity) == ("SELL", "SL-M", 50)
    assert ex.rejections["exit"] == 0
    broker.on_bar("SBIN", 895.0, 896.0, 885.0, 888.0)
    assert portfolio.position_quantity("SBIN") == 0


def test_a_bracket_shrinks_when_part_of_its_position_is_sold_by_another_order():
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    ex.execute(buy(qty=100, stop_loss=890.0, target=920.0))
    ex.execute(sell(qty=40))
    assert sorted(o.quantity for o in broker.open_orders("SBIN")) == [60, 60]
    ex.execute(sell(qty=60))
    assert broker.open_orders("SBIN") == [] and portfolio.position_quantity("SBIN") == 0


def test_regression_a_wide_bar_fills_one_bracket_leg_not_both():
    """Both legs used to fill on one bar that reached the stop and the target: the
    position reversed."""
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    ex.execute(buy(qty=10, stop_loss=890.0, target=920.0))
    broker.on_bar("SBIN", 900.0, 925.0, 885.0, 900.0)
    assert portfolio.position_quantity("SBIN") == 0 and broker.open_orders() == []
    assert [(f["side"], f["price"]) for f in events(bus, "order.filled")] == \
        [("BUY", 900.0), ("SELL", 890.0)]                     # stops first, then cancelled


def test_regression_a_live_bracket_is_protected_once_its_fills_arrive():
    """The entry's fills were counted from the broker before they were delivered and the
    difference cut for good: the live position had no stop."""
    double = LiveDouble(Prices(SBIN=900.0))
    ex, portfolio, bus, broker, _ = wire(double, prices=double.inner.price_source, mode="live")
    ex.execute(buy(qty=10, stop_loss=890.0, target=920.0))
    double.deliver()
    legs = sorted((o.order_type, o.quantity) for o in double.inner.open_orders("SBIN"))
    assert portfolio.position_quantity("SBIN") == 10 and legs == [("LIMIT", 10), ("SL-M", 10)]


def test_regression_a_partly_filled_live_exit_never_sells_more_than_held():
    prices = Prices(SBIN=900.0)
    double = LiveDouble(prices)
    ex, portfolio, bus, broker, _ = wire(double, prices=prices, mode="live")
    inner = double.inner
    ex.execute(buy(qty=100, order_type="LIMIT", limit_price=899.0, stop_loss=890.0,
                   target=920.0))
    double.deliver()
    prices.p["SBIN"] = 899.0
    inner.on_price("SBIN", 899.0)
    double.deliver()
    inner.max_fill_quantity = 25
    prices.p["SBIN"] = 920.0
    inner.on_price("SBIN", 920.0)
    inner.on_price("SBIN", 920.0)                    # the exchange filled 50 of the target
    ev = double._queue.pop(0)                        # we have heard of 25
    for cb in double._listeners:
        cb(*ev)
    (target,) = [o for o in inner.open_orders("SBIN") if o.order_type == "LIMIT"]
    assert target.quantity - target.filled <= 100 - target.filled
    for _ in range(4):
        inner.on_price("SBIN", 920.0)
    double.deliver()
    assert portfolio.position_quantity("SBIN") == 0


def test_regression_finished_brackets_are_forgotten():
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices)
    for _ in range(3):
        prices.p["SBIN"] = 900.0
        ex.execute(buy(qty=10, stop_loss=890.0, target=920.0))
        prices.p["SBIN"] = 889.0
        broker.on_price("SBIN", 889.0)
    assert portfolio.position_quantity("SBIN") == 0 and ex._brackets == {}


def test_bracket_prices_must_be_on_the_grid_and_the_right_side():
    ex, *_ = wire()
    assert ex.execute(buy(stop_loss=905.0)).rule == "bracket"        # above the entry
    assert ex.execute(buy(stop_loss=889.99)).rule == "bracket"       # off the 0.05 grid


# ---------------------------------------------------------------- exactly once

@pytest.mark.parametrize("subscribed", [True, False])
def test_each_fill_reaches_the_portfolio_once(subscribed):
    prices = Prices(SBIN=900.0)
    broker = PaperBroker(prices, charges=ZERO_CHARGES, max_fill_quantity=3)
    bus = EventBus()
    portfolio = PortfolioService(1e6, bus)
    if subscribed:
        bus.subscribe("order.filled", portfolio.on_fill)
    ex = ExecutionService(broker, portfolio, bus, price_source=prices)
    ex.execute(buy(qty=10))
    for _ in range(3):
        broker.on_price("SBIN", 900.0)
    assert portfolio.position_quantity("SBIN") == 10
    assert portfolio.get_totals()["fills"] == 4 == len(events(bus, "order.filled"))


def test_a_fill_the_portfolio_cannot_record_halts_trading(caplog):
    prices = Prices(SBIN=900.0)

    class BrokenBooks(PortfolioService):
        def record_fill(self, fill):
            return "failed"

        def on_fill(self, fill):
            return False

    bus = EventBus()
    ex = ExecutionService(PaperBroker(prices, charges=ZERO_CHARGES), BrokenBooks(1e6, bus), bus,
                          price_source=prices)
    r = ex.execute(buy())
    assert ex.fill_failures == 1 and ex.halted and "could not record" in ex.halted
    assert any(rec.levelname == "ERROR" for rec in caplog.records)
    assert events(bus, "risk.halted")[0]["rule"] == "fill_not_recorded"
    assert r.status == "FILLED" and ex.execute(buy()).rule == "halted"


# ---------------------------------------------------------------- threads

def test_eight_threads_never_take_a_position_past_the_limit():
    prices = Prices(SBIN=900.0)
    broker = SlowBroker(prices, 300)
    ex, portfolio, *_ = wire(broker, prices=prices, max_position_size=300, **NO_RATE)
    results = []

    def worker(k):
        for i in range(1000):
            side = buy if (i // 7 + k) % 2 == 0 else sell
            results.append(ex.execute(side(qty=50)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    filled = [r for r in results if r.status == "FILLED"]
    assert len(results) == 8000 and filled and broker.worst <= 300
    net = sum(r.filled_quantity * (1 if r.side == "BUY" else -1) for r in filled)
    assert portfolio.position_quantity("SBIN") == net == broker.position["SBIN"]
    assert all(r.rule for r in results if r.status == "REJECTED")


# ---------------------------------------------------------------- property

OPS = st.lists(st.one_of(
    st.tuples(st.just("intent"), st.sampled_from(["BUY", "SELL"]), st.integers(1, 120),
              st.sampled_from(["MARKET", "LIMIT"]), st.integers(-4, 4),
              st.sampled_from(["MIS", "CNC"])),
    st.tuples(st.just("move"), st.integers(-6, 6)),
    st.tuples(st.just("cancel"), st.integers(0, 20)),
    st.tuples(st.just("halt")),
), max_size=40)


def run_script(ops, live: bool):
    prices = Prices(SBIN=900.0)
    broker = (LiveDouble(prices, max_fill_quantity=25, charges=ChargeSchedule()) if live else
              PaperBroker(prices, charges=ChargeSchedule(), max_fill_quantity=25))
    ex, portfolio, bus, _, _ = wire(broker, capital=60_000.0, max_position_size=100,
                                    mode="live" if live else "paper", prices=prices,
                                    max_daily_loss=500.0)
    deliver = broker.deliver if live else (lambda: None)
    placed, seen = [], []
    for op in ops:
        if op[0] == "intent":
            _, side, qty, otype, off, product = op
            limit = round(prices.p["SBIN"] + off * 0.05, 2) if otype == "LIMIT" else None
            r = ex.execute(OrderIntent("SBIN", side, 0.9, "p", quantity=qty, order_type=otype,
                                       limit_price=limit, product=product))
            if r.status == "REJECTED":
                assert r.rule, r
            else:
                placed.append(r.order_id)
        elif op[0] == "move":
            prices.p["SBIN"] = round(prices.p["SBIN"] + op[1] * 0.05, 2)
            (broker.inner if live else broker).on_price("SBIN", prices.p["SBIN"])
        elif op[0] == "cancel" and placed:
            broker.cancel_order(placed[op[1] % len(placed)])
        elif op[0] == "halt":
            ex.gate.halt("test halt")
        deliver()
        pos = portfolio.position_quantity("SBIN")
        b, s = ex.gate.working_quantity("SBIN")
        assert pos + b <= 100 and pos - s >= -100
        totals = portfolio.get_totals()
        assert totals["balanced"]
        seen.append((pos, totals["cash_paise"]))
    return portfolio.get_totals(), seen


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_paper_and_a_live_shaped_broker_end_in_the_same_state(ops):
    paper, paper_path = run_script(ops, live=False)
    live, live_path = run_script(ops, live=True)
    assert paper_path == live_path
    assert {k: paper[k] for k in ("cash_paise", "fees_paise", "realized_paise", "fills")} == \
        {k: live[k] for k in ("cash_paise", "fees_paise", "realized_paise", "fills")}


def test_order_book_is_shared_fill_bookkeeping():
    book = OrderBook(ZERO_CHARGES, clock=lambda: 7)
    heard = []
    book.add_listener(lambda *ev: heard.append(ev[0]))
    from hftcore.engines.brokers import BrokerOrder
    o = BrokerOrder("X1", "SBIN", "BUY", 10)
    book.add(o)
    f = book.fill(o, 4, 90000)
    book.finish(o, "CANCELLED")
    book.flush()
    assert heard == ["fill", "cancelled"] and f.ts == 7 and (o.filled, o.pending) == (4, 0)


def test_target_position_sends_the_difference_counting_working_orders():
    ex, portfolio, bus, broker, prices = wire()
    assert ex.execute(OrderIntent("SBIN", target_position=50)).filled_quantity == 50
    r = ex.execute(OrderIntent("SBIN", target_position=-50))       # reverse: sell 100
    assert (r.side, r.quantity, r.status) == ("SELL", 100, "FILLED")
    assert portfolio.position_quantity("SBIN") == -50
    assert ex.execute(OrderIntent("SBIN", target_position=-50)).rule == "hold"
    ex.execute(OrderIntent("SBIN", target_position=0, order_type="LIMIT", limit_price=890.0))
    # the resting buy of 50 counts: flat is already on its way
    assert ex.execute(OrderIntent("SBIN", target_position=0)).rule == "hold"


def test_in_the_spec_wiring_unrealized_pnl_follows_the_market():
    ex, portfolio, bus, broker, prices = wire()
    ex.execute(buy(qty=10))                       # filled at 900
    prices.p["SBIN"] = 910.0                      # nobody calls update_prices
    snap = portfolio.get_snapshot()
    assert snap["unrealized_pnl"] == 100.0 and snap["equity"] == 1e7 + 100.0
    assert portfolio.net_pnl() == 100.0


def test_backtest_with_rs_1000_places_no_order_it_cannot_pay_for(tmp_path, capsys):
    import json
    from pathlib import Path

    from hftcore.cli import main
    data = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles"
    assert main(["backtest", "--data", str(data), "--capital", "1000",
                 "--out", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert m["fills"] == 0 and m["rejected"] > 0
    assert m["rejections_by_rule"] == {"buying_power": m["rejected"]}
    assert "rejections by rule  buying_power" in capsys.readouterr().out


def test_session_steps_while_another_thread_adds_symbols_to_the_bank():
    """step() ran the nogil ingest outside the engine's lock while on_tick grew the same
    bank (it crashed 3 runs in 4 when grow() reallocated). Now the ingest holds the lock
    and the bank grows in chunks that never move; this stress keeps both true."""
    from hftcore import SyntheticFeed
    from hftcore.session import PaperSession
    feed = SyntheticFeed(["RELIANCE", "TCS"], seed=5)
    session = PaperSession(feed, capital=1e6)
    table = session.instruments
    t0 = int(feed.data().ts_ns[0])
    done = threading.Event()

    def grow():
        for k in range(400):
            sym = f"NEWSYM{k}"
            table.add(sym)
            session.engine.on_tick(sym, t0 + k, 100.0, 1.0)
        done.set()

    t = threading.Thread(target=grow)
    t.start()
    for batch in feed.batches(30):
        session.step(batch)
    t.join()
    assert done.is_set() and session.engine.bank.n_symbols >= 402
    assert session.report.ticks == len(feed.data())


def test_regression_a_refused_limits_change_leaves_the_old_limits_in_force():
    """``risk = ...`` that the gate's book refuses (a max_order_value beyond
    Rs 1e15) must change nothing: the gate used to store the new limits first, so
    ``ex.risk`` showed a per-second cap of 1 the book never applied, and every
    later ``risk`` or ``max_position_size`` change raised too."""
    ex, *_ = wire(max_position_size=100, **NO_RATE)
    with pytest.raises(ValueError):
        ex.risk = RiskLimits(max_order_value=1e16, max_orders_per_second=1)
    assert ex.risk == RiskLimits(**NO_RATE)
    ex.max_position_size = 20                              # later changes still apply
    r = ex.execute(buy("INFY", qty=30))
    assert (r.status, r.filled_quantity) == ("FILLED", 20)
    ex.risk = RiskLimits(max_orders_per_second=1)
    assert [ex.execute(buy(qty=5)).status for _ in range(2)] == ["FILLED", "REJECTED"]


def test_max_position_size_set_at_runtime_is_checked_like_the_constructors():
    ex = wire()[0]
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ValueError, match="max_position_size"):
            ex.max_position_size = bad
    assert ex.max_position_size == 100            # a refused value changes nothing
    ex.max_position_size = 300
    assert ex.gate.max_position_size == 300


# ---------------------------------------------------------------- bounded memory (issue 11)

def _routing_state(ex):
    return ex._key_of, ex._order_of, ex._seen


def test_regression_filled_orders_are_forgotten_by_the_routing_maps():
    """Every COMPLETE order left one entry in _key_of and _order_of for good (only
    cancelled and rejected orders were popped): a long backtest grew them by one per order."""
    ex, portfolio, bus, broker, prices = wire(**NO_RATE)
    for i in range(200):
        assert ex.execute(buy() if i % 2 == 0 else sell()).status == "FILLED"
    assert _routing_state(ex) == ({}, {}, {})
    assert len(events(bus, "order.filled")) == 200 and portfolio.position_quantity("SBIN") == 0


def test_orders_filled_later_and_partly_filled_then_cancelled_are_forgotten_too():
    prices = Prices(SBIN=900.0)
    broker = PaperBroker(prices, charges=ZERO_CHARGES, fill_at="next_open", max_fill_quantity=40)
    ex, portfolio, bus, *_ = wire(broker, prices=prices, **NO_RATE)
    done = ex.execute(buy(qty=100))
    for _ in range(3):                                  # 40 + 40 + 20 on the next bars
        broker.on_price("SBIN", 900.0)
    cut = ex.execute(sell(qty=50))
    broker.on_price("SBIN", 900.0)                      # 40 of 50
    assert broker.cancel_order(cut.order_id)
    assert broker.get_order(done.order_id).status == "COMPLETE"
    assert _routing_state(ex) == ({}, {}, {})
    assert portfolio.position_quantity("SBIN") == 60 and ex.gate.working_count() == 0


def test_live_fills_delivered_late_are_applied_once_and_then_forgotten():
    """A live broker's fills arrive after place_order returned, possibly when the order
    is already COMPLETE; one re-sent afterwards is still recognised (not applied twice)."""
    prices = Prices(SBIN=900.0)
    double = LiveDouble(prices, max_fill_quantity=30)
    ex, portfolio, bus, *_ = wire(double, mode="live", prices=prices, **NO_RATE)
    r = ex.execute(buy(qty=90))
    assert ex._key_of                                   # working: still routed
    for _ in range(2):
        double.inner.on_price("SBIN", 900.0)
    double.deliver()                                    # three fills, the order COMPLETE
    assert _routing_state(ex) == ({}, {}, {})
    order = double.inner.get_order(r.order_id)
    for cb in double._listeners:                        # Kite re-sends the last fill
        cb("fill", order, order.fills[-1])
    assert portfolio.position_quantity("SBIN") == 90 and portfolio.duplicates >= 1
    assert len(events(bus, "order.filled")) == 3 and ex.gate.working_count() == 0
    assert _routing_state(ex) == ({}, {}, {})


def test_bracket_legs_are_forgotten_once_they_end():
    prices = Prices(SBIN=900.0)
    ex, portfolio, bus, broker, _ = wire(prices=prices, **NO_RATE)
    for i in range(6):
        prices.p["SBIN"] = 900.0
        ex.execute(buy(qty=10, stop_loss=890.0, target=920.0))
        exit_at = 921.0 if i % 2 else 889.0             # one leg fills, the other is cancelled
        prices.p["SBIN"] = exit_at
        broker.on_price("SBIN", exit_at)
    assert portfolio.position_quantity("SBIN") == 0 and ex._brackets == {}
    assert _routing_state(ex) == ({}, {}, {}) and ex._exit_of == {}


def test_a_fill_delivered_after_the_orders_newest_still_finds_its_order():
    """Forgetting a final order must not lose a fill that arrives late and out of order:
    the key comes from the order's tag, the gate releases the order, the books take it."""
    prices = Prices(SBIN=900.0)
    double = LiveDouble(prices, max_fill_quantity=30)
    ex, portfolio, bus, *_ = wire(double, mode="live", prices=prices, **NO_RATE)
    ex.execute(buy(qty=60))
    double.inner.on_price("SBIN", 900.0)
    double.inner.on_price("SBIN", 900.0)
    first, second = double._queue
    double._queue[:] = [second, first]                  # the newest fill arrives first
    double.deliver()
    assert ex.gate.working_count() == 0 and portfolio.position_quantity("SBIN") == 60
    assert [e["filled_quantity"] for e in events(bus, "order.filled")] == [60, 30]
    assert _routing_state(ex) == ({}, {}, {})
    assert ex.execute(buy(qty=40)).status == "PLACED"   # the limit counts 60 held, 0 working
