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

Charges are computed per executed order, as the contract note does: brokerage
is capped at Rs 20 per order however many fills it took, STT and stamp duty
are computed on the order's turnover and rounded to the rupee (as Zerodha's
brokerage calculator does), exchange and SEBI charges and GST to the paisa.
A fill pays the increase of its order's charges (``charges_for_fill``), so the
fills of one order add up to exactly the order's contract-note figure.
Override any rate through ``ChargeSchedule(...)`` (e.g. from the YAML config)
when they change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

COMPONENTS = ("brokerage", "stt", "exchange", "sebi", "stamp", "gst")


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
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < 0:
                raise ValueError(f"charge {f.name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.brokerage_cap_paise, int):
            raise ValueError(f"brokerage_cap_paise must be an int (paise), "
                             f"got {self.brokerage_cap_paise!r}")

    def order_charges(self, side: str, turnover_paise: int, product: str = "MIS") -> dict[str, int]:
        """Charges of one executed order (all its fills) with ``turnover_paise`` =
        sum of quantity x price, by component, in paise (``total`` included)."""
        if self is ZERO_CHARGES or turnover_paise <= 0:
            return {"brokerage": 0, "stt": 0, "exchange": 0, "sebi": 0, "stamp": 0, "gst": 0,
                    "total": 0}
        turnover = turnover_paise
        buy = side == "BUY"
        if product == "CNC":
            brokerage = _paisa(turnover * self.delivery_brokerage_rate)
            stt = _rupee(turnover * self.delivery_stt)
            stamp = _rupee(turnover * self.delivery_stamp_buy) if buy else 0
        else:                                   # MIS and NRML: the intraday schedule
            brokerage = min(_paisa(turnover * self.intraday_brokerage_rate),
                            self.brokerage_cap_paise)
            stt = 0 if buy else _rupee(turnover * self.intraday_stt_sell)
            stamp = _rupee(turnover * self.intraday_stamp_buy) if buy else 0
        exchange = _paisa(turnover * self.exchange_txn_rate)
        sebi = _paisa(turnover * self.sebi_rate)
        gst = _paisa((brokerage + exchange + sebi) * self.gst_rate)
        out = {"brokerage": brokerage, "stt": stt, "exchange": exchange, "sebi": sebi,
               "stamp": stamp, "gst": gst}
        out["total"] = brokerage + stt + exchange + sebi + stamp + gst
        return out

    def charges_for_fill(self, side: str, turnover_before: int, fill_turnover: int,
                         charged_before: dict[str, int] | None,
                         product: str = "MIS") -> dict[str, int]:
        """What one fill of an order pays: the order's charges after the fill minus
        what its earlier fills paid (``charged_before``, by component)."""
        after = self.order_charges(side, turnover_before + fill_turnover, product)
        if not charged_before:
            return after
        out = {k: after[k] - charged_before.get(k, 0) for k in COMPONENTS}
        out["total"] = sum(out.values())
        return out

    def compute(self, side: str, quantity: int, price_paise: int,
                product: str = "MIS") -> dict[str, int]:
        """Charges of a one-fill order of ``quantity`` at ``price_paise``, by
        component, in paise (``total`` included)."""
        return self.order_charges(side, quantity * price_paise, product)


def _paisa(x: float) -> int:
    """Nearest paisa, halves up (as the brokerage calculator's toFixed(2))."""
    return int(math.floor(x + 0.5))


def _rupee(x: float) -> int:
    """Nearest rupee in paise, halves up (the calculator rounds STT and stamp duty)."""
    return int(math.floor(x / 100 + 0.5)) * 100


ZERO_CHARGES = ChargeSchedule(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
