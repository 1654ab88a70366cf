"""The Measurements panel: what is measured on the study, one line each, insertable into the
report draft.

It lists :func:`app.reporting.annotations.measurement_lines` for the study in the active
viewport (read from the library on a worker; refreshed when the study changes and shortly after
a measurement is drawn, moved or deleted). "Insert into report" puts the selected lines (all
when none is selected) at the cursor of the Report panel's editor, as text the reader typed.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)


def _lines(study_uid: str, library: Any, progress: Any = None) -> list[str]:
    """Worker: the measurement lines of a study."""
    from app.reporting.annotations import measurement_lines

    return measurement_lines(library(), study_uid)


class MeasurementsPanel(QWidget):
    """Measurement lines of the current study and an Insert-into-report button."""

    def __init__(self, main_window: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.main_window = main_window
        self.study_uid = ""
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.refresh_button = QPushButton(self.tr("Refresh"))
        self.insert_button = QPushButton(self.tr("Insert into report"))
        row = QHBoxLayout()
        row.addWidget(self.refresh_button)
        row.addWidget(self.insert_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list, 1)
        lay.addLayout(row)
        lay.addWidget(self.state)
        self.refresh_button.clicked.connect(self.refresh)
        self.insert_button.clicked.connect(self.insert_into_report)
        # measurements are stored on a background thread: refresh a moment after a change
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(700)
        self.timer.timeout.connect(self.refresh)

    def set_study(self, study_uid: str) -> None:
        self.study_uid = study_uid or ""
        self.refresh()

    def refresh(self) -> None:
        if not self.study_uid or self.main_window is None:
            self.show_lines([])
            return
        study = self.study_uid
        self.main_window.run_in_background(
            _lines,
            study,
            self.main_window.library,
            on_result=lambda lines: self.show_lines(lines) if study == self.study_uid else None,
            on_error=lambda exc: log.warning("measurements not listed: %s", type(exc).__name__),
        )

    def show_lines(self, lines: list[str]) -> None:
        self.list.clear()
        self.list.addItems(lines)
        self.state.setText("" if lines else self.tr("No measurements on this study yet."))
        self.insert_button.setEnabled(bool(lines))

    def lines(self) -> list[str]:
        """The selected lines, or all of them when none is selected."""
        chosen = [i.text() for i in self.list.selectedItems()]
        return chosen or [self.list.item(i).text() for i in range(self.list.count())]

    def insert_into_report(self) -> bool:
        """Insert the lines at the Report editor's cursor; False when there is no Report panel."""
        from app.gui.panels.report import ReportPanel

        panels = self.main_window.findChildren(ReportPanel) if self.main_window else []
        lines = self.lines()
        if not panels or not lines:
            return False
        report = panels[0]
        cur = report.editor.textCursor()
        before = report.editor.toPlainText()[max(0, cur.position() - 1) : cur.position()]
        text = ("" if not cur.position() or before == "\n" else "\n") + "\n".join(lines) + "\n"
        cur.insertText(text, report._ai_format(False))  # typed by the reader, not AI text
        report.editor.setFocus()
        return True


def create_panel(main_window: Any) -> QDockWidget:
    """The Measurements dock."""
    dock = QDockWidget(QCoreApplication.translate("MeasurementsPanel", "Measurements"), main_window)
    dock.setObjectName("panel_measurements")
    panel = MeasurementsPanel(main_window, dock)
    dock.setWidget(panel)
    main_window.study_changed.connect(panel.set_study)
    for vp in getattr(getattr(main_window, "grid", None), "viewports", []):
        vp.measurements_changed.connect(panel.timer.start)
    return dock
