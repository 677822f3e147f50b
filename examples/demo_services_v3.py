"""Demo: all six services on a synthetic NSE session, in paper mode.

    python examples/demo_services_v3.py [--symbols RELIANCE TCS ...] [--seed 42] [--days 1]

The same as ``hftcore demo``.  The wiring of EventBus, MarketDataService,
StrategyService, ExecutionService, PortfolioService and DashboardFeed is in
``hftcore/session.py`` (``PaperSession``); the demo plays a full 09:15-15:30
session of synthetic ticks through it, squares off at the end and prints the
summary and the dashboard snapshot.
"""

import sys

from hftcore.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
