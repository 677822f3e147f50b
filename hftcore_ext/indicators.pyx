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
