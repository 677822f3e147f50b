"""Market data files: pyarrow reading, CSV = Parquet, parallel folders, fatal files
(DataError naming file/line/reason) and quarantined rows (counted by reason)."""
import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from figures import report
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_reader import read_csv_reference

from hftcore import InstrumentTable, ReplayFeed
from hftcore.cli import main
from hftcore.datafiles import MAX_PRICE, MAX_VOLUME, merge_order
from hftcore.feeds import IST, NS, DataError, parse_timestamp

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data" / "candles"
HEADER = "date,open,high,low,close,volume\n"
GOOD = ("2024-06-03T09:15:00+05:30,1500,1502,1499,1501,100\n"
        "2024-06-03T09:16:00+05:30,1501,1503,1500,1502,200\n"
        "2024-06-03T09:17:00+05:30,1502,1504,1501,1503,300\n")
T915 = int(dt.datetime(2024, 6, 3, 9, 15, tzinfo=IST).timestamp()) * NS
QUARANTINED = {"n": 0}


def _count(feed):
    QUARANTINED["n"] += feed.rows_skipped
    report("bad file rows quarantined", QUARANTINED["n"])
    return feed


def write(tmp_path, text, name="RELIANCE.csv", mode="w"):
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text, encoding="utf-8")
    return f


def arrays(feed):
    d = feed.data()
    return [np.asarray(x) for x in d if isinstance(x, np.ndarray)]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# ------------------------------------------------------------------ good files

def test_examples_read_exactly_as_the_csv_module_reader_did():
    inst_a, inst_b = InstrumentTable(), InstrumentTable()
    feed = ReplayFeed(DATA, instruments=inst_a)
    kind, ref, skipped = read_csv_reference(sorted(DATA.glob("*.csv")), inst_b)
    assert feed.kind == kind == "bars" and feed.rows_skipped == skipped == 0
    assert inst_a.symbols == inst_b.symbols == ["INFY", "RELIANCE"]
    assert same(arrays(feed), list(ref))
    assert feed.data().span_s == 60 and len(feed.data()) == 3750
    assert feed.data().sym.dtype == np.int32 and feed.data().ts_ns.dtype == np.int64
    assert feed.data().close.dtype == np.float64


def test_ticks_file_with_symbols_matches_the_reference(tmp_path):
    f = write(tmp_path, "timestamp,symbol,price,volume\n"
                        "2024-01-01T09:15:02,TCS,3500.10,5\n"
                        "2024-01-01T09:15:01,SBIN,600.05,10\n"
                        "2024-01-01T09:15:01,INFY,1500,\n"
                        "2024-01-01 09:16:01+05:30,SBIN,600.10,3\n", "ticks.csv")
    feed = ReplayFeed(f, instruments=InstrumentTable())
    kind, ref, _ = read_csv_reference([f], InstrumentTable())
    assert feed.kind == kind == "ticks" and same(arrays(feed), list(ref))
    assert feed.instruments.symbols == ["TCS", "SBIN", "INFY"]     # order of first appearance
    assert feed.data().volume.tolist() == [10.0, 0.0, 5.0, 3.0]    # empty volume is 0
    list(feed.stream())
    assert feed.get_ltp("SBIN") == 600.10


def test_csv_and_parquet_give_identical_arrays(tmp_path):
    csv_feed = ReplayFeed(DATA / "INFY.csv", instruments=InstrumentTable())
    table = pacsv.read_csv(DATA / "INFY.csv", convert_options=pacsv.ConvertOptions(
        column_types={"date": pa.string()}))
    pq.write_table(table, tmp_path / "INFY.parquet")
    text = ReplayFeed(tmp_path / "INFY.parquet", instruments=InstrumentTable())
    # the same bars with a real timestamp column and integer volume
    typed = table.set_column(0, "date", pa.array(
        (csv_feed.data().ts_ns).astype("datetime64[ns]"), pa.timestamp("ns", tz="UTC")))
    (tmp_path / "typed").mkdir()
    pq.write_table(typed, tmp_path / "typed" / "INFY.parquet")
    ts_typed = ReplayFeed(tmp_path / "typed" / "INFY.parquet", instruments=InstrumentTable())
    assert table.schema.field("volume").type == pa.int64()
    assert same(arrays(csv_feed), arrays(text)) and same(arrays(csv_feed), arrays(ts_typed))
    assert csv_feed.data().span_s == text.data().span_s == ts_typed.data().span_s == 60


def test_naive_parquet_timestamps_are_ist(tmp_path):
    t = pa.table({"date": pa.array([np.datetime64("2024-06-03T09:15:00", "s")]),
                  "open": [10.0], "high": [11.0], "low": [9.0], "close": [10.5], "volume": [1]})
    pq.write_table(t, tmp_path / "X.parquet")
    feed = ReplayFeed(tmp_path / "X.parquet", instruments=InstrumentTable())
    assert feed.data().ts_ns.tolist() == [T915]


def _folder(tmp_path, n_symbols=6, n=400):
    rng = np.random.default_rng(5)
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(n_symbols):
        # the same minutes for every symbol (ties on ts), one file out of order
        minutes = np.arange(n)
        if k == 2:
            minutes = minutes[::-1]
        lines = [HEADER.strip()]
        for m in minutes:
            when = dt.datetime(2024, 6, 3, 9, 15, tzinfo=IST) + dt.timedelta(minutes=int(m))
            c = round(100 + k + rng.normal(), 2)
            lines.append(f"{when.isoformat()},{c},{c + 1},{c - 1},{c},{int(m) + 1}")
        (folder / f"S{k}.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_folder_loads_identically_with_one_and_many_threads(tmp_path):
    folder = _folder(tmp_path)
    one = ReplayFeed(folder, instruments=InstrumentTable(), threads=1)
    many = ReplayFeed(folder, instruments=InstrumentTable(), threads=4)
    assert same(arrays(one), arrays(many))
    assert one.instruments.symbols == many.instruments.symbols == [f"S{k}" for k in range(6)]
    d = one.data()
    assert np.array_equal(np.lexsort((d.sym, d.ts_ns)), np.arange(len(d)))   # (ts, sym) order
    assert d.sym[:6].tolist() == list(range(6)) and len(d) == 2400
    _kind, ref, _ = read_csv_reference(sorted(folder.glob("*.csv")), InstrumentTable())
    assert same(arrays(one), list(ref))


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), min_size=1, max_size=200))
def test_merge_order_is_a_stable_lexsort(pairs):
    ts = np.array([p[0] for p in pairs], np.int64)
    sym = np.array([p[1] for p in pairs], np.int32)
    assert np.array_equal(merge_order(sym, ts), np.lexsort((sym, ts)))


def test_cache_is_off_by_default_and_reused_when_on(tmp_path):
    folder = _folder(tmp_path, n_symbols=2, n=50)
    cache = tmp_path / "cache"
    ReplayFeed(folder, instruments=InstrumentTable())
    assert not cache.exists() and sorted(p.name for p in folder.iterdir()) == ["S0.csv", "S1.csv"]
    first = ReplayFeed(folder, instruments=InstrumentTable(), cache_dir=cache)
    entries = sorted(cache.glob("*.npz"))
    assert len(entries) == 2
    # a cached entry is what gets read: same size and mtime, other bytes -> the cached bars
    s0 = folder / "S0.csv"
    stamp, original = os.stat(s0), s0.read_bytes()
    s0.write_bytes(b"\xff" * len(original))
    os.utime(s0, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    again = ReplayFeed(folder, instruments=InstrumentTable(), cache_dir=cache)
    assert same(arrays(first), arrays(again)) and again.data().span_s == 60
    s0.write_bytes(original)
    os.utime(s0, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    # a changed file (size/mtime) is parsed again, not served stale
    with open(folder / "S0.csv", "a") as fh:
        fh.write("2024-06-03T10:15:00+05:30,50,51,49,50,7\n")
    assert os.stat(folder / "S0.csv").st_size != stamp.st_size
    changed = ReplayFeed(folder, instruments=InstrumentTable(), cache_dir=cache)
    assert len(changed.data()) == len(first.data()) + 1 and len(list(cache.glob("*.npz"))) == 3
    # a damaged entry is ignored and rewritten
    for e in cache.glob("*.npz"):
        e.write_bytes(b"junk")
    healed = ReplayFeed(folder, instruments=InstrumentTable(), cache_dir=cache)
    assert same(arrays(healed), arrays(changed))


def test_cache_keeps_quarantine_counts(tmp_path):
    f = write(tmp_path, HEADER + GOOD + "2024-06-03T09:18:00+05:30,1,1,1,1e300,1\n")
    a = ReplayFeed(f, instruments=InstrumentTable(), cache_dir=tmp_path / "c")
    b = ReplayFeed(f, instruments=InstrumentTable(), cache_dir=tmp_path / "c")
    assert a.quarantined == b.quarantined == {"price_absurd": 1}
    assert b.quarantine_examples == {"price_absurd": ["RELIANCE.csv:5"]}


# ------------------------------------------------------------------ timestamps

@pytest.mark.parametrize("text", [
    "2024-06-03T09:15:00+05:30", "2024-06-03 09:15:00+05:30", "2024-06-03 09:15:00+0530",
    "2024-06-03T03:45:00Z", "2024-06-03T03:45:00+00:00", "2024-06-03 09:15:00",
    "2024-06-03T09:15", "2024/06/03 09:15:00", "03-06-2024 09:15:00", "03-06-2024 09:15",
    "03-Jun-2024 09:15", "3-6-2024 09:15", "1717386300", "1717386300000", "1717386300000000",
    "1717386300000000000", "  2024-06-03 09:15:00  ", "2024-06-03T09:15:00.000+05:30",
])
def test_common_timestamp_forms_mean_the_same_instant(text):
    assert parse_timestamp(text) == T915


def test_fractions_and_date_only():
    assert parse_timestamp("2024-06-03T09:15:00.123456789+05:30") == T915 + 123_456_789
    assert parse_timestamp("2024-06-03") == T915 - (9 * 3600 + 15 * 60) * NS


@pytest.mark.parametrize("text,reason", [
    ("03/06/2024 09:15", "ambiguous"), ("6/3/24", "ambiguous"),
    ("9999-01-01 00:00:00", "year 9999 is outside"), ("1969-12-31", "year 1969"),
    ("99999999999999999999", "unrecognised"), ("-5", "too small"), ("-1717386300", "outside"),
    ("20240603", "compact dates like 20240603 are not read"),
    ("06-23-2024 09:15", "day first"), ("2024-02-30", "day 30 out of range"),
    ("2024-06-03 25:00", "time of day"), ("June 3, 2024", "unrecognised"), ("", "empty"),
])
def test_bad_timestamps_say_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_timestamp(text)


class _Py310Datetime(dt.datetime):
    """datetime whose fromisoformat rejects what Python 3.10's does (here: everything)."""

    @classmethod
    def fromisoformat(cls, text):
        raise ValueError(f"Invalid isoformat string: {text!r}")


def test_kite_0530_offset_does_not_depend_on_fromisoformat(tmp_path, monkeypatch):
    monkeypatch.setattr(dt, "datetime", _Py310Datetime)
    assert parse_timestamp("2024-06-03 09:15:00+0530") == T915
    f = write(tmp_path, "date,open,high,low,close,volume\n"
                        "2024-06-03 09:15:00+0530,1500,1502,1499,1501,100\n"
                        "2024-06-03 09:16:00 +0530,1501,1503,1500,1502,200\n")
    feed = ReplayFeed(f, instruments=InstrumentTable())
    assert feed.data().ts_ns.tolist() == [T915, T915 + 60 * NS] and feed.rows_skipped == 0


def test_dd_mm_yyyy_file_loads(tmp_path):
    f = write(tmp_path, "date,open,high,low,close,volume\n"
                        "03-06-2024 09:15,1500,1502,1499,1501,100\n"
                        "03-06-2024 09:16,1501,1503,1500,1502,200\n")
    feed = ReplayFeed(f, instruments=InstrumentTable())
    assert feed.data().ts_ns.tolist() == [T915, T915 + 60 * NS] and feed.data().span_s == 60


def test_separate_date_and_time_columns_are_joined(tmp_path):
    f = write(tmp_path, "Date,Time,Open,High,Low,Close,Volume\n"
                        "2024-06-03,09:15:00,1500,1502,1499,1501,100\n"
                        "2024-06-03,09:16:00,1501,1503,1500,1502,200\n")
    assert ReplayFeed(f, instruments=InstrumentTable()).data().ts_ns.tolist() == \
        [T915, T915 + 60 * NS]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.datetimes(dt.datetime(1974, 1, 1), dt.datetime(2190, 1, 1)),
                          st.sampled_from(["iso_tz", "iso", "dmy", "epoch", "kite", "z"])),
                min_size=1, max_size=30),
       st.booleans())
def test_vectorised_timestamps_equal_the_reference_parser(tmp_path, rows, uniform):
    def fmt(t, form):
        if form == "iso_tz":
            return t.replace(tzinfo=IST).isoformat()
        if form == "kite":
            return t.strftime("%Y-%m-%d %H:%M:%S") + "+0530"
        if form == "z":
            return (t.replace(tzinfo=IST).astimezone(dt.timezone.utc)
                    .strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        if form == "dmy":
            return t.strftime("%d-%m-%Y %H:%M:%S")
        if form == "epoch":
            return str(int(t.replace(tzinfo=IST).timestamp()))
        return t.strftime("%Y-%m-%d %H:%M:%S")
    if uniform:
        rows = [(t, rows[0][1]) for t, _ in rows]
    if rows[0][1] == "epoch":
        rows = [(t.replace(microsecond=0), f) for t, f in rows]
    texts = [fmt(t, f) for t, f in rows]
    f = tmp_path / "T.csv"
    f.write_text("timestamp,price\n" + "".join(f"{x},{i + 1}\n" for i, x in enumerate(texts)))
    feed = ReplayFeed(f, instruments=InstrumentTable())
    got = feed.data()
    want = sorted((parse_timestamp(x), float(i + 1)) for i, x in enumerate(texts))
    assert list(zip(got.ts_ns.tolist(), got.price.tolist())) == want
    for (t, form), x in zip(rows, texts):
        exact = int(t.replace(tzinfo=IST, microsecond=0).timestamp()) * NS
        if form in ("iso_tz", "z"):
            exact += t.microsecond * 1000
        assert parse_timestamp(x) == exact


# ------------------------------------------------------------------ fatal files

def _fails(path, *, line=None, reason):
    with pytest.raises(DataError) as info:
        ReplayFeed(path, instruments=InstrumentTable())
    msg = str(info.value)
    assert msg.startswith(str(path)) and reason in msg and "\n" not in msg, msg
    if line is not None:
        assert info.value.line == line and f": line {line}: " in msg, msg
    assert isinstance(info.value, ValueError)
    return info.value


def test_200kb_field_in_a_number_column(tmp_path):
    f = write(tmp_path, HEADER + GOOD + "2024-06-03T09:18:00+05:30,1500," + "x" * 200_000
              + ",1499,1501,100\n")
    _fails(f, line=5, reason="field of 200,000 characters in column 'high'")


def test_200kb_field_in_the_timestamp_column(tmp_path):
    f = write(tmp_path, HEADER + GOOD + "2" * 200_000 + ",1500,1502,1499,1501,100\n")
    _fails(f, line=5, reason="timestamp field of 200,000 characters")


def test_200kb_quoted_field_swallowing_lines(tmp_path):
    f = write(tmp_path, HEADER + GOOD + '2024-06-03T09:18:00+05:30,"' + "1" * 2_000_000 + "\n")
    _fails(f, line=5, reason="record of 2,000,027 bytes has 2 fields, expected 6")


def test_year_9999_timestamp(tmp_path):
    f = write(tmp_path, HEADER + GOOD + "9999-06-03T09:18:00+05:30,1500,1502,1499,1501,100\n")
    _fails(f, line=5, reason="year 9999 is outside 1970-2199")


def test_year_2250_timestamp_in_range_of_int64(tmp_path):
    f = write(tmp_path, HEADER + "2250-06-03 09:18:00,1500,1502,1499,1501,100\n" + GOOD)
    _fails(f, line=2, reason="year 2250 is outside")


def test_non_utf8_file(tmp_path):
    f = write(tmp_path, (HEADER + GOOD).encode() + "2024-06-03T09:18:00+05:30,1500,1502,"
              "1499,1501,100 \u20b9\n".encode("cp1252", errors="replace").replace(b"?", b"\x80"))
    _fails(f, line=5, reason="not UTF-8 text (byte 0x80 at column 51)")


def test_latin1_header(tmp_path):
    f = write(tmp_path, "d\xe4te,open,high,low,close,volume\n".encode("latin-1") + GOOD.encode())
    _fails(f, line=1, reason="not UTF-8")


def test_utf8_bom_is_accepted_silently(tmp_path, caplog):
    plain = write(tmp_path, HEADER + GOOD, "A.csv")
    bom = write(tmp_path, b"\xef\xbb\xbf" + (HEADER + GOOD).encode(), "B.csv")
    a = ReplayFeed(plain, instruments=InstrumentTable(), symbol="X")
    with caplog.at_level("WARNING"):
        b = ReplayFeed(bom, instruments=InstrumentTable(), symbol="X")
    assert same(arrays(a), arrays(b)) and b.rows_skipped == 0 and not caplog.records


@pytest.mark.parametrize("stamp,reason", [
    ("03/06/2024 09:18", "ambiguous date '03/06/2024 09:18'"),
    ("3 June 2024", "unrecognised timestamp"),
    ("abc", "unrecognised timestamp 'abc'"),
])
def test_unreadable_timestamps_are_fatal_with_the_line(tmp_path, stamp, reason):
    f = write(tmp_path, HEADER + GOOD + f"{stamp},1500,1502,1499,1501,100\n")
    _fails(f, line=5, reason=reason)


def test_line_numbers_count_blank_lines_and_skipped_rows(tmp_path):
    f = write(tmp_path, HEADER + "\n" + GOOD + "\r\n1,2\n\n" + "bad date,1,2,1,1,1\n")
    _fails(f, line=9, reason="unrecognised timestamp 'bad date'")


@pytest.mark.parametrize("text,reason", [
    ("", "empty file"), ("\n\n", "empty file"), ("a,b\n1,2\n", "unrecognised header"),
    ("date,close\n2024-06-03,1\n", "unrecognised header"),
    ("date,Date,open,high,low,close\n", "duplicate column 'date'"),
    (HEADER, "no usable rows (0 skipped)"),
    (HEADER + "2024-06-03 09:15,0,0,0,0,0\n", "no usable rows (1 skipped: price_not_positive: 1)"),
])
def test_files_without_usable_content(tmp_path, text, reason):
    _fails(write(tmp_path, text), reason=reason)


def test_parquet_junk_and_bad_years(tmp_path):
    junk = write(tmp_path, b"PAR1 not really", "J.parquet")
    _fails(junk, reason="cannot be read as Parquet")
    t = pa.table({"date": pa.array([dt.datetime(2024, 6, 3), dt.datetime(2299, 1, 1)],
                                   pa.timestamp("us", tz="UTC")),
                  "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0]})
    pq.write_table(t, tmp_path / "Y.parquet")
    err = _fails(tmp_path / "Y.parquet", reason="is outside 1970-2199")
    assert ": row 2: " in str(err)


def test_mixed_ticks_and_candles_in_a_folder(tmp_path):
    write(tmp_path, HEADER + GOOD, "A.csv")
    write(tmp_path, "timestamp,symbol,price\n2024-06-03 09:15,SBIN,600\n", "B.csv")
    with pytest.raises(DataError, match="mixed tick and candle files"):
        ReplayFeed(tmp_path, instruments=InstrumentTable())


def test_the_first_bad_file_in_name_order_is_reported_whatever_the_threads(tmp_path):
    write(tmp_path, HEADER + GOOD, "A.csv")
    write(tmp_path, HEADER + "9999-01-01,1,1,1,1,1\n", "B.csv")
    write(tmp_path, b"\xff\xfe", "C.csv")
    for threads in (1, 3):
        with pytest.raises(DataError, match=r"B\.csv: line 2: year 9999"):
            ReplayFeed(tmp_path, instruments=InstrumentTable(), threads=threads)


def test_threads_must_be_a_positive_int(tmp_path):
    f = write(tmp_path, HEADER + GOOD)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            ReplayFeed(f, instruments=InstrumentTable(), threads=bad)


@pytest.mark.parametrize("content", [
    "x" * 200_000, "9999-01-01 09:15,1,1,1,1,1", b"\xff\xfe\x00bad",
])
def test_cli_prints_one_line_and_exits_2_for_a_bad_file(tmp_path, capsys, content):
    body = (HEADER + GOOD).encode() + (content.encode() if isinstance(content, str) else content)
    f = write(tmp_path, body + b"\n", "BAD.csv")
    assert main(["backtest", "--data", str(f), "--out", str(tmp_path / "out")]) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hftcore: error: ") and "BAD.csv: line 5: " \
        in lines[0], cap.err
    assert "Traceback" not in cap.err and not (tmp_path / "out").exists()


def test_cli_bad_file_in_a_subprocess(tmp_path):
    f = write(tmp_path, HEADER + GOOD + "9999-06-03 09:18,1,1,1,1,1\n", "BAD.csv")
    import hftcore          # the copy under test: the installed wheel in `make test`
    env = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}
    run = subprocess.run([sys.executable, "-m", "hftcore", "backtest", "--data", str(f), "--out",
                          str(tmp_path / "o")], check=False, capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and f"{f}: line 5: year 9999 is outside" in run.stderr


# ------------------------------------------------------------------ quarantined rows

BAD_ROWS = [
    ("2024-06-03T09:18:00+05:30,1500,1502,1499,1501,1e308", "volume_absurd"),
    ("2024-06-03T09:19:00+05:30,1500,1502,1499,1e300,100", "price_absurd"),
    ("2024-06-03T09:20:00+05:30,1500,1502,1499,0,100", "price_not_positive"),
    ("2024-06-03T09:21:00+05:30,1500,1502,1499,-3,100", "price_not_positive"),
    ("2024-06-03T09:22:00+05:30,nan,1502,1499,1501,100", "not_finite"),
    ("2024-06-03T09:23:00+05:30,1500,inf,1499,1501,100", "not_finite"),
    ("2024-06-03T09:24:00+05:30,1500,1490,1510,1501,100", "candle_inconsistent"),
    ("2024-06-03T09:25:00+05:30,1500,1502,1499,1501,-1", "volume_negative"),
    ("2024-06-03T09:26:00+05:30,abc,1502,1499,1501,100", "not_a_number"),
    ("2024-06-03T09:27:00+05:30,,1502,1499,1501,100", "not_a_number"),
    ("2024-06-03T09:28:00+05:30,1500,1502,1499,1501,lots", "not_a_number"),
    ("2024-06-03T09:29:00+05:30,1500,1502", "bad_fields"),
    ("2024-06-03T09:30:00+05:30,1500,1502,1499,1501,100,7", "bad_fields"),
    ("2024-06-03T09:31:00+05:30,1500,1503,1499,1504,100", "candle_inconsistent"),
]


def test_absurd_rows_are_quarantined_and_counted_by_reason(tmp_path, caplog):
    lines = [HEADER.strip()] + GOOD.splitlines() + [r for r, _ in BAD_ROWS] + [
        "2024-06-03T09:40:00+05:30,1510,1512,1509,1511,400"]
    f = write(tmp_path, "\n".join(lines) + "\n")
    with caplog.at_level("WARNING"):
        feed = _count(ReplayFeed(f, instruments=InstrumentTable()))
    clean = write(tmp_path, "\n".join(lines[:4] + lines[-1:]) + "\n", "CLEAN.csv")
    assert same(arrays(feed), arrays(ReplayFeed(clean, instruments=InstrumentTable(),
                                                symbol="RELIANCE")))
    want: dict[str, int] = {}
    for _, reason in BAD_ROWS:
        want[reason] = want.get(reason, 0) + 1
    assert feed.quarantined == want and feed.rows_skipped == len(BAD_ROWS) == 14
    assert feed.quarantine_examples["volume_absurd"] == ["RELIANCE.csv:5"]
    assert feed.quarantine_examples["price_not_positive"] == ["RELIANCE.csv:7", "RELIANCE.csv:8"]
    assert feed.quarantine_examples["bad_fields"] == ["RELIANCE.csv:16", "RELIANCE.csv:17"]
    assert feed.quarantine_examples["candle_inconsistent"] == ["RELIANCE.csv:11",
                                                               "RELIANCE.csv:18"]
    assert any("14 malformed rows left out" in r.getMessage() for r in caplog.records)
    assert len(feed.data()) == 4 and feed.data().volume.max() == 400


def test_one_absurd_row_does_not_change_the_backtest(tmp_path):
    """The issue's case: one row with volume 1e308 or price 1e300 changed 17 fills to 11."""
    src = (DATA / "RELIANCE.csv").read_text().splitlines()
    out = {}
    for name, row in (("clean", None), ("vol", "1e308"), ("price", "1e300")):
        folder = tmp_path / name
        folder.mkdir()
        lines = list(src)
        if row == "1e308":
            lines.insert(500, lines[500].rsplit(",", 1)[0] + ",1e308")
        elif row == "1e300":
            p = lines[900].split(",")
            lines.insert(900, ",".join([p[0], p[1], "1e300", p[3], p[4], p[5]]))
        (folder / "RELIANCE.csv").write_text("\n".join(lines) + "\n")
        assert main(["backtest", "--data", str(folder), "--out", str(folder / "out")]) == 0
        out[name] = json.loads((folder / "out" / "summary.json").read_text())
    for key in ("fills", "trades", "final_equity", "ticks"):
        assert out["vol"][key] == out["price"][key] == out["clean"][key], key


def test_blank_symbol_cells(tmp_path):
    f = write(tmp_path, "timestamp,symbol,price,volume\n"
                        "2024-06-03 09:15,SBIN,600,1\n"
                        "2024-06-03 09:15,   ,600,1\n"
                        "2024-06-03 09:16,,601,1\n", "TICKS.csv")
    feed = ReplayFeed(f, instruments=InstrumentTable())
    assert feed.quarantined == {"bad_symbol": 1}
    assert feed.instruments.symbols == ["SBIN", "TICKS"]          # empty -> the file's symbol


def test_bounds_are_what_the_docs_say():
    assert MAX_PRICE == 1e9 and MAX_VOLUME == 1e12


# ------------------------------------------------------------------ fuzz

_csvish = st.text(alphabet='0123456789,.-+:TZ "\n\r/eE abcnaif\u20b9', max_size=300).map(
    str.encode)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.one_of(st.binary(max_size=400), _csvish),
       st.sampled_from([b"", HEADER.encode(), b"\xef\xbb\xbf" + b"timestamp,symbol,price,volume\n",
                        HEADER.encode() + GOOD.encode()]))
def test_random_bytes_give_data_or_one_data_error(tmp_path, blob, prefix):
    f = tmp_path / "FUZZ.csv"
    f.write_bytes(prefix + blob)
    try:
        feed = ReplayFeed(f, instruments=InstrumentTable())
    except DataError as exc:
        assert str(exc).startswith(str(f)) and "\n" not in str(exc)
        return
    d = feed.data()
    assert len(d) > 0 and np.all(np.diff(d.ts_ns) >= 0)
    assert np.isfinite(d.price).all() and (d.price > 0).all() and (d.price <= MAX_PRICE).all()
    if prefix.endswith(GOOD.encode()):                 # the good rows survive any junk after them
        rel = d.sym == feed.instruments.id_of("FUZZ")
        assert {T915, T915 + 60 * NS, T915 + 120 * NS} <= set(d.ts_ns[rel].tolist())


_num = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                 st.sampled_from([0.0, -1.0, 1e300, 1e308, 1e9, 1e12, 1e13, 5e-324]),
                 st.floats(0.01, 1e6))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.tuples(_num, _num, _num, _num, _num, st.booleans()), max_size=40))
def test_absurd_values_are_quarantined_and_good_rows_still_load(tmp_path, rows):
    lines, good = [HEADER.strip()], []
    for k, (o, h, lo, c, v, sane) in enumerate(rows):
        if sane:                                   # a guaranteed good row
            o, h, lo, c, v = 100.0, 101.0, 99.0, 100.5, float(k)
        lines.append(f"{T915 // NS + 60 * k},{o!r},{h!r},{lo!r},{c!r},{v!r}")
        prices = (o, h, lo, c)
        ok = (all(math.isfinite(x) and 0 < x <= MAX_PRICE for x in prices)
              and math.isfinite(v) and 0 <= v <= MAX_VOLUME
              and h >= max(o, c) and lo <= min(o, c))
        if ok:
            good.append((T915 + 60 * k * NS, o, h, lo, c, v))
    f = tmp_path / "ABS.csv"
    f.write_text("\n".join(lines) + "\n")
    if not good:
        with pytest.raises(DataError, match="no usable rows"):
            ReplayFeed(f, instruments=InstrumentTable())
        return
    feed = _count(ReplayFeed(f, instruments=InstrumentTable()))
    d = feed.data()
    got = list(zip(d.ts_ns.tolist(), d.open.tolist(), d.high.tolist(), d.low.tolist(),
                   d.close.tolist(), d.volume.tolist()))
    assert got == good
    assert feed.rows_skipped == len(rows) - len(good) == sum(feed.quarantined.values())


def test_backtest_summary_is_unchanged_from_the_csv_module_reader(tmp_path, monkeypatch, capsys):
    """`hftcore backtest --data examples/data/candles`: same trades, fills and equity whether
    the bars come from the pyarrow reader or from the csv-module reader it replaced."""
    from hftcore import feeds
    assert main(["backtest", "--data", str(DATA), "--out", str(tmp_path / "new")]) == 0

    built = []

    class CsvModuleReplay(feeds.ArrayFeed):
        def __init__(self, path, instruments=None, symbol=None):
            built.append(path)
            instruments = InstrumentTable.nse_default() if instruments is None else instruments
            _, arrs, self.rows_skipped = read_csv_reference(sorted(Path(path).glob("*.csv")),
                                                            instruments, symbol)
            super().__init__(feeds.Bars(*arrs, span_s=60), instruments)
    monkeypatch.setattr(feeds, "ReplayFeed", CsvModuleReplay)
    assert main(["backtest", "--data", str(DATA), "--out", str(tmp_path / "old")]) == 0
    assert built == [str(DATA)]
    new, old = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("new", "old"))
    assert new["trades"] == old["trades"] >= 1 and new["fills"] == old["fills"]
    same = lambda d: {k: v for k, v in d.items()          # noqa: E731
                      if "latency" not in k and k != "provenance"}  # provenance names --out
    assert same(new) == same(old)
    assert (tmp_path / "new" / "fills.csv").read_bytes() == \
        (tmp_path / "old" / "fills.csv").read_bytes()


def test_epoch_column_with_a_compact_date_is_fatal_not_1970(tmp_path):
    f = write(tmp_path, "timestamp,price\n1717386300,10\n1717386360,11\n20240603,12\n")
    _fails(f, line=4, reason="compact dates like 20240603 are not read")
    ok = write(tmp_path, "timestamp,price\n1717386300,10\n1717386360000,11\n", "OK.csv")
    assert ReplayFeed(ok, instruments=InstrumentTable()).data().ts_ns.tolist() == \
        [T915, T915 + 60 * NS]


def test_cli_warns_with_the_quarantine_reasons(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    lines = (DATA / "INFY.csv").read_text().splitlines()
    lines.insert(10, lines[10].rsplit(",", 1)[0] + ",1e308")
    (folder / "INFY.csv").write_text("\n".join(lines) + "\n")
    assert main(["backtest", "--data", str(folder), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert f"warning: skipped 1 malformed rows in {folder} (volume_absurd: 1)" in err


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_cli_never_shows_a_traceback_for_random_bytes(tmp_path, capsys, blob):
    f = tmp_path / "RND.csv"
    f.write_bytes(HEADER.encode() + blob)
    code = main(["backtest", "--data", str(f), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and f"{f}: " in err
    else:
        assert code == 0


def test_a_folder_with_the_same_symbol_as_csv_and_parquet_is_refused(tmp_path):
    write(tmp_path, HEADER + GOOD, "RELIANCE.csv")
    pq.write_table(pacsv.read_csv(tmp_path / "RELIANCE.csv"), tmp_path / "reliance.parquet")
    write(tmp_path, b"\x00\x01junk", "._RELIANCE.csv")          # a dot file is not data
    with pytest.raises(DataError, match="RELIANCE.csv and reliance.parquet would replay the "
                                        "same symbol twice"):
        ReplayFeed(tmp_path, instruments=InstrumentTable())
    (tmp_path / "reliance.parquet").unlink()
    assert len(ReplayFeed(tmp_path, instruments=InstrumentTable()).data()) == 3


def test_paper_replay_of_a_bad_file_is_one_line(tmp_path, capsys):
    f = write(tmp_path, "\ufeff" + HEADER + GOOD + "03/06/2024 09:18,1,1,1,1,1\n", "BAD.csv")
    assert main(["paper", "--feed", f"replay:{f}", "--duration", "1",
                 "--checkpoint-dir", str(tmp_path / "ck")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{f}: line 5: ambiguous date '03/06/2024 09:18'" in err


def test_more_threads_than_files_gives_the_same_rows_and_lines(tmp_path):
    write(tmp_path, HEADER + GOOD + "2024-06-03T09:18:00+05:30,1,2\n\n"
          "2024-06-03T09:19:00+05:30,1500,1502,1499,1e300,5\n", "A.csv")
    write(tmp_path, HEADER + GOOD, "B.csv")
    one = ReplayFeed(tmp_path, instruments=InstrumentTable(), threads=1)
    many = ReplayFeed(tmp_path, instruments=InstrumentTable(), threads=8)
    assert same(arrays(one), arrays(many)) and len(one.data()) == 6
    assert one.quarantine_examples == many.quarantine_examples == {
        "bad_fields": ["A.csv:5"], "price_absurd": ["A.csv:7"]}


def test_a_null_parquet_timestamp_is_fatal_not_year_1677(tmp_path):
    t = pa.table({"date": pa.array([dt.datetime(2024, 6, 3, 4), None],
                                   pa.timestamp("us", tz="UTC")),
                  "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0]})
    pq.write_table(t, tmp_path / "N.parquet")
    err = _fails(tmp_path / "N.parquet", reason="empty timestamp")
    assert ": row 2: " in str(err)


def test_parquet_nulls_read_as_before(tmp_path):
    t = pa.table({"timestamp": pa.array([dt.datetime(2024, 6, 3, 4), dt.datetime(2024, 6, 3, 5),
                                         dt.datetime(2024, 6, 3, 6)], pa.timestamp("us", tz="UTC")),
                  "symbol": pa.array([None, "SBIN", ""]), "price": pa.array([1.0, None, 2.0]),
                  "volume": pa.array(["5", None, " "])})
    pq.write_table(t, tmp_path / "T.parquet")
    feed = ReplayFeed(tmp_path / "T.parquet", instruments=InstrumentTable(), symbol="XX")
    d = feed.data()
    assert feed.quarantined == {"not_a_number": 1}          # the null price (its volume too)
    assert feed.instruments.symbols == ["XX"]                # null and "" symbols: the default
    assert d.price.tolist() == [1.0, 2.0] and d.volume.tolist() == [5.0, 0.0]


PANDAS_FREE = """
import sys, pathlib
from hftcore import InstrumentTable, ReplayFeed
from hftcore.datafiles import DataError
for f in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    ReplayFeed(f, instruments=InstrumentTable(), threads=2).data()
try:
    ReplayFeed(sys.argv[2], instruments=InstrumentTable())
except DataError:
    pass
assert "pandas" not in sys.modules, "reading market data imported pandas"
print("ok")
"""


def test_loading_does_not_import_pandas(tmp_path):
    # pyarrow's to_numpy / pa.scalar import pandas when it is installed: ~0.3 s of every
    # `hftcore backtest` load phase went there
    pytest.importorskip("pandas")
    d = tmp_path / "files"
    d.mkdir()
    write(d, HEADER + GOOD, "CANDLES.csv")
    write(d, HEADER + GOOD + "2024-06-03T09:18:00+05:30,abc,1,1,1,\n", "JUNK.csv")
    write(d, "timestamp,symbol,price,volume\n2024-06-03 09:15,SBIN,600,1\n"
             "2024-06-03 09:15,,601,\n", "TICKS.csv")
    write(d, "date,time,open,high,low,close\n03-06-2024,09:15,1,1,1,1\n", "DT.csv")
    write(d, "timestamp,price\n1717386300,600\n", "EPOCH.csv")
    pq.write_table(pa.table({"date": pa.array([T915, T915 + 60 * NS], pa.timestamp("ns", tz="UTC")),
                             "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0],
                             "close": [1.0, None], "symbol": ["A", None]}), d / "P.parquet")
    pq.write_table(pa.table({"date": pa.array([T915], pa.timestamp("ns")), "open": [1],
                             "high": [1], "low": [1], "close": [1]}), d / "Q.parquet")
    bad = write(tmp_path, HEADER + GOOD + "9999-06-03 09:18,1,1,1,1,1\n", "BAD.csv")
    import hftcore
    env = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}
    run = subprocess.run([sys.executable, "-c", PANDAS_FREE, str(d), str(bad)],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


# ------------------------------------------------------------------ the compiled fast path

def _read_both(f, monkeypatch):
    """read_file through the compiled scanner and through pyarrow only: (result, result),
    each FileData fields or the DataError text."""
    from hftcore import datafiles
    out = []
    for fast in (True, False):
        monkeypatch.setattr(datafiles, "_FAST_CSV", fast)
        try:
            d = datafiles.read_file(f, "SYM")
            out.append((d.kind, d.names, d.code.tolist(), d.ts.dtype, d.ts.tobytes(),
                        d.values.dtype, d.values.shape, d.values.tobytes(), d.volume.tobytes(),
                        d.quarantined, d.examples))
        except DataError as exc:
            out.append(str(exc))
    return out


PLAIN_NUMBERS = st.one_of(
    st.integers(0, 10**6).map(str),
    st.tuples(st.integers(-5, 10**7), st.integers(0, 10**6), st.integers(1, 7)).map(
        lambda t: f"{t[0]}.{str(t[1]).zfill(t[2])[:t[2]]}"))
ODD_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.sampled_from(["1e5", ".5", "5.", "+1", " 7", "7 ", "", "nan", "-0", "-0.00", "0x10",
                     "9007199254740993", "9007199254740992", "123456789012345678.5",
                     "1234567890123456789", "0.0000000000000000000001", "1.00000000000000000000001",
                     '"12"', "1,5"]))
PLAIN_STAMPS = st.tuples(
    st.datetimes(dt.datetime(1970, 1, 2), dt.datetime(2199, 12, 30)), st.sampled_from(["T", " "]),
    st.sampled_from(["", "+05:30", "+0530", "Z", "-01:00", "+05", "+18:00", "-0000"]),
    st.sampled_from(["", ".5", ".123456", ".123456789"])).map(
        lambda t: t[0].strftime("%Y-%m-%d") + t[1] + t[0].strftime("%H:%M:%S") + t[3] + t[2])
ODD_STAMPS = st.sampled_from([
    "2023-02-29 09:15:00", "2024-02-29 09:15:00", "2023-04-31T09:15:00", "2023-01-02T24:00:00",
    "2023-01-02T09:60:00", "2023-01-02T09:15:60", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
    "1970-01-01T05:29:59", "2199-12-31T23:59:59", "2200-01-01T00:00:00+05:30",
    "2023-01-02T09:15:00+19:00", "2023-01-02T09:15:00+05:60", "2023-01-02T09:15:00.1234567890",
    "2023-01-02T09:15:00.", "2023-1-2 09:15:00", "2023-01-02 9:15:00", "2023-01-02T09:15",
    "2023-01-02", "1700000000", "02-01-2023 09:15", "2023-01-02T09:15:00 +05:30",
    "2023-01-02T09:15:00z", " 2023-01-02T09:15:00"])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(PLAIN_STAMPS, st.lists(PLAIN_NUMBERS, min_size=5, max_size=5)),
                min_size=0, max_size=12),
       st.sampled_from(["\n", "\r\n"]), st.booleans(), st.booleans(),
       st.sampled_from(["none"] * 4 + ["blank", "short", "long", "quote", "cr", "number",
                                       "stamp", "utf8", "bad_byte", "utf8_header"]),
       ODD_NUMBERS, ODD_STAMPS, st.integers(0, 4))
def test_compiled_scanner_gives_what_pyarrow_gives(tmp_path, monkeypatch, rows, eol, last_eol,
                                                   extra_col, dirt, odd_number, odd_stamp, col):
    # the scanner either reads a file exactly as the general pyarrow reader does or declines
    # it; errors, quarantine counts and line numbers are the general reader's either way
    header = "date,open,high,low,close,volume" + (",oi" if extra_col else "")
    if dirt == "utf8_header":
        header = header.replace("oi", "öi").replace("volume", "volumé")
    lines = [",".join([stamp, *nums] + (["7"] if extra_col else [])) for stamp, nums in rows]
    if dirt in ("utf8", "bad_byte") and lines:
        k = len(lines) // 2                     # in the column nobody reads, or a number
        lines[k] = lines[k][:-1] + ("é" if dirt == "utf8" else "\x00")
    elif dirt in ("none", "utf8_header"):
        pass
    elif lines:
        k = len(lines) // 2
        stamp, nums = rows[k]
        nums = nums[:col] + [odd_number] + nums[col + 1:]
        lines[k] = {"blank": "", "short": lines[k].rsplit(",", 1)[0],
                    "long": lines[k] + ",9", "quote": lines[k].replace(",", ',"', 1) + '"',
                    "cr": lines[k] + "\r", "number": ",".join([stamp, *nums]),
                    "stamp": ",".join([odd_stamp, *rows[k][1]])}[dirt]
        if extra_col and dirt in ("number", "stamp"):
            lines[k] += ",7"
    text = eol.join([header, *lines]) + (eol if last_eol else "")
    f = write(tmp_path, text.encode().replace(b"\x00", b"\xff"), "SYM.csv")
    fast, general = _read_both(f, monkeypatch)
    assert fast == general


def test_plain_kite_files_skip_pyarrow_and_others_use_it(tmp_path, monkeypatch):
    from hftcore import datafiles
    used = []
    real = datafiles._read_with_arrow
    monkeypatch.setattr(datafiles, "_read_with_arrow",
                        lambda path, *a: used.append(Path(path).name) or real(path, *a))
    write(tmp_path, HEADER + GOOD, "PLAIN.csv")
    write(tmp_path, (HEADER + GOOD).replace("\n", "\r\n"), "CRLF.csv")
    write(tmp_path, "timestamp,price\n2024-06-03 09:15:00,600\n", "TICKS.csv")
    write(tmp_path, HEADER + GOOD + "2024-06-03T09:18:00+05:30,1e3,1e3,1e3,1e3,1\n", "EXP.csv")
    write(tmp_path, "\n" + HEADER + GOOD, "BLANK.csv")
    write(tmp_path, HEADER + GOOD + '2024-06-03T09:18:00+05:30,"1500",1502,1499,1501,1\n',
          "QUOTED.csv")
    write(tmp_path, "timestamp,symbol,price\n2024-06-03 09:15:00,SBIN,600\n", "SYMBOLS.csv")
    rows = {f.name: len(ReplayFeed(f, instruments=InstrumentTable()).data())
            for f in sorted(tmp_path.iterdir())}
    assert sorted(used) == ["BLANK.csv", "EXP.csv", "QUOTED.csv", "SYMBOLS.csv"]
    assert rows == {"PLAIN.csv": 3, "CRLF.csv": 3, "TICKS.csv": 1, "EXP.csv": 4, "BLANK.csv": 3,
                    "QUOTED.csv": 4, "SYMBOLS.csv": 1}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["RELIANCE", "TCS", "INFY", "ZZZ", "AAA"]),
                          st.lists(st.integers(0, 40), min_size=1, max_size=30),
                          st.booleans(), st.booleans()),
                min_size=1, max_size=5),
       st.booleans())
def test_merge_and_bar_span_equal_the_plain_lexsort(monkeypatch, files, preset_ids):
    # read_files merges one-symbol files in one pass and takes the bar length from each
    # file's own gaps; both must equal the stable (time, symbol id) lexsort of everything
    from hftcore import datafiles
    parts = {}
    for k, (name, minutes, two_symbols, keep_order) in enumerate(files):
        ts = np.array([T915 + m * 60 * NS for m in (minutes if keep_order else sorted(minutes))],
                      np.int64)
        n = len(ts)
        names = [name, "XTRA"] if two_symbols else [name]
        code = (np.arange(n) % 2).astype(np.int32) if two_symbols else np.zeros(n, np.int32)
        values = np.vstack([np.full(n, 100.0 + k), np.arange(n) + 200.0, np.full(n, 50.0),
                            np.full(n, 100.0 + k)])
        parts[f"F{k}.csv"] = datafiles.FileData(f"F{k}.csv", "bars", names, code, ts, values,
                                                np.arange(n, dtype=np.float64) + k * 1000)
    monkeypatch.setattr(datafiles, "_load_one", lambda p, *a: parts[Path(p).name])
    table = InstrumentTable.nse_default() if preset_ids else InstrumentTable()
    got = datafiles.read_files([Path(n) for n in parts], table, threads=1)
    lut = {name: table.get(name).id for p in parts.values() for name in p.names
           if table.get(name) is not None}
    sym = np.concatenate([np.array([lut[p.names[c]] for c in p.code], np.int32)
                          for p in parts.values()])
    ts = np.concatenate([p.ts for p in parts.values()])
    order = np.lexsort((sym, ts))
    assert np.array_equal(got.sym, sym[order]) and np.array_equal(got.ts, ts[order])
    assert np.array_equal(got.values, np.concatenate([p.values for p in parts.values()],
                                                     axis=1)[:, order])
    assert np.array_equal(got.volume, np.concatenate([p.volume for p in parts.values()])[order])
    assert got.span_s == datafiles._bar_span(sym[order], ts[order])


def test_a_build_without_the_scanner_reads_the_same(tmp_path, monkeypatch):
    f = write(tmp_path, HEADER + GOOD, "PLAIN.csv")
    want = arrays(ReplayFeed(f, instruments=InstrumentTable()))
    monkeypatch.setitem(sys.modules, "hftcore_ext.csvscan", None)     # import fails
    from hftcore import datafiles
    called = []
    real = datafiles._read_with_arrow
    monkeypatch.setattr(datafiles, "_read_with_arrow", lambda *a: called.append(1) or real(*a))
    assert same(arrays(ReplayFeed(f, instruments=InstrumentTable())), want) and called == [1]


def test_regression_scan_csv_refuses_a_role_past_its_number_columns():
    """``scan_csv`` wrote the k-th number column at ``vals + k * rows`` unchecked: a
    role >= ``n_numbers`` wrote past the array (heap corruption; run in a child so
    the old code cannot take the test run down)."""
    code = """if True:
        import numpy as np, pytest
        from hftcore_ext.csvscan import scan_csv
        raw = np.frombuffer(b"ts,v\\n2024-01-01 09:15:00," + b"1" * 10 + b"\\n" * 1, np.uint8)
        for roles in ([-1, 5], [-1, -3]):
            with pytest.raises(ValueError, match="roles"):
                scan_csv(raw.copy(), 5, roles, 1, 0, 2**62)
        ts, vals = scan_csv(raw.copy(), 5, [-1, 0], 1, 0, 2**62)
        assert vals.tolist() == [[1111111111.0]]
        print("ok")
    """
    root = Path(__file__).resolve().parents[1]              # hftcore_ext as the run has it
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), r.stderr[-2000:]
