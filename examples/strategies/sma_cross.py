"""SMA crossover: long while SMA(fast) is above SMA(slow), short while below.

Run it on the bundled candles::

    hftcore backtest --data examples/data/candles \\
        --strategy examples/strategies/sma_cross.py:SmaCross \\
        --symbols INFY --param fast=20 --param slow=60 --param quantity=50 \\
        --out reports/sma_cross

The session calls ``on_bar`` at every close of a 1-minute candle.  Both SMAs are
declared, so the compiled candle bank computes them; ``ctx.crossed_above`` compares
this bar with the previous one.  ``target_position`` trades the difference, so a
reversal from +50 to -50 sells 100.  Sizing: a fixed quantity.
"""

from __future__ import annotations

from hftcore import Strategy
from hftcore.indicators import sma


class SmaCross(Strategy):
    name = "sma_cross"
    timeframe = "1m"

    def __init__(self, fast: int = 20, slow: int = 60, quantity: int = 50):
        if not 1 <= fast < slow:
            raise ValueError(f"sma_cross: need 1 <= fast < slow, got fast={fast} slow={slow}")
        self.fast, self.slow, self.quantity = fast, slow, quantity

    def indicators(self):
        return (sma(self.fast, as_="fast"), sma(self.slow, as_="slow"))

    def on_bar(self, ctx):
        if ctx.crossed_above("fast", "slow"):
            ctx.target_position(self.quantity)
        elif ctx.crossed_below("fast", "slow"):
            ctx.target_position(-self.quantity)
