"""Archive analysis: many studies, each analysed by :func:`app.workflow.batch.analyze`, in this process
or as Ray tasks on a cluster.

``hilum analyze PATH... --out DIR --ray [auto|ADDRESS]`` groups the DICOM files under ``PATH`` by
StudyInstanceUID and runs the very same per-study analysis (classify, saliency, draft, export as
asked) for each study into ``DIR/<StudyInstanceUID>/`` (a de-identified run: ``DIR/study-<hash>/``,
see :func:`study_key`). ``DIR/batch.json`` records every study's
state as it finishes, so a rerun skips the studies already done (resume); a study that fails is
recorded with its one-sentence reason and the others go on. Without Ray the studies run one after
another in this process (:func:`analyze_archive` with ``ray_address=None``), with identical
outputs.

``auto`` starts a private Ray runtime on this machine, bound to 127.0.0.1, with usage statistics
off and no dashboard; an ADDRESS (``host:port`` or ``ray://host:10001``) joins an existing cluster
whose workers have Hilum installed and see the same files (a shared file system); with Ray's
token authentication (on by default since Ray 2.59) this machine needs the cluster's token (see
docs/deploy.md).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from app.core.errors import Cancelled, HilumError, UsageError
from app.core.progress import NullProgress, Progress

log = logging.getLogger(__name__)

BATCH_NAME = "batch.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: analysis options a study task accepts (passed through to :func:`app.workflow.batch.analyze`)
OPTIONS = (
    "model_ids",
    "device",
    "fp16",
    "saliency",
    "draft",
    "indication",
    "comparison",
    "pdf",
    "dicom_export",
    "deidentify",
    "reader_name",
    "override_applicability",
    "inference",
    "notes",
    "backend",
    "backend_options",
    "pixels_reviewed",
)


def study_folder(study_uid: str) -> str:
    """The sub-folder of a study (its UID made file-name safe)."""
    return _SAFE.sub("_", study_uid).strip("_") or "no-study-uid"


def study_key(study_uid: str, deidentify: bool = False) -> str:
    """How a study is named in ``batch.json``, log lines and its folder: its UID, or for a
    de-identified run a stable pseudonym (``study-`` + 20 hex digits of its sha256), so that
    neither the outputs nor the batch record carry the original UID while a rerun still finds it."""
    if not deidentify:
        return study_folder(study_uid)
    import hashlib

    return "study-" + hashlib.sha256(study_uid.encode("utf-8")).hexdigest()[:20]


def group_studies(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """DICOM files under ``paths`` grouped by StudyInstanceUID (sorted), and files that are not DICOM.

    Only headers are read. Files in folders that are not DICOM are skipped silently unless they
    look like DICOM (``.dcm`` or no suffix); named files that are not DICOM are errors.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    from app.inference.analyze import _DICOM_SUFFIXES, expand_paths

    files, errors = expand_paths(paths)
    named = {Path(p) for p in paths}
    studies: dict[str, list[str]] = {}
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
        except (InvalidDicomError, OSError, ValueError, EOFError, TypeError) as exc:
            if f in named or f.suffix.lower() in _DICOM_SUFFIXES:
                errors.append(
                    {"path": str(f), "error": f"Not a readable DICOM file ({type(exc).__name__})."}
                )
            continue
        studies.setdefault(str(ds.get("StudyInstanceUID", "") or ""), []).append(str(f))
    return dict(sorted(studies.items())), errors


def _use_task_cpus() -> None:
    """In a Ray worker, size onnxruntime's and OpenCV's thread pools to the task's CPUs.

    Tasks are submitted with ``num_cpus=1``; a session that spreads over every core of the node
    in each worker makes the workers fight over the cores Ray already shared out between them.
    """
    if "ray" not in sys.modules or "HILUM_ORT_THREADS" in os.environ:
        return
    import ray

    try:
        if not ray.is_initialized():
            return
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 - not in a task: keep the defaults
        return
    if cpus:
        n = max(1, int(cpus))
        os.environ["HILUM_ORT_THREADS"] = str(n)
        import cv2  # overlays and resizing: OpenCV's pool also defaults to every core

        cv2.setNumThreads(n)


def run_study(
    study_uid: str,
    files: list[str],
    out_dir: str,
    options: dict[str, Any],
    label: str | None = None,
) -> dict[str, Any]:
    """Analyse one study into ``out_dir`` (the unit of work; runs in a Ray worker or here).

    ``label`` names the study in the returned record (a pseudonym for de-identified runs).

    Returns
    -------
    dict
        ``status`` (``done`` or ``failed``), ``error`` (one sentence), counts and seconds.
    """
    from app.workflow.batch import analyze

    _use_task_cpus()
    t0 = time.perf_counter()
    rec: dict[str, Any] = {
        "study_uid": label or study_uid,
        "folder": Path(out_dir).name,
        "files": len(files),
    }
    try:
        doc = analyze(files, out_dir, **{k: v for k, v in options.items() if k in OPTIONS})
    except Cancelled:
        raise
    except HilumError as exc:
        rec.update(status="failed", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one study must never stop the archive
        log.warning("study analysis failed: %s", type(exc).__name__)
        rec.update(
            status="failed", error=f"The study could not be analysed ({type(exc).__name__})."
        )
    else:
        s = doc["summary"]
        rec.update(
            images=s["images"],
            classified=s["classified"],
            errors=s["errors"],
            outputs=len(doc.get("outputs", {}).get(study_uid, [])),
        )
        problems = [e["error"] for e in doc.get("errors", [])]
        problems += [e["error"] for i in doc.get("images", []) for e in i.get("errors", [])]
        if s["classified"] == 0 and problems:
            rec.update(status="failed", error=problems[0])
        elif s["classified"] == 0:
            rec.update(
                status="failed", error="No image of the study could be classified by any model."
            )
        else:
            rec["status"] = "done"
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def _load_state(out: Path) -> dict[str, Any]:
    try:
        state = json.loads((out / BATCH_NAME).read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _save_state(out: Path, state: dict[str, Any]) -> None:
    from app.core import paths

    tmp = out / (BATCH_NAME + ".tmp")
    paths.write_private(tmp, json.dumps(state, indent=2) + "\n")  # study UIDs: patient data
    tmp.replace(out / BATCH_NAME)


def _is_loopback(address: str) -> bool:
    """Whether a cluster address (``host:port``, ``ray://host:port``) names this machine's loopback."""
    import ipaddress

    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _enable_cluster_token() -> None:
    """Send the cluster's token when this machine has one.

    Ray (2.59 and later) starts clusters with token authentication, but a driver that joins an
    explicit address sends its token only with ``RAY_AUTH_MODE=token``; without it the join fails
    with "Failed to connect to Ray cluster". The token is Ray's: ``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token`` (``ray get-auth-token``). An explicit
    ``RAY_AUTH_MODE`` (a site's choice) is left alone.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    has_token = bool(os.environ.get("RAY_AUTH_TOKEN")) or any(
        p and Path(p).expanduser().is_file()
        for p in (os.environ.get("RAY_AUTH_TOKEN_PATH"), "~/.ray/auth_token")
    )
    if has_token:
        os.environ["RAY_AUTH_MODE"] = "token"
        # Ray caches its configuration at import: refresh it as Ray itself does for auto
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")


def start_ray(address: str, workers: int | None = None) -> Any:
    """Connect to Ray: ``auto`` starts a private local runtime on 127.0.0.1 (no dashboard, no usage
    statistics, ``workers`` CPUs); anything else is the address of an existing cluster."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    loopback = address == "auto" or _is_loopback(address)
    if loopback:
        # keep every Ray service on the loopback interface: Ray otherwise picks the routable IP,
        # and rewrites a 127.0.0.1 cluster address to it before connecting
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--ray needs the 'ray' package, which is not installed (pip install 'hilum[cluster]')."
        ) from None
    if ray.is_initialized():
        return ray
    if address != "auto":
        _enable_cluster_token()
    from app.core import paths

    env = {
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(paths.ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
    }
    try:
        if address == "auto":
            # address="local": always a new private runtime, never a cluster that `ray start`
            # left running on this machine (which plain ray.init() would join)
            ray.init(
                address="local",
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                object_store_memory=128 * 1024 * 1024,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": env},
            )
        else:
            if loopback:
                # read once when Ray is imported: a process that imported Ray before still
                # must not have 127.0.0.1 rewritten to the routable address
                from ray._private import ray_constants

                ray_constants.ENABLE_RAY_CLUSTER = False
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - Ray's errors are long: one sentence
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        where = (
            "a local Ray runtime could not be started"
            if address == "auto"
            else f"the Ray cluster at {address} cannot be joined"
        )
        raise HilumError(f"Archive analysis failed: {where} ({first}).") from None
    return ray


def stop_ray() -> None:
    """Shut down this process's Ray connection (and the private runtime ``auto`` started)."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()


def _run_on_ray(
    address: str,
    workers: int | None,
    todo: list[str],
    studies: dict[str, list[str]],
    key: dict[str, str],
    out: Path,
    options: dict[str, Any],
    progress: Progress,
    record: Callable[[dict[str, Any]], None],
) -> None:
    """Submit one task per study, record each as it finishes; cancel stops the pending ones."""
    ray = start_ray(address, workers)
    task = ray.remote(num_cpus=1, max_retries=0)(run_study)
    pending: dict[Any, str] = {}
    try:
        for uid in todo:
            progress.check()
            pending[task.remote(uid, studies[uid], str(out / key[uid]), options, key[uid])] = uid
        while pending:
            progress.check()
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                uid = pending.pop(ref)
                try:
                    rec = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a worker died or the task raised
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    rec = {
                        "study_uid": key[uid],
                        "folder": key[uid],
                        "files": len(studies[uid]),
                        "status": "failed",
                        "error": f"The Ray task failed ({first}).",
                    }
                record(rec)
    except Cancelled:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def analyze_archive(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    ray_address: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    log_step: Callable[[str], None] | None = None,
    on_study: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Analyse every study under ``paths`` into ``out_dir/<StudyInstanceUID>/``.

    Parameters
    ----------
    paths : sequence of path
        DICOM files and folders.
    out_dir : path
        Output root; ``batch.json`` there records each study's state (resume).
    ray_address : str, optional
        ``auto`` (a private local Ray runtime), a cluster address, or None to run here.
    workers : int, optional
        CPUs of the ``auto`` runtime (default: all).
    progress : Progress, optional
        Progress per finished study; cancel stops submitting and cancels running tasks.
    log_step : callable, optional
        One line per finished study.
    on_study : callable, optional
        The record of each study as it finishes (what ``batch.json`` keeps; the Batch dialog's
        per-study status).
    **options
        Passed to :func:`app.workflow.batch.analyze` (see :data:`OPTIONS`).

    Returns
    -------
    dict
        The ``batch.json`` content: ``studies`` (uid -> state), ``errors`` (files), ``summary``.

    Long because it drives the whole Ray run (start, submit, resume bookkeeping, progress, cancel) in one loop over shared state.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UsageError(f"Unknown archive analysis option(s): {', '.join(unknown)}.")
    progress = progress or NullProgress()
    say = log_step or (lambda line: None)
    from app.core.paths import private_dir

    out = private_dir(out_dir)
    studies, errors = group_studies(paths)
    state = _load_state(out)
    records: dict[str, Any] = dict(state.get("studies", {}))
    todo: list[str] = []
    skipped = 0
    key = {uid: study_key(uid, bool(options.get("deidentify"))) for uid in studies}
    for uid in studies:
        prev = records.get(key[uid], {})
        if prev.get("status") == "done" and (out / key[uid] / "results.json").is_file():
            skipped += 1
        else:
            todo.append(uid)
    state = {
        "executor": "ray" if ray_address else "local",
        "ray_address": ray_address or "",
        "options": {
            k: v
            for k, v in options.items()
            if isinstance(v, (str, int, float, bool, list, type(None)))
        },
        "studies": records,
        # a de-identified run keeps no source paths
        "errors": [{"error": e["error"]} for e in errors] if options.get("deidentify") else errors,
    }
    total, finished = len(studies), skipped
    progress.update(finished, total, f"{skipped} of {total} studies already done")

    def record(rec: dict[str, Any]) -> None:
        nonlocal finished
        records[rec["study_uid"]] = rec
        finished += 1
        _save_state(out, state)
        status = rec["status"] if rec["status"] == "done" else f"FAILED ({rec.get('error', '')})"
        say(f"study {rec['study_uid']}: {status}")
        if on_study is not None:
            on_study(dict(rec))
        progress.update(finished, total, f"Analysed {finished}/{total} studies")

    _save_state(out, state)
    if todo and ray_address:
        _run_on_ray(ray_address, workers, todo, studies, key, out, options, progress, record)
    else:
        for uid in todo:
            progress.check()
            record(run_study(uid, studies[uid], str(out / key[uid]), options, key[uid]))
    n_done = sum(1 for u in studies if records.get(key[u], {}).get("status") == "done")
    state["summary"] = {
        "studies": total,
        "done": n_done,
        "failed": total - n_done,
        "skipped_already_done": skipped,
        "file_errors": len(errors),
    }
    _save_state(out, state)
    state["batch_path"] = str(out / BATCH_NAME)
    return state


__all__ = [
    "analyze_archive",
    "group_studies",
    "run_study",
    "study_folder",
    "study_key",
    "start_ray",
    "stop_ray",
    "BATCH_NAME",
]
