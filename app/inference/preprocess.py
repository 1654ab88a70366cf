"""Manifest-driven preprocessing: source image -> model input tensor + :class:`GeometryTransform`.

Two stages:

1. :func:`model_image` (needs a DICOM dataset): choose the frame, produce either the displayed
   image (VOI window/LUT, MONOCHROME1 inverted, via ``app.dicom.pixels``) or the modality values,
   and say whether the intensities must still be inverted.
2. :class:`Preprocessor` (plain arrays): intensity normalisation to [0, 1], channel conversion,
   resize by stretch / letterbox / crop (recording the geometry), mean/std, layout and dtype.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from app.core.errors import ModelInputError
from app.core.types import GeometryTransform
from app.inference.manifest import InputSpec, Preprocessing

log = logging.getLogger(__name__)

_INTERP = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}
_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}


def frame_index(pre: Preprocessing, n_frames: int) -> int:
    """The frame the manifest asks for, clamped to the frames available."""
    n = max(int(n_frames or 1), 1)
    f = pre.frame
    if f == "middle":
        return n // 2
    if f == "last":
        return n - 1
    if isinstance(f, int):
        return min(max(f, 0), n - 1)
    return 0


def model_image(
    ds: Any,
    pre: Preprocessing,
    frame: int | None = None,
    cache: dict[Any, np.ndarray] | None = None,
) -> tuple[np.ndarray, bool, int]:
    """The image a model sees, from a pydicom dataset.

    Parameters
    ----------
    ds : pydicom.Dataset
        A dataset with pixel data.
    pre : Preprocessing
        The model's preprocessing.
    frame : int, optional
        Force a frame (else the manifest's choice).
    cache : dict, optional
        Decoded frames (key ``frame``) and displayed images (key ``("display", frame)``) shared
        between several models run on the same image, so each frame is decoded once.

    Returns
    -------
    image : np.ndarray
        For intensity method ``display`` the displayed uint8 image (as the radiologist sees it);
        otherwise the modality-LUT values (float32) or RGB uint8.
    invert : bool
        True when the intensities must still be inverted after normalisation (MONOCHROME1 with
        ``monochrome1: invert`` and a non-display method).
    frame : int
        The frame used.
    """
    from app.dicom import pixels  # dicom package owns decoding; imported lazily (heavy codecs)

    idx = (
        frame if frame is not None else frame_index(pre, int(getattr(ds, "NumberOfFrames", 1) or 1))
    )
    cache = {} if cache is None else cache
    arr = cache.get(idx)
    if arr is None:
        arr = cache[idx] = pixels.frame_array(ds, frame=idx)
    mono1 = str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    if arr.ndim == 3:  # colour: already what is displayed
        return arr, False, idx
    if pre.intensity.get("method", "display") == "display":
        disp = cache.get(("display", idx))
        if disp is None:
            disp = cache[("display", idx)] = pixels.display_array(ds, arr, frame=idx)
        if mono1 and pre.monochrome1 == "keep":
            disp = 255 - disp  # display_array inverts MONOCHROME1; this model wants raw polarity
        return disp, False, idx
    return arr, bool(mono1 and pre.monochrome1 == "invert"), idx


def _resize_plan(
    rows: int, cols: int, h: int, w: int, mode: str
) -> tuple[GeometryTransform, tuple[int, int, int, int], tuple[int, int]]:
    """Geometry, source crop box (top, left, height, width) and resized (h, w) before padding."""
    if mode == "stretch" or (rows == h and cols == w):
        gt = GeometryTransform((rows, cols), (h, w), mode, h / rows, w / cols)
        return gt, (0, 0, rows, cols), (h, w)
    if mode == "letterbox":
        s = min(h / rows, w / cols)
        nh, nw = max(1, min(h, round(rows * s))), max(1, min(w, round(cols * s)))
        top, left = (h - nh) // 2, (w - nw) // 2
        gt = GeometryTransform(
            (rows, cols),
            (h, w),
            mode,
            nh / rows,
            nw / cols,
            pad_top=float(top),
            pad_left=float(left),
        )
        return gt, (0, 0, rows, cols), (nh, nw)
    if mode == "crop":  # centre crop to the input's aspect ratio, then resize
        s = max(h / rows, w / cols)
        ch, cw = min(rows, max(1, round(h / s))), min(cols, max(1, round(w / s)))
        top, left = (rows - ch) // 2, (cols - cw) // 2
        gt = GeometryTransform(
            (rows, cols), (h, w), mode, h / ch, w / cw, crop_top=float(top), crop_left=float(left)
        )
        return gt, (top, left, ch, cw), (h, w)
    raise ModelInputError(f"Unknown resize mode '{mode}' in the model manifest.")


class Preprocessor:
    """Turns one image into one model input item (no batch axis), per the manifest.

    Parameters
    ----------
    pre : Preprocessing
        The manifest's preprocessing section.
    spec : InputSpec
        The manifest's input section.
    """

    def __init__(self, pre: Preprocessing, spec: InputSpec) -> None:
        self.pre = pre
        self.spec = spec
        self._interp = _INTERP.get(pre.interpolation, cv2.INTER_AREA)
        c = spec.channels
        mean = np.asarray(pre.mean, dtype=np.float32)
        std = np.asarray(pre.std, dtype=np.float32)
        self._mean = np.broadcast_to(mean if mean.size == c else mean[:1], (c,)).reshape(1, 1, c)
        self._inv_std = (1.0 / np.broadcast_to(std if std.size == c else std[:1], (c,))).reshape(
            1, 1, c
        )
        self._dtype = _NP_DTYPES[spec.dtype]

    def intensity(self, image: np.ndarray, invert: bool = False) -> np.ndarray:
        """Normalise intensities to float32 (normally [0, 1]) as the manifest says."""
        method = str(self.pre.intensity.get("method", "display"))
        x = image.astype(np.float32, copy=False)
        if method == "none":
            out = x / np.float32(self.pre.scale)
        elif method == "display" and image.dtype == np.uint8:
            out = x / np.float32(self.pre.scale)
        elif method == "window":
            c, w = float(self.pre.intensity["center"]), float(self.pre.intensity["width"])
            out = np.clip((x - (c - w / 2.0)) / w, 0.0, 1.0)
        else:
            if method == "percentile":
                lo_p, hi_p = self.pre.intensity.get("percentiles", [0.5, 99.5])
                lo, hi = np.percentile(x, [float(lo_p), float(hi_p)])
            else:  # minmax, or display given a non-uint8 array
                lo, hi = float(x.min()), float(x.max())
            span = float(hi - lo) or 1.0
            out = np.clip((x - np.float32(lo)) / np.float32(span), 0.0, 1.0)
        if invert:
            out = 1.0 - out
        return out.astype(np.float32, copy=False)

    def __call__(
        self, image: np.ndarray, invert: bool = False
    ) -> tuple[np.ndarray, GeometryTransform]:
        """Preprocess one image.

        Parameters
        ----------
        image : np.ndarray
            (rows, cols) grey or (rows, cols, 3) RGB; uint8 for displayed images.
        invert : bool
            Invert intensities after normalisation (see :func:`model_image`).

        Returns
        -------
        tensor : np.ndarray
            One input item, shape ``spec.item_shape`` and the manifest's dtype.
        geometry : GeometryTransform
            How model-input pixels map back to source pixels.

        Raises
        ------
        ModelInputError
            For arrays that are not a 2-D grey or 3-channel colour image.
        """
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
            raise ModelInputError(
                f"Cannot classify an image of shape {arr.shape}: expected a 2-D grey "
                "image or an RGB colour image."
            )
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, :3]
        if arr.size == 0:
            raise ModelInputError("Cannot classify an empty image.")
        x = self.intensity(arr, invert)
        spec = self.spec
        if x.ndim == 3 and spec.channels == 1:
            x = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
        rows, cols = x.shape[:2]
        gt, (top, left, ch, cw), (nh, nw) = _resize_plan(
            rows, cols, spec.height, spec.width, self.pre.resize
        )
        if (ch, cw) != (rows, cols):
            x = x[top : top + ch, left : left + cw]
        if (nh, nw) != x.shape[:2]:
            x = cv2.resize(x, (nw, nh), interpolation=self._interp)
        if (nh, nw) != (
            spec.height,
            spec.width,
        ):  # letterbox: pad with black (0 after normalisation)
            canvas = np.zeros((spec.height, spec.width) + x.shape[2:], dtype=np.float32)
            pt, pl = int(gt.pad_top), int(gt.pad_left)
            canvas[pt : pt + nh, pl : pl + nw] = x
            x = canvas
        if x.ndim == 2:
            x = x[:, :, None]
        if x.shape[2] != spec.channels:  # grey -> 3 channels
            x = np.repeat(x, spec.channels, axis=2)
        if self._dtype is np.uint8:  # quantised-input models take the [0, 1] image as 0..255
            x = np.clip(np.rint(x * 255.0), 0, 255)
        else:
            x = (x - self._mean) * self._inv_std
        if spec.layout == "NCHW":
            x = np.transpose(x, (2, 0, 1))
        return np.ascontiguousarray(x, dtype=self._dtype), gt
