"""An example plug-in strategy: simple-moving-average crossover.

Run it with::

    hftcore backtest --data examples/data/candles \\
        --strategy examples/strategies/sma_cross.py:SmaCross --param fast=5 --param slow=20

A strategy is any class with a ``name`` and ``evaluate(symbol, timeframe, bundle,
ltp) -> Signal | None`` (see ``hftcore.engines.strategy``); its constructor's
parameters are what ``--param NAME=VALUE`` sets, typed by their annotations.
It runs inside ``StrategyEngineV3`` like the built-in strategies (fusion, the
secondary-timeframe veto, ``execution.quantity`` per order).

The bundle has EMAs but no SMA, so this strategy keeps its own window of the
prices it is shown (the LTP at each decision, i.e. the primary candle closes)
per symbol and timeframe.  It says BUY when SMA(fast) crosses above SMA(slow),
SELL when it crosses below, HOLD otherwise; None until ``slow`` prices are in.
"""

from __future__ import annotations

from collections import deque

from hftcore.orders import Signal


class SmaCross:
    name = "sma_cross"

    def __init__(self, fast: int = 5, slow: int = 20):
        if not 1 <= fast < slow:
            raise ValueError(f"sma_cross: need 1 <= fast < slow, got fast={fast} slow={slow}")
        self.fast, self.slow = fast, slow
        self._prices: dict[tuple[str, str], deque] = {}
        self._above: dict[tuple[str, str], bool] = {}

    def evaluate(self, symbol: str, timeframe: str, bundle: dict,
                 ltp: float | None) -> Signal | None:
        if ltp is None:
            return None
        key = (symbol, timeframe)
        window = self._prices.setdefault(key, deque(maxlen=self.slow))
        window.append(float(ltp))
        if len(window) < self.slow:
            return None
        prices = list(window)
        fast_sma = sum(prices[-self.fast:]) / self.fast
        slow_sma = sum(prices) / self.slow
        if fast_sma == slow_sma:
            return Signal(self.name, symbol, timeframe, "HOLD", 0.0, "SMAs equal")
        above = fast_sma > slow_sma
        before = self._above.get(key)
        self._above[key] = above
        if before is None or before == above:
            return Signal(self.name, symbol, timeframe, "HOLD", 0.0, "no crossover")
        action = "BUY" if above else "SELL"
        return Signal(self.name, symbol, timeframe, action, 1.0,
                      f"SMA{self.fast} crossed {'above' if above else 'below'} SMA{self.slow}")
