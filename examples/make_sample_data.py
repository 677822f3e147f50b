"""Write the sample CSVs in examples/data/ (deterministic; already committed).

    python examples/make_sample_data.py

examples/data/candles/<SYMBOL>.csv: five sessions of 1-minute candles in Kite's
historical format (date, open, high, low, close, volume), aggregated from the
synthetic feed's ticks.
"""
import datetime as dt
from pathlib import Path

import numpy as np

from hftcore import SyntheticFeed
from hftcore.feeds import IST, NS

OUT = Path(__file__).resolve().parent / "data" / "candles"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for symbol in ("RELIANCE", "INFY"):
        feed = SyntheticFeed([symbol], seed=2024, start="2024-06-03", days=5)
        t = feed.data()
        minute = t.ts_ns // (60 * NS)
        cuts = np.flatnonzero(np.diff(minute)) + 1
        lines = ["date,open,high,low,close,volume"]
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(minute)]):
            p, v = t.price[a:b], t.volume[a:b]
            when = dt.datetime.fromtimestamp(int(minute[a]) * 60, IST).isoformat()
            lines.append(f"{when},{p[0]:.2f},{p.max():.2f},{p.min():.2f},{p[-1]:.2f},{int(v.sum())}")
        (OUT / f"{symbol}.csv").write_text("\n".join(lines) + "\n")
        print(f"{OUT / f'{symbol}.csv'}: {len(lines) - 1} candles")


if __name__ == "__main__":
    main()
