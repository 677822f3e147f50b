"""The event-lane records: Signal -> OrderIntent -> OrderResult (+ fills).

Plain dataclasses: they are created only when something is decided, never per
tick.  ``to_dict()`` gives the JSON-ready payload published on the EventBus.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import operator
import os
import pickle
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

ACTIONS = ("BUY", "SELL", "HOLD")
SIDES = ("BUY", "SELL")
STATUSES = ("FILLED", "REJECTED", "PLACED")
#: Kite's order types: SL is a stop-loss limit (trigger + limit price), SL-M a stop-loss market.
ORDER_TYPES = ("MARKET", "LIMIT", "SL", "SL-M")
#: MIS intraday (squared off at 15:20 IST), CNC delivery, NRML carry-forward F&O.
PRODUCTS = ("MIS", "CNC", "NRML")


@dataclass
class Signal:
    """One strategy's view of one symbol on one timeframe."""
    strategy: str
    symbol: str
    timeframe: str
    action: str                  # BUY / SELL / HOLD
    confidence: float            # 0..1
    reason: str = ""

    @property
    def direction(self) -> int:
        return 1 if self.action == "BUY" else -1 if self.action == "SELL" else 0

    def to_dict(self) -> dict:
        # shallow: dataclasses.asdict deep-copies and cost ~40 us per decision
        return dict(self.__dict__)


@dataclass
class OrderIntent:
    """What the strategy layer wants done.

    ``action`` BUY/SELL/HOLD; ``confidence`` 0..1; ``reason`` says why;
    ``metadata`` holds the indicators and signals behind it; ``quantity`` is
    the suggested size in units (ExecutionService may reduce it);
    ``order_type`` MARKET, LIMIT (with ``limit_price`` in rupees), SL (stop-loss
    limit: ``trigger_price`` and ``limit_price``) or SL-M (stop-loss market:
    ``trigger_price``); ``product`` MIS, CNC or NRML.

    ``stop_loss`` and ``target`` (rupees, on the tick grid) attach exits to an
    opening order: once it fills, ExecutionService places an SL-M at
    ``stop_loss`` and a LIMIT at ``target`` for the filled quantity, and
    cancels one when the other fills (a bracket).  ``tag`` is an optional client
    id (Kite: at most 20 alphanumerics) carried to the broker.

    ``target_position`` (signed units; None: not used) asks for a position
    rather than an order: ExecutionService sends the difference between it and
    the position plus working orders (``action`` and ``quantity`` are then
    derived; 0 difference: nothing is sent).  ``+100`` from short 100 buys 200.
    """
    symbol: str
    action: str = "HOLD"
    confidence: float = 0.0
    reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    quantity: int = 0
    order_type: str = "MARKET"
    limit_price: float | None = None
    product: str = "MIS"
    ts: int | None = None        # ns; the decision time
    trigger_price: float | None = None
    stop_loss: float | None = None
    target: float | None = None
    tag: str | None = None
    target_position: int | None = None

    def to_dict(self) -> dict:
        # shallow: dataclasses.asdict deep-copies and cost ~40 us per decision
        return dict(self.__dict__)


@dataclass
class OrderResult:
    """What ExecutionService did with an intent.

    ``status`` FILLED (completely), PLACED (accepted, resting or partly
    filled) or REJECTED (``message`` says why, ``rule`` names the rule that
    fired, e.g. ``"max_position"``); ``avg_price`` rupees of the filled part
    (0.0 if nothing filled).  What happens to a PLACED order later arrives as
    ``order.*`` events.
    """
    order_id: str
    status: str
    avg_price: float = 0.0
    message: str = ""
    symbol: str = ""
    side: str = ""
    quantity: int = 0
    filled_quantity: int = 0
    fees: float = 0.0
    rule: str = ""

    def to_dict(self) -> dict:
        # shallow: dataclasses.asdict deep-copies and cost ~40 us per decision
        return dict(self.__dict__)


@dataclass
class Fill:
    """One execution reported by a broker; money in integer paise."""
    fill_id: str
    order_id: str
    symbol: str
    side: str                    # BUY / SELL
    quantity: int                # > 0 units
    price_paise: int
    fees_paise: int = 0
    ts: int = 0                  # ns
    charges: dict[str, int] = field(default_factory=dict)   # paise by component

    def to_payload(self, mode: str = "paper") -> dict:
        """The ``order.filled`` event payload (rupee floats plus exact paise)."""
        return {"fill_id": self.fill_id, "order_id": self.order_id, "symbol": self.symbol,
                "side": self.side, "quantity": self.quantity,
                "price": self.price_paise / 100, "price_paise": self.price_paise,
                "fees": self.fees_paise / 100, "fees_paise": self.fees_paise,
                "charges": {k: v / 100 for k, v in self.charges.items()},
                "ts": self.ts, "mode": mode}


class FillLog(Sequence):
    """Every ``order.filled`` payload of a session, in order, in bounded memory.

    A read-only sequence (``len``, iteration, ``log[i]``, slices, ``in``, ``index``,
    ``count``, ``==`` against any sequence).  The newest ``keep`` payloads stay in
    memory; once ``chunk`` more have arrived, the oldest ``chunk`` are pickled to an
    anonymous temporary file in ``spill_dir`` (the system's temporary folder if
    None), which is deleted when the log is closed or collected.  So memory holds
    at most ``keep + chunk`` payloads (~1.3 KB each), and a run with fewer fills
    never touches the disk.  If a chunk cannot be written (disk full) or pickled,
    it stays in memory, is logged, and the write is tried again one chunk later:
    nothing is lost, and what was written stays readable.

    A payload read back from the disk is a fresh copy: edit fills before they are
    logged, not after.  Reading spilled fills unpickles them again;
    ``with log.held():`` reads them once for a block that makes several passes
    (the report).
    """

    def __init__(self, chunk: int = 8192, keep: int = 32_768, spill_dir=None):
        for name, v, low in (("chunk", chunk, 1), ("keep", keep, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
        self.chunk, self.keep = chunk, keep
        self.spill_dir = spill_dir
        self._tail: list[dict] = []
        self._starts: list[int] = []                # index of each spilled chunk's first fill
        self._spans: list[tuple[int, int]] = []     # (offset, bytes) of each in the file
        self._spilled = 0
        self._size = 0                              # bytes of whole chunks in the file
        self._spill_at = keep + chunk
        self._file: Any = None
        self._lock = threading.RLock()
        self._cached: tuple[int, list[dict]] = (-1, [])   # the chunk read last
        self._held: list[dict] | None = None
        self._holds = 0

    def append(self, payload: dict) -> None:
        with self._lock:
            self._tail.append(payload)
            self._held = None
            if len(self._tail) >= self._spill_at:
                self._spill()

    def _spill(self) -> None:
        out = len(self._tail) - self.keep          # the oldest, beyond what memory keeps
        try:
            data = pickle.dumps(self._tail[:out], protocol=pickle.HIGHEST_PROTOCOL)
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="hftcore-fills-",
                                                    dir=self.spill_dir, buffering=0)
            fd, done = self._file.fileno(), 0
            try:
                while done < len(data):            # unbuffered: a short write is retried
                    done += os.pwrite(fd, data[done:], self._size + done)
            except OSError:
                os.ftruncate(fd, self._size)       # no partial chunk left behind
                raise
        except Exception as exc:                   # disk full, or a payload pickle refuses
            self._spill_at = len(self._tail) + self.chunk
            logger.error("fill log: could not write %d fills to disk (%s); kept in memory",
                         out, exc)
            return
        self._starts.append(self._spilled)
        self._spans.append((self._size, len(data)))
        self._size += len(data)
        self._spilled += out
        del self._tail[:out]
        self._spill_at = self.keep + self.chunk

    def _chunk(self, k: int) -> list[dict]:
        with self._lock:
            if self._cached[0] == k:
                return self._cached[1]
            offset, size = self._spans[k]
            fd = self._file.fileno()
        rows = pickle.loads(os.pread(fd, size, offset))   # without the lock: appends go on
        with self._lock:
            self._cached = (k, rows)
        return rows

    def __len__(self) -> int:
        return self._spilled + len(self._tail)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[dict]:
        with self._lock:
            held = self._held
            chunks, tail = len(self._spans), list(self._tail)
        if held is not None:
            yield from held
            return
        for k in range(chunks):
            yield from self._chunk(k)
        yield from tail

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(self)[i]
        i = operator.index(i)
        with self._lock:
            n = len(self)
            if i < 0:
                i += n
            if not 0 <= i < n:
                raise IndexError("fill index out of range")
            if i >= self._spilled:
                return self._tail[i - self._spilled]
            k = bisect.bisect_right(self._starts, i) - 1
            start = self._starts[k]
        return self._chunk(k)[i - start]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None     # type: ignore[assignment]   # mutable: appends change it

    @contextlib.contextmanager
    def held(self) -> Iterator[FillLog]:
        """Hold every fill in memory for the block, so repeated passes read the disk once.
        Blocks nest (the outermost one lets go); appends never wait for the read."""
        with self._lock:
            self._holds += 1
            have = self._held is not None
        try:
            if not have:
                rows = list(self)                  # read outside the lock
                with self._lock:
                    if self._held is None and len(rows) == len(self):
                        self._held = rows
            yield self
        finally:
            with self._lock:
                self._holds -= 1
                if self._holds == 0:
                    self._held = None

    def close(self) -> None:
        """Delete the spill file; the log is empty afterwards."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file, self._tail, self._starts, self._spans = None, [], [], []
            self._spilled, self._size, self._cached, self._held = 0, 0, (-1, []), None

    def __reduce__(self):
        return _fill_log, (self.chunk, self.keep, list(self))

    def __repr__(self) -> str:
        return f"FillLog({len(self)} fills, {self._spilled} on disk)"


def _fill_log(chunk: int, keep: int, fills: list[dict]) -> FillLog:
    """A FillLog holding ``fills`` (unpickling: the spill file stays with its process)."""
    log = FillLog(chunk, keep)
    for f in fills:
        log.append(f)
    return log
