"""The examples a user copies from run, and trade as they say.

Each strategy in ``examples/strategies`` is run through the real CLI with the
command in its docstring, and its trades are pinned (generated once from a run,
checked by eye, frozen here as "SYMBOL SIDE MM-DD entry exit quantity entry_price
exit_price"); then what makes each example what it is is checked against the
candles themselves (stops at the stop price, 15:15 exits, both pair legs, ...).
"""
import ast
import csv
import json
import math
import runpy
import shlex
import sys
from pathlib import Path

import pandas as pd
import talib

from hftcore.cli import main
from hftcore.instruments import Instrument

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "demo_services_v3.py"
STRATEGIES = ROOT / "examples" / "strategies"
CANDLES = ROOT / "examples" / "data" / "candles"
DOC = ROOT / "docs" / "writing-a-strategy.md"
GRID = Instrument(0, "X")            # NSE equity tick grid (0.10 between 1000 and 5000)
CAPITAL = 1_000_000.0                # the default --capital


def test_demo_example_wires_the_six_services_and_prints_a_summary(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--symbols", "RELIANCE", "SBIN", "--seed", "5"])
    try:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    assert "hftcore demo: 2 NSE symbols" in out and "ledger balanced True" in out
    assert '"status": "finished"' in out


# ---------------------------------------------------------------- helpers

def docstring_command(name: str) -> list[str]:
    """The ``hftcore backtest ...`` command in the example's docstring, as argv."""
    doc = ast.get_docstring(ast.parse((STRATEGIES / name).read_text()))
    lines = doc.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("hftcore backtest"))
    text = ""
    for line in lines[i:]:
        text += line.strip().rstrip("\\") + " "
        if not line.rstrip().endswith("\\"):
            break
    return shlex.split(text)[1:]


def run_example(name: str, out: Path) -> list[dict]:
    """Run the docstring's command (paths made absolute, ``--out`` set to ``out``)."""
    argv = docstring_command(name)
    assert argv[0] == "backtest"
    argv[argv.index("--out") + 1] = str(out)
    argv[argv.index("--data") + 1] = str(ROOT / argv[argv.index("--data") + 1])
    k = argv.index("--strategy") + 1
    argv[k] = str(ROOT / argv[k])
    assert main(argv) == 0
    with open(out / "trades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["quantity"] = int(r["quantity"])
        r["entry_price"], r["exit_price"] = float(r["entry_price"]), float(r["exit_price"])
    return rows


def pinned(rows: list[dict]) -> list[str]:
    for r in rows:           # intraday: every trade ends the day it began
        assert r["entry_time"][:10] == r["exit_time"][:10], r
    return [f'{r["symbol"]} {r["side"]} {r["entry_time"][5:16]} {r["exit_time"][11:16]} '
            f'{r["quantity"]} {r["entry_price"]:.2f} {r["exit_price"]:.2f}' for r in rows]


def candles(symbol: str) -> pd.DataFrame:
    df = pd.read_csv(CANDLES / f"{symbol}.csv")
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("date")).dt.tz_localize(None))
    return df


def minute_before(t: str) -> pd.Timestamp:
    """The candle whose close decided an order filled at ``t`` (the next open)."""
    return pd.Timestamp(t) - pd.Timedelta(minutes=1)


def grid(price: float, direction: int) -> float:
    return GRID.snap(price, direction) / 100


# ---------------------------------------------------------------- pinned trades

SMA_CROSS = [
    "INFY SHORT 06-03 10:29 10:54 50 1595.20 1605.70",
    "INFY LONG 06-03 10:54 12:30 50 1605.70 1644.10",
    "INFY SHORT 06-03 12:30 12:42 50 1644.10 1652.20",
    "INFY LONG 06-03 12:42 13:34 50 1652.20 1637.60",
    "INFY SHORT 06-03 13:34 14:27 50 1637.60 1643.60",
    "INFY LONG 06-03 14:27 14:46 50 1643.60 1622.20",
    "INFY SHORT 06-03 14:46 15:20 50 1622.20 1606.00",
    "INFY LONG 06-04 09:33 10:31 50 1617.90 1613.60",
    "INFY SHORT 06-04 10:31 11:16 50 1613.60 1630.90",
    "INFY LONG 06-04 11:16 11:45 50 1630.90 1610.20",
    "INFY SHORT 06-04 11:45 12:54 50 1610.20 1605.80",
    "INFY LONG 06-04 12:54 13:32 50 1605.80 1602.00",
    "INFY SHORT 06-04 13:32 14:14 50 1602.00 1616.00",
    "INFY LONG 06-04 14:14 15:02 50 1616.00 1607.20",
    "INFY SHORT 06-04 15:02 15:20 50 1607.20 1602.80",
    "INFY LONG 06-05 11:12 11:32 50 1559.10 1547.80",
    "INFY SHORT 06-05 11:32 12:37 50 1547.80 1556.80",
    "INFY LONG 06-05 12:37 13:07 50 1556.80 1540.00",
    "INFY SHORT 06-05 13:07 13:48 50 1540.00 1549.50",
    "INFY LONG 06-05 13:48 14:25 50 1549.50 1549.30",
    "INFY SHORT 06-05 14:25 14:27 50 1549.30 1550.70",
    "INFY LONG 06-05 14:27 15:20 50 1550.70 1569.50",
    "INFY SHORT 06-06 09:19 10:58 50 1555.20 1535.00",
    "INFY LONG 06-06 10:58 13:01 50 1535.00 1543.00",
    "INFY SHORT 06-06 13:01 14:03 50 1543.00 1542.20",
    "INFY LONG 06-06 14:03 15:20 50 1542.20 1548.40",
    "INFY LONG 06-07 09:29 10:16 50 1551.60 1548.30",
    "INFY SHORT 06-07 10:16 11:01 50 1548.30 1554.80",
    "INFY LONG 06-07 11:01 12:41 50 1554.80 1586.40",
    "INFY SHORT 06-07 12:41 13:35 50 1586.40 1588.50",
    "INFY LONG 06-07 13:35 14:05 50 1588.50 1578.10",
    "INFY SHORT 06-07 14:05 15:20 50 1578.10 1538.50",
]

RSI_REVERSION = [
    "INFY LONG 06-03 14:48 14:55 61 1619.70 1614.70",
    "INFY LONG 06-03 15:09 15:20 61 1605.30 1606.00",
    "INFY LONG 06-04 12:14 12:24 62 1600.30 1595.20",
    "INFY LONG 06-04 15:07 15:20 61 1602.40 1602.80",
    "INFY LONG 06-05 09:27 09:28 62 1584.10 1579.30",
    "INFY LONG 06-05 09:29 09:49 62 1578.70 1573.80",
    "INFY LONG 06-05 09:58 09:59 63 1556.30 1551.80",
    "INFY LONG 06-05 10:00 10:32 63 1551.50 1558.70",
    "INFY LONG 06-05 13:05 13:13 63 1539.60 1534.90",
    "INFY LONG 06-05 13:15 13:23 65 1531.50 1540.50",
    "INFY LONG 06-06 09:24 09:28 63 1545.50 1541.10",
    "INFY LONG 06-06 09:29 09:43 63 1539.70 1549.00",
    "INFY LONG 06-06 09:55 10:12 65 1527.50 1522.70",
    "INFY LONG 06-06 13:10 13:15 63 1535.40 1531.60",
    "INFY LONG 06-06 13:16 13:23 65 1530.80 1526.30",
    "INFY LONG 06-06 13:24 13:38 65 1525.70 1520.90",
    "INFY LONG 06-06 13:39 13:52 65 1519.40 1528.70",
    "INFY LONG 06-07 10:25 10:42 63 1537.20 1532.70",
    "INFY LONG 06-07 14:10 14:13 62 1573.00 1568.20",
    "INFY LONG 06-07 14:14 14:28 63 1566.90 1562.50",
    "INFY LONG 06-07 14:30 14:45 63 1557.30 1562.90",
    "INFY LONG 06-07 14:55 15:00 63 1542.80 1537.80",
    "INFY LONG 06-07 15:14 15:20 64 1530.20 1538.50",
]

BOLLINGER_BREAKOUT = [
    "INFY LONG 06-03 09:56 10:04 31 1603.50 1598.80",
    "INFY LONG 06-03 14:18 14:29 30 1639.50 1644.50",
    "INFY LONG 06-04 09:21 09:27 31 1608.30 1613.70",
    "INFY LONG 06-04 11:06 11:14 30 1622.50 1627.10",
    "INFY LONG 06-05 14:25 14:28 32 1549.30 1554.40",
    "INFY LONG 06-05 14:29 14:35 32 1554.70 1559.70",
    "INFY LONG 06-06 10:51 10:54 32 1525.30 1529.90",
    "INFY LONG 06-06 11:26 11:33 32 1540.30 1544.90",
    "INFY LONG 06-06 11:45 11:57 32 1553.90 1544.60",
    "INFY LONG 06-06 12:13 12:28 32 1555.60 1560.30",
    "INFY LONG 06-06 14:34 14:36 32 1542.80 1547.50",
    "INFY LONG 06-07 09:18 09:35 32 1552.70 1548.70",
]

OPENING_RANGE = [
    "RELIANCE LONG 06-03 09:31 15:15 40 1558.10 1567.80",
    "INFY LONG 06-03 09:31 15:15 40 1593.70 1603.60",
    "RELIANCE LONG 06-04 09:33 12:11 40 1581.80 1566.60",
    "INFY LONG 06-04 09:33 12:11 40 1617.90 1602.40",
    "RELIANCE SHORT 06-05 09:35 15:15 40 1540.00 1532.80",
    "INFY SHORT 06-05 09:35 15:15 40 1575.20 1567.80",
    "RELIANCE SHORT 06-06 09:48 12:28 40 1503.70 1525.80",
    "INFY SHORT 06-06 09:48 12:28 40 1538.00 1560.70",
    "RELIANCE SHORT 06-07 09:36 09:45 40 1513.10 1521.70",
    "INFY SHORT 06-07 09:36 09:45 40 1547.60 1556.50",
]

PAIR_TRADE = [
    "RELIANCE LONG 06-05 12:20 12:21 33 1510.50 1511.10",
    "INFY SHORT 06-05 12:20 12:21 32 1545.10 1545.60",
    "RELIANCE SHORT 06-05 13:51 13:52 33 1514.50 1515.00",
    "INFY LONG 06-05 13:51 13:52 32 1549.10 1549.70",
    "RELIANCE LONG 06-07 14:11 14:12 32 1536.40 1537.60",
    "INFY SHORT 06-07 14:11 14:12 31 1571.50 1572.70",
]


def test_sma_cross_reverses_at_each_crossover(tmp_path):
    rows = run_example("sma_cross.py", tmp_path)
    assert pinned(rows) == SMA_CROSS
    assert {r["quantity"] for r in rows} == {50}
    # target_position reverses: within a day each trade ends where the next begins,
    # on the other side
    for a, b in zip(rows, rows[1:]):
        if a["exit_time"][:10] == b["entry_time"][:10] and not a["exit_time"].endswith("15:20:00"):
            assert (b["entry_time"], b["entry_price"]) == (a["exit_time"], a["exit_price"])
            assert a["side"] != b["side"]


def test_rsi_reversion_sizes_by_risk_and_its_stops_fill_at_the_stop(tmp_path):
    rows = run_example("rsi_reversion.py", tmp_path)
    assert pinned(rows) == RSI_REVERSION
    bars = candles("INFY")
    at_stop = 0
    for r in rows:
        decided = bars.loc[minute_before(r["entry_time"])]
        stop = grid(decided.close * (1 - 0.3 / 100), -1)
        # risk sizing: 0.03 % of the equity lost at the stop (whole units, floored)
        assert 0.0003 * CAPITAL * 0.99 - (decided.close - stop) <= \
            r["quantity"] * (decided.close - stop) <= 0.0003 * CAPITAL * 1.01, r
        exit_bar = bars.loc[pd.Timestamp(r["exit_time"])]
        if r["exit_price"] == min(stop, exit_bar.open):     # the SL-M exit
            at_stop += 1
        else:   # RSI exit or the 15:20 square-off: a market order, at the open, above the stop
            assert r["exit_price"] == exit_bar.open and r["exit_price"] > stop, r
    assert at_stop >= 10


def test_bollinger_breakout_exits_at_its_target_or_its_stop(tmp_path):
    rows = run_example("bollinger_breakout.py", tmp_path)
    assert pinned(rows) == BOLLINGER_BREAKOUT
    bars = candles("INFY")
    upper, middle, _ = talib.BBANDS(bars.close.to_numpy(float), 20, 2.5, 2.5)
    upper = pd.Series(upper, bars.index)
    middle = pd.Series(middle, bars.index)
    hits = {"target": 0, "stop": 0}
    for r in rows:
        t = minute_before(r["entry_time"])
        close, prev = bars.close.loc[t], bars.close.shift(1).loc[t]
        assert close > upper.loc[t] and prev <= upper.shift(1).loc[t], r   # the breakout
        assert r["quantity"] == math.floor(50_000 / close)                  # value= sizing
        target, stop = grid(close * 1.003, +1), grid(middle.loc[t], -1)
        exit_bar = bars.loc[pd.Timestamp(r["exit_time"])]
        if r["exit_price"] == max(target, exit_bar.open):
            hits["target"] += 1
        else:
            assert r["exit_price"] == min(stop, exit_bar.open), r
            hits["stop"] += 1
    assert hits["target"] >= 5 and hits["stop"] >= 2


def test_opening_range_trades_once_a_day_and_is_flat_by_1515(tmp_path):
    rows = run_example("opening_range.py", tmp_path)
    assert pinned(rows) == OPENING_RANGE
    days = [(r["symbol"], r["entry_time"][:10]) for r in rows]
    assert len(days) == len(set(days)) == 10            # one trade a day per symbol
    for r in rows:
        bars = candles(r["symbol"])
        day = bars.loc[r["entry_time"][:10]]
        first = day.iloc[:15]
        assert r["entry_time"][11:] >= "09:31:00"       # after the 15-minute range
        assert r["exit_time"][11:] <= "15:15:00"        # flat by 15:15, never at 15:20
        exit_bar = bars.loc[pd.Timestamp(r["exit_time"])]
        if r["exit_time"].endswith("15:15:00"):
            assert r["exit_price"] == exit_bar.open
        elif r["side"] == "LONG":                       # stopped at the range's low
            assert r["exit_price"] == min(grid(first.low.min(), -1), exit_bar.open), r
        else:
            assert r["exit_price"] == max(grid(first.high.max(), +1), exit_bar.open), r
    assert sum(r["exit_time"].endswith("15:15:00") for r in rows) == 4


def test_pair_trade_enters_and_exits_both_legs_on_opposite_sides(tmp_path):
    rows = run_example("pair_trade.py", tmp_path)
    assert pinned(rows) == PAIR_TRADE
    legs: dict[tuple, list] = {}
    for r in rows:
        legs.setdefault((r["entry_time"], r["exit_time"]), []).append(r)
    assert len(legs) == 3
    for group in legs.values():
        assert sorted(r["symbol"] for r in group) == ["INFY", "RELIANCE"]
        assert {r["side"] for r in group} == {"LONG", "SHORT"}
        for r in group:                                 # value= sizing: 50,000 rupees a leg
            decided = candles(r["symbol"]).close.loc[minute_before(r["entry_time"])]
            assert r["quantity"] == math.floor(50_000 / decided)


# ---------------------------------------------------------------- the guide

def doc_blocks(lang: str) -> list[str]:
    text = DOC.read_text()
    return [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith(lang + "\n")]


def doc_command(block: str, files: dict[str, Path], out: Path) -> list[str]:
    """A ``hftcore backtest`` block as argv: bundled data and the snippets' files
    made absolute, ``--out`` set to ``out``."""
    argv = shlex.split(block.replace("\\\n", " "))[1:]
    argv[argv.index("--out") + 1] = str(out)
    argv[argv.index("--data") + 1] = str(ROOT / argv[argv.index("--data") + 1])
    return [str(files[a.split(":")[0]]) + ":" + a.split(":")[1]
            if ":" in a and a.split(":")[0] in files else a for a in argv]


def backtest(out: Path, *argv: str) -> dict:
    assert main(["backtest", "--data", str(CANDLES), *argv, "--out", str(out)]) == 0
    with open(out / "fills.csv", newline="") as f:
        fills = list(csv.DictReader(f))
    return {"summary": json.loads((out / "summary.json").read_text()), "fills": fills}


def test_the_guide_s_snippets_run(tmp_path):
    """Every Python block of docs/writing-a-strategy.md is a file a user could save;
    each runs through the CLI, the guide's own commands included."""
    py, sh = doc_blocks("python"), doc_blocks("bash")
    assert len(py) == 5 and len(sh) == 2
    names = ["sma_cross.py", "orders.py", "two_views.py", "careful.py", "rsi_vote.py"]
    files = {}
    for name, code in zip(names, py):
        files[name] = tmp_path / name
        files[name].write_text(code)

    # the ten-line strategy, by the guide's command
    out = tmp_path / "sma"
    assert main(doc_command(sh[0], files, out)) == 0
    with open(out / "fills.csv", newline="") as f:
        fills = list(csv.DictReader(f))
    sides = [(r["side"], int(r["quantity"])) for r in fills]
    assert len(sides) > 20 and sides[0][1] == 50
    assert {q for _, q in sides[1:]} <= {50, 100}        # reversals trade 100

    # orders: risk-sized brackets (exits at a stop or target) and value-sized LIMIT sells
    run = backtest(tmp_path / "orders", "--symbols", "INFY", "--strategy",
                   f"{files['orders.py']}:Orders")
    s = run["summary"]
    assert s["trades"] >= 5
    assert set(s["rejections_by_rule"]) <= {"entries_closed"}    # only after 15:20
    assert {r["side"] for r in run["fills"]} == {"BUY", "SELL"}

    # another symbol and timeframe: INFY long with RELIANCE short, together
    run = backtest(tmp_path / "views", "--strategy", f"{files['two_views.py']}:TwoViews")
    legs = {(r["time"], r["symbol"], r["side"]) for r in run["fills"]}
    opens = [t for t, sym, side in legs if sym == "INFY" and side == "BUY"]
    assert opens and all((t, "RELIANCE", "SELL") in legs for t in opens)

    # the gate sizes the order down to the 100-unit limit and refuses entries after 15:20
    run = backtest(tmp_path / "careful", "--symbols", "INFY", "--strategy",
                   f"{files['careful.py']}:Careful")
    assert run["summary"]["rejections_by_rule"].get("entries_closed", 0) >= 4
    assert {int(r["quantity"]) for r in run["fills"]} == {100}

    # a voting strategy fused with ema_trend, by the guide's command
    out = tmp_path / "vote"
    assert main(doc_command(sh[1], files, out)) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["fills"] > 0


def test_the_readme_strategy_runs_by_its_command(tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own strategy"):]
    section = section[:section.index("\n## ", 5)]
    code, command = [b.split("\n", 1)[1] for b in section.split("```")[1::2]]
    (tmp_path / "my_strategy.py").write_text(code)
    out = tmp_path / "mine"
    assert main(doc_command(command, {"my_strategy.py": tmp_path / "my_strategy.py"}, out)) == 0
    with open(out / "fills.csv", newline="") as f:
        fills = [(r["side"], int(r["quantity"])) for r in csv.DictReader(f)]
    assert len(fills) > 20 and fills[0][1] == 50
