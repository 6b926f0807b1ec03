"""Keep the server's resident memory within a stated bound: give freed heap memory back to the OS.

Forward passes of varying shapes (rows × padded length) allocate and free tensors of many sizes;
glibc keeps the freed chunks in its arenas (one per thread that allocated), fragmented, so a
server's resident set grows with the variety of shapes it has seen (measured: +160 to +230 MiB
over ~1,900 requests with planned passes, +380 MiB over ~1,000 with one padded batch per take,
docs/notes/serve.md). ``malloc_trim(0)`` returns every free page of every arena, but the pages
it returns are faulted in again by the next passes: trimming after every take cost ~7% of the
throughput. :class:`HeapTrimmer` therefore trims only when the resident set has grown more than
``bound_mib`` above where the last trim left it, at most once per ``min_interval_s``.
Other C libraries (musl, macOS) or no ``/proc``: a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import time


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or ``None`` where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def rss_mib() -> float | None:
    """This process's resident set size in MiB (Linux ``/proc``), ``None`` elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def trim_heap() -> bool:
    """Release free heap memory to the OS; ``True`` when the C library did (glibc)."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


class HeapTrimmer:
    """``maybe_trim()`` after each unit of work: trims when the RSS exceeds the level the last
    trim left by more than ``bound_mib`` (the first call always trims), at most once per
    ``min_interval_s``."""

    def __init__(self, bound_mib: float = 128.0, min_interval_s: float = 1.0) -> None:
        self.bound, self.min_interval = bound_mib, min_interval_s
        self.floor: float | None = None  # RSS after the last trim (MiB)
        self.trims, self._last = 0, float("-inf")
        self.enabled = _malloc_trim() is not None and rss_mib() is not None

    def maybe_trim(self) -> bool:
        """Trim if due; ``True`` when it trimmed."""
        if not self.enabled:
            return False
        rss = rss_mib()
        if self.floor is not None and rss <= self.floor + self.bound:
            return False
        now = time.monotonic()
        if now - self._last < self.min_interval:
            return False
        trim_heap()
        self.floor, self._last, self.trims = rss_mib(), now, self.trims + 1
        return True
