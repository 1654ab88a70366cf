"""The MPR layout: axial, coronal and sagittal reformats linked by a crosshair, plus the original.

Each reformat pane shows :meth:`app.dicom.mpr.Volume.sample` (or ``slab``) of its plane through
the crosshair point. The coloured lines in a pane are the other two planes cut through it
(reference lines); they cross at the crosshair point.

Mouse, in a reformat pane:
* left click / drag: move the crosshair point (the other planes follow);
* Shift + left drag: rotate the crosshair, which tilts the other two planes about this pane's
  normal (oblique MPR);
* wheel: move this plane along its normal (one voxel per notch); Ctrl + wheel: zoom;
* right drag: window (horizontal: width, vertical: centre).

The slab bar sets MIP / MinIP / average over a thickness in mm for all three panes. The fourth
pane is a normal :class:`app.gui.viewport.Viewport` on the original slices, with the three
planes drawn on it as reference lines.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.gui.viewport import Viewport, window_to_uint8

if TYPE_CHECKING:  # the reformat stack (pydicom, codecs) loads on first use, not at start-up
    from app.dicom.mpr import Plane, Volume

#: pane name -> (row, col) directions in LPS (see app.dicom.mpr) and its colour
PANES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], str]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), "#e5c07b"),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), "#61afef"),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0), "#98c379"),
}
PROJECTIONS = (("Thin", ""), ("MIP", "mip"), ("MinIP", "minip"), ("Average", "avg"))


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: ``v`` rotated by ``angle`` (radians) about unit ``axis``."""
    c, s = math.cos(angle), math.sin(angle)
    return v * c + np.cross(axis, v) * s + axis * float(np.dot(axis, v)) * (1 - c)


class _PaneBox(pg.ViewBox):
    """A view box that turns mouse input into crosshair, rotation, scroll and window moves."""

    def __init__(self, pane: MprPane) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.pane = pane
        self._rotate_from: QPointF | None = None
        self._window_from: tuple[QPointF, float, float] | None = None

    def mouseClickEvent(self, ev: Any) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            if not self.pane.complete_angle(float(p.x()), float(p.y())):
                self.pane.clicked(float(p.x()), float(p.y()))

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        if ev.button() == Qt.MouseButton.LeftButton:
            if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                if ev.isStart():
                    self._rotate_from = p
                elif self._rotate_from is not None:
                    self.pane.rotate_drag(self._rotate_from, p)
                    self._rotate_from = p
            elif self.pane.view.measure_tool:
                start = self.mapSceneToView(ev.buttonDownScenePos())
                self.pane.draw(
                    ev.isStart(),
                    ev.isFinish(),
                    (float(start.x()), float(start.y())),
                    (float(p.x()), float(p.y())),
                )
            else:
                self.pane.clicked(float(p.x()), float(p.y()))
        elif ev.button() == Qt.MouseButton.RightButton:
            view = self.pane.view
            if ev.isStart():
                self._window_from = (ev.screenPos(), view.center, view.width_)
            elif self._window_from is not None:
                start, c0, w0 = self._window_from
                d = ev.screenPos() - start
                view.set_window(c0 - d.y() * view.wl_step, max(1.0, w0 + d.x() * view.wl_step))
        elif ev.button() == Qt.MouseButton.MiddleButton:
            super().mouseDragEvent(ev, axis)

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        self.pane.step_slices(1 if delta > 0 else -1)


class MprPane(QWidget):
    """One reformat pane (axial, coronal or sagittal, possibly rotated to an oblique plane)."""

    def __init__(self, name: str, view: MprView) -> None:
        super().__init__(view)
        self.name = name
        self.view = view
        self.row = np.asarray(PANES[name][0], dtype=float)
        self.col = np.asarray(PANES[name][1], dtype=float)
        self.color = PANES[name][2]
        self.plane: Plane | None = None
        self.image_data: np.ndarray | None = None
        self.shown: np.ndarray | None = None
        self.graphics = pg.GraphicsView(self)
        self.graphics.setBackground("k")
        self.vb = _PaneBox(self)
        self.graphics.setCentralItem(self.vb)
        self.image = pg.ImageItem()
        self.vb.addItem(self.image)
        self.lines: dict[str, pg.PlotCurveItem] = {}
        for other, (_, _, color) in PANES.items():
            if other == name:
                continue
            line = pg.PlotCurveItem(pen=pg.mkPen(QColor(color), width=1.2))
            line.setZValue(10)
            self.vb.addItem(line, ignoreBounds=True)
            self.lines[other] = line
        self.title = QLabel(self)
        self.title.setStyleSheet(
            f"color: {self.color}; background: transparent; font-weight: bold;"
        )
        self.letters = {k: QLabel(self) for k in ("left", "right", "top", "bottom")}
        for lab in self.letters.values():
            lab.setStyleSheet("color: #e8e8e8; background: transparent; font-weight: bold;")
        self.info = QLabel(self)
        self.info.setStyleSheet("color: #c8c8c8; background: transparent;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.graphics)
        self.setStyleSheet(f"MprPane {{ border: 1px solid {self.color}; }}")
        self._fitted = False
        self.measurements: list[Any] = []  # app.gui.measure.Measurement, bound to a plane
        self._drawing: Any = None
        self._pending: Any = None  # an angle or Cobb angle waiting for its second arm / line
        self._cobb_first: list[tuple[float, float]] | None = None  # while drawing a Cobb line 2

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row, self.col)

    def resizeEvent(self, ev: Any) -> None:
        super().resizeEvent(ev)
        self._place_labels()

    def _place_labels(self) -> None:
        w, h = self.width(), self.height()
        for lab in [self.title, self.info, *self.letters.values()]:
            lab.adjustSize()
        self.title.move(6, 4)
        self.info.move(6, h - self.info.height() - 4)
        self.letters["left"].move(6, (h - self.letters["left"].height()) // 2)
        self.letters["right"].move(
            w - self.letters["right"].width() - 6, (h - self.letters["right"].height()) // 2
        )
        self.letters["top"].move((w - self.letters["top"].width()) // 2, 4)
        self.letters["bottom"].move(
            (w - self.letters["bottom"].width()) // 2, h - self.letters["bottom"].height() - 4
        )

    # -- interaction ---------------------------------------------------------------------------
    def to_patient(self, x: float, y: float) -> np.ndarray:
        """Patient position of view point (x, y) (image coordinates; pixel c covers [c, c+1))."""
        assert self.plane is not None
        return self.plane.point(y - 0.5, x - 0.5)

    def to_view(self, p: np.ndarray) -> tuple[float, float]:
        assert self.plane is not None
        r, c = self.plane.pixel(p)
        return c + 0.5, r + 0.5

    def clicked(self, x: float, y: float) -> None:
        if self.plane is not None:
            self.view.set_center(self.to_patient(x, y))

    def step_slices(self, steps: int) -> None:
        if self.view.volume is None:
            return
        step = self.view.volume._axis_step(self.normal)
        self.view.set_center(self.view.center_point + steps * step * self.normal)

    def rotate_drag(self, a: QPointF, b: QPointF) -> None:
        if self.plane is None:
            return
        c = self.to_patient(*self.to_view(self.view.center_point))
        da = self.to_patient(a.x(), a.y()) - c
        db = self.to_patient(b.x(), b.y()) - c
        if np.linalg.norm(da) < 1e-3 or np.linalg.norm(db) < 1e-3:
            return
        n = self.normal
        angle = math.atan2(float(np.dot(np.cross(da, db), n)), float(np.dot(da, db)))
        self.view.rotate(self.name, math.degrees(angle))

    # -- drawing -------------------------------------------------------------------------------
    def refresh(self) -> None:
        v = self.view
        if v.volume is None:
            return
        self.plane = v.volume.plane(self.row, self.col, center=v.center_point, kind=self.name)
        if v.projection and v.thickness > 0:
            self.image_data = v.volume.slab(self.plane, v.thickness, v.projection)
        else:
            self.image_data = v.volume.sample(self.plane)
        self.repaint_image()
        self.image.setRect(0, 0, self.plane.columns, self.plane.rows)
        if not self._fitted:
            self.vb.setRange(
                xRange=(0, self.plane.columns), yRange=(0, self.plane.rows), padding=0.02
            )
            self._fitted = True
        self.draw_lines()
        self.refresh_measurements()
        letters = self.plane.letters()
        for k, lab in self.letters.items():
            lab.setText(letters[k])
        oblique = any(abs(a - b) > 1e-6 for a, b in zip(self.row, PANES[self.name][0])) or any(
            abs(a - b) > 1e-6 for a, b in zip(self.col, PANES[self.name][1])
        )
        self.title.setText(self.name.capitalize() + (" (oblique)" if oblique else ""))
        slab = (
            f"  { {b: a for a, b in PROJECTIONS}[v.projection] } {v.thickness:g} mm"
            if v.projection and v.thickness > 0
            else ""
        )
        self._slab_text = slab
        self.update_info()

    def update_info(self) -> None:
        v = self.view
        if self.plane is None:
            return
        self.info.setText(
            f"{self.plane.position:.1f} mm{getattr(self, '_slab_text', '')}  "
            f"W {v.width_:.0f} C {v.center:.0f}"
        )
        self._place_labels()

    # -- measurements on the reformat (bound to this plane) -------------------------------------
    def image_key(self) -> Any:
        """The :class:`ImageKey` of the plane shown (measurements made here belong to it)."""
        from app.dicom.measurements import ImageKey

        s = self.view.series
        if self.plane is None or s is None:
            return None
        return ImageKey.of_plane(s.study_uid, s.series_uid, self.plane)

    def add_measurement(
        self, kind: str, points: list[tuple[float, float]], key: Any = None, stored_id: str = ""
    ) -> Any:
        """A measurement on this pane (image coordinates of the reformat)."""
        from app.gui.measure import Measurement

        m = Measurement(kind, points, self.image, self.vb, "#ffb74d", self._measure)
        m.key = key or self.image_key()
        m.stored_id = stored_id
        # a handle dragged later is stored once, when released (not on every move)
        m.roi.sigRegionChangeFinished.connect(
            lambda *_: (
                self.view.store_measurement(m)
                if m is not self._drawing and m is not self._pending
                else None
            )
        )
        self.measurements.append(m)
        self._measure(m)
        return m

    def draw(
        self, start: bool, finish: bool, p0: tuple[float, float], p1: tuple[float, float]
    ) -> None:
        """A left drag with the measure tool (as in the viewport): a length or ROI; an angle's
        first arm (a click then places the second); a Cobb angle's first line, then its second."""
        if self.plane is None:
            return
        tool = self.view.measure_tool
        if start or self._drawing is None:
            pending, self._pending = self._pending, None
            if tool == "cobb" and pending is not None and pending.kind == "cobb":
                self._cobb_first, self._drawing = pending.points()[:2], pending
            else:
                self._discard(pending)
                self._cobb_first = None
                self._drawing = self.add_measurement(tool, [p0, p1])
        first = self._cobb_first
        pts = (
            [*first, p0, p1]
            if first
            else {"angle": [p0, p1, p1], "cobb": [p0, p1, p1, p1]}.get(tool, [p0, p1])
        )
        self._drawing.set_points(pts)
        self._measure(self._drawing)
        if finish:
            m, self._drawing, self._cobb_first = self._drawing, None, None
            if m.kind in ("angle", "cobb") and first is None:
                self._pending = m  # completed by a click (angle) or a second drag (Cobb)
            else:
                self.view.store_measurement(m)

    def complete_angle(self, x: float, y: float) -> bool:
        """A click places a pending angle's second arm at (x, y); False when none is pending
        here (the click then moves the crosshair)."""
        m = self._pending
        if m is None or m.kind != "angle":
            return False
        self._pending = None
        if not self.on_plane(m.key):  # the plane moved away from the first arm
            self._discard(m)
            return False
        pts = m.points()
        m.set_points([pts[0], pts[1], (x, y)])
        self._measure(m)
        self.view.store_measurement(m)
        return True

    def cancel_pending(self) -> None:
        """Drop an angle or Cobb angle whose second arm or line was not drawn."""
        pending, self._pending = self._pending, None
        self._discard(pending)

    def _discard(self, m: Any) -> None:
        if m is not None and m in self.measurements:
            m.remove()
            self.measurements.remove(m)

    def on_plane(self, key: Any) -> bool:
        """True when a measurement's plane (an ImageKey) is the plane this pane shows: the same
        plane, or a parallel one of the same series less than half a scroll step away (the
        plane a reader reaches by scrolling; imported measurements sit anywhere in between)."""
        mine = self.image_key()
        if mine is None or key is None or not key.is_reformat:
            return False
        if mine.key() == key.key():
            return True
        if key.series_uid != mine.series_uid or self.plane is None or self.view.volume is None:
            return False
        from app.dicom.mpr import Plane

        other = Plane.from_json(json.loads(key.plane))
        if abs(float(np.dot(other.normal, self.normal))) < 0.9999:
            return False
        step = self.view.volume._axis_step(self.normal)
        return abs(self.plane.distance(other.origin)) < step / 2

    def _measure(self, m: Any) -> None:
        here = self.on_plane(m.key)
        m.roi.setVisible(here)
        m.label.setVisible(here)
        if not here or self.plane is None:
            return  # shown and measured only on its own plane
        s = self.plane.spacing
        m.compute(
            self.image_data,
            (s, s),
            "HU" if self.view.volume is not None and self.view.volume.modality == "CT" else "",
        )
        m.place_label(self.image)

    def refresh_measurements(self) -> None:
        for m in self.measurements:
            self._measure(m)

    def repaint_image(self) -> None:
        if self.image_data is None:
            return
        v = self.view
        self.shown = window_to_uint8(self.image_data, v.center, v.width_)
        self.image.setImage(self.shown, autoLevels=False, levels=None)

    def draw_lines(self) -> None:
        if self.plane is None:
            return
        for other, line in self.lines.items():
            pane = self.view.panes[other]
            if pane.plane is None:
                line.setData([], [])
                continue
            seg = self.plane.intersection(pane.plane)
            if seg is None:
                line.setData([], [])
                continue
            (r0, c0), (r1, c1) = seg
            line.setData([c0 + 0.5, c1 + 0.5], [r0 + 0.5, r1 + 0.5])


class MprView(QWidget):
    """Three linked reformat panes and the original series (2x2), with slab controls.

    Signals
    -------
    center_changed(object)
        The crosshair point (patient mm, numpy array) moved.
    """

    center_changed = Signal(object)
    _restored = Signal(object)  # reformat measurements loaded (from the I/O thread)

    def __init__(self, settings: Any = None, parent: QWidget | None = None) -> None:
        """Long because it lays out the three linked panes and their controls; the behaviour lives in the pane methods."""

        super().__init__(parent)
        self.setObjectName("MprView")
        self.volume: Volume | None = None
        self.series: Any = None
        self.center_point = np.zeros(3)
        self.center, self.width_ = 40.0, 400.0
        self.wl_step = 1.0
        self.projection = ""
        self.thickness = 10.0
        # "", "length", "ellipse", "rect", "angle" or "cobb": left drag draws it
        self.measure_tool = ""
        self.library: Any = None  # callable returning the study library (set by install)
        self.panes = {name: MprPane(name, self) for name in PANES}
        from app.gui.settings import Settings

        self.original = Viewport(settings or Settings(), self)
        self.ref_lines: dict[str, pg.PlotCurveItem] = {}
        for name, (_, _, color) in PANES.items():
            item = pg.PlotCurveItem(pen=pg.mkPen(QColor(color), width=1.2))
            item.setZValue(15)
            item.setParentItem(self.original.group)
            self.ref_lines[name] = item
        self.original.index_changed.connect(lambda *_: self._draw_reference_lines())
        self._restored.connect(self._on_restored)

        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.addWidget(QLabel(self.tr("Slab")))
        self.projection_box = QComboBox()
        for label, key in PROJECTIONS:
            self.projection_box.addItem(self.tr(label), key)
        self.projection_box.currentIndexChanged.connect(self._slab_changed)
        bar.addWidget(self.projection_box)
        self.thickness_box = QDoubleSpinBox()
        self.thickness_box.setRange(0.0, 200.0)
        self.thickness_box.setSingleStep(1.0)
        self.thickness_box.setSuffix(" mm")
        self.thickness_box.setValue(self.thickness)
        self.thickness_box.valueChanged.connect(self._slab_changed)
        bar.addWidget(self.thickness_box)
        bar.addWidget(QLabel(self.tr("Measure")))
        self.measure_box = QComboBox()
        for label, key in (
            (self.tr("Off"), ""),
            (self.tr("Length"), "length"),
            (self.tr("Ellipse ROI"), "ellipse"),
            (self.tr("Rectangle ROI"), "rect"),
            (self.tr("Angle"), "angle"),
            (self.tr("Cobb angle (two lines)"), "cobb"),
        ):
            self.measure_box.addItem(label, key)
        self.measure_box.currentIndexChanged.connect(self._tool_changed)
        bar.addWidget(self.measure_box)
        self.reset_button = QPushButton(self.tr("Reset planes"))
        self.reset_button.clicked.connect(self.reset)
        bar.addWidget(self.reset_button)
        self.hint = QLabel(
            self.tr(
                "Click: move crosshair · Shift+drag: rotate (oblique) · "
                "Wheel: scroll · Right drag: window"
            )
        )
        self.hint.setStyleSheet("color: #9a9a9a;")
        bar.addWidget(self.hint, 1)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        grid.addWidget(self.panes["axial"], 0, 0)
        grid.addWidget(self.panes["coronal"], 0, 1)
        grid.addWidget(self.panes["sagittal"], 1, 0)
        grid.addWidget(self.original, 1, 1)
        for i in range(2):  # four equal panes
            grid.setColumnStretch(i, 1)
            grid.setRowStretch(i, 1)
        for w in [*self.panes.values(), self.original]:
            w.setMinimumSize(120, 120)
            w.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        lay.addLayout(grid, 1)

    # -- state ---------------------------------------------------------------------------------
    def set_volume(self, volume: Volume, series: Any = None) -> None:
        """Show a volume (built on a worker: :class:`app.dicom.mpr.Volume`) and its series."""
        self.volume = volume
        self.series = series
        self.center, self.width_ = volume.window()
        self.wl_step = max(self.width_ / 400.0, 0.1)
        if series is not None:
            self.original.set_series(series, series.count // 2)
        for pane in self.panes.values():
            pane._fitted = False
            for m in pane.measurements:
                m.remove()
            pane.measurements = []
            pane._pending = pane._drawing = None
        self.reset()
        self._restore_measurements()

    def _tool_changed(self, *args: Any) -> None:
        self.measure_tool = str(self.measure_box.currentData() or "")
        for pane in self.panes.values():
            pane.cancel_pending()

    # -- reformat measurements in the library ------------------------------------------------
    def store_measurement(self, m: Any) -> None:
        """Keep a measurement drawn on a reformat with the study (background thread)."""
        from app.dicom.measurements import Measurement as Stored
        from app.dicom.measurements import save_measurement
        from app.gui.measure_binding import _IO, _n

        if m.key is None or not m.values:
            return
        n = _n(m)
        stored = Stored(
            kind=m.kind,
            points=tuple(m.points()[:n]),
            image=m.key,
            values=dict(m.values),
            id=m.stored_id or Stored(m.kind, tuple(m.points()[:n]), m.key).id,
        )
        m.stored_id = stored.id
        library = self.library
        if library is not None:
            _IO.submit(lambda: save_measurement(library(), stored))

    def _restore_measurements(self) -> None:
        """Measurements stored on reformats of this series come back (each on its plane)."""
        from app.dicom.measurements import load_measurements
        from app.gui.measure_binding import _IO

        s, library = self.series, self.library
        if s is None or library is None:
            return

        def done(found: list[Any]) -> None:
            for stored in found:
                if (
                    not stored.image.is_reformat
                    or stored.image.series_uid != s.series_uid
                    or stored.kind not in ("length", "ellipse", "rect", "angle", "cobb")
                ):
                    continue
                placed = self._pane_for(stored)
                if placed is None:
                    continue
                pane, key, points = placed
                if any(m.stored_id == stored.id for m in pane.measurements):
                    continue
                pane.add_measurement(stored.kind, points, key=key, stored_id=stored.id)

        future = _IO.submit(lambda: load_measurements(library(), s.study_uid))
        future.add_done_callback(
            lambda f: self._restored.emit(f.result() if not f.exception() else [])
        )
        self._restore_done = done

    def _pane_for(self, stored: Any) -> tuple[Any, Any, list[tuple[float, float]]] | None:
        """The pane, plane key and image points of a stored reformat measurement.

        One drawn here keeps its plane. One imported (a TID 1500 region in patient coordinates,
        :func:`app.reporting.annotations.reformat_plane_of`) goes onto the pane whose plane is
        parallel to it, moved onto that pane's grid (``Volume.plane`` at its position)."""
        from app.dicom.measurements import ImageKey
        from app.dicom.mpr import Plane

        plane = Plane.from_json(json.loads(stored.image.plane))
        names = [plane.kind] + [n for n in self.panes if n != plane.kind]
        pane = next(
            (
                self.panes[n]
                for n in names
                if n in self.panes
                and self.panes[n].plane is not None
                and abs(float(np.dot(self.panes[n].normal, plane.normal))) >= 0.9999
            ),
            None,
        )
        if pane is None or self.volume is None:
            return None
        points = [tuple(p) for p in stored.points]
        xyz = [plane.point(y - 0.5, x - 0.5) for x, y in points]
        target = self.volume.plane(pane.row, pane.col, center=xyz[0], kind=pane.name)
        if target.to_json() == plane.to_json() or stored.source == "hilum":
            return pane, stored.image, points  # drawn on this pane's grid
        moved = [(c + 0.5, r + 0.5) for r, c in (target.pixel(p) for p in xyz)]
        s = self.series
        return pane, ImageKey.of_plane(s.study_uid, s.series_uid, target), moved

    def _on_restored(self, found: list[Any]) -> None:
        callback = getattr(self, "_restore_done", None)
        if callback is not None:
            callback(found)

    def reset(self) -> None:
        """Standard axial/coronal/sagittal planes through the volume centre."""
        for name, pane in self.panes.items():
            pane.row = np.asarray(PANES[name][0], dtype=float)
            pane.col = np.asarray(PANES[name][1], dtype=float)
        if self.volume is not None:
            self.set_center(self.volume.center())

    def set_center(self, point: np.ndarray) -> None:
        """Move the crosshair point (patient mm), clamped to the volume's bounds."""
        if self.volume is None:
            return
        corners = self.volume.corners()
        self.center_point = np.clip(
            np.asarray(point, dtype=float), corners.min(axis=0), corners.max(axis=0)
        )
        self.refresh()
        self.center_changed.emit(self.center_point.copy())

    def rotate(self, pane_name: str, degrees: float) -> None:
        """Tilt the other two planes about ``pane_name``'s normal (oblique MPR)."""
        axis = self.panes[pane_name].normal
        angle = math.radians(degrees)
        for name, pane in self.panes.items():
            if name == pane_name:
                continue
            pane.row = _rotate(pane.row, axis, angle)
            pane.col = _rotate(pane.col, axis, angle)
        self.refresh()

    def set_window(self, center: float, width: float) -> None:
        self.center, self.width_ = float(center), max(float(width), 1.0)
        for pane in self.panes.values():
            pane.repaint_image()
            pane.update_info()

    def set_slab(self, projection: str, thickness: float) -> None:
        """MIP ("mip"), MinIP ("minip"), average ("avg") or thin ("") over ``thickness`` mm."""
        self.projection_box.blockSignals(True)
        self.thickness_box.blockSignals(True)
        self.projection_box.setCurrentIndex(
            next(i for i, (_, k) in enumerate(PROJECTIONS) if k == projection)
        )
        self.thickness_box.setValue(thickness)
        self.projection_box.blockSignals(False)
        self.thickness_box.blockSignals(False)
        self._slab_changed()

    def _slab_changed(self, *args: Any) -> None:
        self.projection = str(self.projection_box.currentData() or "")
        self.thickness = float(self.thickness_box.value())
        self.refresh()

    def refresh(self) -> None:
        """Recompute the three reformats and their reference lines."""
        for pane in self.panes.values():
            pane.refresh()
        for pane in self.panes.values():  # lines need every plane
            pane.draw_lines()
        self._draw_reference_lines()

    def _draw_reference_lines(self) -> None:
        """The three planes cut through the original slice shown in the fourth pane."""
        from app.gui.reference_lines import line_on

        s = self.original.series
        for name, pane in self.panes.items():
            item = self.ref_lines[name]
            line = line_on(s, self.original.index, pane.plane) if pane.plane is not None else None
            if line is None:
                item.setData([], [])
            else:
                item.setData(*line)


def build_volume(paths: list[str], progress: Any = None) -> Volume:
    """Read and decode a series into a :class:`Volume` (run on a worker)."""
    from app.dicom.mpr import Volume
    from app.dicom.series import load_series

    series = load_series(paths, progress=progress)
    return Volume(series.main, progress=progress)


def install(window: Any) -> None:
    """Add the MPR layout to the main window: View ▸ MPR (Ctrl+M) shows the active series as
    three linked reformats plus the original; the same action goes back to the viewports."""
    from PySide6.QtGui import QAction, QKeySequence

    # the view (three panes and a viewport: four graphics scenes) is built when first shown,
    # not with the window (start-up time, issue 17)
    window.mpr_view = None

    def mpr_view() -> MprView:
        if window.mpr_view is None:
            view = MprView(window.settings, window)
            view.library = window.library
            window.mpr_view = view
            window.stack.addWidget(view)
        return window.mpr_view

    action = QAction(window.tr("MPR (3 planes + original)"), window)
    action.setShortcut(QKeySequence("Ctrl+M"))
    action.setCheckable(True)
    window.act_mpr = action

    def toggle(checked: bool) -> None:
        if not checked:
            window.stack.setCurrentWidget(window.grid)
            return
        series = window.active_viewport().series
        paths = [f.path for f in series.frames if f.path] if series is not None else []
        if series is None or series.count < 2 or not paths:
            action.setChecked(False)
            window.show_status(window.tr("MPR needs a series of several slices."))
            return

        def done(volume: Volume) -> None:
            view = mpr_view()
            view.set_volume(volume, series)
            window.stack.setCurrentWidget(view)

        def failed(exc: BaseException) -> None:
            action.setChecked(False)
            window.show_error(exc)

        window.run_in_background(
            build_volume, sorted(set(paths), key=paths.index), on_result=done, on_error=failed
        )

    action.toggled.connect(toggle)
    for menu_action in window.menuBar().actions():
        if menu_action.menu() is not None and menu_action.text().replace("&", "") in (
            "View",
            window.tr("View"),
        ):
            menu_action.menu().addSeparator()
            menu_action.menu().addAction(action)
            break
    window.addAction(action)
