"""NSE cash-equity transaction costs, in integer paise.

Rates are Zerodha's published schedule for NSE equity (zerodha.com/charges,
as revised 1 Oct 2024 for the exchange's uniform transaction charge) and the
statutory levies it lists:

==========================  =========================  =========================
component                   intraday (MIS)             delivery (CNC)
==========================  =========================  =========================
brokerage                   0.03% or Rs 20 per order,   0
                            whichever is lower
STT                         0.025% on the sell side    0.1% on buy and sell
exchange transaction (NSE)  0.00297%                   0.00297%
SEBI turnover fee           Rs 10 per crore (0.0001%)  Rs 10 per crore
stamp duty                  0.003% on the buy side     0.015% on the buy side
GST                         18% of (brokerage + exchange charge + SEBI fee)
==========================  =========================  =========================

Each component is rounded to the nearest paisa.  Override any rate through
``ChargeSchedule(...)`` (e.g. from the YAML config) when they change.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ChargeSchedule:
    # rates as fractions of turnover
    intraday_brokerage_rate: float = 0.0003
    brokerage_cap_paise: int = 2000          # Rs 20 per executed order
    delivery_brokerage_rate: float = 0.0
    intraday_stt_sell: float = 0.00025
    delivery_stt: float = 0.001
    exchange_txn_rate: float = 0.0000297
    sebi_rate: float = 0.000001
    intraday_stamp_buy: float = 0.00003
    delivery_stamp_buy: float = 0.00015
    gst_rate: float = 0.18

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not (v >= 0):
                raise ValueError(f"charge {f.name} must be >= 0, got {v!r}")

    def compute(self, side: str, quantity: int, price_paise: int,
                product: str = "MIS") -> dict[str, int]:
        """Charges for one fill, by component, in paise (``total`` included)."""
        if self is ZERO_CHARGES:
            return {"brokerage": 0, "stt": 0, "exchange": 0, "sebi": 0, "stamp": 0, "gst": 0,
                    "total": 0}
        turnover = quantity * price_paise             # paise
        buy = side == "BUY"
        if product == "CNC":
            brokerage = round(turnover * self.delivery_brokerage_rate)
            stt = round(turnover * self.delivery_stt)
            stamp = round(turnover * self.delivery_stamp_buy) if buy else 0
        else:
            brokerage = min(round(turnover * self.intraday_brokerage_rate),
                            self.brokerage_cap_paise)
            stt = 0 if buy else round(turnover * self.intraday_stt_sell)
            stamp = round(turnover * self.intraday_stamp_buy) if buy else 0
        exchange = round(turnover * self.exchange_txn_rate)
        sebi = round(turnover * self.sebi_rate)
        gst = round((brokerage + exchange + sebi) * self.gst_rate)
        out = {"brokerage": brokerage, "stt": stt, "exchange": exchange, "sebi": sebi,
               "stamp": stamp, "gst": gst}
        out["total"] = sum(out.values())
        return out


ZERO_CHARGES = ChargeSchedule(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
