"""The backtest report's own parts: per-symbol table, charges by component, provenance,
latency only with -v, and the chart's entry/exit/stop markers."""
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hftcore import __version__
from hftcore.cli import main
from hftcore.config import Config
from hftcore.feeds import ReplayFeed
from hftcore.report import _fill_marks, equity_series, metrics, trades_from_fills
from hftcore.session import PaperSession

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "candles"


@pytest.fixture(scope="module")
def session():
    s = PaperSession(ReplayFeed(DATA), **Config().session_kwargs())
    s.run()
    return s


def test_per_symbol_rows_and_charge_components_add_up_to_the_totals(session):
    m = metrics(session)
    rows = {r["symbol"]: r for r in m["per_symbol"]}
    assert set(rows) == {"INFY", "RELIANCE"}
    assert sum(r["trades"] for r in rows.values()) == m["trades"] == m["# Trades"] >= 2
    assert sum(r["fills"] for r in rows.values()) == m["fills"] == len(session.fills)
    assert round(sum(r["charges"] for r in rows.values()), 2) == round(m["charges"], 2)
    assert round(sum(r["net_pnl"] for r in rows.values()), 2) == round(m["net_pnl"], 2)
    comp = m["charges_by_component"]
    assert set(comp) == {"brokerage", "stt", "exchange", "sebi", "stamp", "gst", "total"}
    assert comp["total"] == round(m["charges"], 2) > 0
    assert round(sum(v for k, v in comp.items() if k != "total"), 2) == comp["total"]
    assert comp["stt"] > 0 and comp["stamp"] > 0        # sells pay STT, buys stamp duty
    # each symbol's buy & hold is its own first-to-last close
    for sym, r in rows.items():
        closes = [float(line.split(",")[4]) for line in
                  (DATA / f"{sym}.csv").read_text().splitlines()[1:]]
        assert r["buy_hold_pct"] == pytest.approx((closes[-1] / closes[0] - 1) * 100, rel=1e-12)
    assert m["Buy & Hold Return [%]"] == pytest.approx(
        sum(r["buy_hold_pct"] for r in rows.values()) / 2, rel=1e-12)
    # the equity the statistics use: one point per bar, ends at the final equity
    ts, eq = equity_series(session)
    assert len(ts) == 1875 and eq[-1] == m["final_equity"] == m["Equity Final [₹]"]


def test_provenance_names_strategy_data_hashes_config_and_command(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("strategies:\n  rsi_reversion: {params: {oversold: 25}}\n")
    out = tmp_path / "r"
    assert main(["backtest", "--data", str(DATA), "--config", str(cfg), "--capital", "500000",
                 "--out", str(out)]) == 0
    prov = json.loads((out / "summary.json").read_text())["provenance"]
    assert prov["strategies"] == {"rsi_reversion": {"oversold": 25}}
    assert prov["data"]["path"] == str(DATA)
    assert prov["data"]["sha256"] == {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(DATA.glob("*.csv"))}
    assert prov["config"]["capital"] == 500000.0 and prov["config_file"] == str(cfg)
    assert prov["hftcore_version"] == __version__
    assert prov["command"] == f"hftcore backtest --data {DATA} --config {cfg} --capital 500000 " \
        f"--out {out}"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert prov["data"]["sha256"]["INFY.csv"] in html and "rsi_reversion" in html


def test_latency_only_with_verbose(tmp_path, capsys):
    assert main(["backtest", "--data", str(DATA), "--out", str(tmp_path / "a")]) == 0
    quiet = capsys.readouterr().out
    assert main(["-v", "backtest", "--data", str(DATA), "--out", str(tmp_path / "b")]) == 0
    loud = capsys.readouterr().out
    assert "tick-to-intent" not in quiet and "tick-to-intent latency" in loud
    assert "12,34,567" not in quiet and "10,0" in quiet      # Indian grouping of 10 lakh
    assert "tick-to-intent" not in (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "tick-to-intent latency" in (tmp_path / "b" / "report.html").read_text(
        encoding="utf-8")


def test_chart_marks_entries_exits_and_stop_fills(session):
    index, _ = equity_series(session)
    trades = [t for t in trades_from_fills(session.fills) if t["symbol"] == "INFY"]
    marks = _fill_marks(session, "INFY", index, 1)
    assert len(marks) == sum(1 for f in session.fills if f["symbol"] == "INFY")
    exits = [m for m in marks if m["kind"] == "exit"]
    # every closed trade ends with an exit fill at its exit time
    exit_times = {m["time"] for m in exits}
    assert all(t["exit_time"] in exit_times for t in trades)
    first = marks[0]
    assert first["kind"] in ("entry long", "entry short") and index[first["x"]] == \
        session.fills[[f["symbol"] for f in session.fills].index("INFY")]["ts"]
    # a fill of a stop order (SL / SL-M) is drawn as a stop: the fill names its order's type
    mine = [f for f in session.fills if f["order_id"] == exits[0]["order_id"]]
    assert mine and all(f["order_type"] == "MARKET" for f in mine)
    for f in mine:
        f["order_type"] = "SL-M"
    try:
        again = _fill_marks(session, "INFY", index, 1)
    finally:
        for f in mine:
            f["order_type"] = "MARKET"
    changed = [(a["kind"], b["kind"]) for a, b in zip(marks, again) if a != b]
    assert changed and all(k == ("exit", "stop") for k in changed)


def test_run_backtest_stopped_early_writes_a_partial_report(tmp_path):
    from hftcore.cli import build_parser, run_backtest
    args = build_parser().parse_args(["backtest", "--data", str(DATA), "--out", str(tmp_path)])
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 2                    # after 2 of the 5 trading days
    m = run_backtest(args, out=tmp_path, stop=stop)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert m["partial"] is True and summary["partial"] is True
    assert summary["ticks"] == 2 * 2 * 375 < 3750
    assert "(PARTIAL: interrupted)" in (tmp_path / "report.html").read_text(encoding="utf-8")
    whole = run_backtest(args, out=tmp_path / "whole")
    assert "partial" not in whole and whole["ticks"] == 3750


def _chart(html_text: str) -> dict:
    """The chart's data embedded in report.html."""
    start = html_text.index('<script type="application/json" id="chart-data">')
    body = html_text[html_text.index(">", start) + 1:html_text.index("</script>", start)]
    return json.loads(body)


def test_html_chart_keeps_every_buckets_min_and_max_equity_and_every_fill(
        session, tmp_path, monkeypatch):
    import hftcore.report as report
    monkeypatch.setattr(report, "MAX_CHART_POINTS", 100)      # 1,875 bars: 19 per bucket
    report.write_report(session, tmp_path)
    data = _chart((tmp_path / "report.html").read_text(encoding="utf-8"))
    ts, eq = equity_series(session)
    n, step = len(eq), data["step"]
    assert step == 19 and -(-n // step) == len(report.unb64(data["t"])) == 99
    x, y, t = (report.unb64(data["equity"][k]) for k in ("x", "y", "t"))
    # the line's points are real bars: their equity and IST time exactly
    bar = np.rint((x + 0.5) * step - 0.5).astype(np.int64)
    assert np.all(np.diff(bar) > 0) and bar[0] == 0 and bar[-1] == n - 1
    assert np.array_equal(y, eq[bar]) and np.array_equal(t, (ts[bar] // 10**6) + 19_800_000)
    assert len(y) <= 2 * 99 + 2 < n
    # every bucket's lowest and highest equity is on the line, inside that bucket
    for b in range(0, n, step):
        mine = y[(bar >= b) & (bar < b + step)]
        assert mine.min() == eq[b:b + step].min() and mine.max() == eq[b:b + step].max()
    # drawdown: each bucket's deepest
    ddp = (eq / np.maximum.accumulate(eq) - 1) * 100
    assert np.array_equal(report.unb64(data["drawdown"]),
                          np.minimum.reduceat(ddp, np.arange(0, n, step)))
    # every fill is a marker at its bucket and its exact price
    panels = {p["symbol"]: p for p in data["panels"]}
    assert set(panels) == {"INFY", "RELIANCE"}
    for sym, p in panels.items():
        mine = [f for f in session.fills if f["symbol"] == sym]
        got = sorted((int(xx), float(pp)) for m in p["marks"].values()
                     for xx, pp in zip(report.unb64(m["x"]), report.unb64(m["price"])))
        want = sorted((int(np.searchsorted(ts, f["ts"])) // step, f["price"]) for f in mine)
        assert got == want and len(got) == len(mine) > 0
        assert set(p["marks"]) <= {k for k, _, _ in report.MARK_KINDS}
        # candles: the bucket's high and low over its bars
        _, _, high, low, _ = report._symbol_rows(session)[sym]
        cx, hi, lo = (report.unb64(p[k]) for k in ("x", "high", "low"))
        assert np.array_equal(cx, np.arange(99))
        assert hi[3] == high[3 * step:4 * step].max() and lo[3] == low[3 * step:4 * step].min()


def test_equity_chart_points_keep_a_one_bar_spike():
    from hftcore.report import equity_chart_points
    eq = np.full(100_000, 1e6)
    eq[54_321] = 2e5                                # a one-minute crash
    eq[77_777] = 3e6                                # and a one-minute spike
    pts = equity_chart_points(eq, 10)
    assert {0, 54_321, 77_777, 99_999} <= set(pts.tolist()) and len(pts) <= 20_002
    assert equity_chart_points(eq[:5], 1).tolist() == [0, 1, 2, 3, 4]


def _row_by_row(rows, fields) -> str:
    """The CSV the report's writer replaced: one ``csv.writer`` row of ``csv_cell`` values
    per record."""
    import csv

    from hftcore.report import csv_cell
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(k) for k in fields])
    for r in rows:
        w.writerow([csv_cell(r[k]) for k in fields])
    return buf.getvalue()


def test_report_csvs_have_every_trade_and_fill_as_the_row_by_row_writer_wrote_them(
        session, tmp_path):

    from hftcore.report import TRADE_FIELDS, _write_csv, write_report

    write_report(session, tmp_path)
    trades = trades_from_fills(session.fills)
    assert (tmp_path / "trades.csv").read_text(encoding="utf-8") == \
        _row_by_row(trades, TRADE_FIELDS)
    lines = (tmp_path / "trades.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + len(trades) == 11
    fills = (tmp_path / "fills.csv").read_text(encoding="utf-8").splitlines()
    assert len(fills) == 1 + len(session.fills)
    assert [r.split(",")[2] for r in fills[1:]] == [f["fill_id"] for f in session.fills]
    assert fills[1].split(",")[6:] == [f"{session.fills[0]['price_paise'] / 100:.4f}",
                                       f"{session.fills[0]['fees_paise'] / 100:.4f}"]
    # columns of mixed or awkward values: quoted, formula-guarded, None empty, as csv does
    odd = [{"a": "=1+2", "b": 1.5, "c": 3, "d": "x,\"y\"", "e": None},
           {"a": "plain", "b": np.float64(-2.25), "c": True, "d": "-5", "e": 7.0},
           {"a": 42, "b": 0.1, "c": -4, "d": "line\nbreak", "e": "@x"}]
    _write_csv(tmp_path / "odd.csv", odd, list("abcde"))
    assert (tmp_path / "odd.csv").read_text(encoding="utf-8") == _row_by_row(odd, list("abcde"))


def test_equity_png_drawn_in_a_child_python_is_the_same_png(session, tmp_path, monkeypatch):
    import sys

    import hftcore.report as report
    from hftcore.report_png import render_png
    points = report._png_points(*equity_series(session))
    child = report._png_in_child(points)()
    assert child is not None and child[:8] == b"\x89PNG\r\n\x1a\n"
    assert child == render_png(*points) == report.equity_png(session)
    assert not report._png_child_pays(len(equity_series(session)[0]))     # 1,875 bars
    monkeypatch.setattr(report, "_png_child_pays", lambda points: True)
    report.write_report(session, tmp_path / "a")
    assert (tmp_path / "a" / "equity.png").read_bytes() == child
    # no child Python to be had: the report draws it in this process
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    assert report._png_in_child(points)() is None
    report.write_report(session, tmp_path / "b")
    assert (tmp_path / "b" / "equity.png").read_bytes() == child


def test_png_child_started_before_the_run_draws_the_report(session, tmp_path, monkeypatch):
    """``prepare_png`` starts the child before a long run; the next report draws with it
    (the same bytes), a short run starts none, and an unused child is ended at exit."""
    import hftcore.report as report
    points = report._png_points(*equity_series(session))
    want = report.render_png(*points)
    # as in a fresh process (matplotlib not imported here yet) with an idle core
    pays = lambda n: n >= report.PNG_CHILD_MIN_POINTS  # noqa: E731
    monkeypatch.setattr(report, "_png_child_pays", pays)
    assert not report.prepare_png(report.PNG_CHILD_MIN_POINTS - 1)         # short: no child
    assert report._warm_png == []
    assert report.prepare_png(report.PNG_CHILD_MIN_POINTS)
    assert not report.prepare_png(10**9)                                    # one at a time
    (warm,) = report._warm_png
    spawned = []
    monkeypatch.setattr(report, "_spawn_png_child",
                        lambda: spawned.append(1))                   # no second child
    report.write_report(session, tmp_path / "a")
    assert report._warm_png == [] and spawned == []       # the short run drew with it
    assert warm.returncode == 0
    assert (tmp_path / "a" / "equity.png").read_bytes() == want
    monkeypatch.undo()
    monkeypatch.setattr(report, "_png_child_pays", pays)
    assert report.prepare_png(10**6)
    (unused,) = report._warm_png
    report._drop_warm_png()                                   # what atexit does
    assert report._warm_png == [] and unused.returncode is not None


def test_bulk_csv_writer_matches_csv_writer_cell_for_cell(tmp_path):
    """Every column kind the bulk writer formats itself, and every one it leaves to
    ``csv.writer``: the same bytes as one ``writerow`` of ``csv_cell`` values per row."""

    from hftcore.report import _write_csv

    cases = {
        "floats first, ints, formula text": [{"p": -1.5, "q": -3, "s": "=SUM(A1)"},
                                             {"p": float("nan"), "q": 0, "s": "+91"}],
        "text needing quotes": [{"p": 0.5, "q": 1, "s": 'a,"b"'}, {"p": 2.0, "q": 2, "s": "c"}],
        "mixed column": [{"p": 1.25, "q": 1, "s": "x"}, {"p": -7, "q": 2, "s": "y"}],
        "numpy and bool": [{"p": np.float64(-0.125), "q": True, "s": "-5"},
                           {"p": 3.0, "q": np.int64(4), "s": None}],
        "one column": [{"p": "-x"}, {"p": ""}],
        "no rows": [],
    }
    for name, rows in cases.items():
        fields = list(rows[0]) if rows else ["p", "q"]
        f = tmp_path / f"{len(name)}.csv"
        _write_csv(f, rows, fields)
        assert f.read_text(encoding="utf-8") == _row_by_row(rows, fields), name


def test_png_child_only_with_an_idle_core(monkeypatch):
    import os

    import hftcore.report as report
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.9, 0.5, 0.5))     # just this process
    assert report._spare_core()
    monkeypatch.setattr(os, "getloadavg", lambda: (3.1, 2.0, 1.0))     # both cores busy
    assert not report._spare_core()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert not report._spare_core()                                     # one core: no child


_fill = st.tuples(st.sampled_from(["INFY", "SBIN", "TCS"]), st.sampled_from(["BUY", "SELL"]),
                  st.integers(1, 300), st.integers(1, 500_000), st.integers(0, 5_000))


@settings(max_examples=200, deadline=None)
@given(st.lists(_fill, max_size=80))
def test_compiled_round_trips_equal_the_python_walk(rows):
    """trades_from_fills walks the fills in compiled code; the Python walk it replaced
    (tests/twin_lane.py) must give the same trades on random fills: flips, partial
    closes, adds, several symbols, fees."""
    from hftcore.report import _ts_many
    from twin_lane import trades_from_fills_twin
    fills = [{"symbol": s, "side": side, "quantity": q, "price_paise": px, "fees_paise": fee,
              "ts": 1_700_000_000 * 10**9 + k * 60 * 10**9}
             for k, (s, side, q, px, fee) in enumerate(rows)]
    assert trades_from_fills(fills) == trades_from_fills_twin(fills, _ts_many)


def test_round_trips_refuses_what_it_cannot_walk():
    from hftcore_ext.ledger import round_trips
    one = np.ones(1, np.int64)
    with pytest.raises(ValueError, match="same length"):
        round_trips(np.zeros(1, np.int32), one, one, one, np.ones(2, np.int64))
    with pytest.raises(ValueError, match="< 0"):
        round_trips(np.full(1, -1, np.int32), one, one, one, one)
    assert round_trips(np.zeros(0, np.int32), *(np.zeros(0, np.int64),) * 4).shape == (0, 11)
