"""Helpers shared by the GUI tests: waiting for frames, synthetic mouse drags and wheels."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication


def wait_frame(qtbot: Any, viewport: Any, index: int | None = None, timeout: int = 30000) -> None:
    """Wait until the viewport shows a decoded frame (``index``, default: its current one)."""

    def ready() -> bool:
        want = viewport.index if index is None else index
        return (
            viewport.frame is not None
            and viewport.index == want
            and viewport._shown_key is not None
            and viewport._shown_key[1] == want
        )

    qtbot.waitUntil(ready, timeout=timeout)


def _send(
    widget: Any,
    kind: QEvent.Type,
    pos: QPointF,
    button: Qt.MouseButton,
    buttons: Qt.MouseButton,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    glob = QPointF(widget.mapToGlobal(pos.toPoint()))
    ev = QMouseEvent(kind, pos, glob, button, buttons, modifiers)
    QApplication.sendEvent(widget, ev)


def drag(
    viewport: Any,
    start: QPointF,
    end: QPointF,
    button: Qt.MouseButton = Qt.MouseButton.LeftButton,
    steps: int = 8,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """Press at ``start``, move in steps to ``end``, release (positions in the view's viewport widget)."""
    w = viewport.view.viewport()
    _send(w, QEvent.Type.MouseButtonPress, start, button, button, modifiers)
    for i in range(1, steps + 1):
        t = i / steps
        p = QPointF(start.x() + (end.x() - start.x()) * t, start.y() + (end.y() - start.y()) * t)
        _send(w, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button, modifiers)
    _send(w, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton, modifiers)
    QApplication.processEvents()


def click(viewport: Any, pos: QPointF, button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
    """A click at ``pos`` (view viewport coordinates)."""
    w = viewport.view.viewport()
    _send(w, QEvent.Type.MouseButtonPress, pos, button, button)
    _send(w, QEvent.Type.MouseButtonRelease, pos, button, Qt.MouseButton.NoButton)
    QApplication.processEvents()


def wheel(
    viewport: Any,
    pos: QPointF,
    notches: int,
    modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    """Wheel ``notches`` (positive: away from the user) at ``pos``."""
    w = viewport.view.viewport()
    glob = QPointF(w.mapToGlobal(pos.toPoint()))
    ev = QWheelEvent(
        pos,
        glob,
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(w, ev)
    QApplication.processEvents()
