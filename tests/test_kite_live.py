"""A whole `hftcore live` session against the local Kite server."""

import csv
import datetime as dt
import math
import threading
import time
from collections import Counter

import pytest

pytest.importorskip("kiteconnect")
pytest.importorskip("websockets")

from hftcore.cli import main
from hftcore.feeds import IST
from hftcore.kite import auth
from hftcore.kite.server import KiteServer

CONFIG = """symbols: [INFY]
timeframes: {primary: 1m, secondary: 5m}
indicators: {ema_fast: 3, ema_slow: 8}
strategies:
  ema_trend: {weight: 1.0}
execution: {quantity: 5, max_position_size: 20}
"""


def _ist_epoch(hh, mm):
    today = dt.datetime.now(IST).date()
    return int(dt.datetime.combine(today, dt.time(hh, mm), IST).timestamp())


@pytest.fixture
def live(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("KITE_API_KEY", "KITE_API_SECRET", "KITE_ACCESS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    srv = KiteServer(heartbeat_s=0.1, fill_delay=0.002).start()
    token = auth.save_token(tmp_path / "token.json", srv.api_key, srv.access_token)
    (tmp_path / "my.yaml").write_text(CONFIG)
    stop = threading.Event()

    def run(start_epoch, seconds, *extra, step=5):
        def push():
            # ticks only once the session takes full packets: a quote packet carries no
            # exchange time and is stamped with the wall clock, which after 15:20 IST
            # ends the simulated 10:00 session at once (the test then saw one tick)
            end = time.monotonic() + 10
            while not stop.is_set() and time.monotonic() < end and not any(
                    "full" in subs.values() for subs in list(srv._clients.values())):
                time.sleep(0.005)
            k = 0
            while not stop.is_set():
                k += 1
                px = round((1580 + 20 * math.sin(k / 60.0)) / 0.05) * 0.05
                srv.push_ticks({"INFY": round(px, 2)}, quantity=5,
                               exchange_ts=start_epoch + step * k)
                time.sleep(0.002)
        th = threading.Thread(target=push, daemon=True)
        th.start()
        try:
            return main(["live", "--config", str(tmp_path / "my.yaml"), "--duration",
                         str(seconds), "--token-file", str(token), "--kite-root", srv.url,
                         "--kite-ws", srv.ws_url, "--kite-mode", "full",
                         "--checkpoint-dir", str(tmp_path / "ck"),
                         "--out", str(tmp_path / "report"), *extra])
        finally:
            stop.set()
            th.join(2)
    yield srv, run, tmp_path
    srv.stop()


def _fills_csv(path):
    with open(path) as fh:
        return [(r["order_id"], r["side"], int(r["quantity"]), round(float(r["price"]) * 100))
                for r in csv.DictReader(fh)]


def test_kite_live_needs_the_confirmation_flag(live, capsys):
    srv = live[0]
    assert main(["live", "--symbols", "INFY"]) == 2
    assert "--confirm-live" in capsys.readouterr().err
    assert srv.requests == []


def test_kite_live_session_ends_with_the_servers_fills(live, capsys):
    srv, run, tmp = live
    assert run(_ist_epoch(10, 0), 4, "--confirm-live", step=10) == 0
    out = capsys.readouterr()
    assert "WARNING: LIVE TRADING" in out.err and "reconciled" in out.err
    ours = _fills_csv(tmp / "report" / "fills.csv")
    theirs = [(t["order_id"], t["transaction_type"], t["quantity"],
               round(t["average_price"] * 100)) for t in srv.trades]
    assert len(theirs) >= 4                              # the strategy really traded
    assert Counter(ours) == Counter(theirs)
    assert {o["tag"][:2] for o in srv.all_orders()} == {"hc"}
    assert all(o["market_protection"] == -1 for o in srv.all_orders())


def test_kite_live_squares_off_at_1520_ist(live, capsys):
    srv, run, _ = live
    t0 = time.monotonic()
    assert run(_ist_epoch(14, 0), 20, "--confirm-live") == 0
    assert time.monotonic() - t0 < 15                    # the day ended at 15:20, not --duration
    net = sum(t["quantity"] * (1 if t["transaction_type"] == "BUY" else -1) for t in srv.trades)
    assert srv.trades and net == 0                       # flat at the exchange
    out = capsys.readouterr().out
    assert int(out.split("square-offs ")[1].split()[0]) >= 1


def test_kite_live_refuses_to_trade_on_a_reconciliation_mismatch(live, capsys):
    srv, run, _ = live
    srv.set_position("INFY", 7, 1500.0)
    assert run(_ist_epoch(10, 0), 1, "--confirm-live") == 2
    err = capsys.readouterr().err
    assert "refusing to trade" in err and "INFY: Kite 7, local 0" in err
    assert srv.all_orders() == []
    assert run(_ist_epoch(10, 0), 1.5, "--confirm-live", "--adopt-broker-positions") == 0
    assert "reconciliation mismatch" in capsys.readouterr().err


def test_kite_live_token_expiry_mid_session_halts_trading(live, capsys):
    srv, run, _ = live
    def expire():                                        # once the session is trading
        end = time.monotonic() + 5
        while not srv._clients and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.5)
        srv.expire_token()
        srv.drop_connections()
    threading.Thread(target=expire, daemon=True).start()
    t0 = time.monotonic()
    assert run(_ist_epoch(10, 0), 10, "--confirm-live") == 0
    assert time.monotonic() - t0 < 8                     # stopped, not looping until --duration
    err = capsys.readouterr().err
    assert "trading halted" in err and "403" in err
    n = len(srv.all_orders())
    assert srv.ws_refused == 1                           # one refused reconnect, no loop
    assert len(srv.all_orders()) == n
