"""Fault injection: SIGKILL a process that is applying fills, many times, and check that
every acknowledged fill survives and the restored state is exact -- also when a journal
line in the middle is damaged between runs."""
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time

from pathlib import Path

import hftcore
import reference as ref
from figures import FIGURES, report
from hftcore.services import PortfolioService

# the child imports the same hftcore as this test (installed wheel or dev tree)
CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}

CHILD = r"""
import random, sys
from hftcore.services import PortfolioService
folder, seed = sys.argv[1], int(sys.argv[2])
every = int(sys.argv[3]) if len(sys.argv) > 3 else 5
p = PortfolioService(1e7, checkpoint_dir=folder, checkpoint_every=every, fsync=True)
# fills 0..i-1 are in (or given: fill k depends on k only, so a re-send is identical)
i = int(sys.argv[4]) if len(sys.argv) > 4 else p.get_totals()["fills"]
while True:
    r = random.Random(seed * 1_000_003 + i)
    p.on_fill({"fill_id": f"F{i}", "symbol": r.choice(["RELIANCE", "TCS", "INFY", "SBIN"]),
               "side": r.choice(["BUY", "SELL"]), "quantity": r.randint(1, 50),
               "price_paise": r.randint(10_000, 300_000) // 5 * 5,
               "fees_paise": r.randint(0, 2_000)})
    sys.stdout.write(f"{i}\n")        # the acknowledgement: on_fill has returned
    sys.stdout.flush()
    i += 1
"""

SEED = 20261126


def fill(i):
    r = random.Random(SEED * 1_000_003 + i)
    sym = r.choice(["RELIANCE", "TCS", "INFY", "SBIN"])
    side = r.choice(["BUY", "SELL"])
    qty = r.randint(1, 50)
    price = r.randint(10_000, 300_000) // 5 * 5
    fee = r.randint(0, 2_000)
    return sym, qty if side == "BUY" else -qty, price, fee


def run_and_kill(folder, rng, *args, min_acks=1):
    """Start a child applying fills, SIGKILL it at a random moment; its acknowledgements."""
    proc = subprocess.Popen([sys.executable, "-P", "-c", CHILD, str(folder), str(SEED),
                             *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder.parent,
                            text=True, env=CHILD_ENV)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    start = time.monotonic()
    while len(lines) < min_acks and proc.poll() is None and time.monotonic() - start < 30:
        time.sleep(0.002)
    assert proc.poll() is None, proc.stderr.read()
    time.sleep(rng.uniform(0.0, 0.08))              # somewhere in the stream of fills
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    reader.join(timeout=10)
    return [int(x) for x in lines if x.strip().isdigit()]


def test_sigkill_at_random_moments_loses_no_acknowledged_fill(tmp_path):
    folder = tmp_path / "portfolio"
    rng = random.Random(7)
    acked, kills, mid_checkpoint, torn_journal = -1, 0, 0, 0
    for _ in range(60):
        lines = run_and_kill(folder, rng)
        kills += 1
        mid_checkpoint += any(folder.glob("*.tmp"))
        torn_journal += any(not j.read_bytes().endswith(b"\n")
                            for j in folder.glob("fills-*.journal") if j.stat().st_size)
        if lines:
            acked = max(acked, max(lines))

    restored = PortfolioService(1e7, checkpoint_dir=folder)
    totals = restored.get_totals()
    k = totals["fills"]
    # every acknowledged fill is there; at most the one in flight beyond it
    assert acked + 1 <= k <= acked + 2
    r = ref.RefLedger(10**9)
    for i in range(k):
        sym, qty, price, fee = fill(i)
        r.fill(sym, qty, price, fee)
    assert totals["cash_paise"] == r.cash and totals["realized_paise"] == r.realized
    assert totals["fees_paise"] == r.fees and totals["balanced"]
    for sym in ("RELIANCE", "TCS", "INFY", "SBIN"):
        pos = restored.get_position(sym)
        want = r.pos.get(sym, {"qty": 0})["qty"]
        assert (pos["quantity"] if pos else 0) == want
    report("crash test", f"{kills} SIGKILLs ({mid_checkpoint} with a checkpoint half-written, "
                         f"{torn_journal} with a torn journal line), {acked + 1} fills "
                         f"acknowledged, {k} restored, 0 lost")


def test_sigkill_with_a_damaged_journal_line_loses_only_that_fill(tmp_path, caplog):
    """Between kills, flip a byte in a record in the middle of the journal: that fill
    (and nothing else) is missing after restore, reported at ERROR; later runs on the
    folder keep every other acknowledged fill."""
    folder = tmp_path / "portfolio"
    rng = random.Random(11)
    acked, lost, next_i = -1, set(), 0
    for _ in range(5):
        lines = run_and_kill(folder, rng, 100_000, next_i, min_acks=20)
        acked = max(acked, max(lines))
        segment = max(folder.glob("fills-*.journal"))   # this run's records
        records = segment.read_bytes().split(b"\n")
        k = len(records) // 2
        fid = json.loads(records[k].partition(b" ")[2])[0]
        records[k] = records[k].replace(b'"RELIANCE"', b'"RELIANCF"').replace(
            b'"TCS"', b'"TCT"').replace(b'"INFY"', b'"INFZ"').replace(b'"SBIN"', b'"SBIO"')
        segment.write_bytes(b"\n".join(records))
        lost.add(int(fid[1:]))
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            p = PortfolioService(1e7, checkpoint_dir=folder)
        assert p.journal_corrupt == 1 and "corrupt record" in caplog.text
        assert p.restored["journal_corrupt"] == 1
        p.close()                                       # checkpoint + rotation
        next_i = acked + 1                              # an in-flight one is re-sent: dedup
    restored = PortfolioService(1e7, checkpoint_dir=folder)
    totals = restored.get_totals()
    n = totals["fills"] + len(lost)                     # fills 0..n-1 were journaled
    assert acked + 1 <= n <= acked + 2 and restored.journal_corrupt == 0
    r = ref.RefLedger(10**9)
    for i in range(n):
        if i not in lost:
            sym, qty, price, fee = fill(i)
            r.fill(sym, qty, price, fee)
    assert totals["cash_paise"] == r.cash and totals["realized_paise"] == r.realized
    assert totals["fees_paise"] == r.fees and totals["balanced"]
    assert len(list(folder.glob("*.journal.corrupt"))) == 5
    FIGURES["journal corruptions survived"] = FIGURES.get("journal corruptions survived", 0) + 5
    report("crash test with damaged journal", f"5 SIGKILLs each followed by a flipped record: "
                                              f"{acked + 1} fills acknowledged, 5 damaged "
                                              f"records reported, 0 other fills lost")
