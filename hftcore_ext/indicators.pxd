# cython: language_level=3
"""The contract of the incremental indicators: C structs and their update kernels.

Every indicator is a plain C struct plus one ``cdef inline ... noexcept nogil``
update function taking a pointer to it.  The per-value Python entry
(``EMA.update``), the numpy batch entry (``EMA.batch``) and the candle bank
(``candles.pyx``) all call the same function, so there is exactly one
implementation of each formula.

Definitions follow TA-Lib (default, non-Metastock settings, unstable period 0):

* EMA(n):  k = 2/(n+1); the first value, at the n-th input, is the simple mean
  of the first n inputs; then ``ema = x * k + ema * (1 - k)``.
* RSI(n):  Wilder.  Needs n+1 inputs.  Average gain/loss seeded by the simple
  mean of the first n changes, then ``avg = avg * (n-1)/n + x / n``.
  RSI = 100 * g / (g + l), and 0 when g + l is within 1e-14 of zero
  (TA-Lib 0.6's TA_IS_ZERO).
* ATR(n):  Wilder.  True range needs the previous close, so the first bar only
  primes it; the first ATR, at bar n+1, is the mean of the first n TRs.
* VWAP:    sum(price * volume) / sum(volume) since the last reset.
* Slope(n): least-squares slope of the last n inputs against 0..n-1
  (TA-Lib LINEARREG_SLOPE), in price units per input.

NaN inputs are ignored: the state is left unchanged and the current value is
returned.  Every value is NaN until the indicator has warmed up.
"""

from libc.math cimport NAN, fabs

# Largest window the slope ring can hold (the ring lives inside the struct so
# that a bank of thousands of symbols is one flat allocation).
cdef enum:
    SLOPE_MAX = 64


cdef struct EmaState:
    Py_ssize_t period     # n
    Py_ssize_t count      # inputs seen
    double k              # 2 / (n + 1)
    double k1             # 1 - k
    double seed_sum       # running sum while count < n
    double value          # NaN until count >= n


cdef struct RsiState:
    Py_ssize_t period
    Py_ssize_t count      # price changes seen
    double prev           # previous input, NaN before the first
    double avg_gain       # a sum while count < n, then the Wilder average
    double avg_loss
    double keep           # (n - 1) / n: Wilder's weight of the previous average
    double inv            # 1 / n
    double value


cdef struct AtrState:
    Py_ssize_t period
    Py_ssize_t count      # true ranges seen
    double prev_close     # NaN before the first bar
    double tr_sum         # sum of the first n true ranges
    double keep           # (n - 1) / n
    double inv            # 1 / n
    double value          # NaN until n true ranges are seen


cdef struct VwapState:
    double pv             # sum(price * volume)
    double vol            # sum(volume)
    double value


cdef struct SlopeState:
    Py_ssize_t period
    Py_ssize_t count
    Py_ssize_t head       # next slot to write; also the oldest value once full
    double value          # last slope_update result (slope_push leaves it stale)
    double ring[SLOPE_MAX]


# The six numbers of a market-data bundle, kept per symbol and timeframe.
cdef struct BarIndicators:
    EmaState ema_fast
    EmaState ema_slow
    RsiState rsi
    AtrState atr
    SlopeState slope


# ---------------------------------------------------------------- init

cdef inline void ema_init(EmaState* s, Py_ssize_t period) noexcept nogil:
    s.period = period
    s.count = 0
    s.k = 2.0 / (period + 1.0)
    s.k1 = 1.0 - s.k
    s.seed_sum = 0.0
    s.value = NAN


cdef inline void rsi_init(RsiState* s, Py_ssize_t period) noexcept nogil:
    s.period = period
    s.count = 0
    s.prev = NAN
    s.avg_gain = 0.0
    s.avg_loss = 0.0
    s.keep = (period - 1.0) / period
    s.inv = 1.0 / period
    s.value = NAN


cdef inline void atr_init(AtrState* s, Py_ssize_t period) noexcept nogil:
    s.period = period
    s.count = 0
    s.prev_close = NAN
    s.tr_sum = 0.0
    s.keep = (period - 1.0) / period
    s.inv = 1.0 / period
    s.value = NAN


cdef inline void vwap_init(VwapState* s) noexcept nogil:
    s.pv = 0.0
    s.vol = 0.0
    s.value = NAN


cdef inline void slope_init(SlopeState* s, Py_ssize_t period) noexcept nogil:
    s.period = period
    s.count = 0
    s.head = 0
    s.value = NAN


cdef inline void bar_indicators_init(BarIndicators* b, Py_ssize_t fast, Py_ssize_t slow,
                                     Py_ssize_t rsi, Py_ssize_t atr,
                                     Py_ssize_t slope) noexcept nogil:
    ema_init(&b.ema_fast, fast)
    ema_init(&b.ema_slow, slow)
    rsi_init(&b.rsi, rsi)
    atr_init(&b.atr, atr)
    slope_init(&b.slope, slope)


# ---------------------------------------------------------------- update

cdef inline double ema_update(EmaState* s, double x) noexcept nogil:
    if x != x:
        return s.value
    s.count += 1
    if s.count < s.period:
        s.seed_sum += x
    elif s.count == s.period:
        s.seed_sum += x
        s.value = s.seed_sum / s.period
    else:
        # x * k does not depend on the previous value, so the loop-carried chain is
        # one multiply and one add (agrees with TA-Lib to ~1e-15 relative).
        s.value = x * s.k + s.value * s.k1
    return s.value


cdef inline double _rsi_value(double gain, double loss) noexcept nogil:
    cdef double total = gain + loss
    if -0.00000000000001 < total < 0.00000000000001:
        return 0.0
    return 100.0 * (gain / total)


cdef inline double rsi_update(RsiState* s, double x) noexcept nogil:
    cdef double diff, up, down
    if x != x:
        return s.value
    if s.prev != s.prev:
        s.prev = x
        return s.value
    diff = x - s.prev
    s.prev = x
    s.count += 1
    if s.count <= s.period:
        if diff < 0:
            s.avg_loss -= diff
        else:
            s.avg_gain += diff
        if s.count == s.period:
            s.avg_loss /= s.period
            s.avg_gain /= s.period
            s.value = _rsi_value(s.avg_gain, s.avg_loss)
        return s.value
    # Wilder: avg = (avg * (n - 1) + x) / n, as multiplies off the critical path and
    # without a branch on the sign (it is a coin flip on real prices)
    up = diff if diff > 0.0 else 0.0
    down = -diff if diff < 0.0 else 0.0
    s.avg_gain = s.avg_gain * s.keep + up * s.inv
    s.avg_loss = s.avg_loss * s.keep + down * s.inv
    s.value = _rsi_value(s.avg_gain, s.avg_loss)
    return s.value


cdef inline double true_range(double high, double low, double prev_close) noexcept nogil:
    # written as selects so the compiler emits maxsd, not branches
    cdef double greatest = high - low
    cdef double v = fabs(prev_close - high)
    greatest = v if v > greatest else greatest
    v = fabs(prev_close - low)
    return v if v > greatest else greatest


cdef inline double atr_update(AtrState* s, double high, double low, double close) noexcept nogil:
    cdef double tr, probe = high + low + close
    if probe != probe:             # one test for a NaN in any of the three
        return s.value
    if s.prev_close != s.prev_close:
        s.prev_close = close
        return s.value
    tr = true_range(high, low, s.prev_close)
    s.prev_close = close
    s.count += 1
    if s.count <= s.period:
        s.tr_sum += tr
        if s.count == s.period:
            s.value = s.tr_sum / s.period
        return s.value
    s.value = s.value * s.keep + tr * s.inv
    return s.value


cdef inline double vwap_update(VwapState* s, double price, double volume) noexcept nogil:
    # Zero volume carries no weight; negative volume is not a trade.
    if price != price or volume != volume or volume <= 0.0:
        return s.value
    s.pv += price * volume
    s.vol += volume
    s.value = s.pv / s.vol
    return s.value


cdef inline void slope_push(SlopeState* s, double x) noexcept nogil:
    """Add a value to the window without evaluating the slope (O(1))."""
    if x != x:
        return
    s.ring[s.head] = x
    s.head += 1
    if s.head == s.period:
        s.head = 0
    s.count += 1


cdef inline double slope_value(const SlopeState* s) noexcept nogil:
    """The slope over the current window; NaN until it is full.  O(n)."""
    cdef Py_ssize_t n = s.period, i, j
    cdef double sx, sxx, sy = 0.0, sxy = 0.0, y
    if s.count < n:
        return NAN
    # Recomputed over the window (n <= SLOPE_MAX) rather than kept as running
    # sums, so the value never drifts however long the series is.
    j = s.head
    for i in range(n):
        y = s.ring[j]
        sy += y
        sxy += i * y
        j += 1
        if j == n:
            j = 0
    sx = n * (n - 1) * 0.5
    sxx = n * (n - 1) * (2.0 * n - 1) / 6.0
    return (n * sxy - sx * sy) / (n * sxx - sx * sx)


cdef inline double slope_update(SlopeState* s, double x) noexcept nogil:
    if x == x:
        slope_push(s, x)
        s.value = slope_value(s)
    return s.value


cdef inline void bar_indicators_update(BarIndicators* b, double high, double low,
                                       double close) noexcept nogil:
    ema_update(&b.ema_fast, close)
    ema_update(&b.ema_slow, close)
    rsi_update(&b.rsi, close)
    atr_update(&b.atr, high, low, close)
    # the slope is evaluated when read (slope_value), not on every candle
    slope_push(&b.slope, close)


# ---------------------------------------------------------------- Python classes

cdef class EMA:
    cdef EmaState state                  # the running EMA
    cpdef double update(self, double value)

cdef class RSI:
    cdef RsiState state                  # the running RSI
    cpdef double update(self, double value)

cdef class ATR:
    cdef AtrState state                  # the running ATR
    cpdef double update(self, double high, double low, double close)

cdef class VWAP:
    cdef VwapState state                 # sums since the session start
    cpdef double update(self, double price, double volume)

cdef class Slope:
    cdef SlopeState state                # window of the last n values
    cpdef double update(self, double value)

cdef class Bundle:
    cdef BarIndicators ind               # EMA fast/slow, RSI, ATR, slope on closes
    cdef VwapState vwap                  # session VWAP on typical price
    cpdef void update(self, double high, double low, double close, double volume)
