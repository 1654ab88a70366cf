"""A series opened from a DICOMDIR starts at image 1 (not wherever the preview file was)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.gui.main_window import MainWindow


@pytest.mark.parametrize("what", ["DIRFILE", "folder"])
def test_dicomdir_series_starts_at_image_1(
    qtbot: Any, window: MainWindow, shared_data: Path, what: str
) -> None:
    folder = shared_data / "dicom" / "ct_phantom_philips"
    target = folder / "DIRFILE" if what == "DIRFILE" else folder
    window.open_paths([str(target)])
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    vp = window.active_viewport()
    qtbot.waitUntil(lambda: vp.series is not None and not vp.series.preview, timeout=30000)
    assert vp.series.count == 140
    assert vp.index == 0
    first = vp.series.frames[0]
    numbers = [f.instance_number for f in vp.series.frames if f.instance_number is not None]
    # image 1 of the series as sorted (by position; this phantom's numbers follow it)
    assert first.instance_number == min(numbers) or first.instance_number == max(numbers)


def test_drop_on_the_report_editor_imports_the_file(
    qtbot: Any, window: MainWindow, shared_data: Path
) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    dock = window.panels["report"]
    dock.show()
    dock.raise_()
    editor = dock.widget().editor
    editor.setPlainText("FINDINGS: clear.")
    film = shared_data / "dicom" / "cxr" / "cr_chest_pa_uncompressed.dcm"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(film))])
    target = editor.viewport()
    pos = QPointF(10, 10)
    enter = QDragEnterEvent(
        pos.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(window.first_image_painted, timeout=60000):
        drop = QDropEvent(
            pos,
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(target, drop)
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    # the panel now shows the imported study's (empty) draft: never a file:// line
    assert "file:" not in editor.toPlainText() and str(film) not in editor.toPlainText()
    assert window.active_viewport().series is not None
    # plain text still drops into the editor as text
    text = QMimeData()
    text.setText("pasted words")
    enter = QDragEnterEvent(
        pos.toPoint(),
        Qt.DropAction.CopyAction,
        text,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, enter)
    QApplication.sendEvent(
        target,
        QDropEvent(
            pos,
            Qt.DropAction.CopyAction,
            text,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )
    assert "pasted words" in editor.toPlainText()


def test_key_image_legend_names_the_saliency_colour_map(
    qtbot: Any, window: MainWindow, shared_data: Path
) -> None:
    import numpy as np

    with qtbot.waitSignal(window.first_image_painted, timeout=60000):
        window.open_paths([str(shared_data / "dicom" / "cxr" / "dx_chest_pa_j2k_lossless.dcm")])
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    vp = window.active_viewport()
    rows, cols = vp.frame.shape[:2]
    layer = np.zeros((rows, cols, 4), np.uint8)
    layer[rows // 4 : rows // 2, cols // 4 : cols // 2] = (253, 231, 37, 200)
    vp.set_overlay(layer)
    window.panels["saliency"].widget().colormap.setCurrentText("viridis")
    ki = window.panels["export"].widget().add_current_image()
    assert ki is not None and ki.overlay is not None
    assert "viridis" in ki.legend and "red" not in ki.legend
    assert ki.legend_image is not None and ki.legend_image.dtype == np.uint8
