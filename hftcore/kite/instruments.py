"""Kite's instruments dump, downloaded once a day and cached on disk.

Kite regenerates ``GET /instruments`` once a day (before the open); its tick and
lot sizes are authoritative.  ``load_kite_instruments`` keeps one CSV per IST
date under ``cache_dir`` and builds an ``InstrumentTable`` keyed by symbol,
``EXCHANGE:SYMBOL`` and instrument_token.  Without a usable download it falls
back to the newest cached dump, then to the bundled NSE table (with a warning).
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
from pathlib import Path

from ..feeds import IST
from ..instruments import InstrumentTable

logger = logging.getLogger(__name__)

COLUMNS = ("instrument_token", "exchange_token", "tradingsymbol", "name", "last_price",
           "expiry", "strike", "tick_size", "lot_size", "instrument_type", "segment",
           "exchange")
DEFAULT_EXCHANGES = ("NSE", "BSE", "NFO")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hftcore`` (``~/.cache/hftcore``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hftcore"


def ist_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date in IST (the dump's day), whatever the machine's zone."""
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(IST).date()


def cache_path(cache_dir, day: dt.date) -> Path:
    return Path(cache_dir) / f"instruments-{day.isoformat()}.csv"


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()[:10]
    return str(v)


def download_instruments(kite, path: Path, exchanges=DEFAULT_EXCHANGES) -> int:
    """Fetch the dump for ``exchanges`` with ``kite.instruments(exchange)`` and write
    it to ``path`` atomically; returns the rows written."""
    rows = []
    for exchange in exchanges:
        rows.extend(kite.instruments(exchange))
    if not rows:
        raise ValueError("the instruments dump was empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in COLUMNS])
    os.replace(tmp, path)
    return len(rows)


def load_kite_instruments(kite=None, cache_dir=None, exchanges=DEFAULT_EXCHANGES,
                          instrument_types=None, today: dt.date | None = None,
                          refresh: bool = False) -> InstrumentTable:
    """Today's instruments as an ``InstrumentTable``.

    Parameters
    ----------
    kite : kiteconnect.KiteConnect or None -- None: use the cache (or the bundled table)
    cache_dir : path -- one ``instruments-YYYY-MM-DD.csv`` per IST day (default
        ``default_cache_dir()``)
    exchanges : tuple -- loaded in this order, so a plain symbol resolves to the
        first exchange that lists it (``"BSE:RELIANCE"`` picks another)
    instrument_types : tuple or None -- e.g. ("EQ", "FUT"); None keeps all
    refresh : bool -- download even if today's file exists
    """
    day = today or ist_today()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_path(cache_dir, day)
    if kite is not None and (refresh or not path.exists()):
        try:
            n = download_instruments(kite, path, exchanges)
            logger.info("instruments dump: %d rows cached in %s", n, path)
        except Exception as exc:  # noqa: BLE001 - network, auth, a bad body: fall back, loudly
            logger.warning("instruments download failed (%s: %s); using the newest cache",
                           type(exc).__name__, exc)
    if not path.exists():
        cached = sorted(Path(cache_dir).glob("instruments-*.csv")) if Path(cache_dir).is_dir() \
            else []
        if not cached:
            logger.warning("no instruments dump available: using the bundled NSE table")
            return InstrumentTable.nse_default()
        path = cached[-1]
        logger.warning("using the instruments dump of %s (stale)", path.stem[12:])
    return InstrumentTable.from_kite_csv(path, exchange=tuple(exchanges),
                                         instrument_type=instrument_types)
