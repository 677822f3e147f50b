"""RSI mean reversion with a stop-loss: buy the dip, sell the bounce.

Run it on the bundled candles::

    hftcore backtest --data examples/data/candles \\
        --strategy examples/strategies/rsi_reversion.py:RsiDip \\
        --symbols INFY --param oversold=20 --param exit_above=50 \\
        --param stop_pct=0.3 --param risk_pct=0.03 \\
        --out reports/rsi_reversion

Flat and RSI(14) below ``oversold``: buy, sized by risk -- ``risk_pct`` % of equity
is lost if the stop is hit -- with a bracket ``stop_loss`` ``stop_pct`` % below the
close (on the tick grid).  The session places the stop (an SL-M exit) as soon as
the entry fills.  Long and RSI above ``exit_above``: ``close_position`` cancels
the stop and sells.  Otherwise the stop takes the position out.
"""

from __future__ import annotations

from hftcore import Strategy
from hftcore.indicators import rsi


class RsiDip(Strategy):
    name = "rsi_dip"
    timeframe = "1m"

    def __init__(self, period: int = 14, oversold: float = 20.0, exit_above: float = 50.0,
                 stop_pct: float = 0.3, risk_pct: float = 0.03):
        self.period, self.oversold, self.exit_above = period, oversold, exit_above
        self.stop_pct, self.risk_pct = stop_pct, risk_pct

    def indicators(self):
        return (rsi(self.period, as_="rsi"),)

    def on_bar(self, ctx):
        value = ctx.ind.rsi
        if value is None:
            return
        if ctx.position > 0:
            if value > self.exit_above:
                ctx.close_position()
        elif ctx.position == 0 and not ctx.open_orders and value < self.oversold:
            stop = ctx.tick_round(ctx.bar.close * (1 - self.stop_pct / 100), -1)
            ctx.buy(risk=self.risk_pct, stop_loss=stop)
