"""The Measurements panel lists the study's measurements and inserts them into the report."""

from __future__ import annotations

from typing import Any

from _gui_helpers import wait_frame

from app.gui.series import SeriesData
from app.gui.settings import Settings


def test_measurements_listed_and_inserted_into_the_report(
    qtbot: Any, ct_head_series: SeriesData
) -> None:
    from app.gui.main_window import MainWindow
    from app.gui.panels.measurements import MeasurementsPanel
    from app.gui.panels.report import ReportPanel

    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    panel = w.findChildren(MeasurementsPanel)[0]
    w.show_series(ct_head_series)
    vp = w.active_viewport()
    wait_frame(qtbot, vp, 0)
    vp.add_measurement("length", [(100.0, 100.0), (300.0, 100.0)])
    qtbot.waitUntil(lambda: panel.list.count() == 1, timeout=20000)
    line = panel.list.item(0).text()
    assert "Length 97.7 mm" in line
    report = w.findChildren(ReportPanel)[0]
    report.editor.setPlainText("FINDINGS:\n")
    cur = report.editor.textCursor()
    cur.movePosition(cur.MoveOperation.End)
    report.editor.setTextCursor(cur)
    assert panel.insert_into_report()
    assert "Length 97.7 mm" in report.editor.toPlainText()
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    w.close()
