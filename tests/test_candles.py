"""Compiled candle bank against the plain-Python aggregation reference."""
import math

import numpy as np
import pytest
import reference as ref
from figures import report
from hypothesis import given
from hypothesis import strategies as st

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
    # the reference applies every tick; the future-tolerance rule (a lone tick after a
    # gap waits for confirmation) is tested on its own below
    bank = CandleBank(1, tfs, history, future_tolerance=None)
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
    # next day: the first tick is beyond the future tolerance and waits; the second,
    # near it, confirms the jump and both apply
    assert bank.on_tick(0, T0 + 86_400 * ref.NS, 300.0, 10) == -1 and bank.held == 1
    bank.on_tick(0, T0 + 86_401 * ref.NS, 400.0, 10)
    assert bank.bundle(0, 0)[4] == 350.0 and bank.held == 0 and bank.dropped == 0


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


@pytest.mark.parametrize("kwargs", [{"timeframes": ()}, {"timeframes": (60, 60)},
                                    {"timeframes": (0,)}, {"history": 0}, {"slope": 1},
                                    {"rsi": 0}, {"n_symbols": -1}])
def test_constructor_rejects_nonsense(kwargs):
    args = {"n_symbols": 1, **kwargs}
    with pytest.raises(ValueError):
        CandleBank(**args)


@given(ticks_strategy, st.integers(0, 2))
def test_ingest_until_close_stops_exactly_where_candles_close(ticks, tf):
    n = len(ticks)
    arrays = (np.zeros(n, np.int32), np.array([t[0] for t in ticks], np.int64),
              np.array([t[1] for t in ticks], float), np.array([t[2] for t in ticks], float))
    per_tick = CandleBank(1, future_tolerance=None)
    want = [k + 1 for k in range(n)
            if (m := per_tick.on_tick(0, int(arrays[1][k]), arrays[2][k], arrays[3][k])) > 0
            and m & (1 << tf)]
    bank, got, i = CandleBank(1, future_tolerance=None), [], 0
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


# ------------------------------------------------------------------ quarantine (issue 14)

QUARANTINED: dict = {}


def _tally(bank):
    """Add a bank's quarantined counts to the run's reliability figures."""
    for k, v in bank.quarantined().items():
        QUARANTINED[k] = QUARANTINED.get(k, 0) + v
    total = sum(QUARANTINED.values())
    report("bad ticks quarantined", f"{total} ("
           + ", ".join(f"{k} {v}" for k, v in sorted(QUARANTINED.items()) if v) + ")")


def minute_ticks(n, sym=0, start=T0, price0=100.0, seed=0):
    rng = np.random.default_rng(seed)
    ts = start + np.arange(n, dtype=np.int64) * 20 * ref.NS       # 3 ticks a minute
    price = np.round(price0 * np.exp(np.cumsum(rng.normal(0, 2e-3, n))), 2)
    return (np.full(n, sym, np.int32), ts, price, rng.integers(1, 100, n).astype(float))


def state(bank, sym=0):
    return (bank.ltp(sym), [bank.bundle(sym, j) for j in range(len(bank.timeframes))],
            [bank.closed_count(sym, j) for j in range(len(bank.timeframes))],
            [tuple(bank.history(sym, j)["close"]) for j in range(len(bank.timeframes))])


def same(a, b):
    """Equal, treating NaN as equal to NaN (bundles before warm-up)."""
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("entry", ["on_tick", "batch"])
def test_a_tick_a_day_ahead_is_quarantined_and_later_ticks_keep_updating(entry):
    sym, ts, price, vol = minute_ticks(1200)           # 400 minutes of ticks
    bad = 600
    ts_bad = ts.copy()
    ts_bad[bad] += 86_400 * ref.NS                     # one tick stamped a day ahead
    clean, bank = CandleBank(1, ema_fast=5, ema_slow=20), CandleBank(1, ema_fast=5, ema_slow=20)
    clean.ingest_ticks(*(np.delete(a, bad) for a in (sym, ts, price, vol)))
    if entry == "batch":
        bank.ingest_ticks(sym, ts_bad, price, vol)
    else:
        for i in range(len(ts)):
            r = bank.on_tick(0, int(ts_bad[i]), float(price[i]), float(vol[i]))
            assert (r == -1) == (i == bad)
    assert bank.late == 0 and bank.quarantined()["future"] == 1 and bank.dropped == 1
    assert bank.held == 0 and bank.clock == int(ts[-1])
    assert bank.ltp(0) == price[-1]                    # LTP keeps moving after the bad tick
    assert not math.isnan(bank.bundle(0, 0)[1])        # EMA slow (20 candles) warmed up after it
    assert same(state(bank), state(clean))
    _tally(bank)


def test_future_tick_through_the_engine_does_not_freeze_the_symbol():
    from hftcore import InstrumentTable, MarketDataEngine
    mde = MarketDataEngine(InstrumentTable.nse_default(), timeframes=("1m",), ema_fast=3,
                           ema_slow=5)
    _, ts, price, vol = minute_ticks(300)
    for i in range(len(ts)):
        t = int(ts[i]) + (86_400 * ref.NS if i == 100 else 0)
        mde.on_tick("RELIANCE", t, float(price[i]), float(vol[i]))
    assert mde.get_ltp("RELIANCE") == price[-1]
    assert mde.get_indicators("RELIANCE", "1m")["ema50"] is not None
    assert mde.stats["quarantined"]["future"] == 1 and mde.stats["late"] == 0
    _tally(mde.bank)


@pytest.mark.parametrize("bad_price", [float("inf"), float("-inf"), float("nan"), 0.0, -5.0,
                                       1e8, 1e300])
def test_absurd_price_does_not_poison_atr_or_vwap(bad_price):
    sym, ts, price, vol = minute_ticks(900)
    p = price.copy()
    p[450] = bad_price
    clean, bank = CandleBank(1), CandleBank(1)
    clean.ingest_ticks(*(np.delete(a, 450) for a in (sym, ts, price, vol)))
    bank.ingest_ticks(sym, ts, p, vol)
    assert bank.quarantined() == {"symbol": 0, "price": 1, "volume": 0, "bar": 0, "future": 0}
    ema, _, _, atr, vwap, _ = bank.bundle(0, 0)
    assert math.isfinite(atr) and math.isfinite(vwap) and math.isfinite(ema)
    assert same(state(bank), state(clean))
    _tally(bank)


@pytest.mark.parametrize("bad_volume", [1e20, float("inf"), float("nan"), -1.0, 1e13])
def test_absurd_volume_does_not_pin_vwap(bad_volume):
    sym, ts, price, vol = minute_ticks(900)
    v = vol.copy()
    v[300] = bad_volume
    clean, bank = CandleBank(1), CandleBank(1)
    clean.ingest_ticks(*(np.delete(a, 300) for a in (sym, ts, price, vol)))
    bank.ingest_ticks(sym, ts, price, v)
    assert bank.quarantined()["volume"] == 1 and bank.dropped == 1
    assert bank.bundle(0, 0)[4] == clean.bundle(0, 0)[4]     # VWAP follows later ticks
    assert same(state(bank), state(clean))
    _tally(bank)


def test_price_and_volume_limits_are_configurable():
    bank = CandleBank(1, max_price=500.0, max_volume=10.0)
    assert bank.max_price == 500.0 and bank.max_volume == 10.0
    assert bank.on_tick(0, T0, 500.0, 10.0) == 0           # the limits themselves are fine
    assert bank.on_tick(0, T0 + 1, 500.01, 1.0) == -1
    assert bank.on_tick(0, T0 + 2, 100.0, 10.5) == -1
    assert bank.on_bar(0, T0 + 60 * ref.NS, 100.0, 600.0, 90.0, 100.0, 1.0, 60) == -1
    assert bank.on_bar(0, T0 + 60 * ref.NS, 100.0, 90.0, 95.0, 100.0, 1.0, 60) == -1   # high < low
    assert bank.quarantined() == {"symbol": 0, "price": 2, "volume": 1, "bar": 1, "future": 0}
    for kw in ({"max_price": 0}, {"max_price": float("inf")}, {"max_volume": -1},
               {"future_tolerance": -1}, {"future_tolerance": float("nan")},
               {"max_price": True}, {"max_price": 10**400}, {"future_tolerance": "1"},
               {"max_volume": None}):
        with pytest.raises(ValueError):
            CandleBank(1, **kw)
    assert CandleBank(1, future_tolerance=None).future_tolerance is None
    assert CandleBank(1, future_tolerance=90).future_tolerance == 90.0
    _tally(bank)


def test_symbol_id_beyond_int32_does_not_hit_another_symbol():
    from hftcore import InstrumentTable, MarketDataEngine
    from hftcore.engines.market_data import symbol_ids
    from hftcore.feeds import Ticks
    mde = MarketDataEngine(InstrumentTable.nse_default(), timeframes=("1m",))
    n = 5
    sym = np.array([2**32 + 1] * n, np.int64)               # astype(int32) would give 1
    ticks = Ticks(sym, T0 + np.arange(n, dtype=np.int64) * ref.NS, np.full(n, 100.0), np.ones(n))
    mde.ingest(ticks)
    one = mde.instruments.by_id(1).symbol
    assert mde.get_ltp(one) is None and mde.bank.accepted == 0
    assert mde.stats["quarantined"]["symbol"] == n
    assert mde.bank.on_tick(2**32 + 1, T0, 100.0, 1.0) == -1           # the kernel entry too
    assert mde.on_tick(2**32 + 1, T0, 100.0, 1.0) == -1                 # not a known symbol
    assert mde.stats["quarantined"]["symbol"] == n + 2 and mde.bank.ltp(1) != mde.bank.ltp(1)
    ids = np.array([0, 1, 2**31, -3, 2**63 - 1], np.int64)
    assert symbol_ids(ids).tolist() == [0, 1, -1, -1, -1]
    assert symbol_ids(np.array([0.0, 1.5, np.nan, 2.0])).tolist() == [0, -1, -1, 2]
    assert symbol_ids(np.array([3, 9], np.uint64), n_symbols=5).tolist() == [3, -1]
    ok = np.arange(4, dtype=np.int32)
    assert symbol_ids(ok) is ok or np.shares_memory(symbol_ids(ok), ok)
    with pytest.raises(ValueError):
        symbol_ids(np.array(["a"]))
    _tally(mde.bank)


def test_held_future_tick_is_confirmed_by_a_second_one_near_it():
    """A real jump (the next session, a feed gap) is two or more inputs near each other:
    the first waits, the second confirms, both apply in order; nothing is lost."""
    bank = CandleBank(2, (60,))
    bank.on_tick(0, T0, 100.0, 1)
    day2 = T0 + 86_400 * ref.NS
    assert bank.on_tick(0, day2, 110.0, 1) == -1 and bank.held == 1
    assert bank.ltp(0) == 100.0 and bank.clock == T0       # not applied, clock not moved
    mask = bank.on_tick(1, day2 + 5 * ref.NS, 50.0, 1)     # another symbol confirms
    assert mask == 1                                        # symbol 0's day-1 candle closed
    assert bank.ltp(0) == 110.0 and bank.ltp(1) == 50.0 and bank.held == 0
    assert bank.dropped == 0 and bank.accepted == 3 and bank.clock == day2 + 5 * ref.NS
    # a held tick replaced by another far one is counted, and flush settles the last
    bank.on_tick(0, day2 + 3 * 86_400 * ref.NS, 1.0, 1)
    bank.on_tick(0, day2 + 6 * 86_400 * ref.NS, 2.0, 1)
    assert bank.quarantined()["future"] == 1 and bank.held == 1
    bank.flush(day2 + 10)                                   # the caller's clock: still ahead
    assert bank.quarantined()["future"] == 2 and bank.held == 0 and bank.ltp(0) == 110.0
    bank.on_tick(0, day2 + 2 * 86_400 * ref.NS, 3.0, 1)
    bank.flush(day2 + 2 * 86_400 * ref.NS)                  # vouched for by the caller
    assert bank.held == 0 and bank.ltp(0) == 3.0 and bank.quarantined()["future"] == 2
    _tally(bank)


def test_legit_multi_day_replays_are_unchanged_by_the_future_rule():
    """Ticks over several sessions (overnight and weekend gaps) and daily bars for one
    symbol (weekend and holiday gaps) give the same state with the default tolerance as
    with the rule off, per event and in batch, and nothing is counted."""
    rng = np.random.default_rng(11)
    days = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]                # two weeks, a weekend between
    parts = []
    for d in days:
        n = 300
        parts.append((rng.integers(0, 3, n).astype(np.int32),
                      T0 + d * 86_400 * ref.NS + np.sort(rng.integers(0, 22_500, n)) * ref.NS,
                      np.round(100 + rng.normal(0, 1, n), 2), rng.integers(0, 50, n).astype(float)))
    ticks = tuple(np.concatenate([p[k] for p in parts]) for k in range(4))
    a, b, c = CandleBank(3), CandleBank(3, future_tolerance=None), CandleBank(3)
    a.ingest_ticks(*ticks)
    b.ingest_ticks(*ticks)
    for s, t, p, v in zip(*(x.tolist() for x in ticks)):
        c.on_tick(s, t, p, v)
    for bank in (a, c):
        assert bank.dropped == 0 and bank.held == 0 and bank.accepted == b.accepted
        for s in range(3):
            assert same(state(bank, s), state(b, s))
    # daily bars, one symbol, gaps of 1-5 days
    gaps = np.array([1, 1, 1, 1, 3, 1, 1, 2, 2, 4, 1, 5, 1, 1] * 5)
    ts = T0 + np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64) * 86_400 * ref.NS
    n = len(ts)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    bars = (np.zeros(n, np.int32), ts, close, close + 1, close - 1, close, np.ones(n))
    d1, d2 = CandleBank(1, (86_400,)), CandleBank(1, (86_400,), future_tolerance=None)
    assert d1.ingest_bars(*bars, 86_400) == d2.ingest_bars(*bars, 86_400) == n    # each closes
    assert d1.dropped == 0 and same(state(d1), state(d2))


@given(st.lists(st.tuples(st.integers(1, 1199),         # the stream starts with a good tick
                          st.sampled_from(["nan", "inf", "-inf", "zero", "neg", "huge", "vnan",
                                           "vinf", "vneg", "vhuge", "sym", "negsym", "future"])),
                max_size=40))
def test_bad_ticks_anywhere_leave_the_state_of_the_good_ones(bad):
    """Insert absurd ticks anywhere in a good stream: every one is quarantined and the
    state (candles, indicators, LTP, counters) equals the good stream's, per event and
    in batch.  A future tick is held; the next good tick shows it was a stray."""
    sym, ts, price, vol = minute_ticks(1200, seed=3)
    rows = [(0, int(t), float(p), float(v)) for t, p, v in zip(ts, price, vol)]
    day = 86_400 * ref.NS
    out = list(rows)
    for k, (pos, kind) in enumerate(sorted(bad, reverse=True)):
        t = rows[pos][1]
        s, p, v = 0, 100.0, 1.0
        if kind in ("nan", "inf", "-inf"):
            p = float(kind)
        elif kind == "zero":
            p = 0.0
        elif kind == "neg":
            p = -1.0
        elif kind == "huge":
            p = 1e12
        elif kind[0] == "v":
            v = {"vnan": math.nan, "vinf": math.inf, "vneg": -2.0, "vhuge": 1e20}[kind]
        elif kind == "sym":
            s = 7
        elif kind == "negsym":
            s = -1
        else:
            t += (k + 1) * 2 * day          # far from each other: never confirm one another
        out.insert(pos, (s, t, p, v))
    arrays = (np.array([r[0] for r in out], np.int32), np.array([r[1] for r in out], np.int64),
              np.array([r[2] for r in out]), np.array([r[3] for r in out]))
    clean, batch, per = CandleBank(1), CandleBank(1), CandleBank(1)
    clean.ingest_ticks(sym, ts, price, vol)
    batch.ingest_ticks(*arrays)
    for r in out:
        per.on_tick(*r)
    for bank in (batch, per):
        assert bank.dropped == sum(bank.quarantined().values()) == len(bad)
        assert bank.late == 0 and bank.accepted == clean.accepted and bank.held == 0
        assert same(state(bank), state(clean))
    _tally(batch)


def test_bundle_dict_refuses_a_wrong_number_of_keys():
    bank = CandleBank(1)
    for keys in (("a", "b"), (), tuple("abcdefg"), None):
        with pytest.raises((ValueError, TypeError)):
            bank.bundle_dict(0, 0, keys)
    d = bank.bundle_dict(0, 0, tuple("abcdef"))
    assert list(d) == list("abcdef") and all(v is None for v in d.values())


def test_ingest_until_stops_for_a_released_held_tick_before_the_confirming_one():
    day2 = T0 + 86_400 * ref.NS
    arrays = (np.array([0, 1, 0, 1], np.int32),
              np.array([T0, T0 + ref.NS, day2, day2 + ref.NS], np.int64),
              np.array([10.0, 20.0, 11.0, 21.0]), np.ones(4))
    bank, stops, i = CandleBank(2, (60,)), [], 0
    while i < 4:
        i, sym = bank.ingest_ticks_until(*arrays, start=i, tf=0, stop="close")
        stops.append((i, sym))
    # tick 2 (symbol 0, a day later) waits; tick 3 confirms it: symbol 0's close is
    # reported first with tick 3 not yet applied, then symbol 1's close after tick 3
    assert stops == [(3, 0), (4, 1)]
    assert bank.dropped == 0 and bank.ltp(0) == 11.0 and bank.ltp(1) == 21.0


def test_set_clock_checks_even_the_first_tick():
    """Without a clock the first tick sets it unchecked; set_clock (the wall clock, live)
    makes a first tick stamped a day ahead wait, and the next good tick drops it."""
    bank = CandleBank(1)
    bank.set_clock(T0)
    assert bank.clock == T0
    assert bank.on_tick(0, T0 + 86_400 * ref.NS, 100.0, 1) == -1 and bank.held == 1
    assert bank.on_tick(0, T0 + 5 * ref.NS, 101.0, 1) == 0
    assert bank.ltp(0) == 101.0 and bank.quarantined()["future"] == 1 and bank.held == 0
    bank.set_clock(T0 - 10**12)                               # never moves back
    assert bank.clock == T0 + 5 * ref.NS
    _tally(bank)


def test_a_held_tick_from_an_earlier_batch_stops_before_the_next_batch_starts():
    day2 = T0 + 86_400 * ref.NS
    first = (np.array([0, 1, 0], np.int32), np.array([T0, T0 + ref.NS, day2], np.int64),
             np.array([10.0, 20.0, 11.0]), np.ones(3))
    second = (np.array([1], np.int32), np.array([day2 + ref.NS], np.int64), np.array([21.0]),
              np.ones(1))
    bank = CandleBank(2, (60,))
    assert bank.ingest_ticks_until(*first, start=0, tf=0) == (3, -1) and bank.held == 1
    assert bank.ingest_ticks_until(*second, start=0, tf=0) == (0, 0)   # the held tick closes
    assert bank.ltp(0) == 11.0 and bank.ltp(1) == 20.0
    assert bank.ingest_ticks_until(*second, start=0, tf=0) == (1, 1)
    assert bank.ltp(1) == 21.0 and bank.dropped == 0


@given(ticks_strategy, st.integers(0, 2), st.booleans(), st.integers(0, 40))
def test_cursor_stops_where_ingest_until_stops(ticks, tf, cross, cut):
    """The session's cursor binds a batch once and may stop early (``end``); it must
    stop at the same places, with the same bank state, as ingest_*_until on the slice."""
    n = len(ticks)
    sym = (np.arange(n) % 2).astype(np.int32)
    ts = np.array([t[0] for t in ticks], np.int64)
    px, vol = np.array([t[1] for t in ticks], float), np.array([t[2] for t in ticks], float)
    end = min(cut, n)
    stop = "cross" if cross else "close"
    ref_bank, want, i = CandleBank(2, ema_fast=2, ema_slow=3, future_tolerance=None), [], 0
    while i < end:
        i, k = ref_bank.ingest_ticks_until(sym[:end], ts[:end], px[:end], vol[:end], start=i,
                                           tf=tf, stop=stop)
        want.append((i, k))
    bank, got, i = CandleBank(2, ema_fast=2, ema_slow=3, future_tolerance=None), [], 0
    cur = bank.cursor(sym, ts, px, vol)
    while i < end:
        i, k = cur.until(i, end, tf, cross)
        got.append((i, k))
    assert got == want and cur.n == n
    for s in (0, 1):
        assert bank.closed_count(s, tf) == ref_bank.closed_count(s, tf)
        assert bank.forming(s, tf) == ref_bank.forming(s, tf)


def test_cursor_bars_and_bad_arrays():
    close = np.array([100.0, 101.0, 102.0, 103.0])
    sym, ts = np.zeros(4, np.int32), T0 + np.arange(4, dtype=np.int64) * 60 * ref.NS
    a, b = CandleBank(1, (60,)), CandleBank(1, (60,))
    cur = a.cursor(sym, ts, open=close, high=close + 1, low=close - 1, close=close,
                   volume=np.ones(4), span_seconds=60)
    assert [cur.until(i) for i in range(4)] == \
        [b.ingest_bars_until(sym, ts, close, close + 1, close - 1, close, np.ones(4), 60,
                             start=i) for i in range(4)]
    ha, hb = a.history(0, 0), b.history(0, 0)
    assert len(ha["close"]) == 4 and all(np.array_equal(ha[k], hb[k]) for k in ha)
    with pytest.raises(ValueError, match="same length"):
        a.cursor(sym, ts[:3], close, np.ones(4))
    with pytest.raises(ValueError, match="not both"):
        a.cursor(sym, ts, close, np.ones(4), open=close, high=close, low=close, close=close)
    with pytest.raises(ValueError, match="need open"):
        a.cursor(sym, ts, volume=np.ones(4), open=close, span_seconds=60)
    with pytest.raises(TypeError):
        type(cur)()
    with pytest.raises(TypeError, match="CandleBank.cursor"):
        type(cur).__new__(type(cur)).until(0)       # no bank bound: an error, not a crash
    with pytest.raises(ValueError, match="end must be"):
        cur.until(0, -3)
