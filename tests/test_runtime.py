"""bumps.runtime: freed heap memory goes back to the OS, so long evaluated trainings stay flat."""

import subprocess
import sys
import textwrap

import pytest

# In a fresh interpreter (the suite's earlier allocations would shape the heap): 400 MB of 1 MB
# blocks from the heap, a live block above them, all freed. Prints the RSS drop from freeing alone
# and from freeing plus release_freed_memory().
SCRIPT = textwrap.dedent("""
    import ctypes
    from bumps.runtime import release_freed_memory

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096 / 1e6

    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(-3, 16 << 20) == 1  # M_MMAP_THRESHOLD 16 MB: the blocks come from the heap
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(1 << 20) for _ in range(400)]
    for b in blocks:
        ctypes.memset(b, 1, 1 << 20)
    keep = libc.malloc(1 << 10)
    before = rss()
    for b in blocks:
        libc.free(b)
    freed_only = rss()
    assert release_freed_memory() is True
    print(before - freed_only, before - rss())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_trim_returns_freed_heap_pages():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    drop_free, drop_trim = map(float, out.stdout.split())
    assert drop_free < 100 < 300 < drop_trim  # free alone keeps the pages; the trim returns them
