"""ExecutionService: pre-trade checks, sizing, routing, and fill events.

``execute(intent)`` validates the intent, sizes it so the resulting position
never exceeds ``max_position_size`` units either way, runs the risk checks
below, routes it to the broker (paper or live, same interface) and publishes:

* ``order.filled`` -- one per fill, with everything the portfolio needs
  (fill_id, order_id, symbol, side, quantity, price, fees, charges, ts, mode);
* ``order.placed`` -- an accepted order that is resting or partly filled;
* ``order.rejected`` -- with the rule that fired in ``message``;
* ``risk.halted`` -- once, when the daily loss limit is hit.

HOLD intents are not sent (REJECTED, "HOLD: nothing to execute", no event).

Risk checks, in order (each gives a REJECTED result naming the rule):
quantity a positive int and a whole number of lots; max daily loss (halts
trading until ``reset_halt``); max position size; limit price on the tick
grid and inside ``price_band`` of the LTP; max order value; max orders per
second (Kite allows 10/s).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from ..instruments import to_paise
from ..orders import OrderResult
from .event_bus import ORDER_FILLED, ORDER_PLACED, ORDER_REJECTED, RISK_HALTED

logger = logging.getLogger(__name__)

MODES = ("paper", "live")


@dataclass(frozen=True)
class RiskLimits:
    """Pre-trade limits; None disables one.  Money in rupees.

    ``price_band``: a limit price further than this fraction from the LTP is
    rejected (NSE's dynamic price band is typically 10-20%).
    """
    max_order_value: float | None = 5_000_000.0
    max_orders_per_second: int | None = 10
    max_daily_loss: float | None = None
    price_band: float | None = 0.20

    def __post_init__(self):
        b = self.price_band
        if b is not None and not (isinstance(b, (int, float)) and 0 < b <= 1):
            raise ValueError(f"price_band must be None or in (0, 1], got {b!r}")
        for name in ("max_order_value", "max_daily_loss"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be None or a number > 0, got {v!r}")
        r = self.max_orders_per_second
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 1):
            raise ValueError(f"max_orders_per_second must be None or an int >= 1, got {r!r}")


class ExecutionService:
    """Order validation and routing.

    Parameters
    ----------
    broker : PaperBroker, KiteBroker or any object with ``place_order``
    portfolio_service : PortfolioService (read for the current position)
    event_bus : EventBus or None
    mode : "paper" or "live" (ValueError otherwise)
    max_position_size : int, default 100 -- units, long or short
    risk : RiskLimits, optional
    clock : callable -> ns, for the order-rate window (a replay passes its clock)
    """

    def __init__(self, broker, portfolio_service, event_bus=None, mode: str = "paper",
                 max_position_size: int = 100, risk: RiskLimits | None = None,
                 clock=time.monotonic_ns):
        if mode not in MODES:
            raise ValueError(f"mode must be 'paper' or 'live', got {mode!r}")
        if not callable(getattr(broker, "place_order", None)):
            raise ValueError("broker needs a place_order() method")
        if isinstance(max_position_size, bool) or not isinstance(max_position_size, int) \
                or max_position_size < 1:
            raise ValueError(f"max_position_size must be an int >= 1, got {max_position_size!r}")
        self.broker = broker
        self.portfolio_service = portfolio_service
        self.event_bus = event_bus
        self.mode = mode
        self.max_position_size = max_position_size
        self.risk = risk if risk is not None else RiskLimits()
        self.clock = clock
        self.instruments = getattr(broker, "instruments", None)
        self._lock = threading.Lock()
        self._recent_orders: deque[int] = deque()
        self._ids = itertools.count(1)
        self.halted: str | None = None
        if callable(getattr(broker, "add_fill_listener", None)):
            broker.add_fill_listener(self._on_broker_fill)

    # ------------------------------------------------------------ events

    def _publish(self, event_type, payload):
        if self.event_bus is not None:
            self.event_bus.publish(event_type, payload)

    def _on_broker_fill(self, fill) -> None:
        self._publish(ORDER_FILLED, fill.to_payload(self.mode))
        self._check_daily_loss()

    def _reject(self, intent, why: str, order_id: str | None = None, quantity: int = 0,
                publish: bool = True) -> OrderResult:
        symbol = getattr(intent, "symbol", "")
        side = getattr(intent, "action", "")
        result = OrderResult(order_id or f"REJ{next(self._ids):09d}", "REJECTED", 0.0, why,
                             str(symbol), str(side), quantity)
        if publish:
            self._publish(ORDER_REJECTED, result.to_dict())
        logger.info("order rejected: %s %s: %s", side, symbol, why)
        return result

    # ------------------------------------------------------------ risk state

    def _position(self, symbol) -> int:
        qty = getattr(self.portfolio_service, "position_quantity", None)
        if callable(qty):
            return qty(symbol)
        getter = getattr(self.portfolio_service, "get_position", None)
        pos = getter(symbol) if callable(getter) else None
        return int(pos["quantity"]) if pos else 0

    def _check_daily_loss(self) -> None:
        limit = self.risk.max_daily_loss
        net_pnl = getattr(self.portfolio_service, "net_pnl", None)
        if limit is None or self.halted or not callable(net_pnl):
            return
        pnl = net_pnl()
        if pnl <= -limit:
            self.halted = f"daily loss {-pnl:.2f} reached the limit {limit:.2f}"
            logger.warning("trading halted: %s", self.halted)
            self._publish(RISK_HALTED, {"reason": self.halted, "net_pnl": pnl, "limit": limit})

    def reset_halt(self) -> None:
        """Resume trading after a ``risk.halted`` (e.g. the next session)."""
        self.halted = None

    def _rate_ok(self) -> bool:
        cap = self.risk.max_orders_per_second
        if cap is None:
            return True
        now = self.clock()
        with self._lock:
            q = self._recent_orders
            while q and now - q[0] >= 1_000_000_000:
                q.popleft()
            if len(q) >= cap:
                return False
            q.append(now)
            return True

    # ------------------------------------------------------------ execute

    def execute(self, order_intent) -> OrderResult:
        """Execute an OrderIntent; returns OrderResult(order_id, status, avg_price,
        message, ...).  Never raises."""
        intent = order_intent
        symbol = getattr(intent, "symbol", None)
        action = getattr(intent, "action", None)
        if intent is None or symbol is None or action is None:
            return self._reject(intent, f"invalid intent {intent!r}")
        if action == "HOLD":
            return self._reject(intent, "HOLD: nothing to execute", publish=False)
        if action not in ("BUY", "SELL"):
            return self._reject(intent, f"action must be BUY, SELL or HOLD, got {action!r}")
        if not isinstance(symbol, str) or not symbol.strip():
            return self._reject(intent, f"invalid symbol {symbol!r}")
        inst = self.instruments.get(symbol) if self.instruments is not None else None
        if self.instruments is not None and inst is None:
            return self._reject(intent, f"unknown symbol {symbol!r}")
        qty = getattr(intent, "quantity", 0)
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            return self._reject(intent, f"quantity must be a positive int, got {qty!r}")
        lot = inst.lot_size if inst is not None else 1
        if qty % lot:
            return self._reject(intent, f"quantity {qty} is not a multiple of lot size {lot}",
                                quantity=qty)
        self._check_daily_loss()
        if self.halted:
            return self._reject(intent, f"trading halted: {self.halted}", quantity=qty)

        # Size so that |position after| <= max_position_size, in whole lots.
        current = self._position(symbol)
        room = (self.max_position_size - current if action == "BUY"
                else self.max_position_size + current)
        room -= room % lot
        if room <= 0:
            return self._reject(intent, f"max_position_size {self.max_position_size} reached "
                                        f"(position {current})", quantity=qty)
        qty = min(qty, room)

        order_type = str(getattr(intent, "order_type", "MARKET") or "MARKET").upper()
        limit = getattr(intent, "limit_price", None)
        ref_price = limit if order_type == "LIMIT" else None
        if order_type == "LIMIT":
            try:
                lp = to_paise(limit)
            except ValueError as exc:
                return self._reject(intent, f"bad limit price: {exc}", quantity=qty)
            if inst is not None and not inst.on_grid(lp):
                return self._reject(intent, f"limit price {limit} is not on the tick grid",
                                    quantity=qty)
        source = getattr(self.broker, "price_source", None)
        ltp = None
        if source is not None and (self.risk.price_band is not None
                                   or self.risk.max_order_value is not None):
            ltp = source.get_ltp(symbol)
        if (order_type == "LIMIT" and ltp and self.risk.price_band is not None
                and abs(limit - ltp) > self.risk.price_band * ltp):
            return self._reject(intent, f"limit price {limit} outside the price_band "
                                        f"{self.risk.price_band:.0%} around LTP {ltp}",
                                quantity=qty)
        if ref_price is None:
            ref_price = ltp
        if (self.risk.max_order_value is not None and ref_price is not None
                and qty * ref_price > self.risk.max_order_value):
            return self._reject(intent, f"order value {qty * ref_price:.2f} above max_order_value "
                                        f"{self.risk.max_order_value:.2f}", quantity=qty)
        if not self._rate_ok():
            return self._reject(intent, f"max_orders_per_second "
                                        f"{self.risk.max_orders_per_second} exceeded", quantity=qty)

        try:
            order = self.broker.place_order(symbol, action, qty, order_type, limit,
                                            getattr(intent, "product", "MIS"))
        except Exception as exc:
            logger.exception("broker.place_order failed")
            return self._reject(intent, f"broker error: {exc}", quantity=qty)

        if order.status == "REJECTED":
            return self._reject(intent, order.message, order.order_id, qty)
        for fill in list(order.fills):
            self._publish(ORDER_FILLED, fill.to_payload(self.mode))
        status = "FILLED" if order.status == "COMPLETE" else "PLACED"
        message = (f"filled {order.filled} @ {order.avg_price:.2f}" if status == "FILLED"
                   else f"placed; {order.filled}/{order.quantity} filled")
        if qty < intent.quantity:
            message += f" (sized down from {intent.quantity} by max_position_size)"
        result = OrderResult(order.order_id, status, order.avg_price, message, symbol, action,
                             qty, order.filled, order.fees_paise / 100)
        if status == "PLACED":
            self._publish(ORDER_PLACED, result.to_dict())
        self._check_daily_loss()
        return result
