"""End to end on real data: the bundled classifier and CAM run on the bundled chest film
(``analyze_paths`` with the saliency hook), then the report with those results and overlays is
exported as PDF + DICOM, plain and de-identified, and every object is validated."""

from __future__ import annotations

import json
import shutil
import subprocess

import pydicom
import pytest

from app.core.paths import sample_path
from app.core.types import ReportDraft
from app.reporting.export import (
    export_report,
    key_images_from_analysis,
    model_results_from_document,
    read_headers,
    source_paths_from_document,
)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install poppler-utils dicom3tools")
    return path


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    from app.inference.analyze import analyze_paths
    from app.saliency.api import analyze_hook

    out = tmp_path_factory.mktemp("analysis")
    analyze_paths([str(sample_path())], out, device="cpu", hooks=[analyze_hook("cam")])
    return json.loads((out / "results.json").read_text()), out


@pytest.mark.parametrize("deidentify", [False, True])
def test_analysis_to_pdf_and_dicom(analysis, tmp_path, deidentify):
    doc, results_dir = analysis
    src = pydicom.dcmread(sample_path(), stop_before_pixels=True)
    results = model_results_from_document(doc, str(src.StudyInstanceUID))
    assert [r.model_id for r in results] == ["pneumonia_cnn"]
    keys = key_images_from_analysis(doc, results_dir, positive_only=False)
    assert len(keys) == 1 and keys[0].overlay is not None
    assert keys[0].overlay.shape[:2] == (int(src.Rows), int(src.Columns))
    sources = read_headers(source_paths_from_document(doc))
    draft = ReportDraft(
        study_uid=str(src.StudyInstanceUID),
        indication="Fever.",
        findings="Right lower zone opacity.",
        impression="Pneumonia likely.",
        reader_name="Jane Smith",
        signed_off_at="2026-11-28T21:00:00+00:00",
    )
    # the sample does not state Burned In Annotation: a de-identified export includes its pixels
    # only once the user confirmed them (issue 11 item 4)
    files = export_report(
        draft,
        results,
        sources,
        tmp_path,
        deidentify=deidentify,
        key_images=keys,
        pixels_reviewed=deidentify,
    )
    assert [f.name.split("_")[0] for f in files] == ["report.pdf", "PDF", "SR", "SC"]
    text = subprocess.run(
        [_tool("pdftotext"), str(files[0]), "-"], capture_output=True, text=True
    ).stdout
    label = results[0].labels[0]
    assert f"{label.probability:.3f}" in text and "cam map of pneumonia_cnn" in text
    for f in files[1:]:
        out = subprocess.run([_tool("dciodvfy"), str(f)], capture_output=True, text=True)
        errors = [l for l in (out.stdout + out.stderr).splitlines() if l.startswith("Error")]
        assert not errors, f"{f.name}: {errors}"
        raw = f.read_bytes()
        assert (str(src.PatientID).encode() in raw) is (not deidentify)
    sr = pydicom.dcmread(files[2])
    nums = []

    def walk(items):
        for it in items:
            if it.ValueType == "NUM":
                nums.append(float(it.MeasuredValueSequence[0].NumericValue))
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(sr.ContentSequence)
    assert nums == [pytest.approx(label.probability, abs=1e-6)]
