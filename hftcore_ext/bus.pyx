"""Compiled event lane: a ring-buffer event log and synchronous topic dispatch.

This is the one place in the core that holds Python objects.  An event is an
``Event``: a small immutable record that reads like the documented dict
``{"type", "payload", "timestamp", "ts_ns", "seq"}`` (``event["payload"]``,
``event.get("seq")``, ``dict(event)``, ``event.to_dict()``) but costs one
allocation from a free list instead of a dict with five boxed values; the
timestamp and sequence number stay C integers until read.

Thread safety.  ``publish`` reserves its sequence number and writes its ring
slot in one stretch of C code that calls no Python code, so under the GIL no
other thread can interleave there: sequence numbers are unique and increasing
in ring order.  Subscriber lists are immutable tuples replaced under a lock
(copy on write), so a publisher never sees a list change size while it
iterates, and a subscription made before ``publish`` starts is never missed.

Patterns.  ``subscribe(pattern, handler)``: ``pattern`` is an exact event type
("order.filled"), ``"*"`` for every event, or ``"prefix.*"`` for every type
that starts with ``"prefix."`` ("signals.*" gets signals.raw and signals.fused).
"""

import logging
import threading
from collections.abc import Mapping

cimport cython

from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME

logger = logging.getLogger("hftcore.bus")


cdef inline long long _now_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_REALTIME, &t)
    return t.tv_sec * 1_000_000_000 + t.tv_nsec


cdef inline bint _matches(str pattern, str event_type):
    if pattern == event_type or pattern == "*":
        return True
    return pattern.endswith(".*") and event_type.startswith(pattern[:len(pattern) - 1])


def matches(pattern, event_type):
    """True if subscription ``pattern`` receives events of ``event_type``."""
    return _matches(pattern, event_type)


EVENT_KEYS = ("type", "payload", "timestamp", "ts_ns", "seq")


@cython.freelist(1024)
cdef class Event:
    """One published event; a read-only mapping with the keys
    ``type, payload, timestamp`` (float seconds), ``ts_ns`` (int) and ``seq``.
    Its fields are declared in ``bus.pxd``."""

    @property
    def timestamp(self):
        """Seconds since the epoch (float)."""
        return self.ts_ns * 1e-9

    def __getitem__(self, key):
        if key == "payload":
            return self.payload
        if key == "type":
            return self.type
        if key == "seq":
            return self.seq
        if key == "timestamp":
            return self.ts_ns * 1e-9
        if key == "ts_ns":
            return self.ts_ns
        raise KeyError(key)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        return key in EVENT_KEYS

    def __iter__(self):
        return iter(EVENT_KEYS)

    def __len__(self):
        return 5

    def keys(self):
        return EVENT_KEYS

    def values(self):
        return (self.type, self.payload, self.ts_ns * 1e-9, self.ts_ns, self.seq)

    def items(self):
        return tuple(zip(EVENT_KEYS, self.values()))

    def to_dict(self):
        """The event as a plain dict (for json.dumps and friends)."""
        return dict(self.items())

    def __eq__(self, other):
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    def __hash__(self):
        return hash((self.type, self.seq, self.ts_ns))

    def __repr__(self):
        return f"Event({self.to_dict()!r})"

    def __reduce__(self):
        return (_event_from, (self.type, self.payload, self.ts_ns, self.seq))


def _event_from(event_type, payload, ts_ns, seq):
    cdef Event ev = Event.__new__(Event)
    ev.type, ev.payload, ev.ts_ns, ev.seq = event_type, payload, ts_ns, seq
    return ev


Mapping.register(Event)


cdef class BusCore:
    """Synchronous publish/subscribe with a bounded history of recent events.

    Parameters
    ----------
    buffer_size : int
        Events kept for ``get_recent_events``; 0 keeps none.
    """

    cdef readonly Py_ssize_t buffer_size
    cdef list _ring                # buffer_size slots, newest at (seq - 1) % buffer_size
    cdef long long _seq            # sequence number of the newest event (first is 1)
    cdef list _subs                # [(pattern, handler)] in subscription order
    cdef dict _resolved            # event type -> tuple of handlers (cache, replaced on change)
    cdef object _lock
    cdef readonly long long delivered
    cdef readonly long long errors

    def __cinit__(self, buffer_size=1000, *args, **kwargs):
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) \
                or not 0 <= buffer_size <= 100_000_000:
            raise ValueError(f"buffer_size must be an int in [0, 100_000_000], got {buffer_size!r}")
        self.buffer_size = buffer_size
        self._ring = [None] * buffer_size
        self._seq = 0
        self._subs = []
        self._resolved = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ subscriptions

    def subscribe(self, event_type, handler):
        """Call ``handler(event)`` for every event matching ``event_type`` (see the
        module doc for patterns).  Returns False (and logs) for a bad pattern, a
        non-callable handler or a duplicate subscription."""
        if not isinstance(event_type, str) or not event_type:
            logger.warning("subscribe: event_type must be a non-empty str, got %r", event_type)
            return False
        if not callable(handler):
            logger.warning("subscribe: handler for %r is not callable: %r", event_type, handler)
            return False
        with self._lock:
            for p, h in self._subs:
                if p == event_type and h == handler:
                    return False
            self._subs = self._subs + [(event_type, handler)]
            self._resolved = {}
        return True

    def unsubscribe(self, event_type, handler):
        """Stop delivering ``event_type`` to ``handler``; returns True if it was subscribed."""
        with self._lock:
            kept = [(p, h) for p, h in self._subs if not (p == event_type and h == handler)]
            if len(kept) == len(self._subs):
                return False
            self._subs = kept
            self._resolved = {}
        return True

    cdef tuple _resolve(self, str event_type):
        # Lock-free, so publishers never queue behind subscription churn.  Read the
        # cache first, then the list: subscribe replaces the list before the cache,
        # so a resolution can only be stored into a cache as new as its list.
        cdef dict cache = self._resolved
        cdef list subs = self._subs
        cdef tuple resolved = tuple([h for p, h in subs if _matches(p, event_type)])
        cache[event_type] = resolved
        return resolved

    def subscriber_count(self, event_type=None):
        """Handlers that would receive ``event_type`` (all subscriptions if None)."""
        if event_type is None:
            return len(self._subs)
        return len([1 for p, h in self._subs if _matches(p, event_type)])

    # ------------------------------------------------------------ publish

    cpdef object publish(self, object event_type, object payload=None):
        """Publish ``payload`` as an event of ``event_type``; deliver it to each
        matching handler in subscription order, synchronously, in this thread.

        Returns the ``Event``, or None (logged) if ``event_type`` is not a
        non-empty str.  A handler that raises is logged and counted in
        ``errors``; the remaining handlers still get the event.
        """
        cdef long long seq
        cdef tuple subs
        cdef Event ev
        if type(event_type) is not str or not event_type:
            if not isinstance(event_type, str) or not event_type:
                logger.warning("publish: event_type must be a non-empty str, got %r", event_type)
                return None
        ev = Event.__new__(Event)
        ev.type = event_type
        ev.payload = payload
        # -- C only from here to the ring write: no Python code runs, so the GIL is held
        seq = self._seq + 1
        self._seq = seq
        ev.seq = seq
        ev.ts_ns = _now_ns()
        if self.buffer_size > 0:
            self._ring[(seq - 1) % self.buffer_size] = ev
        # --
        subs = self._resolved.get(event_type)
        if subs is None:
            subs = self._resolve(event_type)
        for handler in subs:
            try:
                handler(ev)
            except Exception:
                self.errors += 1
                logger.exception("handler %r failed on %s event #%d", handler, event_type, seq)
        self.delivered += len(subs)
        return ev

    # ------------------------------------------------------------ history

    def get_recent_events(self, event_type=None, limit=100):
        """The newest ``limit`` events (of ``event_type`` or matching that pattern
        if given), oldest first.  Returns [] for a bad argument (logged)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            logger.warning("get_recent_events: limit must be an int >= 0, got %r", limit)
            return []
        if event_type is not None and not isinstance(event_type, str):
            logger.warning("get_recent_events: event_type must be a str, got %r", event_type)
            return []
        cdef list out = []
        cdef long long seq = self._seq, first
        cdef Py_ssize_t cap = self.buffer_size
        if cap == 0 or limit == 0:
            return out
        first = seq - cap + 1 if seq >= cap else 1
        while seq >= first and len(out) < limit:
            ev = self._ring[(seq - 1) % cap]
            seq -= 1
            if ev is None:
                continue
            if event_type is None or _matches(event_type, ev["type"]):
                out.append(ev)
        out.reverse()
        return out

    def recent(self, event_type=None, limit=100):
        """The compiled event log's name for ``get_recent_events``."""
        return self.get_recent_events(event_type, limit)

    @property
    def published(self):
        """Events published so far (the newest sequence number)."""
        return self._seq

    def clear_history(self):
        """Forget the recent-event history (subscriptions stay)."""
        self._ring = [None] * self.buffer_size
