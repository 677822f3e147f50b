"""The contract of the position ledger: exact integer-paise accounting.

Money is held as signed 64-bit integers in paise (1 rupee = 100 paise) and
quantities in whole units, so every sum is exact: after any number of fills,

    cash + market_value == initial + realized + unrealized - fees

holds to the paisa (``unrealized = market_value - cost``).  Open positions use
the average-cost method; when a fill reduces a position, the cost removed is
``cost * closed / open`` rounded half away from zero to a paisa, and the
remainder stays in the position's cost, so no paisa is created or lost.
"""

cdef struct Position:
    long long qty          # signed units: > 0 long, < 0 short
    long long cost         # signed paise paid for the open units (qty * average price)
    long long realized     # paise realized by reducing fills
    long long fees         # paise of charges on this symbol's fills
    long long mark         # paise per unit used for market value; the newest fill or mark
    long long fills        # fills applied
    long long traded       # units traded (sum of |qty|)


cdef struct Book:
    Position* pos          # [n]
    Py_ssize_t n
    long long initial      # paise
    long long cash         # paise
    long long realized     # sum of Position.realized
    long long fees         # sum of Position.fees
    long long cost         # sum of Position.cost
    long long market_value # sum of qty * mark
    long long exposure     # sum of |qty * mark|
    long long open_count   # positions with qty != 0
    long long fills
    long long rejected


cdef class Ledger:
    cdef Book book
