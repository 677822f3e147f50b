"""Demo: the six services wired by hand on a synthetic NSE session, in paper mode.

    python examples/demo_services_v3.py [--symbols RELIANCE TCS ...] [--seed 42]

This is the spec's Quick Start and Trading Loop, driven by a synthetic 09:15-15:30
session of ticks: every five minutes of market time the new ticks go into the
compiled candle bank, the strategy runs for each symbol, actionable intents are
executed by the paper broker, and positions are marked.  ``hftcore demo`` does
the same through ``hftcore.session.PaperSession``, which also decides at the
exact tick a candle closes.
"""

import argparse
import json

from hftcore import (DashboardFeed, EventBus, ExecutionService, MarketDataEngine,
                     MarketDataService, OrderIntent, PaperBroker, PortfolioService,
                     StrategyEngineV3, StrategyService, SyntheticFeed)

NS = 1_000_000_000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", nargs="+", default=list(SyntheticFeed.DEFAULT_SYMBOLS))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--capital", type=float, default=1_000_000.0)
    args = ap.parse_args(argv)

    feed = SyntheticFeed(args.symbols, seed=args.seed)     # the broker_feed
    now = {"ns": 0}                                         # market time of the replay
    clock_ns = lambda: now["ns"]                            # noqa: E731

    # 1. EventBus
    bus = EventBus(buffer_size=1000)
    # 2. MarketDataService over the compiled market-data engine
    mde = MarketDataEngine(feed.instruments, timeframes=("1m", "5m", "15m"))
    mds = MarketDataService(feed, mde, cache_ttl_seconds=1.0, clock=lambda: now["ns"] / NS)
    # 3. StrategyService
    strategy_svc = StrategyService(StrategyEngineV3(quantity=10), mds, bus,
                                   primary_tf="5m", secondary_tf="15m")
    # 4. PortfolioService, fed by order.filled
    portfolio = PortfolioService(args.capital, bus)
    bus.subscribe("order.filled", portfolio.on_fill)
    # 5. ExecutionService routing to the paper broker (market time for fills and rate limits)
    broker = PaperBroker(feed, feed.instruments, clock=clock_ns)
    exec_svc = ExecutionService(broker, portfolio, bus, mode="paper", max_position_size=100,
                                clock=clock_ns)
    # 6. DashboardFeed
    dashboard = DashboardFeed(bus, max_signals=100, max_orders=100)
    dashboard.update_portfolio({**portfolio.get_snapshot(), **portfolio.get_totals()})
    dashboard.update_system_state("status", "running")

    intents = executed = 0
    for batch in feed.batches(300):                        # five minutes of ticks at a time
        now["ns"] = int(batch.ts_ns[-1])
        mds.ingest(batch)                                  # nogil: candles + indicators
        for symbol in args.symbols:
            intent = strategy_svc.run_symbol(symbol, ts=now["ns"])
            if intent.action in ("BUY", "SELL") and intent.confidence > 0.5:
                intents += 1
                executed += exec_svc.execute(intent).status == "FILLED"
            portfolio.update_price(symbol, mds.get_ltp(symbol))

    for pos in portfolio.get_snapshot()["positions"]:       # intraday: square off at the close
        side = "SELL" if pos["quantity"] > 0 else "BUY"
        exec_svc.execute(OrderIntent(pos["symbol"], side, 1.0, "square-off",
                                     quantity=abs(pos["quantity"])))
    dashboard.update_system_state("status", "finished")

    totals = portfolio.get_totals()
    snap = dashboard.get_snapshot()
    print(f"hftcore demo: {len(args.symbols)} NSE symbols, one synthetic session, "
          f"seed {args.seed}, paper mode\n")
    print(f"ticks {len(feed.data()):,}  actionable intents {intents}  filled orders {executed}  "
          f"fills {totals['fills']}")
    print(f"realized PnL {totals['realized_pnl']:,.2f}  charges {totals['fees']:,.2f}  "
          f"net PnL {totals['net_pnl']:,.2f}  equity {totals['equity']:,.2f}  "
          f"ledger balanced {totals['balanced']}")
    print("\nper symbol:")
    for symbol in args.symbols:
        pos = portfolio.get_position(symbol)
        if pos:
            print(f"  {symbol:<10} realized {pos['realized_pnl']:>10,.2f}  charges "
                  f"{pos['fees']:>7,.2f}  last {pos['last_price']:>9,.2f}")
    print("\nevents:", ", ".join(f"{k} {v}" for k, v in sorted(snap["system"]["events"].items())))
    print("\ndashboard snapshot:", json.dumps(
        {"signals": len(snap["signals"]), "orders": len(snap["orders"]),
         "positions": snap["positions"], "portfolio": snap["portfolio"],
         "system": {"status": snap["system"]["status"]}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
