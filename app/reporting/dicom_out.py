"""DICOM outputs of a signed-off report, written into the source study as new series.

* :func:`encapsulated_pdf` - Encapsulated PDF Storage of the report PDF (pydicom: highdicom has
  no Encapsulated Document class).
* :func:`comprehensive_sr` - Comprehensive SR (highdicom) with the report sections as text, the AI
  findings coded (SNOMED CT where a code exists) with their probabilities, each model named as the
  observer device (manufacturer, model name, version, sha256) and references to the source images.
* :func:`secondary_capture` - Secondary Capture Image (highdicom) of a saliency overlay, marked as
  DERIVED/SECONDARY and "not for primary diagnosis".

All objects get fresh UIDs, reference the source instances they derive from, use UTF-8
(``ISO_IR 192``) so Chinese text survives, and are checked with ``dciodvfy`` in the tests.
"""

from __future__ import annotations

import datetime as _dt
import logging
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from app import __version__
from app.core.errors import ExportError
from app.core.types import ModelResult, ReportDraft
from app.inference.manifest import DEMONSTRATION_WORDS

log = logging.getLogger(__name__)

ENCAPSULATED_PDF_SOP_CLASS = UID("1.2.840.10008.5.1.4.1.1.104.1")
MANUFACTURER = "Hilum"
UTF8 = "ISO_IR 192"

#: Series numbers of the exported series (high, so they sort after the acquisition).
SERIES_NUMBER_SR = 9001
SERIES_NUMBER_PDF = 9002
SERIES_NUMBER_SC = 9003

NOT_FOR_DIAGNOSIS = "NOT FOR PRIMARY DIAGNOSIS"

# Findings a model label maps to, where a standard code exists (SNOMED CT). Labels without a code
# are written as text.
_LABEL_CODES: dict[str, tuple[str, str, str]] = {
    "pneumonia": ("233604007", "SCT", "Pneumonia"),
    "cardiomegaly": ("8186001", "SCT", "Cardiomegaly"),
    "atelectasis": ("46621007", "SCT", "Atelectasis"),
    "pleural effusion": ("60046008", "SCT", "Pleural effusion"),
    "effusion": ("60046008", "SCT", "Pleural effusion"),
    "pneumothorax": ("36118008", "SCT", "Pneumothorax"),
    "edema": ("19242006", "SCT", "Pulmonary edema"),
    "pulmonary edema": ("19242006", "SCT", "Pulmonary edema"),
}


@dataclass
class Equipment:
    """Who made the objects (General Equipment module)."""

    manufacturer: str = MANUFACTURER
    model_name: str = "Hilum workstation"
    software_version: str = __version__
    institution_name: str = ""


def label_code(label: str) -> tuple[str, str, str] | None:
    """The (value, scheme, meaning) code of a model label, or None when there is none."""
    return _LABEL_CODES.get(label.strip().lower().replace("_", " "))


def _now() -> tuple[str, str]:
    now = _dt.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def _source_ref_items(
    sources: Sequence[Dataset], purpose: tuple[str, str, str] | None
) -> list[Dataset]:
    items = []
    for src in sources:
        item = Dataset()
        item.ReferencedSOPClassUID = src.SOPClassUID
        item.ReferencedSOPInstanceUID = src.SOPInstanceUID
        if purpose is not None:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = purpose
            item.PurposeOfReferenceCodeSequence = [code]
        items.append(item)
    return items


_TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


#: VRs whose values are checked before a source value is copied into an output. UIDs are not:
#: an output must keep referencing its source study and instances even when their UIDs are
#: odd (leading zeros, over-long), and emptying one would detach the report from its study.
_CHECKED_VRS = ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UR")


def _value_ok(vr: str, value: object) -> bool:
    from pydicom.multival import MultiValue
    from pydicom.valuerep import VALIDATORS

    validator = VALIDATORS.get(vr)
    if validator is None:
        return True
    values = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    for v in values:
        if v is None or v == "":
            continue
        if vr in ("DS", "IS") and not isinstance(v, (str, bytes)):
            # pydicom keeps the original string of a number it could parse
            v = getattr(v, "original_string", None) or str(v)
        elif vr in ("DA", "DT", "TM") and not isinstance(v, (str, bytes)):
            v = getattr(v, "original_string", None) or str(v)
        elif vr == "PN" and not isinstance(v, (str, bytes)):
            v = str(v)
        if not isinstance(v, (str, bytes)):
            continue
        ok, _msg = validator(vr, v)
        if not ok:
            return False
    return True


def drop_invalid_values(ds: Dataset) -> list[str]:
    """Empty every value a source header holds that its VR does not allow (in place).

    Real sources carry values no conformant output may repeat: hashed dates ("d14a028c..." as
    a DA), 56-character accession numbers (SH holds 16), numbers that do not parse. Outputs
    copy only valid values: an invalid one is left empty (allowed for the Type 2 Patient and
    Study attributes an export copies, and for any optional attribute), so the export
    succeeds instead of failing on the source's fault. Sequences are checked item by item.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A header copy (never the caller's source dataset).

    Returns
    -------
    list of str
        Keywords (or tags) of the emptied attributes; never their values (patient data).
    """
    emptied: list[str] = []
    for elem in list(ds):
        try:
            if elem.VR == "SQ":
                for item in elem.value or []:
                    emptied.extend(drop_invalid_values(item))
                continue
            if elem.VR not in _CHECKED_VRS:
                continue
            ok = _value_ok(elem.VR, elem.value)
        except Exception:  # noqa: BLE001 - a value pydicom cannot even convert
            ok = False
        if not ok:
            del ds[elem.tag]
            ds.add_new(elem.tag, elem.VR, None)
            emptied.append(elem.keyword or str(elem.tag))
    if emptied:
        log.info("source values not copied (invalid for their VR): %s", ", ".join(emptied))
    return emptied


def complete_type2(ds: Dataset) -> Dataset:
    """Add the Type 2 Patient / General Study attributes a source left out, empty (in place).

    Real sources omit some of them; every output must carry them (empty means unknown).
    """
    for kw in _TYPE2_PATIENT_STUDY:
        if kw not in ds:
            setattr(ds, kw, "")
    return ds


def _copy_patient_study(ref: Dataset, out: Dataset) -> None:
    """Patient and General Study modules from the (possibly de-identified) source header."""
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ):
        setattr(out, kw, ref.get(kw, ""))
    for kw in ("IssuerOfPatientID", "StudyDescription"):
        if ref.get(kw):
            setattr(out, kw, ref.get(kw))
    _add_deid_marks(ref, out)


def _add_deid_marks(ref: Dataset, out: Dataset) -> None:
    """Carry the source's de-identification status (ours, or one applied before import)."""
    if str(ref.get("PatientIdentityRemoved", "")).upper() != "YES":
        if "PatientIdentityRemoved" in ref:
            out.PatientIdentityRemoved = "NO"
        return
    out.PatientIdentityRemoved = "YES"
    for kw in (
        "DeidentificationMethod",
        "DeidentificationMethodCodeSequence",
        "LongitudinalTemporalInformationModified",
    ):
        if ref.get(kw):
            setattr(out, kw, ref.get(kw))
    if not out.get("DeidentificationMethod") and not out.get("DeidentificationMethodCodeSequence"):
        # Type 1C when identity was removed: the source did not say how
        out.DeidentificationMethod = "De-identified before import; method not recorded"


def encapsulated_pdf(
    pdf_bytes: bytes,
    ref: Dataset,
    sources: Sequence[Dataset],
    sop_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    title: str = "Radiology Report",
    equipment: Equipment | None = None,
) -> Dataset:
    """Encapsulated PDF Storage object for the report.

    Parameters
    ----------
    pdf_bytes : bytes
        The PDF file.
    ref : pydicom.dataset.Dataset
        Source header whose patient and study the object joins.
    sources : sequence of Dataset
        Source instances the report derives from (Source Instance Sequence).
    sop_instance_uid, series_instance_uid : str, optional
        Fresh UIDs are generated when not given.
    title : str
        Document Title.
    equipment : Equipment, optional
        General Equipment values.

    Returns
    -------
    pydicom.dataset.Dataset
        A dataset with file meta, ready for ``save_as(path, enforce_file_format=True)``.
    """
    if not pdf_bytes.startswith(b"%PDF"):
        raise ExportError("The report PDF is not a PDF file; nothing was exported.")
    eq = equipment or Equipment()
    sop_uid = sop_instance_uid or generate_uid()
    date, time = _now()
    ds = Dataset()
    ds.file_meta = _file_meta(ENCAPSULATED_PDF_SOP_CLASS, sop_uid)
    ds.SpecificCharacterSet = UTF8
    ds.SOPClassUID = ENCAPSULATED_PDF_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    _copy_patient_study(ref, ds)
    # Encapsulated Document Series
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = series_instance_uid or generate_uid()
    ds.SeriesNumber = SERIES_NUMBER_PDF
    ds.SeriesDescription = "Report (PDF)"
    # General Equipment + SC Equipment
    ds.Manufacturer = eq.manufacturer
    ds.ManufacturerModelName = eq.model_name
    ds.SoftwareVersions = eq.software_version
    if eq.institution_name:
        ds.InstitutionName = eq.institution_name
    ds.ConversionType = "WSD"  # workstation
    # Encapsulated Document
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = date, time
    ds.AcquisitionDateTime = date + time
    ds.BurnedInAnnotation = "YES"  # the PDF prints the patient block
    ds.DocumentTitle = title
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = (
        "18748-4",
        "LN",
        "Diagnostic Imaging Report",
    )
    ds.ConceptNameCodeSequence = [concept]
    ds.SourceInstanceSequence = _source_ref_items(sources, None)
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(pdf_bytes)
    ds.EncapsulatedDocument = pdf_bytes + (b"\x00" if len(pdf_bytes) % 2 else b"")
    return ds


def _observer_device(result: ModelResult, eq: Equipment) -> list:
    import highdicom as hd

    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(),
        name=result.model_id[:64],
        manufacturer_name=str(result.provenance.get("manufacturer") or eq.manufacturer)[:64],
        model_name=f"{result.model_id} {result.model_version}"[:64],
        # A model file is identified by its hash: the sha256 hex is exactly 64 characters (LO).
        serial_number=result.sha256[:64] if result.sha256 else None,
    )
    return list(
        hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )


def _code(value: tuple[str, str, str]):  # -> highdicom CodedConcept
    import highdicom as hd

    return hd.sr.CodedConcept(value=value[0], scheme_designator=value[1], meaning=value[2])


def _text_section(name, item_name, text: str):
    import highdicom as hd

    section = hd.sr.ContainerContentItem(name=name, relationship_type="CONTAINS")
    section.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(
                name=item_name, value=text.strip() or "None.", relationship_type="CONTAINS"
            )
        ]
    )
    return section


#: TID 1500's "Qualitative Evaluations" container and Hilum's codes for a result's reliability
QUALITATIVE_EVALUATIONS = ("C0034375", "UMLS", "Qualitative Evaluations")
RELIABILITY = ("RELIABILITY", "99HILUM", "AI result reliability")
WITHIN_USE = ("WITHIN-USE", "99HILUM", "Within intended use")
OUTSIDE_USE = ("OUTSIDE-USE", "99HILUM", "Outside intended use")
READER_DECISION = ("READER-DECISION", "99HILUM", "Reader's decision on AI results")


def _reliability_item(result: ModelResult):  # -> highdicom ContainerContentItem
    """The result's intended-use evaluation as a qualitative evaluation, with the reason."""
    import highdicom as hd

    outside = result.reliability.startswith("outside")
    box = hd.sr.ContainerContentItem(
        name=_code(QUALITATIVE_EVALUATIONS), relationship_type="CONTAINS"
    )
    value = hd.sr.CodeContentItem(
        name=_code(RELIABILITY),
        value=_code(OUTSIDE_USE if outside else WITHIN_USE),
        relationship_type="CONTAINS",
    )
    reason = (
        result.reliability.split(": ", 1)[1]
        if outside and ": " in result.reliability
        else result.reliability
    )
    if result.ood:
        reason += (
            f" [OOD {result.ood.get('method', '')} score {float(result.ood.get('score', 0)):.3g}, "
            f"threshold {float(result.ood.get('threshold', 0)):.3g}]"
        )
    if result.demonstration:  # the model card's words, first so that the 1024 cut keeps them
        reason = f"{DEMONSTRATION_WORDS}. {reason}"
    value.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(
                name=codes.DCM.Comment, value=reason[:1024], relationship_type="HAS PROPERTIES"
            )
        ]
    )
    box.ContentSequence = hd.sr.ContentSequence([value])
    return box


def comprehensive_sr(
    draft: ReportDraft,
    results: Sequence[ModelResult],
    ref: Dataset,
    sources: Sequence[Dataset],
    sop_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    equipment: Equipment | None = None,
    verifying_organization: str = "",
) -> Dataset:
    """Comprehensive SR with the report text and the AI findings.

    Parameters
    ----------
    draft : ReportDraft
        Signed-off report (its reader is the verifying observer).
    results : sequence of ModelResult
        AI results: one sub-container per model, observed by that model as a device.
    ref : Dataset
        Source header (patient and study).
    sources : sequence of Dataset
        Source instances (evidence and image references), all in ``ref``'s study.
    sop_instance_uid, series_instance_uid : str, optional
        Fresh UIDs are generated when not given.
    equipment : Equipment, optional
        Manufacturer and software version.
    verifying_organization : str
        The reader's organisation (Verifying Organization is Type 1: "Unknown" when empty).

    Returns
    -------
    pydicom.dataset.Dataset
        The SR with file meta.

    Long because the SR content tree is built in document order, one template row per line.
    """
    import highdicom as hd

    if not draft.signed_off:
        from app.core.errors import NotSignedOffError

        raise NotSignedOffError("The report must be signed off (reader name) before export.")
    eq = equipment or Equipment()
    items: list = []
    person = hd.sr.PersonObserverIdentifyingAttributes(name=_pn(draft.reader_name))
    items += list(
        hd.sr.ObserverContext(
            observer_type=codes.DCM.Person, observer_identifying_attributes=person
        )
    )
    items.append(
        _text_section(
            codes.DCM.IndicationsForProcedure, codes.DCM.IndicationsForProcedure, draft.indication
        )
    )
    items.append(
        _text_section(
            codes.DCM.PriorProcedureDescriptions, codes.DCM.ProcedureDescription, draft.comparison
        )
    )
    items.append(_text_section(codes.DCM.Findings, codes.DCM.Finding, draft.findings))
    items.append(_text_section(codes.DCM.Impressions, codes.DCM.Impression, draft.impression))

    for result in results:
        section = hd.sr.ContainerContentItem(name=codes.DCM.Findings, relationship_type="CONTAINS")
        content: list = _observer_device(result, eq)
        content.append(
            hd.sr.TextContentItem(
                name=codes.DCM.AlgorithmName, value=result.model_id, relationship_type="CONTAINS"
            )
        )
        content.append(
            hd.sr.TextContentItem(
                name=codes.DCM.AlgorithmVersion,
                value=result.model_version or "unknown",
                relationship_type="CONTAINS",
            )
        )
        params = f"sha256={result.sha256}; provider={result.provider}; hilum={__version__}"
        content.append(
            hd.sr.TextContentItem(
                name=codes.DCM.AlgorithmParameters, value=params, relationship_type="CONTAINS"
            )
        )
        for lab in result.labels:
            code = label_code(lab.label)
            finding: hd.sr.ContentItem
            if code is not None:
                finding = hd.sr.CodeContentItem(
                    name=codes.DCM.Finding, value=_code(code), relationship_type="CONTAINS"
                )
            else:
                finding = hd.sr.TextContentItem(
                    name=codes.DCM.Finding, value=lab.label, relationship_type="CONTAINS"
                )
            presence = codes.DCM.Present if lab.positive else codes.DCM.Absent
            finding.ContentSequence = hd.sr.ContentSequence(
                [
                    hd.sr.CodeContentItem(
                        name=codes.DCM.PresenceOfProperty,
                        value=presence,
                        relationship_type="HAS PROPERTIES",
                    ),
                    hd.sr.NumContentItem(
                        name=codes.DCM.Probability,
                        value=float(lab.probability),
                        unit=codes.UCUM.NoUnits,
                        relationship_type="HAS PROPERTIES",
                    ),
                    hd.sr.TextContentItem(
                        name=codes.DCM.AlgorithmParameters,
                        value=f"decision threshold={lab.threshold:.4g}",
                        relationship_type="HAS PROPERTIES",
                    ),
                ]
            )
            content.append(finding)
        if result.reliability:
            content.append(_reliability_item(result))
        for src in sources:
            content.append(
                hd.sr.ImageContentItem(
                    name=codes.DCM.SourceImage,
                    referenced_sop_class_uid=src.SOPClassUID,
                    referenced_sop_instance_uid=src.SOPInstanceUID,
                    relationship_type="CONTAINS",
                )
            )
        content.append(
            hd.sr.TextContentItem(
                name=codes.DCM.Summary,
                value="AI-generated content requires review by a physician.",
                relationship_type="CONTAINS",
            )
        )
        section.ContentSequence = hd.sr.ContentSequence(content)
        items.append(section)

    if draft.acknowledgements:
        # the reader's decision on each sign-off discrepancy between the text and the AI results
        decision = hd.sr.ContainerContentItem(
            name=_code(READER_DECISION), relationship_type="CONTAINS"
        )
        decision.ContentSequence = hd.sr.ContentSequence(
            [
                hd.sr.TextContentItem(
                    name=codes.DCM.Comment,
                    relationship_type="CONTAINS",
                    value=f"{a.get('message', '')}: {a.get('decision', 'acknowledged')}"
                    f" ({a.get('reader', '')}, {a.get('time', '')})"[:1024],
                )
                for a in draft.acknowledgements
            ]
        )
        items.append(decision)

    if draft.ai_generated and draft.generator:
        # the report text itself was drafted by a model: name it too (provenance, convention 5)
        g = draft.generator
        gen = hd.sr.ContainerContentItem(name=codes.DCM.Summary, relationship_type="CONTAINS")
        gen_items: list = [
            hd.sr.TextContentItem(
                name=codes.DCM.AlgorithmName,
                value=str(g.get("model_id") or g.get("backend") or "generator"),
                relationship_type="CONTAINS",
            ),
            hd.sr.TextContentItem(
                name=codes.DCM.AlgorithmVersion,
                value=str(g.get("model_version") or "unknown"),
                relationship_type="CONTAINS",
            ),
            hd.sr.TextContentItem(
                name=codes.DCM.Summary,
                relationship_type="CONTAINS",
                value="Report text drafted by AI, reviewed and signed off by the reader.",
            ),
        ]
        if g.get("sha256"):
            gen_items.insert(
                2,
                hd.sr.TextContentItem(
                    name=codes.DCM.AlgorithmParameters,
                    value=f"sha256={g['sha256']}",
                    relationship_type="CONTAINS",
                ),
            )
        gen.ContentSequence = hd.sr.ContentSequence(gen_items)
        items.append(gen)

    root = hd.sr.ContainerContentItem(
        name=hd.sr.CodedConcept("18748-4", "LN", "Diagnostic Imaging Report")
    )
    root.ContentSequence = hd.sr.ContentSequence(items)

    sop_uid = sop_instance_uid or generate_uid()
    try:
        with warnings.catch_warnings():  # highdicom warns about odd names in the source header
            warnings.simplefilter("ignore", UserWarning)
            sr = hd.sr.ComprehensiveSR(
                evidence=list(sources),
                content=root,
                series_instance_uid=series_instance_uid or generate_uid(),
                series_number=SERIES_NUMBER_SR,
                sop_instance_uid=sop_uid,
                instance_number=1,
                manufacturer=eq.manufacturer,
                is_complete=True,
                # an unattended batch export is a preliminary, unverified report
                is_final=draft.reviewed,
                is_verified=draft.reviewed,
                institution_name=eq.institution_name or None,
                verifying_observer_name=_pn(draft.reader_name) if draft.reviewed else None,
                verifying_organization=(verifying_organization or "Unknown")
                if draft.reviewed
                else None,
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(f"The structured report could not be built: {exc}") from exc
    sr.SpecificCharacterSet = UTF8
    sr.SeriesDescription = "Report (SR)"
    sr.ManufacturerModelName = eq.model_name
    sr.SoftwareVersions = eq.software_version
    _add_deid_marks(ref, sr)
    if draft.signed_off_at and draft.reviewed:
        stamp = _dicom_dt(draft.signed_off_at)
        if stamp:
            sr.VerifyingObserverSequence[0].VerificationDateTime = stamp
    _ensure_meta(sr)
    return sr


def _pn(name: str) -> str:
    """A reader name as a DICOM PN ("Jane Smith" -> "Smith^Jane"; already ^-separated is kept)."""
    name = name.strip()
    if "^" in name or " " not in name:
        return name
    parts = name.split()
    return parts[-1] + "^" + " ".join(parts[:-1])


def _dicom_dt(iso: str) -> str:
    try:
        when = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return ""
    text = when.strftime("%Y%m%d%H%M%S")
    if when.utcoffset() is not None:
        text += when.strftime("%z")
    return text


def _ensure_meta(ds: Dataset) -> None:
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = _file_meta(ds.SOPClassUID, ds.SOPInstanceUID)
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID


def secondary_capture(
    rgb: np.ndarray,
    ref: Dataset,
    source: Dataset,
    instance_number: int,
    series_instance_uid: str,
    legend: str = "",
    sop_instance_uid: str | None = None,
    equipment: Equipment | None = None,
    burned_in_annotation: str | None = None,
) -> Dataset:
    """Secondary Capture of a saliency overlay, marked derived and not for primary diagnosis.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 (h, w, 3) overlay image.
    ref : Dataset
        Source header for patient and study.
    source : Dataset
        The source instance the overlay was computed on (Source Image Sequence).
    instance_number : int
        Instance number in the saliency series.
    series_instance_uid : str
        The saliency series (shared by all overlays of one export).
    legend : str
        Method / label / colour map, written to Derivation Description.
    sop_instance_uid : str, optional
        Generated when not given.
    equipment : Equipment, optional
        Manufacturer and software version.
    burned_in_annotation : str, optional
        The source's Burned In Annotation: the overlay keeps the source's pixels, so it keeps
        its statement; absent (unknown) stays absent, never written as NO.

    Returns
    -------
    pydicom.dataset.Dataset
        The SC image with file meta.

    Long because the SC header modules are filled in standard order.
    """
    import highdicom as hd

    arr = np.ascontiguousarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ExportError("A saliency overlay must be an 8-bit RGB image.")
    eq = equipment or Equipment()
    orientation = _orientation(source)
    try:
        with warnings.catch_warnings():  # highdicom warns about odd names in the source header
            warnings.simplefilter("ignore", UserWarning)
            sc = hd.sc.SCImage.from_ref_dataset(
                ref_dataset=ref,
                pixel_array=arr,
                photometric_interpretation="RGB",
                bits_allocated=8,
                coordinate_system="PATIENT",
                series_instance_uid=series_instance_uid,
                series_number=SERIES_NUMBER_SC,
                sop_instance_uid=sop_instance_uid or generate_uid(),
                instance_number=instance_number,
                manufacturer=eq.manufacturer,
                patient_orientation=orientation or ("L", "F"),
                transfer_syntax_uid=ExplicitVRLittleEndian,
            )
    except (ValueError, TypeError) as exc:
        raise ExportError(f"The saliency image could not be built: {exc}") from exc
    if orientation is None:
        sc.PatientOrientation = []  # type 2C, empty: unknown, never guessed
    sc.Laterality = source.get("Laterality", "") or ""  # type 2C (chest is a paired region)
    sc.SpecificCharacterSet = UTF8
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.SeriesDescription = f"AI saliency - {NOT_FOR_DIAGNOSIS}"
    description = f"AI saliency overlay ({legend})" if legend else "AI saliency overlay"
    sc.DerivationDescription = f"{description}; {NOT_FOR_DIAGNOSIS}"[:1024]
    sc.ImageComments = (
        f"{NOT_FOR_DIAGNOSIS}. Shows where the AI model looked; "
        "AI-generated content requires review by a physician."
    )
    burned = str(burned_in_annotation or "").strip().upper()
    if burned in ("YES", "NO"):
        sc.BurnedInAnnotation = burned
    elif "BurnedInAnnotation" in sc:
        del sc.BurnedInAnnotation  # Type 3: unknown is said by its absence
    sc.SourceImageSequence = _source_ref_items(
        [source], ("121322", "DCM", "Source image for image processing operation")
    )
    sc.ManufacturerModelName = eq.model_name
    sc.SoftwareVersions = eq.software_version
    if eq.institution_name:
        sc.InstitutionName = eq.institution_name
    _add_deid_marks(ref, sc)
    _ensure_meta(sc)
    return sc


def _orientation(ds: Dataset) -> tuple[str, str] | None:
    value = ds.get("PatientOrientation")
    if value is None or len(value) != 2:
        return None
    row, col = str(value[0]), str(value[1])
    if len(row) == 1 and len(col) == 1 and set(row + col) <= set("APLRHF"):
        return row, col
    return None


def write(ds: Dataset, path) -> None:
    """Save an output as a DICOM Part 10 file.

    Raises
    ------
    ExportError
        When the file cannot be written.
    """
    from app.core.paths import open_private

    try:  # outputs hold patient data: created 0600 whatever the umask
        with open_private(path, "wb") as fh:
            ds.save_as(fh, enforce_file_format=True)
    except OSError as exc:
        raise ExportError(
            f"A DICOM file could not be written: {exc.strerror or exc}", str(path)
        ) from exc
