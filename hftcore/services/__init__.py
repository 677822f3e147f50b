"""The six services of the HFT Architecture v3 spec (``services`` in the spec).

EventBus -> MarketDataService -> StrategyService -> ExecutionService ->
PortfolioService -> DashboardFeed; see docs/api.md for each API.
"""

from .dashboard_feed import DashboardFeed
from .event_bus import EventBus
from .execution_service import ExecutionService, RiskLimits
from .market_data_service import MarketDataService
from .portfolio_service import PortfolioService
from .strategy_service_v3 import StrategyService

__all__ = ["EventBus", "MarketDataService", "StrategyService", "ExecutionService",
           "PortfolioService", "DashboardFeed", "RiskLimits"]
