"""Declared indicators in the candle bank, and history views of its rings."""
import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from hftcore import indicators as hi
from hftcore_ext.candles import CandleBank

CANDLES = sorted((Path(__file__).resolve().parent.parent / "examples/data/candles").glob("*.csv"))
ALL = (hi.ema(10), hi.rsi(14), hi.atr(14), hi.slope(20), hi.sma(50), hi.wma(10), hi.stddev(20, 2),
       hi.bbands(20, 2), hi.macd(12, 26, 9), hi.stoch(14, 3, 3), hi.adx(14), hi.plus_di(14),
       hi.minus_di(14), hi.obv(), hi.supertrend(10, 3), hi.donchian(20))
T0 = 1_795_664_700 * ref.NS          # 2026-11-26 09:15:00 IST
BUNDLE = ("ema_fast", "ema_slow", "rsi", "atr", "vwap", "slope")


def load(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    ts = np.array([int(dt.datetime.fromisoformat(r["date"]).timestamp()) * ref.NS for r in rows],
                  np.int64)
    cols = {k: np.array([float(r[k]) for r in rows]) for k in ("open", "high", "low", "close",
                                                                 "volume")}
    return ts, cols


def ingest(bank, ts, c, sym=0):
    n = len(ts)
    return bank.ingest_bars(np.full(n, sym, np.int32), ts, c["open"], c["high"], c["low"],
                            c["close"], c["volume"], 60)


def batch_outputs(spec, h):
    """The compiled class's batch() over a dict of candle arrays: {output name: array}."""
    out = spec.make().batch(*[np.ascontiguousarray(h[k]) for k in spec.inputs])
    out = out if isinstance(out, tuple) else (out,)
    return dict(zip(spec.output_names, out))


def same(got, want):
    if math.isnan(want):
        return got is None
    return got == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("path", CANDLES, ids=lambda p: p.stem)
def test_declared_values_equal_batch_at_every_close(path):
    """Real candles, 1m bars into 1m/5m/15m: after every 5m close the bank's declared
    values equal the classes' batch() over the closed 5m candles so far."""
    ts, c = load(path)
    bank = CandleBank(1, (60, 300, 900), history=5000, indicators=ALL)
    n = len(ts)
    sym = np.zeros(n, np.int32)
    i = checked = 0
    while True:
        i, hit = bank.ingest_bars_until(sym, ts, c["open"], c["high"], c["low"], c["close"],
                                        c["volume"], 60, start=i, tf=1)
        if hit < 0:
            break
        h = bank.history(0, 1)
        if len(h["close"]) % 7 and len(h["close"]) > 60:
            continue                                  # check every 7th close after warm-up
        got = bank.indicators(0, 1)
        for spec in ALL:
            for name, arr in batch_outputs(spec, h).items():
                assert same(got[name], arr[-1]), (name, len(h["close"]))
        checked += 1
    assert checked > 5
    for tf in range(3):                               # and at the end, on every timeframe
        h, got = bank.history(0, tf), bank.indicators(0, tf)
        assert set(got) == set(bank.indicator_names)
        for spec in ALL:
            for name, arr in batch_outputs(spec, h).items():
                assert same(got[name], arr[-1]), (tf, name)
        vals = bank.indicator_values(0, tf)
        assert [None if math.isnan(v) else v for v in vals] == \
            [got[k] for k in bank.indicator_names]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4 * 3600), st.floats(100.0, 200.0),
                          st.floats(0, 1e3)), min_size=1, max_size=400))
def test_per_tick_and_batch_ingest_agree_with_reference_candles(ticks):
    ticks = sorted(ticks)
    ts = np.array([T0 + t[0] * ref.NS for t in ticks], np.int64)
    p = np.array([t[1] for t in ticks])
    v = np.array([t[2] for t in ticks])
    specs = (hi.sma(3), hi.bbands(4, 1.5), hi.stoch(3, 2, 2), hi.donchian(2), hi.obv(),
             hi.adx(2), hi.supertrend(2, 1.0), hi.macd(2, 4, 2))
    a = CandleBank(1, (60, 300), history=1000, indicators=specs, future_tolerance=None)
    b = CandleBank(1, (60, 300), history=1000, indicators=specs, future_tolerance=None)
    a.ingest_ticks(np.zeros(len(ts), np.int32), ts, p, v)
    for t, x, y in zip(ts.tolist(), p.tolist(), v.tolist()):
        b.on_tick(0, t, x, y)
    for j, tf in enumerate((60, 300)):
        closed, _ = ref.aggregate(list(zip(ts.tolist(), p.tolist(), v.tolist())), tf)
        h = {k: np.array([cd[i] for cd in closed], float)
             for i, k in enumerate(("ts", "open", "high", "low", "close", "volume"))}
        got_a, got_b = a.indicators(0, j), b.indicators(0, j)
        assert got_a == got_b
        for spec in specs:
            for name, arr in batch_outputs(spec, h).items():
                want = arr[-1] if len(arr) else float("nan")
                assert same(got_a[name], want), name


def test_declared_indicators_leave_the_fixed_bundle_alone():
    ts, c = load(CANDLES[0])
    plain, declared = CandleBank(1), CandleBank(1, indicators=ALL)
    ingest(plain, ts, c)
    ingest(declared, ts, c)
    for tf in range(3):
        assert plain.bundle(0, tf) == declared.bundle(0, tf)
        assert plain.bundle_dict(0, tf, BUNDLE) == declared.bundle_dict(0, tf, BUNDLE)
        assert plain.trend(0, tf) == declared.trend(0, tf)


def test_declare_after_ingest_replays_kept_history():
    ts, c = load(CANDLES[0])
    early = CandleBank(2, (60, 300), history=3000, indicators=(hi.sma(20), hi.macd()))
    late = CandleBank(2, (60, 300), history=3000)
    for bank in (early, late):
        ingest(bank, ts, c, sym=1)
    assert late.indicators(1, 0) == {}
    names = late.declare([hi.sma(20), hi.macd()])
    assert names == early.indicator_names
    for tf in range(2):
        assert late.indicators(1, tf) == early.indicators(1, tf)
        assert all(v is None for v in late.indicators(0, tf).values())   # sym 0 saw nothing
    # a short history warms what it can: the last 30 candles give SMA(20), not MACD's 33
    short = CandleBank(1, (60,), history=30)
    ingest(short, ts, c)
    short.declare([hi.sma(20), hi.macd()])
    got = short.indicators(0, 0)
    assert got["sma_20"] == pytest.approx(c["close"][-20:].mean(), rel=1e-12)
    assert got["macd_12_26_9.macd"] is None


def test_redeclaring_is_idempotent_and_bad_specs_change_nothing():
    bank = CandleBank(1, indicators=(hi.ema(10),))
    assert bank.declare([hi.ema(10), hi.ema(10)]) == ("ema_10",)
    assert bank.declare([hi.sma(5), hi.ema(10)]) == ("ema_10", "sma_5")
    assert bank.declared == (hi.ema(10), hi.sma(5))

    class Fake:
        key, kind, kernel_params, output_names = "x", 99, (1.0,), ("x",)

        def make(self):
            return None

    class WrongOutputs(Fake):
        kind = hi.sma(5).kind
        output_names = ("a", "b")

    for bad in (Fake(), WrongOutputs(), "sma_5", 42):
        with pytest.raises(ValueError):
            bank.declare([hi.wma(3), bad])
        assert bank.indicator_names == ("ema_10", "sma_5")
    with pytest.raises(ValueError):
        CandleBank(1, indicators=[object()])


def test_grow_gives_new_symbols_cold_indicators_and_keeps_the_old():
    ts, c = load(CANDLES[0])
    bank = CandleBank(1, (60,), history=100, indicators=(hi.sma(10),))
    ingest(bank, ts[:200], {k: v[:200] for k, v in c.items()})
    before = bank.indicators(0, 0)
    view = bank.history(0, 0, 20)["close"]
    kept = view.copy()
    bank.grow(500)
    assert bank.indicators(0, 0) == before and bank.indicators(499, 0) == {"sma_10": None}
    np.testing.assert_array_equal(view, kept)              # the rows did not move
    ingest(bank, ts[:200], {k: v[:200] for k, v in c.items()}, sym=499)
    assert bank.indicators(499, 0) == before


def test_readout_errors_and_empty_declaration():
    bank = CandleBank(2)
    assert bank.indicators(1, 2) == {} and bank.indicator_values(0, 0).shape == (0,)
    with pytest.raises(IndexError):
        bank.indicators(2, 0)
    with pytest.raises(IndexError):
        bank.indicator_values(0, 3)


# ---------------------------------------------------------------- history views

def test_history_is_a_read_only_view_of_the_ring():
    ts, c = load(CANDLES[0])
    bank = CandleBank(1, (60,), history=50)
    ingest(bank, ts[:40], {k: v[:40] for k, v in c.items()})
    h = bank.history(0, 0)
    assert len(h["close"]) == 40
    np.testing.assert_array_equal(h["close"], c["close"][:40])
    np.testing.assert_array_equal(h["ts"], ts[:40])
    assert h["ts"].dtype == np.int64 and h["close"].dtype == np.float64
    for k in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(h[k], c[k][:40])
    assert not h["close"].flags.writeable
    with pytest.raises(ValueError):
        h["close"][0] = 1.0
    again = bank.history(0, 0, 10)
    assert np.shares_memory(again["close"], h["close"])      # no copies: both view the ring
    np.testing.assert_array_equal(again["close"], c["close"][30:40])


@pytest.mark.parametrize("history,n", [(5, 5), (5, 2), (50, 50), (50, 17)])
def test_history_views_across_wrap_around_and_until_reuse(history, n):
    """The newest n stay one contiguous view however often the ring wraps; a view
    shows the same candles through the next ``history + 1 - n`` closes."""
    ts, c = load(CANDLES[1])
    for stop in range(n, 400, 37):
        bank = CandleBank(1, (60,), history=history, future_tolerance=None)   # ring, not clock
        ingest(bank, ts[:stop], {k: v[:stop] for k, v in c.items()})
        view = bank.history(0, 0, n)
        np.testing.assert_array_equal(view["close"], c["close"][stop - n:stop])
        np.testing.assert_array_equal(view["ts"], ts[stop - n:stop])
        kept = {k: v.copy() for k, v in view.items()}
        more = history + 1 - n
        ingest(bank, ts[stop:stop + more], {k: v[stop:stop + more] for k, v in c.items()})
        for k, was in kept.items():
            np.testing.assert_array_equal(view[k], was)
        np.testing.assert_array_equal(bank.history(0, 0, n)["close"],
                                      c["close"][stop + more - n:stop + more])


def test_history_view_outlives_the_name_of_the_bank():
    ts, c = load(CANDLES[0])
    bank = CandleBank(1, (60,), history=30)
    ingest(bank, ts[:30], {k: v[:30] for k, v in c.items()})
    close = bank.history(0, 0)["close"]
    del bank                                            # the view keeps it alive
    np.testing.assert_array_equal(close, c["close"][:30])
