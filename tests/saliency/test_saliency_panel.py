"""The saliency dock on the real main window: compute CAM for a chest film and drive the overlay."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")


def test_panel_computes_and_colours_the_overlay(qtbot: Any, shared_data: Path) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow
    from app.gui.panels.saliency import create_panel
    from app.gui.settings import Settings

    window = MainWindow(Settings())
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    try:
        film = shared_data / "dicom" / "cxr" / "cr_chest_pa_uncompressed.dcm"
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(film))])
        pos = QPointF(600, 400)
        with qtbot.waitSignal(window.first_image_painted, timeout=60000):
            QApplication.sendEvent(
                window,
                QDragEnterEvent(
                    pos.toPoint(),
                    Qt.DropAction.CopyAction,
                    mime,
                    Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier,
                ),
            )
            QApplication.sendEvent(
                window,
                QDropEvent(
                    pos,
                    Qt.DropAction.CopyAction,
                    mime,
                    Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier,
                ),
            )
        qtbot.waitUntil(lambda: not window.busy, timeout=60000)
        vp = window.active_viewport()
        rows, cols = vp.frame.shape[:2]

        dock = create_panel(window)
        panel = dock.widget()
        # the legend is drawn only while the panel is on screen (start-up cost): bring it forward
        dock.show()
        dock.raise_()
        qtbot.waitUntil(panel.isVisible, timeout=5000)
        qtbot.waitUntil(lambda: panel.model.findData("pneumonia_cnn") >= 0, timeout=30000)
        panel.model.setCurrentIndex(panel.model.findData("pneumonia_cnn"))
        panel.method.setCurrentText("cam")
        panel.compute()
        qtbot.waitUntil(lambda: panel.result is not None, timeout=60000)
        assert panel.result["method"] == "cam" and panel.label.currentText() == "pneumonia"
        overlay = vp.overlay
        assert overlay is not None and overlay.shape == (rows, cols, 4)
        visible = (overlay[..., 3] > 0).mean()
        assert 0 < visible < 1  # threshold 0.2 hides the weakest parts
        # Raising the threshold hides more; contour mode draws lines only.
        panel.threshold.setValue(80)
        assert (vp.overlay[..., 3] > 0).mean() < visible
        before = panel.legend.pixmap().toImage()
        colours = vp.overlay.copy()
        panel.colormap.setCurrentText("jet")
        assert not panel.legend.pixmap().isNull() and panel.legend.pixmap().toImage() != before
        assert not np.array_equal(vp.overlay, colours)  # the overlay is re-coloured too
        panel.contour.setChecked(True)
        assert (vp.overlay[..., 3] > 0).mean() < 0.1
        panel.enabled.setChecked(False)
        assert not vp.overlay_item.isVisible()
    finally:
        window.cancel_background()
        qtbot.waitUntil(lambda: not window.busy, timeout=30000)
        window.close()
