"""The contract of the candle bank: ticks -> OHLCV candles -> indicator state.

All state lives in one C struct (``Bank``) with flat arrays indexed by
symbol id and timeframe, so the per-tick entry and the nogil batch entry share
``bank_trade`` and no Python object exists per tick.
"""

from hftcore_ext.indicators cimport BarIndicators, VwapState

cdef enum:
    MAX_TIMEFRAMES = 8


cdef struct Candle:
    long long start       # bucket start, ns since epoch (UTC); -1 when no candle is forming
    double open
    double high
    double low
    double close
    double volume


cdef struct Series:       # one symbol on one timeframe
    # hot first: the forming candle and the ring bookkeeping share the first cache lines
    Candle forming
    Py_ssize_t hist_len   # closed candles stored, <= Bank.hist
    Py_ssize_t hist_next  # ring slot the next closed candle goes to
    long long closed      # candles closed since start
    int trend             # sign of EMA fast - slow at the last close; 0 before both warm
    bint crossed          # the last close flipped ``trend`` (an EMA crossover)
    BarIndicators ind     # updated once per closed candle


cdef struct SymbolState:
    VwapState vwap        # session VWAP, fed by every tick / bar
    long long session_end # ns when the current VWAP session (IST calendar day) ends
    long long last_ts     # ns of the newest accepted tick
    double ltp            # newest accepted price


cdef struct Bank:
    Py_ssize_t n_sym
    Py_ssize_t n_tf
    Py_ssize_t hist                       # candles kept per symbol and timeframe
    long long tf_ns[MAX_TIMEFRAMES]       # ascending
    Py_ssize_t ema_fast, ema_slow, rsi, atr, slope
    Series* series                        # [n_sym * n_tf]
    SymbolState* syms                     # [n_sym]
    # Closed candles: per series a ring of ``ring = hist + 1`` slots, each candle
    # written twice (slot and slot + ring), so the newest n <= hist are always one
    # contiguous run of 48-byte records and ``history`` can hand out numpy views.
    # A symbol's rows never move (grow allocates new chunks), so a view stays valid
    # memory for as long as it holds the bank.
    Py_ssize_t ring
    Candle** hist_rows                    # [n_sym] -> [n_tf * 2 * ring]
    void** chunks                         # allocations behind hist_rows, freed at dealloc
    Py_ssize_t n_chunks
    # Declared indicators (``CandleBank.declare``): one block per series holding the
    # n_out output values first, then each indicator's state (struct + ring).
    Py_ssize_t n_decl
    Py_ssize_t n_out
    Py_ssize_t decl_stride                # bytes per series block
    int* decl_kind                        # [n_decl] kernel code (indicators.pxd K_*)
    Py_ssize_t* decl_off                  # [n_decl] byte offset of the state in the block
    Py_ssize_t* decl_out                  # [n_decl] first output column
    double* decl_params                   # [n_decl * MAX_PARAMS]
    char** decl_rows                      # [n_sym] -> [n_tf * decl_stride]
    void** dchunks                        # allocations behind decl_rows
    Py_ssize_t n_dchunks
    long long accepted
    long long dropped                     # quarantined: sum of the q_* counters below
    long long late                        # older than the symbol's newest tick
    # quarantine: inputs that must not reach the state, counted by reason
    double max_price                      # a price above this (or <= 0, NaN, inf) is refused
    double max_volume                     # a volume above this (or < 0, NaN, inf) is refused
    long long future_ns                   # tolerance ahead of ``clock``; LLONG_MAX = off
    long long clock                       # newest accepted ts over all symbols (LLONG_MIN: none)
    long long horizon                     # clock + future_ns (saturating): later is "future"
    long long q_symbol, q_price, q_volume, q_bar, q_future
    # one input beyond the horizon, held until a second one near it confirms the jump
    # (a data gap, a new session) or an input inside the horizon shows it was a stray
    bint held
    Py_ssize_t held_sym
    long long held_ts, held_span
    double held_o, held_h, held_l, held_c, held_v


cdef class CandleBank:
    cdef Bank bank
    cdef tuple _decl_names                # output names, in column order
    cdef tuple _decl_specs                # the declared spec objects
    cdef int _alloc_rows(self, Py_ssize_t lo, Py_ssize_t hi) except -1
    cdef int _alloc_decl(self, Py_ssize_t lo, Py_ssize_t hi) except -1
    cdef int _check(self, Py_ssize_t sym, Py_ssize_t tf) except -1
    cdef tuple _run_until(self, const int[:] sym, const long long[:] ts_ns, const double[:] open,
                          const double[:] high, const double[:] low, const double[:] close,
                          const double[:] volume, long long span, Py_ssize_t start,
                          Py_ssize_t tf, bint on_cross, Py_ssize_t end=*)
    cpdef int on_tick(self, Py_ssize_t sym, long long ts_ns, double price, double volume)
