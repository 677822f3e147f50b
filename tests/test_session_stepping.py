"""The session runs from decision to decision inside day-long batches; the same data
fed one bar (or tick) at a time must give the same fills, and the per-bar equity
curve rebuilt from the fills must be what the ledger held at each bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hftcore import (EmaCross, InstrumentTable, ReplayFeed, RiskLimits, StrategyEngineV3,
                     SyntheticFeed)
from hftcore.engines.charges import ChargeSchedule
from hftcore.session import LATENCY_SAMPLES, PaperSession

CANDLES = Path(__file__).resolve().parent.parent / "examples" / "data" / "candles"


def _feed():
    inst = InstrumentTable()
    for s in ("INFY", "RELIANCE"):
        inst.add(s, tick_size=0.05)
    return ReplayFeed(CANDLES, instruments=inst)


def _session(feed, engine, **kw):
    return PaperSession(feed, capital=5e6, strategy_engine=engine, charges=ChargeSchedule(),
                        **kw)


def _one_at_a_time(session):
    """The per-bar path: every timestamp its own batch (all symbols' bars of that minute,
    ticks one by one), marking after each."""
    data = session.feed.data()
    curve = []
    cuts = np.r_[0, np.flatnonzero(np.diff(data.ts_ns)) + 1, len(data)]
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        row = type(data)(*(f[a:b] if isinstance(f, np.ndarray) else f for f in data))
        session.step(row)
        curve.append((session.now_ns, session.portfolio.ledger.equity))
    with session.engine._lock:
        session.engine.bank.flush(session.now_ns)
    session.flatten()
    session.close_at_last_price()
    curve.append((session.now_ns, session.portfolio.ledger.equity))
    return curve


def _fills(session):
    return [(f["symbol"], f["side"], f["quantity"], f["price_paise"], f["fees_paise"], f["ts"])
            for f in session.fills]


@pytest.mark.parametrize("engine", [
    lambda: StrategyEngineV3(),
    lambda: EmaCross(fast=5, slow=20, quantity=50),
    lambda: EmaCross(fast=5, slow=20, quantity=50, decide_on="close"),
], ids=["fusion", "ema_cross", "ema_cross-per-bar"])
def test_day_batches_and_bar_by_bar_give_the_same_fills_and_equity(engine):
    fast = _session(_feed(), engine(), primary_tf="1m", secondary_tf="5m")
    fast.run()
    slow = _session(_feed(), engine(), primary_tf="1m", secondary_tf="5m")
    curve = _one_at_a_time(slow)
    assert len(fast.fills) > 10
    assert _fills(fast) == _fills(slow)
    assert fast.portfolio.ledger.equity == slow.portfolio.ledger.equity
    # the rebuilt per-bar curve is what the ledger held after each bar
    ts, eq, _ = fast.equity_series()
    recorded = dict(curve)                      # last value at each timestamp
    assert len(ts) == len(recorded)
    assert [recorded[t] for t in ts.tolist()] == eq.tolist()
    assert eq[-1] == fast.portfolio.ledger.equity
    # day batches: a handful of steps, not one per bar
    assert len(fast.equity_curve) < 10


def test_ticks_fast_path_equals_tick_by_tick():
    def make():
        feed = SyntheticFeed(["RELIANCE", "INFY"], seed=3, days=1)
        return _session(feed, StrategyEngineV3(), primary_tf="1m", secondary_tf="5m",
                        min_confidence=0.3)
    fast = make()
    fast.run()
    slow = make()
    _one_at_a_time(slow)
    # stepped tick by tick, as live: the recorded curve keeps each minute's last point
    data = slow.feed.data()
    minutes = np.unique(data.ts_ns // (60 * 10**9))
    assert len(data) > 5 * len(minutes)
    assert len(slow.equity_curve) == len(minutes)
    assert slow.equity_curve[-1] == (slow.now_ns, slow.portfolio.ledger.equity)
    assert len(fast.fills) > 4
    assert _fills(fast) == _fills(slow)
    ts, eq, _ = fast.equity_series()
    assert eq[-1] == fast.portfolio.ledger.equity
    assert np.all(np.diff(ts) > 0)


def test_daily_loss_limit_is_checked_between_decisions():
    """A position bleeding with no new decision still trips max_daily_loss: the run uses
    minute batches and checks the limit after each."""
    from hftcore import ZERO_CHARGES
    s = PaperSession(_feed(), capital=5e6, strategy_engine=EmaCross(fast=5, slow=20,
                                                                     quantity=500),
                     charges=ZERO_CHARGES, primary_tf="1m", secondary_tf="1m",
                     max_position_size=500,
                     risk=RiskLimits(max_daily_loss=1500.0, check_buying_power=False))
    halts, placed = [], []
    s.bus.subscribe("risk.halted", lambda e: halts.append(e["payload"]))
    s.bus.subscribe("order.placed", lambda e: placed.append(e["payload"]["ts"]))
    s.run()
    assert halts and halts[0]["rule"] == "max_daily_loss"
    # it fired at a bar where nothing was placed or filled: between decisions
    first = halts[0]["ts"]
    assert first not in placed
    assert first not in {f["ts"] for f in s.fills if f["ts"] < first}
    assert s.report.square_offs >= 1


def test_latency_samples_are_bounded():
    s = _session(_feed(), StrategyEngineV3(), primary_tf="1m", secondary_tf="5m")
    s.run()
    assert s.report.decisions > 0
    assert s.report.decision_ns.maxlen == LATENCY_SAMPLES
