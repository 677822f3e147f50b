"""MarketDataEngine: named symbols and timeframes over the compiled CandleBank.

This is the ``market_data_engine`` the MarketDataService wraps.  Its interface
(any object with these methods can stand in for it):

* ``get_indicators(symbol, timeframe, live=False) -> dict | None``
* ``get_candles(symbol, timeframe, n) -> list[dict]``
* ``get_ltp(symbol) -> float | None``

Thread-safe: one lock guards the candle bank, so a feed thread can ingest
(the batch itself runs without the GIL) while strategy threads read bundles.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import re
import threading

import numpy as np

from hftcore_ext.candles import CandleBank

from ..feeds import IST, NS, Bars
from ..instruments import InstrumentTable

logger = logging.getLogger(__name__)

_TF_RE = re.compile(r"^(\d+)\s*(s|m|min|minute|h|hour|d|day)?$")
_UNIT = {None: 60, "s": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
         "d": 86400, "day": 86400}


@functools.lru_cache(maxsize=256)
def _parse_timeframe_text(text: str) -> int:
    text = text.strip().lower()
    if text in ("minute", "day"):
        text = "1" + text
    m = _TF_RE.match(text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError
    seconds = int(m.group(1)) * _UNIT[m.group(2)]
    if seconds > 366 * 86400:
        raise ValueError
    return seconds


def parse_timeframe(tf) -> int:
    """Seconds in a timeframe: "5m", "15m", "1h", Kite's "5minute"/"minute", or an int.

    Raises ValueError for anything else.
    """
    if isinstance(tf, bool):
        raise ValueError(f"bad timeframe {tf!r}")
    if isinstance(tf, (int, np.integer)):
        if not 0 < tf <= 366 * 86400:
            raise ValueError(f"timeframe must be 1 second to 1 year, got {tf}")
        return int(tf)
    if not isinstance(tf, str):
        raise ValueError(f"bad timeframe {tf!r}")
    try:
        return _parse_timeframe_text(tf)
    except ValueError:
        raise ValueError(f"bad timeframe {tf!r}; use e.g. '1m', '5m', '15m', '1h'") from None


BUNDLE_KEYS = ("ema20", "ema50", "rsi", "atr", "vwap", "slope")

_INT32_MAX = 2**31 - 1


def symbol_ids(sym, n_symbols: int | None = None) -> np.ndarray:
    """``sym`` as the kernels' contiguous int32 ids, refusing instead of wrapping.

    A plain ``astype(np.int32)`` wraps: id 2**32 + 1 becomes 1 and its ticks land on
    symbol 1.  Here an id that is negative, not a whole number, beyond int32 or (with
    ``n_symbols``) not below ``n_symbols`` becomes -1, which the candle bank
    quarantines and counts as ``symbol``.  One vectorised pass; no copy when ``sym``
    is already a contiguous int32 array.
    """
    a = np.asarray(sym)
    if a.dtype == np.int32:
        return np.ascontiguousarray(a)
    hi = _INT32_MAX if n_symbols is None else min(int(n_symbols) - 1, _INT32_MAX)
    if a.dtype.kind in "iu":
        bad = (a < 0) | (a > hi)
    elif a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(a) | (a < 0) | (a > hi) | (a != np.floor(a))
    else:
        raise ValueError(f"symbol ids must be integers, got dtype {a.dtype}")
    if not bad.any():
        return np.ascontiguousarray(a, np.int32)
    return np.ascontiguousarray(np.where(bad, -1, a), np.int32)


class MarketDataEngine:
    """Candles and indicators for every instrument on several timeframes.

    Parameters
    ----------
    instruments : InstrumentTable
        Symbol names <-> dense ids (default: the embedded NSE table).  Symbols
        added to the table later are picked up automatically.
    timeframes : sequence
        E.g. ``("1m", "5m", "15m")``.
    history : int
        Closed candles kept per symbol and timeframe.
    ema_fast, ema_slow, rsi, atr, slope : int
        Indicator periods in candles.  The bundle keys stay ``ema20``/``ema50``
        as documented, whatever the periods.
    max_price, max_volume, future_tolerance :
        Quarantine limits of the candle bank (rupees, units, seconds ahead of the
        newest tick; see ``CandleBank``).  Refused ticks are counted by reason in
        ``stats["quarantined"]``.
    """

    def __init__(self, instruments: InstrumentTable | None = None,
                 timeframes=("1m", "5m", "15m"), history: int = 200, ema_fast: int = 20,
                 ema_slow: int = 50, rsi: int = 14, atr: int = 14, slope: int = 20,
                 max_price: float = 1e7, max_volume: float = 1e12,
                 future_tolerance: float | None = 3600):
        self.instruments = instruments if instruments is not None else InstrumentTable.nse_default()
        seconds = [parse_timeframe(t) for t in timeframes]
        self.bank = CandleBank(max(len(self.instruments), 1), seconds, history, ema_fast,
                               ema_slow, rsi, atr, slope, max_price=max_price,
                               max_volume=max_volume, future_tolerance=future_tolerance)
        self._unknown = 0             # on_tick calls for a symbol not in the table
        self._tf_index = {s: self.bank.timeframe_index(s) for s in seconds}
        self._located: dict = {}      # (symbol, timeframe) -> (id, tf index); ids never change
        self._ltp_ids: dict[str, int] = {}    # symbol -> id, for get_ltp_list
        # the bank's batch calls release the GIL: every access goes through this lock
        self._lock = threading.Lock()

    # ------------------------------------------------------------ ingest

    def sync_instruments(self) -> None:
        """Make room in the candle bank for symbols added to the instrument table."""
        if len(self.instruments) > self.bank.n_symbols:
            self.bank.grow(len(self.instruments))

    def on_tick(self, symbol, ts_ns: int, price: float, volume: float = 0.0) -> int:
        """One live tick.  Returns the mask of timeframes whose candle closed
        (bit j for ``timeframes[j]``), 0 if none, -1 if the tick was not applied
        (quarantined, late, or held beyond the future tolerance; see ``stats``)."""
        sym = self.instruments.id_of(symbol)
        if sym < 0:
            self._unknown += 1
            logger.warning("on_tick: unknown symbol %r", symbol)
            return -1
        try:
            ts_ns, price, volume = int(ts_ns), float(price), float(volume)
            with self._lock:
                self.sync_instruments()
                return self.bank.on_tick(sym, ts_ns, price, volume)
        except (TypeError, ValueError, OverflowError) as exc:
            logger.warning("on_tick: bad tick for %s: %s", symbol, exc)
            return -1

    def ingest(self, data) -> int:
        """Apply a ``Ticks`` or ``Bars`` batch in one nogil pass; returns candles closed.
        Symbol ids that do not fit int32 are quarantined (``symbol``), never wrapped."""
        sym = symbol_ids(data.sym)
        ts = np.ascontiguousarray(data.ts_ns, np.int64)
        with self._lock:
            self.sync_instruments()
            if isinstance(data, Bars):
                o, h, lo, c, v = (np.ascontiguousarray(a, np.float64) for a in
                                  (data.open, data.high, data.low, data.close, data.volume))
                return self.bank.ingest_bars(sym, ts, o, h, lo, c, v, int(data.span_s))
            return self.bank.ingest_ticks(sym, ts, np.ascontiguousarray(data.price, np.float64),
                                          np.ascontiguousarray(data.volume, np.float64))

    def flush(self, ts_ns: int) -> int:
        """Close candles whose period ended by ``ts_ns`` (call at the session close)."""
        with self._lock:
            return self.bank.flush(int(ts_ns))

    # ------------------------------------------------------------ read

    @property
    def timeframes(self) -> tuple[int, ...]:
        """Kept timeframes, in seconds."""
        return self.bank.timeframes

    def _locate(self, symbol, timeframe):
        try:
            return self._located[symbol, timeframe]      # hot path: strategies ask again and again
        except (KeyError, TypeError):
            pass
        where = self._locate_slow(symbol, timeframe)
        if where is not None and len(self._located) < 100_000:
            self._located[symbol, timeframe] = where
        return where

    def _locate_slow(self, symbol, timeframe):
        sym = self.instruments.id_of(symbol)
        if sym < 0 or sym >= self.bank.n_symbols:
            return None
        try:
            tf = self._tf_index.get(parse_timeframe(timeframe), -1)
        except ValueError:
            return None
        return None if tf < 0 else (sym, tf)

    def get_indicators(self, symbol, timeframe, live: bool = False) -> dict | None:
        """``{"ema20", "ema50", "rsi", "atr", "vwap", "slope"}`` (None where not
        warmed up) as of the last closed candle (``live=True``: counting the
        forming one).  None for an unknown symbol or timeframe."""
        where = self._locate(symbol, timeframe)
        if where is None:
            return None
        with self._lock:
            return self.bank.bundle_dict(where[0], where[1], BUNDLE_KEYS, live)

    def get_candles(self, symbol, timeframe, n: int = 100) -> list[dict]:
        """The newest ``n`` closed candles, oldest first, as Kite-style dicts
        (``date`` is an IST datetime).  [] for an unknown symbol/timeframe."""
        where = self._locate(symbol, timeframe)
        if where is None:
            return []
        with self._lock:
            h = self.bank.history(where[0], where[1], int(n))
        return [{"date": dt.datetime.fromtimestamp(t / NS, IST), "open": o, "high": hi,
                 "low": lo, "close": c, "volume": v}
                for t, o, hi, lo, c, v in zip(h["ts"].tolist(), h["open"].tolist(),
                                              h["high"].tolist(), h["low"].tolist(),
                                              h["close"].tolist(), h["volume"].tolist())]

    def get_candle_arrays(self, symbol, timeframe, n: int = -1) -> dict | None:
        """Like ``get_candles`` but numpy arrays (ts in ns), for vectorised work."""
        where = self._locate(symbol, timeframe)
        if where is None:
            return None
        with self._lock:
            return self.bank.history(where[0], where[1], int(n))

    def get_ltp(self, symbol) -> float | None:
        """Newest tick price seen for ``symbol``; None if unknown or never traded."""
        sym = self.instruments.id_of(symbol)
        if sym < 0 or sym >= self.bank.n_symbols:
            return None
        with self._lock:
            v = self.bank.ltp(sym)
        return None if math.isnan(v) else v

    def get_ltp_list(self, symbols) -> list:
        """``[get_ltp(s) for s in symbols]`` under one lock."""
        n = self.bank.n_symbols
        known = self._ltp_ids
        ids = []
        for s in symbols:
            sym = known.get(s) if type(s) is str else None
            if sym is None:
                sym = self.instruments.id_of(s)
                if sym >= 0 and type(s) is str and len(known) < 100_000:
                    known[s] = sym                     # ids never change
            ids.append(sym)
        out: list = []
        with self._lock:
            ltp = self.bank.ltp
            for sym in ids:
                v = ltp(sym) if 0 <= sym < n else math.nan
                out.append(None if v != v else v)     # NaN: never traded
        return out

    def last_ts(self, symbol) -> int | None:
        sym = self.instruments.id_of(symbol)
        if sym < 0 or sym >= self.bank.n_symbols:
            return None
        with self._lock:
            return self.bank.last_ts(sym)

    @property
    def stats(self) -> dict:
        """Tick counters: ``quarantined`` by reason (``symbol`` includes ticks for
        names not in the instrument table), ``held`` (0/1, waiting for confirmation)."""
        with self._lock:
            q = self.bank.quarantined()
            q["symbol"] += self._unknown
            return {"accepted": self.bank.accepted, "dropped": self.bank.dropped + self._unknown,
                    "late": self.bank.late, "quarantined": q, "held": self.bank.held,
                    "symbols": self.bank.n_symbols, "state_bytes": self.bank.nbytes}
