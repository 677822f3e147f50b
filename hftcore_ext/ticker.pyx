"""Kite ticker binary frames -> numpy columns, in one pass without the GIL.

A frame is a big-endian uint16 packet count, then per packet a uint16 length
and the packet.  The packet's length says its layout:

====== =========================================================================
bytes  layout (int32 fields at these offsets)
====== =========================================================================
8      LTP: 0 token, 4 last price
28     index quote: 0 token, 4 last, 8 high, 12 low, 16 open, 20 close, 24 change
32     index full: the index quote + 28 exchange timestamp (epoch s)
44     quote: 0 token, 4 last, 8 last qty, 12 avg price, 16 volume today
       (cumulative), 20 buy qty, 24 sell qty, 28 open, 32 high, 36 low, 40 close
184    full: the quote + 44 last trade time (epoch s), 48 OI, 52 OI day high,
       56 OI day low, 60 exchange timestamp (epoch s), 64..183 depth: ten
       {int32 qty, int32 price, int16 orders, 2 pad}, five bids then five offers
====== =========================================================================

Prices are integers divided by 100, except segment (``token & 0xFF``) 3 (CDS,
1e7) and 6 / 12 (BCD, 1e4).  Timestamps become int64 ns since the epoch (UTC);
absent ones are 0.  Packets of another length are skipped (``skipped``).
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.math cimport NAN

import numpy as np
cimport numpy as cnp

cnp.import_array()
cdef enum:
    NS = 1000000000
    M_LTP = 1
    M_QUOTE = 2
    M_FULL = 3
    M_INDEX_QUOTE = 4
    M_INDEX_FULL = 5

MODE_LTP, MODE_QUOTE, MODE_FULL, MODE_INDEX_QUOTE, MODE_INDEX_FULL = 1, 2, 3, 4, 5


cdef struct TickColumns:
    int64_t* token
    int8_t* mode
    double* ltp
    int64_t* last_qty
    double* avg_price
    int64_t* volume
    int64_t* buy_qty
    int64_t* sell_qty
    double* open
    double* high
    double* low
    double* close
    double* change
    int64_t* last_trade_ns
    int64_t* oi
    int64_t* exchange_ns
    double* bid
    double* ask




cdef inline uint32_t _u32(const uint8_t* p) noexcept nogil:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) \
        | (<uint32_t>p[3])


cdef inline int32_t _i32(const uint8_t* p) noexcept nogil:
    return <int32_t>_u32(p)


cdef inline uint16_t _u16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(((<uint16_t>p[0]) << 8) | (<uint16_t>p[1]))


cdef inline double divisor_of(uint32_t token) noexcept nogil:
    cdef uint32_t seg = token & 0xFF
    if seg == 3:
        return 1e7
    if seg == 6 or seg == 12:
        return 1e4
    return 100.0


cdef inline void _clear(TickColumns* c, Py_ssize_t i) noexcept nogil:
    c.last_qty[i] = 0
    c.avg_price[i] = NAN
    c.volume[i] = -1
    c.buy_qty[i] = 0
    c.sell_qty[i] = 0
    c.open[i] = NAN
    c.high[i] = NAN
    c.low[i] = NAN
    c.close[i] = NAN
    c.change[i] = NAN
    c.last_trade_ns[i] = 0
    c.oi[i] = 0
    c.exchange_ns[i] = 0
    c.bid[i] = NAN
    c.ask[i] = NAN


cdef inline bint decode_packet(const uint8_t* p, Py_ssize_t n, TickColumns* c,
                               Py_ssize_t i) noexcept nogil:
    """Decode one packet of ``n`` bytes into row ``i``; False for an unknown length."""
    cdef uint32_t tok
    cdef double d
    if n != 8 and n != 28 and n != 32 and n != 44 and n != 184:
        return False
    tok = _u32(p)
    d = divisor_of(tok)
    _clear(c, i)
    c.token[i] = tok
    c.ltp[i] = _i32(p + 4) / d
    if n == 8:
        c.mode[i] = M_LTP
        return True
    if n == 28 or n == 32:
        c.mode[i] = M_INDEX_QUOTE if n == 28 else M_INDEX_FULL
        c.high[i] = _i32(p + 8) / d
        c.low[i] = _i32(p + 12) / d
        c.open[i] = _i32(p + 16) / d
        c.close[i] = _i32(p + 20) / d
        c.change[i] = _i32(p + 24) / d
        if n == 32:
            c.exchange_ns[i] = <int64_t>_i32(p + 28) * NS
        return True
    c.mode[i] = M_QUOTE if n == 44 else M_FULL
    c.last_qty[i] = _u32(p + 8)
    c.avg_price[i] = _i32(p + 12) / d
    c.volume[i] = _u32(p + 16)
    c.buy_qty[i] = _u32(p + 20)
    c.sell_qty[i] = _u32(p + 24)
    c.open[i] = _i32(p + 28) / d
    c.high[i] = _i32(p + 32) / d
    c.low[i] = _i32(p + 36) / d
    c.close[i] = _i32(p + 40) / d
    if n == 184:
        c.last_trade_ns[i] = <int64_t>_i32(p + 44) * NS
        c.oi[i] = _u32(p + 48)
        c.exchange_ns[i] = <int64_t>_i32(p + 60) * NS
        if _i32(p + 64) > 0:                                 # best bid, then best offer
            c.bid[i] = _i32(p + 68) / d
        if _i32(p + 124) > 0:
            c.ask[i] = _i32(p + 128) / d
    return True


cdef inline Py_ssize_t decode_frame_c(const uint8_t* buf, Py_ssize_t size, TickColumns* c,
                                      Py_ssize_t cap, Py_ssize_t* skipped) noexcept nogil:
    """Rows written, or -1 if the frame is truncated (a length runs past its end)."""
    cdef Py_ssize_t count, k, pos = 2, rows = 0, n
    if size < 2:
        return 0                                  # a heartbeat (1 byte) or nothing
    count = _u16(buf)
    for k in range(count):
        if pos + 2 > size:
            return -1
        n = _u16(buf + pos)
        pos += 2
        if pos + n > size:
            return -1
        if rows < cap and decode_packet(buf + pos, n, c, rows):
            rows += 1
        else:
            skipped[0] += 1
        pos += n
    return rows


COLUMNS = ("token", "mode", "ltp", "last_qty", "avg_price", "volume", "buy_qty", "sell_qty",
           "open", "high", "low", "close", "change", "last_trade_ns", "oi", "exchange_ns",
           "bid", "ask")
_INT = ("token", "last_qty", "volume", "buy_qty", "sell_qty", "last_trade_ns", "oi",
        "exchange_ns")


def packet_count(frame) -> int:
    """Packets a frame announces (0 for a heartbeat)."""
    cdef const uint8_t[::1] b = frame
    return _u16(&b[0]) if b.shape[0] >= 2 else 0


def decode_frame(frame):
    """Decode one binary ticker frame (bytes-like) into a dict of numpy columns.

    Keys (one row per packet, in frame order): ``token`` int64, ``mode`` int8
    (1 ltp, 2 quote, 3 full, 4 index quote, 5 index full), ``ltp``,
    ``avg_price``, ``open``, ``high``, ``low``, ``close``, ``change``, ``bid``,
    ``ask`` float64 rupees (NaN where the mode does not carry them),
    ``last_qty``, ``volume`` (cumulative for the day; -1 where absent),
    ``buy_qty``, ``sell_qty``, ``oi`` int64, ``last_trade_ns``, ``exchange_ns``
    int64 ns since the epoch, UTC (0 where absent), and ``skipped`` (packets of an
    unknown length).  ValueError for a truncated frame.
    """
    cdef const uint8_t[::1] b = frame
    cdef Py_ssize_t size = b.shape[0], cap, rows, skipped = 0
    cdef TickColumns c
    cap = _u16(&b[0]) if size >= 2 else 0
    out = {}
    for name in COLUMNS:
        out[name] = np.empty(cap, dtype=np.int8 if name == "mode" else
                             np.int64 if name in _INT else np.float64)
    cdef int64_t[::1] token = out["token"], last_qty = out["last_qty"], volume = out["volume"]
    cdef int64_t[::1] buy_qty = out["buy_qty"], sell_qty = out["sell_qty"]
    cdef int64_t[::1] last_trade_ns = out["last_trade_ns"], oi = out["oi"]
    cdef int64_t[::1] exchange_ns = out["exchange_ns"]
    cdef int8_t[::1] mode = out["mode"]
    cdef double[::1] ltp = out["ltp"], avg_price = out["avg_price"], open_ = out["open"]
    cdef double[::1] high = out["high"], low = out["low"], close = out["close"]
    cdef double[::1] change = out["change"], bid = out["bid"], ask = out["ask"]
    if cap == 0:
        out["skipped"] = 0
        return out
    c.token = &token[0]
    c.mode = &mode[0]
    c.ltp = &ltp[0]
    c.last_qty = &last_qty[0]
    c.avg_price = &avg_price[0]
    c.volume = &volume[0]
    c.buy_qty = &buy_qty[0]
    c.sell_qty = &sell_qty[0]
    c.open = &open_[0]
    c.high = &high[0]
    c.low = &low[0]
    c.close = &close[0]
    c.change = &change[0]
    c.last_trade_ns = &last_trade_ns[0]
    c.oi = &oi[0]
    c.exchange_ns = &exchange_ns[0]
    c.bid = &bid[0]
    c.ask = &ask[0]
    with nogil:
        rows = decode_frame_c(&b[0], size, &c, cap, &skipped)
    if rows < 0:
        raise ValueError(f"truncated ticker frame ({size} bytes)")
    if rows < cap:
        for name in COLUMNS:
            out[name] = out[name][:rows]
    out["skipped"] = int(skipped)
    return out
