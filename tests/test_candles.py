"""Compiled candle bank against the plain-Python aggregation reference."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import reference as ref
from hftcore_ext.candles import CandleBank
from hftcore_ext.indicators import ATR, EMA, RSI, Slope

T0 = 1_795_664_700 * ref.NS          # 2026-11-26 09:15:00 IST
TFS = (60, 300, 900)

ticks_strategy = st.lists(
    st.tuples(st.integers(0, 3 * 3600), st.floats(1.0, 5000.0),
              st.one_of(st.floats(0, 1e4), st.just(0.0))),
    max_size=250,
).map(lambda xs: [(T0 + s * ref.NS, p, v) for s, p, v in sorted(xs, key=lambda t: t[0])])


def run_bank(ticks, tfs=TFS, history=500):
    bank = CandleBank(1, tfs, history)
    n = len(ticks)
    bank.ingest_ticks(np.zeros(n, np.int32), np.array([t[0] for t in ticks], np.int64),
                      np.array([t[1] for t in ticks], float),
                      np.array([t[2] for t in ticks], float))
    return bank


def closed_candles(bank, tf_idx):
    h = bank.history(0, tf_idx)
    return [(int(t), o, hi, lo, c, v) for t, o, hi, lo, c, v in
            zip(h["ts"], h["open"], h["high"], h["low"], h["close"], h["volume"])]


@given(ticks_strategy)
def test_candles_agree_with_reference(ticks):
    bank = run_bank(ticks)
    for j, tf in enumerate(TFS):
        want_closed, want_forming = ref.aggregate(ticks, tf)
        got = closed_candles(bank, j)
        assert len(got) == len(want_closed)
        for g, w in zip(got, want_closed):
            assert g[0] == w[0] and g[1:5] == pytest.approx(w[1:5], rel=0, abs=0)
            assert g[5] == pytest.approx(w[5], rel=1e-12)
        forming = bank.forming(0, j)
        assert (forming is None) == (want_forming is None)
        if forming:
            assert forming[:5] == tuple(want_forming[:5])


@given(ticks_strategy)
def test_indicators_follow_closed_candles(ticks):
    bank = run_bank(ticks)
    for j, tf in enumerate(TFS):
        closed, _ = ref.aggregate(ticks, tf)
        close = np.array([c[4] for c in closed], float)
        high = np.array([c[2] for c in closed], float)
        low = np.array([c[3] for c in closed], float)
        got = bank.bundle(0, j)
        want = [EMA(20).batch(close), EMA(50).batch(close), RSI(14).batch(close),
                ATR(14).batch(high, low, close), None, Slope(20).batch(close)]
        for k, w in enumerate(want):
            if w is None:
                continue
            wv = w[-1] if len(w) else float("nan")
            assert (math.isnan(got[k]) and math.isnan(wv)) or got[k] == wv


@given(ticks_strategy)
def test_session_vwap_agrees_with_reference(ticks):
    bank = run_bank(ticks)
    want = ref.session_vwap(ticks)
    got = bank.bundle(0, 0)[4]
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-12)


def test_per_tick_and_batch_entries_give_the_same_state():
    rng = np.random.default_rng(5)
    n = 20_000
    sym = rng.integers(0, 7, n).astype(np.int32)
    ts = T0 + np.sort(rng.integers(0, 6 * 3600, n)).astype(np.int64) * ref.NS
    price = np.round(1000 + np.cumsum(rng.normal(0, 1, n)), 2)
    vol = rng.integers(0, 100, n).astype(float)
    a, b = CandleBank(7), CandleBank(7)
    a.ingest_ticks(sym, ts, price, vol)
    for i in range(n):
        b.on_tick(int(sym[i]), int(ts[i]), float(price[i]), float(vol[i]))
    for s in range(7):
        for j in range(3):
            assert a.bundle(s, j) == b.bundle(s, j) or all(
                (x == y) or (math.isnan(x) and math.isnan(y))
                for x, y in zip(a.bundle(s, j), b.bundle(s, j)))
            np.testing.assert_array_equal(a.history(s, j)["close"], b.history(s, j)["close"])


def test_bad_ticks_are_dropped_and_counted():
    bank = CandleBank(2)
    assert bank.on_tick(5, T0, 100.0, 1) == -1            # unknown symbol id
    assert bank.on_tick(0, T0, float("nan"), 1) == -1
    assert bank.on_tick(0, T0, -1.0, 1) == -1
    assert bank.on_tick(0, T0, 100.0, -5) == -1
    assert bank.dropped == 4
    assert bank.on_tick(0, T0 + 10 * ref.NS, 100.0, 1) == 0
    assert bank.on_tick(0, T0, 101.0, 1) == -1            # older than the newest tick
    assert bank.late == 1 and bank.accepted == 1
    assert bank.forming(0, 0)[1:5] == (100.0, 100.0, 100.0, 100.0)


def test_candles_align_to_the_nse_session_open():
    bank = CandleBank(1, (60, 300, 900, 3600))
    bank.on_tick(0, T0 + 61 * 60 * ref.NS, 100.0, 1)       # 10:16 IST
    starts = [bank.forming(0, j)[0] for j in range(4)]
    assert starts == [T0 + 61 * 60 * ref.NS, T0 + 60 * 60 * ref.NS, T0 + 60 * 60 * ref.NS,
                      T0 + 60 * 60 * ref.NS]                 # 10:16, 10:15, 10:15, 10:15


def test_vwap_resets_at_a_new_ist_day():
    bank = CandleBank(1)
    bank.on_tick(0, T0, 100.0, 10)
    bank.on_tick(0, T0 + 3600 * ref.NS, 200.0, 10)
    assert bank.bundle(0, 0)[4] == 150.0
    bank.on_tick(0, T0 + 86_400 * ref.NS, 300.0, 10)        # next day
    assert bank.bundle(0, 0)[4] == 300.0


def test_one_minute_bars_build_higher_timeframes_and_close_them_on_time():
    bank = CandleBank(1, (60, 300))
    for k in range(5):
        mask = bank.on_bar(0, T0 + k * 60 * ref.NS, 10.0 + k, 12.0 + k, 9.0, 11.0 + k, 100, 60)
    assert mask == 0b11                                       # the 5th bar closes both
    h = bank.history(0, 1)
    assert h["open"][0] == 10.0 and h["high"][0] == 16.0 and h["low"][0] == 9.0
    assert h["close"][0] == 15.0 and h["volume"][0] == 500
    assert bank.forming(0, 1) is None


def test_flush_closes_candles_whose_period_ended():
    bank = CandleBank(1, (60, 300))
    bank.on_tick(0, T0 + 30 * ref.NS, 100.0, 1)
    assert bank.flush(T0 + 59 * ref.NS) == 0
    assert bank.flush(T0 + 60 * ref.NS) == 1
    assert bank.closed_count(0, 0) == 1 and bank.closed_count(0, 1) == 0


def test_history_is_bounded_and_newest_last():
    bank = CandleBank(1, (60,), history=10)
    for k in range(25):
        bank.on_tick(0, T0 + k * 60 * ref.NS, 100.0 + k, 1)
    h = bank.history(0, 0)
    assert len(h["close"]) == 10 and h["close"][-1] == 123.0 and h["close"][0] == 114.0
    assert list(bank.history(0, 0, 3)["close"]) == [121.0, 122.0, 123.0]


def test_grow_keeps_existing_state():
    bank = CandleBank(1)
    bank.on_tick(0, T0, 100.0, 1)
    bank.grow(1000)
    assert bank.n_symbols == 1000 and bank.ltp(0) == 100.0 and math.isnan(bank.ltp(999))


@pytest.mark.parametrize("kwargs", [dict(timeframes=()), dict(timeframes=(60, 60)),
                                    dict(timeframes=(0,)), dict(history=0), dict(slope=1),
                                    dict(rsi=0), dict(n_symbols=-1)])
def test_constructor_rejects_nonsense(kwargs):
    args = {"n_symbols": 1, **kwargs}
    with pytest.raises(ValueError):
        CandleBank(**args)


@given(ticks_strategy, st.integers(0, 2))
def test_ingest_until_close_stops_exactly_where_candles_close(ticks, tf):
    n = len(ticks)
    arrays = (np.zeros(n, np.int32), np.array([t[0] for t in ticks], np.int64),
              np.array([t[1] for t in ticks], float), np.array([t[2] for t in ticks], float))
    per_tick = CandleBank(1)
    want = [k + 1 for k in range(n)
            if (m := per_tick.on_tick(0, int(arrays[1][k]), arrays[2][k], arrays[3][k])) > 0
            and m & (1 << tf)]
    bank, got, i = CandleBank(1), [], 0
    while i < n:
        i, sym = bank.ingest_ticks_until(*arrays, start=i, tf=tf, stop="close")
        if sym >= 0:
            got.append(i)
    assert got == want
    assert bank.bundle(0, tf) == per_tick.bundle(0, tf) or all(
        x == y or (math.isnan(x) and math.isnan(y))
        for x, y in zip(bank.bundle(0, tf), per_tick.bundle(0, tf)))


def test_ingest_until_cross_stops_at_ema_crossovers():
    rng = np.random.default_rng(2)
    n = 20_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    arrays = (np.zeros(n, np.int32), T0 + np.arange(n, dtype=np.int64) * 60 * ref.NS,
              close, close, close, close, np.ones(n))
    bank = CandleBank(1, (60,), ema_fast=10, ema_slow=30)
    stops, i = [], 0
    while i < n:
        i, sym = bank.ingest_bars_until(*arrays, 60, start=i, tf=0, stop="cross")
        if sym >= 0:
            stops.append(i - 1)
    fast, slow = EMA(10).batch(close), EMA(30).batch(close)
    sign = np.sign(fast - slow)
    want = [k for k in range(30, n) if sign[k] != 0 and sign[k - 1] != 0 and sign[k] != sign[k - 1]]
    assert stops == want and len(stops) > 100
    assert bank.trend(0, 0) == sign[-1]
