"""A faithful local Kite Connect server: REST + ticker websocket on loopback.

For tests and dry runs.  The real ``kiteconnect.KiteConnect(api_key,
root=server.url)`` client talks to it exactly as it talks to
``api.kite.trade``: the same routes, ``{"status": ..., "data": ...}``
envelopes, error types and HTTP codes, order statuses, timestamps (IST
``YYYY-MM-DD HH:MM:SS``), and on the websocket the same heartbeats (1-byte
binary frames), binary tick packets (big-endian LTP / quote / full / index
layouts) and ``{"type": "order", "data": ...}`` text frames.

The matching engine is scriptable per test::

    with KiteServer() as srv:
        kite = KiteConnect(srv.api_key, root=srv.url)
        kite.set_access_token(srv.access_token)
        srv.script("partial", quantity=4)          # the next order fills 4, rests
        srv.inject("POST", "/orders", "timeout")   # ... and its response never comes
        srv.push_ticks({"RELIANCE": 1500.0})       # LTP packets to subscribers
        srv.silence()                              # socket open, nothing sent
        srv.drop_connections()                     # abnormal close (1006)
        srv.expire_token()                         # 403 TokenException from now on

Run it by hand with ``python -m hftcore.kite.server --port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import logging
import math
import random
import secrets
import socket
import struct
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from ..feeds import IST
from ..instruments import InstrumentTable

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
               "tick_size,lot_size,instrument_type,segment,exchange")

# Instruments added to the bundled NSE table so the dump has BSE, NFO and an index.
EXTRA_INSTRUMENTS = (
    # token, exchange_token, symbol, name, last, expiry, strike, tick, lot, type, segment, exch
    (128083204, 500325, "RELIANCE", "RELIANCE INDUSTRIES", 1545.3, "", 0, 0.05, 1, "EQ",
     "BSE", "BSE"),
    (128028676, 500112, "SBIN", "STATE BANK OF INDIA", 812.4, "", 0, 0.05, 1, "EQ", "BSE",
     "BSE"),
    (13368834, 52222, "NIFTY26DECFUT", "NIFTY", 24210.0, "2026-12-31", 0, 0.1, 75, "FUT",
     "NFO-FUT", "NFO"),
    (13369090, 52223, "NIFTY26DEC24000CE", "NIFTY", 320.5, "2026-12-31", 24000, 0.05, 75,
     "CE", "NFO-OPT", "NFO"),
    (256265, 1001, "NIFTY 50", "NIFTY 50", 24180.0, "", 0, 0.0, 0, "EQ", "INDICES", "NSE"),
)

ORDER_FIELDS = ("exchange", "tradingsymbol", "transaction_type", "quantity", "product",
                "order_type", "price", "trigger_price", "validity", "validity_ttl",
                "disclosed_quantity", "tag", "market_protection", "autoslice", "algo_id")


def ist_now_str(ts: float | None = None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in IST (Kite's timestamp format)."""
    t = dt.datetime.fromtimestamp(time.time() if ts is None else ts, IST)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def price_divisor(token: int) -> float:
    """Kite's price scale by segment (the token's low byte)."""
    seg = token & 0xFF
    if seg == 3:
        return 1e7
    if seg in (6, 12):
        return 1e4
    return 100.0


class KiteError(Exception):
    """An error the server answers with Kite's error envelope."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


@dataclass
class TickState:
    """The server's market state of one instrument (what the packets carry)."""
    token: int
    last_price: float
    last_quantity: int = 0
    average_price: float = 0.0
    volume: int = 0
    buy_quantity: int = 0
    sell_quantity: int = 0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    last_trade_time: int = 0
    oi: int = 0
    exchange_ts: int = 0
    depth: list = field(default_factory=list)   # [(qty, price, orders)] * 10: bids then asks


@dataclass
class _Injection:
    method: str
    path: str
    kind: str
    times: int
    process: bool


class KiteServer:
    """A local Kite Connect REST + ticker server with a scriptable matching engine.

    Parameters
    ----------
    api_key, api_secret : str -- the credentials it accepts (checksums use the secret)
    instruments : InstrumentTable or None -- the NSE table it serves (the bundled one
        by default) plus a few BSE / NFO / index rows
    heartbeat_s : float -- seconds between 1-byte heartbeat frames
    fill_delay : float -- seconds between a placement's response and its first update
    timeout_sleep : float -- how long a scripted ``timeout`` holds the response
    orders_per_second : int -- placements over this in any second get HTTP 429
    """

    def __init__(self, api_key: str = "kitetestkey", api_secret: str = "kitetestsecret",
                 instruments: InstrumentTable | None = None, host: str = "127.0.0.1",
                 port: int = 0, ws_port: int = 0, heartbeat_s: float = 1.0,
                 fill_delay: float = 0.005, timeout_sleep: float = 2.0,
                 orders_per_second: int = 10, orders_per_minute: int = 400,
                 user_id: str = "AB1234"):
        self.api_key, self.api_secret, self.user_id = api_key, api_secret, user_id
        self.host, self._port, self._ws_port = host, port, ws_port
        self.heartbeat_s, self.fill_delay = heartbeat_s, fill_delay
        self.timeout_sleep = timeout_sleep
        self.orders_per_second, self.orders_per_minute = orders_per_second, orders_per_minute
        self.request_token = secrets.token_hex(16)
        self.access_token = secrets.token_hex(16)
        self.token_valid = True
        self._lock = threading.RLock()
        self._order_seq = itertools.count(1)
        self._trade_seq = itertools.count(1)
        self.orders: dict[str, list[dict]] = {}          # order_id -> history (last = current)
        self.trades: list[dict] = []
        self.placements: list[float] = []                # monotonic times of accepted placements
        self.rejected_429 = 0
        self.requests: list[tuple[str, str]] = []        # (method, path) of every request
        self.positions: dict[tuple[str, str, str], dict] = {}  # (exchange, symbol, product) -> row
        self.holdings: list[dict] = []
        self._scripts: deque[dict] = deque()
        self._injections: list[_Injection] = []
        self.cancel_mode = "cancel"                      # or "pending_then_fill"
        self._rows: list[tuple] = []
        self.ticks: dict[int, TickState] = {}
        self._by_symbol: dict[tuple[str, str], tuple] = {}
        self._by_token: dict[int, tuple] = {}
        self._load_instruments(instruments or InstrumentTable.nse_default())
        # websocket state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws_thread: threading.Thread | None = None
        self._ws_server: Any = None
        self._clients: dict = {}                         # connection -> {token: mode}
        self.silent = False
        self.ws_connects = 0
        self.ws_refused = 0
        self.subscribe_log: list[tuple[str, list]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> KiteServer:
        handler = type("Handler", (_Handler,), {"kite": self})
        self._httpd = ThreadingHTTPServer((self.host, self._port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._http_thread = threading.Thread(target=self._httpd.serve_forever,
                                             kwargs={"poll_interval": 0.05},
                                             name="kite-http", daemon=True)
        self._http_thread.start()
        ready = threading.Event()
        self._ws_thread = threading.Thread(target=self._ws_main, args=(ready,),
                                           name="kite-ws", daemon=True)
        self._ws_thread.start()
        if not ready.wait(10):
            raise RuntimeError("websocket server did not start")
        return self

    def stop(self) -> None:
        self._closed = True
        for t in list(self._timers):
            t.cancel()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._loop is not None and self._ws_server is not None:
            fut = asyncio.run_coroutine_threadsafe(self._ws_close(), self._loop)
            try:
                fut.result(5)
            except Exception:                                 # pragma: no cover
                logger.exception("websocket server close failed")
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._ws_thread is not None:
                self._ws_thread.join(5)

    def __enter__(self) -> KiteServer:  # noqa: PYI034 - Self needs Python 3.11
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """REST root for ``KiteConnect(api_key, root=url)``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """Ticker root; clients add ``?api_key=...&access_token=...``."""
        return f"ws://{self.host}:{self._ws_port}"

    # ------------------------------------------------------------ instruments / prices

    def _load_instruments(self, table: InstrumentTable) -> None:
        rows = []
        for inst in table:
            seg = inst.exchange
            rows.append((inst.instrument_token, inst.instrument_token >> 8, inst.symbol,
                         inst.name, inst.last_price, "", 0, inst.tick_size, inst.lot_size,
                         inst.instrument_type, seg, inst.exchange))
        rows.extend(EXTRA_INSTRUMENTS)
        for r in rows:
            if not r[0]:
                continue
            self._rows.append(r)
            self._by_symbol[(r[11], r[2])] = r
            self._by_token[r[0]] = r
            last = float(r[4]) or 100.0
            self.ticks[r[0]] = TickState(r[0], last, open=last, high=last, low=last, close=last)

    def token_of(self, symbol: str, exchange: str = "NSE") -> int:
        """The instrument_token of ``exchange:symbol`` (KeyError if unknown)."""
        if ":" in symbol:
            exchange, symbol = symbol.split(":", 1)
        return self._by_symbol[(exchange, symbol.upper())][0]

    def instruments_csv(self, exchange: str | None = None) -> bytes:
        """The instruments dump (uncompressed CSV bytes)."""
        out = io.StringIO()
        out.write(CSV_COLUMNS + "\n")
        for r in self._rows:
            if exchange and r[11] != exchange:
                continue
            out.write(",".join(str(x) for x in r) + "\n")
        return out.getvalue().encode()

    def set_price(self, symbol_or_token, price: float) -> None:
        """Set an instrument's LTP without sending a tick."""
        tok = self._resolve(symbol_or_token)
        with self._lock:
            self.ticks[tok].last_price = float(price)

    def _resolve(self, key) -> int:
        return key if isinstance(key, int) else self.token_of(key)

    # ------------------------------------------------------------ scripting

    def script(self, action: str = "fill", **kw) -> None:
        """What the matching engine does with the next placement (FIFO).

        ``fill`` (all at ``price=`` or the LTP / limit), ``partial`` (``quantity=``
        filled, the rest rests OPEN), ``reject`` (accepted with HTTP 200, then a
        REJECTED update with ``message=``), ``rest`` (stays OPEN / TRIGGER PENDING),
        ``cancel`` (accepted, then cancelled by the exchange, e.g. IOC).
        """
        if action not in ("fill", "partial", "reject", "rest", "cancel"):
            raise ValueError(f"unknown action {action!r}")
        self._scripts.append(dict(kw, action=action))

    def inject(self, method: str, path: str, kind: str, times: int = 1,
               process: bool | None = None) -> None:
        """Make the next ``times`` requests ``method path*`` misbehave.

        ``kind``: ``429`` (NetworkException "Too many requests"), ``timeout`` (no
        response for ``timeout_sleep`` s), ``html500`` (an HTML error page),
        ``no_content_type`` (a 200 without Content-Type), ``503`` (a JSON
        NetworkException), ``500`` (a JSON GeneralException).  ``process``: whether
        the request takes effect anyway (default: yes for timeout, html500 and
        no_content_type, no for the others).
        """
        if kind not in ("429", "timeout", "html500", "no_content_type", "503", "500"):
            raise ValueError(f"unknown injection {kind!r}")
        if process is None:
            process = kind in ("timeout", "html500", "no_content_type")
        with self._lock:
            self._injections.append(_Injection(method.upper(), path, kind, times, process))

    def _take_injection(self, method: str, path: str) -> _Injection | None:
        with self._lock:
            for inj in self._injections:
                if inj.method == method and path.startswith(inj.path) and inj.times > 0:
                    inj.times -= 1
                    if inj.times == 0:
                        self._injections.remove(inj)
                    return inj
        return None

    def expire_token(self) -> None:
        """The daily expiry: REST answers 403 TokenException, websocket upgrades 403."""
        self.token_valid = False

    def silence(self, on: bool = True) -> None:
        """Keep sockets open but send nothing (no heartbeats, ticks or order updates)."""
        self.silent = on

    def drop_connections(self) -> None:
        """Abort every websocket connection (the client sees an abnormal close, 1006)."""
        if self._loop is None:
            return

        def abort():
            for ws in list(self._clients):
                ws.transport.abort()
        self._loop.call_soon_threadsafe(abort)

    def set_position(self, symbol: str, quantity: int, average_price: float,
                     product: str = "MIS", exchange: str = "NSE") -> None:
        """Seed an account position (as if traded before this process started)."""
        with self._lock:
            self.positions[(exchange, symbol, product)] = self._position_row(
                exchange, symbol, product, quantity, average_price)

    def add_holding(self, symbol: str, quantity: int, average_price: float,
                    exchange: str = "NSE") -> None:
        with self._lock:
            tok = self.token_of(symbol, exchange)
            self.holdings.append({
                "tradingsymbol": symbol, "exchange": exchange, "instrument_token": tok,
                "isin": "", "product": "CNC", "price": 0, "quantity": quantity,
                "t1_quantity": 0, "realised_quantity": quantity, "authorised_quantity": 0,
                "opening_quantity": quantity, "collateral_quantity": 0, "collateral_type": "",
                "average_price": average_price, "last_price": self.ticks[tok].last_price,
                "close_price": self.ticks[tok].close, "pnl": 0.0, "day_change": 0.0,
                "day_change_percentage": 0.0})

    # ------------------------------------------------------------ records for tests

    def all_orders(self) -> list[dict]:
        """The current row of every order, in placement order."""
        with self._lock:
            return [dict(h[-1]) for h in self.orders.values()]

    def orders_with_tag(self, tag: str) -> list[dict]:
        return [o for o in self.all_orders() if o.get("tag") == tag]

    def max_orders_in_window(self, seconds: float = 1.0) -> int:
        """Most accepted placements inside any ``seconds``-long window."""
        with self._lock:
            ts = sorted(self.placements)
        best, j = 0, 0
        for i, t in enumerate(ts):
            while ts[j] <= t - seconds:
                j += 1
            best = max(best, i - j + 1)
        return best

    # ------------------------------------------------------------ REST dispatch

    def _authorised(self, headers) -> None:
        auth = headers.get("Authorization", "")
        want = f"token {self.api_key}:{self.access_token}"
        if not auth:
            raise KiteError(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        if not self.token_valid or auth != want:
            raise KiteError(403, "TokenException", "Incorrect `api_key` or `access_token`.")

    def handle(self, method: str, path: str, query: dict, form: dict, headers):
        """One request -> (status, content_type, body bytes, headers dict)."""
        with self._lock:
            self.requests.append((method, path))
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["session", "token"] and method == "POST":
            return self._json(200, self._session_token(form))
        if parts[:1] == ["instruments"] and (len(parts) <= 2) and method == "GET":
            exchange = parts[1] if len(parts) == 2 else None
            body = gzip.compress(self.instruments_csv(exchange))
            return 200, "text/csv", body, {"Content-Encoding": "gzip"}
        self._authorised(headers)
        if parts[:1] == ["orders"]:
            return self._json(200, self._orders_route(method, parts[1:], form))
        if parts == ["trades"] and method == "GET":
            with self._lock:
                return self._json(200, [dict(t) for t in self.trades])
        if parts == ["portfolio", "positions"] and method == "GET":
            return self._json(200, self._positions())
        if parts == ["portfolio", "holdings"] and method == "GET":
            with self._lock:
                return self._json(200, [dict(h) for h in self.holdings])
        if parts[:1] == ["quote"] and method == "GET":
            return self._json(200, self._quote(parts[1] if len(parts) > 1 else "full",
                                               query.get("i", [])))
        if parts[:2] == ["instruments", "historical"] and len(parts) == 4 and method == "GET":
            return self._json(200, self._historical(parts[2], parts[3], query))
        if parts == ["user", "profile"] and method == "GET":
            return self._json(200, {"user_id": self.user_id, "user_name": "Test User",
                                    "user_shortname": "Test", "email": "test@example.com",
                                    "user_type": "individual", "broker": "ZERODHA",
                                    "exchanges": ["NSE", "BSE", "NFO"],
                                    "products": ["CNC", "NRML", "MIS"],
                                    "order_types": ["MARKET", "LIMIT", "SL", "SL-M"]})
        if parts[:1] in (["margins"], ["user"]) and method == "GET":
            seg = {"enabled": True, "net": 1_000_000.0,
                   "available": {"cash": 1_000_000.0, "live_balance": 1_000_000.0,
                                 "opening_balance": 1_000_000.0, "collateral": 0.0,
                                 "intraday_payin": 0.0, "adhoc_margin": 0.0},
                   "utilised": {"debits": 0.0, "exposure": 0.0, "m2m_realised": 0.0,
                                "m2m_unrealised": 0.0, "span": 0.0}}
            return self._json(200, {"equity": seg, "commodity": dict(seg, net=0.0)})
        raise KiteError(404, "GeneralException", "Route not found")

    @staticmethod
    def _json(status: int, data) -> tuple:
        body = json.dumps({"status": "success", "data": data}).encode()
        return status, "application/json", body, {}

    def _session_token(self, form: dict) -> dict:
        api_key = form.get("api_key", [""])[0]
        req = form.get("request_token", [""])[0]
        checksum = form.get("checksum", [""])[0]
        want = hashlib.sha256((self.api_key + self.request_token + self.api_secret)
                              .encode()).hexdigest()
        if api_key != self.api_key or req != self.request_token or checksum != want:
            raise KiteError(403, "TokenException", "Token is invalid or has expired.")
        self.access_token = secrets.token_hex(16)
        self.token_valid = True
        self.request_token = secrets.token_hex(16)       # a request token is single-use
        return {"user_id": self.user_id, "user_name": "Test User", "user_shortname": "Test",
                "email": "test@example.com", "user_type": "individual", "broker": "ZERODHA",
                "exchanges": ["NSE", "BSE", "NFO"], "products": ["CNC", "NRML", "MIS"],
                "order_types": ["MARKET", "LIMIT", "SL", "SL-M"], "api_key": self.api_key,
                "access_token": self.access_token, "public_token": secrets.token_hex(8),
                "refresh_token": "", "login_time": ist_now_str(), "avatar_url": None,
                "meta": {"demat_consent": "consent"}}

    # ------------------------------------------------------------ orders

    def _orders_route(self, method: str, rest: list[str], form: dict):
        if method == "GET" and not rest:
            with self._lock:
                return [dict(h[-1]) for h in self.orders.values()]
        if method == "GET" and len(rest) == 1:
            with self._lock:
                hist = self.orders.get(rest[0])
                if hist is None:
                    raise KiteError(400, "InputException", "Couldn't find that `order_id`.")
                return [dict(h) for h in hist]
        if method == "GET" and len(rest) == 2 and rest[1] == "trades":
            with self._lock:
                if rest[0] not in self.orders:
                    raise KiteError(400, "InputException", "Couldn't find that `order_id`.")
                return [dict(t) for t in self.trades if t["order_id"] == rest[0]]
        if method == "POST" and len(rest) == 1:
            return {"order_id": self._place(rest[0], form)}
        if method == "PUT" and len(rest) == 2:
            return {"order_id": self._modify(rest[1], form)}
        if method == "DELETE" and len(rest) == 2:
            return {"order_id": self._cancel(rest[1])}
        raise KiteError(405, "GeneralException", "Method not allowed")

    def _rate_check(self) -> None:
        now = time.monotonic()
        with self._lock:
            n = len(self.placements)                     # appended in time order
            last_s = n - bisect.bisect_right(self.placements, now - 1.0)
            last_m = n - bisect.bisect_right(self.placements, now - 60.0)
            if last_s >= self.orders_per_second or last_m >= self.orders_per_minute:
                self.rejected_429 += 1
                raise KiteError(429, "NetworkException", "Too many requests")

    def _place(self, variety: str, form: dict) -> str:
        if variety not in ("regular", "amo", "co", "iceberg", "auction"):
            raise KiteError(400, "InputException", f"Invalid `variety`: {variety}")
        f = {k: v[0] for k, v in form.items()}
        self._rate_check()
        exchange, symbol = f.get("exchange", ""), f.get("tradingsymbol", "")
        inst = self._by_symbol.get((exchange, symbol))
        if inst is None:
            raise KiteError(400, "InputException", "Invalid `tradingsymbol`.")
        side = f.get("transaction_type")
        if side not in ("BUY", "SELL"):
            raise KiteError(400, "InputException", "Invalid `transaction_type`.")
        otype = f.get("order_type")
        if otype not in ("MARKET", "LIMIT", "SL", "SL-M"):
            raise KiteError(400, "InputException", "Invalid `order_type`.")
        product = f.get("product")
        if product not in ("CNC", "NRML", "MIS", "MTF"):
            raise KiteError(400, "InputException", "Invalid `product`.")
        try:
            qty = int(f.get("quantity", ""))
        except ValueError:
            raise KiteError(400, "InputException", "Invalid `quantity`.") from None
        if qty <= 0 or qty % max(int(inst[8]), 1):
            raise KiteError(400, "InputException", "Quantity should be a multiple of lot size.")
        price = _num(f.get("price"), "price")
        trigger = _num(f.get("trigger_price"), "trigger_price")
        if otype in ("LIMIT", "SL") and not price:
            raise KiteError(400, "InputException", "Invalid `price`.")
        if otype in ("SL", "SL-M") and not trigger:
            raise KiteError(400, "InputException", "Invalid `trigger_price`.")
        mp = f.get("market_protection")
        if otype in ("MARKET", "SL-M"):
            if mp is None:
                raise KiteError(400, "InputException",
                                "Market orders without market protection are not allowed via "
                                "API. Please set market protection or use a Limit order.")
            try:
                mpv = float(mp)
            except ValueError:
                raise KiteError(400, "InputException",
                                "Invalid `market_protection`.") from None
            if not (mpv == -1 or 0 < mpv <= 100):
                raise KiteError(400, "InputException", "Invalid `market_protection`.")
        tag = f.get("tag")
        if tag is not None and (len(tag) > 20 or not tag.isalnum()):
            raise KiteError(400, "InputException",
                            "Tag length should be less than 20 and alphanumeric.")
        now = time.time()
        with self._lock:
            oid = str(251127000000000 + next(self._order_seq))
            self.placements.append(time.monotonic())
            row = {
                "placed_by": self.user_id, "order_id": oid,
                "exchange_order_id": str(1100000000000000 + int(oid) % 10**9),
                "parent_order_id": None, "status": "OPEN", "status_message": None,
                "status_message_raw": None, "order_timestamp": ist_now_str(now),
                "exchange_update_timestamp": ist_now_str(now),
                "exchange_timestamp": ist_now_str(now), "variety": variety,
                "modified": False, "exchange": exchange, "tradingsymbol": symbol,
                "instrument_token": inst[0], "order_type": otype, "transaction_type": side,
                "validity": f.get("validity", "DAY"), "validity_ttl": 0, "product": product,
                "quantity": qty, "disclosed_quantity": 0, "price": price or 0.0,
                "trigger_price": trigger or 0.0, "average_price": 0.0, "filled_quantity": 0,
                "pending_quantity": qty, "cancelled_quantity": 0,
                "market_protection": float(mp) if mp is not None else 0,
                "meta": {}, "tag": tag, "tags": [tag] if tag else [], "guid": secrets.token_hex(6),
            }
            row["status"] = "TRIGGER PENDING" if otype in ("SL", "SL-M") else "OPEN"
            self.orders[oid] = [dict(row, status="PUT ORDER REQ RECEIVED"),
                                dict(row, status="VALIDATION PENDING"),
                                dict(row, status="OPEN PENDING"), row]
            script = self._scripts.popleft() if self._scripts else {"action": "auto"}
        self._later(self._react, oid, script)
        return oid

    def _later(self, fn, *args) -> None:
        if self._closed:
            return
        t = threading.Timer(self.fill_delay, fn, args)
        t.daemon = True
        self._timers = [x for x in self._timers if x.is_alive()] + [t]
        t.start()

    def _react(self, oid: str, script: dict) -> None:
        with self._lock:
            row = self.orders[oid][-1]
            self._send_update(row)                       # the OPEN / TRIGGER PENDING update
            action = script["action"]
            if action == "auto":
                action = "fill" if self._marketable(row) else "rest"
            if action == "fill":
                self._fill(oid, row["pending_quantity"], script.get("price"))
            elif action == "partial":
                self._fill(oid, min(int(script.get("quantity", 1)), row["quantity"] - 1),
                           script.get("price"))
            elif action == "reject":
                self._transition(oid, status="REJECTED", pending_quantity=0,
                                 status_message=script.get("message",
                                                           "RMS:Margin Exceeds, Required:0"))
            elif action == "cancel":
                self._transition(oid, status="CANCELLED",
                                 cancelled_quantity=row["pending_quantity"],
                                 status_message="Order cancelled by the exchange")

    def _marketable(self, row: dict) -> bool:
        ltp = self.ticks[row["instrument_token"]].last_price
        if row["order_type"] == "MARKET":
            return True
        if row["order_type"] == "LIMIT":
            return ltp <= row["price"] if row["transaction_type"] == "BUY" else ltp >= row["price"]
        trig = row["trigger_price"]            # SL / SL-M: triggered by a trade through it
        return ltp >= trig if row["transaction_type"] == "BUY" else ltp <= trig

    def _fill_price(self, row: dict, price) -> float:
        if price is not None:
            return float(price)
        if row["order_type"] in ("LIMIT", "SL"):
            return float(row["price"])
        return self.ticks[row["instrument_token"]].last_price

    def _transition(self, oid: str, **changes) -> dict:
        hist = self.orders[oid]
        row = dict(hist[-1], **changes)
        row["exchange_update_timestamp"] = ist_now_str()
        hist.append(row)
        self._send_update(row)
        return row

    def _fill(self, oid: str, qty: int, price=None) -> dict | None:
        """Fill ``qty`` of an order (at ``price`` or its limit / the LTP): a trade
        row, cumulative fields, an order update."""
        with self._lock:
            row = self.orders[oid][-1]
            qty = min(int(qty), row["pending_quantity"])
            if qty <= 0 or row["status"] in ("COMPLETE", "REJECTED", "CANCELLED"):
                return None
            px = self._fill_price(row, price)
            now = time.time()
            filled = row["filled_quantity"] + qty
            avg = (row["average_price"] * row["filled_quantity"] + px * qty) / filled
            trade = {"trade_id": str(10000000 + next(self._trade_seq)), "order_id": oid,
                     "exchange": row["exchange"], "tradingsymbol": row["tradingsymbol"],
                     "instrument_token": row["instrument_token"], "product": row["product"],
                     "average_price": px, "quantity": qty,
                     "exchange_order_id": row["exchange_order_id"],
                     "transaction_type": row["transaction_type"],
                     "fill_timestamp": ist_now_str(now), "order_timestamp":
                     ist_now_str(now)[11:], "exchange_timestamp": ist_now_str(now)}
            self.trades.append(trade)
            self._book_position(row, qty, px)
            pending = row["pending_quantity"] - qty
            status = row["status"]
            if pending == 0:
                status = "COMPLETE"
            elif status not in ("CANCEL PENDING",):
                status = "OPEN"
            return self._transition(oid, status=status, filled_quantity=filled,
                                    pending_quantity=pending, average_price=round(avg, 4))

    def fill(self, order_id: str, quantity: int | None = None, price: float | None = None):
        """Fill a resting order now (all of its pending quantity by default)."""
        with self._lock:
            row = self.orders[order_id][-1]
            return self._fill(order_id, row["pending_quantity"] if quantity is None
                              else quantity, price)

    def exchange_cancel(self, order_id: str, message: str = "Cancelled by the exchange"):
        with self._lock:
            row = self.orders[order_id][-1]
            return self._transition(order_id, status="CANCELLED",
                                    cancelled_quantity=row["pending_quantity"],
                                    status_message=message)

    def _modify(self, oid: str, form: dict) -> str:
        f = {k: v[0] for k, v in form.items()}
        with self._lock:
            hist = self.orders.get(oid)
            if hist is None:
                raise KiteError(400, "InputException", "Couldn't find that `order_id`.")
            row = hist[-1]
            if row["status"] not in ("OPEN", "TRIGGER PENDING"):
                raise KiteError(400, "InputException",
                                f"Order cannot be modified as it is being processed "
                                f"(status {row['status']}).")
            changes: dict[str, Any] = {"modified": True}
            if f.get("quantity"):
                q = int(f["quantity"])
                if q < row["filled_quantity"] + 1:
                    raise KiteError(400, "InputException", "Invalid `quantity`.")
                changes.update(quantity=q, pending_quantity=q - row["filled_quantity"])
            if f.get("price"):
                changes["price"] = _num(f["price"], "price")
            if f.get("trigger_price"):
                changes["trigger_price"] = _num(f["trigger_price"], "trigger_price")
            if f.get("order_type"):
                changes["order_type"] = f["order_type"]
            hist.append(dict(row, status="MODIFY VALIDATION PENDING"))
            self._transition(oid, **dict(changes, status="UPDATE"))
            new = self._transition(oid, status=row["status"])
            if self._marketable(new):
                self._later(self._fill_rest, oid)
        return oid

    def _fill_rest(self, oid: str) -> None:
        with self._lock:
            row = self.orders[oid][-1]
            if row["status"] in ("OPEN", "TRIGGER PENDING") and self._marketable(row):
                self._fill(oid, row["pending_quantity"])

    def _cancel(self, oid: str) -> str:
        with self._lock:
            hist = self.orders.get(oid)
            if hist is None:
                raise KiteError(400, "InputException", "Couldn't find that `order_id`.")
            row = hist[-1]
            if row["status"] not in ("OPEN", "TRIGGER PENDING"):
                raise KiteError(400, "InputException",
                                f"Order cannot be cancelled as it is being processed. Try "
                                f"later. (status {row['status']})")
            self._transition(oid, status="CANCEL PENDING")
            if self.cancel_mode == "pending_then_fill":
                self._later(self._fill_rest_then_done, oid)
            else:
                self._later(self._finish_cancel, oid)
        return oid

    def _finish_cancel(self, oid: str) -> None:
        with self._lock:
            row = self.orders[oid][-1]
            if row["status"] == "CANCEL PENDING":
                self._transition(oid, status="CANCELLED",
                                 cancelled_quantity=row["pending_quantity"])

    def _fill_rest_then_done(self, oid: str) -> None:
        with self._lock:
            row = self.orders[oid][-1]
            if row["status"] == "CANCEL PENDING":
                self._fill(oid, row["pending_quantity"])   # the fill won the race: COMPLETE

    # ------------------------------------------------------------ portfolio

    @staticmethod
    def _position_row(exchange, symbol, product, qty, avg) -> dict:
        return {"tradingsymbol": symbol, "exchange": exchange, "instrument_token": 0,
                "product": product, "quantity": qty, "overnight_quantity": 0,
                "multiplier": 1, "average_price": avg, "close_price": 0.0, "last_price": avg,
                "value": -qty * avg, "pnl": 0.0, "m2m": 0.0, "unrealised": 0.0,
                "realised": 0.0, "buy_quantity": max(qty, 0), "buy_price": avg,
                "buy_value": max(qty, 0) * avg, "sell_quantity": max(-qty, 0),
                "sell_price": avg, "sell_value": max(-qty, 0) * avg, "day_buy_quantity": 0,
                "day_sell_quantity": 0, "day_buy_price": 0.0, "day_sell_price": 0.0,
                "day_buy_value": 0.0, "day_sell_value": 0.0}

    def _book_position(self, order: dict, qty: int, px: float) -> None:
        key = (order["exchange"], order["tradingsymbol"], order["product"])
        pos: dict = self.positions.get(key) or self._position_row(*key, 0, 0.0)
        signed = qty if order["transaction_type"] == "BUY" else -qty
        if order["transaction_type"] == "BUY":
            bv = pos["buy_value"] + qty * px
            pos.update(buy_quantity=pos["buy_quantity"] + qty, buy_value=bv,
                       buy_price=bv / (pos["buy_quantity"] + qty))
        else:
            sv = pos["sell_value"] + qty * px
            pos.update(sell_quantity=pos["sell_quantity"] + qty, sell_value=sv,
                       sell_price=sv / (pos["sell_quantity"] + qty))
        old = pos["quantity"]
        new = old + signed
        if new == 0:
            avg = 0.0
        elif old == 0 or (old > 0) != (new > 0):
            avg = px
        elif abs(new) > abs(old):
            avg = (pos["average_price"] * abs(old) + px * qty) / abs(new)
        else:
            avg = pos["average_price"]
        pos.update(quantity=new, average_price=avg, instrument_token=order["instrument_token"],
                   last_price=self.ticks[order["instrument_token"]].last_price)
        self.positions[key] = pos

    def _positions(self) -> dict:
        with self._lock:
            net = [dict(p) for p in self.positions.values()]
        return {"net": net, "day": [dict(p) for p in net]}

    # ------------------------------------------------------------ quotes / history

    def _quote(self, kind: str, keys: list[str]) -> dict:
        if kind not in ("full", "ltp", "ohlc"):
            raise KiteError(404, "GeneralException", "Route not found")
        if len(keys) > 500:
            raise KiteError(400, "InputException", "Too many instruments")
        out = {}
        with self._lock:
            for key in keys:
                exch, _, sym = key.partition(":")
                inst = self._by_symbol.get((exch, sym))
                if inst is None:
                    continue                       # Kite omits unknown keys
                t = self.ticks[inst[0]]
                row: dict = {"instrument_token": t.token, "last_price": t.last_price}
                if kind in ("ohlc", "full"):
                    row["ohlc"] = {"open": t.open, "high": t.high, "low": t.low,
                                   "close": t.close}
                if kind == "full":
                    row.update(timestamp=ist_now_str(), last_trade_time=ist_now_str(),
                               last_quantity=t.last_quantity, buy_quantity=t.buy_quantity,
                               sell_quantity=t.sell_quantity, volume=t.volume,
                               average_price=t.average_price, oi=t.oi, oi_day_high=0,
                               oi_day_low=0, net_change=round(t.last_price - t.close, 2),
                               lower_circuit_limit=round(t.close * 0.8, 2),
                               upper_circuit_limit=round(t.close * 1.2, 2),
                               depth={"buy": [], "sell": []})
                out[key] = row
        return out

    INTERVALS: ClassVar[dict[str, int]] = {
        "minute": 60, "3minute": 180, "5minute": 300, "10minute": 600, "15minute": 900,
        "30minute": 1800, "60minute": 3600, "day": 86400}

    def _historical(self, token: str, interval: str, query: dict) -> dict:
        if interval not in self.INTERVALS:
            raise KiteError(400, "InputException", "Invalid interval.")
        try:
            tok = int(token)
            start = dt.datetime.strptime(query["from"][0], "%Y-%m-%d %H:%M:%S")
            end = dt.datetime.strptime(query["to"][0], "%Y-%m-%d %H:%M:%S")
        except (KeyError, ValueError):
            raise KiteError(400, "InputException", "Invalid `from` or `to` date.") from None
        if tok not in self._by_token:
            raise KiteError(400, "InputException", "Invalid token.")
        step = self.INTERVALS[interval]
        rng = random.Random(tok * 7919 + int(start.timestamp()))
        price = float(self._by_token[tok][4]) or 100.0
        candles = []
        day = start.date()
        while day <= end.date():
            if day.weekday() < 5:
                t = dt.datetime.combine(day, dt.time(9, 15))
                close_t: dt.datetime | None = dt.datetime.combine(day, dt.time(15, 30))
                if step == 86400:
                    t, close_t = dt.datetime.combine(day, dt.time(0, 0)), None
                while (close_t is None or t < close_t) and start <= t <= end:
                    o = price
                    c = round(max(0.05, o * (1 + rng.gauss(0, 0.002))), 2)
                    h = round(max(o, c) * (1 + abs(rng.gauss(0, 0.001))), 2)
                    lo = round(min(o, c) * (1 - abs(rng.gauss(0, 0.001))), 2)
                    candles.append([t.strftime("%Y-%m-%dT%H:%M:%S+0530"), round(o, 2), h, lo,
                                    c, rng.randint(100, 10000)])
                    price = c
                    if close_t is None:
                        break
                    t += dt.timedelta(seconds=step)
            day += dt.timedelta(days=1)
        return {"candles": candles}

    # ------------------------------------------------------------ websocket

    def _ws_main(self, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot():
            self._ws_server = await serve(self._ws_handler, self.host, self._ws_port,
                                          process_request=self._ws_check,
                                          ping_interval=None, compression=None)
            self._ws_port = self._ws_server.sockets[0].getsockname()[1]
            ready.set()
        loop.run_until_complete(boot())
        loop.run_forever()
        loop.close()

    async def _ws_close(self) -> None:
        for ws in list(self._clients):
            ws.transport.abort()
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()

    def _ws_check(self, connection, request):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        key = q.get("api_key", [""])[0]
        token = q.get("access_token", [""])[0]
        if key != self.api_key or token != self.access_token or not self.token_valid:
            self.ws_refused += 1
            return connection.respond(403, "Forbidden")
        return None

    async def _ws_handler(self, ws) -> None:
        self._clients[ws] = {}
        self.ws_connects += 1
        beat = asyncio.ensure_future(self._heartbeats(ws))
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    continue
                try:
                    req = json.loads(msg)
                    action, value = req["a"], req["v"]
                except (ValueError, KeyError, TypeError):
                    await ws.send(json.dumps({"type": "error", "data": "Invalid message"}))
                    continue
                subs = self._clients[ws]
                self.subscribe_log.append((action, value))
                if action == "subscribe":
                    for tok in value:
                        subs.setdefault(int(tok), "quote")
                elif action == "unsubscribe":
                    for tok in value:
                        subs.pop(int(tok), None)
                elif action == "mode":
                    mode, toks = value[0], value[1]
                    for tok in toks:
                        if int(tok) in subs:
                            subs[int(tok)] = mode
        except Exception as exc:  # noqa: BLE001 - a lost connection: only ours to clean up
            logger.debug("ticker client gone (%s)", type(exc).__name__)
        finally:
            beat.cancel()
            self._clients.pop(ws, None)

    async def _heartbeats(self, ws) -> None:
        try:
            while True:
                await asyncio.sleep(self.heartbeat_s)
                if not self.silent:
                    await ws.send(b"\x00")
        except Exception as exc:  # noqa: BLE001 - the connection closed under us
            logger.debug("heartbeats stop (%s)", type(exc).__name__)

    def _broadcast(self, make) -> None:
        """Send ``make(subscriptions) -> bytes | str | None`` to every client."""
        if self._loop is None or self.silent:
            return

        async def send_all():
            for ws, subs in list(self._clients.items()):
                msg = make(subs)
                if msg is not None:
                    try:
                        await ws.send(msg)
                    except Exception as exc:  # noqa: BLE001 - a closing client misses it
                        logger.debug("send failed (%s)", type(exc).__name__)
        asyncio.run_coroutine_threadsafe(send_all(), self._loop)

    def _send_update(self, row: dict) -> None:
        data = dict(row)
        data.update(user_id=self.user_id, app_id=1, unfilled_quantity=row["pending_quantity"],
                    checksum=hashlib.sha256((row["order_id"] + row["order_timestamp"] +
                                             self.api_secret).encode()).hexdigest())
        text = json.dumps({"type": "order", "data": data})
        self._broadcast(lambda subs: text)

    def push_ticks(self, prices: dict, quantity: int = 1, exchange_ts: int | None = None,
                   match: bool = True) -> None:
        """Trade each instrument (symbol or token key) at its price and send the
        packets (one frame per client, each token in its subscribed mode).  Resting
        orders the new prices cross are filled when ``match``."""
        ts = int(time.time()) if exchange_ts is None else int(exchange_ts)
        with self._lock:
            toks = []
            for key, px in prices.items():
                tok = self._resolve(key)
                t = self.ticks[tok]
                px = float(px)
                t.last_price, t.last_quantity = px, quantity
                t.average_price = ((t.average_price * t.volume + px * quantity)
                                   / (t.volume + quantity))
                t.volume += quantity
                t.high, t.low = max(t.high, px), min(t.low, px)
                t.last_trade_time = t.exchange_ts = ts
                toks.append(tok)
            states = {tok: TickState(**vars(self.ticks[tok])) for tok in toks}
            resting = [oid for oid, h in self.orders.items()
                       if h[-1]["status"] in ("OPEN", "TRIGGER PENDING")
                       and h[-1]["instrument_token"] in states] if match else []

        def make(subs):
            packets = [encode_packet(states[tok], subs[tok]) for tok in states if tok in subs]
            return encode_frame(packets) if packets else None
        self._broadcast(make)
        for oid in resting:
            self._fill_rest(oid)


def _num(text, name):
    if text is None or text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        raise KiteError(400, "InputException", f"Invalid `{name}`.") from None
    if not math.isfinite(v) or v < 0:
        raise KiteError(400, "InputException", f"Invalid `{name}`.")
    return v


# ---------------------------------------------------------------- binary packets

def encode_packet(t: TickState, mode: str) -> bytes:
    """One tick packet in Kite's binary layout for ``mode`` (ltp / quote / full)."""
    d = price_divisor(t.token)

    def p(x):
        return round(x * d)
    if mode == "ltp":
        return struct.pack(">ii", t.token, p(t.last_price))
    if (t.token & 0xFF) == 9:                                  # indices
        body = struct.pack(">7i", t.token, p(t.last_price), p(t.high), p(t.low), p(t.open),
                           p(t.close), p(t.last_price - t.close))
        return body + struct.pack(">i", t.exchange_ts) if mode == "full" else body
    quote = struct.pack(">11i", t.token, p(t.last_price), t.last_quantity, p(t.average_price),
                        t.volume, t.buy_quantity, t.sell_quantity, p(t.open), p(t.high),
                        p(t.low), p(t.close))
    if mode != "full":
        return quote
    depth = t.depth or [(0, 0.0, 0)] * 10
    return (quote + struct.pack(">5i", t.last_trade_time, t.oi, t.oi, t.oi, t.exchange_ts)
            + b"".join(struct.pack(">iihxx", q, p(px), n) for q, px, n in depth))


def encode_frame(packets: list[bytes]) -> bytes:
    """A binary ticker frame: uint16 count, then uint16 length + packet each."""
    return struct.pack(">H", len(packets)) + b"".join(struct.pack(">H", len(pk)) + pk
                                                      for pk in packets)


# ---------------------------------------------------------------- HTTP plumbing

class _Handler(BaseHTTPRequestHandler):
    kite: KiteServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):           # quiet: tests read the server's records
        return

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK
        # add ~40 ms to every response on loopback
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self, method: str) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype and raw:
            try:
                form = {k: [str(v)] for k, v in json.loads(raw).items()}
            except ValueError:
                form = {}
        else:
            form = urllib.parse.parse_qs(raw.decode(), keep_blank_values=True)
        if method in ("GET", "DELETE"):
            form = {**query, **form}
        inj = self.kite._take_injection(method, split.path)
        if inj is not None and not inj.process:
            return self._misbehave(inj.kind)
        try:
            status, ctype, body, extra = self.kite.handle(method, split.path, query, form,
                                                          self.headers)
        except KiteError as exc:
            status, ctype, extra = exc.status, "application/json", {}
            body = json.dumps({"status": "error", "message": exc.message,
                               "error_type": exc.error_type, "data": None}).encode()
        except Exception:                                      # a server bug: a 500, logged
            logger.exception("kite server failed on %s %s", method, split.path)
            status, ctype, extra = 500, "application/json", {}
            body = json.dumps({"status": "error", "message": "Internal error",
                               "error_type": "GeneralException", "data": None}).encode()
        if inj is not None:
            return self._misbehave(inj.kind)
        self._send(status, ctype, body, extra)

    def _misbehave(self, kind: str) -> None:
        if kind == "timeout":
            time.sleep(self.kite.timeout_sleep)
            try:
                self._send(504, "text/html", b"<html><body>Gateway Timeout</body></html>", {})
            except OSError:
                pass
            self.close_connection = True
            return
        if kind == "html500":
            return self._send(500, "text/html",
                              b"<html><body><h1>500 Internal Server Error</h1></body></html>", {})
        if kind == "no_content_type":
            return self._send(200, None, b'{"status":"success","data":{}}', {})
        if kind == "429":
            return self._send(429, "application/json", json.dumps(
                {"status": "error", "message": "Too many requests",
                 "error_type": "NetworkException", "data": None}).encode(), {})
        if kind == "503":
            return self._send(503, "application/json", json.dumps(
                {"status": "error", "message": "Service unavailable",
                 "error_type": "NetworkException", "data": None}).encode(), {})
        return self._send(500, "application/json", json.dumps(
            {"status": "error", "message": "Something went wrong",
             "error_type": "GeneralException", "data": None}).encode(), {})

    def _send(self, status, ctype, body: bytes, extra: dict) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hftcore.kite.server",
                                 description="a local Kite Connect server for dry runs")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ws-port", type=int, default=0)
    ap.add_argument("--tick-interval", type=float, default=1.0,
                    help="seconds between random-walk ticks on every instrument (0: none)")
    args = ap.parse_args(argv)
    srv = KiteServer(port=args.port, ws_port=args.ws_port).start()
    print(f"REST   {srv.url}\nticker {srv.ws_url}\napi_key {srv.api_key}\n"
          f"request_token {srv.request_token}\n(api_secret is {srv.api_secret!r}: a "
          f"test value, not a real secret)", flush=True)
    rng = random.Random(1)
    try:
        while True:
            time.sleep(args.tick_interval or 3600)
            if args.tick_interval:
                prices = {}
                for tok, t in list(srv.ticks.items()):
                    tick = 0.05
                    prices[tok] = max(tick, round((t.last_price * (1 + rng.gauss(0, 5e-4)))
                                                  / tick) * tick)
                srv.push_ticks(prices, quantity=rng.randint(1, 50))
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
