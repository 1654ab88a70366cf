"""Run every applicable model on every image of some files/folders and write ``results.json``.

:func:`analyze_paths` is the reusable core of ``hilum analyze``; the study session (:mod:`app.workflow`)
call it too. Later steps (saliency maps, report drafts, exports) plug in through ``hooks``:
each hook is called once per image and model with an :class:`ImageContext` holding the
preprocessed tensor, the :class:`~app.core.types.GeometryTransform`, the displayed image, the raw
graph outputs, the :class:`~app.core.types.ModelResult` and the engine, and may add entries to
``ctx.record`` (what is written for this model in ``results.json``) or files under ``ctx.out_dir``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from app import __version__
from app.core import paths as core_paths
from app.core.errors import (
    Cancelled,
    DicomError,
    HilumError,
    ModelVerificationError,
    NotDicomError,
    UsageError,
)
from app.core.progress import NullProgress, Progress
from app.core.provenance import DISCLAIMER
from app.core.types import GeometryTransform, ImageRef, ModelResult
from app.inference.engine import Engine, get_engine
from app.inference.manifest import Manifest
from app.inference.intended_use import ood_problem, population_problems, reliability
from app.inference.registry import ModelRegistry, applicability_problems

log = logging.getLogger(__name__)

RESULTS_NAME = "results.json"
_BATCH = 16
#: in folders, files with these suffixes (or none) that are not DICOM are reported as errors;
#: other non-DICOM files (READMEs, licences) are counted as skipped
_DICOM_SUFFIXES = {"", ".dcm", ".dicom", ".dic", ".ima"}


@dataclass
class ImageContext:
    """Everything a later step needs about one model's run on one image.

    Attributes
    ----------
    ref : ImageRef
        Study/series/SOP UIDs, path and frame.
    dataset : pydicom.Dataset
        The image's dataset (pixel data decoded once).
    manifest, engine : Manifest, Engine
        The model and its session (``engine.run_raw`` accepts extra outputs).
    tensor : np.ndarray
        The preprocessed input item (no batch axis).
    geometry : GeometryTransform
        Model input grid -> source pixel grid.
    display : np.ndarray
        The image as displayed (uint8, VOI window, MONOCHROME1 inverted) for overlays.
    raw : dict
        Raw graph outputs for this image (name -> array without batch axis).
    result : ModelResult
        The classification with provenance (hooks may fill ``result.saliency``).
    record : dict
        What ``results.json`` holds for this model on this image; hooks may add keys.
    out_dir : Path
        The analysis output folder.
    """

    ref: ImageRef
    dataset: Any
    manifest: Manifest
    engine: Engine
    tensor: np.ndarray
    geometry: GeometryTransform
    display: np.ndarray
    raw: dict[str, np.ndarray]
    result: ModelResult
    record: dict[str, Any]
    out_dir: Path


ImageHook = Callable[[ImageContext], None]
EngineFactory = Callable[[Manifest, str, "bool | None"], "tuple[Any, Sequence[str]]"]


@dataclass
class _Item:
    path: Path
    ds: Any
    ref: ImageRef
    record: dict[str, Any]
    cache: dict[Any, np.ndarray] = field(default_factory=dict)


def expand_paths(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[Path], list[dict[str, str]]]:
    """Files named directly plus every file under named folders (sorted), and missing paths."""
    files: list[Path] = []
    missing: list[dict[str, str]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files += sorted(
                f for f in path.rglob("*") if f.is_file() and not f.name.startswith(".")
            )
        elif path.is_file():
            files.append(path)
        else:
            missing.append({"path": str(path), "error": "No such file or folder."})
    return files, missing


def _display(item: _Item, frame: int) -> np.ndarray:
    from app.dicom import pixels

    disp = item.cache.get(("display", frame))
    if disp is None:
        arr = item.cache.get(frame)
        if arr is None:
            arr = item.cache[frame] = pixels.frame_array(item.ds, frame=frame)
        disp = arr if arr.ndim == 3 else pixels.display_array(item.ds, arr, frame=frame)
        item.cache[("display", frame)] = disp
    return disp


def _select_models(
    registry: ModelRegistry, model_ids: Sequence[str] | None
) -> tuple[list[Manifest], list[dict[str, Any]]]:
    """Models to run and the ones skipped (unverified), with reasons."""
    chosen: list[Manifest] = []
    skipped: list[dict[str, Any]] = []
    if model_ids:
        for mid in model_ids:
            m = registry.get(mid)  # ModelNotFoundError for a wrong id: a usage problem
            m.require_verified()  # a named model that fails verification stops the run, with reasons
            chosen.append(m)
    else:
        for m in registry.models():
            if m.verified:
                chosen.append(m)
            else:
                skipped.append({"model_id": m.id, "problems": list(m.problems)})
    return chosen, skipped


def analyze_paths(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None,
    model_ids: Sequence[str] | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    *,
    override_applicability: bool = False,
    hooks: Sequence[ImageHook] = (),
    registry: ModelRegistry | None = None,
    fp16: bool | None = None,
    write: bool = True,
    engine_factory: EngineFactory | None = None,
) -> dict[str, Any]:
    """Classify every image under ``paths`` with every applicable model.

    Parameters
    ----------
    paths : sequence of path
        DICOM files and/or folders (searched recursively).
    out_dir : path or None
        Where ``results.json`` (and anything hooks write) goes; created if needed. ``None``
        with ``write=False`` returns the results without writing.
    model_ids : sequence of str, optional
        Run only these models (each must verify, else :class:`ModelVerificationError`);
        default every verified model (unverified ones are listed under ``skipped_models``).
    device : {"auto", "cpu", "cuda"}
        Execution device (``cuda`` raises :class:`ProviderError` where unavailable).
    progress : Progress, optional
        Progress and cancel (checked between batches).
    override_applicability : bool
        Run models on images outside their stated applicability (the user override; recorded
        in each result as ``applicability_overridden``).
    hooks : sequence of callable
        Called as ``hook(ctx: ImageContext)`` for each image and model after classification.
    registry : ModelRegistry, optional
        Defaults to the installed models.
    fp16 : bool, optional
        Allow fp16 copies on the GPU (see :class:`Engine`).
    write : bool
        Write ``out_dir/results.json``.
    engine_factory : callable, optional
        ``engine_factory(manifest, device, fp16) -> (engine, extra_outputs)``: the session to
        classify with (e.g. saliency's rewritten model) and further graph outputs to fetch in the
        same forward pass (they reach hooks in ``ctx.raw``). Default: :func:`get_engine`, none.

    Returns
    -------
    dict
        The ``results.json`` content: ``images`` (per image: path, UIDs, frame, modality, and per
        model id/version/sha256/provider, per label probability/threshold/positive, timings),
        ``errors`` (per file), ``models``, ``skipped_models``, ``summary``.

    Long because the batched read/preprocess/run/hook loop shares per-batch state; its numpydoc parameter list is long.
    """
    from app.dicom import pixels

    progress = progress or NullProgress()
    registry = registry or ModelRegistry()
    models, skipped = _select_models(registry, model_ids)
    engines: dict[str, Any] = {}
    extras: dict[str, list[str]] = {}
    for m in models:
        if engine_factory is not None:
            eng_, extra_ = engine_factory(m, device, fp16)
            engines[m.id], extras[m.id] = eng_, list(extra_)
        else:
            # a model the site serves runs on its inference server (app.inference.remote, "auto")
            from functools import partial

            from app.inference.remote import choose_engine

            engines[m.id] = choose_engine(
                m, "auto", partial(get_engine, m, device=device, fp16=fp16)
            )
            extras[m.id] = []
    out_path = Path(out_dir) if out_dir is not None else None
    if write:
        if out_path is None:
            raise UsageError("An output folder is needed to write results.json.")
        core_paths.private_dir(out_path)  # results hold patient data: 0700 when Hilum creates it
    files, errors = expand_paths(paths)
    named = {Path(p) for p in paths}
    images: list[dict[str, Any]] = []
    n_files = len(files)
    progress.update(0, n_files, "Analysing")
    not_dicom_skipped = 0

    for start in range(0, n_files, _BATCH):
        progress.check()
        items: list[_Item] = []
        for path in files[start : start + _BATCH]:
            try:
                ds = pixels.read_dataset(path)
            except NotDicomError as exc:
                if path in named or path.suffix.lower() in _DICOM_SUFFIXES:
                    errors.append({"path": str(path), "error": str(exc)})
                else:
                    not_dicom_skipped += 1  # READMEs, licences ... inside folders
                continue
            except (DicomError, OSError) as exc:
                errors.append({"path": str(path), "error": str(exc)})
                continue
            if "PixelData" not in ds and "FloatPixelData" not in ds:
                if path in named:
                    errors.append(
                        {"path": str(path), "error": "The file holds no image (no pixel data)."}
                    )
                continue
            ref = ImageRef(
                study_uid=str(getattr(ds, "StudyInstanceUID", "")),
                series_uid=str(getattr(ds, "SeriesInstanceUID", "")),
                sop_uid=str(getattr(ds, "SOPInstanceUID", "")),
                path=str(path),
            )
            record: dict[str, Any] = {
                "path": str(path),
                "study_uid": ref.study_uid,
                "series_uid": ref.series_uid,
                "sop_uid": ref.sop_uid,
                "modality": str(getattr(ds, "Modality", "")),
                "results": [],
                "not_applicable": [],
            }
            items.append(_Item(path=path, ds=ds, ref=ref, record=record))

        for m in models:
            progress.check()
            eng = engines[m.id]
            todo: list[tuple[_Item, np.ndarray, GeometryTransform, int, list[str]]] = []
            for it in items:
                reasons = applicability_problems(m, it.ds)
                overridden = False
                if reasons:
                    if not (override_applicability and m.applicability.get("user_override", True)):
                        it.record["not_applicable"].append({"model_id": m.id, "reasons": reasons})
                        continue
                    overridden = True
                try:
                    tensor, gt, frame = eng.preprocess_dataset(it.ds, cache=it.cache)
                except HilumError as exc:
                    it.record.setdefault("errors", []).append({"model_id": m.id, "error": str(exc)})
                    continue
                except Exception as exc:  # noqa: BLE001 - a bad pixel stream must not stop the run
                    log.warning("preprocessing failed for one image: %s", type(exc).__name__)
                    it.record.setdefault("errors", []).append(
                        {
                            "model_id": m.id,
                            "error": f"The pixel data could not be prepared ({type(exc).__name__}).",
                        }
                    )
                    continue
                # outside the stated population: still run (right modality and anatomy), but marked
                outside = (reasons if overridden else []) + population_problems(m, it.ds)
                todo.append((it, tensor, gt, frame, outside))
            if not todo:
                continue
            t0 = time.perf_counter()
            raw = eng.run_raw(np.stack([t[1] for t in todo]), extra_outputs=extras[m.id])
            t1 = time.perf_counter()
            probs = eng.activate(raw[eng.output_name])
            per_image_ms = round((t1 - t0) * 1000 / len(todo), 3)
            results = eng.results(
                probs, {"inference": per_image_ms, "batch": len(todo)}, ood=eng.ood_records(raw)
            )
            for k, ((it, tensor, gt, frame, outside), res) in enumerate(zip(todo, results)):
                overridden = bool(applicability_problems(m, it.ds))
                res.provenance["frame"] = frame
                res.reliability = reliability(outside + ood_problem(res.ood))
                rec = res.to_dict()
                rec["geometry"] = asdict(gt)
                rec["frame"] = frame
                if overridden:
                    rec["applicability_overridden"] = True
                it.record["frame"] = frame
                if hooks:
                    ctx = ImageContext(
                        ref=ImageRef(
                            it.ref.study_uid, it.ref.series_uid, it.ref.sop_uid, it.ref.path, frame
                        ),
                        dataset=it.ds,
                        manifest=m,
                        engine=eng,
                        tensor=tensor,
                        geometry=gt,
                        display=_display(it, frame),
                        raw={name: arr[k] for name, arr in raw.items()},
                        result=res,
                        record=rec,
                        out_dir=out_path or Path("."),
                    )
                    for hook in hooks:
                        hook(ctx)
                    rec["saliency"] = res.saliency or rec.get("saliency", {})
                    rec["reliability"] = res.reliability
                it.record["results"].append(rec)
        images += [it.record for it in items]
        progress.update(
            min(start + _BATCH, n_files),
            n_files,
            f"Analysed {min(start + _BATCH, n_files)}/{n_files} files",
        )

    doc: dict[str, Any] = {
        "app_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "disclaimer": DISCLAIMER,
        "device_requested": device,
        "models": [
            {
                "model_id": m.id,
                "version": m.version,
                "sha256": m.sha256,
                "source": m.source,
                "provider": engines[m.id].provider,
                "fp16": engines[m.id].fp16,
                "demonstration": m.demonstration,
                "labels": [lab.name for lab in m.labels],
            }
            for m in models
        ],
        "skipped_models": skipped,
        "images": images,
        "errors": errors,
        "summary": {
            "files": n_files,
            "images": len(images),
            "classified": sum(1 for i in images if i["results"]),
            "outside_intended_use": sum(
                1
                for i in images
                for r in i["results"]
                if str(r.get("reliability", "")).startswith("outside")
            ),
            "errors": len(errors),
            "non_dicom_skipped": not_dicom_skipped,
        },
    }
    if write and out_path is not None:
        target = out_path / RESULTS_NAME
        tmp = target.with_suffix(".json.tmp")
        core_paths.write_private(tmp, json.dumps(doc, indent=2) + "\n")
        tmp.replace(target)
        core_paths.secure_tree(out_path / "saliency")
        doc["results_path"] = str(target)
    return doc


__all__ = [
    "ImageContext",
    "ImageHook",
    "analyze_paths",
    "expand_paths",
    "RESULTS_NAME",
    "Cancelled",
    "ModelVerificationError",
]
