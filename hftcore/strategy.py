"""Strategies: subclass ``Strategy``, declare indicators, write ``on_bar(ctx)``.

::

    from hftcore import Strategy
    from hftcore.indicators import sma

    class SmaCross(Strategy):
        name = "sma_cross"

        def __init__(self, fast: int = 10, slow: int = 30, quantity: int = 100):
            self.fast, self.slow, self.quantity = fast, slow, quantity

        def indicators(self):
            return (sma(self.fast, as_="fast"), sma(self.slow, as_="slow"))

        def on_bar(self, ctx):
            if ctx.crossed_above("fast", "slow"):
                ctx.target_position(self.quantity)
            elif ctx.crossed_below("fast", "slow"):
                ctx.target_position(-self.quantity)

The session calls ``on_bar`` once per closed candle of the strategy's
``timeframe`` (default: the session's primary timeframe) for every symbol it
trades.  ``ctx`` (a ``Context``) shows that symbol and timeframe: the closed
candle, the history as numpy views of the compiled candle rings, the declared
indicators (computed by the compiled candle bank), the LTP, the position, cash,
equity, buying power, open orders and the clock; and it places orders, every
one through the one pre-trade gate (``ExecutionService.execute``).

One strategy concept, two ways to act:

* **trade**: ``ctx.buy`` / ``ctx.sell`` (by quantity, rupee ``value`` or
  ``risk`` % of equity), ``ctx.target_position``, ``ctx.close_position``, ``ctx.cancel``,
  with MARKET/LIMIT/SL/SL-M and an attached ``stop_loss``/``target`` (bracket);
* **vote**: ``ctx.signal(action, confidence, reason)``.  A strategy with
  ``fused = True`` runs inside ``StrategyEngineV3``, whose fusion turns the
  votes of several strategies on two timeframes into one order (the built-in
  ``ema_trend``, ``rsi_reversion`` and ``vwap_reversion`` work so).  Inside the
  fusion a strategy cannot place orders itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable
from typing import NamedTuple

from hftcore_ext.lane import ContextCore, Values

from .indicators import IndicatorSpec
from .orders import OrderIntent, OrderResult, Signal

logger = logging.getLogger(__name__)

NS = 1_000_000_000
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


class Bar(NamedTuple):
    """A closed candle: ``ts`` is its start (ns since the epoch); prices in rupees."""
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class Strategy:
    """Base class of every strategy.

    Class attributes
    ----------------
    name : str -- how the configuration, the CLI and the events name it
    timeframe : str or None -- the candles ``on_bar`` is called on (None: the
        session's primary timeframe)
    timeframes : tuple of str -- further timeframes the strategy reads through
        ``ctx.data(timeframe=...)`` (kept by the candle bank)
    symbols : tuple of str or None -- symbols to decide on (None: every symbol)
    fused : bool -- True: a voting strategy for ``StrategyEngineV3``
    decide_on : "close" or "cross" -- "cross" (with ``ema_periods``) lets the
        compiled bank call ``on_bar`` only where EMA(fast) and EMA(slow) cross

    Override ``indicators()`` (or set it to a tuple) to declare what the bank
    computes; ``on_start(ctx)`` runs once before the first bar.
    """

    name: str = ""
    timeframe: str | None = None
    timeframes: tuple[str, ...] = ()
    symbols: tuple[str, ...] | None = None
    fused: bool = False
    decide_on: str = "close"

    def indicators(self) -> Iterable[IndicatorSpec]:
        return ()

    def on_start(self, ctx: "Context") -> None:
        return None

    def on_bar(self, ctx: "Context") -> None:
        raise NotImplementedError(f"{type(self).__name__} must define on_bar(ctx)")

    def evaluate(self, symbol: str, timeframe: str, bundle: dict | None,
                 ltp: float | None) -> Signal | None:
        """The last signal ``on_bar`` gives on these values (no history, no orders):
        the voting interface ``StrategyEngineV3`` calls with the spec's bundle."""
        ctx = Context(None, timeframe=timeframe)
        ctx.strategy_name = self.name
        ctx._point(symbol, timeframe, -1, -1, bundle=bundle or {}, ltp=ltp)
        self.on_bar(ctx)
        return ctx.signals[-1] if ctx.signals else None


def declared_specs(strategy) -> tuple[IndicatorSpec, ...]:
    """The indicator specs a strategy declares (``indicators`` method or tuple)."""
    ind = getattr(strategy, "indicators", ())
    specs = ind() if callable(ind) else ind
    out = tuple(specs or ())
    for s in out:
        if not isinstance(s, IndicatorSpec):
            raise ValueError(f"{getattr(strategy, 'name', strategy)!r}: indicators() must "
                             f"return specs such as hftcore.indicators.sma(50), got {s!r}")
    return out


def is_trading_strategy(obj) -> bool:
    """A strategy the session runs itself (``on_bar``, not a fusion member)."""
    return callable(getattr(obj, "on_bar", None)) and not getattr(obj, "fused", False) \
        and not callable(getattr(obj, "fuse", None))


_ORDER_CALLS = ("buy()/sell()", "close_position()", "cancel()")


class Context(ContextCore):
    """What ``on_bar`` sees and acts through.  One object per session, pointed
    at each (symbol, timeframe) in turn: read it inside ``on_bar``, do not keep it.

    ``session`` is the ``PaperSession``; None (a fusion engine used on its own)
    leaves the bundle values, ``ltp`` and ``signal``.  ``trade=False`` (inside
    ``StrategyEngineV3``'s fusion) reads everything but places no orders.

    What is read at every bar -- where it points, ``ind``, ``prev``,
    ``crossed_above`` / ``crossed_below`` -- is compiled
    (``hftcore_ext.lane.ContextCore``); the rest is here.
    """

    def data(self, symbol: str | None = None, timeframe: str | None = None) -> "Context":
        """A context on another symbol and/or timeframe (a pair's other leg, a 15m
        view from a 5m decision).  Orders placed through it trade that symbol."""
        s = self._need_session("data()")
        symbol = symbol or self.symbol
        timeframe = timeframe or self.timeframe
        inst = s.instruments.get(symbol)
        if inst is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        tf = s.timeframe_index(timeframe)
        other = Context(s, timeframe, self._trade)
        other._prev, other._watched = self._prev, self._watched
        self._watched.add((inst.id, tf))
        other.signals, other.results = self.signals, self.results
        other.strategy_name = self.strategy_name
        return other._point(inst.symbol, timeframe, inst.id, tf)

    def _need_session(self, what: str):
        if self._session is None or (not self._trade and what in _ORDER_CALLS):
            raise RuntimeError(f"ctx.{what}: this strategy runs inside StrategyEngineV3's "
                               f"fusion, which shows it the bundle only; vote with "
                               f"ctx.signal(), or run it alone to trade")
        return self._session

    # ------------------------------------------------------------ market data

    @property
    def now(self) -> int:
        """The clock, ns since the epoch: when the candle just closed (its end: the
        09:30 one-minute candle closes at 09:31) -- in a candle replay as live; in a
        tick replay the time of the tick that closed it.  ``ctx.bar.ts`` is the
        candle's start (its label)."""
        s = self._session
        if s is None:
            return 0
        return int(max(s.decision_ns, s.now_ns))

    @property
    def time(self) -> dt.datetime:
        """``now`` as an IST datetime."""
        return dt.datetime.fromtimestamp(self.now / NS, IST)

    @property
    def ltp(self) -> float | None:
        """The last traded price: inside StrategyEngineV3's fusion the one this
        decision read (every member sees the same), otherwise read now."""
        if self._session is None or self._ltp is not None:
            return self._ltp
        return self._session.market_data.get_ltp(self.symbol)

    @property
    def bar(self) -> Bar | None:
        """The candle that just closed (None before the first)."""
        h = self.history(1)
        if len(h["close"]) == 0:
            return None
        return Bar(int(h["ts"][0]), float(h["open"][0]), float(h["high"][0]),
                   float(h["low"][0]), float(h["close"][0]), float(h["volume"][0]))

    def history(self, n: int = -1) -> dict:
        """The newest ``n`` closed candles (all kept if n < 0), oldest first: a dict
        of read-only numpy views (ts, open, high, low, close, volume) of the
        compiled ring -- no copy; ``np.array(view)`` to keep one past the next bar."""
        s = self._need_session("history()")
        return s.engine.bank.history(self._sym, self._tf, n)

    @property
    def open(self):
        return self.history()["open"]

    @property
    def high(self):
        return self.history()["high"]

    @property
    def low(self):
        return self.history()["low"]

    @property
    def close(self):
        return self.history()["close"]

    @property
    def volume(self):
        return self.history()["volume"]

    @property
    def bundle(self) -> dict:
        """The spec's bundle for this symbol and timeframe (ema20, ema50, rsi, atr,
        vwap, slope, trend_signal; ``MarketDataService.get_bundle``); {} if none."""
        if self._bundle is not None:
            return self._bundle
        s = self._need_session("bundle")
        return s.market_data.get_bundle(self.symbol, self.timeframe) or {}

    # ------------------------------------------------------------ the books

    @property
    def position(self) -> int:
        """Signed units held in this symbol (filled only)."""
        return int(self._need_session("position").portfolio.position_quantity(self.symbol))

    @property
    def avg_price(self) -> float | None:
        pos = self._need_session("avg_price").portfolio.get_position(self.symbol)
        return pos["avg_price"] if pos and pos["quantity"] else None

    @property
    def cash(self) -> float:
        return self._need_session("cash").portfolio.ledger.cash / 100

    @property
    def equity(self) -> float:
        """Cash + positions at the market (rupees)."""
        return self._need_session("equity").execution.gate._equity_paise() / 100

    @property
    def buying_power(self) -> float:
        """Rupees free for new margin (what the gate's buying_power rule checks)."""
        return self._need_session("buying_power").execution.gate.buying_power()

    @property
    def open_orders(self) -> list:
        """This symbol's working orders (``BrokerOrder``)."""
        return list(self._need_session("open_orders").broker.open_orders(self.symbol))

    # ------------------------------------------------------------ acting

    def buy(self, quantity: int | None = None, **kw) -> OrderResult:
        """Buy ``quantity`` units -- or ``value=`` rupees' worth, or ``risk=`` % of
        equity lost if ``stop_loss`` is hit.  Keywords: ``order_type`` (MARKET,
        LIMIT, SL, SL-M; by default MARKET, LIMIT with ``price``, SL-M with
        ``trigger_price``, SL with both), ``price`` (LIMIT/SL), ``trigger_price`` (SL/SL-M),
        ``stop_loss`` and ``target`` (a bracket: exits placed as the entry fills),
        ``product`` (MIS, CNC, NRML), ``tag``.  Returns the ``OrderResult``."""
        return self._order("BUY", quantity, **kw)

    def sell(self, quantity: int | None = None, **kw) -> OrderResult:
        """Sell (short if flat); the keywords of ``buy``."""
        return self._order("SELL", quantity, **kw)

    def target_position(self, quantity: int, **kw) -> OrderResult:
        """Trade to a signed position (counting working orders): +100 from -100
        buys 200; already there: status REJECTED with rule ``hold``, nothing sent."""
        return self._order(None, None, target_position=quantity, **kw)

    def close_position(self, **kw) -> OrderResult | None:
        """Go flat: cancel this symbol's working orders, then trade the position to
        0 (None if already flat)."""
        s = self._need_session("close_position()")
        s.execution.cancel_working(self.symbol)
        if s.portfolio.position_quantity(self.symbol) == 0:
            return None
        return self._order(None, None, target_position=0, **kw)

    def cancel(self, order_id: str | None = None) -> int:
        """Cancel one working order (``order_id``) or all of this symbol's; returns
        how many were cancelled."""
        s = self._need_session("cancel()")
        if order_id is None:
            return s.execution.cancel_working(self.symbol)
        return int(bool(s.broker.cancel_order(order_id)))

    def _order(self, side: str | None, quantity: int | None, *, value: float | None = None,
               risk: float | None = None, order_type: str | None = None,
               price: float | None = None, trigger_price: float | None = None,
               stop_loss: float | None = None, target: float | None = None,
               product: str = "MIS", tag: str | None = None,
               target_position: int | None = None) -> OrderResult:
        s = self._need_session("buy()/sell()")
        for name, q in (("quantity", quantity), ("target_position", target_position)):
            if q is not None and (isinstance(q, bool) or not isinstance(q, int)):
                raise ValueError(f"{name} must be a whole number of units, got {q!r}")
        if order_type is None:            # price -> LIMIT, trigger -> SL-M, both -> SL
            order_type = ("SL" if trigger_price is not None else "LIMIT") if price is not None \
                else "SL-M" if trigger_price is not None else "MARKET"
        elif order_type.upper() in ("MARKET", "SL-M") and price is not None:
            raise ValueError(f"a {order_type.upper()} order takes no price= (got {price}); "
                             f"use order_type='LIMIT' or 'SL'")
        given = [k for k, v in (("quantity", quantity), ("value", value), ("risk", risk))
                 if v is not None]
        if target_position is None and len(given) != 1:
            raise ValueError(f"give exactly one of quantity, value, risk (got "
                             f"{', '.join(given) or 'none'})")
        if target_position is None and quantity is None:
            ref = price if price is not None else trigger_price if trigger_price is not None \
                else self.ltp
            quantity = self._size(ref, value, risk, stop_loss)
        intent = OrderIntent(self.symbol, side or "HOLD", 1.0,
                             f"{self.strategy_name}: {side or 'target'}",
                             quantity=int(quantity or 0), order_type=order_type.upper(),
                             limit_price=price, product=product, ts=self.now,
                             trigger_price=trigger_price, stop_loss=stop_loss, target=target,
                             tag=tag, target_position=target_position)
        result = s._submit(intent)
        self.results.append(result)
        return result

    def _size(self, ref: float | None, value: float | None, risk: float | None,
              stop_loss: float | None) -> int:
        """Whole lots for a rupee value or a risk %; 0 when it cannot be sized (the
        gate then rejects the order with rule ``quantity``)."""
        if ref is None or not ref > 0:
            return 0
        if value is not None:
            units = math.floor(float(value) / ref)
        else:
            if stop_loss is None:
                raise ValueError("risk= needs stop_loss= (the loss per unit)")
            per_unit = abs(ref - float(stop_loss))
            if not per_unit > 0:
                return 0
            units = math.floor(self.equity * float(risk) / 100 / per_unit)  # type: ignore[arg-type]
        inst = self._session.instruments.get(self.symbol)
        lot = inst.lot_size if inst is not None else 1
        return max(0, units - units % lot)

    def tick_round(self, price: float, direction: int = 0) -> float:
        """``price`` on this symbol's tick grid (direction -1 down, +1 up, 0 nearest)."""
        inst = self._need_session("tick_round()").instruments.get(self.symbol)
        return inst.snap(price, direction) / 100


class StrategyRunner:
    """Runs trading strategies in a session: at each closed candle of a symbol on
    the decision timeframe, every strategy that trades that symbol gets
    ``on_bar(ctx)``.  A strategy that raises is logged, counted and skipped."""

    def __init__(self, strategies, session) -> None:
        self.strategies = list(strategies)
        self.session = session
        self.errors = 0
        self._fails: dict[str, int] = {}
        self.ctx = Context(session, session.primary_tf)
        self.started = False

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        for st in self.strategies:
            self.ctx.strategy_name = st.name
            try:
                st.on_start(self.ctx)
            except Exception:
                self.errors += 1
                logger.exception("strategy %s: on_start failed", st.name)

    def _failed(self, st, symbol: str) -> None:
        """The first failure of a strategy with its traceback, then a count at each
        power of ten (a bug that fires on every bar must not flood the log)."""
        self.errors += 1
        n = self._fails[st.name] = self._fails.get(st.name, 0) + 1
        if n == 1:
            logger.exception("strategy %s failed on %s", st.name, symbol)
        elif n >= 10 and math.log10(n).is_integer():
            logger.error("strategy %s has failed %d times (last on %s)", st.name, n, symbol)

    def decide(self, symbol: str, sym: int) -> list[OrderResult]:
        s = self.session
        ctx = self.ctx
        ctx._ind = None                   # values are read afresh at every decision
        ctx.signals.clear()
        ctx.results.clear()
        for st in self.strategies:
            if st.symbols is not None and symbol not in st.symbols:
                continue
            ctx.strategy_name = st.name
            ctx._point(symbol, s.primary_tf, sym, s._primary_idx)
            try:
                st.on_bar(ctx)
            except Exception:
                self._failed(st, symbol)
        # after all of them: every strategy sees the same prev (one bar ago, not "now")
        if ctx._sym != sym or ctx._tf != s._primary_idx:
            ctx._point(symbol, s.primary_tf, sym, s._primary_idx)
        ctx._remember()
        for sig in ctx.signals:
            payload = sig.to_dict()
            payload["ts"] = ctx.now
            s.bus.publish("signals.raw", payload)
        return ctx.results


__all__ = ["Bar", "Context", "Strategy", "StrategyRunner", "Values", "declared_specs",
           "is_trading_strategy"]
