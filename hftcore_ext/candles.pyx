"""Candle bank: the compiled core of the market-data engine.

Ticks ``(symbol id, ts_ns, price, volume)`` aggregate into OHLCV candles on
several timeframes at once.  When a candle closes it is written to a bounded
ring of history and fed to that series' indicators (EMA fast/slow, RSI, ATR,
slope); every tick also feeds the symbol's session VWAP, reset at each new
IST calendar day.

Candle buckets are aligned to the NSE session open (09:15 IST), so 1m/5m/15m
candles start at :15, :20, ... exactly as Kite's do, and 60m candles start at
09:15, 10:15, ...  A candle closes when the first tick of a later bucket
arrives, when a bar covering its end is ingested, or when ``flush(ts)`` is
called with a time at or past its end (use it at the session close).

Declared indicators (``declare``): any indicator of ``hftcore.indicators.REGISTRY``,
computed per symbol and timeframe on each close by the same inline kernels as the
``hftcore_ext.indicators`` classes; read with ``indicators(sym, tf)``.  ``history``
returns read-only numpy views of the closed-candle ring, not copies.

Input rules (checked in the kernel, counted, never raised): a bad input is
quarantined -- it changes nothing, so one bad tick cannot poison later state --
and counted by reason in ``quarantined()`` (the reasons sum to ``dropped``):

* ``symbol``: an id outside ``[0, n_symbols)``;
* ``price``: a price (any of open/high/low/close) that is NaN, +-inf, <= 0 or
  above ``max_price``;
* ``volume``: NaN, inf, < 0 or above ``max_volume``;
* ``bar``: high < low;
* ``future``: stamped more than ``future_tolerance`` ahead of the bank's clock
  (the newest accepted timestamp over all symbols).  Such an input is held
  aside, not applied and not advancing the clock; the next input near it
  (within the tolerance) confirms a real jump -- a data gap, the next session --
  and both are applied in order, while an input inside the tolerance shows it
  was a stray, and it is counted here.  ``flush(ts)`` applies a held input
  stamped at or before ``ts``.  The very first input sets the clock unchecked,
  unless ``set_clock`` gave it one (live trading: the wall clock).

A tick older than the symbol's newest accepted tick is dropped as ``late``
(counted apart from ``dropped``).  Zero volume is accepted: it moves the
candle's prices but not the VWAP.
"""

from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from cpython.ref cimport Py_INCREF
from libc.string cimport memset, memcpy
from libc.math cimport NAN, isfinite
from libc.limits cimport LLONG_MAX, LLONG_MIN

import numpy as np
cimport numpy as cnp

from hftcore_ext.indicators cimport (
    BarIndicators, VwapState, SLOPE_MAX, bar_indicators_init, bar_indicators_update,
    slope_value, vwap_init, vwap_update, MAX_PARAMS, any_n_outputs, any_state_bytes, any_init,
    any_update,
)

cnp.import_array()

cdef long long NS = 1_000_000_000
cdef long long IST_OFFSET_NS = 19_800 * NS        # UTC+05:30
cdef long long DAY_NS = 86_400 * NS
cdef long long SESSION_ANCHOR_NS = 13_500 * NS    # 09:15 IST is 03:45 UTC
cdef long long BAR_SPANS = 10                     # bars may jump this many spans ahead
cdef long long MAX_SPAN_S = 366 * 86_400

IST_OFFSET_SECONDS = 19_800


def _physical_memory():
    import os
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):    # pragma: no cover - non-POSIX
        return 1 << 40


cdef inline long long _floormod(long long a, long long m) noexcept nogil:
    cdef long long r = a % m
    if r < 0:
        r += m
    return r


cdef long long _span_ns(long long span_seconds) except -1:
    if not 0 < span_seconds <= MAX_SPAN_S:
        raise ValueError(f"span_seconds must be in [1, {MAX_SPAN_S}], got {span_seconds}")
    return span_seconds * NS


cdef inline void _declared_update(Bank* b, Py_ssize_t sym, Py_ssize_t tf,
                                  const Candle* c) noexcept nogil:
    """Feed a closed candle to the series' declared indicators (their one kernel each)."""
    cdef char* blk = b.decl_rows[sym] + tf * b.decl_stride
    cdef Py_ssize_t k
    for k in range(b.n_decl):
        any_update(b.decl_kind[k], blk + b.decl_off[k], c.high, c.low, c.close, c.volume,
                   (<double*> blk) + b.decl_out[k])


cdef inline void _close_candle(Bank* b, Py_ssize_t sym, Py_ssize_t tf, Series* s) noexcept nogil:
    cdef Candle* row = b.hist_rows[sym] + tf * 2 * b.ring
    row[s.hist_next] = s.forming
    row[s.hist_next + b.ring] = s.forming      # the mirror keeps the newest run contiguous
    s.hist_next += 1
    if s.hist_next == b.ring:
        s.hist_next = 0
    if s.hist_len < b.hist:
        s.hist_len += 1
    s.closed += 1
    bar_indicators_update(&s.ind, s.forming.high, s.forming.low, s.forming.close)
    if b.n_decl:
        _declared_update(b, sym, tf, &s.forming)
    s.forming.start = -1
    # Crossover watch: the compiled lane tells Python when EMA fast/slow cross,
    # so a trend strategy is consulted only when there is something to decide.
    cdef double d
    cdef int sign
    s.crossed = False
    if s.ind.ema_fast.count >= s.ind.ema_fast.period and s.ind.ema_slow.count >= s.ind.ema_slow.period:
        d = s.ind.ema_fast.value - s.ind.ema_slow.value
        sign = 1 if d > 0 else (-1 if d < 0 else s.trend)
        s.crossed = s.trend != 0 and sign != s.trend
        s.trend = sign


cdef inline long long _sat_add(long long a, long long d) noexcept nogil:
    """a + d for d >= 0, saturating at LLONG_MAX instead of wrapping."""
    return a + d if a <= LLONG_MAX - d else LLONG_MAX


cdef int _quarantine(Bank* b, Py_ssize_t sym, double o, double h, double l, double c,
                     double v) noexcept nogil:
    """Count a refused input by reason (the rare path: not inlined into the loops)."""
    b.dropped += 1
    if sym < 0 or sym >= b.n_sym:
        b.q_symbol += 1
    elif not (o > 0.0 and o <= b.max_price and h > 0.0 and h <= b.max_price
              and l > 0.0 and l <= b.max_price and c > 0.0 and c <= b.max_price):
        b.q_price += 1
    elif not (v >= 0.0 and v <= b.max_volume):
        b.q_volume += 1
    else:
        b.q_bar += 1                    # high < low
    return -1


cdef inline void _unhold(Bank* b) noexcept nogil:
    b.held = False
    b.horizon = LLONG_MAX if b.clock == LLONG_MIN else _sat_add(b.clock, b.future_ns)


cdef inline void _discard_held(Bank* b) noexcept nogil:
    _unhold(b)
    b.dropped += 1
    b.q_future += 1


cdef inline long long _window(Bank* b, long long span) noexcept nogil:
    """How far ahead of the clock an input may be: the tolerance, or for bars
    BAR_SPANS bars (a daily-bar replay jumps a day per bar and more at weekends)."""
    cdef long long w = b.future_ns
    if span > 0 and span <= LLONG_MAX // BAR_SPANS and span * BAR_SPANS > w:
        w = span * BAR_SPANS
    return w


cdef bint _hold(Bank* b, Py_ssize_t sym, long long ts, double o, double h, double l, double c,
                double v, long long span) noexcept nogil:
    """The rare path of ``bank_trade`` (not inlined): beyond the horizon, keep the input
    aside, replacing (and counting) an earlier held one, and return True;
    ``bank_confirm`` applies it if a second input close to it arrives.  Inside the
    horizon with an input held, the held one was a stray: count it, return False."""
    if b.held:
        _discard_held(b)                # (restores the horizon)
    if ts <= b.horizon or ts <= _sat_add(b.clock, _window(b, span)):
        return False
    b.held = True
    b.horizon = LLONG_MIN               # every input takes this path until it is settled
    b.held_sym, b.held_ts, b.held_span = sym, ts, span
    b.held_o, b.held_h, b.held_l, b.held_c, b.held_v = o, h, l, c, v
    return True


cdef int bank_confirm(Bank* b, Py_ssize_t sym, long long ts, double o, double h,
                      double l, double c, double v, long long span) noexcept nogil:
    """Call before ``bank_trade`` when ``b.held``: if this (valid) input is also beyond
    the horizon and within the window of the held one, the clock really jumped, so
    the held input is applied first.  Returns its candle mask (symbol ``b.held_sym``),
    or -1 if nothing was released."""
    cdef long long w = _window(b, b.held_span if b.held_span > span else span)
    if not b.held or not _valid(b, sym, o, h, l, c, v):
        return -1
    if ts <= _sat_add(b.clock, _window(b, span)):
        return -1                       # inside the horizon: bank_trade drops the held one
    if ts > _sat_add(b.held_ts, w) or b.held_ts > _sat_add(ts, w):
        return -1                       # far from the held one too: bank_trade replaces it
    return _release(b)


cdef bint _confirm_stops(Bank* b, Py_ssize_t sym, long long ts, double o, double h, double l,
                         double c, double v, long long span, Py_ssize_t tf,
                         bint on_cross) noexcept nogil:
    """``bank_confirm`` for the ``*_until`` loops: True if the released input closed a
    candle on timeframe ``tf`` (and, with ``on_cross``, crossed its EMAs)."""
    cdef int mask = bank_confirm(b, sym, ts, o, h, l, c, v, span)
    return mask > 0 and (mask & (1 << tf)) != 0 and (
        not on_cross or b.series[b.held_sym * b.n_tf + tf].crossed)


cdef int _release(Bank* b) noexcept nogil:
    """Apply the held input (through ``bank_trade``, so one copy of the kernel is
    inlined in the loops; its horizon check is lifted for this one call)."""
    b.held = False
    b.horizon = LLONG_MAX
    cdef int mask = bank_trade(b, b.held_sym, b.held_ts, b.held_o, b.held_h, b.held_l, b.held_c,
                               b.held_v, b.held_span)
    _unhold(b)                          # the horizon from the (possibly moved) clock
    return mask


cdef inline bint _valid(Bank* b, Py_ssize_t sym, double o, double h, double l, double c,
                        double v) noexcept nogil:
    # NaN fails every comparison, +inf fails the upper bounds.  Non-short-circuit
    # (&): one branch, and for a tick (o == h == l == c) the compiler folds the
    # repeated price compares; the unsigned compare also refuses sym < 0.
    return ((<size_t> sym < <size_t> b.n_sym) & (l > 0.0) & (h >= l) & (h <= b.max_price)
            & (o > 0.0) & (o <= b.max_price) & (c > 0.0) & (c <= b.max_price)
            & (v >= 0.0) & (v <= b.max_volume))


cdef inline int bank_trade(Bank* b, Py_ssize_t sym, long long ts, double o, double h,
                           double l, double c, double v, long long span) noexcept nogil:
    """Apply one tick (span == 0) or one bar of ``span`` ns starting at ``ts``.

    Returns a bit mask of the timeframes whose candle closed (bit j for
    ``tf_ns[j]``), or -1 if the input was quarantined, late or held.
    """
    cdef SymbolState* ss
    cdef Series* s
    cdef Py_ssize_t j
    cdef long long tf, start, session
    cdef int mask = 0
    if not _valid(b, sym, o, h, l, c, v):
        return _quarantine(b, sym, o, h, l, c, v)
    if ts > b.horizon and _hold(b, sym, ts, o, h, l, c, v, span):   # (horizon is LLONG_MIN
        return -1                                                   # while an input is held)
    ss = &b.syms[sym]
    if ts < ss.last_ts:
        b.late += 1
        return -1
    if ts >= ss.session_end:
        # Integer division only when a day boundary is crossed, not per tick.
        session = (ts + IST_OFFSET_NS) // DAY_NS
        vwap_init(&ss.vwap)
        ss.session_end = (session + 1) * DAY_NS - IST_OFFSET_NS
    # A tick's typical price is its price; (p + p + p) / 3 would not round-trip.
    vwap_update(&ss.vwap, c if span == 0 else (h + l + c) / 3.0, v)
    ss.last_ts = ts
    ss.ltp = c
    b.accepted += 1
    if ts > b.clock:
        b.clock = ts
        b.horizon = _sat_add(ts, b.future_ns)
    for j in range(b.n_tf):
        tf = b.tf_ns[j]
        if span > tf:
            continue                    # a bar coarser than this timeframe says nothing about it
        s = &b.series[sym * b.n_tf + j]
        # Most ticks fall in the forming candle: a subtraction decides, no division.
        # (ts >= forming.start holds because older ticks were dropped above.)
        if s.forming.start >= 0 and ts - s.forming.start < tf:
            start = s.forming.start
        else:
            start = ts - _floormod(ts - SESSION_ANCHOR_NS, tf)
        if s.forming.start != start:
            if s.forming.start >= 0:
                _close_candle(b, sym, j, s)
                mask |= 1 << j
            s.forming.start = start
            s.forming.open = o
            s.forming.high = h
            s.forming.low = l
            s.forming.close = c
            s.forming.volume = v
        else:
            if h > s.forming.high:
                s.forming.high = h
            if l < s.forming.low:
                s.forming.low = l
            s.forming.close = c
            s.forming.volume += v
        if span > 0 and ts + span >= start + tf:
            _close_candle(b, sym, j, s)
            mask |= 1 << j
    return mask


cdef inline void _init_symbols(Bank* b, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef Series* s
    for i in range(lo, hi):
        b.syms[i].session_end = -9223372036854775807
        b.syms[i].last_ts = -9223372036854775807
        b.syms[i].ltp = NAN
        vwap_init(&b.syms[i].vwap)
        for j in range(b.n_tf):
            s = &b.series[i * b.n_tf + j]
            s.forming.start = -1
            s.hist_len = 0
            s.hist_next = 0
            s.closed = 0
            s.trend = 0
            s.crossed = False
            bar_indicators_init(&s.ind, b.ema_fast, b.ema_slow, b.rsi, b.atr, b.slope)


cdef class CandleBank:
    """Candles and indicators for ``n_symbols`` symbols on several timeframes.

    Parameters
    ----------
    n_symbols : int
        Symbol ids are ``0 .. n_symbols - 1``; ``grow`` adds more.
    timeframes : sequence of int
        Candle lengths in seconds, e.g. ``(60, 300, 900)`` (at most 8).
    history : int
        Closed candles kept per symbol and timeframe.
    ema_fast, ema_slow, rsi, atr, slope : int
        Indicator periods, in candles (the fixed bundle).
    max_price : float
        Prices above this (rupees; default 1e7) are quarantined as absurd.
    max_volume : float
        Volumes above this (units; default 1e12) are quarantined as absurd.
    future_tolerance : float or None
        Seconds a tick may be stamped ahead of the bank's clock (the newest accepted
        timestamp over all symbols; default 3600).  One further ahead is held aside:
        a second input near it confirms the jump (a data gap, the next session) and
        both are applied; an input inside the tolerance instead shows it was a stray,
        and it is quarantined (``future``).  Bars may also run ``10 * span`` ahead.
        None turns the check off.
    indicators : sequence of specs
        Declared indicators (``hftcore.indicators.sma(50)``, ...), as ``declare``.
    """

    def __cinit__(self, n_symbols, timeframes=(60, 300, 900), history=200, ema_fast=20,
                  ema_slow=50, rsi=14, atr=14, slope=20, max_price=1e7, max_volume=1e12,
                  future_tolerance=3600, indicators=()):
        memset(&self.bank, 0, sizeof(Bank))
        limits = {}
        for name, v in (("max_price", max_price), ("max_volume", max_volume),
                        ("future_tolerance", future_tolerance)):
            if v is None and name == "future_tolerance":
                continue
            try:
                ok = (not isinstance(v, bool)
                      and isinstance(v, (int, float, np.integer, np.floating))
                      and isfinite(float(v)))
            except OverflowError:
                ok = False
            if not ok or not (0 <= v <= 366 * 86400 if name == "future_tolerance" else v > 0):
                raise ValueError(f"{name} must be a finite number > 0 (seconds in [0, 1 year] "
                                 f"or None for future_tolerance), got {v!r}")
            limits[name] = float(v)
        self.bank.max_price = limits["max_price"]
        self.bank.max_volume = limits["max_volume"]
        self.bank.future_ns = (LLONG_MAX if future_tolerance is None
                               else <long long> (limits["future_tolerance"] * NS))
        self.bank.clock = LLONG_MIN
        self.bank.horizon = LLONG_MAX
        for name, v, lo, hi in (("n_symbols", n_symbols, 0, 10_000_000),
                                ("history", history, 1, 10_000_000),
                                ("ema_fast", ema_fast, 1, 1_000_000),
                                ("ema_slow", ema_slow, 1, 1_000_000), ("rsi", rsi, 1, 1_000_000),
                                ("atr", atr, 1, 1_000_000), ("slope", slope, 2, SLOPE_MAX)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {v!r}")
        try:
            tfs = [t for t in timeframes]
        except TypeError:
            raise ValueError(f"timeframes must be a sequence of seconds, got {timeframes!r}")
        if not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool)
                   and 0 < t <= 366 * 86400 for t in tfs):
            raise ValueError(f"timeframes must be seconds in [1, 1 year], got {timeframes!r}")
        tfs = [int(t) for t in tfs]
        if not 1 <= len(tfs) <= MAX_TIMEFRAMES:
            raise ValueError(f"between 1 and {MAX_TIMEFRAMES} timeframes are supported, got {len(tfs)}")
        if len(set(tfs)) != len(tfs):
            raise ValueError(f"timeframes must be distinct, got {tuple(timeframes)}")
        need = int(n_symbols) * len(tfs) * (sizeof(Series)
                                            + 2 * (int(history) + 1) * sizeof(Candle))
        if need > _physical_memory():
            raise ValueError(f"{n_symbols} symbols x {len(tfs)} timeframes x {history} candles "
                             f"need {need / 2**30:.1f} GiB, more than this machine has")
        tfs.sort()
        self.bank.n_tf = len(tfs)
        for j, t in enumerate(tfs):
            self.bank.tf_ns[j] = t * NS
        self.bank.hist = history
        self.bank.ring = history + 1
        self.bank.ema_fast, self.bank.ema_slow = ema_fast, ema_slow
        self.bank.rsi, self.bank.atr, self.bank.slope = rsi, atr, slope
        self._decl_names = ()
        self._decl_specs = ()
        self.grow(n_symbols)
        if indicators:
            self.declare(indicators)

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.bank.n_chunks):
            PyMem_Free(self.bank.chunks[i])
        for i in range(self.bank.n_dchunks):
            PyMem_Free(self.bank.dchunks[i])
        PyMem_Free(self.bank.chunks)
        PyMem_Free(self.bank.dchunks)
        PyMem_Free(self.bank.hist_rows)
        PyMem_Free(self.bank.decl_rows)
        PyMem_Free(self.bank.decl_kind)
        PyMem_Free(self.bank.decl_off)
        PyMem_Free(self.bank.decl_out)
        PyMem_Free(self.bank.decl_params)
        PyMem_Free(self.bank.series)
        PyMem_Free(self.bank.syms)

    cdef int _alloc_rows(self, Py_ssize_t lo, Py_ssize_t hi) except -1:
        """History rows for symbols [lo, hi): one new chunk; existing rows stay put.
        Left uninitialised (only the ``hist_len`` newest slots are ever read)."""
        cdef Bank* b = &self.bank
        cdef Py_ssize_t i, per = b.n_tf * 2 * b.ring
        cdef void** chunks = <void**> PyMem_Realloc(b.chunks, (b.n_chunks + 1) * sizeof(void*))
        if chunks == NULL:
            raise MemoryError()
        b.chunks = chunks
        cdef Candle* rows = <Candle*> PyMem_Malloc(max((hi - lo) * per, 1) * sizeof(Candle))
        if rows == NULL:
            raise MemoryError()
        b.chunks[b.n_chunks] = rows
        b.n_chunks += 1
        for i in range(lo, hi):
            b.hist_rows[i] = rows + (i - lo) * per
        return 0

    cdef int _alloc_decl(self, Py_ssize_t lo, Py_ssize_t hi) except -1:
        """Declared-indicator blocks for symbols [lo, hi), initialised (cold)."""
        cdef Bank* b = &self.bank
        cdef Py_ssize_t i, j, k, per = b.n_tf * b.decl_stride
        cdef char* blk
        if b.n_decl == 0 or hi <= lo:
            return 0
        cdef void** chunks = <void**> PyMem_Realloc(b.dchunks, (b.n_dchunks + 1) * sizeof(void*))
        if chunks == NULL:
            raise MemoryError()
        b.dchunks = chunks
        cdef char* mem = <char*> PyMem_Malloc((hi - lo) * per)
        if mem == NULL:
            raise MemoryError()
        b.dchunks[b.n_dchunks] = mem
        b.n_dchunks += 1
        for i in range(lo, hi):
            b.decl_rows[i] = mem + (i - lo) * per
            for j in range(b.n_tf):
                blk = b.decl_rows[i] + j * b.decl_stride
                for k in range(b.n_out):
                    (<double*> blk)[k] = NAN
                for k in range(b.n_decl):
                    any_init(b.decl_kind[k], blk + b.decl_off[k], &b.decl_params[k * MAX_PARAMS])
        return 0

    def grow(self, Py_ssize_t n_symbols):
        """Make room for symbol ids up to ``n_symbols - 1``; existing state is kept."""
        cdef Bank* b = &self.bank
        cdef Py_ssize_t old = b.n_sym, n = n_symbols, cells
        if n <= old:
            return
        cells = n * b.n_tf
        series = <Series*> PyMem_Realloc(b.series, max(cells, 1) * sizeof(Series))
        if series == NULL:
            raise MemoryError()
        b.series = series
        syms = <SymbolState*> PyMem_Realloc(b.syms, max(n, 1) * sizeof(SymbolState))
        if syms == NULL:
            raise MemoryError()
        b.syms = syms
        rows = <Candle**> PyMem_Realloc(b.hist_rows, max(n, 1) * sizeof(Candle*))
        if rows == NULL:
            raise MemoryError()
        b.hist_rows = rows
        decl = <char**> PyMem_Realloc(b.decl_rows, max(n, 1) * sizeof(char*))
        if decl == NULL:
            raise MemoryError()
        b.decl_rows = decl
        self._alloc_rows(old, n)
        self._alloc_decl(old, n)
        _init_symbols(b, old, n)
        b.n_sym = n

    # ------------------------------------------------------------ ingest

    cpdef int on_tick(self, Py_ssize_t sym, long long ts_ns, double price, double volume):
        """Apply one tick.  Returns the mask of timeframes whose candle closed
        (bit j for ``timeframes[j]``), or -1 if the tick was quarantined, late or
        held (see ``future_tolerance``).  A tick that confirms a held one applies
        both; the mask then covers both."""
        cdef int held = -1, mask
        if self.bank.held:
            held = bank_confirm(&self.bank, sym, ts_ns, price, price, price, price, volume, 0)
        mask = bank_trade(&self.bank, sym, ts_ns, price, price, price, price, volume, 0)
        return mask if held < 0 else (held if mask < 0 else held | mask)

    def on_bar(self, Py_ssize_t sym, long long ts_ns, double open, double high, double low,
               double close, double volume, long long span_seconds):
        """Apply one bar of ``span_seconds`` starting at ``ts_ns`` (e.g. a Kite
        1-minute candle).  Timeframes shorter than the bar are not touched."""
        cdef long long span = _span_ns(span_seconds)
        cdef int held = -1, mask
        if self.bank.held:
            held = bank_confirm(&self.bank, sym, ts_ns, open, high, low, close, volume, span)
        mask = bank_trade(&self.bank, sym, ts_ns, open, high, low, close, volume, span)
        return mask if held < 0 else (held if mask < 0 else held | mask)

    def ingest_ticks(self, const int[:] sym, const long long[:] ts_ns, const double[:] price,
                     const double[:] volume):
        """Apply arrays of ticks in order, without the GIL.  Returns the number
        of candles closed.  Arrays: int32 ids, int64 ns, float64, float64."""
        cdef Py_ssize_t i, n = sym.shape[0]
        cdef long long closed = 0
        cdef int mask
        cdef Bank* b = &self.bank
        if ts_ns.shape[0] != n or price.shape[0] != n or volume.shape[0] != n:
            raise ValueError("sym, ts_ns, price and volume must have the same length")
        with nogil:
            for i in range(n):
                if b.held:
                    mask = bank_confirm(b, sym[i], ts_ns[i], price[i], price[i], price[i],
                                        price[i], volume[i], 0)
                    while mask > 0:
                        closed += mask & 1
                        mask >>= 1
                mask = bank_trade(b, sym[i], ts_ns[i], price[i], price[i], price[i], price[i],
                                  volume[i], 0)
                while mask > 0:
                    closed += mask & 1
                    mask >>= 1
        return closed

    def ingest_bars(self, const int[:] sym, const long long[:] ts_ns, const double[:] open,
                    const double[:] high, const double[:] low, const double[:] close,
                    const double[:] volume, long long span_seconds):
        """Apply arrays of bars in order, without the GIL.  Returns candles closed."""
        cdef Py_ssize_t i, n = sym.shape[0]
        cdef long long closed = 0, span = _span_ns(span_seconds)
        cdef int mask
        cdef Bank* b = &self.bank
        if not (ts_ns.shape[0] == open.shape[0] == high.shape[0] == low.shape[0]
                == close.shape[0] == volume.shape[0] == n):
            raise ValueError("all bar arrays must have the same length")
        with nogil:
            for i in range(n):
                if b.held:
                    mask = bank_confirm(b, sym[i], ts_ns[i], open[i], high[i], low[i], close[i],
                                        volume[i], span)
                    while mask > 0:
                        closed += mask & 1
                        mask >>= 1
                mask = bank_trade(b, sym[i], ts_ns[i], open[i], high[i], low[i], close[i],
                                  volume[i], span)
                while mask > 0:
                    closed += mask & 1
                    mask >>= 1
        return closed

    cdef tuple _run_until(self, const int[:] sym, const long long[:] ts_ns, const double[:] open,
                          const double[:] high, const double[:] low, const double[:] close,
                          const double[:] volume, long long span, Py_ssize_t start,
                          Py_ssize_t tf, bint on_cross, Py_ssize_t end=-1):
        cdef Py_ssize_t i, n = sym.shape[0]
        cdef int mask, bit = 1 << tf
        cdef Bank* b = &self.bank
        cdef Py_ssize_t hit = -1
        if not 0 <= tf < b.n_tf:
            raise IndexError(f"timeframe index {tf} out of range [0, {b.n_tf})")
        if not (ts_ns.shape[0] == close.shape[0] == volume.shape[0] == n):
            raise ValueError("input arrays must have the same length")
        if 0 <= end < n:
            n = end
        if start < 0:
            start = 0
        with nogil:
            i = start
            while i < n:
                if b.held and _confirm_stops(b, sym[i], ts_ns[i], open[i], high[i], low[i],
                                             close[i], volume[i], span, tf, on_cross):
                    hit = b.held_sym    # tick i confirmed a held input that closes/crosses:
                    break               # stop for it before tick i (applied on resume)
                mask = bank_trade(b, sym[i], ts_ns[i], open[i], high[i], low[i], close[i],
                                  volume[i], span)
                i += 1
                if mask > 0 and (mask & bit) and (
                        not on_cross or b.series[sym[i - 1] * b.n_tf + tf].crossed):
                    hit = sym[i - 1]
                    break
        return i, hit

    def ingest_ticks_until(self, const int[:] sym, const long long[:] ts_ns,
                           const double[:] price, const double[:] volume, Py_ssize_t start=0,
                           Py_ssize_t tf=0, str stop="close"):
        """Ingest ticks from index ``start`` (nogil) and stop right after the first
        one that closes a candle on timeframe index ``tf`` (``stop="close"``) or
        makes that timeframe's EMA fast/slow cross (``stop="cross"``).

        Returns ``(next_index, symbol_id)``: resume from ``next_index``;
        ``symbol_id`` is -1 when the arrays ran out without a stop.  When tick ``i``
        confirms an input held beyond the future tolerance (see the class doc) and
        that input closes/crosses, the stop is reported for it before tick ``i`` is
        applied: ``next_index == i``, which can equal ``start`` when the held input
        came from an earlier call.
        """
        if stop not in ("close", "cross"):
            raise ValueError(f"stop must be 'close' or 'cross', got {stop!r}")
        return self._run_until(sym, ts_ns, price, price, price, price, volume, 0, start, tf,
                               stop == "cross")

    def ingest_bars_until(self, const int[:] sym, const long long[:] ts_ns, const double[:] open,
                          const double[:] high, const double[:] low, const double[:] close,
                          const double[:] volume, long long span_seconds, Py_ssize_t start=0,
                          Py_ssize_t tf=0, str stop="close"):
        """``ingest_ticks_until`` for bars of ``span_seconds``."""
        if stop not in ("close", "cross"):
            raise ValueError(f"stop must be 'close' or 'cross', got {stop!r}")
        if not (open.shape[0] == high.shape[0] == low.shape[0] == close.shape[0]):
            raise ValueError("all bar arrays must have the same length")
        return self._run_until(sym, ts_ns, open, high, low, close, volume,
                               _span_ns(span_seconds), start, tf, stop == "cross")

    def cursor(self, sym, ts_ns, price=None, volume=None, *, open=None, high=None, low=None,
               close=None, long long span_seconds=0):
        """A :class:`Cursor` over one batch: ticks (``price``, ``volume``) or bars
        (``open``/``high``/``low``/``close``, ``volume``, ``span_seconds``).  The
        arrays are checked and bound once; ``cursor.until(...)`` then does what
        ``ingest_*_until`` does without converting them again at every stop."""
        cdef Cursor c = Cursor.__new__(Cursor)
        c.bank = self
        c.sym, c.ts = sym, ts_ns
        if price is not None:
            if open is not None or high is not None or low is not None or close is not None:
                raise ValueError("give ticks (price) or bars (open, high, low, close), not both")
            c.open = c.high = c.low = c.close = price
            c.span = 0
        else:
            if open is None or high is None or low is None or close is None:
                raise ValueError("bars need open, high, low and close")
            c.open, c.high, c.low, c.close = open, high, low, close
            c.span = _span_ns(span_seconds)
        c.volume = volume
        c.n = c.sym.shape[0]
        if not (c.ts.shape[0] == c.open.shape[0] == c.high.shape[0] == c.low.shape[0]
                == c.close.shape[0] == c.volume.shape[0] == c.n):
            raise ValueError("all arrays must have the same length")
        return c

    def trend(self, Py_ssize_t sym, Py_ssize_t tf):
        """Sign of EMA fast - slow at the last close (+1, -1; 0 before both warm up)."""
        self._check(sym, tf)
        return self.bank.series[sym * self.bank.n_tf + tf].trend

    def flush(self, long long ts_ns):
        """Close every forming candle whose bucket ends at or before ``ts_ns``.
        Returns the number closed.  A held input (see ``future_tolerance``) stamped
        at or before ``ts_ns`` is applied first (the caller's clock vouches for it);
        one stamped after it is quarantined as ``future``."""
        cdef Bank* b = &self.bank
        cdef Py_ssize_t i, j
        cdef long long closed = 0
        cdef Series* s
        cdef int mask
        if b.held:
            if b.held_ts <= ts_ns:
                mask = _release(b)
                while mask > 0:
                    closed += mask & 1
                    mask >>= 1
            else:
                _discard_held(b)
        with nogil:
            for i in range(b.n_sym):
                for j in range(b.n_tf):
                    s = &b.series[i * b.n_tf + j]
                    if s.forming.start >= 0 and s.forming.start + b.tf_ns[j] <= ts_ns:
                        _close_candle(b, i, j, s)
                        closed += 1
        return closed

    def set_clock(self, long long ts_ns):
        """Advance the bank's clock to ``ts_ns`` if it is behind (e.g. to the wall clock
        when trading live), so the future tolerance applies from the first tick."""
        cdef Bank* b = &self.bank
        if ts_ns > b.clock:
            b.clock = ts_ns
            if not b.held:
                b.horizon = _sat_add(ts_ns, b.future_ns)

    def reset_session(self, Py_ssize_t sym):
        """Start a new VWAP session for ``sym`` now (sessions also roll at IST midnight)."""
        self._check(sym, 0)
        vwap_init(&self.bank.syms[sym].vwap)

    # ------------------------------------------------------------ declared indicators

    def declare(self, specs):
        """Compute these indicators on every closed candle of every symbol and timeframe.

        ``specs`` are indicator specs (``hftcore.indicators.sma(50)``, ``bbands(20, 2)``,
        ...; any object with ``key``, ``kind``, ``kernel_params``, ``output_names`` and
        ``make()``).  Specs already declared (same key) are skipped, so strategies can
        each declare what they need.  The bank feeds them, in the nogil close path,
        through the same inline kernels as the ``hftcore_ext.indicators`` classes.

        Declaring after candles have closed re-initialises every declared indicator
        and replays the kept history (the last ``history_length`` candles of each
        series) into it, so it is warm at once where that history suffices.
        Returns the output names, in column order (``indicator_names``).
        Raises ValueError for a spec the kernels do not know; nothing is changed then.
        """
        cdef Bank* b = &self.bank
        cdef list merged = list(self._decl_specs)
        cdef set keys = {sp.key for sp in merged}
        cdef Py_ssize_t k, j, n_decl, n_out, off, nb, i, t, slot
        cdef Candle* row
        cdef Series* s
        for sp in specs:
            try:
                key, kind = sp.key, sp.kind
                params = tuple(float(x) for x in sp.kernel_params)
                names = tuple(sp.output_names)
                sp.make()                                   # the class validates the parameters
            except AttributeError as exc:
                raise ValueError(f"not an indicator spec: {sp!r} ({exc})") from None
            if not isinstance(kind, int) or any_n_outputs(kind) == 0 \
                    or any_n_outputs(kind) != len(names) or len(params) > MAX_PARAMS:
                raise ValueError(f"indicator spec {key!r}: unknown kind {kind!r} or "
                                 f"{len(names)} outputs where the kernel writes "
                                 f"{any_n_outputs(kind) if isinstance(kind, int) else '?'}")
            if key not in keys:
                keys.add(key)
                merged.append(sp)
        if len(merged) == len(self._decl_specs):
            return self._decl_names
        n_decl = len(merged)
        kinds = <int*> PyMem_Malloc(n_decl * sizeof(int))
        offs = <Py_ssize_t*> PyMem_Malloc(n_decl * sizeof(Py_ssize_t))
        outs = <Py_ssize_t*> PyMem_Malloc(n_decl * sizeof(Py_ssize_t))
        prm = <double*> PyMem_Malloc(n_decl * MAX_PARAMS * sizeof(double))
        if kinds == NULL or offs == NULL or outs == NULL or prm == NULL:
            PyMem_Free(kinds)
            PyMem_Free(offs)
            PyMem_Free(outs)
            PyMem_Free(prm)
            raise MemoryError()
        out_names = []
        n_out = 0
        for k, sp in enumerate(merged):
            kinds[k] = sp.kind
            outs[k] = n_out
            n_out += len(sp.output_names)
            out_names.extend(sp.output_names)
            params = tuple(float(x) for x in sp.kernel_params)
            for j in range(MAX_PARAMS):
                prm[k * MAX_PARAMS + j] = params[j] if j < len(params) else 0.0
        off = n_out * sizeof(double)
        for k in range(n_decl):
            offs[k] = off
            off += any_state_bytes(kinds[k], &prm[k * MAX_PARAMS])
        # swap in the new layout; the old blocks are private (never handed out)
        for i in range(b.n_dchunks):
            PyMem_Free(b.dchunks[i])
        b.n_dchunks = 0
        PyMem_Free(b.decl_kind)
        PyMem_Free(b.decl_off)
        PyMem_Free(b.decl_out)
        PyMem_Free(b.decl_params)
        b.decl_kind, b.decl_off, b.decl_out, b.decl_params = kinds, offs, outs, prm
        b.n_decl, b.n_out, b.decl_stride = n_decl, n_out, off
        self._decl_specs = tuple(merged)
        self._decl_names = tuple(out_names)
        self._alloc_decl(0, b.n_sym)
        with nogil:                                          # warm up from the kept history
            for i in range(b.n_sym):
                for t in range(b.n_tf):
                    s = &b.series[i * b.n_tf + t]
                    row = b.hist_rows[i] + t * 2 * b.ring
                    for slot in range(s.hist_next + b.ring - s.hist_len, s.hist_next + b.ring):
                        _declared_update(b, i, t, &row[slot])
        return self._decl_names

    @property
    def indicator_names(self):
        """Output names of the declared indicators, in column order: a spec's key
        for a one-output indicator, ``key.output`` for each output of the others."""
        return self._decl_names

    @property
    def declared(self):
        """The declared specs, in declaration order."""
        return self._decl_specs

    def indicators(self, Py_ssize_t sym, Py_ssize_t tf):
        """Declared indicators as of the last closed candle: ``{name: value}``,
        None where not warmed up (the services' convention)."""
        self._check(sym, tf)
        cdef Bank* b = &self.bank
        cdef dict out = {}
        cdef tuple names = self._decl_names
        cdef Py_ssize_t k
        cdef double v
        if b.n_decl == 0:
            return out
        cdef double* vals = <double*> (b.decl_rows[sym] + tf * b.decl_stride)
        for k in range(b.n_out):
            v = vals[k]
            out[names[k]] = None if v != v else v
        return out

    def indicator_values(self, Py_ssize_t sym, Py_ssize_t tf):
        """Declared indicators as a float64 array (a copy) in ``indicator_names``
        order; NaN where not warmed up."""
        self._check(sym, tf)
        cdef Bank* b = &self.bank
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(b.n_out, dtype=np.float64)
        if b.n_out:
            memcpy(out.data, b.decl_rows[sym] + tf * b.decl_stride, b.n_out * sizeof(double))
        return out

    # ------------------------------------------------------------ read

    cdef int _check(self, Py_ssize_t sym, Py_ssize_t tf) except -1:
        if not 0 <= sym < self.bank.n_sym:
            raise IndexError(f"symbol id {sym} out of range [0, {self.bank.n_sym})")
        if not 0 <= tf < self.bank.n_tf:
            raise IndexError(f"timeframe index {tf} out of range [0, {self.bank.n_tf})")
        return 0

    def timeframe_index(self, long long seconds):
        """Index of the timeframe of ``seconds``; -1 if the bank does not keep it."""
        cdef Py_ssize_t j
        for j in range(self.bank.n_tf):
            if self.bank.tf_ns[j] == seconds * NS:
                return j
        return -1

    def bundle(self, Py_ssize_t sym, Py_ssize_t tf, bint live=False):
        """(ema_fast, ema_slow, rsi, atr, vwap, slope) for a symbol/timeframe.

        ``live=False`` gives the values as of the last closed candle (they do not
        repaint); ``live=True`` also counts the forming candle as if it closed now.
        VWAP is the session VWAP to the newest tick either way.  NaN = not warmed up.
        """
        self._check(sym, tf)
        cdef Series* s = &self.bank.series[sym * self.bank.n_tf + tf]
        cdef BarIndicators tmp
        cdef BarIndicators* ind = &s.ind
        if live and s.forming.start >= 0:
            memcpy(&tmp, ind, sizeof(BarIndicators))
            bar_indicators_update(&tmp, s.forming.high, s.forming.low, s.forming.close)
            ind = &tmp
        return (ind.ema_fast.value, ind.ema_slow.value, ind.rsi.value, ind.atr.value,
                self.bank.syms[sym].vwap.value, slope_value(&ind.slope))

    def bundle_dict(self, Py_ssize_t sym, Py_ssize_t tf, tuple keys, bint live=False):
        """``bundle`` as a dict under ``keys`` (six names), None where not warmed up:
        the form the services hand out, built in one call."""
        # keys is indexed without a bounds check in the normal build: a shorter tuple
        # would read past its end
        if keys is None or len(keys) != 6:
            raise ValueError(f"keys must be a tuple of 6 names, got {keys!r}")
        values = self.bundle(sym, tf, live)
        cdef dict out = {}
        cdef Py_ssize_t k
        cdef double v
        for k in range(6):
            v = values[k]
            out[keys[k]] = None if v != v else v
        return out

    def history(self, Py_ssize_t sym, Py_ssize_t tf, Py_ssize_t n=-1):
        """The newest ``n`` closed candles (all kept if n < 0), oldest first, as a
        dict of read-only numpy arrays: ts (int64 ns, candle start), open, high,
        low, close, volume (float64).

        No copy: the arrays are strided views of the bank's ring (each candle is
        kept twice, so the newest run is always contiguous).  They keep the bank
        alive and show the same candles until ``history_length + 1 - n`` more
        candles close on this series - always through the next close, so a
        decision taken between two closes sees a consistent window.  After that
        their slots are reused: ``np.array(view)`` to keep one for longer.
        """
        self._check(sym, tf)
        cdef Bank* b = &self.bank
        cdef Series* s = &b.series[sym * b.n_tf + tf]
        cdef Py_ssize_t count = s.hist_len if n < 0 or n > s.hist_len else n
        cdef Candle* first = b.hist_rows[sym] + tf * 2 * b.ring + s.hist_next + b.ring - count
        cdef cnp.npy_intp dims[2]
        dims[0] = count
        dims[1] = 6
        cdef cnp.ndarray raw = cnp.PyArray_SimpleNewFromData(2, dims, cnp.NPY_FLOAT64,
                                                             <void*> first)
        Py_INCREF(self)
        cnp.PyArray_SetBaseObject(raw, self)
        cnp.PyArray_CLEARFLAGS(raw, cnp.NPY_ARRAY_WRITEABLE)
        return {"ts": raw[:, 0].view(np.int64), "open": raw[:, 1], "high": raw[:, 2],
                "low": raw[:, 3], "close": raw[:, 4], "volume": raw[:, 5]}

    def forming(self, Py_ssize_t sym, Py_ssize_t tf):
        """The forming candle as (ts, open, high, low, close, volume), or None."""
        self._check(sym, tf)
        cdef Candle* c = &self.bank.series[sym * self.bank.n_tf + tf].forming
        if c.start < 0:
            return None
        return (c.start, c.open, c.high, c.low, c.close, c.volume)

    def closed_count(self, Py_ssize_t sym, Py_ssize_t tf):
        """Candles closed so far for this symbol/timeframe."""
        self._check(sym, tf)
        return self.bank.series[sym * self.bank.n_tf + tf].closed

    def ltp(self, Py_ssize_t sym):
        """Newest accepted price of ``sym`` (NaN before its first tick)."""
        self._check(sym, 0)
        return self.bank.syms[sym].ltp

    def last_ts(self, Py_ssize_t sym):
        """ns of the newest accepted tick of ``sym`` (None before its first tick)."""
        self._check(sym, 0)
        cdef long long t = self.bank.syms[sym].last_ts
        return None if t == -9223372036854775807 else t

    @property
    def n_symbols(self):
        return self.bank.n_sym

    @property
    def timeframes(self):
        """Candle lengths in seconds, ascending."""
        return tuple(self.bank.tf_ns[j] // NS for j in range(self.bank.n_tf))

    @property
    def history_length(self):
        return self.bank.hist

    @property
    def accepted(self):
        return self.bank.accepted

    @property
    def dropped(self):
        return self.bank.dropped

    @property
    def late(self):
        return self.bank.late

    def quarantined(self):
        """Inputs refused so far, by reason (they sum to ``dropped``): ``symbol`` (id
        not in the bank), ``price`` (<= 0, NaN, inf or above ``max_price``), ``volume``
        (< 0, NaN, inf or above ``max_volume``), ``bar`` (high < low), ``future``
        (stamped beyond ``future_tolerance`` and never confirmed)."""
        b = &self.bank
        return {"symbol": b.q_symbol, "price": b.q_price, "volume": b.q_volume,
                "bar": b.q_bar, "future": b.q_future}

    @property
    def held(self):
        """1 while an input beyond the future tolerance waits for confirmation, else 0."""
        return 1 if self.bank.held else 0

    @property
    def clock(self):
        """Newest accepted timestamp over all symbols, ns (None before the first)."""
        return None if self.bank.clock == LLONG_MIN else self.bank.clock

    @property
    def max_price(self):
        return self.bank.max_price

    @property
    def max_volume(self):
        return self.bank.max_volume

    @property
    def future_tolerance(self):
        """Seconds (float), or None when the check is off."""
        return None if self.bank.future_ns == LLONG_MAX else self.bank.future_ns / NS

    @property
    def nbytes(self):
        """Bytes of C state held (all symbols)."""
        cdef Py_ssize_t cells = self.bank.n_sym * self.bank.n_tf
        return (cells * sizeof(Series) + self.bank.n_sym * sizeof(SymbolState)
                + cells * 2 * self.bank.ring * sizeof(Candle) + cells * self.bank.decl_stride)


cdef class Cursor:
    """One batch of ticks or bars bound to a :class:`CandleBank` (``bank.cursor``).

    ``until(start, end, tf, cross)`` ingests from ``start`` up to ``end`` (exclusive;
    -1: the whole batch) exactly as ``ingest_ticks_until`` / ``ingest_bars_until`` do
    and returns ``(next_index, symbol_id)``.  The session steps through a batch
    decision by decision with it: at one stop per bar, converting seven arrays
    at every call cost more than ingesting the bar."""
    cdef readonly CandleBank bank
    cdef const int[:] sym
    cdef const long long[:] ts
    cdef const double[:] open
    cdef const double[:] high
    cdef const double[:] low
    cdef const double[:] close
    cdef const double[:] volume
    cdef long long span
    cdef readonly Py_ssize_t n

    def __init__(self):
        raise TypeError("make a Cursor with CandleBank.cursor(...)")

    def until(self, Py_ssize_t start, Py_ssize_t end=-1, Py_ssize_t tf=0, bint cross=False):
        if self.bank is None:
            raise TypeError("make a Cursor with CandleBank.cursor(...)")
        if end < -1:
            raise ValueError(f"end must be -1 (the whole batch) or an index >= 0, got {end}")
        return self.bank._run_until(self.sym, self.ts, self.open, self.high, self.low,
                                    self.close, self.volume, self.span, start, tf, cross, end)
