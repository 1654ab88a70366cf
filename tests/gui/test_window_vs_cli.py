"""One workstation, one implementation: the window and ``hilum analyze`` on the same study give the
same results, saliency map, draft text (bundled generator, greedy) and exported report; the
window's CAM costs no extra forward pass; GUI drafts and applicability see ViewPosition and
BodyPartExamined."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from app.core.paths import sample_path
from app.gui.main_window import MainWindow
from app.gui.settings import Settings

READER = "Dr Ada Reader"


def _texts(ds: Any) -> list[str]:
    """Every text and code meaning of an SR content tree (what a reader sees), in order."""
    out: list[str] = []
    for item in ds.get("ContentSequence", []):
        if "TextValue" in item:
            out.append(str(item.TextValue))
        for code in item.get("ConceptCodeSequence", []):
            out.append(str(code.CodeMeaning))
        if "MeasuredValueSequence" in item:
            out.append(f"{float(item.MeasuredValueSequence[0].NumericValue):.4f}")
        out += _texts(item)
    return out


def _cli(tmp: Path) -> Path:
    out = tmp / "cli"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "analyze",
            str(sample_path()),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--saliency",
            "cam",
            "--indication",
            "Cough",
            "--pdf",
            "--dicom-export",
            "--reader",
            READER,
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_window_and_cli_agree_on_the_same_study(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    from app.gui.panels.ai import AIPanel
    from app.gui.panels.report import ReportPanel
    from app.gui.panels.saliency import SaliencyPanel
    from app.gui.sessions import sessions_of

    runs = {"n": 0}
    for name in ("run", "run_with_iobinding"):
        original = getattr(ort.InferenceSession, name)

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            runs["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ort.InferenceSession, name, counting)

    cli = _cli(tmp_path)
    window = MainWindow(Settings())
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    try:
        with qtbot.waitSignal(window.first_image_painted, timeout=60000):
            window.open_paths([str(sample_path())])
        qtbot.waitUntil(lambda: not window.busy, timeout=60000)
        ref = window.current_image()
        ds = pydicom.dcmread(sample_path(), stop_before_pixels=True)

        # AI panel: applicability from the one metadata reader (ViewPosition, BodyPartExamined)
        ai = window.findChild(AIPanel, "AIPanel")
        qtbot.waitUntil(lambda: ai.metadata is not None and ai.models.count() > 0, timeout=60000)
        assert (ai.metadata.view_position, ai.metadata.body_part) == (
            ds.ViewPosition,
            ds.BodyPartExamined,
        )
        ai.device.setCurrentText("cpu")
        with qtbot.waitSignal(ai.results_ready, timeout=120000) as blocker:
            ai.run_button.click()
        gui_doc = blocker.args[0]
        cli_doc = json.loads((cli / "results.json").read_text())
        gui_labels = [(r["model_id"], r["labels"]) for i in gui_doc["images"] for r in i["results"]]
        cli_labels = [(r["model_id"], r["labels"]) for i in cli_doc["images"] for r in i["results"]]
        assert gui_labels == cli_labels and gui_labels
        assert [i["not_applicable"] for i in gui_doc["images"]] == [
            i["not_applicable"] for i in cli_doc["images"]
        ]

        # Saliency panel: CAM from the AI panel's classifying pass, no forward pass of its own
        sal = window.findChild(SaliencyPanel)
        qtbot.waitUntil(lambda: sal.model.findData("pneumonia_cnn") >= 0, timeout=30000)
        sal.model.setCurrentIndex(sal.model.findData("pneumonia_cnn"))
        sal.method.setCurrentText("cam")
        before = runs["n"]
        sal.compute()
        qtbot.waitUntil(lambda: sal.result is not None, timeout=60000)
        assert runs["n"] == before and sal.result["same_forward_pass"]
        session = sessions_of(window).get(ref.study_uid)
        (out,) = session.saliency(ref, "pneumonia_cnn", "cam")
        assert runs["n"] == before
        np.testing.assert_array_equal(out.map, sal.result["maps"]["pneumonia"])
        cli_raw = np.load(cli / "saliency" / f"{ds.SOPInstanceUID}_pneumonia.npy")
        np.testing.assert_allclose(out.raw, cli_raw, rtol=1e-5, atol=1e-6)

        # Report panel: the same draft text as draft.txt, conditioned on the view and body part
        report = window.findChild(ReportPanel)
        report.indication.setText("Cough")
        report.draft_button.click()
        qtbot.waitUntil(lambda: not report.running, timeout=120000)
        cond = report.provenance["conditioning"]
        assert cond["body_part"] == ds.BodyPartExamined and cond["view"]
        cli_text = (cli / "draft.txt").read_text().split("\n", 1)[1].strip()  # after the banner
        assert report.editor.toPlainText().strip() == cli_text

        # Export dock -> the session's export: the same SR content as the CLI's
        export = window.panels["export"].widget()
        export.export()
        qtbot.waitUntil(lambda: export.dialog is not None, timeout=30000)
        dialog = export.dialog
        qtbot.addWidget(dialog)
        dialog.reader.setText(READER)
        dialog.sign_box.setChecked(True)
        dialog.pdf_box.setChecked(True)
        dialog.dicom_box.setChecked(True)
        dialog.deid_box.setChecked(False)
        dialog.out_dir.setText(str(tmp_path / "gui"))
        dialog.export_button.click()
        qtbot.waitUntil(lambda: dialog._worker is None and bool(dialog.files), timeout=120000)
        gui_sr = pydicom.dcmread(next(p for p in dialog.files if p.name.startswith("SR_")))
        cli_sr = pydicom.dcmread(next((cli / "dicom").glob("SR_*.dcm")))
        assert _texts(gui_sr) == _texts(cli_sr) and _texts(gui_sr)
        assert gui_sr.VerificationFlag == cli_sr.VerificationFlag == "VERIFIED"
        assert session.draft.signed_off and session.draft.reader_name == READER
    finally:
        window.cancel_background()
        qtbot.waitUntil(lambda: not window.busy, timeout=30000)
        window.close()
