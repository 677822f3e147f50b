"""The bus's event record, for the compiled modules that read events (``lane.FeedIntake``)."""

cimport cython


@cython.final
cdef class Event:
    cdef readonly str type
    cdef readonly object payload
    cdef readonly long long ts_ns
    cdef readonly long long seq
