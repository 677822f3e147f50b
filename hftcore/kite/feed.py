"""KiteTickerFeed: Kite's streaming ticks as the numeric lane's ``Ticks`` arrays.

A background thread runs an asyncio loop with the ``websockets`` client (not
pykiteconnect's KiteTicker: its Twisted reactor cannot be restarted in a process
and it sends no pings, so a silent socket goes unnoticed; see
docs/architecture.md).  The reader only decodes (``hftcore_ext.ticker``, one
nogil pass per frame) and hands each frame's ``Ticks`` to a bounded queue: a slow
consumer never blocks the socket (the oldest batch is dropped and counted).
Order-update text frames go to their own unbounded queue and a dispatcher thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator

import numpy as np

from hftcore_ext.ticker import decode_frame

from ..feeds import NS, Ticks
from ..instruments import InstrumentTable

logger = logging.getLogger(__name__)

MODES = ("ltp", "quote", "full")
KITE_TICKER_URL = "wss://ws.kite.trade"


def _empty_ticks() -> Ticks:
    return Ticks(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64),
                 np.empty(0, np.float64))


class KiteTickerFeed:
    """Live ticks from Kite's websocket ticker.

    Parameters
    ----------
    api_key, access_token : str -- never logged (the URL carries the token)
    instruments : InstrumentTable -- symbols and their instrument tokens; sym ids of
        the ``Ticks`` batches are its dense ids
    symbols : list of str -- subscribed at start (more with ``subscribe``)
    mode : "ltp" | "quote" | "full" -- full carries the exchange timestamp; ltp no volume
    url : str -- ticker root (``KiteServer.ws_url`` for dry runs)
    bus : EventBus or None -- receives ``feed.stale`` events
    stale_after : float -- seconds without any message (heartbeats included) before
        the watchdog forces a reconnect and publishes ``feed.stale``
    symbol_stale_after : float or None -- ``poll`` publishes ``feed.stale`` for a
        symbol without a tick for this long (once until it ticks again)
    queue_size : int -- batches held for the consumer before the oldest is dropped
    backoff_initial, backoff_max : float -- reconnect delays double from the first
        to the second (with up to 10% jitter)
    engine : MarketDataEngine or None -- ``poll`` closes its candles on the clock
    clock : callable -> int ns since the epoch (UTC); receive time of ltp/quote ticks
    """

    def __init__(self, api_key: str, access_token: str, instruments: InstrumentTable,
                 symbols=(), mode: str = "quote", url: str = KITE_TICKER_URL, bus=None,
                 stale_after: float = 5.0, symbol_stale_after: float | None = None,
                 queue_size: int = 1000, backoff_initial: float = 0.5,
                 backoff_max: float = 30.0, connect_timeout: float = 5.0, engine=None,
                 clock=time.time_ns):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(instruments, InstrumentTable):
            raise ValueError("instruments must be an InstrumentTable")  # noqa: TRY004
        if not (stale_after > 0 and backoff_initial > 0 and backoff_max >= backoff_initial):
            raise ValueError("stale_after and backoff delays must be > 0 (max >= initial)")
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an int >= 1, got {queue_size!r}")
        if not api_key or not access_token:
            raise ValueError("api_key and access_token are required")
        self._api_key, self._access_token = api_key, access_token
        self.instruments = instruments
        self.mode = mode
        self.url = url.rstrip("/")
        self.bus = bus
        self.stale_after = float(stale_after)
        self.symbol_stale_after = symbol_stale_after
        self.backoff_initial, self.backoff_max = float(backoff_initial), float(backoff_max)
        self.connect_timeout = connect_timeout
        self.engine = engine
        self.clock = clock
        self._subs: dict[int, str] = {}                  # token -> mode
        self._token_id: dict[int, int] = {}              # token -> dense sym id
        self._cum_volume: dict[int, int] = {}
        self._ltp: dict[str, float] = {}
        self._last_tick: dict[str, float] = {}           # symbol -> monotonic time
        self._subscribed_at: dict[str, float] = {}
        self._stale_reported: set[str] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._order_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._order_listeners: list = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws = None
        self._thread: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self.connected = threading.Event()
        self.error: str | None = None                    # set when the ticker refuses us
        self.last_message = time.monotonic()
        self._last_ts_ns = 0                             # newest tick time (exchange clock)
        self._last_ts_mono = 0.0
        # counters
        self.connects = 0
        self.messages = 0
        self.heartbeats = 0
        self.ticks = 0
        self.dropped_batches = 0
        self.dropped_ticks = 0
        self.stale_events = 0
        self.decode_errors = 0
        self.unknown_tokens = 0
        self.order_updates = 0
        self.subscribe(list(symbols))

    # ------------------------------------------------------------ subscriptions

    def _tokens(self, symbols) -> list[int]:
        out = []
        for s in symbols:
            inst = self.instruments.get(s) if isinstance(s, str) else None
            if inst is None:
                raise ValueError(f"unknown symbol {s!r}")
            if not inst.instrument_token:
                raise ValueError(f"{inst.symbol} has no instrument_token (load the "
                                 f"instruments dump)")
            out.append(inst.instrument_token)
            self._token_id[inst.instrument_token] = inst.id
            self._subscribed_at.setdefault(inst.symbol, time.monotonic())
        return out

    def subscribe(self, symbols, mode: str | None = None) -> None:
        """Subscribe ``symbols`` (in ``mode``, default the feed's mode)."""
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        toks = self._tokens(symbols)
        with self._lock:
            for t in toks:
                self._subs[t] = mode
        if toks:
            self._send_threadsafe([{"a": "subscribe", "v": toks}, {"a": "mode", "v": [mode, toks]}])

    def unsubscribe(self, symbols) -> None:
        toks = self._tokens(symbols)
        with self._lock:
            for t in toks:
                self._subs.pop(t, None)
        if toks:
            self._send_threadsafe([{"a": "unsubscribe", "v": toks}])

    def subscriptions(self) -> dict[str, str]:
        """{symbol: mode} currently subscribed."""
        with self._lock:
            return {self.instruments.by_id(self._token_id[t]).symbol: m
                    for t, m in self._subs.items()}

    def _subscribe_messages(self) -> list[dict]:
        with self._lock:
            subs = dict(self._subs)
        if not subs:
            return []
        msgs = [{"a": "subscribe", "v": list(subs)}]
        for mode in MODES:
            toks = [t for t, m in subs.items() if m == mode]
            if toks:
                msgs.append({"a": "mode", "v": [mode, toks]})
        return msgs

    def _send_threadsafe(self, msgs: list[dict]) -> None:
        loop, ws = self._loop, self._ws
        if loop is None or ws is None:
            return                                   # sent on (re)connect

        async def send():
            for m in msgs:
                await ws.send(json.dumps(m))
        try:
            asyncio.run_coroutine_threadsafe(send(), loop)
        except RuntimeError:                         # loop closing: resubscribed on reconnect
            pass

    # ------------------------------------------------------------ lifecycle

    def start(self) -> KiteTickerFeed:
        """Connect in a background thread (returns at once; see ``wait_connected``)."""
        if self._thread is not None:
            return self
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="kite-ticker", daemon=True)
        self._thread.start()
        self._dispatcher = threading.Thread(target=self._dispatch_orders,
                                            name="kite-order-updates", daemon=True)
        self._dispatcher.start()
        return self

    def wait_connected(self, timeout: float = 5.0) -> bool:
        return self.connected.wait(timeout)

    def stop(self) -> None:
        """Close the socket and stop the threads."""
        self._stopping.set()
        loop = self._loop
        if loop is not None:
            ws = self._ws
            if ws is not None:
                loop.call_soon_threadsafe(ws.transport.abort)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._order_queue.put(None)
        if self._dispatcher is not None:
            self._dispatcher.join(5)
            self._dispatcher = None

    close = stop

    def __enter__(self) -> KiteTickerFeed:  # noqa: PYI034 - Self needs Python 3.11
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def halted(self) -> bool:
        """True when the ticker refused the token: no more reconnects."""
        return self.error is not None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._connect_loop())
        finally:
            self._loop = None
            loop.close()

    async def _connect_loop(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus
        attempt = 0
        # the token travels in the query string: never log this URL
        url = f"{self.url}/?api_key={self._api_key}&access_token={self._access_token}"
        while not self._stopping.is_set():
            try:
                ws = await connect(url, open_timeout=self.connect_timeout, ping_interval=None,
                                   compression=None, max_size=2**22)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 403:
                    self.error = ("the ticker refused the access token (HTTP 403): it expired "
                                  "or is wrong; run `hftcore login` again")
                    logger.error("kite ticker: %s", self.error)
                    self._publish_stale(None, 0.0, self.error)
                    return
                logger.warning("kite ticker: upgrade refused with HTTP %d", status)
            except (OSError, asyncio.TimeoutError) as exc:
                logger.warning("kite ticker: connect failed (%s)", type(exc).__name__)
            else:
                got_message = await self._session(ws)
                if got_message:
                    attempt = 0
            if self._stopping.is_set():
                return
            delay = min(self.backoff_max, self.backoff_initial * 2 ** attempt)
            delay *= 1 + 0.1 * random.random()
            attempt += 1
            self.reconnect_delay = delay
            await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stopping.is_set() and time.monotonic() < end:
            await asyncio.sleep(min(0.05, max(0.0, end - time.monotonic())))

    async def _session(self, ws) -> bool:
        """One connection: resubscribe, read until it ends; True if anything arrived."""
        from websockets.exceptions import ConnectionClosed
        self._ws = ws
        self.connects += 1
        self.last_message = time.monotonic()
        got = False
        try:
            for m in self._subscribe_messages():
                await ws.send(json.dumps(m))
            self.connected.set()
            while not self._stopping.is_set():
                try:
                    msg = await asyncio.wait_for(ws.recv(), self.stale_after)
                except asyncio.TimeoutError:
                    silent = time.monotonic() - self.last_message
                    self.stale_events += 1
                    logger.warning("kite ticker: no message for %.1f s, reconnecting", silent)
                    self._publish_stale(None, silent, f"no message (heartbeats included) for "
                                                      f"{silent:.1f} s: reconnecting")
                    return got
                got = True
                self.last_message = time.monotonic()
                self.messages += 1
                if isinstance(msg, bytes):
                    self._on_binary(msg)
                else:
                    self._on_text(msg)
        except ConnectionClosed as exc:
            if not self._stopping.is_set():
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                logger.warning("kite ticker: connection closed (%s), reconnecting", code)
        finally:
            self.connected.clear()
            self._ws = None
            ws.transport.abort()
        return got

    # ------------------------------------------------------------ messages

    def _on_binary(self, frame: bytes) -> None:
        if len(frame) < 2:
            self.heartbeats += 1
            return
        try:
            cols = decode_frame(frame)
        except ValueError as exc:
            self.decode_errors += 1
            logger.warning("kite ticker: %s", exc)
            return
        batch = self._to_ticks(cols)
        if batch is None:
            return
        self.ticks += len(batch)
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            # a slow consumer: drop the oldest batch, never block the socket reader
            try:
                old = self._queue.get_nowait()
                self.dropped_batches += 1
                self.dropped_ticks += len(old)
            except queue.Empty:
                pass
            try:
                self._queue.put_nowait(batch)
            except queue.Full:
                self.dropped_batches += 1
                self.dropped_ticks += len(batch)

    def _to_ticks(self, cols: dict) -> Ticks | None:
        tokens = cols["token"].tolist()
        n = len(tokens)
        if n == 0:
            return None
        now_ns = int(self.clock())
        mono = time.monotonic()
        sym = np.empty(n, np.int32)
        ts = np.where(cols["exchange_ns"] > 0, cols["exchange_ns"], now_ns)
        vol = np.zeros(n, np.float64)
        keep = np.ones(n, bool)
        cum = cols["volume"].tolist()
        ltps = cols["ltp"].tolist()
        names = self.instruments
        for i, tok in enumerate(tokens):
            sid = self._token_id.get(tok)
            if sid is None:
                keep[i] = False
                self.unknown_tokens += 1
                continue
            sym[i] = sid
            c = cum[i]
            if c >= 0:                               # quote / full: per-tick = difference
                prev = self._cum_volume.get(tok)
                if prev is not None:
                    vol[i] = c - prev if c >= prev else c   # a new day restarts the count
                self._cum_volume[tok] = c
            symbol = names.by_id(sid).symbol
            self._ltp[symbol] = ltps[i]
            self._last_tick[symbol] = mono
            self._stale_reported.discard(symbol)
        newest = int(ts.max())
        if newest >= self._last_ts_ns:
            self._last_ts_ns, self._last_ts_mono = newest, mono
        if not keep.all():
            if not keep.any():
                return None
            return Ticks(sym[keep], ts[keep].astype(np.int64), cols["ltp"][keep], vol[keep])
        return Ticks(sym, ts.astype(np.int64), cols["ltp"], vol)

    def exchange_now_ns(self) -> int:
        """The exchange's clock: the newest tick's time plus the wall time since it
        arrived (the local clock before any tick).  Candles close on this clock, so a
        skewed machine clock cannot close them early or late."""
        if not self._last_ts_ns:
            return int(self.clock())
        return self._last_ts_ns + int((time.monotonic() - self._last_ts_mono) * NS)

    def _on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            logger.warning("kite ticker: unreadable text frame")
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "order" and isinstance(msg.get("data"), dict):
            self.order_updates += 1
            self._order_queue.put(msg["data"])
        elif kind == "error":
            logger.warning("kite ticker error: %s", msg.get("data"))
        elif kind == "message":
            logger.info("kite ticker message: %s", msg.get("data"))

    # ------------------------------------------------------------ order updates

    def add_order_listener(self, callback) -> None:
        """``callback(order_dict)`` for each order-update frame, on a dispatcher
        thread (never the socket reader's)."""
        self._order_listeners.append(callback)

    def _dispatch_orders(self) -> None:
        while True:
            data = self._order_queue.get()
            if data is None:
                return
            for cb in list(self._order_listeners):
                try:
                    cb(data)
                except Exception:
                    logger.exception("order-update listener failed")

    # ------------------------------------------------------------ consumer side

    def get_ltp(self, symbol) -> float | None:
        """Last traded price received for ``symbol``; None if none yet."""
        inst = self.instruments.get(symbol)
        return None if inst is None else self._ltp.get(inst.symbol)

    def get(self, timeout: float | None = None) -> Ticks | None:
        """The next batch (one frame's ticks); None after ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> Ticks:
        """Every batch waiting, concatenated (empty ``Ticks`` if none)."""
        parts = []
        while True:
            try:
                parts.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not parts:
            return _empty_ticks()
        if len(parts) == 1:
            return parts[0]
        return Ticks(*(np.concatenate(c) for c in zip(*parts)))

    def batches(self, seconds: float = 1.0, stop=None) -> Iterator[Ticks]:
        """Yield every ``seconds`` what arrived meanwhile (possibly empty ``Ticks``,
        so the caller's timers still run) until ``stop()`` is true, the feed is
        stopped, or the ticker refused the token."""
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        while not self._stopping.is_set() and not self.halted:
            if stop is not None and stop():
                return
            first = self.get(timeout=seconds)
            rest = self.drain()
            if first is None:
                yield rest
            elif len(rest) == 0:
                yield first
            else:
                yield Ticks(*(np.concatenate(c) for c in zip(first, rest)))

    def staleness(self, now: float | None = None) -> dict[str, float]:
        """{symbol: seconds since its last tick (since subscribing if none yet)}."""
        now = time.monotonic() if now is None else now
        with self._lock:
            toks = list(self._subs)
        out = {}
        for tok in toks:
            symbol = self.instruments.by_id(self._token_id[tok]).symbol
            last = self._last_tick.get(symbol, self._subscribed_at.get(symbol, now))
            out[symbol] = max(0.0, now - last)
        return out

    def poll(self, now_ns: int | None = None) -> int:
        """The session's timer hook: close candles whose period ended by ``now_ns``
        (default ``exchange_now_ns()``; the engine's ``flush``) and report symbols
        quiet for ``symbol_stale_after``.  Returns the candles closed (0 without an
        engine)."""
        now_ns = self.exchange_now_ns() if now_ns is None else int(now_ns)
        if self.symbol_stale_after:
            for symbol, secs in self.staleness().items():
                if secs >= self.symbol_stale_after and symbol not in self._stale_reported:
                    self._stale_reported.add(symbol)
                    self._publish_stale(symbol, secs, f"no tick for {secs:.1f} s")
        if self.engine is None:
            return 0
        return self.engine.flush(now_ns)

    def _publish_stale(self, symbol, seconds: float, reason: str) -> None:
        if self.bus is None:
            return
        try:
            self.bus.publish("feed.stale", {"symbol": symbol, "seconds": round(seconds, 3),
                                            "reason": reason, "ts": int(self.clock())})
        except Exception:
            logger.exception("publishing feed.stale failed")

    def stats(self) -> dict:
        return {"connected": self.connected.is_set(), "connects": self.connects,
                "messages": self.messages, "heartbeats": self.heartbeats, "ticks": self.ticks,
                "dropped_batches": self.dropped_batches, "dropped_ticks": self.dropped_ticks,
                "stale_events": self.stale_events, "decode_errors": self.decode_errors,
                "order_updates": self.order_updates, "error": self.error}


# seconds -> ns for callers converting the feed's clock
__all__ = ["KITE_TICKER_URL", "MODES", "NS", "KiteTickerFeed"]
