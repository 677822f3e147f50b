"""Parameter sweeps and walk-forward analysis, on Dask distributed.

``hftcore optimize`` runs one full backtest per parameter set -- the same session
and statistics as ``hftcore backtest`` (:func:`hftcore.cli.run_backtest`) -- and
writes one row per set to ``DIR/results.csv``: its parameters and the report's
statistics (:data:`RESULT_COLUMNS`), sorted by the parameters, so the same inputs
give the same file whatever the number of workers.

Parameters (``--grid NAME=VALUES``) name strategy or configuration settings:

* ``fast`` -- the parameter ``fast`` of the single selected strategy (with several
  strategies: of the one strategy that takes a parameter of that name);
* ``ema_trend.min_gap_atr`` -- a parameter of one strategy of the multi-strategy engine;
* ``indicators.ema_fast``, ``execution.quantity``, ... -- a configuration key
  (``hftcore config --example``).

VALUES is a list ``5,10,20`` or an inclusive range ``START:STOP:STEP`` (``5:50:5``
is 5, 10, ..., 50).  Constraints (``--constraint "fast < slow"``) are comparisons of
parameters and numbers with ``+ - * /``, ``and``, ``or``, ``not`` and parentheses,
parsed with :mod:`ast` and evaluated by walking the tree (never ``eval``).

Execution: in this process for one worker; otherwise on a Dask cluster -- a
``LocalCluster`` of ``workers`` single-threaded processes, or an existing
scheduler (``--scheduler tcp://HOST:PORT``).  The data is scattered once to every
worker (``broadcast=True``), tasks carry only their parameters, results stream back
as they finish, and a task whose worker dies is run again elsewhere (``retries``
plus the scheduler's reassignment of a lost worker's tasks).
"""

from __future__ import annotations

import argparse
import ast
import copy
import itertools
import math
import operator
import re
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from .config import Config, ConfigError
from .report import STAT_KEYS, stat_number

#: The statistics in every results row (after the parameters).  No wall-clock
#: columns: the table depends on the inputs only.
TOTAL_KEYS = ["trades", "fills", "realized_pnl", "unrealized_pnl", "charges", "net_pnl",
              "final_equity", "max_drawdown", "max_drawdown_pct", "max_exposure", "orders",
              "rejected", "ticks", "decisions"]
RESULT_COLUMNS = STAT_KEYS + TOTAL_KEYS
MAX_GRID = 2_000_000
IST_OFFSET_NS = 19_800 * 10**9
DAY_NS = 86_400 * 10**9


class SweepError(ValueError):
    """A bad sweep specification (grid, constraint, parameter name, statistic)."""


# ---------------------------------------------------------------- grid

def _number(text: str):
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        v = float(t)
    except ValueError:
        raise SweepError(f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise SweepError(f"not a finite number: {text!r}")
    return v


def parse_values(text: str) -> list:
    """``5,10,20`` -> [5, 10, 20]; ``5:50:5`` -> [5, 10, ..., 50] (inclusive);
    ``0.1:0.5:0.1`` -> [0.1, 0.2, 0.3, 0.4, 0.5]."""
    text = text.strip()
    if not text:
        raise SweepError("no values")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise SweepError(f"a range is START:STOP:STEP, got {text!r}")
        a, b, step = (_number(p) for p in parts)
        if step <= 0 or b < a:
            raise SweepError(f"range {text!r} needs STEP > 0 and STOP >= START")
        count = math.floor((b - a) / step + 1e-9) + 1
        if count > MAX_GRID:
            raise SweepError(f"range {text!r} has {count:,} values")
        if all(isinstance(v, int) for v in (a, b, step)):
            return [a + i * step for i in range(count)]
        return [round(a + i * step, 10) for i in range(count)]
    values = [_number(p) for p in text.split(",")]
    if len(set(values)) != len(values):
        raise SweepError(f"repeated values in {text!r}")
    return values


def parse_grid(specs: list[str]) -> dict[str, list]:
    """``["fast=5,10", "slow=30:50:10"]`` -> ``{"fast": [5, 10], "slow": [30, 40, 50]}``."""
    grid: dict[str, list] = {}
    for spec in specs or []:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SweepError(f"--grid takes NAME=VALUES, got {spec!r}")
        if name in grid:
            raise SweepError(f"parameter {name!r} given twice")
        grid[name] = parse_values(values)
    if not grid:
        raise SweepError("no parameters to sweep (--grid NAME=VALUES)")
    return grid


# ---------------------------------------------------------------- constraints

_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.Eq: operator.eq, ast.NotEq: operator.ne}
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


class Constraint:
    """A condition on a parameter set, e.g. ``fast < slow`` or
    ``slow - fast >= 10 and fast * 2 <= slow``.  Names must be swept parameters
    (dotted names as written in ``--grid``); only comparisons, ``+ - * /``, unary
    minus, ``and``/``or``/``not``, numbers and parentheses are allowed."""

    def __init__(self, text: str, names):
        self.text = text
        self._names = {n: f"_p{i}" for i, n in enumerate(sorted(names, key=len, reverse=True))}
        src = text
        for n, alias in self._names.items():        # dotted names -> identifiers
            src = re.sub(rf"(?<![\w.]){re.escape(n)}(?![\w.])", alias, src)
        try:
            tree = ast.parse(src, mode="eval")
        except SyntaxError:
            raise SweepError(f"constraint {text!r} is not a comparison") from None
        self._aliases = {v: k for k, v in self._names.items()}
        self._check(tree.body)
        self._tree = tree.body

    def _check(self, node) -> None:
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            self._check(node.operand)
        elif isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
            for v in (node.left, *node.comparators):
                self._check(v)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.Name):
            if node.id not in self._aliases:
                raise SweepError(f"constraint {self.text!r}: unknown parameter {node.id!r} "
                                 f"(swept: {', '.join(sorted(self._names))})")
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            pass
        else:
            raise SweepError(f"constraint {self.text!r}: only comparisons of parameters and "
                             f"numbers (+ - * /, and, or, not) are allowed")

    def _eval(self, node, params):
        if isinstance(node, ast.BoolOp):
            vals = (self._eval(v, params) for v in node.values)
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, params)
            return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub)
                                                               else +v)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, params)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, params)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BinOp):
            right = self._eval(node.right, params)
            if isinstance(node.op, ast.Div) and right == 0:
                return math.nan
            return _BIN[type(node.op)](self._eval(node.left, params), right)
        if isinstance(node, ast.Name):
            return params[self._aliases[node.id]]
        return node.value

    def __call__(self, params: dict) -> bool:
        return bool(self._eval(self._tree, params))


# ---------------------------------------------------------------- parameter sets

def param_sets(grid: dict[str, list], constraints=(), random: int | None = None,
               seed: int = 0) -> list[dict]:
    """Every combination of the grid that meets the constraints, sorted by the
    parameters (in grid order); with ``random`` a sample of that many, drawn with
    ``numpy.random.default_rng(seed)`` (the same seed, the same sample)."""
    names = list(grid)
    total = math.prod(len(v) for v in grid.values())
    if total > MAX_GRID:
        raise SweepError(f"the grid has {total:,} combinations (at most {MAX_GRID:,})")
    checks = [c if isinstance(c, Constraint) else Constraint(c, names) for c in constraints]
    sets = []
    for combo in itertools.product(*(sorted(grid[n]) for n in names)):
        p = dict(zip(names, combo))
        if all(c(p) for c in checks):
            sets.append(p)
    if random is not None:
        if random < 1:
            raise SweepError("--random needs N >= 1")
        if random < len(sets):
            pick = np.random.default_rng(seed).choice(len(sets), size=random, replace=False)
            sets = [sets[i] for i in sorted(pick.tolist())]
    if not sets:
        raise SweepError("no parameter set meets the constraints")
    return sets


def _config_keys() -> dict[str, str]:
    """Dotted configuration keys -> Config attribute (``indicators.ema_fast`` -> ema_fast)."""
    from dataclasses import fields

    from .config import _key
    out = {}
    for f in fields(Config):
        dotted = _key(f.name)
        if "." in dotted:
            out[dotted] = f.name
    return out


def _accepts(cls, name: str) -> bool:
    import inspect
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return False
    return name in sig.parameters and name != "self"


def resolve_names(cfg: Config, names) -> dict[str, tuple]:
    """Where each swept name goes: ``("strategy", name, param)`` or ``("config", attr)``.
    Raises SweepError for a name that maps to nothing or to several strategies."""
    from .plugins import strategy_class
    config_keys = _config_keys()
    out: dict[str, tuple] = {}
    for n in names:
        if n in config_keys:
            out[n] = ("config", config_keys[n])
            continue
        strat, dot, param = n.rpartition(".")
        if dot:
            if strat not in cfg.strategies:
                raise SweepError(f"parameter {n!r}: strategy {strat!r} is not selected "
                                 f"(selected: {', '.join(cfg.strategies)})")
            if not _accepts(strategy_class(strat), param):
                raise SweepError(f"parameter {n!r}: {strat} has no parameter {param!r}")
            out[n] = ("strategy", strat, param)
            continue
        takers = [s for s in cfg.strategies if _accepts(strategy_class(s), n)]
        if len(cfg.strategies) == 1 and not takers:
            only = next(iter(cfg.strategies))
            raise SweepError(f"parameter {n!r}: strategy {only} has no parameter {n!r}")
        if len(takers) != 1:
            raise SweepError(f"parameter {n!r} is " + (
                "ambiguous: write STRATEGY.PARAM, one of " + ", ".join(f"{s}.{n}" for s in takers)
                if takers else "neither a parameter of the selected strategies nor a config key"))
        out[n] = ("strategy", takers[0], n)
    return out


def apply_params(cfg: Config, params: dict, where: dict | None = None) -> Config:
    """A copy of ``cfg`` with the parameter set applied and validated (ConfigError if
    the strategy rejects the combination)."""
    where = where or resolve_names(cfg, params)
    out = copy.deepcopy(cfg)
    for name, value in params.items():
        w = where[name]
        if w[0] == "config":
            setattr(out, w[1], value)
        else:
            spec = dict(out.strategies.get(w[1]) or {})
            spec["params"] = {**(spec.get("params") or {}), w[2]: value}
            out.strategies[w[1]] = spec
    out.validate()
    return out


# ---------------------------------------------------------------- running

def slice_data(data, t0: int | None, t1: int | None):
    """Rows with ``t0 <= ts_ns < t1`` of a Ticks/Bars tuple."""
    lo = 0 if t0 is None else int(np.searchsorted(data.ts_ns, t0, "left"))
    hi = len(data.ts_ns) if t1 is None else int(np.searchsorted(data.ts_ns, t1, "left"))
    return type(data)(*(f[lo:hi] if isinstance(f, np.ndarray) else f for f in data))


def run_one(payload, params: dict, span=None) -> dict:
    """One backtest of a parameter set (on a worker): the results row."""
    from .cli import run_backtest
    from .feeds import ArrayFeed
    args_dict, cfg, where, data, instruments = payload
    args = argparse.Namespace(**args_dict)
    if data is None:                       # --shared-data: read once per worker process
        data, instruments = _shared_data(args, cfg)
    run_cfg = apply_params(cfg, params, where)
    d = data if span is None else slice_data(data, *span)
    m = run_backtest(args, cfg=run_cfg, feed=ArrayFeed(d, instruments))
    return {k: m.get(k) for k in RESULT_COLUMNS}


def _bar(done: int, total: int, started: float, label: str = "runs") -> None:
    if sys.stderr.isatty():
        width = 40
        filled = int(width * done / max(total, 1))
        rate = done / max(time.monotonic() - started, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label} "
                         f"({rate:.1f}/s)")
        if done >= total:
            sys.stderr.write("\n")
    elif done == total or done * 4 // total != (done - 1) * 4 // total:
        sys.stderr.write(f"{done}/{total} {label}\n")
    sys.stderr.flush()


_SHARED: dict = {}


def _shared_data(args, cfg: Config):
    """The data at ``args.data`` as this process loaded it (cached per path, symbols
    and file sizes/mtimes, so each worker reads a shared file once)."""
    from .cli import _instruments, load_feed
    p = Path(args.data)
    files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    key = (str(p.resolve()), tuple(args.symbols or ()), cfg.instruments,
           tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if key not in _SHARED:
        _SHARED.clear()
        feed = load_feed(args, cfg, _instruments(cfg))
        _SHARED[key] = (feed.data(), feed.instruments)
    return _SHARED[key]


def _import_backtest() -> None:
    import hftcore.cli
    import hftcore.report
    import hftcore.session  # noqa: F401


class Runner:
    """Runs tasks ``(params, span)`` over one payload: in this process (one worker,
    no scheduler) or on Dask.  Use as a context manager; ``map`` returns the rows in
    task order."""

    def __init__(self, payload, workers: int = 1, scheduler: str | None = None,
                 retries: int = 3, timeout: float | None = None,
                 connect_timeout: float = 30.0):
        if workers < 1:
            raise SweepError("--workers must be >= 1")
        self.payload, self.workers, self.scheduler = payload, workers, scheduler
        self.retries, self.timeout = retries, timeout     # timeout: seconds for a whole map
        self.connect_timeout = connect_timeout
        self.client = self.cluster = None
        self._data = None

    def __enter__(self):
        if self.scheduler is None and self.workers == 1:
            return self
        import logging

        from distributed import Client, LocalCluster
        quiet = logging.getLogger().level > logging.INFO      # hftcore -v shows Dask's log
        self._levels = {}
        if quiet:
            for name in ("distributed", "distributed.scheduler", "distributed.nanny",
                         "distributed.worker", "distributed.core", "distributed.http"):
                log = logging.getLogger(name)
                self._levels[name] = log.level
                log.setLevel(logging.ERROR)
        try:
            if self.scheduler is not None:
                try:
                    self.client = Client(self.scheduler, timeout=self.connect_timeout)
                except (OSError, TimeoutError, ValueError) as exc:
                    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise SweepError(f"cannot reach the Dask scheduler at {self.scheduler}: "
                                     f"{first}") from None
            else:
                self.cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, host="127.0.0.1",
                    silence_logs=logging.ERROR if quiet else logging.INFO)
                self.client = Client(self.cluster)
            # the data once per worker; tasks carry only their parameters
            self._data = self.client.scatter([self.payload], broadcast=True)[0]
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        import logging
        try:
            if self.client is not None:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        finally:
            self.client = self.cluster = None
            for name, level in getattr(self, "_levels", {}).items():
                logging.getLogger(name).setLevel(level)
            self._levels = {}

    def warm(self) -> None:
        """Import the backtest's modules on every worker now (a first task would)."""
        if self.client is not None:
            self.client.run(_import_backtest)
        else:
            _import_backtest()

    def map(self, tasks: list[tuple], on_result=None, label: str = "runs") -> list[dict]:
        started = time.monotonic()
        n = len(tasks)
        report = on_result or (lambda done, total: _bar(done, total, started, label))
        results: list = [None] * n
        if self.client is None:
            for i, (params, span) in enumerate(tasks):
                results[i] = run_one(self.payload, params, span)
                report(i + 1, n)
            return results
        from distributed import as_completed
        tag = uuid.uuid4().hex[:8]
        futures = [self.client.submit(run_one, self._data, params, span, key=f"hftcore-{tag}-{i}",
                                      retries=self.retries, pure=False)
                   for i, (params, span) in enumerate(tasks)]
        where = {f.key: i for i, f in enumerate(futures)}
        for done, (fut, row) in enumerate(as_completed(futures, with_results=True,
                                                       timeout=self.timeout), 1):
            results[where[fut.key]] = row
            report(done, n)
        return results


def payload_for(args, cfg: Config, data, instruments, names) -> tuple:
    """What every worker needs once: the backtest flags, the base configuration, where
    each parameter goes, the data and the instrument table (``data=None``: each worker
    reads ``args.data`` itself, from a path every worker sees)."""
    args_dict = {k: v for k, v in vars(args).items() if not callable(v)}
    return (args_dict, cfg, resolve_names(cfg, names), data, instruments)


def valid_sets(cfg: Config, sets: list[dict], where: dict) -> tuple[list[dict], list[tuple]]:
    """Split parameter sets into those the configuration accepts and (set, reason)."""
    ok, bad = [], []
    for p in sets:
        try:
            apply_params(cfg, p, where)
        except ConfigError as exc:
            bad.append((p, str(exc)))
        else:
            ok.append(p)
    return ok, bad


# ---------------------------------------------------------------- tables

def rank(rows: list[dict], maximize: str) -> list[int]:
    """1-based rank of each row by ``maximize`` (higher first; NaN last; ties keep the
    parameter order)."""
    if rows and maximize not in rows[0]:
        raise SweepError(f"--maximize {maximize!r} is not a statistic "
                         f"(one of: {', '.join(RESULT_COLUMNS)})")
    keys = []
    for i, r in enumerate(rows):
        v = stat_number(maximize, r.get(maximize))
        keys.append((0 if math.isfinite(v) else 1, -v if math.isfinite(v) else 0.0, i))
    order = sorted(range(len(rows)), key=lambda i: keys[i])
    ranks = [0] * len(rows)
    for pos, i in enumerate(order, 1):
        ranks[i] = pos
    return ranks


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_table(path: Path, rows: list[dict], columns: list[str]) -> None:
    """CSV with fixed formatting (floats as repr: exact and reproducible)."""
    import csv
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in columns])


def write_parquet(path: Path, rows: list[dict], columns: list[str]) -> bool:
    """The same table as Parquet when pyarrow is installed (returns whether written)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    cols = {}
    for c in columns:
        vals = [r.get(c) for r in rows]
        if any(isinstance(v, str) for v in vals):
            cols[c] = pa.array([None if v is None else str(v) for v in vals], pa.string())
        elif all(isinstance(v, (int, bool)) or v is None for v in vals) and \
                any(isinstance(v, int) for v in vals):
            cols[c] = pa.array(vals, pa.int64())
        else:
            cols[c] = pa.array([math.nan if v is None else float(v) for v in vals],
                               pa.float64())
    pq.write_table(pa.table(cols), path)
    return True


def heatmap_html(rows: list[dict], x: str, y: str, stat: str, title: str = "") -> str:
    """A standalone HTML heatmap of ``stat`` over two parameters (the best value over
    any other parameters), Bokeh with inline resources."""
    from bokeh.embed import file_html
    from bokeh.models import ColumnDataSource, FactorRange, HoverTool, LinearColorMapper
    from bokeh.models.annotations import ColorBar
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure
    from bokeh.resources import INLINE
    best: dict = {}
    for r in rows:
        v = stat_number(stat, r.get(stat))
        k = (r[x], r[y])
        if math.isfinite(v) and (k not in best or v > best[k]):
            best[k] = v
        best.setdefault(k, math.nan)
    xs = [str(v) for v in sorted({k[0] for k in best})]
    ys = [str(v) for v in sorted({k[1] for k in best})]
    vals = [best[k] for k in best]
    finite = [v for v in vals if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    mapper = LinearColorMapper(palette=Viridis256, low=lo, high=hi if hi > lo else lo + 1,
                               nan_color="#d0d7de")
    src = ColumnDataSource({"x": [str(k[0]) for k in best], "y": [str(k[1]) for k in best],
                            "v": vals})
    p = figure(x_range=FactorRange(factors=xs), y_range=FactorRange(factors=ys),
               title=title or f"{stat} by {x} and {y}", x_axis_label=x, y_axis_label=y,
               width=720, height=560, tools="save,reset", toolbar_location="right")
    p.rect("x", "y", 1, 1, source=src, fill_color={"field": "v", "transform": mapper},
           line_color=None)
    p.add_tools(HoverTool(tooltips=[(x, "@x"), (y, "@y"), (stat, "@v{0.000}")]))
    p.add_layout(ColorBar(color_mapper=mapper, title=stat), "right")
    return file_html(p, INLINE, title or stat)     # inline: opens offline


# ---------------------------------------------------------------- sweeps

def sweep(runner: Runner, sets: list[dict], span=None, on_result=None) -> list[dict]:
    """Rows (parameters + statistics) of every parameter set, in the order of ``sets``."""
    stats = runner.map([(p, span) for p in sets], on_result)
    return [{**p, **s} for p, s in zip(sets, stats)]


def trading_days(data) -> np.ndarray:
    """The IST days with data, as day numbers since the epoch."""
    return np.unique((np.asarray(data.ts_ns, np.int64) + IST_OFFSET_NS) // DAY_NS)


def windows(data, train: int, test: int) -> list[dict]:
    """Rolling walk-forward windows of ``train`` then ``test`` trading days, stepping by
    ``test``: ``[{"train": (t0, t1), "test": (t0, t1)}, ...]`` in ns, end exclusive."""
    if train < 1 or test < 1:
        raise SweepError("--walk-forward TRAIN:TEST needs TRAIN >= 1 and TEST >= 1 days")
    days = trading_days(data)

    def start_ns(day) -> int:
        return int(day) * DAY_NS - IST_OFFSET_NS
    out = []
    k = 0
    while k + train + test <= len(days):
        tr, te = days[k:k + train], days[k + train:k + train + test]
        out.append({"train": (start_ns(tr[0]), start_ns(tr[-1] + 1)),
                    "test": (start_ns(te[0]), start_ns(te[-1] + 1))})
        k += test
    if not out:
        raise SweepError(f"the data has {len(days)} trading days: too few for "
                         f"--walk-forward {train}:{test}")
    return out


def walk_forward(runner: Runner, sets: list[dict], wins: list[dict], maximize: str,
                 on_result=None) -> tuple[list[dict], list[dict]]:
    """In-sample sweep on each window's training days (all windows at once), the best
    set by ``maximize`` run on the following test days.  Returns (in-sample rows with a
    ``window`` column, one out-of-sample row per window)."""
    from .report import _iso
    tasks = [(p, w["train"]) for w in wins for p in sets]
    stats = runner.map(tasks, on_result, label="in-sample runs")
    insample = []
    for i, ((p, _), s) in enumerate(zip(tasks, stats)):
        insample.append({"window": i // len(sets), **p, **s})
    best = []
    for k in range(len(wins)):
        rows = insample[k * len(sets):(k + 1) * len(sets)]
        best.append(rows[rank(rows, maximize).index(1)])
    names = list(sets[0])
    oos_stats = runner.map([({n: b[n] for n in names}, w["test"]) for b, w in zip(best, wins)],
                           None, label="out-of-sample runs")
    oos = []
    for k, (b, w, s) in enumerate(zip(best, wins, oos_stats)):
        oos.append({"window": k, "train_start": _iso(w["train"][0]),
                    "train_end": _iso(w["train"][1] - 1), "test_start": _iso(w["test"][0]),
                    "test_end": _iso(w["test"][1] - 1), **{n: b[n] for n in names},
                    f"in-sample {maximize}": b.get(maximize), **s})
    return insample, oos
