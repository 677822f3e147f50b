"""The compiled portfolio views of the ledger against the Python they replaced.

``Ledger.snapshot`` builds ``portfolio.updated``'s payload and ``Ledger.mark_rupees``
marks open positions at LTPs in rupees; ``tests/twin_lane.py`` holds the Python
both replaced, and every float must be the same double.
"""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from twin_lane import mark_rupees_twin, snapshot_twin

from hftcore.instruments import MAX_PAISE, to_paise
from hftcore.services.portfolio_service import PortfolioService
from hftcore_ext.ledger import MAX_PRICE_PAISE, MAX_QTY, Ledger

SYMBOLS = ["A", "B", "C", "D", "E"]

fills = st.lists(st.tuples(st.integers(0, 4), st.integers(-MAX_QTY, MAX_QTY).filter(bool),
                           st.one_of(st.integers(1, 10_000), st.integers(1, MAX_PRICE_PAISE)),
                           st.integers(0, 10**6)), max_size=25)
marks = st.lists(st.tuples(st.integers(0, 4), st.integers(1, MAX_PRICE_PAISE)), max_size=6)


def _book(fs, ms, initial):
    led = Ledger(5, initial)
    for sym, qty, price, fee in fs:
        led.apply_fill(sym, qty, price, fee)
    for sym, price in ms:
        led.set_mark(sym, price)
    return led


def _same(a, b):
    """Equal, and every float the same double (repr), key order included."""
    assert repr(a) == repr(b)
    assert a == b


@settings(max_examples=300, deadline=None)
@given(fills, marks, st.one_of(st.integers(0, 10**9), st.integers(0, 10**15)))
def test_snapshot_equals_the_python_it_replaced(fs, ms, initial):
    led = _book(fs, ms, initial)
    _same(led.snapshot(SYMBOLS), snapshot_twin(led, SYMBOLS))


def test_snapshot_of_values_beyond_2_53_is_exact_like_python():
    led = Ledger(2, 0)
    # cost and qty * mark far above 2**53: a double conversion first would round them
    assert led.apply_fill(0, 999_999_999, 999_999_937, 7) == 0
    assert led.apply_fill(1, -3, 101, 0) == 0
    led.set_mark(0, 999_999_999)
    got, want = led.snapshot(["BIG", "SMALL"]), snapshot_twin(led, ["BIG", "SMALL"])
    _same(got, want)
    assert abs(led.position(0)[1]) > 2**53
    assert got["positions"][0]["market_value"] == 999_999_999 * 999_999_999 / 100
    assert got["positions"][1] == {"symbol": "SMALL", "quantity": -3, "avg_price": 1.01,
                                   "last_price": 1.01, "market_value": -3.03,
                                   "unrealized_pnl": 0.0, "realized_pnl": 0.0, "fees": 0.0}


ltps = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                 st.floats(0.01, 1e6), st.integers(-5, 10**6), st.just(1e15), st.just(1e15 + 1),
                 st.just(0.005), st.just(0.015), st.just(2.675))


@settings(max_examples=300, deadline=None)
@given(fills, st.lists(ltps, min_size=5, max_size=5))
def test_mark_rupees_equals_the_python_it_replaced(fs, prices):
    a, b = _book(fs, [], 10**9), _book(fs, [], 10**9)
    ids = a.open_ids()
    got_n, rest = a.mark_rupees(ids, prices[:len(ids)], MAX_PAISE)
    for k in rest:                      # what PortfolioService does with the rest
        try:
            p = to_paise(prices[k])
        except ValueError:
            continue
        if p > 0:
            a.set_mark(ids[k], p)
            got_n += 1
    want_n = mark_rupees_twin(b, ids, prices[:len(ids)], to_paise)
    assert got_n == want_n
    assert [a.position(i) for i in range(5)] == [b.position(i) for i in range(5)]
    assert (a.equity, a.exposure, a.check()) == (b.equity, b.exposure, True)


def test_mark_rupees_rounds_half_to_even_like_python_and_leaves_the_rest():
    led = Ledger(4, 0)
    for i in range(4):
        assert led.apply_fill(i, 1, 100, 0) == 0
    n, rest = led.mark_rupees([0, 1, 2, 3], [0.125, None, 7, float("nan")], MAX_PAISE)
    assert (n, rest) == (1, [2, 3])              # an int and a NaN are the caller's
    assert led.position(0)[4] == round(0.125 * 100) == 12      # 12.5 -> 12 (half even)
    assert led.position(1)[4] == 100                           # None: unchanged
    try:
        led.mark_rupees([0], [], MAX_PAISE)
    except ValueError as e:
        assert "same length" in str(e)
    else:
        raise AssertionError("a length mismatch must raise")


class _Prices:
    def __init__(self, p):
        self.p = p

    def get_ltp(self, s):
        return self.p.get(s)


def test_portfolio_marks_ints_and_floats_and_warns_once_for_a_bad_price(caplog):
    pf = PortfolioService(initial_capital=1e6)
    for sym in ("A", "B", "C"):
        assert pf.record_fill({"fill_id": sym, "symbol": sym, "side": "BUY", "quantity": 10,
                               "price": 100.0}) == "applied"
    pf.price_source = _Prices({"A": 101.25, "B": 102, "C": math.inf})
    assert pf.mark_to_market() == 2
    assert [r.getMessage() for r in caplog.records if "bad price" in r.getMessage()] == \
        ["mark_to_market(C): bad price inf"]
    caplog.clear()
    snap = pf.get_snapshot()
    assert [p["last_price"] for p in snap["positions"]] == [101.25, 102.0, 100.0]
    assert snap["unrealized_pnl"] == 32.5
    assert np.isclose(snap["equity"], 1e6 + 32.5)
