"""The portfolio's journal, checkpoints and folder lock: nothing acknowledged is lost,
nothing is silently wrong (issue 14), and checkpoints stay small as fills grow (issue 11)."""
import errno
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import hftcore
from figures import FIGURES
from hftcore.services import PortfolioService
from hftcore.services.portfolio_service import CheckpointInUseError

CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}


def fill(i, qty=1, side="BUY", price=250_000):
    return {"fill_id": f"F{i}", "symbol": "RELIANCE", "side": side, "quantity": qty,
            "price_paise": price, "fees_paise": 3}


def survived(key, n=1):
    FIGURES[key] = FIGURES.get(key, 0) + n


def segments(folder):
    return sorted(folder.glob("fills-*.journal"))


def corrupt_line(path, index):
    """Flip one byte inside record ``index`` of a journal segment; returns its fill id."""
    lines = path.read_bytes().split(b"\n")
    fid = json.loads(lines[index].partition(b" ")[2])[0]
    line = bytearray(lines[index])
    line[-3] ^= 0x01                                      # a flipped bit in the body
    lines[index] = bytes(line)
    path.write_bytes(b"\n".join(lines))
    return fid


def crash(p):
    """What the OS does when the process dies: its files close, the lock goes."""
    p._release_lock()


# ---------------------------------------------------------------- journal


def test_a_corrupt_middle_line_costs_that_fill_only_and_is_reported_loudly(tmp_path, caplog):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=0, fsync=False)
    for i in range(10):
        assert p.record_fill(fill(i)) == "applied"
    crash(p)
    [seg] = segments(tmp_path)
    before = seg.read_bytes()
    lost = corrupt_line(seg, 3)
    corrupted = seg.read_bytes()
    assert corrupted != before and len(corrupted) == len(before)
    with caplog.at_level(logging.INFO):
        q = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert lost == "F3"
    assert q.position_quantity("RELIANCE") == 9 and q.get_totals()["fills"] == 9
    assert q.journal_corrupt == 1 and q.restored["journal_corrupt"] == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len([e for e in errors if "corrupt record at byte" in e]) == 1
    assert seg.read_bytes() == corrupted                  # restore never rewrites the journal
    assert q.record_fill(fill(4)) == "duplicate"          # the records after it were applied
    assert q.record_fill(fill(3)) == "applied"            # a broker re-send restores the lost one
    q.close()
    assert list(tmp_path.glob("*.journal.corrupt"))       # a copy kept for inspection
    r = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert r.position_quantity("RELIANCE") == 10 and r.journal_corrupt == 0
    survived("journal corruptions survived")


def test_a_corrupt_line_before_the_checkpoint_position_does_not_shift_the_replay(tmp_path):
    """The checkpoint's journal position is a byte offset plus the fill id before it, so a
    damaged line never changes which records count as already applied."""
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=0, fsync=False)
    for i in range(5):
        p.record_fill(fill(i))
    p.checkpoint()
    for i in range(5, 12):
        p.record_fill(fill(i))
    crash(p)
    first, second = segments(tmp_path)
    corrupt_line(first, 1)                                # covered by the checkpoint
    lost = corrupt_line(second, 2)                        # after it
    q = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert lost == "F7"
    assert q.get_totals()["fills"] == 11 and q.position_quantity("RELIANCE") == 11
    assert q.journal_corrupt == 1
    survived("journal corruptions survived")


def test_a_checkpoint_position_that_does_not_match_the_journal_is_reported(tmp_path, caplog):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=0, fsync=False,
                         dedup_window=100)
    p._open_segment = lambda n: (_ for _ in ()).throw(OSError(errno.EMFILE, "no rotation"))
    for i in range(4):
        p.record_fill(fill(i))
    p.checkpoint()                                        # rotation failed: same segment
    p.record_fill(fill(4))
    crash(p)
    [seg] = segments(tmp_path)
    seg.write_bytes(b"junk\n" + seg.read_bytes())         # every offset moves by 5 bytes
    with caplog.at_level(logging.ERROR):
        q = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert "does not match" in caplog.text and q.journal_corrupt == 1
    assert q.get_totals()["fills"] == 5                   # dedup by id: nothing applied twice


def test_torn_last_line_is_quiet_and_new_records_start_on_a_fresh_line(tmp_path, caplog):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=0, fsync=False)
    for i in range(3):
        p.record_fill(fill(i))
    crash(p)
    [seg] = segments(tmp_path)
    seg.write_bytes(seg.read_bytes()[:-7])                # a write cut short by a crash
    torn = seg.read_bytes()
    with caplog.at_level(logging.INFO):
        q = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert "torn last line" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert q.get_totals()["fills"] == 2 and q.journal_corrupt == 0
    q.record_fill(fill(7))
    crash(q)
    assert seg.read_bytes() == torn                       # never glued onto, never cut
    r = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert r.get_totals()["fills"] == 3 and r.journal_corrupt == 0


def test_checkpoints_stay_small_and_the_journal_is_rotated(tmp_path):
    p = PortfolioService(1e9, checkpoint_dir=tmp_path, checkpoint_every=100, fsync=False,
                         dedup_window=500)
    sizes = {}
    for i in range(20_000):
        p.record_fill(fill(i, side="BUY" if i % 2 else "SELL", price=100_000 + i % 50))
        if i + 1 in (11_000, 20_000):   # same id lengths in the window
            sizes[i + 1] = max(f.stat().st_size for f in tmp_path.glob("portfolio-*.json"))
    assert sizes[20_000] <= sizes[11_000] * 1.02          # independent of the fill count
    assert sizes[20_000] < 40_000
    journal = sum(f.stat().st_size for f in segments(tmp_path))
    assert len(segments(tmp_path)) <= p.keep + 1 and journal < 4 * 100 * 60
    assert len(list(tmp_path.glob("portfolio-*.json"))) == p.keep
    crash(p)
    q = PortfolioService(1e9, checkpoint_dir=tmp_path)
    assert q.get_totals() == p.get_totals()


def test_re_sent_fills_are_recognised_across_restarts_within_the_window(tmp_path):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=7, fsync=False,
                         dedup_window=50)
    for i in range(120):
        p.record_fill(fill(i))
    crash(p)
    q = PortfolioService(1e7, checkpoint_dir=tmp_path, dedup_window=50)
    assert [q.record_fill(fill(i)) for i in (119, 100, 70)] == ["duplicate"] * 3
    assert q.record_fill(fill(69)) == "applied"            # older than the documented window
    q.close()
    r = PortfolioService(1e7, checkpoint_dir=tmp_path, dedup_window=50)
    assert r.record_fill(fill(69)) == "duplicate" and r.get_totals()["fills"] == 121


def test_a_version_1_folder_is_restored_by_its_line_count(tmp_path):
    """Folders written before the journal had segments keep working."""
    lines = []
    for i in range(6):
        body = json.dumps([f"F{i}", "RELIANCE", 1, 250_000, 3], separators=(",", ":")).encode()
        lines.append(b"%08x %s\n" % (zlib.crc32(body), body))
    (tmp_path / "fills.journal").write_bytes(b"".join(lines))
    ref = PortfolioService(1e7)
    for i in range(4):
        ref.record_fill(fill(i))
    st = ref.ledger.to_state()
    body = {"version": 1, "initial": st["initial"], "cash": st["cash"], "fills": st["fills"],
            "rejected": st["rejected"], "symbols": ["RELIANCE"],
            "positions": st["positions"].tolist(), "fill_ids": [], "journal_lines": 4}
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True)
    (tmp_path / "portfolio-000000000001.json").write_text(json.dumps(
        {"format": "hftcore.portfolio", "version": 1, "body": body,
         "sha256": hashlib.sha256(payload.encode()).hexdigest()}))
    q = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert q.get_totals()["fills"] == 6 and q.position_quantity("RELIANCE") == 6
    assert q.restored["replayed"] == 2


# ---------------------------------------------------------------- durable or not acknowledged


class FailingFile:
    """A journal file whose writes fail after ``ok_bytes`` (a disk filling up)."""

    def __init__(self, real, ok_bytes=0, truncate_fails=False):
        self.real, self.ok_bytes, self.truncate_fails = real, ok_bytes, truncate_fails

    def write(self, data):
        if self.ok_bytes <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self.real.write(bytes(data[:self.ok_bytes]))
        self.ok_bytes -= n
        return n

    def truncate(self, size):
        if self.truncate_fails:
            raise OSError(errno.EIO, "Input/output error")
        return self.real.truncate(size)

    def fileno(self):
        return self.real.fileno()

    def close(self):
        self.real.close()


def test_a_fill_that_cannot_be_journaled_is_not_applied(tmp_path, caplog):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=0)
    assert p.record_fill(fill(0)) == "applied"
    before = p.get_totals()
    p._journal = FailingFile(p._journal, ok_bytes=10)     # half a record, then disk full
    with caplog.at_level(logging.ERROR):
        assert p.record_fill(fill(1, qty=5)) == "failed"
        assert p.on_fill(fill(2, qty=5)) is False
    assert "NOT taken" in caplog.text
    assert p.get_totals() == before and p.persist_failures == 2 and p.failed == 2
    assert p.get_position("RELIANCE")["quantity"] == 1
    p._journal = p._journal.real                          # space again: the re-send is taken
    assert p.record_fill(fill(1, qty=5)) == "applied"
    crash(p)
    q = PortfolioService(1e7, checkpoint_dir=tmp_path)     # disk and memory agree
    assert q.get_totals() == p.get_totals() and q.journal_corrupt == 0


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_dev_full_and_a_failed_cleanup_leave_no_glued_records(tmp_path, caplog):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=0)
    p.record_fill(fill(0))
    real = p._journal
    p._journal = open("/dev/full", "ab", buffering=0)      # the real ENOSPC from the kernel
    assert p.record_fill(fill(1)) == "failed"
    p._journal.close()
    p._journal = FailingFile(real, ok_bytes=12, truncate_fails=True)
    assert p.record_fill(fill(2)) == "failed"              # a partial line stays behind
    p._journal = real
    assert p.record_fill(fill(3)) == "applied"
    crash(p)
    with caplog.at_level(logging.ERROR):
        q = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert q.get_totals() == p.get_totals() and q.get_totals()["fills"] == 2
    assert q.journal_corrupt == 1 and "corrupt record" in caplog.text  # the partial one
    survived("journal corruptions survived")


def test_a_fill_the_ledger_refuses_is_failed_and_not_journaled(tmp_path):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=0)
    p.record_fill(fill(0))
    size = segments(tmp_path)[0].stat().st_size
    assert p.record_fill(fill(1, qty=2 * 10**9)) == "failed"       # above the ledger's MAX_QTY
    assert p.record_fill(fill(2, qty=10**30)) == "failed"          # beyond int64
    assert segments(tmp_path)[0].stat().st_size == size
    assert p.get_totals()["fills"] == 1 and p.get_totals()["balanced"] and p.failed == 2
    crash(p)
    assert PortfolioService(1e7, checkpoint_dir=tmp_path).get_totals()["fills"] == 1


def test_record_fill_answers(tmp_path):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert p.record_fill(fill(0)) == "applied"
    assert p.record_fill(fill(0)) == "duplicate"
    assert p.record_fill({**fill(1), "side": "HOLD"}) == "invalid"
    p.close()
    assert p.record_fill(fill(2)) == "failed"               # closed: nowhere durable to go
    assert p.get_totals()["fills"] == 1
    assert PortfolioService(1e7).record_fill(fill(0)) == "applied"


def test_a_failing_automatic_checkpoint_keeps_the_fill(tmp_path, caplog, monkeypatch):
    import hftcore.services.portfolio_service as ps
    p = PortfolioService(1e7, checkpoint_dir=tmp_path, checkpoint_every=2)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(ps, "atomic_write", full)
    with caplog.at_level(logging.ERROR):
        assert [p.record_fill(fill(i)) for i in range(3)] == ["applied"] * 3
    assert p.checkpoint_failures == 1 and "checkpoint failed" in caplog.text
    monkeypatch.undo()
    crash(p)
    assert PortfolioService(1e7, checkpoint_dir=tmp_path).get_totals()["fills"] == 3


# ---------------------------------------------------------------- one process per folder


def test_a_second_portfolio_on_the_folder_is_refused_until_the_first_closes(tmp_path):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path)
    busy = f"in use by another portfolio \\(pid {os.getpid()}"
    with pytest.raises(CheckpointInUseError, match=busy):
        PortfolioService(1e7, checkpoint_dir=tmp_path)
    p.record_fill(fill(0))
    p.close()
    q = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert q.get_totals()["fills"] == 1
    survived("lock conflicts refused")


def test_another_process_holding_the_folder_is_refused(tmp_path):
    child = ("import sys, time\nfrom hftcore.services import PortfolioService\n"
             "p = PortfolioService(1e7, checkpoint_dir=sys.argv[1])\nprint('ready', flush=True)\n"
             "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-P", "-c", child, str(tmp_path)], env=CHILD_ENV,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(ValueError, match=f"pid {proc.pid}"):
            PortfolioService(1e7, checkpoint_dir=tmp_path)
        survived("lock conflicts refused")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10                      # the OS drops a dead process's lock
    while True:
        try:
            PortfolioService(1e7, checkpoint_dir=tmp_path).close()
            break
        except CheckpointInUseError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_an_unusable_folder_is_a_value_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="checkpoint folder .*file/sub"):
        PortfolioService(1e7, checkpoint_dir=blocker / "sub")


def test_a_restore_says_so(tmp_path, caplog):
    p = PortfolioService(1e7, checkpoint_dir=tmp_path)
    assert p.restored is None
    p.record_fill(fill(0, qty=4))
    p.close()
    with caplog.at_level(logging.INFO):
        q = PortfolioService(5e6, checkpoint_dir=tmp_path)
    assert q.restored == {"fills": 1, "capital": 1e7, "checkpoint": q.restored["checkpoint"],
                          "replayed": 0, "journal_corrupt": 0}
    assert q.restored["checkpoint"].startswith("portfolio-") and "portfolio restored" in caplog.text
    assert q.initial_capital == 1e7


# ---------------------------------------------------------------- fuzz: memory and disk agree

numbers = st.one_of(st.integers(-10**25, 10**25), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 10**9, 10**9 + 1, 2**63, -1, 0.5, "10", None, True]))
fills = st.lists(st.fixed_dictionaries({
    "fill_id": st.one_of(st.none(), st.sampled_from(["A", "B", "C", "D"]), st.text(max_size=4)),
    "symbol": st.sampled_from(["RELIANCE", "TCS", "", " infy ", None, 7]),
    "side": st.sampled_from(["BUY", "SELL", "HOLD", None]),
    "quantity": numbers, "price_paise": numbers, "fees_paise": numbers}), max_size=12)


@settings(max_examples=60, deadline=None)
@given(fills, st.integers(0, 3))
def test_absurd_fills_leave_memory_and_disk_in_agreement(tmp_path_factory, batch, every):
    folder = tmp_path_factory.mktemp("fuzz")
    p = PortfolioService(1e7, checkpoint_dir=folder, checkpoint_every=every, fsync=False)
    answers = [p.record_fill(f) for f in batch]
    assert set(answers) <= {"applied", "duplicate", "invalid", "failed"}
    totals = p.get_totals()
    assert totals["balanced"] and totals["fills"] == answers.count("applied")
    crash(p)
    q = PortfolioService(1e7, checkpoint_dir=folder)
    assert q.get_totals() == totals and q.journal_corrupt == 0
    q.close()
