"""The pre-trade gate: the one place that decides whether an order may go out.

Every order, paper or live, from a strategy, a bracket exit or a square-off,
passes ``PreTradeGate.check`` inside ``ExecutionService`` before it reaches a
broker.  The gate is given its price source and instrument table explicitly;
it never reads them off the broker, so no check silently switches off when the
broker changes.

Rules, in the order they are checked; each rejection names its rule:

========================  ===========================================================
rule                      what it checks
========================  ===========================================================
``unknown_symbol``        the instrument table knows the symbol
``side``                  BUY or SELL
``quantity``              a positive int
``lot_size``              a whole number of lots
``order_type``            MARKET, LIMIT, SL or SL-M
``product``               MIS, CNC or NRML
``price``                 LIMIT and SL have a limit price, MARKET and SL-M none
``trigger``               SL and SL-M have a trigger; a BUY stop's trigger is above
                          the LTP, a SELL stop's below; an SL's limit is on the
                          far side of its trigger
``tick_grid``             prices on the instrument's tick grid
``no_price``              an opening order needs an LTP to be valued
``price_band``            limit and trigger prices within ``price_band`` of the LTP
``halted``                no opening orders after the daily-loss halt
``entries_closed``        no opening orders after the intraday square-off time
                          (``close_entries``; the session reopens them next day)
``holdings``              a CNC sell needs holdings (no short delivery)
``max_position``          position + every working order the same way stays within
                          ``max_position_size`` (the order is sized down to fit,
                          in whole lots, and rejected if nothing fits)
``max_order_value``       quantity x (limit price, trigger, or the LTP for MARKET)
``buying_power``          equity - margin of open positions - margin reserved by
                          working orders covers this order's margin (MIS: value /
                          ``mis_leverage``; CNC and NRML: the full value)
``rate``                  orders per second / minute / day (Kite: 10 / 400 / 5,000)
========================  ===========================================================

An order that only reduces an open position (a square-off, a stop or target
exit, a strategy going flat) is an *exit*: it passes the halt, is never blocked
by ``max_order_value``, ``max_position`` or buying power, and counts against its
own rate budget (``max_exit_orders_per_second``, unlimited by default: the live
broker paces what it sends under Kite's limits, and an exit refused for rate
would leave a position open).

Check and reserve are one atomic step under the gate's lock: an accepted order
is *working* until it fills, is cancelled or rejected, and every later check
counts it, so two threads can never both take the last of a limit.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

from hftcore_ext.ledger import MAX_PRICE_PAISE, MAX_QTY
from hftcore_ext.lane import RULES, RiskBook

from .instruments import Instrument, InstrumentTable, to_paise
from .orders import ORDER_TYPES, PRODUCTS, SIDES

NS = 1_000_000_000
IST_OFFSET_NS = 19_800 * NS
DAY_NS = 86_400 * NS


@dataclass(frozen=True)
class RiskLimits:
    """Pre-trade limits; None disables one.  Money in rupees.

    ``price_band``: a limit or trigger price further than this fraction from the
    LTP is rejected (NSE's dynamic price band is typically 10-20%).
    ``mis_leverage``: intraday (MIS) margin is the order value divided by this
    (Zerodha gives up to 5x on equity); CNC and NRML need the full value.
    ``check_buying_power``: False turns the buying-power rule off (a backtest
    that only wants signals, e.g. ``--capital 1e9`` style runs).
    """
    max_order_value: float | None = 5_000_000.0
    max_orders_per_second: int | None = 10
    max_daily_loss: float | None = None
    price_band: float | None = 0.20
    max_orders_per_minute: int | None = 400
    max_orders_per_day: int | None = 5_000
    mis_leverage: float = 5.0
    max_exit_orders_per_second: int | None = None
    check_buying_power: bool = True

    def __post_init__(self):
        b = self.price_band
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float))
                              or not 0 < b <= 1):
            raise ValueError(f"price_band must be None or in (0, 1], got {b!r}")
        for name in ("max_order_value", "max_daily_loss"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not math.isfinite(v) or v <= 0):
                raise ValueError(f"{name} must be None or a number > 0, got {v!r}")
        for name in ("max_orders_per_second", "max_orders_per_minute", "max_orders_per_day",
                     "max_exit_orders_per_second"):
            r = getattr(self, name)
            if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 1):
                raise ValueError(f"{name} must be None or an int >= 1, got {r!r}")
        m = self.mis_leverage
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 1 <= m <= 100:
            raise ValueError(f"mis_leverage must be a number in [1, 100], got {m!r}")
        if not isinstance(self.check_buying_power, bool):
            raise ValueError("check_buying_power must be True or False")

    def margin_rate(self, product: str) -> float:
        """Fraction of an order's value blocked as margin for ``product``."""
        return 1.0 / self.mis_leverage if product == "MIS" else 1.0


class Shape(NamedTuple):
    """The result of ``check_order_shape``: ``rule`` is "" when the order is well formed."""
    rule: str
    message: str
    price_paise: int = 0
    trigger_paise: int = 0


_SHAPE_OK = Shape("", "", 0, 0)


def check_order_shape(inst: Instrument | None, symbol, side, quantity, order_type, price,
                      trigger_price, product) -> Shape:
    """What the exchange itself would refuse: symbol, side, quantity and lots,
    order type and product, prices present where needed and on the tick grid.
    Shared by the gate and the brokers so the rules exist once."""
    if inst is None:
        return Shape("unknown_symbol", f"unknown symbol {symbol!r}")
    if side not in SIDES:
        return Shape("side", f"side must be BUY or SELL, got {side!r}")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        return Shape("quantity", f"quantity must be a positive int, got {quantity!r}")
    if quantity > MAX_QTY:
        return Shape("quantity", f"quantity {quantity} above the {MAX_QTY:,} units one order "
                                 f"can carry")
    if quantity % inst.lot_size:
        return Shape("lot_size", f"quantity {quantity} is not a multiple of lot size "
                                 f"{inst.lot_size}")
    if order_type not in ORDER_TYPES:
        return Shape("order_type", f"order_type must be one of {', '.join(ORDER_TYPES)}, "
                                   f"got {order_type!r}")
    if product not in PRODUCTS:
        return Shape("product", f"product must be one of {', '.join(PRODUCTS)}, got {product!r}")
    if order_type == "MARKET" and price is None and trigger_price is None:
        return _SHAPE_OK                        # the common case: nothing priced to check
    out = []
    for name, value, needed in (("limit price", price, order_type in ("LIMIT", "SL")),
                                ("trigger price", trigger_price, order_type in ("SL", "SL-M"))):
        if not needed:
            if value is not None:
                return Shape("price", f"a {order_type} order takes no {name}, got {value!r}")
            out.append(0)
            continue
        if value is None:
            return Shape("price" if name == "limit price" else "trigger",
                         f"a {order_type} order needs a {name}")
        try:
            p = to_paise(value)
        except ValueError as exc:
            return Shape("price", f"bad {name}: {exc}")
        if not inst.on_grid(p):
            return Shape("tick_grid", f"{name} {value} is not on the tick grid "
                                      f"({inst.tick_paise(max(p, 1)) / 100})")
        if p > MAX_PRICE_PAISE:
            return Shape("price", f"{name} {value} above the Rs {MAX_PRICE_PAISE // 100:,} "
                                  f"a unit the ledger can book")
        out.append(p)
    price_p, trig_p = out
    if order_type == "SL" and ((side == "BUY" and price_p < trig_p)
                               or (side == "SELL" and price_p > trig_p)):
        return Shape("trigger", f"an SL {side}'s limit price {price} must be on the far side "
                                f"of its trigger {trigger_price}")
    return Shape("", "", price_p, trig_p)


class Decision(NamedTuple):
    """The gate's answer: ``rule`` "" means accepted (``quantity`` may be sized down)."""
    rule: str
    message: str
    quantity: int = 0
    exit: bool = False
    ltp: float | None = None


class PreTradeGate:
    """Check-and-reserve for every order.

    Parameters
    ----------
    instruments : InstrumentTable
    price_source : object with ``get_ltp(symbol)`` (the MarketDataService)
    portfolio : object with ``position_quantity(symbol)`` (or ``get_position``) and
        ``get_totals()`` or ``get_snapshot()`` for equity
    limits : RiskLimits
    max_position_size : int, units per symbol, long or short
    clock : callable -> ns (epoch; a replay passes its market clock)
    """

    def __init__(self, instruments: InstrumentTable, price_source, portfolio,
                 limits: RiskLimits, max_position_size: int, clock=time.time_ns,
                 book_class=RiskBook):
        self.instruments = instruments
        self.price_source = price_source
        self.portfolio = portfolio
        self.clock = clock
        self.halted: str | None = None
        self.entries_closed: str | None = None
        self._lock = threading.RLock()
        self._held_product: dict[str, str] = {}
        self._limits = limits
        self._max_position_size = max_position_size
        # working orders, reserved margin and rate windows: compiled (hftcore_ext.lane);
        # ``book_class`` lets the tests and benchmarks run the plain-Python twin instead
        self._book = book_class(*self._book_limits())

    def _book_limits(self, lim: RiskLimits | None = None, size: int | None = None) -> tuple:
        lim = self._limits if lim is None else lim
        return (self._max_position_size if size is None else size,
                (lim.max_orders_per_second, lim.max_orders_per_minute, lim.max_orders_per_day),
                (lim.max_exit_orders_per_second, None, None), lim.price_band,
                None if lim.max_order_value is None else to_paise(lim.max_order_value),
                lim.check_buying_power)

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    @limits.setter
    def limits(self, limits: RiskLimits) -> None:
        with self._lock:                  # the book first: nothing changes if it refuses
            self._book.configure(*self._book_limits(lim=limits))
            self._limits = limits

    @property
    def max_position_size(self) -> int:
        return self._max_position_size

    @max_position_size.setter
    def max_position_size(self, value: int) -> None:
        with self._lock:
            self._book.configure(*self._book_limits(size=value))
            self._max_position_size = value

    # ------------------------------------------------------------ portfolio reads

    def _position(self, symbol: str) -> int:
        p = self.portfolio
        qty = getattr(p, "position_quantity", None)
        if callable(qty):
            return int(qty(symbol))
        pos = p.get_position(symbol) if callable(getattr(p, "get_position", None)) else None
        return int(pos["quantity"]) if pos else 0

    def _equity_paise(self) -> int:
        p = self.portfolio
        mark = getattr(p, "mark_to_market", None)
        if callable(mark):
            mark()                                  # equity at today's prices
        ledger = getattr(p, "ledger", None)
        if ledger is not None and hasattr(ledger, "equity"):
            return int(ledger.equity)
        if callable(getattr(p, "get_totals", None)):
            return to_paise(p.get_totals()["equity"])
        return to_paise(p.get_snapshot()["equity"])

    def _ltp(self, symbol: str) -> float | None:
        try:
            ltp = self.price_source.get_ltp(symbol)
        except Exception:               # a price source must not take the gate down
            return None
        if ltp is None or isinstance(ltp, bool) or not isinstance(ltp, (int, float)) \
                or not math.isfinite(ltp) or ltp <= 0:
            return None
        return float(ltp)

    def _account_paise(self) -> tuple[int, int]:
        """(equity, margin blocked by open positions) in paise, at today's prices.

        With a portfolio that marks from this gate's own price source (the
        PortfolioService ExecutionService wires up), each LTP is read once: the
        marking that gives equity also gives the margin.  A position whose LTP
        cannot be read counts at its newest mark, never as zero."""
        p = self.portfolio
        marks = getattr(p, "position_mark", None)
        if not callable(marks) or getattr(p, "price_source", None) is not self.price_source:
            return self._equity_paise(), self._position_margin()
        equity = self._equity_paise()                # marks every open position
        total = 0
        rate_of = self._limits.margin_rate
        rates: dict[str, float] = {}
        for symbol, product in list(self._held_product.items()):
            qty, mark = marks(symbol)
            if qty and mark > 0:
                rate = rates.get(product)
                if rate is None:
                    rate = rates[product] = rate_of(product)
                total += int(abs(qty) * mark * rate)
        return equity, total

    def _position_margin(self) -> int:
        """Margin (paise) blocked by open positions, marked at the LTP."""
        total = 0
        for symbol, product in list(self._held_product.items()):
            qty = self._position(symbol)
            if not qty:
                continue
            ltp = self._ltp(symbol)
            if ltp is None:
                continue
            total += int(abs(qty) * to_paise(ltp) * self.limits.margin_rate(product))
        return total

    # ------------------------------------------------------------ working orders

    def working_quantity(self, symbol: str) -> tuple[int, int]:
        """(units of working buys, units of working sells) counted for ``symbol``."""
        sym = self.instruments.id_of(symbol)
        if sym < 0:
            return 0, 0
        with self._lock:
            b, s, _, _ = self._book.totals(sym)
            return b, s

    # ------------------------------------------------------------ the check

    def check(self, key: str, symbol: str, side: str, quantity: int, order_type: str = "MARKET",
              price: float | None = None, trigger_price: float | None = None,
              product: str = "MIS", group: str = "", exit_only: bool = False) -> Decision:
        """Check an order and, if accepted, reserve it under ``key`` (atomic).

        ``exit_only``: the caller means this order to reduce a position only (a
        square-off or bracket exit); it is rejected if it would open anything.
        ``group``: exits of one bracket share a group (counted once).
        """
        inst = self.instruments.get(symbol)
        shape = check_order_shape(inst, symbol, side, quantity, order_type, price,
                                  trigger_price, product)
        if shape.rule:
            return Decision(shape.rule, shape.message)
        assert inst is not None                     # the shape check refuses unknown symbols
        symbol = inst.symbol
        with self._lock:
            if key in self._book:
                return Decision("duplicate", f"an order with key {key!r} is already working")
            pos = self._position(symbol)
            ltp = self._ltp(symbol)
            code, sized, is_exit, a, b, c = self._book.check(
                key, inst.id, side == "BUY", quantity, inst.lot_size, pos, ltp,
                shape.price_paise, shape.trigger_paise, _ORDER_TYPE[order_type],
                self._limits.margin_rate(product), product == "CNC", group, exit_only,
                bool(self.halted), bool(self.entries_closed), self._account_paise,
                int(self.clock()))
        if code == 0:
            return Decision("", "", sized, is_exit, ltp)
        return Decision(RULES[code], self._message(code, a, b, c, symbol, side, quantity,
                                                   product, price, trigger_price, ltp))

    def _message(self, code: int, a: int, b: int, c: int, symbol: str, side: str,
                 quantity: int, product: str, price, trigger_price, ltp) -> str:
        """The rejection message for the book's rule ``code`` and its figures."""
        lim = self._limits
        rule = RULES[code]
        if rule == "exit":
            return (f"{side} {quantity} {symbol} would open a position (position {a}, "
                    f"exits working {b})")
        if rule == "trigger":
            return (f"a {side} stop's trigger {trigger_price} must be "
                    f"{'above' if side == 'BUY' else 'below'} the LTP {ltp}")
        if rule == "no_price":
            return f"no LTP for {symbol} to " + ("check the price band" if code == _NO_BAND_PRICE
                                                  else "value the order")
        if rule == "price_band":
            name = "limit price" if a == 1 else "trigger price"
            return (f"{name} {b / 100} outside the price_band {lim.price_band:.0%} "
                    f"around LTP {ltp}")
        if rule == "halted":
            return f"trading halted: {self.halted}"
        if rule == "entries_closed":
            return f"no new positions: {self.entries_closed}"
        if rule == "holdings":
            return (f"CNC sell of {quantity} {symbol} needs holdings (held {a}, being sold {b}); "
                    f"no short delivery")
        if rule == "max_position":
            return (f"max_position_size {self._max_position_size} reached (position {a}, "
                    f"working buys {b}, sells {c})")
        if rule == "max_order_value":
            return (f"order value {a / 100:,.2f} above max_order_value "
                    f"{lim.max_order_value:,.2f}")
        if rule == "buying_power":
            return (f"needs margin {a / 100:,.2f} ({product}), available "
                    f"{max(b, 0) / 100:,.2f}")
        if rule == "rate":
            name, cap = (("max_exit_orders_per_second", lim.max_exit_orders_per_second) if b else
                         (("max_orders_per_second", lim.max_orders_per_second),
                          ("max_orders_per_minute", lim.max_orders_per_minute),
                          ("max_orders_per_day", lim.max_orders_per_day))[a - 1])
            return f"{name} {cap} exceeded"
        return rule

    # ------------------------------------------------------------ lifecycle

    def on_fill(self, key: str, quantity: int, product: str | None = None) -> None:
        """``quantity`` of the order ``key`` filled (call after the portfolio applied it)."""
        with self._lock:
            sym = self._book.on_fill(key, quantity)
            if sym >= 0 and product:
                self._held_product[self.instruments.by_id(sym).symbol] = product

    def resize(self, key: str, remaining: int) -> None:
        """The order ``key`` now has ``remaining`` units to fill (a modification)."""
        with self._lock:
            self._book.resize(key, remaining)

    def release(self, key: str) -> None:
        """The order ``key`` is done (cancelled, rejected, or never placed)."""
        with self._lock:
            self._book.release(key)

    @property
    def reserved_margin(self) -> float:
        """Rupees of margin reserved by working orders."""
        return self._book.reserved / 100

    def working_count(self) -> int:
        return len(self._book)

    def halt(self, reason: str) -> bool:
        """Stop opening orders; returns True if this call halted (False if already)."""
        with self._lock:
            if self.halted:
                return False
            self.halted = reason
            return True

    def resume(self) -> None:
        with self._lock:
            self.halted = None

    def close_entries(self, reason: str) -> None:
        """Refuse opening orders (exits still pass) until ``open_entries``."""
        with self._lock:
            self.entries_closed = reason

    def open_entries(self) -> None:
        with self._lock:
            self.entries_closed = None

    def buying_power(self) -> float:
        """Rupees free for new margin: equity - margin of open positions - margin
        reserved by working orders (what the ``buying_power`` rule compares with)."""
        with self._lock:
            equity, margin = self._account_paise()
            return (equity - margin - self._book.reserved) / 100


_ORDER_TYPE = {"MARKET": 0, "LIMIT": 1, "SL": 2, "SL-M": 3}
_NO_BAND_PRICE = RULES.index("no_price")
