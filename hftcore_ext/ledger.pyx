"""Position ledger in integer paise: O(1) per fill, exact over any number of fills.

``apply_fill`` (one fill from Python) and ``apply_fills`` (numpy arrays,
without the GIL) share ``book_fill``.  Inputs the kernel refuses -- a symbol id
out of range, zero quantity, a price <= 0 or above ``MAX_PRICE_PAISE``, a
quantity above ``MAX_QTY``, a negative fee -- are counted in ``rejected`` and
change nothing.  The limits keep ``qty * price`` inside 64 bits.
"""

from cpython.mem cimport PyMem_Realloc, PyMem_Free
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
    """
    long long hf_muldiv_round(long long a, long long b, long long c) noexcept nogil

cdef long long _MAX_QTY = 1_000_000_000            # units per fill
cdef long long _MAX_PRICE = 1_000_000_000          # paise per unit (Rs 1 crore)
MAX_QTY = _MAX_QTY
MAX_PRICE_PAISE = _MAX_PRICE


cdef inline long long _abs(long long x) noexcept nogil:
    return -x if x < 0 else x


cdef inline void _leave(Book* b, Position* p) noexcept nogil:
    """Take a position's contribution out of the book totals."""
    cdef long long mv = p.qty * p.mark
    b.market_value -= mv
    b.exposure -= _abs(mv)
    b.cost -= p.cost
    if p.qty != 0:
        b.open_count -= 1


cdef inline void _enter(Book* b, Position* p) noexcept nogil:
    cdef long long mv = p.qty * p.mark
    b.market_value += mv
    b.exposure += _abs(mv)
    b.cost += p.cost
    if p.qty != 0:
        b.open_count += 1


cdef inline int book_fill(Book* b, Py_ssize_t sym, long long qty, long long price,
                          long long fee) noexcept nogil:
    """Apply a fill of ``qty`` units (signed: + buy, - sell) at ``price`` paise with
    ``fee`` paise of charges.  Returns 0, or -1 if refused."""
    cdef Position* p
    cdef long long removed, pnl
    if (sym < 0 or sym >= b.n or qty == 0 or qty > _MAX_QTY or qty < -_MAX_QTY
            or price <= 0 or price > _MAX_PRICE or fee < 0):
        b.rejected += 1
        return -1
    p = &b.pos[sym]
    _leave(b, p)
    b.cash -= qty * price + fee
    p.fees += fee
    b.fees += fee
    if p.qty == 0 or (p.qty > 0) == (qty > 0):
        p.cost += qty * price                          # open or add
        p.qty += qty
    elif _abs(qty) <= _abs(p.qty):
        removed = hf_muldiv_round(p.cost, _abs(qty), _abs(p.qty))   # reduce or close
        pnl = -qty * price - removed
        p.realized += pnl
        b.realized += pnl
        p.cost -= removed
        p.qty += qty
    else:
        pnl = p.qty * price - p.cost                   # close all, then open the rest
        p.realized += pnl
        b.realized += pnl
        p.qty += qty
        p.cost = p.qty * price
    p.mark = price
    p.fills += 1
    p.traded += _abs(qty)
    b.fills += 1
    _enter(b, p)
    return 0


cdef inline void book_mark(Book* b, Py_ssize_t sym, long long price) noexcept nogil:
    cdef Position* p
    if sym < 0 or sym >= b.n or price <= 0 or price > _MAX_PRICE:
        return
    p = &b.pos[sym]
    _leave(b, p)
    p.mark = price
    _enter(b, p)


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

    cpdef int apply_fill(self, Py_ssize_t sym, long long qty, long long price, long long fee=0):
        """Apply one fill: ``qty`` signed units, ``price`` and ``fee`` in paise.
        Returns 0, or -1 if the fill was refused (see the module doc)."""
        return book_fill(&self.book, sym, qty, price, fee)

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

    cpdef void set_mark(self, Py_ssize_t sym, long long price):
        """Mark ``sym`` at ``price`` paise (ignored if out of range or <= 0)."""
        book_mark(&self.book, sym, price)

    def set_marks(self, const int[:] sym, const long long[:] price):
        cdef Py_ssize_t i, n = sym.shape[0]
        cdef Book* b = &self.book
        if price.shape[0] != n:
            raise ValueError("sym and price must have the same length")
        with nogil:
            for i in range(n):
                book_mark(b, sym[i], price[i])

    def position(self, Py_ssize_t sym):
        """(qty, cost, realized, fees, mark, fills, traded) of ``sym``; money in paise."""
        if not 0 <= sym < self.book.n:
            raise IndexError(f"symbol id {sym} out of range [0, {self.book.n})")
        cdef Position* p = &self.book.pos[sym]
        return (p.qty, p.cost, p.realized, p.fees, p.mark, p.fills, p.traded)

    def check(self):
        """True if cash + market value == initial + realized + unrealized - fees exactly
        and every total equals the sum over positions."""
        cdef Book* b = &self.book
        cdef Py_ssize_t i
        cdef long long r = 0, f = 0, c = 0, mv = 0, ex = 0, oc = 0
        for i in range(b.n):
            r += b.pos[i].realized
            f += b.pos[i].fees
            c += b.pos[i].cost
            mv += b.pos[i].qty * b.pos[i].mark
            ex += _abs(b.pos[i].qty * b.pos[i].mark)
            oc += b.pos[i].qty != 0
        return (r == b.realized and f == b.fees and c == b.cost and mv == b.market_value
                and ex == b.exposure and oc == b.open_count
                and b.cash + b.market_value
                == b.initial + b.realized + (b.market_value - b.cost) - b.fees)

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
        for i in range(arr.shape[0]):
            p = &b.pos[i]
            p.qty, p.cost, p.realized, p.fees, p.mark, p.fills, p.traded = (int(v) for v in arr[i])
            b.realized += p.realized
            b.fees += p.fees
            _enter(b, p)
        b.cash = int(state["cash"])
        b.fills = int(state.get("fills", 0))
        b.rejected = int(state.get("rejected", 0))
        if b.cash != b.initial + b.realized - b.cost - b.fees:
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
