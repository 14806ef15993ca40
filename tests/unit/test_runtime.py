"""Every process's root service tunes the garbage collector when it starts."""

import gc

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
