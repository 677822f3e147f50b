"""The compiled ticker decoder against the plain struct reference."""

import math
import random
import struct

import numpy as np
import pytest
import reference_ticker as ref

from hftcore.kite.server import TickState, encode_frame, encode_packet
from hftcore_ext.ticker import COLUMNS, decode_frame, packet_count

TOKENS = (408065, 738561, 256265, 412675, 1234566, 13368834)   # NSE, NSE, index, CDS, BCD, NFO


def _random_frame(rng, n):
    packets = []
    for _ in range(n):
        tok = rng.choice(TOKENS)
        top = 200 if tok & 0xFF == 3 else 5000          # CDS prices * 1e7 stay in an int32
        t = TickState(tok, round(rng.uniform(1, top), 2), last_quantity=rng.randint(0, 5000),
                      average_price=round(rng.uniform(1, top), 2),
                      volume=rng.randint(0, 2**31 - 1), buy_quantity=rng.randint(0, 10**6),
                      sell_quantity=rng.randint(0, 10**6), open=100.0, high=110.5, low=95.25,
                      close=101.0, last_trade_time=1_764_215_000 + rng.randint(0, 9999),
                      oi=rng.randint(0, 10**7), exchange_ts=1_764_215_000 + rng.randint(0, 9999),
                      depth=[(rng.randint(0, 50), round(rng.uniform(1, 200), 2), 3)
                             for _ in range(10)])
        packets.append(encode_packet(t, rng.choice(("ltp", "quote", "full"))))
    return encode_frame(packets)


def _same(rows, cols):
    assert len(rows) == len(cols["token"])
    for i, row in enumerate(rows):
        for name in COLUMNS:
            want, got = row[name], cols[name][i]
            if isinstance(want, float) and math.isnan(want):
                assert math.isnan(got), (name, i)
            else:
                assert got == want, (name, i, got, want)


def test_kite_ticker_decode_matches_the_struct_reference_on_random_frames():
    rng = random.Random(7)
    for n in (1, 2, 5, 40, 300):
        frame = _random_frame(rng, n)
        _same(ref.decode_frame(frame), decode_frame(frame))


def test_kite_ticker_decode_layouts_and_segment_divisors():
    full = TickState(408065, 1580.55, last_quantity=7, average_price=1579.1, volume=123456,
                     open=1570.0, high=1590.0, low=1560.0, close=1575.0,
                     last_trade_time=1_764_215_100, exchange_ts=1_764_215_101,
                     depth=[(10, 1580.5, 2)] + [(0, 0, 0)] * 4 + [(4, 1580.6, 1)] + [(0, 0, 0)] * 4)
    cds = TickState(412675, 83.1234567)
    idx = TickState(256265, 24180.35, open=24100.0, high=24200.0, low=24050.0, close=24000.0,
                    exchange_ts=1_764_215_102)
    frame = encode_frame([encode_packet(full, "full"), encode_packet(cds, "ltp"),
                          encode_packet(idx, "full"), encode_packet(full, "quote")])
    cols = decode_frame(frame)
    assert cols["mode"].tolist() == [3, 1, 5, 2]
    assert cols["token"].dtype == np.int64 and cols["token"].tolist() == [408065, 412675,
                                                                         256265, 408065]
    assert cols["ltp"][0] == 1580.55 and cols["ltp"][1] == pytest.approx(83.1234567, abs=1e-7)
    assert cols["volume"].tolist() == [123456, -1, -1, 123456]
    # epoch seconds -> ns UTC, never shifted by a local zone
    assert cols["exchange_ns"].tolist() == [1_764_215_101 * 10**9, 0, 1_764_215_102 * 10**9, 0]
    assert cols["last_trade_ns"][0] == 1_764_215_100 * 10**9
    assert (cols["bid"][0], cols["ask"][0]) == (1580.5, 1580.6)
    assert cols["change"][2] == pytest.approx(180.35)
    assert cols["skipped"] == 0


def test_kite_ticker_decode_heartbeat_unknown_and_truncated():
    assert packet_count(b"\x00") == 0
    assert len(decode_frame(b"\x00")["token"]) == 0
    odd = struct.pack(">HH", 2, 3) + b"abc" + struct.pack(">Hii", 8, 408065, 100)
    cols = decode_frame(odd)
    assert cols["skipped"] == 1 and cols["token"].tolist() == [408065]
    with pytest.raises(ValueError, match="truncated"):
        decode_frame(struct.pack(">HH", 1, 44) + b"\x00" * 20)
    with pytest.raises(ValueError, match="truncated"):
        decode_frame(struct.pack(">H", 3))
