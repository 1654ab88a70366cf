"""Priors, hanging protocols and offset sync in the main window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from app.gui.browser import ROLE_KIND
from app.gui.series import SeriesData
from app.gui.settings import Settings


def _prior_copy(src: Path, out: Path, date: str) -> str:
    ds = pydicom.dcmread(src)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDate = date
    ds.save_as(out)
    return str(ds.StudyInstanceUID)


def test_chest_film_opens_beside_its_prior(qtbot: Any, shared_data: Path, tmp_path: Path) -> None:
    from app.core.progress import NullProgress
    from app.dicom.library import Library
    from app.gui.main_window import MainWindow

    src = shared_data / "dicom" / "cxr" / "cr_chest_pa_uncompressed.dcm"
    prior_uid = _prior_copy(src, tmp_path / "prior.dcm", "20030115")
    lib = Library()
    lib.scan([src, tmp_path / "prior.dcm"], progress=NullProgress())
    current = next(s for s in lib.studies() if s["study_uid"] != prior_uid)
    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.open_library_series(current["series"][0]["series_uid"])
    # the chest protocol puts the prior beside the current film
    qtbot.waitUntil(
        lambda: w.grid.layout_name == "1x2" and w.grid.visible[1].series is not None, timeout=60000
    )
    assert w.grid.visible[0].series.study_uid == current["study_uid"]
    assert w.grid.visible[1].series.study_uid == prior_uid
    assert w.hanging.last_plan.protocol == "Chest film: current and prior"
    assert [p["study_uid"] for p in w.hanging.priors] == [prior_uid]
    # the browser groups both studies under the patient, newest first
    qtbot.waitUntil(
        lambda: w.browser.topLevelItemCount() == 1 and w.browser.topLevelItem(0).childCount() == 2,
        timeout=30000,
    )
    patient = w.browser.topLevelItem(0)
    assert patient.data(0, ROLE_KIND) == "patient"
    assert w.browser.patient_studies(prior_uid) == [current["study_uid"], prior_uid]
    # the current layout can be saved as a protocol
    saved = w.hanging.current_protocol("My chest")
    assert saved.layout == "1x2" and [v["study"] for v in saved.viewports] == ["current", "prior"]
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    w.close()


def test_offset_sync_scrolls_by_landmark(qtbot: Any) -> None:
    from app.gui.main_window import MainWindow

    def series(z0: float, uid: str) -> SeriesData:
        return SeriesData.from_array(
            np.zeros((60, 32, 32), np.float32),
            modality="CT",
            orientation=(1, 0, 0, 0, 1, 0),
            study_uid=uid,
            series_uid=uid,
            positions=[(0.0, 0.0, z0 + k) for k in range(60)],
        )

    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.show()
    w.set_layout("1x2")
    a, b = w.grid.visible
    w._show_in(a, series(0.0, "current"))
    w._show_in(b, series(100.0, "prior"))  # the prior's table positions differ by 100 mm
    w.act_sync.setChecked(False)
    w.settings.sync_scroll = False
    a.set_index(10)
    b.set_index(30)  # the same landmark is slice 10 here and 30 there
    w.hanging.set_landmark()  # links them (turns sync on)
    assert w.settings.sync_scroll
    a.set_index(15)
    assert b.index == 35  # relative to the landmark, not the raw position
    w.hanging.sync.clear()
    a.set_index(20)
    assert b.index == 0  # raw positions: z=20 is below the prior's first slice
    w.close()
