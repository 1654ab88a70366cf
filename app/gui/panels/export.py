"""Export... dialog: PDF, DICOM or both; key images; de-identify with a preview; sign-off.

The dialog collects the choices, has the study's :class:`~app.workflow.StudySession` sign off
and export (:meth:`~app.workflow.StudySession.export`, as ``hilum analyze`` does) on the thread
pool (never on the GUI thread), shows progress, and then offers to open the PDF in the system
viewer or reveal the output folder. Export stays disabled until the report is signed off: a
reader name and the sign-off box.

Integration (main window)
-------------------------
``create_panel(main_window) -> QDockWidget`` (see :mod:`app.gui.panels`): an "Export" dock
listing the key images ("Add current image" takes the active viewport's frame as displayed, with
its saliency overlay blended when one is shown) and an "Export..." button (Ctrl+E). Export reads,
on a worker, the study session's AI results (runs stored with the study adopted: ``Library.runs``) and the
source headers, takes the report from the Report panel (its dock widget's ``current_draft()``
or ``draft``) or else from a stored ``report*``/``draft*`` document, and opens
:class:`ExportDialog`. The signed-off draft is stored as ``report:signed_off``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from PySide6.QtCore import QCoreApplication, QSize, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from app.core.types import ModelResult, ReportDraft
from app.gui.errors import show_error, user_message
from app.gui.sessions import sessions_of
from app.gui.workers import Worker, run_in_background

if TYPE_CHECKING:  # pydicom, highdicom and reportlab load when an export is first used
    from pydicom.dataset import Dataset

    from app.reporting.deid import DeidChange
    from app.reporting.pdf import InstitutionHeader, KeyImage

log = logging.getLogger(__name__)

SETTINGS_GROUP = "export"


@dataclass
class ExportContext:
    """What the main window hands to the Export dialog."""

    draft: ReportDraft
    results: list[ModelResult] = field(default_factory=list)
    source_datasets: list[Dataset] = field(default_factory=list)
    key_images: list[KeyImage] = field(default_factory=list)
    # called with the signed-off draft so the report panel / library can store the sign-off
    on_signed_off: Callable[[ReportDraft], None] | None = None
    # the study's session: sign-off and export are its methods (a transient one when None)
    session: Any = None


def _session_export(
    context: ExportContext,
    reader: str,
    when: str,
    out_dir: Path,
    *,
    pdf: bool,
    dicom: bool,
    deidentify: bool,
    key_images: list[KeyImage],
    header: InstitutionHeader,
    pixels_reviewed: bool = False,
    progress: Any = None,
) -> tuple[list[Path], ReportDraft]:
    """Worker: the study session signs the draft off and exports it (the same
    :meth:`~app.workflow.StudySession.export` as ``hilum analyze --pdf --dicom-export``)."""
    from app.workflow import StudySession

    session = context.session or StudySession(context.draft.study_uid)
    draft = context.draft
    measurements: list[str] = []
    try:  # the study's stored measurements (PDF MEASUREMENTS section)
        from app.dicom.library import Library
        from app.reporting.annotations import measurement_lines

        measurements = measurement_lines(Library(), draft.study_uid)
    except Exception as exc:  # noqa: BLE001 - the report is exported without them
        log.warning("measurements unavailable: %s", type(exc).__name__)
    session.set_draft(draft)
    signed = (
        draft
        if draft.signed_off and draft.reader_name == reader
        else session.sign_off(reader, when)
    )
    if signed is draft:
        session.set_draft(draft)
    files = session.export(
        out_dir,
        pdf=pdf,
        dicom=dicom,
        deidentify=deidentify,
        key_images=key_images,
        header=header,
        sources=list(context.source_datasets),
        progress=progress,
        pixels_reviewed=pixels_reviewed,
        measurements=measurements,
        results=None if context.session is not None else list(context.results),
    )
    return files, signed


def _qimage(arr: np.ndarray) -> QImage:
    a = np.ascontiguousarray(arr)
    if a.ndim == 2:
        img = QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format.Format_RGB888)
    return img.copy()  # own the pixels: ``a`` may be freed


def _settings() -> Any:
    from app.gui.settings import qsettings

    return qsettings()


class DeidPreviewDialog(QDialog):
    """A table of what de-identification will remove or replace."""

    def __init__(self, changes: Sequence[DeidChange], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("De-identification preview"))
        self.resize(760, 480)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                self.tr(
                    "PS3.15 Basic Application Level Confidentiality Profile. These attributes of the "
                    "source images will be removed or replaced in every exported object; the source "
                    "files are not changed. Identifiers found in the report text are replaced with "
                    "[removed]."
                )
            )
        )
        self.table = QTableWidget(len(changes), 5, self)
        self.table.setHorizontalHeaderLabels(
            [
                self.tr("Tag"),
                self.tr("Attribute"),
                self.tr("Action"),
                self.tr("Current value"),
                self.tr("New value"),
            ]
        )
        for row, c in enumerate(changes):
            for col, text in enumerate((c.tag, c.keyword, c.action, c.old, c.new)):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, col, item)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class ExportDialog(QDialog):
    """Export a report as PDF and/or DICOM.

    Parameters
    ----------
    context : ExportContext
        The report, AI results, source headers and candidate key images.
    parent : QWidget, optional
        Parent window.
    """

    def __init__(self, context: ExportContext, parent: QWidget | None = None) -> None:
        """Long because it builds the dialog's widget tree."""
        super().__init__(parent)
        self.context = context
        self.files: list[Path] = []
        self._worker: Worker | None = None
        self.setWindowTitle(self.tr("Export report"))
        self.setMinimumWidth(560)
        store = _settings()
        layout = QVBoxLayout(self)

        # what
        what = QGroupBox(self.tr("Export as"))
        row = QHBoxLayout(what)
        self.pdf_box = QCheckBox(self.tr("PDF"))
        self.dicom_box = QCheckBox(self.tr("DICOM (SR, encapsulated PDF, saliency images)"))
        self.pdf_box.setChecked(_bool(store.value(f"{SETTINGS_GROUP}/pdf", True)))
        self.dicom_box.setChecked(_bool(store.value(f"{SETTINGS_GROUP}/dicom", True)))
        row.addWidget(self.pdf_box)
        row.addWidget(self.dicom_box)
        layout.addWidget(what)

        # key images
        keys = QGroupBox(self.tr("Key images"))
        kl = QVBoxLayout(keys)
        self.key_list = QListWidget()
        self.key_list.setIconSize(QSize(72, 72))
        self.overlay_boxes: list[QCheckBox] = []
        for n, ki in enumerate(context.key_images, 1):
            item = QListWidgetItem(
                QIcon(QPixmap.fromImage(_qimage(ki.shown()))),
                ki.caption or self.tr("Image %1").replace("%1", str(n)),
            )
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.key_list.addItem(item)
        kl.addWidget(self.key_list)
        self.overlay_box = QCheckBox(self.tr("Print the saliency overlay and its legend"))
        self.overlay_box.setChecked(True)
        self.overlay_box.setEnabled(any(k.overlay is not None for k in context.key_images))
        kl.addWidget(self.overlay_box)
        if not context.key_images:
            kl.addWidget(QLabel(self.tr("No key images chosen.")))
        layout.addWidget(keys)

        # privacy
        privacy = QGroupBox(self.tr("Privacy"))
        pl = QHBoxLayout(privacy)
        self.deid_box = QCheckBox(self.tr("De-identify (PS3.15 Basic Profile)"))
        self.preview_button = QPushButton(self.tr("Preview..."))
        self.preview_button.clicked.connect(self.show_preview)
        pl.addWidget(self.deid_box)
        # burned-in text cannot be removed from pixels: de-identified key images need the source
        # to say Burned In Annotation NO, or the reader's confirmation after looking at them
        self.pixels_reviewed_box = QCheckBox(
            self.tr("I looked at the key images: no identifying text in the pixels")
        )
        pl.addWidget(self.pixels_reviewed_box)
        pl.addStretch(1)
        pl.addWidget(self.preview_button)
        layout.addWidget(privacy)

        # letterhead
        head = QGroupBox(self.tr("Institution"))
        hf = QFormLayout(head)
        self.inst_name = QLineEdit(str(store.value(f"{SETTINGS_GROUP}/institution_name", "")))
        self.inst_address = QPlainTextEdit(
            str(store.value(f"{SETTINGS_GROUP}/institution_address", ""))
        )
        self.inst_address.setFixedHeight(48)
        self.inst_logo = QLineEdit(str(store.value(f"{SETTINGS_GROUP}/institution_logo", "")))
        logo_button = QPushButton(self.tr("Browse..."))
        logo_button.clicked.connect(self._browse_logo)
        logo_row = QHBoxLayout()
        logo_row.addWidget(self.inst_logo)
        logo_row.addWidget(logo_button)
        hf.addRow(self.tr("Name"), self.inst_name)
        hf.addRow(self.tr("Address"), self.inst_address)
        hf.addRow(self.tr("Logo"), logo_row)
        layout.addWidget(head)

        # sign-off
        sign = QGroupBox(self.tr("Sign-off"))
        sf = QFormLayout(sign)
        self.reader = QLineEdit(
            context.draft.reader_name or str(store.value(f"{SETTINGS_GROUP}/reader_name", ""))
        )
        self.reader.setPlaceholderText(self.tr("Reader name (required)"))
        self.sign_box = QCheckBox(self.tr("I have reviewed this report and sign it off"))
        self.sign_box.setChecked(context.draft.signed_off)
        sf.addRow(self.tr("Reader"), self.reader)
        sf.addRow(self.sign_box)
        layout.addWidget(sign)

        # where
        where = QHBoxLayout()
        default_out = str(store.value(f"{SETTINGS_GROUP}/out_dir", "")) or str(
            Path.home() / "Hilum exports"
        )
        self.out_dir = QLineEdit(default_out)
        browse = QPushButton(self.tr("Folder..."))
        browse.clicked.connect(self._browse_out)
        where.addWidget(QLabel(self.tr("Save to")))
        where.addWidget(self.out_dir, 1)
        where.addWidget(browse)
        layout.addLayout(where)

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        from app.gui.pacs_send import SendToPacsBox  # "Send to PACS": the exported DICOM files

        self.pacs_send = SendToPacsBox(self)
        layout.addWidget(self.pacs_send)

        # buttons
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton(
            self.tr("Export"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.open_pdf_button = self.buttons.addButton(
            self.tr("Open PDF"), QDialogButtonBox.ButtonRole.ActionRole
        )
        self.reveal_button = self.buttons.addButton(
            self.tr("Show folder"), QDialogButtonBox.ButtonRole.ActionRole
        )
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.open_pdf_button.setVisible(False)
        self.reveal_button.setVisible(False)
        self.export_button.clicked.connect(self.start_export)
        self.open_pdf_button.clicked.connect(self.open_pdf)
        self.reveal_button.clicked.connect(self.reveal_folder)
        self.close_button.clicked.connect(self._close)
        layout.addWidget(self.buttons)

        for w in (self.pdf_box, self.dicom_box, self.sign_box):
            w.toggled.connect(self._update_enabled)
        self.reader.textChanged.connect(self._update_enabled)
        self._update_enabled()

    # -- state -------------------------------------------------------------------------------------
    def can_export(self) -> bool:
        """Export needs an output type, a source image, a reader name and the sign-off box."""
        return (
            bool(self.reader.text().strip())
            and self.sign_box.isChecked()
            and (self.pdf_box.isChecked() or self.dicom_box.isChecked())
            and bool(self.context.source_datasets)
            and self._worker is None
        )

    def _update_enabled(self, *_: Any) -> None:
        self.export_button.setEnabled(self.can_export())
        if not self.reader.text().strip() or not self.sign_box.isChecked():
            self.status.setText(self.tr("Sign off the report (reader name) to export it."))
        elif not self.context.source_datasets:
            self.status.setText(self.tr("No source images: open the study first."))
        elif self._worker is None and not self.files:
            self.status.setText("")

    def chosen_key_images(self) -> list[KeyImage]:
        """The checked key images, with the overlay choice applied."""
        chosen = []
        for row, ki in enumerate(self.context.key_images):
            if self.key_list.item(row).checkState() == Qt.CheckState.Checked:
                chosen.append(dataclasses.replace(ki, use_overlay=self.overlay_box.isChecked()))
        return chosen

    def signed_draft(self) -> ReportDraft:
        """The draft with the reader's sign-off (time of this export if not signed before)."""
        draft = self.context.draft
        name = self.reader.text().strip()
        if draft.signed_off and draft.reader_name == name:
            return draft
        return draft.sign_off(name, _dt.datetime.now(_dt.timezone.utc).astimezone())

    def header(self) -> InstitutionHeader:
        from app.reporting.pdf import InstitutionHeader

        return InstitutionHeader(
            self.inst_name.text().strip(),
            self.inst_address.toPlainText().strip(),
            self.inst_logo.text().strip(),
        )

    # -- actions -----------------------------------------------------------------------------------
    def _browse_logo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Logo"), "", self.tr("Images (*.png *.jpg *.jpeg)")
        )
        if path:
            self.inst_logo.setText(path)

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Save to"), self.out_dir.text())
        if path:
            self.out_dir.setText(path)

    def show_preview(self) -> None:
        """Compute the de-identification preview off the GUI thread, then show it."""
        self.preview_button.setEnabled(False)

        def done(changes: list[DeidChange]) -> None:
            self.preview_button.setEnabled(True)
            self.preview_dialog = DeidPreviewDialog(changes, self)
            self.preview_dialog.show()

        def failed(exc: BaseException) -> None:
            self.preview_button.setEnabled(True)
            show_error(self, exc)

        run_in_background(
            _preview_task, list(self.context.source_datasets), on_result=done, on_error=failed
        )

    def start_export(self) -> None:
        """Run the export on the thread pool, after the sign-off check (issue 16).

        The signed text is compared with the AI results; each discrepancy ("AI flagged X (0.91);
        your report does not mention it") is shown, and the reader either acknowledges them all
        (stored with the signed report and written to the SR) or goes back to edit the text.
        """
        if not self.can_export():
            return
        from app.reporting.signoff import acknowledge, compare

        draft = self.context.draft
        results = (
            self.context.session.model_results()
            if self.context.session is not None
            else list(self.context.results)
        )
        found = compare(f"FINDINGS: {draft.findings}\nIMPRESSION: {draft.impression}", results)
        if found and not draft.acknowledgements:
            box = QMessageBox(
                QMessageBox.Icon.Warning,
                self.tr("Sign-off check"),
                self.tr("The report differs from the AI results:")
                + "\n\n"
                + "\n".join(f"\u2022 {d.message}" for d in found),
                parent=self,
            )
            box.setObjectName("SignOffCheck")
            ack = box.addButton(self.tr("Acknowledge and sign"), QMessageBox.ButtonRole.AcceptRole)
            box.addButton(self.tr("Edit the report"), QMessageBox.ButtonRole.RejectRole)
            self.ack_box = box

            def chosen(button: Any) -> None:
                if button is ack:
                    self.context.draft = dataclasses.replace(
                        self.context.draft,
                        acknowledgements=acknowledge(found, self.reader.text().strip()),
                    )
                    self.start_export()
                else:
                    self.status.setText(
                        self.tr("Edit the report in the Report panel, then export again.")
                    )

            box.buttonClicked.connect(chosen)
            box.open()
            return
        reader = self.reader.text().strip()
        when = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
        out_dir = Path(self.out_dir.text().strip() or ".").expanduser()
        self._save_choices()
        self.files = []
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText(self.tr("Exporting..."))
        self.open_pdf_button.setVisible(False)
        self.reveal_button.setVisible(False)
        self._worker = run_in_background(
            _session_export,
            self.context,
            reader,
            when,
            out_dir,
            pdf=self.pdf_box.isChecked(),
            dicom=self.dicom_box.isChecked(),
            deidentify=self.deid_box.isChecked(),
            key_images=self.chosen_key_images(),
            header=self.header(),
            pixels_reviewed=self.pixels_reviewed_box.isChecked(),
            on_result=lambda value: self._done(*value),
            on_error=self._failed,
            on_progress=self._progress,
            on_finished=self._finished,
        )
        self._update_enabled()

    def _progress(self, done: int, total: int | None, message: str) -> None:
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(int(done))
        if message:
            self.status.setText(message)

    def _done(self, files: list[Path], draft: ReportDraft) -> None:
        self.files = list(files)
        self.pacs_send.set_files([f for f in self.files if f.suffix == ".dcm"])
        if self.context.on_signed_off is not None:
            self.context.on_signed_off(draft)
        self.context.draft = draft
        n_dcm = sum(1 for f in self.files if f.suffix == ".dcm")
        pdf = self.pdf_path()
        text = self.tr("Exported %1 DICOM file(s)").replace("%1", str(n_dcm))
        if pdf is not None:
            text += self.tr(" and the PDF")
        self.status.setText(text + self.tr(" to %1.").replace("%1", str(self.files[0].parent)))
        self.open_pdf_button.setVisible(pdf is not None)
        self.reveal_button.setVisible(bool(self.files))

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(user_message(exc))
        show_error(self, exc, self.tr("Export failed"))

    def _finished(self) -> None:
        self._worker = None
        self.progress.setVisible(False)
        self._update_enabled()

    def pdf_path(self) -> Path | None:
        """The exported PDF, if any."""
        return next((f for f in self.files if f.suffix == ".pdf"), None)

    def open_pdf(self) -> None:
        """Open the PDF in the system viewer."""
        pdf = self.pdf_path()
        if pdf is not None and not QDesktopServices.openUrl(QUrl.fromLocalFile(str(pdf))):
            self._no_handler(
                self.tr(
                    "No application on this desktop opens PDF files. The report is at %1."
                ).replace("%1", str(pdf))
            )

    def reveal_folder(self) -> None:
        """Show the output folder in the system file manager."""
        if self.files and not QDesktopServices.openUrl(
            QUrl.fromLocalFile(str(self.files[0].parent))
        ):
            self._no_handler(
                self.tr(
                    "This desktop has no file manager to show the folder. The files are in %1."
                ).replace("%1", str(self.files[0].parent))
            )

    def _no_handler(self, text: str) -> None:
        """The desktop could not open it: say so, and where the files are (selectable)."""
        self.status.setText(text)
        box = QMessageBox(
            QMessageBox.Icon.Information,
            self.tr("Export"),
            text,
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.no_handler_box = box  # tests read the message here
        box.open()

    def _save_choices(self) -> None:
        store = _settings()
        store.setValue(f"{SETTINGS_GROUP}/pdf", self.pdf_box.isChecked())
        store.setValue(f"{SETTINGS_GROUP}/dicom", self.dicom_box.isChecked())
        store.setValue(f"{SETTINGS_GROUP}/institution_name", self.inst_name.text())
        store.setValue(f"{SETTINGS_GROUP}/institution_address", self.inst_address.toPlainText())
        store.setValue(f"{SETTINGS_GROUP}/institution_logo", self.inst_logo.text())
        store.setValue(f"{SETTINGS_GROUP}/reader_name", self.reader.text().strip())
        store.setValue(f"{SETTINGS_GROUP}/out_dir", self.out_dir.text())
        store.sync()

    def _close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self.reject()


def _preview_task(datasets: list[Dataset], progress: Any = None) -> list[DeidChange]:
    from app.reporting.export import preview_deidentification

    return preview_deidentification(datasets)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def open_export_dialog(parent: QWidget | None, context: ExportContext) -> ExportDialog:
    """Show the Export dialog (non-modal) and return it."""
    dialog = ExportDialog(context, parent)
    dialog.show()
    return dialog


# --- the Export dock ----------------------------------------------------------------------------
def display_of_viewport(vp: Any) -> np.ndarray | None:
    """The active frame as the reader sees it (window and invert applied), uint8."""
    shown = vp.displayed_image()
    return None if shown is None else np.ascontiguousarray(shown)


def _saliency_colormap(main_window: Any) -> str:
    """The colour map the Saliency panel renders the overlay with ('' when unknown)."""
    dock = getattr(main_window, "panels", {}).get("saliency")
    combo = getattr(dock.widget() if dock is not None else None, "colormap", None)
    try:
        return str(combo.currentText()) if combo is not None else ""
    except (AttributeError, RuntimeError):
        return ""


def _legend_bar(colormap: str) -> np.ndarray | None:
    """The colour bar printed beside the legend (None for an unknown colour map)."""
    from app.saliency.overlay import legend_image

    try:
        return legend_image(colormap, height=128, width=40)
    except ValueError:
        return None


def overlay_of_viewport(vp: Any, display: np.ndarray) -> np.ndarray | None:
    """The display with the viewport's visible overlay layer blended at its opacity, or None."""
    ov = getattr(vp, "overlay", None)
    if ov is None or getattr(vp, "_overlay_hidden", False):
        return None
    if ov.ndim == 4:
        layer = ov[vp.index]
    elif getattr(vp, "_overlay_index", vp.index) == vp.index:
        layer = ov
    else:
        return None
    if layer.shape[:2] != display.shape[:2]:
        return None
    item = getattr(vp, "overlay_item", None)
    opacity = float(item.opacity()) if item is not None else 1.0
    from app.saliency.overlay import blend_rgba

    return blend_rgba(display, layer, opacity)


def _draft_from(main_window: Any, stored: dict[str, Any], study_uid: str) -> ReportDraft | None:
    """The report draft: the Report panel's, else one stored with the study."""
    dock = getattr(main_window, "panels", {}).get("report")
    widget = dock.widget() if dock is not None else None
    for name in ("current_draft", "draft"):
        value = getattr(widget, name, None)
        value = value() if callable(value) else value
        if (
            isinstance(value, ReportDraft)
            and value.study_uid in ("", study_uid)
            and (value.findings.strip() or value.impression.strip())
        ):  # an empty editor: none
            return dataclasses.replace(value, study_uid=study_uid)
    fields = {f.name for f in dataclasses.fields(ReportDraft)}
    for key in sorted(stored, reverse=True):
        doc = stored[key]
        if (
            key.startswith(("report", "draft"))
            and isinstance(doc, dict)
            and ("findings" in doc or "impression" in doc)
        ):
            values = {k: v for k, v in doc.items() if k in fields}
            values["study_uid"] = study_uid
            return ReportDraft(**values)
    return None


def _gather(
    session: Any, get_library: Any, key_paths: list[str], current_path: str, progress: Any = None
) -> tuple[dict[str, Any], list[ModelResult], list[Dataset]]:
    """Worker: stored documents, the session's AI results (runs stored with the study adopted
    first) and the source headers of the study."""
    from app.reporting.export import read_headers

    study_uid = session.study_uid
    stored: dict[str, Any] = {}
    try:
        lib = get_library()
        stored = lib.results(study_uid)
        if not session.runs:
            session.load(lib)
    except Exception as exc:  # noqa: BLE001 - no library: export what is on screen
        log.warning("stored results unavailable: %s", type(exc).__name__)
    paths: dict[str, None] = dict.fromkeys(key_paths)
    paths.update(dict.fromkeys(session.source_paths()))
    if current_path:
        paths.setdefault(current_path, None)
    headers = read_headers([p for p in paths if p])
    return (
        stored,
        session.model_results(),
        [h for h in headers if str(h.get("StudyInstanceUID", "")) == study_uid],
    )


class ExportPanel(QWidget):
    """Key images chosen by the reader, and the Export... button."""

    def __init__(self, main_window: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.main_window = main_window
        self.key_images: list[KeyImage] = []
        self.dialog: ExportDialog | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.tr("Key images")))
        self.list = QListWidget()
        self.list.setIconSize(QSize(64, 64))
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton(self.tr("Add current image"))
        self.remove_button = QPushButton(self.tr("Remove"))
        self.add_button.clicked.connect(self.add_current_image)
        self.remove_button.clicked.connect(self.remove_selected)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        layout.addLayout(row)
        self.export_button = QPushButton(self.tr("Export..."))
        self.export_button.clicked.connect(self.export)
        layout.addWidget(self.export_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

    def _study_uid(self) -> str:
        ref = self.main_window.current_image() if self.main_window is not None else None
        if ref is not None:
            return ref.study_uid
        return (
            self.key_images[0].source.study_uid
            if self.key_images and self.key_images[0].source is not None
            else ""
        )

    def add_current_image(self) -> KeyImage | None:
        """Add the image on screen (with its saliency overlay when one is shown)."""
        mw = self.main_window
        if mw is None:
            return None
        vp = mw.active_viewport()
        ref = mw.current_image()
        display = display_of_viewport(vp)
        if ref is None or display is None:
            self.status.setText(self.tr("No image on screen."))
            return None
        if (
            self.key_images
            and self.key_images[0].source is not None
            and self.key_images[0].source.study_uid != ref.study_uid
        ):
            self.key_images.clear()
            self.list.clear()
        overlay = overlay_of_viewport(vp, display)
        n = len(self.key_images) + 1
        from app.reporting.pdf import KeyImage

        cmap = _saliency_colormap(mw) if overlay is not None else ""
        legend = ""
        if overlay is not None:
            legend = (
                self.tr("saliency map, colour map %1: bright = where the model looked").replace(
                    "%1", cmap
                )
                if cmap
                else self.tr("saliency map: bright = where the model looked")
            )
        ki = KeyImage(
            display=display,
            overlay=overlay,
            legend=legend,
            legend_image=_legend_bar(cmap) if cmap else None,
            caption=self.tr("Image %1").replace("%1", str(n)),
            source=ref,
        )
        self.key_images.append(ki)
        item = QListWidgetItem(QIcon(QPixmap.fromImage(_qimage(ki.shown()))), ki.caption)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.list.addItem(item)
        self.status.setText("")
        return ki

    def remove_selected(self) -> None:
        """Remove the selected key image."""
        row = self.list.currentRow()
        if 0 <= row < len(self.key_images):
            self.list.takeItem(row)
            del self.key_images[row]

    def _captions(self) -> list[KeyImage]:
        return [
            dataclasses.replace(ki, caption=self.list.item(i).text())
            for i, ki in enumerate(self.key_images)
        ]

    def export(self) -> None:
        """Collect the study's report, AI results and source headers (worker), then the dialog."""
        study = self._study_uid()
        if not study:
            self.status.setText(self.tr("Open a study and draft a report before exporting."))
            return
        key_images = self._captions()
        key_paths = [ki.source.path for ki in key_images if ki.source is not None]
        current = self.main_window.current_dataset_path() if self.main_window else None
        sessions = sessions_of(self.main_window)
        session = sessions.get(study)
        self.export_button.setEnabled(False)

        def done(value: tuple[dict[str, Any], list[ModelResult], list[Dataset]]) -> None:
            self.export_button.setEnabled(True)
            stored, results, headers = value
            draft = _draft_from(self.main_window, stored, study)
            if draft is None:
                self.status.setText(
                    self.tr("No report for this study yet: draft it in the Report panel first.")
                )
                return
            context = ExportContext(
                draft,
                results,
                headers,
                key_images,
                on_signed_off=lambda d: _store_signed(study, d),
                session=session,
            )
            self.dialog = open_export_dialog(self.window(), context)

        def failed(exc: BaseException) -> None:
            self.export_button.setEnabled(True)
            show_error(self, exc)

        run_in_background(
            _gather,
            session,
            sessions.library,
            key_paths,
            current or "",
            on_result=done,
            on_error=failed,
        )

    def export_context(self) -> None:
        """Alias so a main window can route its own Export... action here."""
        self.export()


def _store_signed(study_uid: str, draft: ReportDraft) -> None:
    """Keep the signed-off draft with the study (key ``report:signed_off``)."""

    def task(progress: Any = None) -> None:
        from app.dicom.library import Library

        Library().store_signed_report(draft)

    run_in_background(
        task, on_error=lambda exc: log.warning("sign-off not stored: %s", type(exc).__name__)
    )


def create_panel(main_window: Any) -> QDockWidget:
    """The Export dock: key images and the Export... button (Ctrl+E)."""
    panel = ExportPanel(main_window)
    dock = QDockWidget(QCoreApplication.translate("ExportPanel", "Export"), main_window)
    dock.setObjectName("panel_export")
    dock.setWidget(panel)
    action = QAction(QCoreApplication.translate("ExportPanel", "Export..."), dock)
    action.setShortcut(QKeySequence("Ctrl+E"))
    action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    action.triggered.connect(panel.export)
    dock.addAction(action)
    if main_window is not None and hasattr(main_window, "addAction"):
        main_window.addAction(action)
    return dock
