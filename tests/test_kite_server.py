"""The local Kite server speaks Kite Connect to the real ``kiteconnect`` client."""

import gzip
import json
import struct
import time

import pytest

kiteconnect = pytest.importorskip("kiteconnect")
pytest.importorskip("websockets")
from kiteconnect import exceptions as kex
from websockets.sync.client import connect

from hftcore.kite.server import KiteServer, TickState, encode_frame, encode_packet


@pytest.fixture
def srv():
    with KiteServer(heartbeat_s=0.05, timeout_sleep=0.5) as s:
        yield s


@pytest.fixture
def kite(srv):
    k = kiteconnect.KiteConnect(srv.api_key, root=srv.url, timeout=0.25)
    k.set_access_token(srv.access_token)
    return k


def _market(kite, **kw):
    args = {"variety": "regular", "exchange": "NSE", "tradingsymbol": "INFY",
            "transaction_type": "BUY", "quantity": 5, "product": "MIS", "order_type": "MARKET"}
    args.update(kw)
    return kite.place_order(**args)


def _wait(pred, timeout=2.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def test_kite_server_session_token_checks_the_checksum(srv):
    k = kiteconnect.KiteConnect(srv.api_key, root=srv.url, timeout=1)
    with pytest.raises(kex.TokenException):
        k.generate_session(srv.request_token, "not-the-secret")
    data = k.generate_session(srv.request_token, srv.api_secret)
    assert data["access_token"] == srv.access_token
    assert data["login_time"].year >= 2026          # the client parsed the IST string


def test_kite_server_market_order_needs_market_protection(kite, srv):
    with pytest.raises(kex.InputException, match="market protection"):
        _market(kite)
    with pytest.raises(kex.InputException):
        _market(kite, market_protection=0)
    assert srv.all_orders() == []
    oid = _market(kite, market_protection=-1, tag="abc1")
    assert _wait(lambda: kite.order_history(oid)[-1]["status"] == "COMPLETE")
    trades = kite.order_trades(oid)
    assert [t["quantity"] for t in trades] == [5]
    assert kite.orders()[0]["tag"] == "abc1"
    assert kite.positions()["net"][0]["quantity"] == 5


def test_kite_server_rejects_a_long_or_odd_tag(kite):
    with pytest.raises(kex.InputException, match="Tag"):
        _market(kite, market_protection=-1, tag="x" * 21)
    with pytest.raises(kex.InputException, match="Tag"):
        _market(kite, market_protection=-1, tag="a-b")


def test_kite_server_auth_and_token_expiry(kite, srv):
    bad = kiteconnect.KiteConnect(srv.api_key, root=srv.url, timeout=1)
    bad.set_access_token("wrong")
    with pytest.raises(kex.TokenException):
        bad.orders()
    assert kite.orders() == []
    srv.expire_token()
    with pytest.raises(kex.TokenException) as err:
        kite.orders()
    assert err.value.code == 403


def test_kite_server_partial_then_cancel_and_reject_after_accept(kite, srv):
    srv.script("partial", quantity=2)
    oid = _market(kite, market_protection=-1)
    assert _wait(lambda: kite.order_history(oid)[-1]["filled_quantity"] == 2)
    kite.cancel_order("regular", oid)
    assert _wait(lambda: kite.order_history(oid)[-1]["status"] == "CANCELLED")
    row = kite.order_history(oid)[-1]
    assert (row["filled_quantity"], row["cancelled_quantity"]) == (2, 3)
    srv.script("reject", message="RMS: margin")
    oid2 = _market(kite, market_protection=-1)           # HTTP 200 ...
    assert _wait(lambda: kite.order_history(oid2)[-1]["status"] == "REJECTED")
    assert kite.order_history(oid2)[-1]["status_message"] == "RMS: margin"


def test_kite_server_injected_failures_surface_as_the_client_raises_them(kite, srv):
    srv.inject("GET", "/orders", "html500")
    with pytest.raises(kex.DataException, match="Unknown Content-Type"):
        kite.orders()
    srv.inject("GET", "/orders", "no_content_type")
    with pytest.raises(KeyError):
        kite.orders()
    srv.inject("GET", "/orders", "429")
    with pytest.raises(kex.NetworkException) as err:
        kite.orders()
    assert err.value.code == 429
    srv.inject("POST", "/orders", "timeout")
    import requests
    with pytest.raises(requests.ReadTimeout):
        _market(kite, market_protection=-1, tag="slow1")
    assert len(srv.orders_with_tag("slow1")) == 1        # recorded although unanswered


def test_kite_server_orders_over_ten_a_second_get_429(kite, srv):
    codes = []
    for _ in range(12):
        try:
            _market(kite, market_protection=-1)
            codes.append(200)
        except kex.NetworkException as exc:
            codes.append(exc.code)
    assert codes.count(200) == 10 and codes[-2:] == [429, 429]
    assert srv.max_orders_in_window(1.0) == 10


def test_kite_server_instruments_dump_is_gzipped_csv(kite, srv):
    rows = kite.instruments()
    exchanges = {r["exchange"] for r in rows}
    assert {"NSE", "BSE", "NFO"} <= exchanges
    nfo = kite.instruments("NFO")
    assert all(r["exchange"] == "NFO" for r in nfo) and nfo[0]["lot_size"] == 75
    import urllib.request
    req = urllib.request.Request(srv.url + "/instruments")
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(resp.read()).startswith(b"instrument_token,exchange_token")


def test_kite_server_quotes_and_history(kite):
    ltp = kite.ltp(["NSE:INFY", "NSE:TCS", "NSE:NOPE"])
    assert set(ltp) == {"NSE:INFY", "NSE:TCS"}
    assert kite.ohlc("NSE:INFY")["NSE:INFY"]["ohlc"]["close"] > 0
    candles = kite.historical_data(408065, "2026-11-26 09:15:00", "2026-11-26 10:00:00",
                                   "5minute")
    assert len(candles) == 10
    assert candles[0]["date"].utcoffset().total_seconds() == 19800


def test_kite_server_packets_have_kites_byte_layout():
    t = TickState(408065, 1580.5, last_quantity=3, average_price=1580.0, volume=1234,
                  open=1570.0, high=1590.0, low=1560.0, close=1575.0, last_trade_time=1_700_000_000,
                  exchange_ts=1_700_000_001)
    assert encode_packet(t, "ltp") == struct.pack(">ii", 408065, 158050)
    q = encode_packet(t, "quote")
    assert len(q) == 44 and struct.unpack(">i", q[16:20])[0] == 1234
    f = encode_packet(t, "full")
    assert len(f) == 184 and struct.unpack(">i", f[60:64])[0] == 1_700_000_001
    idx = TickState(256265, 24180.0, close=24000.0, open=24000.0, high=24200.0, low=23900.0)
    assert len(encode_packet(idx, "quote")) == 28 and len(encode_packet(idx, "full")) == 32
    cds = TickState(412675, 83.1234)              # token & 0xFF == 3: CDS, prices * 1e7
    assert struct.unpack(">i", encode_packet(cds, "ltp")[4:])[0] == 831234000
    frame = encode_frame([q, f])
    assert struct.unpack(">HH", frame[:4]) == (2, 44)


def test_kite_server_ticker_heartbeats_ticks_and_order_frames(kite, srv):
    from websockets.exceptions import InvalidStatus
    with pytest.raises(InvalidStatus, match="403"):
        connect(f"{srv.ws_url}/?api_key={srv.api_key}&access_token=bad", open_timeout=1)
    assert srv.ws_refused == 1
    with connect(f"{srv.ws_url}/?api_key={srv.api_key}&access_token={srv.access_token}",
                 open_timeout=1) as ws:
        assert ws.recv(timeout=1) == b"\x00"                      # heartbeat
        tok = srv.token_of("INFY")
        ws.send(json.dumps({"a": "subscribe", "v": [tok]}))
        ws.send(json.dumps({"a": "mode", "v": ["ltp", [tok]]}))
        assert _wait(lambda: bool(srv.subscribe_log) and srv.subscribe_log[-1][0] == "mode")
        srv.push_ticks({"INFY": 1581.0})
        msg = ws.recv(timeout=1)
        while msg == b"\x00":
            msg = ws.recv(timeout=1)
        assert msg == encode_frame([struct.pack(">ii", tok, 158100)])
        _market(kite, market_protection=-1)
        statuses = []
        while "COMPLETE" not in statuses:
            m = ws.recv(timeout=1)
            if isinstance(m, str):
                statuses.append(json.loads(m)["data"]["status"])
        assert statuses == ["OPEN", "COMPLETE"]
