"""The plain-Python twin of the market data reader: the ``csv``-module ReplayFeed
reader as it was before pyarrow (kept as the loading benchmark's baseline and as
the reference the columnar reader must agree with on good files).

``read_csv_reference(files, instruments)`` returns ``(kind, arrays)`` with the
same arrays ``ReplayFeed.data()`` holds (Bars fields or Ticks fields).
"""
import csv
import datetime as dt
import math

import numpy as np

IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
NS = 1_000_000_000

_TS_COLS = ("timestamp", "ts", "date", "datetime", "time")
_SYM_COLS = ("symbol", "tradingsymbol")
_PRICE_COLS = ("price", "last_price", "ltp")
_VOL_COLS = ("volume", "qty", "quantity", "last_quantity")


def parse_timestamp(text):
    text = text.strip()
    if text.lstrip("-").isdigit():
        v = int(text)
        if v < 10**11:
            return v * NS
        if v < 10**14:
            return v * 1_000_000
        return v
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=IST)
    return int(t.timestamp()) * NS + t.microsecond * 1000


def _pick(header, names):
    for n in names:
        if n in header:
            return n
    return None


def read_csv_reference(files, instruments, symbol=None):
    rows_t, rows_b, skipped = [], [], 0
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            is_bar = all(c in header for c in ("open", "high", "low", "close"))
            tcol, scol = _pick(header, _TS_COLS), _pick(header, _SYM_COLS)
            pcol, vcol = _pick(header, _PRICE_COLS), _pick(header, _VOL_COLS)
            if tcol is None or (not is_bar and pcol is None):
                raise ValueError(f"{f}: unrecognised header {header}")
            default_sym = symbol or f.stem.upper()
            for row in reader:
                try:
                    sym = (row.get(scol) if scol else None) or default_sym
                    inst = instruments.add(sym)
                    ts = parse_timestamp(row[tcol])
                    v = float(row[vcol]) if vcol and row.get(vcol) not in (None, "") else 0.0
                    if is_bar:
                        o, h, lo, c = (float(row[k]) for k in ("open", "high", "low", "close"))
                        vals = (o, h, lo, c)
                    else:
                        c = float(row[pcol])
                        vals = (c,)
                except (KeyError, ValueError, TypeError, AttributeError):
                    skipped += 1
                    continue
                if not all(math.isfinite(x) and x > 0 for x in vals) or not (
                        math.isfinite(v) and v >= 0):
                    skipped += 1
                    continue
                if is_bar:
                    if not (h >= max(o, c) and lo <= min(o, c)):
                        skipped += 1
                        continue
                    rows_b.append((inst.id, ts, o, h, lo, c, v))
                else:
                    rows_t.append((inst.id, ts, c, v))
    if rows_t:
        arr = np.array(rows_t, dtype=object)
        sym = arr[:, 0].astype(np.int32)
        ts = arr[:, 1].astype(np.int64)
        order = np.lexsort((sym, ts))
        return "ticks", (sym[order], ts[order], arr[order, 2].astype(np.float64),
                         arr[order, 3].astype(np.float64)), skipped
    arr = np.array(rows_b, dtype=object)
    sym = arr[:, 0].astype(np.int32)
    ts = arr[:, 1].astype(np.int64)
    order = np.lexsort((sym, ts))
    return "bars", (sym[order], ts[order],
                    *(arr[order, k].astype(np.float64) for k in range(2, 7))), skipped
