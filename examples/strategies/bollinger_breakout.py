"""Bollinger breakout with a take-profit target and a stop.

Run it on the bundled candles::

    hftcore backtest --data examples/data/candles \\
        --strategy examples/strategies/bollinger_breakout.py:BollingerBreakout \\
        --symbols INFY --param period=20 --param width=2.5 \\
        --param target_pct=0.3 --param value=50000 \\
        --out reports/bollinger_breakout

Flat, and the close crosses above the upper band (at or below it one bar ago):
buy ``value`` rupees' worth with a bracket -- a ``target`` ``target_pct`` % above
the close (a LIMIT exit) and a ``stop_loss`` at the middle band (an SL-M exit).
Whichever fills first cancels the other.  Both prices are put on the tick grid,
the target rounded up and the stop down.
"""

from __future__ import annotations

from hftcore import Strategy
from hftcore.indicators import bbands


class BollingerBreakout(Strategy):
    name = "bollinger_breakout"
    timeframe = "1m"

    def __init__(self, period: int = 20, width: float = 2.5, target_pct: float = 0.3,
                 value: float = 50_000.0):
        self.period, self.width = period, width
        self.target_pct, self.value = target_pct, value

    def indicators(self):
        return (bbands(self.period, self.width, as_="bb"),)

    def on_bar(self, ctx):
        upper, middle = ctx.ind["bb.upper"], ctx.ind["bb.middle"]
        before = ctx.prev.get("bb.upper")
        if upper is None or before is None or ctx.position or ctx.open_orders:
            return
        close, prev_close = ctx.close[-1], ctx.close[-2]
        if prev_close <= before and close > upper:
            ctx.buy(value=self.value,
                    target=ctx.tick_round(close * (1 + self.target_pct / 100), +1),
                    stop_loss=ctx.tick_round(middle, -1))
