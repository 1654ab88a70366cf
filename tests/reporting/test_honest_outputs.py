"""Reliability everywhere a result appears (PDF, SR, draft), sentence evidence and the sign-off check."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pydicom

from app.core.paths import sample_path, shared_data_dir
from app.core.types import LabelResult, ModelResult
from app.reporting.export import export_report
from app.reporting.signoff import acknowledge, compare, sentence_evidence

from test_export import dciodvfy_errors, make_draft, pdf_text, sr_items, sr_texts

OUTSIDE = "outside intended use: patient age 64 years is outside 1-5 years"


def result(
    label: str,
    p: float,
    threshold: float = 0.5,
    reliability: str = "within intended use",
    model: str = "chest_cnn",
) -> ModelResult:
    return ModelResult(
        model_id=model,
        model_version="1.0.0",
        sha256="ab" * 32,
        provider="CPUExecutionProvider",
        labels=[LabelResult(label, p, threshold, p >= threshold)],
        ood={"method": "mahalanobis", "score": 812.4, "threshold": 79.0, "flagged": True},
        reliability=reliability,
        saliency={"files": {label: {"png": f"saliency/x_{label}.png"}}},
    )


def test_pdf_and_sr_state_outside_intended_use(tmp_path: Path) -> None:
    ds = pydicom.dcmread(sample_path())
    draft = dataclasses.replace(
        make_draft(ds),
        acknowledgements=acknowledge(
            compare(
                "FINDINGS: The lungs are clear.\nIMPRESSION: Normal.",
                [result("pleural effusion", 0.91)],
            ),
            "Jane Smith",
        ),
    )
    files = export_report(
        draft,
        [result("pneumonia", 0.997, reliability=OUTSIDE, model="pneumonia_cnn")],
        [ds],
        tmp_path,
        pdf=True,
        dicom=True,
    )
    text = " ".join(pdf_text(tmp_path / "report.pdf").split())
    assert "Reliability: outside intended use: patient age 64 years is outside 1-5 years" in text
    sr_path = next(f for f in files if f.name.startswith("SR_"))
    sr = pydicom.dcmread(sr_path)
    codes = [
        (c.ConceptNameCodeSequence[0].CodeMeaning, c.ConceptCodeSequence[0].CodeMeaning)
        for c in sr_items(sr, "CODE")
    ]
    assert ("AI result reliability", "Outside intended use") in codes
    comments = [v for k, v in sr_texts(sr) if k == "Comment"]
    assert any(
        c.startswith("patient age 64 years is outside 1-5 years [OOD mahalanobis") for c in comments
    )
    assert any(
        "AI flagged Pleural Effusion (0.91); your report does not mention it: acknowledged" in c
        for c in comments
    )
    assert not dciodvfy_errors(sr_path)


def test_draft_does_not_state_a_flagged_finding() -> None:
    from app.reporting.consistency import check
    from app.reporting.generator import build_conditioning, draft

    cond = build_conditioning(
        [result("pneumonia", 0.997, reliability=OUTSIDE, model="pneumonia_cnn")],
        {"Modality": "CR", "ViewPosition": "PA"},
    )
    assert cond.positives == [] and cond.negatives == []
    text = draft(cond, device="cpu", include_banner=False).read()
    assert "The AI result for pneumonia (pneumonia_cnn) is not applicable to this study" in text
    assert "Findings are consistent with pneumonia" not in text
    assert check(text, [], "", "") == []


def test_sign_off_comparison_messages() -> None:
    results = [
        (result("pleural effusion", 0.91), "1.2.3"),
        (result("cardiomegaly", 0.12), "1.2.3"),
        (result("pneumonia", 0.99, reliability=OUTSIDE, model="pneumonia_cnn"), "1.2.3"),
    ]
    text = "FINDINGS: The heart is enlarged. The lungs are clear.\nIMPRESSION: Cardiomegaly."
    msgs = [d.message for d in compare(text, results)]
    assert msgs == [
        "AI flagged Pleural Effusion (0.91); your report does not mention it",
        "Your report states Cardiomegaly; the AI found it below threshold (0.12)",
    ]
    # a report that states what the AI found, and nothing it did not, has nothing to acknowledge
    assert (
        compare(
            "FINDINGS: There is a small pleural effusion.\nIMPRESSION: Pleural effusion.", results
        )
        == []
    )
    acks = acknowledge(compare(text, results), "Jane Smith")
    assert {a["reader"] for a in acks} == {"Jane Smith"} and all(
        a["decision"].startswith("acknowledged") for a in acks
    )
    ev = sentence_evidence(text, results)
    heart = next(e for e in ev if e["sentence"] == "The heart is enlarged.")
    assert (
        heart["findings"][0]["model_id"] == "chest_cnn"
        and heart["findings"][0]["probability"] == 0.12
    )
    assert heart["findings"][0]["saliency_png"] == "saliency/x_cardiomegaly.png"


def test_draft_check_cli(tmp_path: Path) -> None:
    doc = {
        "images": [
            {
                "sop_uid": "1.2.3",
                "study_uid": "1.2",
                "results": [
                    result("pleural effusion", 0.91).to_dict(),
                    result("cardiomegaly", 0.12).to_dict(),
                ],
            }
        ]
    }
    (tmp_path / "results.json").write_text(json.dumps(doc))
    (tmp_path / "report.txt").write_text(
        "FINDINGS: The heart is enlarged.\nIMPRESSION: Cardiomegaly.\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "draft",
            "--check",
            str(tmp_path / "report.txt"),
            "--results",
            str(tmp_path / "results.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines() == [
        "- AI flagged Pleural Effusion (0.91); your report does not mention it",
        "- Your report states Cardiomegaly; the AI found it below threshold (0.12)",
    ]


def test_model_result_round_trips_reliability() -> None:
    r = result("pneumonia", 0.9, reliability=OUTSIDE)
    back = ModelResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.reliability == OUTSIDE and back.ood == r.ood
    assert dataclasses.asdict(back)["reliability"] == OUTSIDE


def test_pdf_lists_the_readers_acknowledgements(tmp_path: Path) -> None:
    ds = pydicom.dcmread(sample_path())
    acks = acknowledge(
        compare(
            "FINDINGS: The lungs are clear.\nIMPRESSION: Normal.",
            [result("pleural effusion", 0.91)],
        ),
        "Jane Smith",
        note="small, old",
    )
    draft = dataclasses.replace(make_draft(ds), acknowledgements=acks)
    export_report(draft, [result("pneumonia", 0.2)], [ds], tmp_path, pdf=True, dicom=False)
    text = " ".join(pdf_text(tmp_path / "report.pdf").split())
    assert "READER'S DECISIONS ON AI DISCREPANCIES" in text
    assert (
        "AI flagged Pleural Effusion (0.91); your report does not mention it: "
        "acknowledged: report kept as written"
    ) in text
    assert "small, old" in text


def test_pdf_identical_films_each_carry_their_reliability(tmp_path: Path) -> None:
    """The two CR films of the shared data (the same film, Im 7 JPEG-LS and Im 1 uncompressed,
    with the same result), exported from the study session the GUI exports from: each image's
    row carries its own reliability row."""
    from app.core.types import AnalysisRun, ImageResult
    from app.workflow.session import StudySession

    cxr = shared_data_dir() / "dicom" / "cxr"
    paths = [cxr / "cr_chest_pa_jpegls_near_lossless.dcm", cxr / "cr_chest_pa_uncompressed.dcm"]
    dss = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    r = result("pneumonia", 0.997, reliability=OUTSIDE, model="pneumonia_cnn")
    run = AnalysisRun(
        images=tuple(
            ImageResult(
                str(p),
                str(ds.StudyInstanceUID),
                str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID),
                "CR",
                results=(r,),
            )
            for p, ds in zip(paths, dss)
        )
    )
    draft = dataclasses.replace(make_draft(dss[0]), study_uid=str(dss[0].StudyInstanceUID))
    session = StudySession(draft.study_uid)
    session.runs[""] = run
    export_report(draft, session.model_results(), dss, tmp_path, pdf=True, dicom=False)
    text = pdf_text(tmp_path / "report.pdf")
    flat = " ".join(text.split())
    assert flat.count("Reliability: outside intended use") == 2
    rows = [
        ln.split()[:2] for ln in text.splitlines() if "pneumonia_cnn" in ln and "POSITIVE" in ln
    ]
    assert rows == [["Im", "7"], ["Im", "1"]]
    # each reliability row follows its own image's row
    assert (
        flat.index("Im 7")
        < flat.index("Reliability")
        < flat.index("Im 1")
        < flat.rindex("Reliability")
    )


def test_deidentified_pdf_acknowledgements_name_no_reader(tmp_path: Path) -> None:
    ds = pydicom.dcmread(sample_path())
    acks = acknowledge(
        compare(
            "FINDINGS: The lungs are clear.\nIMPRESSION: Normal.",
            [result("pleural effusion", 0.91)],
        ),
        "Jane Smith",
    )
    draft = dataclasses.replace(make_draft(ds), acknowledgements=acks)
    export_report(
        draft, [result("pneumonia", 0.2)], [ds], tmp_path, pdf=True, dicom=False, deidentify=True
    )
    text = " ".join(pdf_text(tmp_path / "report.pdf").split())
    assert "your report does not mention it: acknowledged" in text
    assert "Jane Smith" not in text and "De-identified reader" in text
