"""Instruments, feeds, charges, brokers and the market-data engine."""
import datetime as dt
import logging

import numpy as np
import pytest

from hftcore import (ChargeSchedule, InstrumentTable, MarketDataEngine, PaperBroker,
                     ReplayFeed, SyntheticFeed, ZERO_CHARGES, nse_tick_size, to_paise)
from hftcore.engines import parse_timeframe
from hftcore.feeds import IST, NS, parse_timestamp


# ---------------------------------------------------------------- instruments

@pytest.mark.parametrize("price,tick", [(21.5, 0.01), (249.99, 0.01), (250.0, 0.05),
                                        (999.95, 0.05), (1000.0, 0.10), (4999.9, 0.10),
                                        (5000.0, 0.50), (10000.0, 1.0), (19999.0, 1.0),
                                        (20000.0, 5.0), (151200.0, 5.0)])
def test_nse_tick_size_follows_the_price_band(price, tick):
    assert nse_tick_size(price) == tick


def test_grid_checks_and_snapping():
    inst = InstrumentTable.nse_default().get("RELIANCE")
    assert inst.on_grid(to_paise(1545.20)) and not inst.on_grid(to_paise(1545.25))
    assert inst.snap(1545.26) == 154530 and inst.snap(1545.26, -1) == 154520
    assert to_paise(2500.05) == 250005


def test_to_paise_rejects_non_finite():
    for bad in (float("nan"), float("inf"), "abc", None):
        with pytest.raises(ValueError):
            to_paise(bad)


def test_kite_instruments_csv_loads_and_skips_bad_rows(tmp_path, caplog):
    f = tmp_path / "instruments.csv"
    f.write_text("instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
                 "tick_size,lot_size,instrument_type,segment,exchange\n"
                 "738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.1,1,EQ,NSE,NSE\n"
                 "1,1,BADLOT,X,0,,0,0.05,zero,EQ,NSE,NSE\n"
                 "2,2,NIFTY25DECFUT,X,0,2025-12-25,0,0.05,75,FUT,NFO-FUT,NFO\n")
    with caplog.at_level(logging.WARNING):
        t = InstrumentTable.from_kite_csv(f)
    assert t.symbols == ["RELIANCE"] and t.get("reliance").instrument_token == 738561
    assert "BADLOT" not in t and "malformed" in caplog.text


def test_instrument_table_rejects_nonsense():
    t = InstrumentTable()
    for kwargs in ({"lot_size": 0}, {"tick_size": 0}, {"tick_size": float("nan")}):
        with pytest.raises(ValueError):
            t.add("X", **kwargs)
    with pytest.raises(ValueError):
        t.add("  ")


# ---------------------------------------------------------------- feeds

def test_synthetic_feed_is_deterministic_on_grid_and_inside_the_session():
    a = SyntheticFeed(["RELIANCE", "YESBANK", "MRF"], seed=5).data()
    b = SyntheticFeed(["RELIANCE", "YESBANK", "MRF"], seed=5).data()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    table = InstrumentTable.nse_default()
    paise = np.rint(a.price * 100).astype(np.int64)
    assert all(table.by_id(int(s)).on_grid(int(p)) for s, p in zip(a.sym[:5000], paise[:5000]))
    t = [dt.datetime.fromtimestamp(x / NS, IST).time() for x in (a.ts_ns.min(), a.ts_ns.max())]
    assert t[0] >= dt.time(9, 15) and t[1] < dt.time(15, 30)
    assert np.all(np.diff(a.ts_ns) >= 0) and np.all(a.volume >= 1)


def test_synthetic_feed_rejects_bad_arguments():
    for kwargs in ({"symbols": []}, {"symbols": ["NOPE"]}, {"days": 0}, {"tick_prob": 0},
                   {"annual_vol": -1}):
        with pytest.raises(ValueError):
            SyntheticFeed(**kwargs)


def test_batches_cover_all_ticks_and_advance_ltp():
    feed = SyntheticFeed(["SBIN"], seed=1)
    assert feed.get_ltp("SBIN") is None
    total = 0
    for batch in feed.batches(60):
        total += len(batch)
        assert feed.get_ltp("SBIN") == batch.price[-1]
    assert total == len(feed.data()) and feed.get_ltp("NOSUCH") is None


def test_replay_kite_candles_with_malformed_rows(tmp_path, caplog):
    f = tmp_path / "RELIANCE.csv"
    f.write_text("date,open,high,low,close,volume\n"
                 "2024-01-01 09:15:00+05:30,2500,2510,2495,2505,1000\n"
                 "2024-01-01 09:16:00+05:30,2505,2512,2501,2510,900\n"
                 "2024-01-01 09:17:00+05:30,abc,2512,2501,2510,900\n"
                 "2024-01-01 09:18:00+05:30,2510,2500,2490,2495,900\n"
                 "2024-01-01 09:19:00+05:30,2495,2499,2490,-1,900\n"
                 "2024-01-01 09:20:00+05:30,2495,2499,2490,2498,800\n")
    with caplog.at_level(logging.WARNING):
        feed = ReplayFeed(f)
    assert feed.kind == "bars" and feed.rows_skipped == 3 and len(feed.data()) == 3
    assert feed.data().span_s == 60
    mde = MarketDataEngine(feed.instruments, ("1m", "5m"))
    for b in feed.batches(3600):
        mde.ingest(b)
    h = mde.get_candles("RELIANCE", "5m", 10)
    assert len(h) == 1 and h[0]["open"] == 2500 and h[0]["close"] == 2510
    assert h[0]["date"] == dt.datetime(2024, 1, 1, 9, 15, tzinfo=IST)


def test_replay_ticks_csv(tmp_path):
    f = tmp_path / "ticks.csv"
    f.write_text("timestamp,symbol,price,volume\n"
                 "2024-01-01T09:15:01,SBIN,600.05,10\n"
                 "2024-01-01T09:15:02,TCS,3500.10,5\n"
                 "2024-01-01T09:16:01,SBIN,600.10,3\n")
    feed = ReplayFeed(f)
    assert feed.kind == "ticks" and len(feed.data()) == 3
    list(feed.stream())
    assert feed.get_ltp("SBIN") == 600.10


def test_replay_rejects_missing_and_unrecognised_files(tmp_path):
    with pytest.raises(ValueError):
        ReplayFeed(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="unrecognised header"):
        ReplayFeed(bad)


def test_parse_timestamp_forms():
    ist = parse_timestamp("2024-01-01 09:15:00")
    assert ist == parse_timestamp("2024-01-01T09:15:00+05:30") == parse_timestamp("1704080700")
    assert parse_timestamp("2024-01-01T03:45:00Z") == ist


def test_parse_timeframe():
    assert [parse_timeframe(x) for x in ("1m", "5m", "15minute", "minute", "1h", 300)] == \
        [60, 300, 900, 60, 3600, 300]
    for bad in ("7q", "", "0m", -5, None, True):
        with pytest.raises(ValueError):
            parse_timeframe(bad)


# ---------------------------------------------------------------- charges

def test_intraday_charges_match_the_published_schedule():
    # Buy then sell 100 RELIANCE @ 1,500 intraday: turnover 1.5 lakh each side.
    c = ChargeSchedule()
    buy = c.compute("BUY", 100, 150000, "MIS")
    sell = c.compute("SELL", 100, 150000, "MIS")
    assert buy["brokerage"] == 2000 and sell["brokerage"] == 2000     # capped at Rs 20
    assert buy["stt"] == 0 and sell["stt"] == 3800          # 0.025% of sell = 37.50 -> Rs 38
    assert buy["exchange"] == 446                                     # 0.00297% -> Rs 4.455
    assert buy["sebi"] == 15 and buy["stamp"] == 500 and sell["stamp"] == 0   # 4.50 -> Rs 5
    assert buy["gst"] == 443                              # 18% of (20 + 4.46 + 0.15) = 4.4298
    assert buy["total"] == sum(v for k, v in buy.items() if k != "total")


def test_delivery_charges():
    d = ChargeSchedule().compute("BUY", 10, 100000, "CNC")
    assert d["brokerage"] == 0 and d["stt"] == 1000 and d["stamp"] == 200    # 1.50 -> Rs 2


def test_charge_schedule_rejects_negative_rates():
    with pytest.raises(ValueError):
        ChargeSchedule(gst_rate=-0.1)


# ---------------------------------------------------------------- paper broker

class Prices:
    def __init__(self, **p):
        self.p = p

    def get_ltp(self, s):
        return self.p.get(s)


def test_market_orders_fill_at_ltp_plus_slippage_ticks():
    b = PaperBroker(Prices(RELIANCE=1545.2), slippage_ticks=2, charges=ZERO_CHARGES)
    o = b.place_order("RELIANCE", "BUY", 10)
    assert o.status == "COMPLETE" and o.avg_price == 1545.4 and o.fills[0].price_paise == 154540
    o = b.place_order("RELIANCE", "SELL", 10)
    assert o.avg_price == 1545.0


def test_partial_fills_complete_on_later_prices():
    prices = Prices(SBIN=900.0)
    b = PaperBroker(prices, max_fill_quantity=40, charges=ZERO_CHARGES)
    heard = []
    b.add_fill_listener(heard.append)
    o = b.place_order("SBIN", "BUY", 100)
    assert o.status == "OPEN" and o.filled == 40 and len(heard) == 1   # listeners hear every fill
    b.on_price("SBIN", 900.05)
    b.on_price("SBIN", 900.10)
    assert o.status == "COMPLETE" and o.filled == 100 and len(heard) == 3
    assert heard == o.fills
    assert o.avg_price == pytest.approx((40 * 900 + 40 * 900.05 + 20 * 900.10) / 100)


@pytest.mark.parametrize("args,why", [
    (("NOSUCH", "BUY", 1), "unknown symbol"), (("SBIN", "HOLD", 1), "side"),
    (("SBIN", "BUY", 0), "quantity"), (("SBIN", "BUY", 1, "STOP"), "order_type"),
    (("SBIN", "BUY", 1, "LIMIT", 900.03), "tick grid"),
    (("SBIN", "BUY", 1, "LIMIT", None), "limit"),
    (("TCS", "BUY", 1), "no price"), (("SBIN", "BUY", 1, "MARKET", None, "XYZ"), "product"),
    (("SBIN", "BUY", 1, "SL-M"), "trigger"), (("SBIN", "BUY", 1, "MARKET", 900.0), "no limit"),
])
def test_paper_broker_rejections(args, why):
    o = PaperBroker(Prices(SBIN=900.0)).place_order(*args)
    assert o.status == "REJECTED" and why in o.message and o.order_id.startswith("PB")


def test_order_ids_are_unique_and_cancel_works():
    b = PaperBroker(Prices(SBIN=900.0), charges=ZERO_CHARGES)
    o = b.place_order("SBIN", "BUY", 1, "LIMIT", 890.0)
    assert o.status == "OPEN" and b.cancel_order(o.order_id) and not b.cancel_order(o.order_id)
    ids = {b.place_order("SBIN", "BUY", 1).order_id for _ in range(100)}
    assert len(ids) == 100


def test_finished_orders_are_forgotten_beyond_a_bound_open_ones_kept():
    b = PaperBroker(Prices(SBIN=900.0), charges=ZERO_CHARGES)
    b.book.KEEP_DONE = 5
    resting = b.place_order("SBIN", "BUY", 1, "LIMIT", 880.0)
    ids = [b.place_order("SBIN", "BUY", 1).order_id for _ in range(20)]
    assert b.get_order(ids[-1]) is not None and b.get_order(ids[0]) is None
    assert b.get_order(resting.order_id).status == "OPEN" and len(b.book.orders) <= 7


def test_fees_reach_the_fill():
    o = PaperBroker(Prices(SBIN=900.0)).place_order("SBIN", "SELL", 100)
    f = o.fills[0]
    # STT: 0.025% of Rs 90,000 = 22.50 -> Rs 23 (rounded to the rupee)
    assert f.fees_paise == sum(f.charges.values()) > 0 and f.charges["stt"] == 2300


def test_kite_quote_feed_reads_last_prices_through_the_market_data_service(caplog):
    from hftcore import KiteQuoteFeed
    from hftcore.services import MarketDataService

    class FakeQuotes:
        calls = 0

        def ltp(self, keys):
            FakeQuotes.calls += 1
            if keys == ["NSE:SBIN"]:
                raise ConnectionError("NetworkException: gateway timeout")
            return {k: {"instrument_token": 1, "last_price": 1545.2} for k in keys}

    feed = KiteQuoteFeed(FakeQuotes())
    mds = MarketDataService(feed, MarketDataEngine(), cache_ttl_seconds=60)
    assert mds.get_ltp("RELIANCE") == 1545.2 and mds.get_ltp("RELIANCE") == 1545.2
    assert FakeQuotes.calls == 1                                  # cached for the TTL
    with caplog.at_level(logging.WARNING):
        assert mds.get_ltp("SBIN") is None and "gateway timeout" in caplog.text
    assert feed.get_ltp("NOSUCH") is None


def test_array_feed_accepts_other_integer_and_float_dtypes_in_a_session():
    import numpy as np
    from hftcore import ArrayFeed, Ticks
    from hftcore.session import PaperSession
    table = InstrumentTable.nse_default()
    t0 = 1_795_664_700 * 10**9
    n = 3000
    data = Ticks(np.zeros(n, np.int64), t0 + np.arange(n, dtype=np.int64) * 10**9,
                 np.full(n, 900.0, np.float32), np.ones(n, np.int64))
    s = PaperSession(ArrayFeed(data, table), capital=1e6)
    report = s.run()
    assert report.ticks == n and s.engine.get_ltp(table.by_id(0).symbol) == 900.0
