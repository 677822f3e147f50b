"""The dashboard server without a browser, over real sockets: the token, Host and Origin
checks, security headers, the shared event stream and its limits, half-open connections,
the halt route, and the ``hftcore dashboard`` / ``hftcore paper`` commands."""
import http.client
import json
import os
import re
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from hftcore.cli import main
from hftcore.services import DashboardFeed, EventBus
from hftcore.web import DashboardServer, read_token

NS = 1_000_000_000
T0 = 1_764_128_700 + 3600          # 2026-11-26 10:15:00 IST
ROUTES = ["/", "/static/app.js", "/static/app.css", "/static/index.html", "/api/view",
          "/api/snapshot", "/api/equity", "/api/stream", "/api/session", "/nope"]


def publish_session(bus):
    bus.publish("order.placed", {"order_id": "A1", "symbol": "SBIN", "side": "BUY", "quantity": 5,
                                 "order_type": "MARKET", "status": "OPEN", "ts": T0 * NS})
    bus.publish("order.filled", {"order_id": "A1", "fill_id": "F1", "symbol": "SBIN", "side": "BUY",
                                 "quantity": 5, "price": 900.05, "fees": 1.08, "fees_paise": 108,
                                 "ts": T0 * NS})
    bus.publish("portfolio.updated", {"positions": [{"symbol": "SBIN", "quantity": 5,
                                                     "avg_price": 900.05, "last_price": 900.05,
                                                     "unrealized_pnl": 0.0, "realized_pnl": 0.0,
                                                     "fees": 1.08}],
                                      "cash": 1_195_498.67, "equity": 1_199_998.92,
                                      "realized_pnl": 0.0, "unrealized_pnl": 0.0,
                                      "exposure": 4500.25, "position_count": 1, "ts": T0 * NS})


@pytest.fixture
def served(tmp_path):
    bus = EventBus()
    feed = DashboardFeed(bus)
    feed.update_portfolio({"initial_capital": 1_200_000.0, "cash": 1_200_000.0,
                           "equity": 1_200_000.0, "fees": 0.0})
    publish_session(bus)
    feed.update_system_state("status", "running")
    server = DashboardServer(feed, port=0, token_file=tmp_path / "t" / "dash.token",
                             interval=0.05).start()
    yield server, bus
    server.stop()


def request(server, path, method="GET", headers=None, token=True, host=None, body=None):
    """(status, headers, body) over a fresh connection; ``token`` adds the Bearer header."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    h = {"Host": host or f"127.0.0.1:{server.port}"}
    if token is True:
        h["Authorization"] = f"Bearer {server.token}"
    elif token:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in h.items():
        conn.putheader(k, v)
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read() if path != "/api/stream" or resp.status != 200 else resp.readline()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    conn.close()
    return out


def test_routes_with_the_token(served):
    server, _ = served
    status, headers, body = request(server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<script src="/static/app.js"' in body and b"<script>" not in body
    status, headers, body = request(server, "/static/app.js")
    assert status == 200 and "javascript" in headers["content-type"]
    for sink in (b"innerHTML", b"outerHTML", b"insertAdjacentHTML", b"document.write", b"eval("):
        assert sink not in body, sink
    snap = json.loads(request(server, "/api/snapshot")[2])
    assert set(snap) == {"signals", "orders", "positions", "portfolio", "system"}
    assert snap["portfolio"]["exposure"] == 4500.25 and snap["portfolio"]["charges"] == 1.08
    view = json.loads(request(server, "/api/view")[2])
    assert view["orders"][0]["status"] == "COMPLETE"
    assert view["portfolio"]["initial_capital"] == 1.2e6
    hist = json.loads(request(server, "/api/equity")[2])
    assert [p[2] for p in hist["points"]][-1] == 1_199_998.92 and hist["points"][-1][1] == T0
    assert request(server, "/nope")[0] == 404
    # scripts may pass the token in the query string too
    assert request(server, f"/api/view?token={server.token}", token=None)[0] == 200


def test_without_the_token_every_route_answers_401_or_403(served):
    server, _ = served
    for path in ROUTES:
        status, _, body = request(server, path, token=None)
        assert status == 401, path
        assert b"1,199,998" not in body and b"SBIN" not in body, path
        assert request(server, path, token="x" * 43)[0] == 403, path
    assert request(server, "/api/halt", "POST", token=None)[0] == 401
    # the login page is all "/" shows, and it carries no data
    status, _, body = request(server, "/", token=None)
    assert b'name="token"' in body and b"equity" not in body


def test_url_token_becomes_a_strict_httponly_cookie(served):
    server, _ = served
    status, headers, _ = request(server, f"/?token={server.token}", token=None)
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"hftcore_token_{server.port}={server.token}")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    with_cookie = {"Cookie": f"hftcore_token_{server.port}={server.token}"}
    assert request(server, "/api/view", headers=with_cookie, token=None)[0] == 200
    assert request(server, "/", headers=with_cookie, token=None)[0] == 200
    bad = {"Cookie": f"hftcore_token_{server.port}=forged-forged-forged"}
    assert request(server, "/api/view", headers=bad, token=None)[0] == 403


def test_wrong_host_or_origin_is_refused(served):
    server, _ = served
    port = server.port
    for host in (f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}", f"attacker:{port}"):
        status, _, body = request(server, "/api/view", host=host)
        assert status == 403 and b"SBIN" not in body, host
    assert request(server, "/api/view", host=f"localhost:{port}")[0] == 200
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null",
                   f"https://127.0.0.1:{port}"):
        assert request(server, "/api/view", headers={"Origin": origin})[0] == 403, origin
    assert request(server, "/api/view", headers={"Origin": f"http://127.0.0.1:{port}"})[0] == 200


def test_security_headers_on_every_answer(served):
    server, _ = served
    for path, token in (("/", True), ("/api/view", True), ("/static/app.js", True),
                        ("/api/view", None), ("/nope", True)):
        headers = request(server, path, token=token)[1]
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp
        assert headers["x-content-type-options"] == "nosniff"
    assert request(server, "/", host="evil:1")[1]["x-frame-options"] == "DENY"


def test_token_file_is_private_and_removed_on_stop(tmp_path):
    path = tmp_path / "run" / "dash.token"
    server = DashboardServer(DashboardFeed(EventBus()), port=0, token_file=path).start()
    try:
        assert read_token(path) == server.token and len(server.token) >= 40
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert server.url == f"http://127.0.0.1:{server.port}/?token={server.token}"
    finally:
        server.stop()
    assert not path.exists()
    other = DashboardServer(DashboardFeed(EventBus()), port=0)
    try:
        assert other.token != server.token
    finally:
        other.stop()


class Stream:
    """A raw SSE client: reads ``data:`` frames on a thread."""

    def __init__(self, server, read=True, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(20)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.sendall(f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                          f"Authorization: Bearer {server.token}\r\n\r\n".encode())
        self.frames = []
        self.status = None
        self.closed = threading.Event()
        if read:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = bytearray()
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                start = max(len(buf) - 1, 0)
                buf += chunk
                if self.status is None and b"\r\n" in buf:
                    self.status = int(bytes(buf).split(b" ", 2)[1])
                end = buf.find(b"\n\n", start)
                while end >= 0:
                    event = bytes(buf[:end])
                    del buf[:end + 2]
                    for line in event.split(b"\n"):
                        # chunked transfer: frame lines arrive intact (one chunk per frame)
                        if line.startswith(b"data: "):
                            self.frames.append(line[6:])
                    end = buf.find(b"\n\n")
        except OSError:
            pass
        self.closed.set()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)      # wakes the reader; sends the FIN
        except OSError:
            pass
        self.sock.close()


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_one_serialisation_per_tick_shared_by_every_client(served):
    server, bus = served
    clients = [Stream(server) for _ in range(5)]
    try:
        assert wait_for(lambda: all(len(c.frames) >= 1 for c in clients))
        built = server.broadcast.frames
        time.sleep(0.5)                                   # nothing changed: nothing built
        assert server.broadcast.frames == built
        bus.publish("order.rejected", {"order_id": "R9", "symbol": "TCS", "side": "SELL",
                                       "quantity": 1, "rule": "rate", "message": "10/s",
                                       "ts": T0 * NS})
        assert wait_for(lambda: all(any(b'"R9"' in f for f in c.frames) for c in clients))
        assert server.broadcast.frames == built + 1       # one build for five clients
        newest = {c.frames[-1] for c in clients}
        assert len(newest) == 1                           # the very same bytes
        view = json.loads(newest.pop())
        assert view["banners"][0]["text"].startswith("REJECTED SELL 1 TCS [rate]")
    finally:
        for c in clients:
            c.close()


def test_streams_are_bounded(tmp_path):
    server = DashboardServer(DashboardFeed(EventBus()), port=0, max_clients=2,
                             interval=0.05).start()
    clients = [Stream(server) for _ in range(2)]
    try:
        assert wait_for(lambda: all(c.frames for c in clients))
        assert request(server, "/api/stream")[0] == 503
        assert server.broadcast.refused == 1
        assert request(server, "/api/view")[0] == 200     # other routes still answer
        clients[0].close()
        assert wait_for(lambda: len(server.broadcast.clients) == 1)
        third = Stream(server)
        assert wait_for(lambda: third.frames)
        third.close()
    finally:
        for c in clients:
            c.close()
        server.stop()


def test_a_client_that_stops_reading_is_dropped_and_others_keep_going():
    bus = EventBus()
    feed = DashboardFeed(bus, max_signals=1)
    server = DashboardServer(feed, port=0, interval=0.05, send_timeout=0.5).start()
    stuck = Stream(server, read=False, rcvbuf=4096)
    reader = Stream(server)
    try:
        big = "x" * 200_000                               # 200 kB frames: buffers fill fast
        i = 0

        def more():
            nonlocal i
            i += 1
            bus.publish("signals.raw", {"symbol": "SBIN", "strategy": "s", "action": "BUY",
                                        "reason": big + str(i), "ts": T0 * NS})
            return server.broadcast.dropped == 1
        assert wait_for(more, timeout=30)
        n = len(reader.frames)
        assert wait_for(lambda: more() and len(reader.frames) > n + 2)
        assert server.broadcast.dropped == 1 and reader.status == 200
    finally:
        stuck.close()
        reader.close()
        server.stop()


def test_half_open_connections_are_closed_by_the_server():
    server = DashboardServer(DashboardFeed(EventBus()), port=0, header_timeout=1.0).start()
    socks = []
    try:
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            if i % 2:      # half of them trickle an incomplete request head
                s.sendall(f"GET /api/view HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
            socks.append(s)
        started = time.monotonic()
        closed = 0
        for s in socks:
            s.settimeout(max(0.1, 8 - (time.monotonic() - started)))
            try:
                closed += s.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
        assert closed == 100
        assert time.monotonic() - started < 8
        assert request(server, "/api/view")[0] == 200     # and the server still serves
    finally:
        for s in socks:
            s.close()
        server.stop()


def test_halt_route_needs_token_origin_and_csrf(tmp_path):
    bus = EventBus()
    feed = DashboardFeed(bus)
    halted = []
    server = DashboardServer(feed, port=0, allow_halt=True, on_halt=halted.append).start()
    try:
        origin = {"Origin": f"http://127.0.0.1:{server.port}"}
        csrf = json.loads(request(server, "/api/session")[2])["csrf"]
        assert request(server, "/api/halt", "GET")[0] == 405
        assert request(server, "/api/halt", "POST", headers=origin)[0] == 403          # no CSRF
        assert request(server, "/api/halt", "POST", headers={"X-CSRF-Token": csrf})[0] == 403
        assert request(server, "/api/halt", "POST", headers={
            "Origin": "http://evil.example", "X-CSRF-Token": csrf})[0] == 403
        assert request(server, "/api/halt", "POST", token=None,
                       headers={**origin, "X-CSRF-Token": csrf})[0] == 401
        assert not halted and not bus.get_recent_events("risk.halted")
        status, _, body = request(server, "/api/halt", "POST",
                                  headers={**origin, "X-CSRF-Token": csrf})
        assert status == 200 and json.loads(body)["halted"]
        assert halted == ["halted from the dashboard"]
        (event,) = bus.get_recent_events("risk.halted")
        assert event["payload"]["rule"] == "manual"
        assert feed.get_view()["banners"][0]["level"] == "halt"
    finally:
        server.stop()
    readonly = DashboardServer(feed, port=0).start()
    try:
        csrf = json.loads(request(readonly, "/api/session")[2])["csrf"]
        assert request(readonly, "/api/halt", "POST", headers={
            "Origin": f"http://127.0.0.1:{readonly.port}", "X-CSRF-Token": csrf})[0] == 404
    finally:
        readonly.stop()


def test_constructor_checks():
    feed = DashboardFeed(EventBus())
    with pytest.raises(ValueError, match="loopback"):
        DashboardServer(feed, host="0.0.0.0")
    for bad in ({"port": -1}, {"port": 70000}, {"token": "short"}, {"token": "a" * 20 + "<"},
                {"max_clients": 0}, {"interval": 0}):
        with pytest.raises(ValueError):
            DashboardServer(feed, **bad)
    with pytest.raises(ValueError):
        DashboardServer(object())


def test_binding_beyond_loopback_needs_the_flag(capsys, tmp_path):
    assert main(["paper", "--dashboard", "--bind", "0.0.0.0", "--port", "0", "--duration", "1",
                 "--checkpoint-dir", str(tmp_path / "ck")]) == 2
    assert "--i-know" in capsys.readouterr().err


def test_dashboard_command_reads_a_running_session(served, capsys, monkeypatch, tmp_path):
    server, _ = served
    port = str(server.port)
    assert main(["dashboard", "--port", port, "--token", server.token]) == 0
    out = capsys.readouterr().out
    assert "status running" in out and "SBIN" in out
    assert "12,00,000.00" in out and "11,99,998.92" in out    # Indian digit grouping
    assert "COMPLETE" in out and "10:15:00" in out            # the order, on IST market time
    assert main(["dashboard", "--port", port, "--token", server.token, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["portfolio"]["exposure"] == 4500.25
    # the token file the paper command writes is found by port
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    from hftcore.web import token_path, write_token
    write_token(token_path(server.port), server.token)
    assert main(["dashboard", "--port", port]) == 0
    assert "SBIN" in capsys.readouterr().out
    assert main(["dashboard", "--port", port, "--token", "w" * 43]) == 2
    assert "wrong or old token" in capsys.readouterr().err
    assert main(["dashboard", "--port", "1", "--token", server.token]) == 2
    assert "no paper session" in capsys.readouterr().err


def test_paper_prints_fills_as_they_happen_unless_quiet(tmp_path, capsys):
    data = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles" / "INFY.csv"
    args = ["paper", "--feed", f"replay:{data}", "--speed", "1000000", "--duration", "20"]
    assert main([*args, "--checkpoint-dir", str(tmp_path / "ck1")]) == 0
    out = capsys.readouterr().out
    assert "net PnL" in out
    fills = [line for line in out.splitlines() if "  FILL   " in line]
    assert fills and " INFY " in fills[0] and " @ " in fills[0] and "charges" in fills[0]
    assert main([*args, "-q", "--checkpoint-dir", str(tmp_path / "ck2")]) == 0
    out = capsys.readouterr().out
    assert "net PnL" in out and "  FILL   " not in out


def test_inr_grouping():
    from hftcore.console import inr
    assert inr(1234567.891) == "12,34,567.89"
    assert inr(-517543.25) == "-5,17,543.25"
    assert inr(999.5) == "999.50" and inr(1000, 0) == "1,000" and inr(100000, 0) == "1,00,000"
    assert inr(-0.001) == "0.00" and inr(None) == "-" and inr(float("nan")) == "-"
    assert inr(12345678901.0) == "12,34,56,78,901.00"


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_write_token_tightens_an_existing_file(tmp_path):
    from hftcore.web import write_token
    path = tmp_path / "t.token"
    path.write_text("old")
    path.chmod(0o644)
    write_token(path, "n" * 43)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and read_token(path) == "n" * 43


def test_static_files_ship_with_the_package():
    import hftcore.web
    static = Path(hftcore.web.__file__).with_name("web_static")
    for name in ("index.html", "login.html", "app.js", "app.css"):
        assert (static / name).stat().st_size > 300, name
    for name in ("index.html", "login.html"):         # the CSP forbids inline script/style
        html = (static / name).read_text()
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE) is None   # no inline handler



def test_serve_session_shows_the_capital_before_the_first_fill_and_halts(capsys):
    from hftcore.feeds import SyntheticFeed
    from hftcore.session import PaperSession
    from hftcore.web import serve_session
    session = PaperSession(SyntheticFeed(["SBIN"], seed=3), capital=250_000.0)
    server = serve_session(session, port=0, token_file=False)
    try:
        assert main(["dashboard", "--port", str(server.port), "--token", server.token]) == 0
        out = capsys.readouterr().out
        for label in ("capital", "cash", "equity"):
            assert f"{label:>16} {'2,50,000.00':>16}" in out, label
        batches = session.feed.batches(60.0)
        for _ in range(5):
            session.step(next(batches))
        view = json.loads(request(server, "/api/view")[2])
        assert view["clock"]["market_ts"] == session.now_ns / NS          # the session's clock
        assert [s["symbol"] for s in view["stale"]] == ["SBIN"] and not view["stale"][0]["stale"]
        csrf = json.loads(request(server, "/api/session")[2])["csrf"]
        assert request(server, "/api/halt", "POST", headers={
            "Origin": f"http://127.0.0.1:{server.port}", "X-CSRF-Token": csrf})[0] == 200
        assert session.execution.halted == "halted from the dashboard"
    finally:
        server.stop()


def test_merged_equity_history_is_resent_at_most_every_few_seconds(monkeypatch):
    import hftcore.web
    monkeypatch.setattr(hftcore.web, "FULL_HISTORY_EVERY", 1.0)
    bus = EventBus(0)
    feed = DashboardFeed(bus, max_points=16)          # merges every few dozen updates
    server = DashboardServer(feed, port=0, interval=0.05).start()
    client = Stream(server)
    try:
        assert wait_for(lambda: client.frames)
        i, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < 3:
            for _ in range(20):
                bus.publish("portfolio.updated", {"equity": 1e6 + i, "ts": (T0 + i) * NS})
                i += 1
            time.sleep(0.01)
        final = feed.get_equity_history()

        def page_points():                 # apply the frames the way the page does
            points, generation = [], None
            for e in (json.loads(f)["equity"] for f in list(client.frames)):
                if e is None:
                    continue
                if e["offset"] == 0:
                    points, generation = e["points"], e["generation"]
                elif e["generation"] == generation and e["offset"] <= len(points):
                    points = points[:e["offset"]] + e["points"]
            return points
        # the last merged history still goes out once its turn comes, with no new event
        assert wait_for(lambda: page_points() == final["points"], timeout=5)
        tails = [json.loads(f)["equity"] for f in client.frames]
        full = [e for e in tails if e and e["offset"] == 0 and e["count"] > 1]
        assert any(e is None for e in tails) and 2 <= len(full) <= 6
    finally:
        client.close()
        server.stop()

