"""Brokers: where an order becomes fills.

Both brokers have the interface ExecutionService routes to (any object with it
will do):

* ``place_order(symbol, side, quantity, order_type="MARKET", price=None,
  product="MIS") -> BrokerOrder``
* ``add_fill_listener(callback)`` -- ``callback(Fill)`` for fills that happen
  after ``place_order`` returned (resting limit orders, partial fills);
* ``cancel_order(order_id) -> bool``.

``PaperBroker`` simulates NSE execution with charges; ``KiteBroker`` sends
orders to Zerodha Kite Connect through a ``kiteconnect.KiteConnect`` client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ..instruments import InstrumentTable, to_paise
from ..orders import Fill
from .charges import ChargeSchedule

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class BrokerOrder:
    order_id: str
    symbol: str
    side: str
    quantity: int
    order_type: str = "MARKET"
    price_paise: int = 0                 # limit price; 0 for market
    product: str = "MIS"
    status: str = "OPEN"                 # OPEN, COMPLETE, REJECTED, CANCELLED
    filled: int = 0
    value_paise: int = 0                 # sum of fill qty * price
    fees_paise: int = 0
    message: str = ""
    fills: list = field(default_factory=list)

    @property
    def avg_price(self) -> float:
        """Average fill price in rupees (0.0 if nothing filled)."""
        return self.value_paise / self.filled / 100 if self.filled else 0.0


class PaperBroker:
    KEEP_DONE = 100_000          # finished orders kept for get_order(); bounded for long runs

    """Simulated NSE execution against a live or replayed price source.

    Parameters
    ----------
    price_source : object with ``get_ltp(symbol)``
        A feed or the MarketDataService.
    instruments : InstrumentTable
    slippage_ticks : int
        Market orders fill this many ticks worse than the LTP.
    charges : ChargeSchedule
        NSE costs charged on each fill (``ZERO_CHARGES`` for none).
    price_band : float
        Limit prices further than this fraction from the LTP are rejected
        (NSE's dynamic price band; 0.2 = 20%).
    max_fill_quantity : int or None
        Liquidity per match: orders larger than this fill partially, the rest
        on later ``on_price`` calls.
    clock : callable -> int ns
        Fill timestamps (the session passes its simulated clock).
    id_prefix : str
        Order ids are ``<prefix><9-digit sequence>``; give each process that shares a
        portfolio journal its own prefix so ids never repeat across restarts.
    """

    def __init__(self, price_source, instruments: InstrumentTable | None = None,
                 slippage_ticks: int = 0, charges: ChargeSchedule | None = None,
                 price_band: float = 0.20, max_fill_quantity: int | None = None,
                 clock=time.time_ns, id_prefix: str = "PB"):
        if not callable(getattr(price_source, "get_ltp", None)):
            raise ValueError("price_source needs a get_ltp(symbol) method")
        if isinstance(slippage_ticks, bool) or not isinstance(slippage_ticks, int) \
                or slippage_ticks < 0:
            raise ValueError(f"slippage_ticks must be an int >= 0, got {slippage_ticks!r}")
        if not 0 < price_band <= 1:
            raise ValueError(f"price_band must be in (0, 1], got {price_band}")
        if max_fill_quantity is not None and (not isinstance(max_fill_quantity, int)
                                              or max_fill_quantity < 1):
            raise ValueError("max_fill_quantity must be None or an int >= 1")
        self.price_source = price_source
        self.instruments = instruments if instruments is not None else InstrumentTable.nse_default()
        self.slippage_ticks = slippage_ticks
        self.charges = charges if charges is not None else ChargeSchedule()
        self.price_band = price_band
        self.max_fill_quantity = max_fill_quantity
        self.clock = clock
        if not isinstance(id_prefix, str) or not id_prefix:
            raise ValueError(f"id_prefix must be a non-empty str, got {id_prefix!r}")
        self.id_prefix = id_prefix
        self._lock = threading.RLock()
        self._seq = 0
        self._orders: dict[str, BrokerOrder] = {}     # open orders + the newest KEEP_DONE done
        self._done: deque[str] = deque()
        self._open: dict[str, list[BrokerOrder]] = {}
        self._listeners: list = []

    def add_fill_listener(self, callback) -> None:
        with self._lock:
            self._listeners.append(callback)

    # ------------------------------------------------------------ orders

    def _reject(self, order: BrokerOrder, why: str) -> BrokerOrder:
        order.status = "REJECTED"
        order.message = why
        return order

    def place_order(self, symbol, side, quantity, order_type="MARKET", price=None,
                    product="MIS") -> BrokerOrder:
        """Place an order; returns it with any immediate fills.  Never raises for
        bad arguments: the order comes back REJECTED with the reason."""
        with self._lock:
            self._seq += 1
            oid = f"{self.id_prefix}{self._seq:09d}"
            order = BrokerOrder(oid, str(symbol), str(side), 0, str(order_type).upper(),
                                product=str(product).upper())
            self._orders[oid] = order
            self._retire_old(oid)
            inst = self.instruments.get(symbol)
            if inst is None:
                return self._reject(order, f"unknown symbol {symbol!r}")
            order.symbol = inst.symbol
            if side not in ("BUY", "SELL"):
                return self._reject(order, f"side must be BUY or SELL, got {side!r}")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                return self._reject(order, f"quantity must be a positive int, got {quantity!r}")
            if quantity % inst.lot_size:
                return self._reject(order, f"quantity {quantity} is not a multiple of lot "
                                           f"size {inst.lot_size}")
            order.quantity = quantity
            if order.product not in ("MIS", "CNC"):
                return self._reject(order, f"product must be MIS or CNC, got {product!r}")
            ltp = self.price_source.get_ltp(inst.symbol)
            if ltp is None:
                return self._reject(order, f"no price for {inst.symbol}")
            ltp_p = to_paise(ltp)
            if order.order_type == "LIMIT":
                try:
                    limit = to_paise(price)
                except ValueError as exc:
                    return self._reject(order, f"bad limit price: {exc}")
                if not inst.on_grid(limit):
                    return self._reject(order, f"limit price {price} is not on the tick grid "
                                               f"({inst.tick_paise(max(limit, 1)) / 100})")
                if abs(limit - ltp_p) > self.price_band * ltp_p:
                    return self._reject(order, f"limit price {price} outside the "
                                               f"{self.price_band:.0%} band around LTP {ltp}")
                order.price_paise = limit
            elif order.order_type != "MARKET":
                return self._reject(order,
                                    f"order_type must be MARKET or LIMIT, got {order_type!r}")
            self._open.setdefault(inst.symbol, []).append(order)
            # Fills made here are returned on the order (its caller publishes
            # them); listeners only hear of fills that happen later.
            self._match(inst.symbol, ltp_p)
        return order

    def _retire_old(self, newest: str) -> None:
        # forget the oldest finished orders beyond KEEP_DONE (open ones stay)
        self._done.append(newest)
        while len(self._done) > self.KEEP_DONE:
            oid = self._done.popleft()
            order = self._orders.get(oid)
            if order is not None and order.status != "OPEN":
                del self._orders[oid]
            elif order is not None:
                self._done.append(oid)             # still open: look again later
                break

    def cancel_order(self, order_id) -> bool:
        with self._lock:
            order = self._orders.get(order_id)
            if order is None or order.status != "OPEN":
                return False
            order.status = "CANCELLED"
            self._open[order.symbol].remove(order)
            return True

    def get_order(self, order_id) -> BrokerOrder | None:
        return self._orders.get(order_id)

    def open_orders(self, symbol=None) -> list[BrokerOrder]:
        with self._lock:
            if symbol is None:
                return [o for lst in self._open.values() for o in lst]
            inst = self.instruments.get(symbol)
            return list(self._open.get(inst.symbol, [])) if inst else []

    # ------------------------------------------------------------ matching

    def on_price(self, symbol, price) -> list[Fill]:
        """A new LTP for ``symbol``: match resting orders; listeners get the fills."""
        inst = self.instruments.get(symbol)
        if inst is None:
            return []
        try:
            p = to_paise(price)
        except ValueError:
            return []
        with self._lock:
            if not self._open.get(inst.symbol):
                return []
            fills = self._match(inst.symbol, p)
        self._notify(fills)
        return fills

    def _match(self, symbol: str, ltp_p: int) -> list[Fill]:
        inst = self.instruments.get(symbol)
        fills: list[Fill] = []
        still_open = []
        if inst is None:                      # orders are only placed for known symbols
            return fills
        for order in self._open.get(symbol, []):
            if order.order_type == "MARKET":
                tick = inst.tick_paise(ltp_p)
                slip = self.slippage_ticks * tick
                px = ltp_p + slip if order.side == "BUY" else max(tick, ltp_p - slip)
            elif (order.side == "BUY" and ltp_p <= order.price_paise) or \
                    (order.side == "SELL" and ltp_p >= order.price_paise):
                px = order.price_paise
            else:
                still_open.append(order)
                continue
            qty = order.quantity - order.filled
            if self.max_fill_quantity is not None:
                qty = min(qty, self.max_fill_quantity)
            charges = self.charges.compute(order.side, qty, px, order.product)
            fee = charges.pop("total")
            fill = Fill(f"{order.order_id}-{len(order.fills) + 1}", order.order_id, symbol,
                        order.side, qty, px, fee, int(self.clock()), charges)
            order.fills.append(fill)
            order.filled += qty
            order.value_paise += qty * px
            order.fees_paise += fee
            fills.append(fill)
            if order.filled == order.quantity:
                order.status = "COMPLETE"
            else:
                still_open.append(order)
        self._open[symbol] = still_open
        return fills

    def _notify(self, fills) -> None:
        for f in fills:
            for cb in list(self._listeners):
                try:
                    cb(f)
                except Exception:
                    logger.exception("fill listener %r failed", cb)


class KiteBroker:
    """Routes orders to Zerodha Kite Connect.

    ``kite`` is a ``kiteconnect.KiteConnect`` (logged in) or any object with
    its ``place_order(variety, exchange, tradingsymbol, transaction_type,
    quantity, product, order_type, price=None)``, ``cancel_order(variety,
    order_id)`` and ``order_trades(order_id)`` methods.  Orders return PLACED
    (``OPEN``); call ``poll()`` (or feed Kite postbacks to ``on_trade``) to turn
    the exchange's trades into fills.  Charges are estimated with the same
    ChargeSchedule as paper trading; the contract note is authoritative.
    """

    def __init__(self, kite, instruments: InstrumentTable | None = None, variety="regular",
                 charges: ChargeSchedule | None = None):
        for m in ("place_order", "order_trades"):
            if not callable(getattr(kite, m, None)):
                raise ValueError(f"kite client needs a {m}() method")
        self.kite = kite
        self.instruments = instruments if instruments is not None else InstrumentTable.nse_default()
        self.variety = variety
        self.charges = charges if charges is not None else ChargeSchedule()
        self._lock = threading.Lock()
        self._orders: dict[str, BrokerOrder] = {}
        self._seen_trades: set[str] = set()
        self._listeners: list = []

    def add_fill_listener(self, callback) -> None:
        self._listeners.append(callback)

    def place_order(self, symbol, side, quantity, order_type="MARKET", price=None,
                    product="MIS") -> BrokerOrder:
        inst = self.instruments.get(symbol)
        order = BrokerOrder("", str(symbol), str(side),
                            quantity if isinstance(quantity, int) else 0,
                            str(order_type).upper(), product=str(product).upper())
        if inst is None:
            order.status, order.message = "REJECTED", f"unknown symbol {symbol!r}"
            return order
        kwargs = dict(variety=self.variety, exchange=inst.exchange, tradingsymbol=inst.symbol,
                      transaction_type=side, quantity=quantity, product=order.product,
                      order_type=order.order_type)
        if order.order_type == "LIMIT":
            kwargs["price"] = price
            order.price_paise = to_paise(price)
        try:
            order.order_id = str(self.kite.place_order(**kwargs))
        except Exception as exc:            # the Kite client raises its own exception types
            order.status, order.message = "REJECTED", f"Kite rejected the order: {exc}"
            return order
        with self._lock:
            self._orders[order.order_id] = order
        order.message = "placed with Kite"
        return order

    def cancel_order(self, order_id) -> bool:
        try:
            self.kite.cancel_order(variety=self.variety, order_id=order_id)
            return True
        except Exception as exc:
            logger.warning("Kite cancel_order(%s) failed: %s", order_id, exc)
            return False

    def on_trade(self, trade: dict) -> Fill | None:
        """One Kite trade (from ``order_trades`` or a postback) -> a Fill, once."""
        tid = str(trade.get("trade_id", ""))
        with self._lock:
            if not tid or tid in self._seen_trades:
                return None
            self._seen_trades.add(tid)
            order = self._orders.get(str(trade.get("order_id")))
        side = str(trade.get("transaction_type") or "")
        qty = int(trade.get("quantity") or trade.get("filled_quantity") or 0)
        px = to_paise(float(trade["average_price"]))
        charges = self.charges.compute(side, qty, px, (order.product if order else "MIS"))
        fee = charges.pop("total")
        fill = Fill(tid, str(trade.get("order_id")), str(trade.get("tradingsymbol", "")), side, qty,
                    px, fee, time.time_ns(), charges)
        if order is not None:
            order.filled += qty
            order.value_paise += qty * px
            order.fills.append(fill)
            if order.filled >= order.quantity:
                order.status = "COMPLETE"
        for cb in list(self._listeners):
            try:
                cb(fill)
            except Exception:
                logger.exception("fill listener %r failed", cb)
        return fill

    def poll(self) -> list[Fill]:
        """Fetch trades of open orders from Kite; returns the new fills."""
        out = []
        for oid, order in list(self._orders.items()):
            if order.status != "OPEN":
                continue
            try:
                trades = self.kite.order_trades(order_id=oid)
            except Exception as exc:
                logger.warning("Kite order_trades(%s) failed: %s", oid, exc)
                continue
            for t in trades or []:
                f = self.on_trade(t)
                if f is not None:
                    out.append(f)
        return out
