""" "Send to PACS" for exported outputs: a node picker, Send, and one line per refused file.

The Export dialog adds a :class:`SendToPacsBox` under its progress line and hands it the DICOM
files it wrote (SR, Encapsulated PDF, Secondary Capture) with :meth:`SendToPacsBox.set_files`.
Sending runs :func:`app.net.pacs.send` (C-STORE, or STOW-RS for a DICOMweb-only node) on the
thread pool; the outcome is a summary plus the refusals, each with its file name and the status
code's meaning. What is sent is exactly what was exported (de-identified when the export was).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.errors import user_message
from app.gui.workers import Worker, run_in_background


def send_files(node_name: str, files: list[str], *, progress: Any) -> list[Any]:
    """Send ``files`` to the saved node ``node_name`` (worker thread); one SendItem per file."""
    from app.net import pacs

    node, local = pacs.load(node_name)
    return pacs.send(node, local, files, progress=progress)


class SendToPacsBox(QGroupBox):
    """Node picker + Send for a list of exported DICOM files.

    Attributes
    ----------
    results : list of SendItem
        The outcome of the last send (empty before).
    error : str
        The sentence of the last send that failed as a whole (no association...), else "".
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Send to PACS"), parent)
        self.files: list[Path] = []
        self.results: list[Any] = []
        self.error = ""
        self._worker: Worker | None = None
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.node = QComboBox()
        self.node.setToolTip(
            self.tr(
                "The PACS node the exported DICOM files are sent to "
                "(nodes: `hilum pacs add` or the Query/Retrieve dialog)."
            )
        )
        self.send_button = QPushButton(self.tr("Send"))
        self.send_button.clicked.connect(self.send)
        row.addWidget(self.node, 1)
        row.addWidget(self.send_button)
        layout.addLayout(row)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.problems = QListWidget()  # one line per refused file
        self.problems.setVisible(False)
        layout.addWidget(self.problems)
        self.reload_nodes()
        self._update()

    def reload_nodes(self) -> None:
        """Fill the node picker from the nodes file (a small local file, as the Q/R dialog does)."""
        from app.net.nodes import NodeStore

        self.node.clear()
        try:
            store = NodeStore.load()
        except Exception as exc:  # noqa: BLE001 - shown, never raised into Qt
            self.status.setText(user_message(exc))
            return
        for name, node in store.nodes.items():
            self.node.addItem(node.describe(), name)

    def set_files(self, files: list[Path]) -> None:
        """The DICOM files that Send pushes (the export's SR, PDF and SC outputs)."""
        self.files = [Path(f) for f in files]
        self.results, self.error = [], ""
        self.problems.clear()
        self.problems.setVisible(False)
        self.status.setText("")
        self._update()

    def node_name(self) -> str:
        return str(self.node.currentData() or "")

    def _update(self) -> None:
        self.send_button.setEnabled(
            bool(self.files) and bool(self.node_name()) and self._worker is None
        )
        if not self.node.count():
            self.status.setText(self.tr("No PACS node yet: add one with `hilum pacs add`."))
        elif not self.files and not self.status.text():
            self.status.setText(self.tr("Export as DICOM first; then the files can be sent."))

    def send(self) -> None:
        """Send the files to the chosen node on the thread pool."""
        if not self.files or not self.node_name() or self._worker is not None:
            return
        name = self.node_name()
        self.results, self.error = [], ""
        self.problems.clear()
        self.problems.setVisible(False)
        self.status.setText(
            self.tr("Sending %1 file(s) to %2...")
            .replace("%1", str(len(self.files)))
            .replace("%2", name)
        )
        self._worker = run_in_background(
            send_files,
            name,
            [str(f) for f in self.files],
            on_result=lambda items: self._done(name, items),
            on_error=self._failed,
            on_progress=self._progress,
            on_finished=self._finished,
        )
        self._update()

    def _progress(self, done: int, total: int | None, message: str) -> None:
        if message:
            self.status.setText(message)

    def _done(self, name: str, items: list[Any]) -> None:
        self.results = list(items)
        sent = sum(1 for i in items if i.ok)
        self.status.setText(
            self.tr("Sent %1 of %2 file(s) to %3.")
            .replace("%1", str(sent))
            .replace("%2", str(len(items)))
            .replace("%3", name)
        )
        refused = [f"{Path(i.path).name}: {i.message}" for i in items if not i.ok]
        self.problems.addItems(refused)
        self.problems.setVisible(bool(refused))

    def _failed(self, exc: BaseException) -> None:
        self.error = user_message(exc)
        self.status.setText(self.error)

    def _finished(self) -> None:
        self._worker = None
        self._update()
