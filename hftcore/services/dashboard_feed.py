"""DashboardFeed: one JSON-ready view of everything the services publish.

Subscribes to every event (``"*"``) and keeps:

* ``signals`` -- the newest ``max_signals`` ``signals.raw`` / ``signals.fused``
  payloads (each with its ``type``);
* ``orders`` -- the newest ``max_orders`` ``order.*`` payloads (filled, placed,
  rejected);
* ``positions`` and ``portfolio`` -- from the newest ``portfolio.updated``;
* ``system`` -- ``update_system_state`` keys plus event counters and alerts
  (``risk.*`` events).

``get_snapshot()`` returns plain dicts, lists, str, int, float, bool and None
only (NaN/inf become None, numpy scalars Python numbers), so ``json.dumps``
works on it with no custom encoder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import threading
from collections import deque
from collections.abc import Mapping

import numpy as np

from hftcore_ext.lane import FeedIntake

logger = logging.getLogger(__name__)


def jsonable(obj, _depth: int = 0):
    """A copy of ``obj`` that ``json.dumps`` accepts without a custom encoder."""
    t = type(obj)
    # exact-type checks first: events are mostly flat dicts of plain values
    if t is str or t is int or t is bool or obj is None:
        return obj
    if t is float:
        return obj if math.isfinite(obj) else None
    if _depth > 20:
        return repr(obj)
    if t is dict:
        return {k if type(k) is str else str(k): jsonable(v, _depth + 1) for k, v in obj.items()}
    if t is list or t is tuple:
        return [jsonable(v, _depth + 1) for v in obj]
    if isinstance(obj, (str, int)):            # str/int subclasses, e.g. enums
        return obj
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return jsonable(obj.item(), _depth + 1)
    if isinstance(obj, Mapping):                # bus Events, other mappings
        return {str(k): jsonable(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset, deque)):
        return [jsonable(v, _depth + 1) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v, _depth + 1) for v in obj.tolist()]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj), _depth + 1)
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    return repr(obj)


NS = 1_000_000_000
GAP_S = 20 * 60          # a pause longer than this is not trading time (overnight, halts)


def _num(v):
    """``v`` if it is a finite real number (not a bool), else None."""
    if type(v) is float:
        return v if math.isfinite(v) else None
    if type(v) is int:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class EquityHistory:
    """The whole session's equity on market time, in at most ``max_points`` buckets.

    Each bucket is ``[t0, t1, last, low, high, drawdown]``: market seconds of its
    first and last update, the last, lowest and highest equity in it, and the
    largest drawdown from the running peak inside it.  While the history fits,
    a bucket is one update; when it would exceed ``max_points`` adjacent
    buckets are merged in pairs (never across a pause longer than ``GAP_S``,
    an overnight gap, unless there are too many pauses) and each new bucket
    takes twice as many updates, so a whole session -- or a month -- keeps a
    bounded, evenly thinned curve whose lows, highs and drawdowns are exact.
    ``generation`` counts the merges (a client holding old buckets refetches).
    """

    __slots__ = (
        "_buckets",
        "_open",
        "generation",
        "max_drawdown",
        "max_points",
        "peak",
        "stride",
        "updates",
    )

    def __init__(self, max_points: int = 2000):
        if isinstance(max_points, bool) or not isinstance(max_points, int) \
                or not 16 <= max_points <= 1_000_000:
            raise ValueError(f"max_points must be an int in [16, 1_000_000], got {max_points!r}")
        self.max_points = max_points
        self.stride = 1              # updates per bucket; doubles at each merge
        self.generation = 0
        self.updates = 0
        self.peak: float | None = None
        self.max_drawdown = 0.0
        self._buckets: list[list] = []
        self._open = 0               # updates already in the newest bucket

    def __len__(self) -> int:
        return len(self._buckets)

    def add(self, t: float, equity: float) -> None:
        """One equity reading at market time ``t`` (seconds since the epoch)."""
        self.updates += 1
        peak = self.peak
        if peak is None or equity > peak:
            self.peak = peak = equity
        dd = peak - equity
        self.max_drawdown = max(self.max_drawdown, dd)
        b = self._buckets
        if b:
            last = b[-1]
            t = max(t, last[1])                  # the chart's time never runs backwards
            if self._open < self.stride and t - last[1] <= GAP_S:
                last[1] = t
                last[2] = equity
                if equity < last[3]:
                    last[3] = equity
                elif equity > last[4]:
                    last[4] = equity
                last[5] = max(last[5], dd)
                self._open += 1
                return
        b.append([t, t, equity, equity, equity, dd])
        self._open = 1
        if len(b) > self.max_points:
            self._merge()

    @staticmethod
    def _pairs(b: list, respect_gaps: bool) -> list:
        out = []
        i, n = 0, len(b)
        while i < n:
            a = b[i]
            if i + 1 < n and (not respect_gaps or b[i + 1][0] - a[1] <= GAP_S):
                c = b[i + 1]
                out.append([a[0], c[1], c[2], min(a[3], c[3]), max(a[4], c[4]),
                            max(a[5], c[5])])
                i += 2
            else:
                out.append(a)
                i += 1
        return out

    def _merge(self) -> None:
        out = self._pairs(self._buckets, True)
        if len(out) > self.max_points * 3 // 4:          # mostly pauses: merge anyway
            out = self._pairs(out, False)
        self._buckets = out
        self.stride *= 2
        self.generation += 1
        self._open = self.stride                          # the newest bucket is closed

    def points(self, start: int = 0) -> list[list]:
        """Copies of the buckets from index ``start`` (times to the ms, money to the paisa)."""
        return [[round(p[0], 3), round(p[1], 3), round(p[2], 2), round(p[3], 2), round(p[4], 2),
                 round(p[5], 2)] for p in self._buckets[max(start, 0):]]


class DashboardFeed:
    """Aggregated, thread-safe dashboard state.

    Parameters
    ----------
    event_bus : EventBus or None (then call ``on_event`` yourself)
    max_signals, max_orders : int, default 100 (ValueError if < 1)
    max_points : int, default 2000 -- buckets of the whole-session equity history
    clock : callable -> int ns or None -- market time (a replay passes its clock);
        without it the newest ``ts`` seen in an event is the market time
    stale_after : float, default 30 -- market seconds without a tick before a
        symbol shows as stale (with ``attach(tick_times=...)``)

    Besides the events, ``update_portfolio(snapshot)`` seeds the portfolio (so
    capital, cash and equity show before the first fill) and ``attach(...)``
    gives sources the dashboard reads off the trading thread when it builds
    ``get_view()``.
    """

    def __init__(self, event_bus=None, max_signals: int = 100, max_orders: int = 100,
                 max_points: int = 2000, clock=None, stale_after: float = 30.0):
        for name, v in (("max_signals", max_signals), ("max_orders", max_orders)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10_000_000:
                raise ValueError(f"{name} must be an int in [1, 10_000_000], got {v!r}")
        if clock is not None and not callable(clock):
            raise ValueError(f"clock must be callable or None, got {clock!r}")
        if _num(stale_after) is None or not stale_after > 0:
            raise ValueError(f"stale_after must be a number > 0, got {stale_after!r}")
        self.event_bus = event_bus
        self.max_signals = max_signals
        self.max_orders = max_orders
        self.stale_after = float(stale_after)
        self._clock = clock
        self._tick_times = None
        self._portfolio_source = None
        self._lock = threading.Lock()
        self._alerts: deque = deque(maxlen=20)
        self._system: dict = {"status": "initialized"}
        # counts, market clock, signals, orders and the pending folds: the compiled intake
        self._in = FeedIntake(deque(maxlen=max_signals), deque(maxlen=max_orders))
        self._in.bind(self._lock, self._now_ns, self._other_event, self._fold)
        self._equity = EquityHistory(max_points)
        self._book: dict[str, dict] = {}  # order_id -> lifecycle row, oldest first
        self._anon = 0
        self._initial_capital: float | None = None
        self._charges_base = 0            # paise, from the seed
        self._charges = 0                 # paise, from fills after the seed
        self._symbol_charges: dict[str, int] = {}
        self._stale: dict[str, dict] = {}
        self._halt: dict | None = None
        self._last_reject: dict | None = None
        self._squareoff_failed: dict | None = None
        if event_bus is not None:
            event_bus.subscribe("*", self._in.on_event)     # compiled: no Python per event

    @property
    def version(self) -> int:
        """Bumped on every change (the web stream's cue)."""
        return self._in.version

    @version.setter
    def version(self, value: int) -> None:
        self._in.version = value

    # ------------------------------------------------------------ input

    def attach(self, portfolio=None, clock=None, tick_times=None) -> None:
        """Sources read when ``get_view()`` is built (so off the trading thread).

        ``portfolio``: a PortfolioService (exact totals, charges and every traded
        symbol, closed ones included); ``clock``: market time in ns;
        ``tick_times``: a callable returning ``{symbol: last tick ts ns}``.
        """
        for name, f in (("clock", clock), ("tick_times", tick_times)):
            if f is not None and not callable(f):
                raise ValueError(f"{name} must be callable, got {f!r}")
        if portfolio is not None and not callable(getattr(portfolio, "get_totals", None)):
            raise ValueError("portfolio needs get_totals() (a PortfolioService)")
        with self._lock:
            if portfolio is not None:
                self._portfolio_source = portfolio
            if clock is not None:
                self._clock = clock
            if tick_times is not None:
                self._tick_times = tick_times
            self.version += 1

    def update_portfolio(self, snapshot) -> bool:
        """Take a portfolio snapshot now: ``PortfolioService.get_snapshot()``, its
        ``get_totals()``, or both merged.  ``initial_capital`` (and ``fees``, the
        charges so far) are kept; the rest shows until the next ``portfolio.updated``.
        Returns False (logged) for anything that is not such a mapping."""
        if not isinstance(snapshot, Mapping) or _num(snapshot.get("equity")) is None:
            logger.warning("update_portfolio: need a mapping with a numeric equity, got %r",
                           type(snapshot).__name__)
            return False
        snap = dict(snapshot)
        with self._lock:
            self._fold()
            cap = _num(snap.get("initial_capital"))
            if cap is not None:
                self._initial_capital = cap
            elif self._initial_capital is None and not self._charges:
                self._initial_capital = snap["equity"]      # nothing traded yet
            fees = _num(snap.get("fees"))
            if fees is not None:
                self._charges_base = round(fees * 100)
                self._charges = 0
            snap.setdefault("positions", [])
            self._in.portfolio_raw = snap
            now = self._now_ns(None)
            if now > 0:                  # before the market clock starts: figures, no chart point
                self._equity.add(now / NS, snap["equity"])
            self.version += 1
        return True

    def _now_ns(self, ts) -> int:
        """Market time for an event without its own ``ts`` (caller holds the lock)."""
        if type(ts) is int and ts > 0:
            return ts
        if self._clock is not None:
            try:
                now = int(self._clock())
                if now > 0:
                    return now
            except Exception:                       # a broken clock must not stop events
                logger.exception("DashboardFeed: clock failed")
        return self._in.market_ns

    def on_event(self, event) -> None:
        """Take one bus event (called by the bus for every event).

        Payloads are kept as published and made JSON-safe when a snapshot is
        read, so an event costs an append and a few dict updates, not a deep
        copy.  (The services never modify a payload after publishing it.)
        """
        self._in.on_event(event)

    def _other_event(self, etype: str, payload, ts) -> None:
        """Events the intake leaves to Python: alerts and staleness (lock held)."""
        is_map = type(payload) is dict or isinstance(payload, Mapping)
        pts = payload.get("ts") if is_map else None
        if etype.startswith("risk."):
            self._alerts.append({"type": etype, "payload": payload, "timestamp": ts})
            if is_map and etype == "risk.halted":
                self._halt = {"reason": payload.get("reason"), "rule": payload.get("rule"),
                              "ts": self._now_ns(pts)}
            elif is_map and etype == "risk.squareoff_failed":
                self._squareoff_failed = {"symbol": payload.get("symbol"),
                                          "message": payload.get("message"),
                                          "ts": self._now_ns(pts)}
        elif etype == "feed.stale" and is_map:
            sym = payload.get("symbol")
            self._stale[sym if isinstance(sym, str) else "*"] = {
                "seconds": _num(payload.get("seconds")), "reason": payload.get("reason"),
                "ts": self._now_ns(pts)}

    def _fold(self) -> None:
        """Apply the order and equity events queued since the last read (lock held).

        The trading thread only appends them; the dashboard's reader (about once a
        second) pays for the order book and the equity history."""
        pending = self._in.pending
        if not pending:
            return
        self._in.pending = []
        equity = self._equity
        for etype, payload, when in pending:
            if etype is None:
                value = _num(payload.get("equity"))
                if value is not None:
                    equity.add(when, value)
            else:
                self._order_event(etype[6:], payload, when)

    def _order_event(self, kind: str, p, ts: int) -> None:
        """Fold one order.* payload into the order's lifecycle row (lock held)."""
        book = self._book
        oid = p.get("order_id")
        if not isinstance(oid, str) or not oid:
            self._anon += 1
            oid = f"#{self._anon}"
        row = book.get(oid)
        if row is None:
            row = {"order_id": oid, "symbol": p.get("symbol"), "side": p.get("side"),
                   "quantity": p.get("quantity"), "order_type": p.get("order_type"),
                   "price": None, "trigger_price": None, "filled_quantity": 0,
                   "avg_price": None, "status": None, "rule": None, "message": None,
                   "placed_ts": ts, "ts": ts, "fills": 0, "charges": 0.0}
            book[oid] = row
            if len(book) > self.max_orders:
                del book[next(iter(book))]
        row["ts"] = ts
        if kind == "filled":
            qty = p.get("quantity")
            qty = qty if type(qty) is int else 0
            filled = p.get("filled_quantity")
            if type(filled) is not int:
                filled = row["filled_quantity"] + qty
            price = _num(p.get("price"))
            avg = _num(p.get("avg_price"))
            if avg is None and price is not None and filled > 0:
                old = row["avg_price"] or 0.0
                avg = (old * (filled - qty) + price * qty) / filled
            oq = p.get("order_quantity")
            if type(oq) is int:
                row["quantity"] = oq
            elif type(row["quantity"]) is not int or row["quantity"] < filled:
                row["quantity"] = filled
            row["filled_quantity"] = filled
            row["avg_price"] = avg
            row["fills"] += 1
            status = p.get("order_status")
            row["status"] = status if isinstance(status, str) else (
                "COMPLETE" if filled >= row["quantity"] else "PARTIAL")
            fee = p.get("fees_paise")
            if type(fee) is not int:
                f = _num(p.get("fees"))
                fee = round(f * 100) if f is not None else 0
            row["charges"] += fee / 100
            self._charges += fee
            sym = p.get("symbol")
            if isinstance(sym, str):
                self._symbol_charges[sym] = self._symbol_charges.get(sym, 0) + fee
        elif kind == "placed":
            row["status"] = p.get("status") if isinstance(p.get("status"), str) else "OPEN"
            for k in ("quantity", "order_type", "price", "trigger_price"):
                if p.get(k) is not None:
                    row[k] = p.get(k)
            row["placed_ts"] = ts
        elif kind == "rejected":
            row["status"] = "REJECTED"
            row["rule"] = p.get("rule")
            row["message"] = p.get("message")
            row["stage"] = p.get("stage")
            self._last_reject = row
        elif kind == "cancelled":
            row["status"] = "CANCELLED"
            filled = p.get("filled_quantity")
            if type(filled) is int:
                row["filled_quantity"] = filled
            row["message"] = p.get("message")
        elif kind == "modified":
            for k in ("quantity", "price", "trigger_price"):
                if p.get(k) is not None:
                    row[k] = p.get(k)
            row["status"] = row["status"] or "OPEN"
        else:
            row["status"] = kind.upper()

    @staticmethod
    def _row(etype, payload) -> dict:
        row = jsonable(payload)
        row = row if type(row) is dict else {"value": row}
        row["type"] = etype
        return row

    def update_system_state(self, key, value) -> None:
        """Set ``system[key] = value`` (e.g. ("status", "running")); a non-str key
        is logged and ignored."""
        if not isinstance(key, str) or not key:
            logger.warning("update_system_state: key must be a non-empty str, got %r", key)
            return
        with self._lock:
            self._system[key] = jsonable(value)
            self.version += 1

    # ------------------------------------------------------------ output

    def _money(self, snap: dict) -> dict:
        """Capital, charges, net PnL and drawdown beside a portfolio snapshot (lock held)."""
        charges = (self._charges_base + self._charges) / 100
        equity = _num(snap.get("equity"))
        cap = self._initial_capital
        if cap is not None and equity is not None:
            net = round(equity - cap, 2)          # the ledger's cash already paid the charges
        else:
            net = round((_num(snap.get("realized_pnl")) or 0.0)
                        + (_num(snap.get("unrealized_pnl")) or 0.0) - charges, 2)
        eq = self._equity
        return {"initial_capital": cap, "charges": round(charges, 2), "net_pnl": net,
                "peak_equity": eq.peak, "max_drawdown": round(eq.max_drawdown, 2),
                "drawdown": round(eq.peak - equity, 2) if eq.peak is not None
                and equity is not None else 0.0}

    def get_snapshot(self) -> dict:
        """``{"signals", "orders", "positions", "portfolio", "system"}``, newest last.

        ``portfolio`` also carries ``initial_capital``, ``charges``, ``net_pnl``,
        ``peak_equity``, ``drawdown`` and ``max_drawdown``; ``system`` carries
        ``events`` (counts), ``last_event_ts``, ``market_ts`` (ns) and ``alerts``.
        """
        with self._lock:
            signals = list(self._in.signals)
            self._fold()
            orders = list(self._in.orders)
            portfolio = self._in.portfolio_raw
            system = dict(self._system)
            system["events"] = dict(self._in.counts)
            system["last_event_ts"] = self._in.last_event_ts
            system["market_ts"] = self._in.market_ns or None
            alerts = list(self._alerts)
            snap: dict = jsonable(portfolio) if portfolio is not None else {}
            if type(snap) is not dict:
                snap = {}
            money = self._money(snap)
        positions = snap.pop("positions", None) or []
        snap.update(money)
        system["alerts"] = jsonable(alerts)
        return {"signals": [self._row(t, p) for t, p in signals],
                "orders": [self._row(t, p) for t, p in orders],
                "positions": positions, "portfolio": snap, "system": jsonable(system)}

    def get_equity_curve(self) -> list:
        """``[[market seconds, equity], ...]`` over the whole session (at most
        ``max_points``, thinned evenly; see ``get_equity_history`` for lows/highs)."""
        with self._lock:
            self._fold()
            return [[p[1], p[2]] for p in self._equity._buckets]

    def get_equity_history(self, start: int = 0) -> dict:
        """``{"generation", "offset", "count", "points": [[t0, t1, last, low, high,
        drawdown], ...], "peak", "max_drawdown"}``: the buckets from ``start``."""
        with self._lock:
            self._fold()
            eq = self._equity
            n = len(eq)
            start = min(max(int(start), 0), n)
            return {"generation": eq.generation, "offset": start, "count": n,
                    "points": eq.points(start), "peak": eq.peak,
                    "max_drawdown": eq.max_drawdown, "updates": eq.updates}

    def get_view(self, max_orders: int = 50, max_signals: int = 12,
                 equity_tail: int = 64, equity_from: int | None = None) -> dict:
        """What the web page and ``hftcore dashboard`` show, JSON-ready, times in
        market seconds: ``clock``, ``system``, ``portfolio`` (with capital,
        charges, net PnL, drawdown), ``positions`` (LTP, unrealized, realized,
        charges, net), ``orders`` (one row per order, newest first: status
        OPEN/TRIGGER PENDING/PARTIAL/COMPLETE/CANCELLED/REJECTED with the rule),
        ``signals``, ``stale`` (per symbol), ``banners`` and ``equity`` (the
        newest ``equity_tail`` history buckets, or those from index ``equity_from``
        on; ``equity["offset"]`` is the first one's index, ``generation`` changes
        when buckets merge; fetch the rest with ``get_equity_history``).  Order
        fields that are None are left out.  Reads the attached sources, so call it off the
        trading thread."""
        with self._lock:
            source, tick_times, clock = self._portfolio_source, self._tick_times, self._clock
        now_ns = 0
        if clock is not None:
            try:
                now_ns = int(clock())
            except Exception:
                logger.exception("DashboardFeed: clock failed")
        totals = None
        if source is not None:
            try:
                totals = source.get_totals()
            except Exception:
                logger.exception("DashboardFeed: portfolio source failed")
        ticks: dict = {}
        if tick_times is not None:
            try:
                ticks = dict(tick_times())
            except Exception:
                logger.exception("DashboardFeed: tick_times failed")
        with self._lock:
            now_ns = max(now_ns, self._in.market_ns)
            self._fold()
            raw = self._in.portfolio_raw
            snap: dict = jsonable(raw) if raw is not None else {}
            if type(snap) is not dict:
                snap = {}
            open_positions = snap.pop("positions", None) or []
            if totals is not None:
                for k in ("cash", "equity", "realized_pnl", "unrealized_pnl", "exposure"):
                    if _num(totals.get(k)) is not None:
                        snap[k] = totals[k]
                if self._initial_capital is None and _num(totals.get("initial_capital")):
                    self._initial_capital = totals["initial_capital"]
            money = self._money(snap)
            if totals is not None and _num(totals.get("fees")) is not None:
                money["charges"] = totals["fees"]
                if _num(totals.get("net_pnl")) is not None:
                    money["net_pnl"] = totals["net_pnl"]
            snap.update(money)
            symbol_charges = dict(self._symbol_charges)
            orders = [dict(r) for r in reversed(self._book.values())][:max(max_orders, 0)]
            signals = list(self._in.signals)[-max_signals:] if max_signals > 0 else []
            system = dict(self._system)
            system["events"] = sum(self._in.counts.values())
            stale = {k: dict(v) for k, v in self._stale.items()}
            halt = dict(self._halt) if self._halt else None
            reject = dict(self._last_reject) if self._last_reject else None
            sq = dict(self._squareoff_failed) if self._squareoff_failed else None
            eq = self._equity
            n = len(eq)
            start = max(n - equity_tail, 0) if equity_from is None else \
                min(max(int(equity_from), 0), n)
            equity = {"generation": eq.generation, "offset": start, "count": n,
                      "points": eq.points(start)}
        positions = self._positions(open_positions, source, symbol_charges)
        def to_s(ns):
            return ns / NS if type(ns) is int and ns > 0 else None
        for i, r in enumerate(orders):
            r["placed_ts"] = to_s(r["placed_ts"])
            r["ts"] = to_s(r["ts"])
            orders[i] = {k: v for k, v in r.items() if v is not None}
        sig_rows = []
        for etype, p in reversed(signals):
            p = p if isinstance(p, Mapping) else {}
            sig_rows.append({"type": etype, "symbol": p.get("symbol"), "action": p.get("action"),
                             "source": p.get("strategy") if etype == "signals.raw" else "fused",
                             "timeframe": p.get("timeframe"),
                             "confidence": p.get("confidence"), "reason": p.get("reason"),
                             "ts": to_s(p.get("ts"))})
        return jsonable({
            "clock": {"market_ts": to_s(now_ns), "tz": "Asia/Kolkata"},
            "system": system,
            "portfolio": snap,
            "positions": positions,
            "orders": orders,
            "signals": sig_rows,
            "stale": self._staleness(stale, ticks, now_ns),
            "banners": self._banners(halt, reject, sq, stale, to_s),
            "equity": equity})

    @staticmethod
    def _positions(open_positions, source, symbol_charges) -> list[dict]:
        rows = {}
        for p in open_positions:
            if isinstance(p, dict) and isinstance(p.get("symbol"), str):
                rows[p["symbol"]] = dict(p)
        if source is not None and callable(getattr(source, "get_position", None)):
            for sym in set(symbol_charges) | set(rows):
                try:
                    p = source.get_position(sym)
                except Exception:
                    logger.exception("DashboardFeed: get_position(%s) failed", sym)
                    p = None
                if p:
                    rows[sym] = jsonable(p)
        for sym in symbol_charges:
            rows.setdefault(sym, {"symbol": sym, "quantity": 0, "avg_price": None,
                                  "last_price": None, "unrealized_pnl": 0.0,
                                  "realized_pnl": None})
        out = []
        for sym in sorted(rows):
            r = rows[sym]
            fees = _num(r.get("fees"))
            charges = fees if fees is not None else symbol_charges.get(sym, 0) / 100
            realized, unrealized = _num(r.get("realized_pnl")), _num(r.get("unrealized_pnl"))
            net = None if realized is None else round(realized + (unrealized or 0.0) - charges, 2)
            out.append({"symbol": sym, "quantity": r.get("quantity"),
                        "avg_price": r.get("avg_price"), "last_price": r.get("last_price"),
                        "unrealized_pnl": unrealized, "realized_pnl": realized,
                        "charges": round(charges, 2), "net_pnl": net})
        return out

    def _staleness(self, stale: dict, ticks: dict, now_ns: int) -> list[dict]:
        out = []
        for sym in sorted(set(ticks) | set(stale)):
            value = _num(ticks.get(sym))
            last = int(value) if value is not None and value > 0 else None
            age = (now_ns - last) / NS if last and now_ns else None
            flag = stale.get(sym)
            flagged = flag is not None and (last is None or flag["ts"] >= last)
            late = age is not None and age > self.stale_after
            out.append({"symbol": sym, "last_tick": last / NS if last else None,
                        "age": round(age, 3) if age is not None else None,
                        "stale": bool(flagged or late),
                        "reason": (flag or {}).get("reason") if flagged else
                        (f"no tick for {age:.0f}s" if late else None)})
        return out

    @staticmethod
    def _banners(halt, reject, sq, stale, to_s) -> list[dict]:
        out = []
        if halt:
            rule = f" ({halt['rule']})" if halt.get("rule") else ""
            out.append({"level": "halt", "ts": to_s(halt["ts"]),
                        "text": f"TRADING HALTED{rule}: {halt.get('reason') or ''}".strip()})
        if sq:
            out.append({"level": "error", "ts": to_s(sq["ts"]),
                        "text": f"square-off failed for {sq.get('symbol')}: {sq.get('message')}"})
        whole = stale.get("*")
        if whole:
            out.append({"level": "warn", "ts": to_s(whole["ts"]),
                        "text": f"market data stale: {whole.get('reason') or ''}".strip()})
        if reject:
            rule = reject.get("rule") or "rejected"
            out.append({"level": "reject", "ts": to_s(reject["ts"]),
                        "text": f"REJECTED {reject.get('side') or ''} "
                                f"{reject.get('quantity') or ''}"
                                f" {reject.get('symbol') or ''} [{rule}]: "
                                f"{reject.get('message') or ''}"})
        return out
