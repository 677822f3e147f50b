"""The spec's test suite: every documented behaviour of the six services.

Runs under pytest, or directly: ``python tests/test_services_v3.py``.
"""
import json
import logging
import sys
import threading

import pytest

from hftcore import (COMPILED, InstrumentTable, MarketDataEngine, OrderIntent, OrderResult,
                     PaperBroker, StrategyEngineV3, SyntheticFeed, ZERO_CHARGES)
from hftcore.services import (DashboardFeed, EventBus, ExecutionService, MarketDataService,
                              PortfolioService, RiskLimits, StrategyService)
from hftcore.session import PaperSession

SYMBOLS = ["RELIANCE", "TCS", "INFY"]


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def world():
    """A replayed synthetic session: instruments, feed (played to the end),
    engine with candles, and all six services wired as in the spec."""
    instruments = InstrumentTable.nse_default()
    feed = SyntheticFeed(SYMBOLS, instruments=instruments, seed=3)
    mde = MarketDataEngine(instruments)
    for batch in feed.batches(300):
        mde.ingest(batch)
    bus = EventBus()
    mds = MarketDataService(feed, mde, cache_ttl_seconds=0)
    strategy_svc = StrategyService(StrategyEngineV3(), mds, bus)
    portfolio = PortfolioService(100000.0, bus)
    bus.subscribe("order.filled", portfolio.on_fill)
    broker = PaperBroker(feed, instruments, charges=ZERO_CHARGES)
    exec_svc = ExecutionService(broker, portfolio, bus, mode="paper", max_position_size=100)
    feed_ = DashboardFeed(bus)
    return dict(instruments=instruments, feed=feed, mde=mde, bus=bus, mds=mds,
                strategy_svc=strategy_svc, portfolio=portfolio, broker=broker,
                exec_svc=exec_svc, dashboard=feed_)


def buy(symbol="RELIANCE", qty=10, **kw):
    return OrderIntent(symbol, "BUY", 0.9, "test", quantity=qty, **kw)


def sell(symbol="RELIANCE", qty=10, **kw):
    return OrderIntent(symbol, "SELL", 0.9, "test", quantity=qty, **kw)


def test_compiled_core_is_loaded():
    assert COMPILED is True


# ---------------------------------------------------------------- spec snippets

QUICK_START = '''
# 1. Initialize EventBus
bus = EventBus()

# 2. Initialize MarketDataService
mds = MarketDataService(broker_feed, mde)

# 3. Initialize StrategyService
strategy_svc = StrategyService(strategy_engine, mds, bus)

# 4. Initialize PortfolioService
portfolio = PortfolioService(100000.0, bus)
bus.subscribe("order.filled", portfolio.on_fill)

# 5. Initialize ExecutionService
exec_svc = ExecutionService(broker, portfolio, bus, mode="paper")

# 6. Initialize DashboardFeed
feed = DashboardFeed(bus)
'''

TRADING_LOOP = '''
# Run strategy for each symbol
for symbol in symbols:
    intent = strategy_svc.run_symbol(symbol)

    # Execute if actionable
    if intent.action in ("BUY", "SELL") and intent.confidence > 0.5:
        result = exec_svc.execute(intent)

# Get dashboard state
snapshot = feed.get_snapshot()
'''


def test_spec_quick_start_and_trading_loop_run_unchanged(world):
    ns = {}
    exec("from hftcore.services import (EventBus, MarketDataService, StrategyService, "
         "ExecutionService, PortfolioService, DashboardFeed)", ns)
    ns.update(broker_feed=world["feed"], mde=world["mde"], strategy_engine=StrategyEngineV3(),
              broker=world["broker"], symbols=SYMBOLS)
    exec(QUICK_START, ns)
    exec(TRADING_LOOP, ns)
    snap = ns["snapshot"]
    assert set(snap) == {"signals", "orders", "positions", "portfolio", "system"}
    assert len(snap["signals"]) >= len(SYMBOLS)          # at least the fused signal per symbol
    json.dumps(snap)


# ---------------------------------------------------------------- EventBus

def test_eventbus_api_from_the_spec():
    bus = EventBus(buffer_size=1000)
    got = []
    bus.subscribe("signals.fused", lambda event: got.append(event["payload"]))
    bus.publish("signals.fused", {"symbol": "RELIANCE", "action": "BUY", "confidence": 0.85})
    recent = bus.get_recent_events(event_type="signals.fused", limit=10)
    assert got == [{"symbol": "RELIANCE", "action": "BUY", "confidence": 0.85}]
    assert len(recent) == 1 and recent[0]["payload"]["action"] == "BUY"


def test_eventbus_rejects_bad_buffer_size():
    for bad in (-1, 1.5, "10", None):
        with pytest.raises(ValueError):
            EventBus(buffer_size=bad)


# ---------------------------------------------------------------- MarketDataService

def test_get_ltp_returns_the_feed_price(world):
    assert world["mds"].get_ltp("RELIANCE") == world["feed"].get_ltp("RELIANCE") > 0


def test_get_ltp_is_cached_for_the_ttl():
    class Feed:
        calls = 0
        def get_ltp(self, s):
            Feed.calls += 1
            return 100.0 + Feed.calls
    now = [0.0]
    mds = MarketDataService(Feed(), MarketDataEngine(), cache_ttl_seconds=1.0, clock=lambda: now[0])
    assert mds.get_ltp("RELIANCE") == 101.0
    now[0] = 0.9
    assert mds.get_ltp("RELIANCE") == 101.0 and Feed.calls == 1
    now[0] = 1.0
    assert mds.get_ltp("RELIANCE") == 102.0 and mds.cache_hits == 1


def test_get_bundle_has_exactly_the_documented_keys(world):
    b = world["mds"].get_bundle("RELIANCE", "5m")
    assert list(b) == ["ema20", "ema50", "rsi", "atr", "vwap", "slope", "trend_signal"]
    assert all(isinstance(b[k], float) for k in ("ema20", "ema50", "rsi", "atr", "vwap", "slope"))
    assert 0 <= b["rsi"] <= 100 and b["atr"] > 0
    assert b["trend_signal"] in ("bullish", "bearish", "neutral")


@pytest.mark.parametrize("path,expected", [
    (lambda i: 1000 + 0.5 * i, "bullish"),                                  # steady rise
    (lambda i: 1000 - 0.5 * i, "bearish"),                                  # steady fall
    (lambda i: 1000.0, "neutral"),                                          # flat
    (lambda i: 1000 + 0.5 * min(i, 330) - max(0, i - 330), "neutral"),      # EMAs up, slope down
    (lambda i: 1000 - 0.5 * min(i, 330) + max(0, i - 330), "neutral"),      # EMAs down, slope up
])
def test_trend_signal_on_known_price_paths(path, expected):
    """One day of 1-minute ticks along a known path; the trend the spec defines
    (EMA20 vs EMA50 and the slope) is known in advance."""
    mde = MarketDataEngine()
    t0 = 1_795_664_700 * 10**9                      # 09:15 IST
    for i in range(375):
        mde.on_tick("TCS", t0 + i * 60 * 10**9, path(i), 100)
    b = MarketDataService(SyntheticFeed(["TCS"]), mde).get_bundle("TCS", "5m")
    assert b["trend_signal"] == expected


def test_get_history_returns_candles_oldest_first(world):
    h = world["mds"].get_history("RELIANCE", "5m", n=100)
    assert len(h) == 74          # 375 minutes -> 75 candles; the last is still forming
    assert set(h[0]) == {"date", "open", "high", "low", "close", "volume"}
    assert h[0]["date"] < h[-1]["date"]
    assert all(c["low"] <= min(c["open"], c["close"]) <= max(c["open"], c["close"]) <= c["high"]
               for c in h)


def test_market_data_errors_give_none_or_empty_and_a_warning(world, caplog):
    mds = world["mds"]
    assert mds.get_ltp("NOSUCH") is None                    # unknown symbols: plainly empty
    assert mds.get_history("NOSUCH", "5m", 10) == []
    bad_arguments = [(lambda: mds.get_ltp(None), None, "None"),
                     (lambda: mds.get_bundle("NOSUCH", "5m"), None, "NOSUCH"),
                     (lambda: mds.get_bundle("RELIANCE", "7q"), None, "7q"),
                     (lambda: mds.get_bundle(123, "5m"), None, "123"),
                     (lambda: mds.get_history("RELIANCE", "5m", -1), [], "-1")]
    for call, answer, named in bad_arguments:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert call() == answer
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and named in warned[0]


def test_feed_that_raises_is_contained(caplog):
    class Broken:
        def get_ltp(self, s):
            raise ConnectionError("Kite is down")
    mds = MarketDataService(Broken(), MarketDataEngine())
    with caplog.at_level(logging.WARNING):
        assert mds.get_ltp("RELIANCE") is None
    assert "Kite is down" in caplog.text


def test_market_data_service_rejects_bad_construction():
    with pytest.raises(ValueError):
        MarketDataService(object(), MarketDataEngine())
    with pytest.raises(ValueError):
        MarketDataService(SyntheticFeed(), MarketDataEngine(), cache_ttl_seconds=-1)


def test_tick_ingest_path_feeds_the_compiled_engine():
    mde = MarketDataEngine()
    mds = MarketDataService(SyntheticFeed(), mde)
    t0 = 1_795_664_700 * 10**9
    for k in range(60 * 60):
        mds.on_tick("SBIN", t0 + k * 10**9, 900.0 + (k % 50) * 0.05, 10)
    assert len(mds.get_history("SBIN", "1m", 1000)) == 59
    assert mds.get_bundle("SBIN", "1m")["ema50"] is not None
    assert mds.on_tick("NOSUCH", t0, 1.0, 1) == -1


# ---------------------------------------------------------------- StrategyService

def test_run_symbol_returns_an_order_intent(world):
    intent = world["strategy_svc"].run_symbol("RELIANCE", ts=None)
    assert isinstance(intent, OrderIntent)
    assert intent.action in ("BUY", "SELL", "HOLD") and 0.0 <= intent.confidence <= 1.0
    assert intent.reason and intent.symbol == "RELIANCE"
    assert set(intent.metadata["indicators"]) == {"5m", "15m"}
    assert isinstance(intent.metadata["signals"], list)
    assert intent.quantity == (10 if intent.action != "HOLD" else 0)


def test_run_symbol_publishes_raw_and_fused_signals(world):
    bus = world["bus"]
    intent = world["strategy_svc"].run_symbol("TCS")
    raw = bus.get_recent_events("signals.raw")
    fused = bus.get_recent_events("signals.fused")
    assert len(raw) == len(intent.metadata["signals"]) >= 1
    assert {e["payload"]["timeframe"] for e in raw} <= {"5m", "15m"}
    assert len(fused) == 1 and fused[0]["payload"]["action"] == intent.action


def test_run_symbol_without_data_is_a_hold_not_a_crash(world):
    svc = world["strategy_svc"]
    for bad in ("NOSUCH", None, "", 42):
        intent = svc.run_symbol(bad)
        assert intent.action == "HOLD" and intent.confidence == 0.0


def test_fusion_rule():
    from hftcore.orders import Signal
    eng = StrategyEngineV3()
    s = lambda st, tf, a, c: Signal(st, "X", tf, a, c)   # noqa: E731
    # agreeing views: weighted conviction
    a, c, _ = eng.fuse([s("ema_trend", "5m", "BUY", 0.8), s("rsi_reversion", "5m", "BUY", 0.4)],
                       "5m", "15m")
    assert a == "BUY" and c == pytest.approx(0.6)
    # opposing views cancel
    a, c, _ = eng.fuse([s("ema_trend", "5m", "BUY", 0.5), s("rsi_reversion", "5m", "SELL", 0.5)],
                       "5m", "15m")
    assert a == "HOLD"
    # the secondary timeframe vetoes
    a, c, r = eng.fuse([s("ema_trend", "5m", "BUY", 0.9), s("ema_trend", "15m", "SELL", 0.5)],
                       "5m", "15m")
    assert a == "HOLD" and "disagree" in r
    # the primary timeframe weighs double
    a, c, _ = eng.fuse([s("ema_trend", "5m", "BUY", 0.6), s("ema_trend", "15m", "BUY", 0.3)],
                       "5m", "15m")
    assert c == pytest.approx((2 * 0.6 + 0.3) / 3)


def test_user_strategies_plug_in(world):
    class AlwaysBuy:
        name = "always_buy"
        def evaluate(self, symbol, timeframe, bundle, ltp):
            from hftcore import Signal
            return Signal(self.name, symbol, timeframe, "BUY", 1.0, "because")
    svc = StrategyService(StrategyEngineV3([AlwaysBuy()], quantity=5), world["mds"], world["bus"])
    intent = svc.run_symbol("INFY")
    assert intent.action == "BUY" and intent.confidence == 1.0 and intent.quantity == 5


def test_a_failing_strategy_is_skipped(world, caplog):
    class Broken:
        name = "broken"
        def evaluate(self, *a):
            raise RuntimeError("bug")
    eng = StrategyEngineV3()
    eng.register(Broken())
    svc = StrategyService(eng, world["mds"], world["bus"])
    with caplog.at_level(logging.ERROR):
        intent = svc.run_symbol("INFY")
    assert isinstance(intent, OrderIntent) and "bug" in caplog.text


# ---------------------------------------------------------------- ExecutionService

def test_execute_fills_and_publishes_order_filled(world):
    result = world["exec_svc"].execute(buy(qty=10))
    assert isinstance(result, OrderResult)
    assert result.status == "FILLED" and result.order_id
    assert result.avg_price == world["feed"].get_ltp("RELIANCE") and result.message
    ev = world["bus"].get_recent_events("order.filled")
    assert len(ev) == 1
    p = ev[0]["payload"]
    assert {"fill_id", "order_id", "symbol", "side", "quantity", "price", "fees"} <= set(p)
    assert world["portfolio"].get_position("RELIANCE")["quantity"] == 10


def test_position_never_exceeds_max_position_size(world):
    ex = world["exec_svc"]
    assert ex.execute(buy(qty=70)).status == "FILLED"
    r = ex.execute(buy(qty=70))
    assert r.status == "FILLED" and r.quantity == 30 and "sized down" in r.message
    r = ex.execute(buy(qty=1))
    assert r.status == "REJECTED" and "max_position_size" in r.message
    assert ex.execute(sell(qty=250)).quantity == 200          # from +100 to -100
    assert world["portfolio"].get_position("RELIANCE")["quantity"] == -100


@pytest.mark.parametrize("intent,why", [
    (None, "invalid intent"),
    (OrderIntent("RELIANCE", "HOLD", 1.0, quantity=10), "HOLD"),
    (OrderIntent("RELIANCE", "SHORT", 1.0, quantity=10), "action"),
    (OrderIntent("NOSUCH", "BUY", 1.0, quantity=10), "unknown symbol"),
    (OrderIntent("", "BUY", 1.0, quantity=10), "invalid symbol"),
    (OrderIntent("RELIANCE", "BUY", 1.0, quantity=0), "quantity"),
    (OrderIntent("RELIANCE", "BUY", 1.0, quantity=-5), "quantity"),
    (OrderIntent("RELIANCE", "BUY", 1.0, quantity=2.5), "quantity"),
    (OrderIntent("RELIANCE", "BUY", 1.0, quantity=5, order_type="LIMIT", limit_price=1545.23),
     "tick grid"),
    (OrderIntent("RELIANCE", "BUY", 1.0, quantity=5, order_type="STOP"), "order_type"),
])
def test_invalid_intents_are_rejected_with_the_reason(world, intent, why):
    r = world["exec_svc"].execute(intent)
    assert r.status == "REJECTED" and why in r.message
    assert world["bus"].get_recent_events("order.filled") == []


def test_hold_is_not_sent_and_not_published(world):
    world["exec_svc"].execute(OrderIntent("RELIANCE", "HOLD", 1.0, quantity=10))
    assert world["bus"].get_recent_events("order.*") == []


def test_limit_orders_rest_then_fill_when_price_crosses(world):
    ltp = world["feed"].get_ltp("INFY")
    inst = world["instruments"].get("INFY")
    limit = inst.snap(ltp * 0.99, -1) / 100
    r = world["exec_svc"].execute(buy("INFY", 5, order_type="LIMIT", limit_price=limit))
    assert r.status == "PLACED" and world["bus"].get_recent_events("order.placed")
    fills = world["broker"].on_price("INFY", limit)
    assert len(fills) == 1 and fills[0].price_paise == round(limit * 100)
    assert world["portfolio"].get_position("INFY")["quantity"] == 5   # via order.filled


def test_execution_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        ExecutionService(PaperBroker(SyntheticFeed()), PortfolioService(), EventBus(), mode="yolo")


def test_risk_limits(world):
    ex = ExecutionService(world["broker"], world["portfolio"], world["bus"],
                          risk=RiskLimits(max_order_value=10_000, max_orders_per_second=2))
    r = ex.execute(buy("TCS", 10))
    assert r.status == "REJECTED" and "max_order_value" in r.message
    assert ex.execute(buy("INFY", 1)).status == "FILLED"
    assert ex.execute(buy("INFY", 1)).status == "FILLED"
    r = ex.execute(buy("INFY", 1))
    assert r.status == "REJECTED" and "max_orders_per_second" in r.message


def test_limit_price_outside_the_band_is_rejected_before_the_broker(world):
    ltp = world["feed"].get_ltp("INFY")
    inst = world["instruments"].get("INFY")
    far = inst.snap(ltp * 1.5) / 100
    r = world["exec_svc"].execute(buy("INFY", 1, order_type="LIMIT", limit_price=far))
    assert r.status == "REJECTED" and "price_band" in r.message


def test_daily_loss_limit_halts_trading(world):
    bus = world["bus"]
    ex = ExecutionService(world["broker"], world["portfolio"], bus,
                          risk=RiskLimits(max_daily_loss=1.0, max_orders_per_second=None))
    world["portfolio"].on_fill({"fill_id": "f1", "symbol": "SBIN", "side": "BUY", "quantity": 10,
                                "price": 1000.0, "fees": 5.0})
    r = ex.execute(buy("INFY", 1))                # checks the loss before sending
    assert r.status == "REJECTED" and "halted" in r.message
    assert ex.halted and len(bus.get_recent_events("risk.halted")) == 1
    r = ex.execute(buy("INFY", 1))
    assert r.status == "REJECTED" and "halted" in r.message
    ex.reset_halt()
    assert ex.halted is None


# ---------------------------------------------------------------- PortfolioService

FILL = {"fill_id": "F1", "order_id": "O1", "symbol": "RELIANCE", "side": "BUY", "quantity": 10,
        "price": 2500.0, "fees": 0.0}


def test_snapshot_has_exactly_the_documented_keys():
    p = PortfolioService(initial_capital=100000.0, event_bus=EventBus())
    assert set(p.get_snapshot()) == {"positions", "cash", "equity", "realized_pnl",
                                     "unrealized_pnl", "exposure", "position_count"}


def test_fills_update_positions_and_pnl():
    bus = EventBus()
    p = PortfolioService(100000.0, bus)
    bus.subscribe("order.filled", p.on_fill)
    bus.publish("order.filled", FILL)
    p.update_price("RELIANCE", 2510.0)
    snap = p.get_snapshot()
    assert snap["cash"] == 75000.0 and snap["equity"] == 100100.0
    assert snap["unrealized_pnl"] == 100.0 and snap["exposure"] == 25100.0
    assert snap["position_count"] == 1
    bus.publish("order.filled", {**FILL, "fill_id": "F2", "side": "SELL", "quantity": 4,
                                 "price": 2520.0, "fees": 1.5})
    pos = p.get_position("RELIANCE")
    assert pos["quantity"] == 6 and pos["realized_pnl"] == 80.0 and pos["fees"] == 1.5
    assert p.get_totals()["balanced"]
    assert bus.get_recent_events("portfolio.updated")[-1]["payload"] == p.get_snapshot()


def test_duplicate_fills_are_counted_once():
    p = PortfolioService(100000.0)
    assert p.on_fill(FILL) is True
    assert p.on_fill(dict(FILL)) is False
    assert p.get_position("RELIANCE")["quantity"] == 10 and p.duplicates == 1


def test_duplicate_detection_window_is_bounded():
    p = PortfolioService(1e7, dedup_window=3)
    for i in range(5):
        assert p.on_fill({**FILL, "fill_id": f"F{i}", "quantity": 1})
    assert p.on_fill({**FILL, "fill_id": "F4", "quantity": 1}) is False      # recent: re-send
    assert p.on_fill({**FILL, "fill_id": "F0", "quantity": 1}) is True       # aged out


@pytest.mark.parametrize("bad", [None, 42, {}, {**FILL, "side": "HOLD"}, {**FILL, "quantity": 0},
                                 {**FILL, "quantity": -3}, {**FILL, "price": float("nan")},
                                 {**FILL, "price": -1}, {**FILL, "symbol": ""},
                                 {**FILL, "fees": -1}, {**FILL, "quantity": "ten"}])
def test_malformed_fills_are_ignored_with_a_warning(bad, caplog):
    p = PortfolioService(100000.0)
    with caplog.at_level(logging.WARNING):
        assert p.on_fill(bad) is False
    assert p.get_snapshot()["cash"] == 100000.0 and p.invalid == 1


def test_get_position_unknown_is_none():
    assert PortfolioService().get_position("RELIANCE") is None
    assert PortfolioService().get_position(None) is None


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "100000", None, True])
def test_portfolio_rejects_bad_initial_capital(bad):
    with pytest.raises(ValueError):
        PortfolioService(bad)


def test_checkpoint_and_restore(tmp_path):
    p = PortfolioService(100000.0, checkpoint_dir=tmp_path, fsync=False)
    p.on_fill(FILL)
    p.checkpoint()
    p.on_fill({**FILL, "fill_id": "F2", "side": "SELL", "quantity": 3, "price": 2600.0})
    p.close()
    q = PortfolioService(100000.0, checkpoint_dir=tmp_path)
    assert q.get_position("RELIANCE") == p.get_position("RELIANCE")
    assert q.get_totals() == p.get_totals()
    assert q.on_fill(FILL) is False                 # fill ids survive the restart


def test_crash_between_checkpoints_loses_no_fill(tmp_path):
    p = PortfolioService(100000.0, checkpoint_dir=tmp_path, checkpoint_every=0)
    p.on_fill(FILL)
    p.checkpoint()
    p.on_fill({**FILL, "fill_id": "F2", "quantity": 5})
    p._release_lock()        # no close(): the process "dies" (the OS closes its files)
    q = PortfolioService(100000.0, checkpoint_dir=tmp_path)
    assert q.get_position("RELIANCE")["quantity"] == 15


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    p = PortfolioService(100000.0, checkpoint_dir=tmp_path, checkpoint_every=0, fsync=False)
    p.on_fill(FILL)
    p.checkpoint()
    p.on_fill({**FILL, "fill_id": "F2", "quantity": 5})
    newest = p.checkpoint()
    newest.write_bytes(newest.read_bytes()[:50])            # torn write
    p._release_lock()                                       # the process dies
    with caplog.at_level(logging.WARNING):
        q = PortfolioService(100000.0, checkpoint_dir=tmp_path)
    assert "unreadable" in caplog.text
    assert q.get_position("RELIANCE")["quantity"] == 15     # older checkpoint + journal


def test_only_unreadable_checkpoints_is_a_clear_error(tmp_path):
    (tmp_path / "portfolio-000000000001.json").write_text("{garbage")
    with pytest.raises(ValueError, match="unreadable"):
        PortfolioService(100000.0, checkpoint_dir=tmp_path)


# ---------------------------------------------------------------- DashboardFeed

def test_dashboard_snapshot_aggregates_everything_and_is_json(world):
    ex, dash = world["exec_svc"], world["dashboard"]
    world["strategy_svc"].run_symbol("RELIANCE")
    ex.execute(buy(qty=5))
    ex.execute(buy("NOSUCH"))
    dash.update_system_state("status", "running")
    snap = dash.get_snapshot()
    assert set(snap) == {"signals", "orders", "positions", "portfolio", "system"}
    assert snap["signals"] and {o["type"] for o in snap["orders"]} == {"order.filled",
                                                                       "order.rejected"}
    assert snap["positions"][0]["symbol"] == "RELIANCE" and snap["portfolio"]["position_count"] == 1
    assert snap["system"]["status"] == "running"
    json.loads(json.dumps(snap))


def test_dashboard_lists_are_bounded():
    bus = EventBus()
    dash = DashboardFeed(bus, max_signals=5, max_orders=3)
    for i in range(50):
        bus.publish("signals.raw", {"i": i})
        bus.publish("order.rejected", {"i": i})
    snap = dash.get_snapshot()
    assert [s["i"] for s in snap["signals"]] == list(range(45, 50))
    assert len(snap["orders"]) == 3


def test_dashboard_makes_odd_payloads_json_safe():
    import numpy as np
    bus = EventBus()
    dash = DashboardFeed(bus)
    bus.publish("signals.raw", {"x": float("nan"), "y": np.float64(1.5), "z": np.int32(3),
                                "w": (1, 2), "obj": object()})
    bus.publish("signals.raw", "not a dict")
    dash.update_system_state(None, 1)
    json.dumps(dash.get_snapshot())


def test_dashboard_rejects_bad_limits():
    with pytest.raises(ValueError):
        DashboardFeed(EventBus(), max_signals=0)


# ---------------------------------------------------------------- threading

def test_portfolio_is_thread_safe_with_exact_totals():
    """8 threads x 2,000 fills at once (plus snapshot readers): exact totals."""
    p = PortfolioService(1_000_000.0, EventBus())
    errors = []

    def worker(k):
        try:
            for i in range(2000):
                side = "BUY" if i % 2 == 0 else "SELL"
                p.on_fill({"fill_id": f"{k}-{i}", "symbol": SYMBOLS[i % 3], "side": side,
                           "quantity": 1 + i % 7, "price": 100.05 + (i % 11) * 0.05,
                           "fees": 0.01})
                if i % 100 == 0:
                    p.get_snapshot()
        except Exception as exc:          # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    totals = p.get_totals()
    assert totals["fills"] == 16_000 and totals["fees_paise"] == 16_000 and totals["balanced"]
    # the same fills applied in one thread give the same positions
    q = PortfolioService(1_000_000.0)
    for k in range(8):
        for i in range(2000):
            q.on_fill({"fill_id": f"{k}-{i}", "symbol": SYMBOLS[i % 3],
                       "side": "BUY" if i % 2 == 0 else "SELL", "quantity": 1 + i % 7,
                       "price": 100.05 + (i % 11) * 0.05, "fees": 0.01})
    for s in SYMBOLS:
        assert p.get_position(s)["quantity"] == q.get_position(s)["quantity"]
    assert p.get_totals()["cash_paise"] == q.get_totals()["cash_paise"]


def test_services_hammered_by_threads_add_up(world):
    """Strategy + execution + market data + dashboard from 6 threads at once."""
    ex, strat, mds, dash, bus = (world[k] for k in ("exec_svc", "strategy_svc", "mds",
                                                    "dashboard", "bus"))
    ex.risk = RiskLimits(max_orders_per_second=None, max_orders_per_minute=None,
                         max_orders_per_day=None, max_order_value=None)
    ex.max_position_size = 10**6
    results, errors = [], []

    def worker(k):
        try:
            for i in range(150):
                strat.run_symbol(SYMBOLS[i % 3])
                mds.get_ltp(SYMBOLS[i % 3])
                results.append(ex.execute(buy(SYMBOLS[(i + k) % 3], 1) if i % 2 else
                                          sell(SYMBOLS[(i + k) % 3], 1)))
                dash.get_snapshot()
        except Exception as exc:          # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 900
    assert [r.message for r in results if r.status != "FILLED"] == []
    assert len({r.order_id for r in results}) == 900
    totals = world["portfolio"].get_totals()
    assert totals["fills"] == 900 and totals["balanced"]
    assert sum(world["portfolio"].get_position(s)["quantity"] for s in SYMBOLS) == 0
    assert dash.get_snapshot()["system"]["events"]["order.filled"] == 900


# ---------------------------------------------------------------- the session (demo path)

def test_full_paper_session_runs_and_balances():
    feed = SyntheticFeed(["RELIANCE", "SBIN"], seed=7)
    s = PaperSession(feed, capital=500_000.0)
    events = []
    s.bus.subscribe("order.filled", events.append)  # all of them, not the history ring
    report = s.run()
    totals = s.portfolio.get_totals()
    assert report.ticks == len(feed.data()) and report.decisions > 0
    assert totals["balanced"] and s.portfolio.get_snapshot()["position_count"] == 0
    assert totals["fills"] == len(events) == len({e["payload"]["fill_id"] for e in events}) > 0
    assert "net PnL" in s.summary()


def test_replays_are_deterministic():
    def run():
        s = PaperSession(SyntheticFeed(["TCS", "INFY"], seed=11), capital=500_000.0)
        fills = []
        s.bus.subscribe("order.filled", lambda e: fills.append(
            (e["payload"]["symbol"], e["payload"]["side"], e["payload"]["quantity"],
             e["payload"]["price_paise"], e["payload"]["fees_paise"], e["payload"]["ts"])))
        s.run()
        return fills, s.portfolio.get_totals()
    (first, totals), (second, totals2) = run(), run()
    assert len(first) == totals["fills"] > 0        # every fill, not the bus's history ring
    assert first == second and totals == totals2


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
