"""Every process's root service tunes the garbage collector and the C heap when it starts."""

import ctypes
import gc

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


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2") or not hasattr(libc, "mallopt"):
        return None
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = _MallInfo2
    return libc


def test_once_started_a_large_block_is_mapped_on_its_own_even_after_one_was_freed() -> None:
    """glibc left to itself serves a mebibyte from its heaps once a mapped mebibyte was freed,
    and keeps it there after it is freed in turn: the memory a snapshot's install left behind."""
    libc = _glibc()
    if libc is None:
        pytest.skip("not glibc 2.33 or later")
    root = ProcessRoot(None, "text", "info")
    before = gc.get_threshold()
    try:
        root.startService()
        size = 1 << 20
        libc.free(libc.malloc(size))  # a mapped block freed: what raises glibc's own thresholds
        mapped = libc.mallinfo2().hblks
        block = libc.malloc(size)
        try:
            assert block and libc.mallinfo2().hblks == mapped + 1
        finally:
            libc.free(block)
        assert libc.mallinfo2().hblks == mapped  # and unmapped when freed: nothing stays behind
    finally:
        root.stopService()
        gc.set_threshold(*before)
