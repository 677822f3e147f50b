"""StrategyService: bundles in, signals out, an OrderIntent back.

``run_symbol`` reads the primary and secondary bundles and the LTP from the
MarketDataService, lets the strategy engine evaluate both timeframes,
publishes every strategy signal as ``signals.raw`` and the fused decision as
``signals.fused``, and returns an ``OrderIntent``.  It keeps no state of its
own between calls (safe to call from several threads).

It never raises: a bad symbol or missing data gives a HOLD intent whose
``reason`` says why (so ``intent.action`` is always safe to read).
"""

from __future__ import annotations

import logging
import time

from ..orders import OrderIntent
from .event_bus import SIGNALS_FUSED, SIGNALS_RAW

logger = logging.getLogger(__name__)


class StrategyService:
    """Multi-timeframe strategy evaluation.

    Parameters
    ----------
    strategy_engine : object with ``evaluate(symbol, bundles, ltp)`` and
        ``fuse(signals, primary_tf, secondary_tf)`` (``StrategyEngineV3``).
    market_data_service : MarketDataService
    event_bus : EventBus or None (then nothing is published)
    primary_tf, secondary_tf : str, default "5m" / "15m"
    """

    def __init__(self, strategy_engine, market_data_service, event_bus=None,
                 primary_tf: str = "5m", secondary_tf: str = "15m"):
        for m in ("evaluate", "fuse"):
            if not callable(getattr(strategy_engine, m, None)):
                raise ValueError(f"strategy_engine needs a {m}() method")
        if not callable(getattr(market_data_service, "get_bundle", None)):
            raise ValueError("market_data_service needs a get_bundle() method")
        if event_bus is not None and not callable(getattr(event_bus, "publish", None)):
            raise ValueError("event_bus needs a publish() method")
        for name, tf in (("primary_tf", primary_tf), ("secondary_tf", secondary_tf)):
            if not isinstance(tf, str) or not tf:
                raise ValueError(f"{name} must be a non-empty str, got {tf!r}")
        self.strategy_engine = strategy_engine
        self.market_data_service = market_data_service
        self.event_bus = event_bus
        self.primary_tf = primary_tf
        self.secondary_tf = secondary_tf

    def _publish(self, event_type, payload):
        if self.event_bus is not None:
            self.event_bus.publish(event_type, payload)

    def run_symbol(self, symbol, ts=None) -> OrderIntent:
        """Evaluate ``symbol`` now (``ts``: decision time in ns, default wall clock).

        Returns an OrderIntent: ``action`` BUY/SELL/HOLD, ``confidence`` 0..1,
        ``reason``, ``metadata`` ({"indicators": {tf: bundle}, "signals": [...],
        "ltp": float}), ``quantity`` suggested by the engine.
        """
        ts = time.time_ns() if ts is None else ts
        if not isinstance(symbol, str) or not symbol.strip():
            logger.warning("run_symbol: symbol must be a non-empty str, got %r", symbol)
            return OrderIntent(str(symbol), "HOLD", 0.0, "invalid symbol", ts=ts)
        mds = self.market_data_service
        bundles = {self.primary_tf: mds.get_bundle(symbol, self.primary_tf)}
        if self.secondary_tf != self.primary_tf:
            bundles[self.secondary_tf] = mds.get_bundle(symbol, self.secondary_tf)
        ltp = mds.get_ltp(symbol)
        metadata = {"indicators": bundles, "signals": [], "ltp": ltp}
        if bundles[self.primary_tf] is None or ltp is None:
            return OrderIntent(symbol, "HOLD", 0.0, "no market data", metadata, ts=ts)
        try:
            signals = self.strategy_engine.evaluate(symbol, bundles, ltp)
            action, confidence, reason = self.strategy_engine.fuse(
                signals, self.primary_tf, self.secondary_tf)
        except Exception as exc:
            logger.exception("run_symbol(%s): strategy engine failed", symbol)
            return OrderIntent(symbol, "HOLD", 0.0, f"strategy engine error: {exc}", metadata,
                               ts=ts)
        raw = [s.to_dict() if hasattr(s, "to_dict") else dict(s) for s in signals]
        metadata["signals"] = raw
        for payload in raw:
            payload["ts"] = ts
            self._publish(SIGNALS_RAW, payload)
        size = getattr(self.strategy_engine, "size", None)
        quantity = size(symbol, action, confidence, ltp) if callable(size) else 0
        intent = OrderIntent(symbol, action, float(confidence), reason, metadata,
                             quantity=int(quantity) if action != "HOLD" else 0, ts=ts)
        target = getattr(self.strategy_engine, "target_position", None)
        if callable(target) and action != "HOLD":
            # an engine that thinks in positions ("long 100") rather than orders
            intent.target_position = target(symbol, action, confidence, ltp)
        self._publish(SIGNALS_FUSED, {"symbol": symbol, "action": action,
                                      "confidence": intent.confidence, "reason": reason,
                                      "quantity": intent.quantity, "ltp": ltp, "ts": ts,
                                      "signals": len(raw)})
        return intent
