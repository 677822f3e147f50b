"""The paper broker's compiled core (hftcore_ext.paper) against its plain-Python twin.

``tests/twin_paper.py`` is the broker as it was before it was compiled; on random
working orders and random bars (and random order placements) both must make the
same fills (order, quantity, price, fees, charges), leave the orders in the same
state, queue the same events and say the same thing from ``watch``.  The record
itself (``BrokerOrder``) must keep the dataclass's constructor, fields, repr,
identity equality, ``dataclasses`` support and pickling.
"""
import ast
import dataclasses
import math
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftcore.engines.brokers import BrokerOrder, OrderBook, PaperBroker
from hftcore.engines.charges import ZERO_CHARGES, ChargeSchedule
from hftcore.instruments import to_paise
from hftcore.orders import Fill
from hftcore.services.dashboard_feed import jsonable
from hftcore_ext import paper
from twin_paper import TwinOrder, TwinPaperBroker

FIELDS = [f.name for f in dataclasses.fields(TwinOrder)]
SYM = "SBIN"
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


class Prices:
    def __init__(self, ltp=None):
        self.ltp = ltp

    def get_ltp(self, symbol):
        return self.ltp


# ------------------------------------------------------------ the record

def test_constructor_fields_and_defaults_are_the_dataclass_ones():
    assert [f.name for f in dataclasses.fields(BrokerOrder)] == FIELDS
    assert dataclasses.is_dataclass(BrokerOrder) and dataclasses.is_dataclass(
        BrokerOrder("X", SYM, "BUY", 1))
    # defaults: every field left out equals the dataclass's default
    assert dataclasses.asdict(BrokerOrder("X", SYM, "BUY", 1)) == \
        dataclasses.asdict(TwinOrder("X", SYM, "BUY", 1))
    # positional order: all 17 by position land on the same names
    values = [f"v{i}" for i in range(len(FIELDS))]
    values[12], values[16] = [Fill("f", "X", SYM, "BUY", 1, 100)], {"stt": 3}
    a, b = BrokerOrder(*values), TwinOrder(*values)
    assert [getattr(a, n) for n in FIELDS] == [getattr(b, n) for n in FIELDS] == values
    assert a.fills is values[12] and a.charges is values[16]
    # by keyword, in any order, anything the dataclass took (no type checks: Kite passes tag=None)
    kw = {n: v for n, v in zip(reversed(FIELDS), values)}
    assert dataclasses.asdict(BrokerOrder(**kw)) == dataclasses.asdict(TwinOrder(**kw))
    assert BrokerOrder("X", SYM, "BUY", 1, tag=None).tag is None
    assert BrokerOrder("X", SYM, "BUY", 1, fills=None).fills is None     # as the dataclass
    with pytest.raises(TypeError):
        BrokerOrder("X", SYM, "BUY")
    with pytest.raises(TypeError):
        BrokerOrder("X", SYM, "BUY", 1, colour="red")


def test_each_order_gets_its_own_fills_list_and_charges_dict():
    a, b = BrokerOrder("A", SYM, "BUY", 1), BrokerOrder("B", SYM, "BUY", 1)
    a.fills.append(1)
    a.charges["stt"] = 5
    assert b.fills == [] and b.charges == {} and a.fills == [1]


def test_repr_equality_hash_and_attributes_are_the_dataclass_ones():
    args = ("PB1", SYM, "SELL", 10, "LIMIT", 90005)
    a, t = BrokerOrder(*args, tag="t1", ts=5), TwinOrder(*args, tag="t1", ts=5)
    assert repr(a) == repr(t).replace("TwinOrder(", "BrokerOrder(", 1)
    same = BrokerOrder(*args, tag="t1", ts=5)
    assert a == a and a != same and not (a == same)          # identity, as eq=False
    assert len({a, same, a}) == 2
    a.status, a.filled, a.message = "COMPLETE", 10, "done"
    assert (a.status, a.filled, a.message) == ("COMPLETE", 10, "done")
    with pytest.raises(AttributeError):
        a.colour = "red"                                     # slots: no new attributes


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**15),
       st.integers(0, 10**8), st.integers(0, 10**8),
       st.sampled_from(["OPEN", "TRIGGER PENDING", "COMPLETE", "CANCELLED", "REJECTED"]))
def test_properties_equal_the_dataclass_ones(qty, filled, value, price, trig, status):
    a = BrokerOrder("X", SYM, "BUY", qty, "SL", price, "MIS", status, filled, value,
                    trigger_paise=trig)
    b = TwinOrder("X", SYM, "BUY", qty, "SL", price, "MIS", status, filled, value,
                  trigger_paise=trig)
    for name in ("avg_price", "pending", "working", "price", "trigger_price"):
        x, y = getattr(a, name), getattr(b, name)
        assert x == y and type(x) is type(y), name


def test_pickle_round_trip_keeps_every_field():
    fill = Fill("PB1-1", "PB1", SYM, "BUY", 4, 90005, 12, 7, {"stt": 0, "gst": 12})
    o = BrokerOrder("PB1", SYM, "BUY", 10, "SL", 90010, "CNC", "OPEN", 4, 360020, 12, "m",
                    [fill], 90000, "tag1", 99, {"stt": 0, "gst": 12})
    back = pickle.loads(pickle.dumps(o))
    assert type(back) is BrokerOrder and back is not o
    assert [getattr(back, n) for n in FIELDS] == [getattr(o, n) for n in FIELDS]
    assert back.fills[0] == fill and back.avg_price == o.avg_price


def test_asdict_to_dict_and_the_dashboards_json_see_every_field():
    fill = Fill("PB1-1", "PB1", SYM, "BUY", 4, 90005, 12, 7, {"gst": 12})
    o = BrokerOrder("PB1", SYM, "BUY", 10, fills=[fill], charges={"gst": 12})
    t = TwinOrder("PB1", SYM, "BUY", 10, fills=[fill], charges={"gst": 12})
    assert dataclasses.asdict(o) == dataclasses.asdict(t)
    assert jsonable(o) == jsonable(t) == jsonable(dataclasses.asdict(t))
    assert jsonable(o)["fills"][0]["price_paise"] == 90005
    d = o.to_dict()
    assert list(d) == FIELDS and d["fills"] is o.fills and d["quantity"] == 10


def test_kite_broker_builds_orders_from_the_field_names():
    from hftcore.kite.broker import _order_fields
    assert _order_fields() == frozenset(FIELDS)


def test_stub_declares_the_classes_the_module_has():
    tree = ast.parse((Path(paper.__file__).parent / "paper.pyi").read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert (paper.__file__ or "").endswith((".so", ".pyd"))            # compiled, no fallback
    assert names == {"BrokerOrder", "OrderBookCore", "PaperCore"}
    assert all(isinstance(getattr(paper, n), type) for n in names)
    assert issubclass(OrderBook, paper.OrderBookCore) and issubclass(PaperBroker, paper.PaperCore)


# ------------------------------------------------------------ to_paise

@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                 st.integers(0, 10**9).map(lambda p: p / 100),
                 st.integers(0, 10**9).map(lambda p: p / 100 + 0.005),
                 st.integers(-10**18, 10**18), st.booleans(), st.text(max_size=3)))
def test_the_compiled_to_paise_equals_instruments_to_paise(x):
    try:
        want = to_paise(x)
    except ValueError as exc:
        with pytest.raises(ValueError) as got:
            paper.to_paise(x)
        assert str(got.value) == str(exc)
        return
    got = paper.to_paise(x)
    assert got == want and type(got) is int


# ------------------------------------------------------------ matching: compiled vs twin

@st.composite
def working_order(draw, i, base):
    side = draw(st.sampled_from(["BUY", "SELL"]))
    otype = draw(st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M"]))
    qty = draw(st.integers(1, 500))
    filled = draw(st.sampled_from([0, 0, draw(st.integers(0, qty - 1))]))
    near = st.integers(max(5, base - 3000), base + 3000)
    price = draw(near) if otype in ("LIMIT", "SL") else 0
    trig = draw(near) if otype in ("SL", "SL-M") else 0
    status = "OPEN"
    if otype in ("SL", "SL-M"):
        status = draw(st.sampled_from(["TRIGGER PENDING", "TRIGGER PENDING", "OPEN"]))
    status = draw(st.sampled_from([status] * 6 + ["COMPLETE", "CANCELLED"]))
    value = filled * draw(near)
    charges = draw(st.sampled_from([{}, {"brokerage": 37, "stt": 100, "exchange": 3, "sebi": 1,
                                         "stamp": 0, "gst": 7}]))
    return dict(order_id=f"PB{i:09d}", symbol=SYM, side=side, quantity=qty, order_type=otype,
                price_paise=price, product=draw(st.sampled_from(["MIS", "CNC"])), status=status,
                filled=filled, value_paise=value, fees_paise=sum(charges.values()),
                trigger_paise=trig, ts=i, charges=charges)


@st.composite
def bar(draw, base):
    pts = [draw(st.integers(max(5, base - 4000), base + 4000)) for _ in range(4)]
    o, c = pts[0], pts[1]
    lo = min(pts[2], o, c)
    h = max(pts[3], o, c)
    return o, h, lo, c


@st.composite
def scenario(draw):
    base = draw(st.sampled_from([1_000, 25_000, 90_000, 150_000, 600_000]))
    n = draw(st.integers(1, 6))
    orders = [draw(working_order(i, base)) for i in range(n)]
    steps = []
    for k in range(draw(st.integers(1, 4))):
        mode = draw(st.sampled_from(["match", "match", "on_bar"]))
        only = draw(st.one_of(st.none(), st.integers(0, n)))       # n: an order not in the book
        skip = draw(st.sets(st.integers(0, n - 1), max_size=n))
        steps.append((mode, draw(bar(base)), only, skip, draw(st.booleans()), 1000 + k))
    return dict(charges=draw(st.sampled_from([None, ZERO_CHARGES])),
                slippage_ticks=draw(st.integers(0, 3)),
                max_fill_quantity=draw(st.one_of(st.none(), st.integers(1, 300))),
                orders=orders, steps=steps)


def fill_key(f):
    return (type(f).__name__, f.fill_id, f.order_id, f.symbol, f.side, f.quantity,
            f.price_paise, f.fees_paise, f.ts, f.charges)


def order_key(o):
    return [getattr(o, n) for n in FIELDS if n != "fills"] + [[fill_key(f) for f in o.fills]]


def build(cls, order_cls, sc):
    broker = cls(Prices(), charges=sc["charges"], slippage_ticks=sc["slippage_ticks"],
                 max_fill_quantity=sc["max_fill_quantity"], clock=lambda: 7)
    heard = []
    broker.add_listener(lambda kind, order, fill: heard.append(
        (kind, order.order_id, None if fill is None else fill.fill_id)))
    orders = [order_cls(**{**spec, "charges": dict(spec.get("charges", {}))})
              for spec in sc["orders"]]
    for o in orders:
        broker.book.add(o)
    broker._open[SYM] = list(orders)
    stray = order_cls("PBX", SYM, "BUY", 1)                  # working, but not in the book
    return broker, orders + [stray], heard


def run_scenario(cls, order_cls, sc):
    broker, orders, heard = build(cls, order_cls, sc)
    out = []
    for mode, (o, h, lo, c), only, skip, first, ts in sc["steps"]:
        out.append(("watch", broker.watch(SYM)))
        if mode == "on_bar":
            fills = broker.on_bar(SYM, o / 100, h / 100, lo / 100, c / 100, ts)
        else:
            fills = broker._match(SYM, o, h, lo, c, ts, only=None if only is None
                                  else orders[only], skip={orders[i].order_id for i in skip},
                                  first=first)
            broker.book.flush()
        out.append(("fills", [fill_key(f) for f in fills]))
        out.append(("orders", [order_key(x) for x in orders]))
        out.append(("open", [x.order_id for x in broker._open.get(SYM, [])]))
    out.append(("watch", broker.watch(SYM)))
    out.append(("events", heard))
    return out


@SETTINGS
@given(scenario())
def test_matching_equals_the_python_twin(sc):
    got = run_scenario(PaperBroker, BrokerOrder, sc)
    want = run_scenario(TwinPaperBroker, TwinOrder, sc)
    assert got == want


def test_the_twin_comparison_sees_fills():
    """The scenarios are not vacuous: a stop and a limit both act on one wide bar."""
    sc = dict(charges=None, slippage_ticks=1, max_fill_quantity=None, steps=[
        ("match", (90_000, 91_000, 89_000, 90_500), None, set(), False, 5)], orders=[
        dict(order_id="PB1", symbol=SYM, side="BUY", quantity=10, order_type="LIMIT",
             price_paise=89_500),
        dict(order_id="PB2", symbol=SYM, side="SELL", quantity=10, order_type="SL-M",
             trigger_paise=89_100, status="TRIGGER PENDING")])
    got = run_scenario(PaperBroker, BrokerOrder, sc)
    fills = got[1][1]
    # the stop first (at its trigger less a tick of slippage), then the limit at its price
    assert [(f[2], f[5], f[6]) for f in fills] == [("PB2", 10, 89_095), ("PB1", 10, 89_500)]
    assert got == run_scenario(TwinPaperBroker, TwinOrder, sc)


# ------------------------------------------------------------ placing: compiled vs twin

def mostly(good, *bad):
    """Mostly one of ``good``, now and then one of ``bad`` (refused by the shape check)."""
    return st.sampled_from(list(good) * 6 + list(bad))


ON_GRID = st.integers(16_000, 20_000).map(lambda p: p * 5 / 100)      # Rs 800..1000, 5 paise


@st.composite
def placements(draw):
    out = []
    for _ in range(draw(st.integers(1, 8))):
        otype = draw(mostly(["MARKET", "LIMIT", "SL", "SL-M"], "market", "STOP"))
        wants_price, wants_trig = otype in ("LIMIT", "SL"), otype in ("SL", "SL-M")
        price = draw(ON_GRID) if wants_price else None
        trig = draw(ON_GRID) if wants_trig else None
        if draw(st.integers(0, 9)) == 0:                  # now and then a price out of place
            price, trig = draw(st.one_of(st.none(), ON_GRID, st.floats(800, 1000))), \
                draw(st.one_of(st.none(), ON_GRID))
        ltp = draw(st.one_of(ON_GRID, ON_GRID, ON_GRID, st.none(), st.floats(850, 950)))
        out.append((draw(mostly([SYM], "sbin", "NOPE")), draw(mostly(["BUY", "SELL"], "HOLD")),
                    draw(mostly([1, 10, 100], 0, -5, 2.5)), otype, price,
                    draw(mostly(["MIS", "CNC"], "cnc", "XYZ")), trig,
                    draw(st.sampled_from([None, "", "t1"])), ltp,
                    draw(st.one_of(st.none(), st.tuples(*[st.integers(16_000, 20_000)
                                                          .map(lambda p: p * 5)] * 4)))))
    return dict(fill_at=draw(st.sampled_from(["close", "next_open"])),
                slippage_ticks=draw(st.integers(0, 2)),
                max_fill_quantity=draw(st.one_of(st.none(), st.integers(1, 60))),
                charges=draw(st.sampled_from([None, ZERO_CHARGES])), orders=out)


def run_placements(cls, sc):
    prices = Prices()
    ticks = iter(range(100, 10_000))
    broker = cls(prices, charges=sc["charges"], slippage_ticks=sc["slippage_ticks"],
                 max_fill_quantity=sc["max_fill_quantity"], clock=lambda: next(ticks),
                 fill_at=sc["fill_at"])
    heard = []
    broker.add_listener(lambda kind, order, fill: heard.append(
        (kind, order.order_id, None if fill is None else fill_key(fill))))
    out, placed = [], []
    for symbol, side, qty, otype, price, product, trig, tag, ltp, after in sc["orders"]:
        prices.ltp = ltp
        o = broker.place_order(symbol, side, qty, otype, price, product, trig, tag)
        placed.append(o)
        out.append(order_key(o))
        if after is not None:
            p = sorted(after)
            fills = broker.on_bar(SYM, p[1] / 100, p[3] / 100, p[0] / 100, p[2] / 100)
            out.append([fill_key(f) for f in fills])
        out.append(broker.watch(SYM))
    out.append([order_key(o) for o in placed])
    out.append(heard)
    return out


@SETTINGS
@given(placements())
def test_placing_equals_the_python_twin(sc):
    assert run_placements(PaperBroker, sc) == run_placements(TwinPaperBroker, sc)


# ------------------------------------------------------------ the book

def test_a_fill_updates_the_order_and_charges_it_the_contract_note_increase():
    book = OrderBook(ChargeSchedule(), clock=lambda: 11)
    o = BrokerOrder("X1", SYM, "SELL", 100, product="MIS")
    book.add(o)
    f1 = book.fill(o, 60, 90_000)
    f2 = book.fill(o, 40, 90_100, ts=12, fill_id="own-id")
    whole = ChargeSchedule().order_charges("SELL", 60 * 90_000 + 40 * 90_100, "MIS")
    assert (f1.fill_id, f1.ts, f2.fill_id, f2.ts) == ("X1-1", 11, "own-id", 12)
    assert f1.fees_paise + f2.fees_paise == whole["total"] == o.fees_paise
    assert o.charges == {k: v for k, v in whole.items() if k != "total"}
    assert (o.filled, o.value_paise, o.status, o.pending) == (100, 9_004_000, "COMPLETE", 0)
    assert o.fills == [f1, f2] and list(book._pending) == [("fill", o, f1), ("fill", o, f2)]


def test_a_partial_fill_of_a_triggered_stop_leaves_it_open():
    book = OrderBook(ZERO_CHARGES, clock=lambda: 1)
    o = BrokerOrder("X1", SYM, "BUY", 10, "SL-M", status="TRIGGER PENDING", trigger_paise=100)
    book.fill(o, 4, 100)
    assert (o.status, o.pending, o.avg_price) == ("OPEN", 6, 1.0)


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog):
    book = OrderBook(ZERO_CHARGES, clock=lambda: 1)
    heard = []

    def bad(kind, order, fill):
        raise RuntimeError("boom")
    book.add_listener(bad)
    book.add_listener(lambda kind, order, fill: heard.append((kind, order.order_id)))
    o = BrokerOrder("X1", SYM, "BUY", 10)
    book.fill(o, 10, 100)
    book.event("modified", o)
    with caplog.at_level("ERROR", logger="hftcore.engines.brokers"):
        book.flush()
    assert heard == [("fill", "X1"), ("modified", "X1")] and not book._pending
    assert sum("order listener" in r.getMessage() for r in caplog.records) == 2


def test_a_listener_acting_on_the_broker_has_its_events_delivered_after_the_current_one():
    b = PaperBroker(Prices(900.0), charges=ZERO_CHARGES)
    seen = []
    resting = b.place_order(SYM, "SELL", 10, "LIMIT", 950.0)

    def on_event(kind, order, fill):
        seen.append((kind, order.order_id))
        if kind == "fill":
            b.cancel_order(resting.order_id)                 # re-enters flush: queued, not nested
            seen.append(("after-cancel", resting.status))
    b.add_listener(on_event)
    o = b.place_order(SYM, "BUY", 10)
    assert seen == [("fill", o.order_id), ("after-cancel", "CANCELLED"),
                    ("cancelled", resting.order_id)]


def test_a_replaced_fill_method_on_the_book_is_the_one_matching_calls():
    b = PaperBroker(Prices(900.0), charges=ZERO_CHARGES)
    calls = []
    real = b.book.fill

    def spy(order, quantity, price_paise, ts=None, fill_id=None):
        calls.append((order.order_id, quantity, price_paise))
        return real(order, quantity, price_paise, ts, fill_id)
    b.book.fill = spy
    o = b.place_order(SYM, "BUY", 10)
    assert calls == [(o.order_id, 10, 90_000)] and o.status == "COMPLETE"


def test_kept_orders_are_bounded_but_working_ones_stay():
    b = PaperBroker(Prices(900.0), charges=ZERO_CHARGES)
    b.book.KEEP_DONE = 3
    resting = b.place_order(SYM, "BUY", 1, "LIMIT", 880.0)
    ids = [b.place_order(SYM, "BUY", 1).order_id for _ in range(10)]
    assert b.get_order(resting.order_id) is resting
    assert b.get_order(ids[-1]) is not None and b.get_order(ids[0]) is None
    assert len(b.book.orders) <= 5


def test_overflow_is_impossible_paise_stay_python_ints():
    """Money is never squeezed into a C integer: a value beyond int64 sums exactly."""
    book = OrderBook(ZERO_CHARGES, clock=lambda: 1)
    o = BrokerOrder("X1", SYM, "BUY", 3 * 10**12, value_paise=2**63)
    book.fill(o, 10**12, 10**10)
    assert o.value_paise == 2**63 + 10**22 and o.avg_price == pytest.approx(
        (2**63 + 10**22) / 10**12 / 100)
    assert math.isfinite(o.avg_price)


@pytest.mark.parametrize("bar_in,fills", [
    (("SBIN", 900.0, 905.0, 899.0, 902.0), True), (("sbin", 900, 905, 899, 902), True),
    (("SBIN", "900", 905.0, 899.0, 902.0), True), (("NOPE", 900, 905, 899, 902), False),
    (("SBIN", float("nan"), 905.0, 899.0, 902.0), False),
    (("SBIN", "x", 905.0, 899.0, 902.0), False),
    (("SBIN", 900.0, 899.0, 899.0, 902.0), False),                # high below the close
    (("SBIN", 900.0, 905.0, 0.0, 902.0), False), (("SBIN", 900.0, 1e20, 899.0, 902.0), False),
    (("SBIN", True, 905.0, 899.0, 902.0), False)])
def test_on_bar_refuses_and_accepts_what_the_twin_did(bar_in, fills):
    got = []
    for cls, order_cls in ((PaperBroker, BrokerOrder), (TwinPaperBroker, TwinOrder)):
        b = cls(Prices(), charges=ZERO_CHARGES, clock=lambda: 3)
        o = order_cls("B1", SYM, "BUY", 10, "LIMIT", 90_000)
        b.book.add(o)
        b._open[SYM] = [o]
        made = b.on_bar(*bar_in, ts=9)
        got.append(([fill_key(f) for f in made], order_key(o),
                    [x.order_id for x in b._open.get(SYM, [])]))
    assert got[0] == got[1] and bool(got[0][0]) is fills


# ------------------------------------------------------------ found by an outside review

@pytest.mark.parametrize("ltp", [float("nan"), float("inf"), True, 2**70, "abc", -5.0])
def test_an_unusable_ltp_rejects_the_order_instead_of_raising_with_it_working(ltp):
    """fill_at="close": the old broker raised ValueError from to_paise (or filled at Rs 1
    for True) and left the order in its working list; now it is REJECTED, nothing works."""
    b = PaperBroker(Prices(ltp), charges=ZERO_CHARGES, clock=lambda: 1, fill_at="close")
    seen = []
    b.add_listener(lambda kind, order, fill: seen.append(kind))
    order = b.place_order(SYM, "BUY", 1)
    assert order.status == "REJECTED" and "no valid price for SBIN" in order.message
    assert order.fills == [] and b.open_orders() == [] and not b.has_open_orders()
    assert seen == []


def test_a_subclass_overriding_slip_or_match_is_the_one_the_compiled_broker_calls():
    class Wide(PaperBroker):
        def _slip(self, inst, side, px):
            return px + 500 if side == "BUY" else px - 500

    b = Wide(Prices(900.0), charges=ZERO_CHARGES, clock=lambda: 1, fill_at="next_open")
    b.place_order(SYM, "BUY", 1)
    assert [f.price_paise for f in b.on_bar(SYM, 900.0, 901.0, 899.0, 900.0)] == [90500]
    assert b.place_order.__self__ is b
    calls = []

    class Counted(PaperBroker):
        def _match(self, symbol, o, h, lo, c, ts, only=None, skip=(), first=False):
            calls.append((symbol, o))
            return super()._match(symbol, o, h, lo, c, ts, only, skip, first)

    c = Counted(Prices(900.0), charges=ZERO_CHARGES, clock=lambda: 1)      # fill_at close
    assert c.place_order(SYM, "BUY", 1).status == "COMPLETE"
    c.place_order(SYM, "SELL", 1, "LIMIT", 950.0)
    c.on_bar(SYM, 951.0, 952.0, 950.0, 951.0)
    assert calls == [(SYM, 90000), (SYM, 90000), (SYM, 95100)]


def test_none_where_an_order_or_a_book_belongs_raises_instead_of_crashing():
    book = OrderBook(ZERO_CHARGES, lambda: 1)
    with pytest.raises(TypeError, match="got None"):
        book.fill(None, 1, 100)
    b = PaperBroker(Prices(900.0), charges=ZERO_CHARGES, clock=lambda: 1, fill_at="next_open")
    with pytest.raises(TypeError):
        b.book = None
    b._open[SYM] = [None]
    with pytest.raises(TypeError, match="is None"):
        b.watch(SYM)
    with pytest.raises(TypeError, match="is None"):
        b.on_bar(SYM, 900.0, 901.0, 899.0, 900.0)
    b._open = None
    with pytest.raises((TypeError, AttributeError)):
        b.place_order(SYM, "BUY", 1)
