"""No Kite secret (API key, API secret, access token) in any output of a live run."""

import io
import json
import logging
import time

import pytest

kiteconnect = pytest.importorskip("kiteconnect")
pytest.importorskip("websockets")

from hftcore.cli import main
from hftcore.kite import auth
from hftcore.kite.broker import KiteBroker
from hftcore.kite.feed import KiteTickerFeed
from hftcore.kite.server import KiteServer
from hftcore.orders import OrderIntent
from hftcore.services import DashboardFeed, EventBus, ExecutionService, PortfolioService


def test_kite_no_secret_in_logs_exceptions_snapshots_or_console(tmp_path, monkeypatch, capsys):
    srv = KiteServer(api_key="livekey7f3a9c", api_secret="livesecret5e1d2b8",
                     heartbeat_s=0.05, fill_delay=0.02, timeout_sleep=0.5).start()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)                        # urllib3, websockets: everything
    try:
        monkeypatch.setenv("KITE_API_SECRET", srv.api_secret)
        token_file = tmp_path / "token.json"
        assert main(["login", "--api-key", srv.api_key, "--request-token", srv.request_token,
                     "--token-file", str(token_file), "--root", srv.url]) == 0
        login_out = capsys.readouterr()
        creds = auth.load_credentials(token_file, env={"KITE_API_SECRET": srv.api_secret})
        auth.install_redaction(creds.api_key, creds.api_secret, creds.access_token)
        kite = kiteconnect.KiteConnect(creds.api_key, root=srv.url, timeout=0.3)
        kite.set_access_token(creds.access_token)
        bus = EventBus(1000)
        dashboard = DashboardFeed(bus)
        feed = KiteTickerFeed(creds.api_key, creds.access_token, kite_instruments(),
                              symbols=["INFY"], url=srv.ws_url, bus=bus,
                              stale_after=0.3).start()
        assert feed.wait_connected(3)
        broker = KiteBroker(kite, ticker=feed, lookup_delay=0.02)
        portfolio = PortfolioService(1_000_000.0, bus)
        execution = ExecutionService(broker, portfolio, bus, "live", 100)
        execution.execute(OrderIntent("INFY", "BUY", 0.9, "test", quantity=2))
        srv.inject("POST", "/orders", "timeout")
        broker.place_order("INFY", "BUY", 1)
        srv.silence()                                  # the watchdog logs and publishes
        deadline = time.monotonic() + 3
        while feed.stale_events == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.silence(False)
        srv.expire_token()
        broker.place_order("INFY", "BUY", 1)           # TokenException -> halted
        srv.drop_connections()                         # reconnect refused: 403
        deadline = time.monotonic() + 3
        while not feed.halted and time.monotonic() < deadline:
            time.sleep(0.02)
        assert broker.halted and feed.halted
        try:
            kite.orders()
        except Exception as exc:                        # an exception a user would see
            logging.getLogger("hftcore.test").exception("kite call failed: %s", type(exc).__name__)
        feed.stop()
        outputs = {
            "logs": stream.getvalue(),
            "login console": login_out.out + login_out.err,
            "console": "".join(capsys.readouterr()),
            "dashboard snapshot": json.dumps(dashboard.get_snapshot(), default=str),
            "bus events": json.dumps([e.to_dict() for e in bus.get_recent_events(limit=1000)],
                                     default=str),
            "broker": broker.halt_reason + repr([o.__dict__ if hasattr(o, "__dict__") else o
                                                 for o in broker.open_orders()]),
            "feed": json.dumps(feed.stats()) + str(feed.error),
            "credentials": repr(creds) + str(creds),
        }
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        srv.stop()
    assert "websockets" in outputs["logs"] and "urllib3" in outputs["logs"]   # really DEBUG
    assert "halted" in outputs["logs"]
    for name, text in outputs.items():
        for secret in (srv.api_secret, creds.access_token):
            assert secret not in text, f"a secret leaked into the {name}"
        if name != "login console":                     # the login URL carries the key
            assert srv.api_key not in text, f"the API key leaked into the {name}"


def kite_instruments():
    from hftcore.instruments import InstrumentTable
    return InstrumentTable.nse_default()
