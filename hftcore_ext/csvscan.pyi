# Python types of hftcore_ext.csvscan (the clean-CSV fast path of hftcore.datafiles).
import numpy as np

def scan_csv(raw: bytes | bytearray | memoryview | np.ndarray, body: int, roles: list[int],
             n_numbers: int, naive_offset_ns: int, max_ns: int) -> tuple[np.ndarray, np.ndarray] | None: ...
