"""The AI dock: applicable models, Run in the background, results table, stored with the study."""

from __future__ import annotations

import pydicom
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMainWindow, QProgressBar  # noqa: E402

from app.core import paths  # noqa: E402

from _inference_models import BUNDLED_ID  # noqa: E402


def _sample_series() -> object:
    from app.gui.series import FrameRef, SeriesData

    ds = pydicom.dcmread(paths.sample_path(), stop_before_pixels=True)
    return SeriesData(
        frames=[FrameRef(path=str(paths.sample_path()), sop_uid=ds.SOPInstanceUID)],
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        modality="CR",
        description="sample",
        monochrome1=True,
    )


def test_panel_runs_and_restores_results(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.dicom.library import Library
    from app.gui.panels.ai import RESULT_KEY_PREFIX, create_panel

    win = QMainWindow()
    qtbot.addWidget(win)
    dock = create_panel(win)
    panel = dock.widget()
    series = _sample_series()
    panel.set_series(series)
    qtbot.waitUntil(lambda: panel.registry() is not None, timeout=30000)
    assert panel.checked_models() == [BUNDLED_ID]
    assert panel.run_button.isEnabled()
    panel.device.setCurrentText("cpu")
    with qtbot.waitSignal(panel.results_ready, timeout=60000) as blocker:
        panel.run_button.click()
    doc = blocker.args[0]
    assert doc["images"][0]["results"][0]["model_id"] == BUNDLED_ID
    qtbot.waitUntil(lambda: panel.worker is None, timeout=10000)
    assert panel.table.rowCount() == 1
    assert panel.table.item(0, 2).text() == "pneumonia"
    bar = panel.table.cellWidget(0, 3)
    assert isinstance(bar, QProgressBar)
    prob = doc["images"][0]["results"][0]["labels"]["pneumonia"]["probability"]
    assert bar.value() == round(prob * 1000)
    assert "CPUExecutionProvider" in panel.provider_label.text()
    # the bundled sample is an adult film: the amber banner says the result is outside intended use
    assert not panel.reliability_banner.isHidden()
    assert "Outside intended use" in panel.reliability_banner.text()
    assert "patient age" in panel.reliability_banner.text()
    from app.gui.panels.ai import COL_FLAG

    assert panel.table.item(0, COL_FLAG).text().endswith("\u26a0")
    assert "outside intended use" in panel.table.item(0, COL_FLAG).toolTip()
    qtbot.waitUntil(
        lambda: (
            Library().result(series.study_uid, RESULT_KEY_PREFIX + series.series_uid) is not None
        ),
        timeout=10000,
    )
    stored = Library().result(series.study_uid, RESULT_KEY_PREFIX + series.series_uid)
    assert stored is not None and stored["images"][0]["sop_uid"] == doc["images"][0]["sop_uid"]

    # reopening the study shows the stored results without running again
    dock2 = create_panel(win)
    panel2 = dock2.widget()
    qtbot.waitUntil(lambda: panel2.registry() is not None, timeout=30000)
    panel2.set_series(_sample_series())
    qtbot.waitUntil(lambda: panel2.table.rowCount() == 1, timeout=10000)
    assert "stored" in panel2.status.text()

    # a CT series: the chest model does not apply unless the user overrides
    from app.gui.series import SeriesData

    panel2.set_series(SeriesData(frames=[], modality="CT", study_uid="1.2.3", series_uid="1.2.3.4"))
    assert panel2.models.count() == 0 and not panel2.run_button.isEnabled()
    panel2.show_all.setChecked(True)
    assert panel2.models.count() == 1 and panel2.checked_models() == []
    panel2.show_card()
    from PySide6.QtWidgets import QTextBrowser

    view = panel2.card_dialog.findChild(QTextBrowser, "AIModelCard")
    assert "not for clinical use" in view.toPlainText()
    panel2.card_dialog.close()


def test_main_window_panels_share_one_background_registry_and_show_the_provider(
    qtbot, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The registry is verified once, off the GUI thread; series changes only filter cached
    manifests; after a run the provider actually used is in the window's status bar."""
    import threading

    from app.gui.main_window import MainWindow
    from app.gui.model_registry import cached_registry
    from app.gui.panels.ai import AIPanel
    from app.gui.series import SeriesData
    from app.gui.settings import Settings
    from app.inference.registry import ModelRegistry

    scans: list[bool] = []
    original = ModelRegistry._scan

    def counting_scan(self):  # type: ignore[no-untyped-def]
        scans.append(threading.current_thread() is threading.main_thread())
        return original(self)

    monkeypatch.setattr(ModelRegistry, "_scan", counting_scan)
    window = MainWindow(Settings())
    qtbot.addWidget(window)
    try:
        panel = window.findChild(AIPanel, "AIPanel")
        assert panel is not None
        qtbot.waitUntil(lambda: panel.registry() is not None, timeout=30000)
        qtbot.waitUntil(lambda: not window.busy, timeout=30000)
        # one scan for every panel of the window, and not on the GUI thread
        assert scans == [False]
        assert cached_registry() is panel.registry()
        for _ in range(3):
            window.series_changed.emit(
                SeriesData(frames=[], modality="CT", study_uid="1.2", series_uid="1.2.3")
            )
            assert panel.models.count() == 0
            window.series_changed.emit(_sample_series())
            assert panel.checked_models() == [BUNDLED_ID]
        assert scans == [False]

        panel.device.setCurrentText("cpu")
        with qtbot.waitSignal(panel.results_ready, timeout=60000) as blocker:
            panel.run_button.click()
        assert blocker.args[0]["models"][0]["provider"] == "CPUExecutionProvider"
        assert window.provider_label.text() == "AI: CPU"
    finally:
        window.cancel_background()
        qtbot.waitUntil(lambda: not window.busy, timeout=30000)
        window.close()
