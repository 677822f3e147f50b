"""Instruments and money: the tick grid every service checks prices against.

Money crosses into the compiled ledger as integer paise (1 rupee = 100 paise);
``to_paise`` is the one place a rupee float becomes an int.

NSE cash equities tick by price band (NSE circular, effective 2025):

=====================  ==========
last price (rupees)    tick size
=====================  ==========
below 250              0.01
250 to below 1,000     0.05
1,000 to below 5,000   0.10
5,000 to below 10,000  0.50
10,000 to below 20,000 1.00
20,000 and above       5.00
=====================  ==========
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator

logger = logging.getLogger(__name__)

# (upper bound exclusive in paise, tick in paise)
NSE_EQ_TICK_BANDS: tuple[tuple[int, int], ...] = (
    (25_000, 1),
    (100_000, 5),
    (500_000, 10),
    (1_000_000, 50),
    (2_000_000, 100),
)
NSE_EQ_TOP_TICK = 500
MAX_PAISE = 10**17            # Rs 1e15: keeps every product of money and units inside int64


def to_paise(rupees: Any) -> int:
    """Rupees -> integer paise, rounded to the nearest paisa.

    Raises ValueError for NaN, infinity or a non-number.
    """
    if isinstance(rupees, bool) or not isinstance(rupees, (int, float)):
        try:
            rupees = float(rupees)  # numpy scalars, Decimal
        except (TypeError, ValueError):
            raise ValueError(f"price must be a number, got {rupees!r}") from None
    paise = rupees * 100
    if not math.isfinite(paise) or abs(paise) > MAX_PAISE:
        raise ValueError(f"amount must be finite and within Rs {MAX_PAISE / 100:,.0f}, "
                         f"got {rupees!r}")
    return int(round(paise))


def to_rupees(paise: int) -> float:
    """Integer paise -> rupees (for display and the documented float API)."""
    return paise / 100


def nse_tick_paise(price_paise: int) -> int:
    """Tick size in paise of an NSE cash-equity at ``price_paise``."""
    for upper, tick in NSE_EQ_TICK_BANDS:
        if price_paise < upper:
            return tick
    return NSE_EQ_TOP_TICK


def nse_tick_size(price: float) -> float:
    """Tick size in rupees of an NSE cash-equity at ``price`` rupees."""
    return nse_tick_paise(to_paise(price)) / 100


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument.

    ``tick_size`` is the exchange's static tick in rupees (as in Kite's
    instruments dump); for NSE equities (``banded=True``) the tick actually in
    force follows the price band, see ``tick_paise``.
    """

    id: int
    symbol: str
    exchange: str = "NSE"
    tick_size: float = 0.05
    lot_size: int = 1
    instrument_token: int = 0
    name: str = ""
    last_price: float = 0.0
    instrument_type: str = "EQ"
    banded: bool = True

    def tick_paise(self, price_paise: int) -> int:
        """Tick size in paise in force at ``price_paise``."""
        if self.banded:
            return nse_tick_paise(price_paise)
        return max(1, to_paise(self.tick_size))

    def on_grid(self, price_paise: int) -> bool:
        """True if ``price_paise`` is a valid price on this instrument's tick grid."""
        return price_paise > 0 and price_paise % self.tick_paise(price_paise) == 0

    def snap(self, price: float, direction: int = 0) -> int:
        """Nearest grid price in paise to ``price`` rupees; ``direction`` +1 rounds
        up, -1 rounds down, 0 to nearest."""
        paise = to_paise(price)
        tick = self.tick_paise(max(paise, 1))
        if direction > 0:
            q = -(-paise // tick)
        elif direction < 0:
            q = paise // tick
        else:
            q = (paise + tick // 2) // tick
        return max(tick, q * tick)


class InstrumentTable:
    """Symbol -> Instrument, with dense integer ids for the compiled core.

    Ids are assigned in insertion order and never reused, so they index the
    candle bank and the ledger directly.
    """

    def __init__(self, instruments: Iterable[Instrument] = ()):
        self._by_symbol: dict[str, Instrument] = {}
        self._by_key: dict[tuple[str, str], Instrument] = {}     # (exchange, symbol)
        self._by_token: dict[int, Instrument] = {}
        self._by_id: list[Instrument] = []
        for inst in instruments:
            self.add(inst.symbol, exchange=inst.exchange, tick_size=inst.tick_size,
                     lot_size=inst.lot_size, instrument_token=inst.instrument_token,
                     name=inst.name, last_price=inst.last_price,
                     instrument_type=inst.instrument_type, banded=inst.banded)

    def add(self, symbol: str, *, exchange: str = "NSE", tick_size: float = 0.05,
            lot_size: int = 1, instrument_token: int = 0, name: str = "",
            last_price: float = 0.0, instrument_type: str = "EQ",
            banded: bool | None = None) -> Instrument:
        """Register ``symbol`` on ``exchange`` (or return it if already there).

        A plain symbol lookup finds the first exchange registered with that
        symbol; ``get("BSE:RELIANCE")`` and ``by_token`` find any of them.
        """
        if not isinstance(symbol, str) or not symbol.strip():
            raise ValueError(f"symbol must be a non-empty str, got {symbol!r}")
        symbol = symbol.strip().upper()
        found = self._by_key.get((exchange, symbol))
        if found is not None:
            return found
        if not (isinstance(lot_size, int) and lot_size >= 1):
            raise ValueError(f"lot_size must be an int >= 1, got {lot_size!r}")
        if not (tick_size > 0 and math.isfinite(tick_size)):
            raise ValueError(f"tick_size must be > 0, got {tick_size!r}")
        if banded is None:
            banded = exchange in ("NSE", "BSE") and instrument_type == "EQ"
        inst = Instrument(len(self._by_id), symbol, exchange, float(tick_size), lot_size,
                          int(instrument_token), name, float(last_price), instrument_type,
                          banded)
        self._by_symbol.setdefault(symbol, inst)
        self._by_key[(exchange, symbol)] = inst
        if inst.instrument_token:
            self._by_token.setdefault(inst.instrument_token, inst)
        self._by_id.append(inst)
        return inst

    def get(self, symbol) -> Instrument | None:
        """The instrument for ``symbol`` (case-insensitive; ``"EXCHANGE:SYMBOL"``
        picks the exchange), or None."""
        inst = self._by_symbol.get(symbol) if type(symbol) is str else None
        if inst is not None or not isinstance(symbol, str):
            return inst
        key = symbol.strip().upper()
        if ":" in key:
            exchange, _, key = key.partition(":")
            return self._by_key.get((exchange, key))
        return self._by_symbol.get(key)

    def by_token(self, instrument_token: int) -> Instrument | None:
        """The instrument with Kite's ``instrument_token``, or None."""
        return self._by_token.get(instrument_token)

    def exchanges(self) -> list[str]:
        """Exchanges present, in order of first appearance."""
        return list(dict.fromkeys(i.exchange for i in self._by_id))

    def by_id(self, sym_id: int) -> Instrument:
        return self._by_id[sym_id]

    def id_of(self, symbol) -> int:
        """Dense id of ``symbol``; -1 if unknown."""
        inst = self.get(symbol)
        return -1 if inst is None else inst.id

    def __contains__(self, symbol) -> bool:
        return self.get(symbol) is not None

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_id)

    @property
    def symbols(self) -> list[str]:
        return [i.symbol for i in self._by_id]

    @classmethod
    def from_kite_csv(cls, path, exchange: str | tuple | None = "NSE",
                      instrument_type: str | tuple | None = "EQ") -> "InstrumentTable":
        """Load Kite Connect's instruments dump (``GET /instruments``) CSV.

        Columns used: tradingsymbol, exchange, tick_size, lot_size,
        instrument_token, name, last_price, instrument_type.  ``exchange`` and
        ``instrument_type`` filter (a str, a tuple of them, or None for all; with
        a tuple of exchanges the rows load in that order, so a plain symbol finds
        the first).  Index rows (segment INDICES, not tradable) are left out;
        malformed rows are skipped with a warning.
        """
        table = cls()
        with open(path, newline="", encoding="utf-8") as fh:
            cls._load_rows(table, csv.DictReader(fh), str(path), exchange, instrument_type)
        return table

    @staticmethod
    def _load_rows(table, reader, source, exchange, instrument_type):
        skipped = 0
        if isinstance(exchange, (tuple, list)):
            rank = {e: k for k, e in enumerate(exchange)}
            reader = sorted(reader, key=lambda r: rank.get(r.get("exchange"), len(rank)))
        exchanges = (exchange,) if isinstance(exchange, str) else exchange
        types = (instrument_type,) if isinstance(instrument_type, str) else instrument_type
        for lineno, row in enumerate(reader, start=2):
            try:
                if exchanges and row.get("exchange") not in exchanges:
                    continue
                if types and row.get("instrument_type") not in types:
                    continue
                if row.get("segment") == "INDICES":
                    continue
                table.add(row["tradingsymbol"], exchange=row["exchange"],
                          tick_size=float(row["tick_size"]), lot_size=int(row["lot_size"]),
                          instrument_token=int(row.get("instrument_token") or 0),
                          name=row.get("name") or "",
                          last_price=float(row.get("last_price") or 0.0),
                          instrument_type=row.get("instrument_type") or "EQ")
            except (KeyError, ValueError, TypeError) as exc:
                skipped += 1
                logger.warning("%s:%d: skipped malformed instrument row (%s)", source, lineno, exc)
        return skipped

    @classmethod
    def nse_default(cls) -> "InstrumentTable":
        """The embedded table of liquid NSE equities (RELIANCE, TCS, INFY, ...)."""
        table = cls()
        text = resources.files("hftcore").joinpath("data/instruments_nse.csv").read_text()
        cls._load_rows(table, csv.DictReader(text.splitlines()), "instruments_nse.csv",
                       "NSE", "EQ")
        return table


def load_instruments(path: str | Path | None = None) -> InstrumentTable:
    """The embedded NSE table, or a Kite instruments CSV at ``path``."""
    return InstrumentTable.nse_default() if path is None else InstrumentTable.from_kite_csv(path)
