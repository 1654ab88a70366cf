"""Start-up helpers shared by the command line and the GUI (no Qt here).

The reading window's start creates about a hundred thousand Python objects (modules, classes,
Qt wrappers, pydicom's dictionaries) that live as long as the process. CPython's cyclic garbage
collector runs its passes over them many times while they are being created (about 250 young
and a few full collections before the first image, 100-150 ms of CPU) and finds nothing to free.
``hilum gui`` therefore pauses the collector from the start of the process until the first image
is painted (:func:`pause_gc` in :mod:`app.cli`, :func:`resume_gc` from :mod:`app.gui.app`), which
then collects once (the few reference cycles the start-up left), freezes what is alive
(:func:`gc.freeze`) and turns collection back on. Reference counting still frees everything as
usual meanwhile; only reference cycles wait for the resumed collector.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_paused = False


def pause_gc() -> bool:
    """Pause the cyclic garbage collector for the start-up (a no-op when it is already off).

    Returns
    -------
    bool
        True when this call paused it (and :func:`resume_gc` will turn it back on).
    """
    global _paused
    with _lock:
        if _paused or not gc.isenabled():
            return False
        gc.disable()
        _paused = True
        return True


def gc_paused() -> bool:
    """True while the start-up pause of :func:`pause_gc` is in effect."""
    return _paused


def resume_gc(freeze: bool = False) -> bool:
    """End the start-up pause of :func:`pause_gc` (idempotent; a no-op when none is in effect).

    Parameters
    ----------
    freeze : bool
        Collect what the start-up left unreachable (one full collection), then move every
        object alive out of the collector's future passes (:func:`gc.freeze`): the start-up
        heap lives as long as the process.

    Returns
    -------
    bool
        True when this call ended the pause.
    """
    global _paused
    with _lock:
        if not _paused:
            return False
        _paused = False
        if freeze:
            gc.collect()
            gc.freeze()
        gc.enable()
        return True


def freeze_long_lived_heap() -> bool:
    """Take every object alive now out of the collector's full passes, once per process.

    For work that allocates fast for a while, such as a PACS transfer (tens of thousands of
    objects a second): the collector's full passes, which come every few seconds then, walk the
    whole heap (modules, pydicom's dictionaries: 15-30 ms each on the command line) and hold the
    transfer up. What is alive before it starts lives as long as the process, as the window's
    start-up heap does (:func:`resume_gc`, ``freeze_startup_heap``). A no-op when the heap is
    frozen already (the window) or the start-up pause is on.

    Returns
    -------
    bool
        True when this call froze the heap (after one collection of what was unreachable).
    """
    with _lock:
        if _paused or gc.get_freeze_count():
            return False
        gc.collect()
        gc.freeze()
        return True
