"""Issue 11 in the GUI: the Report panel shows the exact de-identified prompt before sending (header
identifiers scrubbed), keeps the previous text on a broken reply, and refuses plain http to
another computer unless the red-warned setting is on; the Export dialog's pixels-reviewed box."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from app.core.paths import sample_path  # noqa: E402
from app.gui.series import FrameRef, SeriesData  # noqa: E402
from tests.safety._openai_server import FakeOpenAI  # noqa: E402
from tests.safety.test_remote_drafting import INDICATION, NOTES, PHI, SECRETS  # noqa: E402


@pytest.fixture()
def phi_series(tmp_path: Path) -> SeriesData:
    ds = pydicom.dcmread(sample_path())
    for k, v in PHI.items():
        setattr(ds, k, v)
    path = tmp_path / "cxr.dcm"
    ds.save_as(path)
    return SeriesData(
        frames=[FrameRef(path=str(path), sop_uid=str(ds.SOPInstanceUID))],
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        modality="CR",
    )


def _panel(qtbot, series, url):  # noqa: ANN001, ANN202
    from app.gui.panels.report import ReportPanel

    panel = ReportPanel(None)
    qtbot.addWidget(panel)
    panel.set_series(series)
    from app.core.types import LabelResult, ModelResult

    r = ModelResult(
        "pneumonia_cnn",
        "1.0.0",
        "abc",
        "CPUExecutionProvider",
        [LabelResult("pneumonia", 0.93, 0.5, True)],
    )
    panel.set_results({"images": [{"results": [r.to_dict()]}]})
    panel.indication.setText(INDICATION)
    panel.notes.setText(NOTES)
    panel.backend.setCurrentIndex(panel.backend.findData("openai"))
    panel.url.setText(url)
    panel.model_name.setText("m")
    return panel


def test_prompt_preview_confirmed_then_sent_scrubbed(qtbot, phi_series, monkeypatch):
    answers = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: answers.pop(0))
    with FakeOpenAI() as srv:
        panel = _panel(qtbot, phi_series, srv.url)
        answers.append(QMessageBox.StandardButton.No)  # first: the user declines
        panel.draft_button.click()
        qtbot.waitUntil(lambda: "Nothing was sent" in panel.state.text(), timeout=20_000)
        # a click while the worker is still finishing is ignored (as it should be)
        qtbot.waitUntil(lambda: not panel.running, timeout=20_000)
        shown = panel.prompt_preview.detailedText()
        assert "cough for 3 days" in shown and srv.requests == []
        for secret in SECRETS:
            assert secret.lower() not in shown.lower(), secret
        answers.append(QMessageBox.StandardButton.Yes)  # then confirms
        panel.draft_button.click()
        qtbot.waitUntil(lambda: bool(panel.provenance), timeout=20_000)
        qtbot.waitUntil(lambda: not panel.running, timeout=20_000)
        assert srv.requests[0]["json"]["messages"][1]["content"] == shown
        assert panel.provenance["prompt"] == shown
        assert "Right lower lobe pneumonia" in panel.editor.toPlainText()
        # a broken reply: the previous text stays, the error is shown
        previous = panel.editor.toPlainText()
        srv.mode = "notjson"
        answers.append(QMessageBox.StandardButton.Yes)
        panel.draft_button.click()
        qtbot.waitUntil(lambda: bool(getattr(panel, "last_error", "")), timeout=20_000)
        qtbot.waitUntil(lambda: not panel.running, timeout=20_000)
        assert panel.editor.toPlainText() == previous
        assert "no draft" in panel.state.text()


def test_insecure_http_setting(qtbot, phi_series, monkeypatch):
    from app.gui.settings import load_settings

    monkeypatch.setattr(QMessageBox, "exec", lambda self: QMessageBox.StandardButton.No)
    panel = _panel(qtbot, phi_series, "http://llm-c.invalid:8000/v1")
    assert not panel.insecure_http.isChecked() and panel.insecure_warning.isHidden()
    panel.draft_button.click()
    qtbot.waitUntil(lambda: "http://" in panel.state.text(), timeout=20_000)
    assert "Refusing" in panel.state.text()
    panel.insecure_http.setChecked(True)
    assert not panel.insecure_warning.isHidden() and "c62828" in panel.insecure_warning.styleSheet()
    assert load_settings().allow_insecure_http is True
    panel.draft_button.click()  # now the preview is shown (and declined: nothing is sent)
    qtbot.waitUntil(lambda: "Nothing was sent" in panel.state.text(), timeout=20_000)


def test_export_dialog_leaves_unreviewed_pixels_out(qtbot, tmp_path):
    import numpy as np

    from app.core.types import ImageRef, LabelResult, ModelResult, ReportDraft
    from app.gui.panels.export import ExportContext, ExportDialog
    from app.reporting.pdf import KeyImage

    ds = pydicom.dcmread(sample_path())  # no Burned In Annotation: unknown
    disp = np.full((64, 64), 90, np.uint8)
    ref = ImageRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, "")
    draft = ReportDraft(study_uid=ds.StudyInstanceUID, findings="Opacity.", impression="Pneumonia.")
    results = [
        ModelResult(
            "pneumonia_cnn",
            "1.0.0",
            "ab" * 32,
            "CPUExecutionProvider",
            [LabelResult("pneumonia", 0.8, 0.5, True)],
        )
    ]
    ctx = ExportContext(
        draft, results, [ds], [KeyImage(disp, np.stack([disp] * 3, -1), legend="CAM", source=ref)]
    )
    dialog = ExportDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.reader.setText("Jane Smith")
    dialog.sign_box.setChecked(True)
    dialog.out_dir.setText(str(tmp_path))
    dialog.pdf_box.setChecked(True)
    dialog.dicom_box.setChecked(True)
    dialog.deid_box.setChecked(True)
    assert not dialog.pixels_reviewed_box.isChecked()
    dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog._worker is None and bool(dialog.files), timeout=60000)
    assert sorted(p.name.split("_")[0] for p in dialog.files) == ["PDF", "SR", "report.pdf"]
