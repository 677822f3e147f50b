"""EventBus: the documented publish/subscribe service, compiled.

``EventBus`` is the compiled ``hftcore_ext.bus.BusCore`` under its service
name, so ``publish`` is a C call with no Python frame in between.

Events are ``Event`` records that read like the dict::

    {"type": "order.filled", "payload": {...}, "timestamp": 1764201600.123,
     "ts_ns": 1764201600123456789, "seq": 42}

(``event["payload"]``, ``event.get(...)``, ``dict(event)``; ``event.to_dict()``
for ``json.dumps``).  They are read-only.

``timestamp`` is seconds since the epoch (float), ``ts_ns`` the same in
integer ns, ``seq`` a per-bus sequence number starting at 1.

Subscription patterns: an exact type (``"order.filled"``), ``"*"`` for every
event, or ``"prefix.*"`` for every type under a prefix (``"signals.*"``).
"""

from hftcore_ext.bus import BusCore, Event, matches

__all__ = ["EventBus", "Event", "matches", "SIGNALS_RAW", "SIGNALS_FUSED", "ORDER_FILLED",
           "ORDER_PLACED", "ORDER_REJECTED", "ORDER_CANCELLED", "ORDER_MODIFIED",
           "PORTFOLIO_UPDATED", "RISK_HALTED", "RISK_SQUAREOFF_FAILED", "FEED_STALE",
           "EVENT_TYPES"]

SIGNALS_RAW = "signals.raw"              # one per strategy signal
SIGNALS_FUSED = "signals.fused"          # the fused decision per run_symbol
ORDER_FILLED = "order.filled"            # one per fill, with the order's cumulative state
ORDER_PLACED = "order.placed"            # accepted and still working (resting, partly filled)
ORDER_REJECTED = "order.rejected"        # refused (gate, broker or exchange), with the rule
ORDER_CANCELLED = "order.cancelled"      # cancelled, with what had filled before
ORDER_MODIFIED = "order.modified"        # a working order's quantity or prices changed
PORTFOLIO_UPDATED = "portfolio.updated"  # a portfolio snapshot after a change
RISK_HALTED = "risk.halted"              # trading halted (daily loss, broker, books)
RISK_SQUAREOFF_FAILED = "risk.squareoff_failed"   # a square-off could not be sent
FEED_STALE = "feed.stale"                # no market data for too long
EVENT_TYPES = (SIGNALS_RAW, SIGNALS_FUSED, ORDER_FILLED, ORDER_PLACED, ORDER_REJECTED,
               ORDER_CANCELLED, ORDER_MODIFIED, PORTFOLIO_UPDATED, RISK_HALTED,
               RISK_SQUAREOFF_FAILED, FEED_STALE)


class EventBus(BusCore):
    """Synchronous, thread-safe publish/subscribe with a ring buffer of history.

    Parameters
    ----------
    buffer_size : int, default 1000
        Recent events kept for ``get_recent_events`` (0 keeps none).  ValueError
        if negative or not an int.

    Methods
    -------
    subscribe(event_type, handler) -> bool
    unsubscribe(event_type, handler) -> bool
    publish(event_type, payload) -> Event (reads like the dict above) | None
    get_recent_events(event_type=None, limit=100) -> list of events, oldest first
    """

    __slots__ = ()
