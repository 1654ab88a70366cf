"""Issue 13 (a radiologist's day): the active viewport, the status bar, corner annotations, the
right dock's width and editable window presets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtGui import QColor, QCursor

from app.gui.main_window import MainWindow
from app.gui.series import SeriesData

ACCENT = QColor("#3d8fd1")


def _ct(n: int = 10, uid: str = "1.2.3") -> SeriesData:
    # each slice holds its own value (slice i: 100 * i HU), so the readout tells the slice apart
    vol = np.stack([np.full((64, 64), 100.0 * i, np.float32) for i in range(n)])
    return SeriesData.from_array(
        vol,
        modality="CT",
        units="HU",
        orientation=(1, 0, 0, 0, 1, 0),
        positions=[(0, 0, 2.0 * i) for i in range(n)],
        series_uid=uid,
        study_uid="9",
    )


def _frame_colours(vp: Any) -> tuple[QColor, QColor]:
    img = vp.grab().toImage()
    y = img.height() // 2
    return img.pixelColor(0, y), img.pixelColor(1, y)


def test_active_viewport_highlight_and_status_bar_follow_at_once(
    qtbot: Any, window: MainWindow
) -> None:
    window.set_layout("1x2")
    left, right = window.grid.visible
    window._show_in(left, _ct(uid="1.2.3"))
    window._show_in(right, _ct(uid="1.2.4"))
    qtbot.waitUntil(lambda: left.frame is not None and right.frame is not None, timeout=10000)
    left.set_window(40, 80)
    right.set_window(400, 1800)
    window._set_active_viewport(left)
    # a 2 px accent frame on the active viewport, none on the other
    assert _frame_colours(left) == (ACCENT, ACCENT)
    assert ACCENT not in _frame_colours(right)
    # the status bar's W/L is the active viewport's at once
    assert window.wl_label.text() == "W 80  L 40"
    window._set_active_viewport(right)
    assert window.wl_label.text() == "W 1800  L 400"
    assert _frame_colours(right) == (ACCENT, ACCENT) and ACCENT not in _frame_colours(left)
    # one viewport: no frame needed
    window.set_layout("1x1")
    assert ACCENT not in _frame_colours(window.grid.visible[0])
    window.set_layout("1x2")
    assert ACCENT in _frame_colours(window.active_viewport())

    # the HU readout is the image under the cursor, and follows a slice change without a mouse move
    window._set_active_viewport(left)
    centre = left.view.viewport().rect().center()
    QCursor.setPos(left.view.viewport().mapToGlobal(centre))
    qtbot.mouseMove(left.view.viewport(), centre)
    qtbot.waitUntil(lambda: "HU" in window.cursor_label.text(), timeout=5000)
    left.set_index(3)
    qtbot.waitUntil(
        lambda: left.index == 3 and left.frame is not None and float(left.frame[0, 0]) == 300.0,
        timeout=5000,
    )
    assert window.cursor_label.text().endswith("=  300 HU")
    left.set_index(7)
    qtbot.waitUntil(lambda: float(left.frame[0, 0]) == 700.0, timeout=5000)
    assert window.cursor_label.text().endswith("=  700 HU")


@pytest.mark.parametrize("layout", ["1x2", "2x2"])
def test_corner_annotations_never_overlap(qtbot: Any, window: MainWindow, layout: str) -> None:
    from PySide6.QtGui import QFont, QFontMetrics

    window.set_layout(layout)
    vp = window.grid.visible[0]
    s = _ct()
    s.meta.update(
        {
            "patient_name": "Wolfeschlegelsteinhausenbergerdorff^Hubert Blaine Maximilian",
            "patient_id": "PID-000000000000000000001234567",
            "institution": "A very long hospital name, "
            "Department of Radiology and Nuclear Medicine, North Wing",
            "study_description": "CT HEAD WITHOUT CONTRAST ROUTINE TRAUMA PROTOCOL",
        }
    )
    s.description = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345678"
    s.warnings = ["Gantry tilt 18.5°", "Uneven slice spacing (2.0 to 5.0 mm)"]
    window._show_in(vp, s)
    qtbot.waitUntil(lambda: vp.frame is not None, timeout=5000)
    vp.set_overlay(np.zeros((64, 64, 4), np.uint8))
    font = QFont(vp.font())
    font.setPointSizeF(9.0)
    fm = QFontMetrics(font)
    w, h = vp.view.viewport().width(), vp.view.viewport().height()
    blocks = vp.annotation_layout(w, h, fm)
    kinds = [b[0] for b in blocks]
    assert {"tl", "tr", "bl", "br", "warn", "ai"} <= set(kinds)
    # the tilt warning has its own line
    warn = next(b for b in blocks if b[0] == "warn")
    assert warn[2][0] == "Gantry tilt 18.5°"
    for i, (_k, rect, lines, _r) in enumerate(blocks):
        assert rect.left() >= 0 and rect.top() >= 0 and rect.right() <= w and rect.bottom() <= h
        assert all(fm.horizontalAdvance(t) <= rect.width() + 1 for t in lines)
        for _k2, other, _l2, _r2 in blocks[i + 1 :]:
            assert not rect.intersects(other), (blocks[i][0], _k2)
    # long names are elided at their end, UIDs in their middle
    tl = next(b for b in blocks if b[0] == "tl")
    tr = next(b for b in blocks if b[0] == "tr")
    assert tl[2][0].endswith("…")
    # (how much of the UID's start is kept depends on the viewport's width: the side panels)
    uid = next(t for t in tr[2] if t.endswith("5678"))
    assert "…" in uid and uid.startswith("1.2")


def test_right_dock_keeps_its_width_with_a_long_uid(qtbot: Any, window: MainWindow) -> None:
    dock = window.panels["ai"]
    dock.raise_()
    qtbot.wait(50)
    before = dock.width()
    uid = "1.2.826.0.1.3680043.8.498." + "1234567890" * 8
    s = _ct(uid=uid)
    s.description = uid
    window._show_in(window.active_viewport(), s)
    window._set_active_viewport(window.active_viewport())
    panel = dock.widget()
    qtbot.waitUntil(lambda: panel.series is s, timeout=5000)
    qtbot.wait(50)
    assert dock.width() == before
    assert uid in panel.series_label.toolTip() and "…" in panel.series_label.shown_text()


def test_window_presets_are_editable_in_settings(qtbot: Any, window: MainWindow) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QTableWidgetItem

    from app.gui.dialogs import SettingsDialog
    from app.gui.presets import CT_PRESETS
    from app.gui.settings import load_settings

    dlg = SettingsDialog(window.settings, window)
    qtbot.addWidget(dlg)
    t = dlg.presets.table
    # the 8 CT presets are the defaults: name, W, L, key
    assert t.rowCount() == 8 == len(CT_PRESETS)
    assert [t.item(0, c).text() for c in range(4)] == ["Brain", "80", "40", "1"]
    assert [t.item(7, c).text() for c in range(4)] == ["Bone", "1800", "400", "8"]
    # edit one, add one on key 9
    t.item(0, 0).setText("Brain wide")
    t.item(0, 1).setText("120")
    t.item(0, 2).setText("35")
    dlg.presets.add_button.click()
    for c, v in enumerate(("Temporal bone", "4000", "700", "9")):
        t.setItem(8, c, QTableWidgetItem(v))
    window.apply_settings(dlg.result_settings())
    assert load_settings().window_presets[0] == "Brain wide|120|35|1"

    window._show_in(window.active_viewport(), _ct())
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_9)
    assert window.active_viewport().window_level == (700, 4000)
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert window.active_viewport().window_level == (35, 120)
    assert window.active_viewport().preset_name == "Brain wide"

    # restore defaults: stored as "the built-in list" again
    dlg2 = SettingsDialog(window.settings, window)
    qtbot.addWidget(dlg2)
    assert dlg2.presets.table.rowCount() == 9
    dlg2.presets.defaults_button.click()
    assert dlg2.result_settings().window_presets == []


def test_language_entry_is_native_and_says_it_applies_on_restart(
    qtbot: Any, window: MainWindow
) -> None:
    from app.gui.dialogs import SettingsDialog

    dlg = SettingsDialog(window.settings, window)
    qtbot.addWidget(dlg)
    dlg.show()
    names = [dlg.language.itemText(i) for i in range(dlg.language.count())]
    assert "简体中文" in names and "English" in names
    assert not dlg.language_note.isVisible()
    dlg.language.setCurrentIndex(dlg.language.findData("zh_CN"))
    assert dlg.language_note.isVisible() and "restart" in dlg.language_note.text()
