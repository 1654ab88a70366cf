"""Local acceptance testing (``hilum models validate``): a site runs a model on its own labelled
images before clinical use and compares the numbers with the model card.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import HilumError, UsageError
from app.core.progress import NullProgress, Progress
from app.inference.engine import get_engine
from app.inference.metrics import label_metrics
from app.inference.registry import ModelRegistry

log = logging.getLogger(__name__)


def _report(m: Any, eng: Any, probs: np.ndarray, labels: np.ndarray, source: str) -> dict[str, Any]:
    card = (m.raw.get("metrics") or {}).get("labels", {})
    per_label = {}
    for j, lab in enumerate(m.labels):
        metrics = label_metrics(labels[:, j], probs[:, j], lab.threshold)
        ref = card.get(lab.name) or {}
        metrics["card"] = {
            k: ref[k] for k in ("auc", "sensitivity", "specificity", "ece") if k in ref
        }
        per_label[lab.name] = metrics
    return {
        "model_id": m.id,
        "version": m.version,
        "sha256": m.sha256,
        "provider": eng.provider,
        "source": source,
        "n": int(len(probs)),
        "labels": per_label,
    }


def _label_matrix(y: np.ndarray, n_labels: int, task: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    if task == "multi-class" and y.shape[1] == 1 and n_labels > 1:  # class indices -> one-hot
        y = np.eye(n_labels, dtype=np.int64)[y[:, 0].astype(np.int64)]
    if y.shape[1] != n_labels:
        raise UsageError(
            f"The labels have {y.shape[1]} column(s) but the model has {n_labels} label(s)."
        )
    return y.astype(np.int64)


def validate_npz(
    model_id: str,
    npz: str | os.PathLike[str],
    split: str,
    device: str = "auto",
    progress: Progress | None = None,
    registry: ModelRegistry | None = None,
) -> dict[str, Any]:
    """Evaluate a model on ``<split>_images`` / ``<split>_labels`` of a NumPy archive.

    The images go through the model's full preprocessing (as displayed uint8 images).

    Returns
    -------
    dict
        ``labels`` -> per label ``auc``, ``sensitivity``, ``specificity``, ``ece``, ``threshold``,
        ``n``, ``n_positive`` and the model card's numbers under ``card``.
    """
    m = (registry or ModelRegistry()).get(model_id)
    m.require_verified()
    path = Path(npz)
    if not path.is_file():
        raise UsageError(f"No such file: {path}")
    try:
        data = np.load(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a NumPy .npz archive ({exc}).") from None
    ik, lk = f"{split}_images", f"{split}_labels"
    if ik not in data or lk not in data:
        splits = sorted({k.rsplit("_", 1)[0] for k in data.files if k.endswith("_images")})
        raise UsageError(
            f"{path.name} has no split '{split}' (it has: {', '.join(splits) or 'none'})."
        )
    images, y = data[ik], data[lk]
    labels = _label_matrix(y, len(m.labels), m.task)
    eng = get_engine(m, device=device)
    results = eng.predict(list(images), progress=progress or NullProgress(), batch_size=64)
    probs = np.array([[lr.probability for lr in r.labels] for r in results])
    return _report(m, eng, probs, labels, f"{path.name} split {split}")


def validate_dicom(
    model_id: str,
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str],
    device: str = "auto",
    progress: Progress | None = None,
    registry: ModelRegistry | None = None,
) -> dict[str, Any]:
    """Evaluate a model on labelled DICOM files.

    The CSV has a ``file`` column (path relative to ``folder``) or a ``sop_uid`` column, and one
    0/1 column per model label (named as the label).
    """
    from app.dicom import pixels

    m = (registry or ModelRegistry()).get(model_id)
    m.require_verified()
    root = Path(folder)
    with open(labels_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise UsageError(f"{labels_csv} has no rows.")
    missing = [lab.name for lab in m.labels if lab.name not in rows[0]]
    if missing:
        raise UsageError(f"{labels_csv} lacks a column for label(s): {', '.join(missing)}.")
    key = "file" if "file" in rows[0] else "sop_uid" if "sop_uid" in rows[0] else None
    if key is None:
        raise UsageError(f"{labels_csv} needs a 'file' or 'sop_uid' column.")
    by_uid: dict[str, Path] = {}
    if key == "sop_uid":
        for dcm in sorted(p for p in root.rglob("*") if p.is_file()):
            try:
                ds = pixels.read_dataset(dcm)
            except HilumError:
                continue
            by_uid[str(getattr(ds, "SOPInstanceUID", ""))] = dcm
    eng = get_engine(m, device=device)
    progress = progress or NullProgress()
    tensors, ys = [], []
    skipped = 0
    for i, row in enumerate(rows):
        progress.check()
        f: Path | None = root / row["file"] if key == "file" else by_uid.get(row["sop_uid"])
        try:
            if f is None:
                raise UsageError("not found")
            tensor, _, _ = eng.preprocess_dataset(pixels.read_dataset(f))
        except HilumError as exc:
            log.warning("validation image %d skipped: %s", i, exc)
            skipped += 1
            continue
        tensors.append(tensor)
        ys.append([int(float(row[lab.name])) for lab in m.labels])
        progress.update(i + 1, len(rows), "Preparing images")
    if not tensors:
        raise UsageError("None of the labelled images could be read.")
    probs = np.concatenate(
        [eng.probabilities(np.stack(tensors[i : i + 32])) for i in range(0, len(tensors), 32)]
    )
    rep = _report(m, eng, probs, np.array(ys), f"{root} ({len(tensors)} images, {skipped} skipped)")
    rep["skipped"] = skipped
    return rep


def print_report(report: dict[str, Any]) -> None:
    """Print the acceptance metrics as lines a person can read (``AUC: 0.xxx``)."""
    print(
        f"Model {report['model_id']} {report['version']} on {report['source']} "
        f"({report['n']} images, {report['provider']})"
    )
    for name, r in report["labels"].items():
        print(f"[{name}] {r['n_positive']} positive / {r['n'] - r['n_positive']} negative")
        print(f"AUC: {r['auc']:.3f}")
        print(f"Sensitivity: {r['sensitivity']:.3f} (threshold {r['threshold']:.4f})")
        print(f"Specificity: {r['specificity']:.3f} (threshold {r['threshold']:.4f})")
        print(f"ECE: {r['ece']:.3f} (expected calibration error, 10 bins)")
        card = r.get("card") or {}
        if card:
            diffs = {k: abs(r[k] - v) for k, v in card.items()}
            worst = max(diffs.values())
            verdict = "matches the model card" if worst <= 0.01 else "DIFFERS from the model card"
            print(
                "Model card: "
                + ", ".join(f"{k} {v:.3f}" for k, v in card.items())
                + f" -> {verdict} (largest difference {worst:.3f})"
            )
    print(
        "These figures are for local acceptance testing only; AI output requires review by a physician."
    )
