"""The strategy context: history views, declared indicators, the books, orders
through the gate, other symbols and timeframes, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import talib

from hftcore import (InstrumentTable, ReplayFeed, RiskLimits, Strategy, StrategyEngineV3,
                     ZERO_CHARGES)
from hftcore.feeds import IST, NS
from hftcore.indicators import bbands, sma
from hftcore.session import PaperSession

CANDLES = Path(__file__).resolve().parent.parent / "examples" / "data" / "candles"


def _session(strategy, **kw):
    inst = InstrumentTable()
    inst.add("INFY", tick_size=0.05)
    inst.add("RELIANCE", tick_size=0.05)
    kw.setdefault("charges", ZERO_CHARGES)
    kw.setdefault("max_position_size", 1000)
    return PaperSession(ReplayFeed(CANDLES, instruments=inst), capital=1e7,
                        strategy_engine=strategy, primary_tf="1m", secondary_tf="1m", **kw)


class Probe(Strategy):
    """Runs ``act(ctx, k)`` at the k-th call (per symbol in ``symbols``)."""
    name = "probe"

    def __init__(self, act, symbols=("INFY",), specs=(), timeframes=()):
        self.act, self.symbols, self.specs, self.timeframes = act, symbols, specs, timeframes
        self.k = 0

    def indicators(self):
        return self.specs

    def on_bar(self, ctx):
        self.k += 1
        self.act(ctx, self.k)


def test_history_is_a_read_only_view_and_declared_indicators_equal_ta_lib():
    got = {}

    def act(ctx, k):
        if k == 300:
            h = ctx.history()
            got["close"] = np.array(h["close"])
            got["view"] = h["close"]
            got["base"] = h["close"].base is not None
            got["ind"] = dict(ctx.ind)
            got["bar"] = ctx.bar
            got["n5"] = ctx.history(5)["close"].tolist()
    s = _session(Probe(act, specs=(sma(20, as_="s20"), bbands(20, 2))), history=200)
    s.run()
    close = got["close"]
    assert len(close) == 200 and got["base"]
    assert not got["view"].flags.writeable
    with pytest.raises(ValueError):
        got["view"][0] = 1.0
    assert got["n5"] == close[-5:].tolist()
    assert got["bar"].close == close[-1]
    ref = talib.SMA(close, 20)[-1]
    assert got["ind"]["s20"] == pytest.approx(ref, abs=1e-9)
    up, mid, lo = (a[-1] for a in talib.BBANDS(close, 20, 2.0, 2.0))
    assert got["ind"]["bbands_20_2.0_2.0.upper"] == pytest.approx(up, abs=1e-9)
    assert got["ind"]["bbands_20_2.0_2.0.lower"] == pytest.approx(lo, abs=1e-9)


def test_books_and_sizing_by_value_and_risk():
    seen = {}

    def act(ctx, k):
        if k == 30:
            seen["ltp"] = ctx.ltp
            seen["r1"] = ctx.buy(value=100_000)
            seen["pos1"], seen["cash1"] = ctx.position, ctx.cash
        elif k == 31:
            stop = ctx.tick_round(ctx.ltp * 0.99, -1)
            seen["stop"], seen["ltp2"], seen["eq"] = stop, ctx.ltp, ctx.equity
            seen["r2"] = ctx.buy(risk=0.5, stop_loss=stop)
            seen["bp"] = ctx.buying_power
        elif k == 32:
            with pytest.raises(ValueError, match="exactly one"):
                ctx.buy(10, value=1000)
            with pytest.raises(ValueError, match="stop_loss"):
                ctx.sell(risk=1.0)
            seen["r3"] = ctx.close_position()
            seen["pos3"] = ctx.position
            seen["orders3"] = ctx.open_orders
    s = _session(Probe(act), fill_at="close", max_position_size=100_000,
                 risk=RiskLimits(max_order_value=None, check_buying_power=True))
    s.run()
    r1 = seen["r1"]
    assert r1.status == "FILLED" and r1.quantity == int(100_000 // seen["ltp"])
    assert seen["pos1"] == r1.quantity
    assert seen["cash1"] == pytest.approx(1e7 - r1.quantity * r1.avg_price)
    per_unit = seen["ltp2"] - seen["stop"]
    assert seen["r2"].quantity == int(seen["eq"] * 0.005 // per_unit)
    # the risk order came with a bracket: a stop exit is working for its quantity
    assert seen["bp"] < 1e7 * 5 - 1          # MIS margin of the two buys is blocked
    assert seen["r3"].status == "FILLED" and seen["pos3"] == 0
    assert seen["orders3"] == []              # close_position cancelled the bracket's stop


def test_gate_rejections_come_back_with_their_rule():
    seen = {}

    def act(ctx, k):
        if k == 5:
            seen["grid"] = ctx.buy(10, order_type="LIMIT", price=ctx.ltp - 0.03)
            seen["pos"] = ctx.buy(2000)
            seen["hold"] = ctx.target_position(0)
    s = _session(Probe(act), max_position_size=100)
    s.run()
    assert seen["grid"].status == "REJECTED" and seen["grid"].rule == "tick_grid"
    # too big for max_position_size: sized down to what fits, not refused
    assert seen["pos"].status != "REJECTED" and seen["pos"].quantity == 100
    assert "sized down from 2000" in seen["pos"].message
    assert s.execution.rejections["tick_grid"] == 1
    assert seen["hold"].rule in ("hold", "")


def test_no_new_positions_after_the_square_off_time_but_exits_pass():
    seen = []

    def act(ctx, k):
        t = ctx.time.time()
        if dt.time(15, 0) <= t < dt.time(15, 1):
            seen.append(("open", ctx.buy(10)))
        if dt.time(15, 21) <= t < dt.time(15, 22):
            seen.append(("late", ctx.buy(10)))
    s = _session(Probe(act))
    s.run()
    late = [r for kind, r in seen if kind == "late"]
    assert late and all(r.status == "REJECTED" and r.rule == "entries_closed" for r in late)
    opened = [r for kind, r in seen if kind == "open"]
    assert opened and all(r.status != "REJECTED" for r in opened)
    assert s.report.square_offs >= 5              # the 15:20 square-off still ran


def test_other_symbol_and_other_timeframe():
    seen = {}

    def act(ctx, k):
        if k == 60:
            other = ctx.data(symbol="RELIANCE")
            seen["other"] = (other.symbol, other.close[-1], other.ltp)
            seen["m15"] = ctx.data(timeframe="15m").history()["ts"].tolist()
            with pytest.raises(KeyError, match="no 30m candles"):
                ctx.data(timeframe="30m")
            seen["leg"] = other.sell(5)
    s = _session(Probe(act, timeframes=("15m",)), fill_at="close")
    s.run()
    sym, close, ltp = seen["other"]
    assert sym == "RELIANCE" and close == ltp
    assert len(seen["m15"]) >= 3
    starts = [dt.datetime.fromtimestamp(t // NS, IST).minute % 15 for t in seen["m15"]]
    assert set(starts) == {0}
    assert seen["leg"].symbol == "RELIANCE" and seen["leg"].status == "FILLED"
    assert s.fills[0]["symbol"] == "RELIANCE" and s.fills[0]["side"] == "SELL"


def test_a_failing_strategy_is_logged_and_the_others_go_on(caplog):
    class Boom(Strategy):
        name = "boom"

        def on_bar(self, ctx):
            raise RuntimeError("bug in user code")

    calls = []
    s = _session([Boom(), Probe(lambda ctx, k: calls.append(k), symbols=None)])
    s.run()
    assert s.runner.errors == s.report.decisions == len(calls) == 3750
    # the first failure with its traceback, then a count now and then: not 3750 tracebacks
    assert caplog.text.count("Traceback") == 1
    assert "strategy boom failed on INFY" in caplog.text
    assert "strategy boom has failed 1000 times" in caplog.text


def test_a_voting_strategy_cannot_place_orders_inside_the_fusion(caplog):
    class Sneaky(Strategy):
        name = "sneaky"
        fused = True

        def on_bar(self, ctx):
            ctx.signal("BUY", 1.0, "always")
            ctx.buy(10)

    s = _session(StrategyEngineV3([Sneaky()]), min_confidence=0.0)
    s.run()
    assert not s.fills
    assert "fusion" in caplog.text and "run it alone to trade" in caplog.text


def test_voting_strategy_evaluate_keeps_the_bundle_interface():
    from hftcore import RsiReversion
    sig = RsiReversion().evaluate("INFY", "5m", {"rsi": 20.0}, 1500.0)
    assert (sig.strategy, sig.action) == ("rsi_reversion", "BUY")
    assert RsiReversion().evaluate("INFY", "5m", {"rsi": None}, 1500.0) is None


def test_mixing_trading_and_voting_strategies_is_refused():
    from hftcore import EmaTrend
    with pytest.raises(ValueError, match="not both"):
        _session([Probe(lambda c, k: None), EmaTrend()])


def test_regression_the_clock_reads_the_candle_close_in_a_replay():
    """ctx.now is when the candle ended, as live (it read the candle's start)."""
    gaps = []

    def act(ctx, k):
        if k <= 3:
            gaps.append(ctx.now - ctx.bar.ts)
    _session(Probe(act)).run()
    assert gaps == [60 * NS] * 3


def test_on_start_runs_once_also_when_the_session_is_stepped_by_hand():
    """hftcore paper and live drive the session with step(), not run()."""
    class Starter(Strategy):
        name = "starter"

        def __init__(self):
            self.starts, self.bars = 0, 0

        def on_start(self, ctx):
            self.starts += 1

        def on_bar(self, ctx):
            self.bars += 1
    st = Starter()
    s = _session(st)
    for batch in s.feed.batches(60):
        s.step(batch)
    assert st.starts == 1 and st.bars > 100


class Crosses(Strategy):
    """Counts crossovers of its own SMAs (named per instance) on the decision series and
    on a 5m view."""

    def __init__(self, name, fast=5, slow=20):
        self.name, self.fast, self.slow = name, fast, slow
        self.n = self.n5 = 0
        self.timeframes = ("5m",)

    def indicators(self):
        return (sma(self.fast, as_=f"f{self.fast}"), sma(self.slow, as_=f"s{self.slow}"))

    def on_bar(self, ctx):
        a, b = f"f{self.fast}", f"s{self.slow}"
        self.n += ctx.crossed_above(a, b) + ctx.crossed_below(a, b)
        m5 = ctx.data(timeframe="5m")
        self.n5 += m5.crossed_above(a, b) + m5.crossed_below(a, b)


def test_regression_every_strategy_sees_prev_one_bar_ago_and_views_have_prev_too():
    alone = Crosses("a")
    _session(alone).run()
    first, second = Crosses("a"), Crosses("b")
    _session([first, second]).run()
    assert alone.n > 20 and alone.n5 > 3
    # the second strategy used to see prev == now (the first had just stored it): 0 crosses
    assert (first.n, second.n) == (alone.n, alone.n)
    assert (first.n5, second.n5) == (alone.n5, alone.n5)


def test_an_alias_naming_two_indicators_is_refused():
    a, b = Crosses("a", 5, 20), Crosses("b", 10, 20)
    b.indicators = lambda: (sma(10, as_="f5"), sma(20, as_="s20"))   # f5 is A's SMA(5)
    with pytest.raises(ValueError, match="'f5' is declared twice"):
        _session([a, b])


def test_a_price_makes_a_limit_order_and_a_market_order_refuses_one():
    seen = {}

    def act(ctx, k):
        if k == 5:
            seen["limit"] = ctx.buy(10, price=ctx.tick_round(ctx.ltp * 0.9, -1))
            with pytest.raises(ValueError, match="takes no price"):
                ctx.buy(10, order_type="MARKET", price=1500.0)
            with pytest.raises(ValueError, match="whole number"):
                ctx.buy(2.7)
    s = _session(Probe(act))
    s.run()
    assert seen["limit"].status == "PLACED"
    placed = s.broker.get_order(seen["limit"].order_id)
    assert placed.order_type == "LIMIT"


def test_strategy_mistakes_fail_at_the_start_with_one_clear_message():
    with pytest.raises(ValueError, match="unknown symbol.*INFYY"):
        _session(Probe(lambda c, k: None, symbols=("INFYY",)))
    from hftcore import ArrayFeed, Bars
    inst = InstrumentTable()
    inst.add("INFY", tick_size=0.05)
    px = np.full(10, 100.0)
    five = Bars(np.zeros(10, np.int32), 1_717_386_300 * NS + np.arange(10) * 300 * NS,
                px, px, px, px, px, 300)                        # 5-minute candles
    with pytest.raises(ValueError, match="shorter than the data's 300 s candles"):
        PaperSession(ArrayFeed(five, inst), strategy_engine=Probe(lambda c, k: None),
                     primary_tf="1m", secondary_tf="1m")


def test_strategy_errors_are_in_the_summary():
    class Boom(Strategy):
        name = "boom"

        def on_bar(self, ctx):
            raise ZeroDivisionError

    s = _session(Boom())
    s.run()
    assert s.report.strategy_errors == 3750
    assert "STRATEGY ERRORS: 3750" in s.summary()


def test_a_misspelt_indicator_name_fails_loudly_not_false_forever():
    errors = []

    def act(ctx, k):
        try:
            ctx.crossed_above("fsat", "s20")
        except KeyError as exc:
            errors.append(str(exc))
    _session(Probe(act, specs=(sma(5, as_="fast"), sma(20, as_="s20")))).run()
    assert len(errors) == 1875                   # from the first bar on, every bar
    assert "no indicator 'fsat'; declared: fast, s20" in errors[0]


def test_fusion_members_votes_are_clipped_and_a_failing_member_is_skipped(caplog):
    class Loud(Strategy):
        name = "loud"
        fused = True

        def on_bar(self, ctx):
            ctx.signal("HOLD", 0.0, "first thought")
            sig = ctx.signal("BUY", 0.5, "second thought")
            sig.confidence = 7.0                  # past the 0..1 the fusion accepts

    class Broken(Strategy):
        name = "broken"
        fused = True

        def on_bar(self, ctx):
            ctx.signal("SELL", 1.0, "never counted")
            raise RuntimeError("member bug")

    class Quiet(Strategy):
        name = "quiet"
        fused = True

        def on_bar(self, ctx):
            pass

    engine = StrategyEngineV3([Loud(), Broken(), Quiet()])
    s = _session(engine, min_confidence=0.0)
    s.run()
    bundles = {"1m": s.market_data.get_bundle("INFY", "1m")}
    sigs = engine.evaluate("INFY", bundles, s.market_data.get_ltp("INFY"))
    # the last signal of each member that voted; Broken raised, Quiet said nothing
    assert [(x.strategy, x.action, x.confidence, x.timeframe) for x in sigs] == \
        [("loud", "BUY", 1.0, "1m")]
    assert "strategy broken failed on INFY 1m" in caplog.text


def test_a_context_subclass_that_overrides_ind_is_what_prev_and_crossovers_read():
    from hftcore.strategy import Context, Values

    class Shifted(Context):
        @property
        def ind(self):
            return Values({"a": self._bundle["a"] + 10.0, "b": 5.0})

    ctx = Shifted(None)
    ctx._point("X", "1m", 0, 0, bundle={"a": -10.0})
    ctx._remember()
    assert dict(ctx.prev) == {"a": 0.0, "b": 5.0}       # what the override said
    ctx._point("X", "1m", 0, 0, bundle={"a": -3.0})
    assert ctx.crossed_above("a", "b")                 # 0 -> 7 against 5


def test_signal_checks_its_action_clips_its_confidence_and_keeps_the_vote():
    from hftcore import Signal
    from hftcore.strategy import Context
    ctx = Context(None)._point("INFY", "5m", 0, 0)
    ctx.strategy_name = "mine"
    with pytest.raises(ValueError, match="BUY, SELL or HOLD, got 'buy'"):
        ctx.signal("buy")
    with pytest.raises(ValueError):
        ctx.signal("BUY", "lots")
    assert ctx.signals == []                       # a refused vote leaves nothing behind
    a, b = ctx.signal("BUY", 7), ctx.signal("SELL", -1.5, "why")
    assert ctx.signals == [a, b] and type(a) is Signal
    assert (a.strategy, a.symbol, a.timeframe, a.action, a.confidence, a.reason) == \
        ("mine", "INFY", "5m", "BUY", 1.0, "")
    assert (b.action, b.confidence, b.reason) == ("SELL", 0.0, "why")
