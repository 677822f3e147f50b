"""Demo: all six services on a synthetic NSE session, in paper mode.

    python examples/demo_services_v3.py [--symbols RELIANCE TCS ...] [--seed 42] [--days 1]

Wires EventBus, MarketDataService, StrategyService, ExecutionService,
PortfolioService and DashboardFeed (see hftcore/session.py for the wiring),
plays a full 09:15-15:30 session of ticks through them, squares off at the
end and prints the summary and the dashboard snapshot.
"""

import argparse
import json
import logging

from hftcore import SyntheticFeed
from hftcore.session import PaperSession


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", nargs="+", default=list(SyntheticFeed.DEFAULT_SYMBOLS))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--capital", type=float, default=1_000_000.0)
    ap.add_argument("--json", action="store_true", help="print the full dashboard snapshot")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    feed = SyntheticFeed(args.symbols, seed=args.seed, days=args.days)
    session = PaperSession(feed, capital=args.capital)
    session.run()

    print(f"hftcore demo: {len(args.symbols)} NSE symbols, {args.days} synthetic session(s), "
          f"seed {args.seed}, paper mode\n")
    print(session.summary())
    snap = session.dashboard.get_snapshot()
    print("\ndashboard snapshot:", json.dumps(
        {"signals": len(snap["signals"]), "orders": len(snap["orders"]),
         "positions": snap["positions"], "portfolio": snap["portfolio"],
         "system": {k: v for k, v in snap["system"].items() if k != "events"}}, indent=2))
    if args.json:
        print(json.dumps(snap, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
