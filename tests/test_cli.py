"""The hftcore command: demo, backtest reports, paper sessions, config, and user errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import hftcore
from hftcore.cli import main
from hftcore.config import Config, ConfigError
from hftcore.report import trades_from_fills

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles"


def test_demo_prints_a_summary(capsys):
    assert main(["demo", "--symbols", "RELIANCE", "SBIN", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "hftcore demo: 2 NSE symbols" in out and "net PnL" in out and "ledger balanced" in out


def test_backtest_writes_the_report_folder_deterministically(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["backtest", "--data", str(DATA), "--out", str(a)]) == 0
    out = capsys.readouterr().out
    for key in ("trades", "win rate", "realized PnL", "unrealized PnL", "max drawdown", "Sharpe",
                "max exposure", "Return [%]", "SQN"):
        assert key in out
    assert "latency" not in out                  # tick-to-intent latency only with -v
    for f in ("trades.csv", "fills.csv", "equity.png", "report.html", "summary.json"):
        assert (a / f).stat().st_size > 0
    assert (a / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Bokeh" in (a / "report.html").read_text()
    summary = json.loads((a / "summary.json").read_text())
    assert summary["balanced"] and summary["trades"] >= 1
    assert main(["backtest", "--data", str(DATA), "--out", str(b)]) == 0
    assert (a / "trades.csv").read_bytes() == (b / "trades.csv").read_bytes()
    assert (a / "fills.csv").read_bytes() == (b / "fills.csv").read_bytes()


def test_backtest_one_symbol_and_one_strategy(tmp_path, capsys):
    assert main(["backtest", "--data", str(DATA), "--symbols", "INFY", "--strategy", "ema_trend",
                 "--out", str(tmp_path)]) == 0
    rows = (tmp_path / "fills.csv").read_text().splitlines()[1:]
    assert rows and all(",INFY," in r for r in rows)


@pytest.mark.parametrize("argv,message", [
    (["backtest", "--data", "/no/such/file.csv"], "not found"),
    (["backtest", "--data", str(DATA), "--strategy", "astrology"], "unknown strategy"),
    (["demo", "--symbols", "NOSUCH"], "unknown symbol"),
    (["demo", "--capital", "-5"], "capital"),
    (["paper", "--feed", "carrier-pigeon", "--duration", "1"], "--feed"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hftcore: error:") and message in err and "\n" not in err


def test_bad_config_names_the_key(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text("execution:\n  max_position_sise: 10\n")
    assert main(["demo", "--config", str(f)]) == 2
    assert "execution.max_position_sise" in capsys.readouterr().err
    f.write_text("risk:\n  max_daily_loss: lots\n")
    assert main(["config", "--check", str(f)]) == 2
    assert "risk.max_daily_loss" in capsys.readouterr().err


def test_example_config_is_valid_and_documents_every_section(capsys):
    assert main(["config", "--example"]) == 0
    text = capsys.readouterr().out
    cfg, default = Config.from_dict(yaml.safe_load(text)), Config()
    # the example states the defaults (strategy parameters spelled out)
    assert {k: v for k, v in vars(cfg).items() if k != "strategies"} == \
        {k: v for k, v in vars(default).items() if k != "strategies"}
    assert list(cfg.strategies) == list(default.strategies)
    for section in ("timeframes", "strategies", "fusion", "execution", "risk", "charges"):
        assert f"\n{section}:" in text


def test_config_rejects_unknown_and_ill_typed_keys():
    for data, key in [({"capitol": 1}, "capitol"), ({"fusion": {"min_confidence": 2}}, "fusion"),
                      ({"strategies": {"ema_trend": {"params": {"nope": 1}}}}, "ema_trend"),
                      ({"charges": {"gst": 0.18}}, "charges.gst"), ({"symbols": []}, "symbols")]:
        with pytest.raises(ConfigError, match=key):
            Config.from_dict(data)


def test_paper_session_runs_checkpoints_and_exits(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(["paper", "--speed", "100000", "--duration", "20", "--symbols", "TCS",
                 "--checkpoint-dir", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "net PnL" in out and list(ckpt.glob("portfolio-*.json"))


def test_round_trip_trades_from_fills():
    f = lambda side, q, p, fee=0: {"symbol": "X", "side": side, "quantity": q,  # noqa: E731
                                   "price_paise": p, "fees_paise": fee, "ts": 1_700_000_000 * 10**9}
    trades = trades_from_fills([f("BUY", 10, 10000), f("BUY", 10, 10200), f("SELL", 20, 10300, 50),
                                f("SELL", 5, 10000), f("BUY", 10, 9900)])
    assert [(t["side"], t["quantity"], t["pnl"], t["fees"]) for t in trades] == [
        ("LONG", 20, 40.0, 0.5), ("SHORT", 5, 5.0, 0.0)]


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "hftcore"
    if not exe.exists():
        pytest.skip("not installed as a package here")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "backtest" in out.stdout
    env = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-P", "-m", "hftcore", "config"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0 and "capital:" in out.stdout


def test_a_second_paper_run_on_the_same_checkpoint_keeps_every_fill(tmp_path, capsys):
    """Restarting on a persistent portfolio must not make new fills look like re-sends."""
    from hftcore.services import PortfolioService
    ckpt = tmp_path / "ckpt"
    for seed in ("1", "1"):
        assert main(["paper", "--speed", "1000000", "--duration", "20", "--symbols", "TCS",
                     "--seed", seed, "--checkpoint-dir", str(ckpt)]) == 0
    restored = PortfolioService(1e6, checkpoint_dir=ckpt)
    assert restored.duplicates == 0
    fills = restored.get_totals()["fills"]
    out = capsys.readouterr().out
    per_run = [int(line.split("fills ")[1].split()[0]) for line in out.splitlines()
               if line.startswith("intents")]
    assert fills == per_run[-1] and per_run[-1] > per_run[0] > 0


def test_ctrl_c_checkpoints_and_exits_cleanly(tmp_path):
    """SIGINT (even when the shell started the job with SIGINT ignored) finishes the
    current step, checkpoints and prints the summary with exit status 0."""
    import signal
    import time
    env = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-P", "-m", "hftcore", "paper", "--speed", "300",
                             "--symbols", "SBIN", "--checkpoint-dir", str(tmp_path / "ck")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                           signal.SIG_IGN))
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopping" in err and "ticks" in out and "candles closed" in out
    assert list((tmp_path / "ck").glob("portfolio-*.json"))


def test_tune_gc_freezes_and_raises_thresholds_and_rejects_nonsense():
    import gc
    from hftcore import tune_gc
    previous = tune_gc(10_000, 10, 10)
    try:
        assert gc.get_threshold() == (10_000, 10, 10) and gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
    with pytest.raises(ValueError):
        tune_gc(0)


# ---------------------------------------------------------------- one line and exit 2 (issue 14)

def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert err.startswith("hftcore: error:") and "\n" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hftcore {hftcore.__version__}"


def test_out_that_is_a_file_is_refused_before_the_run(tmp_path, capsys):
    f = tmp_path / "report.txt"
    f.write_text("keep me")
    assert main(["backtest", "--data", str(DATA), "--out", str(f)]) == 2
    _one_line_error(capsys, "--out", "not a folder")
    assert f.read_text() == "keep me"


def test_unusable_checkpoint_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["paper", "--speed", "100000", "--duration", "1", "--symbols", "TCS",
                 "--checkpoint-dir", str(blocker / "ckpt")]) == 2
    _one_line_error(capsys, "checkpoint folder", "file/ckpt")


@pytest.mark.parametrize("flag,value", [("--duration", "-3"), ("--speed", "0")])
def test_paper_rejects_negative_durations_and_speeds(tmp_path, capsys, flag, value):
    argv = ["paper", "--symbols", "TCS", "--checkpoint-dir", str(tmp_path / "c"), flag, value]
    assert main(argv + (["--duration", "1"] if flag != "--duration" else [])) == 2
    _one_line_error(capsys, flag)


def test_port_in_use_is_one_line_and_releases_the_folder(tmp_path, capsys):
    import socket
    from hftcore.services import PortfolioService
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["paper", "--speed", "100000", "--duration", "1", "--symbols", "TCS",
                     "--dashboard", "--port", str(port),
                     "--checkpoint-dir", str(tmp_path / "c")]) == 2
    _one_line_error(capsys, f"--port {port}", "in use")
    PortfolioService(1e6, checkpoint_dir=tmp_path / "c").close()      # the lock was released


def test_a_second_paper_run_on_a_busy_folder_is_refused(tmp_path, capsys):
    from hftcore.services import PortfolioService
    holder = PortfolioService(1e6, checkpoint_dir=tmp_path / "c")
    try:
        assert main(["paper", "--speed", "100000", "--duration", "1", "--symbols", "TCS",
                     "--checkpoint-dir", str(tmp_path / "c")]) == 2
        _one_line_error(capsys, "in use by another portfolio", "one process per folder")
        from figures import FIGURES
        FIGURES["lock conflicts refused"] = FIGURES.get("lock conflicts refused", 0) + 1
    finally:
        holder.close()


def test_paper_announces_a_restore_and_refuses_a_conflicting_capital(tmp_path, capsys):
    ckpt = str(tmp_path / "c")
    argv = ["paper", "--speed", "1000000", "--duration", "20", "--symbols", "TCS",
            "--checkpoint-dir", ckpt]
    assert main(argv + ["--capital", "500000"]) == 0
    assert "restored portfolio" not in capsys.readouterr().out
    assert main(argv) == 0                                      # no --capital: restored, said so
    out = capsys.readouterr().out
    [line] = [x for x in out.splitlines() if x.startswith("restored portfolio")]
    assert f"from {ckpt}:" in line and "capital 500,000.00" in line
    assert main(argv + ["--capital", "500000"]) == 0            # the same capital is fine
    capsys.readouterr()
    assert main(argv + ["--capital", "1000000"]) == 2
    _one_line_error(capsys, "--capital 1,000,000.00 conflicts", "500,000.00")


def test_capital_zero_gives_no_numeric_warnings(tmp_path, capsys):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["backtest", "--data", str(DATA), "--capital", "0",
                     "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["balanced"] and summary["sharpe"] == summary["sharpe"]     # not NaN


def test_ctrl_c_during_a_backtest_writes_a_partial_report(tmp_path, capsys, monkeypatch):
    import os as _os
    import signal
    import hftcore.cli as cli
    calls = []

    def progress(done, total):
        calls.append(done)
        if len(calls) == 3:
            _os.kill(_os.getpid(), signal.SIGINT)      # the user presses Ctrl-C mid-run
    monkeypatch.setattr(cli, "_progress", progress)
    before = signal.getsignal(signal.SIGINT)
    assert main(["backtest", "--data", str(DATA), "--out", str(tmp_path)]) == 130
    assert signal.getsignal(signal.SIGINT) is before
    err = capsys.readouterr().err.strip()
    assert err.startswith("hftcore: interrupted: partial report") and "\n" not in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["partial"] is True and len(calls) == 3
    assert "PARTIAL" in (tmp_path / "report.html").read_text()


def test_csv_cells_cannot_be_spreadsheet_formulas(tmp_path):
    from hftcore.report import _write_csv, csv_cell
    assert [csv_cell(v) for v in ("=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx",
                                  "\rx", "RELIANCE", -5, -1.5)] == [
        "'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "RELIANCE",
        -5, "-1.5000"]
    f = tmp_path / "t.csv"
    _write_csv(f, [{"symbol": "=HYPERLINK(\"http://evil\",\"x\")", "pnl": -12.5, "quantity": -3}],
               ["symbol", "pnl", "quantity"])
    assert f.read_text().splitlines()[1] == "\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",-12.5000,-3"
