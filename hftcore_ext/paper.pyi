# Python types of hftcore_ext.paper.  Money is int paise; quantities are int units.
import dataclasses
import threading
from collections import deque
from typing import Any, Callable, ClassVar

def to_paise(x: Any) -> int: ...

class BrokerOrder:
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    order_id: str
    symbol: str
    side: str
    quantity: int
    order_type: str
    price_paise: int
    product: str
    status: str
    filled: int
    value_paise: int
    fees_paise: int
    message: str
    fills: list
    trigger_paise: int
    tag: str
    ts: int
    charges: dict
    def __init__(self, order_id: str, symbol: str, side: str, quantity: int,
                 order_type: str = "MARKET", price_paise: int = 0, product: str = "MIS",
                 status: str = "OPEN", filled: int = 0, value_paise: int = 0,
                 fees_paise: int = 0, message: str = "", fills: list = ...,
                 trigger_paise: int = 0, tag: str = "", ts: int = 0,
                 charges: dict = ...) -> None: ...
    @property
    def avg_price(self) -> float: ...
    @property
    def pending(self) -> int: ...
    @property
    def working(self) -> bool: ...
    @property
    def price(self) -> float | None: ...
    @property
    def trigger_price(self) -> float | None: ...
    def to_dict(self) -> dict[str, Any]: ...

class OrderBookCore:
    charges: Any                      # ChargeSchedule
    clock: Callable[[], int]
    orders: dict[str, BrokerOrder]
    _done: deque[str]
    _listeners: list[Callable[[str, BrokerOrder, Any], None]]
    _pending: deque[tuple[str, BrokerOrder, Any]]
    _flush_lock: threading.Lock
    _flushing: int | None
    def add(self, order: BrokerOrder) -> None: ...
    def fill(self, order: BrokerOrder, quantity: int, price_paise: int, ts: int | None = None,
             fill_id: str | None = None) -> Any: ...                    # hftcore.orders.Fill
    def flush(self) -> None: ...

class PaperCore:
    price_source: Any
    instruments: Any                  # InstrumentTable
    slippage_ticks: int
    max_fill_quantity: int | None
    clock: Callable[[], int]
    id_prefix: str
    fill_at: str
    book: OrderBookCore
    _lock: threading.RLock
    _seq: int
    _open: dict[str, list[BrokerOrder]]
    def place_order(self, symbol: str, side: str, quantity: int, order_type: str = "MARKET",
                    price: float | None = None, product: str = "MIS",
                    trigger_price: float | None = None,
                    tag: str | None = None) -> BrokerOrder: ...
    def on_bar(self, symbol: str, open: float, high: float, low: float, close: float,
               ts: int | None = None) -> list[Any]: ...                  # [Fill]
    def watch(self, symbol: str) -> tuple[bool, float, float]: ...
    def _slip(self, inst: Any, side: str, px: int) -> int: ...
    def _match(self, symbol: str, o: int, h: int, lo: int, c: int, ts: int | None,
               only: BrokerOrder | None = None, skip: Any = (),
               first: bool = False) -> list[Any]: ...
