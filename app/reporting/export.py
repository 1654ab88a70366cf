"""Export a signed-off report: PDF, DICOM (SR, Encapsulated PDF, Secondary Capture), de-identified
on request. One function shared by the GUI's Export dialog and ``hilum analyze --pdf --dicom-export``.

Layout of ``out_dir``::

    report.pdf
    dicom/SR_<uid>.dcm        Comprehensive SR
    dicom/PDF_<uid>.dcm       Encapsulated PDF
    dicom/SC_<n>_<uid>.dcm    Secondary Capture per key image with a saliency overlay
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.core import paths
from app.core.errors import ExportError, NotSignedOffError
from app.core.progress import NullProgress, Progress
from app.core.types import ImageRef, ModelResult, ReportDraft
from app.reporting import dicom_out
from app.reporting.deid import DeidChange, Deidentifier, header_copy
from app.reporting.pdf import InstitutionHeader, KeyImage, PatientBlock, build_pdf

__all__ = [
    "export_report",
    "preview_deidentification",
    "InstitutionHeader",
    "KeyImage",
    "ExportError",
    "NotSignedOffError",
    "model_results_from_document",
    "source_paths_from_document",
    "read_headers",
    "key_images_from_analysis",
    "deidentify_results_folder",
]

log = logging.getLogger(__name__)


def _study_sources(draft: ReportDraft, source_datasets: Sequence[Dataset]) -> list[Dataset]:
    sources = [ds for ds in source_datasets if "SOPInstanceUID" in ds and "SOPClassUID" in ds]
    in_study = [ds for ds in sources if str(ds.get("StudyInstanceUID", "")) == draft.study_uid]
    if not in_study:
        if sources and not draft.study_uid:
            in_study = [ds for ds in sources if ds.StudyInstanceUID == sources[0].StudyInstanceUID]
        else:
            raise ExportError(
                "None of the source images belongs to the report's study; nothing was exported."
            )
    if len(in_study) < len(sources):
        log.warning(
            "%d source image(s) from other studies left out of the export",
            len(sources) - len(in_study),
        )
    # one entry per instance (the same image may be passed for several key images)
    seen: dict[str, Dataset] = {}
    for ds in in_study:
        seen.setdefault(str(ds.SOPInstanceUID), ds)
    return list(seen.values())


def preview_deidentification(source_datasets: Sequence[Dataset]) -> list[DeidChange]:
    """What a de-identified export would remove or replace (for the export dialog).

    Parameters
    ----------
    source_datasets : sequence of Dataset
        The study's source images (headers are enough).

    Returns
    -------
    list of DeidChange
        For the first instance of each series (the others differ only in their UIDs, which
        are all remapped the same way).
    """
    firsts: dict[str, Dataset] = {}
    for ds in source_datasets:
        firsts.setdefault(str(ds.get("SeriesInstanceUID", "")), ds)
    return Deidentifier().preview(list(firsts.values()))


def export_report(
    draft: ReportDraft,
    results: Sequence[ModelResult],
    source_datasets: Sequence[Dataset],
    out_dir: str | os.PathLike[str],
    pdf: bool = True,
    dicom: bool = True,
    deidentify: bool = False,
    key_images: Sequence[KeyImage] = (),
    header: InstitutionHeader | None = None,
    progress: Progress | None = None,
    pixels_reviewed: bool = False,
    deidentifier: Deidentifier | None = None,
    measurements: Sequence[str] = (),
) -> list[Path]:
    """Export a signed-off report.

    Parameters
    ----------
    draft : ReportDraft
        The report; must be signed off (reader name and time).
    results : sequence of ModelResult
        AI results with provenance (table in the PDF, coded findings in the SR).
    source_datasets : sequence of pydicom Dataset
        The study's source images (pixel data is not needed). Those outside ``draft.study_uid``
        are left out.
    out_dir : path
        Output folder (created). ``report.pdf`` and ``dicom/*.dcm`` are written there.
    pdf, dicom : bool
        Which outputs to write. DICOM includes the Encapsulated PDF, the SR and one Secondary
        Capture per key image with an overlay.
    deidentify : bool
        Apply the PS3.15 Basic Profile (patient/study identifiers replaced, UIDs remapped
        consistently across all outputs, the source patient's identifiers scrubbed from the
        report text).
    key_images : sequence of KeyImage
        Reader-chosen images (``source`` should name the instance they show).
    header : InstitutionHeader, optional
        Letterhead of the PDF.
    progress : Progress, optional
        Progress and cancel.
    pixels_reviewed : bool
        De-identified export: the user looked at the key images and confirmed they show no
        identifying text. Otherwise only key images whose source says Burned In Annotation NO
        are exported; the others are left out and the report says so.
    deidentifier : Deidentifier, optional
        Share one UID mapping with other outputs of the same run (``hilum analyze`` renames its
        files with it); a new one per export by default.
    measurements : sequence of str
        Measurement lines for the PDF's MEASUREMENTS section
        (:func:`app.reporting.annotations.measurement_lines`).

    Returns
    -------
    list of pathlib.Path
        The files written, PDF first.

    Raises
    ------
    NotSignedOffError
        When the report is not signed off.
    ExportError
        When nothing is to be exported, no source image is in the study, or a file cannot be
        written. Nothing half-written is left behind in that case.

    Long because the export is one transaction (written files are removed on any failure); its numpydoc parameter list is long.
    """
    if not draft.signed_off:
        raise NotSignedOffError("The report must be signed off (reader name) before export.")
    if not (pdf or dicom):
        raise ExportError("Choose PDF, DICOM or both to export.")
    progress = progress or NullProgress()
    sources = _study_sources(draft, source_datasets)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in sources}
    out = Path(out_dir)
    steps = 2 + (1 if pdf else 0) + (2 + len(key_images) if dicom else 0)
    done = 0
    progress.update(done, steps, "Preparing export")

    # Headers the outputs are built from: de-identified copies when asked, with one UID map.
    deid: Deidentifier | None = None
    notes: list[str] = []
    if deidentify:
        deid = deidentifier or Deidentifier()
        headers = [deid.apply(ds) for ds in sources]
        kept = [
            ki
            for ki in key_images
            if pixels_reviewed
            or _says_no_burned_in(by_uid.get(ki.source.sop_uid) if ki.source is not None else None)
        ]
        if len(kept) < len(key_images):
            left = len(key_images) - len(kept)
            notes.append(
                f"{left} key image(s) left out of this de-identified report: the source "
                "image does not state that it is free of burned-in identifying text "
                "(Burned In Annotation NO) and nobody confirmed it after looking."
            )
            log.info("%d key image(s) left out of a de-identified export", left)
        key_images = kept
        # the one header-aware scrubber on every free text, the reader included (PS3.15 removes
        # physicians' names): identifiers of every source header plus generic patterns
        draft = replace(
            draft,
            indication=deid.scrub_text(draft.indication),
            comparison=deid.scrub_text(draft.comparison),
            findings=deid.scrub_text(draft.findings),
            impression=deid.scrub_text(draft.impression),
            reader_name=DEIDENTIFIED_READER if draft.reader_name else "",
            generator=_scrub_value(draft.generator, deid.scrub_text),
            # the PDF prints who acknowledged each discrepancy, and the reader's note
            acknowledgements=[
                {
                    **_scrub_value(a, deid.scrub_text),
                    "reader": DEIDENTIFIED_READER if a.get("reader") else "",
                }
                for a in draft.acknowledgements
            ],
        )
        key_images = [
            replace(ki, caption=deid.scrub_text(ki.caption), legend=deid.scrub_text(ki.legend))
            for ki in key_images
        ]
        header = None  # the letterhead names where the patient was seen
    else:
        headers = [header_copy(ds) for ds in sources]
    for h in headers:  # a source's invalid values (hashed dates ...) must not block export
        dicom_out.drop_invalid_values(h)
    results = _with_instance_numbers(results, sources, source_datasets)
    headers = [dicom_out.complete_type2(h) for h in headers]
    header_by_uid = dict(zip(by_uid.keys(), headers))
    ref = headers[0]
    done += 1
    progress.update(done, steps, "Headers ready")
    progress.check()

    equipment = dicom_out.Equipment(
        institution_name="" if deidentify else ((header.name if header else "") or "")
    )
    pdf_sop_uid = generate_uid()
    written: list[Path] = []
    try:
        paths.private_dir(out)
        pdf_path = out / "report.pdf"
        need_pdf_bytes = dicom  # the Encapsulated PDF needs the PDF even when no file is asked
        pdf_bytes = b""
        if pdf or need_pdf_bytes:
            target = pdf_path if pdf else out / ".report.tmp.pdf"
            build_pdf(
                target,
                draft,
                results,
                PatientBlock.from_dataset(ref),
                header,
                key_images,
                document_id=pdf_sop_uid,
                deidentified=deidentify,
                export_notes=notes,
                measurements=[deid.scrub_text(m) for m in measurements]
                if deidentify and deid is not None
                else measurements,
            )
            pdf_bytes = target.read_bytes()
            if pdf:
                written.append(pdf_path)
            else:
                target.unlink()
            done += 1
            progress.update(done, steps, "PDF written")
            progress.check()

        if dicom:
            ddir = paths.private_dir(out / "dicom")
            enc = dicom_out.encapsulated_pdf(
                pdf_bytes, ref, headers, sop_instance_uid=pdf_sop_uid, equipment=equipment
            )
            path = ddir / f"PDF_{enc.SOPInstanceUID}.dcm"
            dicom_out.write(enc, path)
            written.append(path)
            sr = dicom_out.comprehensive_sr(
                draft,
                results,
                ref,
                headers,
                equipment=equipment,
                verifying_organization=(header.name if header and not deidentify else ""),
            )
            path = ddir / f"SR_{sr.SOPInstanceUID}.dcm"
            dicom_out.write(sr, path)
            written.append(path)
            done += 2
            progress.update(done, steps, "Structured report written")
            sc_series = generate_uid()
            n = 0
            for ki in key_images:
                progress.check()
                done += 1
                if ki.overlay is None:
                    continue
                src_uid = ki.source.sop_uid if ki.source is not None else ""
                if src_uid not in header_by_uid:
                    raise ExportError("A key image does not name a source image of this study.")
                n += 1
                sc = dicom_out.secondary_capture(
                    ki.overlay,
                    ref,
                    header_by_uid[src_uid],
                    n,
                    sc_series,
                    legend=ki.legend,
                    equipment=equipment,
                    burned_in_annotation=by_uid[src_uid].get("BurnedInAnnotation"),
                )
                path = ddir / f"SC_{n:02d}_{sc.SOPInstanceUID}.dcm"
                dicom_out.write(sc, path)
                written.append(path)
                progress.update(done, steps, f"Saliency image {n} written")
    except BaseException:
        # never leave a half export that looks complete
        for path in written:
            path.unlink(missing_ok=True)
        raise
    for path in written:
        paths.private_file(path)  # reports hold patient data: 0600 whatever the umask
    done = steps
    progress.update(done, steps, "Export finished")
    log.info("exported %d file(s)%s", len(written), " (de-identified)" if deidentify else "")
    return written


#: who signed, in a de-identified export (the physician's name is an identifier, PS3.15)
DEIDENTIFIED_READER = "De-identified reader"


def _says_no_burned_in(ds: Dataset | None) -> bool:
    """True only when the source states Burned In Annotation NO (absent means unknown)."""
    if ds is None:
        return False
    try:
        return str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "NO"
    except Exception:  # noqa: BLE001
        return False


def _scrub_value(value: Any, scrub: Any) -> Any:
    """Scrub every string inside a JSON-like value (e.g. a draft's provenance)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v, scrub) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v, scrub) for v in value]
    return value


def _with_instance_numbers(
    results: Sequence[ModelResult], sources: Sequence[Dataset], files: Sequence[Dataset] = ()
) -> list[ModelResult]:
    """Copies of ``results`` whose provenance names their image's Instance Number and frame
    count, for the PDF's table: from the source file the result was computed on (its
    ``path``), else from the source header with the same SOP Instance UID (two files can hold
    one SOP Instance UID, e.g. the same film stored twice with different instance numbers)."""
    numbers: dict[str, tuple[Any, int]] = {}
    by_path: dict[str, tuple[Any, int]] = {}
    for ds in [*files, *sources]:
        try:
            frames = int(ds.get("NumberOfFrames", 1) or 1)
        except (TypeError, ValueError):
            frames = 1
        try:
            inum = ds.get("InstanceNumber")
            inum = int(inum) if inum not in (None, "") else None
        except (TypeError, ValueError):
            inum = None
        numbers[str(ds.get("SOPInstanceUID", ""))] = (inum, frames)
        if getattr(ds, "filename", None) and isinstance(ds.filename, (str, os.PathLike)):
            by_path[os.path.realpath(ds.filename)] = (inum, frames)
    out = []
    for r in results:
        sop = str(r.provenance.get("sop_uid", "") or "")
        path = str(r.provenance.get("path", "") or "")
        found = by_path.get(os.path.realpath(path)) if path else None
        if found is None and sop in numbers:
            found = numbers[sop]
        if found is not None:
            inum, frames = found
            extra = {"frames": frames}
            if inum is not None:
                extra["instance_number"] = inum
            r = replace(r, provenance={**r.provenance, **extra})
        out.append(r)
    return out


def model_results_from_document(doc: dict[str, Any], study_uid: str = "") -> list[ModelResult]:
    """The :class:`ModelResult` list of a ``results.json``-shaped document, optionally only one
    study's images (parsed by :meth:`AnalysisRun.from_json`; an unreadable document gives none)."""
    from app.core.errors import ResultsFormatError
    from app.core.types import AnalysisRun

    try:
        return AnalysisRun.from_json(doc).model_results(study_uid)
    except ResultsFormatError:
        log.warning("stored AI results could not be read; left out of the export")
        return []


def source_paths_from_document(doc: dict[str, Any], study_uid: str = "") -> list[str]:
    """The image files a ``results.json``-shaped document classified (one study's, if given)."""
    from app.core.errors import ResultsFormatError
    from app.core.types import AnalysisRun

    try:
        return AnalysisRun.from_json(doc).source_paths(study_uid)
    except ResultsFormatError:
        return []


def key_images_from_analysis(
    doc: dict[str, Any],
    results_dir: str | os.PathLike[str],
    study_uid: str = "",
    colormap: str = "inferno",
    positive_only: bool = True,
    max_images: int = 4,
) -> list[KeyImage]:
    """Key images from a ``hilum analyze --saliency`` run: the source image as displayed plus the
    saliency overlay PNG the analysis wrote, with a legend and colour bar.

    Parameters
    ----------
    doc : dict
        The ``results.json`` document.
    results_dir : path
        The folder ``results.json`` is in (the overlay paths are relative to it).
    study_uid : str
        Only this study's images (all when empty).
    colormap : str
        The colour map the overlays were rendered with (for the legend).
    positive_only : bool
        Only labels the model flagged positive.
    max_images : int
        At most this many key images.

    Returns
    -------
    list of KeyImage
        In the order of the document; images whose files are missing are skipped (logged).

    Long because it pairs each positive result with its saliency map and source image in one pass.
    """
    from PIL import Image

    from app.dicom.pixels import display_array, frame_array, read_dataset
    from app.saliency.overlay import legend_image

    base = Path(results_dir)
    out: list[KeyImage] = []
    for image in doc.get("images", []) or []:
        if study_uid and image.get("study_uid") != study_uid:
            continue
        for rec in image.get("results", []) or []:
            sal = rec.get("saliency") or {}
            for label, files in (sal.get("files") or {}).items():
                lab = (rec.get("labels") or {}).get(label, {})
                if positive_only and not lab.get("positive"):
                    continue
                if len(out) >= max_images:
                    return out
                png = base / str(files.get("png", ""))
                try:
                    ds = read_dataset(image["path"])
                    frame = int(image.get("frame", 0) or 0)
                    display = display_array(ds, frame_array(ds, frame), frame=frame)
                    with Image.open(png) as im:
                        overlay = np.asarray(im.convert("RGB"))
                except (OSError, KeyError, ValueError) as exc:
                    log.warning("a saliency key image could not be loaded (%s)", type(exc).__name__)
                    continue
                if overlay.shape[:2] != display.shape[:2]:
                    log.warning("a saliency overlay does not match its image; skipped")
                    continue
                prob = lab.get("probability")
                # the colour map the overlay PNG was rendered with, as the analysis recorded it
                used = str((sal.get("overlay") or {}).get("colormap") or colormap)
                legend = (
                    f"{sal.get('method', '')} map of {rec.get('model_id', '')} "
                    f"'{label}'"
                    + (f" (p={float(prob):.2f})" if prob is not None else "")
                    + f", colour map {used}: bright = high relevance"
                )
                out.append(
                    KeyImage(
                        display=display,
                        overlay=overlay,
                        legend=legend,
                        legend_image=legend_image(used, height=128, width=40),
                        caption=f"{image.get('modality', '')} image, {label}".strip(),
                        source=ImageRef(
                            str(image.get("study_uid", "")),
                            str(image.get("series_uid", "")),
                            str(image.get("sop_uid", "")),
                            str(image["path"]),
                            frame,
                        ),
                    )
                )
    return out


def read_headers(paths: Sequence[str | os.PathLike[str]]) -> list[Dataset]:
    """Read the headers (no pixel data) of source files for an export.

    Raises
    ------
    ExportError
        When a file cannot be read as DICOM.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    out: list[Dataset] = []
    for path in paths:
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=True))
        except (OSError, InvalidDicomError) as exc:
            raise ExportError(
                "A source image could not be read for the export.", str(path)
            ) from exc
    return out


def key_image_from_ref(
    ref: ImageRef,
    display,
    overlay=None,
    legend: str = "",
    caption: str = "",
    use_overlay: bool = True,
) -> KeyImage:
    """Convenience constructor used by the GUI and the pipeline."""
    return KeyImage(
        display=display,
        overlay=overlay,
        use_overlay=use_overlay,
        legend=legend,
        caption=caption,
        source=ref,
    )


def deidentify_results_folder(
    out_dir: str | os.PathLike[str], doc: dict[str, Any], deid: Deidentifier, identifiers: Any = ()
) -> dict[str, Any]:
    """Make a ``hilum analyze --deidentify`` output folder hold no original identifier.

    Run after the exports (which read the original files): saliency files named by an original
    SOP Instance UID are renamed with the export's remapped UID, ``results.json`` is rewritten
    with remapped UIDs and without source paths ("image 1" ...), and ``draft.txt`` /
    ``draft.provenance.json`` are scrubbed with the one header-aware scrubber.

    Parameters
    ----------
    out_dir : path
        The analysis folder.
    doc : dict
        The results document (not modified).
    deid : Deidentifier
        The export's de-identifier (one UID mapping for the DICOM outputs and these files).
    identifiers : iterable of str
        The source headers' identifiers (:func:`app.reporting.deid.identifiers_from_dataset`).

    Returns
    -------
    dict
        The de-identified document written to ``results.json``.
    """
    import json

    from app.reporting.deid import scrub_text

    out = Path(out_dir)
    idents = set(identifiers) | set(deid.identifiers)
    repl: dict[str, str] = {}
    for n, image in enumerate(doc.get("images", []) or [], 1):
        for key in ("study_uid", "series_uid", "sop_uid"):
            if image.get(key):
                repl[str(image[key])] = deid.remap_uid(str(image[key]))
        if image.get("path"):
            repl[str(image["path"])] = f"image {n}"
    for n, err in enumerate(doc.get("errors", []) or [], 1):
        if err.get("path") and str(err["path"]) not in repl:
            repl[str(err["path"])] = f"input {n}"
    order = sorted(repl, key=len, reverse=True)

    def fix(text: str, generic: bool = False) -> str:
        for old in order:
            if old in text:
                text = text.replace(old, repl[old])
        return scrub_text(text, idents, generic=generic)

    def walk(value: Any, generic_keys: frozenset[str] = frozenset(), key: str = "") -> Any:
        if isinstance(value, str):
            return fix(value, key in generic_keys)
        if isinstance(value, dict):
            return {fix(str(k)): walk(v, generic_keys, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, generic_keys, key) for v in value]
        return value

    # file and folder names (deepest first, so parents are renamed after their children)
    for path in sorted(out.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        new = path.name
        for old in order:
            if old in new:
                new = new.replace(old, repl[old])
        if new != path.name:
            path.rename(path.with_name(new))
    clean = walk(doc)
    clean.pop("results_path", None)
    clean.pop("outputs", None)
    paths.write_private(out / "results.json", json.dumps(clean, indent=2) + "\n")
    free_text = frozenset({"prompt", "indication", "comparison", "notes", "findings", "impression"})
    for draft_file in out.rglob("draft.txt"):
        paths.write_private(draft_file, scrub_text(draft_file.read_text(encoding="utf-8"), idents))
    for prov_file in out.rglob("draft.provenance.json"):
        prov = json.loads(prov_file.read_text(encoding="utf-8"))
        paths.write_private(prov_file, json.dumps(walk(prov, free_text), indent=1) + "\n")
    paths.secure_tree(out)
    return clean
