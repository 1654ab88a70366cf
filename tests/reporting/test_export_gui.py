"""The Export dialog (pytest-qt, offscreen): sign-off gating, de-identification preview, a real
export on the bundled sample through the thread pool, and the zh_CN translation."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QCoreApplication, QTranslator  # noqa: E402

from app.core.paths import sample_path  # noqa: E402
from app.core.types import ImageRef, LabelResult, ModelResult, ReportDraft  # noqa: E402
from app.reporting.i18n import translation_file  # noqa: E402
from app.reporting.pdf import KeyImage  # noqa: E402


@pytest.fixture()
def context():
    from app.gui.panels.export import ExportContext

    ds = pydicom.dcmread(sample_path())
    disp = (ds.pixel_array[::8, ::8] >> 4).astype(np.uint8)
    overlay = np.stack([disp, disp // 2, disp // 3], -1).astype(np.uint8)
    ref = ImageRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, "")
    draft = ReportDraft(
        study_uid=ds.StudyInstanceUID,
        indication="Fever.",
        findings="Right lower zone opacity. 右下肺斑片影。",
        impression="Pneumonia.",
    )
    results = [
        ModelResult(
            "pneumonia_cnn",
            "1.0.0",
            "ab" * 32,
            "CPUExecutionProvider",
            [LabelResult("pneumonia", 0.8, 0.5, True)],
        )
    ]
    signed = []
    return ExportContext(
        draft,
        results,
        [ds],
        [KeyImage(disp, overlay, legend="CAM", source=ref)],
        on_signed_off=signed.append,
    ), signed


def test_export_dialog_requires_sign_off_then_exports(qtbot, context, tmp_path):
    from app.gui.panels.export import ExportDialog

    ctx, signed = context
    dialog = ExportDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.reader.setText("")
    dialog.sign_box.setChecked(False)
    assert not dialog.export_button.isEnabled()
    dialog.reader.setText("Jane Smith")
    assert not dialog.export_button.isEnabled()  # the sign-off box is required too
    dialog.sign_box.setChecked(True)
    assert dialog.export_button.isEnabled()

    dialog.out_dir.setText(str(tmp_path))
    dialog.pdf_box.setChecked(True)
    dialog.dicom_box.setChecked(True)
    dialog.deid_box.setChecked(True)
    dialog.pixels_reviewed_box.setChecked(True)  # de-identified key images need the check
    dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog._worker is None and bool(dialog.files), timeout=60000)
    names = sorted(p.name.split("_")[0] for p in dialog.files)
    assert names == ["PDF", "SC", "SR", "report.pdf"]
    assert dialog.open_pdf_button.isVisibleTo(dialog)
    assert dialog.reveal_button.isVisibleTo(dialog)
    assert signed and signed[0].reader_name == "Jane Smith" and signed[0].signed_off
    sr = pydicom.dcmread(next(p for p in dialog.files if p.name.startswith("SR")))
    assert sr.PatientIdentityRemoved == "YES"


def test_export_dialog_preview_lists_patient_name(qtbot, context):
    from app.gui.panels.export import ExportDialog

    ctx, _ = context
    dialog = ExportDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.show_preview()
    qtbot.waitUntil(lambda: getattr(dialog, "preview_dialog", None) is not None, timeout=30000)
    table = dialog.preview_dialog.table
    keywords = {table.item(r, 1).text() for r in range(table.rowCount())}
    assert {"PatientName", "PatientID", "StudyInstanceUID"} <= keywords


def test_zh_cn_translation_loads_and_translates(qapp):
    path = translation_file("zh_CN")
    assert path is not None and path.suffix == ".qm" and path.is_file()
    assert translation_file("zh-Hans-CN") == path
    assert translation_file("en_US") is None
    translator = QTranslator()
    assert translator.load(str(path))
    QCoreApplication.installTranslator(translator)
    try:
        assert QCoreApplication.translate("ExportDialog", "Export report") == "导出报告"
        assert QCoreApplication.translate("ExportDialog", "Open PDF") == "打开 PDF"
    finally:
        QCoreApplication.removeTranslator(translator)


def test_export_dock_in_the_main_window_exports_the_image_on_screen(qtbot, tmp_path):
    """Open the sample in the real window, show an overlay, add it as a key image, Export."""
    from PySide6.QtWidgets import QDockWidget

    from app.dicom.library import Library
    from app.gui.main_window import MainWindow
    from app.gui.settings import Settings

    window = MainWindow(Settings())
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.first_image_painted, timeout=60000):
        window.open_paths([str(sample_path())])
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    dock = window.panels.get("export")
    assert isinstance(dock, QDockWidget)
    panel = dock.widget()

    vp = window.active_viewport()
    rows, cols = vp.frame.shape[:2]
    rgba = np.zeros((rows, cols, 4), np.uint8)
    rgba[rows // 2 :, : cols // 2] = (255, 0, 0, 200)  # a "hot" lower-left region
    vp.set_overlay(rgba)
    ki = panel.add_current_image()
    assert ki is not None and ki.overlay is not None
    assert ki.display.shape == (rows, cols)
    hot, cold = ki.overlay[rows - 5, 5], ki.overlay[5, cols - 5]
    assert int(hot[0]) > int(hot[1])  # red blended in where the overlay is
    assert cold[0] == cold[1] == cold[2] == ki.display[5, cols - 5]  # grey elsewhere

    ref = window.current_image()
    ds = pydicom.dcmread(sample_path(), stop_before_pixels=True)
    lib = Library()
    lib.store_result(
        ref.study_uid,
        "ai:" + ref.series_uid,
        {
            "images": [
                {
                    "path": str(sample_path()),
                    "study_uid": ref.study_uid,
                    "sop_uid": ref.sop_uid,
                    "results": [
                        ModelResult(
                            "pneumonia_cnn",
                            "1.0.0",
                            "cd" * 32,
                            "CPUExecutionProvider",
                            [LabelResult("pneumonia", 0.7, 0.5, True)],
                        ).to_dict()
                    ],
                }
            ]
        },
    )
    lib.store_result(
        ref.study_uid,
        "report",
        ReportDraft(
            study_uid=ref.study_uid, findings="Opacity. 右下肺斑片影。", impression="Pneumonia."
        ).to_dict(),
    )

    panel.export()
    qtbot.waitUntil(lambda: panel.dialog is not None, timeout=30000)
    dialog = panel.dialog
    qtbot.addWidget(dialog)
    assert len(dialog.context.results) == 1 and len(dialog.context.source_datasets) == 1
    assert dialog.context.source_datasets[0].SOPInstanceUID == ds.SOPInstanceUID
    dialog.reader.setText("Jane Smith")
    dialog.sign_box.setChecked(True)
    dialog.out_dir.setText(str(tmp_path))
    dialog.export_button.click()
    assert not hasattr(
        dialog, "ack_box"
    )  # the report states the AI finding: nothing to acknowledge
    qtbot.waitUntil(lambda: dialog._worker is None and bool(dialog.files), timeout=60000)
    assert (tmp_path / "report.pdf").is_file()
    sc = pydicom.dcmread(next(p for p in dialog.files if p.name.startswith("SC")))
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    qtbot.waitUntil(
        lambda: lib.result(ref.study_uid, "report:signed_off") is not None, timeout=10000
    )
    window.close()


def test_sign_off_check_asks_for_acknowledgement(qtbot, context, tmp_path):
    """A report that does not mention an AI-positive finding: the reader acknowledges it at sign-off,
    and the acknowledgement is stored with the signed report and written to the SR."""
    import dataclasses

    from PySide6.QtWidgets import QMessageBox

    from app.gui.panels.export import ExportDialog

    ctx, signed = context
    ctx.draft = dataclasses.replace(
        ctx.draft, findings="The heart is enlarged.", impression="Cardiomegaly."
    )
    dialog = ExportDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.reader.setText("Jane Smith")
    dialog.sign_box.setChecked(True)
    dialog.out_dir.setText(str(tmp_path))
    dialog.pdf_box.setChecked(False)
    dialog.dicom_box.setChecked(True)
    dialog.deid_box.setChecked(False)
    dialog.export_button.click()
    box = dialog.ack_box
    assert box.objectName() == "SignOffCheck"
    assert "AI flagged Pneumonia (0.80); your report does not mention it" in box.text()
    assert dialog._worker is None and not dialog.files  # nothing exported before the decision
    ack = next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole)
    ack.click()
    qtbot.waitUntil(lambda: dialog._worker is None and bool(dialog.files), timeout=60000)
    acks = signed[0].acknowledgements
    assert [a["message"] for a in acks] == [
        "AI flagged Pneumonia (0.80); your report does not mention it"
    ]
    assert acks[0]["reader"] == "Jane Smith"
    sr = pydicom.dcmread(next(p for p in dialog.files if p.name.startswith("SR")))
    texts = []

    def walk(items):
        for it in items:
            if it.ValueType == "TEXT":
                texts.append(str(it.TextValue))
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(sr.ContentSequence)
    assert any(
        t.startswith("AI flagged Pneumonia (0.80); your report does not mention it: acknowledged")
        for t in texts
    )
