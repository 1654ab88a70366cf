"""Measurements on the image: length, rectangle and ellipse ROI, angle.

Each measurement is a pyqtgraph ROI placed in *image pixel coordinates* (x = column, y = row,
the pixel (r, c) covers ``[c, c+1) x [r, r+1)``), parented to the viewport's image group, so it
follows zoom, pan, rotation and flips. Values are recomputed from the current frame whenever the
ROI moves or the slice changes. Lengths use the pixel spacing in mm; without a spacing they are
given in pixels and say so ("px, no calibration").
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

KINDS = ("length", "rect", "ellipse", "angle", "cobb")


# the values are computed in one place (Qt-free), shared with the library, report and DICOM
from app.dicom.measurements import angle_deg, cobb_deg, length_mm, region_stats  # noqa: E402,F401


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

    def __init__(
        self,
        kind: str,
        points: list[tuple[float, float]],
        parent: object,
        label_parent: pg.ViewBox,
        color: str,
        on_change: Callable[["Measurement"], None],
    ) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        self.kind = kind
        self.color = color
        self._on_change = on_change
        #: set by a view that stores it: the image it lies on and its row in the library
        self.key: Any = None
        self.stored_id = ""
        pen = pg.mkPen(QColor(color), width=1.6)
        hover = pg.mkPen(QColor("#ffffff"), width=2)
        handle_pen = pg.mkPen(QColor(color))
        kw = dict(pen=pen, hoverPen=hover, handlePen=handle_pen, movable=True)
        if kind == "length":
            self.roi: pg.ROI = pg.LineSegmentROI(positions=[points[0], points[-1]], **kw)
        elif kind == "angle":
            pts = list(points) + [points[-1]] * (3 - len(points))
            self.roi = pg.PolyLineROI(pts[:3], closed=False, **kw)
        elif kind == "cobb":
            # two lines (p0-p1 and p2-p3): one open polyline whose middle segment is not drawn
            pts = list(points) + [points[-1]] * (4 - len(points))
            self.roi = pg.PolyLineROI(pts[:4], closed=False, **kw)
            self._hide_cobb_link()
        else:
            (xa, ya), (xb, yb) = points[0], points[-1]
            pos, size = (
                (min(xa, xb), min(ya, yb)),
                (max(abs(xb - xa), 1e-3), max(abs(yb - ya), 1e-3)),
            )
            cls = _Ellipse if kind == "ellipse" else _Rect
            self.roi = cls(pos, size, **kw)
        self.roi.setParentItem(parent)  # type: ignore[arg-type]
        self.roi.setZValue(20)
        self.label = pg.TextItem(
            "", color=QColor(color), anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 150)
        )
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
        if self.kind in ("length", "angle", "cobb"):
            out = []
            for h in self.roi.getHandles():
                p = self.roi.mapToParent(h.pos())
                out.append((float(p.x()), float(p.y())))
            return out
        pos, size = self.roi.pos(), self.roi.size()
        return [
            (float(pos.x()), float(pos.y())),
            (float(pos.x() + size.x()), float(pos.y() + size.y())),
        ]

    def set_points(self, points: list[tuple[float, float]]) -> None:
        """Move the defining points (used while drawing)."""
        if self.kind in ("length", "angle", "cobb"):
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
    def compute(
        self, frame: np.ndarray | None, spacing: tuple[float, float] | None, units: str = ""
    ) -> dict[str, float | str]:
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
        elif self.kind == "cobb":
            value = cobb_deg(pts[:4], spacing)
            self.values = {"angle": value, "unit": "deg"}
            text = f"Cobb {value:.1f}°"
        else:
            (x0, y0), (x1, y1) = pts
            self.values = (
                region_stats(frame, self.kind, x0, y0, x1 - x0, y1 - y0, spacing)
                if frame is not None
                else {}
            )
            v = self.values
            u = f" {units}" if units else ""
            if "mean" in v:
                text = (
                    f"Mean {v['mean']:.1f}{u}  SD {v['sd']:.1f}\nMin {v['min']:.0f}  Max {v['max']:.0f}\n"
                    f"Area {float(v['area']) / (100 if v['area_unit'] == 'mm²' else 1):.2f} "
                    f"{'cm²' if v['area_unit'] == 'mm²' else 'px² (no calibration)'}"
                )
            else:
                text = "(outside the image)"
        self.label.setText(text)
        return self.values

    def place_label(self, group: object) -> None:
        """Put the label beside the measurement, in view coordinates."""
        pts = self.points()
        if self.kind in ("rect", "ellipse"):
            anchor = (pts[1][0], pts[0][1])
        elif self.kind == "cobb":
            anchor = max(pts[2:4], key=lambda p: p[0])
        elif self.kind == "angle":
            anchor = pts[1]
        else:
            anchor = max(pts, key=lambda p: p[0])
        # the group and the label share a parent (the view box's child group): map directly
        self.label.setPos(group.mapToParent(QPointF(*anchor)))  # type: ignore[attr-defined]

    def set_selected(self, selected: bool) -> None:
        """Highlight the selected measurement."""
        self.selected = selected
        pen = pg.mkPen(
            QColor("#4fc3f7" if selected else self.color), width=2.2 if selected else 1.6
        )
        self.roi.setPen(pen)
        if self.kind == "cobb":
            self._hide_cobb_link()

    def _hide_cobb_link(self) -> None:
        """A Cobb angle's two lines are separate: the polyline's middle segment is not drawn."""
        segments = getattr(self.roi, "segments", [])
        if len(segments) >= 2:
            segments[1].setPen(pg.mkPen(None))
            segments[1].hoverPen = pg.mkPen(None)

    def remove(self) -> None:
        """Take the measurement off the scene."""
        scene = self.roi.scene()
        self.roi.setParentItem(None)
        if scene is not None:
            scene.removeItem(self.roi)
        self._label_parent.removeItem(self.label)
