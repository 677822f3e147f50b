"""Process tuning for latency-sensitive use.

CPython's cyclic garbage collector runs a generation-0 pass every 700 container
allocations and, now and then, a full pass over every tracked object; on the
decision path those passes are most of the p99 tail.  ``tune_gc`` moves every
object alive at start-up (instruments, engines, services) into the permanent
generation with ``gc.freeze()`` and makes collections rarer.  Call it once,
after wiring the services and before trading; the ``hftcore`` command does.
"""

import gc


def tune_gc(gen0: int = 50_000, gen1: int = 20, gen2: int = 100) -> tuple:
    """Freeze the objects alive now and raise the collection thresholds.

    Returns the previous thresholds (pass them to ``gc.set_threshold`` to undo;
    ``gc.unfreeze()`` returns frozen objects to collection).
    """
    for name, v in (("gen0", gen0), ("gen1", gen1), ("gen2", gen2)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} threshold must be an int >= 1, got {v!r}")
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, gen1, gen2)
    return previous
