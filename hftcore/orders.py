"""The event-lane records: Signal -> OrderIntent -> OrderResult (+ fills).

Plain dataclasses: they are created only when something is decided, never per
tick.  ``to_dict()`` gives the JSON-ready payload published on the EventBus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("BUY", "SELL", "HOLD")
SIDES = ("BUY", "SELL")
STATUSES = ("FILLED", "REJECTED", "PLACED")


@dataclass
class Signal:
    """One strategy's view of one symbol on one timeframe."""
    strategy: str
    symbol: str
    timeframe: str
    action: str                  # BUY / SELL / HOLD
    confidence: float            # 0..1
    reason: str = ""

    @property
    def direction(self) -> int:
        return 1 if self.action == "BUY" else -1 if self.action == "SELL" else 0

    def to_dict(self) -> dict:
        # shallow: dataclasses.asdict deep-copies and cost ~40 us per decision
        return dict(self.__dict__)


@dataclass
class OrderIntent:
    """What the strategy layer wants done.

    ``action`` BUY/SELL/HOLD; ``confidence`` 0..1; ``reason`` says why;
    ``metadata`` holds the indicators and signals behind it; ``quantity`` is
    the suggested size in units (ExecutionService may reduce it);
    ``order_type`` MARKET or LIMIT (with ``limit_price`` in rupees).
    """
    symbol: str
    action: str = "HOLD"
    confidence: float = 0.0
    reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    quantity: int = 0
    order_type: str = "MARKET"
    limit_price: float | None = None
    product: str = "MIS"
    ts: int | None = None        # ns; the decision time

    def to_dict(self) -> dict:
        # shallow: dataclasses.asdict deep-copies and cost ~40 us per decision
        return dict(self.__dict__)


@dataclass
class OrderResult:
    """What ExecutionService did with an intent.

    ``status`` FILLED (completely), PLACED (accepted, resting or partly
    filled) or REJECTED (``message`` says which rule); ``avg_price`` rupees of
    the filled part (0.0 if nothing filled).
    """
    order_id: str
    status: str
    avg_price: float = 0.0
    message: str = ""
    symbol: str = ""
    side: str = ""
    quantity: int = 0
    filled_quantity: int = 0
    fees: float = 0.0

    def to_dict(self) -> dict:
        # shallow: dataclasses.asdict deep-copies and cost ~40 us per decision
        return dict(self.__dict__)


@dataclass
class Fill:
    """One execution reported by a broker; money in integer paise."""
    fill_id: str
    order_id: str
    symbol: str
    side: str                    # BUY / SELL
    quantity: int                # > 0 units
    price_paise: int
    fees_paise: int = 0
    ts: int = 0                  # ns
    charges: dict[str, int] = field(default_factory=dict)   # paise by component

    def to_payload(self, mode: str = "paper") -> dict:
        """The ``order.filled`` event payload (rupee floats plus exact paise)."""
        return {"fill_id": self.fill_id, "order_id": self.order_id, "symbol": self.symbol,
                "side": self.side, "quantity": self.quantity,
                "price": self.price_paise / 100, "price_paise": self.price_paise,
                "fees": self.fees_paise / 100, "fees_paise": self.fees_paise,
                "charges": {k: v / 100 for k, v in self.charges.items()},
                "ts": self.ts, "mode": mode}
