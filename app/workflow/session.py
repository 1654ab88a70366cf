"""The study session: one object per open study that the window and the command line both drive.

A :class:`StudySession` owns what Hilum does with one study: its series files, the analysis runs,
the saliency maps (CAM taken from the classifying pass; perturbation methods on request), the
header values that decide applicability and condition the draft (:meth:`StudySession.metadata`,
the one reader), the report draft, its sign-off and the export. Every step is a plain method
taking a progress/cancel object (run it on a worker in the GUI); every change is announced on
:attr:`StudySession.events` (see :mod:`app.workflow.events`). No Qt here.

Typical use::

    session = StudySession.open(paths)                   # or StudySession(study_uid)
    run = session.analyze(device="cpu")                  # AnalysisRun, CAM kept from the same pass
    maps = session.saliency(run.images[0].ref)           # no second forward pass for CAM
    draft = session.draft(indication="Cough")            # ReportDraft (bundled generator, greedy)
    session.sign_off("Dr Ada Reader")
    files = session.export(out_dir, pdf=True, dicom=True)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from app.core.errors import NotSignedOffError, UsageError
from app.core.progress import NullProgress, Progress
from app.core.types import (
    AnalysisRun,
    Device,
    ImageRef,
    ImageResult,
    ModelResult,
    ReportDraft,
    SaliencyMethod,
    SaliencyOutput,
    StudyMetadata,
)
from app.workflow.events import SessionEvents

log = logging.getLogger(__name__)

#: overlay rendering shared by saliency files, key images and the export
COLORMAP, OPACITY, THRESHOLD, CONTOUR = "inferno", 0.5, 0.1, False


def read_metadata(path: str | os.PathLike[str]) -> StudyMetadata:
    """The header values of one image (no pixel data read); empty when the file is unreadable.

    The one metadata reader: applicability (AI panel, ``hilum analyze``) and draft conditioning
    (Report panel, CLI) all take :class:`~app.core.types.StudyMetadata` from here.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - metadata is optional conditioning; hostile files happen
        return StudyMetadata()
    return StudyMetadata.from_dataset(ds)


@dataclass
class _KeptMaps:
    """Saliency of one model on one image, kept in the model grid (small) until asked for."""

    ref: ImageRef
    model_id: str
    method: SaliencyMethod
    labels: list[str]
    model_raw: np.ndarray  # (n_labels, h, w)
    geometry: Any
    explainer: Any
    same_forward_pass: bool
    info: dict[str, Any]


def _key(ref: ImageRef) -> tuple[str, int]:
    return (ref.sop_uid or ref.path, int(ref.frame))


class StudySession:
    """Everything Hilum does with one open study (Qt-free; see the module docstring).

    Parameters
    ----------
    study_uid : str
        The study ('' until the first file or run names it).
    library : Library, optional
        Where runs and drafts are stored with the study (:meth:`save`, :meth:`load`).
    registry : ModelRegistry, optional
        The installed models (default: :class:`app.inference.registry.ModelRegistry`).
    """

    def __init__(self, study_uid: str = "", *, library: Any = None, registry: Any = None) -> None:
        self.study_uid = study_uid
        self.library = library
        self._registry = registry
        self.events = SessionEvents()
        self.series_files: dict[str, list[str]] = {}
        self.runs: dict[str, AnalysisRun] = {}
        self.draft: ReportDraft | None = None
        self.draft_text = ""
        self.draft_provenance: dict[str, Any] = {}
        self.exported: list[Path] = []
        self._metadata: StudyMetadata | None = None
        self._maps: dict[tuple[tuple[str, int], str], _KeptMaps] = {}
        self._lock = threading.RLock()

    # -- study content --------------------------------------------------------------------------
    @classmethod
    def open(cls, paths: Iterable[str | os.PathLike[str]], **kwargs: Any) -> "StudySession":
        """A session over files/folders (one study, or a batch split later by :meth:`split`)."""
        session = cls(**kwargs)
        session.add_series("", [str(p) for p in paths])
        return session

    def add_series(self, series_uid: str, files: Sequence[str | os.PathLike[str]]) -> None:
        """Add (or replace) a series' image files; announced on ``events.series``."""
        with self._lock:
            self.series_files[series_uid] = [str(f) for f in files]
        self.events.series.emit(series_uid)

    def files(self) -> list[str]:
        """Every file of the session, series by series, once each."""
        return list(dict.fromkeys(f for files in self.series_files.values() for f in files))

    def load_series(self, series_uid: str, progress: Progress | None = None) -> Any:
        """The series' geometry (:func:`app.dicom.series.load_series`: stacks and warnings)."""
        from app.dicom.series import load_series

        return load_series(self.series_files.get(series_uid, []), progress=progress)

    def registry(self) -> Any:
        """The model registry (verified on first use: call on a worker)."""
        if self._registry is None:
            from app.inference.registry import ModelRegistry

            self._registry = ModelRegistry()
        return self._registry

    # -- metadata (the one reader) -------------------------------------------------------------
    def metadata(self) -> StudyMetadata:
        """Header values of the study's first image (read once; call on a worker)."""
        with self._lock:
            if self._metadata is not None:
                return self._metadata
            first = next(iter(self.source_paths() or self.files()), None)
            if first is None:
                return StudyMetadata()  # nothing to read yet: asked again once files come
            md = self._metadata = read_metadata(first)
        self.events.metadata.emit(md)
        return md

    @property
    def cached_metadata(self) -> StudyMetadata | None:
        """The header values if already read (never reads: safe on the GUI thread)."""
        return self._metadata

    def identifiers(self) -> frozenset[str]:
        """Every identifier the study's headers make known (all images: each may name another
        operator, station or date), for the scrubber of what leaves the machine."""
        import pydicom

        from app.reporting.deid import identifiers_from_dataset

        found: set[str] = set()
        for path in self.source_paths() or self.files():
            try:
                found |= identifiers_from_dataset(pydicom.dcmread(path, stop_before_pixels=True))
            except Exception:  # noqa: BLE001 - an unreadable file adds no identifiers
                continue
        return frozenset(found)

    def applicability(self, manifest: Any) -> list[str]:
        """Why ``manifest`` does not apply to this study (empty: it applies), as the CLI checks it."""
        from app.inference.registry import applicability_problems

        return applicability_problems(manifest, self.metadata().as_dicom())

    # -- analysis -------------------------------------------------------------------------------
    def analyze(
        self,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        *,
        series_uid: str = "",
        model_ids: Sequence[str] | None = None,
        device: Device | str = Device.AUTO,
        fp16: bool | None = None,
        saliency: SaliencyMethod | str | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        override_applicability: bool = False,
        progress: Progress | None = None,
        inference: str = "auto",
    ) -> AnalysisRun:
        """Classify the study's images (or ``paths``) with every applicable model.

        The engines run the CAM-rewritten graph, so the classifying pass also yields each
        model's CAM, kept (small, in the model grid) for :meth:`saliency`. With ``saliency`` and
        ``out_dir`` the maps are written as ``saliency/*.png|npy`` too (``hilum analyze``).

        Parameters
        ----------
        paths : sequence of path, optional
            Default: every file of the session.
        series_uid : str
            The run is kept (and stored) under this series.
        model_ids, fp16, override_applicability
            See :func:`app.inference.analyze.analyze_paths`.
        device : Device
        saliency : SaliencyMethod, optional
            Also compute (and record) maps with this method for every image.
        out_dir : path, optional
            Write ``results.json`` (and saliency files) here.
        progress : Progress, optional
        inference : {"auto", "local", "remote"}
            Where models that a site serves run (:func:`app.inference.remote.choose_engine`).

        Returns
        -------
        AnalysisRun

        Long because it runs, stores and announces an analysis in one locked step.
        """
        from app.inference.analyze import analyze_paths
        from app.saliency.api import analyze_hook, engine_factory

        progress = progress or NullProgress()
        todo = [str(p) for p in paths] if paths is not None else self.files()
        if not todo:
            raise UsageError("There are no images to analyse in this study.")
        dev = Device(device).value
        hooks: list[Callable[[Any], None]] = [self._keep_cam]
        if saliency is not None:
            method = SaliencyMethod(saliency).value
            hooks.append(
                analyze_hook(
                    method=method,
                    progress=progress,
                    write=out_dir is not None,
                    on_maps=self._keep_maps,
                    colormap=COLORMAP,
                    opacity=OPACITY,
                    threshold=THRESHOLD,
                    contour=CONTOUR,
                )
            )
        from app.saliency.serving import factory_for

        factory = (
            factory_for(inference, self._registry) or engine_factory
        )  # a site's inference server
        doc = analyze_paths(
            todo,
            out_dir,
            model_ids=model_ids,
            device=dev,
            progress=progress,
            override_applicability=override_applicability,
            hooks=hooks,
            engine_factory=factory,
            fp16=fp16,
            write=out_dir is not None,
            registry=self._registry,
        )
        # parsed from its JSON text: the run equals what is written to and read back from disk
        run = AnalysisRun.from_json(json.dumps(doc))
        with self._lock:
            self.runs[series_uid] = run
            if not self.study_uid and run.study_uids():
                self.study_uid = run.study_uids()[0]
            if paths is not None and series_uid not in self.series_files:
                self.series_files[series_uid] = todo
        self.events.run.emit(run)
        return run

    def _keep_cam(self, ctx: Any) -> None:
        """Hook: keep the CAM the classifying pass produced (model grid, all labels)."""
        from app.saliency.api import explainer_of

        ex = explainer_of(ctx.engine)
        if ex is None or ex.cam is None or ex.cam.cam_name not in ctx.raw:
            return
        raw = np.asarray(ctx.raw[ex.cam.cam_name], dtype=np.float32)
        raw = raw[0] if raw.ndim == 4 else raw
        kept = _KeptMaps(
            ctx.ref,
            ctx.manifest.id,
            SaliencyMethod.CAM,
            list(ex.labels),
            raw,
            ctx.geometry,
            ex,
            True,
            {"method": "cam", "feature_tensor": ex.cam.feature_name},
        )
        with self._lock:
            self._maps[(_key(ctx.ref), ctx.manifest.id + "|cam")] = kept

    def _keep_maps(self, ctx: Any, ex: Any, maps: dict[str, Any], info: dict[str, Any]) -> None:
        """``on_maps`` of the saliency hook: keep perturbation maps (CAM is kept already)."""
        method = SaliencyMethod(info.get("method", "cam"))
        if method is SaliencyMethod.CAM or not maps:
            return
        labels = list(maps)
        raw = np.stack([np.asarray(maps[lab].model_raw, dtype=np.float32) for lab in labels])
        kept = _KeptMaps(
            ctx.ref, ctx.manifest.id, method, labels, raw, ctx.geometry, ex, False, dict(info)
        )
        with self._lock:
            self._maps[(_key(ctx.ref), f"{ctx.manifest.id}|{method.value}")] = kept

    @property
    def run(self) -> AnalysisRun | None:
        """The latest analysis run (None before any)."""
        with self._lock:
            return next(reversed(self.runs.values()), None) if self.runs else None

    def set_run(self, run: AnalysisRun, series_uid: str = "") -> None:
        """Adopt a stored or received run (announced on ``events.run``)."""
        with self._lock:
            self.runs[series_uid] = run
        self.events.run.emit(run)

    def images(self) -> list[ImageResult]:
        """Every analysed image of this study, over all runs."""
        with self._lock:
            runs = list(self.runs.values())
        return [i for r in runs for i in r.images_of(self.study_uid)]

    def model_results(self) -> list[ModelResult]:
        """Every model result on this study's images, over all runs, each naming its image
        (:meth:`AnalysisRun.model_results`)."""
        with self._lock:
            runs = list(self.runs.values())
        return [r for run in runs for r in run.model_results(self.study_uid)]

    def source_paths(self) -> list[str]:
        """The classified image files of the study, once each."""
        return list(dict.fromkeys(i.path for i in self.images() if i.results and i.path))

    def split(self) -> dict[str, "StudySession"]:
        """One session per study of a batch run (runs, maps and files divided by study)."""
        out: dict[str, StudySession] = {}
        run = self.run
        if run is None:
            return out
        for uid in run.study_uids():
            s = StudySession(uid, library=self.library, registry=self._registry)
            images = tuple(i for i in run.images if i.study_uid == uid)
            s.runs[""] = dataclasses.replace(run, images=images)
            s.series_files[""] = [i.path for i in images]
            s._maps = {k: v for k, v in self._maps.items() if v.ref.study_uid == uid}
            out[uid] = s
        return out

    # -- saliency -------------------------------------------------------------------------------
    def saliency(
        self,
        ref: ImageRef,
        model_id: str | None = None,
        method: SaliencyMethod | str = SaliencyMethod.CAM,
        labels: Sequence[str] | None = None,
        *,
        device: Device | str = Device.AUTO,
        progress: Progress | None = None,
        inference: str = "auto",
        **params: Any,
    ) -> list[SaliencyOutput]:
        """Saliency maps of one image (source pixel grid), one per label.

        CAM comes from the classifying pass when the image was analysed (no model run here);
        perturbation methods (and CAM of an image not analysed yet) run the model now.

        Parameters
        ----------
        ref : ImageRef
            The image (SOP UID or path, and frame).
        model_id : str, optional
            Default: the first model with a result on the image (or the first installed one).
        method : SaliencyMethod
            ``auto`` resolves as :func:`app.saliency.api.choose_method`.
        labels : sequence of str, optional
            Default: every label.
        device : Device
            For a model run made here.
        progress : Progress, optional
            Progress and cancel of perturbation methods.
        inference : {"auto", "local", "remote"}
            A model the site serves is explained by its server (the CAM comes back with the
            logits of one request; :func:`app.saliency.serving.explainer_for`).
        **params
            Occlusion/RISE parameters (their defaults otherwise, as ``hilum analyze``).
        """
        from app.saliency.api import choose_method
        from app.saliency.serving import explainer_for

        model_id = model_id or self._default_model(ref)
        manifest = self.registry().get(model_id)
        ex = explainer_for(manifest, device=Device(device).value, inference=inference)
        chosen = SaliencyMethod(choose_method(SaliencyMethod(method).value, ex, manifest))
        with self._lock:
            kept = self._maps.get((_key(ref), f"{model_id}|{chosen.value}"))
        if kept is None:
            kept = self._compute(ref, manifest, ex, chosen, progress or NullProgress(), params)
        wanted = [lab for lab in (labels or kept.labels) if lab in kept.labels]
        raw = (
            np.stack([kept.model_raw[kept.labels.index(lab)] for lab in wanted])
            if wanted
            else kept.model_raw[:0]
        )
        maps = kept.explainer.maps_from_raw(raw, wanted, kept.geometry, chosen.value, kept.info)
        out = [
            SaliencyOutput(
                ref=kept.ref,
                model_id=model_id,
                label=lab,
                method=chosen,
                map=maps[lab].map,
                raw=maps[lab].raw,
                same_forward_pass=kept.same_forward_pass,
                info=dict(kept.info),
            )
            for lab in wanted
        ]
        self.events.saliency.emit(out)
        return out

    def _default_model(self, ref: ImageRef) -> str:
        for image in self.images():
            if _key(image.ref) == _key(ref) or image.path == ref.path:
                for r in image.results:
                    return r.model_id
        models = [m for m in self.registry().models() if m.verified and m.labels]
        if not models:
            raise UsageError("No verified model is installed to explain this image.")
        return str(models[0].id)

    def _compute(
        self,
        ref: ImageRef,
        manifest: Any,
        ex: Any,
        method: SaliencyMethod,
        progress: Progress,
        params: dict[str, Any],
    ) -> _KeptMaps:
        from app.dicom.pixels import read_dataset

        ds = read_dataset(ref.path)
        tensor, gt, used = ex.engine.preprocess_dataset(ds, frame=ref.frame)
        maps = ex.explain(tensor, gt, None, method.value, progress, **params)
        labels = list(maps)
        raw = np.stack([np.asarray(maps[lab].model_raw, dtype=np.float32) for lab in labels])
        info = dict(next(iter(maps.values())).info) if maps else {"method": method.value}
        kept = _KeptMaps(
            dataclasses.replace(ref, frame=used),
            manifest.id,
            method,
            labels,
            raw,
            gt,
            ex,
            False,
            info,
        )
        with self._lock:
            self._maps[(_key(kept.ref), f"{manifest.id}|{method.value}")] = kept
        return kept

    def key_images(self, positive_only: bool = True, max_images: int = 4) -> list[Any]:
        """Key images for the export: each analysed image with a positive label, as displayed,
        with its saliency overlay (CAM unless another method was computed), legend and caption."""
        from app.dicom.pixels import display_array, frame_array, read_dataset
        from app.reporting.pdf import KeyImage
        from app.saliency.overlay import legend_image, render_overlay

        out: list[KeyImage] = []
        with self._lock:
            kept_all = list(self._maps.values())
        for image in self.images():
            for res in image.results:
                kept = next(
                    (
                        k
                        for k in kept_all
                        if k.model_id == res.model_id
                        and _key(k.ref) == _key(image.ref)
                        and k.method is not SaliencyMethod.CAM
                    ),
                    None,
                ) or next(
                    (
                        k
                        for k in kept_all
                        if k.model_id == res.model_id and _key(k.ref) == _key(image.ref)
                    ),
                    None,
                )
                if kept is None:
                    continue
                for lab in res.labels:
                    if (positive_only and not lab.positive) or lab.label not in kept.labels:
                        continue
                    if len(out) >= max_images:
                        return out
                    ds = read_dataset(image.path)
                    display = display_array(ds, frame_array(ds, image.frame), frame=image.frame)
                    m = kept.explainer.maps_from_raw(
                        kept.model_raw[[kept.labels.index(lab.label)]],
                        [lab.label],
                        kept.geometry,
                        kept.method.value,
                        kept.info,
                    )
                    overlay = render_overlay(
                        display, m[lab.label].map, COLORMAP, OPACITY, THRESHOLD, CONTOUR
                    )
                    legend = (
                        f"{kept.method.value} map of {res.model_id} '{lab.label}' "
                        f"(p={lab.probability:.2f}), colour map {COLORMAP}: "
                        "bright = high relevance"
                    )
                    out.append(
                        KeyImage(
                            display=display,
                            overlay=overlay,
                            legend=legend,
                            legend_image=legend_image(COLORMAP, height=128, width=40),
                            caption=f"{image.modality} image, {lab.label}".strip(),
                            source=image.ref,
                        )
                    )
        return out

    # -- drafting -------------------------------------------------------------------------------
    def conditioning(self, indication: str = "", comparison: str = "", notes: str = "") -> Any:
        """What a draft of this study is conditioned on: AI results, header values, typed text."""
        from app.reporting.generator import build_conditioning

        return build_conditioning(
            self.model_results(), self.metadata().as_dicom(), indication, comparison, notes
        )

    def draft_report(
        self,
        indication: str = "",
        comparison: str = "",
        notes: str = "",
        *,
        backend: str = "bundled",
        device: Device | str = Device.AUTO,
        include_banner: bool = True,
        progress: Progress | None = None,
        conditioning: Any = None,
        **backend_options: Any,
    ) -> ReportDraft:
        """Draft FINDINGS and IMPRESSION, streaming chunks on ``events.draft_chunk``.

        Parameters
        ----------
        indication, comparison, notes : str
            What the radiologist typed.
        backend : {"bundled", "openai"}
            See :func:`app.reporting.generator.draft` (``backend_options`` go there too).
        device : Device
        include_banner : bool
            Start :attr:`draft_text` with the AI banner line (``draft.txt``).
        progress : Progress, optional
            Cancel stops the generation.
        conditioning : Conditioning, optional
            Use this conditioning (e.g. the one whose prompt the user confirmed) instead of
            building it from the typed text.

        Returns
        -------
        ReportDraft
            Unsigned; also :attr:`draft`, with the full text in :attr:`draft_text`.
        """
        from app.reporting.generator import draft

        cond = (
            conditioning
            if conditioning is not None
            else self.conditioning(indication, comparison, notes)
        )
        if backend != "bundled" and "identifiers" not in backend_options:
            # every identifier the study's headers make known is scrubbed from what is sent
            backend_options["identifiers"] = self.identifiers()
        stream = draft(
            cond,
            backend=backend,
            device=Device(device).value,
            include_banner=include_banner,
            progress=progress,
            **backend_options,
        )
        try:
            for chunk in stream:
                self.events.draft_chunk.emit(chunk)
        finally:
            stream.close()
        from app.reporting.signoff import sentence_evidence

        # each AI sentence keeps the finding(s) it states: model, probability, threshold, map
        stream.evidence = sentence_evidence(
            f"FINDINGS: {stream.findings}\nIMPRESSION: {stream.impression}",
            [(r, i.sop_uid) for i in self.images() for r in i.results],
        )
        result = stream.to_report_draft(self.study_uid)
        with self._lock:
            self.draft_text = stream.text
            self.draft_provenance = dict(stream.provenance)
        self.set_draft(result)
        return result

    def set_draft(self, draft: ReportDraft | None) -> None:
        """Adopt an edited or restored draft (announced on ``events.draft``)."""
        if draft is not None and self.study_uid and draft.study_uid not in ("", self.study_uid):
            raise UsageError("The draft belongs to another study.")
        with self._lock:
            self.draft = draft
        self.events.draft.emit(draft)

    def sign_off(self, reader: str, at: Any = None) -> ReportDraft:
        """Sign off the current draft (see :meth:`ReportDraft.sign_off`); announced on
        ``events.signed_off``.

        Raises
        ------
        NotSignedOffError
            When there is no draft.
        SignOffError
            When the draft cannot be signed (no reader, no text).
        """
        with self._lock:
            current = self.draft
        if current is None:
            raise NotSignedOffError("Draft the report before signing it off.")
        signed = current.sign_off(reader, at)
        with self._lock:
            self.draft = signed
        self.events.signed_off.emit(signed)
        return signed

    # -- export ---------------------------------------------------------------------------------
    def export(
        self,
        out_dir: str | os.PathLike[str],
        *,
        pdf: bool = True,
        dicom: bool = True,
        deidentify: bool = False,
        key_images: Sequence[Any] | None = None,
        header: Any = None,
        extra_sources: Sequence[str] = (),
        sources: Sequence[Any] | None = None,
        results: Sequence[ModelResult] | None = None,
        pixels_reviewed: bool = False,
        deidentifier: Any = None,
        measurements: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Export the signed-off report with the study's AI results
        (:func:`app.reporting.export.export_report`).

        Parameters
        ----------
        out_dir : path
            ``report.pdf`` and ``dicom/*.dcm`` go here.
        pdf, dicom, deidentify, header
            See :func:`~app.reporting.export.export_report`.
        key_images : sequence of KeyImage, optional
            Default: :meth:`key_images` (positive labels with their saliency overlays).
        extra_sources : sequence of str
            Further image files of the study whose headers the export may reference.
        sources : sequence of Dataset, optional
            Source headers already read (the Export dialog's); default: read from the files.
        results : sequence of ModelResult, optional
            AI results to report; default: the session's (every run of the study).
        pixels_reviewed, deidentifier
            De-identified export: the user confirmed the key images carry no burned-in
            identifiers; one de-identifier (UID mapping) shared by a batch run.
        measurements : sequence of str, optional
            Measurement lines for the PDF; default: those stored with the study in the
            session's library (:func:`app.reporting.annotations.measurement_lines`), else none.
        progress : Progress, optional

        Raises
        ------
        NotSignedOffError
            When the draft is not signed off.

        Long because it gathers results, key images, measurements and de-identification settings for one call to the exporter.
        """
        from app.reporting.export import export_report, read_headers

        with self._lock:
            draft = self.draft
        if draft is None or not draft.signed_off:
            raise NotSignedOffError("The report must be signed off (reader name) before export.")
        keys = list(key_images) if key_images is not None else self.key_images()
        if sources is None:
            paths = dict.fromkeys(self.source_paths())
            paths.update(
                dict.fromkeys(k.source.path for k in keys if getattr(k, "source", None) is not None)
            )
            paths.update(dict.fromkeys(extra_sources))
            if not paths:
                paths.update(dict.fromkeys(self.files()))
            sources = [
                h
                for h in read_headers([p for p in paths if p])
                if not self.study_uid or str(h.get("StudyInstanceUID", "")) == self.study_uid
            ]
        chosen = list(results) if results is not None else self.model_results()
        if measurements is None:
            measurements = []
            if self.library is not None and self.study_uid:
                try:
                    from app.reporting.annotations import measurement_lines

                    measurements = measurement_lines(self.library, self.study_uid)
                except Exception as exc:  # noqa: BLE001 - the report is exported without them
                    log.warning("measurements unavailable: %s", type(exc).__name__)
        files = export_report(
            draft,
            chosen,
            sources,
            out_dir,
            pdf=pdf,
            dicom=dicom,
            deidentify=deidentify,
            key_images=keys,
            header=header,
            progress=progress or NullProgress(),
            pixels_reviewed=pixels_reviewed,
            deidentifier=deidentifier,
            measurements=list(measurements),
        )
        with self._lock:
            self.exported = list(files)
        self.events.exported.emit(list(files))
        return files

    # -- persistence ----------------------------------------------------------------------------
    def save(self, library: Any = None) -> None:
        """Store the runs and the draft with the study (call on a worker)."""
        lib = library or self.library
        if lib is None or not self.study_uid:
            return
        with self._lock:
            runs, draft = dict(self.runs), self.draft
        for series_uid, run in runs.items():
            lib.store_run(self.study_uid, series_uid, run)
        if draft is not None:
            lib.store_draft(draft)

    def load(self, library: Any = None) -> None:
        """Adopt the runs and draft stored with the study (call on a worker)."""
        lib = library or self.library
        if lib is None or not self.study_uid:
            return
        for series_uid, run in lib.runs(self.study_uid).items():
            self.set_run(run, series_uid)
        stored = lib.stored_draft(self.study_uid)
        if stored is not None and self.draft is None:
            self.set_draft(stored)
