"""StrategyEngineV3: voting strategies on two timeframes, and their fusion.

Its members are ``hftcore.Strategy`` classes with ``fused = True`` whose
``on_bar(ctx)`` votes with ``ctx.signal(action, confidence, reason)``; ``ctx.ind``
holds the MarketDataService bundle (``ema20, ema50, rsi, atr, vwap, slope,
trend_signal``; None until warmed up) and any declared indicator.  No vote
means no opinion (data missing); a HOLD vote means it looked and sees nothing.
Any object with a ``name`` and ``evaluate(symbol, timeframe, bundle, ltp) ->
Signal | None`` is accepted too (the duck-typed seam).

Fusion rule (``StrategyEngineV3.fuse``)
---------------------------------------
Every signal gets the weight ``strategy weight x timeframe weight`` (primary
timeframe 2, secondary 1 by default).  With ``direction`` +1 BUY, -1 SELL,
0 HOLD::

    net        = sum(weight * direction * confidence)
    active     = sum(weight over signals with a direction)
    confidence = |net| / active          (0 if no signal has a direction)
    action     = BUY if net > 0, SELL if net < 0, else HOLD

so confidence is the weighted conviction of the strategies that hold a view,
with opposing views cancelling.  Two vetoes turn the result into HOLD: the
secondary timeframe's own net points the other way ("timeframes disagree"),
or confidence is below ``min_confidence``.
"""

from __future__ import annotations

import logging

from hftcore_ext.lane import fuse as _fuse

from ..indicators import ema
from ..orders import Signal
from ..strategy import Context, Strategy

logger = logging.getLogger(__name__)


STRATEGY_REGISTRY: dict[str, type] = {}


def register_strategy(cls):
    """Class decorator: make a strategy class available by its ``name`` (for the
    config file and the CLI's ``--strategy``)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"strategy class {cls!r} needs a non-empty str 'name'")
    STRATEGY_REGISTRY[name] = cls
    return cls


def _clip01(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else x


@register_strategy
class EmaTrend(Strategy):
    """Trend following: BUY when EMA20 is above EMA50 by more than
    ``min_gap_atr`` ATRs, SELL when below.  Confidence grows with the gap (1.0 at
    ``full_gap_atr`` ATRs) and is halved when the slope disagrees."""

    name = "ema_trend"
    fused = True

    def __init__(self, min_gap_atr: float = 0.1, full_gap_atr: float = 1.0):
        if not 0 <= min_gap_atr < full_gap_atr:
            raise ValueError("need 0 <= min_gap_atr < full_gap_atr")
        self.min_gap_atr, self.full_gap_atr = min_gap_atr, full_gap_atr

    def on_bar(self, ctx):
        ind = ctx.ind
        fast, slow, atr = ind.get("ema20"), ind.get("ema50"), ind.get("atr")
        if fast is None or slow is None or not atr:
            return
        gap = (fast - slow) / atr
        if abs(gap) < self.min_gap_atr:
            ctx.signal("HOLD", 0.0, f"EMA gap {gap:+.2f} ATR inside {self.min_gap_atr}")
            return
        conf = _clip01(abs(gap) / self.full_gap_atr)
        slope = ind.get("slope")
        if slope is not None and slope * gap < 0:
            conf *= 0.5
        ctx.signal("BUY" if gap > 0 else "SELL", conf,
                   f"EMA20 {'above' if gap > 0 else 'below'} EMA50 by {abs(gap):.2f} ATR")


@register_strategy
class RsiReversion(Strategy):
    """Mean reversion on RSI: BUY below ``oversold``, SELL above ``overbought``;
    confidence reaches 1.0 ``span`` points past the threshold."""

    name = "rsi_reversion"
    fused = True

    def __init__(self, oversold: float = 30.0, overbought: float = 70.0, span: float = 15.0):
        if not 0 < oversold < overbought < 100 or span <= 0:
            raise ValueError("need 0 < oversold < overbought < 100 and span > 0")
        self.oversold, self.overbought, self.span = oversold, overbought, span

    def on_bar(self, ctx):
        rsi = ctx.ind.get("rsi")
        if rsi is None:
            return
        if rsi < self.oversold:
            ctx.signal("BUY", _clip01((self.oversold - rsi) / self.span),
                       f"RSI {rsi:.1f} oversold")
        elif rsi > self.overbought:
            ctx.signal("SELL", _clip01((rsi - self.overbought) / self.span),
                       f"RSI {rsi:.1f} overbought")
        else:
            ctx.signal("HOLD", 0.0, f"RSI {rsi:.1f} neutral")


@register_strategy
class VwapReversion(Strategy):
    """Reversion to VWAP: SELL when the price is more than ``band_atr`` ATRs
    above the session VWAP, BUY when as far below; full confidence at twice
    the band."""

    name = "vwap_reversion"
    fused = True

    def __init__(self, band_atr: float = 1.0):
        if not band_atr > 0:
            raise ValueError("band_atr must be > 0")
        self.band_atr = band_atr

    def on_bar(self, ctx):
        vwap, atr, ltp = ctx.ind.get("vwap"), ctx.ind.get("atr"), ctx.ltp
        if vwap is None or not atr or ltp is None:
            return
        dev = (ltp - vwap) / atr
        if abs(dev) <= self.band_atr:
            ctx.signal("HOLD", 0.0, f"price {dev:+.2f} ATR from VWAP")
            return
        conf = _clip01((abs(dev) - self.band_atr) / self.band_atr)
        ctx.signal("SELL" if dev > 0 else "BUY", conf, f"price {dev:+.2f} ATR from VWAP")


class StrategyEngineV3:
    """Runs every registered strategy on both timeframes and fuses the signals.

    Parameters
    ----------
    strategies : list, optional
        Strategy objects (default: EmaTrend, RsiReversion, VwapReversion).
    weights : dict, optional
        Strategy name -> weight (default 1.0 each).
    primary_weight, secondary_weight : float
        Timeframe weights in the fusion.
    min_confidence : float
        Fused confidence below this is HOLD.
    quantity : int
        Suggested order size in units (ExecutionService caps it).
    """

    def __init__(self, strategies=None, weights: dict | None = None,
                 primary_weight: float = 2.0, secondary_weight: float = 1.0,
                 min_confidence: float = 0.0, quantity: int = 10):
        if not (primary_weight > 0 and secondary_weight >= 0):
            raise ValueError("timeframe weights must be primary > 0, secondary >= 0")
        if not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValueError(f"quantity must be an int >= 1, got {quantity!r}")
        self.strategies: list = []
        self.weights: dict[str, float] = {}
        self.primary_weight, self.secondary_weight = primary_weight, secondary_weight
        self.min_confidence = min_confidence
        self.quantity = quantity
        for s in (strategies if strategies is not None
                  else (EmaTrend(), RsiReversion(), VwapReversion())):
            self.register(s, (weights or {}).get(getattr(s, "name", ""), 1.0))

    def register(self, strategy, weight: float = 1.0) -> None:
        """Add a strategy object (anything with ``name`` and ``evaluate``)."""
        name = getattr(strategy, "name", None)
        if not isinstance(name, str) or not name \
                or not callable(getattr(strategy, "evaluate", None)):
            raise ValueError(f"{strategy!r} is not a strategy: needs 'name' and 'evaluate'")
        if name in self.weights:
            raise ValueError(f"a strategy named {name!r} is already registered")
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.strategies.append(strategy)
        self.weights[name] = float(weight)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.strategies]

    def bind(self, session) -> None:
        """Let member strategies read the session (history, declared indicators,
        position) through their context; called by ``PaperSession``."""
        self._ctx = Context(session, trade=False)
        self._where: dict[tuple[str, str], tuple[int, int]] = {}   # (symbol, tf) -> ids

    def evaluate(self, symbol: str, bundles: dict, ltp: float | None) -> list[Signal]:
        """Signals of every strategy on every timeframe in ``bundles``
        (timeframe -> bundle).  A strategy that raises is logged and skipped."""
        out = []
        ctx = getattr(self, "_ctx", None)
        for tf, bundle in bundles.items():
            if not bundle:
                continue
            sym = tfi = -1
            if ctx is not None:
                where = self._where.get((symbol, tf))
                if where is None:
                    s_ = ctx._session
                    sym = s_.instruments.id_of(symbol) if symbol in s_.instruments else -1
                    tfi = s_.timeframe_index(tf) if sym >= 0 else -1
                    if sym >= 0:                 # ids never change once given
                        self._where[(symbol, tf)] = (sym, tfi)
                else:
                    sym, tfi = where
            for s in self.strategies:
                try:
                    if ctx is not None and sym >= 0 and isinstance(s, Strategy):
                        sig = ctx.vote(s, symbol, tf, sym, tfi, bundle, ltp)   # clipped
                    else:
                        sig = s.evaluate(symbol, tf, bundle, ltp)
                        if sig is not None:
                            sig.confidence = _clip01(float(sig.confidence))
                except Exception:
                    logger.exception("strategy %s failed on %s %s", s.name, symbol, tf)
                    continue
                if sig is not None:
                    out.append(sig)
            if ctx is not None and sym >= 0:     # once, after every member saw this bar
                ctx._point(symbol, tf, sym, tfi, bundle=bundle, ltp=ltp)
                ctx._remember()
        return out

    def fuse(self, signals: list[Signal], primary_tf: str,
             secondary_tf: str) -> tuple[str, float, str]:
        """(action, confidence, reason) by the rule in the module doc (compiled:
        ``hftcore_ext.lane.fuse``)."""
        return _fuse(signals, primary_tf, secondary_tf, self.weights, self.primary_weight,
                     self.secondary_weight, self.min_confidence)

    def size(self, symbol: str, action: str, confidence: float, ltp: float | None) -> int:
        """Suggested quantity for an intent (fixed ``quantity``; override to size by risk)."""
        return self.quantity if action in ("BUY", "SELL") else 0


@register_strategy
class EmaCross(Strategy):
    """A trading strategy: long ``quantity`` while EMA(fast) is above EMA(slow),
    short ``quantity`` while below, reversing at each cross (``target_position``,
    so a reversal sends twice the quantity).

    A position is opened only at a crossover seen after both EMAs are warm
    (``fast`` on the previous bar strictly below ``slow`` and now strictly above,
    or the reverse: backtesting.py's ``crossover``), never at warm-up.

    ``decide_on="cross"`` (the default) lets the compiled candle bank find the
    crossovers (``ema_periods`` sets its EMA slots to fast/slow), so Python runs
    only where one happens; ``"close"`` calls ``on_bar`` at every candle and
    finds them from ``ctx.prev`` -- the same trades, slower (a test holds them equal).
    """

    name = "ema_cross"

    def __init__(self, fast: int = 10, slow: int = 30, quantity: int = 10,
                 decide_on: str = "cross"):
        for key, v in (("fast", fast), ("slow", slow), ("quantity", quantity)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ema_cross: {key} must be an int >= 1, got {v!r}")
        if fast >= slow:
            raise ValueError(f"ema_cross: need fast < slow, got fast={fast} slow={slow}")
        if decide_on not in ("close", "cross"):
            raise ValueError(f"ema_cross: decide_on must be close or cross, got {decide_on!r}")
        self.fast, self.slow, self.quantity = fast, slow, quantity
        self.decide_on = decide_on
        self.ema_periods = (fast, slow)

    def indicators(self):
        # plain keys ("ema_10"), not aliases: another strategy may call its own "fast"
        return (ema(self.fast), ema(self.slow))

    def on_bar(self, ctx):
        kf, ks = f"ema_{self.fast}", f"ema_{self.slow}"
        fast, slow = ctx.ind[kf], ctx.ind[ks]
        if fast is None or slow is None:
            return
        if self.decide_on == "cross":    # the bank calls only where a warm trend flips
            up, down = fast > slow, fast < slow
        else:
            up, down = ctx.crossed_above(kf, ks), ctx.crossed_below(kf, ks)
        if up:
            ctx.target_position(self.quantity)
        elif down:
            ctx.target_position(-self.quantity)
