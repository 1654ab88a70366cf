"""The Report dock: streams a draft on a worker, marks AI text until edited, autosaves per study."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from app.core.types import LabelResult, ModelResult  # noqa: E402
from app.reporting import labeller  # noqa: E402

UID = "1.2.826.0.1.3680043.8.498.1"


def _doc(prob: float) -> dict:
    r = ModelResult(
        "pneumonia_cnn",
        "1.0.0",
        "abc",
        "CPUExecutionProvider",
        [LabelResult("pneumonia", prob, 0.5, prob >= 0.5)],
    )
    return {"images": [{"results": [r.to_dict()]}]}


def _background(panel, pos: int):  # noqa: ANN001, ANN202
    from PySide6.QtGui import QTextCursor

    cur = QTextCursor(panel.editor.document())
    cur.setPosition(pos + 1)
    return cur.charFormat().background().color()


def test_panel_drafts_marks_edits_and_survives_restart(qtbot) -> None:  # noqa: ANN001
    from app.gui.panels.report import BANNER, ReportPanel, load_draft_file

    panel = ReportPanel(None)
    qtbot.addWidget(panel)
    panel.set_study(UID)
    panel.set_results(_doc(0.93))
    assert "pneumonia 0.93" in panel.findings_label.text()
    panel.indication.setText("Cough and fever")
    panel.draft_button.click()
    assert panel.running and panel.stop_button.isEnabled() and not panel.draft_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.running, timeout=120_000)
    text = panel.editor.toPlainText()
    assert text.startswith("FINDINGS: ") and "\nIMPRESSION: " in text
    assert labeller.states(text, "Pneumonia")
    assert panel.banner.text() == BANNER == "AI-generated draft: requires review by a physician"
    assert _background(panel, 12) == panel.ai_color()  # AI-written text is marked
    assert panel.provenance["model_id"] == "report_generator"
    qtbot.waitUntil(lambda: (load_draft_file(UID) or {}).get("text") == text, timeout=20_000)
    assert load_draft_file(UID)["ai_generated"] is True

    # the radiologist edits one sentence: its mark goes, the other sentences stay marked, and
    # the draft is no longer "AI-generated" as a whole
    panel.editor.moveCursor(panel.editor.textCursor().MoveOperation.End)
    panel.editor.insertPlainText(" Edited by me.")
    end = len(panel.editor.toPlainText())
    assert (
        panel.edited
        and _background(panel, 12) == panel.ai_color()
        and not panel.current_draft().ai_generated
    )
    assert not panel.is_ai_marked(end - 3) and panel.is_ai_marked(12)
    qtbot.waitUntil(lambda: (load_draft_file(UID) or {}).get("edited") is True, timeout=20_000)

    # a restart: a new panel for the same study gets the autosaved draft back
    again = ReportPanel(None)
    qtbot.addWidget(again)
    again.set_study(UID)
    assert again.editor.toPlainText() == text + " Edited by me."
    assert again.indication.text() == "Cough and fever" and again.edited
    d = again.current_draft()
    assert (
        d.study_uid == UID
        and not d.ai_generated
        and d.findings
        and d.impression.endswith("Edited by me.")
    )
    assert d.generator["model_id"] == "report_generator"

    # standard phrases insert at the cursor
    again.phrases.setCurrentIndex(0)
    again.insert_button.click()
    assert again.editor.toPlainText().endswith("No acute cardiopulmonary abnormality.")


def test_panel_stop_and_normal_draft(qtbot) -> None:  # noqa: ANN001
    from app.gui.panels.report import ReportPanel

    panel = ReportPanel(None)
    qtbot.addWidget(panel)
    panel.set_study(UID + ".2")
    panel.set_results(_doc(0.04))
    panel.draft_button.click()
    with qtbot.waitSignal(panel.worker.signals.cancelled, timeout=120_000):
        panel.stop_button.click()  # cancelled before the draft was finished
    qtbot.waitUntil(lambda: not panel.running, timeout=120_000)
    assert panel.draft_button.isEnabled() and "IMPRESSION" not in panel.editor.toPlainText()
    assert panel.session.draft is None or not panel.session.draft.impression  # nothing drafted
    # Regenerate is offered once there is text (here: the radiologist's) and drafts anew
    assert not panel.regen_button.isEnabled()
    panel.editor.setPlainText("FINDINGS: typed")
    assert panel.regen_button.isEnabled()
    panel.edited = False
    panel.regen_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=120_000)
    text = panel.editor.toPlainText()
    assert labeller.is_normal(text) and "IMPRESSION:" in text


def test_sentence_at_cursor_shows_its_evidence(qtbot) -> None:  # noqa: ANN001
    """Clicking a sentence shows the AI finding behind it (model, probability, threshold, reliability)."""
    from PySide6.QtGui import QTextCursor

    from app.gui.panels.report import ReportPanel

    panel = ReportPanel(None)
    qtbot.addWidget(panel)
    panel.set_study(UID)
    doc = _doc(0.93)
    doc["images"][0]["results"][0]["reliability"] = (
        "outside intended use: patient age 64 years is outside 1-5 years"
    )
    panel.set_results(doc)
    text = "FINDINGS: The heart is normal. Findings are consistent with pneumonia.\nIMPRESSION: Pneumonia."
    panel.editor.setPlainText(text)
    cur = panel.editor.textCursor()
    cur.setPosition(text.index("consistent"))
    panel.editor.setTextCursor(cur)
    assert panel.sentence_at_cursor() == "Findings are consistent with pneumonia."
    assert panel.evidence_label.text() == (
        "Evidence: pneumonia_cnn \u00b7 pneumonia p=0.93 (threshold 0.50)"
        " \u00b7 outside intended use"
    )
    cur.setPosition(text.index("heart"))
    panel.editor.setTextCursor(cur)
    assert panel.evidence_label.text() == "Evidence: no AI result concerns this sentence."
    cur.movePosition(QTextCursor.MoveOperation.End)
    panel.editor.setTextCursor(cur)
    assert "pneumonia p=0.93" in panel.evidence_label.text()
