"""The compiled event bus: semantics against the reference, history, threads."""
import logging
import threading

from hypothesis import given, strategies as st

import reference as ref
from hftcore.services import EventBus

TYPES = ["signals.raw", "signals.fused", "order.filled", "portfolio.updated"]


@given(st.lists(st.tuples(st.sampled_from(TYPES), st.integers()), max_size=200),
       st.integers(0, 50), st.sampled_from([None] + TYPES), st.integers(0, 60))
def test_history_agrees_with_reference(events, size, etype, limit):
    bus, rbus = EventBus(buffer_size=size), ref.RefBus(size)
    for t, p in events:
        bus.publish(t, p)
        rbus.publish(t, p)
    got = [(e["type"], e["payload"], e["seq"]) for e in bus.get_recent_events(etype, limit)]
    # the reference filters the last `size` events, then keeps the newest `limit`
    want = [(e["type"], e["payload"], e["seq"]) for e in rbus.get_recent_events(etype, limit)]
    assert got == want


@given(st.lists(st.sampled_from(TYPES + ["risk.halted"]), max_size=100))
def test_pattern_delivery_agrees_with_reference(types):
    bus, rbus = EventBus(), ref.RefBus()
    got, want = {}, {}
    for pat in ("*", "signals.*", "order.filled", "order.*"):
        bus.subscribe(pat, lambda e, pat=pat: got.setdefault(pat, []).append(e["seq"]))
        rbus.subscribe(pat, lambda e, pat=pat: want.setdefault(pat, []).append(e["seq"]))
    for t in types:
        bus.publish(t, None)
        rbus.publish(t, None)
    assert got == want


def test_event_has_type_payload_timestamp_and_increasing_seq():
    bus = EventBus()
    a = bus.publish("signals.fused", {"symbol": "RELIANCE", "action": "BUY", "confidence": 0.85})
    b = bus.publish("signals.fused", {})
    assert a["type"] == "signals.fused" and a["payload"]["symbol"] == "RELIANCE"
    assert b["seq"] == a["seq"] + 1 and b["ts_ns"] >= a["ts_ns"]
    assert abs(a["timestamp"] - a["ts_ns"] / 1e9) < 1e-6


def test_ring_buffer_keeps_only_the_newest():
    bus = EventBus(buffer_size=3)
    for i in range(10):
        bus.publish("x", i)
    assert [e["payload"] for e in bus.get_recent_events()] == [7, 8, 9]
    assert bus.published == 10


def test_publish_without_subscribers_is_a_safe_no_op():
    bus = EventBus(buffer_size=0)
    assert bus.publish("nobody.listens", {"a": 1})["seq"] == 1
    assert bus.get_recent_events() == []


def test_failing_subscriber_is_logged_and_the_rest_still_get_the_event(caplog):
    bus = EventBus()
    got = []
    bus.subscribe("x", lambda e: 1 / 0)
    bus.subscribe("x", got.append)
    with caplog.at_level(logging.ERROR, "hftcore.bus"):
        bus.publish("x", 1)
    assert len(got) == 1 and bus.errors == 1 and "ZeroDivisionError" in caplog.text


def test_bad_arguments_are_logged_not_raised(caplog):
    bus = EventBus()
    with caplog.at_level(logging.WARNING):
        assert bus.publish(None, 1) is None
        assert bus.publish("", 1) is None
        assert bus.publish(42, 1) is None
        assert bus.subscribe("x", "not callable") is False
        assert bus.subscribe("", print) is False
        assert bus.get_recent_events(limit=-1) == []
        assert bus.get_recent_events(event_type=5) == []
    assert bus.published == 0


def test_unsubscribe_and_duplicate_subscribe():
    bus = EventBus()
    got = []
    assert bus.subscribe("x", got.append) is True
    assert bus.subscribe("x", got.append) is False
    bus.publish("x", 1)
    assert bus.unsubscribe("x", got.append) is True
    assert bus.unsubscribe("x", got.append) is False
    bus.publish("x", 2)
    assert [e["payload"] for e in got] == [1]


def test_handlers_may_publish_and_subscribe_reentrantly():
    bus = EventBus()
    seen = []
    def relay(e):
        bus.subscribe("late", seen.append)
        bus.publish("b", e["payload"])
    bus.subscribe("a", relay)
    bus.subscribe("b", seen.append)
    bus.publish("a", 1)
    bus.publish("late", 2)
    assert [e["type"] for e in seen] == ["b", "late"]


def test_threads_publishing_and_churning_subscriptions_lose_nothing():
    """6 publishers x 20,000 events while 2 threads subscribe/unsubscribe: the
    permanent subscriber sees every event exactly once, seqs are unique."""
    bus = EventBus(buffer_size=1000)
    seen = []
    bus.subscribe("*", lambda e: seen.append(e["seq"]))
    stop = threading.Event()
    errors = []

    def publisher(k):
        try:
            for i in range(20_000):
                bus.publish(TYPES[i % 4], (k, i))
        except Exception as exc:          # pragma: no cover - the test fails below
            errors.append(exc)

    def churn():
        try:
            while not stop.is_set():
                h = lambda e: None        # noqa: E731 - a fresh handler each time
                bus.subscribe("signals.*", h)
                bus.unsubscribe("signals.*", h)
        except Exception as exc:          # pragma: no cover
            errors.append(exc)

    churners = [threading.Thread(target=churn) for _ in range(2)]
    pubs = [threading.Thread(target=publisher, args=(k,)) for k in range(6)]
    for t in churners + pubs:
        t.start()
    for t in pubs:
        t.join(timeout=60)
    stop.set()
    for t in churners:
        t.join(timeout=10)
    assert not errors and not any(t.is_alive() for t in pubs + churners)
    assert len(seen) == 120_000 and len(set(seen)) == 120_000
    assert bus.published == 120_000
    recent = bus.get_recent_events(limit=1000)
    assert [e["seq"] for e in recent] == list(range(119_001, 120_001))


def test_events_read_like_the_documented_dict_and_are_read_only():
    import json
    import pickle
    from collections.abc import Mapping
    import pytest
    bus = EventBus()
    ev = bus.publish("order.filled", {"symbol": "SBIN"})
    assert isinstance(ev, Mapping) and set(ev) == {"type", "payload", "timestamp", "ts_ns", "seq"}
    assert dict(ev) == ev.to_dict() and ev == ev.to_dict()
    assert ev.get("nope", 7) == 7 and "seq" in ev and len(ev) == 5
    assert json.loads(json.dumps(ev.to_dict()))["payload"] == {"symbol": "SBIN"}
    assert pickle.loads(pickle.dumps(ev)) == ev
    with pytest.raises(KeyError):
        ev["nope"]
    with pytest.raises(AttributeError):
        ev.seq = 5
