"""The paper broker's compiled core (hftcore_ext.paper) beside its plain-Python twin.

``tests/twin_paper.py`` is the paper broker as it was written in Python (order
record, fill bookkeeping, matching); nothing else differs.  Two groups:

- ``place_order`` of a MARKET order that fills at once (``fill_at="close"``),
  alternating BUY and SELL 100 of one symbol, with Zerodha's charges and with none;
- a bar matched against 20 working orders (10 LIMIT buys, 5 SL-M sells, 5 LIMIT
  sells), 11 of which it fills, each one's listener told before the next.
"""
import pytest
from twin_paper import TwinOrder, TwinPaperBroker

from hftcore.engines.brokers import BrokerOrder, PaperBroker
from hftcore.engines.charges import ZERO_CHARGES

BROKERS = {"hftcore": (PaperBroker, BrokerOrder), "python-twin": (TwinPaperBroker, TwinOrder)}


class Prices:
    def get_ltp(self, symbol):
        return 900.05


@pytest.mark.benchmark(group="paper broker: place_order, MARKET filled at once")
@pytest.mark.parametrize("charges", ["zerodha", "zero"])
@pytest.mark.parametrize("broker", list(BROKERS))
def test_place_order(benchmark, broker, charges):
    cls, _ = BROKERS[broker]
    b = cls(Prices(), charges=ZERO_CHARGES if charges == "zero" else None, clock=lambda: 5)
    heard = []
    b.add_listener(lambda kind, order, fill: heard.append(fill))
    n = [0]

    def one():
        n[0] += 1
        return b.place_order("SBIN", "BUY" if n[0] & 1 else "SELL", 100)

    order = benchmark.pedantic(one, rounds=20_000, iterations=1, warmup_rounds=500)
    assert order.status == "COMPLETE" and order.filled == 100 and len(heard) == n[0]


@pytest.mark.benchmark(group="paper broker: one bar against 20 working orders")
@pytest.mark.parametrize("broker", list(BROKERS))
def test_match_bar(benchmark, broker):
    cls, order_cls = BROKERS[broker]

    def setup():
        b = cls(Prices(), charges=ZERO_CHARGES, clock=lambda: 5, fill_at="next_open")
        orders = []
        for i in range(20):
            if i < 10:
                o = order_cls(f"B{i}", "SBIN", "BUY", 10, "LIMIT", 89_500 + 100 * i)
            elif i < 15:
                o = order_cls(f"S{i}", "SBIN", "SELL", 10, "SL-M", status="TRIGGER PENDING",
                              trigger_paise=89_900 + 50 * (i - 10))
            else:
                o = order_cls(f"L{i}", "SBIN", "SELL", 10, "LIMIT", 95_000 + 100 * i)
            b.book.add(o)
            orders.append(o)
        b._open["SBIN"] = orders
        return (b,), {}

    def bar(b):
        return b.on_bar("SBIN", 900.0, 905.0, 899.0, 902.0, 7)

    fills = benchmark.pedantic(bar, setup=setup, rounds=2000, iterations=1, warmup_rounds=50)
    assert len(fills) == 11                 # 6 buys reached, 5 stops triggered
