"""The Query/Retrieve dialog and the GUI's background listener, against the real Orthanc."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pydicom
import pytest
from _orthanc import Orthanc, free_port
from PySide6.QtCore import Qt


@pytest.fixture
def window(qtbot: Any, node: Any) -> Any:
    from app.gui.main_window import MainWindow
    from app.gui.settings import Settings

    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.cancel_background()
    qtbot.waitUntil(lambda: not w.busy, timeout=30000)
    from app.gui.pacs_dialog import stop_listener

    stop_listener(w)
    w.close()


def test_query_retrieve_dialog_shows_first_image_while_retrieving(
    qtbot: Any, window: Any, orthanc: Orthanc, dicom_dir: Path
) -> None:
    from app.gui.pacs_dialog import QueryRetrieveDialog

    folder = dicom_dir / "ct_head_ge"
    orthanc.load(folder)
    ds = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
    assert window.act_pacs.text().startswith("PACS")
    dlg = QueryRetrieveDialog(window)
    qtbot.addWidget(dlg)
    assert dlg.node_name() == "orthanc"
    dlg.modality.setText("CT")
    dlg.search()
    qtbot.waitUntil(lambda: dlg.results.topLevelItemCount() == 1, timeout=30000)
    study = dlg.results.topLevelItem(0)
    assert study.text(1) == str(ds.PatientID) and study.text(5) == "28"
    study.setExpanded(True)  # series level
    qtbot.waitUntil(lambda: study.childCount() == 1, timeout=30000)
    assert study.child(0).text(4) == "CT"
    dlg.results.setCurrentItem(study)
    dlg.method.setCurrentIndex(dlg.method.findData("get"))
    dlg.retrieve()
    qtbot.waitUntil(lambda: dlg.last_report is not None or bool(dlg.last_error), timeout=120000)
    assert not dlg.last_error
    assert dlg.last_report.received == 28
    assert dlg.first_shown_at is not None and dlg.first_shown_at < dlg.done_at
    qtbot.waitUntil(
        lambda: (
            window.active_viewport().series is not None
            and window.active_viewport().frame is not None
        ),
        timeout=60000,
    )
    assert window.active_viewport().series.series_uid == str(ds.SeriesInstanceUID)
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    qtbot.waitUntil(lambda: len(window.active_viewport().series.frames) == 28, timeout=60000)
    # the browser's row for the series opens the whole series too, not the first arrival
    browser = window.browser
    row = browser._by_uid[(str(ds.SeriesInstanceUID), 0)]
    assert "28" in row.text(0)
    (shown,) = [
        s for s in browser.series_data.values() if s.series_uid == str(ds.SeriesInstanceUID)
    ]
    assert shown is window.active_viewport().series
    opened: list[Any] = []
    browser.series_activated.connect(opened.append)
    browser._activated(row)
    assert len(opened[0].frames) == 28


def _storescu(port: int, ae_title: str, files: list[Path]) -> None:
    sent = subprocess.run(
        ["storescu", "-aet", "DCMTK", "-aec", ae_title, "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr


@pytest.fixture
def listening(qtbot: Any, orthanc: Orthanc, node: Any) -> Any:
    """A window with "receive from PACS in the background" on: (window, port, AE title)."""
    from app.gui.main_window import MainWindow
    from app.gui.pacs_dialog import stop_listener
    from app.gui.settings import Settings
    from app.net.nodes import NodeStore

    port = free_port()
    store = NodeStore.load()
    store.set_local(port=port, listen_in_gui=True)
    store.save()
    w = MainWindow(Settings())
    qtbot.addWidget(w)
    try:
        assert w._pacs_listener is not None
        yield w, port, store.local.ae_title
    finally:
        stop_listener(w)
        w.close()


def test_background_listener_shows_arrivals_in_the_browser(
    qtbot: Any, listening: Any, dicom_dir: Path
) -> None:
    w, port, ae_title = listening
    files = sorted((dicom_dir / "mr_transfer_syntaxes").iterdir())[:2]
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    _storescu(port, ae_title, files)
    qtbot.waitUntil(lambda: study in w.browser._studies, timeout=30000)


def test_background_listener_keeps_a_growing_series_up_to_date(
    qtbot: Any, listening: Any, dicom_dir: Path
) -> None:
    """A PACS pushes a series in two goes: the browser's count follows each batch, and the
    series, opened after the first go, grows in its viewport after the second."""
    w, port, ae_title = listening
    files = sorted((dicom_dir / "ct_head_ge").iterdir())
    series_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    _storescu(port, ae_title, files[:5])
    qtbot.waitUntil(lambda: (series_uid, 0) in w.browser._by_uid, timeout=30000)
    row = w.browser._by_uid[(series_uid, 0)]
    qtbot.waitUntil(lambda: "5 images" in row.text(0), timeout=30000)
    w.browser._activated(row)  # the reader opens it
    qtbot.waitUntil(
        lambda: w.active_viewport().series is not None and w.active_viewport().series.count == 5,
        timeout=30000,
    )
    _storescu(port, ae_title, files[5:])
    qtbot.waitUntil(lambda: w.active_viewport().series.count == 28, timeout=30000)
    row = w.browser._by_uid[(series_uid, 0)]
    assert "28 images" in row.text(0)
    (listed,) = [d for d in w.browser.series_data.values() if d.series_uid == series_uid]
    assert listed is w.active_viewport().series


def test_dialog_cancel_keeps_the_library_consistent(
    qtbot: Any, window: Any, orthanc: Orthanc, dicom_dir: Path, hilum_home: Path
) -> None:
    """Cancel as soon as the first image arrives (the 140-slice phantom, so there is time)."""
    from app.dicom.library import Library
    from app.gui.pacs_dialog import QueryRetrieveDialog

    folder = dicom_dir / "ct_phantom_philips"
    orthanc.load(folder)
    study_uid = str(pydicom.dcmread(folder / "I10", stop_before_pixels=True).StudyInstanceUID)
    dlg = QueryRetrieveDialog(window)
    qtbot.addWidget(dlg)
    dlg.patient_id.setText(str(pydicom.dcmread(folder / "I10", stop_before_pixels=True).PatientID))
    dlg.search()
    qtbot.waitUntil(lambda: dlg.results.topLevelItemCount() >= 1, timeout=30000)
    for i in range(dlg.results.topLevelItemCount()):
        if dlg.results.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole + 1) == study_uid:
            dlg.results.setCurrentItem(dlg.results.topLevelItem(i))
    worker = dlg.retrieve()
    assert worker is not None
    worker.signals.item.connect(lambda _: dlg.cancel())
    cancelled: list[bool] = []
    worker.signals.cancelled.connect(lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: bool(cancelled) or dlg.last_report is not None, timeout=120000)
    assert cancelled and dlg.last_report is None
    assert "cancelled" in dlg.status.text()
    files = [p for p in (hilum_home / "data" / "pacs").rglob("*") if p.is_file()]
    rows = Library().study_instances(study_uid)
    assert 1 <= len(rows) < 140 and len(rows) == len(files)
    assert all(p.suffix == ".dcm" for p in files)


def test_export_dialog_sends_outputs_to_pacs_with_per_file_refusals(
    qtbot: Any, node: Any, orthanc: Orthanc, tmp_path: Path
) -> None:
    """Export as DICOM, then "Send to PACS": the SR, Encapsulated PDF and SC land in the real
    Orthanc; a file that cannot be sent gets its own line with the reason."""
    import numpy as np

    from app.core.paths import sample_path
    from app.core.types import ImageRef, LabelResult, ModelResult, ReportDraft
    from app.gui.panels.export import ExportContext, ExportDialog
    from app.reporting.pdf import KeyImage

    ds = pydicom.dcmread(sample_path())
    disp = (ds.pixel_array[::8, ::8] >> 4).astype(np.uint8)
    ref = ImageRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, "")
    draft = ReportDraft(
        study_uid=ds.StudyInstanceUID,
        indication="Cough.",
        findings="Right lower zone opacity.",
        impression="Pneumonia.",
    )
    results = [
        ModelResult(
            "pneumonia_cnn",
            "1.0.0",
            "ab" * 32,
            "CPUExecutionProvider",
            [LabelResult("pneumonia", 0.8, 0.5, True)],
        )
    ]
    overlay = np.stack([disp, disp // 2, disp // 3], -1).astype(np.uint8)
    dialog = ExportDialog(
        ExportContext(draft, results, [ds], [KeyImage(disp, overlay, legend="CAM", source=ref)])
    )
    qtbot.addWidget(dialog)
    box = dialog.pacs_send
    assert box.node_name() == "orthanc" and not box.send_button.isEnabled()  # nothing exported yet
    dialog.reader.setText("Jane Smith")
    dialog.sign_box.setChecked(True)
    dialog.out_dir.setText(str(tmp_path))
    dialog.pdf_box.setChecked(True)
    dialog.dicom_box.setChecked(True)
    dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog._worker is None and bool(dialog.files), timeout=120000)
    dcm = sorted(f for f in dialog.files if f.suffix == ".dcm")
    assert sorted(f.name.split("_")[0] for f in dcm) == ["PDF", "SC", "SR"]
    assert box.files == [f for f in dialog.files if f.suffix == ".dcm"]
    assert box.send_button.isEnabled()
    box.send_button.click()
    qtbot.waitUntil(lambda: box._worker is None and bool(box.results or box.error), timeout=60000)
    assert not box.error and all(i.ok for i in box.results), [i.message for i in box.results]
    assert box.status.text() == "Sent 3 of 3 file(s) to orthanc."
    assert not box.problems.isVisibleTo(box)
    for f in dcm:
        assert orthanc.find_instance(
            str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        )
    # a refused file is listed on its own line, the others still go
    junk = tmp_path / "notes.dcm"
    junk.write_text("not dicom")
    box.set_files([*dcm, junk])
    box.send()
    qtbot.waitUntil(lambda: box._worker is None and bool(box.results or box.error), timeout=60000)
    assert box.status.text() == "Sent 3 of 4 file(s) to orthanc."
    assert box.problems.count() == 1 and box.problems.isVisibleTo(box)
    assert box.problems.item(0).text().startswith("notes.dcm: Not a DICOM file")
