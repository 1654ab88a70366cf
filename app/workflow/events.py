"""Change callbacks of the study session: plain observer lists, no Qt.

Modelled on napari's ``EventedModel`` events: each event is an attribute of
:class:`SessionEvents` with ``connect``/``disconnect``; an emission calls every callback with one
value, in the order they were connected, on the thread that emitted. The GUI forwards them to its
thread through one Qt bridge (:mod:`app.gui.sessions`); the command line simply connects prints.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]


class Event:
    """One kind of change: a list of callbacks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()

    def connect(self, callback: Callback) -> Callback:
        """Call ``callback(value)`` on each emission; returns it (usable as a decorator)."""
        with self._lock:
            if callback not in self._callbacks:
                self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callback | None = None) -> None:
        """Stop calling ``callback`` (every callback when None)."""
        with self._lock:
            if callback is None:
                self._callbacks.clear()
            elif callback in self._callbacks:
                self._callbacks.remove(callback)

    def emit(self, value: Any = None) -> None:
        """Call every callback with ``value``; a failing callback is logged, never raised."""
        with self._lock:
            callbacks = list(self._callbacks)
        for cb in callbacks:
            try:
                cb(value)
            except Exception as exc:  # noqa: BLE001 - one broken view must not stop the session
                log.warning("a %s callback failed: %s", self.name, type(exc).__name__)

    def __len__(self) -> int:
        return len(self._callbacks)


class SessionEvents:
    """What a :class:`~app.workflow.session.StudySession` announces.

    Attributes
    ----------
    series : Event
        Series files were added (value: the series UID).
    metadata : Event
        The study's header values were read (value: :class:`~app.core.types.StudyMetadata`).
    run : Event
        An analysis finished (value: :class:`~app.core.types.AnalysisRun`).
    saliency : Event
        Saliency maps became available (value: list of :class:`~app.core.types.SaliencyOutput`).
    draft_chunk : Event
        A drafted text chunk (value: str), as it streams.
    draft : Event
        The draft changed (value: :class:`~app.core.types.ReportDraft`).
    signed_off : Event
        The draft was signed off (value: the signed :class:`ReportDraft`).
    exported : Event
        Files were exported (value: list of paths).
    """

    def __init__(self) -> None:
        for name in (
            "series",
            "metadata",
            "run",
            "saliency",
            "draft_chunk",
            "draft",
            "signed_off",
            "exported",
        ):
            setattr(self, name, Event(name))

    series: Event
    metadata: Event
    run: Event
    saliency: Event
    draft_chunk: Event
    draft: Event
    signed_off: Event
    exported: Event
