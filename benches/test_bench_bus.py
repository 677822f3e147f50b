"""EventBus.publish with a dict payload and history on, against the peers."""
import pytest

import reference as ref
from hftcore.services import EventBus

PAYLOAD = {"symbol": "RELIANCE", "action": "BUY", "confidence": 0.85}


def noop(event):
    pass


def _nautilus_bus():
    component = pytest.importorskip("nautilus_trader.common.component")
    from nautilus_trader.model.identifiers import TraderId
    return component.MessageBus(TraderId("TRADER-001"), component.TestClock())


@pytest.mark.benchmark(group="bus publish, 1 subscriber")
def test_hftcore_eventbus_1(benchmark):
    bus = EventBus(buffer_size=1000)
    bus.subscribe("signals.fused", noop)
    benchmark(bus.publish, "signals.fused", PAYLOAD)


@pytest.mark.benchmark(group="bus publish, 1 subscriber")
def test_pure_python_bus_1(benchmark):
    bus = ref.RefBus(1000)
    bus.subscribe("signals.fused", noop)
    benchmark(bus.publish, "signals.fused", PAYLOAD)


@pytest.mark.benchmark(group="bus publish, 1 subscriber")
def test_pyee_1(benchmark):
    pyee = pytest.importorskip("pyee")
    ee = pyee.EventEmitter()
    ee.on("signals.fused", noop)
    benchmark(ee.emit, "signals.fused", PAYLOAD)


@pytest.mark.benchmark(group="bus publish, 1 subscriber")
def test_blinker_1(benchmark):
    blinker = pytest.importorskip("blinker")
    sig = blinker.Signal()
    sig.connect(noop)
    benchmark(sig.send, PAYLOAD)


@pytest.mark.benchmark(group="bus publish, 1 subscriber")
def test_nautilus_messagebus_1(benchmark):
    bus = _nautilus_bus()
    bus.subscribe(topic="signals.fused", handler=noop)
    benchmark(bus.publish, "signals.fused", PAYLOAD)


@pytest.mark.benchmark(group="bus publish, 1 subscriber")
def test_plain_function_call_1(benchmark):
    benchmark(noop, PAYLOAD)


def _ten():
    return [lambda e: None for _ in range(10)]


@pytest.mark.benchmark(group="bus publish, 10 subscribers")
def test_hftcore_eventbus_10(benchmark):
    bus = EventBus(buffer_size=1000)
    for h in _ten():
        bus.subscribe("signals.fused", h)
    benchmark(bus.publish, "signals.fused", PAYLOAD)


@pytest.mark.benchmark(group="bus publish, 10 subscribers")
def test_pure_python_bus_10(benchmark):
    bus = ref.RefBus(1000)
    for h in _ten():
        bus.subscribe("signals.fused", h)
    benchmark(bus.publish, "signals.fused", PAYLOAD)


@pytest.mark.benchmark(group="bus publish, 10 subscribers")
def test_ten_plain_function_calls_10(benchmark):
    hs = _ten()

    def ten_calls(p):
        for h in hs:
            h(p)
    benchmark(ten_calls, PAYLOAD)


@pytest.mark.parametrize("history", [0, 1_000, 100_000])
@pytest.mark.benchmark(group="bus publish vs history size")
def test_hftcore_eventbus_history(benchmark, history):
    bus = EventBus(buffer_size=history)
    bus.subscribe("signals.fused", noop)
    for _ in range(history):
        bus.publish("signals.fused", PAYLOAD)
    benchmark(bus.publish, "signals.fused", PAYLOAD)
