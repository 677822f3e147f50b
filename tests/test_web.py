"""The dashboard server without a browser: routes, JSON, the event stream, and the
``hftcore dashboard`` command against it."""
import json
import urllib.error
import urllib.request

import pytest

from hftcore.cli import main
from hftcore.services import DashboardFeed, EventBus
from hftcore.web import DashboardServer


@pytest.fixture
def served():
    bus = EventBus()
    feed = DashboardFeed(bus)
    bus.publish("order.filled", {"symbol": "SBIN", "side": "BUY", "quantity": 5, "price": 900.05})
    bus.publish("portfolio.updated", {"positions": [{"symbol": "SBIN", "quantity": 5}],
                                      "cash": 95499.75, "equity": 100000.0, "realized_pnl": 0.0,
                                      "unrealized_pnl": 0.0, "exposure": 4500.25,
                                      "position_count": 1})
    feed.update_system_state("status", "running")
    server = DashboardServer(feed, port=0).start()
    yield server, bus
    server.stop()


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type"), resp.read()


def test_page_snapshot_and_equity_routes(served):
    server, _ = served
    status, ctype, body = get(server.url)
    assert status == 200 and ctype.startswith("text/html") and b"EventSource" in body
    status, ctype, body = get(server.url + "api/snapshot")
    snap = json.loads(body)
    assert ctype == "application/json" and snap["portfolio"]["exposure"] == 4500.25
    assert snap["positions"][0]["symbol"] == "SBIN" and snap["orders"][0]["price"] == 900.05
    assert json.loads(get(server.url + "api/equity")[2]) == [[pytest.approx(
        snap["system"]["last_event_ts"], abs=10), 100000.0]]
    with pytest.raises(urllib.error.HTTPError) as err:
        get(server.url + "nope")
    assert err.value.code == 404


def test_event_stream_sends_the_snapshot(served):
    server, bus = served
    with urllib.request.urlopen(server.url + "api/stream", timeout=10) as resp:
        assert resp.headers.get("Content-Type") == "text/event-stream"
        line = resp.readline()
        assert line.startswith(b"data: ")
        assert json.loads(line[6:])["system"]["status"] == "running"


def test_only_loopback():
    with pytest.raises(ValueError):
        DashboardServer(DashboardFeed(EventBus()), host="0.0.0.0")


def test_dashboard_command_reads_a_running_session(served, capsys):
    server, _ = served
    port = server.httpd.server_address[1]
    assert main(["dashboard", "--port", str(port)]) == 0
    out = capsys.readouterr().out
    assert "status running" in out and "SBIN" in out
    assert main(["dashboard", "--port", "1"]) == 2
    assert "no paper session" in capsys.readouterr().err


def test_paper_replays_a_csv(tmp_path, capsys):
    from pathlib import Path
    data = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles" / "INFY.csv"
    assert main(["paper", "--feed", f"replay:{data}", "--speed", "1000000", "--duration", "20",
                 "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    assert "net PnL" in capsys.readouterr().out
