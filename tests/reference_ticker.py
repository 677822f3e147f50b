"""A plain ``struct`` decoder of Kite ticker frames: the reference for
``hftcore_ext.ticker`` and its benchmark baseline (the way pykiteconnect decodes)."""

import math
import struct

NS = 1_000_000_000


def _div(token):
    seg = token & 0xFF
    return 1e7 if seg == 3 else 1e4 if seg in (6, 12) else 100.0


def decode_packet(pk: bytes) -> dict | None:
    n = len(pk)
    if n not in (8, 28, 32, 44, 184):
        return None
    token, last = struct.unpack(">Ii", pk[:8])
    d = _div(token)
    row = {"token": token, "ltp": last / d, "last_qty": 0, "avg_price": math.nan, "volume": -1,
           "buy_qty": 0, "sell_qty": 0, "open": math.nan, "high": math.nan, "low": math.nan,
           "close": math.nan, "change": math.nan, "last_trade_ns": 0, "oi": 0,
           "exchange_ns": 0, "bid": math.nan, "ask": math.nan}
    if n == 8:
        row["mode"] = 1
    elif n in (28, 32):
        row["mode"] = 4 if n == 28 else 5
        hi, lo, op, cl, ch = struct.unpack(">5i", pk[8:28])
        row.update(high=hi / d, low=lo / d, open=op / d, close=cl / d, change=ch / d)
        if n == 32:
            row["exchange_ns"] = struct.unpack(">i", pk[28:32])[0] * NS
    else:
        row["mode"] = 2 if n == 44 else 3
        lq, ap, vol, bq, sq, op, hi, lo, cl = struct.unpack(">IiIIIiiii", pk[8:44])
        row.update(last_qty=lq, avg_price=ap / d, volume=vol, buy_qty=bq, sell_qty=sq,
                   open=op / d, high=hi / d, low=lo / d, close=cl / d)
        if n == 184:
            ltt, oi, _oih, _oil, ets = struct.unpack(">iIIIi", pk[44:64])
            row.update(last_trade_ns=ltt * NS, oi=oi, exchange_ns=ets * NS)
            bq0, bp0, _ = struct.unpack(">iih", pk[64:74])
            aq0, ap0, _ = struct.unpack(">iih", pk[124:134])
            if bq0 > 0:
                row["bid"] = bp0 / d
            if aq0 > 0:
                row["ask"] = ap0 / d
    return row


def decode_frame(frame: bytes) -> list[dict]:
    """One dict per known packet, in frame order; ValueError if truncated."""
    if len(frame) < 2:
        return []
    (count,) = struct.unpack(">H", frame[:2])
    pos, rows = 2, []
    for _ in range(count):
        if pos + 2 > len(frame):
            raise ValueError("truncated frame")
        (n,) = struct.unpack(">H", frame[pos:pos + 2])
        pos += 2
        if pos + n > len(frame):
            raise ValueError("truncated frame")
        row = decode_packet(frame[pos:pos + n])
        if row is not None:
            rows.append(row)
        pos += n
    return rows
