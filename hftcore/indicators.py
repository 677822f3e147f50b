"""Indicator registry and declaration helpers.

``REGISTRY`` is the one table of the indicators a strategy can declare: name ->
``IndicatorDef`` (the compiled class, its parameters with defaults, the candle
fields it reads, its outputs).  Adding an indicator means one kernel (plus its
case in the dispatch) in ``hftcore_ext/indicators.pxd``, one class in
``indicators.pyx`` and one entry here.

A strategy declares what it needs with the helpers::

    from hftcore.indicators import ema, sma, rsi, bbands, macd
    NEEDS = (ema(10), sma(50), rsi(14), bbands(20, 2), macd(12, 26, 9))

Each returns an ``IndicatorSpec``: hashable, with a stable ``key`` built from the
name and every parameter in order (ints as ints, floats with a decimal point):
``ema(10).key == "ema_10"``, ``bbands(20, 2).key == "bbands_20_2.0_2.0"``,
``macd().key == "macd_12_26_9"``, ``obv().key == "obv"``.  ``as_="fast"`` replaces the
key with a name of your choosing.  Output names: the key for a one-output indicator,
``key.output`` otherwise (``"bbands_20_2.0_2.0.upper"``, ``"macd_12_26_9.hist"``).

``CandleBank.declare(specs)`` computes exactly the declared specs on every closed
candle, and ``bank.indicators(sym, tf)`` reads them back under these names.
``spec.make()`` gives a fresh compiled instance for per-value use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from hftcore_ext import indicators as _ext

INT, FLOAT = int, float


@dataclass(frozen=True)
class IndicatorDef:
    """One registry entry."""

    name: str                                   # lower-case name used in keys and YAML
    cls: type                                   # the compiled class
    params: tuple[tuple[str, type, object], ...]  # (name, int|float, default) in TA-Lib order
    inputs: tuple[str, ...]                     # candle fields fed to update(), in order
    outputs: tuple[str, ...]                    # output names, TA-Lib order

    @property
    def kind(self) -> int:
        return int(getattr(self.cls, "kind"))


REGISTRY: dict[str, IndicatorDef] = {d.name: d for d in (
    IndicatorDef("ema", _ext.EMA, (("period", INT, 20),), ("close",), ("value",)),
    IndicatorDef("rsi", _ext.RSI, (("period", INT, 14),), ("close",), ("value",)),
    IndicatorDef("atr", _ext.ATR, (("period", INT, 14),), ("high", "low", "close"), ("value",)),
    IndicatorDef("slope", _ext.Slope, (("period", INT, 20),), ("close",), ("value",)),
    IndicatorDef("sma", _ext.SMA, (("period", INT, 30),), ("close",), ("value",)),
    IndicatorDef("wma", _ext.WMA, (("period", INT, 30),), ("close",), ("value",)),
    IndicatorDef("stddev", _ext.STDDEV, (("period", INT, 5), ("nbdev", FLOAT, 1.0)),
                 ("close",), ("value",)),
    IndicatorDef("bbands", _ext.BBANDS, (("period", INT, 20), ("nbdevup", FLOAT, 2.0),
                                         ("nbdevdn", FLOAT, 2.0)),
                 ("close",), ("upper", "middle", "lower")),
    IndicatorDef("macd", _ext.MACD, (("fast", INT, 12), ("slow", INT, 26), ("signal", INT, 9)),
                 ("close",), ("macd", "signal", "hist")),
    IndicatorDef("stoch", _ext.STOCH, (("fastk", INT, 14), ("slowk", INT, 3), ("slowd", INT, 3)),
                 ("high", "low", "close"), ("slowk", "slowd")),
    IndicatorDef("adx", _ext.ADX, (("period", INT, 14),), ("high", "low", "close"), ("value",)),
    IndicatorDef("plus_di", _ext.PLUS_DI, (("period", INT, 14),), ("high", "low", "close"),
                 ("value",)),
    IndicatorDef("minus_di", _ext.MINUS_DI, (("period", INT, 14),), ("high", "low", "close"),
                 ("value",)),
    IndicatorDef("obv", _ext.OBV, (), ("close", "volume"), ("value",)),
    IndicatorDef("supertrend", _ext.SUPERTREND, (("period", INT, 10), ("multiplier", FLOAT, 3.0)),
                 ("high", "low", "close"), ("supertrend", "direction")),
    IndicatorDef("donchian", _ext.DONCHIAN, (("period", INT, 20),), ("high", "low"),
                 ("upper", "middle", "lower")),
)}


def _fmt(v) -> str:
    return str(v) if isinstance(v, int) else repr(float(v))


@dataclass(frozen=True)
class IndicatorSpec:
    """A declared indicator: registry name + full parameter tuple (+ optional alias)."""

    name: str
    params: tuple
    alias: str | None = field(default=None)

    @property
    def definition(self) -> IndicatorDef:
        return REGISTRY[self.name]

    @property
    def key(self) -> str:
        if self.alias:
            return self.alias
        return "_".join([self.name, *(_fmt(p) for p in self.params)])

    @property
    def kind(self) -> int:
        return self.definition.kind

    @property
    def kernel_params(self) -> tuple[float, ...]:
        return tuple(float(p) for p in self.params)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.definition.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.definition.outputs

    @property
    def output_names(self) -> tuple[str, ...]:
        outs = self.definition.outputs
        return (self.key,) if len(outs) == 1 else tuple(f"{self.key}.{o}" for o in outs)

    def make(self):
        """A fresh compiled indicator with these parameters."""
        return self.definition.cls(*self.params)

    def __str__(self) -> str:
        return self.key


def spec(name: str, *args, as_: str | None = None, **kwargs) -> IndicatorSpec:
    """Declare registry indicator ``name`` with TA-Lib-ordered parameters.

    Missing parameters take the registry defaults; ints must be ints, floats may be
    given as ints.  Raises ValueError for an unknown name or a bad parameter (the
    compiled class checks ranges)."""
    d = REGISTRY.get(str(name).lower())
    if d is None:
        raise ValueError(f"unknown indicator {name!r}; known: {', '.join(sorted(REGISTRY))}")
    names = [p[0] for p in d.params]
    if len(args) > len(names):
        raise ValueError(f"{d.name} takes at most {len(names)} parameters ({', '.join(names)}), "
                         f"got {len(args)}")
    bad = set(kwargs) - set(names)
    if bad:
        raise ValueError(f"{d.name} has no parameter {min(bad)!r}; it takes {names}")
    given = dict(zip(names, args))
    for k, v in kwargs.items():
        if k in given:
            raise ValueError(f"{d.name}: parameter {k!r} given twice")
        given[k] = v
    values = []
    for pname, ptype, default in d.params:
        v = given.get(pname, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                (ptype is int and not isinstance(v, int)) or \
                (isinstance(v, float) and not math.isfinite(v)):
            kind = 'an int' if ptype is int else 'a number'
            raise ValueError(f"{d.name}: {pname} must be {kind}, "
                             f"got {v!r}")
        values.append(int(v) if ptype is int else float(v))
    if as_ is not None and (not isinstance(as_, str) or not re.fullmatch(r"[A-Za-z_][\w]*", as_)):
        raise ValueError(f"alias must be an identifier, got {as_!r}")
    out = IndicatorSpec(d.name, tuple(values), as_)
    out.make()                                   # range checks live in the compiled class
    return out


def parse(text: str) -> IndicatorSpec:
    """A spec from text, for configuration files: ``"sma(50)"``, ``"bbands(20, 2)"``,
    ``"macd"`` or a key ``"bbands_20_2.0_2.0"``."""
    t = str(text).strip()
    m = re.fullmatch(r"([A-Za-z_]+)\s*\((.*)\)", t)
    if m:
        name, body = m.group(1), m.group(2).strip()
        parts = [p.strip() for p in body.split(",")] if body else []
    else:
        name = next((n for n in sorted(REGISTRY, key=len, reverse=True)
                     if t.lower() == n or t.lower().startswith(n + "_")), None)
        if name is None:
            raise ValueError(f"cannot read indicator {text!r}; write e.g. 'sma(50)'")
        parts = [p for p in t[len(name) + 1:].split("_") if p] if len(t) > len(name) else []
    args: list[int | float] = []
    for p in parts:
        try:
            args.append(int(p))
        except ValueError:
            try:
                args.append(float(p))
            except ValueError:
                raise ValueError(f"indicator {text!r}: {p!r} is not a number") from None
    d = REGISTRY.get(name.lower())
    if d is not None:    # "bbands(20, 2)": an int where a float is wanted is fine
        args = [float(a) if i < len(d.params) and d.params[i][1] is float else a
                for i, a in enumerate(args)]
    return spec(name, *args)


# ---------------------------------------------------------------- helpers (one per entry)

def ema(period: int = 20, *, as_: str | None = None) -> IndicatorSpec:
    return spec("ema", period, as_=as_)


def rsi(period: int = 14, *, as_: str | None = None) -> IndicatorSpec:
    return spec("rsi", period, as_=as_)


def atr(period: int = 14, *, as_: str | None = None) -> IndicatorSpec:
    return spec("atr", period, as_=as_)


def slope(period: int = 20, *, as_: str | None = None) -> IndicatorSpec:
    return spec("slope", period, as_=as_)


def sma(period: int = 30, *, as_: str | None = None) -> IndicatorSpec:
    return spec("sma", period, as_=as_)


def wma(period: int = 30, *, as_: str | None = None) -> IndicatorSpec:
    return spec("wma", period, as_=as_)


def stddev(period: int = 5, nbdev: float = 1.0, *, as_: str | None = None) -> IndicatorSpec:
    return spec("stddev", period, nbdev, as_=as_)


def bbands(period: int = 20, nbdevup: float = 2.0, nbdevdn: float | None = None, *,
           as_: str | None = None) -> IndicatorSpec:
    """Bollinger bands; ``nbdevdn`` defaults to ``nbdevup`` (``bbands(20, 2)``)."""
    return spec("bbands", period, nbdevup, nbdevup if nbdevdn is None else nbdevdn, as_=as_)


def macd(fast: int = 12, slow: int = 26, signal: int = 9, *,
         as_: str | None = None) -> IndicatorSpec:
    return spec("macd", fast, slow, signal, as_=as_)


def stoch(fastk: int = 14, slowk: int = 3, slowd: int = 3, *,
          as_: str | None = None) -> IndicatorSpec:
    return spec("stoch", fastk, slowk, slowd, as_=as_)


def adx(period: int = 14, *, as_: str | None = None) -> IndicatorSpec:
    return spec("adx", period, as_=as_)


def plus_di(period: int = 14, *, as_: str | None = None) -> IndicatorSpec:
    return spec("plus_di", period, as_=as_)


def minus_di(period: int = 14, *, as_: str | None = None) -> IndicatorSpec:
    return spec("minus_di", period, as_=as_)


def obv(*, as_: str | None = None) -> IndicatorSpec:
    return spec("obv", as_=as_)


def supertrend(period: int = 10, multiplier: float = 3.0, *,
               as_: str | None = None) -> IndicatorSpec:
    return spec("supertrend", period, multiplier, as_=as_)


def donchian(period: int = 20, *, as_: str | None = None) -> IndicatorSpec:
    return spec("donchian", period, as_=as_)


__all__ = [
    "REGISTRY",
    "IndicatorDef",
    "IndicatorSpec",
    "adx",
    "atr",
    "bbands",
    "donchian",
    "ema",
    "macd",
    "minus_di",
    "obv",
    "parse",
    "plus_di",
    "rsi",
    "slope",
    "sma",
    "spec",
    "stddev",
    "stoch",
    "supertrend",
    "wma",
]
