"""The instruments dump: download through the real client, daily cache, keys."""

import datetime as dt

import pytest

kiteconnect = pytest.importorskip("kiteconnect")

from hftcore.instruments import InstrumentTable
from hftcore.kite.instruments import cache_path, ist_today, load_kite_instruments
from hftcore.kite.server import KiteServer

DAY = dt.date(2026, 11, 27)


@pytest.fixture
def srv():
    with KiteServer() as s:
        yield s


def _kite(srv):
    k = kiteconnect.KiteConnect(srv.api_key, root=srv.url, timeout=1)
    k.set_access_token(srv.access_token)
    return k


def test_kite_instruments_download_keys_by_exchange_symbol_and_token(srv, tmp_path):
    table = load_kite_instruments(_kite(srv), tmp_path, today=DAY)
    assert cache_path(tmp_path, DAY).exists()
    assert table.exchanges() == ["NSE", "BSE", "NFO"]
    nse, bse = table.get("RELIANCE"), table.get("BSE:RELIANCE")
    assert (nse.exchange, bse.exchange) == ("NSE", "BSE") and nse.id != bse.id
    assert table.by_token(128083204) is bse and table.by_token(738561) is nse
    fut = table.get("NFO:NIFTY26DECFUT")
    assert (fut.lot_size, fut.tick_size, fut.banded) == (75, 0.1, False)   # dump is authoritative
    assert fut.tick_paise(2_421_000) == 10
    assert table.get("NIFTY 50") is None                                  # indices: not tradable


def test_kite_instruments_cache_is_used_the_same_day(srv, tmp_path):
    kite = _kite(srv)
    load_kite_instruments(kite, tmp_path, today=DAY)
    n = sum(1 for m, p in srv.requests if p.startswith("/instruments"))
    load_kite_instruments(kite, tmp_path, today=DAY)
    assert sum(1 for m, p in srv.requests if p.startswith("/instruments")) == n
    load_kite_instruments(kite, tmp_path, today=DAY + dt.timedelta(days=1))   # a new day
    assert sum(1 for m, p in srv.requests if p.startswith("/instruments")) == 2 * n


def test_kite_instruments_fall_back_to_the_cache_then_the_bundled_table(srv, tmp_path):
    load_kite_instruments(_kite(srv), tmp_path, today=DAY)
    srv.inject("GET", "/instruments", "html500", times=3)
    stale = load_kite_instruments(_kite(srv), tmp_path, today=DAY + dt.timedelta(days=1))
    assert stale.get("NFO:NIFTY26DECFUT") is not None            # yesterday's dump
    bundled = load_kite_instruments(None, tmp_path / "empty", today=DAY)
    assert bundled.symbols == InstrumentTable.nse_default().symbols


def test_kite_instruments_day_is_the_ist_date():
    late_utc = dt.datetime(2026, 11, 26, 20, 0, tzinfo=dt.timezone.utc)     # 01:30 IST on the 27th
    assert ist_today(late_utc) == DAY
