"""hftcore data fetch and hftcore paper --feed kite against the local Kite server."""

import datetime as dt
import threading
import time

import pytest

pytest.importorskip("kiteconnect")
pytest.importorskip("websockets")

from hftcore.cli import main
from hftcore.feeds import IST
from hftcore.kite import auth
from hftcore.kite.server import KiteServer


@pytest.fixture
def srv(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("KITE_API_KEY", "KITE_API_SECRET", "KITE_ACCESS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with KiteServer(heartbeat_s=0.1) as s:
        s.token_file = auth.save_token(tmp_path / "token.json", s.api_key, s.access_token)
        yield s


def test_kite_data_fetch_writes_candles_that_backtest_reads(srv, tmp_path, capsys):
    out = tmp_path / "data"
    rc = main(["data", "fetch", "--symbols", "INFY", "TCS", "--from", "2026-11-23", "--to",
               "2026-11-24", "--interval", "15minute", "--out", str(out),
               "--token-file", str(srv.token_file), "--kite-root", srv.url])
    assert rc == 0
    assert "INFY: 50 candles" in capsys.readouterr().out          # 2 days x 25 candles
    lines = (out / "INFY.csv").read_text().splitlines()
    assert lines[0] == "date,open,high,low,close,volume"
    assert lines[1].startswith("2026-11-23 09:15:00+05:30,")
    hist = [p for m, p in srv.requests if p.startswith("/instruments/historical/")]
    assert hist == ["/instruments/historical/408065/15minute",
                    "/instruments/historical/2953217/15minute"]
    rc = main(["backtest", "--data", str(out), "--out", str(tmp_path / "rep"),
               "--symbols", "INFY", "TCS"])
    assert rc == 0


def test_kite_data_fetch_with_an_expired_token_fails_in_one_line(srv, tmp_path, capsys):
    old = dt.datetime(2026, 11, 20, 9, 0, tzinfo=IST)
    path = auth.save_token(tmp_path / "old.json", srv.api_key, srv.access_token,
                           login_time=old)
    rc = main(["data", "fetch", "--symbols", "INFY", "--from", "2026-11-23", "--to",
               "2026-11-23", "--token-file", str(path), "--kite-root", srv.url])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "expired at 2026-11-21 06:00 IST" in err and srv.access_token not in err


def test_kite_paper_on_live_ticks(srv, tmp_path, capsys):
    stop = threading.Event()

    def ticks():
        k = 0
        while not stop.is_set():
            k += 1
            srv.push_ticks({"INFY": 1580.0 + (k % 7) * 0.05, "TCS": 3120.0 + (k % 5) * 0.1},
                           quantity=3)
            time.sleep(0.02)
    pusher = threading.Thread(target=ticks, daemon=True)
    pusher.start()
    try:
        rc = main(["paper", "--feed", "kite", "--symbols", "INFY", "TCS", "--duration", "1.2",
                   "--token-file", str(srv.token_file), "--kite-root", srv.url,
                   "--kite-ws", srv.ws_url, "--checkpoint-dir", str(tmp_path / "ck"),
                   "--square-off-time", "none"])
    finally:
        stop.set()
        pusher.join(2)
    out = capsys.readouterr().out
    assert rc == 0
    ticks = int(out.split("ticks ", 1)[1].split()[0].replace(",", ""))
    assert ticks >= 20                                   # ~2 symbols x 50 pushes a second
    assert srv.ws_connects == 1 and not srv.all_orders()  # paper: nothing sent to Kite
