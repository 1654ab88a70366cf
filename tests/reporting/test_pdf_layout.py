"""The report PDF as a reader sees it (pdftotext): one row per image with its instance number,
no repeated rows or provenance lines, no "Image 1 / Image 1", the colour map actually used,
local times."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.types import ImageRef, ReportDraft
from app.reporting.pdf import KeyImage, PatientBlock, build_pdf, local_time


def _text(pdf: Path) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext is not installed: apt-get install poppler-utils")
    return subprocess.run(
        [tool, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def two_instances(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The two CR instances of one series (Im 7 and Im 1), analysed with CAM in jet."""
    from app.inference.analyze import analyze_paths
    from app.saliency.api import analyze_hook

    out = tmp_path_factory.mktemp("two")
    cxr = shared_data / "dicom" / "cxr"
    files = [
        str(cxr / "cr_chest_pa_uncompressed.dcm"),
        str(cxr / "cr_chest_pa_jpegls_near_lossless.dcm"),
    ]
    doc = analyze_paths(files, out, device="cpu", hooks=[analyze_hook("cam", colormap="jet")])
    return {"doc": doc, "dir": out, "files": files}


def test_two_instances_one_row_each_no_repeats(two_instances: dict, tmp_path: Path) -> None:
    from app.reporting.export import (
        export_report,
        key_images_from_analysis,
        model_results_from_document,
        read_headers,
    )

    doc, files = two_instances["doc"], two_instances["files"]
    study = doc["images"][0]["study_uid"]
    results = model_results_from_document(doc, study)
    assert len(results) == 2
    draft = ReportDraft(
        study_uid=study,
        findings="Clear lungs.",
        impression="Normal.",
        reader_name="Dr Ada Reader",
        signed_off_at="2026-11-30T09:22:17+00:00",
    )
    keys = key_images_from_analysis(
        doc, two_instances["dir"], study, positive_only=False, max_images=1
    )
    # the same runs reach the export twice (stored per series and per study)
    written = export_report(
        draft, results + results, read_headers(files), tmp_path, dicom=False, key_images=keys
    )
    text = _text(written[0])
    rows = [ln for ln in text.splitlines() if re.match(r"\s*(Im \d+|-)\s+pneumonia_cnn ", ln)]
    assert len(rows) == 2, text
    assert sorted(re.search(r"Im (\d+)", r).group(1) for r in rows) == ["1", "7"]
    prov = [ln for ln in text.splitlines() if "sha256" in ln]
    assert len(prov) == 1, prov
    flat = " ".join(text.split())
    assert "colour map jet" in flat and "colour map inferno" not in flat
    assert re.search(r"Image 1 \(Im \d\)", text)


def test_default_caption_is_not_repeated_and_times_are_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        draft = ReportDraft(
            study_uid="1.2.3",
            findings="x",
            impression="y",
            reader_name="Dr Ada Reader",
            signed_off_at="2026-11-30T09:22:17+00:00",
        )
        img = np.zeros((64, 64), np.uint8)
        keys = [
            KeyImage(
                display=img,
                caption="Image 1",
                source=ImageRef("1.2.3", "1.2.3.4", "1.2.3.4.5", "/x.dcm"),
            ),
            KeyImage(display=img, caption="left lower zone"),
        ]
        pdf = build_pdf(tmp_path / "r.pdf", draft, [], PatientBlock(), key_images=keys)
        text = _text(pdf)
        assert local_time("2026-11-30T09:22:17+00:00") == "2026-11-30 17:22 CST"
        assert "Signed off by Dr Ada Reader at 2026-11-30 17:22 CST" in text
        assert "T09:22" not in text and "+00:00" not in text
        assert len(re.findall(r"\bImage 1\b", text)) == 1
        assert "Image 2" in text and "left lower zone" in text
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
