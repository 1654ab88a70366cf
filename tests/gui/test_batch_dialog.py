"""The Batch dialog (issue 18): folders of studies analysed on a worker, per-study state and
failures, cancel, resume from DIR/batch.json; in this process and on a real local Ray runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_archive import BROKEN, FILMS, make_archive

from app.archive import BATCH_NAME, study_folder


def _table(dlg: Any) -> dict[str, tuple[str, str]]:
    t = dlg.table
    return {
        t.item(r, 0).text(): (t.item(r, 1).text(), t.item(r, 2).text()) for r in range(t.rowCount())
    }


def test_batch_dialog_runs_cancels_and_resumes(
    qtbot: Any, shared_data: Path, tmp_path: Path
) -> None:
    from app.gui.batch_dialog import BatchDialog

    studies = make_archive(shared_data, tmp_path / "in", films=FILMS[:2])
    out = tmp_path / "out"
    dlg = BatchDialog()
    qtbot.addWidget(dlg)
    dlg.add_folder(str(tmp_path / "in"))
    dlg.add_folder(str(tmp_path / "in"))  # once only
    assert dlg.folders.count() == 1
    dlg.out_edit.setText(str(out))
    dlg.saliency.setChecked(True)
    dlg.set_executor(None)
    assert dlg.options() == {
        "saliency": "cam",
        "draft": False,
        "pdf": False,
        "dicom_export": False,
        "deidentify": False,
    }
    # first run: cancelled as soon as one study is finished
    dlg.start()
    assert dlg.running and dlg.cancel_btn.isEnabled() and not dlg.start_btn.isEnabled()
    dlg._worker.signals.item.connect(lambda rec: dlg.cancel())
    qtbot.waitUntil(lambda: not dlg.running, timeout=180_000)
    assert dlg.status.text() == "Cancelled."
    first = _table(dlg)
    assert 1 <= len(first) < 3  # the cancel is queued to the GUI: one more may finish first
    recorded = json.loads((out / BATCH_NAME).read_text())["studies"]
    assert set(recorded) == set(first)
    # the rerun resumes: what finished is not analysed again, the rest is, the failure is shown
    dlg.start()
    qtbot.waitUntil(lambda: not dlg.running, timeout=180_000)
    rows = _table(dlg)
    assert set(rows) == set(studies)
    for uid, rel in studies.items():
        state, reason = rows[uid]
        if rel == BROKEN:
            assert state == "failed"
            assert reason == "The image data is corrupt and cannot be decoded (JPEG 2000)."
        elif uid in first and first[uid][0] == "done":
            assert state == "done (earlier run)"
        else:
            assert state == "done"
            assert list((out / study_folder(uid) / "saliency").glob("*.npy"))
    s = dlg.last_result["summary"]
    assert (s["done"], s["failed"], s["studies"]) == (2, 1, 3)
    assert "2 of 3 studies done, 1 failed" in dlg.status.text()
    assert dlg.start_btn.isEnabled() and not dlg.cancel_btn.isEnabled()


def test_batch_dialog_on_local_ray_runtime(qtbot: Any, shared_data: Path, tmp_path: Path) -> None:
    from app.gui.batch_dialog import BatchDialog

    studies = make_archive(shared_data, tmp_path / "in", films=FILMS[:1])
    out = tmp_path / "out"
    dlg = BatchDialog()
    qtbot.addWidget(dlg)
    dlg.add_folder(str(tmp_path / "in"))
    dlg.out_edit.setText(str(out))
    dlg.set_executor("auto")
    dlg.workers.setValue(2)
    dlg.start()
    qtbot.waitUntil(lambda: not dlg.running, timeout=240_000)
    rows = _table(dlg)
    assert {uid: rows[uid][0] for uid in studies} == {
        uid: "failed" if rel == BROKEN else "done" for uid, rel in studies.items()
    }
    state = json.loads((out / BATCH_NAME).read_text())
    assert state["executor"] == "ray" and state["ray_address"] == "auto"
    import ray

    assert not ray.is_initialized()  # the dialog's run closed its runtime
    # an address is needed for "Ray cluster at…"
    dlg.executor.setCurrentIndex(2)
    assert dlg.address.isEnabled()
    dlg.start()
    assert not dlg.running and "address of the Ray cluster" in dlg.status.text()


def test_main_window_file_menu_opens_batch_dialog(qtbot: Any) -> None:
    from app.gui.batch_dialog import BatchDialog
    from app.gui.main_window import MainWindow
    from app.gui.settings import Settings

    w = MainWindow(Settings())
    qtbot.addWidget(w)
    file_menu = w.menuBar().actions()[0].menu()
    assert w.act_batch in file_menu.actions()
    w.act_batch.trigger()
    dlg = w._batch_dialog
    assert isinstance(dlg, BatchDialog) and dlg.isVisible()
    w.act_batch.trigger()
    assert w._batch_dialog is dlg  # one dialog per window
    dlg.close()
    w.close()
