"""The engines the services wrap: market data, strategies, brokers, charges."""

from .brokers import Broker, BrokerOrder, KiteBroker, OrderBook, PaperBroker
from .charges import ZERO_CHARGES, ChargeSchedule
from .market_data import MarketDataEngine, parse_timeframe
from .strategy import (STRATEGY_REGISTRY, EmaCross, EmaTrend, RsiReversion, StrategyEngineV3,
                       VwapReversion, register_strategy)

__all__ = ["Broker", "OrderBook", "BrokerOrder", "KiteBroker", "PaperBroker", "ChargeSchedule",
           "ZERO_CHARGES",
           "MarketDataEngine", "parse_timeframe", "StrategyEngineV3", "EmaTrend", "RsiReversion",
           "VwapReversion", "STRATEGY_REGISTRY", "register_strategy", "EmaCross"]
