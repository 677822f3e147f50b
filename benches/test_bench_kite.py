"""Tick to order on loopback, through the real kiteconnect client and the local Kite server.

One round: the server publishes a tick; the ticker feed decodes it and hands the batch over;
KiteBroker places a LIMIT order (HTTP POST through kiteconnect) and gets the order id back.
The baseline polls the price over REST (``/quote/ltp``, what ``KiteQuoteFeed`` does) instead
of receiving it from the stream.  The strategy's own decision time is benchmarked in
test_bench_pipeline.py.
"""
import pytest

kiteconnect = pytest.importorskip("kiteconnect")
pytest.importorskip("websockets")

from hftcore.instruments import InstrumentTable
from hftcore.kite.broker import KiteBroker
from hftcore.kite.feed import KiteTickerFeed
from hftcore.kite.server import KiteServer

UNLIMITED = ((10**9, 1.0),)


@pytest.fixture(scope="module")
def rig():
    srv = KiteServer(heartbeat_s=1.0, orders_per_second=10**9, orders_per_minute=10**9).start()
    kite = kiteconnect.KiteConnect(srv.api_key, root=srv.url, timeout=5)
    kite.set_access_token(srv.access_token)
    feed = KiteTickerFeed(srv.api_key, srv.access_token, InstrumentTable.nse_default(),
                          symbols=["INFY"], url=srv.ws_url).start()
    assert feed.wait_connected(5)
    import time
    end = time.monotonic() + 5
    while not any(408065 in s for s in srv._clients.values()) and time.monotonic() < end:
        time.sleep(0.01)
    broker = KiteBroker(kite, ticker=feed, order_limits=UNLIMITED, other_limits=UNLIMITED,
                        quote_limits=UNLIMITED)
    yield srv, kite, feed, broker
    feed.stop()
    srv.stop()


@pytest.mark.benchmark(group="tick to order, loopback")
def test_hftcore_kite_tick_to_order_stream(benchmark, rig):
    srv, _, feed, broker = rig

    def once():
        srv.push_ticks({"INFY": 1580.0}, match=False)
        batch = feed.get(timeout=5)
        order = broker.place_order("INFY", "BUY", 1, order_type="LIMIT",
                                   price=float(batch.price[-1]) - 50)
        assert order.order_id
    benchmark(once)


@pytest.mark.benchmark(group="tick to order, loopback")
def test_rest_poll_tick_to_order(benchmark, rig):
    srv, kite, _, broker = rig

    def once():
        srv.set_price("INFY", 1580.0)
        ltp = kite.ltp(["NSE:INFY"])["NSE:INFY"]["last_price"]
        order = broker.place_order("INFY", "BUY", 1, order_type="LIMIT", price=ltp - 50)
        assert order.order_id
    benchmark(once)
