"""User strategies: ``--strategy FILE.py:Class`` / ``package.module:Class``, and
``--param NAME=VALUE`` typed by the strategy's constructor.

A strategy reference is a registered name (``ema_trend``, ``ema_cross``, ...) or
``path/to/file.py:ClassName`` or ``package.module:ClassName``.  The class is

* a *trading strategy*: an ``hftcore.Strategy`` with ``on_bar(ctx)`` that places
  orders (like ``EmaCross``); several may run together, never mixed with voting ones;
* a *voting strategy*: ``fused = True`` (or the older ``evaluate(symbol,
  timeframe, bundle, ltp)``), like ``EmaTrend``; the selected ones run inside
  ``StrategyEngineV3``, whose fusion decides; or
* a *strategy engine*: ``evaluate(symbol, bundles, ltp)`` and
  ``fuse(signals, primary_tf, secondary_tf)``; it must be the only one selected.

Every problem is a ``ConfigError`` of one line naming the reference.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from .config import ConfigError

_LOADED: dict[str, type] = {}


def is_plugin_ref(ref: str) -> bool:
    return isinstance(ref, str) and ":" in ref


def strategy_class(ref: str) -> type:
    """The class a strategy reference names (ConfigError if it names none)."""
    from .engines.strategy import STRATEGY_REGISTRY
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"a strategy must be a name or FILE.py:Class, got {ref!r}")
    if ref in STRATEGY_REGISTRY:
        return STRATEGY_REGISTRY[ref]
    if not is_plugin_ref(ref):
        raise ConfigError(f"unknown strategy '{ref}' (known: {', '.join(sorted(STRATEGY_REGISTRY))}"
                          f"; or FILE.py:Class, package.module:Class)")
    if ref in _LOADED:
        return _LOADED[ref]
    where, _, cls_name = ref.rpartition(":")
    if not where or not cls_name.isidentifier():
        raise ConfigError(f"strategy {ref!r}: write FILE.py:ClassName or package.module:ClassName")
    if where.endswith(".py") or "/" in where or "\\" in where:
        module = _load_file(ref, Path(where))
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ConfigError(f"strategy {ref!r}: cannot import {where} ({exc})") from None
        except Exception as exc:
            raise ConfigError(f"strategy {ref!r}: importing {where} failed: "
                              f"{type(exc).__name__}: {exc}") from None
    cls = getattr(module, cls_name, None)
    if not inspect.isclass(cls):
        raise ConfigError(f"strategy {ref!r}: {where} has no class {cls_name}")
    from .strategy import Strategy
    if issubclass(cls, Strategy) and cls.on_bar is Strategy.on_bar \
            and cls.evaluate is Strategy.evaluate:
        raise ConfigError(f"strategy {ref!r}: {cls_name} does not define on_bar(ctx)")
    if not is_engine(cls):
        if not callable(getattr(cls, "on_bar", None)) and \
                not callable(getattr(cls, "evaluate", None)):
            raise ConfigError(f"strategy {ref!r}: {cls_name} has no on_bar(ctx) method "
                              f"(subclass hftcore.Strategy)")
        if not isinstance(getattr(cls, "name", None), str) or not getattr(cls, "name"):
            raise ConfigError(f"strategy {ref!r}: {cls_name} needs a non-empty str class "
                              f"attribute 'name'")
    _LOADED[ref] = cls
    return cls


def _load_file(ref: str, path: Path):
    if not path.is_file():
        raise ConfigError(f"strategy {ref!r}: file not found: {path}")
    # one module per file, named after its resolved path (stable across calls)
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    mod_name = f"hftcore_plugin_{path.stem}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"strategy {ref!r}: {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[mod_name]
        raise ConfigError(f"strategy {ref!r}: loading {path} failed: "
                          f"{type(exc).__name__}: {exc}") from None
    return module


def is_trading(cls) -> bool:
    """A trading strategy class (``on_bar``, not a fusion member, not an engine)."""
    from .strategy import is_trading_strategy
    return is_trading_strategy(cls)


def is_engine(cls) -> bool:
    """A strategy engine (``evaluate`` over all timeframes + ``fuse``), not a strategy."""
    return callable(getattr(cls, "fuse", None)) and callable(getattr(cls, "evaluate", None))


def _param_type(cls, name: str):
    """The type a constructor parameter takes: its annotation, else its default's type
    (None: anything; KeyError: no such parameter)."""
    sig = inspect.signature(cls.__init__)
    p = sig.parameters.get(name)
    if p is None or name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
        raise KeyError(name)
    ann = p.annotation
    if isinstance(ann, str):                       # from __future__ import annotations
        try:
            hints = inspect.get_annotations(cls.__init__, eval_str=True)
            ann = hints.get(name, inspect.Parameter.empty)
        except Exception:
            ann = {"int": int, "float": float, "bool": bool, "str": str}.get(
                ann, inspect.Parameter.empty)
    if ann in (int, float, bool, str):
        return ann
    if p.default is not inspect.Parameter.empty and p.default is not None \
            and type(p.default) in (int, float, bool, str):
        return type(p.default)
    return None


def parse_value(text: str, kind):
    """``text`` as ``kind`` (int, float, bool, str, or None: int, float, else str)."""
    t = text.strip()
    if kind is bool:
        if t.lower() in ("true", "1", "yes"):
            return True
        if t.lower() in ("false", "0", "no"):
            return False
        raise ValueError("true or false")
    if kind is int:
        try:
            return int(t)
        except ValueError:
            raise ValueError("an integer") from None
    if kind is float:
        try:
            v = float(t)
        except ValueError:
            raise ValueError("a number") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("a finite number")
        return v
    if kind is str:
        return text
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return text


def apply_cli_params(strategies: dict, params: list[str]) -> dict:
    """``strategies`` (the config's mapping) with ``--param`` values merged into
    ``params``.  ``NAME=VALUE`` goes to the one selected strategy that takes NAME;
    ``STRATEGY.NAME=VALUE`` to that strategy.  ConfigError names the parameter."""
    out = {k: dict(v or {}) for k, v in strategies.items()}
    for item in params:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"--param {item!r}: write NAME=VALUE")
        strat, dot, name = key.rpartition(".")
        # a plug-in reference may contain dots (file.py:Class): match selected names first
        by_name = [s for s in out if dot and getattr(strategy_class(s), "name", None) == strat]
        if dot and strat in out:
            targets = [strat]
        elif len(by_name) == 1:                  # the strategy's name: sma_cross.fast=5
            targets = by_name
        elif dot:
            raise ConfigError(f"--param {key}: strategy {strat!r} is not selected "
                              f"(selected: {', '.join(out)})")
        else:
            name = key
            targets = [s for s in out if _takes(strategy_class(s), name)]
            if not targets:
                raise ConfigError(f"--param {key}: no selected strategy takes a parameter "
                                  f"{key!r} (selected: {', '.join(out)})")
            if len(targets) > 1:
                raise ConfigError(f"--param {key} is ambiguous: write STRATEGY.{key}, one of "
                                  f"{', '.join(targets)}")
        target = targets[0]
        cls = strategy_class(target)
        try:
            kind = _param_type(cls, name)
        except KeyError:
            raise ConfigError(f"--param {key}: {target} has no parameter {name!r}") from None
        try:
            value = parse_value(text, kind)
        except ValueError as exc:
            raise ConfigError(f"--param {key}={text}: {target}.{name} must be {exc}") from None
        spec = out[target]
        spec["params"] = {**(spec.get("params") or {}), name: value}
    return out


def _takes(cls, name: str) -> bool:
    try:
        _param_type(cls, name)
    except (KeyError, TypeError, ValueError):
        return False
    return True
