"""Reference lines across the normal layouts: the active viewport's slice on the others."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.gui.series import SeriesData
from app.gui.settings import Settings


def test_axial_slice_drawn_on_the_sagittal(qtbot: Any) -> None:
    from app.gui.main_window import MainWindow

    axial = SeriesData.from_array(
        np.zeros((40, 64, 64), np.float32),
        modality="MR",
        study_uid="s1",
        series_uid="ax",
        orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing=(1.0, 1.0),
        positions=[(-32.0, -32.0, float(z)) for z in range(40)],
    )
    sagittal = SeriesData.from_array(
        np.zeros((20, 60, 64), np.float32),
        modality="MR",
        study_uid="s1",
        series_uid="sag",
        orientation=(0, 1, 0, 0, 0, -1),
        pixel_spacing=(1.0, 1.0),
        positions=[(float(x), -32.0, 50.0) for x in range(-10, 10)],
    )
    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    w.set_layout("1x2")
    a, b = w.grid.visible
    w._show_in(a, axial)
    w._show_in(b, sagittal)
    w._set_active_viewport(a)
    a.set_index(20)  # z = 20 mm
    x, y = w.reference_lines.line_of(b)
    assert len(y) == 2 and y[0] == pytest.approx(30.5) and y[1] == pytest.approx(30.5)  # 50 - 20
    a.set_index(35)
    assert w.reference_lines.line_of(b)[1][0] == pytest.approx(15.5)
    assert len(w.reference_lines.line_of(a)[0]) == 0  # not on the active viewport itself
    w._set_active_viewport(b)  # now the sagittal cuts the axial
    b.set_index(10)  # x = 0 mm -> column 32 of the axial
    x, _ = w.reference_lines.line_of(a)
    assert x[0] == pytest.approx(32.5) and x[1] == pytest.approx(32.5)
    w.close()
