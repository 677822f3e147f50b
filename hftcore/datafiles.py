"""Market data files into numpy arrays: CSV or Parquet, candles or ticks.

``read_files(paths, instruments)`` is what ``ReplayFeed`` uses.  A plain CSV
file (one timestamp column, plain decimals, no symbol column, no quotes or
blank lines: Kite's candles) is read by the compiled scanner
``hftcore_ext.csvscan``, which gives exactly what the general reader gives or
declines the whole file; every other file is read by pyarrow (``pyarrow.csv``
with explicit column types, or ``pyarrow.parquet``) straight into int64 /
float64 arrays.  Neither imports pandas (see ``_np``).  A folder's files are
read in a thread pool (both readers release the GIL) and merged in a stable
(timestamp, symbol id) order, so the result does not depend on the number of
threads.

Two kinds of bad input, never silently repaired:

* **fatal** -- the file as a whole cannot be trusted: not UTF-8, no usable
  header, a timestamp that does not parse, is ambiguous (``03/06/2024``) or
  lies outside 1970-2199, a timestamp or symbol field longer than 256
  characters (typically an unclosed quote), an unreadable number field longer
  than 256 characters, a record over 4 KiB with the wrong number of fields, a
  record over 1 MiB, an unreadable Parquet file.
  ``DataError`` (a ValueError) names the file, the line (CSV, 1-based, the
  header is line 1) or row (Parquet, 1-based) and the reason.
* **quarantined** -- one row is bad but the file is sound: the wrong number of
  fields, a price or volume that is not a number, not finite, a price <= 0 or
  above ``MAX_PRICE``, a negative volume or one above ``MAX_VOLUME``, a candle
  whose high/low do not contain its open and close, a blank symbol.  The row is
  left out and counted by reason (``quarantined``), with the first few
  ``file:line`` places (``examples``).

Timestamps (naive ones are IST): ISO 8601 / Kite (``2024-06-03T09:15:00+05:30``,
``2024-06-03 09:15:00+0530``, ``...Z``, optional fraction), ``YYYY/MM/DD``,
day-first ``DD-MM-YYYY`` or ``DD-Mon-YYYY`` with an optional ``HH:MM[:SS]``,
and epoch seconds / ms / µs / ns digits (told apart by magnitude; at least
1e8 s, so a compact ``20240603`` is refused rather than read as 1970).  A
``date`` column next to a ``time`` column is joined.  Parsing never uses
``datetime.fromisoformat``, so Kite's ``+0530`` reads the same on every
supported Python.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sys
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

NS = 1_000_000_000
IST_OFFSET_NS = 19_800 * NS                    # +05:30
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
EPOCH_MIN_S = 10**8      # epoch digits below this (1973) are refused: likely a YYYYMMDD date
YEAR_MIN, YEAR_MAX = 1970, 2199
TS_MIN_NS = 0
TS_MAX_NS = (dt.date(YEAR_MAX + 1, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86_400 * NS

MAX_PRICE = 1e9          # rupees; far above any listed price, far inside the ledger's Rs 1e15
MAX_VOLUME = 1e12        # units in one candle or tick; an NSE stock trades ~1e8 a day
MAX_TEXT = 256           # characters in a timestamp or symbol field
BLOCK_SIZE = 1 << 20     # pyarrow's CSV block: a record longer than this is fatal
MAX_BAD_RECORD = 4096    # bytes: a longer record with the wrong field count is fatal
N_EXAMPLES = 5           # file:line places kept per quarantine reason
SUFFIXES = (".csv", ".parquet", ".pq")
CACHE_VERSION = "1"
_FAST_CSV = True         # the compiled scanner for plain CSV files (tests switch it off)

# Quarantine reasons, in the order a row is tested (a row counts once, under the first).
REASONS = ("bad_fields", "not_a_number", "not_finite", "price_not_positive", "price_absurd",
           "volume_negative", "volume_absurd", "candle_inconsistent", "bad_symbol")

_TS_COLS = ("timestamp", "ts", "date", "datetime", "time")
_SYM_COLS = ("symbol", "tradingsymbol")
_PRICE_COLS = ("price", "last_price", "ltp")
_VOL_COLS = ("volume", "qty", "quantity", "last_quantity")
_OHLC = ("open", "high", "low", "close")


class DataError(ValueError):
    """A market data file that cannot be read as a whole.

    ``str(exc)`` is one line: ``FILE: line N: reason`` (CSV; the header is line
    1), ``FILE: row N: reason`` (Parquet) or ``FILE: reason``.
    """

    def __init__(self, file, reason: str, line: int | None = None, unit: str = "line"):
        self.file = str(file)
        self.reason = reason
        self.line = line
        where = f"{self.file}: {unit} {line}: " if line is not None else f"{self.file}: "
        super().__init__(where + reason)


# ------------------------------------------------------------------ timestamps

_TIME = (r"(?:(?:T|\s+)(?P<H>\d{1,2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?)?)?"
         r"(?:\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?))?\Z")
_YMD = re.compile(r"(?P<y>\d{4})(?P<sep>[-/])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})" + _TIME)
_DMY = re.compile(r"(?P<d>\d{1,2})-(?P<m>\d{1,2}|[A-Za-z]{3})-(?P<y>\d{4})" + _TIME)
_AMBIGUOUS = re.compile(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b")
_EPOCH = re.compile(r"-?\d{1,19}\Z")
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def _epoch_scale(v: int) -> int:
    a = abs(v)
    if a < 10**11:
        return v * NS                 # seconds
    if a < 10**14:
        return v * 1_000_000          # milliseconds
    if a < 10**17:
        return v * 1_000              # microseconds
    return v                          # nanoseconds


def parse_timestamp(text: str) -> int:
    """ns since the epoch (UTC) from one timestamp text; naive times are IST.

    Accepts the forms listed in the module docstring; raises ValueError with
    the reason otherwise (unrecognised, ambiguous, invalid field, or outside
    1970-2199).
    """
    if not isinstance(text, str):
        raise ValueError(f"timestamp must be text, got {type(text).__name__}")  # noqa: TRY004
    s = text.strip()
    if not s:
        raise ValueError("empty timestamp")
    if _EPOCH.match(s):
        if abs(int(s)) < EPOCH_MIN_S:
            raise ValueError(f"number {s} is too small for epoch seconds (before 1973); "
                             "compact dates like 20240603 are not read, write 2024-06-03")
        ns = _epoch_scale(int(s))
        if not TS_MIN_NS <= ns < TS_MAX_NS:
            raise ValueError(f"epoch timestamp {s} is outside {YEAR_MIN}-{YEAR_MAX}")
        return ns
    m = _YMD.match(s) or _DMY.match(s)
    if m is None:
        if _AMBIGUOUS.match(s):
            raise ValueError(f"ambiguous date {s[:40]!r}: day/month order unknown; "
                             "write YYYY-MM-DD or DD-MM-YYYY")
        raise ValueError(f"unrecognised timestamp {s[:40]!r}; expected e.g. "
                         "2024-06-03T09:15:00+05:30, 2024-06-03 09:15:00, 03-06-2024 09:15 "
                         "or epoch seconds")
    y = int(m["y"])
    mon = m["m"]
    mo = _MONTHS.get(mon.lower(), 0) if mon.isalpha() else int(mon)
    d = int(m["d"])
    if not YEAR_MIN <= y <= YEAR_MAX:
        raise ValueError(f"year {y} is outside {YEAR_MIN}-{YEAR_MAX} in {s[:40]!r}")
    if not 1 <= mo <= 12:
        hint = " (dates with '-' are read day first: DD-MM-YYYY)" if m.re is _DMY else ""
        raise ValueError(f"month {mon!r} out of range in {s[:40]!r}{hint}")
    try:
        day = dt.date(y, mo, d)
    except ValueError:
        raise ValueError(f"day {d} out of range for {y}-{mo:02d} in {s[:40]!r}") from None
    hh = int(m["H"] or 0)
    mm = int(m["M"] or 0)
    ss = int(m["S"] or 0)
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError(f"time of day out of range in {s[:40]!r}")
    frac = int((m["F"] or "").ljust(9, "0")[:9] or 0)
    tz = m["tz"]
    if tz is None:
        off = IST_OFFSET_NS
    elif tz in "Zz":
        off = 0
    else:
        digits = tz[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:] or 0)
        if oh > 18 or om > 59:
            raise ValueError(f"UTC offset {tz} out of range in {s[:40]!r}")
        off = (oh * 3600 + om * 60) * NS * (1 if tz[0] == "+" else -1)
    secs = (day.toordinal() - _EPOCH_ORDINAL) * 86_400 + hh * 3600 + mm * 60 + ss
    ns = secs * NS + frac - off
    if not TS_MIN_NS <= ns < TS_MAX_NS:
        raise ValueError(f"timestamp {s[:40]!r} is outside {YEAR_MIN}-{YEAR_MAX}")
    return ns


# ------------------------------------------------------------------ Arrow -> numpy
#
# Arrow's own conversions (``Array.to_numpy``, ``pa.scalar``, a Python value passed to a
# compute function) import pandas when it is installed: ~0.3 s on the first call of a
# process, inside the load phase of every ``hftcore backtest``.  Columns come out through
# their buffers instead, and constants are built from buffers.

def _bits(buf, offset: int, n: int) -> np.ndarray:
    """An Arrow bitmap (validity or boolean values) as a bool array; None = all set."""
    if buf is None:
        return np.ones(n, bool)
    return np.unpackbits(np.frombuffer(buf, np.uint8), count=offset + n,
                         bitorder="little")[offset:].view(bool)


def _np(col, fill=0) -> np.ndarray:
    """A fixed-width Arrow array or chunked array (ints, floats, timestamps, dates,
    booleans) as numpy, zero-copy where Arrow allows; nulls read as ``fill``."""
    import pyarrow as pa
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    t = col.type
    if pa.types.is_boolean(t):
        name = "bool"
    elif pa.types.is_floating(t):
        name = f"float{t.bit_width}"
    elif pa.types.is_integer(t):
        name = f"{'int' if pa.types.is_signed_integer(t) else 'uint'}{t.bit_width}"
    elif pa.types.is_timestamp(t) or pa.types.is_date64(t) or pa.types.is_duration(t):
        name = "int64"
    elif pa.types.is_date32(t):
        name = "int32"
    else:
        raise TypeError(f"no numpy view of Arrow type {t}")
    dtype = np.dtype(name)
    parts = []
    for ch in chunks:
        n, bufs = len(ch), ch.buffers()
        if dtype.kind == "b":
            v = _bits(bufs[1], ch.offset, n)
        else:
            v = np.frombuffer(bufs[1], dtype, count=n, offset=ch.offset * dtype.itemsize)
        if ch.null_count:
            v = v.copy()
            v[~_bits(bufs[0], ch.offset, n)] = fill
        parts.append(v)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def _const_text(text: str, n: int):
    """An Arrow string array of ``n`` copies of ``text`` (see the note above)."""
    import pyarrow as pa
    b = text.encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(b)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(b * n)])


def _ts_fast(arr, first: str):
    """Vectorised parse of a whole string column in the form of its first value;
    None when that form has no fast path or any value deviates."""
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        if _EPOCH.match(first):
            v = _np(pc.cast(arr, pa.int64()))
            a = np.abs(v)
            if (a < EPOCH_MIN_S).any():
                return None                     # the reference parser says which and why
            out = np.where(a < 10**11, v * NS, np.where(a < 10**14, v * 1_000_000,
                                                        np.where(a < 10**17, v * 1_000, v)))
            return out.astype(np.int64)
        m = _YMD.match(first) or _DMY.match(first)
        if m is None or (m["H"] is not None and len(m["H"]) != 2) or m["m"].isalpha():
            return None
        if m.re is _DMY:
            if len(m["d"]) != 2 or len(m["m"]) != 2:
                return None
            arr = pc.replace_substring_regex(arr, r"^(\d{2})-(\d{2})-(\d{4})", r"\3-\2-\1")
        elif m["sep"] == "/":
            if len(m["m"]) != 2 or len(m["d"]) != 2:
                return None
            arr = pc.replace_substring_regex(arr, r"^(\d{4})/(\d{2})/(\d{2})", r"\1-\2-\3")
        elif len(m["m"]) != 2 or len(m["d"]) != 2:
            return None
        if m["tz"] is not None:
            t = pc.cast(arr, pa.timestamp("ns", tz="UTC"))
            return _np(t)
        t = pc.cast(arr, pa.timestamp("ns"))
        return _np(t) - IST_OFFSET_NS
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        return None


def _timestamps(arr, where: Callable[[int], int], file, unit: str) -> np.ndarray:
    """int64 ns for a string column; DataError at the first bad value."""
    import pyarrow.compute as pc
    n = len(arr)
    if n == 0:
        return np.empty(0, np.int64)
    lengths = _np(pc.binary_length(arr))
    long = np.flatnonzero(lengths > MAX_TEXT)
    if len(long):
        i = int(long[0])
        raise DataError(file, f"timestamp field of {int(lengths[i]):,} characters "
                        f"(limit {MAX_TEXT})", where(i), unit)
    if arr.null_count:
        i = int(np.flatnonzero(_np(arr.is_null()))[0])
        raise DataError(file, "empty timestamp", where(i), unit)
    first = arr[0].as_py()
    out = _ts_fast(arr, first.strip())
    if out is None:                              # the reference parser, value by value
        out = np.empty(n, np.int64)
        for i, text in enumerate(arr.to_pylist()):
            try:
                out[i] = parse_timestamp(text)
            except ValueError as exc:
                raise DataError(file, str(exc), where(i), unit) from None
        return out
    bad = np.flatnonzero((out < TS_MIN_NS) | (out >= TS_MAX_NS))
    if len(bad):
        i = int(bad[0])
        text = arr[i].as_py()
        try:
            parse_timestamp(text)
            reason = f"timestamp {text[:40]!r} is outside {YEAR_MIN}-{YEAR_MAX}"
        except ValueError as exc:
            reason = str(exc)
        raise DataError(file, reason, where(i), unit)
    return out


def _timestamps_typed(col, where, file, unit) -> np.ndarray:
    """int64 ns from a Parquet timestamp / date / integer column."""
    import pyarrow as pa
    import pyarrow.compute as pc
    t = col.type
    if pa.types.is_date(t):
        col = pc.cast(col, pa.timestamp("s"))
        t = col.type
    if pa.types.is_timestamp(t):
        per_s = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[t.unit]
        if col.null_count:
            i = int(np.flatnonzero(_np(col.is_null()))[0])
            raise DataError(file, "empty timestamp", where(i), unit)
        raw = _np(pc.cast(col, pa.int64()))
        shift = 0 if t.tz is not None else IST_OFFSET_NS // (NS // per_s)
        lo, hi = TS_MIN_NS // (NS // per_s) + shift, TS_MAX_NS // (NS // per_s) + shift
        bad = np.flatnonzero((raw < lo) | (raw >= hi))
        if len(bad):
            i = int(bad[0])
            raise DataError(file, f"timestamp {col[i]} is outside {YEAR_MIN}-{YEAR_MAX}",
                            where(i), unit)
        return (raw - shift) * (NS // per_s)
    if pa.types.is_integer(t):
        return _timestamps(pc.cast(col, pa.string()), where, file, unit)
    raise DataError(file, f"timestamp column has type {t}; expected text, timestamp or "
                    "integer epoch")


# ------------------------------------------------------------------ one file

@dataclass
class FileData:
    """One file's good rows, before symbols get instrument ids."""
    path: str
    kind: str                                   # "bars" | "ticks"
    names: list[str]                            # symbol text per code
    code: np.ndarray                            # int32 index into names
    ts: np.ndarray                              # int64 ns
    values: np.ndarray                          # float64 (4, n) o,h,l,c or (1, n) price
    volume: np.ndarray                          # float64
    quarantined: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)


def _norm(name: str) -> str:
    return name.strip().lower()


def _layout(header: Sequence[str], file) -> tuple[str, dict[str, str | None]]:
    """('bars'|'ticks', role -> column name in the file)."""
    norm: dict[str, str] = {}
    dupes = set()
    for h in header:
        k = _norm(h)
        if k in norm:
            dupes.add(k)
        norm[k] = h

    def pick(names):
        for n in names:
            if n in norm:
                return n
        return None
    is_bar = all(c in norm for c in _OHLC)
    roles: dict[str, str | None] = {}
    tkey = pick(_TS_COLS)
    if tkey == "date" and "time" in norm:
        roles["time"] = "time"
    roles["ts"] = tkey
    roles["sym"] = pick(_SYM_COLS)
    roles["vol"] = pick(_VOL_COLS)
    if is_bar:
        roles.update({c: c for c in _OHLC})
    else:
        roles["price"] = pick(_PRICE_COLS)
    if tkey is None or (not is_bar and roles["price"] is None):
        shown = ",".join(header)[:200]
        raise DataError(file, f"unrecognised header [{shown}]; expected Kite candles "
                        "(date,open,high,low,close,volume) or ticks "
                        "(timestamp,symbol,price,volume)", None)
    used = {k for k in roles.values() if k is not None}
    if used & dupes:
        raise DataError(file, f"duplicate column {min(used & dupes)!r} in the header", 1)
    return ("bars" if is_bar else "ticks"), {r: (norm[k] if k else None) for r, k in roles.items()}


class _CsvLines:
    """Maps table rows (and pyarrow record numbers) to physical 1-based lines."""

    def __init__(self, raw: bytes | np.ndarray, skipped: list[int]):
        self.raw = raw
        self.skipped = np.array(sorted(skipped), dtype=np.int64)
        self._lines: np.ndarray | None = None

    def _record_line(self) -> np.ndarray:
        if self._lines is None:                 # lazily: only when a row is reported
            b = np.frombuffer(self.raw, dtype=np.uint8)
            nl = np.flatnonzero(b == 10)
            starts = np.concatenate(([0], nl + 1))
            ends = np.concatenate((nl, [len(b)]))
            length = ends - starts
            cr = (length == 1) & (b[np.minimum(starts, len(b) - 1)] == 13) if len(b) else length
            nonempty = (length > 0) & ~cr
            self._lines = np.flatnonzero(nonempty) + 1       # record k -> _lines[k-1]
        return self._lines

    def record(self, k: int) -> int:
        lines = self._record_line()
        return int(lines[k - 1]) if 0 < k <= len(lines) else k

    def row(self, i: int) -> int:
        # table row i is the (i+2)-th record counting the header, skipping bad records
        k = i + 2
        for s in self.skipped:                  # few: only rows with the wrong field count
            if s <= k:
                k += 1
            else:
                break
        return self.record(k)


def _decode_check(raw: bytes, file) -> None:
    if raw.isascii():
        return
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(file, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {col}); "
                        "save the file as UTF-8", line) from None


def _csv_header(raw: bytes, start: int, file) -> list[str]:
    pos = start
    while True:
        end = raw.find(b"\n", pos)
        line = raw[pos:] if end < 0 else raw[pos:end]
        if line.strip(b"\r"):
            break
        if end < 0:
            raise DataError(file, "empty file (no header)")
        pos = end + 1
    if len(line) > BLOCK_SIZE:
        raise DataError(file, f"header of {len(line):,} bytes", 1)
    try:
        return next(csv.reader([line.decode("utf-8").rstrip("\r")]))
    except csv.Error as exc:
        raise DataError(file, f"unreadable header: {exc}", 1) from None


_NUM_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^(?i:[-+]?(nan|inf|infinity))$"


def _numbers_from_text(col, name, where, file, unit):
    """float64 column from text: unreadable -> null (quarantined); long junk -> fatal."""
    import pyarrow as pa
    import pyarrow.compute as pc
    t = pc.utf8_trim_whitespace(col)
    ok = pc.match_substring_regex(t, _NUM_RE)
    junk = ~_np(ok)
    if junk.any():
        lengths = _np(pc.binary_length(t))
        long = np.flatnonzero(junk & (lengths > MAX_TEXT))
        if len(long):
            i = int(long[0])
            raise DataError(file, f"field of {int(lengths[i]):,} characters in column {name!r} "
                            f"(limit {MAX_TEXT})", where(i), unit)
    return pc.cast(pc.if_else(ok, t, pa.nulls(len(t), pa.string())), pa.float64())


def _file_buffer(path: Path) -> np.ndarray:
    """The file's bytes in a numpy buffer: numpy asks for huge pages on big arrays, so
    a 12 MB file costs a few page faults instead of ~3,000 (``read_bytes``)."""
    with open(path, "rb") as fh:
        buf = np.empty(os.fstat(fh.fileno()).st_size, np.uint8)
        got = fh.readinto(buf.data)
        rest = fh.read()                        # it changed size meanwhile
    if got < len(buf):
        buf = buf[:got]
    if rest:
        buf = np.concatenate([buf, np.frombuffer(rest, np.uint8)])
    return buf


def _read_plain_csv(buf: np.ndarray, path: Path, default_symbol: str | None
                    ) -> FileData | None:
    """The file through the compiled scanner when it is plain (``hftcore_ext.csvscan``
    says what that is), else None: the general reader then reads it and reports or
    quarantines what is not plain.  The scanner accepts ASCII only, so an accepted
    file is one the general reader's UTF-8 check passes."""
    if not _FAST_CSV:
        return None
    try:
        from hftcore_ext.csvscan import scan_csv
    except ImportError:                          # a build without it (HFTCORE_MODULES)
        return None
    head = buf[:1 << 16].tobytes()
    start = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    end = head.find(b"\n", start)
    if end < 0 or b'"' in head[start:end]:
        return None
    try:
        _decode_check(head[:end], path)
        header = _csv_header(head, start, path)
        kind, roles = _layout(header, path)
    except DataError:
        return None                              # the general reader says it, in its order
    if head[start:end].rstrip(b"\r").decode("utf-8").split(",") != header:
        return None                              # a blank line before the header, say
    if roles.get("sym") or roles.get("time"):
        return None
    prices = _OHLC if kind == "bars" else ("price",)
    number_role = {roles[r]: k for k, r in enumerate(prices)}
    if roles["vol"]:
        number_role[roles["vol"]] = len(prices)
    layout = [-1 if h == roles["ts"] else number_role.get(h, -2) for h in header]
    got = scan_csv(buf, end + 1, layout, len(number_role), IST_OFFSET_NS, TS_MAX_NS)
    if got is None:
        return None
    ts, numbers = got
    n = len(ts)
    volume = numbers[len(prices)] if roles["vol"] else np.zeros(n, np.float64)
    return _finish(path, kind, ts, numbers[:len(prices)], volume, np.zeros(n, bool),
                   [default_symbol or ""], np.zeros(n, np.int32), [], _CsvLines(buf, []).row)


def _read_csv(path: Path, threads: bool, raw: bytes, start: int, header: list[str],
              kind: str, roles: dict[str, str | None]):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    text_cols = {roles[r] for r in ("ts", "sym", "time") if roles.get(r)}
    num_cols = {c for r, c in roles.items() if c and c not in text_cols}

    def attempt(numeric_type, use_threads) -> tuple:
        skipped: list = []
        fatal: list = []

        def on_invalid(row):
            if len(row.text) > MAX_BAD_RECORD and not fatal:
                fatal.append((row.number, len(row.text), row.actual_columns,
                              row.expected_columns))
            skipped.append(row.number)
            return "skip"
        types = {c: pa.string() for c in text_cols}
        types.update({c: numeric_type for c in num_cols})
        table = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(raw).slice(start)),
            read_options=pcsv.ReadOptions(use_threads=use_threads, block_size=BLOCK_SIZE),
            parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(column_types=types, include_columns=list(types),
                                                null_values=[""], strings_can_be_null=False,
                                                quoted_strings_can_be_null=False))
        if any(s is None for s in skipped):     # record numbers need the serial reader
            return attempt(numeric_type, False)
        if fatal:
            k, size, got, want = fatal[0]
            raise DataError(path, f"record of {size:,} bytes has {got} fields, expected {want} "
                            "(an unclosed quote?)", _CsvLines(raw, []).record(k))
        return table, skipped

    try:
        try:
            table, skipped = attempt(pa.float64(), threads)
        except pa.ArrowInvalid as exc:
            if "conversion error" not in str(exc):
                raise
            table, skipped = attempt(pa.string(), threads)   # junk numbers: find them
    except pa.ArrowInvalid as exc:
        raise _diagnose(raw, path, exc) from None
    lines = _CsvLines(raw, skipped)
    return kind, roles, table, lines


def _diagnose(raw: bytes, path, exc) -> DataError:
    """One clear DataError for a file pyarrow could not parse."""
    pos, line = 0, 1
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end
        if end - pos > BLOCK_SIZE:
            return DataError(path, f"record of {end - pos:,} bytes (limit {BLOCK_SIZE:,})", line)
        pos, line = end + 1, line + 1
    msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return DataError(path, f"cannot be read as CSV: {msg}")


def _read_parquet(path: Path, threads: bool):
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        # ParquetFile, not pq.read_table: that imports pyarrow.dataset, which imports pandas
        with pq.ParquetFile(path) as pf:
            kind, roles = _layout(pf.schema_arrow.names, path)
            cols = [c for c in dict.fromkeys(roles.values()) if c]
            table = pf.read(columns=cols, use_threads=threads)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(path, f"cannot be read as Parquet: {msg}") from None
    return kind, roles, table


def read_file(path, default_symbol: str | None = None, threads: bool = False) -> FileData:
    """Parse one CSV or Parquet file of candles or ticks (fatal problems raise DataError)."""
    path = Path(path)
    try:
        return _read_file(path, default_symbol, threads)
    except DataError:
        raise
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None
    except Exception as exc:
        pa = sys.modules.get("pyarrow")         # not imported at all on the fast path
        if not (isinstance(exc, (csv.Error, UnicodeError))
                or (pa is not None and isinstance(exc, pa.ArrowException))):
            raise
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(path, f"cannot be read: {msg}") from None


def _read_file(path: Path, default_symbol: str | None, threads: bool) -> FileData:
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_with_arrow(path, default_symbol, threads, None)
    buf = _file_buffer(path)
    plain = _read_plain_csv(buf, path, default_symbol)
    if plain is not None:
        return plain
    raw = buf.tobytes()
    _decode_check(raw, path)
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    header = _csv_header(raw, start, path)
    kind, roles = _layout(header, path)
    return _read_with_arrow(path, default_symbol, threads, (raw, start, header, kind, roles))


def _read_with_arrow(path: Path, default_symbol: str | None, threads: bool, csv_parts
                     ) -> FileData:
    """The general reader: pyarrow, then every check on the columns it gives."""
    import pyarrow as pa
    import pyarrow.compute as pc
    where: Callable[[int], int]
    if csv_parts is None:
        kind, roles, table = _read_parquet(path, threads)
        unit = "row"
        skipped: list[int] = []

        def where(i: int) -> int:
            return i + 1
    else:
        kind, roles, table, lines = _read_csv(path, threads, *csv_parts)
        unit = "line"
        skipped = [lines.record(k) for k in lines.skipped.tolist()]
        where = lines.row
    n = table.num_rows

    # timestamps (fatal when bad)
    tcol = table[roles["ts"]]
    if roles.get("time"):
        tm = table[roles["time"]]
        if not (pa.types.is_string(tcol.type) and pa.types.is_string(tm.type)):
            raise DataError(path, "separate date and time columns must be text")
        tcol = pc.binary_join_element_wise(pc.utf8_trim_whitespace(tcol),
                                           pc.utf8_trim_whitespace(tm), _const_text(" ", n))
    if pa.types.is_string(tcol.type) or pa.types.is_large_string(tcol.type):
        ts = _timestamps(tcol, where, path, unit)
    else:
        ts = _timestamps_typed(tcol, where, path, unit)

    # numbers (bad rows quarantined)
    def numeric(name, out):
        """Fill ``out`` with the column as float64; the null mask, or None if none."""
        col = table[name]
        if pa.types.is_float64(col.type) and col.null_count == 0:
            pos = 0
            for chunk in col.chunks:                # one copy, straight from Arrow's buffers
                out[pos:pos + len(chunk)] = _np(chunk)
                pos += len(chunk)
            return None
        col = col.combine_chunks()
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = _numbers_from_text(col, name, where, path, unit)
        elif not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)
                  or pa.types.is_decimal(col.type)):
            raise DataError(path, f"column {name!r} has type {col.type}; expected numbers")
        else:
            col = pc.cast(col, pa.float64())
        out[:] = _np(col, fill=np.nan)
        return _np(col.is_null()) if col.null_count else None
    price_cols = _OHLC if kind == "bars" else ("price",)
    values = np.empty((len(price_cols), n), np.float64)
    missing = np.zeros(n, bool)
    for k, role in enumerate(price_cols):
        nulls = numeric(roles[role], values[k])
        if nulls is not None:
            missing |= nulls
    volume = np.zeros(n, np.float64)
    if roles["vol"]:
        vnull = numeric(roles["vol"], volume)
        if vnull is not None:                      # an empty volume is 0; junk is not
            raw_v = table[roles["vol"]].combine_chunks()
            if pa.types.is_string(raw_v.type):
                # a null text (Parquet) is not an empty field: it stays "not a number"
                empty = _np(pc.binary_length(pc.utf8_trim_whitespace(raw_v)), fill=-1) == 0
            else:
                empty = vnull
            missing |= vnull & ~empty
            volume[vnull & empty] = 0.0

    # symbols
    if roles["sym"]:
        scol = table[roles["sym"]].combine_chunks()
        if not pa.types.is_string(scol.type):
            scol = pc.cast(scol, pa.string())
        if scol.null_count:
            scol = pc.coalesce(scol, _const_text("", len(scol)))
        lengths = _np(pc.binary_length(scol))
        long = np.flatnonzero(lengths > MAX_TEXT)
        if len(long):
            i = int(long[0])
            raise DataError(path, f"symbol field of {int(lengths[i]):,} characters "
                            f"(limit {MAX_TEXT})", where(i), unit)
        enc = pc.dictionary_encode(scol)
        names = [s if s != "" else (default_symbol or "") for s in enc.dictionary.to_pylist()]
        code = _np(enc.indices).astype(np.int32, copy=False)
    else:
        names = [default_symbol or ""]
        code = np.zeros(n, np.int32)
    return _finish(path, kind, ts, values, volume, missing, names, code, skipped, where)


def _finish(path: Path, kind: str, ts: np.ndarray, values: np.ndarray, volume: np.ndarray,
            missing: np.ndarray, names: list[str], code: np.ndarray, skipped: list[int],
            where: Callable[[int], int]) -> FileData:
    """Quarantine the bad rows (first failing reason wins) and keep the rest."""
    n = len(ts)
    blank = np.array([not s.strip() for s in names], dtype=bool)

    with np.errstate(invalid="ignore"):
        lowest, highest = values.min(axis=0), values.max(axis=0)     # NaN propagates
        checks = {
            "not_a_number": missing,
            "not_finite": ~np.isfinite(lowest) | ~np.isfinite(highest) | ~np.isfinite(volume),
            "price_not_positive": lowest <= 0,
            "price_absurd": highest > MAX_PRICE,
            "volume_negative": volume < 0,
            "volume_absurd": volume > MAX_VOLUME,
        }
        if kind == "bars":
            o, h, lo, c = values
            checks["candle_inconsistent"] = (h < np.maximum(o, c)) | (lo > np.minimum(o, c))
        checks["bad_symbol"] = blank[code] if blank.any() else np.zeros(n, bool)
    quarantined: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    if skipped:
        quarantined["bad_fields"] = len(skipped)
        examples["bad_fields"] = [f"{path.name}:{s}" for s in skipped[:N_EXAMPLES]]
    taken = np.zeros(n, bool)
    for reason in REASONS[1:]:
        mask = checks.get(reason)
        if mask is None:
            continue
        hit = mask & ~taken
        count = int(hit.sum())
        if count:
            quarantined[reason] = count
            examples[reason] = [f"{path.name}:{where(int(i))}"
                                for i in np.flatnonzero(hit)[:N_EXAMPLES]]
            taken |= hit
    if taken.any():
        keep = ~taken
        ts, values, volume, code = ts[keep], values[:, keep], volume[keep], code[keep]
    return FileData(str(path), kind, names, code, ts, values, volume, quarantined, examples)


# ------------------------------------------------------------------ cache

def _cache_file(cache_dir: Path, path: Path, default_symbol: str | None) -> Path:
    st = path.stat()
    key = f"{CACHE_VERSION}|{path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{default_symbol}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir / f"{path.stem}-{digest}.npz"


def _cache_load(f: Path) -> FileData | None:
    try:
        with np.load(f, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return FileData(meta["path"], meta["kind"], meta["names"], z["code"], z["ts"],
                            z["values"], z["volume"], meta["quarantined"], meta["examples"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:   # damaged: re-parse
        logger.warning("ignoring unreadable cache entry %s: %s", f, exc)
        return None


def _cache_store(f: Path, d: FileData) -> None:
    meta = json.dumps({"path": d.path, "kind": d.kind, "names": d.names,
                       "quarantined": d.quarantined, "examples": d.examples})
    tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(meta), code=d.code, ts=d.ts, values=d.values,
                     volume=d.volume)
        os.replace(tmp, f)
    except OSError as exc:                       # the cache is an optimisation only
        logger.warning("could not write cache entry %s: %s", f, exc)
        try:
            tmp.unlink()
        except OSError:
            pass


def _load_one(path: Path, default_symbol, arrow_threads, cache_dir) -> FileData:
    if cache_dir is None:
        return read_file(path, default_symbol, arrow_threads)
    cf = _cache_file(Path(cache_dir), path, default_symbol)
    d = _cache_load(cf)
    if d is None:
        d = read_file(path, default_symbol, arrow_threads)
        _cache_store(cf, d)
    return d


# ------------------------------------------------------------------ many files

@dataclass
class Loaded:
    """Everything read from the files, merged and time-ordered."""
    kind: str
    sym: np.ndarray
    ts: np.ndarray
    values: np.ndarray                 # (4, n) or (1, n)
    volume: np.ndarray
    span_s: int
    quarantined: dict[str, int]
    examples: dict[str, list[str]]


def list_files(path) -> list[Path]:
    """A file, or a folder's ``*.csv`` / ``*.parquet`` / ``*.pq`` files by name (not dot
    files); two files with one name in different formats are refused."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such file or folder: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
                       and p.is_file())
        if not files:
            raise ValueError(f"no CSV or Parquet files in {path}")
        seen: dict[str, Path] = {}
        for f in files:                          # RELIANCE.csv beside RELIANCE.parquet
            other = seen.setdefault(f.stem.upper(), f)
            if other is not f:
                raise DataError(path, f"{other.name} and {f.name} would replay the same "
                                "symbol twice; keep one of them")
        return files
    return [path]


def merge_order(sym: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The permutation sorting rows by (ts, sym), stable: ``np.lexsort((sym, ts))``,
    done as two stable passes that exploit per-file sorted runs."""
    if len(sym) < 2 or bool((sym[1:] >= sym[:-1]).all()):
        return np.argsort(ts, kind="stable")          # files in symbol order: one pass
    if int(sym.max()) < 2**15 and int(sym.min()) >= 0:
        by_sym = np.argsort(sym.astype(np.int16), kind="stable")      # radix sort
    else:
        by_sym = np.argsort(sym, kind="stable")
    return by_sym[np.argsort(ts[by_sym], kind="stable")]


def read_files(paths: Sequence[Path], instruments, symbol: str | None = None,
               threads: int | None = None, cache_dir=None) -> Loaded:
    """Read, check and merge ``paths`` (DataError on the first fatal file, in file order).

    Symbols are added to ``instruments`` in file order, then order of first
    appearance; rows are merged stably by (timestamp, symbol id).
    """
    paths = [Path(p) for p in paths]
    if threads is None:
        threads = min(os.cpu_count() or 1, 8)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    # pyarrow's own threads inside each file when there are more threads than files
    arrow_threads = threads > len(paths)
    defaults = [symbol or p.stem.upper() for p in paths]
    jobs = list(zip(paths, defaults))
    if threads == 1 or len(paths) == 1:
        parts = [_load_one(p, d, arrow_threads, cache_dir) for p, d in jobs]
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(paths))) as pool:
            futures = [pool.submit(_load_one, p, d, arrow_threads, cache_dir) for p, d in jobs]
            parts = [f.result() for f in futures]   # the first failing file, in file order
    kinds = {p.kind for p in parts if len(p.ts)}
    if len(kinds) > 1:
        raise DataError(paths[0].parent, "mixed tick and candle files in one replay; "
                        "replay them separately")
    quarantined: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    for p in parts:
        for r in REASONS:
            if r in p.quarantined:
                quarantined[r] = quarantined.get(r, 0) + p.quarantined[r]
                examples.setdefault(r, [])
                examples[r] = (examples[r] + list(p.examples.get(r, [])))[:N_EXAMPLES]
    skipped = sum(quarantined.values())
    if not kinds:
        where = paths[0].parent if len(paths) > 1 else paths[0]
        raise DataError(where, f"no usable rows ({skipped} skipped"
                        + (f": {_summary(quarantined)})" if skipped else ")"))
    kind = kinds.pop()
    syms, tss, vals, vols = [], [], [], []
    single: list[int | None] = []              # a part's one instrument id, if it has one
    for p in parts:
        if not len(p.ts):
            continue
        used = (np.ones(1, bool) if len(p.names) == 1
                else np.bincount(p.code, minlength=len(p.names)) > 0)
        lut = np.full(len(p.names), -1, np.int32)
        for k in np.flatnonzero(used):         # first-appearance order
            lut[k] = instruments.add(p.names[k]).id
        ids = lut[used]
        single.append(int(ids[0]) if len(ids) == 1 else None)
        syms.append(np.full(len(p.code), lut[0], np.int32) if len(p.names) == 1 else lut[p.code])
        tss.append(p.ts)
        vals.append(p.values)
        vols.append(p.volume)
    rising = [len(t) < 2 or bool((t[1:] > t[:-1]).all()) for t in tss]
    one_each = None not in single
    if one_each and len(syms) > 1:
        # one symbol per file (a folder of Kite candles): joined in symbol-id order
        # (stable), the symbol column is sorted and one stable pass by time merges them
        # -- the same permutation as the two-pass sort, at a fraction of its cost
        ids = [int(x or 0) for x in single]
        by_id = sorted(range(len(syms)), key=ids.__getitem__)
        syms = [syms[k] for k in by_id]
        tss = [tss[k] for k in by_id]
        vals = [vals[k] for k in by_id]
        vols = [vols[k] for k in by_id]
        rising = [rising[k] for k in by_id]
        single = [single[k] for k in by_id]
    if kind == "bars" and one_each and all(rising) and len(set(single)) == len(single):
        # each symbol's bars are one part, already in time order: its gaps are its diffs
        span = _most_common_gap(np.concatenate([np.diff(t) for t in tss]) // NS)
    else:
        span = 0
    if len(syms) == 1:
        sym, ts, values, volume = syms[0], tss[0], vals[0], vols[0]
    else:
        sym, ts = np.concatenate(syms), np.concatenate(tss)
        values, volume = np.concatenate(vals, axis=1), np.concatenate(vols)
    sym = sym.astype(np.int32, copy=False)
    ts = ts.astype(np.int64, copy=False)
    if len(ts) > 1 and not bool((ts[1:] > ts[:-1]).all()):   # strictly rising: nothing to do
        order = merge_order(sym, ts)
        sym, ts, values, volume = sym[order], ts[order], values.take(order, axis=1), volume[order]
    if kind == "bars" and not span:
        span = _bar_span(sym, ts)
    if skipped:
        logger.warning("%s malformed rows left out (%s); first at %s", skipped,
                       _summary(quarantined), ", ".join(next(iter(examples.values()))[:3]))
    return Loaded(kind, sym, ts, values, volume, span, quarantined, examples)


def _bar_span(sym: np.ndarray, ts: np.ndarray) -> int:
    """The most common gap (whole seconds) between consecutive bars of a symbol."""
    o = (np.argsort(sym.astype(np.int16), kind="stable") if int(sym.max()) < 2**15
         else np.argsort(sym, kind="stable"))
    s, t = sym[o], ts[o]
    return _most_common_gap((np.diff(t)[np.diff(s) == 0]) // NS)


def _most_common_gap(gaps: np.ndarray) -> int:
    """The most common positive gap (the smallest of equals), at least 1; 60 if none."""
    gaps = gaps[gaps > 0]
    if not len(gaps):
        return 60
    if int(gaps.max()) < 2**22:
        span = int(np.bincount(gaps).argmax())
    else:
        values, counts = np.unique(gaps, return_counts=True)
        span = int(values[counts.argmax()])
    return max(span, 1)


def _summary(quarantined: dict[str, int]) -> str:
    return ", ".join(f"{r}: {n}" for r, n in quarantined.items())
