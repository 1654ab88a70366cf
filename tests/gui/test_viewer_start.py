"""A series opened from a DICOMDIR starts at image 1 (not wherever the preview file was)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.gui.main_window import MainWindow
from app.gui.settings import Settings


@pytest.fixture
def window(qtbot: Any) -> MainWindow:
    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.cancel_background()
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    w.close()


@pytest.mark.parametrize("what", ["DIRFILE", "folder"])
def test_dicomdir_series_starts_at_image_1(qtbot: Any, window: MainWindow, shared_data: Path,
                                          what: str) -> None:
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
