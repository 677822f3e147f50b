"""Compiled ledger against the integer reference; exactness over a million fills."""
import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st

from hftcore.instruments import nse_tick_paise
from hftcore_ext.ledger import MAX_PRICE_PAISE, MAX_QTY, Ledger

fills = st.lists(st.tuples(st.integers(0, 3), st.integers(-500, 500).filter(bool),
                           st.integers(1, 2_000_000), st.integers(0, 5000)), max_size=200)


@given(fills, st.lists(st.tuples(st.integers(0, 3), st.integers(1, 2_000_000)), max_size=5))
def test_ledger_agrees_with_reference(fs, marks):
    led, r = Ledger(4, 10_000_000_00), ref.RefLedger(10_000_000_00)
    for s, q, p, f in fs:
        assert led.apply_fill(s, q, p, f) == 0
        r.fill(s, q, p, f)
    for s, p in marks:
        led.set_mark(s, p)
        r.mark(s, p)
    for s in range(4):
        qty, cost, realized, fees, mark, _, _ = led.position(s)
        if s in r.pos:
            rp = r.pos[s]
            assert (qty, cost, realized, fees, mark) == (rp["qty"], rp["cost"], rp["realized"],
                                                         rp["fees"], rp["mark"])
        else:
            assert qty == 0 and cost == 0
    assert led.cash == r.cash and led.realized == r.realized and led.fees == r.fees
    assert led.unrealized == r.unrealized and led.market_value == r.market_value
    assert led.check()


def test_reduce_close_and_flip():
    led = Ledger(1, 0)
    led.apply_fill(0, 10, 100_00)             # long 10 @ 100
    led.apply_fill(0, -4, 110_00)             # reduce: +40 realized
    assert led.position(0)[:3] == (6, 600_00, 40_00)
    led.apply_fill(0, -10, 90_00)             # flip: close 6 (-60), open short 4 @ 90
    assert led.position(0)[:3] == (-4, -360_00, -20_00)
    led.apply_fill(0, 4, 80_00)               # cover: +40
    assert led.position(0)[:3] == (0, 0, 20_00) and led.open_positions == 0
    assert led.cash == 20_00 and led.check()


def test_average_cost_rounding_conserves_every_paisa():
    led = Ledger(1, 0)
    led.apply_fill(0, 3, 100_01)
    led.apply_fill(0, 3, 100_02)              # cost 600_09 over 6 units
    led.apply_fill(0, -1, 100_00)             # removes round(600_09 / 6) = 100_02 (100.015 up)
    assert led.position(0)[1] == 500_07
    led.apply_fill(0, -5, 100_00)
    assert led.position(0)[:3] == (0, 0, -9)  # total loss exactly 9 paise
    assert led.check()


def test_refused_fills_change_nothing():
    led = Ledger(2, 1000)
    for args in [(5, 1, 100, 0), (0, 0, 100, 0), (0, 1, 0, 0), (0, 1, -5, 0), (0, 1, 100, -1),
                 (0, 10**10, 100, 0), (-1, 1, 100, 0)]:
        assert led.apply_fill(*args) == -1
    assert led.rejected == 7 and led.fills == 0 and led.cash == 1000 and led.check()


def test_a_million_fills_on_the_tick_grid_balance_to_the_paisa():
    """cash + market value == initial + realized + unrealized - fees, exactly, after
    1,000,000 random fills at NSE grid prices across price bands, with marks."""
    rng = np.random.default_rng(11)
    n, nsym = 1_000_000, 50
    base = rng.choice([21_50, 405_30, 1545_20, 7800_00, 15890_00, 151200_00], nsym)
    sym = rng.integers(0, nsym, n).astype(np.int32)
    raw = (base[sym] * np.exp(rng.normal(0, 0.02, n))).astype(np.int64)
    tick = np.array([nse_tick_paise(int(p)) for p in np.unique(raw)])
    lut = dict(zip(np.unique(raw).tolist(), tick.tolist()))
    ticks = np.array([lut[p] for p in raw.tolist()], np.int64)
    price = np.maximum(raw // ticks * ticks, ticks)
    qty = rng.integers(1, 200, n) * rng.choice([-1, 1], n)
    fee = rng.integers(0, 3000, n).astype(np.int64)
    initial = 10**12
    led = Ledger(nsym, initial)
    assert led.apply_fills(sym, qty.astype(np.int64), price, fee) == n
    led.set_marks(np.arange(nsym, dtype=np.int32), price[-nsym:])
    assert led.check()
    assert led.cash + led.market_value == initial + led.realized + led.unrealized - led.fees
    # and the same money, independently, in Python ints
    r = ref.RefLedger(initial)
    for s, q, p, f in zip(sym.tolist(), qty.tolist(), price.tolist(), fee.tolist()):
        r.fill(s, q, p, f)
    for s, p in zip(range(nsym), price[-nsym:].tolist()):
        r.mark(s, p)
    assert (led.cash, led.realized, led.fees, led.unrealized) == (r.cash, r.realized, r.fees,
                                                                  r.unrealized)


def test_state_round_trip_and_inconsistent_state_is_refused():
    led = Ledger(3, 5_000_00)
    led.apply_fill(1, 7, 123_45, 12)
    led.apply_fill(2, -3, 99_95, 7)
    back = Ledger.from_state(led.to_state())
    assert back.position(1) == led.position(1) and back.cash == led.cash and back.check()
    bad = led.to_state()
    bad["cash"] += 1
    with pytest.raises(ValueError):
        Ledger.from_state(bad)


def test_constructor_rejects_float_money():
    with pytest.raises(ValueError):
        Ledger(1, 100.5)


# ------------------------------------------------------------------ overflow (issue 14)

INT64 = 2**63


def snapshot(led):
    return (led.to_state()["positions"].tolist(), led.cash, led.realized, led.fees,
            led.market_value, led.exposure, led.open_positions, led.fills)


def test_ten_fills_within_the_per_fill_limits_cannot_wrap_the_cost():
    """Each fill is at the per-fill limits (1e9 units at Rs 1 crore = 1e18 paise); the
    tenth would take the position's cost past 2**63: it is refused, nothing changes,
    and check() (128-bit) still balances."""
    led = Ledger(1, 0)
    for _ in range(9):
        assert led.apply_fill(0, MAX_QTY, MAX_PRICE_PAISE) == 0
    before = snapshot(led)
    assert led.apply_fill(0, MAX_QTY, MAX_PRICE_PAISE) == -1
    assert snapshot(led) == before and led.rejected == 1 and led.fills == 9
    assert led.position(0)[:2] == (9 * MAX_QTY, 9 * MAX_QTY * MAX_PRICE_PAISE)
    assert led.cash == -9 * MAX_QTY * MAX_PRICE_PAISE and led.check()
    # the same through the batch entry
    b = Ledger(1, 0)
    n = 10
    assert b.apply_fills(np.zeros(n, np.int32), np.full(n, MAX_QTY, np.int64),
                         np.full(n, MAX_PRICE_PAISE, np.int64), np.zeros(n, np.int64)) == 9
    assert b.rejected == 1 and b.check() and snapshot(b) == before


def test_totals_across_symbols_cannot_wrap_and_marks_that_would_are_ignored():
    led = Ledger(3, 0)
    half, full = MAX_PRICE_PAISE // 2, MAX_PRICE_PAISE
    for _ in range(4):
        assert led.apply_fill(0, MAX_QTY, half) == 0        # cost 2e18
        assert led.apply_fill(1, MAX_QTY, full) == 0        # cost 4e18
    for _ in range(3):
        assert led.apply_fill(2, MAX_QTY, full) == 0        # cost 3e18: book 9e18
    # each position is far from 2**63; the book's cost and market value would pass it
    assert led.apply_fill(2, MAX_QTY, full) == -1
    assert led.check() and led.rejected == 1 and led.position(2)[0] == 3 * MAX_QTY
    before = snapshot(led)
    led.set_mark(0, full)                               # book mv 9e18 + 2e18 > 2**63
    assert snapshot(led) == before and led.position(0)[4] == half
    led.set_mark(0, half + 1)                           # a mark that fits is applied
    assert led.position(0)[4] == half + 1 and led.check()
    # fees and cash are checked too
    f = Ledger(1, -(10**18))
    assert f.apply_fill(0, 1, 100, INT64 - 10**17) == -1 and f.cash == -(10**18)
    g = Ledger(1, 0)
    assert g.apply_fill(0, 1, 100, INT64 - 1) == -1 and g.apply_fill(0, 1, 100, 5) == 0
    assert g.fees == 5 and g.check()


@pytest.mark.parametrize("args", [(0, 10**30, 100, 0), (0, -(10**30), 100, 0),
                                  (0, 1, 10**30, 0), (0, 1, 100, 10**30), (0, INT64, 100, 0),
                                  (0, -INT64 - 1, 100, 0), (2**70, 1, 100, 0),
                                  (-(2**70), 1, 100, 0)])
def test_huge_integers_are_refused_not_raised(args):
    led = Ledger(1, 10**12)
    assert led.apply_fill(*args) == -1
    assert led.rejected == 1 and led.fills == 0 and led.cash == 10**12 and led.check()
    assert led.apply_fill(0, 5, 100) == 0
    led.set_mark(args[0], args[2] * 10**20)                 # ignored, not raised
    assert led.position(0)[4] == 100 and led.check()


def test_portfolio_service_refuses_a_huge_quantity_instead_of_raising():
    from hftcore.services import PortfolioService
    port = PortfolioService(100000.0)
    fill = {"fill_id": "f1", "symbol": "RELIANCE", "side": "BUY", "quantity": 10**30,
            "price_paise": 100_00, "fees_paise": 0}
    assert port.on_fill(fill) is False
    ok = dict(fill, fill_id="f2", quantity=10)
    assert port.on_fill(ok) is True
    assert port.position_quantity("RELIANCE") == 10


def test_from_state_refuses_totals_that_wrap_64_bits():
    """Two positions of cost 5e18 each: the 64-bit sum wraps, and the wrapped cash
    still satisfies the identity modulo 2**64.  Only a 128-bit check catches it."""
    cost = 5 * 10**18
    qty, mark = 5 * 10**9, 10**9
    positions = np.array([[qty, cost, 0, 0, mark, 1, qty]] * 2, np.int64)
    cash = (0 - 2 * cost + INT64) % 2**64 - INT64         # what a wrapping ledger would hold
    with pytest.raises(ValueError):
        Ledger.from_state({"initial": 0, "cash": cash, "positions": positions})
    with pytest.raises(ValueError):
        Ledger.from_state({"initial": 0, "cash": 10**30, "positions": positions[:1]})
    ok = Ledger.from_state({"initial": 0, "cash": -cost, "positions": positions[:1]})
    assert ok.check() and ok.market_value == cost and ok.cash == -cost


big = st.one_of(st.sampled_from([MAX_QTY, -MAX_QTY, MAX_QTY // 2, -MAX_QTY // 2]),
                st.integers(-MAX_QTY, MAX_QTY).filter(bool))
price_near_limit = st.one_of(st.sampled_from([MAX_PRICE_PAISE, MAX_PRICE_PAISE // 3]),
                             st.integers(1, MAX_PRICE_PAISE))


@given(st.lists(st.tuples(st.integers(0, 2), big, price_near_limit,
                          st.one_of(st.integers(0, 5000), st.integers(0, 2**62)),
                          st.integers(1, 12)),          # repeated: totals reach the limits
                max_size=12),
       st.integers(-(10**18), 10**18))
def test_near_the_limits_every_fill_is_exact_or_refused(groups, initial):
    """Fills at the per-fill limits: the ledger agrees with the integer reference on
    every fill it takes; a refused fill changes nothing; check() holds throughout; a
    fill whose every total stays well inside 64 bits is never refused."""
    import copy
    led, r = Ledger(3, initial), ref.RefLedger(initial)
    fills = [(s, q, p, f) for s, q, p, f, k in groups for _ in range(k)]
    for s, q, p, f in fills:
        trial = copy.deepcopy(r)
        trial.fill(s, q, p, f)
        before = snapshot(led)
        got = led.apply_fill(s, q, p, f)
        values = [trial.cash, trial.realized, trial.fees, trial.market_value,
                  trial.cash + trial.market_value, trial.unrealized,
                  sum(abs(x["qty"] * x["mark"]) for x in trial.pos.values())]
        for x in trial.pos.values():
            values += [x["cost"], x["realized"], x["fees"], x["qty"] * x["mark"]]
        if got == 0:
            r = trial
            assert all(-INT64 <= v < INT64 for v in values)
        else:
            assert snapshot(led) == before
            assert not all(abs(v) < 2**62 for v in values)
        assert led.check()
        assert (led.cash, led.realized, led.fees, led.market_value) == (
            r.cash, r.realized, r.fees, r.market_value)
