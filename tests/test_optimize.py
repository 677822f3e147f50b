"""``hftcore optimize``: grids, constraints, parameter mapping, and sweeps that give the
same table in this process, on a local Dask cluster of two workers, and on a real
``dask scheduler`` + two ``dask worker`` processes with one worker killed mid-sweep."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hftcore
from hftcore import research as rs
from hftcore.cli import build_parser, main
from hftcore.config import Config

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles"
SWEEP = ["--data", str(DATA), "--strategy", "ema_trend", "--grid", "min_gap_atr=0,0.2,0.5",
         "--grid", "full_gap_atr=0.5:1.5:0.5", "--constraint", "min_gap_atr < full_gap_atr"]


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- specification

def test_values_lists_and_inclusive_ranges():
    assert rs.parse_values("5,10,20") == [5, 10, 20]
    assert rs.parse_values("5:50:5") == list(range(5, 51, 5))
    assert rs.parse_values("0.1:0.5:0.1") == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert rs.parse_grid(["fast=5,10", "slow=30:50:10"]) == {"fast": [5, 10],
                                                             "slow": [30, 40, 50]}
    for bad in ("", "5,5", "1:2", "5:1:1", "1:5:0", "x", "nan"):
        with pytest.raises(rs.SweepError):
            rs.parse_values(bad)
    for bad in (["fast"], ["fast=1", "fast=2"], []):
        with pytest.raises(rs.SweepError):
            rs.parse_grid(bad)


def test_constraints_are_a_small_grammar_not_eval():
    c = rs.Constraint("fast < slow and slow - fast >= 10", ["fast", "slow"])
    assert c({"fast": 5, "slow": 20}) and not c({"fast": 15, "slow": 20})
    assert not c({"fast": 30, "slow": 20})
    chained = rs.Constraint("0 < ema_trend.min_gap_atr * 2 <= ema_trend.full_gap_atr",
                            ["ema_trend.min_gap_atr", "ema_trend.full_gap_atr"])
    assert chained({"ema_trend.min_gap_atr": 0.2, "ema_trend.full_gap_atr": 0.5})
    assert not chained({"ema_trend.min_gap_atr": 0.0, "ema_trend.full_gap_atr": 0.5})
    assert rs.Constraint("not (fast == 5 or -fast > -3)", ["fast"])({"fast": 4})
    for evil in ("__import__('os').system('true')", "fast.__class__", "open('x')",
                 "[fast]", "fast if slow else 1", "lambda: 1", "fast < 'a'", "slow2 > 1"):
        with pytest.raises(rs.SweepError):
            rs.Constraint(evil, ["fast", "slow"])


def test_parameter_sets_are_sorted_filtered_and_reproducibly_sampled():
    grid = {"fast": [20, 5, 10], "slow": [10, 30]}
    sets = rs.param_sets(grid, ["fast < slow"])
    assert sets == [{"fast": 5, "slow": 10}, {"fast": 5, "slow": 30}, {"fast": 10, "slow": 30},
                    {"fast": 20, "slow": 30}]
    big = {"a": list(range(20)), "b": list(range(20))}
    one = rs.param_sets(big, ["a < b"], random=15, seed=7)
    assert one == rs.param_sets(big, ["a < b"], random=15, seed=7)
    assert one != rs.param_sets(big, ["a < b"], random=15, seed=8)
    assert len(one) == 15 and all(p["a"] < p["b"] for p in one) and one == sorted(
        one, key=lambda p: (p["a"], p["b"]))
    with pytest.raises(rs.SweepError):
        rs.param_sets(grid, ["fast > 100"])


def test_names_map_to_the_selected_strategy_or_a_config_key():
    one = Config()
    one.strategies = {"rsi_reversion": {"weight": 1.0}}
    assert rs.resolve_names(one, ["oversold"]) == {"oversold": ("strategy", "rsi_reversion",
                                                                "oversold")}
    multi = Config()                                  # all three strategies
    where = rs.resolve_names(multi, ["ema_trend.min_gap_atr", "band_atr",
                                     "indicators.ema_fast"])
    assert where == {"ema_trend.min_gap_atr": ("strategy", "ema_trend", "min_gap_atr"),
                     "band_atr": ("strategy", "vwap_reversion", "band_atr"),
                     "indicators.ema_fast": ("config", "ema_fast")}
    cfg = rs.apply_params(multi, {"ema_trend.min_gap_atr": 0.3, "indicators.ema_fast": 9},
                          where)
    assert cfg.strategies["ema_trend"]["params"] == {"min_gap_atr": 0.3} and cfg.ema_fast == 9
    assert multi.ema_fast == 20 and "params" not in multi.strategies["ema_trend"]   # a copy
    for bad in (["nosuch"], ["macd.fast"], ["ema_trend.nosuch"]):
        with pytest.raises(rs.SweepError):
            rs.resolve_names(multi, bad)
    with pytest.raises(rs.SweepError, match="rsi_reversion has no parameter"):
        rs.resolve_names(one, ["min_gap_atr"])


@pytest.mark.parametrize("argv,message", [
    (["--grid", "min_gap_atr=0,0.5", "--maximize", "Luck"], "--maximize"),
    (["--grid", "nosuch=1,2"], "nosuch"),
    (["--grid", "min_gap_atr=1:2"], "START:STOP:STEP"),
    (["--grid", "min_gap_atr=0,1", "--constraint", "import os"], "constraint"),
    (["--grid", "min_gap_atr=1,2"], "no parameter set is valid"),
    (["--grid", "min_gap_atr=0,0.5", "--walk-forward", "5:5"], "trading days"),
])
def test_bad_sweeps_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main(["optimize", "--data", str(DATA), "--strategy", "ema_trend", "--workers", "1",
                 "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hftcore: error:") and message in err[-1]


def test_an_unreachable_scheduler_is_a_one_line_error():
    import socket
    with socket.socket() as sock:                 # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runner = rs.Runner((None,) * 5, scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=2)
    with pytest.raises(rs.SweepError, match="cannot reach the Dask scheduler") as info:
        runner.__enter__()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- sweeps

def test_sweep_table_is_identical_on_one_and_two_local_workers(tmp_path, capsys):
    one, two, shared = tmp_path / "one", tmp_path / "two", tmp_path / "shared"
    assert main(["optimize", *SWEEP, "--workers", "1", "--out", str(one)]) == 0
    assert main(["optimize", *SWEEP, "--workers", "2", "--out", str(two)]) == 0
    # the workers read the data from the path themselves instead of receiving it
    assert main(["optimize", *SWEEP, "--workers", "2", "--shared-data", "--out", str(shared)]) == 0
    a = (one / "results.csv").read_bytes()
    assert a == (two / "results.csv").read_bytes() == (shared / "results.csv").read_bytes()
    rows = _rows(one / "results.csv")
    # 3 x 3 grid less the sets the constraint removes (0.5 < 0.5)
    assert [(r["min_gap_atr"], r["full_gap_atr"]) for r in rows] == [
        ("0", "0.5"), ("0", "1.0"), ("0", "1.5"), ("0.2", "0.5"), ("0.2", "1.0"), ("0.2", "1.5"),
        ("0.5", "1.0"), ("0.5", "1.5")]
    assert len({r["Sharpe Ratio"] for r in rows}) > 1          # the parameters matter
    ranks = sorted(rows, key=lambda r: int(r["rank"]))
    sharpe = [float(r["Sharpe Ratio"]) for r in ranks]
    assert sharpe == sorted(sharpe, reverse=True)
    assert not any("latency" in c or "wall" in c for c in rows[0])
    # each row is the backtest `hftcore backtest` runs with those parameters
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("strategies:\n  ema_trend: {params: {min_gap_atr: 0.2, full_gap_atr: 1.5}}\n")
    assert main(["backtest", "--data", str(DATA), "--config", str(cfg),
                 "--out", str(tmp_path / "bt")]) == 0
    summary = json.loads((tmp_path / "bt" / "summary.json").read_text())
    row = next(r for r in rows if (r["min_gap_atr"], r["full_gap_atr"]) == ("0.2", "1.5"))
    for k in ("Sharpe Ratio", "Return [%]", "SQN", "# Trades", "net_pnl", "Max. Drawdown Duration"):
        assert row[k] == (repr(summary[k]) if isinstance(summary[k], float) else str(summary[k]))
    heat = (one / "heatmap.html").read_text(encoding="utf-8")
    assert "Bokeh" in heat and "cdn.bokeh.org" not in heat
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(one / "results.parquet").to_pylist()
    assert [t["Sharpe Ratio"] for t in table] == [float(r["Sharpe Ratio"]) for r in rows]
    out = capsys.readouterr().out
    assert "rank" in out and "results:" in out


def test_walk_forward_picks_in_sample_and_tests_out_of_sample(tmp_path, capsys):
    assert main(["optimize", "--data", str(DATA), "--symbols", "INFY", "--strategy", "ema_trend",
                 "--grid", "min_gap_atr=0,0.5", "--grid", "full_gap_atr=1,2",
                 "--walk-forward", "3:1", "--maximize", "Return [%]", "--workers", "1",
                 "--out", str(tmp_path)]) == 0
    wf = _rows(tmp_path / "walk_forward.csv")
    insample = _rows(tmp_path / "results.csv")
    assert len(wf) == 2 and len(insample) == 2 * 4          # 5 days: windows 3+1, twice
    assert [r["test_start"][:10] for r in wf] == ["2024-06-06", "2024-06-07"]
    for w in wf:
        rows = [r for r in insample if r["window"] == w["window"]]
        best = max(rows, key=lambda r: float(r["Return [%]"]))
        assert (w["min_gap_atr"], w["full_gap_atr"]) == (best["min_gap_atr"],
                                                         best["full_gap_atr"])
        assert w["in-sample Return [%]"] == best["Return [%]"]
        assert w["Start"].startswith(w["test_start"][:10])      # out of sample: test days only
        assert all(r["Start"].startswith("2024-06-0") for r in rows)
    assert capsys.readouterr().out.count("2024-06-0") >= 2
    # Sharpe needs two daily returns: over two in-sample days it is undefined, and said so
    assert main(["optimize", "--data", str(DATA), "--symbols", "INFY", "--strategy", "ema_trend",
                 "--grid", "min_gap_atr=0,0.5", "--walk-forward", "2:2", "--workers", "1",
                 "--out", str(tmp_path / "blind")]) == 0
    assert "Sharpe Ratio is undefined in-sample in window(s) 0" in capsys.readouterr().err


# ---------------------------------------------------------------- a real Dask cluster

def _spawn(args, log):
    env = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


@pytest.fixture
def dask_cluster(tmp_path):
    """A dask scheduler and two single-threaded workers (no nanny: a killed worker
    stays dead) on 127.0.0.1, stopped however the test ends."""
    pytest.importorskip("distributed")
    sched_file = tmp_path / "scheduler.json"
    procs = []
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115  (closed in finally, after the processes)
    try:
        procs.append(_spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", "0", "--no-dashboard", "--scheduler-file",
                             str(sched_file)], log))
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), "dask scheduler did not start"
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(_spawn(["distributed.cli.dask_worker", "--scheduler-file",
                                 str(sched_file), "--host", "127.0.0.1", "--nthreads", "1",
                                 "--no-nanny", "--no-dashboard", "--death-timeout", "60"], log))
        from distributed import Client
        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address, procs[1:]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        log.close()


def test_sweep_on_a_dask_cluster_survives_a_killed_worker(tmp_path, dask_cluster):
    address, workers = dask_cluster
    argv = ["optimize", *SWEEP, "--out", str(tmp_path)]
    args = build_parser().parse_args(argv)
    from hftcore.cli import _config, _instruments, load_feed
    cfg = _config(args)
    feed = load_feed(args, cfg, _instruments(cfg))
    grid = rs.parse_grid(args.grid)
    sets = rs.param_sets(grid, args.constraint)
    payload = rs.payload_for(args, cfg, feed.data(), feed.instruments, list(grid))
    with rs.Runner(payload, workers=1) as local:
        expected = rs.sweep(local, sets)

    killed = {}
    with rs.Runner(payload, scheduler=address, timeout=300) as runner:
        pids = runner.client.run(os.getpid)
        assert sorted(pids.values()) == sorted(p.pid for p in workers)

        def on_result(done, total):
            if done == 2 and not killed:
                busy = [a for a, keys in runner.client.processing().items() if keys]
                victim = busy[0] if busy else next(iter(pids))
                proc = next(p for p in workers if p.pid == pids[victim])
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                killed.update(address=victim, done=done, total=total, busy=bool(busy))
        rows = rs.sweep(runner, sets, on_result=on_result)
        alive = runner.client.scheduler_info()["workers"]
    assert killed and killed["done"] < killed["total"] and killed["busy"]
    assert killed["address"] not in alive and len(alive) == 1
    assert len(rows) == len(expected) == len(sets)           # complete ...
    rs.write_table(tmp_path / "a.csv", rows, [*grid, *rs.RESULT_COLUMNS])
    rs.write_table(tmp_path / "b.csv", expected, [*grid, *rs.RESULT_COLUMNS])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()   # identical
