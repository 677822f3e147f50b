"""Position ledger in integer paise: O(1) per fill, exact over any number of fills.

``apply_fill`` (one fill from Python) and ``apply_fills`` (numpy arrays,
without the GIL) share ``book_fill``.  Inputs the kernel refuses -- a symbol id
out of range, zero quantity, a price <= 0 or above ``MAX_PRICE_PAISE``, a
quantity above ``MAX_QTY`` (or beyond 64 bits), a negative fee -- are counted in
``rejected`` and change nothing.  The limits keep one fill's ``qty * price``
inside 64 bits; every running total (cash, cost, realized, fees, market value,
exposure, and the equity / unrealized sums) is added with checked arithmetic,
and a fill that would overflow any of them is refused the same way, so the
books never wrap.  ``check()`` verifies the accounting identity in 128 bits.
"""

from cpython.mem cimport PyMem_Realloc, PyMem_Free
from libc.math cimport rint
from libc.string cimport memset

import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef extern from *:
    """
    /* a * b / c rounded half away from zero, with a 128-bit product (c > 0). */
    static inline long long hf_muldiv_round(long long a, long long b, long long c) {
        __int128 p = (__int128)a * (__int128)b;
        __int128 q = p / c, r = p % c;
        if (r < 0) r = -r;
        if (2 * r >= c) q += (p < 0) ? -1 : 1;
        return (long long)q;
    }
    /* Checked 64-bit arithmetic: store the result and return nonzero on overflow. */
    static inline int hf_add(long long a, long long b, long long *r) {
        return __builtin_add_overflow(a, b, r);
    }
    static inline int hf_sub(long long a, long long b, long long *r) {
        return __builtin_sub_overflow(a, b, r);
    }
    static inline int hf_mul(long long a, long long b, long long *r) {
        return __builtin_mul_overflow(a, b, r);
    }
    /* |a| for the market value of a position, refusing LLONG_MIN. */
    static inline int hf_abs(long long a, long long *r) {
        if (a == LLONG_MIN) return 1;
        *r = a < 0 ? -a : a;
        return 0;
    }
    """
    long long hf_muldiv_round(long long a, long long b, long long c) noexcept nogil
    int hf_add(long long a, long long b, long long* r) noexcept nogil
    int hf_sub(long long a, long long b, long long* r) noexcept nogil
    int hf_mul(long long a, long long b, long long* r) noexcept nogil
    int hf_abs(long long a, long long* r) noexcept nogil
    # a C type Cython passes through: 128-bit sums for check()
    ctypedef long long i128 "__int128"

cdef long long _MAX_QTY = 1_000_000_000            # units per fill
cdef long long _MAX_PRICE = 1_000_000_000          # paise per unit (Rs 1 crore)
MAX_QTY = _MAX_QTY
MAX_PRICE_PAISE = _MAX_PRICE


cdef inline long long _abs(long long x) noexcept nogil:
    return -x if x < 0 else x


cdef inline int _totals(Book* b, Position* old, Position* new, long long* mv, long long* ex,
                        long long* cost) noexcept nogil:
    """The book's market value, exposure and cost with ``old`` replaced by ``new``
    (checked).  Returns nonzero if any of them, or a position's own market value,
    would overflow 64 bits."""
    cdef long long mv_old, mv_new, a_old, a_new, t
    cdef int bad = 0
    bad |= hf_mul(old.qty, old.mark, &mv_old)
    bad |= hf_mul(new.qty, new.mark, &mv_new)
    bad |= hf_abs(mv_old, &a_old)
    bad |= hf_abs(mv_new, &a_new)
    bad |= hf_sub(b.market_value, mv_old, &t)
    bad |= hf_add(t, mv_new, mv)
    bad |= hf_sub(b.exposure, a_old, &t)
    bad |= hf_add(t, a_new, ex)
    bad |= hf_sub(b.cost, old.cost, &t)
    bad |= hf_add(t, new.cost, cost)
    return bad


cdef inline int _commit(Book* b, Position* p, Position* nxt, long long cash, long long realized,
                        long long fees) noexcept nogil:
    """Replace ``p`` by ``nxt`` and set the book's totals, or change nothing and return
    nonzero if a total (or equity / unrealized, read as sums) would overflow."""
    cdef long long mv, ex, cost, t
    cdef int bad = _totals(b, p, nxt, &mv, &ex, &cost)
    bad |= hf_add(cash, mv, &t)              # equity
    bad |= hf_sub(mv, cost, &t)              # unrealized
    if bad:
        return -1
    b.open_count += (nxt.qty != 0) - (p.qty != 0)
    p[0] = nxt[0]
    b.cash, b.realized, b.fees = cash, realized, fees
    b.market_value, b.exposure, b.cost = mv, ex, cost
    return 0


cdef inline int book_fill(Book* b, Py_ssize_t sym, long long qty, long long price,
                          long long fee) noexcept nogil:
    """Apply a fill of ``qty`` units (signed: + buy, - sell) at ``price`` paise with
    ``fee`` paise of charges.  Returns 0, or -1 if refused (nothing changed): bad
    input, or a running total that would overflow 64 bits (checked arithmetic on
    every total, so the accounting never wraps)."""
    cdef Position* p
    cdef Position nxt
    cdef long long notional, removed, pnl, cash, realized, fees, t
    cdef int bad = 0
    if (sym < 0 or sym >= b.n or qty == 0 or qty > _MAX_QTY or qty < -_MAX_QTY
            or price <= 0 or price > _MAX_PRICE or fee < 0):
        b.rejected += 1
        return -1
    p = &b.pos[sym]
    nxt = p[0]
    realized = b.realized
    bad |= hf_mul(qty, price, &notional)     # within the per-fill limits: cannot overflow
    bad |= hf_add(notional, fee, &t)
    bad |= hf_sub(b.cash, t, &cash)
    bad |= hf_add(nxt.fees, fee, &nxt.fees)
    bad |= hf_add(b.fees, fee, &fees)
    if p.qty == 0 or (p.qty > 0) == (qty > 0):
        bad |= hf_add(nxt.cost, notional, &nxt.cost)     # open or add
        bad |= hf_add(nxt.qty, qty, &nxt.qty)
    elif _abs(qty) <= _abs(p.qty):
        removed = hf_muldiv_round(p.cost, _abs(qty), _abs(p.qty))   # reduce or close
        bad |= hf_add(notional, removed, &t)            # |removed| <= |cost|: no overflow
        pnl = -t
        bad |= hf_add(nxt.realized, pnl, &nxt.realized)
        bad |= hf_add(realized, pnl, &realized)
        nxt.cost = p.cost - removed
        nxt.qty = p.qty + qty
    else:
        bad |= hf_mul(p.qty, price, &t)                 # close all, then open the rest
        bad |= hf_sub(t, p.cost, &pnl)
        bad |= hf_add(nxt.realized, pnl, &nxt.realized)
        bad |= hf_add(realized, pnl, &realized)
        nxt.qty = p.qty + qty
        bad |= hf_mul(nxt.qty, price, &nxt.cost)
    nxt.mark = price
    nxt.fills += 1
    bad |= hf_add(nxt.traded, _abs(qty), &nxt.traded)
    if bad or _commit(b, p, &nxt, cash, realized, fees):
        b.rejected += 1
        return -1
    b.fills += 1
    return 0


cdef inline int book_mark(Book* b, Py_ssize_t sym, long long price) noexcept nogil:
    """Mark ``sym`` at ``price``; -1 (nothing changed) if out of range or if the
    market value would overflow."""
    cdef Position* p
    cdef Position nxt
    if sym < 0 or sym >= b.n or price <= 0 or price > _MAX_PRICE:
        return -1
    p = &b.pos[sym]
    nxt = p[0]
    nxt.mark = price
    return _commit(b, p, &nxt, b.cash, b.realized, b.fees)


cdef class Ledger:
    """Positions of ``n_symbols`` symbols (ids ``0 .. n - 1``) and the cash account.

    Parameters
    ----------
    n_symbols : int
        Initial number of symbol ids; ``grow`` adds more.
    initial_cash : int
        Starting cash in paise.

    All money arguments and results are integer paise.
    """

    def __cinit__(self, n_symbols=0, initial_cash=0):
        memset(&self.book, 0, sizeof(Book))
        if isinstance(initial_cash, (float, bool)) or not isinstance(initial_cash, (int, np.integer)) \
                or not -10**18 <= initial_cash <= 10**18:
            raise ValueError(f"initial_cash must be integer paise within 1e18, got {initial_cash!r}")
        if isinstance(n_symbols, bool) or not isinstance(n_symbols, (int, np.integer)) \
                or not 0 <= n_symbols <= 100_000_000:
            raise ValueError(f"n_symbols must be an int in [0, 100_000_000], got {n_symbols!r}")
        self.book.initial = initial_cash
        self.book.cash = initial_cash
        self.grow(n_symbols)

    def __dealloc__(self):
        PyMem_Free(self.book.pos)

    def grow(self, Py_ssize_t n_symbols):
        """Make room for symbol ids up to ``n_symbols - 1``."""
        if n_symbols <= self.book.n:
            return
        pos = <Position*> PyMem_Realloc(self.book.pos, n_symbols * sizeof(Position))
        if pos == NULL:
            raise MemoryError()
        memset(&pos[self.book.n], 0, (n_symbols - self.book.n) * sizeof(Position))
        self.book.pos = pos
        self.book.n = n_symbols

    def apply_fill(self, sym, qty, price, fee=0):
        """Apply one fill: ``qty`` signed units, ``price`` and ``fee`` in paise.
        Returns 0, or -1 if the fill was refused (see the module doc); an integer
        too large for 64 bits is refused too, never an OverflowError."""
        cdef Py_ssize_t s
        cdef long long q, pr, f
        try:
            s, q, pr, f = sym, qty, price, fee
        except OverflowError:
            self.book.rejected += 1
            return -1
        return book_fill(&self.book, s, q, pr, f)

    def apply_fills(self, const int[:] sym, const long long[:] qty, const long long[:] price,
                    const long long[:] fee):
        """Apply arrays of fills in order without the GIL; returns how many were applied."""
        cdef Py_ssize_t i, n = sym.shape[0]
        cdef long long applied = 0
        cdef Book* b = &self.book
        if qty.shape[0] != n or price.shape[0] != n or fee.shape[0] != n:
            raise ValueError("sym, qty, price and fee must have the same length")
        with nogil:
            for i in range(n):
                applied += book_fill(b, sym[i], qty[i], price[i], fee[i]) + 1
        return applied

    def set_mark(self, sym, price):
        """Mark ``sym`` at ``price`` paise (ignored if out of range, <= 0, beyond 64
        bits, or if the market value would overflow 64 bits)."""
        cdef Py_ssize_t s
        cdef long long p
        try:
            s, p = sym, price
        except OverflowError:
            return
        book_mark(&self.book, s, p)

    def set_marks(self, const int[:] sym, const long long[:] price):
        cdef Py_ssize_t i, n = sym.shape[0]
        cdef Book* b = &self.book
        if price.shape[0] != n:
            raise ValueError("sym and price must have the same length")
        with nogil:
            for i in range(n):
                book_mark(b, sym[i], price[i])

    def open_ids(self):
        """Ids of the symbols with an open position (qty != 0), ascending."""
        cdef Py_ssize_t i
        cdef Position* pos = self.book.pos
        return [i for i in range(self.book.n) if pos[i].qty != 0]

    def position(self, Py_ssize_t sym):
        """(qty, cost, realized, fees, mark, fills, traded) of ``sym``; money in paise."""
        if not 0 <= sym < self.book.n:
            raise IndexError(f"symbol id {sym} out of range [0, {self.book.n})")
        cdef Position* p = &self.book.pos[sym]
        return (p.qty, p.cost, p.realized, p.fees, p.mark, p.fills, p.traded)

    def mark_rupees(self, ids, ltps, long long max_paise):
        """Mark ``ids[k]`` at ``ltps[k]`` rupees for every ``ltps[k]`` that is a float
        with ``0 < ltps[k] * 100 <= max_paise``, at ``round(ltps[k] * 100)`` paise
        (``set_mark``'s rules; one that rounds to 0 is skipped).  Returns ``(marked, rest)``: how many were marked and
        the ``k`` of every other price that is not None (an int, a numpy number, a
        float out of range), for the caller to convert with its own checks."""
        cdef Py_ssize_t k, n = len(ids)
        cdef double paise
        cdef long long marked = 0, q
        cdef Book* b = &self.book
        rest = []
        if len(ltps) != n:
            raise ValueError("ids and ltps must have the same length")
        for k in range(n):
            ltp = ltps[k]
            if ltp is None:
                continue
            if type(ltp) is float:
                paise = (<double> ltp) * 100
                if 0 < paise <= max_paise:
                    q = <long long> rint(paise)
                    if q > 0:                       # 0 < paise < 0.5 rounds to nothing
                        book_mark(b, ids[k], q)
                        marked += 1
                    continue
            rest.append(k)
        return marked, rest

    def snapshot(self, symbols):
        """``PortfolioService``'s snapshot of this book: ``{"positions": [...], "cash",
        "equity", "realized_pnl", "unrealized_pnl", "exposure", "position_count"}``,
        money in rupee floats equal to the Python ``paise / 100`` (open positions only,
        ``symbols[i]`` naming id ``i``; ``avg_price`` rounded to 4 places)."""
        cdef Book* b = &self.book
        cdef Py_ssize_t i
        cdef Position* p
        cdef long long mv, un
        positions = []
        for i in range(b.n):
            p = &b.pos[i]
            if p.qty == 0:
                continue
            if hf_mul(p.qty, p.mark, &mv):
                value = _rupees_of(<object> p.qty * <object> p.mark)
                unreal = _rupees_of(<object> p.qty * <object> p.mark - <object> p.cost)
            else:
                value = _rupees(mv)
                unreal = _rupees_of(<object> mv - <object> p.cost) if hf_sub(mv, p.cost, &un) \
                    else _rupees(un)
            positions.append({
                "symbol": symbols[i], "quantity": p.qty,
                "avg_price": round(_quotient(p.cost, p.qty) / 100, 4),
                "last_price": _rupees(p.mark), "market_value": value,
                "unrealized_pnl": unreal, "realized_pnl": _rupees(p.realized),
                "fees": _rupees(p.fees)})
        return {"positions": positions, "cash": _rupees(b.cash),
                "equity": _rupees_of(<object> b.cash + <object> b.market_value),
                "realized_pnl": _rupees(b.realized),
                "unrealized_pnl": _rupees_of(<object> b.market_value - <object> b.cost),
                "exposure": _rupees(b.exposure), "position_count": b.open_count}

    def check(self):
        """True if cash + market value == initial + realized + unrealized - fees exactly
        and every total equals the sum over positions.  Sums and the identity are
        computed in 128-bit arithmetic, so a total that wrapped 64 bits cannot pass."""
        cdef Book* b = &self.book
        cdef Py_ssize_t i
        cdef i128 r = 0, f = 0, c = 0, mv = 0, ex = 0, m
        cdef long long oc = 0
        for i in range(b.n):
            r += <i128> b.pos[i].realized
            f += <i128> b.pos[i].fees
            c += <i128> b.pos[i].cost
            m = <i128> b.pos[i].qty * <i128> b.pos[i].mark
            mv += m
            ex += -m if m < 0 else m
            oc += b.pos[i].qty != 0
        # the cash flows are not kept per position: cash must equal what the positions imply
        return (r == <i128> b.realized and f == <i128> b.fees and c == <i128> b.cost
                and mv == <i128> b.market_value and ex == <i128> b.exposure
                and oc == b.open_count
                and <i128> b.cash == <i128> b.initial + r - c - f
                and <i128> b.cash + mv == <i128> b.initial + r + (mv - c) - f)

    # ------------------------------------------------------------ state for checkpoints

    def to_state(self):
        """Everything needed to rebuild this ledger, as plain ints and int64 arrays."""
        cdef Py_ssize_t i, n = self.book.n
        arr = np.zeros((n, 7), dtype=np.int64)
        cdef cnp.int64_t[:, :] a = arr
        for i in range(n):
            p = self.book.pos[i]
            a[i, 0] = p.qty
            a[i, 1] = p.cost
            a[i, 2] = p.realized
            a[i, 3] = p.fees
            a[i, 4] = p.mark
            a[i, 5] = p.fills
            a[i, 6] = p.traded
        return {"initial": self.book.initial, "cash": self.book.cash,
                "fills": self.book.fills, "rejected": self.book.rejected, "positions": arr}

    @classmethod
    def from_state(cls, state):
        """Rebuild a ledger from ``to_state()``; totals are recomputed and the
        accounting identity is verified (ValueError if the state is inconsistent)."""
        arr = np.asarray(state["positions"], dtype=np.int64).reshape(-1, 7)
        cdef Ledger led = cls(arr.shape[0], int(state["initial"]))
        cdef Book* b = &led.book
        cdef Py_ssize_t i
        cdef Position* p
        cdef Position nxt
        cdef int bad = 0
        cdef long long realized = 0, fees = 0
        memset(&nxt, 0, sizeof(Position))
        try:
            b.cash = int(state["cash"])
        except OverflowError:
            raise ValueError("ledger state is inconsistent: cash beyond 64 bits") from None
        for i in range(arr.shape[0]):
            p = &b.pos[i]
            nxt.qty, nxt.cost, nxt.realized, nxt.fees, nxt.mark, nxt.fills, nxt.traded = (
                int(v) for v in arr[i])
            bad |= hf_add(realized, nxt.realized, &realized)
            bad |= hf_add(fees, nxt.fees, &fees)
            if bad or _commit(b, p, &nxt, b.cash, realized, fees):
                raise ValueError(f"ledger state is inconsistent: totals overflow at position {i}")
        b.fills = int(state.get("fills", 0))
        b.rejected = int(state.get("rejected", 0))
        if not led.check():
            raise ValueError("ledger state is inconsistent: cash != initial + realized - cost - fees")
        return led

    # ------------------------------------------------------------ totals (paise)

    @property
    def n_symbols(self):
        return self.book.n

    @property
    def initial_cash(self):
        return self.book.initial

    @property
    def cash(self):
        return self.book.cash

    @property
    def realized(self):
        return self.book.realized

    @property
    def unrealized(self):
        return self.book.market_value - self.book.cost

    @property
    def fees(self):
        return self.book.fees

    @property
    def market_value(self):
        return self.book.market_value

    @property
    def exposure(self):
        return self.book.exposure

    @property
    def equity(self):
        return self.book.cash + self.book.market_value

    @property
    def open_positions(self):
        return self.book.open_count

    @property
    def fills(self):
        return self.book.fills

    @property
    def rejected(self):
        return self.book.rejected


cdef long long _EXACT = 1LL << 53      # ints up to this are exact as doubles


cdef inline object _rupees(long long v):
    """``v / 100`` as Python computes it: for |v| <= 2**53 a double division."""
    if -_EXACT <= v <= _EXACT:
        return (<double> v) / 100.0
    return (<object> v) / 100


cdef inline object _rupees_of(object v):
    """``_rupees`` of a Python int that may not fit 64 bits."""
    if -_EXACT <= v <= _EXACT:
        return (<double> <long long> v) / 100.0
    return v / 100


cdef inline object _quotient(long long a, long long b):
    """``a / b`` (b != 0) as Python computes it (a Python float)."""
    if -_EXACT <= a <= _EXACT and -_EXACT <= b <= _EXACT:
        return (<double> a) / (<double> b)
    return (<object> a) / (<object> b)


def round_trips(const int[:] sym, const long long[:] qty, const long long[:] price,
                const long long[:] fee, const long long[:] ts):
    """Round-trip trades of a sequence of fills, per symbol, through this ledger's
    arithmetic: a trade opens when a position leaves zero and closes when it
    returns to zero (a flip closes one trade and opens the next with the rest).

    ``qty`` signed units, ``price`` and ``fee`` paise, ``ts`` ns.  Returns an int64
    array, one row per closed trade in the order they closed, with the columns
    ``symbol id, side (+1 long / -1 short), entry ts, largest |position|, entry
    value, entry units, exit value, exit units, realized, fees, exit ts`` (paise).
    ``hftcore.report.trades_from_fills`` turns them into the trades table."""
    cdef Py_ssize_t i, n = sym.shape[0], nsym = 0, t, t2, nt = 0, nc = 0
    cdef long long q, px, a, bq, br, bf, aq, k, v
    if not (qty.shape[0] == price.shape[0] == fee.shape[0] == ts.shape[0] == n):
        raise ValueError("sym, qty, price, fee and ts must have the same length")
    for i in range(n):
        if sym[i] < 0:
            raise ValueError(f"symbol id {sym[i]} < 0 at fill {i}")
        if sym[i] >= nsym:
            nsym = sym[i] + 1
    cdef Ledger led = Ledger(nsym, 0)
    cdef Book* b = &led.book
    cdef Position* p
    cdef long long[:, ::1] T = np.zeros((max(n, 1), 11), np.int64)
    cdef long long[::1] closed = np.empty(max(n, 1), np.int64)
    cdef long long[::1] open_t = np.full(max(nsym, 1), -1, np.int64)
    for i in range(n):
        q, px = qty[i], price[i]
        p = &b.pos[sym[i]]
        bq, br, bf = p.qty, p.realized, p.fees
        book_fill(b, sym[i], q, px, fee[i])          # a refused fill changes nothing
        p = &b.pos[sym[i]]
        aq = p.qty
        t = open_t[sym[i]]
        if t < 0 and bq == 0:
            a = q if q >= 0 else -q
            t = nt
            nt += 1
            _open_trade(T, t, sym[i], 1 if q > 0 else -1, ts[i], a, px)
            open_t[sym[i]] = t
        if t < 0:
            raise ValueError(f"fill {i}: a position without an open trade")
        T[t, 8] += p.realized - br
        T[t, 9] += p.fees - bf
        if bq != 0:
            if (bq > 0) != (q > 0):                              # closing
                k = min(q if q >= 0 else -q, bq if bq >= 0 else -bq)
                if hf_mul(k, px, &v) or hf_add(T[t, 6], v, &T[t, 6]):
                    raise OverflowError(f"fill {i}: exit value beyond 64 bits")
                T[t, 7] += k
            else:                                                # adding
                a = q if q >= 0 else -q
                if hf_mul(a, px, &v) or hf_add(T[t, 4], v, &T[t, 4]):
                    raise OverflowError(f"fill {i}: entry value beyond 64 bits")
                T[t, 5] += a
                T[t, 3] = max(T[t, 3], aq if aq >= 0 else -aq)
        if aq == 0 or (bq != 0 and (aq > 0) != (bq > 0)):
            T[t, 10] = ts[i]
            closed[nc] = t
            nc += 1
            open_t[sym[i]] = -1
            if aq != 0:                              # flipped: the rest opens a new trade
                t2 = nt
                nt += 1
                _open_trade(T, t2, sym[i], 1 if aq > 0 else -1, ts[i],
                            aq if aq >= 0 else -aq, px)
                open_t[sym[i]] = t2
    return np.asarray(T)[np.asarray(closed)[:nc]]


cdef int _open_trade(long long[:, ::1] T, Py_ssize_t t, long long s, long long side,
                     long long ts, long long a, long long px) except -1:
    cdef long long v
    if hf_mul(a, px, &v):
        raise OverflowError("entry value beyond 64 bits")
    T[t, 0], T[t, 1], T[t, 2], T[t, 3], T[t, 4], T[t, 5] = s, side, ts, a, v, a
    return 0
