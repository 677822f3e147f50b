"""Opening-range breakout: one trade a day per symbol, out by 15:15 IST.

Run it on the bundled candles::

    hftcore backtest --data examples/data/candles \\
        --strategy examples/strategies/opening_range.py:OpeningRange \\
        --param minutes=15 --param quantity=40 --out reports/opening_range

The first ``minutes`` one-minute candles of the day (09:15 onwards) make the
range.  After it, the first close above its high buys ``quantity`` with a stop at
the range's low; the first close below its low sells short with a stop at its
high.  At the candle that closes at 15:15 IST any position is closed (a MARKET
order, filled at the 15:15 open); the session's own square-off comes later, at
15:20.  ``ctx.time`` is the clock: when the candle that just closed ended (09:31
for the 09:30-09:31 candle), in a replay as live.
"""

from __future__ import annotations

import datetime as dt

from hftcore import Strategy

OPEN = dt.time(9, 15)
EXIT = dt.time(15, 15)
MINUTE = dt.timedelta(minutes=1)


class OpeningRange(Strategy):
    name = "opening_range"
    timeframe = "1m"

    def __init__(self, minutes: int = 15, quantity: int = 40):
        self.minutes, self.quantity = minutes, quantity
        self.ranges: dict[tuple[str, dt.date], tuple[float, float]] = {}   # (high, low)
        self.traded: set[tuple[str, dt.date]] = set()     # (symbol, day) already entered

    def on_bar(self, ctx):
        now = ctx.time                    # IST: when the candle that just closed ended
        if now.time() >= EXIT:
            if ctx.position or ctx.open_orders:
                ctx.close_position()
            return
        day = (ctx.symbol, now.date())
        if day in self.traded:
            return
        if day not in self.ranges:
            opened = dt.datetime.combine(now.date(), OPEN, now.tzinfo)
            if now - opened < self.minutes * MINUTE:
                return                    # the range is still forming
            # today's candles (the ring also holds earlier days), oldest first; kept
            # once, as the ring only holds the last 200
            bars = ctx.history((now - opened) // MINUTE)
            first = bars["ts"] >= int(opened.timestamp()) * 10**9
            self.ranges[day] = (float(bars["high"][first][:self.minutes].max()),
                                float(bars["low"][first][:self.minutes].min()))
            return
        high, low = self.ranges[day]
        close = ctx.bar.close
        if close > high:
            ctx.buy(self.quantity, stop_loss=ctx.tick_round(low, -1))
            self.traded.add(day)
        elif close < low:
            ctx.sell(self.quantity, stop_loss=ctx.tick_round(high, +1))
            self.traded.add(day)
