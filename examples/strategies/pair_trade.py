"""A pair: INFY against RELIANCE on the z-score of their price ratio.

Run it on the bundled candles::

    hftcore backtest --data examples/data/candles \\
        --strategy examples/strategies/pair_trade.py:PairTrade \\
        --param window=60 --param entry=2.5 --param exit=0.5 --param value=50000 \\
        --out reports/pair_trade

The strategy decides on INFY's candles only (``symbols = ("INFY",)``) and reads
RELIANCE through ``ctx.data(symbol="RELIANCE")``.  z is the last INFY/RELIANCE
close ratio against the mean and standard deviation of the last ``window``
ratios.  z above ``entry``: INFY is rich, sell INFY and buy RELIANCE, ``value``
rupees of each; z below -``entry``: the reverse.  Both legs are closed when |z|
falls under ``exit``.

(The bundled sample's two symbols come from one random path at different
prices, so their ratio only moves by tick rounding: the example shows the
mechanics, not an edge.)
"""

from __future__ import annotations


from hftcore import Strategy


class PairTrade(Strategy):
    name = "pair_trade"
    timeframe = "1m"
    symbols = ("INFY",)
    other = "RELIANCE"

    def __init__(self, window: int = 60, entry: float = 2.5, exit: float = 0.5,
                 value: float = 50_000.0):
        self.window, self.entry, self.exit, self.value = window, entry, exit, value

    def on_bar(self, ctx):
        leg = ctx.data(symbol=self.other)
        mine, theirs = ctx.history(self.window), leg.history(self.window)
        if len(mine["close"]) < self.window or len(theirs["close"]) < self.window \
                or mine["ts"][-1] != theirs["ts"][-1]:
            return                        # not warm yet, or the other leg's bar not in
        ratio = mine["close"] / theirs["close"]
        sd = ratio.std()
        if not sd > 0:
            return
        z = (ratio[-1] - ratio.mean()) / sd
        if ctx.position == 0:
            if z > self.entry:            # INFY rich against RELIANCE
                ctx.sell(value=self.value)
                leg.buy(value=self.value)
            elif z < -self.entry:
                ctx.buy(value=self.value)
                leg.sell(value=self.value)
        elif abs(z) < self.exit:
            ctx.close_position()
            leg.close_position()
