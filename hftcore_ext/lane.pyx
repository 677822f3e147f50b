"""The pre-trade gate's arithmetic, compiled: working orders, reserved margin, rate windows.

``RiskBook`` is the state behind ``hftcore.gate.PreTradeGate``: every accepted
order still working (what is left of it, how much of that reduces a position,
the margin it holds per opening unit, its bracket group), the margin reserved
by all of them, and the order timestamps of the last second, minute and IST
day.  ``check`` runs the gate's rules from the duplicate key onwards in C, in
the order the gate documents, and reserves the order if it passes; the gate
keeps what needs Python (the shape check, reading the position, the LTP and
the account through their duck-typed sources, and the rejection messages).

Working orders live in a C array of slots; per symbol, the sums of working
buys, sells and their exit parts are kept up to date as orders are reserved,
filled, resized and released, so a check never walks the orders.  Only the
exits of bracket groups (a stop and a target that count once, as the larger
of the two) are summed per check, over that symbol's few group members.

Numbers follow the gate's reference exactly (``tests/twin_lane.py`` is the
plain-Python twin; a property test runs both on random order flows): prices
in integer paise, the LTP a double rounded half-to-even to paise, margin per
unit ``ceil(reference price * rate)``, products checked for 64-bit overflow.

Not thread-safe by itself: the gate calls it under its lock.
"""

from cpython.mem cimport PyMem_Realloc, PyMem_Free
from libc.math cimport ceil, fabs, rint
from libc.string cimport memset
from hftcore_ext.bus cimport Event

cdef extern from *:
    bint _mul_ovf "__builtin_mul_overflow"(long long a, long long b, long long* out) nogil
    bint _add_ovf "__builtin_add_overflow"(long long a, long long b, long long* out) nogil

cdef long long NS = 1_000_000_000
cdef long long IST_OFFSET_NS = 19_800 * NS
cdef long long DAY_NS = 86_400 * NS
cdef double MAX_PAISE = 1e17
cdef long long I64_MAX = 0x7FFFFFFFFFFFFFFF

#: Rule codes ``check`` returns (0 = accepted), in the order the gate checks them.
RULES = ("", "duplicate", "exit", "trigger", "no_price", "price_band", "halted",
         "entries_closed", "holdings", "max_position", "no_price", "max_order_value",
         "buying_power", "rate")
DUPLICATE, EXIT, TRIGGER, NO_BAND_PRICE, PRICE_BAND, HALTED, ENTRIES_CLOSED, HOLDINGS, \
    MAX_POSITION, NO_VALUE_PRICE, MAX_ORDER_VALUE, BUYING_POWER, RATE = range(1, 14)

#: Order types as ``check`` takes them.
MARKET, LIMIT, SL, SL_M = range(4)


cdef struct Work:
    Py_ssize_t sym
    long long qty          # units still to fill
    long long exit_qty     # of which reduce the position (filled first)
    long long mpu          # paise reserved per opening unit
    Py_ssize_t group       # bracket group id; -1 for none
    bint buy
    bint used


cdef struct Window:
    long long* t           # ring of admitted timestamps, capacity cap
    Py_ssize_t cap, head, n
    Py_ssize_t limit       # the cap on n; 0: none (the ring then grows: the times are
                           # kept so that a cap set later counts the orders already sent)


cdef inline void _win_expire(Window* w, long long now, long long span) noexcept nogil:
    while w.n and now - w.t[w.head] >= span:
        w.head = (w.head + 1) % w.cap
        w.n -= 1


cdef inline int _win_push(Window* w, long long now) except -1:
    if w.n == w.cap:                       # only a window without a limit fills up
        _win_resize(w, 0)
    w.t[(w.head + w.n) % w.cap] = now
    w.n += 1
    return 0


cdef void _win_resize(Window* w, Py_ssize_t limit) except *:
    """A new limit (0: none); the newest admitted timestamps that fit are kept."""
    cdef long long* t = NULL
    cdef Py_ssize_t i, keep = min(w.n, limit) if limit else w.n
    cdef Py_ssize_t cap = limit if limit else max(2 * w.n, 16)
    w.limit = limit
    if cap:
        t = <long long*> PyMem_Realloc(NULL, cap * sizeof(long long))
        if t == NULL:
            raise MemoryError()
        for i in range(keep):
            t[i] = w.t[(w.head + w.n - keep + i) % w.cap]
    PyMem_Free(w.t)
    w.t, w.cap, w.head, w.n = t, cap, 0, keep


cdef class _Rates:
    """Orders in the last second and minute and on this IST day (one budget)."""
    cdef Window sec, minute
    cdef long long day, day_count, per_day
    cdef bint limited

    def __cinit__(self, per_s, per_min, per_day):
        memset(&self.sec, 0, sizeof(Window))
        memset(&self.minute, 0, sizeof(Window))
        self.day = -1 << 62
        self.day_count = 0
        self.set_caps(per_s, per_min, per_day)

    cdef void set_caps(self, per_s, per_min, per_day) except *:
        """New caps; the newest admitted timestamps that fit are kept."""
        self.limited = per_s is not None or per_min is not None or per_day is not None
        self.per_day = -1 if per_day is None else per_day
        _win_resize(&self.sec, per_s or 0)
        _win_resize(&self.minute, per_min or 0)

    def __dealloc__(self):
        PyMem_Free(self.sec.t)
        PyMem_Free(self.minute.t)

    cdef int admit(self, long long now) except -1:
        """0, or 1 / 2 / 3: the per-second / per-minute / per-day cap is full."""
        if not self.limited:
            return 0
        _win_expire(&self.sec, now, NS)
        _win_expire(&self.minute, now, 60 * NS)
        cdef long long day = (now + IST_OFFSET_NS) // DAY_NS
        if day != self.day:
            self.day, self.day_count = day, 0
        if self.sec.limit and self.sec.n >= self.sec.limit:
            return 1
        if self.minute.limit and self.minute.n >= self.minute.limit:
            return 2
        if self.per_day >= 0 and self.day_count >= self.per_day:
            return 3
        _win_push(&self.sec, now)
        _win_push(&self.minute, now)
        self.day_count += 1
        return 0


cdef class RiskBook:
    """Working orders, reserved margin and order rates of one gate.

    Parameters
    ----------
    max_position_size : int, units per symbol, long or short
    open_rates : (per second, per minute, per day) caps for opening orders; None: no cap
    exit_rates : the same for exits
    price_band : fraction of the LTP a limit or trigger may be away; None: unchecked
    max_order_value : paise; None: unchecked
    check_buying_power : bool
    """
    cdef Work* w
    cdef Py_ssize_t cap, count
    cdef long long* sums          # [n_sym * 4]: buys, sells, exit buys, exit sells (no group)
    cdef Py_ssize_t n_sym
    cdef list free                # free slots
    cdef dict slot_of             # key -> slot
    cdef dict group_id            # group name -> id, while the group has working members
    cdef dict group_refs          # id -> [name, working members]
    cdef Py_ssize_t next_group
    cdef dict grouped             # symbol id -> list of slots in a group
    cdef readonly long long reserved
    cdef long long max_position_size, max_order_value
    cdef double band
    cdef bint has_band, has_max_value, check_bp
    cdef _Rates open_rates, exit_rates

    def __cinit__(self, long long max_position_size, open_rates=(None, None, None),
                  exit_rates=(None, None, None), price_band=None, max_order_value=None,
                  bint check_buying_power=True):
        self.open_rates = _Rates(*open_rates)
        self.exit_rates = _Rates(*exit_rates)
        self.free = []
        self.slot_of = {}
        self.group_id = {}
        self.group_refs = {}
        self.grouped = {}
        self.configure(max_position_size, open_rates, exit_rates, price_band, max_order_value,
                       check_buying_power)

    def configure(self, long long max_position_size, open_rates, exit_rates, price_band,
                  max_order_value, bint check_buying_power):
        """New limits (same meaning as the constructor's); working orders and the
        recent order times are kept."""
        self.max_position_size = max_position_size
        self.open_rates.set_caps(open_rates[0], open_rates[1], open_rates[2])
        self.exit_rates.set_caps(exit_rates[0], exit_rates[1], exit_rates[2])
        self.has_band = price_band is not None
        self.band = price_band if price_band is not None else 0.0
        self.has_max_value = max_order_value is not None
        self.max_order_value = max_order_value if max_order_value is not None else 0
        self.check_bp = check_buying_power

    def __dealloc__(self):
        PyMem_Free(self.w)
        PyMem_Free(self.sums)

    cdef void _grow_syms(self, Py_ssize_t sym) except *:
        if sym < self.n_sym:
            return
        cdef Py_ssize_t n = max(sym + 1, 2 * self.n_sym, 16)
        cdef long long* s = <long long*> PyMem_Realloc(self.sums, n * 4 * sizeof(long long))
        if s == NULL:
            raise MemoryError()
        memset(&s[self.n_sym * 4], 0, (n - self.n_sym) * 4 * sizeof(long long))
        self.sums, self.n_sym = s, n

    cdef Py_ssize_t _new_slot(self) except -1:
        if self.free:
            return self.free.pop()
        cdef Py_ssize_t n
        cdef Work* w
        if self.count >= self.cap:
            n = max(2 * self.cap, 64)
            w = <Work*> PyMem_Realloc(self.w, n * sizeof(Work))
            if w == NULL:
                raise MemoryError()
            memset(&w[self.cap], 0, (n - self.cap) * sizeof(Work))
            self.w, self.cap = w, n
        self.count += 1
        return self.count - 1

    cdef inline void _add(self, Work* x, long long sign) noexcept:
        cdef long long* s
        if x.group >= 0:
            return
        s = &self.sums[x.sym * 4]
        if x.buy:
            s[0] += sign * x.qty
            s[2] += sign * x.exit_qty
        else:
            s[1] += sign * x.qty
            s[3] += sign * x.exit_qty

    cdef void _totals(self, Py_ssize_t sym, Py_ssize_t skip, long long* out) except *:
        """out[0..3] = working buys, sells, exit buys, exit sells of ``sym``; the exits of
        one group count once (the larger member), and not at all for group ``skip``."""
        cdef Py_ssize_t i, j, slot
        cdef Work* x
        cdef Work* y
        cdef long long q, e
        cdef list members
        if 0 <= sym < self.n_sym:
            for i in range(4):
                out[i] = self.sums[sym * 4 + i]
        else:
            for i in range(4):
                out[i] = 0
        members = self.grouped.get(sym)
        if not members:
            return
        for i in range(len(members)):
            x = &self.w[<Py_ssize_t> members[i]]
            if x.group == skip:
                continue
            # the first member of its (group, side) pair adds the pair's maxima
            q, e = x.qty, x.exit_qty
            for j in range(len(members)):
                y = &self.w[<Py_ssize_t> members[j]]
                if y.group != x.group or y.buy != x.buy:
                    continue
                if j < i:
                    break
                if y.qty > q:
                    q = y.qty
                if y.exit_qty > e:
                    e = y.exit_qty
            else:
                if x.buy:
                    out[0] += q
                    out[2] += e
                else:
                    out[1] += q
                    out[3] += e

    def totals(self, Py_ssize_t sym, str skip_group=""):
        """(working buys, sells, exit buys, exit sells) of symbol id ``sym``."""
        cdef long long out[4]
        self._totals(sym, self.group_id.get(skip_group, -1) if skip_group else -1, out)
        return out[0], out[1], out[2], out[3]

    def __contains__(self, key):
        return key in self.slot_of

    def __len__(self):
        return len(self.slot_of)

    def check(self, str key, Py_ssize_t sym, bint buy, long long quantity, long long lot,
              long long pos, ltp, long long price_p, long long trig_p, int order_type,
              double margin_rate, bint cnc, str group, bint exit_only, bint halted,
              bint entries_closed, account, long long now):
        """Check one well-formed order and reserve it if it passes.

        ``ltp``: rupees or None; ``order_type`` MARKET/LIMIT/SL/SL_M; ``account``:
        a callable returning (equity, margin of open positions) in paise, called
        only when an opening order's buying power is checked.

        Returns ``(rule, quantity, is_exit, a, b, c)``: ``rule`` 0 or a code in
        ``RULES``; the accepted (possibly sized-down) quantity; and the figures the
        rejection message quotes: exit/holdings (position, exits working), trigger
        (), price_band (1 limit / 2 trigger, price paise), max_position (position,
        buys, sells), max_order_value (value paise), buying_power (need, free),
        rate (1 second / 2 minute / 3 day, 1 if the exit budget).
        """
        cdef long long t[4]
        cdef long long reducible, exit_qty, room, ref, value, need, free, mpu, equity, margin
        cdef long long p, r
        cdef Py_ssize_t gid, slot
        cdef _Rates rates
        cdef double x = 0.0
        cdef bint has_ltp = ltp is not None
        cdef bint is_exit
        cdef int i, why
        cdef Work* wk
        if sym < 0:
            raise ValueError(f"symbol id must be >= 0, got {sym}")
        if lot < 1:
            raise ValueError(f"lot must be >= 1, got {lot}")
        if key in self.slot_of:
            return DUPLICATE, 0, False, 0, 0, 0
        if has_ltp:
            x = ltp
        gid = self.group_id.get(group, -1) if group else -1
        self._totals(sym, gid, t)
        reducible = max(0, pos - t[3]) if not buy else max(0, -pos - t[2])
        exit_qty = min(quantity, reducible)
        is_exit = exit_qty == quantity
        if exit_only and not is_exit:
            return EXIT, 0, False, pos, t[2] if buy else t[3], 0
        if (order_type == SL or order_type == SL_M) and has_ltp:
            if (buy and trig_p / 100.0 <= x) or (not buy and trig_p / 100.0 >= x):
                return TRIGGER, 0, False, 0, 0, 0
        if self.has_band and order_type != MARKET:
            if not has_ltp and not is_exit:
                return NO_BAND_PRICE, 0, False, 0, 0, 0
            if has_ltp:
                for i in range(2):
                    p = price_p if i == 0 else trig_p
                    if p and fabs(p / 100.0 - x) > self.band * x:
                        return PRICE_BAND, 0, False, i + 1, p, 0
        mpu = 0
        if not is_exit:
            if halted:
                return HALTED, 0, False, 0, 0, 0
            if entries_closed:
                return ENTRIES_CLOSED, 0, False, 0, 0, 0
            if cnc and not buy:
                return HOLDINGS, 0, False, pos, t[3], 0
            room = self.max_position_size - (pos + t[0]) if buy else \
                self.max_position_size + (pos - t[1])
            r = room % lot                   # Python's floor modulo: room rounds down
            if r < 0:
                r += lot
            room -= r
            if room < quantity:
                if room <= exit_qty:
                    return MAX_POSITION, 0, False, pos, t[0], t[1]
                quantity = room
            ref = price_p or trig_p
            if ref == 0 and has_ltp and fabs(x * 100.0) <= MAX_PAISE:
                ref = <long long> rint(x * 100.0)
            if ref == 0:
                return NO_VALUE_PRICE, 0, False, 0, 0, 0
            if _mul_ovf(quantity, ref, &value):
                value = 1 << 62
            if self.has_max_value and value > self.max_order_value:
                return MAX_ORDER_VALUE, 0, False, value, 0, 0
            mpu = <long long> ceil(ref * margin_rate)
            if self.check_bp:
                if _mul_ovf(quantity - exit_qty, mpu, &need):
                    need = 1 << 62
                equity, margin = account()
                free = equity - margin - self.reserved
                if need > free:
                    return BUYING_POWER, 0, False, need, free, 0
            # the book counts reserved margin in int64 paise: an order it cannot add is
            # refused as buying_power even with that rule off (never a wrapped sum)
            if _mul_ovf(quantity - exit_qty, mpu, &need):
                need = 1 << 62
            if need > I64_MAX - self.reserved:
                return BUYING_POWER, 0, False, need, I64_MAX - self.reserved, 0
        rates = self.exit_rates if is_exit else self.open_rates
        why = rates.admit(now)
        if why:
            return RATE, 0, False, why, is_exit, 0
        self._grow_syms(sym)
        slot = self._new_slot()
        if group and gid < 0:
            gid = self.next_group
            self.next_group += 1
            self.group_id[group] = gid
            self.group_refs[gid] = [group, 0]
        if gid >= 0:
            self.group_refs[gid][1] += 1
        wk = &self.w[slot]
        wk.sym, wk.buy, wk.qty, wk.exit_qty, wk.mpu, wk.group, wk.used = \
            sym, buy, quantity, exit_qty, mpu, gid, True
        self.slot_of[key] = slot
        if gid >= 0:
            self.grouped.setdefault(sym, []).append(slot)
        else:
            self._add(wk, 1)
        self.reserved += (quantity - exit_qty) * mpu
        return 0, quantity, is_exit, 0, 0, 0

    cdef void _drop(self, str key, Py_ssize_t slot) except *:
        cdef Work* x = &self.w[slot]
        cdef list members, ref
        self.reserved -= (x.qty - x.exit_qty) * x.mpu
        if x.group >= 0:
            members = self.grouped[x.sym]
            members.remove(slot)
            if not members:
                del self.grouped[x.sym]
            ref = self.group_refs[x.group]
            ref[1] -= 1
            if ref[1] == 0:
                del self.group_id[ref[0]]
                del self.group_refs[x.group]
        else:
            self._add(x, -1)
        x.used = False
        del self.slot_of[key]
        self.free.append(slot)

    def on_fill(self, str key, long long quantity):
        """``quantity`` of order ``key`` filled; returns its symbol id, or -1 if unknown."""
        slot = self.slot_of.get(key)
        if slot is None:
            return -1
        cdef Work* x = &self.w[<Py_ssize_t> slot]
        cdef Py_ssize_t sym = x.sym
        cdef long long q = min(quantity, x.qty)
        cdef long long from_exit = min(q, x.exit_qty)
        self._add(x, -1)
        x.exit_qty -= from_exit
        self.reserved -= (q - from_exit) * x.mpu
        x.qty -= q
        self._add(x, 1)
        if x.qty <= 0:
            self._drop(key, slot)
        return sym

    def resize(self, str key, long long remaining):
        """Order ``key`` now has ``remaining`` units to fill (a modification)."""
        slot = self.slot_of.get(key)
        if slot is None:
            return
        if remaining <= 0:
            self._drop(key, slot)
            return
        cdef Work* x = &self.w[<Py_ssize_t> slot]
        cdef long long delta = remaining - x.qty, cut, from_open, add, total
        self._add(x, -1)
        if delta < 0:
            cut = -delta
            from_open = min(cut, x.qty - x.exit_qty)
            self.reserved -= from_open * x.mpu
            x.exit_qty -= cut - from_open
        elif _mul_ovf(delta, x.mpu, &add) or _add_ovf(self.reserved, add, &total):
            self.reserved = I64_MAX                # saturates: a modification cannot be refused
        else:
            self.reserved = total
        x.qty = remaining
        self._add(x, 1)

    def release(self, str key):
        """Order ``key`` is done (cancelled, rejected or never placed)."""
        slot = self.slot_of.get(key)
        if slot is not None:
            self._drop(key, slot)

    def working(self, str key):
        """(symbol id, buy, units left, exit units, margin per unit) of ``key``, or None."""
        slot = self.slot_of.get(key)
        if slot is None:
            return None
        cdef Work* x = &self.w[<Py_ssize_t> slot]
        return x.sym, x.buy, x.qty, x.exit_qty, x.mpu


cdef object _Mapping = __import__("collections.abc", fromlist=["Mapping"]).Mapping
_dash_log = __import__("logging").getLogger("hftcore.services.dashboard_feed")
cdef object _I64_MAX = 2**63 - 1


cdef class FeedIntake:
    """The dashboard's intake of bus events, compiled (``DashboardFeed.on_event``).

    Every event bumps ``version`` and its type's count and advances the market
    clock; ``signals.*`` go to ``signals``, ``order.*`` to ``orders`` and, with
    ``portfolio.updated``, to ``pending`` (folded into the order book and the
    equity history when the dashboard is read); ``portfolio_raw`` is the newest
    ``portfolio.updated``.  The shared containers are the dashboard's own: it
    reads them directly.  ``bind`` gives the dashboard's lock, its market clock
    ``now_ns(None)``, ``other(etype, payload, ts)`` for the types it handles in
    Python (``risk.*``, ``feed.stale``) and ``fold()``, called every 1,024
    pending events; ``on_event`` then does what ``DashboardFeed.on_event``
    promises without entering Python for the common events.
    """
    cdef public object signals, orders
    cdef public dict counts
    cdef public list pending
    cdef public long long market_ns, version
    cdef public object last_event_ts
    cdef public object portfolio_raw
    cdef object lock, now_ns, other, fold, _acquire, _release

    def __cinit__(self, signals, orders):
        self.signals, self.orders = signals, orders
        self.counts = {}
        self.pending = []
        self.market_ns = 0
        self.version = 0
        self.last_event_ts = None
        self.portfolio_raw = None

    def bind(self, lock, now_ns, other, fold):
        self.lock, self.now_ns, self.other, self.fold = lock, now_ns, other, fold
        self._acquire, self._release = lock.acquire, lock.release

    def on_event(self, event):
        """Take one bus event (the lock is taken here)."""
        cdef Event ev
        if type(event) is Event:                 # the bus's own: its fields, read in C
            ev = <Event> event
            etype, payload, ts = ev.type, ev.payload, ev.ts_ns * 1e-9
            if etype is None:
                _dash_log.warning("DashboardFeed: ignored event with type %r", etype)
                return
        else:
            try:
                etype = event["type"]
                payload = event["payload"]
            except (TypeError, KeyError, IndexError):
                _dash_log.warning("DashboardFeed: ignored malformed event %r", event)
                return
            if type(etype) is not str:
                _dash_log.warning("DashboardFeed: ignored event with type %r", etype)
                return
            ts = event.get("timestamp") if hasattr(event, "get") else None
        self._acquire()
        try:
            if self._take(etype, payload, ts):
                self.other(etype, payload, ts)
            if len(self.pending) >= 1024:
                self.fold()
        finally:
            self._release()

    def take(self, str etype, payload, ts):
        """Take one event's parts (lock held by the caller); True if its type is
        one ``other`` handles."""
        return self._take(etype, payload, ts)

    cdef bint _take(self, str etype, payload, ts) except -1:
        cdef bint is_map = type(payload) is dict or isinstance(payload, _Mapping)
        pts = payload.get("ts") if is_map else None
        cdef bint has_ts = type(pts) is int and 0 < pts <= _I64_MAX
        self.version += 1
        self.counts[etype] = self.counts.get(etype, 0) + 1
        self.last_event_ts = ts
        if has_ts and pts > self.market_ns:
            self.market_ns = pts
        if etype.startswith("signals."):
            self.signals.append((etype, payload))
        elif etype.startswith("order."):
            self.orders.append((etype, payload))
            if is_map:
                self.pending.append((etype, payload, pts if has_ts else self.now_ns(None)))
        elif etype == "portfolio.updated":
            if is_map:
                self.portfolio_raw = payload
                now = pts if has_ts else self.now_ns(None)
                self.pending.append((None, payload, now / NS if now else (ts or 0.0)))
        else:
            return True
        return False


def first_touch(const int[:] sym, const double[:] high, const double[:] low, Py_ssize_t a,
                Py_ssize_t b, int sid, bint any_bar, double high_at, double low_at):
    """The first bar ``k`` in ``[a, b)`` of symbol id ``sid`` that makes a working
    order act: any bar (``any_bar``: a MARKET order waits for the next one), or a
    high at or above ``high_at`` or a low at or below ``low_at``; ``b`` if none.
    The paper broker's ``watch`` gives the prices; the session scans with this
    between decisions without entering Python per bar."""
    cdef Py_ssize_t k, found = b, n = sym.shape[0]
    if b > n or high.shape[0] < b or low.shape[0] < b:
        raise ValueError("the range runs past the arrays")
    if a < 0:
        a = 0
    with nogil:
        for k in range(a, b):
            if sym[k] == sid and (any_bar or high[k] >= high_at or low[k] <= low_at):
                found = k
                break
    return found


def fuse(list signals, str primary_tf, str secondary_tf, dict weights, double primary_weight,
         double secondary_weight, min_confidence):
    """Fuse signals into ``(action, confidence, reason)`` by ``StrategyEngineV3``'s rule:
    the weighted net of direction x confidence over the weights of the strategies
    with a view (strategy weight x timeframe weight); HOLD when nobody has a view,
    when the secondary timeframe's net points the other way, or below
    ``min_confidence``.  Built with ``-ffp-contract=off``: the same doubles as
    the Python it replaced (``tests/twin_lane.py``), bit for bit."""
    cdef double net = 0.0, active = 0.0, sec = 0.0, w, conf, c
    cdef long d
    for s in signals:
        tf = s.timeframe
        w = <double> weights.get(s.strategy, 1.0) * (primary_weight if tf == primary_tf
                                                    else secondary_weight)
        d = s.direction
        if d:
            c = s.confidence
            net += w * <double> d * c
            active += w
            if tf == secondary_tf:
                sec += <double> d * c
    if active == 0 or net == 0:
        return "HOLD", 0.0, "no strategy has a view"
    conf = fabs(net) / active
    action = "BUY" if net > 0 else "SELL"
    if primary_tf != secondary_tf and sec * net < 0:
        return "HOLD", 0.0, f"timeframes disagree ({primary_tf} vs {secondary_tf})"
    if conf < min_confidence:
        return "HOLD", conf, f"{action} confidence {conf:.2f} below {min_confidence}"
    views = [f"{s.strategy}@{s.timeframe}:{s.action}" for s in signals if s.direction]
    return action, conf, f"{action} {conf:.2f} from " + ", ".join(views)


class Values(dict):
    """Indicator values by name (``ctx.ind["sma_50"]`` or ``ctx.ind.sma_50``);
    None where not warmed up."""

    def __missing__(self, name):
        raise KeyError(f"no indicator {name!r}; declared: {', '.join(self) or 'none'}")

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no indicator {name!r}; declared: "
                                 f"{', '.join(self) or 'none'}") from None


cdef object _Signal = None          # hftcore.orders.Signal (ContextCore.signal builds them)


cdef class ContextCore:
    """What ``hftcore.strategy.Context`` reads at every bar, compiled: where it points
    (symbol, timeframe and their ids), the declared indicators now (``ind``) and one
    bar ago (``prev``), and the crossovers between them.  ``Context`` adds the rest
    (history, the books, orders) in Python; a strategy sees one object."""

    cdef public object _session
    cdef public bint _trade
    cdef public object timeframe
    cdef public object symbol
    cdef public object strategy_name
    cdef public Py_ssize_t _sym
    cdef public Py_ssize_t _tf
    cdef public object _ind
    cdef public object _bundle
    cdef public object _ltp
    cdef public dict _prev          # (sym, tf) -> indicator values one bar ago
    cdef public set _watched        # (sym, tf) read through data(): remembered too
    cdef public list signals
    cdef public list results
    cdef bint _own_ind             # a subclass overrides ind: prev and crossovers read it

    def __init__(self, session, timeframe=None, trade=True):
        self._own_ind = type(self).ind is not ContextCore.ind
        self._session = session
        self._trade = bool(trade) and session is not None
        self.timeframe = timeframe or ""
        self.symbol = ""
        self.strategy_name = ""
        self._sym = -1
        self._tf = -1
        self._ind = None
        self._bundle = None
        self._ltp = None
        self._prev = {}
        self._watched = set()
        self.signals = []
        self.results = []

    def _point(self, symbol, timeframe, Py_ssize_t sym, Py_ssize_t tf, bundle=None, ltp=None):
        self._aim(symbol, timeframe, sym, tf, bundle, ltp)
        return self

    cdef inline void _aim(self, symbol, timeframe, Py_ssize_t sym, Py_ssize_t tf, bundle, ltp):
        self.symbol = symbol
        self.timeframe = timeframe
        self._sym = sym
        self._tf = tf
        self._ind = None
        self._bundle = bundle
        self._ltp = ltp

    cdef object _values(self):
        if self._ind is None:
            vals = Values(self._bundle or {})
            s = self._session
            if s is not None and self._sym >= 0:
                bank = s.engine.bank
                if bank.indicator_names:
                    vals.update(bank.indicators(self._sym, self._tf))
            self._ind = vals
        return self._ind

    @property
    def ind(self):
        """The declared indicators as of the closed candle, by key or alias (inside
        StrategyEngineV3 also the spec's bundle); None where not warmed up."""
        return self._values()

    @property
    def prev(self):
        """``ind`` as of the previous bar this strategy saw (empty at the first)."""
        return self._prev.get((self._sym, self._tf)) or Values()

    def _remember(self):
        """After every strategy's ``on_bar`` of a decision: the decision series' values
        (and those of every series read through ``data()``) become ``prev``."""
        if self._sym < 0:
            return
        here = (self._sym, self._tf)
        self._prev[here] = self.ind if self._own_ind else self._values()
        if self._watched:
            bank = self._session.engine.bank
            if bank.indicator_names:
                for key in self._watched:
                    if key != here:
                        self._prev[key] = Values(bank.indicators(*key))

    def crossed_above(self, a, b):
        """``a`` was below ``b`` one bar ago and is above it now (backtesting.py's
        ``crossover``); ``b`` is a name or a number.  False until both are warm;
        KeyError for a name that was never declared."""
        return self._cross(a, b, 1)

    def crossed_below(self, a, b):
        """``a`` was above ``b`` one bar ago and is below it now (see ``crossed_above``)."""
        return self._cross(a, b, -1)

    cdef bint _cross(self, a, b, int way) except -1:
        before = self._prev.get((self._sym, self._tf))
        now = self.ind if self._own_ind else self._values()
        if not before:
            now[a]                          # a typo fails on the first bar too
            if type(b) is str:
                now[b]
            return False
        a1, a0 = now[a], before.get(a)      # a name never declared: KeyError, not False
        if type(b) is str:
            b1, b0 = now[b], before.get(b)
        else:
            b1 = b0 = float(b)
        if a1 is None or a0 is None or b1 is None or b0 is None:
            return False
        if way > 0:
            return a0 < b0 and a1 > b1
        return a0 > b0 and a1 < b1

    def signal(self, action, confidence=1.0, reason=""):
        """A vote: BUY, SELL or HOLD with confidence 0..1 (fused by StrategyEngineV3;
        published as ``signals.raw`` when the strategy runs alone)."""
        global _Signal
        if action != "BUY" and action != "SELL" and action != "HOLD":
            raise ValueError(f"signal action must be BUY, SELL or HOLD, got {action!r}")
        cdef double conf = float(confidence)
        if _Signal is None:                 # hftcore's record type, imported once it exists
            from hftcore.orders import Signal
            _Signal = Signal
        sig = _Signal(self.strategy_name, self.symbol, self.timeframe, action,
                      0.0 if conf < 0 else 1.0 if conf > 1 else conf, reason)
        self.signals.append(sig)
        return sig

    def vote(self, strategy, symbol, timeframe, Py_ssize_t sym, Py_ssize_t tf, bundle, ltp):
        """One fusion member's ``on_bar`` on this bar, pointed at (symbol, timeframe)
        with the decision's bundle and LTP: its last ``signal`` with the confidence
        clipped to 0..1, or None if it did not vote.  What it raises propagates."""
        self.signals.clear()
        self.strategy_name = strategy.name
        self._aim(symbol, timeframe, sym, tf, bundle, ltp)
        strategy.on_bar(self)
        cdef Py_ssize_t n = len(self.signals)
        if n == 0:
            return None
        sig = self.signals[n - 1]           # (wraparound is off: no [-1] here)
        cdef double c = float(sig.confidence)
        sig.confidence = 0.0 if c < 0 else 1.0 if c > 1 else c
        return sig
