"""The import log: one row per file that could not be read, never one dialog per file."""

from __future__ import annotations

import os
import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class ImportLog(QWidget):
    """A table of per-file problems (time, file, problem) with a Clear button.

    Signals
    -------
    changed(int)
        The number of rows.
    """

    changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels([self.tr("Time"), self.tr("File"), self.tr("Problem")])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(1, 260)
        self.summary = QLabel(self.tr("No problems."))
        clear = QPushButton(self.tr("Clear"))
        clear.clicked.connect(self.clear)
        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 2)
        top.addWidget(self.summary, 1)
        top.addWidget(clear)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addWidget(self.table)

    def add(self, path: str, message: str) -> None:
        """Add one problem."""
        row = self.table.rowCount()
        self.table.insertRow(row)
        cells = [time.strftime("%H:%M:%S"), os.path.basename(path.rstrip("/")) or path, message]
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(path if col == 1 else text)
            self.table.setItem(row, col, item)
        self.table.scrollToBottom()
        self._update()

    def add_many(self, errors: list[dict[str, str]]) -> None:
        """Add ``{"path", "error"}`` entries."""
        for e in errors:
            self.add(str(e.get("path", "")), str(e.get("error", "")))

    def entries(self) -> list[tuple[str, str]]:
        """(file tooltip path, problem) per row."""
        out = []
        for r in range(self.table.rowCount()):
            path, problem = self.table.item(r, 1), self.table.item(r, 2)
            if path is not None and problem is not None:
                out.append((path.toolTip(), problem.text()))
        return out

    def clear(self) -> None:
        """Remove every row."""
        self.table.setRowCount(0)
        self._update()

    def _update(self) -> None:
        n = self.table.rowCount()
        self.summary.setText(
            self.tr("No problems.")
            if n == 0
            else self.tr("%1 file(s) could not be loaded.").replace("%1", str(n))
        )
        self.changed.emit(n)
