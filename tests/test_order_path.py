"""The order path does less per order (issue 11) and still reads, marks and reports
exactly what it did: batched LTP reads, the inlined snapshot and fill payload."""
from __future__ import annotations

import dataclasses
import logging
import math

import pytest

from hftcore import InstrumentTable, MarketDataEngine, OrderIntent, PaperBroker, ZERO_CHARGES
from hftcore.orders import Fill
from hftcore.services import EventBus, ExecutionService, MarketDataService, PortfolioService

SYMS = ["SBIN", "RELIANCE", "INFY", "TCS"]


class MovingFeed:
    """``get_ltp`` from a dict the test moves; counts its reads."""

    def __init__(self, **p):
        self.p = dict(p)
        self.reads = 0

    def get_ltp(self, s):
        self.reads += 1
        v = self.p.get(s)
        if isinstance(v, Exception):
            raise v
        return v


class BatchFeed(MovingFeed):
    """The same feed with a ``get_ltp_list`` (as MarketDataEngine has); it raises if one
    symbol's read does (the service then reads them one by one to say which)."""

    def get_ltp_list(self, symbols):
        return [self.get_ltp(s) for s in symbols]


def _pair(feed_cls, ttl, **prices):
    now = [0.0]
    one = MarketDataService(feed_cls(**prices), MarketDataEngine(), ttl, clock=lambda: now[0])
    many = MarketDataService(feed_cls(**prices), MarketDataEngine(), ttl, clock=lambda: now[0])
    return now, one, many


def _move(one, many, symbol, price):
    one.broker_feed.p[symbol] = many.broker_feed.p[symbol] = price


@pytest.mark.parametrize("feed_cls", [MovingFeed, BatchFeed])
@pytest.mark.parametrize("ttl", [1.0, 0.0])
def test_get_ltp_list_reads_what_get_ltp_one_by_one_reads(feed_cls, ttl, caplog):
    now, one, many = _pair(feed_cls, ttl, SBIN=900.0, RELIANCE=1500.0, INFY=float("nan"),
                           TCS=None)
    asked = SYMS + ["WIPRO", ""]

    def same():
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            a = [one.get_ltp(s) for s in asked]
            warned_one = sorted(r.getMessage() for r in caplog.records)
            caplog.clear()
            b = many.get_ltp_list(asked)
            warned_many = sorted(r.getMessage() for r in caplog.records)
        assert a == b and warned_one == warned_many
        assert (one.cache_hits, one.cache_misses) == (many.cache_hits, many.cache_misses)
        return b

    assert same()[:4] == [900.0, 1500.0, None, None]
    _move(one, many, "SBIN", 901.0)                  # the feed moves ...
    now[0] = 0.5
    assert same()[0] == (900.0 if ttl else 901.0)     # ... a fresh cached price is kept
    now[0] = 1.0                                      # the TTL expired: the new price is read
    assert same()[0] == 901.0
    _move(one, many, "RELIANCE", 1499.0)
    one.invalidate("RELIANCE")
    many.invalidate("RELIANCE")
    assert same()[1] == 1499.0                        # dropped from the cache: read again
    _move(one, many, "TCS", RuntimeError("feed down"))
    _move(one, many, "INFY", "x")
    now[0] = 5.0
    assert same()[2:4] == [None, None]


def test_engine_get_ltp_list_is_get_ltp_for_each():
    inst = InstrumentTable.nse_default()
    eng = MarketDataEngine(inst, ("1m",))
    eng.on_tick("SBIN", 1_700_000_000 * 10**9, 900.5, 1)
    eng.on_tick("TCS", 1_700_000_000 * 10**9, 3000.25, 1)
    asked = ["SBIN", "TCS", "INFY", "NOSUCH", "sbin"]
    assert eng.get_ltp_list(asked) == [eng.get_ltp(s) for s in asked] == \
        [900.5, 3000.25, None, None, 900.5]


def _books(source):
    p = PortfolioService(1e7)
    for k, s in enumerate(SYMS):
        p.record_fill({"fill_id": s, "symbol": s, "side": "BUY" if k % 2 else "SELL",
                       "quantity": 7 + k, "price": 100.0 + k})
    p.price_source = source
    return p


def test_marking_sees_every_price_that_moved_and_none_that_did_not():
    feed = BatchFeed(SBIN=901.0, RELIANCE=1501.0, INFY=1601.0, TCS=3001.0)
    now = [0.0]
    mds = MarketDataService(feed, MarketDataEngine(), 1.0, clock=lambda: now[0])
    p = _books(mds)
    assert p.mark_to_market() == 4
    assert [p.position_mark(s)[1] for s in SYMS] == [90100, 150100, 160100, 300100]
    feed.p["SBIN"] = 905.0
    p.mark_to_market()
    assert p.position_mark("SBIN")[1] == 90100        # cached for the TTL, as get_ltp says
    now[0] = 1.5                                      # expired: the move is seen
    p.mark_to_market()
    assert p.position_mark("SBIN")[1] == 90500
    feed.p["TCS"] = 2999.95
    mds.invalidate()                                  # a new bar: the move is seen at once
    p.mark_to_market()
    assert p.position_mark("TCS")[1] == 299995
    assert p.get_snapshot()["positions"][3]["last_price"] == 2999.95


def test_marking_falls_back_to_one_read_per_symbol_when_the_batch_fails(caplog):
    class Source(MovingFeed):
        def get_ltp_list(self, symbols):
            raise RuntimeError("batch read failed")

    src = Source(SBIN=901.0, RELIANCE=RuntimeError("no price"), INFY=1601.0, TCS=3001.0)
    p = _books(src)
    with caplog.at_level(logging.WARNING):
        assert p.mark_to_market() == 3
    assert [p.position_mark(s)[1] for s in SYMS] == [90100, 10100, 160100, 300100]
    assert any("get_ltp(RELIANCE) failed" in r.getMessage() for r in caplog.records)


def test_a_price_source_without_get_ltp_list_marks_as_before():
    src = MovingFeed(SBIN=901.0, RELIANCE=None, INFY=math.inf, TCS=3001.0)
    p = _books(src)
    assert p.mark_to_market() == 2
    assert [p.position_mark(s)[1] for s in SYMS] == [90100, 10100, 10200, 300100]
    assert src.reads == 4


def test_the_snapshot_lists_each_open_position_as_get_position_does():
    p = _books(None)
    p.record_fill({"fill_id": "x", "symbol": "INFY", "side": "BUY", "quantity": 3,
                   "price": 102.35, "fees": 1.17})
    p.update_prices({"SBIN": 99.95, "TCS": 104.1})
    snap = p.get_snapshot()
    assert snap["positions"] == [p.get_position(s) for s in SYMS]
    assert [x["quantity"] for x in snap["positions"]] == [-7, 8, -6, 10]


def test_order_filled_carries_the_fill_payload_then_the_order_state():
    class Prices:
        def get_ltp(self, s):
            return 900.0

    class MyFill(Fill):
        pass

    class Broker(PaperBroker):                 # hands out a Fill subclass: the generic path
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            fill = self.book.fill

            def sub_fill(*a, **kw):
                f = fill(*a, **kw)
                g = MyFill(**{k: getattr(f, k) for k in f.__dataclass_fields__})
                order = a[0]
                order.fills[-1] = g
                self.book._pending[-1] = ("fill", order, g)
                return g
            self.book.fill = sub_fill

    payloads = []
    for broker_cls in (PaperBroker, Broker):
        bus = EventBus()
        broker = broker_cls(Prices(), max_fill_quantity=30, clock=lambda: 5)
        ex = ExecutionService(broker, PortfolioService(1e6, bus), bus, price_source=Prices())
        r = ex.execute(OrderIntent("SBIN", "BUY", 0.9, "t", quantity=50))
        broker.on_price("SBIN", 900.0)
        order = broker.get_order(r.order_id)
        got = [e["payload"] for e in bus.get_recent_events("order.filled", limit=10)]
        want = []
        for k, f in enumerate(order.fills):
            filled = 30 if k == 0 else 50
            want.append({**f.to_payload("paper"), "order_quantity": 50,
                         "filled_quantity": filled, "pending_quantity": 50 - filled,
                         "avg_price": 900.0, "order_status": "PARTIAL" if k == 0 else "COMPLETE",
                         "product": "MIS", "order_type": "MARKET"})
        assert [list(x.items()) for x in got] == [list(x.items()) for x in want]
        payloads.append(got)
    assert payloads[0] == payloads[1]
    assert payloads[0][0]["charges"] and payloads[0][0]["fees_paise"] > 0


def test_every_fill_is_still_recorded_with_zero_charges():
    class Prices:
        def get_ltp(self, s):
            return 900.0

    bus = EventBus()
    p = PortfolioService(1e6, bus)
    bus.subscribe("order.filled", p.on_fill)
    ex = ExecutionService(PaperBroker(Prices(), charges=ZERO_CHARGES), p, bus,
                          price_source=Prices())
    for side in ("BUY", "SELL", "SELL", "BUY"):
        ex.execute(OrderIntent("SBIN", side, 0.9, "t", quantity=10))
    assert p.get_totals()["fills"] == 4 and p.duplicates == 4
    assert len(bus.get_recent_events("portfolio.updated", limit=10)) == 4


def _fill(fid="F1", symbol="SBIN", side="BUY", qty=10, price=90_000, fee=50):
    return Fill(fid, "O1", symbol, side, qty, price, fee, 7, {"brokerage": fee})


@pytest.mark.parametrize("fill", [
    _fill(), _fill(symbol=" sbin "), _fill(side="SELL"), _fill(qty=0), _fill(qty=-5),
    _fill(price=0), _fill(fee=-1), _fill(side="buy"), _fill(fid=""), _fill(symbol="  "),
    _fill(qty=__import__("numpy").int64(10)), _fill(price=10**19), _fill(qty=True),
])
def test_a_broker_fill_is_recorded_as_its_payload_would_be(fill, tmp_path):
    """ExecutionService records a broker's Fill without re-parsing its payload; the
    outcome (status, counters, books, journal) is what record_fill(payload) gives."""
    class Prices:
        def get_ltp(self, s):
            return 900.0

    outcomes = []
    for direct in (False, True):
        p = PortfolioService(1e7, checkpoint_dir=tmp_path / str(direct), fsync=False)
        ex = ExecutionService(PaperBroker(Prices()), p, price_source=Prices())
        payload = {**fill.to_payload("paper"), "order_quantity": 10, "product": "MIS"}
        got = []
        for _ in range(2):                           # the second is a re-sent fill
            got.append(ex._record(payload, fill) if direct else p.record_fill(payload))
        p.close()
        late, late_payload = dataclasses.replace(fill, fill_id="late"), {**payload,
                                                                        "fill_id": "late"}
        got.append(ex._record(late_payload, late) if direct else
                   p.record_fill(late_payload))                       # closed: refused
        t = p.get_totals()
        outcomes.append((got, p.duplicates, p.invalid, p.failed, t["cash_paise"],
                         t["fees_paise"], p.position_quantity("SBIN"),
                         sorted(x.name[:5] for x in (tmp_path / str(direct)).iterdir())))
    assert outcomes[0] == outcomes[1]
