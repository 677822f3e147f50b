"""Warm-up from history: indicators warm at the first bar of the traded data."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from hftcore import InstrumentTable, ReplayFeed, Strategy
from hftcore.cli import _split_warmup, main
from hftcore.feeds import IST, NS
from hftcore.indicators import ema, rsi
from hftcore.session import PaperSession

CANDLES = Path(__file__).resolve().parent.parent / "examples" / "data" / "candles"


class Recorder(Strategy):
    """Records what it saw at each decision; never trades."""
    name = "recorder"
    timeframe = "5m"

    def __init__(self):
        self.seen = []

    def indicators(self):
        return (ema(50, as_="slow"), rsi(14))

    def on_bar(self, ctx):
        self.seen.append((ctx.now, ctx.symbol, ctx.ind["slow"], ctx.ind["rsi_14"],
                          len(ctx.close)))


def _feed():
    inst = InstrumentTable()
    for s in ("INFY", "RELIANCE"):
        inst.add(s, tick_size=0.05)
    return ReplayFeed(CANDLES, instruments=inst)


def test_warm_up_makes_indicators_warm_at_the_first_decision():
    warm, rest = _split_warmup(_feed(), 2)
    cold = Recorder()
    PaperSession(rest, strategy_engine=cold).run()
    hot = Recorder()
    s = PaperSession(rest, strategy_engine=hot)
    closed = s.warm_up(warm)
    assert closed > 0 and s.report.fills == 0 and not s.fills
    s.run()
    first_day = dt.datetime.fromtimestamp(int(rest.data().ts_ns[0]) // NS, IST).date()
    # the first decision is the first 5m close of the traded day (09:20 IST)
    t0, _, slow, r, n = hot.seen[0]
    when = dt.datetime.fromtimestamp(t0 // NS, IST)
    assert when.date() == first_day and when.time() < dt.time(9, 21)
    assert slow is not None and r is not None and n > 50
    # without warm-up EMA(50) of 5m candles is cold for 50 candles (past 13:20)
    cold_first = next(t for t, _, v, _, _ in cold.seen if v is not None)
    assert dt.datetime.fromtimestamp(cold_first // NS, IST).time() > dt.time(13, 0)
    assert len(hot.seen) == len(cold.seen)


def test_warm_up_after_the_session_started_is_refused():
    warm, rest = _split_warmup(_feed(), 1)
    s = PaperSession(rest, strategy_engine=Recorder())
    s.run()
    with pytest.raises(ValueError, match="before the session plays"):
        s.warm_up(warm)


def test_backtest_warmup_days_trades_only_after_the_warm_days(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["backtest", "--data", str(CANDLES), "--strategy", "ema_cross",
                 "--param", "fast=5", "--param", "slow=20", "--warmup-days", "2",
                 "--out", str(out)]) == 0
    with open(out / "fills.csv", newline="") as fh:
        fills = list(csv.DictReader(fh))
    assert fills
    assert min(f["time"] for f in fills) >= "2024-06-05"
    rc = main(["backtest", "--data", str(CANDLES), "--warmup-days", "5", "--out",
               str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "only 5 trading day(s)" in err


def test_kite_history_bars_warm_a_session(tmp_path, monkeypatch):
    pytest.importorskip("kiteconnect")
    from hftcore.kite.connect import history_bars, kite_client
    from hftcore.kite import auth
    from hftcore.kite.instruments import load_kite_instruments
    from hftcore.kite.server import KiteServer
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with KiteServer() as srv:
        creds = auth.Credentials(api_key=srv.api_key, access_token=srv.access_token,
                                 expires_at=dt.datetime.now(IST) + dt.timedelta(hours=2))
        kite = kite_client(creds, root=srv.url)
        inst = load_kite_instruments(kite, cache_dir=tmp_path)
        bars = history_bars(kite, inst, ["INFY", "TCS"], 7, today=dt.date(2026, 11, 27))
    # 2026-11-20..26: five weekdays x 375 minutes x 2 symbols, time-sorted
    assert len(bars) == 5 * 375 * 2
    assert np.all(np.diff(bars.ts_ns) >= 0) and bars.span_s == 60
    first = dt.datetime.fromtimestamp(int(bars.ts_ns[0]) // NS, IST)
    assert first == dt.datetime(2026, 11, 20, 9, 15, tzinfo=IST)
    assert sorted({inst.by_id(int(k)).symbol for k in np.unique(bars.sym)}) == ["INFY", "TCS"]


def test_paper_on_a_replay_warms_up_from_its_first_days(tmp_path, capsys):
    ckpt = tmp_path / "ck"
    assert main(["paper", "--feed", f"replay:{CANDLES / 'INFY.csv'}", "--symbols", "INFY",
                 "--strategy", "ema_cross", "--param", "fast=5", "--param", "slow=20",
                 "--warmup-days", "3", "--speed", "1e9", "--duration", "60", "-q",
                 "--checkpoint-dir", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "ticks 750 " in out                  # the last two of five days were traded
    assert main(["paper", "--warmup-days", "2", "--duration", "1", "--checkpoint-dir",
                 str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--warmup-days needs history" in err


def test_the_first_traded_bar_after_warm_up_has_a_prev():
    class First(Strategy):
        name = "first"

        def __init__(self):
            self.prevs = []

        def indicators(self):
            return (ema(10, as_="e"),)

        def on_bar(self, ctx):
            self.prevs.append(ctx.prev.get("e"))
    warm, rest = _split_warmup(_feed(), 2)
    st = First()
    s = PaperSession(rest, strategy_engine=st, primary_tf="1m", secondary_tf="1m")
    s.warm_up(warm)
    s.run()
    assert st.prevs[0] is not None and st.prevs[1] is not None
