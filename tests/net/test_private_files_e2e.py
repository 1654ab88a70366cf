"""Issue 11, item 6 end to end: every file and folder Hilum writes with patient data is private.

Under the careless umask 022, one session scans, analyses (results, saliency, draft, PDF, DICOM
export), renders a frame, exports annotations, saves a hanging protocol and retrieves a study from
a real Orthanc (tests/net/conftest.py); then every path created under HILUM_HOME and the output
folders must be 0700 (folders) or 0600 (files). New code that writes without
:mod:`app.core.paths` fails here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pydicom
import pytest
from _orthanc import Orthanc

from app.cli import main


@pytest.fixture()
def loose_umask(monkeypatch: pytest.MonkeyPatch):
    """umask 022 for the whole test. ``hilum``'s entry point sets 077 as a second line of
    defence; it is held at 022 here so that each writer is checked on its own (library users
    such as batch workers in other processes never pass through the entry point)."""
    real = os.umask
    old = real(0o022)
    monkeypatch.setattr(os, "umask", lambda mask: 0o022)
    yield
    monkeypatch.undo()
    real(old)


def _not_private(root: Path) -> list[str]:
    bad = []
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        mode = stat.S_IMODE(p.stat().st_mode)
        want = 0o700 if p.is_dir() else 0o600
        if mode != want:
            bad.append(f"{p.relative_to(root.parent)} {oct(mode)}")
    return bad


def test_every_patient_file_is_private(
    loose_umask: None,
    orthanc: Orthanc,
    node: Any,
    dicom_dir: Path,
    tmp_path: Path,
    hilum_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cxr = dicom_dir / "cxr" / "cr_chest_pa_uncompressed.dcm"
    outputs = tmp_path / "outputs"  # folders Hilum creates (nested: parents are created too)
    # scan
    assert main(["scan", str(cxr)]) == 0
    # analyse: results, saliency, draft, PDF, DICOM export
    assert (
        main(
            [
                "analyze",
                str(cxr),
                "--out",
                str(outputs / "run" / "a"),
                "--saliency",
                "cam",
                "--device",
                "cpu",
                "--draft",
                "--pdf",
                "--dicom-export",
                "--quiet",
            ]
        )
        == 0
    )
    assert (outputs / "run" / "a" / "report.pdf").is_file()
    assert list((outputs / "run" / "a" / "dicom").glob("*.dcm"))
    # a rendered frame
    assert main(["render", str(cxr), "--out", str(outputs / "render" / "f" / "cxr.png")]) == 0
    # a measurement in the library, exported as GSPS + TID 1500 SR
    from app.dicom.library import Library
    from app.dicom.measurements import (
        ImageKey,
        Measurement,
        compute_values,
        save_measurement,
    )

    lib = Library()
    study = lib.studies()[0]
    series = study["series"][0]["series_uid"]
    inst = lib.instances(series)[0]
    pts = ((10.0, 10.0), (60.0, 60.0))
    save_measurement(
        lib,
        Measurement(
            "length",
            pts,
            ImageKey(study["study_uid"], series, inst["sop_uid"], 0),
            compute_values("length", pts, None, (0.2, 0.2)),
        ),
    )
    lib.close()
    ann = outputs / "ann" / "x"
    assert main(["annotations", "export", study["study_uid"], "--out", str(ann)]) == 0
    assert list(ann.glob("*.dcm"))
    # a user hanging protocol
    from app.dicom.hanging import Protocol, save_protocol

    save_protocol(Protocol.from_json({"name": "e2e", "layout": "1x1", "viewports": []}))
    # PACS retrieve (C-GET) into the library
    folder = dicom_dir / "mr_transfer_syntaxes"
    orthanc.load(folder)
    uid = str(
        pydicom.dcmread(
            next(p for p in sorted(folder.iterdir()) if p.name != "DIRFILE"),
            stop_before_pixels=True,
        ).StudyInstanceUID
    )
    assert main(["pacs", "retrieve", "orthanc", uid]) == 0
    capsys.readouterr()
    assert any((hilum_home / "data" / "pacs").rglob("*.dcm"))
    bad = _not_private(hilum_home) + _not_private(outputs)
    assert not bad, "not private:\n" + "\n".join(bad)
