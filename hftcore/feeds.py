"""Market data feeds: where ticks enter.

Both feeds hold their data as numpy arrays (the numeric lane) and play it back
in time order.  They implement the ``broker_feed`` interface the services use:

* ``get_ltp(symbol) -> float | None`` -- the last price played back so far;
* ``batches(seconds)`` -- consecutive slices of ``Ticks`` (or ``Bars``) arrays,
  for the nogil batch ingest;
* ``stream()`` -- one ``(symbol, ts_ns, price, volume)`` at a time, for code that
  wants the per-tick path.

``SyntheticFeed`` makes a seeded geometric random walk on each symbol's NSE
tick grid; ``ReplayFeed`` reads CSV or Parquet ticks or Kite-format candles
(the reading itself is in ``hftcore.datafiles``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .datafiles import (
    MAX_PRICE,
    MAX_VOLUME,
    DataError,
    list_files,
    parse_timestamp,
    read_files,
)
from .instruments import NSE_EQ_TICK_BANDS, NSE_EQ_TOP_TICK, InstrumentTable

logger = logging.getLogger(__name__)

__all__ = [
    "IST",
    "MAX_PRICE",
    "MAX_VOLUME",
    "NS",
    "ArrayFeed",
    "Bars",
    "DataError",
    "KiteQuoteFeed",
    "ReplayFeed",
    "SyntheticFeed",
    "Ticks",
    "parse_timestamp",
    "session_open_ns",
    "snap_to_nse_grid",
]

IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
NS = 1_000_000_000
SESSION_OPEN = dt.time(9, 15)
SESSION_CLOSE = dt.time(15, 30)
SESSION_SECONDS = 6 * 3600 + 15 * 60        # 09:15 -> 15:30


class Ticks(NamedTuple):
    """Ticks as parallel arrays: int32 symbol ids, int64 ns (UTC epoch), float64 rupees,
    float64 units."""
    sym: np.ndarray
    ts_ns: np.ndarray
    price: np.ndarray
    volume: np.ndarray

    def __len__(self):  # type: ignore[override]
        return len(self.sym)


class Bars(NamedTuple):
    """Candles as parallel arrays; ``span_s`` is each bar's length in seconds."""
    sym: np.ndarray
    ts_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    span_s: int

    def __len__(self):  # type: ignore[override]
        return len(self.sym)

    @property
    def price(self):
        return self.close


def session_open_ns(day: dt.date) -> int:
    """09:15 IST on ``day`` as ns since the epoch."""
    return int(dt.datetime.combine(day, SESSION_OPEN, IST).timestamp()) * NS


def snap_to_nse_grid(price: np.ndarray) -> np.ndarray:
    """Round rupee prices to the NSE cash-equity tick grid (vectorised)."""
    paise = np.rint(np.asarray(price, dtype=np.float64) * 100).astype(np.int64)
    tick = np.full(paise.shape, NSE_EQ_TOP_TICK, dtype=np.int64)
    for upper, t in reversed(NSE_EQ_TICK_BANDS):
        tick[paise < upper] = t
    snapped = ((paise + tick // 2) // tick) * tick
    return np.maximum(snapped, tick) / 100.0


class _PlaybackFeed:
    """Plays arrays back in time order and remembers each symbol's last price."""

    def __init__(self, instruments: InstrumentTable):
        self.instruments = instruments
        self._ltp: dict[str, float] = {}
        self._data: Ticks | Bars | None = None

    # the broker_feed interface
    def get_ltp(self, symbol) -> float | None:
        """Last price played back for ``symbol``; None if unknown or not traded yet."""
        inst = self.instruments.get(symbol)
        if inst is None:
            return None
        return self._ltp.get(inst.symbol)

    def data(self):
        """All data as one ``Ticks`` / ``Bars``, time-ordered."""
        if self._data is None:
            self._data = self._load()
        return self._data

    def _load(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _remember(self, chunk) -> None:
        # Last price per symbol in this chunk: the last occurrence of each id.
        rev = chunk.sym[::-1]
        ids, first = np.unique(rev, return_index=True)
        prices = chunk.price[::-1][first]
        for i, p in zip(ids.tolist(), prices.tolist()):
            self._ltp[self.instruments.by_id(i).symbol] = p

    def batches(self, seconds: float = 60.0) -> Iterator:
        """Yield consecutive time slices of ``seconds`` (bucketed from the first
        timestamp); after each yield ``get_ltp`` reflects the slice."""
        data = self.data()
        if len(data) == 0:
            return
        width = int(seconds * NS)
        if width <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        bucket = (data.ts_ns - data.ts_ns[0]) // width
        cuts = np.flatnonzero(np.diff(bucket)) + 1
        bounds = np.concatenate(([0], cuts, [len(data)]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            chunk = type(data)(*(f[a:b] if isinstance(f, np.ndarray) else f for f in data))
            self._remember(chunk)
            yield chunk

    def stream(self) -> Iterator[tuple[str, int, float, float]]:
        """Yield ``(symbol, ts_ns, price, volume)`` one at a time (the close for bars)."""
        data = self.data()
        names = self.instruments.symbols
        for i, t, p, v in zip(data.sym.tolist(), data.ts_ns.tolist(), data.price.tolist(),
                              data.volume.tolist()):
            sym = names[i]
            self._ltp[sym] = p
            yield sym, t, p, v

    def rewind(self) -> None:
        """Forget played-back prices (play the data again from the start)."""
        self._ltp.clear()


class ArrayFeed(_PlaybackFeed):
    """Plays back ``Ticks`` or ``Bars`` you already hold as numpy arrays (sorted by
    time; symbol ids from ``instruments``)."""

    def __init__(self, data, instruments: InstrumentTable):
        super().__init__(instruments)
        if not isinstance(data, (Ticks, Bars)):
            raise ValueError(f"data must be Ticks or Bars, got {type(data).__name__}")
        if len(data) and (int(data.sym.min()) < 0 or int(data.sym.max()) >= len(instruments)):
            raise ValueError("symbol ids outside the instrument table")
        if np.any(np.diff(data.ts_ns) < 0):
            raise ValueError("data must be sorted by ts_ns")
        self._data = data

    def _load(self):
        return self._data


class KiteQuoteFeed:
    """The live ``broker_feed``: last traded prices from Kite Connect's quote API.

    ``kite`` is a logged-in ``kiteconnect.KiteConnect`` (or anything with its
    ``ltp(instruments)`` method, which takes ``["NSE:RELIANCE", ...]`` and returns
    ``{"NSE:RELIANCE": {"instrument_token": ..., "last_price": ...}}``).  Errors
    propagate; MarketDataService turns them into None with a warning and caches
    good prices for its TTL, which keeps the request rate inside Kite's limits.
    For streaming ticks into the candle bank use KiteTicker and
    ``MarketDataService.on_tick``.
    """

    def __init__(self, kite, instruments: InstrumentTable | None = None):
        if not callable(getattr(kite, "ltp", None)):
            raise ValueError("kite client needs an ltp(instruments) method")
        self.kite = kite
        self.instruments = instruments or InstrumentTable.nse_default()

    def get_ltp(self, symbol) -> float | None:
        inst = self.instruments.get(symbol)
        if inst is None:
            return None
        key = f"{inst.exchange}:{inst.symbol}"
        quote = self.kite.ltp([key]).get(key)
        return None if not quote else float(quote["last_price"])


class SyntheticFeed(_PlaybackFeed):
    """A deterministic synthetic NSE session for several symbols.

    Each symbol follows a geometric random walk with slowly changing drift,
    sampled once a second from 09:15:00 to 15:29:59 IST (a tick in a given
    second with probability ``tick_prob``), rounded to its NSE tick grid.
    Volumes are lognormal with the usual U-shaped intraday profile.

    Parameters
    ----------
    symbols : sequence of str
        Symbols from ``instruments`` (default: five liquid NSE names).
    seed : int
        Same seed, same ticks, byte for byte.
    start : datetime.date or "YYYY-MM-DD"
        First session date; ``days`` weekdays are generated from it.
    annual_vol : float
        Annualised volatility of the walk.
    """

    DEFAULT_SYMBOLS = ("RELIANCE", "TCS", "INFY", "HDFCBANK", "SBIN")

    def __init__(self, symbols=DEFAULT_SYMBOLS, instruments: InstrumentTable | None = None,
                 seed: int = 42, start: dt.date | str = "2026-11-26", days: int = 1,
                 tick_prob: float = 0.8, annual_vol: float = 0.30, mean_volume: float = 40.0):
        super().__init__(instruments or InstrumentTable.nse_default())
        if isinstance(symbols, str):
            symbols = [symbols]
        if not isinstance(symbols, (list, tuple)) or not all(isinstance(x, str) for x in symbols):
            raise ValueError(f"symbols must be a str or a list of str, got {symbols!r}")
        if not symbols:
            raise ValueError("SyntheticFeed needs at least one symbol")
        missing = [s for s in symbols if s not in self.instruments]
        if missing:
            raise ValueError(f"unknown symbols (not in the instrument table): {missing}")
        if not isinstance(days, int) or days < 1:
            raise ValueError(f"days must be an int >= 1, got {days!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if not isinstance(tick_prob, (int, float)) or not 0 < tick_prob <= 1:
            raise ValueError(f"tick_prob must be in (0, 1], got {tick_prob}")
        if not isinstance(annual_vol, (int, float)) or not (0 < annual_vol < 10):
            raise ValueError(f"annual_vol must be > 0, got {annual_vol}")
        if not isinstance(mean_volume, (int, float)) or not 0 < mean_volume < 1e9:
            raise ValueError(f"mean_volume must be > 0, got {mean_volume}")
        self.symbols = [i.symbol for i in map(self.instruments.get, symbols) if i is not None]
        self.seed = int(seed)
        self.start = dt.date.fromisoformat(start) if isinstance(start, str) else start
        self.days = days
        self.tick_prob = tick_prob
        self.annual_vol = annual_vol
        self.mean_volume = mean_volume

    def session_days(self) -> list[dt.date]:
        out: list[dt.date] = []
        d = self.start
        while len(out) < self.days:
            if d.weekday() < 5:
                out.append(d)
            d += dt.timedelta(days=1)
        return out

    def _load(self) -> Ticks:
        rng = np.random.default_rng(self.seed)
        sigma = self.annual_vol / math.sqrt(252 * SESSION_SECONDS)
        secs = np.arange(SESSION_SECONDS)
        # U-shaped intraday volume: heavy at the open and the close.
        x = (secs - SESSION_SECONDS / 2) / (SESSION_SECONDS / 2)
        profile = 0.6 + 1.2 * x * x
        parts = []
        for k, sym in enumerate(self.symbols):
            inst = self.instruments.get(sym)
            assert inst is not None                        # __init__ checked every symbol
            price = inst.last_price or 1000.0
            for day in self.session_days():
                # drift changes every 15 minutes: trends for the strategies to find
                drift = np.repeat(rng.normal(0.0, 0.05 * sigma, SESSION_SECONDS // 900 + 1),
                                  900)[:SESSION_SECONDS]
                path = price * np.exp(np.cumsum(drift + rng.normal(0.0, sigma, SESSION_SECONDS)))
                price = float(path[-1])
                traded = rng.random(SESSION_SECONDS) < self.tick_prob
                n = int(traded.sum())
                vol = np.maximum(1.0, np.rint(rng.lognormal(math.log(self.mean_volume), 0.9, n)
                                              * profile[traded]))
                ts = (session_open_ns(day) + secs[traded].astype(np.int64) * NS
                      + rng.integers(0, 1000, n, dtype=np.int64) * 1_000_000)
                parts.append((np.full(n, inst.id, np.int32), ts, snap_to_nse_grid(path[traded]),
                              vol))
        ids, stamps, prices, volumes = (np.concatenate(c) for c in zip(*parts))
        order = np.lexsort((ids, stamps))
        return Ticks(ids[order], stamps[order], prices[order], volumes[order])


class ReplayFeed(_PlaybackFeed):
    """Replays files of ticks or of candles in Kite's historical format.

    * Candles: columns ``date, open, high, low, close, volume`` (Kite's
      ``historical_data``), plus an optional ``symbol`` column; otherwise the
      symbol is ``symbol=`` or the file name (``RELIANCE.csv``).  The bar length
      is the most common gap between consecutive dates of a symbol.
    * Ticks: columns ``timestamp, symbol, price, volume`` (aliases: ts/date,
      tradingsymbol, last_price/ltp, qty/quantity).

    ``path`` may be a CSV or Parquet file (same columns) or a folder of them;
    a folder's files are read in parallel (``threads``, default: one per core,
    at most 8) and merged in (timestamp, symbol id) order, the same for any
    ``threads``.  Naive timestamps are IST; the accepted forms are listed in
    ``hftcore.datafiles``.

    A file that cannot be read as a whole (not UTF-8, unknown header, a
    timestamp that does not parse or lies outside 1970-2199, an absurdly long
    field) raises ``DataError`` (a ValueError) naming the file, line and
    reason.  A bad row in a sound file (wrong field count, a price or volume
    that is not a finite number, a price <= 0 or above ``MAX_PRICE``, volume
    < 0 or above ``MAX_VOLUME``, high/low not containing open/close, a blank
    symbol) is left out and counted: ``quarantined`` (reason -> count),
    ``quarantine_examples`` (reason -> first ``file:line`` places) and
    ``rows_skipped`` (their total).  ValueError if nothing usable is left.
    Symbols not in ``instruments`` are added to it.

    ``cache_dir`` (off by default) keeps each parsed file as ``.npz`` keyed by
    its path, size and modification time, so a second run skips parsing.
    Plain CSV candles need no cache to load fast: a compiled scanner reads them
    (~8M rows/s), and anything it does not accept goes to the pyarrow reader.
    """

    def __init__(self, path, instruments: InstrumentTable | None = None,
                 symbol: str | None = None, *, threads: int | None = None,
                 cache_dir: str | Path | None = None):
        super().__init__(InstrumentTable.nse_default() if instruments is None else instruments)
        self.path = Path(path)
        self.files = list_files(self.path)
        self.symbol = symbol
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.rows_skipped = 0
        self.quarantined: dict[str, int] = {}
        self.quarantine_examples: dict[str, list[str]] = {}
        self.kind = None            # "ticks" or "bars" once loaded
        self._threads = threads
        self._data = self._load()   # parse eagerly: bad input is reported at construction

    def _load(self):
        got = read_files(self.files, self.instruments, symbol=self.symbol,
                         threads=self._threads, cache_dir=self.cache_dir)
        self.quarantined = got.quarantined
        self.quarantine_examples = got.examples
        self.rows_skipped = sum(got.quarantined.values())
        self.kind = got.kind
        if got.kind == "ticks":
            return Ticks(got.sym, got.ts, got.values[0], got.volume)
        o, h, lo, c = got.values
        return Bars(got.sym, got.ts, o, h, lo, c, got.volume, span_s=got.span_s)
