"""Map a saliency map from the model-input grid back onto the source image's pixel grid.

Preprocessing (stretch, letterbox or crop, then resize) is described by a
:class:`~app.core.types.GeometryTransform`. Coordinates are continuous with pixel *edges* at
integers (pixel ``i`` covers ``[i, i + 1)``, its centre is ``i + 0.5``), the convention of
``cv2.resize``: a model-input point ``u`` samples the source point
``(u - pad) / scale + crop`` on each axis. A map of shape (h, w) (a feature map, or an occlusion
or RISE map at input resolution) covers the whole model input, so map pixel ``k`` spans input
``[k * H_in / h, (k + 1) * H_in / h)``.

The mapping is separable and affine per axis, so it is done as exact float32 bilinear
interpolation along columns then rows (no fixed-point sub-pixel rounding as in ``cv2.remap``),
which keeps the overlay registered on the displayed image at any zoom.
"""

from __future__ import annotations

import math

import numpy as np

from app.core.types import GeometryTransform


def _axis(
    n_src: int, n_in: int, n_map: int, scale: float, pad: float, crop: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per source pixel: the two map indices, the weight of the second, and validity."""
    centres = np.arange(n_src, dtype=np.float64) + 0.5
    u = (centres - crop) * scale + pad  # continuous model-input coordinate
    valid = (u >= 0.0) & (u <= n_in)
    ratio = n_map / n_in
    k = u * ratio - 0.5  # map index coordinate (centres at ints)
    # Interpolate only between map pixels whose centres show image content, so letterbox
    # padding never bleeds into the border of the image (edges replicate the nearest content).
    lo = math.ceil(max(pad, 0.0) * ratio - 0.5)
    hi = math.floor(min(pad + n_src * scale, n_in) * ratio - 0.5)
    if lo <= hi:
        k = np.clip(k, lo, hi)
    k = np.clip(k, 0.0, n_map - 1.0)
    k0 = np.floor(k).astype(np.int64)
    k1 = np.minimum(k0 + 1, n_map - 1)
    frac = (k - k0).astype(np.float32)
    return k0, k1, frac, valid


def to_source(saliency: np.ndarray, transform: GeometryTransform, fill: float = 0.0) -> np.ndarray:
    """Resample a map from the model-input grid onto the source pixel grid.

    Parameters
    ----------
    saliency : numpy.ndarray
        Map (h, w) covering the whole model input, or a stack (n, h, w).
    transform : GeometryTransform
        The preprocessing that produced the model input from the source image.
    fill : float
        Value for source pixels the model never saw (cropped away).

    Returns
    -------
    numpy.ndarray
        float32 map(s) of shape ``transform.source_shape`` (or (n, rows, cols)).
    """
    m = np.asarray(saliency, dtype=np.float32)
    if m.ndim == 3:
        return np.stack([to_source(x, transform, fill) for x in m])
    if m.ndim != 2:
        raise ValueError(f"saliency map must be 2-D or a stack of 2-D maps, got shape {m.shape}")
    rows, cols = (int(v) for v in transform.source_shape)
    h_in, w_in = (int(v) for v in transform.input_shape)
    h, w = m.shape
    y0, y1, fy, vy = _axis(rows, h_in, h, transform.scale_y, transform.pad_top, transform.crop_top)
    x0, x1, fx, vx = _axis(
        cols, w_in, w, transform.scale_x, transform.pad_left, transform.crop_left
    )
    # Columns first (h x cols, small), then rows: the big array is touched only by row gathers.
    tmp = m[:, x0] * (1.0 - fx) + m[:, x1] * fx
    out = tmp[y0] * (1.0 - fy)[:, None] + tmp[y1] * fy[:, None]
    if not (vy.all() and vx.all()):
        out[~vy, :] = fill
        out[:, ~vx] = fill
    return out.astype(np.float32, copy=False)


def source_to_input(points_yx: np.ndarray, transform: GeometryTransform) -> np.ndarray:
    """Map continuous source coordinates (y, x) to model-input coordinates (for tests and tools)."""
    p = np.asarray(points_yx, dtype=np.float64)
    y = (p[..., 0] - transform.crop_top) * transform.scale_y + transform.pad_top
    x = (p[..., 1] - transform.crop_left) * transform.scale_x + transform.pad_left
    return np.stack([y, x], axis=-1)
