"""Reference lines across the normal layouts: the active viewport's slice on the others."""

from __future__ import annotations

from typing import Any

import numpy as np
import pydicom
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
        frame_of_reference_uid="1.2.3.4",
        orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing=(1.0, 1.0),
        positions=[(-32.0, -32.0, float(z)) for z in range(40)],
    )
    sagittal = SeriesData.from_array(
        np.zeros((20, 60, 64), np.float32),
        modality="MR",
        study_uid="s1",
        series_uid="sag",
        frame_of_reference_uid="1.2.3.4",
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


def _sagittal_of(study_uid: str, frame_of_reference_uid: str) -> SeriesData:
    """A sagittal stack through the head CT's volume, in the given frame of reference."""
    return SeriesData.from_array(
        np.zeros((20, 300, 256), np.float32),
        modality="CT",
        study_uid=study_uid,
        series_uid=f"sag-{frame_of_reference_uid}",
        frame_of_reference_uid=frame_of_reference_uid,
        orientation=(0, 1, 0, 0, 0, -1),
        pixel_spacing=(1.0, 1.0),
        positions=[(float(x), -125.0, 200.0) for x in range(-10, 10)],
    )


def test_lines_only_within_one_frame_of_reference(qtbot: Any, ct_head_series: SeriesData) -> None:
    """Two series of one study in different frames of reference get no lines (their patient
    coordinates are not comparable); the same frame of reference gets them, both ways."""
    from app.gui.main_window import MainWindow

    ct = ct_head_series
    header = pydicom.dcmread(ct.frames[0].path, stop_before_pixels=True)
    assert ct.frame_of_reference_uid == str(header.FrameOfReferenceUID)  # carried from the header
    other = _sagittal_of(ct.study_uid, "1.2.826.0.1.3680043.9.4245.1")
    same = _sagittal_of(ct.study_uid, ct.frame_of_reference_uid)
    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    w.set_layout("1x2")
    a, b = w.grid.visible
    w._show_in(a, ct)
    w._show_in(b, other)
    w._set_active_viewport(a)
    a.set_index(14)
    assert len(w.reference_lines.line_of(b)[0]) == 0  # same study, other frame of reference
    w._set_active_viewport(b)
    assert len(w.reference_lines.line_of(a)[0]) == 0
    w._show_in(b, same)
    assert len(w.reference_lines.line_of(a)[0]) == 2  # the sagittal cuts the axial
    w._set_active_viewport(a)
    x, y = w.reference_lines.line_of(b)
    assert len(x) == 2 and x[0] != pytest.approx(x[1])  # the tilted axial cuts the sagittal
    assert y[0] != pytest.approx(y[1])  # obliquely (gantry tilt)
    w.set_layout("2x2")
    c = w.grid.visible[2]
    w._show_in(c, other)
    assert len(w.reference_lines.line_of(b)[0]) == 2
    assert len(w.reference_lines.line_of(c)[0]) == 0
    w.close()
