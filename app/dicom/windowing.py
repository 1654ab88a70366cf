"""The one windowing path for display: the fast DICOM LINEAR window and the automatic window.

Light on purpose (numpy; OpenCV on first use; no pydicom): the viewer imports it at start-up.
:mod:`app.dicom.pixels` re-exports both and holds pydicom's reference (``_window_8bit``).
"""

from __future__ import annotations

import numpy as np

Window = tuple[float, float]


def auto_window(arr: np.ndarray) -> Window:
    """A window covering the data (0.5 to 99.5 percentile) for images without one.

    The one automatic window (viewer, exports, analysis displays). Subsampled to about 64k
    pixels for speed; colour frames use the mean of their channels.

    Returns
    -------
    (center, width)
    """
    step = max(1, int((arr.size / (arr.shape[-1] if arr.ndim == 3 else 1) / 65536) ** 0.5))
    sample = arr[::step, ::step]
    if sample.ndim == 3:
        sample = sample.mean(axis=-1)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = _percentiles(finite, (0.5, 99.5))
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    width = max(float(hi - lo), 1.0)
    return float(lo + width / 2.0), width


def _percentiles(values: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """``np.percentile(values, q)`` (method "linear"), bit for bit, by partitioning in place.

    The same arithmetic as numpy's ``_quantile``/``_lerp`` on the same order statistics, without
    its ``np.unique`` (whose first call imports ``numpy.ma``: ~10-50 ms on the GUI thread at the
    first image). ``values`` is a 1-D scratch array without NaN; it is reordered.
    """
    n = values.size
    virtual = (n - 1) * np.true_divide(np.asarray(q, dtype=np.float64), 100)
    prev = np.floor(virtual)
    nxt = prev + 1
    prev[virtual >= n - 1] = nxt[virtual >= n - 1] = -1
    prev[virtual < 0] = nxt[virtual < 0] = 0
    prev_i, next_i = prev.astype(np.intp), nxt.astype(np.intp)
    values.partition(np.concatenate((prev_i, next_i)) % n)
    a, b = values[prev_i], values[next_i]
    gamma = np.asarray(virtual - prev_i, dtype=virtual.dtype)
    diff_b_a = b - a
    out = np.add(a, diff_b_a * gamma)
    np.subtract(b, diff_b_a * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe")
    return out


def window_to_uint8(
    frame: np.ndarray, center: float, width: float, invert: bool = False
) -> np.ndarray:
    """The fast path of the DICOM LINEAR window: uint8 for display, in one fused pass.

    The same function as pydicom's :func:`~pydicom.pixels.apply_windowing` (``LINEAR``, PS3.3
    C.11.2.1.2: ``((v - (c - 0.5)) / (w - 1) + 0.5) * 255``, clipped; ``255 - out`` inverted),
    which :func:`app.dicom.pixels._window_8bit` applies and the tests hold this to (within one grey level:
    OpenCV rounds where pydicom's output is truncated). OpenCV's saturating ``addWeighted``
    makes no temporaries: cheap enough for the GUI thread on every slice and every mouse move
    of a window/level drag, even on 2000x2000 films. Colour frames are windowed per channel.
    """
    arr = frame if frame.dtype in (np.float32, np.uint8) else frame.astype(np.float32)
    w1 = max(float(width), 1.0) - 1.0
    if w1 <= 0.0:  # width 1: a threshold at the centre (pydicom's limit)
        out = np.where(arr > float(center) - 0.5, 255, 0).astype(np.uint8)
        return 255 - out if invert else out
    scale = 255.0 / w1
    beta = (0.5 - (float(center) - 0.5) / w1) * 255.0
    alpha, beta = (-scale, 255.0 - beta) if invert else (scale, beta)
    if arr.dtype == np.uint8 and alpha == 1.0 and beta == 0.0:
        return arr
    import cv2

    return cv2.addWeighted(arr, alpha, arr, 0.0, beta, dtype=cv2.CV_8U)
