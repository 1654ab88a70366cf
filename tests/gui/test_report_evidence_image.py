"""Issue 16: putting the cursor on an AI sentence shows that finding's overlay on the finding's own
image (the SOP instance in the sentence's evidence), not on whichever image is on screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import generate_uid

from app.core import paths
from app.core.types import LabelResult, ModelResult
from app.gui.main_window import MainWindow


def _two_films(tmp: Path) -> tuple[list[str], Any]:
    from app.gui.series import FrameRef, SeriesData

    series, study = generate_uid(), generate_uid()
    files, frames = [], []
    for n in (1, 2):
        ds = pydicom.dcmread(paths.sample_path())
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.InstanceNumber = series, study, n
        path = tmp / f"im{n}.dcm"
        ds.save_as(path)
        files.append(str(path))
        frames.append(FrameRef(path=str(path), sop_uid=ds.SOPInstanceUID, instance_number=n))
    return files, SeriesData(
        frames=frames,
        study_uid=study,
        series_uid=series,
        modality="CR",
        description="two films",
        monochrome1=True,
    )


def _pneumonia_on_im2_cursor_in_finding(
    report: Any, files: list[str], series: Any, text: str
) -> Any:
    """The AI found pneumonia on Im 2; the report says so in ``text``, with the cursor in that
    sentence. Returns Im 2's frame."""
    r = ModelResult(
        "pneumonia_cnn",
        "1.0.0",
        "abc",
        "CPUExecutionProvider",
        [LabelResult("pneumonia", 0.93, 0.5, True)],
    )
    im2 = series.frames[1]
    report.set_study(series.study_uid)
    report.set_results(
        {
            "images": [
                {
                    "path": files[1],
                    "study_uid": series.study_uid,
                    "series_uid": series.series_uid,
                    "sop_uid": im2.sop_uid,
                    "modality": "CR",
                    "results": [r.to_dict()],
                }
            ]
        }
    )
    report.editor.setPlainText(text)
    cur = report.editor.textCursor()
    cur.setPosition(text.index("consistent"))
    report.editor.setTextCursor(cur)
    return im2


def test_sentence_shows_its_findings_own_image_with_overlay(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    from PySide6.QtGui import QTextCursor  # noqa: F401 - Qt loaded by the window

    files, series = _two_films(tmp_path)
    window.show_series(series)
    vp = window.active_viewport()
    qtbot.waitUntil(lambda: window.current_image() is not None, timeout=30000)
    assert window.current_image().sop_uid == series.frames[0].sop_uid  # Im 1 on screen
    report = window.panels["report"].widget()
    sal = window.panels["saliency"].widget()
    qtbot.waitUntil(lambda: sal.model.findData("pneumonia_cnn") >= 0, timeout=60000)

    # the AI found pneumonia on Im 2 (not the image on screen)
    im2 = _pneumonia_on_im2_cursor_in_finding(
        report,
        files,
        series,
        "FINDINGS: The heart is normal. Findings are consistent with pneumonia.\n"
        "IMPRESSION: Pneumonia.",
    )

    # the finding's image is brought on screen, and its map computed there with the finding's label
    assert window.current_image().sop_uid == im2.sop_uid
    assert window.active_viewport() is vp and vp.index == 1
    qtbot.waitUntil(lambda: sal.result is not None, timeout=120000)
    assert sal.result["path"] == files[1] and sal.result["model_id"] == "pneumonia_cnn"
    assert sal.label.currentText() == "pneumonia" and sal.current_map() is not None
    assert sal.enabled.isChecked()


def test_sentence_opens_its_findings_series_from_the_library(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """The finding's image is in no viewport: its series is loaded from the library (worker)."""
    files, series = _two_films(tmp_path)
    window.library().scan([tmp_path])
    report = window.panels["report"].widget()
    sal = window.panels["saliency"].widget()
    qtbot.waitUntil(lambda: sal.model.findData("pneumonia_cnn") >= 0, timeout=60000)
    assert window.current_image() is None
    im2 = _pneumonia_on_im2_cursor_in_finding(
        report, files, series, "FINDINGS: Findings are consistent with pneumonia."
    )
    qtbot.waitUntil(
        lambda: (
            window.current_image() is not None and window.current_image().sop_uid == im2.sop_uid
        ),
        timeout=60000,
    )
    qtbot.waitUntil(lambda: sal.result is not None, timeout=120000)
    assert sal.result["path"] == files[1] and sal.label.currentText() == "pneumonia"
