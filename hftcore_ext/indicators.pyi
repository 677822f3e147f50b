# Python types of hftcore_ext.indicators (C types in comments).
import numpy as np
import numpy.typing as npt

class EMA:
    def __init__(self, period: int = 20) -> None: ...        # Py_ssize_t in [1, 1e6]
    def update(self, value: float) -> float: ...             # double -> double, NaN until warm
    def batch(self, values: npt.ArrayLike) -> np.ndarray: ... # const double[:] -> float64[n]
    def reset(self) -> None: ...
    value: float
    period: int
    count: int
    initialized: bool

class RSI:                # not an EMA subclass: Wilder-smoothed, its own C state
    def __init__(self, period: int = 14) -> None: ...        # Py_ssize_t in [1, 1e6]
    def update(self, value: float) -> float: ...
    def batch(self, values: npt.ArrayLike) -> np.ndarray: ...
    def reset(self) -> None: ...
    value: float
    period: int
    count: int
    initialized: bool

class Slope:              # not an EMA subclass: least-squares slope over a window
    def __init__(self, period: int = 20) -> None: ...        # [2, 64]
    def update(self, value: float) -> float: ...
    def batch(self, values: npt.ArrayLike) -> np.ndarray: ...
    def reset(self) -> None: ...
    value: float
    period: int
    count: int
    initialized: bool

class ATR:
    def __init__(self, period: int = 14) -> None: ...
    def update(self, high: float, low: float, close: float) -> float: ...
    def batch(self, high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> np.ndarray: ...
    def reset(self) -> None: ...
    value: float
    period: int
    count: int
    initialized: bool

class VWAP:
    def __init__(self) -> None: ...
    def update(self, price: float, volume: float) -> float: ...
    def batch(self, price: npt.ArrayLike, volume: npt.ArrayLike) -> np.ndarray: ...
    def reset(self) -> None: ...
    value: float
    volume: float
    initialized: bool

class Bundle:
    def __init__(self, fast: int = 20, slow: int = 50, rsi: int = 14, atr: int = 14,
                 slope: int = 20) -> None: ...
    def update(self, high: float, low: float, close: float, volume: float) -> None: ...
    def batch(self, high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
              volume: npt.ArrayLike) -> np.ndarray: ...            # (n, 6)
    def reset_session(self) -> None: ...
    values: tuple[float, float, float, float, float, float]
