"""``hftcore report compare RUN_A RUN_B``: two summaries side by side with B - A."""
import json
from pathlib import Path

from hftcore.cli import main

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles"


def test_compare_two_runs_line_by_line(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["backtest", "--data", str(DATA), "--out", str(a)]) == 0
    assert main(["backtest", "--data", str(DATA), "--strategy", "ema_trend", "--out", str(b)]) == 0
    capsys.readouterr()
    assert main(["report", "compare", str(a), str(b / "summary.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    assert sa["net_pnl"] != sb["net_pnl"]
    line = {ln.split("  ")[0]: ln for ln in out[1:]}
    for key in ("Return [%]", "Sharpe Ratio", "SQN", "Max. Drawdown Duration", "# Trades",
                "net_pnl", "final_equity"):
        assert key in line, key
    cols = line["Return [%]"].split()
    assert cols[-3:] == [f"{sa['Return [%]']:.2f}", f"{sb['Return [%]']:.2f}",
                         f"{sb['Return [%]'] - sa['Return [%]']:+.2f}".replace("+-", "-")]
    fills = line["fills"].split()
    assert fills[-1] == f"{sb['fills'] - sa['fills']:+d}"


def test_compare_names_a_missing_run(tmp_path, capsys):
    assert main(["report", "compare", str(tmp_path), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hftcore: error: no summary.json in") and err.count("\n") == 1
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert main(["report", "compare", str(tmp_path), str(tmp_path)]) == 2
    assert "not a summary.json" in capsys.readouterr().err
