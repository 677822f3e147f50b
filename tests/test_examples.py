"""The example a user copies from runs and ends with a summary."""
import runpy
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo_services_v3.py"


def test_demo_example_wires_the_six_services_and_prints_a_summary(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--symbols", "RELIANCE", "SBIN", "--seed", "5"])
    try:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    assert "hftcore demo: 2 NSE symbols" in out and "ledger balanced True" in out
    assert '"status": "finished"' in out
