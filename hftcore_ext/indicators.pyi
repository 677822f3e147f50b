# Python types of hftcore_ext.indicators (C types in comments).
import numpy as np
import numpy.typing as npt

class EMA:
    kind: int                                                # kernel code (candle bank)
    def __init__(self, period: int = 20) -> None: ...        # Py_ssize_t in [1, 1e6]
    def update(self, value: float) -> float: ...             # double -> double, NaN until warm
    def batch(self, values: npt.ArrayLike) -> np.ndarray: ... # const double[:] -> float64[n]
    def reset(self) -> None: ...
    value: float
    period: int
    count: int
    initialized: bool

class RSI(EMA):
    def __init__(self, period: int = 14) -> None: ...

class Slope(EMA):
    def __init__(self, period: int = 20) -> None: ...        # [2, 64]

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

# ---- TA-Lib parity classes: parameter and input order as TA-Lib's, without MA types.
# update() returns the output (a tuple in TA-Lib's order for several), NaN until warm;
# batch() takes float64 arrays and returns an array (or a tuple of arrays).

class SMA:
    def __init__(self, period: int = 30) -> None: ...
    def update(self, value: float) -> float: ...
    def batch(self, values: npt.ArrayLike) -> np.ndarray: ...
    def reset(self) -> None: ...
    value: float
    period: int
    count: int
    initialized: bool

class WMA(SMA): ...

class STDDEV(SMA):
    def __init__(self, period: int = 5, nbdev: float = 1.0) -> None: ...
    nbdev: float

class BBANDS:
    def __init__(self, period: int = 20, nbdevup: float = 2.0, nbdevdn: float = 2.0) -> None: ...
    def update(self, value: float) -> tuple[float, float, float]: ...          # upper, middle, lower
    def batch(self, values: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def reset(self) -> None: ...
    value: tuple[float, float, float]
    period: int
    count: int
    initialized: bool

class MACD:
    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None: ...
    def update(self, value: float) -> tuple[float, float, float]: ...          # macd, signal, hist
    def batch(self, values: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def reset(self) -> None: ...
    value: tuple[float, float, float]
    count: int
    initialized: bool

class STOCH:
    def __init__(self, fastk: int = 14, slowk: int = 3, slowd: int = 3) -> None: ...
    def update(self, high: float, low: float, close: float) -> tuple[float, float]: ...  # slowk, slowd
    def batch(self, high: npt.ArrayLike, low: npt.ArrayLike,
              close: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]: ...
    def reset(self) -> None: ...
    value: tuple[float, float]
    count: int
    initialized: bool

class ADX(ATR):
    plus_di: float
    minus_di: float

class PLUS_DI(ATR): ...
class MINUS_DI(ATR): ...

class OBV:
    def __init__(self) -> None: ...
    def update(self, close: float, volume: float) -> float: ...
    def batch(self, close: npt.ArrayLike, volume: npt.ArrayLike) -> np.ndarray: ...
    def reset(self) -> None: ...
    value: float
    count: int
    initialized: bool

class SUPERTREND:
    def __init__(self, period: int = 10, multiplier: float = 3.0) -> None: ...
    def update(self, high: float, low: float, close: float) -> tuple[float, float]: ...  # line, direction
    def batch(self, high: npt.ArrayLike, low: npt.ArrayLike,
              close: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]: ...
    def reset(self) -> None: ...
    value: tuple[float, float]
    period: int
    count: int
    initialized: bool

class DONCHIAN:
    def __init__(self, period: int = 20) -> None: ...
    def update(self, high: float, low: float) -> tuple[float, float, float]: ...  # upper, middle, lower
    def batch(self, high: npt.ArrayLike,
              low: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def reset(self) -> None: ...
    value: tuple[float, float, float]
    period: int
    count: int
    initialized: bool
