"""Acceptance metrics for classifiers: AUC, sensitivity/specificity at a threshold, calibration.

Plain numpy so that ``hilum models validate`` and the training scripts compute the same numbers
(the model card quotes what these functions return).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted as one half).

    Parameters
    ----------
    labels : np.ndarray
        0/1 ground truth, shape (n,).
    scores : np.ndarray
        Scores or probabilities, shape (n,); higher means more likely positive.

    Returns
    -------
    float
        AUC in [0, 1], or ``nan`` when only one class is present.
    """
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # average ranks handle ties exactly
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < s.size:
        j = i
        while j + 1 < s.size and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def sens_spec(labels: np.ndarray, probs: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity when ``prob >= threshold`` is called positive."""
    y = np.asarray(labels).astype(bool).ravel()
    pred = np.asarray(probs, dtype=np.float64).ravel() >= threshold
    tp = int((pred & y).sum())
    tn = int((~pred & ~y).sum())
    sens = tp / max(int(y.sum()), 1)
    spec = tn / max(int((~y).sum()), 1)
    return float(sens), float(spec)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error of binary probabilities (equal-width bins over [0, 1]).

    Parameters
    ----------
    labels : np.ndarray
        0/1 ground truth.
    probs : np.ndarray
        Predicted probability of the positive class.
    n_bins : int
        Number of equal-width bins.

    Returns
    -------
    float
        Sum over bins of (bin fraction) x |mean predicted probability - observed positive rate|.
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    if p.size == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(ece)


def youden_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """Threshold that maximises sensitivity + specificity - 1 (Youden's J) on the given data."""
    y = np.asarray(labels).astype(bool).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    best_t, best_j = 0.5, -1.0
    for t in np.unique(p):
        sens, spec = sens_spec(y, p, float(t))
        j = sens + spec - 1.0
        if j > best_j:
            best_t, best_j = float(t), j
    return best_t


def label_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, Any]:
    """All acceptance metrics for one label, rounded for printing and model cards.

    Returns
    -------
    dict
        ``auc``, ``sensitivity``, ``specificity``, ``ece``, ``threshold``, ``n``, ``n_positive``.
    """
    sens, spec = sens_spec(labels, probs, threshold)
    y = np.asarray(labels).astype(bool).ravel()
    return {
        "auc": round(roc_auc(labels, probs), 4),
        "sensitivity": round(sens, 4),
        "specificity": round(spec, 4),
        "ece": round(expected_calibration_error(labels, probs), 4),
        "threshold": float(threshold),
        "n": int(y.size),
        "n_positive": int(y.sum()),
    }
