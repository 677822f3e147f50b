"""Compiled core of hftcore (Cython).

Modules: ``bus`` (event log + dispatch), ``indicators`` (EMA, RSI, ATR, VWAP,
Slope, Bundle), ``candles`` (CandleBank), ``ledger`` (Ledger, integer paise),
``ticker`` (Kite ticker binary frames -> numpy columns).
There is no pure-Python fallback: if these fail to import, the build failed.
"""
