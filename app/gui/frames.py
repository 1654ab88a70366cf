"""Background decoding of a series' frames, nearest-to-the-current-slice first.

One :class:`FrameProvider` per :class:`~app.gui.series.SeriesData` (shared by every viewport
showing it). The GUI asks for a frame with :meth:`FrameProvider.frame`; a cached frame returns at
once, a missing one is queued and announced later by ``frame_ready(index)``. Decoding runs as a
plain function on the thread pool (:mod:`app.gui.workers`), so the GUI thread never reads files
or decodes.
"""

from __future__ import annotations

import logging
import threading
import weakref

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.gui.errors import user_message
from app.gui.series import SeriesData
from app.gui.workers import Worker, run_in_background

log = logging.getLogger(__name__)

_PROVIDERS: "weakref.WeakValueDictionary[str, FrameProvider]" = weakref.WeakValueDictionary()


class FrameProvider(QObject):
    """Decodes and caches the frames of one series on a worker thread.

    Signals
    -------
    frame_ready(int)
        A frame was decoded and is in the cache.
    frame_failed(int, str)
        A frame cannot be decoded; the message says why.
    """

    frame_ready = Signal(int)
    frame_failed = Signal(int, str)

    def __init__(self, series: SeriesData) -> None:
        super().__init__()
        self.series = series
        self._target = 0
        self._errors: dict[int, str] = {}
        self._lock = threading.Lock()
        self._worker: Worker | None = None
        self._stopped = False

    @classmethod
    def for_series(cls, series: SeriesData) -> "FrameProvider":
        """The provider of ``series`` (created on first use; call on the GUI thread)."""
        provider = _PROVIDERS.get(series.key)
        if provider is None:
            provider = cls(series)
            _PROVIDERS[series.key] = provider
            # keep it alive as long as the series is
            series.__dict__["_provider"] = provider
        return provider

    # --- GUI thread -------------------------------------------------------------------------
    def frame(self, index: int) -> np.ndarray | None:
        """The decoded frame ``index`` or None (then it is queued, nearest first)."""
        arr = self.series.cache.get(index)
        if (arr is None or index in self.series.low_res) and index not in self._errors:
            self.request(index)
        return arr

    def error(self, index: int) -> str | None:
        """Why frame ``index`` cannot be shown, or None."""
        return self._errors.get(index)

    def request(self, index: int) -> None:
        """Make ``index`` the focus of decoding (and start the worker if idle)."""
        with self._lock:
            self._target = int(index)
        if self._worker is None and not self._stopped and self._next() is not None:
            self._worker = run_in_background(self._run, on_finished=self._on_finished)

    def stop(self) -> None:
        """Stop decoding (the series is closed)."""
        self._stopped = True
        if self._worker is not None:
            self._worker.cancel()

    @property
    def busy(self) -> bool:
        """True while frames are being decoded."""
        return self._worker is not None

    def _on_finished(self) -> None:
        self._worker = None
        if not self._stopped and self._next() is not None:
            self._worker = run_in_background(self._run, on_finished=self._on_finished)

    # --- worker thread ---------------------------------------------------------------------
    def _next(self) -> int | None:
        """The undecoded frame nearest to the focus, or None when done (or the cache is full)."""
        n = self.series.count
        with self._lock:
            target = min(max(self._target, 0), max(n - 1, 0))
        low = set(self.series.low_res)
        if target in low and target not in self._errors:
            return target  # the frame on screen is a preview: refine it first
        held = set(self.series.cache.indices()) - low
        full = self.series.cache.full()
        far = max((abs(i - target) for i in held), default=0)
        for d in range(n):
            for i in (target + d, target - d) if d else (target,):
                if 0 <= i < n and i not in held and i not in self._errors:
                    if full and d >= far:
                        return None  # would only evict something nearer
                    return i
        return None

    def _run(self, progress: object) -> None:
        check = getattr(progress, "check")
        while True:
            check()
            index = self._next()
            if index is None:
                return
            try:
                arr = self.series.decode(index)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the others
                message = user_message(exc, with_name=False)
                self._errors[index] = message
                if not self._notify(self.frame_failed, index, message):
                    return
                continue
            with self._lock:
                focus = self._target
            if index in self.series.low_res:
                self.series.cache.replace(index, arr)
                self.series.low_res.discard(index)
                self.series.reduced.pop(index, None)
            else:
                self.series.cache.put(index, arr, focus=focus)
            if not self._notify(self.frame_ready, index):
                return

    @staticmethod
    def _notify(signal: object, *args: object) -> bool:
        """Emit; False when the provider is gone (its series was closed): stop decoding."""
        try:
            signal.emit(*args)  # type: ignore[attr-defined]
        except RuntimeError:
            return False
        return True
