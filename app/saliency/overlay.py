"""Render saliency maps over the displayed image: colormaps, opacity, threshold, contours, legend.

Colormaps are 256-entry RGB lookup tables taken from OpenCV (``inferno``, ``jet``, ``viridis``),
so rendering is a table lookup and an alpha blend. :func:`overlay_rgba` gives the premultiplied-
free RGBA layer the viewer draws above the image (it follows zoom, pan and W/L because it lives in
the source pixel grid); :func:`render_overlay` blends it onto a displayed image for files and
reports; :func:`legend_image` draws the colour bar.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

COLORMAPS = {
    "inferno": cv2.COLORMAP_INFERNO,
    "jet": cv2.COLORMAP_JET,
    "viridis": cv2.COLORMAP_VIRIDIS,
}


@lru_cache(maxsize=None)
def colormap_lut(name: str) -> np.ndarray:
    """The colormap as a (256, 3) uint8 RGB lookup table.

    Raises
    ------
    ValueError
        For an unknown colormap name.
    """
    try:
        code = COLORMAPS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}"
        ) from None
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), code)
    lut = np.ascontiguousarray(bgr.reshape(256, 3)[:, ::-1])
    lut.setflags(write=False)
    return lut


def _to_u8(saliency: np.ndarray) -> np.ndarray:
    m = np.nan_to_num(np.asarray(saliency, dtype=np.float32), nan=0.0)
    return (np.clip(m, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def overlay_rgba(
    saliency: np.ndarray,
    colormap: str = "inferno",
    opacity: float = 0.5,
    threshold: float = 0.0,
    contour: bool = False,
    levels: tuple[float, ...] = (0.25, 0.5, 0.75),
    thickness: int = 2,
) -> np.ndarray:
    """The coloured overlay layer for a normalised map.

    Parameters
    ----------
    saliency : numpy.ndarray
        Map (H, W) in [0, 1], already in the display's pixel grid; NaN pixels (never seen by
        the model) are transparent.
    colormap : str
        ``inferno``, ``jet`` or ``viridis``.
    opacity : float
        Alpha of visible overlay pixels, 0..1.
    threshold : float
        Pixels whose value is below it are transparent ("hide below x").
    contour : bool
        Draw iso-lines (at ``levels`` at or above the threshold) instead of a filled heat map.
    levels : tuple of float
        Contour levels in [0, 1].
    thickness : int
        Contour line width in pixels.

    Returns
    -------
    numpy.ndarray
        (H, W, 4) uint8 RGBA (straight alpha).
    """
    lut = colormap_lut(colormap)
    u8 = _to_u8(saliency)
    alpha = int(round(np.clip(opacity, 0.0, 1.0) * 255))
    h, w = u8.shape
    out = np.zeros((h, w, 4), dtype=np.uint8)
    raw = np.asarray(saliency, dtype=np.float32)
    seen = ~np.isnan(raw)  # NaN: a pixel the model never saw; always transparent
    if not contour:
        out[..., :3] = lut[u8]
        visible = seen & (np.nan_to_num(raw, nan=0.0) >= threshold) if threshold > 0 else seen
        out[..., 3] = np.where(visible, alpha, 0).astype(np.uint8)
        return out
    m = np.nan_to_num(np.asarray(saliency, dtype=np.float32), nan=0.0)
    lines = np.zeros((h, w, 3), dtype=np.uint8)
    cover = np.zeros((h, w), dtype=np.uint8)
    for level in sorted(v for v in levels if v >= threshold and v > 0):
        binary = (m >= level).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        colour = tuple(int(c) for c in lut[min(255, int(level * 255 + 0.5))])
        cv2.drawContours(lines, contours, -1, colour, thickness, lineType=cv2.LINE_8)
        cv2.drawContours(cover, contours, -1, 255, thickness, lineType=cv2.LINE_8)
    out[..., :3] = lines
    out[..., 3] = np.where(cover > 0, max(alpha, 1), 0).astype(np.uint8)
    return out


def _display_rgb(display: np.ndarray) -> np.ndarray:
    d = np.asarray(display)
    if d.dtype != np.uint8:
        raise ValueError("the displayed image must be uint8 (as shown on screen)")
    if d.ndim == 2:
        return np.repeat(d[..., None], 3, axis=2)
    if d.ndim == 3 and d.shape[2] == 3:
        return d
    if d.ndim == 3 and d.shape[2] == 4:
        return d[..., :3]
    raise ValueError(f"displayed image must be (H, W), (H, W, 3) or (H, W, 4), got {d.shape}")


def blend_rgba(display_uint8: np.ndarray, layer: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """The one overlay blend: an RGBA uint8 layer over the displayed image, at ``opacity``.

    Used for the saliency files, the export's key images and what the viewer shows blended.

    Returns
    -------
    numpy.ndarray
        RGB uint8 (H, W, 3).
    """
    base = _display_rgb(display_uint8)
    a = layer[..., 3:4].astype(np.float32) * (float(opacity) / 255.0)
    out = base.astype(np.float32) * (1.0 - a) + layer[..., :3].astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_overlay(
    display_uint8: np.ndarray,
    saliency: np.ndarray,
    colormap: str = "inferno",
    opacity: float = 0.5,
    threshold: float = 0.0,
    contour: bool = False,
) -> np.ndarray:
    """Blend a normalised map onto the displayed image.

    Parameters
    ----------
    display_uint8 : numpy.ndarray
        The image as displayed (grey (H, W) or RGB (H, W, 3) uint8, after W/L).
    saliency : numpy.ndarray
        Normalised map (H, W) in [0, 1], in the same pixel grid (see ``mapping.to_source``).
    colormap, opacity, threshold, contour
        As in :func:`overlay_rgba`.

    Returns
    -------
    numpy.ndarray
        RGB uint8 (H, W, 3).
    """
    base = _display_rgb(display_uint8)
    if base.shape[:2] != np.shape(saliency)[-2:]:
        raise ValueError(
            f"map shape {np.shape(saliency)} does not match the image {base.shape[:2]};"
            " map it to the source grid first"
        )
    return blend_rgba(base, overlay_rgba(saliency, colormap, opacity, threshold, contour))


def legend_image(
    colormap: str = "inferno",
    height: int = 256,
    width: int = 64,
    title: str = "",
    low: str = "0",
    high: str = "1",
) -> np.ndarray:
    """A vertical colour bar with end labels and an optional title (RGB uint8, white text on black).

    Parameters
    ----------
    colormap : str
        Colormap name.
    height, width : int
        Size of the legend image in pixels.
    title : str
        Short text drawn at the top (e.g. the label or method); ASCII only.
    low, high : str
        Texts at the bottom and top of the bar.
    """
    lut = colormap_lut(colormap)
    img = np.zeros((height, width, 3), dtype=np.uint8)
    top = 22 if title else 12
    bottom = height - 12
    bar_w = max(8, width // 4)
    ramp = np.linspace(255, 0, max(1, bottom - top)).astype(np.uint8)
    img[top:bottom, 4 : 4 + bar_w] = lut[ramp][:, None, :]
    font = cv2.FONT_HERSHEY_SIMPLEX
    white = (255, 255, 255)
    if title:
        cv2.putText(img, title[:12], (2, 14), font, 0.4, white, 1, cv2.LINE_AA)
    cv2.putText(img, high, (8 + bar_w, top + 10), font, 0.4, white, 1, cv2.LINE_AA)
    cv2.putText(img, low, (8 + bar_w, bottom), font, 0.4, white, 1, cv2.LINE_AA)
    return img
