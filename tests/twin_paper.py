"""The plain-Python twin of ``hftcore_ext.paper``: the reference the compiled code must equal.

This is the paper broker as it was written in Python before its order record,
fill bookkeeping and matching were compiled (hftcore/engines/brokers.py:
``BrokerOrder``, ``OrderBook``, ``PaperBroker``), copied unchanged but for the
names, and for one fix made with the compiled version: with ``fill_at="close"`` an LTP
that is not a usable price (a bool, NaN, beyond the limit) rejects the order instead of
raising with the order left working.  ``tests/test_paper_core.py`` runs both on random
orders and bars and requires the same fills, statuses and events;
``benches/test_bench_paper.py`` times placing an order with each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from hftcore.engines.charges import COMPONENTS, ChargeSchedule
from hftcore.gate import check_order_shape
from hftcore.instruments import InstrumentTable, to_paise
from hftcore.orders import Fill

logger = logging.getLogger(__name__)


def _valid_paise(ltp):
    """An LTP as paise, or None if it is not a usable price."""
    if ltp is None or isinstance(ltp, bool):
        return None
    try:
        p = to_paise(ltp)
    except (ValueError, TypeError):
        return None
    return p if p > 0 else None

WORKING: tuple[str, ...] = ("OPEN", "TRIGGER PENDING")

Listener = Callable[[str, "TwinOrder", "Fill | None"], None]


@dataclass(slots=True, eq=False)
class TwinOrder:                 # was BrokerOrder
    """One order as the broker sees it; money in integer paise."""
    order_id: str
    symbol: str
    side: str
    quantity: int
    order_type: str = "MARKET"
    price_paise: int = 0                 # limit price (LIMIT, SL); 0 otherwise
    product: str = "MIS"
    status: str = "OPEN"                 # OPEN, TRIGGER PENDING, COMPLETE, CANCELLED, REJECTED
    filled: int = 0
    value_paise: int = 0                 # sum of fill qty * price
    fees_paise: int = 0
    message: str = ""
    fills: list = field(default_factory=list)
    trigger_paise: int = 0               # SL / SL-M trigger; 0 otherwise
    tag: str = ""                        # the client's id for the order (idempotency)
    ts: int = 0                          # ns, when it was placed
    charges: dict = field(default_factory=dict)   # paise by component, all fills so far

    @property
    def avg_price(self) -> float:
        """Average fill price in rupees (0.0 if nothing filled)."""
        return self.value_paise / self.filled / 100 if self.filled else 0.0

    @property
    def pending(self) -> int:
        """Units still to fill while the order is working (0 once final)."""
        return self.quantity - self.filled if self.status in WORKING else 0

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def price(self) -> float | None:
        return self.price_paise / 100 if self.price_paise else None

    @property
    def trigger_price(self) -> float | None:
        return self.trigger_paise / 100 if self.trigger_paise else None


class TwinBook:                  # was OrderBook
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
        self.orders: dict[str, TwinOrder] = {}
        self._done: deque[str] = deque()
        self._listeners: list[Listener] = []
        self._pending: deque[tuple[str, TwinOrder, Fill | None]] = deque()
        self._flush_lock = threading.Lock()
        self._flushing: int | None = None          # the thread delivering events now

    def add_listener(self, callback: Listener) -> None:
        self._listeners.append(callback)

    def add(self, order: TwinOrder) -> None:
        self.orders[order.order_id] = order
        self._done.append(order.order_id)
        while len(self._done) > self.KEEP_DONE:      # forget the oldest finished orders
            oid = self._done.popleft()
            old = self.orders.get(oid)
            if old is not None and old.working:
                self._done.append(oid)                # still working: look again later
                break
            self.orders.pop(oid, None)

    def fill(self, order: TwinOrder, quantity: int, price_paise: int, ts: int | None = None,
             fill_id: str | None = None) -> Fill:
        """Record an execution of ``quantity`` at ``price_paise`` on ``order``."""
        ch = self.charges.charges_for_fill(order.side, order.value_paise, quantity * price_paise,
                                           order.charges, order.product)
        fee = ch.pop("total")
        fid = fill_id or f"{order.order_id}-{len(order.fills) + 1}"
        fill = Fill(fid, order.order_id, order.symbol, order.side, quantity, price_paise, fee,
                    int(self.clock()) if ts is None else int(ts), ch)
        order.fills.append(fill)
        order.filled += quantity
        order.value_paise += quantity * price_paise
        order.fees_paise += fee
        for k in COMPONENTS:
            order.charges[k] = order.charges.get(k, 0) + ch[k]
        if order.filled >= order.quantity:
            order.status = "COMPLETE"
        elif order.status == "TRIGGER PENDING":
            order.status = "OPEN"
        self._pending.append(("fill", order, fill))
        return fill

    def finish(self, order: TwinOrder, status: str, message: str = "") -> None:
        """Move a working order to CANCELLED or REJECTED (after acceptance)."""
        order.status = status
        if message:
            order.message = message
        self._pending.append(("cancelled" if status == "CANCELLED" else "rejected", order, None))

    def event(self, kind: str, order: TwinOrder) -> None:
        self._pending.append((kind, order, None))

    def flush(self) -> None:
        """Deliver queued events to the listeners (call without holding the broker's lock).

        One deliverer at a time keeps events in order; a listener that acts on the
        broker (a bracket cancelling its other leg) queues its events, and the
        delivery loop already running hands them out next."""
        if self._flushing == threading.get_ident():
            return
        with self._flush_lock:
            self._flushing = threading.get_ident()
            try:
                while self._pending:
                    kind, order, fill = self._pending.popleft()
                    for cb in list(self._listeners):
                        try:
                            cb(kind, order, fill)
                        except Exception:
                            logger.exception("order listener %r failed on %s of %s", cb, kind,
                                             order.order_id)
            finally:
                self._flushing = None


class TwinPaperBroker:           # was PaperBroker
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
        self.book = TwinBook(charges, clock)
        self._lock = threading.RLock()
        self._seq = 0
        self._open: dict[str, list[TwinOrder]] = {}

    @property
    def charges(self) -> ChargeSchedule:
        return self.book.charges

    def add_listener(self, callback: Listener) -> None:
        """``callback(kind, order, fill)`` for every fill (including those made while
        ``place_order`` runs), cancel, modification and rejection."""
        self.book.add_listener(callback)

    def add_fill_listener(self, callback: Callable[[Fill], None]) -> None:
        """``callback(Fill)`` for every fill (the older, fills-only listener)."""
        def fills_only(kind: str, order: TwinOrder, fill: Fill | None) -> None:
            if kind == "fill" and fill is not None:
                callback(fill)
        self.book.add_listener(fills_only)

    def get_ltp(self, symbol) -> float | None:
        return self.price_source.get_ltp(symbol)

    # ------------------------------------------------------------ orders

    def place_order(self, symbol, side, quantity, order_type="MARKET", price=None,
                    product="MIS", trigger_price=None, tag=None) -> TwinOrder:
        """Place an order; returns it with any immediate fills.  Never raises for
        bad arguments: the order comes back REJECTED with the reason."""
        with self._lock:
            self._seq += 1
            oid = f"{self.id_prefix}{self._seq:09d}"
            order = TwinOrder(oid, str(symbol), str(side), 0, str(order_type).upper(),
                                product=str(product).upper(), tag=str(tag or ""),
                                ts=int(self.clock()))
            self.book.add(order)
            inst = self.instruments.get(symbol)
            shape = check_order_shape(inst, symbol, side, quantity, order.order_type, price,
                                      trigger_price, order.product)
            if shape.rule:
                order.status, order.message = "REJECTED", shape.message
                return order
            assert inst is not None                 # the shape check refuses unknown symbols
            order.symbol, order.quantity = inst.symbol, quantity
            order.price_paise, order.trigger_paise = shape.price_paise, shape.trigger_paise
            ltp = self.price_source.get_ltp(inst.symbol)
            p = None
            if ltp is not None and self.fill_at == "close":   # the price it fills at now
                p = _valid_paise(ltp)
                if p is None:
                    order.status = "REJECTED"
                    order.message = f"no valid price for {inst.symbol} (got {ltp!r})"
                    return order
            elif ltp is None and (order.order_type == "MARKET" or self.fill_at == "close"):
                order.status, order.message = "REJECTED", f"no price for {inst.symbol}"
                return order
            if order.order_type in ("SL", "SL-M"):
                order.status = "TRIGGER PENDING"
            self._open.setdefault(inst.symbol, []).append(order)
            if p is not None:                    # this order only: the others saw this price
                self._match(inst.symbol, p, p, p, p, None, only=order)
        self.book.flush()
        return order

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

    def get_order(self, order_id) -> TwinOrder | None:
        return self.book.orders.get(order_id)

    def open_orders(self, symbol=None) -> list[TwinOrder]:
        with self._lock:
            if symbol is None:
                return [o for lst in self._open.values() for o in lst]
            inst = self.instruments.get(symbol)
            return list(self._open.get(inst.symbol, [])) if inst else []

    def has_open_orders(self) -> bool:
        return any(self._open.values())

    # ------------------------------------------------------------ matching

    def watch(self, symbol: str) -> tuple[bool, float, float]:
        """What price would make ``symbol``'s working orders act:
        ``(next_bar, high_at, low_at)``: act on the very next bar, or when a bar's
        high reaches ``high_at`` or its low reaches ``low_at`` (rupees; inf / -inf
        when nothing waits on that side).  The session scans bars for these
        without entering Python per bar."""
        nxt, hi, lo = False, float("inf"), float("-inf")
        for o in self._open.get(symbol, ()):
            if o.order_type == "MARKET":
                nxt = True
            elif o.status == "TRIGGER PENDING":
                t = o.trigger_paise / 100
                if o.side == "BUY":
                    hi = min(hi, t)
                else:
                    lo = max(lo, t)
            elif o.side == "BUY":
                lo = max(lo, o.price_paise / 100)
            else:
                hi = min(hi, o.price_paise / 100)
        return nxt, hi, lo

    def on_price(self, symbol, price, ts=None) -> list[Fill]:
        """A new LTP for ``symbol``: match working orders; listeners get the fills."""
        return self.on_bar(symbol, price, price, price, price, ts)

    def on_bar(self, symbol, open, high, low, close, ts=None) -> list[Fill]:
        """A new bar (or tick) for ``symbol``: match working orders against it."""
        inst = self.instruments.get(symbol)
        if inst is None:
            return []
        try:
            o, h, lo, c = to_paise(open), to_paise(high), to_paise(low), to_paise(close)
        except ValueError:
            return []
        if not (0 < lo <= min(o, c) and max(o, c) <= h):
            return []
        # one fill at a time, its listeners told before the next order is matched: the
        # OMS cancels a bracket's other leg at once, so a wide bar cannot fill both the
        # stop and the target (which would reverse the position)
        fills: list[Fill] = []
        done: set[str] = set()
        while True:
            with self._lock:
                if not self._open.get(inst.symbol):
                    break
                got = self._match(inst.symbol, o, h, lo, c, ts, skip=done, first=True)
            self.book.flush()
            if not got:
                break
            fills += got
            done.add(got[0].order_id)
        return fills

    def _slip(self, inst, side: str, px: int) -> int:
        if not self.slippage_ticks:
            return px
        tick = inst.tick_paise(px)
        slip = self.slippage_ticks * tick
        return px + slip if side == "BUY" else max(tick, px - slip)

    def _match(self, symbol: str, o: int, h: int, lo: int, c: int, ts, only=None,
               skip=(), first: bool = False) -> list[Fill]:
        """Fill the working orders of ``symbol`` this bar reaches (``only``: that order;
        ``skip``: order ids already filled on this bar; ``first``: stop after one fill)."""
        inst = self.instruments.get(symbol)
        orders = self._open.get(symbol, [])
        # stops first: within one bar the cautious assumption is that the stop came first
        orders.sort(key=lambda x: x.status != "TRIGGER PENDING")
        fills = []
        for order in orders:
            if (only is not None and order is not only) or order.order_id in skip \
                    or not order.working:
                continue
            px = None
            buy = order.side == "BUY"
            if order.status == "TRIGGER PENDING":
                t = order.trigger_paise
                if buy and h >= t:
                    at = max(o, t)
                elif not buy and lo <= t:
                    at = min(o, t)
                else:
                    continue
                order.status = "OPEN"
                if order.order_type == "SL-M":
                    px = self._slip(inst, order.side, at)
                elif (buy and at <= order.price_paise) or (not buy and at >= order.price_paise):
                    px = at
                elif (buy and lo <= order.price_paise) or (not buy and h >= order.price_paise):
                    px = order.price_paise
            elif order.order_type in ("MARKET", "SL-M"):
                px = self._slip(inst, order.side, o)
            elif buy:
                px = o if o <= order.price_paise else order.price_paise if lo <= order.price_paise \
                    else None
            else:
                px = o if o >= order.price_paise else order.price_paise if h >= order.price_paise \
                    else None
            if px is None:
                continue
            qty = order.quantity - order.filled
            if self.max_fill_quantity is not None:
                qty = min(qty, self.max_fill_quantity)
            fills.append(self.book.fill(order, qty, px, ts))
            if first:
                break
        self._open[symbol] = [x for x in orders if x.working]
        return fills
