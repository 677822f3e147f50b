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

from libc.math cimport INFINITY, NAN, fabs, sqrt

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


# ================================================================ declared indicators
#
# TA-Lib parity indicators (SMA, WMA, STDDEV, BBANDS, MACD, STOCH, ADX/DI, OBV)
# and two that TA-Lib lacks (SUPERTREND, DONCHIAN).  Each keeps the operation
# order of the TA-Lib C code (running sums subtracted in the same order), so
# the outputs agree to the last few bits, not just to a tolerance.  Windowed
# indicators keep their window in a ring of doubles owned by the holder (a
# class instance's buffer, or the candle bank's per-symbol block): the struct
# stores the pointer, ``*_ring_len(params)`` says how many doubles it needs.
#
# Warm-up (TA-Lib lookback): SMA/WMA/STDDEV/BBANDS/DONCHIAN n-1 inputs,
# MACD slow+signal-2, STOCH fastk+slowk+slowd-3, ADX 2n-1, PLUS_DI/MINUS_DI n,
# OBV 0, SUPERTREND n (its ATR's).

cdef struct SmaState:
    Py_ssize_t period
    Py_ssize_t count      # inputs seen
    Py_ssize_t head       # ring slot of the next input
    double total          # sum of the last n-1 inputs between updates (TA-Lib's periodTotal)
    double value          # NaN until warm
    double* ring          # [period]


cdef struct WmaState:
    Py_ssize_t period
    Py_ssize_t count
    Py_ssize_t head
    Py_ssize_t reseed_in  # updates until the sums are rebuilt from the window
    double divider        # n (n + 1) / 2
    double sub            # plain sum of the window
    double wsum           # weighted sum
    double trailing       # the value leaving the window next
    double value
    double* ring          # [period]


cdef struct VarState:     # TA-Lib's cancellation-free rolling variance (var.c)
    Py_ssize_t period
    Py_ssize_t count
    Py_ssize_t head
    Py_ssize_t reseed_in  # updates until the periodic re-anchoring
    double inv            # 1 / n
    double shift          # deviations are measured from this anchor
    double t1             # sum(x - shift) over the last n-1 inputs
    double t2             # sum((x - shift)^2)
    double value          # population variance, NaN until warm
    double* ring          # [period]


cdef struct StddevState:
    VarState var
    double nbdev
    double value


cdef struct BbandsState:
    VarState var
    double ma_total       # SMA running sum (TA-Lib's maTotal)
    double up             # nbdevup
    double dn             # nbdevdn
    double upper
    double middle
    double lower


cdef struct MacdState:
    Py_ssize_t fast
    Py_ssize_t slow
    Py_ssize_t signal
    Py_ssize_t count      # inputs seen
    Py_ssize_t sig_count  # MACD values fed to the signal EMA
    double kf, ks, kg     # 2 / (n + 1) of fast, slow, signal
    double fast_sum       # seed of the fast EMA: the last ``fast`` of the first ``slow`` inputs
    double slow_sum
    double sig_sum
    double fast_ema, slow_ema, sig_ema
    double macd, signal_value, hist    # NaN until warm


cdef struct Extremes:     # rolling highest high / lowest low over n bars (van Herk/Gil-Werman)
    Py_ssize_t period
    Py_ssize_t count      # bars seen
    Py_ssize_t pos        # position in the current block of n bars
    double hpre           # highest / lowest of the current block so far
    double lpre
    double highest
    double lowest
    double* hb            # [n] the current block's highs
    double* hs            # [n + 1] suffix maxima of the previous block (hs[n] = -inf)
    double* lb            # [n]
    double* ls            # [n + 1]


cdef struct StochState:
    Extremes ext
    SmaState k            # slow %K: SMA of fast %K
    SmaState d            # slow %D: SMA of slow %K
    double slowk
    double slowd


cdef struct AdxState:
    Py_ssize_t period
    int only              # 0: ADX and both DIs; 1: +DI only; 2: -DI only (PLUS_DI/MINUS_DI)
    Py_ssize_t count      # bars seen
    double prev_high, prev_low, prev_close
    double plus_dm, minus_dm, tr     # Wilder sums
    double sum_dx
    double inv            # 1 / n
    double plus_di, minus_di, adx    # NaN until warm


cdef struct ObvState:
    Py_ssize_t count
    double prev
    double value


cdef struct SupertrendState:
    AtrState atr
    double mult
    double prev_close     # NaN before the first bar
    double upper          # final bands
    double lower
    double value
    double direction      # +1 up (price above the line), -1 down; NaN until warm


cdef struct DonchianState:
    Extremes ext
    double upper, middle, lower


# ---------------------------------------------------------------- helpers

cdef inline bint _is_zero(double v) noexcept nogil:
    # TA-Lib 0.6+ TA_IS_ZERO
    return -0.00000000000001 < v < 0.00000000000001


cdef inline void _sma_core_init(SmaState* s, Py_ssize_t period, double* ring) noexcept nogil:
    s.period = period
    s.count = 0
    s.head = 0
    s.total = 0.0
    s.value = NAN
    s.ring = ring


cdef inline double _ring_push(SmaState* s, double x) noexcept nogil:
    """Store x; return the oldest value of the window that x completes."""
    s.ring[s.head] = x
    s.head += 1
    if s.head == s.period:
        s.head = 0
    return s.ring[s.head]


cdef inline void extremes_init(Extremes* e, Py_ssize_t period, double* ring) noexcept nogil:
    """``ring`` holds 4 * period + 2 doubles."""
    cdef Py_ssize_t j
    e.period = period
    e.count = 0
    e.pos = 0
    e.hpre = -INFINITY
    e.lpre = INFINITY
    e.highest = NAN
    e.lowest = NAN
    e.hb = ring
    e.hs = ring + period
    e.lb = ring + 2 * period + 1
    e.ls = ring + 3 * period + 1
    for j in range(period + 1):
        e.hs[j] = -INFINITY
        e.ls[j] = INFINITY


cdef inline void extremes_push(Extremes* e, double high, double low) noexcept nogil:
    """Add a bar.  The window of the last n bars is the tail of the previous block of
    n plus the head of the current one, so its extreme is max(suffix max of the
    previous block, prefix max of this one): O(1) per bar without branches, and one
    backward pass per n bars.  Exactly TA-Lib MAX / MIN's values."""
    cdef Py_ssize_t n = e.period, p = e.pos, j
    cdef double v, w
    e.hb[p] = high
    e.lb[p] = low
    if p == 0:
        e.hpre = high
        e.lpre = low
    else:
        e.hpre = high if high > e.hpre else e.hpre
        e.lpre = low if low < e.lpre else e.lpre
    v = e.hs[p + 1]
    e.highest = v if v > e.hpre else e.hpre
    v = e.ls[p + 1]
    e.lowest = v if v < e.lpre else e.lpre
    e.count += 1
    p += 1
    if p == n:                          # block complete: its suffix extremes for the next n bars
        v = -INFINITY
        w = INFINITY
        for j in range(n - 1, -1, -1):
            v = e.hb[j] if e.hb[j] > v else v
            w = e.lb[j] if e.lb[j] < w else w
            e.hs[j] = v
            e.ls[j] = w
        p = 0
    e.pos = p


# ---------------------------------------------------------------- init

cdef inline void sma_init(SmaState* s, Py_ssize_t period, double* ring) noexcept nogil:
    _sma_core_init(s, period, ring)


cdef inline void wma_init(WmaState* s, Py_ssize_t period, double* ring) noexcept nogil:
    s.period = period
    s.count = 0
    s.head = 0
    s.reseed_in = 8 * period
    s.divider = <double> period * (period + 1) / 2.0
    s.sub = 0.0
    s.wsum = 0.0
    s.trailing = 0.0
    s.value = NAN
    s.ring = ring


cdef inline void var_init(VarState* s, Py_ssize_t period, double* ring) noexcept nogil:
    s.period = period
    s.count = 0
    s.head = 0
    s.reseed_in = 32 * period
    s.inv = 1.0 / period
    s.shift = 0.0
    s.t1 = 0.0
    s.t2 = 0.0
    s.value = NAN
    s.ring = ring


cdef inline void stddev_init(StddevState* s, Py_ssize_t period, double nbdev,
                             double* ring) noexcept nogil:
    var_init(&s.var, period, ring)
    s.nbdev = nbdev
    s.value = NAN


cdef inline void bbands_init(BbandsState* s, Py_ssize_t period, double up, double dn,
                             double* ring) noexcept nogil:
    var_init(&s.var, period, ring)
    s.ma_total = 0.0
    s.up = up
    s.dn = dn
    s.upper = NAN
    s.middle = NAN
    s.lower = NAN


cdef inline void macd_init(MacdState* s, Py_ssize_t fast, Py_ssize_t slow,
                           Py_ssize_t signal) noexcept nogil:
    s.fast = fast
    s.slow = slow
    s.signal = signal
    s.count = 0
    s.sig_count = 0
    s.kf = 2.0 / (fast + 1.0)
    s.ks = 2.0 / (slow + 1.0)
    s.kg = 2.0 / (signal + 1.0)
    s.fast_sum = 0.0
    s.slow_sum = 0.0
    s.sig_sum = 0.0
    s.fast_ema = NAN
    s.slow_ema = NAN
    s.sig_ema = NAN
    s.macd = NAN
    s.signal_value = NAN
    s.hist = NAN


cdef inline void stoch_init(StochState* s, Py_ssize_t fastk, Py_ssize_t slowk,
                            Py_ssize_t slowd, double* ring) noexcept nogil:
    extremes_init(&s.ext, fastk, ring)
    _sma_core_init(&s.k, slowk, ring + 4 * fastk + 2)
    _sma_core_init(&s.d, slowd, ring + 4 * fastk + 2 + slowk)
    s.slowk = NAN
    s.slowd = NAN


cdef inline void adx_init(AdxState* s, Py_ssize_t period, int only=0) noexcept nogil:
    s.period = period
    s.only = only
    s.count = 0
    s.prev_high = NAN
    s.prev_low = NAN
    s.prev_close = NAN
    s.plus_dm = 0.0
    s.minus_dm = 0.0
    s.tr = 0.0
    s.sum_dx = 0.0
    s.inv = 1.0 / period
    s.plus_di = NAN
    s.minus_di = NAN
    s.adx = NAN


cdef inline void obv_init(ObvState* s) noexcept nogil:
    s.count = 0
    s.prev = NAN
    s.value = NAN


cdef inline void supertrend_init(SupertrendState* s, Py_ssize_t period, double mult) noexcept nogil:
    atr_init(&s.atr, period)
    s.mult = mult
    s.prev_close = NAN
    s.upper = NAN
    s.lower = NAN
    s.value = NAN
    s.direction = NAN


cdef inline void donchian_init(DonchianState* s, Py_ssize_t period, double* ring) noexcept nogil:
    extremes_init(&s.ext, period, ring)
    s.upper = NAN
    s.middle = NAN
    s.lower = NAN


# ---------------------------------------------------------------- update

cdef inline double sma_update(SmaState* s, double x) noexcept nogil:
    cdef double total
    if x != x:
        return s.value
    s.count += 1
    if s.count < s.period:
        s.total += x
        _ring_push(s, x)
        return s.value
    # TA-Lib INT_SMA: add, take the mean, then drop the value leaving the window
    s.total += x
    total = s.total
    s.total -= _ring_push(s, x)
    s.value = total / s.period
    return s.value


cdef inline void _wma_rebuild(WmaState* s) noexcept nogil:
    cdef Py_ssize_t i, j = s.head, n = s.period
    cdef double sub = 0.0, wsum = 0.0, x
    for i in range(n):              # oldest first, weights 1..n
        x = s.ring[j]
        sub += x
        wsum += x * (i + 1)
        j += 1
        if j == n:
            j = 0
    s.sub = sub
    s.wsum = wsum


cdef inline double wma_update(WmaState* s, double x) noexcept nogil:
    if x != x:
        return s.value
    s.count += 1
    s.ring[s.head] = x
    s.head += 1
    if s.head == s.period:
        s.head = 0
    if s.count < s.period:
        s.sub += x
        s.wsum += x * s.count
        return s.value
    # TA-Lib WMA: the weighted sum gains n * x and loses the plain sum of the window;
    # every 8n updates both sums are rebuilt from the window (TA-Lib #255)
    s.sub += x
    s.sub -= s.trailing
    s.wsum += x * s.period
    s.reseed_in -= 1
    if s.reseed_in <= 0:
        s.reseed_in = 8 * s.period
        _wma_rebuild(s)
    s.trailing = s.ring[s.head]
    s.value = s.wsum / s.divider
    s.wsum -= s.sub
    return s.value


cdef inline double var_update(VarState* s, double x) noexcept nogil:
    """TA-Lib VAR (0.7+): population variance of the last n values from sums of
    deviations against a shift anchored at the first input, re-anchored on the
    window mean (a fresh two-pass) when the subtraction would lose digits, when
    a large value leaves the window, and at least every 32n updates."""
    cdef double d, d2, m1, var, old, tot
    cdef Py_ssize_t i, j, n = s.period
    if x != x:
        return s.value
    s.count += 1
    if s.count == 1:
        s.shift = x
    s.ring[s.head] = x
    s.head += 1
    if s.head == n:
        s.head = 0
    d = x - s.shift
    s.t1 += d
    s.t2 += d * d
    if s.count < n:
        return s.value
    m1 = s.t1 * s.inv
    var = s.t2 * s.inv - m1 * m1
    old = s.ring[s.head]            # oldest value of the window x completes
    d = old - s.shift
    s.t1 -= d
    d2 = d * d
    s.t2 -= d2
    s.reseed_in -= 1
    if var < 0.000001 * (s.t2 * s.inv) or d2 > 1000000.0 * s.t2 or s.reseed_in <= 0:
        s.reseed_in = 32 * n
        tot = 0.0
        j = s.head
        for i in range(n):
            tot += s.ring[j]
            j += 1
            if j == n:
                j = 0
        s.shift = tot * s.inv
        s.t1 = 0.0
        s.t2 = 0.0
        for i in range(n):
            d = s.ring[j] - s.shift
            s.t1 += d
            s.t2 += d * d
            j += 1
            if j == n:
                j = 0
        m1 = s.t1 * s.inv
        var = s.t2 * s.inv - m1 * m1
        if var < 0.000000000001 * (s.t2 * s.inv):
            var = 0.0
        d = old - s.shift
        s.t1 -= d
        s.t2 -= d * d
    s.value = var
    return var


cdef inline double stddev_update(StddevState* s, double x) noexcept nogil:
    cdef double var
    if x != x:
        return s.value
    var = var_update(&s.var, x)
    if var == var:
        s.value = (sqrt(var) if var != 0.0 else 0.0) * s.nbdev
    return s.value


cdef inline double bbands_update(BbandsState* s, double x) noexcept nogil:
    """TA-Lib BBANDS, SMA path: middle = SMA (its own running sum), deviation =
    sqrt of the VAR kernel's variance; bands = middle +- deviation * nbdev."""
    cdef double var, sd, mid
    if x != x:
        return s.middle
    s.ma_total += x
    var = var_update(&s.var, x)
    if var != var:
        return s.middle
    mid = s.ma_total / s.var.period
    s.ma_total -= s.var.ring[s.var.head]
    sd = sqrt(var) if var != 0.0 else 0.0
    s.middle = mid
    s.upper = mid + sd * s.up
    s.lower = mid - sd * s.dn
    return s.middle


cdef inline double macd_update(MacdState* s, double x) noexcept nogil:
    """TA-Lib MACD: the slow EMA is seeded by the mean of the first ``slow``
    inputs and the fast EMA, at the same input, by the mean of the last ``fast``
    of them; the signal EMA is seeded by the mean of the first ``signal`` MACD
    values.  EMA steps as ``x * k + prev * (1 - k)`` like ``ema_update``: the
    loop-carried chain is one multiply and one add (TA-Lib's ((x - prev) * k) + prev
    is three); agrees with TA-Lib to ~1e-15 of the price."""
    cdef double m
    if x != x:
        return s.macd
    s.count += 1
    if s.sig_count >= s.signal:         # warm: the common path, one predictable branch
        s.slow_ema = x * s.ks + s.slow_ema * (1.0 - s.ks)
        s.fast_ema = x * s.kf + s.fast_ema * (1.0 - s.kf)
        m = s.fast_ema - s.slow_ema
        s.sig_ema = m * s.kg + s.sig_ema * (1.0 - s.kg)
        s.macd = m
        s.signal_value = s.sig_ema
        s.hist = m - s.sig_ema
        return m
    if s.count <= s.slow:
        s.slow_sum += x
        if s.count > s.slow - s.fast:
            s.fast_sum += x
        if s.count < s.slow:
            return s.macd
        s.slow_ema = s.slow_sum / s.slow
        s.fast_ema = s.fast_sum / s.fast
    else:
        s.slow_ema = x * s.ks + s.slow_ema * (1.0 - s.ks)
        s.fast_ema = x * s.kf + s.fast_ema * (1.0 - s.kf)
    m = s.fast_ema - s.slow_ema
    s.sig_count += 1
    if s.sig_count < s.signal:
        s.sig_sum += m
        return s.macd
    if s.sig_count == s.signal:
        s.sig_sum += m
        s.sig_ema = s.sig_sum / s.signal
    else:
        s.sig_ema = m * s.kg + s.sig_ema * (1.0 - s.kg)
    s.macd = m
    s.signal_value = s.sig_ema
    s.hist = m - s.sig_ema
    return s.macd


cdef inline double stoch_update(StochState* s, double high, double low,
                                double close) noexcept nogil:
    """TA-Lib STOCH with SMA smoothing: fast %K = (close - lowest) / ((highest -
    lowest) / 100), 0 when the range is 0; slow %K = SMA(fast %K, slowk);
    slow %D = SMA(slow %K, slowd)."""
    cdef double diff, fastk, sk
    cdef double probe = high + low + close
    if probe != probe:
        return s.slowk
    extremes_push(&s.ext, high, low)
    if s.ext.count < s.ext.period:
        return s.slowk
    diff = s.ext.highest - s.ext.lowest
    # TA_IS_ZERO_SCALED: a range within 1e-14 of the extremes' size is flat
    if fabs(diff) <= 0.00000000000001 * (fabs(s.ext.highest) + fabs(s.ext.lowest)):
        fastk = 0.0
    else:
        fastk = (close - s.ext.lowest) / (diff / 100.0)
    sk = sma_update(&s.k, fastk)
    if sk != sk:
        return s.slowk
    s.slowd = sma_update(&s.d, sk)
    if s.slowd == s.slowd:
        s.slowk = sk
    return s.slowk


cdef inline double adx_update(AdxState* s, double high, double low, double close) noexcept nogil:
    """TA-Lib ADX / PLUS_DI / MINUS_DI in one pass (Wilder sums of +DM, -DM, TR).

    DI: from bar n (0 when the TR sum is exactly zero).  ADX: at bar 2n-1 the mean of the
    first n DX values, then Wilder-smoothed; a bar with a zero TR or DI sum
    leaves it unchanged (TA-Lib)."""
    cdef double diff_p, diff_m, tr, pdi, mdi, tot, up, down
    cdef double probe = high + low + close
    cdef Py_ssize_t n = s.period
    if probe != probe:
        return s.adx
    s.count += 1
    if s.count == 1:
        s.prev_high = high
        s.prev_low = low
        s.prev_close = close
        return s.adx
    diff_p = high - s.prev_high
    diff_m = s.prev_low - low
    s.prev_high = high
    s.prev_low = low
    tr = true_range(high, low, s.prev_close)
    s.prev_close = close
    if s.count <= n:                    # bars 1 .. n-1: plain sums
        if diff_m > 0 and diff_p < diff_m:
            s.minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            s.plus_dm += diff_p
        s.tr += tr
        return s.adx
    # Wilder steps as TA-Lib 0.8 writes them (#411): x - x * (1/n), no divide, and the
    # one-bar DMs as selects (which of +DM / -DM wins is a coin flip; adding 0.0 is exact)
    s.tr = s.tr - (s.tr * s.inv) + tr
    if s.only != 2:
        up = diff_p if diff_p > diff_m else 0.0
        up = up if up > 0.0 else 0.0
        s.plus_dm = (s.plus_dm - s.plus_dm * s.inv) + up
    if s.only != 1:
        down = diff_m if diff_m > diff_p else 0.0
        down = down if down > 0.0 else 0.0
        s.minus_dm = (s.minus_dm - s.minus_dm * s.inv) + down
    if not s.tr > 0.0:                  # a sum of ranges: exactly 0 only when flat (TA-Lib #253)
        s.plus_di = 0.0
        s.minus_di = 0.0
        if s.count == 2 * n:
            s.adx = s.sum_dx / n
        return s.adx
    if s.only == 1:                     # PLUS_DI / MINUS_DI skip the rest
        s.plus_di = 100.0 * (s.plus_dm / s.tr)
        return s.adx
    if s.only == 2:
        s.minus_di = 100.0 * (s.minus_dm / s.tr)
        return s.adx
    mdi = 100.0 * (s.minus_dm / s.tr)
    pdi = 100.0 * (s.plus_dm / s.tr)
    s.plus_di = pdi
    s.minus_di = mdi
    tot = mdi + pdi
    if s.count <= 2 * n:                # bars n .. 2n-1: sum the DX values
        if not _is_zero(tot):
            s.sum_dx += 100.0 * (fabs(mdi - pdi) / tot)
        if s.count == 2 * n:
            s.adx = s.sum_dx / n
        return s.adx
    if not _is_zero(tot):
        s.adx = ((s.adx * (n - 1)) + 100.0 * (fabs(mdi - pdi) / tot)) / n
    return s.adx


cdef inline double obv_update(ObvState* s, double close, double volume) noexcept nogil:
    """TA-Lib OBV: starts at the first bar's volume; + volume on an up close,
    - volume on a down close, unchanged on an equal one."""
    if close != close or volume != volume:
        return s.value
    s.count += 1
    if s.count == 1:
        s.value = volume
    else:
        # branchless (the sign is a coin flip): + volume * (+1 | 0 | -1), exact
        s.value += volume * (<double> (close > s.prev) - <double> (close < s.prev))
    s.prev = close
    return s.value


cdef inline double supertrend_update(SupertrendState* s, double high, double low,
                                     double close) noexcept nogil:
    """SuperTrend on TA-Lib's ATR(n): bands hl2 +- mult * ATR that only tighten
    while price stays inside them; the line is the lower band in an up trend
    (+1) and the upper band in a down trend (-1).  The first value (at the
    first ATR) is the upper band, direction -1 (TradingView's convention)."""
    cdef double atr, mid, up, dn, prev_close
    cdef double probe = high + low + close
    if probe != probe:
        return s.value
    atr = atr_update(&s.atr, high, low, close)
    prev_close = s.prev_close
    s.prev_close = close
    if atr != atr:
        return s.value
    mid = (high + low) / 2.0
    up = mid + s.mult * atr
    dn = mid - s.mult * atr
    if s.direction != s.direction:
        s.upper = up
        s.lower = dn
        s.direction = -1.0
    else:
        # a band only tightens (min / max: no branch, which way is a coin flip) unless
        # the previous close broke through it (rare, and runs of it predict well)
        if not prev_close > s.upper:
            up = up if up < s.upper else s.upper
        if not prev_close < s.lower:
            dn = dn if dn > s.lower else s.lower
        s.upper = up
        s.lower = dn
        if s.direction < 0:
            s.direction = 1.0 if close > up else -1.0
        else:
            s.direction = -1.0 if close < dn else 1.0
    s.value = s.lower if s.direction > 0 else s.upper
    return s.value


cdef inline double donchian_update(DonchianState* s, double high, double low) noexcept nogil:
    """Highest high and lowest low of the last n bars; middle = their mean."""
    if high != high or low != low:
        return s.middle
    extremes_push(&s.ext, high, low)
    if s.ext.count >= s.ext.period:
        s.upper = s.ext.highest
        s.lower = s.ext.lowest
        s.middle = (s.upper + s.lower) / 2.0
    return s.middle


# ---------------------------------------------------------------- dispatch
#
# The candle bank holds declared indicators as (kind, parameters, state bytes);
# these three functions are the only place that maps a kind to its kernel.
# A state's ring (if any) sits right after its struct in the same block.

cdef enum:
    K_EMA = 1
    K_RSI = 2
    K_ATR = 3
    K_SLOPE = 4
    K_SMA = 5
    K_WMA = 6
    K_STDDEV = 7
    K_BBANDS = 8
    K_MACD = 9
    K_STOCH = 10
    K_ADX = 11
    K_PLUS_DI = 12
    K_MINUS_DI = 13
    K_OBV = 14
    K_SUPERTREND = 15
    K_DONCHIAN = 16
    K_LAST = 16
    MAX_OUTPUTS = 3       # most outputs of one indicator
    MAX_PARAMS = 3


cdef inline Py_ssize_t _round8(Py_ssize_t n) noexcept nogil:
    return (n + 7) & ~(<Py_ssize_t> 7)


cdef inline Py_ssize_t any_state_bytes(int kind, const double* p) noexcept nogil:
    """Bytes of state (struct + ring) for one indicator; 0 for an unknown kind."""
    cdef Py_ssize_t n = <Py_ssize_t> p[0]
    if kind == K_EMA:
        return _round8(sizeof(EmaState))
    if kind == K_RSI:
        return _round8(sizeof(RsiState))
    if kind == K_ATR:
        return _round8(sizeof(AtrState))
    if kind == K_SLOPE:
        return _round8(sizeof(SlopeState))
    if kind == K_SMA:
        return _round8(sizeof(SmaState)) + n * 8
    if kind == K_WMA:
        return _round8(sizeof(WmaState)) + n * 8
    if kind == K_STDDEV:
        return _round8(sizeof(StddevState)) + n * 8
    if kind == K_BBANDS:
        return _round8(sizeof(BbandsState)) + n * 8
    if kind == K_MACD:
        return _round8(sizeof(MacdState))
    if kind == K_STOCH:
        return _round8(sizeof(StochState)) + (4 * n + 2 + <Py_ssize_t> p[1] + <Py_ssize_t> p[2]) * 8
    if kind == K_ADX or kind == K_PLUS_DI or kind == K_MINUS_DI:
        return _round8(sizeof(AdxState))
    if kind == K_OBV:
        return _round8(sizeof(ObvState))
    if kind == K_SUPERTREND:
        return _round8(sizeof(SupertrendState))
    if kind == K_DONCHIAN:
        return _round8(sizeof(DonchianState)) + (4 * n + 2) * 8
    return 0


cdef inline int any_n_outputs(int kind) noexcept nogil:
    """How many values ``any_update`` writes for a kind (0: unknown kind)."""
    if kind == K_BBANDS or kind == K_MACD or kind == K_DONCHIAN:
        return 3
    if kind == K_STOCH or kind == K_SUPERTREND:
        return 2
    return 1 if 1 <= kind <= K_LAST else 0


cdef inline void any_init(int kind, char* st, const double* p) noexcept nogil:
    cdef Py_ssize_t n = <Py_ssize_t> p[0]
    if kind == K_EMA:
        ema_init(<EmaState*> st, n)
    elif kind == K_RSI:
        rsi_init(<RsiState*> st, n)
    elif kind == K_ATR:
        atr_init(<AtrState*> st, n)
    elif kind == K_SLOPE:
        slope_init(<SlopeState*> st, n)
    elif kind == K_SMA:
        sma_init(<SmaState*> st, n, <double*> (st + _round8(sizeof(SmaState))))
    elif kind == K_WMA:
        wma_init(<WmaState*> st, n, <double*> (st + _round8(sizeof(WmaState))))
    elif kind == K_STDDEV:
        stddev_init(<StddevState*> st, n, p[1], <double*> (st + _round8(sizeof(StddevState))))
    elif kind == K_BBANDS:
        bbands_init(<BbandsState*> st, n, p[1], p[2],
                    <double*> (st + _round8(sizeof(BbandsState))))
    elif kind == K_MACD:
        macd_init(<MacdState*> st, n, <Py_ssize_t> p[1], <Py_ssize_t> p[2])
    elif kind == K_STOCH:
        stoch_init(<StochState*> st, n, <Py_ssize_t> p[1], <Py_ssize_t> p[2],
                   <double*> (st + _round8(sizeof(StochState))))
    elif kind == K_ADX or kind == K_PLUS_DI or kind == K_MINUS_DI:
        adx_init(<AdxState*> st, n, 0 if kind == K_ADX else (1 if kind == K_PLUS_DI else 2))
    elif kind == K_OBV:
        obv_init(<ObvState*> st)
    elif kind == K_SUPERTREND:
        supertrend_init(<SupertrendState*> st, n, p[1])
    elif kind == K_DONCHIAN:
        donchian_init(<DonchianState*> st, n, <double*> (st + _round8(sizeof(DonchianState))))


cdef inline void any_update(int kind, char* st, double high, double low, double close,
                            double volume, double* out) noexcept nogil:
    """Feed one closed candle; write the indicator's outputs to ``out``."""
    cdef BbandsState* bb
    cdef MacdState* mc
    cdef StochState* so
    cdef AdxState* ax
    cdef SupertrendState* su
    cdef DonchianState* dc
    if kind == K_EMA:
        out[0] = ema_update(<EmaState*> st, close)
    elif kind == K_RSI:
        out[0] = rsi_update(<RsiState*> st, close)
    elif kind == K_ATR:
        out[0] = atr_update(<AtrState*> st, high, low, close)
    elif kind == K_SLOPE:
        out[0] = slope_update(<SlopeState*> st, close)
    elif kind == K_SMA:
        out[0] = sma_update(<SmaState*> st, close)
    elif kind == K_WMA:
        out[0] = wma_update(<WmaState*> st, close)
    elif kind == K_STDDEV:
        out[0] = stddev_update(<StddevState*> st, close)
    elif kind == K_BBANDS:
        bb = <BbandsState*> st
        bbands_update(bb, close)
        out[0] = bb.upper
        out[1] = bb.middle
        out[2] = bb.lower
    elif kind == K_MACD:
        mc = <MacdState*> st
        macd_update(mc, close)
        out[0] = mc.macd
        out[1] = mc.signal_value
        out[2] = mc.hist
    elif kind == K_STOCH:
        so = <StochState*> st
        stoch_update(so, high, low, close)
        out[0] = so.slowk
        out[1] = so.slowd
    elif kind == K_ADX or kind == K_PLUS_DI or kind == K_MINUS_DI:
        ax = <AdxState*> st
        adx_update(ax, high, low, close)
        out[0] = ax.adx if kind == K_ADX else (ax.plus_di if kind == K_PLUS_DI else ax.minus_di)
    elif kind == K_OBV:
        out[0] = obv_update(<ObvState*> st, close, volume)
    elif kind == K_SUPERTREND:
        su = <SupertrendState*> st
        supertrend_update(su, high, low, close)
        out[0] = su.value
        out[1] = su.direction
    elif kind == K_DONCHIAN:
        dc = <DonchianState*> st
        donchian_update(dc, high, low)
        out[0] = dc.upper
        out[1] = dc.middle
        out[2] = dc.lower


cdef class SMA:
    cdef SmaState state
    cdef double* buf
    cpdef double update(self, double value)

cdef class WMA:
    cdef WmaState state
    cdef double* buf
    cpdef double update(self, double value)

cdef class STDDEV:
    cdef StddevState state
    cdef double* buf
    cpdef double update(self, double value)

cdef class BBANDS:
    cdef BbandsState state
    cdef double* buf
    cpdef tuple update(self, double value)

cdef class MACD:
    cdef MacdState state
    cpdef tuple update(self, double value)

cdef class STOCH:
    cdef StochState state
    cdef double* buf
    cpdef tuple update(self, double high, double low, double close)

cdef class ADX:
    cdef AdxState state
    cpdef double update(self, double high, double low, double close)

cdef class PLUS_DI:
    cdef AdxState state
    cpdef double update(self, double high, double low, double close)

cdef class MINUS_DI:
    cdef AdxState state
    cpdef double update(self, double high, double low, double close)

cdef class OBV:
    cdef ObvState state
    cpdef double update(self, double close, double volume)

cdef class SUPERTREND:
    cdef SupertrendState state
    cpdef tuple update(self, double high, double low, double close)

cdef class DONCHIAN:
    cdef DonchianState state
    cdef double* buf
    cpdef tuple update(self, double high, double low)
