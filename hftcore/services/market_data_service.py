"""MarketDataService: LTP with a TTL cache, indicator bundles and candle history.

Wraps a ``broker_feed`` (anything with ``get_ltp(symbol)``) and a
``market_data_engine`` (anything with ``get_indicators(symbol, timeframe)``,
``get_candles(symbol, timeframe, n)``; normally ``hftcore.MarketDataEngine``,
whose state is the compiled candle bank).  Ticks reach the engine through
``on_tick`` (one) or ``ingest`` (a numpy batch, nogil).

Errors never escape: an unknown symbol, a bad timeframe or a feed that raises
gives None / [] and a logged warning.
"""

from __future__ import annotations

import logging
import math
import threading
import time

logger = logging.getLogger(__name__)

BUNDLE_KEYS = ("ema20", "ema50", "rsi", "atr", "vwap", "slope", "trend_signal")


def trend_of(bundle: dict) -> str:
    """"bullish" if EMA20 > EMA50 and the slope is up, "bearish" if both point
    down, else "neutral" (also while warming up)."""
    fast, slow, slope = bundle.get("ema20"), bundle.get("ema50"), bundle.get("slope")
    if fast is None or slow is None or slope is None:
        return "neutral"
    if fast > slow and slope > 0:
        return "bullish"
    if fast < slow and slope < 0:
        return "bearish"
    return "neutral"


class MarketDataService:
    """Unified market data access.

    Parameters
    ----------
    broker_feed : object with ``get_ltp(symbol)``
    market_data_engine : object with ``get_indicators`` and ``get_candles``
    cache_ttl_seconds : float, default 1.0
        How long an LTP from the feed is reused.  0 disables the cache.
    clock : callable -> float seconds, default ``time.monotonic``
        The TTL's clock; a replay passes its simulated clock so the cache
        expires in market time, not wall time.
    """

    def __init__(self, broker_feed, market_data_engine, cache_ttl_seconds: float = 1.0,
                 clock=time.monotonic):
        if not callable(getattr(broker_feed, "get_ltp", None)):
            raise ValueError("broker_feed needs a get_ltp(symbol) method")
        for m in ("get_indicators", "get_candles"):
            if not callable(getattr(market_data_engine, m, None)):
                raise ValueError(f"market_data_engine needs a {m}() method")
        if isinstance(cache_ttl_seconds, bool) or not isinstance(cache_ttl_seconds, (int, float)) \
                or not (cache_ttl_seconds >= 0 and math.isfinite(cache_ttl_seconds)):
            raise ValueError(f"cache_ttl_seconds must be a finite number >= 0, "
                             f"got {cache_ttl_seconds!r}")
        self.broker_feed = broker_feed
        self.market_data_engine = market_data_engine
        self.cache_ttl_seconds = float(cache_ttl_seconds)
        self.clock = clock
        self._cache: dict[str, tuple[float, float]] = {}   # symbol -> (price, fetched at)
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    # ------------------------------------------------------------ LTP

    def get_ltp(self, symbol) -> float | None:
        """Last traded price in rupees; None (logged) for a bad or unknown symbol
        or a feed error."""
        if not isinstance(symbol, str) or not symbol:
            logger.warning("get_ltp: symbol must be a non-empty str, got %r", symbol)
            return None
        ttl = self.cache_ttl_seconds
        if ttl > 0:
            now = self.clock()
            with self._lock:
                hit = self._cache.get(symbol)
                if hit is not None and now - hit[1] < ttl:
                    self.cache_hits += 1
                    return hit[0]
                self.cache_misses += 1
        else:
            now = 0.0
        try:
            price = self.broker_feed.get_ltp(symbol)
        except Exception as exc:
            logger.warning("get_ltp(%s): feed error: %s", symbol, exc)
            return None
        if price is None:
            return None
        try:
            price = float(price)
        except (TypeError, ValueError):
            logger.warning("get_ltp(%s): feed returned a non-number %r", symbol, price)
            return None
        if not (math.isfinite(price) and price > 0):
            logger.warning("get_ltp(%s): feed returned an invalid price %r", symbol, price)
            return None
        if ttl > 0:
            with self._lock:
                self._cache[symbol] = (price, now)
        return price

    def get_ltp_list(self, symbols) -> list:
        """``[get_ltp(s) for s in symbols]`` (distinct symbols) in one call: one clock
        read and one lock for the cached prices, the feed's ``get_ltp_list`` (if it has
        one) for the rest.  Same values, warnings, cache and counters as the calls
        one by one; the portfolio marks its open positions with it."""
        ttl = self.cache_ttl_seconds
        out: list = [None] * len(symbols)
        todo: list[int] = []
        now = self.clock() if ttl > 0 else 0.0
        cache = self._cache
        with self._lock:
            for k, symbol in enumerate(symbols):
                if not isinstance(symbol, str) or not symbol:
                    logger.warning("get_ltp: symbol must be a non-empty str, got %r", symbol)
                    continue
                if ttl > 0:
                    hit = cache.get(symbol)
                    if hit is not None and now - hit[1] < ttl:
                        self.cache_hits += 1
                        out[k] = hit[0]
                        continue
                    self.cache_misses += 1
                todo.append(k)
        if not todo:
            return out
        feed = self.broker_feed
        many = getattr(feed, "get_ltp_list", None)
        raw: list = []
        if callable(many):
            try:
                raw = list(many([symbols[k] for k in todo]))
            except Exception:                  # the feed's own get_ltp says which one failed
                raw = []
            if len(raw) != len(todo):
                many = None
        batch = callable(many)
        inf = math.inf
        fresh: list[tuple[str, tuple[float, float]]] = []
        for j, k in enumerate(todo):
            symbol = symbols[k]
            if batch:
                price = raw[j]
            else:
                try:
                    price = feed.get_ltp(symbol)
                except Exception as exc:
                    logger.warning("get_ltp(%s): feed error: %s", symbol, exc)
                    continue
            if type(price) is not float or not 0.0 < price < inf:   # else: valid as it is
                if price is None:
                    continue
                try:
                    price = float(price)
                except (TypeError, ValueError):
                    logger.warning("get_ltp(%s): feed returned a non-number %r", symbol, price)
                    continue
                if not (math.isfinite(price) and price > 0):
                    logger.warning("get_ltp(%s): feed returned an invalid price %r", symbol,
                                   price)
                    continue
            out[k] = price
            fresh.append((symbol, (price, now)))
        if ttl > 0 and fresh:
            with self._lock:
                cache.update(fresh)
        return out

    def invalidate(self, symbol=None) -> None:
        """Drop the cached LTP of ``symbol`` (all symbols if None)."""
        if not self._cache:                 # nothing cached (always so with a TTL of 0)
            return
        with self._lock:
            if symbol is None:
                self._cache.clear()
            else:
                self._cache.pop(symbol, None)

    # ------------------------------------------------------------ indicators

    def get_bundle(self, symbol, timeframe, live: bool = False) -> dict | None:
        """``{"ema20", "ema50", "rsi", "atr", "vwap", "slope", "trend_signal"}``.

        Values are rupees (RSI 0-100, slope rupees per candle), None while an
        indicator warms up; as of the last closed candle unless ``live``.
        None (logged) for an unknown symbol/timeframe or an engine error.
        """
        if not isinstance(symbol, str) or not symbol:
            logger.warning("get_bundle: symbol must be a non-empty str, got %r", symbol)
            return None
        try:
            if live:
                ind = self.market_data_engine.get_indicators(symbol, timeframe, live=True)
            else:
                ind = self.market_data_engine.get_indicators(symbol, timeframe)
        except Exception as exc:
            logger.warning("get_bundle(%s, %s): engine error: %s", symbol, timeframe, exc)
            return None
        if ind is None:
            logger.warning("get_bundle: no data for %r on %r", symbol, timeframe)
            return None
        if len(ind) == 6 and type(ind) is dict and "slope" in ind:
            bundle = dict(ind)                    # MarketDataEngine: exactly the six keys
        else:
            bundle = {k: ind.get(k) for k in BUNDLE_KEYS[:-1]}
        bundle["trend_signal"] = trend_of(bundle)
        return bundle

    def get_history(self, symbol, timeframe, n: int = 100) -> list[dict]:
        """The newest ``n`` closed candles, oldest first, as Kite-style dicts
        (date, open, high, low, close, volume); [] (logged) on any error."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            logger.warning("get_history: n must be an int >= 0, got %r", n)
            return []
        if not isinstance(symbol, str) or not symbol:
            logger.warning("get_history: symbol must be a non-empty str, got %r", symbol)
            return []
        try:
            return list(self.market_data_engine.get_candles(symbol, timeframe, n))
        except Exception as exc:
            logger.warning("get_history(%s, %s): engine error: %s", symbol, timeframe, exc)
            return []

    # ------------------------------------------------------------ ingest

    def on_tick(self, symbol, ts_ns, price, volume=0.0) -> int:
        """Feed one live tick to the engine; see ``MarketDataEngine.on_tick``."""
        try:
            return self.market_data_engine.on_tick(symbol, ts_ns, price, volume)
        except Exception as exc:
            logger.warning("on_tick(%s): %s", symbol, exc)
            return -1

    def ingest(self, batch) -> int:
        """Feed a ``Ticks``/``Bars`` batch to the engine (nogil); returns candles closed."""
        try:
            return self.market_data_engine.ingest(batch)
        except Exception as exc:
            logger.warning("ingest: %s", exc)
            return 0
