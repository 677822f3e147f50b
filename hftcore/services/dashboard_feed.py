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


class DashboardFeed:
    """Aggregated, thread-safe dashboard state.

    Parameters
    ----------
    event_bus : EventBus or None (then call ``on_event`` yourself)
    max_signals, max_orders : int, default 100 (ValueError if < 1)
    """

    def __init__(self, event_bus=None, max_signals: int = 100, max_orders: int = 100):
        for name, v in (("max_signals", max_signals), ("max_orders", max_orders)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10_000_000:
                raise ValueError(f"{name} must be an int in [1, 10_000_000], got {v!r}")
        self.event_bus = event_bus
        self.max_signals = max_signals
        self.max_orders = max_orders
        self._lock = threading.Lock()
        self._signals: deque = deque(maxlen=max_signals)
        self._orders: deque = deque(maxlen=max_orders)
        self._alerts: deque = deque(maxlen=20)
        self._portfolio_raw: Mapping | None = None   # newest portfolio.updated payload
        self._system: dict = {"status": "initialized"}
        self._counts: dict[str, int] = {}
        self._last_event_ts: float | None = None
        self._equity_curve: deque = deque(maxlen=2000)
        if event_bus is not None:
            event_bus.subscribe("*", self.on_event)

    def on_event(self, event) -> None:
        """Take one bus event (called by the bus for every event).

        Payloads are kept as published and made JSON-safe when a snapshot is
        read, so an event costs an append, not a deep copy.  (The services
        never modify a payload after publishing it.)
        """
        try:
            etype = event["type"]
            payload = event["payload"]
        except (TypeError, KeyError, IndexError):
            logger.warning("DashboardFeed: ignored malformed event %r", event)
            return
        if type(etype) is not str:
            logger.warning("DashboardFeed: ignored event with type %r", etype)
            return
        ts = event.get("timestamp") if hasattr(event, "get") else None
        with self._lock:
            self._counts[etype] = self._counts.get(etype, 0) + 1
            self._last_event_ts = ts
            if etype.startswith("signals."):
                self._signals.append((etype, payload))
            elif etype.startswith("order."):
                self._orders.append((etype, payload))
            elif etype == "portfolio.updated":
                if isinstance(payload, Mapping):
                    self._portfolio_raw = payload
                    equity = payload.get("equity")
                    if isinstance(equity, (int, float)):
                        self._equity_curve.append((ts, equity))
            elif etype.startswith("risk."):
                self._alerts.append({"type": etype, "payload": payload, "timestamp": ts})

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

    def get_snapshot(self) -> dict:
        """``{"signals", "orders", "positions", "portfolio", "system"}``, newest last."""
        with self._lock:
            signals = list(self._signals)
            orders = list(self._orders)
            portfolio = self._portfolio_raw
            system = dict(self._system)
            system["events"] = dict(self._counts)
            system["last_event_ts"] = self._last_event_ts
            alerts = list(self._alerts)
        snap: dict = jsonable(portfolio) if portfolio is not None else {}
        positions = snap.pop("positions", None) or []
        system["alerts"] = jsonable(alerts)
        return {"signals": [self._row(t, p) for t, p in signals],
                "orders": [self._row(t, p) for t, p in orders],
                "positions": positions, "portfolio": snap, "system": jsonable(system)}

    def get_equity_curve(self) -> list:
        """[[timestamp, equity], ...] from portfolio updates (newest 2000)."""
        with self._lock:
            return [list(p) for p in self._equity_curve]
