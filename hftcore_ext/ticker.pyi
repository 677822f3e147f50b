# Python types of hftcore_ext.ticker.  Columns: int64 tokens/quantities/ns, int8 mode,
# float64 rupees (NaN where a mode does not carry the field).
import numpy as np

MODE_LTP: int          # 1
MODE_QUOTE: int        # 2
MODE_FULL: int         # 3
MODE_INDEX_QUOTE: int  # 4
MODE_INDEX_FULL: int   # 5
COLUMNS: tuple[str, ...]

def packet_count(frame: bytes | bytearray | memoryview) -> int: ...
def decode_frame(frame: bytes | bytearray | memoryview) -> dict[str, np.ndarray | int]: ...
