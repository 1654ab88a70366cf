"""Measurements on the image: length, rectangle and ellipse ROI, angle.

Each measurement is a pyqtgraph ROI placed in *image pixel coordinates* (x = column, y = row,
the pixel (r, c) covers ``[c, c+1) x [r, r+1)``), parented to the viewport's image group, so it
follows zoom, pan, rotation and flips. Values are recomputed from the current frame whenever the
ROI moves or the slice changes. Lengths use the pixel spacing in mm; without a spacing they are
given in pixels and say so ("px, no calibration").
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

KINDS = ("length", "rect", "ellipse", "angle")


def length_mm(p1: tuple[float, float], p2: tuple[float, float],
              spacing: tuple[float, float] | None) -> tuple[float, str]:
    """Distance between two image points (x=col, y=row).

    Returns
    -------
    (float, str)
        The value and its unit: ``"mm"`` with a spacing, ``"px"`` without.
    """
    dx, dy = p2[0] - p1[0], p2[1] - p1[1]
    if spacing is None:
        return math.hypot(dx, dy), "px"
    return math.hypot(dx * spacing[1], dy * spacing[0]), "mm"


def angle_deg(a: tuple[float, float], vertex: tuple[float, float], b: tuple[float, float],
              spacing: tuple[float, float] | None) -> float:
    """The angle at ``vertex`` between the rays to ``a`` and ``b`` (in patient space when calibrated)."""
    sy, sx = spacing if spacing else (1.0, 1.0)
    v1 = np.array([(a[0] - vertex[0]) * sx, (a[1] - vertex[1]) * sy])
    v2 = np.array([(b[0] - vertex[0]) * sx, (b[1] - vertex[1]) * sy])
    n = float(np.linalg.norm(v1) * np.linalg.norm(v2))
    if n == 0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(v1, v2)) / n))))


def region_stats(frame: np.ndarray, kind: str, x0: float, y0: float, w: float, h: float,
                 spacing: tuple[float, float] | None) -> dict[str, float | str]:
    """Mean, SD, min, max and area of the pixels inside a rectangle or ellipse.

    A pixel is inside when its centre is. The area is the geometric area of the shape
    (mm² with a spacing, px² without).
    """
    if w < 0:
        x0, w = x0 + w, -w
    if h < 0:
        y0, h = y0 + h, -h
    rows, cols = frame.shape[:2]
    c0, c1 = max(int(math.floor(x0)), 0), min(int(math.ceil(x0 + w)), cols)
    r0, r1 = max(int(math.floor(y0)), 0), min(int(math.ceil(y0 + h)), rows)
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
    out.update(mean=float(values.mean()), sd=float(values.std()), min=float(values.min()),
               max=float(values.max()), n=int(values.size))
    return out


class _Ellipse(pg.EllipseROI):
    """An axis-aligned ellipse (scale handles only: stats stay exact on the pixel grid)."""

    def _addHandles(self) -> None:
        self.addScaleHandle([1, 1], [0, 0])
        self.addScaleHandle([0, 0], [1, 1])


class _Rect(pg.RectROI):
    def __init__(self, pos: object, size: object, **kw: object) -> None:
        super().__init__(pos, size, **kw)
        self.addScaleHandle([0, 0], [1, 1])


class Measurement:
    """One measurement: its ROI, its text label and how to compute its value.

    Parameters
    ----------
    kind : str
        ``length``, ``rect``, ``ellipse`` or ``angle``.
    points : list of (x, y)
        Image coordinates: two ends (length), two corners (rect, ellipse), or
        ``[a, vertex, b]`` (angle).
    parent : QGraphicsItem
        The image group the ROI lives in.
    label_parent : pyqtgraph.ViewBox
        Where the label lives (it stays upright and screen-sized).
    color : str
        Pen colour.
    on_change : callable
        Called with the measurement when it moves or its text changes.
    """

    def __init__(self, kind: str, points: list[tuple[float, float]], parent: object, label_parent: pg.ViewBox,
                 color: str, on_change: Callable[["Measurement"], None]) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        self.kind = kind
        self.color = color
        self._on_change = on_change
        pen = pg.mkPen(QColor(color), width=1.6)
        hover = pg.mkPen(QColor("#ffffff"), width=2)
        handle_pen = pg.mkPen(QColor(color))
        kw = dict(pen=pen, hoverPen=hover, handlePen=handle_pen, movable=True)
        if kind == "length":
            self.roi: pg.ROI = pg.LineSegmentROI(positions=[points[0], points[-1]], **kw)
        elif kind == "angle":
            pts = list(points) + [points[-1]] * (3 - len(points))
            self.roi = pg.PolyLineROI(pts[:3], closed=False, **kw)
        else:
            (xa, ya), (xb, yb) = points[0], points[-1]
            pos, size = (min(xa, xb), min(ya, yb)), (max(abs(xb - xa), 1e-3), max(abs(yb - ya), 1e-3))
            cls = _Ellipse if kind == "ellipse" else _Rect
            self.roi = cls(pos, size, **kw)
        self.roi.setParentItem(parent)  # type: ignore[arg-type]
        self.roi.setZValue(20)
        self.label = pg.TextItem("", color=QColor(color), anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 150))
        self.label.setZValue(30)
        label_parent.addItem(self.label, ignoreBounds=True)
        self._label_parent = label_parent
        self.selected = False
        self.values: dict[str, float | str] = {}
        self.roi.sigRegionChanged.connect(lambda *_: self._on_change(self))
        self.roi.sigClicked.connect(lambda *_: self._on_change(self))

    # --- geometry ---------------------------------------------------------------------------
    def points(self) -> list[tuple[float, float]]:
        """The defining points in image coordinates."""
        if self.kind in ("length", "angle"):
            out = []
            for h in self.roi.getHandles():
                p = self.roi.mapToParent(h.pos())
                out.append((float(p.x()), float(p.y())))
            return out
        pos, size = self.roi.pos(), self.roi.size()
        return [(float(pos.x()), float(pos.y())), (float(pos.x() + size.x()), float(pos.y() + size.y()))]

    def set_points(self, points: list[tuple[float, float]]) -> None:
        """Move the defining points (used while drawing)."""
        if self.kind in ("length", "angle"):
            handles = self.roi.getHandles()
            for h, (x, y) in zip(handles, points):
                self.roi.movePoint(h, QPointF(x, y), finish=False, coords="parent")
        else:
            (xa, ya), (xb, yb) = points[0], points[-1]
            self.roi.setPos((min(xa, xb), min(ya, yb)), update=False, finish=False)
            self.roi.setSize((max(abs(xb - xa), 1e-3), max(abs(yb - ya), 1e-3)), finish=False)

    def contains(self, x: float, y: float, tolerance: float) -> bool:
        """True when image point (x, y) is on (or within ``tolerance`` of) the measurement."""
        pts = self.points()
        if self.kind in ("rect", "ellipse"):
            (x0, y0), (x1, y1) = pts
            return x0 - tolerance <= x <= x1 + tolerance and y0 - tolerance <= y <= y1 + tolerance
        for (ax, ay), (bx, by) in zip(pts, pts[1:]):
            vx, vy = bx - ax, by - ay
            ll = vx * vx + vy * vy
            t = 0.0 if ll == 0 else max(0.0, min(1.0, ((x - ax) * vx + (y - ay) * vy) / ll))
            if math.hypot(ax + t * vx - x, ay + t * vy - y) <= tolerance:
                return True
        return False

    # --- values -----------------------------------------------------------------------------
    def compute(self, frame: np.ndarray | None, spacing: tuple[float, float] | None,
                units: str = "") -> dict[str, float | str]:
        """Recompute the values on ``frame`` and refresh the label text."""
        pts = self.points()
        if self.kind == "length":
            value, unit = length_mm(pts[0], pts[1], spacing)
            self.values = {"length": value, "unit": unit}
            text = f"{value:.1f} mm" if unit == "mm" else f"{value:.1f} px (no calibration)"
        elif self.kind == "angle":
            value = angle_deg(pts[0], pts[1], pts[2], spacing)
            self.values = {"angle": value, "unit": "deg"}
            text = f"{value:.1f}°"
        else:
            (x0, y0), (x1, y1) = pts
            self.values = region_stats(frame, self.kind, x0, y0, x1 - x0, y1 - y0, spacing) if frame is not None \
                else {}
            v = self.values
            u = f" {units}" if units else ""
            if "mean" in v:
                text = (f"Mean {v['mean']:.1f}{u}  SD {v['sd']:.1f}\nMin {v['min']:.0f}  Max {v['max']:.0f}\n"
                        f"Area {float(v['area']) / (100 if v['area_unit'] == 'mm²' else 1):.2f} "
                        f"{'cm²' if v['area_unit'] == 'mm²' else 'px² (no calibration)'}")
            else:
                text = "(outside the image)"
        self.label.setText(text)
        return self.values

    def place_label(self, group: object) -> None:
        """Put the label beside the measurement, in view coordinates."""
        pts = self.points()
        if self.kind in ("rect", "ellipse"):
            anchor = (pts[1][0], pts[0][1])
        elif self.kind == "angle":
            anchor = pts[1]
        else:
            anchor = max(pts, key=lambda p: p[0])
        # the group and the label share a parent (the view box's child group): map directly
        self.label.setPos(group.mapToParent(QPointF(*anchor)))  # type: ignore[attr-defined]

    def set_selected(self, selected: bool) -> None:
        """Highlight the selected measurement."""
        self.selected = selected
        pen = pg.mkPen(QColor("#4fc3f7" if selected else self.color), width=2.2 if selected else 1.6)
        self.roi.setPen(pen)

    def remove(self) -> None:
        """Take the measurement off the scene."""
        scene = self.roi.scene()
        self.roi.setParentItem(None)
        if scene is not None:
            scene.removeItem(self.roi)
        self._label_parent.removeItem(self.label)
