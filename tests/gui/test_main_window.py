"""The main window: drag and drop, import log, browser, layouts, tags, shortcuts, panels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QMessageBox

from _gui_helpers import wait_frame, wheel
from app.gui.main_window import MainWindow
from app.gui.series import SeriesData
from app.gui.settings import Settings


def drop(window: MainWindow, paths: list[Path]) -> None:
    """A real drag-enter + drop of local files/folders on the window."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(
        pos.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    ev = QDropEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, ev)


def test_drop_folder_shows_series_and_first_image(
    qtbot: Any, window: MainWindow, shared_data: Path
) -> None:
    with qtbot.waitSignal(window.first_image_painted, timeout=60000):
        drop(window, [shared_data / "dicom" / "ct_head_ge"])
    vp = window.active_viewport()
    assert vp.series is not None and vp.frame is not None
    assert vp.frame.shape == (512, 512) and float(vp.frame.min()) < -900  # HU
    assert window.first_image_ms is not None and window.first_image_ms > 0
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    # the full, sorted series replaced the preview in the viewport and is in the browser
    assert vp.series.count == 28 and not vp.series.preview
    loaded = window.browser.series_items()
    assert [s.count for s in loaded] == [28]
    assert loaded[0].thumbnail is not None and loaded[0].thumbnail.dtype == np.uint8
    assert window.import_log.entries() == []
    # the image on screen is not blank
    grab = vp.grab().toImage()
    assert grab.width() > 100
    # scrolling through the window's viewport works
    wheel(vp, QPointF(200, 200), -2)
    assert vp.index == 2
    ref = window.current_image()
    assert (
        ref is not None and ref.sop_uid == vp.series.frames[2].sop_uid and os.path.exists(ref.path)
    )


def test_drop_broken_lists_each_problem_and_crashes_nothing(
    qtbot: Any, window: MainWindow, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialogs: list[str] = []
    for name in ("warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, lambda *a, _n=name, **k: dialogs.append(_n))
    broken = shared_data / "dicom" / "broken"
    with qtbot.waitSignal(window.import_finished, timeout=60000):
        drop(window, [broken])
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    entries = window.import_log.entries()
    names = sorted(os.path.basename(p) for p, _ in entries)
    assert names == sorted(os.listdir(broken))
    messages = dict((os.path.basename(p), m) for p, m in entries)
    assert "empty" in messages["empty.dcm"].lower()
    assert "not a dicom" in messages["not_dicom.dcm"].lower()
    assert "truncated" in messages["cr_chest_truncated.dcm"].lower()
    assert "corrupt" in messages["dx_chest_corrupt_j2k_stream.dcm"].lower()
    assert all("Traceback" not in m for m in messages.values())
    assert dialogs == []
    assert window.log_dock.isVisible()
    # the window still works: load a good series after the bad ones
    with qtbot.waitSignal(window.first_image_painted, timeout=60000):
        window.open_paths([str(shared_data / "dicom" / "mr_transfer_syntaxes")])
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    assert any(s.modality == "MR" for s in window.browser.series_items())


def test_layouts_sync_scroll_and_panels_signals(qtbot: Any, window: MainWindow) -> None:
    vol = np.random.default_rng(1).normal(0, 50, (30, 64, 64)).astype(np.float32)
    a = SeriesData.from_array(
        vol,
        modality="CT",
        units="HU",
        orientation=(1, 0, 0, 0, 1, 0),
        positions=[(0, 0, 2.0 * i) for i in range(30)],
        series_uid="1.2.3",
        study_uid="9",
    )
    b = SeriesData.from_array(
        vol[::2],
        modality="CT",
        units="HU",
        orientation=(1, 0, 0, 0, 1, 0),
        positions=[(0, 0, 4.0 * i) for i in range(15)],
        series_uid="1.2.4",
        study_uid="9",
    )
    seen: list[Any] = []
    window.image_changed.connect(seen.append)
    window.set_layout("1x2")
    assert len(window.grid.visible) == 2
    left, right = window.grid.visible
    window._show_in(left, a)
    window._show_in(right, b)
    window._set_active_viewport(left)
    window.act_sync.setChecked(True)
    window._toggle_sync()
    left.set_index(20)  # z = 40 mm
    assert right.index == 10  # z = 40 mm in the other series
    assert seen and seen[-1] is not None and seen[-1].series_uid == "1.2.3"
    window.set_layout("2x2")
    assert len(window.grid.visible) == 4
    window.set_layout("1x1")
    assert len(window.grid.visible) == 1


def test_number_keys_apply_presets_through_the_window(qtbot: Any, window: MainWindow) -> None:
    vol = np.linspace(-1000, 1000, 64 * 64, dtype=np.float32).reshape(1, 64, 64)
    window._show_in(window.active_viewport(), SeriesData.from_array(vol, modality="CT", units="HU"))
    window.activateWindow()
    for key, (c, w) in {
        Qt.Key.Key_4: (-600, 1500),
        Qt.Key.Key_8: (400, 1800),
        Qt.Key.Key_1: (40, 80),
    }.items():
        qtbot.keyClick(window, key)
        vp = window.active_viewport()
        assert vp.window_level == (c, w)


def test_tag_browser_searches_the_current_image(
    qtbot: Any, window: MainWindow, ct_head_series: SeriesData
) -> None:
    window._show_in(window.active_viewport(), ct_head_series)
    window.show_tags()
    tb = window.tag_browser
    assert tb is not None
    qtbot.waitUntil(lambda: tb.tree.topLevelItemCount() > 50, timeout=30000)
    tb.search.setText("modality")
    rows = tb.visible_rows()
    assert rows and all("modality" in " ".join(r).lower() for r in rows)
    assert any(r[0] == "(0008,0060)" and r[2] == "CT" for r in rows)
    tb.search.setText("")
    assert any("<binary" in r[2] for r in tb.visible_rows())  # pixel data summarised, never dumped
    tb.close()


def test_shortcut_help_lists_the_actions(window: MainWindow) -> None:
    from app.gui.dialogs import ShortcutsDialog

    dlg = ShortcutsDialog(window.actions(), window)
    table = dict((v, k) for k, v in dlg.rows)
    assert table["Length"] == "L"
    assert table["Window preset 1"] == "1"
    assert table["Cine play/pause"] == "Space"
    assert "Right drag" in dict(dlg.rows)


def test_panels_dock_on_the_right(window: MainWindow) -> None:
    import importlib

    from app.gui.panels import PANEL_MODULES

    assert {"ai", "saliency", "report", "export"} <= {n.rsplit(".", 1)[-1] for n in PANEL_MODULES}
    for name in PANEL_MODULES:
        short = name.rsplit(".", 1)[-1]
        importlib.import_module(name)  # every listed panel ships with the app
        dock = window.panels.get(short)
        assert isinstance(dock, QDockWidget), f"{name} exists but no dock was added"
        assert dock.widget() is not None
        assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea


def test_settings_and_geometry_survive_a_restart(qtbot: Any, hilum_home: Path) -> None:
    from app.gui.settings import load_settings

    first = MainWindow(Settings())
    qtbot.addWidget(first)
    first.resize(760, 560)  # within the offscreen screen (800x600)
    first.set_layout("2x2")
    first.act_annotations.setChecked(False)
    first._toggle_annotations()
    first.close()
    assert (hilum_home / "config" / "hilum.ini").exists()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.settings.layout == "2x2" and len(again.grid.visible) == 4
    assert again.settings.show_annotations is False and load_settings().layout == "2x2"
    assert (again.width(), again.height()) == (760, 560)
    again.close()


def test_drag_enter_refuses_non_files(window: MainWindow) -> None:
    mime = QMimeData()
    mime.setText("hello")
    enter = QDragEnterEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


def test_series_dragged_from_the_browser_onto_a_viewport(
    qtbot: Any, window: MainWindow, ct_head_series: SeriesData
) -> None:
    from app.gui.browser import SERIES_MIME

    window.browser.add_series(ct_head_series)
    window.set_layout("1x2")
    right = window.grid.visible[1]
    item = window.browser._series[ct_head_series.key]
    mime = window.browser.mimeData([item])
    assert mime.hasFormat(SERIES_MIME)
    pos = QPointF(right.width() / 2, right.height() / 2)
    enter = QDragEnterEvent(
        pos.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(right, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(
        right,
        QDropEvent(
            pos,
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )
    assert right.series is ct_head_series and window.active_viewport() is right
    wait_frame(qtbot, right)


def test_drop_a_zip_archive(
    qtbot: Any, window: MainWindow, shared_data: Path, tmp_path: Path
) -> None:
    import zipfile

    archive = tmp_path / "mr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted((shared_data / "dicom" / "mr_transfer_syntaxes").iterdir())[:3]:
            zf.write(p, f"study/{p.name}")
    with qtbot.waitSignal(window.first_image_painted, timeout=60000):
        drop(window, [archive])
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    vp = window.active_viewport()
    assert vp.series is not None and vp.series.modality == "MR" and vp.frame.shape == (384, 384)


def test_settings_dialog_applies_and_stores(qtbot: Any, window: MainWindow) -> None:
    from app.gui.dialogs import SettingsDialog
    from app.gui.settings import load_settings

    dlg = SettingsDialog(window.settings, window)
    dlg.layout_box.setCurrentText("1x2")
    dlg.hide_identity.setChecked(True)
    dlg.fps.setValue(25)
    new = dlg.result_settings()
    window.apply_settings(new)
    assert len(window.grid.visible) == 2 and window.settings.cine_fps == 25
    stored = load_settings()
    assert stored.layout == "1x2" and stored.hide_patient_identity and stored.cine_fps == 25


def test_recent_studies_come_back_from_the_library(qtbot: Any, shared_data: Path) -> None:
    from app.core.progress import NullProgress
    from app.dicom.library import Library
    from app.gui.browser import ROLE_KIND

    Library().scan([shared_data / "dicom" / "ct_head_ge"], progress=NullProgress())
    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.browser.topLevelItemCount() == 1, timeout=30000)
    study = w.browser.topLevelItem(0).child(0)  # patient > study > series
    assert study.childCount() == 1 and study.child(0).data(0, ROLE_KIND) == "library"
    with qtbot.waitSignal(w.first_image_painted, timeout=60000):
        w.browser.itemClicked.emit(study.child(0), 0)
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    assert w.active_viewport().series.count == 28
    w.close()


def _enhanced_mr_builder() -> Any:
    """``_enhanced_mr`` of tests/dicom/test_dicom_series.py (one builder for both tests)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "dicom" / "test_dicom_series.py"
    spec = importlib.util.spec_from_file_location("_hilum_series_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._enhanced_mr


def test_enhanced_multiframe_with_two_frame_types_opens_as_two_stacks(
    qtbot: Any, window: MainWindow, shared_data: Path, tmp_path: Path
) -> None:
    """The window stacks through app.dicom.series: magnitude and phase are not interleaved."""
    folder = tmp_path / "enhanced"
    folder.mkdir()
    path, expected = _enhanced_mr_builder()(shared_data / "dicom", folder, "type")
    drop(window, [folder])
    qtbot.waitUntil(lambda: len(window.browser.series_items()) == 2, timeout=60000)
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    stacks = window.browser.series_items()
    assert [s.count for s in stacks] == [expected.shape[1]] * 2
    assert "M_FFE" in stacks[0].description and "P_FFE" in stacks[1].description
    assert all(ref.path == str(path) for s in stacks for ref in s.frames)
    for k, stack in enumerate(stacks):
        # each stack holds one frame type only, in slice order (either direction)
        frames = np.stack([stack.decode(i) for i in range(stack.count)])
        if not np.array_equal(frames, expected[k]):
            frames = frames[::-1]
        np.testing.assert_array_equal(frames, expected[k])
        assert any("same positions" in w for w in stack.warnings)
