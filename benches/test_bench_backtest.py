"""The whole backtest: an EMA(10)/EMA(30) crossover, long/short 100 units, market orders at
the bar close, no costs, on synthetic 1-minute bars -- hftcore through its real services
(MarketDataService -> StrategyService -> ExecutionService + PaperBroker -> PortfolioService
-> DashboardFeed) beside backtrader and backtesting.py on the same bars.  Each run's number
of position reversals is checked to be the same.

HFTCORE_BENCH_BARS sets the number of bars (default 200,000; CI uses fewer).
"""
import os

import numpy as np
import pytest

from hftcore import (ArrayFeed, Bars, InstrumentTable, RiskLimits, Signal, StrategyEngineV3,
                     ZERO_CHARGES)
from hftcore.session import PaperSession
from hftcore_ext.indicators import EMA

N_BARS = int(os.environ.get("HFTCORE_BENCH_BARS", "200000"))
T0 = 1_704_080_700 * 10**9            # 2024-01-01 09:15 IST
QTY = 100


def synthetic_bars(n=N_BARS, seed=7):
    rng = np.random.default_rng(seed)
    close = np.round(1500 * np.exp(np.cumsum(rng.normal(0, 0.0008, n))), 1)
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.round(np.abs(rng.normal(0, 0.4, n)), 1)
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    vol = rng.integers(100, 10_000, n).astype(float)
    ts = T0 + np.arange(n, dtype=np.int64) * 60 * 10**9
    return ts, open_, high, low, close, vol


BARS = synthetic_bars()


def expected_reversals():
    """EMA crossovers after the first (which opens the position), from the EMAs directly."""
    close = BARS[4]
    sign = np.sign(EMA(10).batch(close) - EMA(30).batch(close))
    prev, count = 0.0, 0
    for s in sign:
        if s != s or s == 0:
            continue
        if prev and s != prev:
            count += 1
        prev = s
    return count - 1


class EmaCross:
    """Long when EMA fast > slow, short when below (the session's engine runs the
    bundle's ema20/ema50 slots with periods 10 and 30).

    Called at every close (``track=True``) it remembers the last side and speaks only
    when it flips; called by the compiled crossover watch, every call is a flip."""
    name = "ema_cross"

    def __init__(self, track=False):
        self.track, self.side = track, {}

    def evaluate(self, symbol, timeframe, bundle, ltp):
        fast, slow = bundle["ema20"], bundle["ema50"]
        if fast is None or slow is None or fast == slow:
            return None
        side = "BUY" if fast > slow else "SELL"
        if self.track:
            prev, self.side[symbol] = self.side.get(symbol), side
            if prev is None or prev == side:
                return None
        return Signal(self.name, symbol, timeframe, side, 1.0, "")


def run_hftcore(decide_on="cross"):
    instruments = InstrumentTable()
    instruments.add("RELIANCE", tick_size=0.1)
    ts, o, h, l, c, v = BARS
    feed = ArrayFeed(Bars(np.zeros(len(ts), np.int32), ts, o, h, l, c, v, 60), instruments)
    # quantity 2 x 100 with max_position_size 100: the first cross opens 100, every
    # later one reverses (execution sizes it down to the room left)
    session = PaperSession(feed, capital=1e9, primary_tf="1m", secondary_tf="1m",
                           strategy_engine=StrategyEngineV3([EmaCross(decide_on == "close")],
                                                            quantity=2 * QTY),
                           min_confidence=0.0, max_position_size=QTY, square_off=False,
                           charges=ZERO_CHARGES, decide_on=decide_on, ema_fast=10, ema_slow=30,
                           fill_at="close",       # "market orders at the bar close"
                           risk=RiskLimits(max_order_value=None, max_orders_per_second=None,
                                          max_orders_per_minute=None, max_orders_per_day=None,
                                          check_buying_power=False))
    session.run(batch_seconds=10**7)
    return session.portfolio.get_totals()["fills"] - 1      # first fill opens, the rest reverse


@pytest.mark.benchmark(group=f"backtest EMA(10/30) crossover, {N_BARS:,} 1m bars")
def test_hftcore_services_backtest(benchmark):
    reversals = benchmark.pedantic(run_hftcore, rounds=3, iterations=1)
    assert reversals == expected_reversals()
    benchmark.extra_info["bars_per_s"] = N_BARS / benchmark.stats.stats.median
    benchmark.extra_info["reversals"] = reversals


def _frame():
    pd = pytest.importorskip("pandas")
    ts, o, h, l, c, v = BARS
    return pd.DataFrame({"Open": o, "High": h, "Low": l, "Close": c, "Volume": v},
                        index=pd.to_datetime(ts, utc=True).tz_localize(None))


@pytest.mark.benchmark(group=f"backtest EMA(10/30) crossover, {N_BARS:,} 1m bars")
def test_backtesting_py_backtest(benchmark):
    bt = pytest.importorskip("backtesting")
    df = _frame()
    fast_v, slow_v = EMA(10).batch(df.Close.values), EMA(30).batch(df.Close.values)

    class Cross(bt.Strategy):
        def init(self):
            self.fast = self.I(lambda: fast_v)
            self.slow = self.I(lambda: slow_v)
            self.reversals = 0

        def next(self):
            f, s, pf, ps = self.fast[-1], self.slow[-1], self.fast[-2], self.slow[-2]
            if pf <= ps and f > s:
                if self.position:
                    self.position.close()
                    type(self).count += 1
                self.buy(size=QTY)
            elif pf >= ps and f < s:
                if self.position:
                    self.position.close()
                    type(self).count += 1
                self.sell(size=QTY)

    def run():
        Cross.count = 0
        bt.Backtest(df, Cross, cash=1e9, trade_on_close=True).run()
        return Cross.count
    reversals = benchmark.pedantic(run, rounds=1, iterations=1)
    assert reversals == expected_reversals()
    benchmark.extra_info["bars_per_s"] = N_BARS / benchmark.stats.stats.median


@pytest.mark.benchmark(group=f"backtest EMA(10/30) crossover, {N_BARS:,} 1m bars")
def test_backtrader_backtest(benchmark):
    bt = pytest.importorskip("backtrader")
    df = _frame()

    class Cross(bt.Strategy):
        def __init__(self):
            self.x = bt.ind.CrossOver(bt.ind.EMA(period=10), bt.ind.EMA(period=30))

        def next(self):
            if self.x[0] > 0:
                type(self).count += self.position.size != 0
                self.order_target_size(target=QTY)
            elif self.x[0] < 0:
                type(self).count += self.position.size != 0
                self.order_target_size(target=-QTY)

    def run():
        Cross.count = 0
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.broker.set_coc(True)
        cerebro.broker.setcash(1e12)
        cerebro.adddata(bt.feeds.PandasData(dataname=df))
        cerebro.addstrategy(Cross)
        cerebro.run()
        return Cross.count
    reversals = benchmark.pedantic(run, rounds=1, iterations=1)
    assert reversals == expected_reversals()
    benchmark.extra_info["bars_per_s"] = N_BARS / benchmark.stats.stats.median


@pytest.mark.benchmark(group=f"backtest EMA(10/30) crossover, {N_BARS:,} 1m bars")
def test_hftcore_services_backtest_every_close(benchmark):
    """The same run, but Python decides at every bar close (decide_on="close") instead of
    being called by the compiled crossover watch: the cost of the event lane per bar."""
    reversals = benchmark.pedantic(run_hftcore, ("close",), rounds=1, iterations=1)
    assert reversals == expected_reversals()
    benchmark.extra_info["bars_per_s"] = N_BARS / benchmark.stats.stats.median


@pytest.mark.benchmark(group=f"backtest EMA(10/30) crossover, {N_BARS:,} 1m bars")
def test_nautilus_backtest_engine(benchmark):
    """NautilusTrader's BacktestEngine with a crossover strategy.  Nautilus's own EMA is
    not SMA-seeded, so the strategy reads the same precomputed EMA values as the
    backtesting.py run: the engine (bars, orders, fills, portfolio) is what is timed."""
    pytest.importorskip("nautilus_trader.backtest.engine")
    pd = pytest.importorskip("pandas")
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

    ts, o, h, l, c, v = BARS
    fast_v, slow_v = EMA(10).batch(c), EMA(30).batch(c)

    class CrossConfig(StrategyConfig, frozen=True):
        instrument_id: InstrumentId
        bar_type: BarType

    class Cross(Strategy):
        reversals = 0

        def __init__(self, config):
            super().__init__(config)
            self.i, self.prev = 0, 0

        def on_start(self):
            self.subscribe_bars(self.config.bar_type)

        def on_bar(self, bar):
            i = self.i
            self.i += 1
            d = fast_v[i] - slow_v[i]
            if d != d:
                return
            sign = 1 if d > 0 else (-1 if d < 0 else self.prev)
            if self.prev and sign != self.prev:
                net = int(self.portfolio.net_position(self.config.instrument_id))
                delta = QTY * sign - net
                type(self).reversals += net != 0
                self.submit_order(self.order_factory.market(
                    self.config.instrument_id, OrderSide.BUY if delta > 0 else OrderSide.SELL,
                    Quantity.from_int(abs(delta))))
            self.prev = sign

    def run():
        engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"),
                                                     logging=LoggingConfig(bypass_logging=True)))
        engine.add_venue(venue=Venue("XNAS"), oms_type=OmsType.NETTING,
                         account_type=AccountType.MARGIN, base_currency=USD,
                         starting_balances=[Money(1_000_000_000, USD)])
        inst = TestInstrumentProvider.equity("RELIANCE", "XNAS")
        engine.add_instrument(inst)
        bar_type = BarType.from_str(f"{inst.id}-1-MINUTE-LAST-EXTERNAL")
        df = pd.DataFrame({"open": o, "high": h, "low": l, "close": c, "volume": v},
                          index=pd.to_datetime(ts, utc=True))
        engine.add_data(BarDataWrangler(bar_type, inst).process(df))
        Cross.reversals = 0
        engine.add_strategy(Cross(CrossConfig(instrument_id=inst.id, bar_type=bar_type)))
        engine.run()
        engine.dispose()
        return Cross.reversals
    reversals = benchmark.pedantic(run, rounds=1, iterations=1)
    assert reversals == expected_reversals()
    benchmark.extra_info["bars_per_s"] = N_BARS / benchmark.stats.stats.median
