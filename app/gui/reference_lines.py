"""Reference lines: the active viewport's slice drawn as a line on the other viewports.

For viewports in one frame of reference (the same FrameOfReferenceUID: only then do their
patient coordinates mean the same place) whose slices are not parallel, the plane of the slice
shown in the active viewport cuts each other viewport's slice along a line
(:meth:`app.dicom.mpr.Plane.intersection`), drawn in the active viewport's colour. Used in the
1x2 / 2x2 layouts and by the MPR layout's original pane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

if TYPE_CHECKING:  # the reformat stack (pydicom, codecs) loads on first use, not at start-up
    from app.dicom.mpr import Plane


def slice_plane(series: Any, index: int) -> tuple[Plane, float, float] | None:
    """The plane of frame ``index`` of a displayed series, with its pixel spacing (dy, dx).

    The plane's own unit is 1 mm (``spacing=1``): pixel coordinates on it are mm along the
    column and row directions from the frame's ImagePositionPatient.
    """
    if (
        series is None
        or not (0 <= index < series.count)
        or not series.orientation
        or len(series.orientation) != 6
        or not series.pixel_spacing
    ):
        return None
    pos = series.frames[index].position
    if pos is None:
        return None
    dy, dx = (float(v) for v in series.pixel_spacing)
    row = np.asarray(series.orientation[:3], float)
    col = np.asarray(series.orientation[3:], float)
    if np.linalg.norm(np.cross(row, col)) < 1e-6:
        return None
    from app.dicom.mpr import Plane

    plane = Plane(
        origin=(float(pos[0]), float(pos[1]), float(pos[2])),
        row=(float(row[0]), float(row[1]), float(row[2])),
        col=(float(col[0]), float(col[1]), float(col[2])),
        spacing=1.0,
        rows=max(1, int(series.rows * dy)),
        columns=max(1, int(series.columns * dx)),
    )
    return plane, dy, dx


def line_on(series: Any, index: int, other: Plane) -> tuple[list[float], list[float]] | None:
    """Where ``other`` cuts frame ``index`` of ``series``: ([x0, x1], [y0, y1]) in the
    viewport's image coordinates (pixel c covers [c, c+1)), or None when parallel/unknown."""
    found = slice_plane(series, index)
    if found is None:
        return None
    here, dy, dx = found
    seg = here.intersection(other)
    if seg is None:
        return None
    (r0, c0), (r1, c1) = seg
    return [c0 / dx + 0.5, c1 / dx + 0.5], [r0 / dy + 0.5, r1 / dy + 0.5]


def same_frame_of_reference(a: Any, b: Any) -> bool:
    """Whether two series share a known Frame of Reference UID.

    Two series of one study may have different frames of reference (a re-positioned patient,
    another scanner, a localizer); without a shared, known UID their positions are not
    comparable, so no line is drawn rather than a misplaced one.
    """
    uid = getattr(a, "frame_of_reference_uid", "")
    return bool(uid) and uid == getattr(b, "frame_of_reference_uid", "")


class ReferenceLines:
    """Keeps the reference lines of a main window's viewports up to date."""

    def __init__(self, window: Any, color: str = "#e5c07b") -> None:
        self.w = window
        self.enabled = True
        self.items: dict[int, pg.PlotCurveItem] = {}
        self.pen = pg.mkPen(QColor(color), width=1.2)
        for vp in window.grid.viewports:
            item = pg.PlotCurveItem(pen=self.pen)
            item.setZValue(15)
            item.setParentItem(vp.group)
            self.items[id(vp)] = item
            vp.index_changed.connect(lambda *_: self.update())
            vp.series_changed.connect(lambda *_: self.update())
        window.active_viewport_changed.connect(lambda *_: self.update())

    def update(self) -> None:
        """Redraw: the active viewport's slice on every other visible viewport."""
        src = self.w.active_viewport()
        found = slice_plane(src.series, src.index) if self.enabled else None
        for vp in self.w.grid.viewports:
            item = self.items[id(vp)]
            line = None
            if (
                found is not None
                and vp is not src
                and vp.isVisible()
                and vp.series is not None
                and same_frame_of_reference(vp.series, src.series)
            ):
                line = line_on(vp.series, vp.index, found[0])
            if line is None:
                item.setData([], [])
            else:
                item.setData(*line)

    def line_of(self, vp: Any) -> tuple[np.ndarray, np.ndarray]:
        """The drawn line on a viewport (tests)."""
        x, y = self.items[id(vp)].getData()
        return (np.asarray(x if x is not None else []), np.asarray(y if y is not None else []))


def install(window: Any) -> ReferenceLines:
    """Reference lines for the main window's viewports."""
    lines = ReferenceLines(window)
    window.reference_lines = lines
    return lines
