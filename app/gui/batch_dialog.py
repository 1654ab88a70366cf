"""The Batch dialog: analyse whole folders of studies (issue 18), the window's face of
``hilum analyze PATH... --out DIR [--ray auto|ADDRESS]``.

The work is :func:`app.archive.analyze_archive` on a worker thread (in this process, on a private
local Ray runtime, or on an existing Ray cluster); the dialog shows each study's state as it
finishes, the failures with their one-sentence reason, progress and a Cancel button. A rerun into
the same output folder skips the studies already done (``DIR/batch.json``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.errors import user_message
from app.gui.workers import Worker, run_in_background

log = logging.getLogger(__name__)

#: executor choices: label -> what ``ray_address`` the archive run gets ("" = an address field)
EXECUTORS = (("In this process", None), ("Ray, local runtime", "auto"), ("Ray cluster at…", ""))


def run_batch(
    paths: list[str],
    out_dir: str,
    *,
    ray_address: str | None,
    workers: int | None,
    options: dict[str, Any],
    progress: Any,
    emit: Callable[[Any], None],
) -> dict[str, Any]:
    """The worker's function: the archive run, each finished study sent to the dialog, and the Ray
    connection closed at the end (the GUI process must not keep a runtime alive)."""
    from app.archive import analyze_archive, stop_ray

    try:
        return analyze_archive(
            paths,
            out_dir,
            ray_address=ray_address,
            workers=workers,
            progress=progress,
            on_study=emit,
            **options,
        )
    finally:
        if ray_address:
            stop_ray()


class BatchDialog(QDialog):
    """Pick folders, an output folder and options; run, watch, cancel, rerun (resume)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Batch analysis"))
        self.resize(760, 560)
        self._worker: Worker | None = None
        self._rows: dict[str, int] = {}
        self.last_result: dict[str, Any] | None = None

        self.folders = QListWidget()
        self.folders.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        add, remove = QPushButton(self.tr("Add folder…")), QPushButton(self.tr("Remove"))
        add.clicked.connect(self._browse_folder)
        remove.clicked.connect(
            lambda: [
                self.folders.takeItem(self.folders.row(i)) for i in self.folders.selectedItems()
            ]
        )
        self.out_edit = QLineEdit()
        browse_out = QPushButton(self.tr("Browse…"))
        browse_out.clicked.connect(self._browse_out)
        self.saliency = QCheckBox(self.tr("Saliency maps (CAM)"))
        self.draft = QCheckBox(self.tr("Draft report text"))
        self.pdf = QCheckBox(self.tr("PDF report"))
        self.dicom_export = QCheckBox(self.tr("DICOM export (SR, SC)"))
        self.deidentify = QCheckBox(self.tr("De-identify outputs"))
        self.executor = QComboBox()
        for label, _ in EXECUTORS:
            self.executor.addItem(self.tr(label))
        self.address = QLineEdit()
        self.address.setPlaceholderText("head-node:6379")
        self.address.setEnabled(False)
        self.executor.currentIndexChanged.connect(
            lambda i: self.address.setEnabled(EXECUTORS[i][1] == "")
        )
        self.workers = QSpinBox()
        self.workers.setRange(0, 256)
        self.workers.setSpecialValueText(self.tr("all CPUs"))

        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(
            [self.tr("Study"), self.tr("State"), self.tr("Reason")]
        )
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.progress = QProgressBar()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.start_btn = QPushButton(self.tr("Start"))
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn = QPushButton(self.tr("Cancel"))
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        close = QPushButton(self.tr("Close"))
        close.clicked.connect(self.close)

        self._layout(add, remove, browse_out, close)

    def _layout(
        self, add: QPushButton, remove: QPushButton, browse_out: QPushButton, close: QPushButton
    ) -> None:
        form = QFormLayout()
        buttons = QVBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.folders, 1)
        row.addLayout(buttons)
        form.addRow(self.tr("Folders"), row)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse_out)
        form.addRow(self.tr("Output folder"), out_row)
        opts = QHBoxLayout()
        for box in (self.saliency, self.draft, self.pdf, self.dicom_export, self.deidentify):
            opts.addWidget(box)
        form.addRow(self.tr("Outputs"), opts)
        run_row = QHBoxLayout()
        run_row.addWidget(self.executor)
        run_row.addWidget(self.address, 1)
        run_row.addWidget(QLabel(self.tr("Workers")))
        run_row.addWidget(self.workers)
        form.addRow(self.tr("Run"), run_row)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        for b in (self.start_btn, self.cancel_btn, close):
            bottom.addWidget(b)
        lay.addLayout(bottom)

    # ---- inputs
    def add_folder(self, path: str) -> None:
        """Add a folder (or file) to analyse."""
        if path and not self.folders.findItems(path, Qt.MatchFlag.MatchExactly):
            self.folders.addItem(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Folder of studies"))
        self.add_folder(path)

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Output folder"))
        if path:
            self.out_edit.setText(path)

    def set_executor(self, ray_address: str | None) -> None:
        """Choose where to run: None (this process), ``auto`` or a cluster address."""
        if ray_address is None:
            self.executor.setCurrentIndex(0)
        elif ray_address == "auto":
            self.executor.setCurrentIndex(1)
        else:
            self.executor.setCurrentIndex(2)
            self.address.setText(ray_address)

    def options(self) -> dict[str, Any]:
        """The analysis options of the check boxes (as ``hilum analyze`` takes them)."""
        return {
            "saliency": "cam" if self.saliency.isChecked() else None,
            "draft": self.draft.isChecked(),
            "pdf": self.pdf.isChecked(),
            "dicom_export": self.dicom_export.isChecked(),
            "deidentify": self.deidentify.isChecked(),
        }

    # ---- run
    def start(self) -> None:
        """Start (or resume) the batch with the chosen folders, output folder and options."""
        if self.running:
            return
        paths = [self.folders.item(i).text() for i in range(self.folders.count())]
        out = self.out_edit.text().strip()
        ray_address = EXECUTORS[self.executor.currentIndex()][1]
        if ray_address == "":
            ray_address = self.address.text().strip()
            if not ray_address:
                self.status.setText(self.tr("Enter the address of the Ray cluster (host:port)."))
                return
        if not paths or not out:
            self.status.setText(self.tr("Add at least one folder and choose an output folder."))
            return
        self.table.setRowCount(0)
        self._rows.clear()
        self.last_result = None
        self.progress.setRange(0, 0)
        self.status.setText(self.tr("Starting…"))
        self.start_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self._worker = run_in_background(
            run_batch,
            paths,
            out,
            ray_address=ray_address,
            workers=self.workers.value() or None,
            options=self.options(),
            on_item=self._study_done,
            on_progress=self._on_progress,
            on_result=self._on_result,
            on_error=self._on_error,
            on_finished=self._on_finished,
        )
        self._worker.signals.cancelled.connect(lambda: self.status.setText(self.tr("Cancelled.")))

    def cancel(self) -> None:
        """Stop submitting studies and cancel the running ones (finished ones stay recorded)."""
        if self._worker is not None:
            self._worker.cancel()
            self.status.setText(self.tr("Cancelling…"))

    @property
    def running(self) -> bool:
        """Whether a batch runs now."""
        return self._worker is not None

    # ---- results (GUI thread)
    def _study_done(self, rec: dict[str, Any]) -> None:
        key = str(rec.get("study_uid", ""))
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = self.table.rowCount()
            self.table.insertRow(row)
        state = str(rec.get("status", ""))
        for col, text in enumerate((key, state, str(rec.get("error", "")))):
            self.table.setItem(row, col, QTableWidgetItem(text))

    def _on_progress(self, done: int, total: int | None, message: str) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self.status.setText(message)

    def _on_result(self, state: dict[str, Any]) -> None:
        self.last_result = state
        for rec in state.get("studies", {}).values():
            if str(rec.get("study_uid", "")) not in self._rows:
                self._study_done({**rec, "status": f"{rec.get('status', '')} (earlier run)"})
        s = state.get("summary", {})
        self.progress.setRange(0, max(1, s.get("studies", 0)))
        self.progress.setValue(s.get("studies", 0))
        text = self.tr(
            "{done} of {n} studies done, {failed} failed, {skipped} already done before."
        )
        self.status.setText(
            text.format(
                done=s.get("done", 0),
                n=s.get("studies", 0),
                failed=s.get("failed", 0),
                skipped=s.get("skipped_already_done", 0),
            )
            + (f" {s['file_errors']} file(s) not readable." if s.get("file_errors") else "")
        )

    def _on_error(self, exc: BaseException) -> None:
        self.status.setText(user_message(exc))

    def _on_finished(self) -> None:
        self._worker = None
        self.start_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.cancel()
        super().closeEvent(event)


def install(window: Any, menu: QMenu) -> QAction:
    """The main window's one hook: File ▸ Batch analysis…"""
    action = QAction(window.tr("&Batch analysis…"), window)

    def open_dialog() -> None:
        dlg = getattr(window, "_batch_dialog", None)
        if dlg is None:
            dlg = BatchDialog(window)
            window._batch_dialog = dlg
        dlg.show()
        dlg.raise_()

    action.triggered.connect(open_dialog)
    menu.addAction(action)
    return action
