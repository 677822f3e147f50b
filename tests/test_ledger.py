"""Compiled ledger against the integer reference; exactness over a million fills."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import reference as ref
from hftcore.instruments import nse_tick_paise
from hftcore_ext.ledger import Ledger

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
