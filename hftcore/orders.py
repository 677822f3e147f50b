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
#: Kite's order types: SL is a stop-loss limit (trigger + limit price), SL-M a stop-loss market.
ORDER_TYPES = ("MARKET", "LIMIT", "SL", "SL-M")
#: MIS intraday (squared off at 15:20 IST), CNC delivery, NRML carry-forward F&O.
PRODUCTS = ("MIS", "CNC", "NRML")


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
    ``order_type`` MARKET, LIMIT (with ``limit_price`` in rupees), SL (stop-loss
    limit: ``trigger_price`` and ``limit_price``) or SL-M (stop-loss market:
    ``trigger_price``); ``product`` MIS, CNC or NRML.

    ``stop_loss`` and ``target`` (rupees, on the tick grid) attach exits to an
    opening order: once it fills, ExecutionService places an SL-M at
    ``stop_loss`` and a LIMIT at ``target`` for the filled quantity, and
    cancels one when the other fills (a bracket).  ``tag`` is an optional client
    id (Kite: at most 20 alphanumerics) carried to the broker.

    ``target_position`` (signed units; None: not used) asks for a position
    rather than an order: ExecutionService sends the difference between it and
    the position plus working orders (``action`` and ``quantity`` are then
    derived; 0 difference: nothing is sent).  ``+100`` from short 100 buys 200.
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
    trigger_price: float | None = None
    stop_loss: float | None = None
    target: float | None = None
    tag: str | None = None
    target_position: int | None = None

    def to_dict(self) -> dict:
        # shallow: dataclasses.asdict deep-copies and cost ~40 us per decision
        return dict(self.__dict__)


@dataclass
class OrderResult:
    """What ExecutionService did with an intent.

    ``status`` FILLED (completely), PLACED (accepted, resting or partly
    filled) or REJECTED (``message`` says why, ``rule`` names the rule that
    fired, e.g. ``"max_position"``); ``avg_price`` rupees of the filled part
    (0.0 if nothing filled).  What happens to a PLACED order later arrives as
    ``order.*`` events.
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
    rule: str = ""

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
