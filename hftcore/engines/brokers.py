"""Brokers: where an order becomes fills.

Every broker is a thin adapter behind one protocol, ``Broker`` (below), that
ExecutionService routes to.  What they share is written once, in ``OrderBook``:
the order records, fill bookkeeping (cumulative quantity and value, charges per
order as the contract note computes them) and the listeners that hear of every
fill, cancel, rejection and modification.

``PaperBroker`` simulates NSE execution against a price source; the Kite broker
(``hftcore.kite``) sends orders to Zerodha Kite Connect.  Neither decides
whether an order is allowed: that is the pre-trade gate's job
(``hftcore.gate``), which ExecutionService runs for every order, paper or live.
The paper broker only refuses what the exchange itself would refuse (unknown
symbol, quantity off the lot size, price off the tick grid), using the gate's
own shape check, so the two can never disagree.

What runs once per order is compiled (``hftcore_ext.paper``): the order record
``BrokerOrder``, ``OrderBook``'s ``add``/``fill``/``flush`` and ``PaperBroker``'s
``place_order``, ``on_bar`` (the matching) and ``watch``; the classes here are
their Python subclasses and keep the rest.  ``tests/twin_paper.py`` holds the
plain-Python code they replaced, which the compiled core must equal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Protocol, runtime_checkable

from hftcore_ext import paper as _paper

from ..gate import check_order_shape
from ..instruments import InstrumentTable
from ..orders import Fill
from .charges import ChargeSchedule

logger = logging.getLogger(__name__)

#: Order states, as Kite names them.  OPEN includes a partly filled order.
WORKING: tuple[str, ...] = ("OPEN", "TRIGGER PENDING")
FINAL: tuple[str, ...] = ("COMPLETE", "CANCELLED", "REJECTED")

#: Listener events: ``callback(kind, order, fill)``; ``fill`` is None except for "fill".
EVENT_KINDS = ("fill", "cancelled", "rejected", "modified", "halted")

Listener = Callable[[str, "BrokerOrder", "Fill | None"], None]


#: One order as the broker sees it; money in integer paise.  Compiled
#: (``hftcore_ext.paper``): the fields, defaults and properties of the dataclass it
#: replaced (order_id, symbol, side, quantity, order_type="MARKET", price_paise=0,
#: product="MIS", status="OPEN", filled=0, value_paise=0, fees_paise=0, message="",
#: fills=[], trigger_paise=0, tag="", ts=0, charges={}; avg_price, pending, working,
#: price, trigger_price), and ``dataclasses.fields``/``asdict`` still work on it.
BrokerOrder = _paper.BrokerOrder


@runtime_checkable
class Broker(Protocol):
    """What ExecutionService needs of a broker (paper, Kite, or your own).

    ``live`` says whether orders reach a real exchange; ExecutionService refuses
    a broker whose ``live`` does not match its ``mode``.  Prices are rupees,
    ``order_type`` MARKET / LIMIT / SL / SL-M, ``product`` MIS / CNC / NRML.
    ``place_order`` never raises for a bad order: it returns it REJECTED with the
    reason in ``message``.  Everything that happens to an order after
    ``place_order`` returned (and the fills made while it ran) reaches the
    listeners as ``callback(kind, order, fill)``, ``kind`` one of ``"fill"``,
    ``"cancelled"``, ``"rejected"`` (after acceptance), ``"modified"`` or
    ``"halted"`` (the broker can no longer trade, ``order.message`` says why).
    """

    live: bool
    instruments: InstrumentTable

    def place_order(self, symbol: str, side: str, quantity: int, order_type: str = "MARKET",
                    price: float | None = None, product: str = "MIS",
                    trigger_price: float | None = None,
                    tag: str | None = None) -> BrokerOrder: ...

    def modify_order(self, order_id: str, quantity: int | None = None,
                     price: float | None = None,
                     trigger_price: float | None = None) -> bool: ...

    def cancel_order(self, order_id: str) -> bool: ...

    def get_order(self, order_id: str) -> BrokerOrder | None: ...

    def open_orders(self, symbol: str | None = None) -> list[BrokerOrder]: ...

    def get_ltp(self, symbol: str) -> float | None: ...

    def add_listener(self, callback: Listener) -> None: ...


class OrderBook(_paper.OrderBookCore):
    """Order records and fill bookkeeping shared by every broker.

    ``fill()`` is the one place a broker turns an execution into a ``Fill``:
    it updates the order's cumulative quantity, value and status and charges
    the fill what the order's contract-note charges grew by (so the Rs 20
    brokerage cap applies per order, not per fill).  Events are queued while
    the broker holds its lock and delivered by ``flush()`` after it lets go, in
    the order they happened.
    """

    KEEP_DONE = 10_000           # finished orders kept for get_order(); bounded for long runs

    def __init__(self, charges: ChargeSchedule | None = None, clock=time.time_ns):
        self.charges = charges if charges is not None else ChargeSchedule()
        self.clock = clock
        self.orders: dict[str, BrokerOrder] = {}
        self._done: deque[str] = deque()
        self._listeners: list[Listener] = []
        self._pending: deque[tuple[str, BrokerOrder, Fill | None]] = deque()
        self._flush_lock = threading.Lock()
        self._flushing: int | None = None          # the thread delivering events now

    def add_listener(self, callback: Listener) -> None:
        self._listeners.append(callback)

    # add(order), fill(order, quantity, price_paise, ts=None, fill_id=None) -> Fill and
    # flush() are compiled (hftcore_ext.paper.OrderBookCore): they run once per order.

    def finish(self, order: BrokerOrder, status: str, message: str = "") -> None:
        """Move a working order to CANCELLED or REJECTED (after acceptance)."""
        order.status = status
        if message:
            order.message = message
        self._pending.append(("cancelled" if status == "CANCELLED" else "rejected", order, None))

    def event(self, kind: str, order: BrokerOrder) -> None:
        self._pending.append((kind, order, None))


class PaperBroker(_paper.PaperCore):
    """Simulated NSE execution against a live or replayed price source.

    Parameters
    ----------
    price_source : object with ``get_ltp(symbol)``
        A feed or the MarketDataService.
    instruments : InstrumentTable
    slippage_ticks : int
        MARKET and SL-M fills are this many ticks worse than the price they fill at.
    charges : ChargeSchedule
        NSE costs, per order (``ZERO_CHARGES`` for none).
    max_fill_quantity : int or None
        Liquidity per match: orders larger than this fill partially, the rest
        on later prices.
    clock : callable -> int ns
        Fill timestamps (the session passes its simulated clock).
    id_prefix : str
        Order ids are ``<prefix><9-digit sequence>``; give each process that shares a
        portfolio journal its own prefix so ids never repeat across restarts.
    fill_at : "close" or "next_open"
        "close": a MARKET order fills when placed, at the current price (the tick,
        or the close of the bar that decided).  "next_open": every order waits for
        the next price update of its symbol (``on_bar`` / ``on_price``) and a MARKET
        order fills at that bar's open, as backtesting.py does; the default for bars.

    Matching against a bar (``on_bar(symbol, open, high, low, close)``; a tick
    is a bar with all four equal): stop orders first (a BUY stop triggers when
    the high reaches its trigger, a SELL stop when the low does; a gap through
    the trigger fills at the open), then the rest: MARKET at the open, a BUY
    LIMIT at the open if the open is at or below its price, else at its price
    if the low reaches it (SELL mirrored).  When a stop and a target of one
    bracket are both reached in one bar, the stop fills first (the cautious
    assumption; a bar does not say which came first).
    """

    live = False

    def __init__(self, price_source, instruments: InstrumentTable | None = None,
                 slippage_ticks: int = 0, charges: ChargeSchedule | None = None,
                 max_fill_quantity: int | None = None, clock=time.time_ns,
                 id_prefix: str = "PB", fill_at: str = "close"):
        if not callable(getattr(price_source, "get_ltp", None)):
            raise ValueError("price_source needs a get_ltp(symbol) method")
        if isinstance(slippage_ticks, bool) or not isinstance(slippage_ticks, int) \
                or slippage_ticks < 0:
            raise ValueError(f"slippage_ticks must be an int >= 0, got {slippage_ticks!r}")
        if max_fill_quantity is not None and (isinstance(max_fill_quantity, bool) or not
                                              isinstance(max_fill_quantity, int)
                                              or max_fill_quantity < 1):
            raise ValueError(f"max_fill_quantity must be None or an int >= 1, "
                             f"got {max_fill_quantity!r}")
        if not isinstance(id_prefix, str) or not id_prefix:
            raise ValueError(f"id_prefix must be a non-empty str, got {id_prefix!r}")
        if fill_at not in ("close", "next_open"):
            raise ValueError(f"fill_at must be 'close' or 'next_open', got {fill_at!r}")
        self.price_source = price_source
        self.instruments = instruments if instruments is not None else InstrumentTable.nse_default()
        self.slippage_ticks = slippage_ticks
        self.max_fill_quantity = max_fill_quantity
        self.clock = clock
        self.id_prefix = id_prefix
        self.fill_at = fill_at
        self.book: OrderBook = OrderBook(charges, clock)
        self._lock = threading.RLock()
        self._seq = 0
        self._open: dict[str, list[BrokerOrder]] = {}

    @property
    def charges(self) -> ChargeSchedule:
        return self.book.charges

    def add_listener(self, callback: Listener) -> None:
        """``callback(kind, order, fill)`` for every fill (including those made while
        ``place_order`` runs), cancel, modification and rejection."""
        self.book.add_listener(callback)

    def add_fill_listener(self, callback: Callable[[Fill], None]) -> None:
        """``callback(Fill)`` for every fill (the older, fills-only listener)."""
        def fills_only(kind: str, order: BrokerOrder, fill: Fill | None) -> None:
            if kind == "fill" and fill is not None:
                callback(fill)
        self.book.add_listener(fills_only)

    def get_ltp(self, symbol) -> float | None:
        return self.price_source.get_ltp(symbol)

    # ------------------------------------------------------------ orders

    # place_order(symbol, side, quantity, order_type="MARKET", price=None, product="MIS",
    # trigger_price=None, tag=None) -> BrokerOrder is compiled (hftcore_ext.paper.PaperCore):
    # it never raises for bad arguments (the order comes back REJECTED with the reason);
    # with fill_at="close" a MARKET order fills at once, at the current price.

    def modify_order(self, order_id, quantity=None, price=None, trigger_price=None) -> bool:
        """Change a working order's total quantity, limit price or trigger price
        (None keeps it).  False if the order isn't working or the change is invalid."""
        with self._lock:
            order = self.book.orders.get(order_id)
            if order is None or not order.working:
                return False
            inst = self.instruments.get(order.symbol)
            qty = order.quantity if quantity is None else quantity
            px = order.price if price is None else price
            trig = order.trigger_price if trigger_price is None else trigger_price
            shape = check_order_shape(inst, order.symbol, order.side, qty, order.order_type, px,
                                      trig, order.product)
            if shape.rule or qty <= order.filled:
                return False
            order.quantity, order.price_paise, order.trigger_paise = \
                qty, shape.price_paise, shape.trigger_paise
            self.book.event("modified", order)
        self.book.flush()
        return True

    def cancel_order(self, order_id) -> bool:
        with self._lock:
            order = self.book.orders.get(order_id)
            if order is None or not order.working:
                return False
            self._open[order.symbol].remove(order)
            self.book.finish(order, "CANCELLED", f"cancelled; {order.filled}/{order.quantity} "
                                                 f"filled")
        self.book.flush()
        return True

    def get_order(self, order_id) -> BrokerOrder | None:
        return self.book.orders.get(order_id)

    def open_orders(self, symbol=None) -> list[BrokerOrder]:
        with self._lock:
            if symbol is None:
                return [o for lst in self._open.values() for o in lst]
            inst = self.instruments.get(symbol)
            return list(self._open.get(inst.symbol, [])) if inst else []

    def has_open_orders(self) -> bool:
        return any(self._open.values())

    # ------------------------------------------------------------ matching

    # watch(symbol) -> (next_bar, high_at, low_at) is compiled (PaperCore.watch): what
    # price would make the symbol's working orders act, for the session's bar scan.

    def on_price(self, symbol, price, ts=None) -> list[Fill]:
        """A new LTP for ``symbol``: match working orders; listeners get the fills."""
        return self.on_bar(symbol, price, price, price, price, ts)

    # on_bar(symbol, open, high, low, close, ts=None) -> list[Fill] is compiled
    # (PaperCore.on_bar): a new bar (or tick) for ``symbol`` matches its working orders,
    # one fill at a time, the listeners told before the next order is matched.

    # _match(symbol, o, h, lo, c, ts, only=None, skip=(), first=False) -> list[Fill] and
    # _slip are compiled (PaperCore): the matching rules above, against paise prices.


# One KiteBroker: the complete one in hftcore.kite (order tracking from order updates and
# polling, tags and lookups, rate limits, reconciliation), re-exported where brokers live.
from ..kite.broker import KiteBroker  # noqa: E402,F401
