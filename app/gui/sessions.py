"""The window's open studies: one :class:`~app.workflow.StudySession` per study, shared by the
panels, and a Qt bridge that re-emits a session's events on the GUI thread.

Panels are views bound to the session of the study on screen: they call its methods on workers
(:func:`app.gui.workers.run_in_background`) and update themselves from its events::

    session = sessions_of(main_window).for_series(series)   # GUI thread: no I/O
    bridge = sessions_of(main_window).bridge(session)
    bridge.run.connect(panel.show_run)                      # queued onto the GUI thread
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.types import ImageRef
from app.workflow import StudySession

_EVENTS = (
    "series",
    "metadata",
    "run",
    "saliency",
    "draft_chunk",
    "draft",
    "signed_off",
    "exported",
)


class SessionBridge(QObject):
    """Qt signals mirroring one session's events (emitted from workers, delivered on the GUI
    thread because the bridge lives there)."""

    series = Signal(object)
    metadata = Signal(object)
    run = Signal(object)
    saliency = Signal(object)
    draft_chunk = Signal(object)
    draft = Signal(object)
    signed_off = Signal(object)
    exported = Signal(object)

    def __init__(self, session: StudySession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        for name in _EVENTS:
            getattr(session.events, name).connect(getattr(self, name).emit)


class Sessions(QObject):
    """The study sessions of one main window, by StudyInstanceUID."""

    def __init__(self, main_window: Any = None) -> None:
        super().__init__(main_window if isinstance(main_window, QObject) else None)
        self.main_window = main_window
        self._sessions: dict[str, StudySession] = {}
        self._bridges: dict[int, SessionBridge] = {}

    def get(self, study_uid: str) -> StudySession:
        """The session of a study (made on first use)."""
        session = self._sessions.get(study_uid)
        if session is None:
            session = self._sessions[study_uid] = StudySession(study_uid)
        return session

    def for_series(self, series: Any) -> StudySession | None:
        """The session of a displayed series (:class:`app.gui.series.SeriesData`), with the
        series' files added; None for no series."""
        if series is None:
            return None
        session = self.get(str(getattr(series, "study_uid", "") or ""))
        uid = str(getattr(series, "series_uid", "") or "")
        files = series_files(series)
        if files and session.series_files.get(uid) != files:
            session.add_series(uid, files)
        return session

    def for_image(self, ref: ImageRef | None) -> StudySession | None:
        """The session of the study an image belongs to."""
        return self.get(ref.study_uid) if ref is not None else None

    def bridge(self, session: StudySession) -> SessionBridge:
        """The Qt bridge of a session (one per session)."""
        bridge = self._bridges.get(id(session))
        if bridge is None:
            bridge = self._bridges[id(session)] = SessionBridge(session, self)
        return bridge

    def library(self) -> Any:
        """The study library (call on a worker)."""
        getter = getattr(self.main_window, "library", None)
        if callable(getter):
            return getter()
        from app.dicom.library import Library

        return Library()


def series_files(series: Any) -> list[str]:
    """Unique file paths of a displayed series, in display order."""
    seen: dict[str, None] = {}
    for fr in getattr(series, "frames", []) or []:
        path = getattr(fr, "path", "")
        if path:
            seen.setdefault(str(path), None)
    return list(seen)


def sessions_of(main_window: Any) -> Sessions:
    """The :class:`Sessions` of a main window (made on first use; a bare one without a window)."""
    found = getattr(main_window, "_hilum_sessions", None) if main_window is not None else None
    if found is None:
        found = Sessions(main_window)
        if main_window is not None:
            try:
                main_window._hilum_sessions = found
            except AttributeError:
                pass
    return found
