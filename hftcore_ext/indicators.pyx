"""Incremental indicators for Python: EMA, RSI, ATR, VWAP, Slope and a Bundle.

Each class wraps one C struct from ``indicators.pxd``.  ``update(...)`` feeds
one value and returns the indicator (NaN until warmed up); ``batch(...)``
feeds a whole numpy array inside a ``nogil`` loop and returns the value after
each input.  Both call the same inline kernel, and ``batch`` continues from
(and leaves) the same state as ``update``, so the two can be mixed freely.
"""

import numpy as np
cimport numpy as cnp

cnp.import_array()


cdef inline Py_ssize_t _check_period(object period, Py_ssize_t lo, Py_ssize_t hi) except -1:
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)):
        raise ValueError(f"period must be an integer, got {period!r}")
    if not lo <= period <= hi:
        raise ValueError(f"period must be in [{lo}, {hi}], got {period}")
    return period


cdef class EMA:
    """Exponential moving average, TA-Lib definition (SMA-seeded)."""

    kind = K_EMA                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=20):
        ema_init(&self.state, _check_period(period, 1, 1_000_000))

    cpdef double update(self, double value):
        """Feed one value; return the EMA (NaN for the first ``period - 1`` values)."""
        return ema_update(&self.state, value)

    def batch(self, const double[:] values):
        """Feed an array; return the EMA after each value (float64 array)."""
        cdef Py_ssize_t i, n = values.shape[0]
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef EmaState st = self.state      # local: cannot alias the output
        with nogil:
            for i in range(n):
                o[i] = ema_update(&st, values[i])
        self.state = st
        return out

    def reset(self):
        ema_init(&self.state, self.state.period)

    @property
    def value(self):
        """Current EMA, NaN until warmed up."""
        return self.state.value

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        """Number of (non-NaN) inputs seen."""
        return self.state.count

    @property
    def initialized(self):
        return self.state.count >= self.state.period


cdef class RSI:
    """Relative strength index with Wilder smoothing, TA-Lib definition."""

    kind = K_RSI                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=14):
        rsi_init(&self.state, _check_period(period, 1, 1_000_000))

    cpdef double update(self, double value):
        """Feed one price; return RSI in [0, 100] (NaN until ``period + 1`` prices)."""
        return rsi_update(&self.state, value)

    def batch(self, const double[:] values):
        cdef Py_ssize_t i, n = values.shape[0]
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef RsiState st = self.state      # local: cannot alias the output
        with nogil:
            for i in range(n):
                o[i] = rsi_update(&st, values[i])
        self.state = st
        return out

    def reset(self):
        rsi_init(&self.state, self.state.period)

    @property
    def value(self):
        return self.state.value

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        """Number of price changes seen."""
        return self.state.count

    @property
    def initialized(self):
        return self.state.count >= self.state.period


cdef class ATR:
    """Average true range with Wilder smoothing, TA-Lib definition."""

    kind = K_ATR                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=14):
        atr_init(&self.state, _check_period(period, 1, 1_000_000))

    cpdef double update(self, double high, double low, double close):
        """Feed one bar; return ATR (NaN until ``period + 1`` bars)."""
        return atr_update(&self.state, high, low, close)

    def batch(self, const double[:] high, const double[:] low, const double[:] close):
        cdef Py_ssize_t i, n = close.shape[0]
        if high.shape[0] != n or low.shape[0] != n:
            raise ValueError("high, low and close must have the same length")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef AtrState st = self.state      # local: cannot alias the output
        with nogil:
            for i in range(n):
                o[i] = atr_update(&st, high[i], low[i], close[i])
        self.state = st
        return out

    def reset(self):
        atr_init(&self.state, self.state.period)

    @property
    def value(self):
        return self.state.value

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        """Number of true ranges seen."""
        return self.state.count

    @property
    def initialized(self):
        return self.state.count >= self.state.period


cdef class VWAP:
    """Volume-weighted average price since the last ``reset()`` (the session start)."""

    def __cinit__(self):
        vwap_init(&self.state)

    cpdef double update(self, double price, double volume):
        """Feed one trade (or a bar's typical price); zero/negative volume is ignored."""
        return vwap_update(&self.state, price, volume)

    def batch(self, const double[:] price, const double[:] volume):
        cdef Py_ssize_t i, n = price.shape[0]
        if volume.shape[0] != n:
            raise ValueError("price and volume must have the same length")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef VwapState st = self.state      # local: cannot alias the output
        with nogil:
            for i in range(n):
                o[i] = vwap_update(&st, price[i], volume[i])
        self.state = st
        return out

    def reset(self):
        """Start a new session."""
        vwap_init(&self.state)

    @property
    def value(self):
        return self.state.value

    @property
    def volume(self):
        """Volume accumulated this session."""
        return self.state.vol

    @property
    def initialized(self):
        return self.state.vol > 0.0


cdef class Slope:
    """Least-squares slope of the last ``period`` values (TA-Lib LINEARREG_SLOPE)."""

    kind = K_SLOPE                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=20):
        slope_init(&self.state, _check_period(period, 2, SLOPE_MAX))

    cpdef double update(self, double value):
        """Feed one value; return the slope in price units per input."""
        return slope_update(&self.state, value)

    def batch(self, const double[:] values):
        cdef Py_ssize_t i, n = values.shape[0]
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef SlopeState st = self.state      # local: cannot alias the output
        with nogil:
            for i in range(n):
                o[i] = slope_update(&st, values[i])
        self.state = st
        return out

    def reset(self):
        slope_init(&self.state, self.state.period)

    @property
    def value(self):
        return self.state.value

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        return self.state.count

    @property
    def initialized(self):
        return self.state.count >= self.state.period


cdef class Bundle:
    """The market-data bundle of one symbol/timeframe, updated by one call per bar.

    Holds EMA(fast), EMA(slow), RSI, ATR, Slope on closes and a session VWAP on
    the bar's typical price (high + low + close) / 3.
    """

    def __cinit__(self, fast=20, slow=50, rsi=14, atr=14, slope=20):
        bar_indicators_init(&self.ind, _check_period(fast, 1, 1_000_000),
                            _check_period(slow, 1, 1_000_000), _check_period(rsi, 1, 1_000_000),
                            _check_period(atr, 1, 1_000_000), _check_period(slope, 2, SLOPE_MAX))
        vwap_init(&self.vwap)

    cpdef void update(self, double high, double low, double close, double volume):
        """Feed one closed bar to all six indicators."""
        bar_indicators_update(&self.ind, high, low, close)
        vwap_update(&self.vwap, (high + low + close) / 3.0, volume)

    def batch(self, const double[:] high, const double[:] low, const double[:] close,
              const double[:] volume):
        """Feed arrays of bars; return a (n, 6) array of
        (ema_fast, ema_slow, rsi, atr, vwap, slope) after each bar."""
        cdef Py_ssize_t i, n = close.shape[0]
        if high.shape[0] != n or low.shape[0] != n or volume.shape[0] != n:
            raise ValueError("high, low, close and volume must have the same length")
        cdef cnp.ndarray[cnp.float64_t, ndim=2] out = np.empty((n, 6), dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef BarIndicators ind = self.ind   # locals: cannot alias the output
        cdef VwapState vw = self.vwap
        with nogil:
            for i in range(n):
                bar_indicators_update(&ind, high[i], low[i], close[i])
                vwap_update(&vw, (high[i] + low[i] + close[i]) / 3.0, volume[i])
                o[6 * i] = ind.ema_fast.value
                o[6 * i + 1] = ind.ema_slow.value
                o[6 * i + 2] = ind.rsi.value
                o[6 * i + 3] = ind.atr.value
                o[6 * i + 4] = vw.value
                o[6 * i + 5] = slope_value(&ind.slope)
        self.ind = ind
        self.vwap = vw
        return out

    def reset_session(self):
        """Start a new VWAP session; the other indicators carry over."""
        vwap_init(&self.vwap)

    @property
    def values(self):
        """(ema_fast, ema_slow, rsi, atr, vwap, slope); NaN where not warmed up."""
        return (self.ind.ema_fast.value, self.ind.ema_slow.value, self.ind.rsi.value,
                self.ind.atr.value, self.vwap.value, slope_value(&self.ind.slope))


# ================================================================ TA-Lib parity indicators
#
# Names, parameter order and input order as TA-Lib's (without its MA-type
# arguments: every moving average here is TA-Lib's default SMA).  Each class is
# one struct and one kernel from indicators.pxd; several outputs come back as a
# tuple in TA-Lib's order.

from cpython.mem cimport PyMem_Malloc, PyMem_Free
import math


cdef inline double _check_float(object v, str name, bint positive=False) except? -1.0:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {v!r}")
    if not math.isfinite(v) or (positive and not v > 0):
        raise ValueError(f"{name} must be a finite{' positive' if positive else ''} number, "
                         f"got {v!r}")
    return v


cdef inline double* _alloc(Py_ssize_t n) except NULL:
    cdef double* p = <double*> PyMem_Malloc(max(n, 1) * sizeof(double))
    if p == NULL:
        raise MemoryError()
    return p


cdef inline Py_ssize_t _same_len(tuple arrays, str names) except -1:
    cdef Py_ssize_t n = len(arrays[0])
    for a in arrays:
        if len(a) != n:
            raise ValueError(f"{names} must have the same length")
    return n


cdef class SMA:
    """Simple moving average of the last ``period`` values, TA-Lib SMA."""

    kind = K_SMA                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=30):
        cdef Py_ssize_t n = _check_period(period, 1, 1_000_000)
        self.buf = _alloc(n)
        sma_init(&self.state, n, self.buf)

    def __dealloc__(self):
        PyMem_Free(self.buf)

    cpdef double update(self, double value):
        """Feed one value; return the SMA (NaN for the first ``period - 1`` values)."""
        return sma_update(&self.state, value)

    def batch(self, const double[:] values):
        """Feed an array; return the SMA after each value (float64 array)."""
        cdef Py_ssize_t i, n = values.shape[0]
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef SmaState st = self.state
        with nogil:
            for i in range(n):
                o[i] = sma_update(&st, values[i])
        self.state = st
        return out

    def reset(self):
        sma_init(&self.state, self.state.period, self.buf)

    @property
    def value(self):
        return self.state.value

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        """Number of (non-NaN) inputs seen."""
        return self.state.count

    @property
    def initialized(self):
        return self.state.count >= self.state.period


cdef class WMA:
    """Linearly weighted moving average (weights 1..n, newest heaviest), TA-Lib WMA."""

    kind = K_WMA                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=30):
        cdef Py_ssize_t n = _check_period(period, 1, 1_000_000)
        self.buf = _alloc(n)
        wma_init(&self.state, n, self.buf)

    def __dealloc__(self):
        PyMem_Free(self.buf)

    cpdef double update(self, double value):
        """Feed one value; return the WMA (NaN for the first ``period - 1`` values)."""
        return wma_update(&self.state, value)

    def batch(self, const double[:] values):
        cdef Py_ssize_t i, n = values.shape[0]
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef WmaState st = self.state
        with nogil:
            for i in range(n):
                o[i] = wma_update(&st, values[i])
        self.state = st
        return out

    def reset(self):
        wma_init(&self.state, self.state.period, self.buf)

    @property
    def value(self):
        return self.state.value

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        return self.state.count

    @property
    def initialized(self):
        return self.state.count >= self.state.period


cdef class STDDEV:
    """Population standard deviation of the last ``period`` values times
    ``nbdev``, TA-Lib STDDEV (its cancellation-free rolling variance)."""

    kind = K_STDDEV                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=5, nbdev=1.0):
        cdef Py_ssize_t n = _check_period(period, 1, 1_000_000)
        cdef double k = _check_float(nbdev, "nbdev")
        self.buf = _alloc(n)
        stddev_init(&self.state, n, k, self.buf)

    def __dealloc__(self):
        PyMem_Free(self.buf)

    cpdef double update(self, double value):
        return stddev_update(&self.state, value)

    def batch(self, const double[:] values):
        cdef Py_ssize_t i, n = values.shape[0]
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef StddevState st = self.state
        with nogil:
            for i in range(n):
                o[i] = stddev_update(&st, values[i])
        self.state = st
        return out

    def reset(self):
        stddev_init(&self.state, self.state.var.period, self.state.nbdev, self.buf)

    @property
    def value(self):
        return self.state.value

    @property
    def period(self):
        return self.state.var.period

    @property
    def nbdev(self):
        return self.state.nbdev

    @property
    def count(self):
        return self.state.var.count

    @property
    def initialized(self):
        return self.state.var.count >= self.state.var.period


cdef class BBANDS:
    """Bollinger bands, TA-Lib BBANDS with its default SMA: (upper, middle,
    lower) = SMA +- nbdev * population stddev of the last ``period`` values."""

    kind = K_BBANDS                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=20, nbdevup=2.0, nbdevdn=2.0):
        cdef Py_ssize_t n = _check_period(period, 1, 1_000_000)
        cdef double up = _check_float(nbdevup, "nbdevup")
        cdef double dn = _check_float(nbdevdn, "nbdevdn")
        self.buf = _alloc(n)
        bbands_init(&self.state, n, up, dn, self.buf)

    def __dealloc__(self):
        PyMem_Free(self.buf)

    cpdef tuple update(self, double value):
        """Feed one value; return (upper, middle, lower), NaN until warm."""
        bbands_update(&self.state, value)
        return (self.state.upper, self.state.middle, self.state.lower)

    def batch(self, const double[:] values):
        """Feed an array; return (upper, middle, lower) float64 arrays."""
        cdef Py_ssize_t i, n = values.shape[0]
        cdef cnp.ndarray[cnp.float64_t, ndim=1] u = np.empty(n, dtype=np.float64)
        cdef cnp.ndarray[cnp.float64_t, ndim=1] m = np.empty(n, dtype=np.float64)
        cdef cnp.ndarray[cnp.float64_t, ndim=1] l = np.empty(n, dtype=np.float64)
        cdef double* pu = <double*> u.data
        cdef double* pm = <double*> m.data
        cdef double* pl = <double*> l.data
        cdef BbandsState st = self.state
        with nogil:
            for i in range(n):
                bbands_update(&st, values[i])
                pu[i] = st.upper
                pm[i] = st.middle
                pl[i] = st.lower
        self.state = st
        return u, m, l

    def reset(self):
        bbands_init(&self.state, self.state.var.period, self.state.up, self.state.dn, self.buf)

    @property
    def value(self):
        """(upper, middle, lower)."""
        return (self.state.upper, self.state.middle, self.state.lower)

    @property
    def period(self):
        return self.state.var.period

    @property
    def count(self):
        return self.state.var.count

    @property
    def initialized(self):
        return self.state.var.count >= self.state.var.period


cdef class MACD:
    """Moving average convergence/divergence, TA-Lib MACD: (macd, signal, hist).

    TA-Lib seeds both EMAs at the slow one's first value (the fast EMA starts
    from the mean of the last ``fast`` of the first ``slow`` inputs) and
    outputs nothing before the signal line exists: NaN for the first
    ``slow + signal - 2`` inputs."""

    kind = K_MACD                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, fast=12, slow=26, signal=9):
        cdef Py_ssize_t f = _check_period(fast, 2, 100_000)
        cdef Py_ssize_t s = _check_period(slow, 2, 100_000)
        cdef Py_ssize_t g = _check_period(signal, 1, 100_000)
        if f > s:
            raise ValueError(f"fast ({f}) must not be longer than slow ({s})")
        macd_init(&self.state, f, s, g)

    cpdef tuple update(self, double value):
        """Feed one value; return (macd, signal, hist), NaN until warm."""
        macd_update(&self.state, value)
        return (self.state.macd, self.state.signal_value, self.state.hist)

    def batch(self, const double[:] values):
        """Feed an array; return (macd, signal, hist) float64 arrays."""
        cdef Py_ssize_t i, n = values.shape[0]
        cdef cnp.ndarray[cnp.float64_t, ndim=1] a = np.empty(n, dtype=np.float64)
        cdef cnp.ndarray[cnp.float64_t, ndim=1] b = np.empty(n, dtype=np.float64)
        cdef cnp.ndarray[cnp.float64_t, ndim=1] c = np.empty(n, dtype=np.float64)
        cdef double* pa = <double*> a.data
        cdef double* pb = <double*> b.data
        cdef double* pc = <double*> c.data
        cdef MacdState st = self.state
        with nogil:
            for i in range(n):
                macd_update(&st, values[i])
                pa[i] = st.macd
                pb[i] = st.signal_value
                pc[i] = st.hist
        self.state = st
        return a, b, c

    def reset(self):
        macd_init(&self.state, self.state.fast, self.state.slow, self.state.signal)

    @property
    def value(self):
        """(macd, signal, hist)."""
        return (self.state.macd, self.state.signal_value, self.state.hist)

    @property
    def count(self):
        return self.state.count

    @property
    def initialized(self):
        return self.state.sig_count >= self.state.signal


cdef class STOCH:
    """Slow stochastic, TA-Lib STOCH with SMA smoothing: (slowk, slowd)."""

    kind = K_STOCH                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, fastk=14, slowk=3, slowd=3):
        cdef Py_ssize_t a = _check_period(fastk, 1, 100_000)
        cdef Py_ssize_t b = _check_period(slowk, 1, 100_000)
        cdef Py_ssize_t c = _check_period(slowd, 1, 100_000)
        self.buf = _alloc(4 * a + 2 + b + c)
        stoch_init(&self.state, a, b, c, self.buf)

    def __dealloc__(self):
        PyMem_Free(self.buf)

    cpdef tuple update(self, double high, double low, double close):
        """Feed one bar; return (slowk, slowd), NaN until warm."""
        stoch_update(&self.state, high, low, close)
        return (self.state.slowk, self.state.slowd)

    def batch(self, const double[:] high, const double[:] low, const double[:] close):
        """Feed arrays of bars; return (slowk, slowd) float64 arrays."""
        cdef Py_ssize_t i, n = _same_len((high, low, close), "high, low and close")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] k = np.empty(n, dtype=np.float64)
        cdef cnp.ndarray[cnp.float64_t, ndim=1] d = np.empty(n, dtype=np.float64)
        cdef double* pk = <double*> k.data
        cdef double* pd = <double*> d.data
        cdef StochState st = self.state
        with nogil:
            for i in range(n):
                stoch_update(&st, high[i], low[i], close[i])
                pk[i] = st.slowk
                pd[i] = st.slowd
        self.state = st
        return k, d

    def reset(self):
        stoch_init(&self.state, self.state.ext.period, self.state.k.period,
                   self.state.d.period, self.buf)

    @property
    def value(self):
        """(slowk, slowd)."""
        return (self.state.slowk, self.state.slowd)

    @property
    def count(self):
        """Bars seen."""
        return self.state.ext.count

    @property
    def initialized(self):
        return self.state.slowd == self.state.slowd


cdef class ADX:
    """Average directional index, TA-Lib ADX (NaN for the first ``2 * period - 1``
    bars).  ``plus_di`` / ``minus_di`` give TA-Lib's PLUS_DI / MINUS_DI of the
    same pass (warm after ``period`` bars)."""

    kind = K_ADX                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=14):
        adx_init(&self.state, _check_period(period, 2, 100_000))

    cpdef double update(self, double high, double low, double close):
        """Feed one bar; return ADX."""
        return adx_update(&self.state, high, low, close)

    def batch(self, const double[:] high, const double[:] low, const double[:] close):
        """Feed arrays of bars; return the ADX after each (float64 array)."""
        cdef Py_ssize_t i, n = _same_len((high, low, close), "high, low and close")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef AdxState st = self.state
        with nogil:
            for i in range(n):
                o[i] = adx_update(&st, high[i], low[i], close[i])
        self.state = st
        return out

    def reset(self):
        adx_init(&self.state, self.state.period)

    @property
    def value(self):
        return self.state.adx

    @property
    def plus_di(self):
        return self.state.plus_di

    @property
    def minus_di(self):
        return self.state.minus_di

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        """Bars seen."""
        return self.state.count

    @property
    def initialized(self):
        return self.state.count >= 2 * self.state.period


cdef class PLUS_DI:
    """Plus directional indicator, TA-Lib PLUS_DI (NaN for the first ``period`` bars)."""

    kind = K_PLUS_DI                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=14):
        adx_init(&self.state, _check_period(period, 2, 100_000), 1)

    cpdef double update(self, double high, double low, double close):
        adx_update(&self.state, high, low, close)
        return self.state.plus_di

    def batch(self, const double[:] high, const double[:] low, const double[:] close):
        cdef Py_ssize_t i, n = _same_len((high, low, close), "high, low and close")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef AdxState st = self.state
        with nogil:
            for i in range(n):
                adx_update(&st, high[i], low[i], close[i])
                o[i] = st.plus_di
        self.state = st
        return out

    def reset(self):
        adx_init(&self.state, self.state.period, 1)

    @property
    def value(self):
        return self.state.plus_di

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        return self.state.count

    @property
    def initialized(self):
        return self.state.count > self.state.period


cdef class MINUS_DI:
    """Minus directional indicator, TA-Lib MINUS_DI (NaN for the first ``period`` bars)."""

    kind = K_MINUS_DI                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=14):
        adx_init(&self.state, _check_period(period, 2, 100_000), 2)

    cpdef double update(self, double high, double low, double close):
        adx_update(&self.state, high, low, close)
        return self.state.minus_di

    def batch(self, const double[:] high, const double[:] low, const double[:] close):
        cdef Py_ssize_t i, n = _same_len((high, low, close), "high, low and close")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef AdxState st = self.state
        with nogil:
            for i in range(n):
                adx_update(&st, high[i], low[i], close[i])
                o[i] = st.minus_di
        self.state = st
        return out

    def reset(self):
        adx_init(&self.state, self.state.period, 2)

    @property
    def value(self):
        return self.state.minus_di

    @property
    def period(self):
        return self.state.period

    @property
    def count(self):
        return self.state.count

    @property
    def initialized(self):
        return self.state.count > self.state.period


cdef class OBV:
    """On-balance volume, TA-Lib OBV (starts at the first bar's volume)."""

    kind = K_OBV                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self):
        obv_init(&self.state)

    cpdef double update(self, double close, double volume):
        """Feed one bar's close and volume; return OBV."""
        return obv_update(&self.state, close, volume)

    def batch(self, const double[:] close, const double[:] volume):
        cdef Py_ssize_t i, n = _same_len((close, volume), "close and volume")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] out = np.empty(n, dtype=np.float64)
        cdef double* o = <double*> out.data
        cdef ObvState st = self.state
        with nogil:
            for i in range(n):
                o[i] = obv_update(&st, close[i], volume[i])
        self.state = st
        return out

    def reset(self):
        obv_init(&self.state)

    @property
    def value(self):
        return self.state.value

    @property
    def count(self):
        return self.state.count

    @property
    def initialized(self):
        return self.state.count > 0


cdef class SUPERTREND:
    """SuperTrend on TA-Lib's ATR(period): (supertrend, direction).

    Bands ``(high + low) / 2 +- multiplier * ATR`` tighten only while the close
    stays inside them; the line is the lower band while ``direction`` is +1
    (up) and the upper band while it is -1 (down).  First value at the first
    ATR (bar ``period + 1``): the upper band, direction -1.  Same rules as
    TradingView's ``ta.supertrend`` except that its direction sign is
    opposite (-1 = up there) and its ATR's first TR is high - low."""

    kind = K_SUPERTREND                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=10, multiplier=3.0):
        supertrend_init(&self.state, _check_period(period, 1, 100_000),
                        _check_float(multiplier, "multiplier", True))

    cpdef tuple update(self, double high, double low, double close):
        """Feed one bar; return (supertrend, direction), NaN until warm."""
        supertrend_update(&self.state, high, low, close)
        return (self.state.value, self.state.direction)

    def batch(self, const double[:] high, const double[:] low, const double[:] close):
        """Feed arrays of bars; return (supertrend, direction) float64 arrays."""
        cdef Py_ssize_t i, n = _same_len((high, low, close), "high, low and close")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] v = np.empty(n, dtype=np.float64)
        cdef cnp.ndarray[cnp.float64_t, ndim=1] d = np.empty(n, dtype=np.float64)
        cdef double* pv = <double*> v.data
        cdef double* pd = <double*> d.data
        cdef SupertrendState st = self.state
        with nogil:
            for i in range(n):
                supertrend_update(&st, high[i], low[i], close[i])
                pv[i] = st.value
                pd[i] = st.direction
        self.state = st
        return v, d

    def reset(self):
        supertrend_init(&self.state, self.state.atr.period, self.state.mult)

    @property
    def value(self):
        """(supertrend, direction)."""
        return (self.state.value, self.state.direction)

    @property
    def period(self):
        return self.state.atr.period

    @property
    def count(self):
        """Bars seen (the ATR's true ranges start at the second)."""
        return self.state.atr.count + (1 if self.state.prev_close == self.state.prev_close else 0)

    @property
    def initialized(self):
        return self.state.direction == self.state.direction


cdef class DONCHIAN:
    """Donchian channel: (upper, middle, lower) = highest high, mid-point and
    lowest low of the last ``period`` bars (NaN for the first ``period - 1``)."""

    kind = K_DONCHIAN                # kernel code for the candle bank (indicators.pxd)

    def __cinit__(self, period=20):
        cdef Py_ssize_t n = _check_period(period, 1, 1_000_000)
        self.buf = _alloc(4 * n + 2)
        donchian_init(&self.state, n, self.buf)

    def __dealloc__(self):
        PyMem_Free(self.buf)

    cpdef tuple update(self, double high, double low):
        """Feed one bar's high and low; return (upper, middle, lower)."""
        donchian_update(&self.state, high, low)
        return (self.state.upper, self.state.middle, self.state.lower)

    def batch(self, const double[:] high, const double[:] low):
        """Feed arrays; return (upper, middle, lower) float64 arrays."""
        cdef Py_ssize_t i, n = _same_len((high, low), "high and low")
        cdef cnp.ndarray[cnp.float64_t, ndim=1] u = np.empty(n, dtype=np.float64)
        cdef cnp.ndarray[cnp.float64_t, ndim=1] m = np.empty(n, dtype=np.float64)
        cdef cnp.ndarray[cnp.float64_t, ndim=1] l = np.empty(n, dtype=np.float64)
        cdef double* pu = <double*> u.data
        cdef double* pm = <double*> m.data
        cdef double* pl = <double*> l.data
        cdef DonchianState st = self.state
        with nogil:
            for i in range(n):
                donchian_update(&st, high[i], low[i])
                pu[i] = st.upper
                pm[i] = st.middle
                pl[i] = st.lower
        self.state = st
        return u, m, l

    def reset(self):
        donchian_init(&self.state, self.state.ext.period, self.buf)

    @property
    def value(self):
        """(upper, middle, lower)."""
        return (self.state.upper, self.state.middle, self.state.lower)

    @property
    def period(self):
        return self.state.ext.period

    @property
    def count(self):
        return self.state.ext.count

    @property
    def initialized(self):
        return self.state.ext.count >= self.state.ext.period
