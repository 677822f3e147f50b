"""PaperSession: the six services wired together and driven by a feed.

The whole data path, in order, for each slice of market time:

1. the feed yields a slice of ticks or bars (numpy arrays);
2. the compiled candle bank ingests it without the GIL (candles close,
   indicators update) and stops at the exact tick where a decision is due: a
   primary-timeframe candle closed (``decide_on="close"``) or its EMA fast/slow
   crossed (``decide_on="cross"``, for trend strategies: Python is entered
   only at crossovers);
3. ``StrategyService.run_symbol`` turns bundles into signals and an OrderIntent;
4. an actionable intent goes to ``ExecutionService.execute`` -> PaperBroker ->
   ``order.filled`` -> ``PortfolioService.on_fill`` (compiled ledger);
5. positions are marked at the LTP; DashboardFeed has seen every event.

Time is the feed's: the LTP cache, the order-rate window and fill timestamps
all run on the simulated clock, so a replay is deterministic.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engines import MarketDataEngine, PaperBroker, StrategyEngineV3
from .engines.charges import ChargeSchedule
from .engines.market_data import parse_timeframe
from .feeds import NS, IST, Bars
from .instruments import InstrumentTable
from .orders import OrderIntent
from .services import (DashboardFeed, EventBus, ExecutionService, MarketDataService,
                       PortfolioService, RiskLimits, StrategyService)

IST_OFFSET_NS = 19_800 * NS
DAY_NS = 86_400 * NS

logger = logging.getLogger(__name__)


@dataclass
class SessionReport:
    ticks: int = 0
    candles: int = 0
    decisions: int = 0
    intents: int = 0
    orders: int = 0
    fills: int = 0
    rejected: int = 0
    square_offs: int = 0
    at_limit: int = 0                                  # intents skipped: position already full
    wall_seconds: float = 0.0
    decision_ns: list = field(default_factory=list)   # run_symbol + execute, per decision

    def latency_us(self, q: float) -> float:
        return float(np.percentile(self.decision_ns, q)) / 1000 if self.decision_ns else 0.0


class PaperSession:
    """A paper-trading session over any feed with ``batches()`` and ``get_ltp()``.

    Parameters
    ----------
    feed : SyntheticFeed or ReplayFeed (shares its InstrumentTable)
    capital : float -- initial capital in rupees
    primary_tf, secondary_tf : str -- strategy timeframes
    strategy_engine : StrategyEngineV3 or compatible (default: the three built-ins)
    min_confidence : float -- intents below this are not executed (the spec's 0.5)
    max_position_size : int -- units per symbol, long or short
    square_off : bool -- flatten every position at each session's end (intraday MIS)
    charges : ChargeSchedule -- NSE costs (default: Zerodha intraday)
    checkpoint_dir : path -- enables the portfolio journal/checkpoints
    decide_on : "close" (every primary candle close) or "cross" (EMA crossovers only)
    ema_fast, ema_slow : int -- EMA periods of the bundle's ema20/ema50 slots
    """

    def __init__(self, feed, capital: float = 1_000_000.0, primary_tf: str = "5m",
                 secondary_tf: str = "15m", strategy_engine=None, min_confidence: float = 0.5,
                 max_position_size: int = 100, square_off: bool = True,
                 charges: ChargeSchedule | None = None, slippage_ticks: int = 0,
                 checkpoint_dir=None, risk: RiskLimits | None = None, history: int = 200,
                 buffer_size: int = 1000, decide_on: str = "close", ema_fast: int = 20,
                 ema_slow: int = 50):
        if decide_on not in ("close", "cross"):
            raise ValueError(f"decide_on must be 'close' or 'cross', got {decide_on!r}")
        self.decide_on = decide_on
        self.feed = feed
        self.instruments: InstrumentTable = feed.instruments
        self.min_confidence = min_confidence
        self.square_off = square_off
        self.now_ns = 0
        tfs = sorted({parse_timeframe("1m"), parse_timeframe(primary_tf),
                      parse_timeframe(secondary_tf)})
        self.primary_tf, self.secondary_tf = primary_tf, secondary_tf
        self.bus = EventBus(buffer_size)
        self.engine = MarketDataEngine(self.instruments, tfs, history=history,
                                       ema_fast=ema_fast, ema_slow=ema_slow)
        # In a replay the engine's LTP (the last ingested tick) is the market price.
        self.market_data = MarketDataService(self.engine, self.engine, cache_ttl_seconds=1.0,
                                             clock=lambda: self.now_ns / NS)
        self.strategy = StrategyService(strategy_engine or StrategyEngineV3(), self.market_data,
                                        self.bus, primary_tf, secondary_tf)
        self.portfolio = PortfolioService(capital, self.bus, checkpoint_dir)
        self.bus.subscribe("order.filled", self.portfolio.on_fill)
        # With a persistent portfolio, a restarted process must not reuse order/fill ids
        # (the portfolio would take new fills for re-sent ones); replays keep "PB" ids so
        # their trade files stay byte-identical.
        prefix = "PB" if checkpoint_dir is None else f"PB{uuid.uuid4().hex[:8]}-"
        self.broker = PaperBroker(self.market_data, self.instruments, slippage_ticks, charges,
                                  clock=lambda: self.now_ns, id_prefix=prefix)
        self.execution = ExecutionService(self.broker, self.portfolio, self.bus, "paper",
                                          max_position_size, risk, clock=lambda: self.now_ns)
        self.max_position_size = max_position_size
        self.dashboard = DashboardFeed(self.bus)
        self.fills: list[dict] = []                  # every order.filled payload, in order
        self.bus.subscribe("order.filled", lambda e: self.fills.append(e["payload"]))
        self.equity_curve: list[tuple[int, int]] = []  # (ts_ns, equity paise) per step
        self.max_exposure = 0.0                          # rupees
        self._day: int | None = None                     # IST day of the last slice
        self._primary_idx = self.engine.bank.timeframe_index(parse_timeframe(primary_tf))
        self.report = SessionReport()

    # ------------------------------------------------------------ steps

    def _decide(self, symbol: str) -> None:
        t0 = time.perf_counter_ns()
        intent = self.strategy.run_symbol(symbol, ts=self.now_ns)
        self.report.decisions += 1
        if intent.action in ("BUY", "SELL") and intent.confidence >= self.min_confidence:
            self.report.intents += 1
            held = self.portfolio.position_quantity(symbol)
            if (held >= self.max_position_size if intent.action == "BUY"
                    else held <= -self.max_position_size):
                self.report.at_limit += 1    # already full that way: nothing to send
                self.report.decision_ns.append(time.perf_counter_ns() - t0)
                return
            result = self.execution.execute(intent)
            self.report.orders += 1
            if result.status == "REJECTED":
                self.report.rejected += 1
        self.report.decision_ns.append(time.perf_counter_ns() - t0)

    def step(self, batch) -> None:
        """Process one slice of ticks (or bars) through every stage."""
        n = len(batch)
        if n == 0:
            return
        day = (int(batch.ts_ns[0]) + IST_OFFSET_NS) // DAY_NS
        if self.square_off and self._day is not None and day != self._day:
            self.flatten()                   # intraday (MIS): flat at each session's end
        self._day = day
        self.engine.sync_instruments()
        bank = self.engine.bank
        # the kernels take int32 ids, int64 ns, float64 values (no copy when already so)
        f64 = lambda a: np.ascontiguousarray(a, np.float64)      # noqa: E731
        head = (np.ascontiguousarray(batch.sym, np.int32), np.ascontiguousarray(batch.ts_ns,
                                                                               np.int64))
        arrays: tuple
        until: Any                                       # the bank's *_until kernel
        if isinstance(batch, Bars):
            arrays = (*head, f64(batch.open), f64(batch.high), f64(batch.low), f64(batch.close),
                      f64(batch.volume), int(batch.span_s))
            until = bank.ingest_bars_until
        else:
            arrays = (*head, f64(batch.price), f64(batch.volume))
            until = bank.ingest_ticks_until
        ts = batch.ts_ns
        i = 0
        while i < n:
            j, sym = until(*arrays, start=i, tf=self._primary_idx, stop=self.decide_on)
            self.now_ns = int(ts[j - 1])
            if sym >= 0:
                self._decide(self.instruments.by_id(sym).symbol)
            i = j
        self.report.ticks += n
        marks = {}
        for k in np.unique(batch.sym).tolist():
            symbol = self.instruments.by_id(k).symbol
            marks[symbol] = ltp = self.engine.get_ltp(symbol)
            if self.broker.open_orders(symbol):
                self.broker.on_price(symbol, ltp)
        self.portfolio.update_prices(marks)
        led = self.portfolio.ledger
        self.equity_curve.append((self.now_ns, led.equity))
        self.max_exposure = max(self.max_exposure, led.exposure / 100)

    def flatten(self) -> None:
        """Square off every open position at market (intraday close-out)."""
        for pos in self.portfolio.get_snapshot()["positions"]:
            qty = pos["quantity"]
            intent = OrderIntent(pos["symbol"], "SELL" if qty > 0 else "BUY", 1.0,
                                 "square-off at session end", quantity=abs(qty), ts=self.now_ns)
            result = self.execution.execute(intent)
            self.report.square_offs += 1
            if result.status == "REJECTED":
                logger.warning("square-off of %s rejected: %s", pos["symbol"], result.message)

    def run(self, batch_seconds: float = 60.0, progress=None, stop=None) -> SessionReport:
        """Play the whole feed; returns the report.  ``progress(done, total)`` is
        called after each slice if given; ``stop()`` returning True ends the run early."""
        t0 = time.perf_counter()
        self.dashboard.update_system_state("status", "running")
        self.dashboard.update_system_state("mode", "paper")
        total = len(self.feed.data())
        done = 0
        for batch in self.feed.batches(batch_seconds):
            self.step(batch)
            done += len(batch)
            if progress is not None:
                progress(done, total)
            if stop is not None and stop():
                break
        if self.square_off:
            self.flatten()
            self.equity_curve.append((self.now_ns, self.portfolio.ledger.equity))
        self.finish(t0)
        return self.report

    def finish(self, started: float) -> SessionReport:
        """Fill in the report's totals (``started``: ``time.perf_counter()`` at the start)
        and mark the dashboard finished."""
        bank = self.engine.bank
        self.report.candles = sum(bank.closed_count(i, j) for i in range(bank.n_symbols)
                                  for j in range(len(bank.timeframes)))
        self.report.fills = self.portfolio.get_totals()["fills"]
        self.report.wall_seconds = time.perf_counter() - started
        self.dashboard.update_system_state("status", "finished")
        return self.report

    def summary(self) -> str:
        """A readable end-of-session summary."""
        r = self.report
        t = self.portfolio.get_totals()
        snap = self.dashboard.get_snapshot()
        lines = [
            f"ticks {r.ticks:,}  candles closed {r.candles:,}  decisions {r.decisions:,}  "
            f"in {r.wall_seconds:.2f}s ({r.ticks / max(r.wall_seconds, 1e-9):,.0f} ticks/s)",
            f"intents {r.intents}  orders {r.orders}  rejected {r.rejected}  fills {t['fills']}  "
            f"square-offs {r.square_offs}  held at the position limit {r.at_limit}",
            f"decision latency (run_symbol + execute): p50 {r.latency_us(50):.1f} us, "
            f"p99 {r.latency_us(99):.1f} us",
            "",
            f"{'capital':>16} {t['initial_capital']:>14,.2f}",
            f"{'realized PnL':>16} {t['realized_pnl']:>14,.2f}",
            f"{'unrealized PnL':>16} {t['unrealized_pnl']:>14,.2f}",
            f"{'charges':>16} {t['fees']:>14,.2f}",
            f"{'net PnL':>16} {t['net_pnl']:>14,.2f}",
            f"{'equity':>16} {t['equity']:>14,.2f}",
            f"{'ledger balanced':>16} {str(t['balanced']):>14}",
            "",
            "per symbol:",
            f"  {'symbol':<12}{'qty':>6}{'realized':>12}{'charges':>10}{'last':>10}",
        ]
        for s in self.instruments.symbols:
            pos = self.portfolio.get_position(s)
            if pos:
                lines.append(f"  {s:<12}{pos['quantity']:>6}{pos['realized_pnl']:>12,.2f}"
                             f"{pos['fees']:>10,.2f}{pos['last_price']:>10,.2f}")
        events = snap["system"]["events"]
        lines += ["", "events: " + ", ".join(f"{k} {v}" for k, v in sorted(events.items()))]
        last = [o for o in snap["orders"] if o.get("type") == "order.filled"][-3:]
        for o in last:
            ts = _fmt_ts(o.get("ts"))
            lines.append(f"  last fill {ts} {o['side']:<4} {o['quantity']:>4} {o['symbol']:<10} "
                         f"@ {o['price']:,.2f}  charges {o['fees']:.2f}")
        return "\n".join(lines)


def _fmt_ts(ns) -> str:
    import datetime as dt
    if not isinstance(ns, int) or ns <= 0:
        return "-"
    return dt.datetime.fromtimestamp(ns / NS, IST).strftime("%Y-%m-%d %H:%M:%S")
