"""Files dropped on a text field are imported, not pasted as ``file://`` text.

Qt's text widgets accept drops of URLs and insert them as text, so a film dragged onto the
Report editor became a ``file:///...`` line in the report. :func:`forward_file_drops` makes a
widget hand drops of local files to its window's import (``open_paths``) instead; dragging plain
text inside or into the field works as before.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QAbstractScrollArea, QLineEdit, QWidget

__all__ = ["forward_file_drops", "forward_file_drops_in"]

_DRAG_EVENTS = (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop)


def _local_files(event: Any) -> list[str]:
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]


class _FileDropForwarder(QObject):
    """Event filter: drags of local files are taken over and their drop opens them."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() not in _DRAG_EVENTS:
            return False
        files = _local_files(event)
        if not files:
            return False  # plain text: the text widget handles it
        event.acceptProposedAction()  # type: ignore[attr-defined]
        if event.type() == QEvent.Type.Drop and isinstance(obj, QWidget):
            # the window's drop import (annotation objects apart) when it has one
            opener = getattr(obj.window(), "open_dropped", None) or getattr(
                obj.window(), "open_paths", None
            )
            if callable(opener):
                opener(files)
        return True


_FORWARDER: _FileDropForwarder | None = None


def forward_file_drops(widget: QWidget) -> None:
    """Make ``widget`` (and its scroll-area viewport) import dropped local files."""
    global _FORWARDER
    if _FORWARDER is None:
        _FORWARDER = _FileDropForwarder()
    targets = [widget]
    if isinstance(widget, QAbstractScrollArea):
        targets.append(widget.viewport())
    for w in targets:
        w.installEventFilter(_FORWARDER)


def forward_file_drops_in(root: QWidget) -> None:
    """:func:`forward_file_drops` on every text field under ``root`` (a panel)."""
    from PySide6.QtWidgets import QPlainTextEdit, QTextEdit

    for cls in (QTextEdit, QPlainTextEdit, QLineEdit):
        for w in root.findChildren(cls):
            forward_file_drops(w)
