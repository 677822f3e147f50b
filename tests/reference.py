"""Plain-Python references of every compiled kernel.

Written for clarity, not speed: each follows the textbook/TA-Lib definition
directly (recomputing from full history where that is clearer), so the
property tests compare the compiled incremental code against an independent
statement of the same formula.
"""

from __future__ import annotations

import math

NAN = float("nan")
NS = 1_000_000_000
IST_OFFSET_NS = 19_800 * NS
DAY_NS = 86_400 * NS
SESSION_ANCHOR_NS = 13_500 * NS


def _clean(xs):
    return [x for x in xs if not math.isnan(x)]


# ---------------------------------------------------------------- indicators

class EMA:
    """TA-Lib EMA, one value at a time: SMA of the first n inputs, then
    (x - prev) * k + prev.  NaN inputs skipped."""

    def __init__(self, n):
        self.n, self.k, self.seen, self.total, self.value = n, 2.0 / (n + 1), 0, 0.0, NAN

    def update(self, x):
        if x != x:
            return self.value
        self.seen += 1
        if self.seen < self.n:
            self.total += x
        elif self.seen == self.n:
            self.total += x
            self.value = self.total / self.n
        else:
            self.value = ((x - self.value) * self.k) + self.value
        return self.value


def ema(values, n):
    e = EMA(n)
    return [e.update(x) for x in values]


def rsi(values, n):
    """Wilder RSI as TA-Lib computes it."""
    r = RSI(n)
    return [r.update(x) for x in values]


def _rsi(g, l):
    t = g + l
    return 0.0 if -1e-14 < t < 1e-14 else 100.0 * (g / t)


def true_range(h, l, prev_close):
    return max(h - l, abs(prev_close - h), abs(prev_close - l))


def atr(highs, lows, closes, n):
    """Wilder ATR: first value is the mean of the first n TRs (TR needs the previous close)."""
    a = ATR(n)
    return [a.update(h, l, c) for h, l, c in zip(highs, lows, closes)]


class VWAP:
    def __init__(self):
        self.pv, self.vol, self.value = 0.0, 0.0, NAN

    def update(self, p, v):
        if not (p != p or v != v or v <= 0):
            self.pv += p * v
            self.vol += v
            self.value = self.pv / self.vol
        return self.value


def vwap(prices, volumes):
    w = VWAP()
    return [w.update(p, v) for p, v in zip(prices, volumes)]


def slope(values, n):
    """Least-squares slope of the last n values, recomputed from scratch each time."""
    out, window = [], []
    for x in values:
        if not math.isnan(x):
            window = (window + [x])[-n:]
        if len(window) < n:
            out.append(NAN)
            continue
        xm = (n - 1) / 2
        ym = sum(window) / n
        num = sum((i - xm) * (y - ym) for i, y in enumerate(window))
        den = sum((i - xm) ** 2 for i in range(n))
        out.append(num / den)
    return out


# ---------------------------------------------------------------- candles

def bucket_start(ts, tf_ns):
    return ts - (ts - SESSION_ANCHOR_NS) % tf_ns


def aggregate(ticks, tf_seconds):
    """Ticks [(ts, price, volume)] of one symbol -> closed candles and the forming one.

    Applies the bank's input rules: bad price/volume dropped, ts older than the
    newest accepted dropped.  Returns (closed [(start, o, h, l, c, v)], forming or None).
    """
    tf = tf_seconds * NS
    closed, cur, last = [], None, None
    for ts, p, v in ticks:
        if not (p > 0) or not (v >= 0) or (last is not None and ts < last):
            continue
        last = ts
        start = bucket_start(ts, tf)
        if cur is None or cur[0] != start:
            if cur is not None:
                closed.append(tuple(cur))
            cur = [start, p, p, p, p, v]
        else:
            cur[2] = max(cur[2], p)
            cur[3] = min(cur[3], p)
            cur[4] = p
            cur[5] += v
    return closed, (tuple(cur) if cur else None)


def session_vwap(ticks):
    """Session VWAP after the last tick (sessions are IST calendar days)."""
    session, pv, vol, last = None, 0.0, 0.0, None
    value = NAN
    for ts, p, v in ticks:
        if not (p > 0) or not (v >= 0) or (last is not None and ts < last):
            continue
        last = ts
        day = (ts + IST_OFFSET_NS) // DAY_NS
        if day != session:
            session, pv, vol, value = day, 0.0, 0.0, NAN
        if v > 0:
            pv += p * v
            vol += v
            value = pv / vol
    return value


# ---------------------------------------------------------------- ledger

class RefLedger:
    """Average-cost positions in integer paise, one dict per symbol."""

    def __init__(self, initial):
        self.initial = self.cash = initial
        self.pos = {}

    def fill(self, sym, qty, price, fee):
        p = self.pos.setdefault(sym, {"qty": 0, "cost": 0, "realized": 0, "fees": 0, "mark": 0})
        self.cash -= qty * price + fee
        p["fees"] += fee
        q = p["qty"]
        if q == 0 or (q > 0) == (qty > 0):
            p["cost"] += qty * price
            p["qty"] += qty
        elif abs(qty) <= abs(q):
            removed = _div_round(p["cost"] * abs(qty), abs(q))
            p["realized"] += -qty * price - removed
            p["cost"] -= removed
            p["qty"] += qty
        else:
            p["realized"] += q * price - p["cost"]
            p["qty"] += qty
            p["cost"] = p["qty"] * price
        p["mark"] = price

    def mark(self, sym, price):
        if sym in self.pos:
            self.pos[sym]["mark"] = price

    @property
    def realized(self):
        return sum(p["realized"] for p in self.pos.values())

    @property
    def fees(self):
        return sum(p["fees"] for p in self.pos.values())

    @property
    def market_value(self):
        return sum(p["qty"] * p["mark"] for p in self.pos.values())

    @property
    def unrealized(self):
        return sum(p["qty"] * p["mark"] - p["cost"] for p in self.pos.values())


def _div_round(a, b):
    """a / b rounded half away from zero, exact for ints (b > 0)."""
    q, r = divmod(abs(a), b)
    if 2 * r >= b:
        q += 1
    return q if a >= 0 else -q


# ---------------------------------------------------------------- bus

class RefBus:
    """The simplest correct synchronous bus: a dict of lists and a deque."""

    def __init__(self, buffer_size=1000):
        from collections import deque
        self.subs = []
        self.history = deque(maxlen=buffer_size) if buffer_size else None
        self.seq = 0

    def subscribe(self, pattern, handler):
        self.subs.append((pattern, handler))

    def publish(self, event_type, payload=None):
        import time
        self.seq += 1
        ev = {"type": event_type, "payload": payload, "timestamp": time.time(), "seq": self.seq}
        if self.history is not None:
            self.history.append(ev)
        for p, h in self.subs:
            if p == event_type or p == "*" or (p.endswith(".*") and event_type.startswith(p[:-1])):
                try:
                    h(ev)
                except Exception:
                    pass
        return ev

    def get_recent_events(self, event_type=None, limit=100):
        evs = [e for e in (self.history or []) if event_type is None or e["type"] == event_type]
        return evs[-limit:] if limit else []


class RSI:
    """Wilder RSI one value at a time (the benchmarks' pure-Python baseline)."""

    def __init__(self, n):
        self.n, self.prev, self.seen, self.gain, self.loss, self.value = n, NAN, 0, 0.0, 0.0, NAN

    def update(self, x):
        if x != x:
            return self.value
        if self.prev != self.prev:
            self.prev = x
            return self.value
        d, self.prev = x - self.prev, x
        n = self.n
        self.seen += 1
        if self.seen <= n:
            if d < 0:
                self.loss -= d
            else:
                self.gain += d
            if self.seen == n:
                self.gain /= n
                self.loss /= n
                self.value = _rsi(self.gain, self.loss)
            return self.value
        self.gain = (self.gain * (n - 1) + (d if d > 0 else 0.0)) / n
        self.loss = (self.loss * (n - 1) + (-d if d < 0 else 0.0)) / n
        self.value = _rsi(self.gain, self.loss)
        return self.value


class ATR:
    """Wilder ATR one bar at a time (the benchmarks' pure-Python baseline)."""

    def __init__(self, n):
        self.n, self.prev, self.seen, self.total, self.value = n, NAN, 0, 0.0, NAN

    def update(self, h, l, c):
        if h != h or l != l or c != c:
            return self.value
        if self.prev != self.prev:
            self.prev = c
            return self.value
        tr = true_range(h, l, self.prev)
        self.prev = c
        self.seen += 1
        if self.seen <= self.n:
            self.total += tr
            if self.seen == self.n:
                self.value = self.total / self.n
        else:
            self.value = (self.value * (self.n - 1) + tr) / self.n
        return self.value
