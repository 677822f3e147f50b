"""The compiled event lane (hftcore_ext.lane) equals its plain-Python twins."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftcore import InstrumentTable, RiskLimits, Signal
from hftcore.gate import PreTradeGate
import threading
from collections import deque

import numpy as np

from hftcore_ext.bus import _event_from
from hftcore_ext.lane import RULES, ContextCore, FeedIntake, RiskBook, Values, first_touch, fuse
from twin_lane import ContextTwin, FeedIntakeTwin, RiskBookTwin, fuse_twin

NS = 1_000_000_000

caps = st.tuples(st.none() | st.integers(1, 4), st.none() | st.integers(2, 8),
                 st.none() | st.integers(3, 20))
limits = st.tuples(st.integers(0, 600), caps, st.tuples(st.none() | st.integers(1, 3),
                                                         st.none(), st.none()),
                   st.none() | st.sampled_from([0.05, 0.2, 1.0]),
                   st.none() | st.integers(1, 10**8), st.booleans())

check_op = st.tuples(
    st.just("check"), st.integers(0, 11),                       # key
    st.integers(0, 1), st.booleans(), st.integers(1, 400),      # symbol, buy, quantity
    st.sampled_from([1, 1, 25]), st.integers(-300, 300),        # lot, position
    st.none() | st.sampled_from([99.95, 100.0, 100.05, 250.5, 0.07]),   # ltp
    st.sampled_from([0, 9_000, 10_000, 10_005, 12_500]),        # limit price paise
    st.sampled_from([0, 9_500, 10_010, 11_000]),                # trigger paise
    st.integers(0, 3), st.sampled_from([0.2, 1.0]), st.booleans(),   # type, rate, cnc
    st.sampled_from(["", "g1", "g1", "g2"]), st.booleans(),     # group, exit_only
    st.booleans(), st.booleans(),                               # halted, entries closed
    st.integers(-10**7, 10**8), st.integers(0, 10**6),          # equity, position margin
    st.integers(0, 3 * NS))                                     # time step
other_op = st.tuples(st.sampled_from(["fill", "resize", "release"]), st.integers(0, 11),
                     st.integers(-5, 400))
reconfigure = st.tuples(st.just("configure"), limits)


@settings(max_examples=300, deadline=None)
@given(limits, st.lists(st.one_of(check_op, check_op, other_op, reconfigure), max_size=60))
def test_compiled_book_equals_twin(lim, ops):
    fast, twin = RiskBook(*lim), RiskBookTwin(*lim)
    now = 1_700_000_000 * NS
    for op in ops:
        if op[0] == "check":
            (_, k, sym, buy, qty, lot, pos, ltp, price_p, trig_p, otype, rate, cnc, group,
             exit_only, halted, closed, equity, margin, step) = op
            now += step
            qty = qty * lot
            args = (f"k{k}", sym, buy, qty, lot, pos, ltp, price_p, trig_p, otype, rate, cnc,
                    group, exit_only, halted, closed, lambda e=equity, m=margin: (e, m), now)
            assert fast.check(*args) == twin.check(*args), op
        elif op[0] == "configure":
            fast.configure(*op[1])
            twin.configure(*op[1])
        else:
            kind, k, q = op
            key = f"k{k}"
            if kind == "fill":
                assert fast.on_fill(key, q) == twin.on_fill(key, q)
            elif kind == "resize":
                fast.resize(key, q)
                twin.resize(key, q)
            else:
                fast.release(key)
                twin.release(key)
        assert fast.reserved == twin.reserved
        assert len(fast) == len(twin)
        for sym in range(3):
            for skip in ("", "g1"):
                assert fast.totals(sym, skip) == twin.totals(sym, skip)
        for k in range(12):
            assert fast.working(f"k{k}") == twin.working(f"k{k}")


class _Ltp:
    def get_ltp(self, symbol):
        return 100.0


class _Flat:
    def position_quantity(self, symbol):
        return 0

    def get_totals(self):
        return {"equity": 1e9}


@pytest.mark.parametrize("book_class", [RiskBook, RiskBookTwin])
def test_regression_a_rate_cap_set_at_runtime_counts_orders_already_sent(book_class):
    """With no per-second cap (but a per-day one) the gate still has to remember
    the last second's orders: a per-second cap set at runtime must count them, as
    the gate did before its arithmetic was compiled (the book kept no times for a
    window without a cap, so 3 orders in the same second passed a new cap of 2)."""
    inst = InstrumentTable()
    inst.add("SBIN")
    now = [1_700_000_000 * NS]
    gate = PreTradeGate(inst, _Ltp(), _Flat(), RiskLimits(max_orders_per_second=None), 10_000,
                        lambda: now[0], book_class=book_class)
    assert [gate.check(f"a{i}", "SBIN", "BUY", 1).rule for i in range(3)] == ["", "", ""]
    gate.limits = RiskLimits(max_orders_per_second=2)
    d = gate.check("b", "SBIN", "BUY", 1)
    assert (d.rule, d.message) == ("rate", "max_orders_per_second 2 exceeded")
    now[0] += NS                                   # a second later the window has room
    assert gate.check("c", "SBIN", "BUY", 1).rule == ""
    gate.limits = RiskLimits(max_orders_per_minute=4, max_orders_per_second=None)
    assert gate.check("d", "SBIN", "BUY", 1).rule == "rate"      # a, a, a, c in this minute


def test_reserved_margin_never_wraps_with_buying_power_off():
    """Opening orders whose margin the book cannot add in int64 paise are refused as
    buying_power even with that rule off (the compiled book used to wrap to ~2e18
    where the twin reserved 1e24, so buying_power() read garbage)."""
    fast = RiskBook(10**10, check_buying_power=False)
    twin = RiskBookTwin(10**10, check_buying_power=False)
    for book in (fast, twin):
        codes = [book.check(f"k{i}", i, True, 10**9, 1, 0, None, 10**9, 0, 1, 1.0, False,
                            "", False, False, False, lambda: (0, 0), 1)[0] for i in range(12)]
        assert [RULES[c] or "ok" for c in codes] == ["ok"] * 9 + ["buying_power"] * 3
        assert book.reserved == 9 * 10**18
    assert fast.reserved == twin.reserved
    # a modification cannot be refused: the sum saturates instead of wrapping
    for book in (fast, twin):
        book.resize("k0", 10**9 * 2)
        assert book.reserved == 2**63 - 1


def test_bracket_exits_count_once_and_groups_are_forgotten():
    book = RiskBook(1000)
    acct = lambda: (10**9, 0)   # noqa: E731
    # a stop and a target of one bracket protecting a long 100: together they exit 100 once
    for key in ("stop", "target"):
        assert book.check(key, 0, False, 100, 1, 100, 100.0, 0, 0, 0, 1.0, False, "b1",
                          True, False, False, acct, NS)[0] == 0
    assert book.totals(0) == (0, 100, 0, 100)
    # a third exit of 50 no longer fits: the position is already covered
    code, *_ = book.check("more", 0, False, 50, 1, 100, 100.0, 0, 0, 0, 1.0, False, "",
                          True, False, False, acct, NS)
    assert RULES[code] == "exit"
    book.release("stop")
    book.release("target")
    assert book.totals(0) == (0, 0, 0, 0) and len(book) == 0
    # the group's name is free again: a new bracket under it starts from nothing
    assert book.check("s2", 0, False, 40, 1, 40, 100.0, 0, 0, 0, 1.0, False, "b1",
                      True, False, False, acct, NS)[0] == 0
    assert book.totals(0, "b1") == (0, 0, 0, 0)
    assert book.totals(0) == (0, 40, 0, 40)


def test_rate_window_keeps_recent_orders_when_caps_change():
    book = RiskBook(10**6, (3, None, None))
    acct = lambda: (10**12, 0)   # noqa: E731
    for i in range(3):
        assert book.check(f"o{i}", 0, True, 1, 1, 0, 100.0, 0, 0, 0, 1.0, False, "", False,
                          False, False, acct, NS + i)[0] == 0
    assert RULES[book.check("o3", 0, True, 1, 1, 0, 100.0, 0, 0, 0, 1.0, False, "", False,
                            False, False, acct, NS + 5)[0]] == "rate"
    book.configure(10**6, (2, None, None), (None, None, None), None, None, True)
    # still two of the three orders inside this second: the tighter cap refuses too
    assert RULES[book.check("o3", 0, True, 1, 1, 0, 100.0, 0, 0, 0, 1.0, False, "", False,
                            False, False, acct, NS + 6)[0]] == "rate"
    assert book.check("o3", 0, True, 1, 1, 0, 100.0, 0, 0, 0, 1.0, False, "", False,
                      False, False, acct, 2 * NS + 3)[0] == 0


@pytest.mark.parametrize("book_class", [RiskBook, RiskBookTwin])
def test_the_gate_runs_on_either_book(book_class):
    table = InstrumentTable()
    table.add("INFY", tick_size=0.05)

    class Prices:
        def get_ltp(self, symbol):
            return 1500.0

    class Flat:
        def position_quantity(self, symbol):
            return 0

        def get_totals(self):
            return {"equity": 1_000_000.0}

    gate = PreTradeGate(table, Prices(), Flat(), RiskLimits(), 100, clock=lambda: NS,
                        book_class=book_class)
    d = gate.check("a", "INFY", "BUY", 150)
    assert (d.rule, d.quantity) == ("", 100)          # sized down to max_position_size
    assert gate.check("b", "INFY", "BUY", 1).rule == "max_position"
    assert gate.reserved_margin == pytest.approx(100 * 1500.0 / 5)
    gate.max_position_size = 300                      # a runtime change reaches the book
    assert gate.check("b", "INFY", "BUY", 50).rule == ""
    assert gate.check("big", "INFY", "BUY", 2 * 10**9).rule == "quantity"
    # a price the ledger could never book is refused up front, not halted on at the fill
    assert gate.check("dear", "INFY", "BUY", 1, "LIMIT", 20_000_000.0).rule == "price"


events = st.lists(st.tuples(
    st.sampled_from(["signals.raw", "signals.fused", "order.filled", "order.placed",
                     "portfolio.updated", "risk.halted", "feed.stale", "custom"]),
    st.one_of(st.none(), st.integers(-5, 2**64), st.just(1_700_000_000 * NS + 7),
              st.floats(0, 2e18), st.just("x")),                 # payload ts
    st.booleans(),                                              # payload is a dict
    st.one_of(st.none(), st.floats(0, 2e9)),                    # event timestamp
    st.booleans()), max_size=40)                                # the bus's own Event


@settings(max_examples=200, deadline=None)
@given(events, st.integers(0, 2 * 10**18))
def test_compiled_feed_intake_equals_twin(evs, clock):
    fast = FeedIntake(deque(maxlen=5), deque(maxlen=5))
    twin = FeedIntakeTwin(deque(maxlen=5), deque(maxlen=5))
    now = lambda _ts: clock   # noqa: E731
    others: dict[str, list] = {"fast": [], "twin": []}
    fast.bind(threading.Lock(), now, lambda *a: others["fast"].append(a), lambda: None)
    twin.bind(threading.Lock(), now, lambda *a: others["twin"].append(a), lambda: None)
    for etype, pts, as_map, ts, bus_event in evs:
        payload = {"ts": pts, "symbol": "INFY"} if as_map else [pts]
        event = {"type": etype, "payload": payload, "timestamp": ts}
        if bus_event:                     # read field by field in C, the twin reads it as a map
            event = _event_from(etype, payload, int((ts or 0) * 1e9), 1)
        fast.on_event(event)
        twin.on_event(event)
        assert others["fast"] == others["twin"]
        for name in ("counts", "pending", "market_ns", "version", "last_event_ts"):
            assert getattr(fast, name) == getattr(twin, name), name
        assert list(fast.signals) == list(twin.signals)
        assert list(fast.orders) == list(twin.orders)
        assert fast.portfolio_raw is twin.portfolio_raw


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.floats(90, 110), st.floats(90, 110)),
                min_size=1, max_size=30),
       st.integers(0, 30), st.integers(0, 30), st.integers(0, 2), st.booleans(),
       st.floats(95, 115) | st.just(float("inf")), st.floats(85, 105) | st.just(float("-inf")))
def test_first_touch_is_the_first_bar_numpy_finds(bars, a, b, sid, nxt, hi_at, lo_at):
    sym = np.array([x[0] for x in bars], np.int32)
    high = np.array([max(x[1], x[2]) for x in bars])
    low = np.array([min(x[1], x[2]) for x in bars])
    b = min(b, len(bars))
    seg = sym[a:b] == sid
    if not nxt:
        seg &= (high[a:b] >= hi_at) | (low[a:b] <= lo_at)
    want = a + int(np.argmax(seg)) if seg.any() else b
    # an empty range [a, b) finds nothing: b
    assert first_touch(sym, high, low, a, b, sid, nxt, hi_at, lo_at) == (want if a < b else b)


signal = st.builds(Signal, st.sampled_from(["ema", "rsi", "vwap", "mine"]),
                   st.just("INFY"), st.sampled_from(["5m", "15m", "1h"]),
                   st.sampled_from(["BUY", "SELL", "HOLD"]),
                   st.floats(0, 1) | st.sampled_from([0.1, 1 / 3, 0.7]))


@settings(max_examples=500, deadline=None)
@given(st.lists(signal, max_size=9), st.sampled_from([("5m", "15m"), ("5m", "5m")]),
       st.dictionaries(st.sampled_from(["ema", "rsi", "vwap"]), st.floats(0, 3)),
       st.floats(0.1, 3) | st.just(2), st.floats(0, 3) | st.just(1),
       st.sampled_from([0, 0.0, 0.3, 0.5, 1]))
def test_compiled_fusion_equals_twin_bit_for_bit(signals, tfs, weights, pw, sw, min_conf):
    args = (signals, *tfs, weights, pw, sw, min_conf)
    got, want = fuse(*args), fuse_twin(*args)
    assert got == want
    assert got[1].hex() == float(want[1]).hex()


def test_book_refuses_ids_it_could_not_index():
    book = RiskBook(100)
    acct = lambda: (10**9, 0)   # noqa: E731
    with pytest.raises(ValueError, match="symbol id"):
        book.check("k", -1, True, 1, 1, 0, 100.0, 0, 0, 0, 1.0, False, "", False, False,
                   False, acct, NS)
    with pytest.raises(ValueError, match="lot"):
        book.check("k", 0, True, 1, 0, 0, 100.0, 0, 0, 0, 1.0, False, "", False, False,
                   False, acct, NS)
    assert book.totals(-1) == (0, 0, 0, 0) and len(book) == 0


class _Bank:
    """The slice of CandleBank the context reads: declared indicator values per series."""

    def __init__(self):
        self.indicator_names, self.now = ("fast", "slow"), {}

    def indicators(self, sym, tf):
        return dict(self.now[(sym, tf)])


class _Session:
    def __init__(self, bank):
        self.engine = type("E", (), {"bank": bank})()


_value = st.one_of(st.none(), st.sampled_from([99.0, 100.0, 100.5, 101.0]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), _value, _value,
                          st.sampled_from(["fast", "slow", "nope"]),
                          st.sampled_from(["fast", "slow", "nope", 100.0, 100]),
                          st.booleans()), max_size=60))
def test_compiled_context_reads_equal_twin(bars):
    """ContextCore's ind / prev / crossed_* against the Python they replaced, on random
    series of warm and cold values, numbers as the second operand and undeclared names."""
    bank = _Bank()
    ours, twin = ContextCore(_Session(bank)), ContextTwin(bank)
    for sym, tf, fast, slow, a, b, with_bundle in bars:
        bank.now[(sym, tf)] = {"fast": fast, "slow": slow}
        bundle = {"ema20": fast} if with_bundle else None
        ours._point("X", "1m", sym, tf, bundle=bundle)
        twin._point(sym, tf, bundle=bundle)
        for name in ("crossed_above", "crossed_below"):
            got = want = None
            try:
                want = getattr(twin, name)(a, b)
            except KeyError as exc:
                want = repr(exc)
            try:
                got = getattr(ours, name)(a, b)
            except KeyError as exc:
                got = repr(exc)
            assert got == want, (name, a, b)
        assert ours.ind == twin.ind and type(ours.ind) is Values
        assert ours.prev == twin.prev
        ours._remember()
        twin._remember()


def test_a_bus_event_without_a_type_is_ignored_with_a_warning(caplog):
    fast = FeedIntake(deque(maxlen=5), deque(maxlen=5))
    fast.bind(threading.Lock(), lambda _ts: 0, lambda *a: None, lambda: None)
    fast.on_event(_event_from(None, {"ts": 5}, 5, 1))
    assert fast.version == 0 and fast.counts == {}
    assert "ignored event with type None" in caplog.text
    fast.on_event(_event_from("signals.raw", {"ts": 5}, 5, 2))
    assert fast.version == 1 and fast.market_ns == 5
