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


# ---------------------------------------------------------------- declared indicators
# Each recomputes from the window it needs (no running sums), so it is an independent
# statement of the definition.  NaN inputs (any field of a bar) are skipped: the output
# repeats the previous one, as the kernels do.

def _windowed(values, n, fn):
    out, window, last = [], [], NAN
    for x in values:
        if not math.isnan(x):
            window = (window + [x])[-n:]
            if len(window) == n:
                last = fn(window)
        out.append(last)
    return out


def sma(values, n):
    return _windowed(values, n, lambda w: sum(w) / n)


def wma(values, n):
    return _windowed(values, n, lambda w: sum((i + 1) * x for i, x in enumerate(w))
                     / (n * (n + 1) / 2))


def _pvar(w):
    m = sum(w) / len(w)
    return sum((x - m) ** 2 for x in w) / len(w)


def stddev(values, n, nbdev=1.0):
    return _windowed(values, n, lambda w: math.sqrt(_pvar(w)) * nbdev)


def bbands(values, n, up=2.0, dn=2.0):
    """(upper, middle, lower) lists."""
    mids = sma(values, n)
    sds = stddev(values, n)
    return ([m + s * up for m, s in zip(mids, sds)], mids,
            [m - s * dn for m, s in zip(mids, sds)])


def macd(values, fast, slow, signal):
    """TA-Lib MACD: both EMAs start at input ``slow`` (the fast one seeded with the
    mean of the last ``fast`` inputs there); the signal EMA is seeded with the mean
    of the first ``signal`` MACD values; nothing is output before the signal."""
    xs, out = [], ([], [], [])
    kf, ks, kg = 2 / (fast + 1), 2 / (slow + 1), 2 / (signal + 1)
    f = s = g = NAN
    macds = []
    cur = (NAN, NAN, NAN)
    for x in values:
        if not math.isnan(x):
            xs.append(x)
            if len(xs) == slow:
                s = sum(xs) / slow
                f = sum(xs[-fast:]) / fast
            elif len(xs) > slow:
                s = (x - s) * ks + s
                f = (x - f) * kf + f
            if len(xs) >= slow:
                macds.append(f - s)
                if len(macds) == signal:
                    g = sum(macds) / signal
                elif len(macds) > signal:
                    g = (macds[-1] - g) * kg + g
                if len(macds) >= signal:
                    cur = (macds[-1], g, macds[-1] - g)
        for o, v in zip(out, cur):
            o.append(v)
    return out


def _bars(highs, lows, closes):
    return [(h, l, c) for h, l, c in zip(highs, lows, closes)]


def stoch(highs, lows, closes, fastk=5, slowk=3, slowd=3):
    """(slowk, slowd): SMA(slowk) of fast %K, then SMA(slowd) of that."""
    seen, fks, sks = [], [], []
    cur, ok, od = (NAN, NAN), [], []
    for h, l, c in _bars(highs, lows, closes):
        if not (math.isnan(h) or math.isnan(l) or math.isnan(c)):
            seen.append((h, l, c))
            if len(seen) >= fastk:
                w = seen[-fastk:]
                hi, lo = max(b[0] for b in w), min(b[1] for b in w)
                fks.append(0.0 if abs(hi - lo) <= 1e-14 * (abs(hi) + abs(lo))
                           else (c - lo) / ((hi - lo) / 100.0))
                if len(fks) >= slowk:
                    sks.append(sum(fks[-slowk:]) / slowk)
                    if len(sks) >= slowd:
                        cur = (sks[-1], sum(sks[-slowd:]) / slowd)
        ok.append(cur[0])
        od.append(cur[1])
    return ok, od


def _dm(h, l, ph, pl):
    up, down = h - ph, pl - l
    plus = up if up > 0 and up > down else 0.0
    minus = down if down > 0 and down > up else 0.0
    return plus, minus


def adx(highs, lows, closes, n):
    """(adx, plus_di, minus_di) as TA-Lib computes them (Wilder's sums)."""
    ax, pd, md = [], [], []
    prev = None
    k = 0
    pdm = mdm = tr = sdx = 0.0
    a = p = m = NAN
    for h, l, c in _bars(highs, lows, closes):
        if not (math.isnan(h) or math.isnan(l) or math.isnan(c)):
            if prev is not None:
                k += 1
                plus, minus = _dm(h, l, prev[0], prev[1])
                t = true_range(h, l, prev[2])
                if k < n:
                    pdm, mdm, tr = pdm + plus, mdm + minus, tr + t
                else:
                    pdm = pdm - pdm / n + plus
                    mdm = mdm - mdm / n + minus
                    tr = tr - tr / n + t
                    if tr <= 0:
                        p = m = 0.0
                        dx = None
                    else:
                        p, m = 100 * pdm / tr, 100 * mdm / tr
                        dx = None if abs(p + m) < 1e-14 else 100 * abs(m - p) / (m + p)
                    if k < 2 * n - 1:
                        sdx += dx or 0.0
                    elif k == 2 * n - 1:
                        a = (sdx + (dx or 0.0)) / n
                    elif dx is not None:
                        a = (a * (n - 1) + dx) / n
            prev = (h, l, c)
        ax.append(a)
        pd.append(p)
        md.append(m)
    return ax, pd, md


def obv(closes, volumes):
    out, cur, prev = [], NAN, None
    for c, v in zip(closes, volumes):
        if not (math.isnan(c) or math.isnan(v)):
            if prev is None:
                cur = v
            elif c > prev:
                cur += v
            elif c < prev:
                cur -= v
            prev = c
        out.append(cur)
    return out


def supertrend(highs, lows, closes, n=10, mult=3.0):
    """(supertrend, direction): TradingView's rules on TA-Lib's ATR, direction +1 up."""
    atr_ = ATR(n)
    st, dr = [], []
    upper = lower = direction = value = NAN
    prev_close = NAN
    for h, l, c in _bars(highs, lows, closes):
        if not (math.isnan(h) or math.isnan(l) or math.isnan(c)):
            a = atr_.update(h, l, c)
            if not math.isnan(a):
                up, dn = (h + l) / 2 + mult * a, (h + l) / 2 - mult * a
                if math.isnan(direction):
                    upper, lower, direction = up, dn, -1.0
                else:
                    upper = up if (up < upper or prev_close > upper) else upper
                    lower = dn if (dn > lower or prev_close < lower) else lower
                    if direction < 0:
                        direction = 1.0 if c > upper else -1.0
                    else:
                        direction = -1.0 if c < lower else 1.0
                value = lower if direction > 0 else upper
            prev_close = c
        st.append(value)
        dr.append(direction)
    return st, dr


def donchian(highs, lows, n=20):
    """(upper, middle, lower): highest high / lowest low of the last n bars."""
    seen, u, m, lo = [], [], [], []
    cur = (NAN, NAN, NAN)
    for h, l in zip(highs, lows):
        if not (math.isnan(h) or math.isnan(l)):
            seen.append((h, l))
            if len(seen) >= n:
                hi_, lo_ = max(b[0] for b in seen[-n:]), min(b[1] for b in seen[-n:])
                cur = (hi_, (hi_ + lo_) / 2, lo_)
        u.append(cur[0])
        m.append(cur[1])
        lo.append(cur[2])
    return u, m, lo
