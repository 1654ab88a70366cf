"""Report export: PDF (poppler checks), DICOM SR / Encapsulated PDF / Secondary Capture (dciodvfy),
SR text round trip, and de-identification, on the bundled sample and the shared chest films.

The external checkers (``pdftotext``, ``pdftoppm``, ``pdffonts`` from poppler-utils, ``dciodvfy``
from dicom3tools) are required: a missing tool fails the test, it never skips.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.core.errors import ExportError, NotSignedOffError
from app.core.paths import sample_path
from app.core.types import ImageRef, LabelResult, ModelResult, ReportDraft
from app.reporting import dicom_out
from app.reporting.export import export_report, preview_deidentification
from app.reporting.pdf import PDF_DISCLAIMER, InstitutionHeader, KeyImage

CHINESE = "右下肺野见斑片状模糊影，考虑肺炎。"
FINDINGS = (
    "Patchy airspace opacity in the right lower zone. No pleural effusion. "
    "Heart size normal. " + CHINESE
)
IMPRESSION = "Right lower zone opacity, consistent with pneumonia. 建议抗感染治疗后复查。"


def tool(name: str) -> str:
    """Path of an external checker; fail (not skip) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install poppler-utils dicom3tools")
    return path


def run(*args: str) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def display_of(ds: pydicom.Dataset, step: int = 4) -> np.ndarray:
    """The image as a viewer shows it: percentile window, MONOCHROME1 inverted, decimated."""
    arr = ds.pixel_array[::step, ::step].astype(np.float32)
    lo, hi = np.percentile(arr, (1, 99))
    out = np.clip((arr - lo) / max(hi - lo, 1.0), 0, 1)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 1.0 - out
    return (out * 255).astype(np.uint8)


def overlay_of(display: np.ndarray) -> np.ndarray:
    """A heat map blended on the display (stands in for a CAM, the export only needs the RGB)."""
    h, w = display.shape
    yy, xx = np.mgrid[0:h, 0:w]
    heat = np.exp(-(((yy - 0.65 * h) / (0.15 * h)) ** 2 + ((xx - 0.3 * w) / (0.12 * w)) ** 2))
    rgb = np.stack([display] * 3, -1).astype(np.float32)
    red = np.zeros_like(rgb)
    red[..., 0] = 255
    a = (0.5 * heat)[..., None]
    return (rgb * (1 - a) + red * a).astype(np.uint8)


@pytest.fixture(scope="module")
def sample() -> pydicom.Dataset:
    return pydicom.dcmread(sample_path())


@pytest.fixture(scope="module")
def key_image(sample: pydicom.Dataset) -> KeyImage:
    disp = display_of(sample)
    ref = ImageRef(
        sample.StudyInstanceUID, sample.SeriesInstanceUID, sample.SOPInstanceUID, str(sample_path())
    )
    return KeyImage(
        display=disp,
        overlay=overlay_of(disp),
        legend="Grad-CAM, pneumonia, jet, 50%",
        caption="PA chest, right lower zone",
        source=ref,
    )


def make_draft(ds: pydicom.Dataset, signed: bool = True, extra: str = "") -> ReportDraft:
    return ReportDraft(
        study_uid=str(ds.StudyInstanceUID),
        indication="Cough and fever for three days. 咳嗽发热三天。" + extra,
        comparison="None available.",
        findings=FINDINGS,
        impression=IMPRESSION,
        ai_generated=True,
        generator={"model_id": "report_generator", "model_version": "0.1.0", "backend": "bundled"},
        reader_name="Jane Smith" if signed else "",
        signed_off_at="2026-11-28T21:00:00+00:00" if signed else "",
    )


RESULTS = [
    ModelResult(
        model_id="pneumonia_cnn",
        model_version="1.0.0",
        sha256="3f" * 32,
        provider="CPUExecutionProvider",
        labels=[LabelResult("pneumonia", 0.912, 0.5, True)],
        provenance={"app_version": "0.1.0", "time": "2026-11-28T20:59:00+00:00"},
    )
]


def pdf_text(path: Path) -> str:
    return run(tool("pdftotext"), "-layout", str(path), "-")


def dciodvfy_errors(path: Path) -> list[str]:
    out = run(tool("dciodvfy"), str(path))
    return [line for line in out.splitlines() if line.startswith("Error")]


def sr_texts(ds: pydicom.Dataset) -> list[tuple[str, str]]:
    """(concept meaning, text value) of every TEXT item in the SR tree."""
    found: list[tuple[str, str]] = []

    def walk(items):
        for it in items:
            if it.ValueType == "TEXT":
                found.append((it.ConceptNameCodeSequence[0].CodeMeaning, it.TextValue))
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(ds.ContentSequence)
    return found


def sr_items(ds: pydicom.Dataset, value_type: str) -> list[pydicom.Dataset]:
    found = []

    def walk(items):
        for it in items:
            if it.ValueType == value_type:
                found.append(it)
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(ds.ContentSequence)
    return found


# -------------------------------------------------------------------------------------------------
def test_export_refuses_unsigned_report(sample, tmp_path):
    with pytest.raises(NotSignedOffError):
        export_report(make_draft(sample, signed=False), RESULTS, [sample], tmp_path)
    assert not any(tmp_path.iterdir())


def test_export_refuses_sources_from_another_study(sample, shared_data, tmp_path):
    other = pydicom.dcmread(
        shared_data / "dicom/cxr/dx_chest_pa_j2k_lossless.dcm", stop_before_pixels=True
    )
    assert other.StudyInstanceUID != sample.StudyInstanceUID
    with pytest.raises(ExportError):
        export_report(make_draft(sample), RESULTS, [other], tmp_path)


def test_pdf_has_sections_table_disclaimer_chinese_and_renders(sample, key_image, tmp_path):
    logo = tmp_path / "logo.png"
    from PIL import Image

    Image.fromarray(key_image.display[:64, :64]).save(logo)
    files = export_report(
        make_draft(sample),
        RESULTS,
        [sample],
        tmp_path / "out",
        pdf=True,
        dicom=False,
        key_images=[key_image],
        header=InstitutionHeader(
            "Riverside General Hospital", "1 River Road\nSpringfield", str(logo)
        ),
    )
    assert files == [tmp_path / "out" / "report.pdf"]
    text = pdf_text(files[0])
    for heading in (
        "Riverside General Hospital",
        "INDICATION",
        "COMPARISON",
        "FINDINGS",
        "IMPRESSION",
        "AI RESULTS",
        "KEY IMAGES",
        "SIGN-OFF",
    ):
        assert heading in text, heading
    # the AI table: model, version, short hash, provider, label, probability, threshold, flag
    for cell in (
        "pneumonia_cnn",
        "1.0.0",
        "3f3f3f3f3f",
        "CPU",
        "pneumonia",
        "0.912",
        "0.500",
        "POSITIVE",
    ):
        assert cell in text, cell
    assert PDF_DISCLAIMER in text
    assert CHINESE in text.replace(" ", "").replace("\n", "")
    assert "Signed off by Jane Smith" in text
    assert "CompressedSamples RG1" in text  # patient block from the source
    assert "Page 1 of" in text and "Document ID:" in text

    fonts = run(tool("pdffonts"), str(files[0])).splitlines()[2:]
    assert fonts, "no fonts in the PDF"
    for line in fonts:
        emb = line.split()[-5]  # name type encoding EMB sub uni object gen
        assert emb == "yes", f"font not embedded: {line}"
    assert any("DroidSansFallback" in line for line in fonts)

    pages = int(
        next(
            line.split()[-1]
            for line in run(tool("pdfinfo"), str(files[0])).splitlines()
            if line.startswith("Pages:")
        )
    )
    run(tool("pdftoppm"), "-r", "40", "-png", str(files[0]), str(tmp_path / "page"))
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == pages >= 1
    for png in pngs:
        arr = np.asarray(Image.open(png).convert("L"))
        assert arr.std() > 5, f"{png.name} rendered blank"


def test_dicom_outputs_validate_and_reference_the_source(sample, key_image, tmp_path):
    files = export_report(
        make_draft(sample),
        RESULTS,
        [sample],
        tmp_path,
        pdf=True,
        dicom=True,
        key_images=[key_image],
        header=InstitutionHeader("Riverside General"),
    )
    dcm = [f for f in files if f.suffix == ".dcm"]
    kinds = sorted(f.name.split("_")[0] for f in dcm)
    assert kinds == ["PDF", "SC", "SR"]
    sop_uids = set()
    for f in dcm:
        errors = dciodvfy_errors(f)
        assert not errors, f"{f.name}: {errors}"
        ds = pydicom.dcmread(f)
        assert ds.StudyInstanceUID == sample.StudyInstanceUID  # new series in the source study
        assert ds.SeriesInstanceUID != sample.SeriesInstanceUID
        assert ds.SOPInstanceUID != sample.SOPInstanceUID
        assert ds.PatientID == sample.PatientID
        sop_uids.add(ds.SOPInstanceUID)
    assert len(sop_uids) == 3

    enc = pydicom.dcmread(next(f for f in dcm if f.name.startswith("PDF")))
    pdf_bytes = (tmp_path / "report.pdf").read_bytes()
    assert enc.SOPClassUID == dicom_out.ENCAPSULATED_PDF_SOP_CLASS
    assert bytes(enc.EncapsulatedDocument)[: enc.EncapsulatedDocumentLength] == pdf_bytes
    assert enc.SourceInstanceSequence[0].ReferencedSOPInstanceUID == sample.SOPInstanceUID
    # the PDF's printed document id is the Encapsulated PDF's SOP Instance UID
    assert enc.SOPInstanceUID in pdf_text(tmp_path / "report.pdf")

    sc = pydicom.dcmread(next(f for f in dcm if f.name.startswith("SC")))
    assert list(sc.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert "NOT FOR PRIMARY DIAGNOSIS" in sc.DerivationDescription
    assert "NOT FOR PRIMARY DIAGNOSIS" in sc.SeriesDescription
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == sample.SOPInstanceUID
    assert np.array_equal(sc.pixel_array, key_image.overlay)


def test_sr_round_trips_text_findings_and_observer_device(sample, key_image, tmp_path):
    files = export_report(
        make_draft(sample),
        RESULTS,
        [sample],
        tmp_path,
        pdf=False,
        dicom=True,
        key_images=[key_image],
    )
    assert not (tmp_path / "report.pdf").exists()
    sr_path = next(f for f in files if f.name.startswith("SR_"))
    sr = pydicom.dcmread(sr_path)
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "VERIFIED"
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "Smith^Jane"
    pairs = sr_texts(sr)
    texts = dict(pairs)
    assert texts["Finding"] == FINDINGS  # Chinese included, byte for byte
    assert texts["Impression"] == IMPRESSION
    assert ("Algorithm Name", "pneumonia_cnn") in pairs
    assert ("Algorithm Version", "1.0.0") in pairs
    assert any("3f" * 32 in v for k, v in pairs if k == "Algorithm Parameters")
    assert texts["Device Observer Name"] == "pneumonia_cnn"
    assert texts["Device Observer Model Name"] == "pneumonia_cnn 1.0.0"
    assert texts["Device Observer Manufacturer"] == "Hilum"
    assert texts["Device Observer Serial Number"] == "3f" * 32
    # the generator that drafted the text is named as well
    assert ("Algorithm Name", "report_generator") in pairs
    codes = [
        (
            c.ConceptNameCodeSequence[0].CodeMeaning,
            c.ConceptCodeSequence[0].CodeValue,
            c.ConceptCodeSequence[0].CodingSchemeDesignator,
        )
        for c in sr_items(sr, "CODE")
    ]
    assert ("Finding", "233604007", "SCT") in codes  # pneumonia, SNOMED CT
    assert ("Observer Type", "121007", "DCM") in codes  # the model as a device observer
    nums = [float(n.MeasuredValueSequence[0].NumericValue) for n in sr_items(sr, "NUM")]
    assert nums == [pytest.approx(0.912)]
    images = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in sr_items(sr, "IMAGE")]
    assert images == [sample.SOPInstanceUID]
    ev = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert ev.StudyInstanceUID == sample.StudyInstanceUID
    assert not dciodvfy_errors(sr_path)


def test_deidentified_export_has_no_source_identifiers(sample, key_image, tmp_path):
    name_in_text = " Patient CompressedSamples RG1, ID 9RG1."
    files = export_report(
        make_draft(sample, extra=name_in_text),
        RESULTS,
        [sample],
        tmp_path,
        pdf=True,
        dicom=True,
        deidentify=True,
        key_images=[key_image],
        header=InstitutionHeader("Riverside General"),
    )
    identifiers = [
        str(sample.PatientName),
        "CompressedSamples",
        str(sample.PatientID),
        str(sample.PatientBirthDate),
        str(sample.OtherPatientIDs),
        str(sample.AccessionNumber),
        str(sample.InstitutionName),
        str(sample.StudyInstanceUID),
        str(sample.SeriesInstanceUID),
        str(sample.SOPInstanceUID),
        str(sample.StudyID),
    ]
    identifiers = [i for i in identifiers if len(i) >= 4]
    dcm = [f for f in files if f.suffix == ".dcm"]
    study_uids, referenced = set(), set()
    for f in dcm:
        raw = f.read_bytes()
        for ident in identifiers:
            assert ident.encode() not in raw, f"{f.name} still contains a source identifier"
        assert not dciodvfy_errors(f), f.name
        ds = pydicom.dcmread(f)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        study_uids.add(ds.StudyInstanceUID)
        if "SourceImageSequence" in ds:
            referenced.add(ds.SourceImageSequence[0].ReferencedSOPInstanceUID)
        if "SourceInstanceSequence" in ds:
            referenced.add(ds.SourceInstanceSequence[0].ReferencedSOPInstanceUID)
        if "ContentSequence" in ds:
            referenced.update(
                i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in sr_items(ds, "IMAGE")
            )
    # one consistent remapping: every object in one new study, all pointing at one new source UID
    assert len(study_uids) == 1 and sample.StudyInstanceUID not in study_uids
    assert len(referenced) == 1 and sample.SOPInstanceUID not in referenced
    # the PDF, and the PDF inside the Encapsulated PDF, carry no identifier either
    enc = pydicom.dcmread(next(f for f in dcm if f.name.startswith("PDF")))
    inner = tmp_path / "inner.pdf"
    inner.write_bytes(bytes(enc.EncapsulatedDocument)[: enc.EncapsulatedDocumentLength])
    for pdf in (tmp_path / "report.pdf", inner):
        text = pdf_text(pdf)
        assert "FINDINGS" in text and "[removed]" in text
        for ident in identifiers:
            assert ident not in text, f"{pdf.name} still contains a source identifier"
    # the source dataset itself is untouched
    assert str(sample.PatientID) == "9RG1"


def test_deidentification_preview_lists_changes_without_touching_source(sample):
    before = str(sample.PatientName)
    changes = preview_deidentification([sample])
    by_kw = {c.keyword: c for c in changes}
    assert by_kw["PatientName"].old == before and by_kw["PatientName"].action in (
        "emptied",
        "replaced",
    )
    assert by_kw["PatientID"].action in ("emptied", "replaced")
    assert by_kw["StudyInstanceUID"].action == "UID remapped"
    assert by_kw["OtherPatientIDs"].action == "removed"
    assert by_kw["PatientIdentityRemoved"].new == "YES"
    assert str(sample.PatientName) == before


def test_deidentified_export_of_a_second_modality(shared_data, tmp_path):
    """The DX film (another study, JPEG 2000) exports de-identified with valid objects too."""
    ds = pydicom.dcmread(shared_data / "dicom/cxr/dx_chest_pa_j2k_lossless.dcm")
    disp = display_of(ds, step=8)
    ki = KeyImage(
        disp,
        overlay_of(disp),
        legend="occlusion",
        source=ImageRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ""),
    )
    files = export_report(make_draft(ds), RESULTS, [ds], tmp_path, deidentify=True, key_images=[ki])
    assert len(files) == 4
    for f in files:
        if f.suffix == ".dcm":
            assert not dciodvfy_errors(f), f.name
            assert str(ds.PatientID).encode() not in f.read_bytes()


def test_ct_series_with_missing_type2_attributes_exports_valid_objects(shared_data, tmp_path):
    """A real CT series (de-identified before import, Type 2 attributes missing) still yields
    valid objects; the SR's evidence lists every source slice."""
    paths = sorted((shared_data / "dicom/ct_head_ge").iterdir())[:3]
    slices = [pydicom.dcmread(p) for p in paths]
    draft = ReportDraft(
        study_uid=str(slices[0].StudyInstanceUID),
        findings="No haemorrhage.",
        impression="Normal.",
        reader_name="Jane Smith",
        signed_off_at="2026-11-28T21:00:00+00:00",
    )
    files = export_report(draft, [], slices, tmp_path, pdf=False, dicom=True)
    assert sorted(f.name.split("_")[0] for f in files) == ["PDF", "SR"]
    for f in files:
        assert not dciodvfy_errors(f), f.name
    sr = pydicom.dcmread(next(f for f in files if f.name.startswith("SR")))
    listed = {
        i.ReferencedSOPInstanceUID
        for s in sr.CurrentRequestedProcedureEvidenceSequence
        for series in s.ReferencedSeriesSequence
        for i in series.ReferencedSOPSequence
    }
    assert listed == {str(s.SOPInstanceUID) for s in slices}


def test_export_cleans_up_when_a_key_image_is_invalid(sample, tmp_path):
    bad = KeyImage(
        np.zeros((8, 8), np.uint8),
        overlay=np.zeros((8, 8, 3), np.uint8),
        source=ImageRef("1.2", "1.2", "1.2.3.4.5.unknown", ""),
    )
    with pytest.raises(ExportError):
        export_report(make_draft(sample), RESULTS, [sample], tmp_path, key_images=[bad])
    assert not list(tmp_path.rglob("*.pdf")) and not list(tmp_path.rglob("*.dcm"))


def test_label_codes():
    assert dicom_out.label_code("Pneumonia") == ("233604007", "SCT", "Pneumonia")
    assert dicom_out.label_code("pleural_effusion")[0] == "60046008"
    assert dicom_out.label_code("widget") is None
