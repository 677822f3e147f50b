# Python types of hftcore_ext.ledger.  All money is int paise; quantities are int units.
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

MAX_QTY: int
MAX_PRICE_PAISE: int

class Ledger:
    def __init__(self, n_symbols: int = 0, initial_cash: int = 0) -> None: ...
    def grow(self, n_symbols: int) -> None: ...
    def apply_fill(self, sym: int, qty: int, price: int, fee: int = 0) -> int: ...   # 0 | -1
    def apply_fills(self, sym: npt.ArrayLike, qty: npt.ArrayLike, price: npt.ArrayLike,
                    fee: npt.ArrayLike) -> int: ...                                  # applied
    def set_mark(self, sym: int, price: int) -> None: ...
    def set_marks(self, sym: npt.ArrayLike, price: npt.ArrayLike) -> None: ...
    def open_ids(self) -> list[int]: ...
    def position(self, sym: int) -> tuple[int, int, int, int, int, int, int]: ...
    def mark_rupees(self, ids: Sequence[int], ltps: Sequence[object],
                    max_paise: int) -> tuple[int, list[int]]: ...
    def snapshot(self, symbols: Sequence[str]) -> dict: ...
    def check(self) -> bool: ...
    def to_state(self) -> dict: ...
    @classmethod
    def from_state(cls, state: dict) -> "Ledger": ...
    n_symbols: int
    initial_cash: int
    cash: int
    realized: int
    unrealized: int
    fees: int
    market_value: int
    exposure: int
    equity: int
    open_positions: int
    fills: int
    rejected: int

def round_trips(sym: np.ndarray, qty: np.ndarray, price: np.ndarray, fee: np.ndarray,
                ts: np.ndarray) -> np.ndarray: ...   # int64 (trades, 11), closing order
