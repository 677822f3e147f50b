"""Backtest results: trades, statistics and a report folder (CSV, PNG, JSON, HTML).

Round-trip trades are rebuilt from the fills with the same compiled ledger the
portfolio uses (``hftcore_ext.ledger.round_trips``), so a trade's PnL is exactly the
realized PnL the portfolio booked for it.  Files are written with fixed
formatting, so the same data and seed give byte-identical CSVs.

The statistics (:func:`compute_stats`) carry the names and the definitions of
backtesting.py's ``Backtest.run()`` ("Return [%]", "Sharpe Ratio", "SQN", ...,
with "[₹]" for "[$]"): closed trades only; the equity curve marked at every
bar close (open positions marked, not closed); daily returns from the last
equity of each IST day; 252 trading days a year (365 if the data has
weekends).  ``tests/test_report_stats.py`` runs backtesting.py on the bundled
candles and checks every shared statistic against it.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import csv
import datetime as dt
import hashlib
import html
import itertools
import json
import logging
import math
import operator
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hftcore_ext.ledger import round_trips

from .console import inr
from .feeds import IST, NS
from .report_png import pack_points, render_png

log = logging.getLogger("hftcore.report")

TRADING_SECONDS_PER_YEAR = 252 * (6 * 3600 + 15 * 60)
IST_OFFSET_NS = 19_800 * NS
DAY_NS = 86_400 * NS

#: The statistics of backtesting.py's ``Backtest.run()``, in its order ("[$]" is "[₹]").
STAT_KEYS = [
    "Start", "End", "Duration", "Exposure Time [%]", "Equity Final [₹]", "Equity Peak [₹]",
    "Commissions [₹]", "Return [%]", "Buy & Hold Return [%]", "Return (Ann.) [%]",
    "Volatility (Ann.) [%]", "CAGR [%]", "Sharpe Ratio", "Sortino Ratio", "Calmar Ratio",
    "Alpha [%]", "Beta", "Max. Drawdown [%]", "Avg. Drawdown [%]", "Max. Drawdown Duration",
    "Avg. Drawdown Duration", "# Trades", "Win Rate [%]", "Best Trade [%]", "Worst Trade [%]",
    "Avg. Trade [%]", "Max. Trade Duration", "Avg. Trade Duration", "Profit Factor",
    "Expectancy [%]", "SQN", "Kelly Criterion"]
TIME_KEYS = ("Start", "End")
DURATION_KEYS = ("Duration", "Max. Drawdown Duration", "Avg. Drawdown Duration",
                 "Max. Trade Duration", "Avg. Trade Duration")


# ---------------------------------------------------------------- formatting

def _ts(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / NS, IST).strftime("%Y-%m-%d %H:%M:%S")


def _ts_many(ns) -> list[str]:
    """``_ts`` of many timestamps at once (numpy, not one datetime each)."""
    if not len(ns):
        return []
    sec = (np.asarray(ns, dtype=np.int64) // NS + 19_800).astype("datetime64[s]")
    text = np.datetime_as_string(sec)
    if text.dtype == np.dtype("<U19"):     # "YYYY-MM-DDTHH:MM:SS": the T made a space in place
        text.view(np.uint32).reshape(-1, 19)[:, 10] = ord(" ")
        return text.tolist()
    return [t.replace("T", " ") for t in text.tolist()]


def _iso(ns: int) -> str:
    """IST timestamp as pandas prints a tz-aware Timestamp: 2024-06-03 09:15:00+05:30."""
    return dt.datetime.fromtimestamp(ns // NS, IST).isoformat(sep=" ")


def duration_str(ns) -> str | None:
    """A duration in pandas' ``str(Timedelta)`` form ("4 days 06:15:00"); None for NaN."""
    if ns is None or (isinstance(ns, float) and not math.isfinite(ns)):
        return None
    ns = int(ns)
    days, rem = divmod(ns, DAY_NS)
    secs, frac = divmod(rem, NS)
    h, rem_s = divmod(secs, 3600)
    m, s = divmod(rem_s, 60)
    out = f"{days} days {h:02d}:{m:02d}:{s:02d}"
    if frac:
        out += f".{frac:09d}".rstrip("0").ljust(7, "0") if frac % 1000 == 0 else f".{frac:09d}"
    return out


def parse_duration(text: str) -> float:
    """Seconds in a :func:`duration_str` string ("4 days 06:15:00" -> 368100.0)."""
    days, _, clock = text.partition(" days ")
    h, m, s = clock.split(":")
    return int(days) * 86400 + int(h) * 3600 + int(m) * 60 + float(s)


def stat_number(key: str, value) -> float:
    """A statistic as a float for ranking and differences: durations in seconds, times
    in epoch seconds, None/NaN as NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if key in DURATION_KEYS or " days " in str(value):
        return parse_duration(str(value))
    if key in TIME_KEYS:
        return dt.datetime.fromisoformat(str(value)).timestamp()
    raise ValueError(f"statistic {key!r} is not a number: {value!r}")


def format_stat(key: str, value) -> str:
    """One statistic as text: money and counts with Indian grouping, ratios to 2-3 places."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, str):
        return value
    if key == "# Trades" or isinstance(value, (bool, int)) and not isinstance(value, float):
        return inr(value, 0)
    if "[₹]" in key:
        return inr(value, 2)
    if "[%]" in key:
        return inr(value, 2)
    return inr(value, 3)


def _finite(x):
    """JSON has no NaN/inf: those become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (np.floating,)):
        return _finite(float(x))
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


# ---------------------------------------------------------------- trades

def trades_from_fills(fills: list[dict]) -> list[dict]:
    """Round trips per symbol: a trade opens when a position leaves zero and closes
    when it returns to zero (a flip closes one trade and opens the next).

    Each trade has the CSV columns (``TRADE_FIELDS``) plus ``entry_ns``/``exit_ns`` and
    ``return_pct``: net PnL over the entry value (backtesting.py's ``Trade.pl_pct``
    for a single entry fill, as a fraction).  The walk over the fills is compiled
    (``hftcore_ext.ledger.round_trips``, the ledger's own arithmetic)."""
    ids: dict[str, int] = {}
    cols = np.array([(ids.setdefault(f["symbol"], len(ids)),
                      f["quantity"] if f["side"] == "BUY" else -f["quantity"],
                      f["price_paise"], f["fees_paise"], f["ts"]) for f in fills],
                    dtype=np.int64).reshape(-1, 5)
    rows = round_trips(cols[:, 0].astype(np.int32), np.ascontiguousarray(cols[:, 1]),
                       np.ascontiguousarray(cols[:, 2]), np.ascontiguousarray(cols[:, 3]),
                       np.ascontiguousarray(cols[:, 4])).tolist()
    names = list(ids)
    times = _ts_many([r[2] for r in rows] + [r[10] for r in rows])
    out = []
    for (sym, side, entry_ts, quantity, entry_value, entry_qty, exit_value, exit_qty, pnl,
         fees, exit_ts), entry_time, exit_time in zip(rows, times, times[len(rows):]):
        net = pnl - fees
        out.append({"symbol": names[sym], "side": "LONG" if side > 0 else "SHORT",
                    "entry_time": entry_time, "exit_time": exit_time, "quantity": quantity,
                    "entry_price": round(entry_value / entry_qty / 100, 4),
                    "exit_price": round(exit_value / max(exit_qty, 1) / 100, 4),
                    "pnl": pnl / 100, "fees": fees / 100,
                    "net_pnl": net / 100, "entry_ns": entry_ts, "exit_ns": exit_ts,
                    "return_pct": net / entry_value if entry_value else 0.0})
    return out


# ---------------------------------------------------------------- statistics

def _gmean(returns: np.ndarray) -> float:
    r = np.nan_to_num(np.asarray(returns, dtype=np.float64), nan=0.0) + 1
    if np.any(r <= 0):
        return 0.0
    return float(np.exp(np.log(r).sum() / (len(r) or np.nan)) - 1)


def _resolution_ns(period_ns: float) -> int:
    """The smallest non-zero component of a duration (pandas' ``resolution_string``)."""
    p = int(period_ns)
    for unit in (DAY_NS, 3600 * NS, 60 * NS, NS, 10**6, 10**3):
        if p % unit == 0:
            return unit
    return 1


def _ceil(ns: float, unit: int):
    if not math.isfinite(ns):
        return math.nan
    return -(-round(ns) // unit) * unit


def _drawdown_periods(dd: np.ndarray, index: np.ndarray):
    """(duration ns, peak drawdown) of every drawdown period: from the bar where equity
    last stood at its peak to the bar where it is back there (or the last bar)."""
    zeros = np.flatnonzero(dd == 0)
    iloc = np.unique(np.r_[zeros, len(dd) - 1])
    prev, cur = iloc[:-1], iloc[1:]
    keep = cur > prev + 1
    prev, cur = prev[keep], cur[keep]
    if not len(cur):
        return np.array([], dtype=np.float64), dd[dd != 0]
    durations = (index[cur] - index[prev]).astype(np.float64)
    peaks = np.array([dd[a:b + 1].max() for a, b in zip(prev.tolist(), cur.tolist())])
    return durations, peaks


def compute_stats(index_ns, equity, trades, closes=None, warmup: int = 0,
                  risk_free_rate: float = 0.0) -> dict:
    """backtesting.py's ``Backtest.run()`` statistics from plain inputs.

    Parameters
    ----------
    index_ns : int64 array -- bar timestamps (ns since the epoch), increasing, unique
    equity : float array -- equity in rupees at each bar's close (open positions marked)
    trades : list of dicts -- closed trades with ``entry_ns``, ``exit_ns``, ``size``
        (signed units; or ``quantity`` and ``side`` LONG/SHORT), ``entry_price``,
        ``exit_price``, ``pnl`` (net of charges, rupees) and optionally ``return_pct``
        (a fraction; default ``pnl / (|size| * entry_price)``) and ``fees``
    closes : close prices aligned with ``index_ns`` -- one array, or a mapping symbol ->
        array (buy & hold is then the equal-weighted mean of the symbols' returns, and
        the market for Alpha/Beta the mean of their normalised prices)
    warmup : int -- buy & hold starts at this bar (backtesting.py: the indicators' warm-up)
    risk_free_rate : float -- annual, as a fraction

    Returns a dict in ``STAT_KEYS`` order: times as IST ISO strings, durations as
    pandas-style strings, the rest floats/ints (NaN where undefined).
    """
    # numpy scalars throughout: overflow gives inf and 0/0 NaN (as in backtesting.py), not
    # an exception, whatever the equity does (zero capital, a blow-up)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _compute_stats(index_ns, equity, trades, closes, warmup, risk_free_rate)


def _compute_stats(index_ns, equity, trades, closes, warmup, risk_free_rate) -> dict:
    index = np.asarray(index_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if index.ndim != 1 or len(index) == 0 or len(eq) != len(index):
        raise ValueError("index_ns and equity must be non-empty and of the same length")
    if np.any(np.diff(index) <= 0):
        raise ValueError("index_ns must be strictly increasing")
    n = len(index)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = 1 - eq / np.maximum.accumulate(eq)
    dd_dur, dd_peaks = _drawdown_periods(dd, index)
    diffs = np.diff(index[-100:])
    period = float(np.median(diffs)) if len(diffs) else math.nan
    unit = _resolution_ns(period) if math.isfinite(period) else 1

    # trades
    size = np.array([t["size"] if "size" in t else
                     (t["quantity"] if t["side"] == "LONG" else -t["quantity"])
                     for t in trades], dtype=np.float64)
    entry_px = np.array([t["entry_price"] for t in trades], dtype=np.float64)
    pl = np.array([t["pnl"] for t in trades], dtype=np.float64)
    returns = np.array([t["return_pct"] if "return_pct" in t else
                        t["pnl"] / (abs(s) * p) for t, s, p in zip(trades, size, entry_px)],
                       dtype=np.float64)
    entry_ns = np.array([t["entry_ns"] for t in trades], dtype=np.int64)
    exit_ns = np.array([t["exit_ns"] for t in trades], dtype=np.int64)
    durations = (exit_ns - entry_ns).astype(np.float64)
    fees = sum(float(t.get("fees", 0.0)) for t in trades)

    s: dict = {}
    s["Start"] = _iso(int(index[0]))
    s["End"] = _iso(int(index[-1]))
    duration = int(index[-1] - index[0])
    s["Duration"] = duration_str(duration)
    have = np.zeros(n, dtype=np.int64)
    entry_bar = np.searchsorted(index, entry_ns, "right") - 1
    exit_bar = np.searchsorted(index, exit_ns, "right") - 1
    for a, b in zip(np.maximum(entry_bar, 0).tolist(), exit_bar.tolist()):
        have[a:b + 1] = 1
    s["Exposure Time [%]"] = float(have.mean() * 100)
    s["Equity Final [₹]"] = float(eq[-1])
    s["Equity Peak [₹]"] = float(eq.max())
    s["Commissions [₹]"] = fees
    s["Return [%]"] = float((eq[-1] - eq[0]) / eq[0] * 100)

    # buy & hold, and the market for alpha/beta
    if closes is None:
        series = {}
    elif isinstance(closes, dict):
        series = {k: np.asarray(v, dtype=np.float64) for k, v in closes.items()}
    else:
        series = {"": np.asarray(closes, dtype=np.float64)}
    bh = [(c[-1] - c[warmup]) / c[warmup] * 100 for c in series.values() if len(c) > warmup]
    s["Buy & Hold Return [%]"] = float(np.mean(bh)) if bh else math.nan

    # daily returns: the last equity of each IST day (days without bars dropped)
    days = (index + IST_OFFSET_NS) // DAY_NS
    last_of_day = np.r_[np.flatnonzero(np.diff(days)), n - 1]
    day_eq = eq[last_of_day]
    with np.errstate(divide="ignore", invalid="ignore"):
        day_returns = day_eq[1:] / day_eq[:-1] - 1
    weekday = (days + 3) % 7                      # 1970-01-01 was a Thursday (3)
    have_weekends = np.mean(weekday >= 5) > 2 / 7 * .6
    annual_days = 365 if have_weekends else 252
    g = np.float64(_gmean(day_returns))
    ann = (1 + g) ** annual_days - 1
    var = np.float64(np.var(day_returns, ddof=1)) if len(day_returns) > 1 else np.float64("nan")
    s["Return (Ann.) [%]"] = ann * 100
    vol = np.sqrt((var + (1 + g) ** 2) ** annual_days - (1 + g) ** (2 * annual_days)) * 100
    s["Volatility (Ann.) [%]"] = vol
    years = (duration // DAY_NS + (duration % DAY_NS) // NS / 86400) / 365.25
    s["CAGR [%]"] = ((eq[-1] / eq[0]) ** (1 / years) - 1) * 100 if years else math.nan
    s["Sharpe Ratio"] = (s["Return (Ann.) [%]"] - risk_free_rate * 100) / (vol or math.nan)
    downside = np.sqrt(np.mean(np.clip(day_returns, -np.inf, 0) ** 2)) \
        if len(day_returns) else math.nan
    s["Sortino Ratio"] = np.float64(ann - risk_free_rate) / (downside * np.sqrt(annual_days))
    max_dd = -float(np.nan_to_num(dd.max()))
    s["Calmar Ratio"] = ann / (-max_dd or math.nan)
    beta = math.nan
    if series:
        market = np.mean([c / c[0] for c in series.values()], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            eq_log = np.log(eq[1:] / eq[:-1])
            mk_log = np.log(market[1:] / market[:-1])
        if len(eq_log) > 1 and len(mk_log) > 1 and len(eq_log) == len(mk_log):
            cov = np.cov(eq_log, mk_log)
            beta = float(cov[0, 1] / cov[1, 1]) if cov[1, 1] else math.nan
    s["Alpha [%]"] = s["Return [%]"] - risk_free_rate * 100 - beta * (
        s["Buy & Hold Return [%]"] - risk_free_rate * 100)
    s["Beta"] = beta
    s["Max. Drawdown [%]"] = max_dd * 100
    s["Avg. Drawdown [%]"] = -float(np.mean(dd_peaks)) * 100 if len(dd_peaks) else math.nan
    s["Max. Drawdown Duration"] = duration_str(_ceil(float(dd_dur.max()), unit)) \
        if len(dd_dur) else None
    s["Avg. Drawdown Duration"] = duration_str(_ceil(float(dd_dur.mean()), unit)) \
        if len(dd_dur) else None
    nt = len(trades)
    s["# Trades"] = nt
    win = float((pl > 0).mean()) if nt else math.nan
    s["Win Rate [%]"] = win * 100
    s["Best Trade [%]"] = float(returns.max()) * 100 if nt else math.nan
    s["Worst Trade [%]"] = float(returns.min()) * 100 if nt else math.nan
    s["Avg. Trade [%]"] = _gmean(returns) * 100 if nt else math.nan
    s["Max. Trade Duration"] = duration_str(_ceil(float(durations.max()), unit)) if nt else None
    s["Avg. Trade Duration"] = duration_str(_ceil(float(durations.mean()), unit)) if nt else None
    loss = abs(float(returns[returns < 0].sum()))
    s["Profit Factor"] = float(returns[returns > 0].sum()) / (loss or math.nan) if nt else math.nan
    s["Expectancy [%]"] = float(returns.mean()) * 100 if nt else math.nan
    std = float(pl.std(ddof=1)) if nt > 1 else math.nan
    s["SQN"] = math.sqrt(nt) * float(pl.mean()) / (std or math.nan) if nt else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        avg_win = pl[pl > 0].mean() if (pl > 0).any() else math.nan
        avg_loss = -pl[pl < 0].mean() if (pl < 0).any() else math.nan
        s["Kelly Criterion"] = float(win - (1 - win) / np.float64(avg_win / avg_loss)) \
            if nt else math.nan
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in s.items()}


# ---------------------------------------------------------------- from a session

def equity_series(session) -> tuple[np.ndarray, np.ndarray]:
    """The session's equity curve as (ts ns, rupees), one point per bar close
    (``PaperSession.equity_series``, rebuilt from the fills)."""
    series = getattr(session, "equity_series", None)
    if callable(series):
        ts, eq, _ = series()
        return ts, eq.astype(np.float64) / 100
    if not session.equity_curve:
        tot = session.portfolio.get_totals()
        return np.array([session.now_ns], dtype=np.int64), np.array([tot["equity"]])
    ts = np.array([t for t, _ in session.equity_curve], dtype=np.int64)
    eq = np.array([e for _, e in session.equity_curve], dtype=np.float64) / 100
    last = np.r_[ts[1:] != ts[:-1], True]
    return ts[last], eq[last]


def _symbol_rows(session) -> dict:
    """{symbol: (ts, open, high, low, close)} of the played data (ticks: o=h=l=c)."""
    out: dict = {}
    if not callable(getattr(session.feed, "data", None)):
        return out                  # a live feed keeps no played data to chart
    data = session.feed.data()
    if len(data) == 0:
        return out
    is_bars = hasattr(data, "span_s")
    for k in np.unique(data.sym).tolist():
        sel = data.sym == k
        px = data.close[sel] if is_bars else data.price[sel]
        o = data.open[sel] if is_bars else px
        h = data.high[sel] if is_bars else px
        lo = data.low[sel] if is_bars else px
        out[session.instruments.by_id(k).symbol] = (data.ts_ns[sel].astype(np.int64),
                                                    *(np.asarray(a, np.float64)
                                                      for a in (o, h, lo, px)))
    return out


def aligned_closes(rows: dict, index: np.ndarray) -> dict:
    """Each symbol's last close at or before every index point (its first close before
    its first bar)."""
    out = {}
    for sym, (ts, _o, _h, _l, c) in rows.items():
        i = np.searchsorted(ts, index, "right") - 1
        out[sym] = c[np.maximum(i, 0)]
    return out


def charges_by_component(fills: list[dict]) -> dict:
    """Charges summed by component (brokerage, stt, exchange, sebi, stamp, gst), rupees;
    summed in paise, so exact."""
    charges = [c for f in fills if (c := f.get("charges"))]
    keys = sorted(set().union(*charges))
    if not keys:
        return {"total": 0.0}
    try:                                    # every fill has every component: one table
        table = np.array(list(map(operator.itemgetter(*keys), charges)), dtype=np.float64)
    except KeyError:
        table = np.array([[c.get(k, 0) for k in keys] for c in charges], dtype=np.float64)
    table = table.reshape(len(charges), len(keys))
    # each fill's rupees to paise (round half to even, as round()), summed exactly
    paise = np.rint(table * 100).astype(np.int64).sum(axis=0)
    total: dict[str, int] = {k: int(v) for k, v in zip(keys, paise.tolist())}
    out = {k: total[k] / 100 for k in sorted(total)}
    out["total"] = sum(total.values()) / 100
    return out


def per_symbol(session, trades: list[dict], rows: dict) -> list[dict]:
    """One row per symbol in the data: trades, wins, PnL, charges, buy & hold."""
    out = []
    fills_by: dict[str, list] = {}
    for f in session.fills:
        fills_by.setdefault(f["symbol"], []).append(f)
    trades_by: dict[str, list] = {}
    for t in trades:
        trades_by.setdefault(t["symbol"], []).append(t)
    for sym in sorted(set(rows) | set(fills_by)):
        ts = trades_by.get(sym, [])
        pos = session.portfolio.get_position(sym) or {}
        rets = [t["return_pct"] * 100 for t in ts]
        c = rows.get(sym, (None, None, None, None, np.array([])))[4]
        out.append({
            "symbol": sym, "trades": len(ts),
            "win_rate": sum(t["net_pnl"] > 0 for t in ts) / len(ts) * 100 if ts else None,
            "fills": len(fills_by.get(sym, [])),
            "gross_pnl": round(sum(t["pnl"] for t in ts), 2),
            "charges": round(sum(f["fees_paise"] for f in fills_by.get(sym, [])) / 100, 2),
            "net_pnl": round(sum(t["net_pnl"] for t in ts), 2),
            "best_trade_pct": max(rets) if rets else None,
            "worst_trade_pct": min(rets) if rets else None,
            "position": pos.get("quantity", 0),
            "unrealized_pnl": pos.get("unrealized_pnl", 0.0),
            "buy_hold_pct": float((c[-1] - c[0]) / c[0] * 100) if len(c) else None})
    return out


def sha256_of(path) -> dict:
    """{file name: sha256} of a data file, or of every CSV in a folder (sorted)."""
    p = Path(path)
    files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    out = {}
    for f in files:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out[f.name] = h.hexdigest()
    return out


def provenance(cfg=None, data=None, argv=None, config_path=None) -> dict:
    """What produced a report: strategies and parameters, data (sha256 per file),
    the effective configuration, hftcore's version, the command line."""
    import dataclasses
    import shlex
    import sys

    from . import __version__
    out: dict = {"hftcore_version": __version__,
                 "command": shlex.join(["hftcore", *(sys.argv[1:] if argv is None else argv)])}
    if cfg is not None:
        out["strategies"] = {name: dict((spec or {}).get("params") or {})
                             for name, spec in cfg.strategies.items()}
        out["config"] = _finite(dataclasses.asdict(cfg))
    out["config_file"] = str(config_path) if config_path else None
    if data is not None:
        out["data"] = {"path": str(data), "sha256": sha256_of(data)}
    return out


def metrics(session, provenance: dict | None = None, trades: list | None = None, *,
            series: tuple | None = None, rows: dict | None = None) -> dict:
    """Summary of a finished PaperSession: the backtesting.py statistics (see
    :func:`compute_stats`), the session's own totals (``trades``, ``net_pnl``,
    ``final_equity``, ...), ``per_symbol``, ``charges_by_component`` and ``provenance``.
    ``trades``, ``series`` (``equity_series(session)``) and ``rows``
    (``_symbol_rows(session)``): pass them if already computed."""
    totals = session.portfolio.get_totals()
    if trades is None:
        trades = trades_from_fills(session.fills)
    wins = sum(1 for t in trades if t["net_pnl"] > 0)
    ts, curve = equity_series(session) if series is None else series
    peak = np.maximum.accumulate(curve)
    dd = curve - peak
    max_dd = float(dd.min()) if len(dd) else 0.0
    max_dd_pct = float((dd / peak).min() * 100) if len(dd) and peak.min() > 0 else 0.0
    sharpe = 0.0
    if len(curve) > 2:
        with np.errstate(divide="ignore", invalid="ignore"):     # equity 0: no returns
            rets = np.diff(curve) / curve[:-1]
        step = float(np.median(np.diff(ts))) / NS if len(ts) > 1 else 60.0
        if np.isfinite(rets).all() and rets.std() > 0 and step > 0:
            sharpe = float(rets.mean() / rets.std() * math.sqrt(TRADING_SECONDS_PER_YEAR / step))
    if rows is None:
        rows = _symbol_rows(session)
    closed = [{**t, "pnl": t["net_pnl"]} for t in trades]      # statistics: net of charges
    stats = compute_stats(ts, curve, closed, aligned_closes(rows, ts) or None)
    r = session.report
    m = dict(stats)
    m.update({"trades": len(trades), "win_rate": (wins / len(trades) * 100) if trades else 0.0,
              "fills": totals["fills"], "realized_pnl": totals["realized_pnl"],
              "unrealized_pnl": totals["unrealized_pnl"], "charges": totals["fees"],
              "net_pnl": totals["net_pnl"], "final_equity": totals["equity"],
              "initial_capital": totals["initial_capital"],
              "max_drawdown": max_dd, "max_drawdown_pct": max_dd_pct, "sharpe": sharpe,
              "max_exposure": float(session.max_exposure),
              "ticks": r.ticks, "decisions": r.decisions, "orders": r.orders,
              "rejected": r.rejected, "rejections_by_rule": dict(r.rejections),
              "square_offs": r.square_offs, "square_off_failures": r.square_off_failures,
              "strategy_errors": getattr(r, "strategy_errors", 0),
              "data_quarantined": dict(getattr(session.feed, "quarantined", {}) or {}),
              "latency_p50_us": r.latency_us(50),
              "latency_p99_us": r.latency_us(99), "balanced": totals["balanced"],
              "per_symbol": per_symbol(session, trades, rows),
              "charges_by_component": charges_by_component(session.fills),
              "provenance": provenance or {}})
    return m


# ---------------------------------------------------------------- text

def format_summary(m: dict, verbose: bool = False) -> str:
    """The statistics and totals as aligned text (Indian digit grouping); tick-to-intent
    latency only with ``verbose``."""
    rows = [(k, format_stat(k, m[k])) for k in STAT_KEYS if k in m]
    rows += [("", ""),
             ("trades", f"{m['trades']}"), ("win rate", f"{inr(m['win_rate'], 1)} %"),
             ("fills", inr(m["fills"], 0)), ("realized PnL", inr(m["realized_pnl"])),
             ("unrealized PnL", inr(m["unrealized_pnl"])), ("charges", inr(m["charges"])),
             ("net PnL", inr(m["net_pnl"])), ("final equity", inr(m["final_equity"])),
             ("max drawdown", f"{inr(m['max_drawdown'])} ({m['max_drawdown_pct']:.2f} %)"),
             ("Sharpe (per bar, annualised)", f"{m['sharpe']:.2f}"),
             ("max exposure", inr(m["max_exposure"])),
             ("orders / rejected", f"{m['orders']} / {m['rejected']}")]
    if m.get("rejections_by_rule"):
        rows.append(("rejections by rule", ", ".join(
            f"{k} {v}" for k, v in m["rejections_by_rule"].items())))
    if m.get("strategy_errors"):
        rows.append(("STRATEGY ERRORS", f"{m['strategy_errors']} on_bar calls raised "
                                        f"(the first is logged with its traceback)"))
    if "square_offs" in m:
        rows.append(("square-offs (failed)",
                     f"{m['square_offs']} ({m.get('square_off_failures', 0)})"))
    if m.get("data_quarantined"):
        rows.append(("data rows quarantined", ", ".join(
            f"{k} {v}" for k, v in m["data_quarantined"].items())))
    if verbose:
        rows.append(("tick-to-intent latency", (f"p50 {m['latency_p50_us']:.1f} us, "
                                               f"p99 {m['latency_p99_us']:.1f} us")))
    lines = [f"{k:>30}  {v}" if k else "" for k, v in rows]
    if m.get("charges_by_component"):
        lines += ["", "charges by component: " + ", ".join(
            f"{k} {inr(v)}" for k, v in m["charges_by_component"].items())]
    if m.get("per_symbol"):
        lines += ["", (f"  {'symbol':<12}{'trades':>7}{'win %':>7}{'net PnL':>14}"
                      f"{'charges':>12}{'position':>9}{'B&H %':>8}")]
        for r in m["per_symbol"]:
            lines.append(f"  {r['symbol']:<12}{r['trades']:>7}"
                         f"{inr(r['win_rate'], 1):>7}{inr(r['net_pnl']):>14}"
                         f"{inr(r['charges']):>12}{r['position']:>9}"
                         f"{inr(r['buy_hold_pct']):>8}")
    return "\n".join(lines)


def compare_summaries(a: dict, b: dict, name_a: str = "A", name_b: str = "B") -> str:
    """Two summaries side by side: one line per statistic, with B - A."""
    money = ("charges", "net_pnl", "final_equity", "max_drawdown", "max_exposure")
    keys = [k for k in STAT_KEYS if k in a or k in b]
    keys += [k for k in ("trades", "fills", *money, "orders", "rejected") if k in a or k in b]

    def fmt(k, v):
        return inr(v) if k in money and isinstance(v, (int, float)) else format_stat(k, v)
    cells = [(k, fmt(k, a.get(k)), fmt(k, b.get(k))) for k in keys]
    width = max(len(k) for k in keys) + 2
    col = max(24, *(len(x) + 2 for _, va, vb in cells for x in (va, vb)))
    out = [f"{'':<{width}}{name_a[-(col - 2):]:>{col}}{name_b[-(col - 2):]:>{col}}{'B - A':>18}"]
    for k, fa, fb in cells:
        va, vb = a.get(k), b.get(k)
        diff = ""
        try:
            na, nb = stat_number(k, va), stat_number(k, vb)
        except (ValueError, TypeError):
            na = nb = math.nan
        if math.isfinite(na) and math.isfinite(nb) and k not in TIME_KEYS:
            d = nb - na
            if k in DURATION_KEYS:
                diff = ("-" if d < 0 else "+") + (duration_str(abs(d) * NS) or "")
            elif isinstance(va, int) and isinstance(vb, int):
                diff = f"{int(d):+d}"
            else:
                diff = ("+" if d > 0 else "") + fmt(k, float(d))
        out.append(f"{k:<{width}}{fa:>{col}}{fb:>{col}}{diff:>18}")
    return "\n".join(out)


# ---------------------------------------------------------------- files

TRADE_FIELDS = ["symbol", "side", "entry_time", "exit_time", "quantity", "entry_price",
                "exit_price", "pnl", "fees", "net_pnl"]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell a spreadsheet will not run: a text cell starting with ``= + - @``,
    tab or CR gets a leading ``'`` (OWASP's advice against formula injection).
    Numbers are left alone (-5 stays a number); floats get four decimals."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_column(values: list) -> list:
    """``csv_cell`` of a whole column: a column of one type is converted in one pass."""
    kinds = set(map(type, values))
    if kinds == {float}:
        return [f"{v:.4f}" for v in values]
    if kinds == {int}:
        return values
    if kinds == {str}:
        if not any(map(str.startswith, values, itertools.repeat(_FORMULA_START))):
            return values
        return [("'" + v) if v.startswith(_FORMULA_START) else v for v in values]
    return [csv_cell(v) for v in values]


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    _write_csv_columns(path, {k: [r[k] for r in rows] for k in fields})


def _write_csv_columns(path: Path, columns: dict[str, list]) -> None:
    """A CSV of equal-length columns (``csv_cell`` applied to every cell), written at once:
    one ``%`` format per row when every column is all floats, all ints or text that needs
    no quoting (exactly what ``csv.writer`` writes then), else by ``csv.writer``."""
    fmts: list[str] | None = []
    cells = []
    for col in columns.values():
        kinds = set(map(type, col))
        if kinds == {float}:                 # formatted by "%.4f" or, below, _csv_column
            cells.append(col)
            if fmts is not None:
                fmts.append("%.4f")
            continue
        cell = _csv_column(col)
        cells.append(cell)
        if fmts is None:
            continue
        if kinds == {int}:
            fmts.append("%d")
        elif kinds <= {str} and not any(c in "".join(cell) for c in ',"\r\n'):
            fmts.append("%s")
        else:
            fmts = None
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([csv_cell(k) for k in columns])
        if fmts is not None and len(fmts) >= 2:
            if cells and cells[0]:
                fmt = ",".join(fmts)
                fh.write("\n".join([fmt % row for row in zip(*cells)]) + "\n")
        else:
            w.writerows(zip(*(_csv_column(c) if set(map(type, c)) == {float} else c
                              for c in cells)))


PNG_BUCKETS = 2_000


def equity_png(session, series: tuple | None = None) -> bytes:
    """Equity curve over drawdown, as PNG bytes (``series``: ``equity_series(session)``
    if already computed)."""
    ts, curve = equity_series(session) if series is None else series
    return _render_png(*_png_points(ts, curve))


def _png_points(ts: np.ndarray, curve: np.ndarray):
    """(IST wall time, equity, drawdown) to draw: every point, or for a long curve each
    of ``PNG_BUCKETS`` buckets' lowest and highest equity and deepest drawdown (~1,000 px
    wide: the same picture)."""
    when = (np.asarray(ts, np.int64) + IST_OFFSET_NS).astype("datetime64[ns]")
    curve = np.asarray(curve, np.float64)
    dd = curve - np.maximum.accumulate(curve) if len(curve) else curve
    if len(curve) > 2 * PNG_BUCKETS:
        starts = np.linspace(0, len(curve), PNG_BUCKETS, endpoint=False).astype(np.int64)
        lo, hi = np.minimum.reduceat(curve, starts), np.maximum.reduceat(curve, starts)
        when, curve = np.repeat(when[starts], 2), np.column_stack((lo, hi)).ravel()
        dd = np.repeat(np.minimum.reduceat(dd, starts), 2)
    return when, curve, dd


_render_png = render_png


#: Draw equity.png in a child Python while the rest of the report is written, when
#: matplotlib is not imported here yet (its import and drawing take ~0.5 s), a CPU core is
#: idle, and the run has at least ``PNG_CHILD_MIN_POINTS`` equity points (a shorter one is
#: written in less time than a child Python takes to start matplotlib).
PNG_IN_CHILD = True
PNG_CHILD_MIN_POINTS = 50_000
PNG_CHILD_TIMEOUT_S = 120


def _spawn_png_child():
    """A child Python (this interpreter, this ``sys.path``) running ``report_png.py``: it
    imports matplotlib at once, then waits for points on stdin.  None if it can't start."""
    import subprocess
    script = Path(__file__).with_name("report_png.py")
    code = ("import sys, runpy; sys.path[:] = " + repr([p for p in sys.path if p]) +
            "; sys.argv = [" + repr(str(script)) + "]; runpy.run_path(sys.argv[0], "
            "run_name='__main__')")
    try:
        return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        log.debug("report: no child Python for equity.png (%s)", e)
        return None


_warm_png: list = []            # the child prepare_png started, until a report takes it


def prepare_png(rows: int) -> bool:
    """Start equity.png's child Python now, for a run of ``rows`` bars or ticks about to
    be played: matplotlib's import (~0.4 s) then happens on an idle core during the run
    instead of while the report is written.  The next ``write_report`` in this process
    draws with it; unused, it ends when this process does.  True if a child started."""
    if _warm_png or not _png_child_pays(rows):
        return False
    proc = _spawn_png_child()
    if proc is None:
        return False
    _warm_png.append(proc)
    return True


@atexit.register
def _drop_warm_png() -> None:
    """End a child ``prepare_png`` started that no report took (at exit)."""
    while _warm_png:
        proc = _warm_png.pop()
        proc.kill()
        proc.communicate()


def _png_in_child(points: tuple, proc=None) -> Callable[[], bytes | None]:
    """Draw ``points`` in a child Python (``proc``, already started, or a new one);
    returns a function that waits for its PNG bytes (None if the child could not draw
    it: the caller then draws in this process)."""
    import threading
    proc = proc if proc is not None else _spawn_png_child()
    if proc is None:
        return lambda: None
    done: list = []
    feeder = threading.Thread(target=lambda: done.append(proc.communicate(
        pack_points(*points))), name="report-png", daemon=True)
    feeder.start()

    def result() -> bytes | None:
        feeder.join(PNG_CHILD_TIMEOUT_S)
        if not done:
            proc.kill()
            feeder.join()
            log.warning("report: equity.png child took over %s s; drawing it here",
                        PNG_CHILD_TIMEOUT_S)
            return None
        out, err = done[0]
        if proc.returncode != 0 or not out.startswith(b"\x89PNG"):
            log.debug("report: equity.png child failed (%s): %s", proc.returncode,
                      err.decode(errors="replace")[-500:])
            return None
        return out
    return result


def _spare_core() -> bool:
    """True if a CPU this process may use is idle (the 1-minute load average, which counts
    this process, leaves one free): a child then runs beside us rather than taking turns."""
    import os
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if cores < 2:
        return False
    try:
        return os.getloadavg()[0] <= cores - 1
    except (AttributeError, OSError):       # pragma: no cover - Windows
        return True


def _png_child_pays(points: int) -> bool:
    """A child Python is worth it for a long run while matplotlib is not imported here and
    a core is idle to run it on."""
    return PNG_IN_CHILD and points >= PNG_CHILD_MIN_POINTS and bool(sys.executable) \
        and not getattr(sys, "frozen", False) and "matplotlib.figure" not in sys.modules \
        and _spare_core()


def _start_png(series: tuple) -> Callable[[], bytes]:
    """equity.png of ``series``: started now, its bytes when the returned function is
    called (drawn in a child Python if matplotlib would have to be imported here)."""
    points = _png_points(*series)
    warm = _warm_png.pop() if _warm_png else None       # prepare_png's, matplotlib loaded
    if warm is not None and warm.poll() is not None:    # it died meanwhile
        warm.communicate()
        warm = None
    child = _png_in_child(points, warm) if warm is not None or \
        _png_child_pays(len(series[0])) else None
    done: list[bytes] = []

    def result() -> bytes:
        if not done:
            png = child() if child is not None else None
            done.append(png if png is not None else _render_png(*points))
        return done[0]
    return result


def write_summary_json(path, m: dict) -> None:
    Path(path).write_text(json.dumps(_finite(m), indent=2, sort_keys=True,
                                     ensure_ascii=False) + "\n", encoding="utf-8")


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(session, out_dir, title: str = "hftcore backtest",
                 provenance: dict | None = None, verbose: bool = False,
                 extra: dict | None = None) -> dict:
    """Write trades.csv, fills.csv, equity.png, summary.json and report.html; returns
    the metrics (with ``extra`` keys added, e.g. ``{"partial": True}``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    held = getattr(session.fills, "held", None)     # a FillLog: read the disk once
    with held() if callable(held) else contextlib.nullcontext():
        return _write_report(session, out, title, provenance, verbose, extra)


def _write_report(session, out: Path, title: str, provenance: dict | None, verbose: bool,
                  extra: dict | None) -> dict:
    series = equity_series(session)
    png_bytes = _start_png(series)           # drawn meanwhile (in a child Python if it can)
    rows = _symbol_rows(session)
    trades = trades_from_fills(session.fills)
    m = {**metrics(session, provenance, trades, series=series, rows=rows), **(extra or {})}
    _write_csv(out / "trades.csv", trades, TRADE_FIELDS)
    fills = session.fills
    _write_csv_columns(out / "fills.csv", {
        "time": _ts_many([f["ts"] for f in fills]),
        **{k: [f[k] for f in fills] for k in ("order_id", "fill_id", "symbol", "side",
                                               "quantity")},
        "price": [f["price_paise"] / 100 for f in fills],
        "fees": [f["fees_paise"] / 100 for f in fills]})
    write_summary_json(out / "summary.json", m)
    page = report_html(session, m, trades, title, png_bytes, verbose, series=series, rows=rows)
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "equity.png").write_bytes(png_bytes())
    return m


def report_html(session, m: dict, trades: list[dict], title: str,
                png: bytes | Callable[[], bytes] | None = None,
                verbose: bool = False, *, series: tuple | None = None,
                rows: dict | None = None) -> str:
    stats = _table(["statistic", "value"],
                   [(k, format_stat(k, m[k])) for k in STAT_KEYS if k in m])
    totals = [("trades", inr(m["trades"], 0)), ("fills", inr(m["fills"], 0)),
              ("realized PnL [₹]", inr(m["realized_pnl"])),
              ("unrealized PnL [₹]", inr(m["unrealized_pnl"])),
              ("charges [₹]", inr(m["charges"])), ("net PnL [₹]", inr(m["net_pnl"])),
              ("final equity [₹]", inr(m["final_equity"])),
              ("max exposure [₹]", inr(m["max_exposure"])),
              ("orders / rejected", f"{m['orders']} / {m['rejected']}"),
              ("ledger balanced", str(m["balanced"]))]
    if verbose:
        totals.append(("tick-to-intent latency", (f"p50 {m['latency_p50_us']:.1f} us, "
                                                 f"p99 {m['latency_p99_us']:.1f} us")))
    sym_rows = [(r["symbol"], r["trades"], inr(r["win_rate"], 1), r["fills"],
                 inr(r["gross_pnl"]), inr(r["charges"]), inr(r["net_pnl"]),
                 inr(r["best_trade_pct"]), inr(r["worst_trade_pct"]), r["position"],
                 inr(r["unrealized_pnl"]), inr(r["buy_hold_pct"])) for r in m["per_symbol"]]
    per_sym = _table(["symbol", "trades", "win %", "fills", "gross PnL", "charges", "net PnL",
                      "best %", "worst %", "position", "unrealized", "B&H %"], sym_rows)
    charges = _table(["component", "₹"], [(k, inr(v)) for k, v in
                                          m["charges_by_component"].items()])
    prov = m.get("provenance") or {}
    prov_rows = [(k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
                 for k, v in prov.items() if k != "config"]
    prov_html = _table(["", ""], prov_rows)
    if prov.get("config"):
        prov_html += ("<details><summary>configuration</summary><pre>"
                      + html.escape(json.dumps(prov["config"], indent=2, ensure_ascii=False))
                      + "</pre></details>")
    trade_rows = [[t[k] if not isinstance(t[k], float) else inr(t[k], 2) for k in TRADE_FIELDS]
                  for t in trades[-500:]]
    try:
        head, chart = chart_html(session, trades, series=series, rows=rows)
    except ImportError:                      # pragma: no cover - bokeh is a dependency
        png = png() if callable(png) else png
        head, chart = "", (f'<img alt="equity and drawdown" src="data:image/png;base64,'
                           f'{base64.b64encode(png or equity_png(session, series)).decode()}">')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
{head}
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#1f2328}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{padding:4px 10px;border-bottom:1px solid #d0d7de;text-align:right}}
th{{text-align:left}}h1{{font-size:20px}}h2{{font-size:16px}}
.cols{{display:flex;gap:3em;flex-wrap:wrap;align-items:flex-start}}</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="cols"><div><h2>Statistics</h2>{stats}</div>
<div><h2>Session</h2>{_table(["", ""], totals)}<h2>Charges by component</h2>{charges}</div></div>
<h2>Chart</h2>
{chart}
<h2>Per symbol</h2>{per_sym}
<h2>Provenance</h2>{prov_html}
<h2>Trades ({len(trades)}{", last 500 shown" if len(trades) > 500 else ""})</h2>
{_table(TRADE_FIELDS, trade_rows)}
</body></html>
"""


# ---------------------------------------------------------------- chart

MAX_CHART_POINTS = 10_000

def _ist_ms(ns) -> np.ndarray:
    """IST wall time in ms (read as UTC by JavaScript's ``Date``), float64."""
    return ((np.asarray(ns, np.int64) + IST_OFFSET_NS) // 1_000_000).astype(np.float64)


def _b64(values) -> str:
    """float64 little-endian bytes, base64: how the chart's numbers travel to the page."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def unb64(text: str) -> np.ndarray:
    """The numbers of a :func:`_b64` string (for reading ``chart_data`` back)."""
    return np.frombuffer(base64.b64decode(text), dtype="<f8")


def equity_chart_points(equity: np.ndarray, step: int) -> np.ndarray:
    """Bar numbers of the equity line's points: every bar if ``step`` is 1, else in each
    bucket of ``step`` bars the lowest and the highest bar (in time order), plus the
    first and the last bar -- every drawdown spike and peak stays on the line."""
    n = len(equity)
    if step <= 1 or n <= 2:
        return np.arange(n)
    nb = -(-n // step)
    flat = np.full(nb * step, np.nan)
    flat[:n] = equity
    grid = flat.reshape(nb, step)
    base = np.arange(nb) * step
    lo, hi = base + np.nanargmin(grid, axis=1), base + np.nanargmax(grid, axis=1)
    return np.unique(np.r_[0, lo, hi, n - 1])


def chart_data(session, *, series: tuple | None = None, rows: dict | None = None) -> dict:
    """What the report's chart draws, as plain JSON (numbers as :func:`_b64` strings).

    One trading-time axis for every panel: x is a bucket of ``step`` bars (1 unless the
    run has more than ``MAX_CHART_POINTS`` bars), ``t`` each bucket's first bar in IST
    ms.  ``panels``: per traded symbol one candle per bucket (open of its first bar,
    close of its last, the high and low over it) and its fills' markers by kind
    (``MARK_KINDS``) at the fill's bucket and price.  ``equity``: the line through every
    bar (``step`` 1) or each bucket's lowest and highest equity plus the first and the
    last bar (:func:`equity_chart_points`), at x = the bar's place within its bucket.
    ``drawdown``: the deepest drawdown [%] of each bucket."""
    index, equity = equity_series(session) if series is None else series
    n = len(index)
    step = max(1, -(-n // MAX_CHART_POINTS))          # long runs: k bars per candle
    rows = _symbol_rows(session) if rows is None else rows
    traded = sorted({f["symbol"] for f in session.fills}) or sorted(rows)[:1]
    marks = _mark_columns(session, index, step)
    panels = []
    for sym in traded:
        if sym not in rows:
            continue
        ts, o, h, lo, c = rows[sym]
        x = np.minimum(np.searchsorted(index, ts, "left"), n - 1) // step
        cut = np.r_[0, np.flatnonzero(np.diff(x)) + 1]
        mx, mprice, mkind = marks.get(sym, (np.zeros(0, np.int64), np.zeros(0),
                                            np.zeros(0, np.int64)))
        panels.append({
            "symbol": sym, "x": _b64(x[cut]), "open": _b64(o[cut]),
            "close": _b64(c[np.r_[cut[1:] - 1, len(c) - 1]]),
            "high": _b64(np.maximum.reduceat(h, cut)), "low": _b64(np.minimum.reduceat(lo, cut)),
            "marks": {kind: {"x": _b64(mx[mkind == k]), "price": _b64(mprice[mkind == k])}
                      for k, (kind, _, _) in enumerate(MARK_KINDS) if (mkind == k).any()}})
    pts = equity_chart_points(equity, step)
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):     # zero capital: no drawdown %
        ddp = np.nan_to_num((equity / peak - 1) * 100)
    dd = ddp if step == 1 else np.minimum.reduceat(ddp, np.arange(0, n, step))
    return {"step": step, "t": _b64(_ist_ms(index[::step])), "panels": panels,
            "equity": {"x": _b64((pts + 0.5) / step - 0.5), "y": _b64(equity[pts]),
                       "t": _b64(_ist_ms(index[pts]))},
            "drawdown": _b64(dd)}


def _bokeh_js() -> list[Path]:
    """BokehJS and its JavaScript API, from the installed bokeh (read, not imported)."""
    import importlib.util
    spec = importlib.util.find_spec("bokeh")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("bokeh is not installed")
    js = Path(list(spec.submodule_search_locations)[0]) / "server" / "static" / "js"
    files = [js / "bokeh.min.js", js / "bokeh-api.min.js"]
    if not all(f.is_file() for f in files):
        raise ImportError(f"BokehJS not found in {js}")
    return files


def chart_html(session, trades: list[dict] | None = None, *, series: tuple | None = None,
               rows: dict | None = None) -> tuple[str, str]:
    """An interactive Bokeh chart: candles of each traded symbol with entries, exits
    and stop fills marked, then equity and drawdown, all on one trading-time axis (bar
    number, labelled with IST times, so nights and weekends take no room).  Returns
    (``<head>`` resources, inline so the file works offline; the chart's HTML).

    The page builds the chart with BokehJS's own API from :func:`chart_data` (embedded
    as JSON, the numbers as base64 float64), so writing it imports no Bokeh model."""
    head = "\n".join(f'<script type="text/javascript">/* BEGIN {f.name} */\n'
                     f'{f.read_text(encoding="utf-8")}\n/* END {f.name} */</script>'
                     for f in _bokeh_js())
    data = json.dumps(chart_data(session, series=series, rows=rows), separators=(",", ":"),
                      ensure_ascii=True).replace("</", "<\\/")
    kinds = json.dumps({kind: [color, marker] for kind, color, marker in MARK_KINDS})
    body = (f'<div id="chart"></div>\n<script type="application/json" id="chart-data">{data}'
            f'</script>\n<script type="text/javascript">\nconst MARK_KINDS = {kinds};\n'
            f'{_CHART_JS}</script>')
    return head, body


_CHART_JS = r"""(function () {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const num = (text) => {
    const raw = atob(text), bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return new Float64Array(bytes.buffer);
  };
  const B = Bokeh, plt = Bokeh.Plotting;
  const STAMP = "new Date(ms).toISOString().slice(0, 16).replace('T', ' ')";  // IST ms
  const t = num(data.t);
  const xfmt = () => new B.CustomJSTickFormatter({args: {t: t}, code:
    "const i = Math.round(tick); if (i < 0 || i >= t.length) return ''; " +
    "const ms = t[i]; return " + STAMP + ";"});
  const when = new B.CustomJSHover({code: "const ms = value; return " + STAMP + ";"});
  const rupees = () => new B.CustomJSTickFormatter({code:
    "return tick.toLocaleString('en-IN', {maximumFractionDigits: 2});"});   // 10,05,000
  const tools = "xpan,xwheel_zoom,box_zoom,reset,save";
  const figs = [];
  let x_range = null;
  const fig = (title, height) => {
    const opts = {height: height, sizing_mode: "stretch_width", title: title, tools: tools};
    if (x_range !== null) opts.x_range = x_range;     // panels pan and zoom together
    const p = plt.figure(opts);
    if (x_range === null) x_range = p.x_range;
    for (const a of p.xaxes) a.formatter = xfmt();
    figs.push(p);
    return p;
  };
  const hover = (p, rows) => p.add_tools(new B.HoverTool({
    tooltips: [["time", "@t{custom}"], ...rows], formatters: {"@t": when}, mode: "vline"}));
  for (const panel of data.panels) {
    const x = num(panel.x), open = num(panel.open), close = num(panel.close);
    const color = Array.from(open, (o, i) => close[i] >= o ? "#1a7f37" : "#cf222e");
    const src = new B.ColumnDataSource({data: {
      x: x, open: open, high: num(panel.high), low: num(panel.low), close: close,
      t: Float64Array.from(x, (b) => t[b]), color: color}});
    const p = fig(panel.symbol + " (IST, trading time)", 300);
    p.segment({x0: {field: "x"}, y0: {field: "high"}, x1: {field: "x"}, y1: {field: "low"},
               source: src, color: {field: "color"}});
    p.vbar({x: {field: "x"}, width: 0.7, top: {field: "open"}, bottom: {field: "close"},
            source: src, fill_color: {field: "color"}, line_color: {field: "color"}});
    hover(p, [["open", "@open{0,0.00}"], ["high", "@high{0,0.00}"], ["low", "@low{0,0.00}"],
              ["close", "@close{0,0.00}"]]);
    let marked = false;
    for (const [kind, [mcolor, marker]] of Object.entries(MARK_KINDS)) {
      const m = panel.marks[kind];
      if (!m) continue;
      const ms = new B.ColumnDataSource({data: {x: num(m.x), price: num(m.price)}});
      p.scatter({x: {field: "x"}, y: {field: "price"}, source: ms, marker: marker, size: 11,
                 color: mcolor, legend_label: kind});
      marked = true;
    }
    if (marked) {
      p.legend.location = "top_left";
      p.legend.click_policy = "hide";
    }
    for (const a of p.yaxes) a.formatter = rupees();
  }
  const eq = data.equity;
  const pe = fig("Equity [\u20b9]", 220);
  pe.line({x: {field: "x"}, y: {field: "equity"}, color: "#1f6feb", line_width: 1.5,
           source: new B.ColumnDataSource({data: {x: num(eq.x), equity: num(eq.y),
                                                  t: num(eq.t)}})});
  hover(pe, [["equity", "@equity{0,0.00}"]]);
  for (const a of pe.yaxes) a.formatter = rupees();
  const dd = num(data.drawdown);
  const pd = fig("Drawdown [%]", 150);
  pd.varea({x: {field: "x"}, y1: {field: "dd"}, y2: 0, color: "#d1242f", alpha: 0.45,
            source: new B.ColumnDataSource({data: {x: Float64Array.from(dd, (_, i) => i),
                                                   dd: dd, t: t}})});
  hover(pd, [["drawdown", "@dd{0.00} %"]]);
  const grid = plt.gridplot(figs.map((f) => [f]),
                            {sizing_mode: "stretch_width", merge_tools: true});
  // the mouse wheel zooms the time axis of every panel (the merged wheel-zoom tool)
  const wheel = grid.toolbar.tools.find((tool) =>
    (tool instanceof B.ToolProxy ? tool.tools[0] : tool) instanceof B.WheelZoomTool);
  if (wheel) grid.toolbar.active_scroll = wheel;
  plt.show(grid, "#chart");
})();
"""


#: The chart's fill markers: (kind, colour, Bokeh marker); ``_mark_columns`` numbers them.
MARK_KINDS = (("entry long", "#1a7f37", "triangle"),
              ("entry short", "#cf222e", "inverted_triangle"),
              ("exit", "#0969da", "x"), ("stop", "#bf3989", "square_x"))


def _mark_columns(session, index: np.ndarray, step: int) -> dict:
    """{symbol: (x, price, kind)} of every fill: x the bucket on the chart's axis, kind
    an index into ``MARK_KINDS`` -- a fill of a stop order (SL/SL-M) is a stop, one that
    reduces the position an exit, else an entry long/short."""
    fills = session.fills
    if not fills:
        return {}
    n = len(index)
    syms = [f["symbol"] for f in fills]
    qty = np.fromiter((f["quantity"] if f["side"] == "BUY" else -f["quantity"]
                       for f in fills), np.int64, len(fills))
    price = np.fromiter((f["price"] for f in fills), np.float64, len(fills))
    x = np.minimum(np.searchsorted(index, np.fromiter((f["ts"] for f in fills), np.int64,
                                                      len(fills)), "left"), n - 1) // step
    get_order = session.broker.get_order if hasattr(session, "broker") else None
    stop_of: dict = {}
    stop = np.zeros(len(fills), bool)
    for i, f in enumerate(fills):
        kind = f.get("order_type")         # on every fill ExecutionService publishes
        if kind is not None:
            stop[i] = kind in ("SL", "SL-M")
            continue
        oid = f["order_id"]                # a fill from elsewhere: ask the broker
        s = stop_of.get(oid)
        if s is None:
            order = get_order(oid) if get_order is not None else None
            s = stop_of[oid] = getattr(order, "order_type", "MARKET") in ("SL", "SL-M")
        stop[i] = s
    out = {}
    sym_arr = np.array(syms)
    for sym in sorted(set(syms)):
        mine = np.flatnonzero(sym_arr == sym)
        q = qty[mine]
        before = np.cumsum(q) - q                          # the position before each fill
        kind = np.where(q > 0, 0, 1)
        kind[(before != 0) & ((before > 0) != (q > 0))] = 2
        kind[stop[mine]] = 3
        out[sym] = (x[mine], price[mine], kind)
    return out


def _fill_marks(session, symbol: str, index: np.ndarray, step: int) -> list[dict]:
    """Entry, exit and stop markers of one symbol's fills (x on the chart's axis), as
    dicts: the chart's ``_mark_columns`` with each fill's side, quantity, time, order."""
    mine = [f for f in session.fills if f["symbol"] == symbol]
    if not mine:
        return []
    x, price, kind = _mark_columns(session, index, step)[symbol]
    return [{"x": int(xi), "price": float(p), "kind": MARK_KINDS[k][0], "side": f["side"],
             "quantity": f["quantity"], "time": when, "order_id": f["order_id"]}
            for f, xi, p, k, when in zip(mine, x.tolist(), price.tolist(), kind.tolist(),
                                         _ts_many([f["ts"] for f in mine]))]
