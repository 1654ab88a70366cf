"""Out-of-distribution score computed in the classifying forward pass.

A manifest may declare ``ood``::

    "ood": {"method": "mahalanobis", "feature_tensor": "/features/features.12/Relu_output_0",
            "file": "ood.npz", "sha256": "<hex>", "threshold": 123.4, ...}

The engine adds ``feature_tensor`` (a feature map or pooled feature vector inside the classifier)
as a graph output, so every classification also yields the features and :meth:`OodScorer.score`
turns them (global-average pooled) into a score without a second pass.

Method ``mahalanobis`` (Lee et al., NeurIPS 2018): class-conditional Gaussians with a shared
(tied) covariance fitted on the training split; the score of a feature vector ``f`` is
``min_k (f - mu_k)^T P (f - mu_k)`` with ``P`` the inverse covariance. The threshold is a
percentile of the validation split's scores (fitted by ``models/<id>/fit_ood.py``). A score above
the threshold flags the image as unlike anything the model was trained on.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.errors import ModelVerificationError

METHODS = ("mahalanobis",)


@dataclass(frozen=True)
class OodScorer:
    """A fitted OOD score for one model.

    Attributes
    ----------
    method : str
        ``mahalanobis``.
    feature_tensor : str
        Graph tensor holding the pooled features, shape (N, C).
    means : np.ndarray
        Class means (K, C), float64.
    precision : np.ndarray
        Inverse of the shared covariance (C, C), float64.
    threshold : float
        Scores above this are flagged.
    rule : str
        How the threshold was chosen (for people).
    """

    method: str
    feature_tensor: str
    means: np.ndarray
    precision: np.ndarray
    threshold: float
    rule: str = ""

    def score(self, features: np.ndarray) -> np.ndarray:
        """Features (N, C) or feature maps (N, C, h, w) (global-average pooled) -> scores (N,), float64."""
        f = pool(features)
        best = None
        for mu in self.means:
            d = f - mu
            s = np.einsum("nc,cd,nd->n", d, self.precision, d)
            best = s if best is None else np.minimum(best, s)
        assert best is not None
        return best

    def describe(self, score: float) -> dict[str, Any]:
        """What a result records: method, score, threshold, flagged."""
        return {
            "method": self.method,
            "score": round(float(score), 3),
            "threshold": round(self.threshold, 3),
            "flagged": bool(score > self.threshold),
            "rule": self.rule,
        }


def pool(features: np.ndarray) -> np.ndarray:
    """(N, C, h, w) feature maps -> (N, C) channel means; (N, C) passes through. float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim == 4:
        f = f.mean(axis=(2, 3))
    return f.reshape(len(f), -1)


def fit_mahalanobis(
    features: np.ndarray, labels: np.ndarray, ridge: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """Class means and shared precision matrix from training features.

    Parameters
    ----------
    features : np.ndarray
        (N, C) pooled features of the training split.
    labels : np.ndarray
        (N,) integer class of each row.
    ridge : float
        Added to the covariance diagonal, relative to its mean variance (keeps it invertible when a
        ReLU channel is always zero).

    Returns
    -------
    means, precision : np.ndarray
        (K, C) and (C, C), float64.
    """
    f = pool(features)
    y = np.asarray(labels).reshape(-1)
    classes = np.unique(y)
    means = np.stack([f[y == k].mean(axis=0) for k in classes])
    centred = np.concatenate([f[y == k] - means[i] for i, k in enumerate(classes)])
    cov = centred.T @ centred / len(centred)
    cov += np.eye(cov.shape[0]) * ridge * max(float(np.trace(cov)) / cov.shape[0], 1e-12)
    return means, np.linalg.inv(cov)


def add_feature_output(model_bytes: bytes, tensor: str) -> bytes:
    """The model with ``tensor`` (an existing intermediate tensor) also exposed as a graph output."""
    import onnx
    from onnx import helper

    proto = onnx.load_from_string(model_bytes)
    graph = proto.graph
    if any(o.name == tensor for o in graph.output):
        return model_bytes
    if not any(tensor in n.output for n in graph.node):
        raise ModelVerificationError(f"The model has no tensor '{tensor}' for its OOD score.")
    graph.output.append(helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    return bytes(proto.SerializeToString())


def load_scorer(manifest: Any) -> OodScorer | None:
    """The manifest's OOD scorer (None when it declares none).

    The statistics file is read once and its sha256 checked against the manifest, as the ONNX
    file is.

    Raises
    ------
    ModelVerificationError
        The file is missing, changed or malformed.
    """
    spec = manifest.raw.get("ood")
    if not spec:
        return None
    path = manifest.folder / str(spec["file"])
    import os

    if not os.path.realpath(path).startswith(
        os.path.realpath(manifest.folder).rstrip(os.sep) + os.sep
    ):
        raise ModelVerificationError(
            f"Model '{manifest.id}': its OOD statistics file lies outside the model folder.",
            path=str(path),
        )
    try:
        data = path.read_bytes()
    except OSError:
        raise ModelVerificationError(
            f"Model '{manifest.id}': its OOD statistics file {path.name} is missing.",
            path=str(path),
        ) from None
    if hashlib.sha256(data).hexdigest() != spec.get("sha256"):
        raise ModelVerificationError(
            f"Model '{manifest.id}': {path.name} does not match its sha256 "
            "(file was changed or corrupted).",
            path=str(path),
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            means, precision = (
                np.asarray(z["means"], np.float64),
                np.asarray(z["precision"], np.float64),
            )
    except (KeyError, ValueError, OSError):
        raise ModelVerificationError(
            f"Model '{manifest.id}': {path.name} is not a valid OOD statistics file.",
            path=str(path),
        ) from None
    if means.ndim != 2 or precision.shape != (means.shape[1], means.shape[1]):
        raise ModelVerificationError(
            f"Model '{manifest.id}': {path.name} has inconsistent shapes.", path=str(path)
        )
    return OodScorer(
        method=str(spec.get("method", "mahalanobis")),
        feature_tensor=str(spec["feature_tensor"]),
        means=means,
        precision=precision,
        threshold=float(spec["threshold"]),
        rule=str(spec.get("threshold_rule", "")),
    )


def ood_file_problems(manifest: Any) -> list[str]:
    """Verification problems of the manifest's OOD file (for :func:`verify_manifest`)."""
    if not manifest.raw.get("ood"):
        return []
    try:
        load_scorer(manifest)
    except ModelVerificationError as exc:
        return [str(exc).split(": ", 1)[-1]]
    except (KeyError, TypeError, ValueError) as exc:
        return [f"ood block is malformed ({type(exc).__name__})"]
    return []
