"""Batch loops over :class:`~app.workflow.session.StudySession`: ``hilum analyze``, ``hilum demo``
(headless) and ``hilum --self-test`` drive the same object as the window.

:func:`analyze` classifies every file once (one batched run), splits the run by study, and for
each study drafts, signs off (the named reader, else :data:`BATCH_READER`: an unattended export
says plainly that no physician has read it) and exports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from app.core.progress import NullProgress, Progress
from app.core.types import BATCH_READER, Device, SaliencyMethod
from app.workflow.session import StudySession

__all__ = ["BATCH_READER", "analyze", "finish_study"]


def finish_study(
    session: StudySession,
    target: Path,
    *,
    indication: str = "",
    comparison: str = "",
    notes: str = "",
    device: Device | str = Device.AUTO,
    backend: str = "bundled",
    backend_options: dict[str, Any] | None = None,
    pdf: bool = False,
    dicom_export: bool = False,
    deidentify: bool = False,
    reader_name: str = "",
    pixels_reviewed: bool = False,
    deidentifier: Any = None,
    key_images: bool = True,
    progress: Progress | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> list[str]:
    """Draft one analysed study into ``target/draft.txt`` (and its provenance into
    ``draft.provenance.json``, both private files) and export it when asked.

    ``key_images``: export the positive findings' saliency key images (Secondary Captures);
    ``hilum analyze`` does when saliency maps were asked for.

    Returns
    -------
    list of str
        The files written (``draft.txt`` first).
    """
    from app.core import paths as core_paths

    core_paths.private_dir(target)
    session.draft_report(
        indication,
        comparison,
        notes,
        backend=backend,
        device=device,
        progress=progress,
        **dict(backend_options or {}),
    )
    core_paths.write_private(target / "draft.txt", session.draft_text.rstrip() + "\n")
    # the draft's provenance (for a remote backend: the server and the exact prompt sent)
    core_paths.write_private(
        target / "draft.provenance.json", json.dumps(session.draft_provenance, indent=1) + "\n"
    )
    files = [str(target / "draft.txt"), str(target / "draft.provenance.json")]
    say(
        f"drafted the report ({session.draft_provenance.get('provider', '')}) -> {target / 'draft.txt'}"
    )
    if pdf or dicom_export:
        session.sign_off(reader_name or BATCH_READER)
        files += [
            str(p)
            for p in session.export(
                target,
                pdf=pdf,
                dicom=dicom_export,
                deidentify=deidentify,
                pixels_reviewed=pixels_reviewed,
                deidentifier=deidentifier,
                progress=progress,
                key_images=None if key_images else [],
            )
        ]
        say(f"exported {len(files) - 2} file(s) -> {target}")
    return files


def analyze(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    model_ids: Sequence[str] | None = None,
    device: Device | str = Device.AUTO,
    fp16: bool | None = None,
    saliency: SaliencyMethod | str | None = None,
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
    inference: str = "auto",
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
        See :meth:`StudySession.analyze`.
    saliency : SaliencyMethod, optional
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
    inference : {"auto", "local", "remote"}
        Where models that a site serves run (see :func:`app.inference.remote.choose_engine`).

    Returns
    -------
    dict
        The ``results.json`` document, with ``outputs`` listing the files written per study.

    Long because mostly its numpydoc parameter list; the body is a short loop over study sessions.
    """
    progress = progress or NullProgress()
    say = log_step or (lambda line: None)
    out = Path(out_dir)
    batch = StudySession.open(paths)
    run = batch.analyze(
        model_ids=model_ids,
        device=device,
        fp16=fp16,
        saliency=saliency,
        out_dir=out,
        override_applicability=override_applicability,
        progress=progress,
        inference=inference,
    )
    doc = run.to_json()
    s = run.summary
    say(
        f"analysed {s['images']} image(s), {s['classified']} classified, {s['errors']} error(s)"
        f" -> {doc.get('results_path')}"
    )
    doc["outputs"] = {}
    if not (draft or pdf or dicom_export):
        return doc
    sessions = batch.split()
    run_deid = None
    if deidentify:
        from app.reporting.deid import Deidentifier

        run_deid = Deidentifier()  # one UID mapping for the exports and the renamed files
    for study_uid, session in sessions.items():
        progress.check()
        # a de-identified run names study folders by the new UID, never the original one
        folder = run_deid.remap_uid(study_uid) if run_deid is not None else study_uid
        target = out if len(sessions) == 1 else out / folder
        doc["outputs"][study_uid] = finish_study(
            session,
            target,
            indication=indication,
            comparison=comparison,
            notes=notes,
            device=device,
            backend=backend,
            backend_options=backend_options,
            pdf=pdf,
            dicom_export=dicom_export,
            deidentify=deidentify,
            reader_name=reader_name,
            pixels_reviewed=pixels_reviewed,
            deidentifier=run_deid,
            key_images=saliency is not None,
            progress=progress,
            say=say,
        )
    if run_deid is not None:
        from app.reporting.export import deidentify_results_folder

        identifiers: set[str] = set()
        for session in sessions.values():
            identifiers |= session.identifiers()
        deidentify_results_folder(out, doc, run_deid, identifiers)
        say(f"de-identified the output folder {out} (UIDs remapped, no source paths)")
    return doc
