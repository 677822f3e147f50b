"""Clean CSV market data -> numpy columns in one pass without the GIL.

``hftcore.datafiles`` tries this first on every CSV file that has one timestamp
column and number columns (Kite candles, ``timestamp,price,volume`` ticks).  It
accepts only the plainest form of such a file and returns None at the first
byte that is anything else; the caller then reads the whole file with the
general pyarrow reader, which reports or quarantines whatever is there.  So a
file this accepts gives exactly the arrays the general reader gives, and every
error message, quarantine count and line number still comes from one place.

Accepted, per record (``\\n`` or ``\\r\\n`` terminated, the last one may be
unterminated; no blank lines, no quotes, exactly the header's field count):

* the timestamp field: ``YYYY-MM-DD``, ``T`` or one space, ``HH:MM:SS``, an
  optional ``.`` fraction of 1-9 digits, then nothing (IST), ``Z``, or
  ``+HH:MM`` / ``+HHMM`` / ``+HH`` (or ``-``); a valid date and time in
  1970-2199, offset hours <= 18;
* number fields: ``-?D+(.D+)?`` with at most 18 digits in all, whose digits as
  an integer are at most 2**53 and with at most 22 after the point.  The value
  is that integer divided by an exact power of ten: one correctly rounded
  division, so the same double as any correctly rounded parser (Clinger's fast
  path);
* other columns: up to 256 bytes of ASCII without a quote (so an accepted file
  is ASCII: the general reader's UTF-8 check would pass).
"""

from libc.stdint cimport int64_t, uint64_t

import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef enum:
    SKIP = -2
    TIMESTAMP = -1
    MAX_OTHER = 256

cdef int64_t NS = 1000000000
cdef uint64_t MAX_MANTISSA = 9007199254740992          # 2**53
cdef double[23] POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                         1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]
cdef uint64_t[19] POW10_INT = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
                               1000000000, 10000000000, 100000000000, 1000000000000,
                               10000000000000, 100000000000000, 1000000000000000,
                               10000000000000000, 100000000000000000, 1000000000000000000]
cdef int[13] MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


cdef inline int digit(unsigned char c) noexcept nogil:
    return <int>c - 48 if 48 <= c <= 57 else -1


cdef inline int two(const unsigned char* p) noexcept nogil:
    """Two decimal digits, or -1."""
    cdef int a = digit(p[0]), b = digit(p[1])
    if a < 0 or b < 0:
        return -1
    return a * 10 + b


cdef inline int64_t days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    """Days since 1970-01-01 of a proleptic Gregorian date (y >= 1; H. Hinnant)."""
    if m <= 2:
        y -= 1
    cdef int64_t era = y // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    cdef int64_t doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline Py_ssize_t ts_at(const unsigned char* buf, Py_ssize_t i, Py_ssize_t size,
                             int64_t naive_offset_ns, int64_t max_ns, int64_t* out) noexcept nogil:
    """Read a timestamp at ``buf[i]``: the position just after it, or -1."""
    cdef const unsigned char* p = buf + i
    cdef int y, y0, y1, mo, d, hh, mm, ss, oh, om, k, dim
    cdef int64_t frac = 0, scale = 100000000, off, secs, ns
    if size - i < 19 or p[4] != 45 or p[7] != 45 or (p[10] != 84 and p[10] != 32) \
            or p[13] != 58 or p[16] != 58:                      # - - T/space : :
        return -1
    y0 = two(p)
    y1 = two(p + 2)
    mo = two(p + 5)
    d = two(p + 8)
    hh = two(p + 11)
    mm = two(p + 14)
    ss = two(p + 17)
    if y0 < 0 or y1 < 0 or mo < 1 or mo > 12 or d < 1 or hh < 0 or hh > 23 \
            or mm < 0 or mm > 59 or ss < 0 or ss > 59:
        return -1
    y = y0 * 100 + y1
    if y < 1970 or y > 2199:
        return -1
    dim = MONTH_DAYS[mo]
    if mo == 2 and (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)):
        dim = 29
    if d > dim:
        return -1
    i += 19
    if i < size and buf[i] == 46:                               # .fraction
        i += 1
        k = 0
        while i < size and digit(buf[i]) >= 0:
            if k == 9:
                return -1
            frac += digit(buf[i]) * scale
            scale //= 10
            k += 1
            i += 1
        if k == 0:
            return -1
    off = naive_offset_ns
    if i < size and buf[i] == 90:                               # Z
        off = 0
        i += 1
    elif i < size and (buf[i] == 43 or buf[i] == 45):           # + -
        if size - i < 3:
            return -1
        oh = two(buf + i + 1)
        om = 0
        k = i
        i += 3
        if size - i >= 3 and buf[i] == 58:                      # +HH:MM
            om = two(buf + i + 1)
            i += 3
        elif size - i >= 2 and digit(buf[i]) >= 0:              # +HHMM
            om = two(buf + i)
            i += 2
        if oh < 0 or oh > 18 or om < 0 or om > 59:
            return -1
        off = (oh * 3600 + om * 60) * NS
        if buf[k] == 45:
            off = -off
    secs = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss
    ns = secs * NS + frac - off
    if ns < 0 or ns >= max_ns:
        return -1
    out[0] = ns
    return i


cdef inline const unsigned char* digit_run(const unsigned char* p, const unsigned char* end,
                                           uint64_t* acc) noexcept nogil:
    """Accumulate the decimal digits at ``p`` into ``acc``; the first non-digit."""
    cdef unsigned int c
    while p < end:
        c = <unsigned int>p[0] - 48
        if c > 9:
            break
        acc[0] = acc[0] * 10 + c
        p += 1
    return p


cdef inline Py_ssize_t num_at(const unsigned char* buf, Py_ssize_t i, Py_ssize_t size,
                              double* out) noexcept nogil:
    """Read ``-?D+(.D+)?`` at ``buf[i]``: the position just after it, or -1."""
    cdef const unsigned char* p = buf + i
    cdef const unsigned char* end = buf + size
    cdef const unsigned char* first
    cdef uint64_t m = 0, f = 0
    cdef Py_ssize_t digits, after = 0
    cdef bint neg = False
    cdef double v
    if p < end and p[0] == 45:                                  # -
        neg = True
        p += 1
    first = p
    p = digit_run(p, end, &m)
    digits = p - first
    if digits == 0 or digits > 18:
        return -1
    if p < end and p[0] == 46:                                  # .
        p += 1
        first = p
        p = digit_run(p, end, &f)
        after = p - first
        if after == 0 or digits + after > 18:
            return -1
        m = m * <uint64_t>POW10_INT[after] + f
    if m > MAX_MANTISSA:
        return -1
    v = <double>m
    if after:
        v = v / POW10[after]
    out[0] = -v if neg else v
    return p - buf


cdef Py_ssize_t scan_c(const unsigned char* buf, Py_ssize_t size, Py_ssize_t pos,
                       const int* role, Py_ssize_t ncols, int64_t naive_offset_ns,
                       int64_t max_ns, int64_t* ts, double* vals, Py_ssize_t cap) noexcept nogil:
    """Rows read into ``ts`` / ``vals`` (row-major ``(number columns, cap)``), or -1."""
    cdef Py_ssize_t row = 0, col, start
    cdef int r
    cdef unsigned char c
    while pos < size:
        if row == cap:
            return -1
        col = 0
        while True:
            r = role[col]
            if r >= 0:
                pos = num_at(buf, pos, size, vals + r * cap + row)
            elif r == TIMESTAMP:
                pos = ts_at(buf, pos, size, naive_offset_ns, max_ns, ts + row)
            else:
                start = pos
                while pos < size:
                    c = buf[pos]
                    if c == 44 or c == 10 or c == 13 or c == 34 or c >= 128:   # , \n \r " non-ASCII
                        break
                    pos += 1
                if pos - start > MAX_OTHER:
                    return -1
            if pos < 0:
                return -1
            col += 1
            if pos == size:
                break
            c = buf[pos]
            if c == 44:                                          # ,
                if col == ncols:
                    return -1
                pos += 1
                continue
            if c == 13:                                          # only as \r\n
                if pos + 1 >= size or buf[pos + 1] != 10:
                    return -1
                pos += 1
            elif c != 10:
                return -1
            pos += 1                                             # past \n
            break
        if col != ncols:
            return -1
        row += 1
    return row


def scan_csv(const unsigned char[::1] raw, Py_ssize_t body, roles, Py_ssize_t n_numbers,
             int64_t naive_offset_ns, int64_t max_ns):
    """``(ts, values)`` -- int64 ns and float64 ``(n_numbers, rows)`` -- from the
    records of ``raw`` starting at byte ``body`` (just past the header line), or
    None if any record is not in the plain form this module accepts.

    ``roles`` has one int per header column: -1 the timestamp, k >= 0 the k-th
    number column, -2 a column that is not read."""
    cdef Py_ssize_t size = raw.shape[0]
    cdef Py_ssize_t ncols = len(roles), cap = 0, rows, i
    cdef int[::1] role = np.asarray(roles, dtype=np.intc)
    if body < 0 or body > size or ncols == 0:
        return None
    for r in roles:                     # a role past the number columns would write past vals
        if not -2 <= r < n_numbers:
            raise ValueError(f"roles must be -2, -1 or a number column in [0, {n_numbers}), "
                             f"got {r!r}")
    cdef const unsigned char* b = &raw[0] if size else NULL
    with nogil:
        for i in range(body, size):
            if b[i] == 10:
                cap += 1
        if size > body and b[size - 1] != 10:
            cap += 1
    cdef cnp.ndarray[int64_t, ndim=1] ts = np.empty(cap, np.int64)
    cdef cnp.ndarray[double, ndim=2] vals = np.empty((n_numbers, cap), np.float64)
    if cap == 0:
        return ts, vals
    cdef const int* rp = &role[0]
    cdef int64_t* tp = <int64_t*>ts.data
    cdef double* vp = <double*>vals.data
    with nogil:
        rows = scan_c(b, size, body, rp, ncols, naive_offset_ns, max_ns, tp, vp, cap)
    if rows != cap:
        return None
    return ts, vals
