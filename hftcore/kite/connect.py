"""Wiring a live Kite connection: client, instruments, ticker feed, broker.

``open_kite`` is what ``hftcore paper --feed kite`` (and a live session) starts
from; ``fetch_candles`` is ``hftcore data fetch``.  Both work the same against
Zerodha and against a local ``KiteServer`` (pass its ``url`` / ``ws_url``).
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..instruments import InstrumentTable
from . import auth
from .broker import HISTORICAL_LIMITS, KiteBroker, RateLimiter
from .feed import KITE_TICKER_URL, KiteTickerFeed
from .instruments import load_kite_instruments

logger = logging.getLogger(__name__)

# days of candles Kite returns per historical request, by interval
MAX_DAYS = {"minute": 60, "3minute": 100, "5minute": 100, "10minute": 100, "15minute": 200,
            "30minute": 200, "60minute": 400, "day": 2000}


def kite_client(creds: auth.Credentials, root: str | None = None, timeout: float = 7.0):
    """A logged-in ``kiteconnect.KiteConnect`` (ValueError, safe to print, if the
    token is missing or expired)."""
    from kiteconnect import KiteConnect
    creds.require_token()
    auth.install_redaction(creds.api_key, creds.api_secret, creds.access_token)
    kite = KiteConnect(creds.api_key, root=root, timeout=timeout) if root else \
        KiteConnect(creds.api_key, timeout=timeout)
    kite.set_access_token(creds.access_token)
    return kite


@dataclass
class KiteLink:
    """What a session needs from Kite."""
    kite: object
    instruments: InstrumentTable
    feed: KiteTickerFeed
    broker: KiteBroker

    def close(self) -> None:
        self.broker.stop()
        self.feed.stop()


def open_kite(symbols, token_file=None, root: str | None = None, ws_url: str | None = None,
              mode: str = "quote", bus=None, cache_dir=None, timeout: float = 7.0,
              stale_after: float = 5.0, instruments: InstrumentTable | None = None,
              market_protection: float = -1, start: bool = True) -> KiteLink:
    """Credentials (env / token file) -> client, today's instruments, a started
    ticker subscribed to ``symbols`` and a broker tracking orders through it."""
    creds = auth.load_credentials(token_file)
    kite = kite_client(creds, root, timeout)
    if instruments is None:
        instruments = load_kite_instruments(kite, cache_dir)
    missing = [s for s in symbols if s not in instruments]
    if missing:
        raise ValueError(f"unknown symbol(s) in the instruments dump: {', '.join(missing)}")
    feed = KiteTickerFeed(creds.api_key, creds.access_token, instruments, symbols=symbols,
                          mode=mode, url=ws_url or os.environ.get("KITE_WS_URL",
                                                                  KITE_TICKER_URL),
                          bus=bus, stale_after=stale_after)
    broker = KiteBroker(kite, instruments, ticker=feed, market_protection=market_protection)
    if start:
        feed.start()
    return KiteLink(kite, instruments, feed, broker)


def fetch_candles(kite, instruments: InstrumentTable, symbols, start: dt.date, end: dt.date,
                  interval: str, out_dir, limiter: RateLimiter | None = None) -> dict[str, int]:
    """Download candles into ``out_dir/SYMBOL.csv`` (``date,open,high,low,close,volume``,
    dates ISO with the IST offset: the format ``hftcore backtest`` reads), in
    requests of at most Kite's days per interval, 3 requests a second.
    Returns rows written per symbol."""
    if interval not in MAX_DAYS:
        raise ValueError(f"interval must be one of {', '.join(MAX_DAYS)}, got {interval!r}")
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    limiter = limiter or RateLimiter(HISTORICAL_LIMITS)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for symbol in symbols:
        inst = instruments.get(symbol)
        if inst is None or not inst.instrument_token:
            raise ValueError(f"unknown symbol (or no instrument_token): {symbol}")
        rows = _candle_rows(kite, inst.instrument_token, start, end, interval, limiter)
        path = out / f"{inst.symbol}.csv"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["date", "open", "high", "low", "close", "volume"])
            for r in rows:
                d = r["date"]
                w.writerow([d.isoformat(sep=" ") if isinstance(d, dt.datetime) else d,
                            r["open"], r["high"], r["low"], r["close"], r["volume"]])
        os.replace(tmp, path)
        written[inst.symbol] = len(rows)
        logger.info("%s: %d candles -> %s", inst.symbol, len(rows), path)
    return written


def _candle_rows(kite, token: int, start: dt.date, end: dt.date, interval: str,
                 limiter: RateLimiter) -> list:
    """Kite's candles of one instrument from ``start`` to ``end``, in requests of at most
    Kite's days per interval, paced by ``limiter``."""
    rows: list = []
    a = start
    while a <= end:
        b = min(end, a + dt.timedelta(days=MAX_DAYS[interval] - 1))
        limiter.acquire()
        rows += kite.historical_data(token, dt.datetime.combine(a, dt.time(0, 0)),
                                     dt.datetime.combine(b, dt.time(23, 59, 59)), interval)
        a = b + dt.timedelta(days=1)
    return rows


INTERVAL_SECONDS = {"minute": 60, "3minute": 180, "5minute": 300, "10minute": 600,
                    "15minute": 900, "30minute": 1800, "60minute": 3600}


def history_bars(kite, instruments: InstrumentTable, symbols, days: int,
                 interval: str = "minute", today: dt.date | None = None,
                 limiter: RateLimiter | None = None):
    """The last ``days`` calendar days before ``today`` (IST) of candles of ``symbols``
    from Kite's historical API, as one time-sorted ``Bars`` batch: what
    ``PaperSession.warm_up`` takes so indicators are warm at 09:15."""
    import numpy as np

    from ..feeds import IST, NS, Bars
    if interval not in INTERVAL_SECONDS:
        raise ValueError(f"interval must be one of {', '.join(INTERVAL_SECONDS)}, "
                         f"got {interval!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be an int >= 1, got {days!r}")
    today = today or dt.datetime.now(IST).date()
    start, end = today - dt.timedelta(days=days), today - dt.timedelta(days=1)
    limiter = limiter or RateLimiter(HISTORICAL_LIMITS)
    cols: list[list] = [[], [], [], [], [], [], []]
    for symbol in symbols:
        inst = instruments.get(symbol)
        if inst is None or not inst.instrument_token:
            raise ValueError(f"unknown symbol (or no instrument_token): {symbol}")
        for r in _candle_rows(kite, inst.instrument_token, start, end, interval, limiter):
            d = r["date"]
            if isinstance(d, str):
                d = dt.datetime.fromisoformat(d)
            if d.tzinfo is None:
                d = d.replace(tzinfo=IST)
            for col, v in zip(cols, (inst.id, int(d.timestamp()) * NS, r["open"], r["high"],
                                     r["low"], r["close"], r["volume"])):
                col.append(v)
    sym = np.array(cols[0], np.int32)
    ts = np.array(cols[1], np.int64)
    order = np.lexsort((sym, ts))
    o, h, lo, c, v = (np.array(col, np.float64)[order] for col in cols[2:])
    return Bars(sym[order], ts[order], o, h, lo, c, v, INTERVAL_SECONDS[interval])
