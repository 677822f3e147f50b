"""Charges per executed order, checked against worked examples computed the way Zerodha's
brokerage calculator computes them (zerodha.com/brokerage-calculator; rates as of the
1 Oct 2024 schedule in hftcore/engines/charges.py): brokerage min(0.03%, Rs 20) per executed
order, STT and stamp duty rounded to the rupee, exchange and SEBI charges and GST to the paisa.

The calculator works on a round trip (a buy and a sell order); the contract note charges each
order, and the two add up to the calculator's total exactly as below."""
import pytest

from hftcore import ChargeSchedule, PaperBroker
from hftcore.engines.charges import COMPONENTS


class Prices:
    def __init__(self, **p):
        self.p = p

    def get_ltp(self, s):
        return self.p.get(s)


def round_trip(product, qty, buy, sell):
    c = ChargeSchedule()
    b = c.order_charges("BUY", qty * round(buy * 100), product)
    s = c.order_charges("SELL", qty * round(sell * 100), product)
    return {k: b[k] + s[k] for k in (*COMPONENTS, "total")}


def test_intraday_round_trip_400_at_1000_to_1100():
    # turnover Rs 8,40,000. brokerage 20 + 20 (0.03% of 4,00,000 = 120 -> capped at 20 each);
    # STT 0.025% of 4,40,000 = 110; exchange 0.00297% of 8,40,000 = 24.948 -> 24.95;
    # SEBI Rs 10/crore = 0.84; stamp 0.003% of 4,00,000 = 12; GST 18% of (40 + 24.95 + 0.84)
    # = 11.8422 -> 11.84; total 199.63
    t = round_trip("MIS", 400, 1000.0, 1100.0)
    assert t == {"brokerage": 4000, "stt": 11000, "exchange": 2495, "sebi": 84, "stamp": 1200,
                 "gst": 1184, "total": 19963}


def test_intraday_small_trade_rounds_stt_to_the_rupee():
    # 20 shares 103.30 -> 103.55 (the calculator shows STT 1, not 0.52): turnover 4,137;
    # brokerage 0.62 + 0.62; exchange 0.12; SEBI 0.00; stamp 0.062 -> Rs 0;
    # GST 18% of (1.24 + 0.12 + 0.00) = 0.2448 -> 0.24 (per order: 0.13 + 0.13 = 0.26)
    t = round_trip("MIS", 20, 103.30, 103.55)
    assert t["stt"] == 100 and t["stamp"] == 0 and t["brokerage"] == 124


def test_delivery_round_trip_100_at_1000_to_1100():
    # CNC: no brokerage; STT 0.1% of both sides = 100 + 110; exchange 2.97 + 3.27 (3.267);
    # SEBI 0.10 + 0.11; stamp 0.015% of the buy = 15; GST 0.55 + 0.61; total 232.61
    t = round_trip("CNC", 100, 1000.0, 1100.0)
    assert t == {"brokerage": 0, "stt": 21000, "exchange": 624, "sebi": 21, "stamp": 1500,
                 "gst": 116, "total": 23261}


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_an_order_costs_the_same_however_many_fills_it_takes(parts):
    qty = 420
    b = PaperBroker(Prices(SBIN=1000.0), max_fill_quantity=-(-qty // parts))
    o = b.place_order("SBIN", "SELL", qty)
    while o.working:
        b.on_price("SBIN", 1000.0)
    whole = ChargeSchedule().order_charges("SELL", qty * 100_000, "MIS")
    assert len(o.fills) == parts and o.fees_paise == whole["total"]
    assert {k: sum(f.charges[k] for f in o.fills) for k in COMPONENTS} == \
        {k: whole[k] for k in COMPONENTS}
