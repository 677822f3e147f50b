"""The paper broker's compiled core: order records, fill bookkeeping, matching.

``BrokerOrder`` is the order record every broker hands out (an extension type
that is also a dataclass: ``dataclasses.fields``/``asdict`` work on it).
``OrderBookCore`` is the base of ``hftcore.engines.brokers.OrderBook``: the
order records and the fill bookkeeping (``fill``: cumulative quantity, value,
fees and charges, status).  ``PaperCore`` is the base of ``PaperBroker``:
``place_order``, the bar matching (``on_bar``, ``_match``) and ``watch``.  The Python
subclasses keep everything that is not per order (construction checks,
listeners, modify and cancel).

Money is integer paise held as Python ints (never a C integer here), so no sum
can overflow; comparisons and sums are the ones the Python code made, in the
same order.  The hftcore modules this needs (``Fill``, the charge components,
the shape check, ``to_paise``) are imported on first use: ``hftcore`` imports
this module while it is itself being imported.
"""

cimport cython
from cpython.pythread cimport PyThread_get_thread_ident
from libc.math cimport fabs, isfinite, rint

import logging

logger = logging.getLogger("hftcore.engines.brokers")   # the brokers' logger, as before

# filled in by _load() on first use (see the module docstring)
cdef object _Fill = None
cdef object _COMPONENTS = None
cdef object _check_order_shape = None
cdef object _to_paise = None
cdef double _MAX_PAISE = 0.0


cdef int _load() except -1:
    global _Fill, _COMPONENTS, _check_order_shape, _to_paise, _MAX_PAISE
    from hftcore.engines.charges import COMPONENTS
    from hftcore.gate import check_order_shape
    from hftcore.instruments import MAX_PAISE, to_paise
    from hftcore.orders import Fill
    _COMPONENTS, _check_order_shape, _to_paise = tuple(COMPONENTS), check_order_shape, to_paise
    _MAX_PAISE = float(MAX_PAISE)
    _Fill = Fill
    return 0


cdef object _valid_paise(object ltp):
    """An LTP as paise, or None if it is not a usable price (None, a bool, NaN, <= 0,
    beyond the limit, not a number): what the gate's ``_ltp`` refuses too."""
    if ltp is None or isinstance(ltp, bool):
        return None
    try:
        p = _paise(ltp)
    except (ValueError, TypeError):
        return None
    return p if p > 0 else None


cdef inline object _paise(object x):
    """``hftcore.instruments.to_paise(x)``; a float is converted here (same rounding:
    half to even, as ``round``), anything else by ``to_paise`` itself."""
    cdef double p
    if type(x) is float:
        p = (<double>x) * 100.0
        if isfinite(p) and fabs(p) <= _MAX_PAISE:
            return <long long>rint(p)            # |p| <= 1e17: fits
    return _to_paise(x)


def to_paise(x):
    """``hftcore.instruments.to_paise`` as the paper broker computes it (for tests)."""
    if _Fill is None:
        _load()
    return _paise(x)


class _New:
    """The default of ``fills`` and ``charges``: a new list / dict per order."""
    __slots__ = ()

    def __repr__(self):
        return "<factory>"


cdef object _NEW = _New()


@cython.dataclasses.dataclass(init=False, repr=True, eq=False)
cdef class BrokerOrder:
    """One order as the broker sees it; money in integer paise.

    A compiled record with the fields (and defaults) of the dataclass it replaced;
    ``dataclasses.fields`` and ``asdict`` work on it, equality is identity."""
    order_id: object
    symbol: object
    side: object
    quantity: object
    order_type: object = "MARKET"
    price_paise: object = 0          # limit price (LIMIT, SL); 0 otherwise
    product: object = "MIS"
    status: object = "OPEN"          # OPEN, TRIGGER PENDING, COMPLETE, CANCELLED, REJECTED
    filled: object = 0
    value_paise: object = 0          # sum of fill qty * price
    fees_paise: object = 0
    message: object = ""
    fills: object = cython.dataclasses.field(default_factory=list)
    trigger_paise: object = 0        # SL / SL-M trigger; 0 otherwise
    tag: object = ""                 # the client's id for the order (idempotency)
    ts: object = 0                   # ns, when it was placed
    charges: object = cython.dataclasses.field(default_factory=dict)  # paise by component

    def __init__(self, order_id, symbol, side, quantity, order_type="MARKET", price_paise=0,
                 product="MIS", status="OPEN", filled=0, value_paise=0, fees_paise=0,
                 message="", fills=_NEW, trigger_paise=0, tag="", ts=0, charges=_NEW):
        self.order_id = order_id
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.order_type = order_type
        self.price_paise = price_paise
        self.product = product
        self.status = status
        self.filled = filled
        self.value_paise = value_paise
        self.fees_paise = fees_paise
        self.message = message
        self.fills = [] if fills is _NEW else fills
        self.trigger_paise = trigger_paise
        self.tag = tag
        self.ts = ts
        self.charges = {} if charges is _NEW else charges

    @property
    def avg_price(self):
        """Average fill price in rupees (0.0 if nothing filled)."""
        return self.value_paise / self.filled / 100 if self.filled else 0.0

    @property
    def pending(self):
        """Units still to fill while the order is working (0 once final)."""
        return self.quantity - self.filled if self.status in ("OPEN", "TRIGGER PENDING") else 0

    @property
    def working(self):
        return self.status in ("OPEN", "TRIGGER PENDING")

    @property
    def price(self):
        return self.price_paise / 100 if self.price_paise else None

    @property
    def trigger_price(self):
        return self.trigger_paise / 100 if self.trigger_paise else None

    def to_dict(self):
        """The fields by name (shallow: the same ``fills`` list and ``charges`` dict)."""
        return {"order_id": self.order_id, "symbol": self.symbol, "side": self.side,
                "quantity": self.quantity, "order_type": self.order_type,
                "price_paise": self.price_paise, "product": self.product,
                "status": self.status, "filled": self.filled,
                "value_paise": self.value_paise, "fees_paise": self.fees_paise,
                "message": self.message, "fills": self.fills,
                "trigger_paise": self.trigger_paise, "tag": self.tag, "ts": self.ts,
                "charges": self.charges}


cdef inline bint _working(BrokerOrder order):
    return order.status in ("OPEN", "TRIGGER PENDING")


cdef class OrderBookCore:
    """The compiled half of ``OrderBook``: order records and fill bookkeeping."""
    cdef public object charges
    cdef public object clock
    cdef public object orders
    cdef public object _done
    cdef public object _listeners
    cdef public object _pending
    cdef public object _flush_lock
    cdef public object _flushing

    cpdef add(self, order):
        """Keep ``order`` for ``get_order``; the oldest finished ones beyond
        ``KEEP_DONE`` are forgotten (a working one is kept)."""
        cdef object done = self._done
        self.orders[order.order_id] = order
        done.append(order.order_id)
        keep = self.KEEP_DONE
        while len(done) > keep:                  # forget the oldest finished orders
            oid = done.popleft()
            old = self.orders.get(oid)
            if old is not None and old.working:
                done.append(oid)                 # still working: look again later
                break
            self.orders.pop(oid, None)

    cpdef fill(self, BrokerOrder order, quantity, price_paise, ts=None, fill_id=None):
        """Record an execution of ``quantity`` at ``price_paise`` on ``order``."""
        if order is None:                        # a C field read of None would crash
            raise TypeError("fill() needs a BrokerOrder, got None")
        if _Fill is None:
            _load()
        turnover = quantity * price_paise
        ch = self.charges.charges_for_fill(order.side, order.value_paise, turnover,
                                           order.charges, order.product)
        fee = ch.pop("total")
        fid = fill_id or f"{order.order_id}-{len(order.fills) + 1}"
        fill = _Fill(fid, order.order_id, order.symbol, order.side, quantity, price_paise, fee,
                     int(self.clock()) if ts is None else int(ts), ch)
        order.fills.append(fill)
        order.filled += quantity
        order.value_paise += turnover
        order.fees_paise += fee
        oc = order.charges
        if type(oc) is dict and type(ch) is dict:
            for k in _COMPONENTS:
                (<dict>oc)[k] = (<dict>oc).get(k, 0) + (<dict>ch)[k]
        else:
            for k in _COMPONENTS:
                oc[k] = oc.get(k, 0) + ch[k]
        if order.filled >= order.quantity:
            order.status = "COMPLETE"
        elif order.status == "TRIGGER PENDING":
            order.status = "OPEN"
        self._pending.append(("fill", order, fill))
        return fill

    cpdef flush(self):
        """Deliver queued events to the listeners (call without holding the broker's lock).

        One deliverer at a time keeps events in order; a listener that acts on the
        broker (a bracket cancelling its other leg) queues its events, and the
        delivery loop already running hands them out next."""
        me = PyThread_get_thread_ident()
        if self._flushing == me:
            return
        with self._flush_lock:
            self._flushing = me
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


cdef class PaperCore:
    """The compiled half of ``PaperBroker``: placing and matching."""
    cdef public object price_source
    cdef public object instruments
    cdef public object slippage_ticks
    cdef public object max_fill_quantity
    cdef public object clock
    cdef public object id_prefix
    cdef public object fill_at
    cdef OrderBookCore _book
    cdef public object _lock
    cdef public object _seq
    cdef public object _open

    @property
    def book(self):
        """The ``OrderBook`` (records, fill bookkeeping, listeners)."""
        return self._book

    @book.setter
    def book(self, OrderBookCore value not None):
        self._book = value

    def place_order(self, symbol, side, quantity, order_type="MARKET", price=None,
                    product="MIS", trigger_price=None, tag=None):
        """Place an order; returns it with any immediate fills.  Never raises for
        bad arguments: the order comes back REJECTED with the reason."""
        cdef BrokerOrder order
        if _Fill is None:
            _load()
        with self._lock:
            self._seq += 1
            oid = f"{self.id_prefix}{self._seq:09d}"
            order = BrokerOrder(oid, str(symbol), str(side), 0, str(order_type).upper(),
                                product=str(product).upper(), tag=str(tag or ""),
                                ts=int(self.clock()))
            self._book.add(order)
            inst = self.instruments.get(symbol)
            shape = _check_order_shape(inst, symbol, side, quantity, order.order_type, price,
                                       trigger_price, order.product)
            if shape.rule:
                order.status, order.message = "REJECTED", shape.message
                return order
            sym = inst.symbol
            order.symbol, order.quantity = sym, quantity
            order.price_paise, order.trigger_paise = shape.price_paise, shape.trigger_paise
            ltp = self.price_source.get_ltp(sym)
            p = None
            if ltp is not None and self.fill_at == "close":   # the price it fills at now
                p = _valid_paise(ltp)
                if p is None:
                    order.status = "REJECTED"
                    order.message = f"no valid price for {sym} (got {ltp!r})"
                    return order
            elif ltp is None and (order.order_type == "MARKET" or self.fill_at == "close"):
                order.status, order.message = "REJECTED", f"no price for {sym}"
                return order
            if order.order_type in ("SL", "SL-M"):
                order.status = "TRIGGER PENDING"
            self._open.setdefault(sym, []).append(order)
            if p is not None:                    # this order only: the others saw this price
                self._match(sym, p, p, p, p, None, order, (), False)
        self._book.flush()
        return order

    def watch(self, symbol):
        """What price would make ``symbol``'s working orders act:
        ``(next_bar, high_at, low_at)``: act on the very next bar, or when a bar's
        high reaches ``high_at`` or its low reaches ``low_at`` (rupees; inf / -inf
        when nothing waits on that side).  The session scans bars for these
        without entering Python per bar."""
        cdef BrokerOrder o
        cdef bint nxt = False
        cdef double hi = float("inf"), lo = float("-inf"), t
        for x in self._open.get(symbol, ()):
            if x is None:
                raise TypeError(f"a working order of {symbol!r} is None")
            o = <BrokerOrder?>x
            if o.order_type == "MARKET":
                nxt = True
            elif o.status == "TRIGGER PENDING":
                t = o.trigger_paise / 100
                if o.side == "BUY":
                    hi = min(hi, t)
                else:
                    lo = max(lo, t)
            elif o.side == "BUY":
                lo = max(lo, <double>(o.price_paise / 100))
            else:
                hi = min(hi, <double>(o.price_paise / 100))
        return nxt, hi, lo

    def on_bar(self, symbol, open, high, low, close, ts=None):
        """A new bar (or tick) for ``symbol``: match working orders against it."""
        cdef list fills = [], got
        if _Fill is None:
            _load()
        inst = self.instruments.get(symbol)
        if inst is None:
            return []
        try:
            o, h, lo, c = _paise(open), _paise(high), _paise(low), _paise(close)
        except ValueError:
            return []
        if not (0 < lo <= min(o, c) and max(o, c) <= h):
            return []
        # one fill at a time, its listeners told before the next order is matched: the
        # OMS cancels a bracket's other leg at once, so a wide bar cannot fill both the
        # stop and the target (which would reverse the position)
        sym = inst.symbol
        done = set()
        while True:
            with self._lock:
                if not self._open.get(sym):
                    break
                got = self._match(sym, o, h, lo, c, ts, None, done, True)
            self._book.flush()
            if not got:
                break
            fills += got
            done.add(got[0].order_id)
        return fills

    cpdef _slip(self, inst, side, px):
        """``px`` moved ``slippage_ticks`` ticks against ``side`` (a subclass may override
        it: the compiled matching calls the override)."""
        if not self.slippage_ticks:
            return px
        tick = inst.tick_paise(px)
        slip = self.slippage_ticks * tick
        return px + slip if side == "BUY" else max(tick, px - slip)

    cpdef list _match(self, symbol, o, h, lo, c, ts, only=None, skip=(), bint first=False):
        """Fill the working orders of ``symbol`` this bar reaches (``only``: that order;
        ``skip``: order ids already filled on this bar; ``first``: stop after one fill).
        A subclass may override it: ``place_order`` and ``on_bar`` call the override."""
        cdef BrokerOrder order
        cdef bint buy, seen_rest = False, unsorted = False
        cdef list fills = []
        inst = self.instruments.get(symbol)
        orders = self._open.get(symbol, [])
        # stops first: within one bar the cautious assumption is that the stop came first
        # (a stable sort on "not a stop"; only needed when a stop follows another order)
        for x in orders:
            if x is None:
                raise TypeError(f"a working order of {symbol!r} is None")
            order = <BrokerOrder?>x
            if order.status != "TRIGGER PENDING":
                seen_rest = True
            elif seen_rest:
                unsorted = True
                break
        if unsorted:
            orders.sort(key=_not_pending)
        mfq = self.max_fill_quantity
        for x in orders:
            order = <BrokerOrder?>x                  # none is None: checked above
            if (only is not None and order is not only) or order.order_id in skip \
                    or not _working(order):
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
                lim = order.price_paise
                if order.order_type == "SL-M":
                    px = self._slip(inst, order.side, at)
                elif (buy and at <= lim) or (not buy and at >= lim):
                    px = at
                elif (buy and lo <= lim) or (not buy and h >= lim):
                    px = lim
            elif order.order_type in ("MARKET", "SL-M"):
                px = self._slip(inst, order.side, o)
            else:
                lim = order.price_paise
                if buy:
                    px = o if o <= lim else lim if lo <= lim else None
                else:
                    px = o if o >= lim else lim if h >= lim else None
            if px is None:
                continue
            qty = order.quantity - order.filled
            if mfq is not None:
                qty = min(qty, mfq)
            fills.append(self._book.fill(order, qty, px, ts))
            if first:
                break
        self._open[symbol] = [x for x in orders if _working(<BrokerOrder?>x)]
        return fills


def _not_pending(BrokerOrder x not None):
    return x.status != "TRIGGER PENDING"
