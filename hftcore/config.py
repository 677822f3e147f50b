"""Session configuration: strategy parameters and service limits, from YAML.

``hftcore config --example`` prints the documented example below; every key is
optional.  A bad file fails with one ``ConfigError`` naming the key: unknown
keys, duplicated keys (anywhere in the YAML), values of the wrong type (an
integer setting rejects ``2000.0``), non-finite numbers (``.inf``, ``.nan``)
anywhere, and nesting deeper than ``MAX_DEPTH`` are all errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

EXAMPLE = """\
# hftcore session configuration (every key is optional; these are the defaults)
capital: 1000000.0            # rupees
symbols: [RELIANCE, TCS, INFY, HDFCBANK, SBIN]   # demo / paper on the synthetic feed
instruments: null             # path to a Kite instruments CSV (null: the embedded NSE table)

timeframes:
  primary: 5m                 # strategies decide when a primary candle closes
  secondary: 15m              # ... and must not be contradicted by this one

strategies:                   # name -> weight and parameters (see hftcore/engines/strategy.py)
  # the three below vote in StrategyEngineV3's fusion. Trading strategies (they place
  # their own orders; several may run together, not beside voting ones): ema_cross,
  # {params: {fast: 10, slow: 30}}, or your class, "path/to/file.py:ClassName" or
  # "package.module:ClassName" as the name (docs/writing-a-strategy.md)
  ema_trend:      {weight: 1.0, params: {min_gap_atr: 0.1, full_gap_atr: 1.0}}
  rsi_reversion:  {weight: 1.0, params: {oversold: 30, overbought: 70}}
  vwap_reversion: {weight: 1.0, params: {band_atr: 1.0}}

fusion:
  primary_weight: 2.0
  secondary_weight: 1.0
  min_confidence: 0.5         # intents below this are not executed

execution:
  quantity: 10                # units per order suggested by the strategy engine
  max_position_size: 100      # units per symbol, long or short
  slippage_ticks: 0           # market orders fill this many ticks worse than the LTP
  square_off: true            # flatten intraday positions at the end
  decide_on: close            # close: every primary candle; cross: EMA crossovers only

risk:
  max_order_value: 5000000.0  # rupees; null disables
  max_orders_per_second: 10   # Kite's limit
  max_daily_loss: null        # rupees; hitting it halts trading (risk.halted)
  price_band: 0.2             # limit prices further than this from the LTP are rejected

charges: zerodha_intraday     # or "zero", or a mapping of ChargeSchedule rates

indicators:
  ema_fast: 20                # the bundle's ema20 slot
  ema_slow: 50                # the bundle's ema50 slot
"""


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type (names the key)."""


MAX_DEPTH = 16          # mapping/list levels a configuration may nest


def _strict_loader():
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML's default
    keeps the last one silently: a second ``risk:`` section would drop the first)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue                            # "<<: *defaults" may be overridden
            key = loader.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:                       # an unhashable key: PyYAML reports it
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise ConfigError(f"duplicate key '{key}' on line {line} "
                                  f"(first on line {first})")
            seen[key] = line
        return loader.construct_mapping(node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


def _check_values(value, path: str = "", depth: int = 0) -> None:
    """Every number anywhere is finite; nesting is bounded (errors name the key)."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"'{path or '<top>'}' is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"'{path}' must be a finite number, got {value!r}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_values(v, f"{path}.{k}" if path else str(k), depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_values(v, f"{path}[{i}]", depth + 1)


_STRATEGY_DEFAULTS = {"ema_trend": {"weight": 1.0}, "rsi_reversion": {"weight": 1.0},
                      "vwap_reversion": {"weight": 1.0}}


@dataclass
class Config:
    capital: float = 1_000_000.0
    symbols: list = field(default_factory=lambda: ["RELIANCE", "TCS", "INFY", "HDFCBANK", "SBIN"])
    instruments: str | None = None
    primary_tf: str = "5m"
    secondary_tf: str = "15m"
    strategies: dict = field(default_factory=lambda: {k: dict(v) for k, v in
                                                      _STRATEGY_DEFAULTS.items()})
    primary_weight: float = 2.0
    secondary_weight: float = 1.0
    min_confidence: float = 0.5
    quantity: int = 10
    max_position_size: int = 100
    slippage_ticks: int = 0
    square_off: bool = True
    decide_on: str = "close"
    max_order_value: float | None = 5_000_000.0
    max_orders_per_second: int | None = 10
    max_daily_loss: float | None = None
    price_band: float | None = 0.2
    charges: object = "zerodha_intraday"
    ema_fast: int = 20
    ema_slow: int = 50

    # ------------------------------------------------------------ loading

    @classmethod
    def from_dict(cls, data) -> "Config":
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("the configuration must be a mapping of keys to values")
        _check_values(data)
        cfg = cls()
        sections = {
            "capital": None, "symbols": None, "instruments": None,
            "timeframes": {"primary": "primary_tf", "secondary": "secondary_tf"},
            "strategies": None,
            "fusion": {"primary_weight": "primary_weight", "secondary_weight": "secondary_weight",
                       "min_confidence": "min_confidence"},
            "execution": {"quantity": "quantity", "max_position_size": "max_position_size",
                          "slippage_ticks": "slippage_ticks", "square_off": "square_off",
                          "decide_on": "decide_on"},
            "risk": {"max_order_value": "max_order_value",
                     "max_orders_per_second": "max_orders_per_second",
                     "max_daily_loss": "max_daily_loss", "price_band": "price_band"},
            "charges": None,
            "indicators": {"ema_fast": "ema_fast", "ema_slow": "ema_slow"},
        }
        for key, value in data.items():
            if key not in sections:
                raise ConfigError(f"unknown key '{key}' (known: {', '.join(sections)})")
            sub = sections[key]
            if sub is None:
                setattr(cfg, key, value)
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"'{key}' must be a mapping")
            for k, v in value.items():
                if k not in sub:
                    raise ConfigError(f"unknown key '{key}.{k}' (known: {', '.join(sub)})")
                setattr(cfg, sub[k], v)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path) -> "Config":
        """Read a YAML file (ConfigError for a missing file or bad YAML)."""
        try:
            import yaml
        except ImportError:  # pragma: no cover - pyyaml is a dependency
            raise ConfigError("reading a config file needs PyYAML (pip install pyyaml)")
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read it ({exc.strerror})") from None
        try:
            data = yaml.load(text, Loader=_strict_loader())
            return cls.from_dict(data)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {' '.join(str(exc).split())}") from None
        except RecursionError:
            raise ConfigError(f"{p}: nested more than {MAX_DEPTH} levels deep") from None
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None

    def validate(self) -> None:
        def number(name, lo=None, hi=None, optional=False, integer=False):
            v = getattr(self, name)
            if v is None and optional:
                return
            ok_type = int if integer else (int, float)
            if isinstance(v, bool) or not isinstance(v, ok_type) or (
                    isinstance(v, float) and not math.isfinite(v)):
                kind = "an integer" if integer else "a number"
                raise ConfigError(f"'{_key(name)}' must be {kind}, got {v!r}")
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ConfigError(f"'{_key(name)}' must be in [{lo}, {hi}], got {v!r}")

        number("capital", 0, 1e13)
        number("primary_weight", 0, 1e6)
        number("secondary_weight", 0, 1e6)
        number("min_confidence", 0, 1)
        number("quantity", 1, 10**9, integer=True)
        number("max_position_size", 1, 10**9, integer=True)
        number("slippage_ticks", 0, 10**6, integer=True)
        number("max_order_value", 0, 1e13, optional=True)
        number("max_orders_per_second", 1, 10**6, optional=True, integer=True)
        number("max_daily_loss", 0, 1e13, optional=True)
        number("price_band", 0, 1, optional=True)
        number("ema_fast", 1, 10**6, integer=True)
        number("ema_slow", 1, 10**6, integer=True)
        if not isinstance(self.symbols, list) or not self.symbols or \
                not all(isinstance(s, str) and s for s in self.symbols):
            raise ConfigError(f"'symbols' must be a non-empty list of symbols, "
                              f"got {self.symbols!r}")
        for name in ("primary_tf", "secondary_tf"):
            from .engines.market_data import parse_timeframe
            try:
                parse_timeframe(getattr(self, name))
            except ValueError:
                raise ConfigError(f"'{_key(name)}' is not a timeframe: {getattr(self, name)!r}")
        if not isinstance(self.square_off, bool):
            raise ConfigError("'execution.square_off' must be true or false")
        if self.decide_on not in ("close", "cross"):
            raise ConfigError(f"'execution.decide_on' must be close or cross, "
                              f"got {self.decide_on!r}")
        if self.instruments is not None and not isinstance(self.instruments, str):
            raise ConfigError("'instruments' must be a path or null")
        self._check_strategies()
        self._check_charges()

    def _check_strategies(self) -> None:
        from .plugins import is_engine, is_trading, strategy_class
        if not isinstance(self.strategies, dict) or not self.strategies:
            raise ConfigError("'strategies' must map at least one strategy name to its settings")
        classes = {name: strategy_class(name) for name in self.strategies}
        trading = [n for n, c in classes.items() if is_trading(c)]
        for name, spec in self.strategies.items():
            cls = classes[name]             # a registered name, FILE.py:Class or module:Class
            if is_engine(cls) and len(self.strategies) > 1:
                raise ConfigError(f"'strategies.{name}' is a strategy engine: select it alone "
                                  f"(selected: {', '.join(self.strategies)})")
            if trading and name not in trading:
                raise ConfigError(f"'strategies.{name}' votes in StrategyEngineV3's fusion and "
                                  f"cannot run beside the trading strategies "
                                  f"{', '.join(trading)}")
            spec = {} if spec is None else spec
            if not isinstance(spec, dict) or set(spec) - {"weight", "params"}:
                raise ConfigError(f"'strategies.{name}' takes only 'weight' and 'params'")
            w = spec.get("weight", 1.0)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) \
                    or not 0 <= w <= 1e6:
                raise ConfigError(f"'strategies.{name}.weight' must be a number in [0, 1e6], "
                                  f"got {w!r}")
            params = spec.get("params", {}) or {}
            if not isinstance(params, dict):
                raise ConfigError(f"'strategies.{name}.params' must be a mapping")
            for pname, value in params.items():
                _check_param_type(cls, name, pname, value)
            try:
                self._build_strategy(cls, params)
            except TypeError as exc:
                raise ConfigError(f"'strategies.{name}.params': {exc}") from None
            except ValueError as exc:
                raise ConfigError(f"'strategies.{name}.params': {exc}") from None

    def _build_strategy(self, cls, params: dict):
        """An instance of a strategy (engine) class; an engine that takes a ``quantity``
        gets ``execution.quantity`` unless its params set one."""
        import inspect

        from .plugins import is_engine, is_trading
        kwargs = dict(params)
        if (is_engine(cls) or is_trading(cls)) and "quantity" not in kwargs and \
                "quantity" in inspect.signature(cls.__init__).parameters:
            kwargs["quantity"] = self.quantity
        return cls(**kwargs)

    def _check_charges(self) -> None:
        from .engines.charges import ChargeSchedule
        c = self.charges
        if c in ("zerodha_intraday", "zero"):
            return
        if not isinstance(c, dict):
            raise ConfigError("'charges' must be zerodha_intraday, zero, or a mapping of rates")
        kinds = {f.name: f.type for f in fields(ChargeSchedule)}
        for k, v in c.items():
            if k not in kinds:
                raise ConfigError(f"unknown key 'charges.{k}' (known: {', '.join(sorted(kinds))})")
            # ChargeSchedule itself only checks v >= 0 (charges.py is not ours to change):
            # paise caps are exact ints; rates are finite fractions of turnover
            if kinds[k] in (int, "int"):
                if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10**9:
                    raise ConfigError(f"'charges.{k}' must be an integer in [0, 1000000000] "
                                      f"(paise), got {v!r}")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) \
                    or not math.isfinite(v) or not 0 <= v <= 1:
                raise ConfigError(f"'charges.{k}' must be a rate in [0, 1], got {v!r}")
        try:
            ChargeSchedule(**c)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"'charges': {exc}") from None

    # ------------------------------------------------------------ building

    def strategy_engine(self):
        """What the session runs: the selected trading strategy (``ema_cross``, a
        plug-in ``Strategy``) or a list of them, a selected engine alone, else
        ``StrategyEngineV3`` over the selected voting strategies."""
        from .engines.strategy import StrategyEngineV3
        from .plugins import is_engine, is_trading, strategy_class
        strategies, weights = [], {}
        for name, spec in self.strategies.items():
            spec = spec or {}
            cls = strategy_class(name)
            obj = self._build_strategy(cls, spec.get("params") or {})
            if is_engine(cls):
                return obj
            strategies.append(obj)
            weights[obj.name] = float(spec.get("weight", 1.0))
        if is_trading(strategies[0]):        # trading strategies: run by the session itself
            return strategies[0] if len(strategies) == 1 else strategies
        return StrategyEngineV3(strategies, weights, self.primary_weight, self.secondary_weight,
                                0.0, self.quantity)

    def charge_schedule(self):
        from .engines.charges import ZERO_CHARGES, ChargeSchedule
        if self.charges == "zero":
            return ZERO_CHARGES
        if self.charges == "zerodha_intraday":
            return ChargeSchedule()
        return ChargeSchedule(**self.charges)

    def risk_limits(self):
        from .services import RiskLimits
        return RiskLimits(self.max_order_value, self.max_orders_per_second, self.max_daily_loss,
                          self.price_band)

    def session_kwargs(self) -> dict:
        """Keyword arguments for ``PaperSession``."""
        engine = self.strategy_engine()
        # an engine that fixes its EMA periods (EmaCross: fast, slow) sets the bundle's slots
        fast, slow = getattr(engine, "ema_periods", (self.ema_fast, self.ema_slow))
        return dict(capital=float(self.capital), primary_tf=self.primary_tf,
                    secondary_tf=self.secondary_tf, strategy_engine=engine,
                    min_confidence=self.min_confidence, max_position_size=self.max_position_size,
                    square_off=self.square_off, charges=self.charge_schedule(),
                    slippage_ticks=self.slippage_ticks, risk=self.risk_limits(),
                    decide_on=self.decide_on, ema_fast=fast, ema_slow=slow)


def _check_param_type(cls, strategy: str, pname: str, value) -> None:
    """A YAML parameter against the constructor's annotation (or default's type), as
    ``--param`` is checked: ConfigError naming the strategy and the parameter."""
    from .plugins import _param_type
    where = f"'strategies.{strategy}.params.{pname}'"
    try:
        kind = _param_type(cls, str(pname))
    except KeyError:
        raise ConfigError(f"{where}: {cls.__name__} has no parameter {pname!r}") from None
    except (TypeError, ValueError):
        return                              # no signature to read: the constructor decides
    if kind is None:
        return
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
          else isinstance(value, str))
    if not ok:
        raise ConfigError(f"{where} must be {'an' if kind is int else 'a'} "
                          f"{kind.__name__}, got {value!r}")


def _key(attr: str) -> str:
    return {"primary_tf": "timeframes.primary", "secondary_tf": "timeframes.secondary",
            "primary_weight": "fusion.primary_weight",
            "secondary_weight": "fusion.secondary_weight",
            "min_confidence": "fusion.min_confidence", "quantity": "execution.quantity",
            "max_position_size": "execution.max_position_size",
            "slippage_ticks": "execution.slippage_ticks", "max_order_value": "risk.max_order_value",
            "max_orders_per_second": "risk.max_orders_per_second",
            "max_daily_loss": "risk.max_daily_loss", "price_band": "risk.price_band",
            "ema_fast": "indicators.ema_fast", "ema_slow": "indicators.ema_slow"}.get(attr, attr)
