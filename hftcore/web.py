"""The live web dashboard: a Starlette app on uvicorn, in a background thread.

``DashboardServer(feed).start()`` serves a DashboardFeed at ``server.url``
(``http://127.0.0.1:PORT/?token=...``) until ``stop()``.

Safe to leave open
------------------
* **Access token.**  A random token per run (``secrets.token_urlsafe``), in
  ``url`` and in a file only the user can read (``token_file``, mode 0600).
  Opening ``/?token=...`` sets an HttpOnly, SameSite=Strict cookie
  (``hftcore_token_PORT``) and redirects to ``/``; every other route needs
  that cookie, ``?token=`` or an
  ``Authorization: Bearer`` header: 401 without one, 403 with a wrong one.
* **DNS rebinding.**  ``Host`` must name the bound address
  (``127.0.0.1:PORT`` / ``localhost:PORT``) and ``Origin``, when sent, must be
  that origin too: 403 otherwise.  Binding beyond loopback needs
  ``allow_remote=True`` (the CLI's ``--bind ADDR --i-know``) and logs a warning.
* **No script injection.**  A strict Content-Security-Policy (no inline
  script or style, ``frame-ancestors 'none'``), ``X-Content-Type-Options:
  nosniff``; the page's script (``web_static/app.js``) renders every value
  with ``textContent`` and DOM calls, never HTML strings.
* **Read-only.**  No route changes trading state, except the optional
  (``allow_halt=True``) ``POST /api/halt``, which needs the token, a matching
  ``Origin`` and a CSRF header, and publishes ``risk.halted``.

Cheap for the trading loop
--------------------------
One producer task, on the server's own event loop, builds ``feed.get_view()``
and serialises it at most once per ``interval`` (only when the feed changed);
every streaming client (``/api/stream``, server-sent events) is sent the same
bytes.  A client that reads slowly skips frames (it always gets the newest),
one that stops reading for ``send_timeout`` seconds is dropped, at most
``max_clients`` stream at once (503 beyond), and a connection that has not
sent a complete request within ``header_timeout`` seconds is closed
(uvicorn alone keeps such half-open connections forever).

Routes: ``/`` (the page; the login form without a token), ``/static/*``,
``/api/view`` (what the page shows), ``/api/snapshot`` (``get_snapshot()``),
``/api/equity`` (the whole-session equity history), ``/api/stream``,
``/api/session`` (CSRF token, halt availability), ``POST /api/halt``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("web_static")
COOKIE = "hftcore_token"                 # + "_PORT": cookies are per host, not per port
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
FULL_HISTORY_EVERY = 10.0                # s; see Broadcast.build
OPEN_PATHS = ("/",)                      # answers without a token: the login form (401)


def token_path(port: int) -> Path:
    """Where ``hftcore paper --dashboard`` writes the token for ``port`` (and
    ``hftcore dashboard`` reads it): ``$XDG_RUNTIME_DIR/hftcore/`` or
    ``~/.cache/hftcore/``, ``dashboard-PORT.token``."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(base) / "hftcore" if base else Path.home() / ".cache" / "hftcore"
    return root / f"dashboard-{port}.token"


def write_token(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` readable and writable by the user only (0600;
    the folder 0700 if we create it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)                 # an existing file keeps its old mode otherwise
        os.write(fd, token.encode() + b"\n")
    finally:
        os.close(fd)


def read_token(path: Path) -> str | None:
    """The token in ``path``, or None if there is no such file."""
    try:
        return Path(path).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a request-head deadline: a connection that has
    not sent a complete request ``timeout_keep_alive`` seconds after it opened (or
    after its previous response) is closed, however it trickles bytes."""

    _head_timer = None

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.timeout_keep_alive, self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)


class _DroppedClientFilter(logging.Filter):
    """uvicorn logs an error when a handler returns mid-response; that is how a
    client that stopped reading is dropped, so it is expected here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


class _Client:
    __slots__ = ("closed", "ping", "sending_since", "task", "wake")

    def __init__(self, task):
        self.wake = asyncio.Event()
        self.closed = False
        self.ping = False             # send a keep-alive comment
        self.sending_since = None     # loop time a send started, while it is blocked
        self.task = task


class Broadcast:
    """Server-sent events from one producer: the newest frame, shared by every client.

    The producer (``run``) wakes each client's coroutine; a client sends whatever frame
    is newest when it gets to run, so a slow one skips frames rather than queueing them.
    No task or timer is made per frame: the producer itself drops a client whose send
    has been blocked for ``send_timeout`` seconds and pings idle ones every
    ``keepalive`` seconds."""

    def __init__(self, feed, interval: float, max_clients: int, send_timeout: float,
                 keepalive: float):
        self.feed = feed
        self.interval = interval
        self.max_clients = max_clients
        self.send_timeout = send_timeout
        self.keepalive = keepalive
        self.frame: bytes | None = None
        self.frames = 0               # frames built (each serialised once)
        self.dropped = 0              # clients dropped for not reading
        self.refused = 0              # clients refused (503) over max_clients
        self.clients: set[_Client] = set()
        self._closing = False
        self._version = None
        self._equity = (None, 0)      # (generation, buckets) in the previous frame
        self._full_at = -math.inf     # when the whole equity history last went out
        self._history_due = False     # a merged history is waiting for its turn

    def build(self) -> None:
        """Serialise the feed's view once and wake every client.  A frame carries the
        equity buckets since the previous frame (all of them after a merge), so a
        client that saw every frame never refetches the history."""
        generation, count = self._equity
        view = self.feed.get_view(equity_from=max(count - 1, 0))
        eq = view.get("equity") or {}
        now = time.monotonic()
        if eq.get("generation") != generation and eq.get("offset"):
            # the buckets merged: the whole history goes out again, but at most every
            # FULL_HISTORY_EVERY seconds (a fast replay merges often); until then the
            # page keeps the chart it has
            if now - self._full_at >= FULL_HISTORY_EVERY:
                view = self.feed.get_view(equity_from=0)
                eq = view.get("equity") or {}
            else:
                view["equity"] = eq = None
        self._history_due = eq is None
        if eq is not None:
            if eq.get("offset") == 0 and eq.get("count", 0) > 1:
                self._full_at = now
            self._equity = (eq.get("generation"), eq.get("count", 0))
        body = json.dumps(view, separators=(",", ":"), allow_nan=False)
        self.frame = b"data: " + body.encode() + b"\n\n"
        self.frames += 1
        for c in self.clients:
            c.wake.set()

    def _police(self, now: float, ping: bool) -> None:
        for c in list(self.clients):
            if c.sending_since is not None and now - c.sending_since > self.send_timeout:
                self.dropped += 1                     # not reading: drop it
                c.closed = True
                c.task.cancel()
            elif ping:
                c.ping = True
                c.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_ping = loop.time()
        while not self._closing:
            version = self.feed.version
            now = loop.time()
            if version != self._version or (
                    self._history_due and time.monotonic() - self._full_at >= FULL_HISTORY_EVERY):
                self._version = version
                try:
                    self.build()
                except Exception:                     # never let the producer die
                    logger.exception("dashboard: building the view failed")
            ping = now - last_ping >= self.keepalive
            if ping:
                last_ping = now
            self._police(now, ping)
            await asyncio.sleep(self.interval)

    def close(self) -> None:
        self._closing = True
        for c in self.clients:
            c.closed = True
            c.wake.set()

    async def __call__(self, scope, receive, send) -> None:
        if len(self.clients) >= self.max_clients or self._closing:
            self.refused += 1
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"text/plain"), (b"retry-after", b"5")]})
            await send({"type": "http.response.body", "body": b"too many dashboard clients\n"})
            return
        loop = asyncio.get_running_loop()
        client = _Client(asyncio.current_task())
        self.clients.add(client)

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    client.closed = True
                    client.wake.set()
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream"),
                                    (b"x-accel-buffering", b"no")]})
            await send({"type": "http.response.body", "body": b"retry: 2000\n\n",
                        "more_body": True})
            sent = None
            while not client.closed:
                frame = self.frame
                if frame is not None and frame is not sent:
                    chunk, sent = frame, frame
                elif client.ping:
                    chunk = b": keepalive\n\n"           # finds dead peers, keeps proxies open
                else:
                    client.wake.clear()
                    await client.wake.wait()
                    continue
                client.ping = False
                client.sending_since = loop.time()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                client.sending_since = None
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not client.closed:                     # not our drop: the server is stopping
                raise
        finally:
            self.clients.discard(client)
            watcher.cancel()


class DashboardServer:
    """Serve ``feed`` (a DashboardFeed) on ``http://host:port`` from a background thread.

    Parameters
    ----------
    feed : DashboardFeed
    host : str, default "127.0.0.1" -- a loopback address unless ``allow_remote``
    port : int, default 8765 (0 picks a free port; see ``url``/``port``)
    token : str or None -- the access token (default: a new random one)
    allow_remote : bool -- allow a non-loopback ``host`` (logs a warning)
    allowed_hosts : extra host names accepted in ``Host`` (with ``allow_remote``)
    token_file : path or None -- where ``start()`` writes the token (0600) and
        ``stop()`` removes it
    interval : float, default 1 -- seconds between stream frames (at most)
    max_clients : int, default 32 -- concurrent streams (503 beyond)
    send_timeout : float, default 10 -- a stream not read for this long is dropped
    header_timeout : float, default 5 -- seconds to send a complete request
    allow_halt : bool -- serve ``POST /api/halt`` ("halt trading")
    on_halt : callable(reason) or None -- called by the halt route before it publishes

    ValueError for a bad host, port, token or limit; OSError if the port is taken.
    """

    def __init__(self, feed, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
                 *, allow_remote: bool = False, allowed_hosts=(), token_file=None,
                 interval: float = 1.0, max_clients: int = 32, send_timeout: float = 10.0,
                 header_timeout: float = 5.0, keepalive: float = 15.0,
                 allow_halt: bool = False, on_halt=None):
        if not callable(getattr(feed, "get_view", None)):
            raise ValueError("feed must be a DashboardFeed")  # noqa: TRY004 (constructors: ValueError)
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be an address, got {host!r}")
        if host not in LOOPBACK and not allow_remote:
            raise ValueError(f"the dashboard listens on loopback only; binding {host!r} exposes "
                             f"positions and PnL to the network (allow_remote=True to do it)")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be 0-65535, got {port!r}")
        if token is None:
            token = secrets.token_urlsafe(32)
        elif not isinstance(token, str) or len(token) < 16 or not token.isprintable() \
                or any(c in token for c in " ;,&=?#%\"'<>"):
            raise ValueError("token must be a str of at least 16 URL-safe characters")
        for name, v in (("interval", interval), ("send_timeout", send_timeout),
                        ("header_timeout", header_timeout), ("keepalive", keepalive)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 3600:
                raise ValueError(f"{name} must be in (0, 3600] seconds, got {v!r}")
        if isinstance(max_clients, bool) or not isinstance(max_clients, int) \
                or not 1 <= max_clients <= 10_000:
            raise ValueError(f"max_clients must be an int in [1, 10000], got {max_clients!r}")
        if on_halt is not None and not callable(on_halt):
            raise ValueError("on_halt must be callable")
        self.feed = feed
        self.token = token
        self.allow_halt = allow_halt
        self.on_halt = on_halt
        self.host = host
        self.token_file = Path(token_file) if token_file is not None else None
        self._csrf = hmac.new(token.encode(), b"hftcore-halt", hashlib.sha256).hexdigest()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(256)
        except OSError:
            self._sock.close()
            raise
        self.port = self._sock.getsockname()[1]
        names = {"127.0.0.1", "localhost", "[::1]"} | {str(h) for h in allowed_hosts}
        if host not in LOOPBACK:
            names.add(f"[{host}]" if ":" in host else host)
            if host in ("0.0.0.0", "::"):
                names.add(socket.gethostname())
            logger.warning("dashboard bound to %s: anyone who can reach port %d and has the "
                           "token sees positions and PnL", host, self.port)
        self.allowed_hosts = frozenset(f"{n}:{self.port}".lower() for n in names)
        self.allowed_origins = frozenset(f"http://{h}" for h in self.allowed_hosts)
        self.broadcast = Broadcast(feed, interval, max_clients, send_timeout, keepalive)
        self.app = self._build_app()
        config = uvicorn.Config(
            self._asgi, http=_Protocol, ws="none", lifespan="off", loop="asyncio",
            interface="asgi3",
            proxy_headers=False,
            log_config=None, access_log=False, timeout_keep_alive=max(1, round(header_timeout)),
            timeout_graceful_shutdown=2, limit_concurrency=max_clients + 64,
            h11_max_incomplete_event_size=16 * 1024, server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="hftcore-dashboard")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self.cookie = f"{COOKIE}_{self.port}"
        uvicorn_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, _DroppedClientFilter) for f in uvicorn_log.filters):
            uvicorn_log.addFilter(_DroppedClientFilter())

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``http://HOST:PORT/?token=TOKEN`` -- open it once; the cookie does the rest."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "localhost") else self.host
        host = f"[{host}]" if ":" in host else host
        if self.host == "::":
            host = "[::1]"
        return f"http://{host}:{self.port}/?token={self.token}"

    @property
    def base_url(self) -> str:
        """``url`` without the token."""
        return self.url.split("?", 1)[0]

    def _serve(self) -> None:
        async def main():
            self._loop = asyncio.get_running_loop()
            producer = asyncio.ensure_future(self.broadcast.run())
            self._started.set()
            try:
                await self._server.serve(sockets=[self._sock])
            finally:
                producer.cancel()
        try:
            asyncio.run(main())
        except Exception:
            logger.exception("dashboard server stopped with an error")
        finally:
            self._started.set()

    def start(self) -> DashboardServer:
        """Start serving (returns self); writes ``token_file`` if given."""
        if self.token_file is not None:
            write_token(self.token_file, self.token)
        self._thread.start()
        self._started.wait(10)
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Close the streams, stop the server and join its thread; remove the token file."""
        loop = self._loop
        if loop is not None and self._thread.is_alive():
            try:
                loop.call_soon_threadsafe(self.broadcast.close)
            except RuntimeError:                       # loop already closed
                pass
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()
        if self.token_file is not None and read_token(self.token_file) == self.token:
            try:
                self.token_file.unlink()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ security

    def _token_of(self, scope) -> tuple[str | None, bool]:
        """(token presented, whether it came in the URL)."""
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie:
                return value, False
        return None, False

    def _valid(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())

    async def _asgi(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        origin = headers.get(b"origin")

        async def secured(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        if host not in self.allowed_hosts:
            return await _plain(secured, 403, "forbidden: unexpected Host header\n")
        if origin is not None and origin.decode("latin-1").lower() not in self.allowed_origins:
            return await _plain(secured, 403, "forbidden: cross-origin request\n")
        path = scope["path"]
        token, in_url = self._token_of(scope)
        if path in OPEN_PATHS and token is None:
            scope = {**scope, "state": {**scope.get("state", {}), "authenticated": False}}
            return await self.app(scope, receive, secured)
        if token is None:
            return await _plain(secured, 401, "unauthorized: open the URL with ?token=... "
                                "printed when the session started\n")
        if not self._valid(token):
            return await _plain(secured, 403, "forbidden: wrong token\n")
        if in_url and path == "/":
            # trade the URL token for a cookie and drop it from the address bar
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict",
                                path="/")
            return await response(scope, receive, secured)
        scope = {**scope, "state": {**scope.get("state", {}), "authenticated": True}}
        if path == "/api/stream":
            return await self.broadcast(scope, receive, secured)
        return await self.app(scope, receive, secured)

    # ------------------------------------------------------------ routes

    def _build_app(self) -> Starlette:
        feed = self.feed

        async def index(request: Request):
            if not request.scope["state"].get("authenticated"):
                return FileResponse(STATIC / "login.html", status_code=401,
                                    media_type="text/html; charset=utf-8")
            return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

        async def view(request: Request):
            return _json(feed.get_view())

        async def snapshot(request: Request):
            return _json(feed.get_snapshot())

        async def equity(request: Request):
            try:
                start = int(request.query_params.get("start", "0"))
            except ValueError:
                return Response("start must be an int\n", status_code=400)
            return _json(feed.get_equity_history(start))

        async def session(request: Request):
            return _json({"csrf": self._csrf, "halt": self.allow_halt,
                          "interval": self.broadcast.interval})

        async def halt(request: Request):
            if not self.allow_halt:
                return Response("halting from the dashboard is off\n", status_code=404)
            origin = request.headers.get("origin")
            csrf = request.headers.get("x-csrf-token", "")
            if origin is None or not hmac.compare_digest(csrf.encode(), self._csrf.encode()):
                return Response("forbidden: missing Origin or CSRF token\n", status_code=403)
            reason = "halted from the dashboard"
            if self.on_halt is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.on_halt, reason)
            bus = getattr(feed, "event_bus", None)
            if bus is not None:
                bus.publish("risk.halted", {"reason": reason, "rule": "manual", "net_pnl": None,
                                            "limit": None, "ts": None})
            return _json({"halted": True, "reason": reason})

        return Starlette(routes=[
            Route("/", index),
            Route("/api/view", view),
            Route("/api/snapshot", snapshot),
            Route("/api/equity", equity),
            Route("/api/session", session),
            Route("/api/halt", halt, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ])


def _json(obj) -> Response:
    return JSONResponse(obj)


async def _plain(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve_session(session, host: str = "127.0.0.1", port: int = 8765, *,
                  allow_remote: bool = False, allow_halt: bool = True,
                  token_file: bool = True, **kwargs) -> DashboardServer:
    """Start a DashboardServer over a PaperSession: its DashboardFeed gets the
    session's market clock, per-symbol tick times, portfolio (seeded now, so
    capital, cash and equity show before the first fill), and "halt trading"
    stops new orders (``session.execution.halt``).  The token goes to
    ``token_path(port)`` unless ``token_file=False``."""
    feed = session.dashboard
    engine = session.engine
    symbols = list(getattr(session.instruments, "symbols", []))

    def tick_times():
        out = {}
        for s in symbols:
            ts = engine.last_ts(s)
            if ts:
                out[s] = ts
        return out

    feed.attach(portfolio=session.portfolio, clock=lambda: session.now_ns,
                tick_times=tick_times)
    feed.update_portfolio({**session.portfolio.get_snapshot(), **session.portfolio.get_totals()})

    def halt(reason: str) -> None:
        session.execution.gate.halt(reason)     # the route publishes risk.halted

    server = DashboardServer(feed, host, port, allow_remote=allow_remote, allow_halt=allow_halt,
                             on_halt=halt if allow_halt else None, **kwargs)
    if token_file:
        server.token_file = token_path(server.port)
    return server.start()
