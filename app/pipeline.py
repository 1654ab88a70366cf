"""Study -> findings -> saliency -> draft -> outputs, shared by the CLI (``hilum analyze``,
``hilum demo``, ``hilum --self-test``) and the GUI.

Each step is a plain function of the packages that own it; this module only chains them:

* :func:`app.inference.analyze.analyze_paths` classifies every image (``results.json``), with the
  saliency hook of :mod:`app.saliency.api` writing maps from the same forward pass;
* :func:`app.reporting.generator.draft` drafts FINDINGS and IMPRESSION from those results;
* :func:`app.reporting.export.export_report` writes the PDF and the DICOM objects.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from app.core.errors import HilumError
from app.core.progress import NullProgress, Progress

log = logging.getLogger(__name__)

#: the reader recorded on reports exported by unattended batch runs: the PDF and SR say plainly
#: that no physician has signed the draft
BATCH_READER = "Not reviewed (automated batch export)"

_METADATA_KEYS = ("Modality", "BodyPartExamined", "ViewPosition", "PatientAge", "PatientSex",
                  "StudyDescription")


def _study_metadata(path: str) -> dict[str, str]:
    """The DICOM metadata that conditions the draft (no identifiers)."""
    return _study_header([path])[0]


def _study_header(paths_: Sequence[str]) -> tuple[dict[str, str], frozenset[str]]:
    """Conditioning metadata (first image) and every identifier the study's headers make known
    (all images: each may name another operator, station or date)."""
    import pydicom

    from app.reporting.deid import identifiers_from_dataset

    metadata: dict[str, str] = {}
    identifiers: set[str] = set()
    for path in paths_:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - metadata is optional conditioning
            continue
        if not metadata:
            metadata = {k: str(ds.get(k, "") or "") for k in _METADATA_KEYS if ds.get(k, "")}
        identifiers |= identifiers_from_dataset(ds)
    return metadata, frozenset(identifiers)


def _studies(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Images with at least one result, grouped by study (document order)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for image in doc.get("images", []):
        if image.get("results"):
            out.setdefault(str(image.get("study_uid", "")), []).append(image)
    return out


def draft_for_study(doc: dict[str, Any], study_uid: str, *, indication: str = "",
                    comparison: str = "", notes: str = "", backend: str = "bundled",
                    device: str = "auto", progress: Progress | None = None,
                    echo: Callable[[str], None] | None = None, **backend_options: Any) -> Any:
    """Draft the report of one analysed study.

    Parameters
    ----------
    doc : dict
        A ``results.json`` document.
    study_uid : str
        The study to draft.
    indication, comparison, notes : str
        What the radiologist typed.
    backend, device, backend_options
        Passed to :func:`app.reporting.generator.draft`.
    progress : Progress, optional
        Cancel.
    echo : callable, optional
        Receives each streamed text chunk (e.g. to print it as it comes).

    Returns
    -------
    app.reporting.generator.DraftStream
        Fully consumed: ``.text``, ``.provenance``, ``.to_report_draft(study_uid)``.
    """
    from app.reporting.export import model_results_from_document
    from app.reporting.generator import draft

    images = _studies(doc).get(study_uid, [])
    results = model_results_from_document(doc, study_uid)
    # the study's header: conditioning metadata, and the identifiers scrubbed from what is sent
    metadata, identifiers = _study_header([str(i["path"]) for i in images])
    backend_options.setdefault("identifiers", identifiers)
    stream = draft(results, {"indication": indication, "comparison": comparison, "notes": notes,
                             "metadata": metadata}, backend=backend, device=device,
                   progress=progress, **backend_options)
    for chunk in stream:
        if echo is not None:
            echo(chunk)
    from app.reporting.signoff import results_with_images, sentence_evidence

    stream.evidence = sentence_evidence(stream.text.split("\n", 1)[-1] if stream.text.startswith("AI-") else stream.text,
                                        results_with_images(doc, study_uid))
    return stream


def analyze(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    model_ids: Sequence[str] | None = None,
    device: str = "auto",
    fp16: bool | None = None,
    saliency: str | None = None,
    draft: bool = False,
    indication: str = "",
    comparison: str = "",
    pdf: bool = False,
    dicom_export: bool = False,
    deidentify: bool = False,
    reader_name: str = "",
    override_applicability: bool = False,
    progress: Progress | None = None,
    log_step: Callable[[str], None] | None = None,
    notes: str = "",
    backend: str = "bundled",
    backend_options: dict[str, Any] | None = None,
    pixels_reviewed: bool = False,
) -> dict[str, Any]:
    """Run the whole job on some files and write the outputs under ``out_dir``.

    Parameters
    ----------
    paths : sequence of path
        DICOM files and folders.
    out_dir : path
        ``results.json``, ``saliency/``, ``draft.txt``, ``report.pdf`` and ``dicom/`` go here
        (one study); with several studies the draft and exports go to ``out_dir/<StudyUID>/``.
    model_ids, device, fp16, override_applicability
        Passed to :func:`app.inference.analyze.analyze_paths`.
    saliency : {"cam", "occlusion", "rise", "auto"} or None
        Write saliency maps with this method.
    draft : bool
        Draft the report text (implied by ``pdf`` and ``dicom_export``).
    indication, comparison : str
        Conditioning typed by the radiologist.
    pdf, dicom_export, deidentify : bool
        Export the report as PDF and/or DICOM, optionally de-identified.
    reader_name : str
        Who signs the exported report; unattended runs record :data:`BATCH_READER`.
    progress : Progress, optional
        Progress and cancel.
    log_step : callable, optional
        Receives one human-readable line per finished step.
    notes : str
        The radiologist's notes for the draft.
    backend, backend_options
        The generator (``bundled`` or ``openai``) and its options (``url``, ``model``,
        ``timeout``, ``allow_insecure_http``, ``confirm_send`` ...); the study's header
        identifiers are scrubbed from everything sent to a server.
    pixels_reviewed : bool
        De-identified export: the user looked at the key images and confirmed they carry no
        burned-in identifiers (otherwise only sources saying Burned In Annotation NO are used).

    Returns
    -------
    dict
        The results document, with ``outputs`` listing the files written per study.
    """
    from app.core import paths as core_paths
    from app.inference.analyze import analyze_paths

    progress = progress or NullProgress()
    say = log_step or (lambda line: None)
    out = Path(out_dir)
    hooks = []
    factory = None
    if saliency:
        from app.saliency.api import analyze_hook, engine_factory

        hooks.append(analyze_hook(method=saliency, progress=progress))
        if saliency in ("cam", "auto"):
            factory = engine_factory  # CAM feature maps come out of the classifying pass
    doc = analyze_paths(paths, out, model_ids=model_ids, device=device, progress=progress,
                        override_applicability=override_applicability, hooks=hooks,
                        engine_factory=factory, fp16=fp16)
    s = doc["summary"]
    say(f"analysed {s['images']} image(s), {s['classified']} classified, {s['errors']} error(s)"
        f" -> {doc.get('results_path')}")
    doc["outputs"] = {}
    if not (draft or pdf or dicom_export):
        return doc

    studies = _studies(doc)
    run_deid = None
    if deidentify:
        from app.reporting.deid import Deidentifier

        run_deid = Deidentifier()  # one UID mapping for the exports and the renamed files
    for study_uid in studies:
        progress.check()
        # a de-identified run names study folders by the new UID, never the original one
        folder = run_deid.remap_uid(study_uid) if run_deid is not None else study_uid
        target = out if len(studies) == 1 else out / folder
        core_paths.private_dir(target)
        stream = draft_for_study(doc, study_uid, indication=indication, comparison=comparison,
                                 notes=notes, device=device, progress=progress, backend=backend,
                                 **dict(backend_options or {}))
        core_paths.write_private(target / "draft.txt", stream.text.rstrip() + "\n")
        # the draft's provenance (for a remote backend: the server and the exact prompt sent)
        core_paths.write_private(target / "draft.provenance.json",
                            json.dumps(stream.provenance, indent=1) + "\n")
        files: list[str] = [str(target / "draft.txt"), str(target / "draft.provenance.json")]
        say(f"drafted the report ({stream.provenance.get('provider', '')}) -> {target / 'draft.txt'}")
        if pdf or dicom_export:
            files += [str(p) for p in export_study(doc, out, target, study_uid, stream, pdf=pdf,
                                              dicom=dicom_export, deidentify=deidentify,
                                              reader_name=reader_name, progress=progress,
                                              pixels_reviewed=pixels_reviewed,
                                              deidentifier=run_deid)]
            say(f"exported {len(files) - 1} file(s) -> {target}")
        doc["outputs"][study_uid] = files
    if run_deid is not None:
        from app.reporting.export import deidentify_results_folder

        identifiers: set[str] = set()
        for images in studies.values():
            identifiers |= _study_header([str(i["path"]) for i in images])[1]
        deidentify_results_folder(out, doc, run_deid, identifiers)
        say(f"de-identified the output folder {out} (UIDs remapped, no source paths)")
    return doc


def export_study(doc: dict[str, Any], results_dir: Path, target: Path, study_uid: str, stream: Any, *,
                 pdf: bool, dicom: bool, deidentify: bool, reader_name: str,
                 progress: Progress | None = None, pixels_reviewed: bool = False,
                 deidentifier: Any = None) -> list[Path]:
    """Sign off (``reader_name``, else :data:`BATCH_READER`) and export one drafted study."""
    from app.reporting.export import (export_report, key_images_from_analysis,
                                      model_results_from_document, read_headers,
                                      source_paths_from_document)

    report = stream.to_report_draft(study_uid)
    report.reader_name = reader_name or BATCH_READER
    report.reviewed = bool(reader_name)
    report.signed_off_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    sources = read_headers(source_paths_from_document(doc, study_uid))
    keys = key_images_from_analysis(doc, results_dir, study_uid)
    return export_report(report, model_results_from_document(doc, study_uid), sources, target,
                         pdf=pdf, dicom=dicom, deidentify=deidentify, key_images=keys,
                         progress=progress or NullProgress(), pixels_reviewed=pixels_reviewed,
                         deidentifier=deidentifier)


def run_demo(out: str | None = None, headless: bool = True, device: str = "auto",
             stdout: TextIO | None = None) -> int:
    """``hilum demo``: Hilum's main job on the bundled sample chest film.

    With a display it opens the reading window on the sample; without one (or with
    ``headless``) it scans, analyses (classifier + CAM), drafts and exports the report, and
    prints where the outputs are.
    """
    from app.core import paths

    stdout = stdout or sys.stdout
    sample = paths.sample_path()
    if not headless:
        from app.gui.app import run_gui

        return run_gui([str(sample)])
    from app.dicom.library import Library

    target = Path(out) if out else paths.data_dir() / "demo"
    report = Library().scan([str(sample)])
    n_series = sum(len(s["series"]) for s in report.studies)
    print(f"scanned the sample: {len(report.studies)} study, {n_series} series "
          f"({len(report.errors)} error(s)) into {paths.library_path()}", file=stdout)
    try:
        doc = analyze([str(sample)], target, device=device, saliency="cam", draft=True,
                      pdf=True, dicom_export=True,
                      log_step=lambda line: print(line, file=stdout, flush=True))
    except HilumError as exc:
        print(f"hilum demo: {exc}", file=sys.stderr)
        return 1
    for image in doc["images"]:
        for rec in image["results"]:
            for label, lab in rec["labels"].items():
                flag = "POSITIVE" if lab["positive"] else "negative"
                print(f"{rec['model_id']} {label}: p={lab['probability']:.3f} "
                      f"(threshold {lab['threshold']:.2f}) {flag} on {rec['provider']}", file=stdout)
            if str(rec.get("reliability", "")).startswith("outside"):
                print(f"  ! {rec['model_id']}: {rec['reliability']}", file=stdout)
    print(f"outputs in {target}: results.json, saliency/, draft.txt, report.pdf, dicom/", file=stdout)
    print(json.dumps({"out": str(target), "files": doc["outputs"]}), file=stdout)
    return 0
