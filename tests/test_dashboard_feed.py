"""DashboardFeed beyond the spec's snapshot: the whole-session equity history on market
time, the order lifecycle, the portfolio seed, charges and net PnL, staleness, banners."""
import itertools
import json

import pytest

from hftcore.services import DashboardFeed, EventBus, PortfolioService
from hftcore.services.dashboard_feed import GAP_S, EquityHistory

NS = 1_000_000_000
T0 = 1_764_128_700            # 2026-11-26 09:15:00 IST


def test_equity_history_is_bounded_and_keeps_exact_extremes():
    h = EquityHistory(max_points=64)
    values = [100_000 + ((i * 7919) % 1000) - i for i in range(20_000)]
    for i, v in enumerate(values):
        h.add(T0 + i, float(v))
    pts = h.points()
    assert len(pts) <= 64 and h.updates == 20_000 and h.generation > 0
    # the buckets cover the whole session, in order, first to last update
    assert pts[0][0] == T0 and pts[-1][1] == T0 + 19_999 and pts[-1][2] == values[-1]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(pts))
    # lows, highs and the drawdown survive the thinning exactly
    assert min(p[3] for p in pts) == min(values) and max(p[4] for p in pts) == max(values)
    peak, worst = values[0], 0
    for v in values:
        peak = max(peak, v)
        worst = max(worst, peak - v)
    assert h.max_drawdown == worst == max(p[5] for p in pts)


def test_equity_history_does_not_merge_across_the_night():
    h = EquityHistory(max_points=16)
    day = 6 * 3600
    for d in range(3):
        for i in range(0, day, 60):
            h.add(T0 + d * 86_400 + i, 1e6 + i)
    pts = h.points()
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(pts)]
    assert sum(g > GAP_S for g in gaps) == 2            # two nights, each between buckets
    assert all(p[1] - p[0] < day for p in pts)          # no bucket spans a night


def test_feed_keeps_the_whole_session_not_the_last_2000_updates():
    bus = EventBus(0)
    feed = DashboardFeed(bus)
    for i in range(10_000):
        bus.publish("portfolio.updated", {"equity": 1e6 + i, "ts": (T0 + i) * NS})
    curve = feed.get_equity_curve()
    assert len(curve) <= 2000
    assert curve[0][0] <= T0 + 10 and curve[-1] == [T0 + 9_999, 1e6 + 9_999]


def test_equity_is_keyed_by_market_time_from_the_clock():
    bus = EventBus(0)
    now = {"ns": (T0 + 3600) * NS}
    feed = DashboardFeed(bus, clock=lambda: now["ns"])
    bus.publish("portfolio.updated", {"equity": 10.0})
    now["ns"] += 60 * NS
    bus.publish("portfolio.updated", {"equity": 11.0})
    assert feed.get_equity_curve() == [[T0 + 3600, 10.0], [T0 + 3660, 11.0]]
    assert feed.get_view()["clock"]["market_ts"] == T0 + 3660


def test_order_lifecycle_rows():
    bus = EventBus(0)
    feed = DashboardFeed(bus)
    base = {"symbol": "SBIN", "side": "BUY", "mode": "paper"}
    bus.publish("order.placed", {**base, "order_id": "A", "quantity": 10, "order_type": "LIMIT",
                                 "price": 800.0, "status": "OPEN", "ts": (T0 + 1) * NS})
    bus.publish("order.filled", {**base, "order_id": "A", "fill_id": "f1", "quantity": 4,
                                 "price": 800.0, "fees": 1.25, "fees_paise": 125,
                                 "ts": (T0 + 2) * NS, "order_quantity": 10,
                                 "filled_quantity": 4, "order_status": "PARTIAL"})
    bus.publish("order.placed", {**base, "order_id": "B", "quantity": 5, "status": "OPEN",
                                 "ts": (T0 + 3) * NS})
    bus.publish("order.cancelled", {**base, "order_id": "B", "quantity": 5, "filled_quantity": 0,
                                    "message": "user", "ts": (T0 + 4) * NS})
    bus.publish("order.rejected", {**base, "order_id": "C", "quantity": 500,
                                   "rule": "max_position", "message": "over 100 units",
                                   "stage": "gate", "ts": (T0 + 5) * NS})
    # a fill without the cumulative fields (an older broker): derived from the fills
    bus.publish("order.filled", {**base, "order_id": "A", "fill_id": "f2", "quantity": 6,
                                 "price": 801.0, "fees": 1.5, "ts": (T0 + 6) * NS})
    rows = {r["order_id"]: r for r in feed.get_view()["orders"]}
    assert [r["order_id"] for r in feed.get_view()["orders"]] == ["C", "B", "A"]
    a = rows["A"]
    assert (a["status"], a["filled_quantity"], a["quantity"], a["fills"]) == ("COMPLETE", 10, 10, 2)
    assert a["avg_price"] == pytest.approx((800 * 4 + 801 * 6) / 10)
    assert a["placed_ts"] == T0 + 1 and a["ts"] == T0 + 6 and a["charges"] == pytest.approx(2.75)
    assert rows["B"]["status"] == "CANCELLED"
    c = rows["C"]
    assert (c["status"], c["rule"], c["message"]) == ("REJECTED", "max_position", "over 100 units")
    banners = feed.get_view()["banners"]
    assert [b["level"] for b in banners] == ["reject"] and "max_position" in banners[0]["text"]


def test_partial_status_while_an_order_is_part_filled():
    bus = EventBus(0)
    feed = DashboardFeed(bus)
    bus.publish("order.placed", {"order_id": "A", "symbol": "X", "side": "SELL", "quantity": 10,
                                 "status": "OPEN", "ts": T0 * NS})
    bus.publish("order.filled", {"order_id": "A", "symbol": "X", "side": "SELL", "quantity": 3,
                                 "price": 10.0, "fees": 0.0, "ts": T0 * NS})
    assert feed.get_view()["orders"][0]["status"] == "PARTIAL"


def test_book_is_bounded():
    bus = EventBus(0)
    feed = DashboardFeed(bus, max_orders=5)
    for i in range(50):
        bus.publish("order.rejected", {"order_id": f"R{i}", "symbol": "X", "side": "BUY",
                                       "quantity": 1, "rule": "rate", "message": "", "ts": NS})
    assert [r["order_id"] for r in feed.get_view(max_orders=100)["orders"]] == \
        [f"R{i}" for i in range(49, 44, -1)]


def test_seeded_portfolio_shows_capital_cash_and_equity_before_any_fill():
    portfolio = PortfolioService(500_000.0)
    feed = DashboardFeed(EventBus(0))
    assert feed.get_view()["portfolio"].get("equity") is None          # nothing yet
    assert feed.update_portfolio({**portfolio.get_snapshot(), **portfolio.get_totals()})
    p = feed.get_view()["portfolio"]
    assert (p["initial_capital"], p["cash"], p["equity"], p["net_pnl"], p["charges"]) == \
        (500_000.0, 500_000.0, 500_000.0, 0.0, 0.0)
    assert feed.get_snapshot()["portfolio"]["equity"] == 500_000.0
    assert feed.get_equity_curve() == []      # no market time yet: no point at 1970
    assert not feed.update_portfolio("nonsense") and not feed.update_portfolio({"cash": 1})


def test_charges_and_net_pnl_match_the_ledger():
    bus = EventBus(0)
    portfolio = PortfolioService(100_000.0, bus)
    bus.subscribe("order.filled", portfolio.on_fill)
    feed = DashboardFeed(bus)
    feed.update_portfolio({**portfolio.get_snapshot(), **portfolio.get_totals()})
    fill = {"symbol": "INFY", "mode": "paper", "ts": T0 * NS}
    bus.publish("order.filled", {**fill, "fill_id": "1", "order_id": "o1", "side": "BUY",
                                 "quantity": 10, "price": 1500.0, "fees": 3.21, "fees_paise": 321})
    bus.publish("order.filled", {**fill, "fill_id": "2", "order_id": "o2", "side": "SELL",
                                 "quantity": 10, "price": 1510.0, "fees": 4.56, "fees_paise": 456})
    totals = portfolio.get_totals()
    snap = feed.get_snapshot()["portfolio"]
    assert snap["charges"] == totals["fees"] == 7.77
    assert snap["net_pnl"] == pytest.approx(totals["net_pnl"]) == pytest.approx(100 - 7.77)
    # with the portfolio attached, closed positions keep their realized PnL and charges
    feed.attach(portfolio=portfolio)
    (infy,) = feed.get_view()["positions"]
    assert (infy["quantity"], infy["realized_pnl"], infy["charges"]) == (0, 100.0, 7.77)
    assert infy["net_pnl"] == pytest.approx(92.23)


def test_staleness_from_tick_times_and_feed_stale_events():
    bus = EventBus(0)
    now = {"ns": (T0 + 100) * NS}
    ticks = {"SBIN": (T0 + 95) * NS, "TCS": (T0 + 10) * NS, "INFY": (T0 + 99) * NS}
    feed = DashboardFeed(bus, clock=lambda: now["ns"], stale_after=30)
    feed.attach(tick_times=lambda: ticks)
    bus.publish("feed.stale", {"symbol": "INFY", "seconds": 5, "reason": "exchange halt"})
    rows = {r["symbol"]: r for r in feed.get_view()["stale"]}
    assert not rows["SBIN"]["stale"] and rows["SBIN"]["age"] == 5
    assert rows["TCS"]["stale"] and rows["TCS"]["reason"] == "no tick for 90s"
    assert rows["INFY"]["stale"] and rows["INFY"]["reason"] == "exchange halt"
    ticks["INFY"] = (T0 + 101) * NS                   # a newer tick clears the flag
    assert not {r["symbol"]: r for r in feed.get_view()["stale"]}["INFY"]["stale"]
    bus.publish("feed.stale", {"symbol": None, "seconds": 12, "reason": "websocket down"})
    assert any(b["level"] == "warn" and "websocket down" in b["text"]
               for b in feed.get_view()["banners"])


def test_halt_banner_and_json_safety():
    bus = EventBus(0)
    feed = DashboardFeed(bus)
    bus.publish("risk.halted", {"reason": "daily loss 5,000 reached", "rule": "max_daily_loss",
                                "net_pnl": float("-inf"), "limit": 5000.0, "ts": T0 * NS})
    bus.publish("risk.squareoff_failed", {"symbol": "SBIN", "quantity": 5, "message": "no LTP"})
    view = feed.get_view()
    assert view["banners"][0]["level"] == "halt" and "max_daily_loss" in view["banners"][0]["text"]
    assert view["banners"][1]["level"] == "error"
    json.dumps(view, allow_nan=False)
    json.dumps(feed.get_snapshot(), allow_nan=False)


def test_version_moves_on_every_change():
    bus = EventBus(0)
    feed = DashboardFeed(bus)
    v = feed.version
    bus.publish("signals.raw", {"symbol": "X"})
    feed.update_system_state("status", "running")
    assert feed.version == v + 2


def test_bad_arguments():
    with pytest.raises(ValueError):
        DashboardFeed(EventBus(0), max_points=3)
    with pytest.raises(ValueError):
        DashboardFeed(EventBus(0), clock=5)
    with pytest.raises(ValueError):
        DashboardFeed(EventBus(0), stale_after=0)
    with pytest.raises(ValueError):
        DashboardFeed(EventBus(0)).attach(portfolio=object())
