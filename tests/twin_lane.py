"""The plain-Python twins of ``hftcore_ext.lane``: the references the compiled code must equal.

Written the obvious way (a dict of working orders, sums walked per check, rate
windows as deques): this is what the gate ran before its arithmetic was
compiled.  ``tests/test_lane.py`` runs both on random order flows and requires
the same answers; ``benches/test_bench_lane.py`` times the gate with each.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from hftcore_ext.ledger import Ledger

NS = 1_000_000_000
IST_OFFSET_NS = 19_800 * NS
DAY_NS = 86_400 * NS
MAX_PAISE = 1e17
I64 = 2**63

RULES = ("", "duplicate", "exit", "trigger", "no_price", "price_band", "halted",
         "entries_closed", "holdings", "max_position", "no_price", "max_order_value",
         "buying_power", "rate")
(DUPLICATE, EXIT, TRIGGER, NO_BAND_PRICE, PRICE_BAND, HALTED, ENTRIES_CLOSED, HOLDINGS,
 MAX_POSITION, NO_VALUE_PRICE, MAX_ORDER_VALUE, BUYING_POWER, RATE) = range(1, 14)
MARKET, LIMIT, SL, SL_M = range(4)


class _Rates:
    def __init__(self, per_s, per_min, per_day):
        self.caps = (per_s, per_min, per_day)
        self.sec: deque[int] = deque()
        self.minute: deque[int] = deque()
        self.day: int | None = None
        self.day_count = 0

    def admit(self, now: int) -> int:
        per_s, per_min, per_day = self.caps
        if per_s is None and per_min is None and per_day is None:
            return 0
        while self.sec and now - self.sec[0] >= NS:
            self.sec.popleft()
        while self.minute and now - self.minute[0] >= 60 * NS:
            self.minute.popleft()
        day = (now + IST_OFFSET_NS) // DAY_NS
        if day != self.day:
            self.day, self.day_count = day, 0
        if per_s is not None and len(self.sec) >= per_s:
            return 1
        if per_min is not None and len(self.minute) >= per_min:
            return 2
        if per_day is not None and self.day_count >= per_day:
            return 3
        self.sec.append(now)           # kept without a cap too: a cap set later counts them
        self.minute.append(now)
        self.day_count += 1
        return 0


class RiskBookTwin:
    """Same constructor, methods and answers as ``hftcore_ext.lane.RiskBook``."""

    def __init__(self, max_position_size, open_rates=(None, None, None),
                 exit_rates=(None, None, None), price_band=None, max_order_value=None,
                 check_buying_power=True):
        self.open_rates = _Rates(*open_rates)
        self.exit_rates = _Rates(*exit_rates)
        self.orders: dict[str, list] = {}     # key -> [sym, buy, qty, exit_qty, mpu, group]
        self.reserved = 0
        self.configure(max_position_size, open_rates, exit_rates, price_band, max_order_value,
                       check_buying_power)

    def configure(self, max_position_size, open_rates, exit_rates, price_band,
                  max_order_value, check_buying_power):
        self.max_position_size = max_position_size
        self.open_rates.caps = tuple(open_rates)
        self.exit_rates.caps = tuple(exit_rates)
        for r, (per_s, per_min, _) in ((self.open_rates, open_rates),
                                       (self.exit_rates, exit_rates)):
            r.sec = deque(list(r.sec)[-per_s:] if per_s else r.sec)
            r.minute = deque(list(r.minute)[-per_min:] if per_min else r.minute)
        self.band = price_band
        self.max_order_value = max_order_value
        self.check_bp = check_buying_power

    def totals(self, sym: int, skip_group: str = "") -> tuple[int, int, int, int]:
        buys = sells = exit_buys = exit_sells = 0
        groups: dict[tuple[str, bool], tuple[int, int]] = {}
        for s, buy, qty, exit_qty, _mpu, group in self.orders.values():
            if s != sym or (group and group == skip_group):
                continue
            if group:
                q, e = groups.get((group, buy), (0, 0))
                groups[(group, buy)] = (max(q, qty), max(e, exit_qty))
            elif buy:
                buys, exit_buys = buys + qty, exit_buys + exit_qty
            else:
                sells, exit_sells = sells + qty, exit_sells + exit_qty
        for (_, buy), (q, e) in groups.items():
            if buy:
                buys, exit_buys = buys + q, exit_buys + e
            else:
                sells, exit_sells = sells + q, exit_sells + e
        return buys, sells, exit_buys, exit_sells

    def __contains__(self, key) -> bool:
        return key in self.orders

    def __len__(self) -> int:
        return len(self.orders)

    def check(self, key, sym, buy, quantity, lot, pos, ltp, price_p, trig_p, order_type,
              margin_rate, cnc, group, exit_only, halted, entries_closed, account, now):
        if key in self.orders:
            return DUPLICATE, 0, False, 0, 0, 0
        buys, sells, exit_buys, exit_sells = self.totals(sym, group)
        reducible = max(0, -pos - exit_buys) if buy else max(0, pos - exit_sells)
        exit_qty = min(quantity, reducible)
        is_exit = exit_qty == quantity
        if exit_only and not is_exit:
            return EXIT, 0, False, pos, exit_buys if buy else exit_sells, 0
        if order_type in (SL, SL_M) and ltp is not None:
            t = trig_p / 100
            if (buy and t <= ltp) or (not buy and t >= ltp):
                return TRIGGER, 0, False, 0, 0, 0
        if self.band is not None and order_type != MARKET:
            if ltp is None and not is_exit:
                return NO_BAND_PRICE, 0, False, 0, 0, 0
            if ltp is not None:
                for i, p in enumerate((price_p, trig_p)):
                    if p and abs(p / 100 - ltp) > self.band * ltp:
                        return PRICE_BAND, 0, False, i + 1, p, 0
        mpu = 0
        if not is_exit:
            if halted:
                return HALTED, 0, False, 0, 0, 0
            if entries_closed:
                return ENTRIES_CLOSED, 0, False, 0, 0, 0
            if cnc and not buy:
                return HOLDINGS, 0, False, pos, exit_sells, 0
            room = (self.max_position_size - (pos + buys) if buy
                    else self.max_position_size + (pos - sells))
            room -= room % lot
            if room < quantity:
                if room <= exit_qty:
                    return MAX_POSITION, 0, False, pos, buys, sells
                quantity = room
            ref = price_p or trig_p
            if ref == 0 and ltp is not None and abs(ltp * 100) <= MAX_PAISE:
                ref = int(round(ltp * 100))
            if ref == 0:
                return NO_VALUE_PRICE, 0, False, 0, 0, 0
            value = quantity * ref
            if value >= I64:
                value = 1 << 62
            if self.max_order_value is not None and value > self.max_order_value:
                return MAX_ORDER_VALUE, 0, False, value, 0, 0
            mpu = math.ceil(ref * margin_rate)
            if self.check_bp:
                need = (quantity - exit_qty) * mpu
                if need >= I64:
                    need = 1 << 62
                equity, margin = account()
                free = equity - margin - self.reserved
                if need > free:
                    return BUYING_POWER, 0, False, need, free, 0
            need = (quantity - exit_qty) * mpu
            if need >= I64:
                need = 1 << 62
            if need > I64 - 1 - self.reserved:
                return BUYING_POWER, 0, False, need, I64 - 1 - self.reserved, 0
        why = (self.exit_rates if is_exit else self.open_rates).admit(now)
        if why:
            return RATE, 0, False, why, int(is_exit), 0
        self.orders[key] = [sym, buy, quantity, exit_qty, mpu, group]
        self.reserved += (quantity - exit_qty) * mpu
        return 0, quantity, is_exit, 0, 0, 0

    def _drop(self, key):
        _sym, _buy, qty, exit_qty, mpu, _group = self.orders.pop(key)
        self.reserved -= (qty - exit_qty) * mpu

    def on_fill(self, key, quantity):
        w = self.orders.get(key)
        if w is None:
            return -1
        q = min(quantity, w[2])
        from_exit = min(q, w[3])
        w[3] -= from_exit
        self.reserved -= (q - from_exit) * w[4]
        w[2] -= q
        if w[2] <= 0:
            self._drop(key)
        return w[0]

    def resize(self, key, remaining):
        w = self.orders.get(key)
        if w is None:
            return
        if remaining <= 0:
            self._drop(key)
            return
        delta = remaining - w[2]
        if delta < 0:
            cut = -delta
            from_open = min(cut, w[2] - w[3])
            self.reserved -= from_open * w[4]
            w[3] -= cut - from_open
        else:
            self.reserved = min(self.reserved + delta * w[4], I64 - 1)
        w[2] = remaining

    def release(self, key):
        if key in self.orders:
            self._drop(key)

    def working(self, key):
        w = self.orders.get(key)
        return None if w is None else (w[0], w[1], w[2], w[3], w[4])


class FeedIntakeTwin:
    """Same as ``hftcore_ext.lane.FeedIntake``: what ``DashboardFeed.on_event`` did in Python."""

    def __init__(self, signals, orders):
        self.signals, self.orders = signals, orders
        self.counts: dict[str, int] = {}
        self.pending: list = []
        self.market_ns = 0
        self.version = 0
        self.last_event_ts = None
        self.portfolio_raw = None

    def bind(self, lock, now_ns, other, fold):
        self.lock, self.now_ns, self.other, self.fold = lock, now_ns, other, fold

    def on_event(self, event) -> None:
        etype, payload = event["type"], event["payload"]
        ts = event.get("timestamp")
        with self.lock:
            if self.take(etype, payload, ts):
                self.other(etype, payload, ts)
            if len(self.pending) >= 1024:
                self.fold()

    def take(self, etype, payload, ts) -> bool:
        now_ns = self.now_ns
        is_map = isinstance(payload, Mapping)
        pts = payload.get("ts") if is_map else None
        has_ts = type(pts) is int and 0 < pts < I64
        self.version += 1
        self.counts[etype] = self.counts.get(etype, 0) + 1
        self.last_event_ts = ts
        if has_ts and pts > self.market_ns:
            self.market_ns = pts
        if etype.startswith("signals."):
            self.signals.append((etype, payload))
        elif etype.startswith("order."):
            self.orders.append((etype, payload))
            if is_map:
                self.pending.append((etype, payload, pts if has_ts else now_ns(None)))
        elif etype == "portfolio.updated":
            if is_map:
                self.portfolio_raw = payload
                now = pts if has_ts else now_ns(None)
                self.pending.append((None, payload, now / NS if now else (ts or 0.0)))
        else:
            return True
        return False


def fuse_twin(signals, primary_tf, secondary_tf, weights, primary_weight, secondary_weight,
              min_confidence):
    """Same as ``hftcore_ext.lane.fuse``: what ``StrategyEngineV3.fuse`` ran in Python."""
    nets = {primary_tf: 0.0, secondary_tf: 0.0}
    net = active = 0.0
    for s in signals:
        tf_w = primary_weight if s.timeframe == primary_tf else secondary_weight
        w = weights.get(s.strategy, 1.0) * tf_w
        if s.direction:
            net += w * s.direction * s.confidence
            active += w
            nets[s.timeframe] = nets.get(s.timeframe, 0.0) + s.direction * s.confidence
    if active == 0 or net == 0:
        return "HOLD", 0.0, "no strategy has a view"
    conf = abs(net) / active
    action = "BUY" if net > 0 else "SELL"
    if primary_tf != secondary_tf and nets[secondary_tf] * net < 0:
        return "HOLD", 0.0, f"timeframes disagree ({primary_tf} vs {secondary_tf})"
    if conf < min_confidence:
        return "HOLD", conf, f"{action} confidence {conf:.2f} below {min_confidence}"
    views = [f"{s.strategy}@{s.timeframe}:{s.action}" for s in signals if s.direction]
    return action, conf, f"{action} {conf:.2f} from " + ", ".join(views)


class ValuesTwin(dict):
    def __missing__(self, name):
        raise KeyError(f"no indicator {name!r}; declared: {', '.join(self) or 'none'}")


class ContextTwin:
    """``hftcore.strategy.Context``'s per-bar reads as they were in Python: pointing,
    ``ind`` from the bundle and the bank, ``prev``, ``crossed_above``/``crossed_below``."""

    def __init__(self, bank):
        self.bank, self._sym, self._tf = bank, -1, -1
        self._ind, self._bundle, self._prev = None, None, {}

    def _point(self, sym, tf, bundle=None):
        self._sym, self._tf, self._ind, self._bundle = sym, tf, None, bundle
        return self

    @property
    def ind(self):
        if self._ind is None:
            vals = ValuesTwin(self._bundle or {})
            if self._sym >= 0 and self.bank.indicator_names:
                vals.update(self.bank.indicators(self._sym, self._tf))
            self._ind = vals
        return self._ind

    @property
    def prev(self):
        return self._prev.get((self._sym, self._tf)) or ValuesTwin()

    def _remember(self):
        if self._sym >= 0:
            self._prev[(self._sym, self._tf)] = self.ind

    def crossed_above(self, a, b):
        return self._cross(a, b, 1)

    def crossed_below(self, a, b):
        return self._cross(a, b, -1)

    def _cross(self, a, b, way):
        before = self._prev.get((self._sym, self._tf))
        if not before:
            now = self.ind
            for name in (a, b) if type(b) is str else (a,):
                now[name]
            return False
        now = self.ind
        a1, a0 = now[a], before.get(a)
        if type(b) is str:
            b1, b0 = now[b], before.get(b)
        else:
            b1 = b0 = float(b)
        if a1 is None or a0 is None or b1 is None or b0 is None:
            return False
        return (a0 < b0 and a1 > b1) if way > 0 else (a0 > b0 and a1 < b1)


def trades_from_fills_twin(fills, _ts_many):
    """Round trips per symbol: a trade opens when a position leaves zero and closes
    when it returns to zero (a flip closes one trade and opens the next).

    Each trade has the CSV columns (``TRADE_FIELDS``) plus ``entry_ns``/``exit_ns`` and
    ``return_pct``: net PnL over the entry value (backtesting.py's ``Trade.pl_pct``
    for a single entry fill, as a fraction)."""
    # per symbol: [ledger, open trade or None, position qty, realized, fees]; a trade is
    # [symbol, side, entry ts, max |qty|, entry value, entry qty, exit value, exit qty,
    #  realized, fees, exit ts] (paise)
    books: dict[str, list] = {}
    closed = []
    for f in fills:
        sym = f["symbol"]
        b = books.get(sym)
        if b is None:
            b = books[sym] = [Ledger(1, 0), None, 0, 0, 0]
        qty = f["quantity"] if f["side"] == "BUY" else -f["quantity"]
        px = f["price_paise"]
        led, t, before_qty, before_realized, before_fees = b
        led.apply_fill(0, qty, px, f["fees_paise"])
        # one position per ledger: its realized and fees are the book's
        after_qty, _, realized, fees = led.position(0)[:4]
        b[2], b[3], b[4] = after_qty, realized, fees
        if t is None and before_qty == 0:
            a = abs(qty)
            t = b[1] = [sym, "LONG" if qty > 0 else "SHORT", f["ts"], a, a * px, a, 0, 0, 0, 0, 0]
        t[8] += realized - before_realized
        t[9] += fees - before_fees
        if before_qty == 0:
            pass
        elif (before_qty > 0) != (qty > 0):                             # closing
            n = min(abs(qty), abs(before_qty))
            t[6] += n * px
            t[7] += n
        else:                                                           # adding
            t[4] += abs(qty) * px
            t[5] += abs(qty)
            t[3] = max(t[3], abs(after_qty))
        if after_qty == 0 or (before_qty != 0 and (after_qty > 0) != (before_qty > 0)):
            t[10] = f["ts"]
            closed.append(t)
            b[1] = None
            if after_qty != 0:                   # flipped: the rest opens a new trade
                a = abs(after_qty)
                b[1] = [sym, "LONG" if after_qty > 0 else "SHORT", f["ts"], a, a * px, a,
                        0, 0, 0, 0, 0]
    times = _ts_many([t[2] for t in closed] + [t[10] for t in closed])
    out = []
    for (sym, side, entry_ts, quantity, entry_value, entry_qty, exit_value, exit_qty, pnl,
         fees, exit_ts), entry_time, exit_time in zip(closed, times, times[len(closed):]):
        net = pnl - fees
        out.append({"symbol": sym, "side": side, "entry_time": entry_time,
                    "exit_time": exit_time, "quantity": quantity,
                    "entry_price": round(entry_value / entry_qty / 100, 4),
                    "exit_price": round(exit_value / max(exit_qty, 1) / 100, 4),
                    "pnl": pnl / 100, "fees": fees / 100,
                    "net_pnl": net / 100, "entry_ns": entry_ts, "exit_ns": exit_ts,
                    "return_pct": net / entry_value if entry_value else 0.0})
    return out


def snapshot_twin(led: Ledger, symbols) -> dict:
    """``PortfolioService._snapshot`` as it was in Python (now ``Ledger.snapshot``)."""
    positions = []
    for i in led.open_ids():
        qty, cost, realized, fees, mark, _fills, _traded = led.position(i)
        positions.append({
            "symbol": symbols[i], "quantity": qty,
            "avg_price": round(cost / qty / 100, 4) if qty else 0.0,
            "last_price": mark / 100, "market_value": qty * mark / 100,
            "unrealized_pnl": (qty * mark - cost) / 100, "realized_pnl": realized / 100,
            "fees": fees / 100})
    return {"positions": positions, "cash": led.cash / 100, "equity": led.equity / 100,
            "realized_pnl": led.realized / 100, "unrealized_pnl": led.unrealized / 100,
            "exposure": led.exposure / 100, "position_count": led.open_positions}


def mark_rupees_twin(led: Ledger, ids, ltps, to_paise) -> int:
    """``PortfolioService.mark_to_market``'s conversion and marking as it was in Python
    (now ``Ledger.mark_rupees`` plus ``to_paise`` for what it leaves)."""
    marked = 0
    for i, ltp in zip(ids, ltps):
        if ltp is None:
            continue
        paise = ltp * 100 if type(ltp) is float else 0.0
        if 0 < paise <= MAX_PAISE:
            p = int(round(paise))
        else:
            try:
                p = to_paise(ltp)
            except ValueError:
                continue
        if p > 0:
            led.set_mark(i, p)
            marked += 1
    return marked
