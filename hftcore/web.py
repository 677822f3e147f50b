"""A live web dashboard over DashboardFeed, served on 127.0.0.1 (standard library only).

Routes: ``/`` (the page), ``/api/snapshot`` (the JSON snapshot), ``/api/equity``
(``[[timestamp, equity], ...]``) and ``/api/stream`` (server-sent events: a
snapshot whenever it changes, at most twice a second).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hftcore dashboard</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#f6f8fa;color:#1f2328}
header{background:#0d1117;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:center}
header b{font-size:16px} .pill{background:#238636;border-radius:10px;padding:2px 10px}
main{display:grid;grid-template-columns:1fr 1fr;gap:14px;padding:14px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 14px}
h2{font-size:14px;margin:0 0 8px} table{border-collapse:collapse;width:100%}
td,th{padding:3px 6px;border-bottom:1px solid #eaeef2;text-align:right;
font-variant-numeric:tabular-nums}
th:first-child,td:first-child{text-align:left} .kpi{display:flex;gap:22px;flex-wrap:wrap}
.kpi div{min-width:120px} .kpi span{display:block;color:#59636e;font-size:12px}
.kpi strong{font-size:18px} .wide{grid-column:1 / span 2} .BUY{color:#1a7f37} .SELL{color:#cf222e}
</style></head><body>
<header><b>hftcore</b><span class="pill" id="status">connecting</span>
<span id="mode"></span><span id="events"></span></header>
<main>
<section class="wide"><h2>Portfolio</h2><div class="kpi">
<div><span>cash</span><strong id="cash">-</strong></div>
<div><span>equity</span><strong id="equity">-</strong></div>
<div><span>realized PnL</span><strong id="realized_pnl">-</strong></div>
<div><span>unrealized PnL</span><strong id="unrealized_pnl">-</strong></div>
<div><span>exposure</span><strong id="exposure">-</strong></div>
<div><span>positions</span><strong id="position_count">-</strong></div></div></section>
<section class="wide"><h2>Equity</h2>
<canvas id="chart" width="1100" height="180"></canvas></section>
<section><h2>Positions</h2><table id="positions"><thead><tr><th>symbol</th><th>qty</th>
<th>avg</th><th>last</th><th>unrealized</th><th>realized</th></tr></thead><tbody></tbody></table></section>
<section><h2>Latest orders</h2><table id="orders"><thead><tr><th>symbol</th><th>event</th>
<th>side</th><th>qty</th><th>price</th></tr></thead><tbody></tbody></table></section>
<section class="wide"><h2>Latest signals</h2><table id="signals"><thead><tr><th>symbol</th>
<th>source</th><th>action</th><th>confidence</th><th>reason</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
const money = v => (typeof v === "number") ? v.toFixed(2) : "-";
const esc = s => String(s ?? "").replace(/[&<>]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;"}[c]));
function rows(id, items, cells) {
  document.querySelector("#" + id + " tbody").innerHTML =
    items.map(x => "<tr>" + cells(x).map(c => "<td>" + c + "</td>").join("") + "</tr>").join("");
}
function render(s) {
  const p = s.portfolio || {};
  for (const k of ["cash", "equity", "realized_pnl", "unrealized_pnl", "exposure"])
    document.getElementById(k).textContent = money(p[k]);
  document.getElementById("position_count").textContent = p.position_count ?? "-";
  document.getElementById("status").textContent = s.system.status || "-";
  document.getElementById("mode").textContent = s.system.mode || "";
  const ev = s.system.events || {};
  document.getElementById("events").textContent =
    Object.values(ev).reduce((a, b) => a + b, 0) + " events";
  rows("positions", s.positions, x => [esc(x.symbol), x.quantity, money(x.avg_price),
       money(x.last_price), money(x.unrealized_pnl), money(x.realized_pnl)]);
  rows("orders", s.orders.slice(-15).reverse(), x => [esc(x.symbol), esc(x.type),
       `<span class="${esc(x.side)}">${esc(x.side)}</span>`, x.quantity ?? "",
       x.price !== undefined ? money(x.price) : esc(x.message || "")]);
  rows("signals", s.signals.slice(-15).reverse(), x => [esc(x.symbol),
       esc(x.type === "signals.fused" ? "fused" : (x.strategy || "") + "@" + (x.timeframe || "")),
       `<span class="${esc(x.action)}">${esc(x.action)}</span>`,
       (typeof x.confidence === "number" ? x.confidence.toFixed(2) : "-"), esc(x.reason)]);
}
async function chart() {
  const pts = await (await fetch("/api/equity")).json();
  const c = document.getElementById("chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (pts.length < 2) return;
  const ys = pts.map(p => p[1]), lo = Math.min(...ys), hi = Math.max(...ys) || 1;
  g.strokeStyle = "#1f6feb"; g.lineWidth = 1.5; g.beginPath();
  pts.forEach((p, i) => {
    const x = i / (pts.length - 1) * (c.width - 10) + 5;
    const y = c.height - 5 - (hi > lo ? (p[1] - lo) / (hi - lo) : 0.5) * (c.height - 10);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.stroke();
}
const es = new EventSource("/api/stream");
es.onmessage = m => { render(JSON.parse(m.data)); chart(); };
es.onerror = () => { document.getElementById("status").textContent = "disconnected"; };
</script></body></html>
"""


class DashboardServer:
    """Serve ``feed`` (a DashboardFeed) on http://host:port in a background thread.

    ``port=0`` picks a free port (see ``url``).  Only loopback hosts are allowed.
    """

    def __init__(self, feed, host: str = "127.0.0.1", port: int = 8765):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the dashboard only listens on loopback, not {host!r}")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be 0-65535, got {port!r}")
        self.feed = feed
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):        # keep the terminal for the session
                logger.debug("dashboard: " + fmt, *args)

            def _send(self, code, body: bytes, ctype: str):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/":
                    self._send(200, PAGE.encode(), "text/html; charset=utf-8")
                elif path == "/api/snapshot":
                    self._send(200, json.dumps(server.feed.get_snapshot()).encode(),
                               "application/json")
                elif path == "/api/equity":
                    self._send(200, json.dumps(server.feed.get_equity_curve()).encode(),
                               "application/json")
                elif path == "/api/stream":
                    self._stream()
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _stream(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                last = None
                try:
                    while not server._stopping.is_set():
                        body = json.dumps(server.feed.get_snapshot())
                        if body != last:
                            self.wfile.write(b"data: " + body.encode() + b"\n\n")
                            self.wfile.flush()
                            last = body
                        server._stopping.wait(0.5)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._stopping = threading.Event()
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="hftcore-dashboard")

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        if isinstance(host, bytes):                  # AF_UNIX-style addresses; not ours
            host = host.decode()
        return f"http://{host}:{port}/"

    def start(self) -> "DashboardServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
