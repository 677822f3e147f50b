"""Compiled core of hftcore (Cython).

Modules: ``bus`` (event log + dispatch), ``indicators`` (EMA, RSI, ATR, VWAP,
Slope, Bundle), ``candles`` (CandleBank), ``ledger`` (Ledger, integer paise).
There is no pure-Python fallback: if these fail to import, the build failed.
"""
