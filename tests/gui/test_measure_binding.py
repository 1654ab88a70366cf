"""Measurements belong to the slice they were drawn on, survive series changes and are stored
in the library (the issue's defect: an ROI on one slice appeared on every slice)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _gui_helpers import wait_frame

from app.dicom.library import Library
from app.dicom.measurements import load_measurements
from app.gui.measure_binding import _IO, MeasurementBinder
from app.gui.series import SeriesData
from app.gui.settings import Settings
from app.gui.viewport import Viewport


def _flush_io() -> None:
    _IO.submit(lambda: None).result(timeout=30)


@pytest.fixture
def setup(
    qtbot: Any, ct_head_series: SeriesData, tmp_path: Path
) -> tuple[Viewport, MeasurementBinder, Library]:
    lib = Library(tmp_path / "lib.db")
    vp = Viewport(Settings())
    qtbot.addWidget(vp)
    vp.resize(600, 600)
    vp.show()
    binder = MeasurementBinder(vp, lambda: lib)
    vp.set_series(ct_head_series)
    wait_frame(qtbot, vp, 0)
    return vp, binder, lib


def test_roi_shows_only_on_its_slice_and_keeps_its_values(qtbot: Any, setup: Any) -> None:
    vp, _binder, lib = setup
    vp.set_index(12)
    wait_frame(qtbot, vp, 12)
    roi = vp.add_measurement("ellipse", [(200.0, 200.0), (300.0, 280.0)])
    values = dict(roi.values)
    assert roi.roi.isVisible() and "mean" in values
    vp.set_index(13)
    wait_frame(qtbot, vp, 13)
    assert not roi.roi.isVisible() and not roi.label.isVisible()
    assert roi.values == values  # not re-measured on another slice
    vp.set_index(12)
    wait_frame(qtbot, vp, 12)
    assert roi.roi.isVisible() and roi.values["mean"] == pytest.approx(values["mean"])
    _flush_io()
    stored = load_measurements(lib, vp.series.study_uid)
    assert len(stored) == 1 and stored[0].image.sop_uid == vp.series.frames[12].sop_uid
    assert (
        stored[0].values["mean"] == pytest.approx(values["mean"])
        and stored[0].values["unit"] == "HU"
    )


def test_measurements_survive_series_change_and_reopen(
    qtbot: Any, setup: Any, ct_head_series: SeriesData
) -> None:
    vp, _binder, lib = setup
    vp.set_index(5)
    wait_frame(qtbot, vp, 5)
    m = vp.add_measurement("length", [(100.0, 100.0), (200.0, 100.0)])
    length = m.values["length"]
    other = SeriesData.from_array(
        np.zeros((3, 64, 64), np.float32), modality="OT", study_uid="other", series_uid="other"
    )
    vp.set_series(other)
    assert vp.measurements == []
    vp.set_series(ct_head_series, 5)
    wait_frame(qtbot, vp, 5)
    assert len(vp.measurements) == 1
    back = vp.measurements[0]
    assert back.kind == "length" and back.values["length"] == pytest.approx(length)
    assert back.roi.isVisible()
    _flush_io()

    # a new viewport (the study reopened): the measurement comes back from the library
    vp2 = Viewport(Settings())
    qtbot.addWidget(vp2)
    vp2.resize(600, 600)
    vp2.show()
    MeasurementBinder(vp2, lambda: lib)
    vp2.set_series(ct_head_series, 0)
    wait_frame(qtbot, vp2, 0)
    qtbot.waitUntil(lambda: len(vp2.measurements) == 1, timeout=10000)
    assert not vp2.measurements[0].roi.isVisible()  # drawn on slice 5, not 0
    vp2.set_index(5)
    wait_frame(qtbot, vp2, 5)
    assert vp2.measurements[0].roi.isVisible()
    assert vp2.measurements[0].values["length"] == pytest.approx(length)

    # deleting it removes it from the library
    vp2.select(vp2.measurements[0])
    assert vp2.delete_selected()
    _flush_io()
    assert load_measurements(lib, ct_head_series.study_uid) == []


def test_cobb_angle_drawn_with_two_drags(qtbot: Any, setup: Any) -> None:
    from _gui_helpers import drag

    vp, _binder, lib = setup
    vp.fit()
    vp.set_tool("cobb")
    # first line: 10 degrees above horizontal; second: 15 degrees below (Cobb = 25 degrees)
    import math

    def line(x: float, y: float, deg: float, length: float = 120.0) -> tuple[Any, Any]:
        a = math.radians(deg)
        return (
            vp.image_to_widget(x, y),
            vp.image_to_widget(x + length * math.cos(a), y - length * math.sin(a)),
        )

    qtbot.wait(300)  # a reader's drags are not a millisecond apart (no double click)
    drag(vp, *line(150.0, 200.0, 10.0))
    assert len(vp.measurements) == 1 and vp._angle_pending is not None
    qtbot.wait(600)
    drag(vp, *line(150.0, 330.0, -15.0))
    m = vp.measurements[0]
    assert m.kind == "cobb" and vp._angle_pending is None
    assert m.values["angle"] == pytest.approx(25.0, abs=1.0)
    assert "Cobb" in m.label.toPlainText()
    _flush_io()
    stored = load_measurements(lib, vp.series.study_uid)
    assert [s.kind for s in stored] == ["cobb"] and len(stored[0].points) == 4


def test_key_image_and_reader_view_go_to_dicom(
    qtbot: Any, setup: Any, shared_data: Path, tmp_path: Path
) -> None:
    import pydicom

    from app.dicom.measurements import load_key_images, load_views
    from app.reporting.annotations import export_annotations

    vp, binder, lib = setup
    lib.scan([shared_data / "dicom" / "ct_head_ge"])
    vp.set_index(7)
    wait_frame(qtbot, vp, 7)
    vp.set_window(40.0, 120.0)
    vp.set_zoom(vp.zoom * 3)
    vp.add_measurement("length", [(200.0, 200.0), (300.0, 260.0)])
    assert binder.toggle_key_image()
    _flush_io()
    study = vp.series.study_uid
    view = load_views(lib, study)[0]
    assert (view.center, view.width) == (40.0, 120.0) and view.area is not None
    (x0, _y0), (x1, _y1) = view.area
    assert 0 <= x0 < x1 <= 512 and x1 - x0 < 300  # zoomed in: part of the image
    assert [k.image.sop_uid for k in load_key_images(lib, study)] == [vp.series.frames[7].sop_uid]
    files = export_annotations(lib, study, tmp_path / "out")
    names = sorted(f.name for f in files)
    assert names == ["GSPS_901.dcm", "KOS_key_images.dcm", "SR_measurements.dcm"]
    import shutil
    import subprocess

    for f in files:  # the tilted head CT lacks some Type 2 attributes: outputs stay valid
        out = subprocess.run(
            [shutil.which("dciodvfy") or "dciodvfy", str(f)],
            check=False,
            capture_output=True,
            text=True,
        )
        assert [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")] == []
    gsps = pydicom.dcmread(tmp_path / "out" / "GSPS_901.dcm")
    area = gsps.DisplayedAreaSelectionSequence[0]
    assert (
        int(area.DisplayedAreaBottomRightHandCorner[0])
        - int(area.DisplayedAreaTopLeftHandCorner[0])
        < 300
    )
    assert binder.toggle_key_image() is False  # pressing K again unmarks it
    _flush_io()
    assert load_key_images(lib, study) == []


def test_dragging_a_handle_is_written_once_when_it_rests(
    qtbot: Any, setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handle dragged across the image (30 moves) is written once, not on every move; the write
    holds the final position, and happens on the I/O thread."""
    import threading

    from PySide6.QtCore import QPointF

    from app.gui import measure_binding

    vp, binder, lib = setup
    vp.set_index(4)
    wait_frame(qtbot, vp, 4)
    m = vp.add_measurement("length", [(100.0, 100.0), (200.0, 100.0)])
    qtbot.waitUntil(lambda: not binder._dirty, timeout=5000)
    _flush_io()
    writes: list[tuple[float, str]] = []
    real = measure_binding.save_measurement

    def counting(library: Any, stored: Any) -> None:
        writes.append((stored.points[1][0], threading.current_thread().name))
        real(library, stored)

    monkeypatch.setattr(measure_binding, "save_measurement", counting)
    handle = m.roi.getHandles()[1]
    for i in range(1, 31):  # a drag: moves a few ms apart, never released
        m.roi.movePoint(handle, QPointF(200.0 + 2 * i, 100.0), finish=False, coords="parent")
        qtbot.wait(5)
    _flush_io()
    assert writes == []  # nothing written while the handle moves
    qtbot.waitUntil(lambda: len(writes) == 1, timeout=5000)  # ~300 ms after the last move
    qtbot.wait(500)
    _flush_io()
    assert len(writes) == 1 and writes[0][0] == pytest.approx(260.0)
    assert writes[0][1].startswith("hilum-measure-io")
    stored = load_measurements(lib, vp.series.study_uid)
    assert len(stored) == 1 and stored[0].points[1][0] == pytest.approx(260.0)

    # released: written at once, without waiting for the idle time
    m.roi.movePoint(handle, QPointF(150.0, 120.0), finish=False, coords="parent")
    m.roi.sigRegionChangeFinished.emit(m.roi)
    _flush_io()
    assert len(writes) == 2 and writes[1][0] == pytest.approx(150.0)
