"""Issue 15: presentation states, TID 1500 reports and key object selections imported from the
window: dropped on it (with or without their images) or chosen with File ▸ Import annotations;
imported as annotations on their images, never as images."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.core.paths import sample_path
from app.dicom.library import Library
from app.dicom.measurements import (
    ImageKey,
    KeyImageMark,
    Measurement,
    compute_values,
    load_key_images,
    load_measurements,
    save_key_image,
    save_measurement,
)
from app.gui.main_window import MainWindow
from app.reporting.annotations import export_annotations


@pytest.fixture
def objects(tmp_path: Path) -> tuple[Path, list[Path], str, str]:
    """The sample film, and a GSPS, TID 1500 SR and KOS made for it in another library."""
    film = tmp_path / "film" / "film.dcm"
    film.parent.mkdir()
    shutil.copy(sample_path(), film)
    lib = Library(tmp_path / "other.db")
    lib.scan([film.parent])
    study = lib.studies()[0]["study_uid"]
    series = lib.series(study)[0]["series_uid"]
    inst = lib.instances(series)[0]
    ref = ImageKey(study, series, inst["sop_uid"], 0)
    pts = ((100.0, 100.0), (300.0, 180.0))
    save_measurement(
        lib, Measurement("length", pts, ref, compute_values("length", list(pts), None, (0.2, 0.2)))
    )
    save_key_image(lib, KeyImageMark(ref, "lesion"))
    files = export_annotations(lib, study, tmp_path / "out")
    lib.close()
    assert sorted(f.name[:3] for f in files) == ["GSP", "KOS", "SR_"]
    return film, files, study, inst["sop_uid"]


def _drop(window: MainWindow, paths: list[Path]) -> None:
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
    QApplication.sendEvent(window, enter)  # a real drag: enter, then drop
    assert enter.isAccepted()
    event = QDropEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, event)


def test_dropped_with_their_image_they_are_annotations_not_images(
    qtbot: Any, window: MainWindow, objects: Any
) -> None:
    film, files, study, sop = objects
    _drop(window, [film, *files])
    qtbot.waitUntil(
        lambda: getattr(window, "annotations_imported", None) is not None, timeout=15000
    )
    summary = window.annotations_imported
    # the length is in both the GSPS and the SR: read twice, stored once
    assert summary.measurements == 2 and summary.key_images == 1, summary.skipped
    # the film is the only series: the GSPS, SR and KOS were not imported as images
    assert [s.series_uid for s in window.browser.series_data.values()] == [
        window.library().instance(sop)["series_uid"]
    ]
    assert len(load_measurements(window.library(), study)) == 1
    assert [k.image.sop_uid for k in load_key_images(window.library(), study)] == [sop]
    # and the film on screen shows the imported length
    vp = window.active_viewport()
    qtbot.waitUntil(
        lambda: len(vp.measurements) == 1 and vp.measurements[0].roi.isVisible(), timeout=30000
    )
    assert vp.measurements[0].kind == "length"


def test_file_menu_imports_on_a_worker(qtbot: Any, window: MainWindow, objects: Any) -> None:
    film, files, study, _sop = objects
    file_menu = next(
        a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "File"
    )
    assert window.act_import_annotations in file_menu.actions()
    with qtbot.waitSignal(window.import_finished, timeout=15000):
        window.open_paths([str(film)])
    qtbot.waitUntil(lambda: window.active_viewport().series is not None, timeout=30000)
    from app.gui.measure_binding import import_annotation_files

    worker = import_annotation_files(window, [str(f) for f in files])
    assert worker is not None  # the GUI thread only starts it
    qtbot.waitUntil(
        lambda: getattr(window, "annotations_imported", None) is not None, timeout=15000
    )
    assert window.annotations_imported.measurements == 2
    assert len(load_measurements(window.library(), study)) == 1
    vp = window.active_viewport()
    qtbot.waitUntil(lambda: len(vp.measurements) == 1, timeout=30000)
    # a GSPS dropped alone (its image already open) is imported as an annotation too
    window.annotations_imported = None
    _drop(window, [files[0]])
    qtbot.waitUntil(lambda: window.annotations_imported is not None, timeout=15000)
    assert len(window.browser.series_data) == 1
