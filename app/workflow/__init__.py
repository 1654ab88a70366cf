"""The Qt-free study workflow: one :class:`StudySession` per open study, driven by the window
(panels are views bound to it) and by the command line (:mod:`app.workflow.batch`)."""

from app.workflow.events import Event, SessionEvents
from app.workflow.session import StudySession, read_metadata

__all__ = ["Event", "SessionEvents", "StudySession", "read_metadata"]
