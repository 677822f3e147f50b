"""ExecutionService: the pre-trade gate, routing, and the order lifecycle as events.

``execute(intent)`` validates the intent, passes it through the one pre-trade
gate (``hftcore.gate``: lots, tick grid, price band, order value, position
including working orders, buying power, order rate, the daily-loss halt),
sends it to the broker (paper or live, one ``Broker`` protocol) and returns an
``OrderResult``.  Everything that happens to the order afterwards arrives from
the broker's listener and is published:

* ``order.placed`` -- accepted and still working when ``execute`` returns;
* ``order.filled`` -- one per fill, with the fill (fill_id, price, charges, ...)
  and the order's cumulative state (``filled_quantity``, ``pending_quantity``,
  ``avg_price``, ``order_status`` "PARTIAL" or "COMPLETE");
* ``order.cancelled`` -- with ``filled_quantity`` and ``cancelled_quantity``, so a
  partial fill followed by a cancel is reported as exactly that;
* ``order.rejected`` -- by the gate, the broker or the exchange (``stage``), with
  the ``rule`` that fired;
* ``order.modified``; ``risk.halted`` once when trading halts;
  ``risk.squareoff_failed`` when a square-off could not be sent.

Each fill is applied to the portfolio here, exactly once (a fill id seen
before is ignored), before ``order.filled`` is published -- so the spec's
``bus.subscribe("order.filled", portfolio.on_fill)`` is harmless (the
portfolio recognises the fill id) and a portfolio that is not subscribed still
sees every fill.  A fill the portfolio cannot record halts trading and is
logged as an error: the books must never silently differ from the broker.

An intent with ``stop_loss`` and/or ``target`` opens a bracket: once the entry
fills, an SL-M exit at the stop and a LIMIT exit at the target are placed for
the filled quantity (exits pass the gate too), and when one of them fills the
other is reduced or cancelled.

HOLD intents are not sent (REJECTED, "HOLD: nothing to execute", no event).
"""

from __future__ import annotations

import copy
import itertools
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..gate import PreTradeGate, RiskLimits, check_order_shape
from ..instruments import to_paise
from ..orders import Fill, OrderIntent, OrderResult
from .event_bus import (ORDER_CANCELLED, ORDER_FILLED, ORDER_MODIFIED, ORDER_PLACED,
                        ORDER_REJECTED, RISK_HALTED, RISK_SQUAREOFF_FAILED)
from .portfolio_service import PortfolioService

logger = logging.getLogger(__name__)

MODES = ("paper", "live")

__all__ = ["ExecutionService", "RiskLimits", "MODES"]


@dataclass(slots=True)
class _Bracket:
    """The exits attached to one entry order."""
    symbol: str
    exit_side: str
    stop: float | None
    target: float | None
    product: str
    entry_filled: int = 0
    exits_filled: int = 0
    cut: int = 0                 # entry units no longer held (closed or reversed by others)
    stop_key: str = ""           # gate keys (= broker tags) of the exit orders
    target_key: str = ""
    legs: dict = field(default_factory=dict)   # exit key -> its delivered fills

    @property
    def remaining(self) -> int:
        """Units these exits still protect."""
        return max(0, self.entry_filled - self.cut - self.exits_filled)


class ExecutionService:
    """Order validation, routing and lifecycle events.

    Parameters
    ----------
    broker : a ``Broker`` (``PaperBroker``, the Kite broker, or any object with
        the protocol in ``hftcore.engines.brokers``); it must declare ``live``
    portfolio_service : PortfolioService (positions, equity; fills are applied to it)
    event_bus : EventBus or None
    mode : "paper" or "live"; ValueError if it does not match ``broker.live``
    max_position_size : int, default 100 -- units per symbol, long or short,
        counting working orders
    risk : RiskLimits, optional
    clock : callable -> ns since the epoch (a replay passes its market clock)
    price_source : object with ``get_ltp(symbol)`` (normally the
        MarketDataService); default: the broker's own ``get_ltp``
    instruments : InstrumentTable; default: ``broker.instruments``
    """

    def __init__(self, broker, portfolio_service, event_bus=None, mode: str = "paper",
                 max_position_size: int = 100, risk: RiskLimits | None = None,
                 clock=time.time_ns, price_source=None, instruments=None):
        if mode not in MODES:
            raise ValueError(f"mode must be 'paper' or 'live', got {mode!r}")
        if not callable(getattr(broker, "place_order", None)):
            raise ValueError("broker needs a place_order() method")
        live = getattr(broker, "live", None)
        if not isinstance(live, bool):
            raise ValueError(f"broker {type(broker).__name__} must declare live = True or False")
        if live != (mode == "live"):
            raise ValueError(f"mode={mode!r} but {type(broker).__name__} is "
                             f"{'a live' if live else 'a paper'} broker: "
                             f"{'real orders would be sent' if live else 'nothing would trade'}")
        if isinstance(max_position_size, bool) or not isinstance(max_position_size, int) \
                or max_position_size < 1:
            raise ValueError(f"max_position_size must be an int >= 1, got {max_position_size!r}")
        if risk is not None and not isinstance(risk, RiskLimits):
            raise ValueError(f"risk must be a RiskLimits, got {type(risk).__name__}")
        if price_source is None:
            price_source = broker if callable(getattr(broker, "get_ltp", None)) else None
        if price_source is None or not callable(getattr(price_source, "get_ltp", None)):
            raise ValueError("ExecutionService needs a price_source with get_ltp(symbol) "
                             "(e.g. the MarketDataService) to value orders")
        instruments = instruments if instruments is not None else getattr(broker, "instruments",
                                                                          None)
        if instruments is None or not callable(getattr(instruments, "get", None)):
            raise ValueError("ExecutionService needs an InstrumentTable (instruments=...)")
        self.broker = broker
        self.portfolio_service = portfolio_service
        self.event_bus = event_bus
        self.mode = mode
        risk = risk if risk is not None else RiskLimits()
        self.clock = clock
        self.price_source = price_source
        self.instruments = instruments
        self.gate = PreTradeGate(instruments, price_source, portfolio_service, risk,
                                 max_position_size, clock)
        if hasattr(portfolio_service, "price_source") and portfolio_service.price_source is None:
            # the spec's wiring never calls update_prices: let the books follow the market
            portfolio_service.price_source = price_source
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._tag_prefix = f"hc{int(time.time()) % 100000:05d}"   # Kite: <= 20 alphanumerics
        self._key_of: dict[str, str] = {}          # broker order id -> gate key
        self._seen: dict[str, set[str]] = {}       # order id -> fill ids applied
        self._brackets: dict[str, _Bracket] = {}   # entry order id -> its exits
        self._exit_of: dict[str, str] = {}         # exit order key (tag) -> entry order id
        self._order_of: dict[str, str] = {}        # gate key -> broker order id
        self._placing: set[str] = set()            # keys inside _send right now
        self.rejections: Counter[str] = Counter()  # rule -> orders rejected
        self.fill_failures = 0
        self.squareoff_failures = 0
        add = getattr(broker, "add_listener", None)
        if callable(add):
            add(self._on_broker_event)

    # ------------------------------------------------------------ documented state

    @property
    def max_position_size(self) -> int:
        return self.gate.max_position_size

    @max_position_size.setter
    def max_position_size(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"max_position_size must be an int >= 1, got {value!r}")
        self.gate.max_position_size = value

    @property
    def risk(self) -> RiskLimits:
        return self.gate.limits

    @risk.setter
    def risk(self, limits: RiskLimits) -> None:
        if not isinstance(limits, RiskLimits):
            raise ValueError(f"risk must be a RiskLimits, got {type(limits).__name__}")
        self.gate.limits = limits

    @property
    def halted(self) -> str | None:
        """Why trading is halted (None while trading)."""
        return self.gate.halted

    def halt(self, reason: str, rule: str = "manual") -> bool:
        """Stop opening orders (exits still pass) and publish ``risk.halted`` once;
        False if trading was already halted."""
        if self.gate.halted:
            return False
        self._halt(reason, rule)
        return True

    def reset_halt(self) -> None:
        """Resume trading after a ``risk.halted`` (e.g. the next session)."""
        self.gate.resume()

    # ------------------------------------------------------------ events

    def _publish(self, event_type, payload):
        if self.event_bus is not None:
            self.event_bus.publish(event_type, payload)

    def _reject(self, intent, rule: str, why: str, order_id: str | None = None,
                quantity: int = 0, publish: bool = True, stage: str = "gate",
                exit: bool = False) -> OrderResult:
        symbol = str(getattr(intent, "symbol", ""))
        side = str(getattr(intent, "action", ""))
        result = OrderResult(order_id or f"REJ{next(self._ids):09d}", "REJECTED", 0.0, why,
                             symbol, side, quantity, rule=rule)
        if publish:
            self.rejections[rule] += 1
            payload = result.to_dict()
            payload.update(stage=stage, ts=self.clock(), mode=self.mode, reduce_only=exit)
            self._publish(ORDER_REJECTED, payload)
        logger.info("order rejected (%s): %s %s: %s", rule, side, symbol, why)
        return result

    def _halt(self, reason: str, rule: str) -> None:
        if self.gate.halt(reason):
            logger.warning("trading halted: %s", reason)
            net = self._net_pnl()
            self._publish(RISK_HALTED, {"reason": reason, "rule": rule, "net_pnl": net,
                                        "limit": self.risk.max_daily_loss, "ts": self.clock()})

    def _net_pnl(self) -> float | None:
        net_pnl = getattr(self.portfolio_service, "net_pnl", None)
        return net_pnl() if callable(net_pnl) else None

    def check_daily_loss(self) -> None:
        """Halt (``risk.halted``, rule ``max_daily_loss``) if the net PnL at the
        market has reached ``risk.max_daily_loss``; the session calls it between
        decisions, ``execute`` and every fill call it too."""
        self._check_daily_loss()

    def _check_daily_loss(self) -> None:
        limit = self.gate._limits.max_daily_loss        # self.risk, without two properties
        if limit is None or self.gate.halted:
            return
        pnl = self._net_pnl()
        if pnl is not None and pnl <= -limit:
            self._halt(f"daily loss {-pnl:.2f} reached the limit {limit:.2f}", "max_daily_loss")

    # ------------------------------------------------------------ execute

    def execute(self, order_intent) -> OrderResult:
        """Execute an OrderIntent; returns OrderResult(order_id, status, avg_price,
        message, ...).  Never raises."""
        intent = order_intent
        symbol = getattr(intent, "symbol", None)
        action = getattr(intent, "action", None)
        if intent is None or symbol is None or action is None:
            return self._reject(intent, "invalid", f"invalid intent {intent!r}")
        if not isinstance(symbol, str) or not symbol.strip():
            return self._reject(intent, "invalid", f"invalid symbol {symbol!r}")
        goal = getattr(intent, "target_position", None)
        if goal is not None:                      # a position asked for: send the difference
            if isinstance(goal, bool) or not isinstance(goal, int):
                return self._reject(intent, "invalid",
                                    f"target_position must be an int, got {goal!r}")
            buys, sells = self.gate.working_quantity(symbol)
            # a bracket's stop/target protects the position, it is not a move towards a goal
            p_buys, p_sells = self._protective(symbol)
            delta = goal - (self.gate._position(symbol) + (buys - p_buys) - (sells - p_sells))
            if delta == 0:
                return self._reject(intent, "hold", f"already at target position {goal}",
                                    publish=False)
            action = "BUY" if delta > 0 else "SELL"
            intent = _with(intent, action=action, quantity=abs(delta))
        if action == "HOLD":
            return self._reject(intent, "hold", "HOLD: nothing to execute", publish=False)
        if action not in ("BUY", "SELL"):
            return self._reject(intent, "invalid",
                                f"action must be BUY, SELL or HOLD, got {action!r}")
        qty = getattr(intent, "quantity", 0)
        order_type = str(getattr(intent, "order_type", "MARKET") or "MARKET").upper()
        limit = getattr(intent, "limit_price", None)
        trigger = getattr(intent, "trigger_price", None)
        product = str(getattr(intent, "product", "MIS") or "MIS").upper()
        if order_type in ("MARKET", "SL-M"):
            limit = None
        stop, target = getattr(intent, "stop_loss", None), getattr(intent, "target", None)
        if stop is not None or target is not None:
            why = self._check_bracket(symbol, action, stop, target, limit)
            if why:
                return self._reject(intent, "bracket", why, quantity=qty
                                    if isinstance(qty, int) else 0)
        self._check_daily_loss()
        bracket = None
        if stop is not None or target is not None:
            inst = self.instruments.get(symbol)
            bracket = _Bracket(inst.symbol, "SELL" if action == "BUY" else "BUY", stop, target,
                               product)
        result = self._send(symbol, action, qty, order_type, limit, trigger, product,
                            tag=getattr(intent, "tag", None), intent=intent, bracket=bracket)
        if bracket is not None and result.status != "REJECTED":
            self._sync_bracket(result.order_id, bracket)
        self._check_daily_loss()
        return result

    def _check_bracket(self, symbol, action, stop, target, limit) -> str:
        inst = self.instruments.get(symbol)
        if inst is None:
            return f"unknown symbol {symbol!r}"
        ref = limit if limit is not None else self.gate._ltp(inst.symbol)
        for name, p in (("stop_loss", stop), ("target", target)):
            if p is None:
                continue
            try:
                pp = to_paise(p)
            except ValueError as exc:
                return f"bad {name}: {exc}"
            if not inst.on_grid(pp):
                return f"{name} {p} is not on the tick grid ({inst.tick_paise(max(pp, 1)) / 100})"
            if ref is not None:
                below = (name == "stop_loss") == (action == "BUY")
                if (below and p >= ref) or (not below and p <= ref):
                    return (f"{name} {p} must be {'below' if below else 'above'} the entry "
                            f"price {ref} for a {action}")
        return ""

    def _send(self, symbol, side, qty, order_type, price, trigger, product, tag=None,
              intent=None, group: str = "", exit_only: bool = False,
              bracket: _Bracket | None = None) -> OrderResult:
        """Gate, place, and report one order (strategy, bracket exit or square-off)."""
        intent = intent if intent is not None else OrderIntent(symbol, side, quantity=qty)
        key = tag or f"{self._tag_prefix}{next(self._ids):09d}"
        d = self.gate.check(key, symbol, side, qty, order_type, price, trigger, product, group,
                            exit_only)
        if d.rule:
            return self._reject(intent, d.rule, d.message, quantity=qty if isinstance(qty, int)
                                else 0, exit=exit_only)
        sized = d.quantity
        with self._lock:
            self._placing.add(key)
        try:
            return self._place(key, d, intent, symbol, side, qty, sized, order_type, price,
                               trigger, product, bracket)
        finally:
            with self._lock:
                self._placing.discard(key)

    def _place(self, key, d, intent, symbol, side, qty, sized, order_type, price, trigger,
               product, bracket: _Bracket | None = None) -> OrderResult:
        try:
            order = self.broker.place_order(symbol, side, sized, order_type, price, product,
                                            trigger, tag=key)
        except Exception as exc:
            self.gate.release(key)
            logger.exception("broker.place_order failed")
            return self._reject(intent, "broker", f"broker error: {exc}", quantity=sized,
                                stage="broker", exit=d.exit)
        if order.status == "REJECTED":
            self.gate.release(key)
            return self._reject(intent, "broker", order.message, order.order_id, sized,
                                stage="broker", exit=d.exit)
        oid = order.order_id
        with self._lock:
            self._key_of[oid] = key
            self._order_of[key] = oid
            done = self._seen.get(oid)
            if bracket is not None:
                # registered before the fills not yet applied are: each counts once, here
                # (already applied while place_order ran) or in _after_fill (the rest)
                applied = sum(f.quantity for f in order.fills if done and f.fill_id in done)
                self._brackets[oid] = bracket
                if applied:
                    self._entry_fill(bracket, applied)
            # fills the broker made while place_order ran and did not send to listeners
            # (those it did send were applied then: ``_apply_fill`` would skip them)
            missed = [f for f in order.fills if done is None or f.fill_id not in done]
        for fill in missed:
            self._apply_fill(order, fill)
        if not order.working:
            # final before we returned (filled, or cancelled/rejected while being placed,
            # whose _order_done ran before the maps were set): nothing looks it up again
            self._forget(order, key)
        failed = not order.working and order.status != "COMPLETE"
        status = "FILLED" if order.status == "COMPLETE" else "PLACED"
        if failed:       # cancelled or rejected by the exchange before we returned
            status = "REJECTED" if order.filled == 0 else "PLACED"
        message = (f"filled {order.filled} @ {order.avg_price:.2f}" if status == "FILLED"
                   else f"{order.status.lower()}; {order.filled}/{order.quantity} filled")
        if sized < qty:
            message += f" (sized down from {qty} by max_position_size)"
        result = OrderResult(order.order_id, status, order.avg_price, message, symbol, side,
                             sized, order.filled, order.fees_paise / 100,
                             rule="exchange" if status == "REJECTED" else "")
        if order.working:
            payload = self._order_payload(order)
            payload.update(status=order.status, reduce_only=d.exit)
            self._publish(ORDER_PLACED, payload)
        return result

    def _get_order(self, order_id):
        get = getattr(self.broker, "get_order", None)
        return get(order_id) if callable(get) else None

    def _order_payload(self, order) -> dict:
        return {"order_id": order.order_id, "symbol": order.symbol, "side": order.side,
                "quantity": order.quantity, "order_type": order.order_type,
                "product": order.product, "price": order.price_paise / 100 or None,
                "trigger_price": order.trigger_paise / 100 or None, "tag": order.tag,
                "filled_quantity": order.filled, "avg_price": order.avg_price,
                "ts": self.clock(), "mode": self.mode}

    # ------------------------------------------------------------ broker events

    def _on_broker_event(self, kind: str, order, fill) -> None:
        try:
            if kind == "fill":
                self._apply_fill(order, fill)
            elif kind in ("cancelled", "rejected"):
                self._order_done(kind, order)
            elif kind == "modified":
                key = self._key_of.get(order.order_id, order.tag)
                self.gate.resize(key, order.quantity - order.filled)
                payload = self._order_payload(order)
                self._publish(ORDER_MODIFIED, payload)
            elif kind == "halted":
                why = getattr(self.broker, "halt_reason", None) or \
                    (order.message if order is not None else "") or "the broker halted"
                self._halt(f"broker: {why}", "broker")
        except Exception:
            logger.exception("handling %s of %s failed", kind, getattr(order, "order_id", "?"))

    def _apply_fill(self, order, fill) -> None:
        oid = order.order_id
        with self._lock:
            seen = self._seen.get(oid)
            if seen is None:
                seen = self._seen[oid] = set()
            elif fill.fill_id in seen:
                return
            seen.add(fill.fill_id)
            key: str = self._key_of.get(oid) or getattr(order, "tag", "") or ""
            final = not order.working and key not in self._placing
            if final:
                self._seen.pop(oid, None)                # final: the portfolio's ids take over
        # the order's cumulative state as of this fill (usually its newest)
        fills = order.fills
        newest = bool(fills) and fills[-1] is fill
        if newest:
            filled, value = order.filled, order.value_paise
        else:
            upto = next((i for i, f in enumerate(fills) if f is fill or f == fill), None)
            if upto is None:            # a live broker's later fill: the order's state now
                filled, value = order.filled, order.value_paise
                newest = True
            else:
                newest = upto == len(fills) - 1
                filled = sum(f.quantity for f in fills[:upto + 1])
                value = sum(f.quantity * f.price_paise for f in fills[:upto + 1])
        # the order is final and this is its last fill: once applied, its maps go
        forget = final and newest
        quantity = order.quantity
        if type(fill) is Fill:          # Fill.to_payload and the order's state, in one dict
            price, fees = fill.price_paise, fill.fees_paise
            payload = {"fill_id": fill.fill_id, "order_id": fill.order_id,
                       "symbol": fill.symbol, "side": fill.side, "quantity": fill.quantity,
                       "price": price / 100, "price_paise": price,
                       "fees": fees / 100, "fees_paise": fees,
                       "charges": {k: v / 100 for k, v in fill.charges.items()},
                       "ts": fill.ts, "mode": self.mode,
                       "order_quantity": quantity, "filled_quantity": filled,
                       "pending_quantity": quantity - filled if quantity > filled else 0,
                       "avg_price": value / filled / 100 if filled else 0.0,
                       "order_status": "COMPLETE" if filled >= quantity else "PARTIAL",
                       "product": order.product, "order_type": order.order_type}
        else:
            payload = fill.to_payload(self.mode)
            payload.update(order_quantity=quantity, filled_quantity=filled,
                           pending_quantity=quantity - filled if quantity > filled else 0,
                           avg_price=value / filled / 100 if filled else 0.0,
                           order_status="COMPLETE" if filled >= quantity else "PARTIAL",
                           product=order.product, order_type=order.order_type)
        status = self._record(payload, fill)
        if status == "duplicate":
            if forget:
                self._forget(order, key)
            return                                       # applied before (a re-sent fill)
        if status != "applied":
            self.fill_failures += 1
            logger.error("portfolio could not record fill %s (%s %d %s @ %.2f): trading halted",
                         fill.fill_id, fill.side, fill.quantity, fill.symbol,
                         fill.price_paise / 100)
            self._halt(f"portfolio could not record fill {fill.fill_id}", "fill_not_recorded")
        self.gate.on_fill(key, fill.quantity, order.product)
        self._publish(ORDER_FILLED, payload)
        self._after_fill(order, fill)
        if forget:
            self._forget(order, key)
        self._check_daily_loss()

    def _forget(self, order, key: str) -> None:
        """The order ``oid`` is final and its fills are applied: drop what was kept to
        route its events (and, for a bracket leg, to find its bracket), so these maps
        do not grow by one entry per order forever.
        A fill a live broker re-sends later still finds its key (``order.tag``) and is
        recognised by the portfolio's fill ids."""
        oid = order.order_id
        with self._lock:
            self._seen.pop(oid, None)
            if key and getattr(order, "tag", "") == key:
                # every later lookup (`_key_of.get(oid) or order.tag`) finds the same key
                self._key_of.pop(oid, None)
            if self._order_of.get(key) == oid:
                del self._order_of[key]
            entry = self._exit_of.get(key)
            if entry is not None and entry not in self._brackets:
                del self._exit_of[key]              # a leg of a bracket already forgotten

    def _drop_bracket(self, entry_id: str) -> None:
        """Forget the bracket of ``entry_id`` and its legs' keys: every leg has ended by
        now, and a fill of a leg whose bracket is gone is handled as no leg's anyway."""
        with self._lock:
            b = self._brackets.pop(entry_id, None)
            if b is not None:
                for key in b.legs:
                    if self._exit_of.get(key) == entry_id:
                        del self._exit_of[key]

    def _record(self, payload, fill=None) -> str:
        p = self.portfolio_service
        if type(fill) is Fill and \
                getattr(type(p), "record_fill", None) is PortfolioService.record_fill and \
                "record_fill" not in getattr(p, "__dict__", ()):        # no hook on the object
            # a broker's Fill of well-formed fields: what parsing its payload would give
            fid, symbol, side = fill.fill_id, fill.symbol, fill.side
            qty, price, fee = fill.quantity, fill.price_paise, fill.fees_paise
            if type(fid) is str and fid and type(symbol) is str and type(qty) is int \
                    and type(price) is int and type(fee) is int and qty > 0 and price > 0 \
                    and fee >= 0 and (side == "BUY" or side == "SELL"):
                symbol = symbol.strip().upper()
                if symbol:
                    return p._record_fields(fid, symbol, qty if side == "BUY" else -qty,
                                            price, fee)
        record = getattr(p, "record_fill", None)
        if callable(record):
            return record(payload)
        on_fill = getattr(p, "on_fill", None)
        if not callable(on_fill):
            return "applied"
        before = getattr(p, "duplicates", None)
        if on_fill(payload):
            return "applied"
        return "duplicate" if before is not None and p.duplicates != before else "failed"

    def _order_done(self, kind: str, order) -> None:
        key = self._key_of.get(order.order_id, order.tag)
        self.gate.release(key)
        with self._lock:
            self._seen.pop(order.order_id, None)
        payload = self._order_payload(order)
        if kind == "cancelled":
            payload.update(cancelled_quantity=order.quantity - order.filled,
                           message=order.message)
            self._publish(ORDER_CANCELLED, payload)
        else:
            self.rejections["exchange"] += 1
            payload.update(status="REJECTED", rule="exchange", stage="exchange",
                           message=order.message, reduce_only=key in self._exit_of)
            self._publish(ORDER_REJECTED, payload)
        self._after_done(order, key)
        with self._lock:
            self._key_of.pop(order.order_id, None)
            self._order_of.pop(key, None)

    # ------------------------------------------------------------ brackets

    def _protective(self, symbol: str) -> tuple[int, int]:
        """(units of working bracket exits that buy, that sell) for ``symbol``: a stop and
        a target of one bracket count once, as the gate counts them."""
        buys = sells = 0
        if not self._brackets:                  # the common case: no bracket at all
            return buys, sells
        with self._lock:
            for b in list(self._brackets.values()):
                if b.symbol != symbol or not (b.stop_key or b.target_key):
                    continue
                if b.exit_side == "BUY":
                    buys += b.remaining
                else:
                    sells += b.remaining
        return buys, sells

    def _entry_fill(self, b: _Bracket, qty: int) -> None:
        """``qty`` units of ``b``'s entry were applied: the part that opened a position its
        way is protected, the part that closed an opposite one is cut (under the lock)."""
        pos = self.gate._position(b.symbol)
        held = max(0, pos) if b.exit_side == "SELL" else max(0, -pos)
        opened = min(qty, held)
        b.entry_filled += qty
        b.cut += qty - opened

    def _after_fill(self, order, fill) -> None:
        """Bracket bookkeeping from delivered fills only (what the portfolio holds):
        an entry fill adds to its bracket; an exit fill to its leg; any other fill that
        reduces the position uses up the cover of the brackets it closes, oldest first."""
        if not self._brackets:
            # no bracket at all (the common case): nothing to add to or cut.  A bracket
            # registered after this read counts this fill itself (_place reads _seen)
            return
        oid = order.order_id
        key = getattr(order, "tag", "") or self._key_of.get(oid, "")
        touched: list[str] = []
        with self._lock:
            b = self._brackets.get(oid)
            entry = self._exit_of.get(key)
            if b is not None:
                self._entry_fill(b, fill.quantity)
                touched.append(oid)
            elif entry is not None and entry in self._brackets:
                eb = self._brackets[entry]
                eb.exits_filled += fill.quantity
                eb.legs[key] = eb.legs.get(key, 0) + fill.quantity
                if not order.working:                 # this leg is done
                    for attr in ("stop_key", "target_key"):
                        if getattr(eb, attr) == key:
                            setattr(eb, attr, "")
                touched.append(entry)
            # a bracket's own exit covers its own units only
            left = 0 if entry is not None and entry in touched else fill.quantity
            for eid, other in list(self._brackets.items()):
                if left <= 0:
                    break
                if eid in touched or other.symbol != fill.symbol or \
                        other.exit_side != fill.side or not other.remaining:
                    continue
                take = min(left, other.remaining)    # closed by another order: cover ends
                other.cut += take
                left -= take
                touched.append(eid)
        for eid in touched:
            tb = self._brackets.get(eid)
            if tb is not None:
                self._sync_bracket(eid, tb)

    def _after_done(self, order, key: str) -> None:
        oid = order.order_id
        b = self._brackets.get(oid)
        if b is not None and b.entry_filled == 0:
            self._drop_bracket(oid)             # the entry ended unfilled: no exits
        entry = self._exit_of.pop(key, None)
        b = self._brackets.get(entry) if entry is not None else None
        if b is None or entry is None:
            return
        if b.stop_key == key:
            b.stop_key = ""
        if b.target_key == key:
            b.target_key = ""
        if not b.stop_key and not b.target_key and b.remaining == 0:
            self._drop_bracket(entry)

    def _sync_bracket(self, entry_id: str, b: _Bracket) -> None:
        """Keep the exits covering what the bracket still protects (``remaining``: its
        delivered entry fills, less what its exits filled and what other orders closed).
        Which leg to place, resize or cancel is decided under the lock, so two threads
        never place the same leg twice; a leg placed while fills arrived is synced again."""
        for _ in range(3):
            actions: list[tuple[str, Any, Any]] = []
            with self._lock:
                want = b.remaining
                for attr, otype, price, trigger in (("stop_key", "SL-M", None, b.stop),
                                                    ("target_key", "LIMIT", b.target, None)):
                    if price is None and trigger is None:
                        continue
                    key = getattr(b, attr)
                    if key:
                        oid = self._order_of.get(key)
                        order = self._get_order(oid) if oid else None
                        if order is None or not order.working:
                            continue             # being placed, or ended (its fills count)
                        if want <= 0:
                            actions.append(("cancel", oid, 0))
                        else:
                            total = b.legs.get(key, 0) + want    # delivered fills + the rest
                            if total != order.quantity:
                                actions.append(("modify", oid, max(total, order.filled)))
                        continue
                    if want <= 0 or b.exits_filled:
                        continue           # nothing to cover, or this leg already ended
                    key = f"{self._tag_prefix}{next(self._ids):09d}"
                    setattr(b, attr, key)
                    self._exit_of[key] = entry_id
                    actions.append(("place", attr, (otype, price, trigger, key)))
            placed = False
            for kind, ref, arg in actions:
                if kind == "cancel":
                    self.broker.cancel_order(ref)
                elif kind == "modify":
                    self.broker.modify_order(ref, quantity=arg)
                else:
                    otype, price, trigger, key = arg
                    placed = True
                    self._place_exit(entry_id, b, ref, otype, price, trigger, key, want)
            if not placed:
                break
        entry = self._get_order(entry_id)
        with self._lock:                  # over: the entry ended, nothing left to protect
            if b.remaining == 0 and not b.stop_key and not b.target_key and \
                    (entry is None or (not entry.working and b.entry_filled >= entry.filled)):
                self._drop_bracket(entry_id)

    def _place_exit(self, entry_id: str, b: _Bracket, attr: str, otype: str, price, trigger,
                    key: str, want: int) -> None:
        if otype == "SL-M" and self._stop_reached(b):
            # the entry filled at or through its stop (a gap, a fast market): the stop
            # is hit now -- exit at market rather than leave the position unprotected
            otype, trigger = "MARKET", None
            logger.warning("bracket stop %s of %s already reached at entry: exiting at "
                           "market", b.stop, b.symbol)
        r = self._send(b.symbol, b.exit_side, want, otype, price, trigger, b.product,
                       tag=key, group=entry_id, exit_only=True)
        if r.status == "REJECTED":
            logger.warning("bracket %s exit of %s rejected: %s", otype, b.symbol, r.message)
            with self._lock:
                if getattr(b, attr) == key:
                    setattr(b, attr, "")
                self._exit_of.pop(key, None)

    def _stop_reached(self, b: _Bracket) -> bool:
        """The LTP is at or beyond the bracket's stop (a SELL stop below a long's
        price, a BUY stop above a short's)."""
        ltp = self.gate._ltp(b.symbol)
        if ltp is None or b.stop is None:
            return False
        return ltp <= b.stop if b.exit_side == "SELL" else ltp >= b.stop

    # ------------------------------------------------------------ square-off

    def cancel_working(self, symbol: str | None = None) -> int:
        """Cancel every working order (of ``symbol``); returns how many were cancelled."""
        open_orders = getattr(self.broker, "open_orders", None)
        if not callable(open_orders):
            return 0
        n = 0
        for order in list(open_orders(symbol)):
            if self.broker.cancel_order(order.order_id):
                n += 1
        return n

    def square_off(self, symbol: str | None = None, reason: str = "square-off") -> list:
        """Cancel working orders and flatten positions at market (``symbol`` or all).

        Exits pass the halt and every value limit; one that still fails is
        counted in ``squareoff_failures`` and published as
        ``risk.squareoff_failed``.  Returns the OrderResults."""
        self.cancel_working(symbol)
        snap = self.portfolio_service.get_snapshot()
        results = []
        for pos in snap.get("positions", []):
            sym, qty = pos["symbol"], pos["quantity"]
            if not qty or (symbol is not None and sym != symbol):
                continue
            side = "SELL" if qty > 0 else "BUY"
            inst = self.instruments.get(sym)
            product = "MIS"
            if inst is not None:
                product = self.gate._held_product.get(inst.symbol, "MIS")
            shape = check_order_shape(inst, sym, side, abs(qty), "MARKET", None, None, product)
            if shape.rule:
                r = self._reject(OrderIntent(sym, side, quantity=abs(qty)), shape.rule,
                                 shape.message, exit=True)
            else:
                r = self._send(sym, side, abs(qty), "MARKET", None, None, product,
                               intent=OrderIntent(sym, side, 1.0, reason, quantity=abs(qty)),
                               exit_only=True)
            if r.status == "REJECTED":
                self.squareoff_failures += 1
                logger.error("square-off of %s %d failed: %s", sym, qty, r.message)
                self._publish(RISK_SQUAREOFF_FAILED, {"symbol": sym, "quantity": qty,
                                                      "message": r.message, "ts": self.clock()})
            results.append(r)
        return results


def _with(intent, **changes):
    """A copy of ``intent`` with ``changes`` (the caller's object stays as it was)."""
    if type(intent) is OrderIntent:             # the common case: no copy module round trip
        new = OrderIntent.__new__(OrderIntent)
        new.__dict__.update(intent.__dict__)
    else:
        new = copy.copy(intent)
    for k, v in changes.items():
        setattr(new, k, v)
    return new
