"""bumps.memory: freed heap memory goes back to the OS, so long evaluated trainings stay flat."""

import sys

import pytest

from bumps.memory import release_freed_memory


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 1e6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_trim_returns_freed_heap_pages():
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(-3, 16 << 20) == 1  # M_MMAP_THRESHOLD 16 MB: the blocks below come from the heap
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(1 << 20) for _ in range(400)]  # 400 MB of heap
    for b in blocks:
        ctypes.memset(b, 1, 1 << 20)
    keep = libc.malloc(1 << 10)  # a live block above them keeps the heap top from shrinking
    before = _rss_mb()
    for b in blocks:
        libc.free(b)
    freed_only = _rss_mb()
    assert release_freed_memory() is True
    after = _rss_mb()
    libc.free(keep)
    assert freed_only - after > 300 and before - after > 300
