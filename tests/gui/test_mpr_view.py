"""The MPR layout on the tilted head CT: linked planes, crosshair, oblique rotation, slabs,
reference lines on the original slices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.gui.mpr_view import MprView, build_volume
from app.gui.series import SeriesData


@pytest.fixture
def mpr(qtbot: Any, ct_head_series: SeriesData, shared_data: Path) -> MprView:
    paths = sorted(str(p) for p in (shared_data / "dicom" / "ct_head_ge").iterdir())
    view = MprView()
    qtbot.addWidget(view)
    view.resize(1000, 800)
    view.show()
    view.set_volume(build_volume(paths), ct_head_series)
    return view


def test_three_planes_cross_at_the_crosshair(mpr: MprView) -> None:
    letters = {name: pane.plane.letters() for name, pane in mpr.panes.items()}
    assert letters["axial"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert letters["sagittal"] == {"left": "A", "right": "P", "top": "H", "bottom": "F"}
    c = mpr.center_point
    for pane in mpr.panes.values():
        assert abs(pane.plane.distance(c)) < 1e-6  # every plane passes through the crosshair
        assert pane.shown is not None and pane.shown.max() > 0
        for line in pane.lines.values():
            x, _y = line.getData()
            assert len(x) == 2  # the other planes' reference lines
    # the original pane shows the three planes on the tilted slice
    assert all(len(item.getData()[0]) == 2 for item in mpr.ref_lines.values())


def test_click_moves_the_other_planes(mpr: MprView) -> None:
    axial = mpr.panes["axial"]
    before = {k: p.plane.position for k, p in mpr.panes.items()}
    x, y = axial.to_view(mpr.center_point)
    axial.clicked(x + 40, y + 20)  # 40 px right (patient left), 20 px down (posterior)
    after = {k: p.plane.position for k, p in mpr.panes.items()}
    assert after["axial"] == pytest.approx(before["axial"])
    s = axial.plane.spacing
    assert after["coronal"] - before["coronal"] == pytest.approx(20 * s, abs=1e-3)
    assert abs(after["sagittal"] - before["sagittal"]) == pytest.approx(40 * s, abs=1e-3)


def test_rotation_gives_oblique_planes_and_slab(mpr: MprView) -> None:
    cor = mpr.panes["coronal"]
    thin = cor.image_data.copy()
    mpr.rotate("axial", 30)
    assert cor.title.text() == "Coronal (oblique)"
    assert abs(float(np.dot(cor.normal, [0, 1, 0]))) == pytest.approx(np.cos(np.radians(30)))
    assert mpr.panes["axial"].title.text() == "Axial"
    assert cor.plane.letters()["right"] in ("LP", "PL")
    oblique = cor.image_data.copy()
    assert oblique.shape != thin.shape or not np.allclose(oblique, thin)
    mpr.set_slab("mip", 10)
    assert np.all(cor.image_data >= oblique - 1e-3)
    assert "MIP 10 mm" in cor.info.text()
    mpr.reset()
    assert cor.title.text() == "Coronal"


def test_main_window_opens_mpr(qtbot: Any, ct_head_series: SeriesData) -> None:
    from app.gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1200, 900)
    win.show()
    win.show_series(ct_head_series)
    win.act_mpr.setChecked(True)
    qtbot.waitUntil(lambda: win.stack.currentWidget() is win.mpr_view, timeout=60000)
    assert win.mpr_view.volume is not None and win.mpr_view.volume.shape[0] == 28
    win.act_mpr.setChecked(False)
    assert win.stack.currentWidget() is win.grid


def test_measurement_on_a_reformat_stays_on_its_plane(
    qtbot: Any, mpr: MprView, tmp_path: Path, ct_head_series: SeriesData, shared_data: Path
) -> None:
    from app.dicom.library import Library
    from app.dicom.measurements import load_measurements
    from app.gui.measure_binding import _IO

    lib = Library(tmp_path / "lib.db")
    mpr.library = lambda: lib
    mpr.measure_box.setCurrentIndex(1)  # Length
    assert mpr.measure_tool == "length"
    sag = mpr.panes["sagittal"]
    sag.draw(True, False, (100.0, 100.0), (100.0, 100.0))
    sag.draw(False, True, (100.0, 100.0), (100.0, 300.0))
    m = sag.measurements[0]
    assert m.values["length"] == pytest.approx(200 * sag.plane.spacing)  # square pixels in mm
    assert m.roi.isVisible()
    before = mpr.center_point.copy()
    sag.step_slices(5)  # another sagittal plane
    assert not m.roi.isVisible()
    mpr.set_center(before)  # back on its plane
    assert m.roi.isVisible()
    _IO.submit(lambda: None).result(timeout=30)
    stored = load_measurements(lib, ct_head_series.study_uid)
    assert len(stored) == 1 and stored[0].image.is_reformat
    assert stored[0].values["length"] == pytest.approx(m.values["length"])

    # the layout opened again: the measurement comes back on the sagittal pane
    paths = sorted(str(p) for p in (shared_data / "dicom" / "ct_head_ge").iterdir())
    again = MprView()
    qtbot.addWidget(again)
    again.resize(1000, 800)
    again.show()
    again.library = lambda: lib
    again.set_volume(build_volume(paths), ct_head_series)
    qtbot.waitUntil(lambda: len(again.panes["sagittal"].measurements) == 1, timeout=10000)
    assert again.panes["sagittal"].measurements[0].roi.isVisible()


def test_reformat_measurement_moved_is_stored_once_on_release(
    qtbot: Any, mpr: MprView, tmp_path: Path, ct_head_series: SeriesData
) -> None:
    from PySide6.QtCore import QPointF

    from app.dicom.library import Library
    from app.dicom.measurements import load_measurements
    from app.gui.measure_binding import _IO

    lib = Library(tmp_path / "lib.db")
    mpr.library = lambda: lib
    mpr.measure_box.setCurrentIndex(1)  # Length
    sag = mpr.panes["sagittal"]
    sag.draw(True, False, (100.0, 100.0), (100.0, 100.0))
    sag.draw(False, True, (100.0, 100.0), (100.0, 300.0))
    m = sag.measurements[0]
    handle = m.roi.getHandles()[1]
    for y in range(302, 342, 2):  # a drag: nothing written while it moves
        m.roi.movePoint(handle, QPointF(100.0, float(y)), finish=False, coords="parent")
    _IO.submit(lambda: None).result(timeout=30)
    (stored,) = load_measurements(lib, ct_head_series.study_uid)
    assert stored.points[1][1] == pytest.approx(300.0)
    m.roi.sigRegionChangeFinished.emit(m.roi)  # released: the new position is stored
    _IO.submit(lambda: None).result(timeout=30)
    (stored,) = load_measurements(lib, ct_head_series.study_uid)
    assert stored.points[1][1] == pytest.approx(340.0)
    assert stored.values["length"] == pytest.approx(m.values["length"])


def test_reformat_measurement_imported_from_tid1500_comes_back_on_its_plane(
    qtbot: Any, mpr: MprView, tmp_path: Path, ct_head_series: SeriesData, shared_data: Path
) -> None:
    """A length drawn on a sagittal reformat goes to the TID 1500 SR as 3-D coordinates; imported
    into another library it is placed on the sagittal pane, at its plane, with its length."""
    from app.dicom.library import Library
    from app.dicom.measurements import load_measurements
    from app.gui.measure_binding import _IO
    from app.reporting.annotations import export_annotations, import_annotations

    lib = Library(tmp_path / "lib.db")
    lib.scan([shared_data / "dicom" / "ct_head_ge"])
    mpr.library = lambda: lib
    mpr.measure_box.setCurrentIndex(1)  # Length
    sag = mpr.panes["sagittal"]
    mpr.set_center(mpr.center_point + np.array([7.3, 0.0, 0.0]))  # off the volume centre
    drawn_at = mpr.center_point.copy()
    sag.draw(True, False, (120.0, 90.0), (120.0, 90.0))
    sag.draw(False, True, (120.0, 90.0), (150.0, 250.0))
    length = sag.measurements[0].values["length"]
    _IO.submit(lambda: None).result(timeout=30)
    files = export_annotations(lib, ct_head_series.study_uid, tmp_path / "out")
    sr = next(f for f in files if f.name.startswith("SR_"))

    fresh = Library(tmp_path / "fresh.db")
    fresh.scan([shared_data / "dicom" / "ct_head_ge"])
    summary = import_annotations(fresh, [sr])
    assert summary.measurements == 1, summary.skipped
    (stored,) = load_measurements(fresh, ct_head_series.study_uid)
    assert stored.image.is_reformat and stored.image.series_uid == ct_head_series.series_uid
    assert stored.values["length"] == pytest.approx(length, rel=1e-4)

    from app.gui.mpr_view import build_volume

    paths = sorted(str(p) for p in (shared_data / "dicom" / "ct_head_ge").iterdir())
    again = MprView()
    qtbot.addWidget(again)
    again.resize(1000, 800)
    again.show()
    again.library = lambda: fresh
    again.set_volume(build_volume(paths), ct_head_series)
    qtbot.waitUntil(lambda: len(again.panes["sagittal"].measurements) == 1, timeout=10000)
    back = again.panes["sagittal"].measurements[0]
    assert not back.roi.isVisible()  # the volume centre: another sagittal plane
    again.set_center(drawn_at)
    assert back.roi.isVisible()
    np.testing.assert_allclose(back.points(), [(120.0, 90.0), (150.0, 250.0)], atol=1e-2)
    assert back.values["length"] == pytest.approx(length, rel=1e-3)
    assert all(
        not m.roi.isVisible() for n in ("axial", "coronal") for m in again.panes[n].measurements
    )


def test_angle_and_cobb_on_reformats_stay_on_their_plane_and_come_back(
    qtbot: Any, mpr: MprView, tmp_path: Path, ct_head_series: SeriesData, shared_data: Path
) -> None:
    """An angle (drag the first arm, click the second) and a Cobb angle (two drags) drawn on
    reformat panes: shown only on their plane, stored with the study, restored on reopening."""
    from app.dicom.library import Library
    from app.dicom.measurements import load_measurements
    from app.gui.measure_binding import _IO

    lib = Library(tmp_path / "lib.db")
    mpr.library = lambda: lib
    mpr.measure_box.setCurrentIndex(mpr.measure_box.findData("angle"))
    assert mpr.measure_tool == "angle"
    sag = mpr.panes["sagittal"]
    sag.draw(True, False, (100.0, 100.0), (100.0, 100.0))
    sag.draw(False, True, (100.0, 100.0), (100.0, 300.0))  # first arm: a -> vertex
    _IO.submit(lambda: None).result(timeout=30)
    assert load_measurements(lib, ct_head_series.study_uid) == []  # not stored half-drawn
    assert sag.complete_angle(300.0, 300.0)  # the click places the second arm
    angle = sag.measurements[0]
    assert angle.kind == "angle" and angle.values["angle"] == pytest.approx(90.0)

    mpr.measure_box.setCurrentIndex(mpr.measure_box.findData("cobb"))
    cor = mpr.panes["coronal"]
    cor.draw(True, False, (100.0, 100.0), (100.0, 100.0))
    cor.draw(False, True, (100.0, 100.0), (300.0, 100.0))  # first line
    cor.draw(True, False, (100.0, 200.0), (100.0, 200.0))
    cor.draw(False, True, (100.0, 200.0), (300.0, 300.0))  # second line
    (cobb,) = cor.measurements
    assert cobb.kind == "cobb" and len(cobb.points()) == 4
    assert cobb.values["angle"] == pytest.approx(np.degrees(np.arctan(0.5)))
    assert angle.roi.isVisible() and cobb.roi.isVisible() and cobb.label.isVisible()

    before = mpr.center_point.copy()
    sag.step_slices(5)  # another sagittal plane: the angle is not shown there
    assert not angle.roi.isVisible() and not angle.label.isVisible()
    assert cobb.roi.isVisible()  # the coronal plane did not move
    cor.step_slices(-5)
    assert not cobb.roi.isVisible()
    mpr.set_center(before)
    assert angle.roi.isVisible() and cobb.roi.isVisible()

    _IO.submit(lambda: None).result(timeout=30)
    stored = {m.kind: m for m in load_measurements(lib, ct_head_series.study_uid)}
    assert set(stored) == {"angle", "cobb"}
    assert all(m.image.is_reformat for m in stored.values())
    assert len(stored["angle"].points) == 3 and len(stored["cobb"].points) == 4
    assert stored["angle"].values["angle"] == pytest.approx(90.0)
    assert stored["cobb"].values["angle"] == pytest.approx(cobb.values["angle"])

    paths = sorted(str(p) for p in (shared_data / "dicom" / "ct_head_ge").iterdir())
    again = MprView()
    qtbot.addWidget(again)
    again.resize(1000, 800)
    again.show()
    again.library = lambda: lib
    again.set_volume(build_volume(paths), ct_head_series)
    qtbot.waitUntil(
        lambda: (
            len(again.panes["sagittal"].measurements) == 1
            and len(again.panes["coronal"].measurements) == 1
        ),
        timeout=10000,
    )
    back_angle = again.panes["sagittal"].measurements[0]
    back_cobb = again.panes["coronal"].measurements[0]
    assert back_angle.kind == "angle" and back_angle.roi.isVisible()
    assert back_angle.values["angle"] == pytest.approx(90.0)
    assert back_cobb.kind == "cobb" and back_cobb.roi.isVisible()
    np.testing.assert_allclose(back_cobb.points(), cobb.points(), atol=1e-3)


def test_unfinished_angle_is_dropped_when_the_tool_changes(mpr: MprView) -> None:
    mpr.measure_box.setCurrentIndex(mpr.measure_box.findData("angle"))
    ax = mpr.panes["axial"]
    ax.draw(True, False, (50.0, 50.0), (50.0, 50.0))
    ax.draw(False, True, (50.0, 50.0), (80.0, 50.0))
    assert len(ax.measurements) == 1
    mpr.measure_box.setCurrentIndex(mpr.measure_box.findData("length"))
    assert ax.measurements == [] and not ax.complete_angle(10.0, 10.0)
