"""The command users run: ``hftcore backtest`` end to end (process start, imports, loading
the candle files, the run through the services, the report folder) on 1-minute Kite candles
for 4 symbols, beside backtesting.py, backtrader and NautilusTrader running the same EMA(10)/
EMA(30) crossover on the same files (read with pandas inside the timed call).

Every run is checked against one reference computed here from TA-Lib's EMAs (the definition
hftcore's indicators follow; the baselines use TA-Lib's EMA too, so the EMAs are identical):
per symbol, the list of position entries (bar time, side) and the final PnL to the paisa.
hftcore's entries are read from the report folder's fills.csv (each fill opens or reverses a
position) and its PnL from summary.json's ``final_equity``.  A mismatch fails the benchmark.

The rule (hftcore's ``ema_cross`` engine, backtesting.py's ``crossover``): once both EMAs are
warm, a bar where EMA(fast) - EMA(slow) goes from strictly negative to strictly positive
opens long ``QTY`` (reversing a short), the reverse opens short; fills at that bar's close,
no costs, no square-off; the last position is marked at the last close.

HFTCORE_BENCH_DAYS sets the trading days per symbol (default 500, two years:
4 x 187,500 = 750,000 bars; CI's short pass uses 5).
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bench_loading import IST_S, session_minutes

import hftcore

SYMBOLS = ("RELIANCE", "INFY", "TCS", "SBIN")
DAYS = int(os.environ.get("HFTCORE_BENCH_DAYS", "500"))
BARS = DAYS * 375                                 # per symbol: 09:15-15:29 IST, 375 minutes
ROWS = BARS * len(SYMBOLS)
FAST, SLOW, QTY, CAPITAL = 10, 30, 100, 1e9
TICK = 0.05
GROUP = (f"hftcore backtest command, EMA({FAST}/{SLOW}) cross, {len(SYMBOLS)} symbols x "
         f"{DAYS} days of 1m candles ({ROWS:,} bars)")
COMMON = ["--quantity", str(QTY), "--charges", "zero", "--fill-at", "close", "--no-square-off",
          "--capital", f"{CAPITAL:g}"]
EMA_CROSS = ["--strategy", "ema_cross", "--param", f"fast={FAST}", "--param", f"slow={SLOW}"]


# ------------------------------------------------------------------ data and reference

def candles(k: int):
    """Symbol k's bars as integer ticks of 0.05 (open, high, low, close) and volumes:
    a seeded random walk; each bar opens at the previous close."""
    rng = np.random.default_rng(1100 + k)
    close = 20_000 * (k + 1) + np.cumsum(rng.integers(-4, 5, BARS))    # Rs 1,000 x (k+1)
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) + rng.integers(0, 3, BARS)
    low = np.minimum(open_, close) - rng.integers(0, 3, BARS)
    vol = rng.integers(100, 50_000, BARS)
    return open_, high, low, close, vol


def rupees(ticks) -> list[str]:
    """Ticks as exact two-decimal text (no float rounding on the way)."""
    return [f"{t // 20}.{t % 20 * 5:02d}" for t in ticks.tolist()]


def write_folder(folder: Path) -> None:
    """One Kite historical-candle CSV per symbol, as ``hftcore data fetch`` writes them."""
    ts = session_minutes(BARS)
    text_ts = np.char.add(np.datetime_as_string((ts + IST_S).astype("datetime64[s]")),
                          "+05:30").tolist()
    for k, sym in enumerate(SYMBOLS):
        o, h, lo, c, v = candles(k)
        with open(folder / f"{sym}.csv", "w") as fh:
            fh.write("date,open,high,low,close,volume\n")
            fh.writelines(f"{t},{a},{b},{d},{e},{n}\n" for t, a, b, d, e, n in
                          zip(text_ts, rupees(o), rupees(h), rupees(lo), rupees(c), v.tolist()))


def reference():
    """Per symbol: [(IST bar time 'YYYY-MM-DD HH:MM:SS', 'BUY'|'SELL'), ...] position
    entries, and the total PnL in rupees (exact: integer ticks)."""
    import talib
    ts = session_minutes(BARS)
    labels = np.datetime_as_string((ts + IST_S).astype("datetime64[s]"))
    entries, pnl_ticks = {}, 0
    for k, sym in enumerate(SYMBOLS):
        close = candles(k)[3]
        px = close * TICK
        sign = np.sign(talib.EMA(px, FAST) - talib.EMA(px, SLOW))   # nan while not warm
        up = (sign[:-1] == -1) & (sign[1:] == 1)
        down = (sign[:-1] == 1) & (sign[1:] == -1)
        at = np.flatnonzero(up | down) + 1
        side = np.where(up[at - 1], 1, -1)
        entries[sym] = [(str(labels[i]).replace("T", " "), "BUY" if s > 0 else "SELL")
                        for i, s in zip(at.tolist(), side.tolist())]
        pos = np.zeros(BARS, np.int64)                 # position held after each bar's close
        pos[at] = side * QTY
        held = np.maximum.accumulate(np.where(pos != 0, np.arange(BARS), -1))
        pos = np.where(held >= 0, pos[np.maximum(held, 0)], 0)
        pnl_ticks += int((pos[:-1] * np.diff(close)).sum())
    return entries, pnl_ticks * TICK


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("command") / "candles"
    folder.mkdir()
    write_folder(folder)
    entries, pnl = reference()
    assert sum(map(len, entries.values())) >= 2 * len(SYMBOLS)    # the check can fail
    return folder, entries, pnl


def check(benchmark, got_entries, got_pnl, want_entries, want_pnl):
    """The run's trades and PnL must be the reference's (hence every tool's)."""
    for sym in SYMBOLS:
        got, want = got_entries.get(sym, []), want_entries[sym]
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        assert got == want, (f"{sym}: {len(got)} entries vs {len(want)} in the reference; "
                             f"first difference at #{first}: "
                             f"{None if first is None else (got[first], want[first])}")
    assert abs(got_pnl - want_pnl) < 0.005, (got_pnl, want_pnl)
    benchmark.extra_info["bars"] = ROWS
    benchmark.extra_info["bars_per_s"] = ROWS / benchmark.stats.stats.median
    benchmark.extra_info["entries"] = sum(map(len, want_entries.values()))
    benchmark.extra_info["pnl"] = round(want_pnl, 2)


def read_frames(folder: Path):
    """The candle files as pandas frames indexed by IST bar time (what the baselines read)."""
    import pandas as pd
    frames = {}
    for sym in SYMBOLS:
        df = pd.read_csv(folder / f"{sym}.csv", index_col="date", parse_dates=["date"])
        df.index = df.index.tz_localize(None)              # '+05:30' -> naive IST
        frames[sym] = df
    return frames


def label(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------ hftcore, the command

def hftcore_command(folder: Path, out: Path, *flags: str) -> Path:
    """``python -m hftcore backtest`` in a fresh process, from a scratch directory (so the
    imported package is the one this process uses, never a source tree in the cwd)."""
    env = dict(os.environ)
    root = str(Path(hftcore.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    subprocess.run([sys.executable, "-m", "hftcore", "backtest", "--data", str(folder),
                    *flags, *COMMON, "--out", str(out)],
                   check=True, cwd=out.parent, env=env, stdout=subprocess.DEVNULL)
    return out


def hftcore_trades(out: Path):
    entries: dict = {}
    with open(out / "fills.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            entries.setdefault(row["symbol"], []).append((row["time"], row["side"]))
    summary = json.loads((out / "summary.json").read_text())
    return entries, summary["final_equity"] - CAPITAL


@pytest.mark.benchmark(group=GROUP)
def test_hftcore_command_ema_cross(benchmark, data, tmp_path):
    folder, want, pnl = data
    runs = iter(range(10**6))
    out = benchmark.pedantic(lambda: hftcore_command(folder, tmp_path / f"out{next(runs)}",
                                                     *EMA_CROSS), rounds=1, iterations=1)
    check(benchmark, *hftcore_trades(out), want, pnl)


@pytest.mark.benchmark(group=GROUP)
def test_hftcore_command_default_strategies(benchmark, data, tmp_path):
    """The same command with the configuration's default strategies (no ``--strategy``):
    timed only; their trades are not an EMA cross."""
    folder = data[0]
    runs = iter(range(10**6))
    out = benchmark.pedantic(lambda: hftcore_command(folder, tmp_path / f"out{next(runs)}"),
                             rounds=1, iterations=1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ticks"] == ROWS and not summary.get("partial")
    benchmark.extra_info["bars"] = ROWS
    benchmark.extra_info["bars_per_s"] = ROWS / benchmark.stats.stats.median
    benchmark.extra_info["fills"] = summary["fills"]


# ------------------------------------------------------------------ baselines

@pytest.mark.benchmark(group=GROUP)
@pytest.mark.filterwarnings("ignore:Some trades remain open")
def test_backtesting_py_ema_cross(benchmark, data):
    """backtesting.py: one Backtest per symbol (4 runs), TA-Lib EMAs through ``self.I``,
    ``crossover``, 100 units, no commission, fills at the bar's close (``trade_on_close``),
    ``exclusive_orders`` reversal.  The position still open at the end stays open
    (``finalize_trades=True`` would close it at the last-but-one close); "Equity Final" marks
    it at the last close, as hftcore does."""
    bt = pytest.importorskip("backtesting")
    talib = pytest.importorskip("talib")
    from backtesting.lib import crossover
    folder, want, pnl = data

    class Cross(bt.Strategy):
        def init(self):
            self.fast = self.I(talib.EMA, self.data.Close, FAST)
            self.slow = self.I(talib.EMA, self.data.Close, SLOW)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy(size=QTY)
            elif crossover(self.slow, self.fast):
                self.sell(size=QTY)

    def run():
        return {sym: bt.Backtest(df.rename(columns=str.title), Cross, cash=CAPITAL,
                                 trade_on_close=True, exclusive_orders=True).run()
                for sym, df in read_frames(folder).items()}

    stats = benchmark.pedantic(run, rounds=1, iterations=1)
    entries = {sym: [(label(t), "BUY" if n > 0 else "SELL") for t, n in
                     [*zip(s._trades.EntryTime, s._trades.Size),
                      *((t.entry_time, t.size) for t in s._strategy.trades)]]
               for sym, s in stats.items()}
    got_pnl = sum(s["Equity Final [$]"] - CAPITAL for s in stats.values())
    check(benchmark, entries, got_pnl, want, pnl)


@pytest.mark.benchmark(group=GROUP)
def test_backtrader_ema_cross(benchmark, data):
    """backtrader: one Cerebro with the 4 symbols' feeds, TA-Lib EMAs (``bt.talib``), the
    same crossover test in ``next``, ``order_target_size`` +-100, cheat-on-close so the
    order fills at the signalling bar's close."""
    bt = pytest.importorskip("backtrader")
    pytest.importorskip("talib")
    folder, want, pnl = data

    class Cross(bt.Strategy):
        def __init__(self):
            self.emas = [(d, bt.talib.EMA(d.close, timeperiod=FAST),
                          bt.talib.EMA(d.close, timeperiod=SLOW)) for d in self.datas]
            self.entries = {}

        def next(self):
            for d, f, s in self.emas:
                if f[-1] < s[-1] and f[0] > s[0]:
                    self.order_target_size(d, target=QTY)
                elif f[-1] > s[-1] and f[0] < s[0]:
                    self.order_target_size(d, target=-QTY)

        def notify_order(self, order):
            if order.status == order.Completed:
                self.entries.setdefault(order.data._name, []).append(
                    (label(bt.num2date(order.executed.dt)), "BUY" if order.isbuy() else "SELL"))

    def run():
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.broker.set_coc(True)
        cerebro.broker.setcash(CAPITAL)
        for sym, df in read_frames(folder).items():
            cerebro.adddata(bt.feeds.PandasData(dataname=df), name=sym)
        cerebro.addstrategy(Cross)
        strat = cerebro.run()[0]
        return strat.entries, cerebro.broker.getvalue() - CAPITAL

    entries, got_pnl = benchmark.pedantic(run, rounds=1, iterations=1)
    check(benchmark, entries, got_pnl, want, pnl)


@pytest.mark.benchmark(group=GROUP)
def test_nautilus_ema_cross(benchmark, data):
    """NautilusTrader: one BacktestEngine (NETTING margin account), the 4 symbols' bars made
    with its BarDataWrangler from the same pandas frames, one strategy per symbol sending
    market orders for the difference to the +-100 target; with bar execution an order sent
    from ``on_bar`` fills at that bar's close.  The others fill any size at the close; Nautilus
    limits the size on offer at a bar's prices by the bar's volume and fills the rest of a
    larger order at other prices or on a later bar (a 200-unit reversal on a thin bar did
    here), so its bars get a volume of 1e9 (the wrangler's ``default_volume``, the file's
    volume column left out).

    Nautilus's ExponentialMovingAverage is seeded with the first price, not TA-Lib's SMA of
    the first ``period`` prices, so (as in test_bench_backtest) each strategy reads TA-Lib
    EMAs computed from the frame's closes inside the timed call, bar by bar; the crossover
    test in ``on_bar`` is the same."""
    pytest.importorskip("nautilus_trader.backtest.engine")
    talib = pytest.importorskip("talib")
    import pandas as pd
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, TraderId, Venue
    from nautilus_trader.model.objects import Money, Quantity
    from nautilus_trader.persistence.wranglers import BarDataWrangler
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.trading.strategy import Strategy
    folder, want, pnl = data
    emas: dict = {}

    class CrossConfig(StrategyConfig, frozen=True):
        instrument_id: InstrumentId
        bar_type: BarType
        symbol: str

    class Cross(Strategy):
        def __init__(self, config):
            super().__init__(config)
            self.fast, self.slow = emas[config.symbol]
            self.i, self.fills = 0, []

        def on_start(self):
            self.subscribe_bars(self.config.bar_type)

        def on_bar(self, bar):
            i = self.i
            self.i += 1
            if i == 0:
                return
            f0, s0, f, s = self.fast[i - 1], self.slow[i - 1], self.fast[i], self.slow[i]
            target = QTY if f0 < s0 and f > s else -QTY if f0 > s0 and f < s else None
            if target is None:
                return
            net = int(self.portfolio.net_position(self.config.instrument_id))
            delta = target - net
            self.submit_order(self.order_factory.market(
                self.config.instrument_id, OrderSide.BUY if delta > 0 else OrderSide.SELL,
                Quantity.from_int(abs(delta))))

        def on_order_filled(self, event):
            qty = float(event.last_qty) * (1 if event.order_side == OrderSide.BUY else -1)
            self.fills.append((event.ts_event, qty, float(event.last_px)))

    def run():
        engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"),
                                                     logging=LoggingConfig(bypass_logging=True)))
        engine.add_venue(venue=Venue("XNSE"), oms_type=OmsType.NETTING,
                         account_type=AccountType.MARGIN, base_currency=USD,
                         starting_balances=[Money(CAPITAL, USD)])
        strategies, last = {}, {}
        for sym, df in read_frames(folder).items():
            inst = TestInstrumentProvider.equity(sym, "XNSE")
            engine.add_instrument(inst)
            bar_type = BarType.from_str(f"{inst.id}-1-MINUTE-LAST-EXTERNAL")
            frame = df.drop(columns="volume").set_axis(
                df.index.tz_localize("Asia/Kolkata").tz_convert("UTC"))
            engine.add_data(BarDataWrangler(bar_type, inst).process(frame, default_volume=1e9))
            close = df["close"].to_numpy()
            emas[sym] = (talib.EMA(close, FAST), talib.EMA(close, SLOW))
            last[sym] = close[-1]
            strategies[sym] = Cross(CrossConfig(instrument_id=inst.id, bar_type=bar_type,
                                                symbol=sym))
            engine.add_strategy(strategies[sym])
        engine.run()
        engine.dispose()
        return {sym: s.fills for sym, s in strategies.items()}, last

    fills, last = benchmark.pedantic(run, rounds=1, iterations=1)
    ist = lambda ns: label(pd.Timestamp(ns + IST_S * 10**9))  # noqa: E731
    entries = {sym: [(ist(t), "BUY" if q > 0 else "SELL") for t, q, _ in f]
               for sym, f in fills.items()}
    got_pnl = sum(-sum(q * px for _, q, px in f) + sum(q for _, q, _ in f) * last[sym]
                  for sym, f in fills.items())
    check(benchmark, entries, got_pnl, want, pnl)
