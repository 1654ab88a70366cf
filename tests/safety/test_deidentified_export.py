"""Issue 11, items 3, 4 and 5: free text scrubbed on export with the header-aware scrubber, the
Secondary Capture burned-in rule, and a de-identified output folder with no original identifier."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.cli import main
from app.core.paths import sample_path
from app.core.types import ImageRef, LabelResult, ModelResult, ReportDraft
from app.reporting.export import export_report
from app.reporting.pdf import KeyImage
from tests.safety._openai_server import FakeOpenAI
from tests.safety.test_remote_drafting import PHI

RESULTS = [
    ModelResult(
        model_id="pneumonia_cnn",
        model_version="1.0.0",
        sha256="3f" * 32,
        provider="CPUExecutionProvider",
        labels=[LabelResult("pneumonia", 0.912, 0.5, True)],
        provenance={"app_version": "0.1.0"},
    )
]
TYPED = (
    "DOB 12/04/1956, referred by Dr REFDOC from STMUNGO HOSPITAL on 2024-03-01, "
    "MRN PIDCR998877, cough"
)
SECRETS = [
    "ZZDOE",
    "PIDCR998877",
    "ACC778899",
    "STMUNGO",
    "REFDOC",
    "1956",
    "2024-03-01",
    "OPSMITH",
    "XRAYSTN42",
    "STU5521",
    "OPID55443",
    "Kelvin",
    "Jane Reader",
]


def _pdf_text(path: Path) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("pdftotext is not installed (poppler-utils)")
    return subprocess.run(
        [tool, "-layout", str(path), "-"], capture_output=True, text=True, timeout=120
    ).stdout


def _phi_source(tmp_path: Path, burned: str | None = None) -> tuple[Path, pydicom.Dataset]:
    ds = pydicom.dcmread(sample_path())
    for k, v in PHI.items():
        setattr(ds, k, v)
    if burned is not None:
        ds.BurnedInAnnotation = burned
    path = tmp_path / "in" / "cxr.dcm"
    path.parent.mkdir(exist_ok=True)
    ds.save_as(path)
    return path, ds


def _key_image(ds: pydicom.Dataset, path: Path) -> KeyImage:
    disp = np.full((64, 64), 100, np.uint8)
    rgb = np.stack([disp] * 3, -1)
    return KeyImage(
        display=disp,
        overlay=rgb,
        legend="CAM pneumonia",
        caption="PA chest",
        source=ImageRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, str(path)),
    )


def _draft(ds: pydicom.Dataset) -> ReportDraft:
    return ReportDraft(
        study_uid=str(ds.StudyInstanceUID),
        indication=TYPED,
        comparison="Prior at STMUNGO HOSPITAL 03/01/2023",
        findings="John ZZDOE: opacity.",
        impression="Pneumonia. Call Dr REFDOC.",
        reader_name="Dr Jane Reader",
        signed_off_at="2026-11-30T09:00:00+00:00",
    )


def _elements(ds: pydicom.Dataset) -> list[pydicom.DataElement]:
    out: list[pydicom.DataElement] = []
    ds.walk(lambda _d, e: out.append(e))
    return out


def _all_text(ds: pydicom.Dataset) -> str:
    out: list[str] = []
    ds.walk(lambda _d, e: out.append(str(e.value)) if e.VR not in ("OB", "OW", "UN") else None)
    return "\n".join(out)


def _uid_scrubber(files: list[Path], originals: list[str]):
    """A function that replaces, in a text, every UID Hilum made for ``files``' DICOM outputs.

    Hilum's new UIDs are random digits and may hold a secret such as the birth year "1956" by
    chance (they also appear as the PDF's document id and in file names); the original UIDs
    are not replaced, so they are still searched for.
    """
    made = {
        str(e.value)
        for f in files
        if f.suffix == ".dcm"
        for e in _elements(pydicom.dcmread(f, stop_before_pixels=True))
        if e.VR == "UI" and str(e.value) not in originals
    }

    def without_made(text: str) -> str:
        for uid in sorted(made, key=len, reverse=True):
            text = text.replace(uid, "<uid>")
        return text

    return without_made


# -- item 3 ---------------------------------------------------------------------------------------
def test_free_text_scrubbed_in_pdf_encapsulated_pdf_and_sr(tmp_path):
    path, ds = _phi_source(tmp_path)
    out = tmp_path / "out"
    files = export_report(
        _draft(ds),
        RESULTS,
        [pydicom.dcmread(path, stop_before_pixels=True)],
        out,
        pdf=True,
        dicom=True,
        deidentify=True,
    )
    without_made = _uid_scrubber(
        files, [str(ds.get(k)) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
    )
    texts = {"report.pdf": _pdf_text(out / "report.pdf")}
    for f in files:
        if f.suffix == ".dcm":
            d = pydicom.dcmread(f)
            texts[f.name] = _all_text(d)
            if "EncapsulatedDocument" in d:
                inner = tmp_path / "inner.pdf"
                inner.write_bytes(bytes(d.EncapsulatedDocument)[: d.EncapsulatedDocumentLength])
                texts["inner.pdf"] = _pdf_text(inner)
    assert any(name.startswith("SR_") for name in texts) and "inner.pdf" in texts
    for name, text in texts.items():
        for secret in SECRETS + ["John"]:
            assert secret.lower() not in without_made(text).lower(), f"{secret!r} in {name}"
    assert "cough" in texts["report.pdf"] and "[removed]" in texts["report.pdf"]


# -- item 4 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("burned", [None, "NO", "YES"])
def test_sc_copies_source_burned_in_annotation(tmp_path, burned):
    path, ds = _phi_source(tmp_path, burned)
    files = export_report(
        _draft(ds),
        RESULTS,
        [pydicom.dcmread(path, stop_before_pixels=True)],
        tmp_path / "out",
        pdf=False,
        dicom=True,
        key_images=[_key_image(ds, path)],
    )
    sc = pydicom.dcmread(next(f for f in files if f.name.startswith("SC_")))
    if burned is None:
        assert "BurnedInAnnotation" not in sc  # unknown stays unknown, never "NO"
    else:
        assert sc.BurnedInAnnotation == burned


@pytest.mark.parametrize(
    "burned,reviewed,included",
    [
        (None, False, False),
        ("YES", False, False),
        ("NO", False, True),
        (None, True, True),
        ("YES", True, True),
    ],
)
def test_deidentified_pixels_need_no_or_review(tmp_path, burned, reviewed, included):
    path, ds = _phi_source(tmp_path, burned)
    out = tmp_path / "out"
    files = export_report(
        _draft(ds),
        RESULTS,
        [pydicom.dcmread(path, stop_before_pixels=True)],
        out,
        pdf=True,
        dicom=True,
        deidentify=True,
        pixels_reviewed=reviewed,
        key_images=[_key_image(ds, path)],
    )
    assert any(f.name.startswith("SC_") for f in files) == included
    text = " ".join(_pdf_text(out / "report.pdf").split())
    assert ("key image(s) left out" in text) == (not included)
    assert ("Image 1" in text) == included


def test_cli_pixels_reviewed_flag(tmp_path, capsys):
    path, _ = _phi_source(tmp_path)
    with FakeOpenAI() as srv:
        base = [
            "analyze",
            str(path),
            "--quiet",
            "--saliency",
            "cam",
            "--draft",
            "--backend",
            "openai",
            "--url",
            srv.url,
            "--model",
            "m",
            "--dicom-export",
            "--deidentify",
            "--reader",
            "Dr X",
        ]
        assert main([*base, "--out", str(tmp_path / "a")]) == 0
        assert main([*base, "--out", str(tmp_path / "b"), "--pixels-reviewed"]) == 0
    assert not list((tmp_path / "a").rglob("SC_*.dcm"))
    assert len(list((tmp_path / "b").rglob("SC_*.dcm"))) == 1


# -- item 5 ---------------------------------------------------------------------------------------
def test_deidentified_output_folder_has_no_original_identifier(tmp_path):
    path, ds = _phi_source(tmp_path)
    # a second study in the run, so study folders are created
    ds2 = pydicom.dcmread(path)
    ds2.StudyInstanceUID, ds2.SeriesInstanceUID = (
        pydicom.uid.generate_uid(),
        pydicom.uid.generate_uid(),
    )
    ds2.SOPInstanceUID = ds2.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    path2 = tmp_path / "in" / "cxr2.dcm"
    ds2.save_as(path2)
    out = tmp_path / "out"
    with FakeOpenAI() as srv:
        # report text the consistency checker accepts, with identifiers the model should not write
        srv.reply = (
            "FINDINGS: There is a focal opacity in the right lower lobe consistent with "
            "pneumonia in John ZZDOE (PIDCR998877). No pleural effusion.\n"
            "IMPRESSION: Right lower lobe pneumonia; discuss with Dr REFDOC at STMUNGO HOSPITAL."
        )
        assert (
            main(
                [
                    "analyze",
                    str(tmp_path / "in"),
                    "--out",
                    str(out),
                    "--quiet",
                    "--saliency",
                    "cam",
                    "--draft",
                    "--backend",
                    "openai",
                    "--url",
                    srv.url,
                    "--model",
                    "m",
                    "--pdf",
                    "--dicom-export",
                    "--deidentify",
                    "--pixels-reviewed",
                    "--reader",
                    "Dr Jane Reader",
                    "--indication",
                    TYPED,
                ]
            )
            == 0
        )
    originals = [
        str(d.get(k))
        for d in (ds, ds2)
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    ]
    forbidden = SECRETS + originals + [str(path), str(path2), str(tmp_path / "in")]
    files = sorted(out.rglob("*"))
    names = [p.relative_to(out).as_posix() for p in files]
    assert any(n.endswith(".png") for n in names) and any(n.endswith("draft.txt") for n in names)
    assert sum(n.endswith("report.pdf") for n in names) == 2
    # pixel bytes, like Hilum's random UIDs, may hold "1956" by chance: both are left out
    without_made = _uid_scrubber(files, originals)
    for p, name in zip(files, names):
        for secret in forbidden:
            assert secret not in without_made(name), f"{secret} in file name {name}"
        if p.is_dir():
            continue
        data = p.read_bytes()
        if p.suffix == ".dcm":
            pixels = pydicom.dcmread(p).get("PixelData", None)
            if pixels:
                data = data.replace(bytes(pixels), b"")
        text = _pdf_text(p) if p.suffix == ".pdf" else data.decode("latin-1")
        text = without_made(text)
        if p.suffix == ".dcm":
            d = pydicom.dcmread(p)
            text += without_made(_all_text(d))
            if "EncapsulatedDocument" in d:
                inner = tmp_path / "inner.pdf"
                inner.write_bytes(bytes(d.EncapsulatedDocument)[: d.EncapsulatedDocumentLength])
                text += without_made(_pdf_text(inner))
        for secret in forbidden:
            assert secret.lower() not in text.lower(), f"{secret!r} in {name}"
    doc = json.loads((out / "results.json").read_text())
    assert {i["path"] for i in doc["images"]} == {"image 1", "image 2"}
    # saliency files are named by the new UIDs, and results.json points at them
    for image in doc["images"]:
        for rec in image["results"]:
            for f in rec["saliency"]["files"].values():
                assert (out / f["png"]).is_file() and image["sop_uid"] in f["png"]
