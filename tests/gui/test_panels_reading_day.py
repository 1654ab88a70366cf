"""Issue 13 (a radiologist's day): AI, Saliency, Report and Export panels as a reader meets them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import generate_uid
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QMainWindow

from app.core import paths


def _copies(
    tmp: Path, numbers: list[int], study_uid: str | None = None, view: str | None = None
) -> list[str]:
    """Copies of the sample film as further instances of one series (new SOP UIDs, given numbers)."""
    out = []
    series = generate_uid()
    study = study_uid or generate_uid()
    for n in numbers:
        ds = pydicom.dcmread(paths.sample_path())
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.InstanceNumber = series, study, n
        if view is not None:
            ds.ViewPosition = view
        path = tmp / f"im{n}.dcm"
        ds.save_as(path)
        out.append(str(path))
    return out


def _series(files: list[str]) -> Any:
    from app.gui.series import FrameRef, SeriesData

    frames = []
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        frames.append(
            FrameRef(path=f, sop_uid=ds.SOPInstanceUID, instance_number=int(ds.InstanceNumber))
        )
    return SeriesData(
        frames=frames,
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        modality="CR",
        description="copies",
        monochrome1=True,
    )


def _contrast(a: QColor, b: QColor) -> float:
    def lum(c: QColor) -> float:
        def ch(v: float) -> float:
            v /= 255.0
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return 0.2126 * ch(c.red()) + 0.7152 * ch(c.green()) + 0.0722 * ch(c.blue())

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_ai_table_threshold_flag_instances_version_and_demo_banner(
    qtbot: Any, tmp_path: Path
) -> None:
    from app.gui.panels.ai import (
        COL_FLAG,
        COL_IMAGE,
        COL_THRESHOLD,
        DEMO_WORDS,
        create_panel,
    )

    win = QMainWindow()
    qtbot.addWidget(win)
    dock = create_panel(win)
    panel = dock.widget()
    win.setCentralWidget(dock)
    win.resize(360, 700)  # about the right dock's default width
    win.show()
    panel.set_series(_series(_copies(tmp_path, [3, 5])))
    qtbot.waitUntil(
        lambda: panel.registry() is not None and panel.metadata is not None, timeout=30000
    )
    panel.device.setCurrentText("cpu")
    with qtbot.waitSignal(panel.results_ready, timeout=60000):
        panel.run_button.click()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=10000)
    t = panel.table
    # one row per instance, named by its instance number
    assert t.rowCount() == 2
    assert sorted(t.item(r, COL_IMAGE).text() for r in range(2)) == ["Im 3", "Im 5"]
    # threshold and flag as columns, inside the visible table at the dock's width
    manifest = panel.registry().get("pneumonia_cnn")
    thr = manifest.raw["labels"][0]["threshold"]
    assert t.item(0, COL_THRESHOLD).text() == f"{thr:.3f}"
    # the flag may carry the reliability marker (these adult films are outside the intended use)
    assert t.item(0, COL_FLAG).text().removesuffix(" \u26a0") in ("POSITIVE", "-")
    width = t.viewport().width()
    for col in (COL_THRESHOLD, COL_FLAG):
        assert t.columnViewportPosition(col) + t.columnWidth(col) <= width
        assert t.columnWidth(col) >= t.fontMetrics().horizontalAdvance(t.item(0, col).text())
    # model version and short sha256 visible, not only in a tooltip
    assert "1.0.0" in panel.model_info.text() and manifest.sha256[:12] in panel.model_info.text()
    assert panel.model_info.isVisible()
    # the demonstration model says so in the panel (the card's words); it was used within its use
    assert panel.use_banner.isVisible() and DEMO_WORDS in panel.use_banner.text()
    assert "outside" not in panel.use_banner.text()

    # a lateral film: outside the stated use; run anyway -> an amber banner next to the result
    panel.set_series(_series(_copies(tmp_path / "..", [1], view="LL")))
    qtbot.waitUntil(lambda: panel.metadata is not None, timeout=30000)
    assert panel.models.count() == 0
    panel.show_all.setChecked(True)
    from PySide6.QtCore import Qt

    panel.models.item(0).setCheckState(Qt.CheckState.Checked)
    with qtbot.waitSignal(panel.results_ready, timeout=60000):
        panel.run_button.click()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=10000)
    assert (
        panel.use_banner.isVisible()
        and "outside its stated intended use" in panel.use_banner.text()
    )
    assert "\u26a0" in t.item(0, COL_FLAG).text()
    assert "outside stated use" in t.item(0, COL_FLAG).toolTip()


def test_saliency_map_is_smooth_and_overlay_settings_are_remembered(qtbot: Any) -> None:
    from app.gui.panels.saliency import SaliencyPanel
    from app.workflow import StudySession

    session = StudySession.open([str(paths.sample_path())])
    run = session.analyze(device="cpu")
    (out,) = session.saliency(run.images[0].ref, "pneumonia_cnn", "cam")
    m = np.nan_to_num(out.map)
    # CAM lives on a 7x7 grid here: a bilinear (or nearest) upsampling puts a slope jump at every
    # cell border (notches in the threshold contour); a smooth one has no such kinks
    # (where the map is between its floor and its peak: those are clipped, as "hide below" is)
    inner = (
        (m[:, :-2] > 0.02)
        & (m[:, 1:-1] > 0.02)
        & (m[:, 2:] > 0.02)
        & (m[:, :-2] < 0.98)
        & (m[:, 1:-1] < 0.98)
        & (m[:, 2:] < 0.98)
    )
    d1 = np.abs(np.diff(m, axis=1))[:, :-1][inner].max()
    d2 = np.abs(np.diff(m, 2, axis=1))[inner].max()
    assert d2 < 0.2 * d1, (d1, d2)

    panel = SaliencyPanel(None)
    qtbot.addWidget(panel)
    assert (panel.colormap.currentText(), panel.opacity.value(), panel.threshold.value()) == (
        "inferno",
        50,
        20,
    )
    panel.colormap.setCurrentText("viridis")
    panel.opacity.setValue(35)
    panel.threshold.setValue(40)
    again = SaliencyPanel(None)
    qtbot.addWidget(again)
    assert (again.colormap.currentText(), again.opacity.value(), again.threshold.value()) == (
        "viridis",
        35,
        40,
    )


def test_report_panel_fields_colours_sentences_and_sign_off(qtbot: Any) -> None:
    from app.gui.panels.report import ReportPanel, load_draft_file

    uid = generate_uid()
    panel = ReportPanel(None)
    qtbot.addWidget(panel)
    panel.show()
    panel.set_study(uid)
    # Server URL / Model only for the OpenAI-compatible backend
    assert (
        not panel.url.isVisible()
        and not panel.model_name.isVisible()
        and not panel.url_label.isVisible()
    )
    panel.backend.setCurrentIndex(panel.backend.findData("openai"))
    assert panel.url.isVisible() and panel.model_name.isVisible() and panel.model_label.isVisible()
    panel.backend.setCurrentIndex(panel.backend.findData("bundled"))
    assert not panel.url.isVisible()

    # AI text readable in the dark theme (WCAG AA: 4.5:1)
    text_colour = panel.editor.palette().color(panel.editor.foregroundRole())
    assert _contrast(text_colour, panel.ai_color()) >= 4.5

    # editing one sentence unmarks that sentence only
    text = "FINDINGS: The heart is normal. The lungs are clear.\n\nIMPRESSION: Normal study."
    panel._set_text(text, ai=True)
    panel.ai_generated, panel.edited = True, False
    cur = panel.editor.textCursor()
    cur.setPosition(text.index("clear") + 5)
    panel.editor.setTextCursor(cur)
    panel.editor.insertPlainText(" and well expanded")
    new = panel.editor.toPlainText()
    assert not panel.is_ai_marked(new.index("lungs"))
    assert panel.is_ai_marked(new.index("heart")) and panel.is_ai_marked(new.index("Normal study"))

    # sign-off in the session (as the Export dialog does, on a worker) -> the panel shows it
    session = panel._session()
    session.set_draft(panel.current_draft())
    worker = threading.Thread(target=session.sign_off, args=("Dr Ada Reader",))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: panel.signed is not None, timeout=5000)
    assert panel.signed_label.isVisible() and "Dr Ada Reader" in panel.signed_label.text()
    local = panel.signed.signed_off_at
    from app.gui.panels.report import local_time

    assert local_time(local) in panel.signed_label.text() and "T" not in local_time(local)
    assert (
        panel.editor.isReadOnly()
        and panel.amend_button.isVisible()
        and not panel.draft_button.isEnabled()
    )
    qtbot.waitUntil(
        lambda: (load_draft_file(uid) or {}).get("reader_name") == "Dr Ada Reader", timeout=10000
    )
    assert load_draft_file(uid)["signed_off_at"] == local
    # a restart shows the signed state again (read-only)
    again = ReportPanel(None)
    qtbot.addWidget(again)
    again.set_study(uid)
    assert again.signed is not None and again.signed.reader_name == "Dr Ada Reader"
    assert again.editor.isReadOnly() and not again.signed_label.isHidden()

    # Amend: a new version, editable, the signed one kept
    panel.amend_button.click()
    assert (
        not panel.editor.isReadOnly() and panel.version == 2 and not panel.signed_label.isVisible()
    )
    assert not panel.current_draft().signed_off
    qtbot.waitUntil(lambda: (load_draft_file(uid) or {}).get("version") == 2, timeout=10000)
    doc = load_draft_file(uid)
    assert doc["reader_name"] == "" and doc["amends"][0]["reader_name"] == "Dr Ada Reader"


def test_report_panel_uses_the_typed_indication(qtbot: Any) -> None:
    from app.gui.panels.report import ReportPanel

    panel = ReportPanel(None)
    qtbot.addWidget(panel)
    panel.set_study(generate_uid())
    panel.indication.setText("Fever for three days")
    panel.draft_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=120_000)
    assert panel.provenance["conditioning"]["indication"] == "Fever for three days"
    assert panel.current_draft().indication == "Fever for three days"


def test_open_pdf_and_reveal_folder_without_a_desktop_handler(qtbot: Any, tmp_path: Path) -> None:
    from app.core.types import ReportDraft
    from app.gui.panels.export import ExportContext, ExportDialog

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n")
    dialog = ExportDialog(ExportContext(ReportDraft(generate_uid(), findings="x")))
    qtbot.addWidget(dialog)
    dialog.files = [pdf]
    dialog.open_pdf()  # the offscreen platform has no desktop services, like a bare desktop
    assert "No application" in dialog.status.text() and str(pdf) in dialog.status.text()
    assert dialog.no_handler_box.isVisible() and str(pdf) in dialog.no_handler_box.text()
    dialog.no_handler_box.close()
    dialog.reveal_folder()
    assert "file manager" in dialog.status.text() and str(tmp_path) in dialog.status.text()


def test_report_panel_new_study_leaves_no_undo_or_ai_mark_of_the_previous_one(qtbot: Any) -> None:
    # an empty editor is not cleared again (start-up time, issue 17), but one emptied by the user
    # still is: Ctrl+Z on the next study must not bring back the previous patient's text
    from PySide6.QtGui import QTextCursor

    from app.gui.panels.report import ReportPanel

    panel = ReportPanel(None)
    qtbot.addWidget(panel)
    panel.show()
    panel.set_study(generate_uid())
    panel._set_text("FINDINGS: first patient.", ai=True)
    cur = panel.editor.textCursor()
    cur.select(QTextCursor.SelectionType.Document)
    cur.removeSelectedText()
    assert panel.editor.document().isEmpty() and panel.editor.document().isUndoAvailable()
    panel.set_study(generate_uid())
    assert not panel.editor.document().isUndoAvailable()
    panel.editor.undo()
    assert panel.editor.toPlainText() == ""
    panel.editor.insertPlainText("typed")
    assert not panel.is_ai_marked(0)  # typed text is the reader's, not AI-marked
