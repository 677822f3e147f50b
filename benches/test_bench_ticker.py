"""Kite ticker frames -> columns: the compiled decoder beside the plain struct decoder.

Each benchmark decodes one frame of 500 quote packets (a busy tick of a 500-symbol
subscription); packets/s = 500 / median.  ``extra_info["packets"]`` records the count.
"""
import random

import pytest
import reference_ticker as ref

from hftcore.kite.server import TickState, encode_frame, encode_packet
from hftcore_ext.ticker import decode_frame

N = 500


def _frame(mode):
    rng = random.Random(3)
    packets = [encode_packet(TickState(408065 + 256 * i, round(rng.uniform(10, 4000), 2),
                                       last_quantity=rng.randint(1, 500),
                                       average_price=1000.0, volume=rng.randint(0, 10**7),
                                       open=1000.0, high=1010.0, low=990.0, close=1001.0,
                                       last_trade_time=1_764_215_000,
                                       exchange_ts=1_764_215_001), mode)
               for i in range(N)]
    return encode_frame(packets)


@pytest.mark.benchmark(group="ticker decode, 500 quote packets")
def test_hftcore_ticker_decode_quote(benchmark):
    frame = _frame("quote")
    benchmark.extra_info["packets"] = N
    cols = benchmark(decode_frame, frame)
    assert len(cols["token"]) == N


@pytest.mark.benchmark(group="ticker decode, 500 quote packets")
def test_struct_ticker_decode_quote(benchmark):
    frame = _frame("quote")
    benchmark.extra_info["packets"] = N
    rows = benchmark(ref.decode_frame, frame)
    assert len(rows) == N


@pytest.mark.benchmark(group="ticker decode, 500 full packets")
def test_hftcore_ticker_decode_full(benchmark):
    frame = _frame("full")
    benchmark.extra_info["packets"] = N
    cols = benchmark(decode_frame, frame)
    assert len(cols["token"]) == N


@pytest.mark.benchmark(group="ticker decode, 500 full packets")
def test_struct_ticker_decode_full(benchmark):
    frame = _frame("full")
    benchmark.extra_info["packets"] = N
    rows = benchmark(ref.decode_frame, frame)
    assert len(rows) == N
