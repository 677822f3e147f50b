"""KiteBroker: orders on Zerodha Kite Connect, tracked until they are final.

* Every order carries a ``tag`` (its idempotency key, generated if not given)
  and MARKET / SL-M orders a ``market_protection`` (Kite refuses them without).
* A placement whose outcome is unknown (a timeout, a 5xx, an HTML error page, a
  response without Content-Type) is looked up by its tag in ``GET /orders``
  before anything else; it is never sent a second time blindly.  Only a 429
  (refused before it was processed) is retried, after a back-off.
* Order state comes from the ticker's order-update frames
  (``KiteTickerFeed.add_order_listener``), with ``poll()`` of ``/orders`` and
  ``/trades`` as the fallback (``start_polling`` runs it on a thread).  Fills are
  the deltas of the cumulative ``filled_quantity`` / ``average_price`` -- or the
  trades themselves, by trade id, when ``/trades`` has them -- emitted once each.
* A client-side limiter keeps orders under 10/s, 400/min and 5,000/day (it
  waits, it never drops) and the other calls under their own limits.
* An expired token (TokenException, HTTP 403) halts the broker: no more orders,
  listeners hear ``("halted", None, None)`` and ``halt_reason`` says why.

``kiteconnect`` is imported by the caller (the broker only needs the client
object), so importing this module does not require the ``kite`` extra.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

# the module, not the name: engines/brokers.py re-exports KiteBroker from here, and either
# module may be imported first
from ..engines import brokers as _engine_brokers
from ..engines.charges import ChargeSchedule
from ..feeds import IST, NS
from ..instruments import InstrumentTable, to_paise
from ..orders import ORDER_TYPES, PRODUCTS, Fill  # noqa: F401 - re-exported names
from .auth import redact

if TYPE_CHECKING:
    from ..engines.brokers import BrokerOrder

logger = logging.getLogger(__name__)

ORDER_LIMITS = ((10, 1.0), (400, 60.0), (5000, 86400.0))
QUOTE_LIMITS = ((1, 1.0),)
HISTORICAL_LIMITS = ((3, 1.0),)
OTHER_LIMITS = ((10, 1.0),)
FINAL = _engine_brokers.FINAL                # order states: one definition, in engines.brokers
RESTING = _engine_brokers.WORKING


@functools.cache
def _order_fields() -> frozenset:
    return frozenset(f.name for f in fields(_engine_brokers.BrokerOrder))


class RateLimiter:
    """Sliding-window limits ``((count, seconds), ...)``: ``acquire`` waits until
    one more call fits in every window, then records it.  Thread-safe; callers
    queue behind each other in order."""

    def __init__(self, limits, clock=time.monotonic, sleep=time.sleep, margin: float = 0.02):
        for n, w in limits:
            if not (isinstance(n, int) and n >= 1 and w > 0):
                raise ValueError(f"bad limit ({n!r}, {w!r})")
        # each window a little longer than the server's: its clock starts when the
        # request arrives, ours when it leaves
        self.limits = tuple((n, w + margin) for n, w in limits)
        self.clock, self.sleep = clock, sleep
        self._calls: list[deque[float]] = [deque() for _ in self.limits]
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> float:
        """Block until a call is allowed; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self.clock()
                wait = 0.0
                for (n, w), calls in zip(self.limits, self._calls):
                    while calls and calls[0] <= now - w:
                        calls.popleft()
                    if len(calls) >= n:
                        wait = max(wait, calls[0] + w - now)
                if wait <= 0:
                    for calls in self._calls:
                        calls.append(now)
                    self.waited += waited
                    return waited
                self.sleep(wait)
                waited += wait


@dataclass
class _Tracked:
    order: BrokerOrder
    tag: str
    exchange: str
    trigger_price: float | None = None
    price: float | None = None
    kite_status: str = ""
    filled: int = 0                 # quantity already emitted as fills
    value_paise: int = 0            # their value
    trade_ids: set = field(default_factory=set)
    returned: bool = True           # False while place_order has not handed it back
    announce: bool = False          # adopted by tag: the next events start with "placed"
    expect: tuple | None = None     # (quantity, price paise) of our modification in flight
    fills: list = field(default_factory=list)   # every fill, in order


@dataclass
class ReconcileReport:
    """Kite's account against the local portfolio.

    ``differences``: ``[{"symbol", "broker_quantity", "local_quantity",
    "broker_avg_price"}]`` where the quantities differ; ``unknown_open_orders``:
    resting orders at Kite this broker did not place; ``holdings``: CNC holdings
    (compared only with ``include_holdings``).  ``ok`` is True when nothing differs.
    """
    differences: list = field(default_factory=list)
    unknown_open_orders: list = field(default_factory=list)
    holdings: list = field(default_factory=list)
    broker_positions: dict = field(default_factory=dict)
    local_positions: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences and not self.unknown_open_orders

    def summary(self) -> str:
        if self.ok:
            return "reconciled: Kite and the portfolio agree"
        parts = [f"{d['symbol']}: Kite {d['broker_quantity']}, local {d['local_quantity']}"
                 for d in self.differences]
        parts += [f"unknown open order {o['order_id']} ({o['tradingsymbol']} "
                  f"{o['transaction_type']} {o['pending_quantity']})"
                  for o in self.unknown_open_orders]
        return "reconciliation mismatch: " + "; ".join(parts)

    def adoption_fills(self, ts_ns: int = 0) -> list[Fill]:
        """Fills that bring the local positions to Kite's, at Kite's average price
        (no fees): what "adopt the broker's truth" applies."""
        out = []
        for d in self.differences:
            delta = d["broker_quantity"] - d["local_quantity"]
            price = d["broker_avg_price"] or d.get("broker_last_price") or 0.0
            if not delta or price <= 0:
                continue
            out.append(Fill(f"reconcile-{d['symbol']}-{ts_ns}", "reconcile", d["symbol"],
                            "BUY" if delta > 0 else "SELL", abs(delta), to_paise(price), 0,
                            ts_ns))
        return out


def _names(exc) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def _code(exc) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def _is_token_error(exc) -> bool:
    return "TokenException" in _names(exc) or (_code(exc) == 403
                                               and "KiteException" in _names(exc))


def _is_rate_limited(exc) -> bool:
    return _code(exc) == 429


def _outcome_unknown(exc) -> bool:
    """The request may have been processed: a timeout, a dropped connection, a 5xx,
    an HTML page (DataException), no Content-Type (KeyError)."""
    names = _names(exc)
    if names & {"Timeout", "ReadTimeout", "ConnectionError", "ChunkedEncodingError",
                "DataException", "KeyError", "TimeoutError", "RemoteDisconnected"}:
        return True
    code = _code(exc)
    return code is not None and code >= 500


def parse_kite_time(value, default_ns: int) -> int:
    """Kite's IST timestamp (string or the client's naive datetime) -> ns UTC."""
    if isinstance(value, dt.datetime):
        t = value if value.tzinfo else value.replace(tzinfo=IST)
    elif isinstance(value, str) and len(value) >= 19:
        try:
            t = dt.datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
        except ValueError:
            return default_ns
    else:
        return default_ns
    return int(t.timestamp()) * NS + t.microsecond * 1000


class KiteBroker:
    """Routes orders to Zerodha Kite Connect and tracks them until final.

    Parameters
    ----------
    kite : kiteconnect.KiteConnect -- logged in (``set_access_token``); give it a
        short ``timeout`` so an unknown outcome is found quickly
    instruments : InstrumentTable -- exchange, tick and lot of every symbol
    ticker : KiteTickerFeed or None -- order updates and LTPs from the websocket
    variety : "regular" (or "amo", ...)
    market_protection : float -- sent with MARKET / SL-M orders (-1: Kite's automatic)
    charges : ChargeSchedule -- estimated costs on each fill (the contract note rules)
    order_limits, quote_limits, other_limits : ((count, seconds), ...)
    lookup_attempts, lookup_delay : looking an unknown placement up by tag
    retries_429, backoff_429 : re-sending a placement refused with HTTP 429
    tag_prefix : str -- alphanumeric; tags are ``prefix + sequence`` (<= 20 chars)
    clock : callable -> ns -- timestamps when Kite's are missing
    sleep : callable(seconds) -- waits (limiter, back-off)
    """

    live = True

    def __init__(self, kite, instruments: InstrumentTable | None = None, ticker=None,
                 variety: str = "regular", market_protection: float = -1,
                 charges: ChargeSchedule | None = None, order_limits=ORDER_LIMITS,
                 quote_limits=QUOTE_LIMITS, other_limits=OTHER_LIMITS,
                 lookup_attempts: int = 3, lookup_delay: float = 0.2, retries_429: int = 5,
                 backoff_429: float = 0.25, tag_prefix: str | None = None,
                 clock=time.time_ns, sleep=time.sleep):
        for m in ("place_order", "modify_order", "cancel_order", "orders", "trades", "ltp"):
            if not callable(getattr(kite, m, None)):
                raise ValueError(f"kite client needs a {m}() method")  # noqa: TRY004
        if not (market_protection == -1 or 0 < market_protection <= 100):
            raise ValueError(f"market_protection must be -1 or in (0, 100], "
                             f"got {market_protection!r}")
        prefix = tag_prefix if tag_prefix is not None else "hc" + secrets.token_hex(3)
        if not prefix.isalnum() or len(prefix) > 10:
            raise ValueError(f"tag_prefix must be <= 10 alphanumerics, got {prefix!r}")
        self.kite = kite
        self.instruments = instruments if instruments is not None else \
            InstrumentTable.nse_default()
        self.ticker = ticker
        self.variety = variety
        self.market_protection = market_protection
        self.charges = charges if charges is not None else ChargeSchedule()
        self.order_limiter = RateLimiter(order_limits, sleep=sleep)
        self.quote_limiter = RateLimiter(quote_limits, sleep=sleep)
        self.other_limiter = RateLimiter(other_limits, sleep=sleep)
        self.lookup_attempts, self.lookup_delay = lookup_attempts, lookup_delay
        self.retries_429, self.backoff_429 = retries_429, backoff_429
        self.tag_prefix = prefix
        self.clock, self.sleep = clock, sleep
        self._seq = 0
        self._lock = threading.RLock()
        self._orders: dict[str, _Tracked] = {}
        self._by_tag: dict[str, str] = {}
        self._pending_tags: dict[str, BrokerOrder] = {}  # outcome unknown: watched by poll()
        self._early: dict[str, list[dict]] = {}           # updates seen before place_order returned
        self._placing: set[str] = set()                   # tags of placements in flight
        self._listeners: list = []
        self.halted = False
        self.halt_reason = ""
        self.retried_429 = 0
        self.lookups = 0
        self._poller: threading.Thread | None = None
        self._stop_polling = threading.Event()
        if ticker is not None and callable(getattr(ticker, "add_order_listener", None)):
            ticker.add_order_listener(self.on_order_update)

    # ------------------------------------------------------------ listeners

    def add_listener(self, callback) -> None:
        """``callback(kind, order, fill)``: kind "fill" (with a Fill), "cancelled",
        "rejected", "modified", "placed" (an order found later, e.g. by its tag) or
        "halted" (``None, None``; see ``halt_reason``).  Called from the thread
        that learned it (order updates, polling), possibly before the
        ``place_order`` call that created the order has returned to its caller."""
        with self._lock:
            self._listeners.append(callback)

    def add_fill_listener(self, callback) -> None:
        """The older interface: ``callback(Fill)`` for fills only."""
        self.add_listener(lambda kind, order, fill: callback(fill) if kind == "fill" else None)

    def _notify(self, events) -> None:
        for kind, order, fill in events:
            for cb in list(self._listeners):
                try:
                    cb(kind, order, fill)
                except Exception:
                    logger.exception("broker listener %r failed on %s", cb, kind)

    def halt(self, reason: str) -> None:
        """Stop trading: no more placements; listeners hear ("halted", None, None)."""
        with self._lock:
            if self.halted:
                return
            self.halted, self.halt_reason = True, redact(reason)
        logger.error("KiteBroker halted: %s", self.halt_reason)
        self._notify([("halted", None, None)])

    # ------------------------------------------------------------ placing

    def _new_tag(self) -> str:
        with self._lock:
            self._seq += 1
            return f"{self.tag_prefix}{self._seq:08d}"[:20]

    def _order(self, **kw) -> BrokerOrder:
        names = _order_fields()
        return _engine_brokers.BrokerOrder(**{k: v for k, v in kw.items() if k in names})

    @staticmethod
    def _reject(order: BrokerOrder, why: str) -> BrokerOrder:
        order.status, order.message = "REJECTED", redact(why)
        return order

    def place_order(self, symbol, side, quantity, order_type="MARKET", price=None,
                    product="MIS", trigger_price=None, tag=None) -> BrokerOrder:
        """Send an order to Kite.  Returns it OPEN / TRIGGER PENDING once Kite
        accepted it (fills already known are on it), REJECTED with the reason
        otherwise.  Never raises for bad arguments or Kite errors."""
        order_type = str(order_type).upper()
        product = str(product).upper()
        order = self._order(order_id="", symbol=str(symbol), side=str(side),
                            quantity=quantity if isinstance(quantity, int) else 0,
                            order_type=order_type, product=product, tag=tag,
                            trigger_price=trigger_price)
        if self.halted:
            return self._reject(order, f"halted: {self.halt_reason}")
        from ..gate import check_order_shape        # the exchange's rules, written once
        inst = self.instruments.get(symbol)
        shape = check_order_shape(inst, symbol, side, quantity, order_type, price,
                                  trigger_price, product)
        if shape.rule:
            return self._reject(order, shape.message)
        assert inst is not None
        order.symbol = inst.symbol
        params = {"variety": self.variety, "exchange": inst.exchange,
                  "tradingsymbol": inst.symbol, "transaction_type": side,
                  "quantity": quantity, "product": product, "order_type": order_type,
                  "validity": "DAY"}
        if shape.price_paise:
            order.price_paise = shape.price_paise
            params["price"] = shape.price_paise / 100
        if shape.trigger_paise:
            params["trigger_price"] = shape.trigger_paise / 100
        if order_type in ("MARKET", "SL-M"):
            params["market_protection"] = self.market_protection
        tag = self._new_tag() if tag is None else str(tag)
        if not (tag.isalnum() and len(tag) <= 20):
            return self._reject(order, f"tag must be <= 20 alphanumerics, got {tag!r}")
        with self._lock:
            if tag in self._by_tag or tag in self._pending_tags:
                return self._reject(order, f"tag {tag} was already used (one order per tag)")
        params["tag"] = tag
        self._set(order, tag=tag)
        with self._lock:
            self._placing.add(tag)
        try:
            order_id, row, why = self._send(params, tag)
        finally:
            with self._lock:
                self._placing.discard(tag)
        if order_id is None:
            if why == "unknown":
                with self._lock:
                    self._pending_tags[tag] = order
                return self._reject(order, f"outcome unknown: no order with tag {tag} found "
                                           f"after {self.lookup_attempts} lookups; not re-sent "
                                           f"(poll() adopts it if it appears)")
            return self._reject(order, why)
        return self._register(order, order_id, tag, inst.exchange, params, row)

    @staticmethod
    def _set(order: BrokerOrder, **kw) -> None:
        names = _order_fields()
        for k, v in kw.items():
            if k in names:
                setattr(order, k, v)

    def _send(self, params: dict, tag: str):
        """-> (order_id, row or None, None) | (None, None, reason | "unknown")."""
        for attempt in range(self.retries_429 + 1):
            self.order_limiter.acquire()
            try:
                return str(self.kite.place_order(**params)), None, None
            except Exception as exc:  # noqa: BLE001 - any client error is classified below
                if _is_token_error(exc):
                    self.halt(f"Kite refused the access token ({exc}); log in again")
                    return None, None, f"halted: {self.halt_reason}"
                if _is_rate_limited(exc):
                    # refused before processing: safe to send again after a pause
                    self.retried_429 += 1
                    logger.warning("place_order: HTTP 429, retrying in %.2f s",
                                   self.backoff_429 * 2 ** attempt)
                    self.sleep(self.backoff_429 * 2 ** attempt)
                    continue
                if _outcome_unknown(exc):
                    logger.warning("place_order: outcome unknown (%s); looking up tag %s",
                                   type(exc).__name__, tag)
                    row = self._lookup_tag(tag)
                    if row is not None:
                        return str(row["order_id"]), row, None
                    return None, None, "unknown"
                return None, None, f"Kite rejected the order: {type(exc).__name__}: {exc}"
        return None, None, f"Kite kept answering 429 after {self.retries_429} retries"

    def _lookup_tag(self, tag: str) -> dict | None:
        for attempt in range(self.lookup_attempts):
            if attempt:
                self.sleep(self.lookup_delay)
            self.lookups += 1
            self.other_limiter.acquire()
            try:
                rows = self.kite.orders()
            except Exception as exc:  # noqa: BLE001 - any client error is classified below
                if _is_token_error(exc):
                    self.halt(f"Kite refused the access token ({exc}); log in again")
                    return None
                logger.warning("order lookup by tag failed (%s)", type(exc).__name__)
                continue
            for row in rows:
                if row.get("tag") == tag or tag in (row.get("tags") or ()):
                    return row
        return None

    def _register(self, order, order_id, tag, exchange, params, row) -> BrokerOrder:
        order.order_id = order_id
        order.status = "TRIGGER PENDING" if order.order_type in ("SL", "SL-M") else "OPEN"
        order.message = "placed with Kite"
        tr = _Tracked(order, tag, exchange, params.get("trigger_price"), params.get("price"),
                      returned=False)
        with self._lock:
            self._orders[order_id] = tr
            self._by_tag[tag] = order_id
            early = self._early.pop(order_id, [])
            if row is not None:
                early.append(row)
            for r in early:                   # fills so far go on the order, not to listeners
                self._apply_row(tr, r)
            tr.returned = True
        return order

    # ------------------------------------------------------------ modify / cancel

    def modify_order(self, order_id, quantity=None, price=None, trigger_price=None) -> bool:
        """Change a resting order; True if Kite accepted the change (listeners hear
        "modified")."""
        with self._lock:
            tr = self._orders.get(order_id)
        if self.halted or tr is None or tr.order.status not in RESTING:
            return False
        params = {"variety": self.variety, "order_id": order_id,
                  "order_type": tr.order.order_type}
        try:
            if quantity is not None:
                if isinstance(quantity, bool) or not isinstance(quantity, int) or \
                        quantity <= tr.filled:
                    return False
                params["quantity"] = quantity
            if price is not None:
                params["price"] = to_paise(price) / 100
            if trigger_price is not None:
                params["trigger_price"] = to_paise(trigger_price) / 100
        except ValueError:
            return False
        with self._lock:           # its echo on the order updates is ours, not news
            tr.expect = (quantity if quantity is not None else tr.order.quantity,
                         to_paise(price) if price is not None else tr.order.price_paise)
        self.order_limiter.acquire()
        try:
            self.kite.modify_order(**params)
        except Exception as exc:  # noqa: BLE001 - any client error: the change failed
            with self._lock:
                tr.expect = None
            if _is_token_error(exc):
                self.halt(f"Kite refused the access token ({exc}); log in again")
            logger.warning("modify_order(%s) failed: %s", order_id, redact(exc))
            return False
        with self._lock:
            tr.expect = None
            o = tr.order
            if quantity is not None:
                o.quantity = quantity
            if price is not None:
                o.price_paise = to_paise(price)
                tr.price = params["price"]
            if trigger_price is not None:
                tr.trigger_price = params["trigger_price"]
                self._set(o, trigger_price=params["trigger_price"])
        self._notify([("modified", tr.order, None)])
        return True

    def cancel_order(self, order_id) -> bool:
        """Ask Kite to cancel; True if the request was accepted.  The outcome
        (CANCELLED, or fills that won the race) arrives as events."""
        with self._lock:
            tr = self._orders.get(order_id)
        if tr is None or tr.order.status not in RESTING:
            return False
        self.order_limiter.acquire()
        try:
            self.kite.cancel_order(variety=self.variety, order_id=order_id)
            return True
        except Exception as exc:  # noqa: BLE001 - any client error is classified
            if _is_token_error(exc):
                self.halt(f"Kite refused the access token ({exc}); log in again")
            logger.warning("cancel_order(%s) failed: %s", order_id, redact(exc))
            return False

    # ------------------------------------------------------------ queries

    def get_order(self, order_id) -> BrokerOrder | None:
        with self._lock:
            tr = self._orders.get(order_id)
            return None if tr is None else tr.order

    def open_orders(self, symbol=None) -> list[BrokerOrder]:
        with self._lock:
            out = [t.order for t in self._orders.values() if t.order.status in RESTING]
        if symbol is None:
            return out
        inst = self.instruments.get(symbol)
        return [o for o in out if inst is not None and o.symbol == inst.symbol]

    def fills_of(self, order_id) -> list[Fill]:
        """Every fill of an order so far (``order.fills`` has only those known when
        ``place_order`` returned)."""
        with self._lock:
            tr = self._orders.get(order_id)
            return [] if tr is None else list(tr.fills)

    def fill_count(self) -> int:
        """Fills emitted or returned so far, over every order."""
        with self._lock:
            return sum(len(t.fills) for t in self._orders.values())

    def on_price(self, symbol, price) -> list:
        """The paper-broker hook a session calls on each price: Kite matches on the
        exchange, so there is nothing to do here."""
        return []

    def kite_status(self, order_id) -> str:
        """Kite's own last status of an order (transient ones included)."""
        with self._lock:
            tr = self._orders.get(order_id)
            return "" if tr is None else tr.kite_status

    def get_ltp(self, symbol) -> float | None:
        """From the ticker when it has the symbol, else one ``/quote/ltp`` call."""
        if self.ticker is not None:
            px = self.ticker.get_ltp(symbol)
            if px is not None:
                return px
        return self.get_ltps([symbol]).get(symbol)

    def get_ltps(self, symbols) -> dict:
        """{symbol: last price} in batched ``/quote/ltp`` calls (500 a call, 1 call/s)."""
        keys = {}
        for s in symbols:
            inst = self.instruments.get(s)
            if inst is not None:
                keys[f"{inst.exchange}:{inst.symbol}"] = s
        out = {}
        items = list(keys)
        for i in range(0, len(items), 500):
            self.quote_limiter.acquire()
            try:
                data = self.kite.ltp(items[i:i + 500])
            except Exception as exc:  # noqa: BLE001 - any client error is classified below
                if _is_token_error(exc):
                    self.halt(f"Kite refused the access token ({exc}); log in again")
                logger.warning("ltp failed: %s", redact(exc))
                continue
            for k, v in data.items():
                if k in keys:
                    out[keys[k]] = float(v["last_price"])
        return out

    # ------------------------------------------------------------ order state

    def on_postback(self, body, api_secret: str) -> bool:
        """A Kite postback (the JSON body your postback URL received): applied if its
        ``checksum`` is sha256(order_id + order_timestamp + api_secret); False (and
        ignored) otherwise."""
        if isinstance(body, (bytes, str)):
            try:
                body = json.loads(body)
            except ValueError:
                return False
        if not isinstance(body, dict):
            return False
        want = hashlib.sha256((str(body.get("order_id", "")) + str(body.get("order_timestamp", ""))
                               + api_secret).encode()).hexdigest()
        if not hmac.compare_digest(want, str(body.get("checksum", ""))):
            logger.warning("postback with a bad checksum ignored (order %s)",
                           body.get("order_id"))
            return False
        self.on_order_update(body)
        return True

    def on_order_update(self, row: dict) -> None:
        """One order update (the ticker's text frame or a postback body)."""
        if not isinstance(row, dict) or "order_id" not in row:
            return
        oid = str(row["order_id"])
        with self._lock:
            tr = self._orders.get(oid)
            if tr is None:
                tr = self._adopt(row)
            if tr is None:
                tag = str(row.get("tag") or "")
                if tag in self._placing or (tag.startswith(self.tag_prefix)
                                            and len(self._early) < 10_000):
                    self._early.setdefault(oid, []).append(row)   # place_order in flight
                return
            events = self._apply_row(tr, row)
        self._notify(events)

    def _adopt(self, row: dict) -> _Tracked | None:
        """An order whose placement outcome was unknown shows up: track it."""
        tag = row.get("tag")
        order = self._pending_tags.pop(tag, None) if tag else None
        if order is None:
            return None
        order.order_id = str(row["order_id"])
        order.status = "OPEN"
        order.message = "found by tag after an unknown placement outcome"
        tr = _Tracked(order, str(tag), row.get("exchange", "NSE"), announce=True)
        self._orders[order.order_id] = tr
        self._by_tag[str(tag)] = order.order_id
        logger.warning("order %s (tag %s) found after an unknown placement outcome",
                       order.order_id, tag)
        return tr

    def _fill_event(self, tr: _Tracked, fill_id: str, qty: int, px: int, ts: int) -> Fill:
        o = tr.order
        charges = self.charges.compute(o.side, qty, px, o.product)
        fee = charges.pop("total")
        fill = Fill(fill_id, o.order_id, o.symbol, o.side, qty, px, fee, ts, charges)
        tr.filled += qty
        tr.value_paise += qty * px
        o.filled = tr.filled
        o.value_paise = tr.value_paise
        o.fees_paise += fee
        tr.fills.append(fill)
        if not tr.returned:
            # order.fills holds what place_order's caller publishes itself; later fills
            # reach it through the listeners only (never both: no double publication)
            o.fills.append(fill)
        return fill

    def _apply_row(self, tr: _Tracked, row: dict) -> list:
        """Fold one Kite order row into the tracked order; the events it makes."""
        events: list = []
        if tr.announce:
            tr.announce = False
            events.append(("placed", tr.order, None))
        o = tr.order
        status = str(row.get("status") or "")
        tr.kite_status = status
        fq = int(row.get("filled_quantity") or 0)
        if fq > tr.filled:
            avg = float(row.get("average_price") or 0.0)
            delta = fq - tr.filled
            if avg > 0:
                cum = round(avg * 100 * fq)
                px = round((cum - tr.value_paise) / delta)
                if px <= 0:                       # rounding noise: use the average itself
                    px = to_paise(avg)
                ts = parse_kite_time(row.get("exchange_update_timestamp")
                                     or row.get("exchange_timestamp")
                                     or row.get("order_timestamp"), int(self.clock()))
                fill = self._fill_event(tr, f"{o.order_id}-{fq}", delta, px, ts)
                events.append(("fill", o, fill))
        if o.status in FINAL:
            return self._returned(tr, events)
        # a modification seen on the exchange (ours was applied when Kite accepted it)
        qty = int(row.get("quantity") or o.quantity)
        price = float(row.get("price") or 0.0)
        if status in RESTING and (qty != o.quantity or (o.order_type in ("LIMIT", "SL")
                                                        and price and to_paise(price)
                                                        != o.price_paise)):
            ours = tr.expect is not None and tr.expect == (qty, to_paise(price) if price
                                                           else o.price_paise)
            o.quantity = qty
            if price:
                o.price_paise = to_paise(price)
            if not ours:
                events.append(("modified", o, None))
        if status == "COMPLETE":
            o.status = "COMPLETE"
        elif status == "CANCELLED":
            o.status = "CANCELLED"
            o.message = redact(row.get("status_message") or "cancelled")
            events.append(("cancelled", o, None))
        elif status == "REJECTED":
            o.status = "REJECTED"
            o.message = redact(row.get("status_message") or "rejected by Kite")
            events.append(("rejected", o, None))
        elif status == "OPEN" and o.status == "TRIGGER PENDING":
            o.status = "OPEN"                     # the stop triggered
        return self._returned(tr, events)

    @staticmethod
    def _returned(tr: _Tracked, events: list) -> list:
        # before place_order returns, events stay on the order (the caller reads it)
        return events if tr.returned else []

    def _apply_trades(self, tr: _Tracked, trades: list[dict]) -> list:
        """Fills from Kite's trade rows (exact prices, trade ids), beyond what the
        cumulative updates already produced."""
        events = []
        running = 0
        for t in sorted(trades, key=lambda t: (str(t.get("fill_timestamp") or ""),
                                               str(t.get("trade_id")))):
            tid = str(t.get("trade_id"))
            q = int(t.get("quantity") or 0)
            running += q
            if tid in tr.trade_ids or q <= 0:
                continue
            tr.trade_ids.add(tid)
            new = running - max(tr.filled, running - q)
            if new <= 0:
                continue                            # already counted from an update
            px = to_paise(float(t["average_price"]))
            ts = parse_kite_time(t.get("fill_timestamp") or t.get("exchange_timestamp"),
                                 int(self.clock()))
            fill = self._fill_event(tr, tid if new == q else f"{tid}-{new}", new, px, ts)
            events.append(("fill", tr.order, fill))
        return self._returned(tr, events)

    def poll(self) -> int:
        """The fallback: fold ``/trades`` and ``/orders`` into the tracked orders
        (and adopt orders found by tag).  Returns the events it produced."""
        if self.halted:
            return 0
        try:
            self.other_limiter.acquire()
            trades = self.kite.trades()
            self.other_limiter.acquire()
            rows = self.kite.orders()
        except Exception as exc:  # noqa: BLE001 - any client error is classified
            if _is_token_error(exc):
                self.halt(f"Kite refused the access token ({exc}); log in again")
            else:
                logger.warning("poll failed: %s", redact(exc))
            return 0
        by_order: dict[str, list] = {}
        for t in trades:
            by_order.setdefault(str(t.get("order_id")), []).append(t)
        events = []
        with self._lock:
            for row in rows:
                oid = str(row.get("order_id"))
                tr = self._orders.get(oid) or self._adopt(row)
                if tr is None:
                    continue
                if tr.announce:
                    tr.announce = False
                    events.append(("placed", tr.order, None))
                if oid in by_order:
                    events += self._apply_trades(tr, by_order[oid])
                events += self._apply_row(tr, row)
        self._notify(events)
        return len(events)

    def start_polling(self, interval: float = 2.0) -> None:
        """Run ``poll()`` every ``interval`` seconds on a daemon thread."""
        if self._poller is not None:
            return
        self._stop_polling.clear()

        def loop():
            while not self._stop_polling.wait(interval):
                self.poll()
        self._poller = threading.Thread(target=loop, name="kite-broker-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop_polling.set()
        if self._poller is not None:
            self._poller.join(5)
            self._poller = None

    # ------------------------------------------------------------ reconciliation

    def reconcile(self, portfolio, include_holdings: bool = False) -> ReconcileReport:
        """Compare Kite's net positions (and open orders; holdings too with
        ``include_holdings``) with ``portfolio`` (a PortfolioService)."""
        report = ReconcileReport()
        self.other_limiter.acquire()
        positions = self.kite.positions()
        self.other_limiter.acquire()
        holdings = self.kite.holdings()
        self.other_limiter.acquire()
        rows = self.kite.orders()
        broker: dict[str, dict] = {}
        for p in positions.get("net", []):
            b = broker.setdefault(p["tradingsymbol"], {"qty": 0, "value": 0.0, "last": 0.0})
            b["qty"] += int(p["quantity"])
            b["value"] += int(p["quantity"]) * float(p.get("average_price") or 0.0)
            b["last"] = float(p.get("last_price") or 0.0)
        report.holdings = [{"symbol": h["tradingsymbol"],
                            "quantity": int(h.get("quantity", 0)) + int(h.get("t1_quantity", 0)),
                            "average_price": float(h.get("average_price") or 0.0)}
                           for h in holdings]
        if include_holdings:
            for h in report.holdings:
                b = broker.setdefault(h["symbol"], {"qty": 0, "value": 0.0, "last": 0.0})
                b["qty"] += h["quantity"]
                b["value"] += h["quantity"] * h["average_price"]
        local = {p["symbol"]: int(p["quantity"])
                 for p in portfolio.get_snapshot()["positions"]}
        report.broker_positions = {s: b["qty"] for s, b in broker.items() if b["qty"]}
        report.local_positions = {s: q for s, q in local.items() if q}
        for sym in sorted(set(report.broker_positions) | set(report.local_positions)):
            bq, lq = report.broker_positions.get(sym, 0), report.local_positions.get(sym, 0)
            if bq != lq:
                b = broker.get(sym, {"qty": 0, "value": 0.0, "last": 0.0})
                report.differences.append({
                    "symbol": sym, "broker_quantity": bq, "local_quantity": lq,
                    "broker_avg_price": round(b["value"] / bq, 4) if bq else 0.0,
                    "broker_last_price": b["last"]})
        with self._lock:
            known = set(self._orders)
        report.unknown_open_orders = [
            {k: r.get(k) for k in ("order_id", "tradingsymbol", "transaction_type", "status",
                                   "quantity", "pending_quantity", "tag")}
            for r in rows if r.get("status") in RESTING and str(r.get("order_id")) not in known]
        return report

    def require_reconciled(self, portfolio, adopt: bool = False,
                           include_holdings: bool = False) -> ReconcileReport:
        """Reconcile before trading.  On a mismatch: with ``adopt`` apply
        ``adoption_fills`` to the portfolio (Kite's truth; unknown open orders
        still halt), otherwise halt the broker (fail closed).  Returns the report."""
        report = self.reconcile(portfolio, include_holdings)
        if report.ok:
            return report
        if adopt and not report.unknown_open_orders:
            for fill in report.adoption_fills(int(self.clock())):
                portfolio.on_fill(fill)
            logger.warning("adopted Kite's positions: %s", report.summary())
            return report
        self.halt(report.summary() + ("" if adopt else
                                      " (start with adoption to take Kite's positions)"))
        return report
