"""Background decoding of a series' frames, nearest-to-the-current-slice first.

One :class:`FrameProvider` per :class:`~app.gui.series.SeriesData` (shared by every viewport
showing it). The GUI asks for a frame with :meth:`FrameProvider.frame`; a cached frame returns at
once, a missing one is queued and announced later by ``frame_ready(index)``. Decoding runs as a
plain function on the thread pool (:mod:`app.gui.workers`), so the GUI thread never reads files
or decodes.

One :class:`WindowedFrames` per viewport holds the decoded frames windowed to uint8 for the
viewport's window, and windows the frames around the slice on screen ahead of the scroll on a
worker, so a slice scrolled to is painted without windowing it first.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.dicom.frame_cache import FrameCache
from app.dicom.windowing import window_to_uint8
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
        """The provider of ``series`` (created on first use; call on the GUI thread). A provider
        stopped when a window showing the series closed decodes again: the series is shown."""
        provider = _PROVIDERS.get(series.key)
        if provider is None:
            provider = cls(series)
            _PROVIDERS[series.key] = provider
            # keep it alive as long as the series is
            series.__dict__["_provider"] = provider
        provider._stopped = False
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


#: a viewport's window: centre, width, inverted
WindowState = tuple[float, float, bool]


class WindowedFrames:
    """The frames of one viewport windowed to uint8 as painted, kept and made ahead of the scroll.

    The arrays live in a :class:`~app.dicom.frame_cache.FrameCache` (least recently used first,
    ``max_bytes``) keyed by ``(series key, index, window)``, so an array made for an earlier
    window or series is never shown for the current one. :meth:`prefetch` windows the decoded
    frames nearest the slice on screen (up to ``radius`` slices either side, within half the
    budget) on one worker, with the one windowing path
    (:func:`app.dicom.windowing.window_to_uint8`): scrolling then finds each slice ready, and
    the GUI thread windows only the slice of a window/level drag or one not reached yet.
    Reduced-resolution previews (``series.low_res``) are not kept: their full decode replaces
    them.

    Thread-safe: :meth:`prefetch`, :meth:`get`, :meth:`put` and :meth:`stop` run on the GUI
    thread, the windowing on a pool thread.
    """

    def __init__(self, max_bytes: int, radius: int = 64) -> None:
        self.cache = FrameCache(max_bytes, eviction="lru")
        self.radius = int(radius)
        self._lock = threading.Lock()
        #: (series, window, focus, per-slice extra, generation) to work on, None when done
        self._job: tuple[SeriesData, WindowState, int, Callable[[int], None] | None, int] | None = (
            None
        )
        self._generation = 0
        self._running = False
        self.focus: int | None = None  # the focus of the last job asked for

    def get(self, series: SeriesData, index: int, state: WindowState) -> np.ndarray | None:
        """The windowed frame, or None when not made yet."""
        return self.cache.get((series.key, index, state))

    def put(
        self,
        series: SeriesData,
        index: int,
        state: WindowState,
        arr: np.ndarray,
        source: np.ndarray,
    ) -> None:
        """Keep ``arr``, frame ``index`` windowed from ``source``, unless ``source`` is a
        reduced-resolution preview or no longer the decoded frame (its full decode replaced it
        meanwhile: the provider puts the new array, then takes the index out of ``low_res``)."""
        if index not in series.low_res and series.cache.get(index) is source:
            self.cache.put((series.key, index, state), arr)

    def clear(self) -> None:
        """Drop every windowed frame (a new window or series: they are stale)."""
        self.cache.clear()

    def prefetch(
        self,
        series: SeriesData,
        state: WindowState,
        focus: int,
        extra: Callable[[int], None] | None = None,
    ) -> None:
        """Window the decoded frames around ``focus`` with ``state`` in the background (the
        frames already windowed are skipped; a later call replaces an unfinished job).
        ``extra(index)``, when given, runs on the worker after each frame it windows (the
        viewport renders that slice's overlay text there)."""
        with self._lock:
            self._generation += 1
            self._job = (series, state, int(focus), extra, self._generation)
            self.focus = int(focus)
            if self._running:
                return
            self._running = True
        run_in_background(self._run, reads_dicom=False)

    def stop(self) -> None:
        """Drop the job (the viewport shows another series or closes)."""
        with self._lock:
            self._job = None
            self.focus = None

    # --- worker thread ---------------------------------------------------------------------
    def _run(self, progress: object) -> None:
        try:
            self._work()
        except BaseException:
            with self._lock:
                self._running = False
            raise

    def _work(self) -> None:
        """Window frames until no job is left. The worker says it stops (``_running``) in the
        same locked step that finds nothing to do, so a job set meanwhile starts a new one."""
        done_gen, d = -1, 0
        extra_done: set[int] = set()  # the frames the job's extra ran for
        while True:
            with self._lock:
                job = self._job
                if job is None:
                    self._running = False
                    return
                series, state, focus, extra, gen = job
            if gen != done_gen:  # a new job: scan again from its focus
                done_gen, d = gen, 0
                extra_done = set()
            index, d = self._next(series, state, focus, d, extra_done if extra else None)
            if index is None:
                with self._lock:
                    if self._job is job:
                        self._job = None
                        self._running = False
                        return
                continue
            arr = series.cache.get(index)
            if arr is None or index in series.low_res:
                continue
            if (series.key, index, state) not in self.cache:
                self.put(series, index, state, window_to_uint8(arr, *state), arr)
            if extra is not None:
                extra_done.add(index)
                try:
                    extra(index)
                except Exception:  # noqa: BLE001 - the GUI thread makes it itself then
                    log.debug("per-slice extra failed", exc_info=True)

    def _next(
        self,
        series: SeriesData,
        state: WindowState,
        focus: int,
        d: int,
        extra_done: set[int] | None = None,
    ) -> tuple[int | None, int]:
        """The decoded frame nearest ``focus`` at distance ``d`` or more that is not windowed
        yet (or, with ``extra_done``, not in it), and the distance to go on from."""
        n = series.count
        first = series.cache.get(focus) if 0 <= focus < n else None
        # a windowed frame holds a byte per sample
        per_frame = max(int(first.size) if first is not None else 0, series.rows * series.columns)
        # window no more than half the budget ahead: the frames being scrolled past stay too
        radius = min(self.radius, max(1, self.cache.max_bytes // (2 * max(per_frame, 1))))
        held = self.cache
        while d <= radius:
            for i in (focus + d, focus - d) if d else (focus,):
                if (
                    0 <= i < n
                    and i not in series.low_res
                    and i in series.cache
                    and (
                        (series.key, i, state) not in held
                        or (extra_done is not None and i not in extra_done)
                    )
                ):
                    return i, d
            d += 1
        return None, d
