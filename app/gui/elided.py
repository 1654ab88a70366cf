"""A one-line label that elides its text to the width it is given (full text in the tooltip).

Used where a long value (a UID, a series description) must never widen its dock: a plain
``QLabel`` asks for the width of its longest unbreakable word.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """A ``QLabel`` whose size hint never depends on its text's length."""

    def __init__(
        self,
        text: str = "",
        parent: QWidget | None = None,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle,
    ) -> None:
        super().__init__(text, parent)
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setToolTip(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:
        return QSize(20, self.fontMetrics().height())

    def sizeHint(self) -> QSize:
        return QSize(60, self.fontMetrics().height())

    def shown_text(self) -> str:
        """The text as painted (elided to the current width)."""
        return self.fontMetrics().elidedText(
            self.text(), self._mode, max(self.contentsRect().width(), 1)
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(
            self.contentsRect(),
            int(self.alignment() | Qt.AlignmentFlag.AlignVCenter),
            self.shown_text(),
        )
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.update()
