"""The batch loop over study sessions: analyse -> CAM -> draft -> export, as ``hilum analyze`` and ``demo`` run it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest

from app.core.paths import sample_path
from app.workflow.batch import analyze


@pytest.mark.parametrize("reader", ["", "Dr Ada Reader"])
def test_export_records_who_signed_off(tmp_path: Path, reader: str) -> None:
    doc = analyze(
        [str(sample_path())],
        tmp_path,
        device="cpu",
        saliency="cam",
        pdf=True,
        dicom_export=True,
        reader_name=reader,
    )
    (files,) = doc["outputs"].values()
    assert (tmp_path / "draft.txt").read_text().startswith("AI-generated draft")
    assert (tmp_path / "saliency").is_dir() and (tmp_path / "report.pdf").exists()
    sr = pydicom.dcmread(next(f for f in files if Path(f).name.startswith("SR_")))
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    if reader:
        assert sr.VerificationFlag == "VERIFIED" and sr.CompletionFlag == "COMPLETE"
        assert "Ada" in str(sr.VerifyingObserverSequence[0].VerifyingObserverName)
        assert f"Signed off by {reader}" in text
    else:
        # an unattended batch export must never look like a physician's sign-off
        assert sr.VerificationFlag == "UNVERIFIED" and sr.PreliminaryFlag == "PRELIMINARY"
        assert "VerifyingObserverSequence" not in sr
        assert "Not signed off" in text
        assert "Signed off by" not in text
