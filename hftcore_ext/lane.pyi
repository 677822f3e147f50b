# Python types of hftcore_ext.lane.  Money is int paise; quantities are int units.
from typing import Any, Callable, TypeVar

RULES: tuple[str, ...]
DUPLICATE: int
EXIT: int
TRIGGER: int
NO_BAND_PRICE: int
PRICE_BAND: int
HALTED: int
ENTRIES_CLOSED: int
HOLDINGS: int
MAX_POSITION: int
NO_VALUE_PRICE: int
MAX_ORDER_VALUE: int
BUYING_POWER: int
RATE: int
MARKET: int
LIMIT: int
SL: int
SL_M: int

Caps = tuple[int | None, int | None, int | None]

class RiskBook:
    reserved: int
    def __init__(self, max_position_size: int, open_rates: Caps = ..., exit_rates: Caps = ...,
                 price_band: float | None = None, max_order_value: int | None = None,
                 check_buying_power: bool = True) -> None: ...
    def configure(self, max_position_size: int, open_rates: Caps, exit_rates: Caps,
                  price_band: float | None, max_order_value: int | None,
                  check_buying_power: bool) -> None: ...
    def totals(self, sym: int, skip_group: str = "") -> tuple[int, int, int, int]: ...
    def __contains__(self, key: object) -> bool: ...
    def __len__(self) -> int: ...
    def check(self, key: str, sym: int, buy: bool, quantity: int, lot: int, pos: int,
              ltp: float | None, price_p: int, trig_p: int, order_type: int,
              margin_rate: float, cnc: bool, group: str, exit_only: bool, halted: bool,
              entries_closed: bool, account: Callable[[], tuple[int, int]],
              now: int) -> tuple[int, int, bool, int, int, int]: ...
    def on_fill(self, key: str, quantity: int) -> int: ...
    def resize(self, key: str, remaining: int) -> None: ...
    def release(self, key: str) -> None: ...
    def working(self, key: str) -> tuple[int, bool, int, int, int] | None: ...

class FeedIntake:
    signals: Any
    orders: Any
    counts: dict[str, int]
    pending: list[Any]
    market_ns: int
    version: int
    last_event_ts: Any
    portfolio_raw: Any
    def __init__(self, signals: Any, orders: Any) -> None: ...
    def bind(self, lock: Any, now_ns: Callable[[Any], int],
             other: Callable[[str, Any, Any], None], fold: Callable[[], None]) -> None: ...
    def on_event(self, event: Any) -> None: ...
    def take(self, etype: str, payload: Any, ts: Any) -> bool: ...

def first_touch(sym: Any, high: Any, low: Any, a: int, b: int, sid: int, any_bar: bool,
                high_at: float, low_at: float) -> int: ...

def fuse(signals: list[Any], primary_tf: str, secondary_tf: str, weights: dict[str, float],
         primary_weight: float, secondary_weight: float,
         min_confidence: float) -> tuple[str, float, str]: ...

class Values(dict[str, Any]):
    def __getattr__(self, name: str) -> Any: ...

_C = TypeVar("_C", bound="ContextCore")

class ContextCore:
    _session: Any
    _trade: bool
    timeframe: str
    symbol: str
    strategy_name: str
    _sym: int
    _tf: int
    _ind: Values | None
    _bundle: dict[str, Any] | None
    _ltp: float | None
    _prev: dict[tuple[int, int], Values]
    _watched: set[tuple[int, int]]
    signals: list[Any]
    results: list[Any]
    def __init__(self, session: Any, timeframe: str | None = None, trade: bool = True) -> None: ...
    def _point(self: _C, symbol: str, timeframe: str, sym: int, tf: int, bundle: Any = None,
               ltp: float | None = None) -> _C: ...
    @property
    def ind(self) -> Values: ...
    @property
    def prev(self) -> Values: ...
    def _remember(self) -> None: ...
    def crossed_above(self, a: str, b: str | float) -> bool: ...
    def crossed_below(self, a: str, b: str | float) -> bool: ...
    def signal(self, action: str, confidence: float = 1.0, reason: str = "") -> Any: ...
    def vote(self, strategy: Any, symbol: str, timeframe: str, sym: int, tf: int, bundle: Any,
             ltp: float | None) -> Any: ...
