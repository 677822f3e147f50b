"""The backtest report's equity.png: equity over drawdown, drawn with matplotlib.

This module imports nothing of hftcore, so ``hftcore.report.write_report`` can run it as
a script in a child Python (points in, PNG out) and pay matplotlib's import and drawing
there, alongside the CSVs, statistics and report.html it writes meanwhile::

    python report_png.py < points.npz > equity.png    # arrays when, curve, dd

It imports matplotlib before it reads its input, so a child started before the run
(``hftcore.report.prepare_png``) has it loaded by the time the points arrive.
"""

from __future__ import annotations

import io
import sys

import numpy as np


def render_png(when: np.ndarray, curve: np.ndarray, dd: np.ndarray) -> bytes:
    """Equity (``when`` datetime64 wall time, ``curve`` rupees) over drawdown (``dd``
    rupees), as PNG bytes (no metadata that varies: the same points, the same bytes)."""
    # matplotlib's object API, not pyplot: no GUI backend or global figure list to load
    from matplotlib.figure import Figure
    fig = Figure(figsize=(9, 5.5))
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    if len(curve):
        ax1.plot(when, curve, color="#1f6feb", linewidth=1.2)
        ax2.fill_between(when, dd, 0, color="#d1242f", alpha=0.45, linewidth=0)
    ax1.set_title("Equity (INR)")
    ax1.grid(alpha=0.3)
    ax2.set_title("Drawdown (INR)")
    ax2.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def pack_points(when: np.ndarray, curve: np.ndarray, dd: np.ndarray) -> bytes:
    """The points as ``.npz`` bytes (what the script reads on stdin)."""
    buf = io.BytesIO()
    np.savez(buf, when=when, curve=curve, dd=dd)
    return buf.getvalue()


def main() -> int:
    import matplotlib.figure  # noqa: F401  (first: a child started early loads it while it waits)
    data = sys.stdin.buffer.read()
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        png = render_png(z["when"], z["curve"], z["dd"])
    sys.stdout.buffer.write(png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
