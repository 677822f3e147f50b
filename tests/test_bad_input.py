"""Garbage at every public entry point: nothing crashes, each case gets its documented
answer (None / [] / False / HOLD / REJECTED, or ValueError from a constructor), and the
ledger still balances to the paisa afterwards."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from figures import report
from hftcore import (InstrumentTable, MarketDataEngine, OrderIntent, OrderResult, PaperBroker,
                     ReplayFeed, StrategyEngineV3, SyntheticFeed)
from hftcore.services import (DashboardFeed, EventBus, ExecutionService, MarketDataService,
                              PortfolioService, RiskLimits, StrategyService)
from hftcore_ext.candles import CandleBank
from hftcore_ext.indicators import ATR, EMA, RSI, Bundle, Slope
from hftcore_ext.ledger import Ledger

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.binary(max_size=6), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3), st.just(object()),
    st.sampled_from(["RELIANCE", "", "  ", "reliance", "NOSUCH", "5m", "1m", "BUY", "SELL",
                     "HOLD", -1, 0, 10**12, 1e308, -0.0, float("nan"), float("inf")]),
)

CASES = {"n": 0}


def tried(k=1):
    CASES["n"] += k
    report("bad inputs tried", CASES["n"])


@pytest.fixture(scope="module")
def world():
    instruments = InstrumentTable.nse_default()
    feed = SyntheticFeed(["RELIANCE", "TCS"], instruments=instruments, seed=1)
    mde = MarketDataEngine(instruments)
    for b in feed.batches(300):
        mde.ingest(b)
    bus = EventBus()
    mds = MarketDataService(feed, mde, cache_ttl_seconds=0)
    strat = StrategyService(StrategyEngineV3(), mds, bus)
    port = PortfolioService(100000.0, bus)
    bus.subscribe("order.filled", port.on_fill)
    ex = ExecutionService(PaperBroker(feed, instruments), port, bus,
                          risk=RiskLimits(max_orders_per_second=None))
    dash = DashboardFeed(bus)
    return dict(feed=feed, mde=mde, bus=bus, mds=mds, strat=strat, port=port, ex=ex, dash=dash)


fuzz = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@fuzz
@given(junk, junk, junk, junk)
def test_services_answer_garbage_without_crashing(world, a, b, c, d):
    w = world
    before = w["bus"].published
    ev = w["bus"].publish(a, b)
    if isinstance(a, str) and a:                    # any non-empty name is an event type
        assert ev is not None and ev["type"] == a and w["bus"].published == before + 1
    else:
        assert ev is None and w["bus"].published == before
    assert w["bus"].subscribe(a, b) in (True, False)
    assert isinstance(w["bus"].get_recent_events(a, b), list)
    assert w["mds"].get_ltp(a) is None or w["mds"].get_ltp(a) > 0
    assert w["mds"].get_bundle(a, b) is None or isinstance(w["mds"].get_bundle(a, b), dict)
    assert isinstance(w["mds"].get_history(a, b, c), list)
    assert isinstance(w["mds"].on_tick(a, b, c, d), int)
    intent = w["strat"].run_symbol(a, None)
    assert isinstance(intent, OrderIntent) and intent.action in ("BUY", "SELL", "HOLD")
    r = w["ex"].execute(OrderIntent(a, b if b in ("BUY", "SELL", "HOLD") else "BUY", 1.0,
                                    quantity=c,
                                    order_type=d if d in ("MARKET", "LIMIT") else "MARKET",
                                    limit_price=c))
    assert isinstance(r, OrderResult) and r.status in ("FILLED", "REJECTED", "PLACED")
    assert isinstance(w["ex"].execute(a), OrderResult)
    assert w["port"].on_fill(a) in (True, False)
    assert w["port"].on_fill({"fill_id": a, "symbol": b, "side": c, "quantity": d,
                              "price": a, "fees": b}) in (True, False)
    assert w["port"].update_price(a, b) in (True, False)
    assert w["port"].get_position(a) is None or isinstance(w["port"].get_position(a), dict)
    w["dash"].on_event(a)
    w["dash"].update_system_state(a, b)
    assert w["mde"].on_tick(a, b, c, d) in (-1, 0) or w["mde"].on_tick(a, b, c, d) > 0
    tried(16)
    assert w["port"].get_totals()["balanced"]


def test_state_is_intact_after_the_fuzzing(world):
    import json
    totals = world["port"].get_totals()
    assert totals["balanced"]
    json.dumps(world["dash"].get_snapshot())


@given(junk, junk, junk)
def test_constructors_accept_or_raise_value_error(a, b, c):
    bus = EventBus()
    attempts = [
        lambda: EventBus(a), lambda: PortfolioService(a, bus), lambda: DashboardFeed(bus, a, b),
        lambda: MarketDataService(a, b, c), lambda: MarketDataService(SyntheticFeed(),
                                                                      MarketDataEngine(), a),
        lambda: StrategyService(StrategyEngineV3(), MarketDataService(SyntheticFeed(),
                                MarketDataEngine()), bus, a, b),
        lambda: ExecutionService(PaperBroker(SyntheticFeed()), PortfolioService(), bus, a, b),
        lambda: RiskLimits(a, b, c), lambda: StrategyEngineV3(quantity=a),
        lambda: MarketDataEngine(timeframes=(a,)), lambda: SyntheticFeed(a),
        lambda: CandleBank(a), lambda: CandleBank(1, (60,), a), lambda: Ledger(a, b),
        lambda: EMA(a), lambda: RSI(a), lambda: ATR(a), lambda: Slope(a), lambda: Bundle(a),
        lambda: PaperBroker(SyntheticFeed(), slippage_ticks=a),
    ]
    for make in attempts:
        try:
            make()
        except ValueError:
            pass
    tried(len(attempts))


@given(junk, junk, junk, junk)
def test_kernels_drop_garbage_numbers(a, b, c, d):
    def num(x):
        if isinstance(x, float):
            return x
        return float(x) if isinstance(x, int) and abs(x) < 1e300 else 1.0
    def idx(x):
        return int(x) % 5 - 1 if math.isfinite(x) and abs(x) < 1e18 else 0
    bank = CandleBank(2)
    bank.on_tick(0, 1_795_664_700 * 10**9, 100.0, 1)
    bank.on_tick(idx(num(a)), 1_795_664_700 * 10**9 + 1, num(b), num(c))
    for ind in (EMA(3), RSI(3)):
        v = ind.update(num(a))
        assert v != v or math.isfinite(v) or math.isinf(num(a))
    led = Ledger(2, 10**9)
    q = int(num(a)) if math.isfinite(num(a)) and abs(num(a)) < 9e18 else 1
    p = int(num(b)) if math.isfinite(num(b)) and abs(num(b)) < 9e18 else 1
    led.apply_fill(idx(num(c)), q, p, 0)
    assert led.check()
    tried(5)


GOOD_ROWS = ["2024-06-03T09:15:00+05:30,1580.50,1582.30,1580.30,1582.30,5872",
             "2024-06-03T09:16:00+05:30,1582.20,1582.70,1580.00,1580.70,7994",
             "2024-06-03T09:17:00+05:30,1580.70,1581.00,1579.90,1580.10,1200"]


@given(st.lists(st.one_of(st.text(alphabet=",0123456789.-:TZ abcSBINRELIANCE\t", max_size=40),
                          st.sampled_from(GOOD_ROWS)), max_size=20))
@example(GOOD_ROWS[:2] + ["2024-06-03T09:18:00+05:30,abc,1,1,1,1", ",,,"] + GOOD_ROWS[2:])
def test_replay_feed_survives_malformed_csv(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("csv")
    f = folder / "RELIANCE.csv"
    f.write_text("date,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    try:
        feed = ReplayFeed(f)
    except ValueError:
        tried()
        return
    d = feed.data()                                 # only good rows got in
    assert 1 <= len(d) and len(d) + feed.rows_skipped <= len(rows)
    for column in (d.open, d.high, d.low, d.close):
        assert np.isfinite(column).all() and (column > 0).all()
    assert (d.low <= d.high).all() and (np.diff(d.ts_ns) >= 0).all()
    tried()
