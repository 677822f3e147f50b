"""PaperSession: the six services wired together and driven by a feed.

The whole data path, in order, for each slice of market time:

1. the feed yields a slice of ticks or bars (numpy arrays);
2. the compiled candle bank ingests it without the GIL (candles close,
   indicators update) and stops at the exact tick where a decision is due: a
   primary-timeframe candle closed (``decide_on="close"``) or its EMA fast/slow
   crossed (``decide_on="cross"``, for trend strategies: Python is entered
   only at crossovers);
3. before a decision, the bars (or ticks) since the last one are matched
   against working orders, in time order (a MARKET order waiting for the next
   bar's open, resting limits, stops); the scan is vectorised, so Python runs
   only where an order acts;
4. ``StrategyService.run_symbol`` turns bundles into signals and an OrderIntent;
5. an actionable intent goes to ``ExecutionService.execute`` -> the pre-trade
   gate -> PaperBroker -> ``order.filled`` -> ``PortfolioService`` (compiled
   ledger);
6. positions are marked at the LTP; DashboardFeed has seen every event.

Intraday (MIS) positions are squared off at ``square_off_time`` (15:20 IST, as
Zerodha does) and no new position is opened after it that day; a daily-loss
halt squares off too.  A square-off that fails is counted and shown.

Fill timing (``fill_at``): on bars the default is ``"next_open"`` (a decision
at a bar's close fills at the next bar's open, as backtesting.py does, with
that bar's timestamp); ``"close"`` fills at the deciding bar's close.  On
ticks orders fill at the tick that is current when they are placed.

Time is the feed's: the LTP cache, the order-rate window and fill timestamps
all run on the simulated clock, so a replay is deterministic.
"""

from __future__ import annotations

import bisect
import logging
import time
import uuid
from collections import deque
from typing import Any
from dataclasses import dataclass, field

import numpy as np

from hftcore_ext.lane import first_touch

from .engines import MarketDataEngine, PaperBroker, StrategyEngineV3
from .engines.charges import ChargeSchedule
from .engines.market_data import parse_timeframe, symbol_ids
from .feeds import IST, NS, Bars
from .instruments import InstrumentTable
from .orders import FillLog
from .strategy import StrategyRunner, Values, declared_specs, is_trading_strategy
from .services import (DashboardFeed, EventBus, ExecutionService, MarketDataService,
                       PortfolioService, RiskLimits, StrategyService)

logger = logging.getLogger(__name__)

IST_OFFSET_NS = 19_800 * NS
DAY_NS = 86_400 * NS
MINUTE_NS = 60 * NS
LATENCY_SAMPLES = 1 << 17          # decision latencies kept for the percentiles


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
    square_off_failures: int = 0
    strategy_errors: int = 0                           # on_bar calls that raised
    rejections: dict = field(default_factory=dict)    # rule -> orders rejected
    at_limit: int = 0                                  # intents skipped: position already full
    after_cutoff: int = 0                              # intents skipped: after the square-off time
    wall_seconds: float = 0.0
    # run_symbol + execute per decision: the newest LATENCY_SAMPLES (bounded memory)
    decision_ns: deque = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def latency_us(self, q: float) -> float:
        return float(np.percentile(self.decision_ns, q)) / 1000 if self.decision_ns else 0.0


class PaperSession:
    """A paper-trading session over any feed with ``batches()`` and ``get_ltp()``.

    Parameters
    ----------
    feed : SyntheticFeed or ReplayFeed (shares its InstrumentTable)
    capital : float -- initial capital in rupees
    primary_tf, secondary_tf : str -- strategy timeframes
    strategy_engine : a trading ``Strategy`` (``on_bar``) or a list of them, run by
        a ``StrategyRunner``; or a fusion engine (``StrategyEngineV3`` or anything
        with ``evaluate``/``fuse``) run through ``StrategyService.run_symbol``
        (default: StrategyEngineV3 with the three built-in voting strategies)
    min_confidence : float -- intents below this are not executed (the spec's 0.5)
    max_position_size : int -- units per symbol, long or short
    square_off : bool -- flatten every position at each session's end (intraday MIS)
    charges : ChargeSchedule -- NSE costs (default: Zerodha intraday)
    checkpoint_dir : path -- enables the portfolio journal/checkpoints
    decide_on : "close" (every primary candle close) or "cross" (EMA crossovers only)
    ema_fast, ema_slow : int -- EMA periods of the bundle's ema20/ema50 slots
    fill_at : "next_open" or "close"; default next_open for bars, close for ticks
    square_off_time : "HH:MM" IST when intraday positions are squared off (with
        ``square_off``); default "15:20"
    broker : a ``Broker`` to trade through instead of the paper broker (the Kite
        broker for ``hftcore live``); its ``live`` flag sets the mode.  Everything
        else -- gate, portfolio, square-off, dashboard -- is the same session.
    """

    def __init__(self, feed, capital: float = 1_000_000.0, primary_tf: str = "5m",
                 secondary_tf: str = "15m", strategy_engine=None, min_confidence: float = 0.5,
                 max_position_size: int = 100, square_off: bool = True,
                 charges: ChargeSchedule | None = None, slippage_ticks: int = 0,
                 checkpoint_dir=None, risk: RiskLimits | None = None, history: int = 200,
                 buffer_size: int = 1000, decide_on: str = "close", ema_fast: int = 20,
                 ema_slow: int = 50, fill_at: str | None = None, square_off_time: str = "15:20",
                 broker=None):
        # a replay's data, read once (a live feed has no data() to look at: ticks)
        data_now = feed.data() if callable(getattr(feed, "data", None)) else None
        if fill_at is None:
            fill_at = "next_open" if isinstance(data_now, Bars) else "close"
        if fill_at not in ("close", "next_open"):
            raise ValueError(f"fill_at must be 'close' or 'next_open', got {fill_at!r}")
        self.fill_at = fill_at
        self._cutoff_ns = _hhmm_ns(square_off_time)
        self.feed = feed
        self.instruments: InstrumentTable = feed.instruments
        self.min_confidence = min_confidence
        self.square_off = square_off
        self.now_ns = 0             # market time: the last bar's label (start) or tick time
        self.decision_ns = 0        # when the last candle closed (its end; ticks: the tick)
        engine_obj = strategy_engine if strategy_engine is not None else StrategyEngineV3()
        members = list(engine_obj) if isinstance(engine_obj, (list, tuple)) else [engine_obj]
        trading: list[Any] = [m for m in members if is_trading_strategy(m)]
        if trading and len(trading) != len(members):
            raise ValueError("strategy_engine: give trading strategies (on_bar) or one "
                             "strategy engine, not both")
        extra_tfs: list[str] = []
        specs: list = []
        if trading:
            tf_set = {m.timeframe for m in trading if getattr(m, "timeframe", None)}
            if len(tf_set) > 1:
                raise ValueError(f"strategies decide on different timeframes "
                                 f"{sorted(tf_set)}: run them in separate sessions")
            if tf_set:
                primary_tf = secondary_tf = tf_set.pop()
            for m in trading:
                extra_tfs += list(getattr(m, "timeframes", ()) or ())
                specs += declared_specs(m)
            if len(trading) == 1 and getattr(trading[0], "ema_periods", None):
                ema_fast, ema_slow = trading[0].ema_periods
                decide_on = getattr(trading[0], "decide_on", decide_on)
        else:
            for m in getattr(engine_obj, "strategies", []):
                specs += declared_specs(m)
        by_key: dict = {}
        for sp in specs:                  # one name, one indicator: an alias may not be reused
            other = by_key.setdefault(sp.key, sp)
            if (other.name, other.params) != (sp.name, sp.params):
                raise ValueError(f"indicator name {sp.key!r} is declared twice for different "
                                 f"indicators: {other.name}{other.params} and "
                                 f"{sp.name}{sp.params}")
        for m in trading:
            unknown = [x for x in (getattr(m, "symbols", None) or ()) if x not in feed.instruments]
            if unknown:
                raise ValueError(f"strategy {m.name!r}: unknown symbol(s) {', '.join(unknown)}")
        if isinstance(data_now, Bars) and parse_timeframe(primary_tf) < int(data_now.span_s):
            raise ValueError(f"decision timeframe {primary_tf} is shorter than the data's "
                             f"{int(data_now.span_s)} s candles: no {primary_tf} candle would "
                             f"ever close")
        tfs = sorted({parse_timeframe("1m"), parse_timeframe(primary_tf),
                      parse_timeframe(secondary_tf), *map(parse_timeframe, extra_tfs)})
        self.primary_tf, self.secondary_tf = primary_tf, secondary_tf
        self.bus = EventBus(buffer_size)
        if decide_on not in ("close", "cross"):
            raise ValueError(f"decide_on must be 'close' or 'cross', got {decide_on!r}")
        self.decide_on = decide_on
        self.engine = MarketDataEngine(self.instruments, tfs, history=history,
                                       ema_fast=ema_fast, ema_slow=ema_slow)
        if specs:
            self.engine.bank.declare(specs)
        # In a replay the engine's LTP (the last ingested tick) is the market price.
        self.market_data = MarketDataService(self.engine, self.engine, cache_ttl_seconds=1.0,
                                             clock=lambda: self.now_ns / NS)
        # the spec's StrategyService runs a fusion engine; trading strategies (on_bar)
        # are run by the StrategyRunner, their orders going through the same gate
        self.strategy = StrategyService(StrategyEngineV3([]) if trading else engine_obj,
                                        self.market_data, self.bus, primary_tf, secondary_tf)
        self.portfolio = PortfolioService(capital, self.bus, checkpoint_dir)
        self.bus.subscribe("order.filled", self.portfolio.on_fill)
        # With a persistent portfolio, a restarted process must not reuse order/fill ids
        # (the portfolio would take new fills for re-sent ones); replays keep "PB" ids so
        # their trade files stay byte-identical.
        prefix = "PB" if checkpoint_dir is None else f"PB{uuid.uuid4().hex[:8]}-"
        if broker is None:
            broker = PaperBroker(self.market_data, self.instruments, slippage_ticks, charges,
                                 clock=lambda: self.now_ns, id_prefix=prefix, fill_at=fill_at)
        self.broker = broker
        # a broker the session matches against bars (a live broker's orders match at the exchange)
        self._paper_matching = callable(getattr(broker, "watch", None))
        self.mode = "live" if getattr(broker, "live", False) else "paper"
        self.execution = ExecutionService(self.broker, self.portfolio, self.bus, self.mode,
                                          max_position_size, risk, clock=lambda: self.now_ns,
                                          price_source=self.market_data,
                                          instruments=self.instruments)
        self._halt_pending = False
        self.bus.subscribe("risk.halted", self._on_halt)
        self.max_position_size = max_position_size
        self.dashboard = DashboardFeed(self.bus)
        # capital, cash and equity show before the first fill; market time, not wall time
        self.dashboard.attach(clock=lambda: self.now_ns)
        self.dashboard.update_portfolio({**self.portfolio.get_snapshot(),
                                         **self.portfolio.get_totals()})
        self.fills = FillLog()            # every order.filled payload, in order; spills to disk
        self.bus.subscribe("order.filled", lambda e: self.fills.append(e["payload"]))
        # (ts_ns, equity paise) after each step, the last of each minute of market time
        self.equity_curve: list[tuple[int, int]] = []
        self.max_exposure = 0.0                          # rupees
        self._day: int | None = None                     # IST day of the last slice
        self._cutoff_done = False                        # squared off for today
        self._primary_idx = self.engine.bank.timeframe_index(parse_timeframe(primary_tf))
        self.report = SessionReport()
        self.runner = StrategyRunner(trading, self) if trading else None
        if not trading and callable(getattr(engine_obj, "bind", None)):
            engine_obj.bind(self)             # fusion members read the session too

    # ------------------------------------------------------------ steps

    def warm_up(self, data) -> int:
        """Feed history (``Bars`` or ``Ticks`` before the session's data, e.g. the
        last days from files or Kite's historical API) into the candle bank so the
        indicators are warm at the first bar: no decisions, no orders, no fills.
        The last candle is closed at the end.  Returns the candles closed.
        ValueError once the session has started playing data."""
        if self.report.ticks or self.now_ns:
            raise ValueError("warm_up() must come before the session plays any data")
        if len(data) == 0:
            return 0
        closed = self.engine.ingest(data)
        last = int(data.ts_ns[-1])
        if isinstance(data, Bars):
            last += int(data.span_s) * NS
        closed += self.engine.flush(last)
        self.market_data.invalidate()
        if self.runner is not None:       # the first traded bar has a bar before it
            bank = self.engine.bank
            if bank.indicator_names:
                for k in np.unique(data.sym).tolist():
                    self.runner.ctx._prev[(k, self._primary_idx)] = Values(
                        bank.indicators(k, self._primary_idx))
        return closed

    def timeframe_index(self, timeframe: str) -> int:
        """The bank's index of ``timeframe`` (KeyError if the session keeps no such
        candles: list it in the strategy's ``timeframes``)."""
        k = self.engine.bank.timeframe_index(parse_timeframe(timeframe))
        if k < 0:
            raise KeyError(f"the session keeps no {timeframe} candles (add it to the "
                           f"strategy's timeframes)")
        return k

    def _submit(self, intent) -> Any:
        """An order from a strategy's context: through ExecutionService (the gate)."""
        self.report.intents += 1
        result = self.execution.execute(intent)
        if result.rule != "hold":
            self.report.orders += 1
            if result.status == "REJECTED":
                self.report.rejected += 1
        return result

    def _decide(self, symbol: str, sym: int = -1) -> None:
        t0 = time.perf_counter_ns()
        if self.runner is not None:
            self.runner.decide(symbol, sym if sym >= 0 else self.instruments.id_of(symbol))
            self.report.decisions += 1
            self.report.decision_ns.append(time.perf_counter_ns() - t0)
            return
        intent = self.strategy.run_symbol(symbol, ts=self.now_ns)
        self.report.decisions += 1
        if intent.action in ("BUY", "SELL") and intent.confidence >= self.min_confidence:
            self.report.intents += 1
            if self._cutoff_done:
                self.report.after_cutoff += 1     # no new intraday positions after square-off
                self.report.decision_ns.append(time.perf_counter_ns() - t0)
                return
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

    def _on_halt(self, event) -> None:
        # a daily-loss halt squares off (by the loop, not inside the event); a manual or
        # broker halt only stops new positions
        if event["payload"].get("rule") == "max_daily_loss":
            self._halt_pending = True

    def _cutoff_for(self, day: int) -> int:
        return day * DAY_NS - IST_OFFSET_NS + self._cutoff_ns

    def step(self, batch) -> None:
        """Process one slice of ticks (or bars) through every stage."""
        n = len(batch)
        if n == 0:
            return
        if self.runner is not None and not self.runner.started:
            self.runner.start()               # on_start, also when driven step by step
        with self.engine._lock:               # room for every symbol this batch can hold
            self.engine.sync_instruments()
        bank = self.engine.bank
        broker = self.broker
        # the kernels take int32 ids, int64 ns, float64 values (no copy when already so)
        f64 = lambda a: np.ascontiguousarray(a, np.float64)      # noqa: E731
        # ids that do not fit int32 become -1 (quarantined by the bank), never another symbol
        head = (symbol_ids(batch.sym), np.ascontiguousarray(batch.ts_ns, np.int64))
        ts = head[1]
        if isinstance(batch, Bars):
            ohlc = (f64(batch.open), f64(batch.high), f64(batch.low), f64(batch.close))
            cursor = bank.cursor(*head, open=ohlc[0], high=ohlc[1], low=ohlc[2],
                                 close=ohlc[3], volume=f64(batch.volume),
                                 span_seconds=int(batch.span_s))
            span_ns = int(batch.span_s) * NS
            same_minute = True
        else:
            ohlc = (f64(batch.price),) * 4
            cursor = bank.cursor(*head, ohlc[0], f64(batch.volume))
            span_ns = 0
            same_minute = False
        until, tf, cross = cursor.until, self._primary_idx, self.decide_on == "cross"
        tsl = ts.tolist()                     # Python ints: read at every stop
        lock, instruments = self.engine._lock, self.instruments
        bounds = None                         # (day, cut-off done) the cached cut/end are for
        cut = end = n
        i = 0
        while i < n:
            t_i = tsl[i]
            day = (t_i + IST_OFFSET_NS) // DAY_NS
            if day != self._day:                           # a new IST trading day
                if self._day is not None and self.square_off:
                    self.flatten("square-off at the day's end")   # what the cut-off missed
                self._day, self._cutoff_done = day, False
                self.execution.gate.open_entries()
            if self.square_off:
                if bounds != (day, self._cutoff_done):
                    bounds = (day, self._cutoff_done)
                    # today's cut-off, or once squared off the next day's start
                    cut = self._cutoff_for(day) if not self._cutoff_done \
                        else (day + 1) * DAY_NS - IST_OFFSET_NS
                    end = int(np.searchsorted(ts, cut, side="left"))
                if not self._cutoff_done and t_i >= cut:
                    self.now_ns = max(self.now_ns, t_i)
                    self._square_off_now("intraday square-off")
                    continue
            with lock:                        # the nogil ingest vs on_tick growing the bank
                j, sym = until(i, end, tf, cross)
                due = [sym] if sym >= 0 else []
                if same_minute and sym >= 0 and i < j < end and tsl[j] == tsl[j - 1]:
                    # the other symbols' bars of the same minute are complete candles too:
                    # take them in before deciding, so a decision sees every symbol at that
                    # close and an order waits for bars after it (whatever the symbol order)
                    k = bisect.bisect_right(tsl, tsl[j - 1], j, end)
                    while j < k:
                        j, more = until(j, k, tf, cross)
                        if more >= 0:
                            due.append(more)
            # the bars just ingested may share the cached LTPs' timestamp (one bar per
            # symbol at the same minute): drop the cache so no price lags behind its bar
            self.market_data.invalidate()
            # a live broker's orders match at the exchange; a paper one's on these bars
            if i < j and self._paper_matching and broker.has_open_orders():
                self._match_working(head, ohlc, i, j)
            if j > i:                             # j == i: a held tick was released, no new one
                self.now_ns = tsl[j - 1]
                # a candle closes at its end: what a strategy's clock reads, as it would live
                self.decision_ns = self.now_ns + span_ns
            if self._halt_pending:
                self._halt_pending = False
                self._square_off_now("daily-loss halt")
            for k_sym in due:
                self._decide(instruments.by_id(k_sym).symbol, k_sym)
            i = j
        self.report.ticks += n
        marks = {}
        for k in np.flatnonzero(np.bincount(batch.sym, minlength=1)).tolist():
            symbol = self.instruments.by_id(k).symbol
            marks[symbol] = self.engine.get_ltp(symbol)
        self.portfolio.update_prices(marks)
        led = self.portfolio.ledger
        curve = self.equity_curve                 # a minute's last point: bounded when live
        if curve and curve[-1][0] // MINUTE_NS == self.now_ns // MINUTE_NS:
            curve[-1] = (self.now_ns, led.equity)
        else:
            curve.append((self.now_ns, led.equity))
        self.max_exposure = max(self.max_exposure, led.exposure / 100)
        self.execution.check_daily_loss()      # between decisions too, once per batch

    def _match_working(self, head, ohlc, i: int, j: int) -> None:
        """Let working orders act on the bars (ticks) ``[i, j)``, in time order.

        For each symbol with working orders the broker says what would make them
        act (the next bar, a high at or above one price, a low at or below
        another); a vectorised scan finds the first such bar, and only that bar
        enters Python (the scan is compiled: ``hftcore_ext.lane.first_touch``).
        Called by ``step`` only for a paper broker with working orders and ``i < j``."""
        broker = self.broker
        sym_arr, ts = head
        o, h, lo, c = ohlc
        scan_from: dict[str, int] = {}          # symbol -> first bar not yet matched
        while True:
            best_k, best_sym = j, None
            for symbol in sorted({x.symbol for x in broker.open_orders()}):
                a = scan_from.get(symbol, i)
                if a >= best_k:
                    continue
                nxt, hi_at, lo_at = broker.watch(symbol)
                k = first_touch(sym_arr, h, lo, a, best_k, self.instruments.id_of(symbol),
                                nxt, hi_at, lo_at)
                if k < best_k:
                    best_k, best_sym = k, symbol
            if best_sym is None:
                return
            self.now_ns = int(ts[best_k])
            broker.on_bar(best_sym, float(o[best_k]), float(h[best_k]), float(lo[best_k]),
                          float(c[best_k]), int(ts[best_k]))
            scan_from[best_sym] = best_k + 1

    def _square_off_now(self, reason: str) -> None:
        if reason == "intraday square-off":
            self._cutoff_done = True
            self.execution.gate.close_entries("after the intraday square-off time")
        self.flatten(reason)

    def flatten(self, reason: str = "square-off at session end") -> None:
        """Square off every open position at market (intraday close-out); working
        orders are cancelled first.  Failures are counted in the report."""
        before = self.execution.squareoff_failures
        results = self.execution.square_off(reason=reason)
        self.report.square_offs += len(results)
        self.report.square_off_failures += self.execution.squareoff_failures - before

    def run(self, batch_seconds: float | None = None, progress=None,
            stop=None) -> SessionReport:
        """Play the whole feed as fast as it goes; returns the report.

        The feed is taken one trading day at a time (``batch_seconds`` None):
        inside a day the compiled bank runs from one decision to the next in a
        single nogil call, and marking, the ``portfolio.updated`` snapshot and the
        equity point happen once per batch, not per bar; the per-bar equity curve
        is rebuilt afterwards from the fills (``equity_series``).  With
        ``risk.max_daily_loss`` set, batches are one minute so the loss limit is
        checked every minute between decisions.  ``progress(done, total)`` is called
        after each batch; ``stop()`` returning True ends the run early."""
        if batch_seconds is None:
            batch_seconds = 60.0 if self.execution.risk.max_daily_loss is not None else 86_400.0
        t0 = time.perf_counter()
        self.dashboard.update_system_state("status", "running")
        self.dashboard.update_system_state("mode", self.mode)
        if self.runner is not None:
            self.runner.start()
        total = len(self.feed.data())
        done = 0
        for batch in self.feed.batches(batch_seconds):
            self.step(batch)
            done += len(batch)
            if progress is not None:
                progress(done, total)
            if stop is not None and stop():
                break
        with self.engine._lock:
            self.engine.bank.flush(self.now_ns)   # a tick held at the very end is applied
        if self.square_off:
            self.flatten()
            self.close_at_last_price()
            self.equity_curve.append((self.now_ns, self.portfolio.ledger.equity))
        self.finish(t0)
        return self.report

    def equity_series(self, bucket_s: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts ns, equity paise, exposure paise) after every bar close (for ticks:
        the last tick of each ``bucket_s`` bucket) of the data played so far,
        rebuilt from the fills: cash moves at each fill, positions are marked at
        each symbol's last price -- exactly what the ledger holds at those times
        (the last point equals ``ledger.equity``).  A live feed keeps no data: the
        points recorded once per batch (``equity_curve``) are returned instead."""
        data = self.feed.data() if callable(getattr(self.feed, "data", None)) else None
        if data is None or len(data) == 0:
            if not self.equity_curve:
                led = self.portfolio.ledger
                return (np.array([self.now_ns], np.int64), np.array([led.equity], np.int64),
                        np.array([led.exposure], np.int64))
            ts_l, eq_l = zip(*self.equity_curve)
            return np.array(ts_l, np.int64), np.array(eq_l, np.int64), \
                np.zeros(len(ts_l), np.int64)
        played = int(np.searchsorted(data.ts_ns, self.now_ns, side="right"))
        ts, sym = data.ts_ns[:played], data.sym[:played]
        price = (data.close if isinstance(data, Bars) else data.price)[:played]
        if played == 0:
            return (np.array([self.now_ns], np.int64),
                    np.array([self.portfolio.ledger.initial_cash], np.int64),
                    np.zeros(1, np.int64))
        if isinstance(data, Bars):
            last = np.r_[ts[1:] != ts[:-1], True]
        else:
            b = ts // (bucket_s * NS)
            last = np.r_[b[1:] != b[:-1], True]
        when = ts[last]
        if when[-1] < self.now_ns:                # the final square-off after the data
            when = np.r_[when, self.now_ns]
        fills = list(self.fills)                 # one read of what the log spilled to disk
        if not fills:
            cash0 = self.portfolio.ledger.initial_cash
            return when, np.full(len(when), cash0, np.int64), np.zeros(len(when), np.int64)
        f_ts = np.fromiter((f["ts"] for f in fills), np.int64, len(fills))
        f_q = np.fromiter((f["quantity"] if f["side"] == "BUY" else -f["quantity"]
                           for f in fills), np.int64, len(fills))
        f_px = np.fromiter((f["price_paise"] for f in fills), np.int64, len(fills))
        f_fee = np.fromiter((f["fees_paise"] for f in fills), np.int64, len(fills))
        f_sym = np.fromiter((self.instruments.id_of(f["symbol"]) for f in fills), np.int64,
                            len(fills))
        at = np.searchsorted(f_ts, when, side="right") - 1     # last fill at or before
        flow = np.cumsum(-f_q * f_px - f_fee)
        cash = self.portfolio.ledger.initial_cash + np.where(at >= 0, flow[np.maximum(at, 0)], 0)
        equity = cash.astype(np.int64)
        exposure = np.zeros(len(when), np.int64)
        for k in np.unique(f_sym).tolist():
            mine = f_sym == k
            pos = np.cumsum(f_q[mine])
            k_at = np.searchsorted(f_ts[mine], when, side="right") - 1
            held = np.where(k_at >= 0, pos[np.maximum(k_at, 0)], 0)
            rows = sym == k
            k_ts, k_px = ts[rows], np.rint(price[rows] * 100).astype(np.int64)
            p_at = np.searchsorted(k_ts, when, side="right") - 1
            px = np.where(p_at >= 0, k_px[np.maximum(p_at, 0)], 0)
            # a fill before the symbol's first price (none in a replay) is marked at cost
            last_fill_px = f_px[mine][np.maximum(k_at, 0)]
            px = np.where(p_at >= 0, px, last_fill_px)
            equity += held * px
            exposure += np.abs(held) * px
        return when, equity, exposure

    def close_at_last_price(self) -> None:
        """At the end of the data there is no next bar: let orders still waiting
        for one (the final square-off in ``next_open`` mode) fill at the last price."""
        if self.mode == "live":
            return
        for order in self.broker.open_orders():
            if order.order_type == "MARKET":
                ltp = self.engine.get_ltp(order.symbol)
                if ltp is not None:
                    self.broker.on_price(order.symbol, ltp, self.now_ns)

    def finish(self, started: float) -> SessionReport:
        """Fill in the report's totals (``started``: ``time.perf_counter()`` at the start)
        and mark the dashboard finished."""
        bank = self.engine.bank
        self.report.candles = sum(bank.closed_count(i, j) for i in range(bank.n_symbols)
                                  for j in range(len(bank.timeframes)))
        self.report.fills = self.portfolio.get_totals()["fills"]
        self.report.rejections = dict(sorted(self.execution.rejections.items()))
        if self.runner is not None:
            self.report.strategy_errors = self.runner.errors
        if self.fills and callable(getattr(self.feed, "data", None)):
            _, _, exposure = self.equity_series()
            self.max_exposure = max(self.max_exposure, float(exposure.max()) / 100)
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
            f"square-offs {r.square_offs} ({r.square_off_failures} failed)  "
            f"held at the position limit {r.at_limit}",
            "rejections by rule: " + (", ".join(f"{k} {v}" for k, v in r.rejections.items())
                                      or "none"),
            *([f"STRATEGY ERRORS: {r.strategy_errors} on_bar calls raised (the first is "
               f"logged with its traceback)"] if r.strategy_errors else []),
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


def _hhmm_ns(text: str) -> int:
    """"HH:MM" -> ns after IST midnight (ValueError if malformed)."""
    try:
        hh, mm = (int(x) for x in str(text).split(":"))
    except ValueError:
        raise ValueError(f"square_off_time must be HH:MM, got {text!r}") from None
    if not (0 <= hh < 24 and 0 <= mm < 60):
        raise ValueError(f"square_off_time must be HH:MM, got {text!r}")
    return (hh * 3600 + mm * 60) * NS


def _fmt_ts(ns) -> str:
    import datetime as dt
    if not isinstance(ns, int) or ns <= 0:
        return "-"
    return dt.datetime.fromtimestamp(ns / NS, IST).strftime("%Y-%m-%d %H:%M:%S")
