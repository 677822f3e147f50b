"""Benchmarks: every group puts hftcore beside its baselines, measured in the same run.

    pytest benches/ --benchmark-only                 # full run
    pytest benches/ --benchmark-only --benchmark-json=benchmark.json
    python benches/report.py benchmark.json > docs/performance.md

Peers (blinker, pyee, nautilus_trader, talipp, TA-Lib, backtrader, backtesting.py) are used
when installed (`pip install hftcore[bench]`, plus nautilus_trader/backtrader/backtesting)
and skipped otherwise.  The pure-Python baselines are the references in tests/.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
