"""``hilum demo`` with a display: the whole job in the window, through the study session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom

from app.core.paths import sample_path
from app.core.types import BATCH_READER
from app.gui.demo import DEMO_INDICATION, start_demo
from app.gui.main_window import MainWindow
from app.gui.sessions import sessions_of
from app.gui.settings import Settings


def test_demo_runs_the_whole_job_in_the_window(qtbot: Any, tmp_path: Path) -> None:
    window = MainWindow(Settings())
    qtbot.addWidget(window)
    window.resize(1440, 900)
    window.show()
    out = tmp_path / "demo"
    try:
        runner = start_demo(window, str(sample_path()), out, "cpu")
        qtbot.waitUntil(lambda: runner.state in ("done", "failed"), timeout=600000)
        assert runner.state == "done", runner.message

        # the classifier's result, in the AI panel's table
        ai = window.panels["ai"].widget()
        assert ai.table.rowCount() >= 1 and ai.table.item(0, 2).text() == "pneumonia"
        # the saliency overlay, on the image in the viewport
        sal = window.panels["saliency"].widget()
        vp = window.active_viewport()
        assert sal.result is not None and sal.result["same_forward_pass"]
        assert vp.overlay is not None and vp.overlay_item.isVisible()
        # the draft, in the Report panel, conditioned on the typed indication
        report = window.panels["report"].widget()
        assert "IMPRESSION" in report.editor.toPlainText()
        assert report.provenance["conditioning"]["indication"] == DEMO_INDICATION
        # through the study session: the same run, draft and sign-off
        session = sessions_of(window).get(
            pydicom.dcmread(sample_path(), stop_before_pixels=True).StudyInstanceUID
        )
        assert session.run is not None and session.draft.signed_off
        assert session.draft.reader_name == BATCH_READER and not session.draft.reviewed
        # and where the exported files are
        assert (out / "report.pdf").is_file() and list((out / "dicom").glob("*.dcm"))
        assert str(out) in window.statusBar().currentMessage()
        assert str(out) in runner.box.text()
        # the Report panel shows the signed state
        qtbot.waitUntil(lambda: report.signed is not None, timeout=10000)
        assert report.signed_label.isVisible() and report.editor.isReadOnly()
        # the stored draft records the sign-off (the library, as the session stores it)
        from app.dicom.library import Library

        qtbot.waitUntil(
            lambda: (
                (Library().stored_draft(session.study_uid) or session.draft).signed_off
                and Library().stored_draft(session.study_uid) is not None
            ),
            timeout=10000,
        )
        assert Library().stored_draft(session.study_uid).reader_name == BATCH_READER
    finally:
        window.cancel_background()
        qtbot.waitUntil(lambda: not window.busy, timeout=30000)
        window.close()
