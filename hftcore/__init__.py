"""hftcore: event-driven algorithmic trading with a compiled hot path.

The numeric lane (ticks -> candles -> indicators, fills -> ledger) runs in the
compiled ``hftcore_ext`` core; the services below carry decisions as events.
Importing hftcore fails if the core is not compiled: there is no slow fallback.
"""

from hftcore_ext import bus as _bus, candles as _candles
from hftcore_ext import indicators as _indicators, ledger as _ledger
from hftcore_ext import lane as _lane, paper as _paper, ticker as _ticker

from .engines import (Broker, BrokerOrder, ChargeSchedule, EmaCross, EmaTrend, KiteBroker,
                      MarketDataEngine, OrderBook, PaperBroker,
                      RsiReversion, StrategyEngineV3, VwapReversion, ZERO_CHARGES,
                      register_strategy)
from .gate import PreTradeGate
from .feeds import ArrayFeed, Bars, KiteQuoteFeed, ReplayFeed, SyntheticFeed, Ticks
from .instruments import Instrument, InstrumentTable, nse_tick_size, to_paise
from .orders import Fill, OrderIntent, OrderResult, Signal
from .strategy import Bar, Context, Strategy
from .tuning import tune_gc
from .services import (DashboardFeed, EventBus, ExecutionService, MarketDataService,
                       PortfolioService, RiskLimits, StrategyService)

__version__ = "0.1.0"

#: True when the compiled core is loaded (always, since import fails otherwise).
COMPILED = all((m.__file__ or "").endswith((".so", ".pyd"))
               for m in (_bus, _candles, _indicators, _ledger, _ticker, _lane, _paper))

__all__ = ["COMPILED", "EventBus", "MarketDataService", "StrategyService", "ExecutionService",
           "PortfolioService", "DashboardFeed", "RiskLimits", "MarketDataEngine",
           "StrategyEngineV3", "EmaTrend", "RsiReversion", "VwapReversion", "register_strategy",
           "EmaCross",
           "PaperBroker", "KiteBroker", "Broker", "BrokerOrder", "OrderBook", "PreTradeGate",
           "ChargeSchedule", "ZERO_CHARGES", "SyntheticFeed",
           "ReplayFeed", "ArrayFeed", "KiteQuoteFeed", "Ticks", "Bars", "Instrument",
           "InstrumentTable", "nse_tick_size",
           "to_paise", "OrderIntent", "OrderResult", "Signal", "Fill", "tune_gc", "Strategy",
           "Context", "Bar"]
