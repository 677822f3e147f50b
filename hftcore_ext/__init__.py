"""Compiled core of hftcore (Cython).

Modules: ``bus`` (event log + dispatch), ``indicators`` (EMA, RSI, ATR, VWAP,
Slope, Bundle), ``candles`` (CandleBank), ``ledger`` (Ledger, integer paise),
``ticker`` (Kite ticker binary frames -> numpy columns), ``lane`` (the event lane's
gate book, fusion, bar scan and dashboard intake), ``paper`` (the paper broker's
order records, fill bookkeeping and matching), ``csvscan`` (one-pass CSV scanner;
optional: without it loading goes through pyarrow).
There is no pure-Python fallback for the others: if they fail to import, the build failed.
"""
from importlib.machinery import PathFinder as _PathFinder

_MODULES = ("bus", "indicators", "candles", "ledger", "ticker", "lane", "paper")


def _check_built() -> None:
    # Importing the package from a source tree that was never compiled (a notebook
    # at the repository root shadows the installed package) would otherwise fail
    # later with "cannot import name 'bus'", which names neither cause nor fix.
    missing = [m for m in _MODULES
               if _PathFinder.find_spec(f"{__name__}.{m}", __path__) is None]
    if missing:
        where = __path__[0] if __path__ else "?"
        raise ImportError(
            f"hftcore_ext is imported from {where}, where the compiled extension modules "
            f"({', '.join(missing)}) are not built for this Python. Build them in place with "
            f"`python setup.py build_ext --inplace` (or `pip install -e .`) in the repository, "
            f"or install the package (`pip install .`) and run from outside the source tree "
            f"so the installed copy is imported.")


_check_built()
