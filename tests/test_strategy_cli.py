"""ema_cross against backtesting.py, --param typing, plug-in strategies, config --check."""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

from hftcore.cli import main
from hftcore.config import Config, ConfigError
from hftcore.engines.strategy import EmaCross
from hftcore.plugins import apply_cli_params, strategy_class

ROOT = Path(__file__).resolve().parent.parent
CANDLES = ROOT / "examples" / "data" / "candles"
SMA_FILE = ROOT / "examples" / "strategies" / "sma_cross.py"


def _bars(symbol: str) -> pd.DataFrame:
    df = pd.read_csv(CANDLES / f"{symbol}.csv")
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("date")).dt.tz_localize(None))
    return df.rename(columns=str.capitalize)


def _reference_trades(symbol: str, fast: int, slow: int, size: int) -> list[tuple]:
    class Cross(Strategy):
        def init(self):
            self.f = self.I(talib.EMA, self.data.Close.astype(float), fast)
            self.s = self.I(talib.EMA, self.data.Close.astype(float), slow)

        def next(self):
            if crossover(self.f, self.s):
                self.buy(size=size)
            elif crossover(self.s, self.f):
                self.sell(size=size)

    bt = Backtest(_bars(symbol), Cross, cash=1e12, commission=0.0, trade_on_close=True,
                  exclusive_orders=True, finalize_trades=False)
    t = bt.run()._trades
    return [(e.strftime("%Y-%m-%d %H:%M:%S"), x.strftime("%Y-%m-%d %H:%M:%S"), int(sz),
             round(float(ep), 2), round(float(xp), 2))
            for e, x, sz, ep, xp in zip(t.EntryTime, t.ExitTime, t.Size, t.EntryPrice,
                                        t.ExitPrice)]


def _our_trades(out: Path, symbol: str) -> list[tuple]:
    with open(out / "trades.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["symbol"] == symbol]
    return [(r["entry_time"], r["exit_time"],
             int(r["quantity"]) * (1 if r["side"] == "LONG" else -1),
             round(float(r["entry_price"]), 2), round(float(r["exit_price"]), 2)) for r in rows]


@pytest.mark.parametrize("fast,slow", [(10, 30), (5, 20)])
def test_ema_cross_trades_equal_backtesting_py(tmp_path, fast, slow):
    out = tmp_path / "run"
    assert main(["backtest", "--data", str(CANDLES), "--strategy", "ema_cross",
                 "--param", f"fast={fast}", "--param", f"slow={slow}", "--quantity", "100",
                 "--charges", "zero", "--fill-at", "close", "--no-square-off",
                 "--capital", "1e9", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    total_pnl = 0.0
    for symbol in ("INFY", "RELIANCE"):
        ours, ref = _our_trades(out, symbol), _reference_trades(symbol, fast, slow, 100)
        assert len(ref) >= 10
        assert ours == ref
        total_pnl += sum(sz * (xp - ep) for _, _, sz, ep, xp in ref)
    # the open positions are marked at the last close; realised PnL is the trades'
    assert summary["realized_pnl"] == pytest.approx(total_pnl, abs=0.01)
    assert "final_equity" in summary


def _ramp_session(decide_on: str):
    """Prices rise (fast EMA above slow from the first warm bar), then fall."""
    from hftcore import ArrayFeed, Bars, InstrumentTable, ZERO_CHARGES
    from hftcore.session import PaperSession
    inst = InstrumentTable()
    inst.add("X", tick_size=0.05)
    close = np.r_[np.arange(100.0, 110.0), np.arange(109.0, 95.0, -1.0)]
    n = len(close)
    ts = 1_717_386_300 * 10**9 + np.arange(n, dtype=np.int64) * 60 * 10**9
    bars = Bars(np.zeros(n, np.int32), ts, close, close + 0.5, close - 0.5, close,
                np.full(n, 100.0), 60)
    s = PaperSession(ArrayFeed(bars, inst), capital=1e7, primary_tf="1m", secondary_tf="1m",
                     strategy_engine=EmaCross(fast=2, slow=3, quantity=7, decide_on=decide_on),
                     square_off=False, charges=ZERO_CHARGES, fill_at="close")
    s.run()
    return [(f["side"], f["quantity"], f["price"], f["ts"]) for f in s.fills]


def test_ema_cross_waits_for_a_cross_after_warm_up():
    cross, close = _ramp_session("cross"), _ramp_session("close")
    # no position at warm-up although fast > slow there; one short at the cross below
    assert cross == close
    assert [(side, q) for side, q, _, _ in cross] == [("SELL", 7)]
    with pytest.raises(ValueError, match="fast < slow"):
        EmaCross(fast=30, slow=10)
    with pytest.raises(ValueError, match="decide_on"):
        EmaCross(decide_on="tick")


def test_ema_cross_decides_the_same_in_compiled_cross_and_per_bar_modes(tmp_path):
    """The compiled crossover watch (Python only at crosses) and a decision at
    every bar close give the same fills on the bundled candles."""
    outs = []
    for mode in ("cross", "close"):
        out = tmp_path / mode
        assert main(["backtest", "--data", str(CANDLES), "--strategy", "ema_cross",
                     "--param", "fast=5", "--param", "slow=20", "--param", f"decide_on={mode}",
                     "--quantity", "100", "--charges", "zero", "--fill-at", "next_open",
                     "--capital", "1e9", "--out", str(out)]) == 0
        outs.append((out / "trades.csv").read_text())
    assert outs[0] == outs[1]
    assert outs[0].count("\n") > 20


def test_ema_cross_sets_the_session_ema_periods():
    cfg = Config()
    cfg.strategies = apply_cli_params({"ema_cross": {}}, ["fast=7", "slow=21"])
    cfg.quantity = 40
    cfg.validate()
    kw = cfg.session_kwargs()
    assert (kw["ema_fast"], kw["ema_slow"]) == (7, 21)
    assert kw["strategy_engine"].quantity == 40
    cfg.strategies = {"ema_cross": {}, "ema_trend": {}}
    with pytest.raises(ConfigError, match="cannot run beside the trading strategies ema_cross"):
        cfg.validate()


def test_param_types_are_checked(capsys):
    assert apply_cli_params({"ema_trend": {}}, ["min_gap_atr=0.25"]) == \
        {"ema_trend": {"params": {"min_gap_atr": 0.25}}}
    got = apply_cli_params({"ema_trend": {}, "rsi_reversion": {}},
                           ["rsi_reversion.oversold=25", "full_gap_atr=2"])
    assert got["rsi_reversion"]["params"] == {"oversold": 25.0}
    assert got["ema_trend"]["params"] == {"full_gap_atr": 2.0}
    for argv, msg in [
        (["--param", "fast=ten"], "--param fast=ten: ema_cross.fast must be an integer"),
        (["--param", "fast=2.5"], "--param fast=2.5: ema_cross.fast must be an integer"),
        (["--param", "nope=1"], "--param nope: no selected strategy takes a parameter 'nope'"),
        (["--param", "fast"], "--param 'fast': write NAME=VALUE"),
        (["--param", "ema_trend.fast=3"], "--param ema_trend.fast: strategy 'ema_trend' is not "
                                          "selected"),
    ]:
        rc = main(["backtest", "--data", str(CANDLES), "--strategy", "ema_cross", *argv,
                   "--out", "/nonexistent/never"])
        err = capsys.readouterr().err.strip()
        assert rc == 2, argv
        assert err.count("\n") == 0 and msg in err, err
    rc = main(["backtest", "--data", str(CANDLES), "--strategy", "ema_trend",
               "--param", "min_gap_atr=abc", "--out", "/nonexistent/never"])
    assert rc == 2
    assert "ema_trend.min_gap_atr must be a number" in capsys.readouterr().err


PLUGIN = textwrap.dedent("""
    from hftcore.orders import Signal

    class AlwaysLong:
        name = "always_long"

        def __init__(self, threshold: float = 0.0, tag: str = "x"):
            self.threshold, self.tag = threshold, tag

        def evaluate(self, symbol, timeframe, bundle, ltp):
            return Signal(self.name, symbol, timeframe, "BUY", 1.0, self.tag)
""")


def test_plugin_from_a_file_and_a_module(tmp_path, monkeypatch, capsys):
    f = tmp_path / "mine.py"
    f.write_text(PLUGIN)
    ref = f"{f}:AlwaysLong"
    cls = strategy_class(ref)
    assert cls.name == "always_long" and strategy_class(ref) is cls
    got = apply_cli_params({ref: {}}, ["threshold=0.5", "tag=hello"])
    assert got[ref]["params"] == {"threshold": 0.5, "tag": "hello"}
    out = tmp_path / "run"
    assert main(["backtest", "--data", str(CANDLES), "--symbols", "INFY", "--strategy", ref,
                 "--quantity", "5", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    # each of the 5 days: 20 buys of 5 up to the 100-unit position limit, one square-off
    assert (s["fills"], s["# Trades"]) == (5 * 21, 5)
    # the same class through a module on sys.path
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mine", raising=False)
    mcls = strategy_class("mine:AlwaysLong")
    assert mcls.name == "always_long"
    cfg = Config.from_dict({"strategies": {"mine:AlwaysLong": {"params": {"tag": "m"}}}})
    eng = cfg.strategy_engine()
    assert eng.names == ["always_long"] and eng.strategies[0].tag == "m"
    capsys.readouterr()
    for bad, msg in [(f"{tmp_path}/missing.py:X", "file not found"),
                     (f"{f}:Nope", "has no class Nope"),
                     ("no_such_module_xyz:X", "cannot import no_such_module_xyz"),
                     ("not_a_strategy", "unknown strategy 'not_a_strategy'")]:
        assert main(["backtest", "--data", str(CANDLES), "--strategy", bad,
                     "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and msg in err, err


def test_config_check_accepts_plugins_and_reports_bad_ones(tmp_path, capsys):
    f = tmp_path / "mine.py"
    f.write_text(PLUGIN)
    good = tmp_path / "good.yaml"
    good.write_text(f'strategies:\n  "{f}:AlwaysLong": {{params: {{threshold: 0.2}}}}\n')
    assert main(["config", "--check", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    ema = tmp_path / "ema.yaml"
    ema.write_text("strategies:\n  ema_cross: {params: {fast: 10, slow: 30}}\n")
    assert main(["config", "--check", str(ema)]) == 0
    capsys.readouterr()
    cases = {
        "file": (f'strategies:\n  "{tmp_path}/gone.py:AlwaysLong": {{}}\n', "file not found"),
        "class": (f'strategies:\n  "{f}:Other": {{}}\n', "has no class Other"),
        "param": (f'strategies:\n  "{f}:AlwaysLong": {{params: {{bogus: 1}}}}\n',
                  "has no parameter 'bogus'"),
        "engine": ("strategies:\n  ema_cross: {params: {fast: 30, slow: 10}}\n",
                   "need fast < slow"),
    }
    for name, (text, msg) in cases.items():
        p = tmp_path / f"{name}.yaml"
        p.write_text(text)
        assert main(["config", "--check", str(p)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and msg in err and str(p) in err, (name, err)


def test_optimize_maps_fast_and_slow_onto_ema_cross(tmp_path):
    from hftcore import research as rs
    cfg = Config()
    cfg.strategies = {"ema_cross": {}}
    where = rs.resolve_names(cfg, ["fast", "slow"])
    assert where == {"fast": ("strategy", "ema_cross", "fast"),
                     "slow": ("strategy", "ema_cross", "slow")}
    run = rs.apply_params(cfg, {"fast": 5, "slow": 20}, where)
    kw = run.session_kwargs()
    assert (kw["ema_fast"], kw["ema_slow"]) == (5, 20)
    out = tmp_path / "opt"
    assert main(["optimize", "--data", str(CANDLES), "--symbols", "INFY",
                 "--strategy", "ema_cross", "--quantity", "100", "--charges", "zero",
                 "--fill-at", "close", "--no-square-off", "--capital", "1e9",
                 "--grid", "fast=5,10", "--grid", "slow=20,30", "--workers", "1",
                 "--out", str(out)]) == 0
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    by = {(int(r["fast"]), int(r["slow"])): int(r["# Trades"]) for r in rows}
    for (fast, slow), n in by.items():
        assert n == len(_reference_trades("INFY", fast, slow, 100)), (fast, slow)


def test_example_sma_cross_plugin(tmp_path):
    out = tmp_path / "sma"
    assert main(["backtest", "--data", str(CANDLES), "--strategy",
                 f"{SMA_FILE}:SmaCross", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["# Trades"] == SMA_TRADES
    assert np.isfinite(s["final_equity"])
    # its annotations are strings (from __future__ import annotations): still typed
    ref = f"{SMA_FILE}:SmaCross"
    assert apply_cli_params({ref: {}}, ["fast=3"])[ref]["params"] == {"fast": 3}
    with pytest.raises(ConfigError, match=r"SmaCross\.fast must be an integer"):
        apply_cli_params({ref: {}}, ["fast=2.5"])


SMA_TRADES = 64      # measured on the bundled candles (1m decisions, 10 units, square-off daily)


def test_regression_repeated_strategy_flags_run_every_strategy(tmp_path):
    out = tmp_path / "r"
    assert main(["backtest", "--data", str(CANDLES), "--strategy", "ema_cross",
                 "--strategy", f"{SMA_FILE}:SmaCross", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    names = json.dumps(summary["provenance"])
    assert "ema_cross" in names and "SmaCross" in names


def test_yaml_strategy_params_are_type_checked_like_param(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(textwrap.dedent(f"""
        strategies:
          "{SMA_FILE}:SmaCross":
            params: {{fast: 2.5}}
    """))
    assert main(["config", "--check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "params.fast' must be an int, got 2.5" in err
    cfg.write_text(textwrap.dedent(f"""
        strategies:
          "{SMA_FILE}:SmaCross":
            params: {{fastt: 5}}
    """))
    assert main(["config", "--check", str(cfg)]) == 2
    assert "SmaCross has no parameter 'fastt'" in capsys.readouterr().err


def test_a_strategy_class_without_on_bar_is_refused_when_loaded(tmp_path, capsys):
    f = tmp_path / "lazy.py"
    f.write_text("from hftcore import Strategy\n\nclass Lazy(Strategy):\n    name = 'lazy'\n")
    assert main(["backtest", "--data", str(CANDLES), "--strategy", f"{f}:Lazy",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Lazy does not define on_bar(ctx)" in err


def test_param_prefix_may_be_the_strategy_name(tmp_path):
    out = apply_cli_params({f"{SMA_FILE}:SmaCross": {}, "ema_cross": {}},
                           ["sma_cross.fast=7", "ema_cross.fast=3"])
    assert out[f"{SMA_FILE}:SmaCross"]["params"] == {"fast": 7}
    assert out["ema_cross"]["params"] == {"fast": 3}
