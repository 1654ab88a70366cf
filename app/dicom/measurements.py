"""Measurements, key images and reading views bound to one image (no Qt).

A :class:`Measurement` belongs to exactly one image: an SOP instance and frame, or a reformat
plane of a series (:class:`app.dicom.mpr.Plane`). Points are image coordinates with the DICOM
presentation-state convention (x = column, y = row; ``(0, 0)`` is the top-left corner of the
top-left pixel, so pixel (r, c) covers ``[c, c+1) x [r, r+1)``), which is also the viewer's.

Values are computed here, once, for the GUI, the library, the report and the DICOM outputs:
length (mm), ROI mean/SD/min/max/area (modality units, HU for CT; area mm²), angle and Cobb
angle (degrees). They are persisted in the study library (:meth:`Library.save_annotation`).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from app.core.errors import UsageError

__all__ = [
    "KINDS",
    "ImageKey",
    "ImageView",
    "KeyImageMark",
    "Measurement",
    "angle_deg",
    "cobb_deg",
    "compute_values",
    "delete_key_image",
    "delete_measurement",
    "describe",
    "for_image",
    "length_mm",
    "load_key_images",
    "load_measurements",
    "load_views",
    "region_stats",
    "save_key_image",
    "save_measurement",
    "save_view",
]

#: measurement kinds: two-point length, rectangle and ellipse ROI, three-point angle, four-point
#: Cobb angle (the angle between the lines p0-p1 and p2-p3)
KINDS = ("length", "rect", "ellipse", "angle", "cobb")
_NPOINTS = {"length": 2, "rect": 2, "ellipse": 2, "angle": 3, "cobb": 4}


@dataclass(frozen=True)
class ImageKey:
    """The image an annotation belongs to (stable across sessions: no file path).

    Attributes
    ----------
    study_uid, series_uid : str
    sop_uid : str
        The SOP instance (empty for a reformat).
    frame : int
        0-based frame of the instance.
    plane : str
        For a reformat: the plane as canonical JSON (:meth:`Plane.to_json`); else empty.
    """

    study_uid: str
    series_uid: str
    sop_uid: str = ""
    frame: int = 0
    plane: str = ""

    @staticmethod
    def of(ref: Any) -> ImageKey:
        """The key of a displayed image (an :class:`app.core.types.ImageRef`)."""
        return ImageKey(ref.study_uid, ref.series_uid, ref.sop_uid, int(ref.frame))

    @staticmethod
    def of_plane(study_uid: str, series_uid: str, plane: Any) -> ImageKey:
        """The reference of a reformat plane (an :class:`app.dicom.mpr.Plane`)."""
        data = plane.to_json()
        data = {
            k: (
                [round(float(x), 4) for x in v]
                if isinstance(v, list)
                else (round(v, 6) if isinstance(v, float) else v)
            )
            for k, v in data.items()
        }
        return ImageKey(study_uid, series_uid, "", 0, json.dumps(data, sort_keys=True))

    @property
    def is_reformat(self) -> bool:
        """True for a reformat plane."""
        return bool(self.plane)

    def key(self) -> str:
        """A string identifying the image (for lookups)."""
        return f"plane:{self.plane}" if self.plane else f"{self.sop_uid}#{self.frame}"

    def to_json(self) -> dict[str, Any]:
        return {
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "sop_uid": self.sop_uid,
            "frame": self.frame,
            "plane": self.plane,
        }


@dataclass(frozen=True)
class Measurement:
    """One measurement on one image.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    points : tuple of (x, y)
        Image coordinates (see the module docstring).
    image : ImageKey
    values : dict
        Computed values: ``length`` (mm or px), ``mean``/``sd``/``min``/``max`` (``unit``),
        ``area`` (``area_unit``), ``angle`` (deg) ... see :func:`compute_values`.
    label : str
        Optional reader's label.
    source : str
        "hilum" for measurements drawn here, else where an imported one came from.
    id : str
        Stable identifier (the library key).
    """

    kind: str
    points: tuple[tuple[float, float], ...]
    image: ImageKey
    values: Mapping[str, Any] = field(default_factory=dict, compare=False)
    label: str = ""
    source: str = "hilum"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: float = field(default_factory=time.time, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"Unknown measurement kind {self.kind!r}.")
        if len(self.points) != _NPOINTS[self.kind]:
            raise UsageError(f"A {self.kind} measurement needs {_NPOINTS[self.kind]} points.")
        pts = tuple((float(x), float(y)) for x, y in self.points)
        if not all(math.isfinite(v) for p in pts for v in p):
            raise UsageError("Measurement points must be finite numbers.")
        object.__setattr__(self, "points", pts)

    def text(self) -> str:
        """One line for the report and labels (e.g. "Length 23.4 mm")."""
        return describe(self.kind, self.values)

    def with_values(self, values: Mapping[str, Any]) -> Measurement:
        return replace(self, values=dict(values))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "points": [list(p) for p in self.points],
            "values": dict(self.values),
            "label": self.label,
            "source": self.source,
            "created": self.created,
        }


@dataclass(frozen=True)
class KeyImageMark:
    """An image the reader marked as key (exported as a Key Object Selection document)."""

    image: ImageKey
    note: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", "key:" + self.image.key())


@dataclass(frozen=True)
class ImageView:
    """How the reader displayed an image: window and zoomed area (for presentation states).

    ``area`` is ``((x0, y0), (x1, y1))`` in image coordinates (the displayed part), or None for
    the whole image.
    """

    image: ImageKey
    center: float
    width: float
    area: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def id(self) -> str:
        return "view:" + self.image.key()


# -- values ---------------------------------------------------------------------------------------
def length_mm(
    p1: tuple[float, float], p2: tuple[float, float], spacing: tuple[float, float] | None
) -> tuple[float, str]:
    """Distance between two image points (x=col, y=row).

    Returns
    -------
    (float, str)
        The value and its unit: ``"mm"`` with a spacing (row, column mm), ``"px"`` without.
    """
    dx, dy = p2[0] - p1[0], p2[1] - p1[1]
    if spacing is None:
        return math.hypot(dx, dy), "px"
    return math.hypot(dx * spacing[1], dy * spacing[0]), "mm"


def _vec(
    a: tuple[float, float], b: tuple[float, float], spacing: tuple[float, float] | None
) -> np.ndarray:
    sy, sx = spacing if spacing else (1.0, 1.0)
    return np.array([(b[0] - a[0]) * sx, (b[1] - a[1]) * sy])


def angle_deg(
    a: tuple[float, float],
    vertex: tuple[float, float],
    b: tuple[float, float],
    spacing: tuple[float, float] | None,
) -> float:
    """The angle at ``vertex`` between the rays to ``a`` and ``b`` (in mm space when calibrated)."""
    v1, v2 = _vec(vertex, a, spacing), _vec(vertex, b, spacing)
    n = float(np.linalg.norm(v1) * np.linalg.norm(v2))
    if n == 0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(v1, v2)) / n))))


def cobb_deg(points: Iterable[tuple[float, float]], spacing: tuple[float, float] | None) -> float:
    """Cobb angle: the angle between line p0-p1 and line p2-p3 (0..90 degrees)."""
    p = list(points)
    v1, v2 = _vec(p[0], p[1], spacing), _vec(p[2], p[3], spacing)
    n = float(np.linalg.norm(v1) * np.linalg.norm(v2))
    if n == 0:
        return 0.0
    c = abs(float(np.dot(v1, v2))) / n
    return math.degrees(math.acos(max(0.0, min(1.0, c))))


def region_stats(
    frame: np.ndarray,
    kind: str,
    x0: float,
    y0: float,
    w: float,
    h: float,
    spacing: tuple[float, float] | None,
) -> dict[str, float | str]:
    """Mean, SD, min, max and area of the pixels inside a rectangle or ellipse.

    A pixel is inside when its centre is. The area is the geometric area of the shape
    (mm² with a spacing, px² without).
    """
    if w < 0:
        x0, w = x0 + w, -w
    if h < 0:
        y0, h = y0 + h, -h
    rows, cols = frame.shape[:2]
    c0, c1 = max(math.floor(x0), 0), min(math.ceil(x0 + w), cols)
    r0, r1 = max(math.floor(y0), 0), min(math.ceil(y0 + h), rows)
    sy, sx = spacing if spacing else (1.0, 1.0)
    area = w * h * sx * sy * (math.pi / 4 if kind == "ellipse" else 1.0)
    out: dict[str, float | str] = {"area": area, "area_unit": "mm²" if spacing else "px²", "n": 0}
    if c1 <= c0 or r1 <= r0:
        return out
    yy, xx = np.mgrid[r0:r1, c0:c1]
    cy, cx = yy + 0.5, xx + 0.5
    if kind == "ellipse":
        a, b = w / 2, h / 2
        if a <= 0 or b <= 0:
            return out
        mask = ((cx - (x0 + a)) / a) ** 2 + ((cy - (y0 + b)) / b) ** 2 <= 1.0
    else:
        mask = (cx >= x0) & (cx <= x0 + w) & (cy >= y0) & (cy <= y0 + h)
    sub = frame[r0:r1, c0:c1]
    if sub.ndim == 3:  # colour: statistics of the luminance
        sub = sub[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    values = sub[mask].astype(np.float64)
    if values.size == 0:
        return out
    out.update(
        mean=float(values.mean()),
        sd=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        n=int(values.size),
    )
    return out


def compute_values(
    kind: str,
    points: Iterable[tuple[float, float]],
    frame: np.ndarray | None,
    spacing: tuple[float, float] | None,
    unit: str = "",
) -> dict[str, Any]:
    """The values of a measurement on ``frame`` (modality units) with ``spacing`` (row, col mm).

    ``unit`` names the pixel values (e.g. "HU"); ROI statistics carry it as ``unit``.
    """
    pts = [(float(x), float(y)) for x, y in points]
    if kind == "length":
        value, u = length_mm(pts[0], pts[1], spacing)
        return {"length": value, "unit": u}
    if kind == "angle":
        return {"angle": angle_deg(pts[0], pts[1], pts[2], spacing), "unit": "deg"}
    if kind == "cobb":
        return {"angle": cobb_deg(pts, spacing), "unit": "deg"}
    (x0, y0), (x1, y1) = pts
    if frame is None:
        return {}
    out: dict[str, Any] = dict(region_stats(frame, kind, x0, y0, x1 - x0, y1 - y0, spacing))
    out["unit"] = unit
    return out


def describe(kind: str, values: Mapping[str, Any]) -> str:
    """A one-line text of a measurement's values."""
    names = {
        "length": "Length",
        "rect": "Rectangle ROI",
        "ellipse": "Ellipse ROI",
        "angle": "Angle",
        "cobb": "Cobb angle",
    }
    name = names.get(kind, kind)
    if kind == "length" and "length" in values:
        u = values.get("unit", "mm")
        return f"{name} {float(values['length']):.1f} {u}"
    if kind in ("angle", "cobb") and "angle" in values:
        return f"{name} {float(values['angle']):.1f}°"
    if "mean" in values:
        u = f" {values.get('unit')}" if values.get("unit") else ""
        area = float(values.get("area", 0.0))
        au = values.get("area_unit", "mm²")
        area_text = f"{area / 100:.2f} cm²" if au == "mm²" else f"{area:.0f} {au}"
        return (
            f"{name} mean {float(values['mean']):.1f}{u}, SD {float(values['sd']):.1f}, "
            f"min {float(values['min']):.0f}, max {float(values['max']):.0f}, "
            f"area {area_text}"
        )
    return name


# -- persistence (the library's annotations table) -----------------------------------------------
def _ref(rec: Mapping[str, Any]) -> ImageKey:
    return ImageKey(
        rec["study_uid"],
        rec["series_uid"] or "",
        rec["sop_uid"] or "",
        int(rec["frame"] or 0),
        rec["plane"] or "",
    )


def save_measurement(library: Any, m: Measurement) -> None:
    """Store (or replace) a measurement in the library."""
    library.save_annotation(m.id, "measurement", m.image.to_json(), m.to_json())


def load_measurements(library: Any, study_uid: str) -> list[Measurement]:
    """The measurements stored with a study, oldest first."""
    out = []
    for rec in library.annotations(study_uid, "measurement"):
        d = rec["data"]
        try:
            out.append(
                Measurement(
                    kind=d["kind"],
                    points=tuple(tuple(p) for p in d["points"]),
                    image=_ref(rec),
                    values=d.get("values", {}),
                    label=d.get("label", ""),
                    source=d.get("source", "hilum"),
                    id=rec["id"],
                    created=float(d.get("created", 0.0)),
                )
            )
        except (KeyError, TypeError, ValueError, UsageError):
            continue  # a damaged record is skipped, not fatal
    return out


def delete_measurement(library: Any, m: Measurement | str) -> None:
    """Remove a measurement from the library."""
    library.delete_annotation(m if isinstance(m, str) else m.id)


def save_key_image(library: Any, k: KeyImageMark) -> None:
    library.save_annotation(k.id, "key_image", k.image.to_json(), {"note": k.note})


def load_key_images(library: Any, study_uid: str) -> list[KeyImageMark]:
    return [
        KeyImageMark(_ref(r), r["data"].get("note", ""), r["id"])
        for r in library.annotations(study_uid, "key_image")
    ]


def delete_key_image(library: Any, k: KeyImageMark | str) -> None:
    library.delete_annotation(k if isinstance(k, str) else k.id)


def save_view(library: Any, v: ImageView) -> None:
    library.save_annotation(
        v.id,
        "view",
        v.image.to_json(),
        {
            "center": v.center,
            "width": v.width,
            "area": [list(p) for p in v.area] if v.area else None,
        },
    )


def load_views(library: Any, study_uid: str) -> list[ImageView]:
    out = []
    for r in library.annotations(study_uid, "view"):
        d = r["data"]
        area = d.get("area")
        out.append(
            ImageView(
                _ref(r),
                float(d["center"]),
                float(d["width"]),
                (tuple(area[0]), tuple(area[1])) if area else None,
            )
        )  # type: ignore[arg-type]
    return out


def for_image(items: Iterable[Any], image: ImageKey) -> list[Any]:
    """The measurements (or key images, views) that belong to ``image``."""
    key = image.key()
    return [m for m in items if m.image.key() == key]
