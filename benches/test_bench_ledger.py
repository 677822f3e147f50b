"""Fills into the ledger: one from Python at growing fill counts, and batches."""
import numpy as np
import pytest

import reference as ref
from hftcore_ext.ledger import Ledger


def ledger_with_history(n_fills):
    led = Ledger(1, 10**12)
    for i in range(n_fills):
        led.apply_fill(0, 1 if i % 2 == 0 else -1, 150_000 + i % 7 * 10, 5)
    return led


@pytest.mark.parametrize("prior_fills", [1, 1_000, 100_000])
@pytest.mark.benchmark(group="one fill from Python vs fills already on the position")
def test_hftcore_apply_fill(benchmark, prior_fills):
    led = ledger_with_history(prior_fills)
    benchmark(led.apply_fill, 0, 1, 150_010, 5)


@pytest.mark.benchmark(group="one fill from Python vs fills already on the position")
def test_pure_python_ledger_fill(benchmark):
    led = ref.RefLedger(10**12)
    benchmark(led.fill, 0, 1, 150_010, 5)


@pytest.mark.parametrize("prior_fills", [10, 1_000])
@pytest.mark.benchmark(group="one fill from Python vs fills already on the position")
def test_nautilus_position_apply(benchmark, prior_fills):
    stubs = pytest.importorskip("nautilus_trader.test_kit.stubs.events")
    from nautilus_trader.model.enums import OrderSide
    from nautilus_trader.model.identifiers import PositionId, TradeId
    from nautilus_trader.model.objects import Price, Quantity
    from nautilus_trader.model.position import Position
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.test_kit.stubs.execution import TestExecStubs
    inst = TestInstrumentProvider.equity("RELIANCE", "XNSE")
    fills = []
    for i in range(prior_fills + 300):
        order = TestExecStubs.limit_order(instrument=inst, order_side=OrderSide.BUY,
                                          price=Price.from_str("1500.00"),
                                          quantity=Quantity.from_int(1))
        fills.append(stubs.TestEventStubs.order_filled(
            order, inst, last_px=Price.from_str("1500.10"),
            position_id=PositionId("P-1"), trade_id=TradeId(f"T-{i}")))
    pos = Position(inst, fills[0])
    for f in fills[1:prior_fills]:
        pos.apply(f)
    fresh = iter(fills[prior_fills:])          # each round applies a new fill (ids are unique)
    benchmark.pedantic(pos.apply, setup=lambda: ((next(fresh),), {}), rounds=250, iterations=1)


@pytest.mark.benchmark(group="batch fills, 1M")
def test_hftcore_apply_fills_batch(benchmark):
    rng = np.random.default_rng(1)
    n = 1_000_000
    sym = rng.integers(0, 100, n).astype(np.int32)
    qty = (rng.integers(1, 100, n) * rng.choice([-1, 1], n)).astype(np.int64)
    price = rng.integers(100_000, 200_000, n).astype(np.int64) // 5 * 5
    fee = rng.integers(0, 500, n).astype(np.int64)
    benchmark.pedantic(lambda led: led.apply_fills(sym, qty, price, fee),
                       setup=lambda: ((Ledger(100, 10**13),), {}), rounds=5, iterations=1)
    benchmark.extra_info["fills_per_s"] = n / benchmark.stats.stats.median


@pytest.mark.benchmark(group="batch fills, 1M")
def test_pure_python_ledger_1m(benchmark):
    rng = np.random.default_rng(1)
    n = 1_000_000
    rows = list(zip(rng.integers(0, 100, n).tolist(),
                    (rng.integers(1, 100, n) * rng.choice([-1, 1], n)).tolist(),
                    (rng.integers(100_000, 200_000, n) // 5 * 5).tolist(),
                    rng.integers(0, 500, n).tolist()))

    def run():
        led = ref.RefLedger(10**13)
        for r in rows:
            led.fill(*r)
    benchmark.pedantic(run, rounds=1, iterations=1)
