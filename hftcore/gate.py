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
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

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
    if quantity % inst.lot_size:
        return Shape("lot_size", f"quantity {quantity} is not a multiple of lot size "
                                 f"{inst.lot_size}")
    if order_type not in ORDER_TYPES:
        return Shape("order_type", f"order_type must be one of {', '.join(ORDER_TYPES)}, "
                                   f"got {order_type!r}")
    if product not in PRODUCTS:
        return Shape("product", f"product must be one of {', '.join(PRODUCTS)}, got {product!r}")
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
        out.append(p)
    price_p, trig_p = out
    if order_type == "SL" and ((side == "BUY" and price_p < trig_p)
                               or (side == "SELL" and price_p > trig_p)):
        return Shape("trigger", f"an SL {side}'s limit price {price} must be on the far side "
                                f"of its trigger {trigger_price}")
    return Shape("", "", price_p, trig_p)


@dataclass(slots=True)
class Working:
    """An accepted order the gate still counts: what is left of it."""
    key: str
    symbol: str
    side: str
    quantity: int            # units still to fill
    exit_qty: int            # of which reduce the position (filled first)
    margin_per_unit: int     # paise reserved per opening unit
    product: str
    group: str = ""          # exits of one bracket: only the larger member counts


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
                 limits: RiskLimits, max_position_size: int, clock=time.time_ns):
        self.instruments = instruments
        self.price_source = price_source
        self.portfolio = portfolio
        self.limits = limits
        self.max_position_size = max_position_size
        self.clock = clock
        self.halted: str | None = None
        self.entries_closed: str | None = None
        self._lock = threading.RLock()
        self._working: dict[str, dict[str, Working]] = {}     # symbol -> key -> Working
        self._by_key: dict[str, Working] = {}
        self._reserved = 0                                     # paise of margin, all symbols
        self._held_product: dict[str, str] = {}
        self._windows = {"open": _RateWindows(), "exit": _RateWindows()}

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

    def _working_sums(self, symbol: str, skip_group: str = "") -> tuple[int, int, int, int]:
        """(all working buys, all working sells, exit buys, exit sells) of ``symbol``;
        the exits of one bracket (a stop and a target) count once, and not at all
        when checking another member of that bracket (``skip_group``)."""
        buys = sells = exit_buys = exit_sells = 0
        groups: dict[tuple[str, str], tuple[int, int]] = {}
        for w in self._working.get(symbol, {}).values():
            if w.group and w.group == skip_group:
                continue
            if w.group:
                q, e = groups.get((w.group, w.side), (0, 0))
                groups[(w.group, w.side)] = (max(q, w.quantity), max(e, w.exit_qty))
                continue
            if w.side == "BUY":
                buys += w.quantity
                exit_buys += w.exit_qty
            else:
                sells += w.quantity
                exit_sells += w.exit_qty
        for (_, side), (q, e) in groups.items():
            if side == "BUY":
                buys += q
                exit_buys += e
            else:
                sells += q
                exit_sells += e
        return buys, sells, exit_buys, exit_sells

    def working_quantity(self, symbol: str) -> tuple[int, int]:
        """(units of working buys, units of working sells) counted for ``symbol``."""
        with self._lock:
            b, s, _, _ = self._working_sums(symbol)
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
        lim = self.limits
        with self._lock:
            if key in self._by_key:
                return Decision("duplicate", f"an order with key {key!r} is already working")
            pos = self._position(symbol)
            buys, sells, exit_buys, exit_sells = self._working_sums(symbol, group)
            if side == "SELL":
                reducible = max(0, pos - exit_sells)
            else:
                reducible = max(0, -pos - exit_buys)
            exit_qty = min(quantity, reducible)
            is_exit = exit_qty == quantity
            ltp = self._ltp(symbol)
            if exit_only and not is_exit:
                return Decision("exit", f"{side} {quantity} {symbol} would open a position "
                                        f"(position {pos}, exits working "
                                        f"{exit_sells if side == 'SELL' else exit_buys})")
            if order_type in ("SL", "SL-M") and ltp is not None:
                t = shape.trigger_paise / 100
                if (side == "BUY" and t <= ltp) or (side == "SELL" and t >= ltp):
                    return Decision("trigger", f"a {side} stop's trigger {trigger_price} must be "
                                               f"{'above' if side == 'BUY' else 'below'} "
                                               f"the LTP {ltp}")
            if lim.price_band is not None and order_type != "MARKET":
                if ltp is None and not is_exit:
                    return Decision("no_price", f"no LTP for {symbol} to check the price band")
                if ltp is not None:
                    for name, p in (("limit price", shape.price_paise),
                                    ("trigger price", shape.trigger_paise)):
                        if p and abs(p / 100 - ltp) > lim.price_band * ltp:
                            return Decision("price_band",
                                            f"{name} {p / 100} outside the price_band "
                                            f"{lim.price_band:.0%} around LTP {ltp}")
            margin_per_unit = 0
            if not is_exit:
                if self.halted:
                    return Decision("halted", f"trading halted: {self.halted}")
                if self.entries_closed:
                    return Decision("entries_closed",
                                    f"no new positions: {self.entries_closed}")
                if product == "CNC" and side == "SELL":
                    return Decision("holdings", f"CNC sell of {quantity} {symbol} needs holdings "
                                                f"(held {pos}, being sold {exit_sells}); "
                                                f"no short delivery")
                # size so |position + everything working that way| <= max_position_size
                if side == "BUY":
                    room = self.max_position_size - (pos + buys)
                else:
                    room = self.max_position_size + (pos - sells)
                room -= room % inst.lot_size
                if room < quantity:
                    if room <= exit_qty:
                        return Decision("max_position",
                                        f"max_position_size {self.max_position_size} reached "
                                        f"(position {pos}, working buys {buys}, sells {sells})")
                    quantity = room
                ref = (shape.price_paise or shape.trigger_paise or
                       (to_paise(ltp) if ltp is not None else 0))
                if ref == 0:
                    return Decision("no_price", f"no LTP for {symbol} to value the order")
                value = quantity * ref
                if lim.max_order_value is not None and value > to_paise(lim.max_order_value):
                    return Decision("max_order_value",
                                    f"order value {value / 100:,.2f} above max_order_value "
                                    f"{lim.max_order_value:,.2f}")
                margin_per_unit = math.ceil(ref * lim.margin_rate(product))
                if lim.check_buying_power:
                    need = (quantity - exit_qty) * margin_per_unit
                    free = self._equity_paise() - self._position_margin() - self._reserved
                    if need > free:
                        return Decision("buying_power",
                                        f"needs margin {need / 100:,.2f} ({product}), "
                                        f"available {max(free, 0) / 100:,.2f}")
            window = self._windows["exit" if is_exit else "open"]
            caps = ((lim.max_exit_orders_per_second, None, None) if is_exit else
                    (lim.max_orders_per_second, lim.max_orders_per_minute,
                     lim.max_orders_per_day))
            now = int(self.clock())
            why = window.admit(now, caps)
            if why:
                return Decision("rate", why)
            w = Working(key, symbol, side, quantity, exit_qty, margin_per_unit, product, group)
            self._working.setdefault(symbol, {})[key] = w
            self._by_key[key] = w
            self._reserved += (quantity - exit_qty) * margin_per_unit
            return Decision("", "", quantity, is_exit, ltp)

    # ------------------------------------------------------------ lifecycle

    def on_fill(self, key: str, quantity: int, product: str | None = None) -> None:
        """``quantity`` of the order ``key`` filled (call after the portfolio applied it)."""
        with self._lock:
            w = self._by_key.get(key)
            if w is None:
                return
            if product:
                self._held_product[w.symbol] = product
            q = min(quantity, w.quantity)
            from_exit = min(q, w.exit_qty)
            w.exit_qty -= from_exit
            self._reserved -= (q - from_exit) * w.margin_per_unit
            w.quantity -= q
            if w.quantity <= 0:
                self._drop(w)

    def resize(self, key: str, remaining: int) -> None:
        """The order ``key`` now has ``remaining`` units to fill (a modification)."""
        with self._lock:
            w = self._by_key.get(key)
            if w is None:
                return
            if remaining <= 0:
                self._drop(w)
                return
            delta = remaining - w.quantity
            if delta < 0:
                cut = -delta
                from_open = min(cut, w.quantity - w.exit_qty)
                self._reserved -= from_open * w.margin_per_unit
                w.exit_qty -= cut - from_open
            else:
                self._reserved += delta * w.margin_per_unit
            w.quantity = remaining

    def release(self, key: str) -> None:
        """The order ``key`` is done (cancelled, rejected, or never placed)."""
        with self._lock:
            w = self._by_key.get(key)
            if w is not None:
                self._drop(w)

    def _drop(self, w: Working) -> None:
        self._reserved -= (w.quantity - w.exit_qty) * w.margin_per_unit
        del self._by_key[w.key]
        sym = self._working.get(w.symbol)
        if sym is not None:
            sym.pop(w.key, None)
            if not sym:
                del self._working[w.symbol]

    @property
    def reserved_margin(self) -> float:
        """Rupees of margin reserved by working orders."""
        return self._reserved / 100

    def working_count(self) -> int:
        return len(self._by_key)

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
            return (self._equity_paise() - self._position_margin() - self._reserved) / 100


class _RateWindows:
    """Orders in the last second and minute and on this IST day."""

    __slots__ = ("sec", "minute", "day", "day_count")

    def __init__(self) -> None:
        self.sec: deque[int] = deque()
        self.minute: deque[int] = deque()
        self.day: int | None = None
        self.day_count = 0

    def admit(self, now: int, caps) -> str:
        per_s, per_min, per_day = caps
        if per_s is None and per_min is None and per_day is None:
            return ""
        while self.sec and now - self.sec[0] >= NS:
            self.sec.popleft()
        while self.minute and now - self.minute[0] >= 60 * NS:
            self.minute.popleft()
        day = (now + IST_OFFSET_NS) // DAY_NS
        if day != self.day:
            self.day, self.day_count = day, 0
        if per_s is not None and len(self.sec) >= per_s:
            return f"max_orders_per_second {per_s} exceeded"
        if per_min is not None and len(self.minute) >= per_min:
            return f"max_orders_per_minute {per_min} exceeded"
        if per_day is not None and self.day_count >= per_day:
            return f"max_orders_per_day {per_day} exceeded"
        self.sec.append(now)
        self.minute.append(now)
        self.day_count += 1
        return ""
