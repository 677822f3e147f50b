"""FillLog: a session's fills read like a list while only the newest chunk stays in
memory; the rest is on disk, and nothing is lost when the disk refuses a write."""

from __future__ import annotations

import json
import logging
import pickle
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from hftcore import EmaCross, InstrumentTable, ReplayFeed
from hftcore.engines.charges import ChargeSchedule
from hftcore.orders import FillLog
from hftcore.report import write_report
from hftcore.session import PaperSession

CANDLES = Path(__file__).resolve().parent.parent / "examples" / "data" / "candles"


def _payload(i: int) -> dict:
    return {"fill_id": f"PB{i:09d}-1", "order_id": f"PB{i:09d}", "symbol": "INFY",
            "side": "BUY" if i % 3 else "SELL", "quantity": 1 + i % 7, "price": 1500.05,
            "price_paise": 150005, "fees": 0.0, "fees_paise": 0, "charges": {"stt": 0.0},
            "ts": 10**18 + i, "mode": "paper", "note": "x" * (i % 50)}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 60), chunk=st.integers(1, 9), keep=st.integers(0, 7),
       probes=st.lists(st.integers(-70, 70)))
def test_reads_like_the_list_of_what_was_appended(n, chunk, keep, probes):
    log, ref = FillLog(chunk=chunk, keep=keep), []
    for i in range(n):
        log.append(_payload(i))
        ref.append(_payload(i))
    assert len(log) == n and bool(log) == (n > 0)
    assert list(log) == ref and list(log) == ref          # a second pass reads the same
    assert log[1:n - 1:2] == ref[1:n - 1:2]
    for i in probes:
        if -n <= i < n:
            assert log[i] == ref[i]
        else:
            with pytest.raises(IndexError):
                log[i]
    assert pickle.loads(pickle.dumps(log))[:] == ref


def test_only_the_newest_chunk_stays_in_memory():
    """A list of the same payloads holds ~40 MB; the log holds ``keep + chunk`` of them."""
    n, chunk = 40_000, 500
    log = FillLog(chunk=chunk, keep=1000)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            log.append(_payload(i))
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(log) == n and log[0] == _payload(0) and log[-1] == _payload(n - 1)
    assert held < 3 * 2**20, f"{held / 2**20:.1f} MiB held for {n} fills"


def test_a_refused_spill_keeps_every_fill_in_memory(tmp_path, caplog):
    log = FillLog(chunk=4, keep=0, spill_dir=tmp_path / "missing")   # TemporaryFile raises
    with caplog.at_level(logging.ERROR, logger="hftcore.orders"):
        for i in range(10):
            log.append(_payload(i))
    assert list(log) == [_payload(i) for i in range(10)]
    assert "could not write 4 fills" in caplog.text
    (tmp_path / "missing").mkdir()                 # the disk is back: the next chunk spills
    for i in range(10, 12):
        log.append(_payload(i))
    assert list(log) == [_payload(i) for i in range(12)]
    assert "12 fills, 12 on disk" in repr(log)


def test_held_reads_once_and_sees_later_appends():
    log = FillLog(chunk=2, keep=1)
    for i in range(5):
        log.append(_payload(i))

    def disk(k):
        raise AssertionError("read the disk inside held()")
    with log.held():
        log._chunk = disk                          # held: the block does not read the disk
        assert list(log) == [_payload(i) for i in range(5)] and list(log)[-1] == _payload(4)
        del log._chunk
        log.append(_payload(5))                    # a new fill is never hidden by the hold
        assert list(log) == [_payload(i) for i in range(6)]
    assert list(log) == [_payload(i) for i in range(6)]


def test_bad_chunk_is_refused():
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="chunk"):
            FillLog(chunk=bad)
    for bad in (-1, 2.0, True, None):
        with pytest.raises(ValueError, match="keep"):
            FillLog(keep=bad)


def _run(chunk: int | None, out: Path) -> PaperSession:
    inst = InstrumentTable()
    for s in ("INFY", "RELIANCE"):
        inst.add(s, tick_size=0.05)
    s = PaperSession(ReplayFeed(CANDLES, instruments=inst), capital=5e6,
                     strategy_engine=EmaCross(fast=5, slow=20, quantity=50),
                     charges=ChargeSchedule())
    if chunk is not None:
        s.fills = FillLog(chunk=chunk, keep=2)
    s.run()
    write_report(s, out, provenance={})
    return s


def test_a_session_whose_fills_spill_writes_the_same_report(tmp_path):
    spilled, kept = _run(3, tmp_path / "spilled"), _run(None, tmp_path / "kept")
    assert type(kept.fills) is FillLog and ", 0 on disk" in repr(kept.fills)
    assert len(spilled.fills) > 20 and ", 0 on disk" not in repr(spilled.fills)
    assert list(spilled.fills) == list(kept.fills)
    for name in ("trades.csv", "fills.csv"):
        assert (tmp_path / "spilled" / name).read_bytes() == \
            (tmp_path / "kept" / name).read_bytes(), name
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("spilled", "kept"))
    timing = {k for k in a if k.startswith("latency_")}
    assert timing and {k: v for k, v in a.items() if k not in timing} == \
        {k: v for k, v in b.items() if k not in timing}


def test_compares_and_searches_like_the_list_it_replaced():
    log = FillLog(chunk=3, keep=2)
    ref = [_payload(i) for i in range(11)]
    for p in ref:
        log.append(p)
    assert log == ref and ref == log and log != ref[:-1] and log != "x"
    assert log.index(_payload(4)) == 4 and log.count(_payload(9)) == 1
    assert _payload(0) in log and {"no": 1} not in log
    assert list(reversed(log)) == ref[::-1]
    with pytest.raises(TypeError):
        hash(log)


def test_a_payload_that_cannot_be_pickled_stays_in_memory_and_later_chunks_still_spill(caplog):
    import threading
    log = FillLog(chunk=4, keep=4)
    odd = {"i": 0, "lock": threading.Lock()}
    log.append(odd)
    with caplog.at_level(logging.ERROR, logger="hftcore.orders"):
        for i in range(1, 40):
            log.append({"i": i})                   # never raises
    assert len(log) == 40 and log[0] is odd and [f["i"] for f in log] == list(range(40))
    assert "cannot pickle" in caplog.text
    assert caplog.text.count("could not write") < 12  # backs off a chunk at a time


def test_spilled_fills_stay_readable_while_the_disk_is_full(tmp_path, caplog):
    import resource
    import signal
    log = FillLog(chunk=10, keep=10, spill_dir=tmp_path)
    for i in range(20):
        log.append(_payload(i))                    # one chunk on disk
    size = log._size
    old_sig = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_lim = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, old_lim[1]))
    try:
        with caplog.at_level(logging.ERROR, logger="hftcore.orders"):
            for i in range(20, 30):
                log.append(_payload(i))            # this chunk cannot be written
        assert "could not write" in caplog.text
        assert list(log) == [_payload(i) for i in range(30)]   # still readable, all there
        assert log[3] == _payload(3) and log[29] == _payload(29)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_lim)
        signal.signal(signal.SIGXFSZ, old_sig)
    for i in range(30, 45):
        log.append(_payload(i))                    # space again: the backlog spills
    assert list(log) == [_payload(i) for i in range(45)] and ", 0 on disk" not in repr(log)


def test_an_inner_held_block_keeps_the_outer_hold():
    log = FillLog(chunk=2, keep=1)
    for i in range(7):
        log.append(_payload(i))

    def disk(k):
        raise AssertionError("read the disk inside held()")
    with log.held():
        with log.held():
            pass
        log._chunk = disk                          # the outer hold still serves reads
        assert list(log) == [_payload(i) for i in range(7)]
        del log._chunk
