# Python types of hftcore_ext.candles.  Arrays: int32 ids, int64 ns, float64 prices/volumes.
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

class CandleBank:
    def __init__(self, n_symbols: int, timeframes: Sequence[int] = (60, 300, 900),
                 history: int = 200, ema_fast: int = 20, ema_slow: int = 50, rsi: int = 14,
                 atr: int = 14, slope: int = 20, max_price: float = 1e7,
                 max_volume: float = 1e12, future_tolerance: float | None = 3600,
                 indicators: Sequence[Any] = ()) -> None: ...
    def grow(self, n_symbols: int) -> None: ...
    def on_tick(self, sym: int, ts_ns: int, price: float, volume: float) -> int: ...   # mask | -1
    def on_bar(self, sym: int, ts_ns: int, open: float, high: float, low: float, close: float,
               volume: float, span_seconds: int) -> int: ...
    def ingest_ticks(self, sym: npt.ArrayLike, ts_ns: npt.ArrayLike, price: npt.ArrayLike,
                     volume: npt.ArrayLike) -> int: ...                                # closed
    def ingest_bars(self, sym: npt.ArrayLike, ts_ns: npt.ArrayLike, open: npt.ArrayLike,
                    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                    volume: npt.ArrayLike, span_seconds: int) -> int: ...
    def ingest_ticks_until(self, sym: npt.ArrayLike, ts_ns: npt.ArrayLike, price: npt.ArrayLike,
                           volume: npt.ArrayLike, start: int = 0, tf: int = 0,
                           stop: str = "close") -> tuple[int, int]: ...    # (next, sym | -1)
    def ingest_bars_until(self, sym: npt.ArrayLike, ts_ns: npt.ArrayLike, open: npt.ArrayLike,
                          high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                          volume: npt.ArrayLike, span_seconds: int, start: int = 0, tf: int = 0,
                          stop: str = "close") -> tuple[int, int]: ...
    def cursor(self, sym: npt.ArrayLike, ts_ns: npt.ArrayLike, price: npt.ArrayLike | None = None,
               volume: npt.ArrayLike | None = None, *, open: npt.ArrayLike | None = None,
               high: npt.ArrayLike | None = None, low: npt.ArrayLike | None = None,
               close: npt.ArrayLike | None = None, span_seconds: int = 0) -> Cursor: ...
    def flush(self, ts_ns: int) -> int: ...
    def set_clock(self, ts_ns: int) -> None: ...
    def reset_session(self, sym: int) -> None: ...
    def timeframe_index(self, seconds: int) -> int: ...
    def bundle(self, sym: int, tf: int, live: bool = False) -> tuple[float, ...]: ...
    def bundle_dict(self, sym: int, tf: int, keys: tuple[str, ...],
                    live: bool = False) -> dict[str, float | None]: ...  # keys: 6 names
    def history(self, sym: int, tf: int, n: int = -1) -> dict[str, np.ndarray]: ...  # read-only views
    # declared indicators (hftcore.indicators specs)
    def declare(self, specs: Iterable[Any]) -> tuple[str, ...]: ...
    def indicators(self, sym: int, tf: int) -> dict[str, float | None]: ...
    def indicator_values(self, sym: int, tf: int) -> np.ndarray: ...      # float64, NaN = cold
    indicator_names: tuple[str, ...]
    declared: tuple[Any, ...]
    def forming(self, sym: int, tf: int) -> tuple[int, float, float, float, float, float] | None: ...
    def trend(self, sym: int, tf: int) -> int: ...
    def closed_count(self, sym: int, tf: int) -> int: ...
    def ltp(self, sym: int) -> float: ...
    def last_ts(self, sym: int) -> int | None: ...
    n_symbols: int
    timeframes: tuple[int, ...]
    history_length: int
    accepted: int
    dropped: int
    late: int
    def quarantined(self) -> dict[str, int]: ...   # symbol, price, volume, bar, future
    held: int
    clock: int | None
    max_price: float
    max_volume: float
    future_tolerance: float | None
    nbytes: int


class Cursor:
    bank: CandleBank
    n: int
    def until(self, start: int, end: int = -1, tf: int = 0,
              cross: bool = False) -> tuple[int, int]: ...    # (next, sym | -1)
