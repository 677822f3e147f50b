"""Writing the report folder of a finished ``hftcore backtest`` (issue #11), beside the
previous approach measured in the same run on the same session.

The session is the command benchmark's: EMA(10)/EMA(30) cross on 4 symbols of 1-minute
candles (``HFTCORE_BENCH_DAYS``, default 500 days: 750,000 bars, ~28,000 fills).

* the chart: hftcore embeds ``chart_data`` (base64 float64 columns) and lets BokehJS build
  the figures in the page; the baseline builds the same figures with Bokeh's Python models
  and serialises the document (``bokeh.embed.components``), as the report did before.
* the CSVs: hftcore converts whole columns and writes them at once; the baseline writes
  row by row with ``csv_cell`` on every cell, as before.  Both write the same bytes.
* the whole report folder (``write_report``), for the record.
"""
import csv
import itertools

import numpy as np
import pytest
from test_bench_command import COMMON, DAYS, EMA_CROSS, ROWS, write_folder

from hftcore import report as R

GROUP_CHART = f"report chart of an EMA cross backtest ({ROWS:,} bars)"
GROUP_CSV = f"report trades.csv + fills.csv of an EMA cross backtest ({ROWS:,} bars)"
GROUP_ALL = f"report folder of an EMA cross backtest ({ROWS:,} bars)"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from hftcore.cli import _config, _instruments, build_parser, load_feed
    from hftcore.session import PaperSession
    folder = tmp_path_factory.mktemp("candles")
    write_folder(folder)
    args = build_parser().parse_args(["backtest", "--data", str(folder), *EMA_CROSS, *COMMON])
    cfg = _config(args)
    feed = load_feed(args, cfg, _instruments(cfg))
    kwargs = cfg.session_kwargs()
    kwargs["primary_tf"] = kwargs["secondary_tf"] = f"{feed.data().span_s}s"
    kwargs["fill_at"] = "close"
    s = PaperSession(feed, **kwargs)
    s.run()
    assert len(s.fills) > DAYS * 10
    return s, R.equity_series(s), R._symbol_rows(s)


def bokeh_python_chart(data: dict) -> str:
    """The previous approach: the same panels built with Bokeh's Python models and the
    document serialised in Python (numpy columns: binary, as the report sent them)."""
    from bokeh.embed import components
    from bokeh.layouts import gridplot
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure
    u = R.unb64
    figs, x_range = [], None
    for panel in data["panels"]:
        o, c = u(panel["open"]), u(panel["close"])
        src = ColumnDataSource({"x": u(panel["x"]), "open": o, "high": u(panel["high"]),
                                "low": u(panel["low"]), "close": c,
                                "up": (c >= o).astype(np.int8)})
        p = figure(height=300, sizing_mode="stretch_width", title=panel["symbol"],
                   tools="xpan,xwheel_zoom,box_zoom,reset,save")
        x_range = x_range or p.x_range
        p.x_range = x_range
        p.segment("x", "high", "x", "low", source=src)
        p.vbar("x", 0.7, "open", "close", source=src)
        p.add_tools(HoverTool(tooltips=[("open", "@open")], mode="vline"))
        for kind, color, marker in R.MARK_KINDS:
            if kind in panel["marks"]:
                m = panel["marks"][kind]
                p.scatter(u(m["x"]), u(m["price"]), marker=marker, color=color, size=11,
                          legend_label=kind)
        figs.append(p)
    pe = figure(height=220, sizing_mode="stretch_width", x_range=x_range)
    pe.line(u(data["equity"]["x"]), u(data["equity"]["y"]))
    dd = u(data["drawdown"])
    pd_ = figure(height=150, sizing_mode="stretch_width", x_range=x_range)
    pd_.varea(np.arange(len(dd)), dd, np.zeros(len(dd)))
    script, div = components(gridplot([[f] for f in [*figs, pe, pd_]],
                                      sizing_mode="stretch_width", merge_tools=True))
    return div + script


def row_by_row(path, rows, fields):
    """The previous CSV writer: ``csv_cell`` on every cell, one ``writerow`` per row."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([R.csv_cell(k) for k in fields])
        for r in rows:
            w.writerow([R.csv_cell(r[k]) for k in fields])


FILL_FIELDS = ["time", "order_id", "fill_id", "symbol", "side", "quantity", "price", "fees"]


def fill_rows(fills):
    times = R._ts_many([f["ts"] for f in fills])
    return [{"time": t, "order_id": f["order_id"], "fill_id": f["fill_id"],
             "symbol": f["symbol"], "side": f["side"], "quantity": f["quantity"],
             "price": f["price_paise"] / 100, "fees": f["fees_paise"] / 100}
            for t, f in zip(times, fills)]


@pytest.mark.benchmark(group=GROUP_CHART)
def test_hftcore_chart_bokehjs_in_page(benchmark, finished):
    s, series, rows = finished
    head, body = benchmark.pedantic(lambda: R.chart_html(s, series=series, rows=rows),
                                    rounds=3, warmup_rounds=1)
    assert "Bokeh.Plotting" in body and len(head) > 100_000
    benchmark.extra_info["html_bytes"] = len(head) + len(body)


@pytest.mark.benchmark(group=GROUP_CHART)
def test_baseline_chart_bokeh_python_serialised(benchmark, finished):
    s, series, rows = finished
    data = R.chart_data(s, series=series, rows=rows)
    out = benchmark.pedantic(lambda: bokeh_python_chart(R.chart_data(s, series=series,
                                                                     rows=rows)),
                             rounds=3, warmup_rounds=1)
    assert "Bokeh" in out and len(data["panels"]) == 4


@pytest.mark.benchmark(group=GROUP_CSV)
def test_hftcore_csv_columns(benchmark, finished, tmp_path):
    s, _, _ = finished
    trades = R.trades_from_fills(s.fills)
    runs = itertools.count()

    def write():
        k = next(runs)
        R._write_csv(tmp_path / f"t{k}.csv", trades, R.TRADE_FIELDS)
        R._write_csv(tmp_path / f"f{k}.csv", fill_rows(s.fills), FILL_FIELDS)
        return k
    k = benchmark.pedantic(write, rounds=3, warmup_rounds=1)
    row_by_row(tmp_path / "t.csv", trades, R.TRADE_FIELDS)
    row_by_row(tmp_path / "f.csv", fill_rows(s.fills), FILL_FIELDS)
    assert (tmp_path / f"t{k}.csv").read_bytes() == (tmp_path / "t.csv").read_bytes()
    assert (tmp_path / f"f{k}.csv").read_bytes() == (tmp_path / "f.csv").read_bytes()
    benchmark.extra_info["rows"] = len(trades) + len(s.fills)


@pytest.mark.benchmark(group=GROUP_CSV)
def test_baseline_csv_row_by_row(benchmark, finished, tmp_path):
    s, _, _ = finished
    trades = R.trades_from_fills(s.fills)

    def write():
        row_by_row(tmp_path / "t.csv", trades, R.TRADE_FIELDS)
        row_by_row(tmp_path / "f.csv", fill_rows(s.fills), FILL_FIELDS)
    benchmark.pedantic(write, rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group=GROUP_ALL)
def test_hftcore_write_report(benchmark, finished, tmp_path):
    s, _, _ = finished
    runs = itertools.count()
    m = benchmark.pedantic(lambda: R.write_report(s, tmp_path / f"r{next(runs)}"),
                           rounds=3, warmup_rounds=1)
    assert m["fills"] == len(s.fills) and (tmp_path / "r0" / "equity.png").stat().st_size
