"""Every process's root service tunes the garbage collector and the C heap when it starts."""

import gc
import os
import subprocess
import sys

import pytest

from bazaar.plugins.runtime import GC_THRESHOLDS, ProcessRoot


def test_a_process_root_collects_the_youngest_generation_less_often_once_started() -> None:
    before = gc.get_threshold()
    root = ProcessRoot(None, "text", "info")
    try:
        assert gc.get_threshold() == before  # made, not started: nothing changed yet
        root.startService()
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > before[0]
    finally:
        root.stopService()
        gc.set_threshold(*before)


# Run in a process of its own: malloc serves a large block from free space its heap already
# has, which depends on everything the process did before.
_LARGE_BLOCK_CHECK = """
import ctypes, sys
from bazaar.plugins.runtime import ProcessRoot

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
if not hasattr(libc, "mallinfo2"):
    sys.exit(3)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "started":
    ProcessRoot(None, "text", "info").startService()
size = 8 << 20
libc.free(libc.malloc(size))  # a mapped block freed: what raises glibc's own thresholds
mapped = libc.mallinfo2().hblks
block = libc.malloc(size)
held = libc.mallinfo2().hblks
libc.free(block)
print(held - mapped, libc.mallinfo2().hblks - mapped)
"""


def _large_block(mode: str) -> tuple[int, int]:
    """(blocks mapped on their own while a second large block is held, and after it is freed)."""
    # Without the tunables an environment may set, so that glibc adapts its thresholds itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run([sys.executable, "-c", _LARGE_BLOCK_CHECK, mode], capture_output=True, text=True,
                          timeout=60, env=env)
    if done.returncode == 3:
        pytest.skip("not glibc 2.33 or later")
    assert done.returncode == 0, done.stderr
    held, after = done.stdout.split()
    return int(held), int(after)


def test_once_started_a_large_block_is_mapped_on_its_own_even_after_one_was_freed() -> None:
    """glibc left to itself serves a large block from its heaps once a mapped one was freed,
    and keeps it there after it is freed in turn: the memory a snapshot's install left behind."""
    assert _large_block("not started") == (0, 0)  # glibc's own thresholds: the heap serves it
    assert _large_block("started") == (1, 0)  # mapped, and unmapped when freed
