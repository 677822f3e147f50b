"""Fault injection: SIGKILL a process that is applying fills, many times, and check that
every acknowledged fill survives and the restored state is exact."""
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
from figures import report
from hftcore.services import PortfolioService

# the child imports the same hftcore as this test (installed wheel or dev tree)
CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(hftcore.__file__).resolve().parents[1])}

CHILD = r"""
import random, sys
from hftcore.services import PortfolioService
folder, seed = sys.argv[1], int(sys.argv[2])
p = PortfolioService(1e7, checkpoint_dir=folder, checkpoint_every=5, fsync=True)
i = p.get_totals()["fills"]           # fills 0..i-1 are in; fill k depends on k only
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


def test_sigkill_at_random_moments_loses_no_acknowledged_fill(tmp_path):
    folder = tmp_path / "portfolio"
    rng = random.Random(7)
    acked, kills, mid_checkpoint, torn_journal = -1, 0, 0, 0
    for _ in range(60):
        proc = subprocess.Popen([sys.executable, "-P", "-c", CHILD, str(folder), str(SEED)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                                text=True, env=CHILD_ENV)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        start = time.monotonic()
        while not lines and proc.poll() is None and time.monotonic() - start < 30:
            time.sleep(0.002)
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.08))          # somewhere in the stream of fills
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        reader.join(timeout=10)
        kills += 1
        mid_checkpoint += any(folder.glob("*.tmp"))
        journal = folder / "fills.journal"
        torn_journal += journal.exists() and not journal.read_bytes().endswith(b"\n")
        if lines:
            acked = max(acked, max(int(x) for x in lines if x.strip().isdigit()))

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
