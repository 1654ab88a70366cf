"""A source header with invalid values (hashed dates, over-long accession) still exports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from app.reporting.deid import header_copy
from app.reporting.dicom_out import drop_invalid_values

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install poppler-utils dicom3tools")
    return path


def _dx(shared_data: Path) -> Path:
    return shared_data / "dicom" / "cxr" / "dx_chest_pa_j2k_lossless.dcm"


def test_invalid_values_are_emptied_in_a_copy_only(shared_data: Path) -> None:
    src = pydicom.dcmread(_dx(shared_data), stop_before_pixels=True)
    birth = src["PatientBirthDate"].value
    copy = header_copy(src)
    emptied = drop_invalid_values(copy)
    assert {"PatientBirthDate", "AccessionNumber"} <= set(emptied)
    assert copy.PatientBirthDate in ("", None) and copy.AccessionNumber in ("", None)
    assert copy.PatientID == src.PatientID and copy.Modality == "DX"  # valid values kept
    assert src["PatientBirthDate"].value == birth  # the source is not touched


def test_analyze_exports_pdf_and_dicom_from_a_header_with_hashed_dates(
    shared_data: Path, tmp_path: Path, hilum_home: Path
) -> None:
    out = tmp_path / "out"
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        HILUM_HOME=str(hilum_home),
        HILUM_SHARED_DATA=str(shared_data),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "analyze",
            "--pdf",
            "--dicom-export",
            "--out",
            str(out),
            str(_dx(shared_data)),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "could not be built" not in proc.stderr
    assert "UserWarning" not in proc.stderr  # no Python warnings on the terminal
    files = sorted((out / "dicom").glob("*.dcm"))
    kinds = {f.name[:3] for f in files}
    # the SC key image follows the study session's key-image rule (CAM comes with the classifying
    # pass); what matters here is that every output was built from the invalid header
    assert {"PDF", "SR_"} <= kinds <= {"PDF", "SR_", "SC_"}
    src = pydicom.dcmread(_dx(shared_data), stop_before_pixels=True)
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.PatientID == src.PatientID and ds.StudyInstanceUID == src.StudyInstanceUID
        assert ds.PatientBirthDate == "" and ds.AccessionNumber == ""  # invalid: left empty
        report = subprocess.run([_tool("dciodvfy"), str(f)], capture_output=True, text=True)
        errors = [
            ln
            for ln in (report.stdout + report.stderr).splitlines()
            if ln.startswith("Error") and ("Birth" in ln or "Accession" in ln)
        ]
        assert errors == []
    text = subprocess.run(
        [_tool("pdftotext"), "-layout", str(out / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert src.PatientID in text and "DX" in text and "d14a028c" not in text
