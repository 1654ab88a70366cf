"""The image viewport: one series, slice scrolling, window/level, zoom/pan, measurements, overlays.

Coordinates
-----------
The image, the AI overlay and the measurements are children of one ``pg.ItemGroup`` (the
*image group*) whose transform holds the pixel aspect ratio, rotation and flips. Inside the group,
x is the column and y the row of the source pixel grid (pixel (r, c) covers ``[c, c+1) x [r, r+1)``),
so overlays and measurements follow zoom, pan, rotation, flips and slices without conversion.

Mouse
-----
wheel: slices (ctrl+wheel: zoom about the cursor); right-drag: window/level (right = wider window,
down = higher centre; ``wl_step`` modality units per screen pixel); middle-drag: pan; left-drag:
the current tool (pointer/select, window, pan, zoom, length, rect, ellipse, angle).

The GUI thread never decodes: frames come from the series' :class:`~app.gui.frames.FrameProvider`.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Callable, NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontInfo,
    QFontMetrics,
    QImage,
    QKeyEvent,
    QPainter,
    QTransform,
)
from PySide6.QtWidgets import QFrame, QHBoxLayout, QScrollBar, QSizePolicy, QWidget

from app.gui.annotations import direction_letters, format_age, format_date, format_name
from app.gui.frames import FrameProvider, WindowedFrames
from app.gui.measure import Measurement
from app.gui.presets import WindowPreset, preset_for_key, presets_for, presets_from_text
from app.gui.series import SeriesData
from app.gui.settings import Settings

from app.dicom.windowing import auto_window, window_to_uint8  # noqa: E402,F401 - the one windowing path

log = logging.getLogger(__name__)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, useNumba=False)

#: windowed uint8 frames kept for the current window (cine and scrolling back reuse them)
DISPLAY_CACHE_BYTES = 256 << 20

from app.workflow.view_state import MAX_ZOOM, MIN_ZOOM, TOOLS, ViewState  # noqa: E402 - the pure view state


_TEXT = QColor("#e8e8e8")
_SHADOW = QColor(0, 0, 0, 220)
_WARN = QColor("#ffab40")
_AI = QColor("#80deea")
_ACCENT = QColor("#ffd54a")


class _ImageItem(pg.ImageItem):
    """ImageItem that smooths when minified and reports its first paint."""

    def __init__(self, owner: "Viewport") -> None:
        super().__init__()
        self._owner = owner
        self.smooth = False

    def paint(self, painter: QPainter, *args: Any) -> None:
        t = painter.worldTransform()
        scale = math.hypot(t.m11(), t.m12())
        painter.setRenderHint(
            QPainter.RenderHint.SmoothPixmapTransform, self.smooth or scale < 0.999
        )
        super().paint(painter, *args)
        if self.image is not None:
            self._owner._painted()


class _ViewBox(pg.ViewBox):
    """ViewBox whose mouse handling is the viewport's (tools, W/L, slices)."""

    def __init__(self, owner: "Viewport") -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._owner = owner
        self.setMouseEnabled(False, False)
        self.disableAutoRange()

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - Qt name
        self._owner._wheel(ev)

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        self._owner._drag(ev)

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802
        self._owner._click(ev)


class _GraphicsView(pg.GraphicsView):
    """GraphicsView that paints the corner annotations in the same pass as the image."""

    def __init__(self, owner: "Viewport") -> None:
        super().__init__(background="k")
        self._owner = owner
        self.setViewportUpdateMode(self.ViewportUpdateMode.FullViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # the scene paints every pixel (black background): Qt need not paint the styled parents
        # beneath it first, which saves about a millisecond per slice
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        super().drawForeground(painter, rect)
        painter.save()
        painter.resetTransform()
        self._owner._paint_annotations_cached(
            painter, self.viewport().width(), self.viewport().height()
        )
        painter.restore()


def _remembered(cache: dict[Any, Any], key: Any, limit: int, make: Callable[[], Any]) -> Any:
    """``cache[key]``, made by ``make()`` the first time; the cache starts over past ``limit``
    entries (the overlay's lines and elisions repeat from slice to slice; a long session of
    changing texts must not grow it for ever)."""
    value = cache.get(key)
    if value is None:
        if len(cache) > limit:
            cache.clear()
        value = cache[key] = make()
    return value


def _render_line(text: str, font: QFont, color: QColor) -> QImage:
    """One line of overlay text in ``color`` over a 1-pixel shadow, on a transparent image
    (QImage and QPainter only: safe on a worker thread)."""
    fm = QFontMetrics(font)
    width = fm.horizontalAdvance(text)
    img = QImage(
        max(1, width + 2), max(1, fm.height() + 2), QImage.Format.Format_ARGB32_Premultiplied
    )
    img.fill(Qt.GlobalColor.transparent)
    q = QPainter(img)
    q.setFont(font)
    q.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    y = fm.ascent()
    q.setPen(_SHADOW)
    q.drawText(QPointF(1, y + 1), text)
    q.setPen(color)
    q.drawText(QPointF(0, y), text)
    q.end()
    return img


class _OverlayBase(NamedTuple):
    """The overlay of a slice laid out, less its own corner (bottom left): what another slice
    with the same inputs but its index reuses around its own lines."""

    blocks: list[tuple[str, list[tuple[QPointF, QImage]]]]  # by kind, in painting order
    left: float  # the bottom-left corner's place, line height and lines
    top: float
    width: float
    lh: int
    per_half: int
    n_lines: int
    fm: QFontMetrics  # the painter's, on the GUI thread
    font: QFont
    fkey: str
    tail: tuple[str, ...]  # the corner's lines after the slice's own (thickness, window)

    def around(self, own: list[tuple[QPointF, QImage]]) -> list[tuple[QPointF, QImage]]:
        """All blits, with ``own`` as the bottom-left corner's."""
        out: list[tuple[QPointF, QImage]] = []
        for kind, ops in self.blocks:
            out += own if kind == "bl" else ops
        return out


def _composed(blits: list[tuple[QPointF, QImage]]) -> tuple[QPointF, QImage]:
    """Several image blits as one: the images drawn, in order, on a transparent image placed at
    a whole pixel (so each keeps the pixel it would have been drawn at)."""
    left = math.floor(min(at.x() for at, _ in blits))
    top = math.floor(min(at.y() for at, _ in blits))
    right = math.ceil(max(at.x() + im.width() for at, im in blits))
    bottom = math.ceil(max(at.y() + im.height() for at, im in blits))
    out = QImage(right - left + 1, bottom - top + 1, QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    q = QPainter(out)
    for at, im in blits:
        q.drawImage(QPointF(at.x() - left, at.y() - top), im)
    q.end()
    return QPointF(left, top), out


def _slice_lines(series: SeriesData, index: int, im: str, pos: str) -> list[str]:
    """The overlay lines of slice ``index`` alone: ``im`` ("Im %1 / %2") with its number and
    the count, then ``pos`` ("Pos %1 mm") with its slice location or position when known."""
    lines = [im.replace("%1", str(index + 1)).replace("%2", str(series.count))]
    ref = series.frames[index] if 0 <= index < series.count else None
    where = (
        ref.slice_location
        if ref is not None and ref.slice_location is not None
        else series.slice_position(index)
    )
    if where is not None:
        lines.append(pos.replace("%1", f"{where:.1f}"))
    return lines


def _elide(text: str, fm: QFontMetrics, width: float) -> str:
    """``text`` fitted into ``width`` pixels: UIDs (digits and dots) lose their middle, the rest
    its end."""
    if fm.horizontalAdvance(text) <= width:
        return text
    uid_like = len(text) > 16 and sum(ch.isdigit() or ch == "." for ch in text) > 0.8 * len(text)
    mode = Qt.TextElideMode.ElideMiddle if uid_like else Qt.TextElideMode.ElideRight
    return fm.elidedText(text, mode, int(width))


class Viewport(QFrame):
    """One image viewport.

    Signals
    -------
    index_changed(int)
        The displayed slice changed.
    window_changed(float, float)
        Window centre and width changed.
    series_changed(object)
        A new series (or None) is shown.
    activated(object)
        The user clicked in this viewport (it becomes the active one).
    image_painted()
        A new image was painted (once per newly displayed frame).
    measurements_changed()
        A measurement was added, changed or deleted.
    status(str)
        A short text for the status bar (value under the cursor, tool hints).
    """

    index_changed = Signal(int)
    window_changed = Signal(float, float)
    series_changed = Signal(object)
    activated = Signal(object)
    image_painted = Signal()
    measurements_changed = Signal()
    measurement_removed = Signal(object)  # the reader deleted one (not a series change)
    status = Signal(str)
    series_dropped = Signal(str)

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        """Long because the view, its image and overlay items, the scroll bar and the per-slice
        caches (windowed frames, overlay lines) are made in the order they depend on each other."""
        super().__init__(parent)
        self.setObjectName("ViewportFrame")
        self.setProperty("active", False)
        self.settings = settings or Settings()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setAcceptDrops(True)  # series dragged from the study browser

        self.view = _GraphicsView(self)
        self.vb = _ViewBox(self)
        self.view.setCentralItem(self.vb)
        self.group = pg.ItemGroup()
        self.vb.addItem(self.group, ignoreBounds=True)
        self.image = _ImageItem(self)
        self.image.setParentItem(self.group)
        self.overlay_item = pg.ImageItem()
        self.overlay_item.setParentItem(self.group)
        self.overlay_item.setZValue(10)
        self.overlay_item.setOpacity(self.settings.overlay_opacity)
        self.overlay_item.hide()

        self.slider = QScrollBar(Qt.Orientation.Vertical, self)
        self.slider.setObjectName("ViewportSlider")
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.valueChanged.connect(self.set_index)
        self.slider.hide()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)  # room for the 2 px active-viewport frame
        lay.setSpacing(0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.slider)

        self.series: SeriesData | None = None
        self.provider: FrameProvider | None = None
        #: the pure view state this viewport renders: image index, window, invert, screen
        #: orientation, zoom/pan, overlay visibility/opacity, tool (:meth:`_apply_zoom_pan` puts
        #: zoom and pan into the view box)
        self.state = ViewState(window=(0.5, 1.0))
        self._has_index = True
        self.frame: np.ndarray | None = None  # the frame on screen (modality values)
        self.display: np.ndarray | None = None  # the same, windowed to uint8 as painted
        #: the frames windowed as painted (made ahead of the scroll on a worker)
        self.windowed = WindowedFrames(DISPLAY_CACHE_BYTES)
        self._dragging = False  # a mouse drag (window, pan, zoom, drawing) is going on
        self._display_state: tuple[str, float, float, bool] | None = None
        self._shown_key: tuple[str, int] | None = None
        self.wl_step = 1.0
        self._value_range = 1000.0
        self.show_annotations = self.settings.show_annotations
        self.measurements: list[Measurement] = []
        # which measurements belong to the shown image (app.gui.measure_binding sets it)
        self.measurement_filter: Callable[[Measurement], bool] | None = None
        self._drawing: Measurement | None = None
        self._angle_pending: Measurement | None = None
        self._drag_state: dict[str, Any] = {}
        self._overlay: np.ndarray | None = None
        self._overlay_index: int | None = None
        self._cursor_text = ""
        self._hover_pos: QPointF | None = None  # last mouse position over the image (scene)
        self._message = ""
        self._paint_pending = False
        self.first_paint_time: float | None = None
        self._wheel_accum = 0
        self._presets: list[WindowPreset] = []
        #: overlay text lines rendered (with shadow), by (text, font key, colour); the worker
        #: that windows frames ahead adds the lines of the slices it prepares (QImage: made on
        #: either thread)
        self._text_cache: dict[tuple[str, str, int], QImage] = {}
        self._elide_cache: dict[tuple[str, str, float], str] = {}
        self._fonts: tuple[QFont, tuple[QFont, QFont, str, str, int, int]] | None = None
        self._font_key = self.font().key()
        #: overlay blits by what they are made from (:meth:`_paint_annotations_cached`)
        self._annotation_ops: OrderedDict[
            tuple[tuple[Any, ...], int], list[tuple[QPointF, QImage]]
        ] = OrderedDict()
        #: the blits of all but the slice's own corner, by the key less the index
        self._overlay_base: dict[tuple[Any, ...], _OverlayBase] = {}
        self._last_rest: tuple[Any, ...] | None = None  # the overlay key less the index, last paint
        #: the blits of each block of overlay text (a corner, the letters), by what it shows
        self._block_ops: dict[tuple[Any, ...], list[tuple[QPointF, QImage]]] = {}
        self._letters_key: tuple[str, bytes] | None = None
        self._letters: dict[str, str] = {}
        self.preset_name = ""

        self._slider_timer = QTimer(self)
        self._slider_timer.setSingleShot(True)
        self._slider_timer.setInterval(33)
        self._slider_timer.timeout.connect(self._sync_slider)
        self.cine = QTimer(self)
        self.cine.timeout.connect(self._cine_step)
        self.view.scene().sigMouseMoved.connect(self._hover)
        self.vb.sigRangeChanged.connect(self._range_changed)
        self._update_transform()

    # ------------------------------------------------------------------------------ series
    def set_series(self, series: SeriesData | None, index: int | None = None) -> None:
        """Show ``series`` (None clears the viewport) at ``index`` (default: first frame)."""
        if self.provider is not None:
            self.provider.frame_ready.disconnect(self._frame_ready)
            self.provider.frame_failed.disconnect(self._frame_failed)
        self.windowed.stop()
        self._dragging = False
        self.stop_cine()
        self.clear_measurements(forget=False)  # they stay stored with their image
        self.set_overlay(None)
        self.series = series
        self.frame = None
        self._shown_key = None
        self._matrix = np.eye(2, dtype=int)
        self.provider = FrameProvider.for_series(series) if series is not None else None
        self.refresh_presets()
        if series is None:
            self.image.clear()
            self.slider.hide()
            self.series_changed.emit(None)
            self.view.viewport().update()
            return
        assert self.provider is not None
        self.provider.frame_ready.connect(self._frame_ready)
        self.provider.frame_failed.connect(self._frame_failed)
        self.invert = bool(series.monochrome1)
        self._window_set = False
        self._update_transform()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(series.count - 1, 0))
        self.slider.setPageStep(max(1, series.count // 10))
        self.slider.blockSignals(False)
        self.slider.setVisible(series.count > 1)
        self.index = -1
        self.series_changed.emit(series)
        self.set_index(0 if index is None else index)
        self.fit()

    def replace_series(self, series: SeriesData) -> None:
        """Swap in a fuller version of the shown series (a preview becoming the indexed series),
        keeping the displayed image, window and view."""
        old = self.series
        if old is None:
            self.set_series(series)
            return
        ref = old.frames[self.index] if 0 <= self.index < old.count else None
        index = (
            series.index_of_sop(ref.sop_uid, ref.frame) if ref is not None and ref.sop_uid else None
        )
        if old.preview:
            # a preview shows whichever file the import met first (a DICOMDIR's folder order
            # put Im 114 of 140 there): the indexed series opens at its first image
            index = 0
        # carry decoded frames over, so nothing is decoded twice
        for i in old.cache.indices():
            r = old.frames[i]
            j = series.index_of_sop(r.sop_uid, r.frame) if r.sop_uid else None
            arr = old.cache.get(i)
            if j is not None and arr is not None and series.cache.get(j) is None:
                series.cache.put(j, arr, focus=index or 0)
                if i in old.low_res:
                    series.low_res.add(j)
                    if i in old.reduced:
                        series.reduced[j] = old.reduced[i]
        center, width, invert, matrix = (
            self.window_center,
            self.window_width,
            self.invert,
            self._matrix.copy(),
        )
        view = self.vb.viewRect()
        fitted = self._fitted
        self.set_series(series, index or 0)
        self._matrix = matrix
        self._update_transform()
        self.invert = invert
        self.set_window(center, width)
        if fitted:
            self.fit()
        else:
            # the same area of the screen (the fuller series may have another pixel grid)
            self.vb.setRange(view, padding=0)
            self._sync_zoom_pan()

    # --- the pure view state (self.state), read and written through these ----------------------
    @property
    def index(self) -> int:
        """The frame shown (-1 while a new series has not shown one yet)."""
        return self.state.index if self._has_index else -1

    @index.setter
    def index(self, value: int) -> None:
        self._has_index = value >= 0
        if value >= 0 and value != self.state.index:
            self.state = self.state.at(value)

    @property
    def window_center(self) -> float:
        """Window centre (modality units)."""
        return self.state.window[0] if self.state.window else 0.5

    @property
    def window_width(self) -> float:
        """Window width (modality units)."""
        return self.state.window[1] if self.state.window else 1.0

    @property
    def invert(self) -> bool:
        """Whether the grey scale is shown inverted."""
        return self.state.invert

    @invert.setter
    def invert(self, value: bool) -> None:
        self.state = replace(self.state, invert=bool(value))

    @property
    def tool(self) -> str:
        """The left-button tool (one of :data:`TOOLS`)."""
        return self.state.tool

    @property
    def _matrix(self) -> np.ndarray:
        """The screen orientation (rotations/flips) as a 2x2 int array."""
        return np.array(self.state.orientation, dtype=int)

    @_matrix.setter
    def _matrix(self, m: np.ndarray) -> None:
        self.state = replace(
            self.state,
            orientation=((int(m[0][0]), int(m[0][1])), (int(m[1][0]), int(m[1][1]))),
        )

    @property
    def count(self) -> int:
        """Number of frames in the shown series."""
        return self.series.count if self.series else 0

    def set_index(self, index: int) -> None:
        """Show frame ``index`` (clamped)."""
        if self.series is None:
            return
        index = min(max(int(index), 0), self.series.count - 1)
        if index == self.index:
            return
        self.index = index
        if self.slider.value() != index and not self._slider_timer.isActive():
            # the slider follows at most ~30 times a second: repainting the styled scroll bar
            # for every slice of a fast scroll or cine costs more than the slice itself
            self._slider_timer.start()
        self._show_frame()
        focus = self.windowed.focus
        if focus is not None and abs(index - focus) > self.windowed.radius // 4:
            self._prefetch()  # keep the windowed frames ahead of the scroll
        self.index_changed.emit(index)

    def _sync_slider(self) -> None:
        if self.slider.value() != self.index:
            self.slider.blockSignals(True)
            self.slider.setValue(self.index)
            self.slider.blockSignals(False)

    def step(self, delta: int) -> None:
        """Move ``delta`` frames."""
        self.set_index(self.index + delta)

    def _frame_ready(self, index: int) -> None:
        if self.series is None:
            return
        if index == self.index and (
            self._shown_key != (self.series.key, index)
            or self.series.cache.get(index) is not self.frame
        ):
            self._show_frame()  # new, or the full-resolution decode of a preview
        elif self._display_state is not None and abs(index - self.index) <= self.windowed.radius:
            self._prefetch()  # a newly decoded neighbour: window it ahead too

    def _frame_failed(self, index: int, message: str) -> None:
        if index == self.index:
            self._message = message
            self.view.viewport().update()

    def _show_frame(self) -> None:
        assert self.series is not None and self.provider is not None
        arr = self.provider.frame(self.index)
        if arr is None:
            error = self.provider.error(self.index)
            self._message = error or "Loading…"
            self.view.viewport().update()
            return
        self._message = ""
        self.frame = arr
        if not self._window_set:
            self._initial_window(arr)
        self._render()
        self._shown_key = (self.series.key, self.index)
        self._paint_pending = True
        self._update_overlay()
        for m in self.measurements:
            self._measure(m)
        self.refresh_readout()  # the value under the cursor is this frame's, at once
        self.view.viewport().update()

    def _render(self) -> None:
        """Window the current frame to uint8 and hand it to the image item (no levels, no LUT:
        pyqtgraph then shows it as a Grayscale8/RGB888 image without another pass)."""
        assert self.frame is not None and self.series is not None
        series = self.series
        state = (self.window_center, self.window_width, self.invert)
        if (series.key, *state) != self._display_state:
            # a new window or series: the windowed frames are stale; window the neighbours anew
            self.windowed.clear()
            self._display_state = (series.key, *state)
            self._prefetch()
        # a reduced-resolution preview is windowed and painted at its own size, scaled onto the
        # full pixel grid by the image item (not its upsampled copy: 16x the pixels per repaint)
        reduced = series.reduced.get(self.index) if self.index in series.low_res else None
        shown: np.ndarray | None
        if reduced is not None:
            shown = window_to_uint8(reduced, *state)
        else:
            shown = self.windowed.get(series, self.index, state)
            if shown is None:
                shown = window_to_uint8(self.frame, *state)
                # cine loops and scrolling back and forth reuse the windowed frames
                self.windowed.put(series, self.index, state, shown, self.frame)
        self.display = shown if reduced is None else None  # displayed_image() makes it
        self.image.setImage(shown, autoLevels=False)  # levels stay None: shown as stored
        rows, cols = self.frame.shape[:2]
        if shown.shape[:2] != (rows, cols):
            self.image.setRect(QRectF(0, 0, cols, rows))
        elif not self.image.transform().isIdentity():
            self.image.setTransform(QTransform())
        self._paint_pending = True

    def _prefetch(self) -> None:
        """Window the decoded frames around the slice on screen in the background (a single
        image has no neighbours: the GUI thread windows it when it shows it; a drag asks once
        it ends)."""
        if (
            self.series is not None
            and self.series.count > 1
            and self.index >= 0
            and not self._dragging
        ):
            self.windowed.prefetch(
                self.series,
                (self.window_center, self.window_width, self.invert),
                self.index,
                self._slice_text_job(),
            )

    def _initial_window(self, arr: np.ndarray) -> None:
        assert self.series is not None
        ac, aw = auto_window(arr)
        step = max(1, int(math.sqrt(arr.size / 65536)))
        sample = arr[::step, ::step]
        value_range = float(np.nanmax(sample) - np.nanmin(sample)) if sample.size else 1.0
        self._value_range = max(value_range, aw, 1.0)
        self.update_wl_step()
        if self.series.is_color:
            c, w, name = 128.0, 256.0, "Full range"  # DICOM LINEAR: exactly 0..255
        elif self.series.windows and self.series.windows[0][1] > 0:
            c, w, name = (
                self.series.windows[0][0],
                self.series.windows[0][1],
                self.series.windows[0][2] or "Header",
            )
        else:
            c, w, name = ac, aw, "Auto"
        self._window_set = True
        self.set_window(c, w)
        self.preset_name = name

    # ------------------------------------------------------------------------------ window
    def update_wl_step(self) -> None:
        """Right-drag speed: a thousandth of the frame's value range per screen pixel, times the
        window/level sensitivity setting."""
        self.wl_step = self._value_range / 1000.0 * self.settings.wl_sensitivity

    def set_window(self, center: float, width: float) -> None:
        """Set window centre and width (modality units)."""
        width = max(float(width), 1e-3)
        center = float(center)
        self.state = self.state.windowed(center, width)
        self._window_set = True
        self.preset_name = ""
        if self.frame is not None:
            self._render()
        self.window_changed.emit(center, width)
        self.view.viewport().update()

    @property
    def window_level(self) -> tuple[float, float]:
        """(centre, width) of the window, modality units."""
        return self.window_center, self.window_width

    def displayed_image(self) -> np.ndarray | None:
        """The current frame as painted: uint8 (grey, or RGB), window and invert applied, in the
        source pixel grid (no zoom/rotation)."""
        if self.display is None and self.frame is not None:
            # a reduced preview is painted small: window the full-grid frame for the caller
            self.display = window_to_uint8(self.frame, *self.window_level, self.invert)
        return self.display

    @property
    def presets(self) -> list[WindowPreset]:
        """The window presets of the shown series (number keys 1..n)."""
        return list(self._presets)

    def refresh_presets(self) -> None:
        """The presets of the shown series (CT: the user's, from the settings)."""
        s = self.series
        self._presets = (
            presets_for(s.modality, s.windows, presets_from_text(self.settings.window_presets))
            if s is not None
            else []
        )

    def apply_preset(self, number: int) -> WindowPreset | None:
        """Apply preset ``number`` (1-based, the number key); 0 restores the header/auto window."""
        if self.series is None:
            return None
        if number == 0:
            self._window_set = False
            if self.frame is not None:
                self._initial_window(self.frame)
            return None
        p = preset_for_key(self._presets, number)
        if p is None:
            return None
        self.set_window(p.center, p.width)
        self.preset_name = p.name
        return p

    def auto_window(self) -> None:
        """Window from the current frame's histogram."""
        if self.frame is not None:
            self.set_window(*auto_window(self.frame))
            self.preset_name = "Auto"

    def set_invert(self, invert: bool) -> None:
        """Invert the grey scale."""
        self.invert = bool(invert)
        if self.frame is not None:
            self._render()
        self.view.viewport().update()

    def toggle_invert(self) -> None:
        """Invert on/off."""
        self.set_invert(not self.invert)

    # ------------------------------------------------------------------------------ geometry
    def _update_transform(self) -> None:
        aspect = 1.0
        if self.series is not None and self.series.pixel_spacing:
            sy, sx = self.series.pixel_spacing
            if sx > 0 and sy > 0:
                aspect = sy / sx
        m = self._matrix
        # QTransform maps (x, y) -> (m11 x + m21 y, m12 x + m22 y); we want M @ diag(1, aspect)
        t = QTransform(
            float(m[0, 0]),
            float(m[1, 0]),
            float(m[0, 1]) * aspect,
            float(m[1, 1]) * aspect,
            0.0,
            0.0,
        )
        self.group.setTransform(t)
        for meas in self.measurements:
            meas.place_label(self.group)

    def _image_size(self) -> tuple[int, int]:
        """(columns, rows) of the shown image (at least 1)."""
        rows = self.series.rows if self.series else 1
        cols = self.series.columns if self.series else 1
        if self.frame is not None:
            rows, cols = self.frame.shape[:2]
        return max(cols, 1), max(rows, 1)

    def image_rect_in_view(self) -> QRectF:
        """The image's bounding rectangle in view coordinates."""
        return self.group.mapRectToParent(QRectF(0, 0, *self._image_size()))

    def fit(self) -> None:
        """Fit the whole image in the viewport."""
        self.state = self.state.fit()
        self._apply_zoom_pan()

    @property
    def _fitted(self) -> bool:
        return not self.state.zoom

    @property
    def zoom(self) -> float:
        """Screen pixels per image column pixel (as the view box shows it)."""
        px = self.vb.viewPixelSize()[0]
        return 1.0 / px if px > 0 else 1.0

    def _image_center(self) -> tuple[float, float]:
        cols, rows = self._image_size()
        return cols / 2.0, rows / 2.0

    def _to_image_offset(self, view_pos: QPointF) -> tuple[float, float]:
        """A view position as image pixels from the image centre (the frame of ``state.pan``)."""
        p = self.group.mapFromParent(view_pos)
        cx, cy = self._image_center()
        return p.x() - cx, p.y() - cy

    def _apply_zoom_pan(self) -> None:
        """Show ``self.state``'s zoom and pan in the view box (zoom 0: the image fitted)."""
        s = self.state
        if not s.zoom:
            self.vb.setRange(self.image_rect_in_view(), padding=0.02)
            return
        cx, cy = self._image_center()
        c = self.group.mapToParent(QPointF(cx + s.pan[0], cy + s.pan[1]))
        rect = self.vb.viewRect()
        k = self.zoom / s.zoom  # the view box's size is the widget's: scale its current range
        w, h = rect.width() * k, rect.height() * k
        self.vb.setRange(QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)

    def _sync_zoom_pan(self) -> None:
        """Read the view box's zoom and centre into ``self.state`` (after a direct range set)."""
        zoom = min(max(self.zoom, MIN_ZOOM), MAX_ZOOM)
        self.state = replace(
            self.state, zoom=zoom, pan=self._to_image_offset(self.vb.viewRect().center())
        )

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` screen pixels per image pixel about ``anchor`` (view coords; centre)."""
        current = self.zoom
        zoom = min(max(float(zoom), MIN_ZOOM), MAX_ZOOM)
        point = self._to_image_offset(anchor) if anchor is not None else None
        base = self.state.zoom or current
        self.state = self.state.zoom_by(zoom / base, point, fitted_zoom=current)
        self._apply_zoom_pan()

    def actual_size(self) -> None:
        """One image pixel per screen pixel (1:1)."""
        self.state = self.state.one_to_one()
        self._apply_zoom_pan()

    def pan_by(self, dx_screen: float, dy_screen: float) -> None:
        """Move the image by screen pixels."""
        px, py = self.vb.viewPixelSize()
        origin = self._to_image_offset(QPointF(0.0, 0.0))
        moved = self._to_image_offset(QPointF(-dx_screen * px, -dy_screen * py))
        dx, dy = moved[0] - origin[0], moved[1] - origin[1]
        self.state = self.state.pan_by(dx, dy, fitted_zoom=self.zoom)
        self._apply_zoom_pan()

    def _orient(self, state: ViewState) -> None:
        self._matrix = np.array(state.orientation, dtype=int)
        self._update_transform()
        self.fit()

    def rotate(self, degrees: int = 90) -> None:
        """Rotate the displayed image by a multiple of 90 degrees (positive = clockwise)."""
        self._orient(self.view_state().rotated(degrees))

    def flip_horizontal(self) -> None:
        """Mirror left-right on screen."""
        self._orient(self.view_state().flipped(horizontal=True))

    def flip_vertical(self) -> None:
        """Mirror top-bottom on screen."""
        self._orient(self.view_state().flipped(horizontal=False))

    def view_state(self) -> ViewState:
        """What this viewport shows, as a pure :class:`~app.workflow.view_state.ViewState`."""
        m = self._matrix
        return ViewState(
            index=max(self.index, 0),
            window=(float(self.window_center), max(float(self.window_width), 1e-6)),
            invert=bool(self.invert),
            orientation=((int(m[0, 0]), int(m[0, 1])), (int(m[1, 0]), int(m[1, 1]))),
            zoom=self.state.zoom,
            pan=self.state.pan,
            overlay_visible=self.state.overlay_visible,
            overlay_opacity=self.state.overlay_opacity,
            tool=self.state.tool,
        )

    def apply_view_state(self, state: ViewState) -> None:
        """Show ``state`` (image, window, invert, orientation, zoom/pan, overlay, tool)."""
        if self.series is not None and state.index != self.index:
            self.set_index(min(state.index, max(self.count - 1, 0)))
        if state.window is not None:
            self.set_window(*state.window)
        if state.invert != self.invert:
            self.set_invert(state.invert)
        self.set_tool(state.tool)
        self.set_overlay_opacity(state.overlay_opacity)
        self.set_overlay_visible(state.overlay_visible)
        self._orient(state)
        self.state = replace(self.state, zoom=state.zoom, pan=state.pan)
        self._apply_zoom_pan()

    def reset(self) -> None:
        """Back to the series' initial state: header window, no rotation/flip/invert, fitted."""
        self._matrix = np.eye(2, dtype=int)
        self._update_transform()
        self.set_invert(bool(self.series.monochrome1) if self.series else False)
        self.apply_preset(0)
        self.stop_cine()
        self.fit()

    def view_to_image(self, scene_pos: QPointF) -> tuple[float, float]:
        """A scene position in image coordinates (x = column, y = row)."""
        self.vb.updateMatrix()  # the view box defers its transform until paint
        p = self.group.mapFromScene(scene_pos)
        return float(p.x()), float(p.y())

    def image_to_widget(self, x: float, y: float) -> QPointF:
        """Image coordinates -> position in :attr:`view`'s viewport widget (tests, tools)."""
        self.vb.updateMatrix()
        scene = self.group.mapToScene(QPointF(x, y))
        return QPointF(self.view.mapFromScene(scene))

    def _range_changed(self, *args: Any) -> None:
        for m in self.measurements:
            m.place_label(self.group)

    # ------------------------------------------------------------------------------ overlay
    def set_overlay(self, rgba: np.ndarray | None) -> None:
        """Show an RGBA overlay (e.g. a saliency map) in the source pixel grid; None removes it.

        Parameters
        ----------
        rgba : numpy.ndarray or None
            ``(rows, cols, 4)`` uint8: shown on the frame displayed when it is set; or
            ``(n, rows, cols, 4)``: one per frame of the series. Rows/cols must match the image.
            It follows zoom, pan, rotation, flips and slices.
        """
        if rgba is None:
            self._overlay = None
            self._overlay_index = None
            self.overlay_item.clear()
            self.overlay_item.hide()
            self.view.viewport().update()
            return
        arr = np.asarray(rgba)
        if arr.dtype != np.uint8 or arr.shape[-1] != 4 or arr.ndim not in (3, 4):
            raise ValueError(
                "the overlay must be a uint8 RGBA array (rows, cols, 4) or (n, rows, cols, 4)"
            )
        if self.series is not None:
            want = (self.series.rows, self.series.columns)
            if self.frame is not None:
                want = tuple(self.frame.shape[:2])
            if tuple(arr.shape[-3:-1]) != want:
                raise ValueError(f"the overlay is {arr.shape[-3:-1]} but the image is {want}")
            if arr.ndim == 4 and arr.shape[0] != self.series.count:
                raise ValueError("a per-frame overlay needs one layer per frame")
        self._overlay = arr
        self._overlay_index = self.index if arr.ndim == 3 else None
        self._update_overlay()

    @property
    def overlay(self) -> np.ndarray | None:
        """The overlay set with :meth:`set_overlay` (None when none)."""
        return self._overlay

    def set_overlay_opacity(self, opacity: float) -> None:
        """Opacity of the overlay (0..1)."""
        self.state = replace(self.state, overlay_opacity=min(max(float(opacity), 0.0), 1.0))
        self.overlay_item.setOpacity(self.state.overlay_opacity)

    def set_overlay_visible(self, visible: bool) -> None:
        """Show or hide the overlay without removing it."""
        self.state = replace(self.state, overlay_visible=bool(visible))
        self._update_overlay()

    def _update_overlay(self) -> None:
        arr = self._overlay
        if arr is None or not self.state.overlay_visible:
            self.overlay_item.hide()
            return
        layer = (
            arr[self.index]
            if arr.ndim == 4
            else (arr if self._overlay_index == self.index else None)
        )
        if layer is None:
            self.overlay_item.hide()
            return
        self.overlay_item.setImage(layer, autoLevels=False, levels=(0, 255))
        self.overlay_item.show()

    # ------------------------------------------------------------------------------ cine
    def start_cine(self, fps: float | None = None) -> None:
        """Play the slices in a loop at ``fps`` frames per second."""
        if self.count < 2:
            return
        fps = fps or self.settings.cine_fps
        self.cine.start(max(1, int(round(1000.0 / fps))))

    def stop_cine(self) -> None:
        """Stop cine."""
        self.cine.stop()

    def toggle_cine(self) -> None:
        """Play/pause."""
        if self.cine.isActive():
            self.stop_cine()
        else:
            self.start_cine()

    def set_cine_fps(self, fps: float) -> None:
        """Change the cine speed (applies at once when playing)."""
        self.settings.cine_fps = min(max(float(fps), 1.0), 60.0)
        if self.cine.isActive():
            self.start_cine()
        self.view.viewport().update()

    def _cine_step(self) -> None:
        if self.series is None:
            return
        nxt = (self.index + 1) % self.series.count
        if self.series.cache.get(nxt) is None:
            if self.provider is not None:
                self.provider.request(nxt)  # wait for it rather than skip
            return
        self.set_index(nxt)

    # ------------------------------------------------------------------------------ tools
    def set_tool(self, tool: str) -> None:
        """Select the left-button tool (one of :data:`TOOLS`)."""
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self._cancel_pending()
        self.state = self.state.with_tool(tool)
        cursors = {
            "pan": Qt.CursorShape.OpenHandCursor,
            "zoom": Qt.CursorShape.SizeVerCursor,
            "window": Qt.CursorShape.SizeAllCursor,
        }
        self.view.setCursor(
            cursors.get(
                tool,
                Qt.CursorShape.CrossCursor
                if tool in ("length", "rect", "ellipse", "angle", "cobb")
                else Qt.CursorShape.ArrowCursor,
            )
        )

    def add_measurement(self, kind: str, points: list[tuple[float, float]]) -> Measurement:
        """Add a measurement in image coordinates and compute it on the current frame."""
        m = Measurement(
            kind, points, self.group, self.vb, self.settings.measurement_color, self._measure
        )
        m.roi.sigClicked.connect(lambda *_: self.select(m))
        m.roi.sigRegionChangeStarted.connect(lambda *_: self.select(m))
        self.measurements.append(m)
        self._measure(m)
        return m

    def _measure(self, m: Measurement) -> None:
        if self.series is None:
            return
        if self.measurement_filter is not None:
            here = self.measurement_filter(m)
            m.roi.setVisible(here)
            m.label.setVisible(here)
            if not here:
                return  # drawn on another image: neither shown nor re-measured here
        m.compute(self.frame, self.series.pixel_spacing, self.series.units)
        m.place_label(self.group)
        self.measurements_changed.emit()

    def select(self, m: Measurement | None) -> None:
        """Select one measurement (None: none)."""
        for other in self.measurements:
            other.set_selected(other is m)

    @property
    def selected(self) -> Measurement | None:
        """The selected measurement."""
        return next((m for m in self.measurements if m.selected), None)

    def delete_selected(self) -> bool:
        """Delete the selected measurement; True when one was deleted."""
        m = self.selected
        if m is None:
            return False
        m.remove()
        self.measurements.remove(m)
        self.measurement_removed.emit(m)
        self.measurements_changed.emit()
        return True

    def clear_measurements(self, forget: bool = True) -> None:
        """Delete every measurement (``forget=False``: only take them off the screen)."""
        self._cancel_pending()
        for m in self.measurements:
            m.remove()
            if forget:
                self.measurement_removed.emit(m)
        had = bool(self.measurements)
        self.measurements = []
        if had:
            self.measurements_changed.emit()

    def _cancel_pending(self) -> None:
        if self._angle_pending is not None:
            m = self._angle_pending
            self._angle_pending = None
            if m in self.measurements:
                m.remove()
                self.measurements.remove(m)

    # ------------------------------------------------------------------------------ mouse
    def _wheel(self, ev: Any) -> None:
        ev.accept()
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            factor = 1.0015**delta
            anchor = self.vb.mapSceneToView(ev.scenePos())
            self.set_zoom(self.zoom * factor, anchor)
            return
        self._wheel_accum += delta
        steps = int(self._wheel_accum / 120)
        if steps:
            self._wheel_accum -= steps * 120
            self.step(-steps)  # wheel forward (away from the user) goes back a slice

    def _drag(self, ev: Any) -> None:
        ev.accept()
        button = ev.button()
        if ev.isStart():
            self.activated.emit(self)
        # no windowing ahead while the window or view changes at every move: once, at the end
        self._dragging = not ev.isFinish()
        try:
            self._drag_by(ev, button)
        finally:
            if ev.isFinish():
                self._prefetch()

    def _drag_by(self, ev: Any, button: Any) -> None:
        if button == Qt.MouseButton.RightButton:
            self._drag_window(ev)
        elif button == Qt.MouseButton.MiddleButton:
            self._drag_pan(ev)
        elif button == Qt.MouseButton.LeftButton:
            tool = self.tool
            if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                tool = "pan"
            if tool == "window":
                self._drag_window(ev)
            elif tool in ("pan", "pointer"):
                self._drag_pan(ev)
            elif tool == "zoom":
                self._drag_zoom(ev)
            else:
                self._drag_draw(ev, tool)

    def _drag_window(self, ev: Any) -> None:
        if ev.isStart() or "wl" not in self._drag_state:
            self._drag_state["wl"] = (self.window_center, self.window_width)
        c0, w0 = self._drag_state["wl"]
        d = ev.screenPos() - ev.buttonDownScreenPos()
        self.set_window(c0 + d.y() * self.wl_step, max(w0 + d.x() * self.wl_step, 1e-3))
        if ev.isFinish():
            self._drag_state.pop("wl", None)

    def _drag_pan(self, ev: Any) -> None:
        d = ev.screenPos() - ev.lastScreenPos()
        self.pan_by(d.x(), d.y())

    def _drag_zoom(self, ev: Any) -> None:
        if ev.isStart() or "zoom" not in self._drag_state:
            self._drag_state["zoom"] = (self.zoom, self.vb.mapSceneToView(ev.buttonDownScenePos()))
        z0, anchor = self._drag_state["zoom"]
        d = ev.screenPos() - ev.buttonDownScreenPos()
        self.set_zoom(z0 * 2 ** (-d.y() / 150.0), anchor)
        if ev.isFinish():
            self._drag_state.pop("zoom", None)

    def _drag_draw(self, ev: Any, tool: str) -> None:
        if self.series is None:
            return
        p0 = self.view_to_image(ev.buttonDownScenePos())
        p1 = self.view_to_image(ev.scenePos())
        first = self._drag_state.get("cobb_first")  # the Cobb angle's first line, if drawn
        if ev.isStart():
            first = (
                self._angle_pending.points()[:2]
                if tool == "cobb"
                and self._angle_pending is not None
                and self._angle_pending.kind == "cobb"
                else None
            )
            self._drag_state["cobb_first"] = first
        pts = [p0, p1, p1] if tool == "angle" else [p0, p1, p1, p1] if tool == "cobb" else [p0, p1]
        if first is not None:  # a Cobb angle's second line
            pts = [first[0], first[1], p0, p1]
        if ev.isStart():
            if first is not None:
                self._drawing, self._angle_pending = self._angle_pending, None
            else:
                self._cancel_pending()
                self._drawing = self.add_measurement(tool, pts)
            self.select(self._drawing)
        if self._drawing is None:
            return
        self._drawing.set_points(pts)
        if ev.isFinish():
            m, self._drawing = self._drawing, None
            self._drag_state.pop("cobb_first", None)
            if tool == "angle" or (tool == "cobb" and first is None):
                self._angle_pending = m  # the next click (angle) or drag (Cobb) completes it
            self._measure(m)

    def _click(self, ev: Any) -> None:
        self.activated.emit(self)
        self.setFocus()
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.accept()
            return
        ev.accept()
        if self._angle_pending is not None and self._angle_pending.kind == "angle":
            m = self._angle_pending
            pts = m.points()
            m.set_points([pts[0], pts[1], self.view_to_image(ev.scenePos())])
            self._angle_pending = None
            self._measure(m)
            return
        x, y = self.view_to_image(ev.scenePos())
        tol = 6.0 / max(self.zoom, 1e-6)
        hit = next((m for m in reversed(self.measurements) if m.contains(x, y, tol)), None)
        self.select(hit)

    def refresh_readout(self) -> None:
        """Read the value under the (unmoved) cursor again: the slice, series or window changed."""
        if self._hover_pos is not None and self._cursor_inside():
            self._hover(self._hover_pos)
        elif self._cursor_text:
            self._cursor_text = ""
            self.status.emit("")

    def _cursor_inside(self) -> bool:
        from PySide6.QtGui import QCursor

        return self.isVisible() and self.view.rect().contains(
            self.view.mapFromGlobal(QCursor.pos())
        )

    @property
    def cursor_text(self) -> str:
        """The readout under the cursor (``x 12  y 40  =  -998 HU``), '' when not over the image."""
        return self._cursor_text

    def _hover(self, scene_pos: QPointF) -> None:
        self._hover_pos = QPointF(scene_pos)
        if self._angle_pending is not None and self._angle_pending.kind == "angle":
            m = self._angle_pending
            pts = m.points()
            m.set_points([pts[0], pts[1], self.view_to_image(scene_pos)])
        if self.frame is None or self.series is None:
            return
        x, y = self.view_to_image(scene_pos)
        r, c = int(math.floor(y)), int(math.floor(x))
        rows, cols = self.frame.shape[:2]
        if 0 <= r < rows and 0 <= c < cols:
            v = self.frame[r, c]
            if np.ndim(v):
                value = "RGB " + ",".join(str(int(t)) for t in np.ravel(v)[:3])
            else:
                unit = f" {self.series.units}" if self.series.units else ""
                value = (
                    f"{float(v):.0f}{unit}"
                    if float(v).is_integer() or abs(float(v)) > 100
                    else f"{float(v):.2f}{unit}"
                )
            self._cursor_text = f"x {c}  y {r}  =  {value}"
        else:
            self._cursor_text = ""
        self.status.emit(self._cursor_text)
        self.view.viewport().update()

    # ------------------------------------------------------------------------------ keys
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        page = max(1, self.count // 10)
        moves: dict[Any, int] = {
            Qt.Key.Key_Up: -1,
            Qt.Key.Key_Left: -1,
            Qt.Key.Key_Down: 1,
            Qt.Key.Key_Right: 1,
            Qt.Key.Key_PageUp: -page,
            Qt.Key.Key_PageDown: page,
        }
        if key in moves:
            self.step(moves[key])
        elif key == Qt.Key.Key_Home:
            self.set_index(0)
        elif key == Qt.Key.Key_End:
            self.set_index(self.count - 1)
        elif key == Qt.Key.Key_Escape:
            self._cancel_pending()
            self.select(None)
        else:
            super().keyPressEvent(event)

    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802
        from app.gui.browser import SERIES_MIME

        if event.mimeData().hasFormat(SERIES_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()  # files: the main window imports them

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event: Any) -> None:  # noqa: N802
        from app.gui.browser import SERIES_MIME

        if event.mimeData().hasFormat(SERIES_MIME):
            event.acceptProposedAction()
            self.activated.emit(self)
            self.series_dropped.emit(bytes(event.mimeData().data(SERIES_MIME).data()).decode())
        else:
            event.ignore()

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802
        self.activated.emit(self)
        super().mousePressEvent(event)

    def set_active(self, active: bool) -> None:
        """Show the active-viewport frame."""
        self.setProperty("active", bool(active))
        self.style().unpolish(self)
        self.style().polish(self)

    # ------------------------------------------------------------------------------ painting
    def _painted(self) -> None:
        if self._paint_pending:
            self._paint_pending = False
            if self.first_paint_time is None:
                self.first_paint_time = time.perf_counter()
            self.image_painted.emit()

    def set_show_annotations(self, show: bool) -> None:
        """Corner annotations on/off."""
        self.show_annotations = bool(show)
        self.view.viewport().update()

    def annotation_text(self) -> dict[str, list[str]]:
        """The corner texts: keys ``tl``, ``tr``, ``bl``, ``br`` (lines, top to bottom)."""
        s = self.series
        if s is None:
            return {"tl": [], "tr": [], "bl": [], "br": []}
        meta = s.meta
        tl: list[str] = []
        if not self.settings.hide_patient_identity:
            tl += [format_name(meta.get("patient_name", "")), meta.get("patient_id", "")]
        age_sex = " ".join(
            t for t in (format_age(meta.get("patient_age", "")), meta.get("patient_sex", "")) if t
        )
        tl.append(age_sex)
        tl.append(meta.get("institution", ""))
        tr = [
            meta.get("study_description", ""),
            format_date(meta.get("study_date", "")),
            f"Se {s.series_number}  {s.modality}" if s.series_number is not None else s.modality,
            s.description,
        ]
        bl = self._bottom_left_text(s)
        br = [self.tr("Zoom %1%").replace("%1", f"{self.zoom * 100:.0f}")]
        if s.pixel_spacing is None:
            br.append(self.tr("No pixel spacing: px"))
        elif s.spacing_source == "ImagerPixelSpacing":
            br.append(self.tr("Spacing at detector"))
        if self.cine.isActive():
            br.append(self.tr("Cine %1 fps").replace("%1", f"{self.settings.cine_fps:.0f}"))
        if self.index in s.low_res:
            br.append(self.tr("Loading full resolution…"))
        if self._cursor_text:
            br.append(self._cursor_text)
        return {"tl": [t for t in tl if t], "tr": [t for t in tr if t], "bl": bl, "br": br}

    def _bottom_left_text(self, s: SeriesData) -> list[str]:
        """The bottom-left corner's lines: the slice's own ("Im", "Pos"), thickness, window."""
        im, pos = self.tr("Im %1 / %2"), self.tr("Pos %1 mm")
        return _slice_lines(s, self.index, im, pos) + self._bottom_left_tail(s)

    def _bottom_left_tail(self, s: SeriesData) -> list[str]:
        """The bottom-left corner's lines after the slice's own: thickness, window."""
        bl = []
        if s.slice_thickness:
            bl.append(self.tr("Thk %1 mm").replace("%1", f"{s.slice_thickness:.2g}"))
        wl = (
            f"W {self.window_width:.0f}  L {self.window_center:.0f}"
            if self.window_width >= 10
            else f"W {self.window_width:.3g}  L {self.window_center:.3g}"
        )
        if self.preset_name:
            wl += f"  ({self.preset_name})"
        if self.invert:
            wl += "  inv"
        bl.append(wl)
        return bl

    def orientation_text(self) -> dict[str, str]:
        """Orientation letters at the middle of each edge: ``left``, ``right``, ``top``, ``bottom``."""
        s = self.series
        if s is None or not s.orientation or len(s.orientation) != 6:
            return {}
        key = (s.key, self._matrix.tobytes())
        if self._letters_key == key:
            return dict(self._letters)
        row = np.asarray(s.orientation[:3], float)
        col = np.asarray(s.orientation[3:], float)
        inv = np.linalg.inv(self._matrix.astype(float))
        out = {}
        for name, screen in (
            ("right", (1, 0)),
            ("left", (-1, 0)),
            ("bottom", (0, 1)),
            ("top", (0, -1)),
        ):
            v = inv @ np.asarray(screen, float)
            out[name] = direction_letters(v[0] * row + v[1] * col)
        self._letters_key, self._letters = key, out
        return dict(out)

    def _line(self, text: str, font: QFont, fkey: str, color: QColor) -> QImage:
        """One line of overlay text with its shadow, rendered once and cached by line (not by
        corner): scrolling changes one or two lines ("Im", "Pos"), made ahead by the worker
        that windows the next slices (see :meth:`_slice_text_job`), and every other line of
        every corner is a blit of an image already made."""
        return _remembered(
            self._text_cache,
            (text, fkey, color.rgba()),
            2048,
            lambda: _render_line(text, font, color),
        )

    def _slice_text_job(self) -> Callable[[int], None] | None:
        """What the frame-windowing worker also does for each slice it prepares: render that
        slice's own overlay lines ("Im k / n", "Pos"), so scrolling to it only blits them.

        The worker gets its own copy of the font (a QFont's cached font engine belongs to the
        thread that uses it) and the translated templates read here, on the GUI thread.
        """
        s = self.series
        if s is None or not self.show_annotations:
            return None
        font, _big, fkey, *_ = self._annotation_fonts()
        own = QFont()
        own.fromString(font.toString())
        templates = (self.tr("Im %1 / %2"), self.tr("Pos %1 mm"))
        cache, rgba, color = self._text_cache, _TEXT.rgba(), QColor(_TEXT)
        ops_cache, bases = self._annotation_ops, self._overlay_base

        def render(index: int) -> None:
            lines = _slice_lines(s, index, *templates)
            for text in lines:
                key = (text, fkey, rgba)
                if key not in cache:
                    cache[key] = _render_line(text, own, color)
            # and the slice's whole overlay, as the last one painted was laid out (a slice
            # painted with other inputs, e.g. another window, is laid out by the GUI thread)
            rest = self._last_rest
            base = bases.get(rest) if rest is not None else None
            if rest is None or base is None or base.fkey != fkey or s.low_res:
                return
            if (rest, index) in ops_cache:
                return
            bl = [t for t in (lines + list(base.tail))[: base.per_half] if t]
            if len(bl) != base.n_lines:
                return
            own_ops = []
            for i, text in enumerate(bl):
                img = cache.get((text, fkey, rgba))
                if img is None or img.width() - 2 > base.width - 4:
                    return  # not made yet, or perhaps to be elided: the GUI thread lays it out
                own_ops.append((QPointF(base.left, base.top + i * base.lh), img))
            ops_cache[(rest, index)] = base.around(own_ops)

        return render

    def _elided(self, text: str, fm: QFontMetrics, width: float, fkey: str) -> str:
        """:func:`_elide`, remembered per font and width (the same lines come back every slice)."""
        if not fkey:
            return _elide(text, fm, width)
        return _remembered(
            self._elide_cache, (text, fkey, width), 4096, lambda: _elide(text, fm, width)
        )

    def annotation_layout(
        self,
        w: int,
        h: int,
        fm: QFontMetrics,
        fkey: str = "",
        corners: dict[str, list[str]] | None = None,
    ) -> list[tuple[str, QRectF, tuple[str, ...], bool]]:
        """Where each block of overlay text goes in a ``w`` x ``h`` viewport, so none overlaps.

        Returns ``(kind, rect, lines, right_aligned)`` with kind ``tl``/``tr``/``bl``/``br`` (the
        corners), ``warn`` (geometry warnings such as a gantry tilt, one per line, under the top
        corners) and ``ai`` (the AI-overlay notice, above the bottom corners). Each corner gets
        half the width less room for the orientation letter, and the lines that fit in its half
        of the height; long names and UIDs are elided. ``fkey`` (the key of ``fm``'s font) lets
        the elided lines be remembered; ``corners`` is :meth:`annotation_text` when the caller
        has it already.
        """
        margin, lh = 8, fm.height()
        out: list[tuple[str, QRectF, tuple[str, ...], bool]] = []
        if not self.show_annotations:
            corners = {}
        elif corners is None:
            corners = self.annotation_text()
        gap = fm.horizontalAdvance("WW")  # the orientation letter between the corners
        half_w = max(20.0, (w - 2 * margin - gap) / 2)
        full_w = max(20.0, w - 2 * margin)
        per_half = max(
            1, int((h / 2 - margin - lh) // lh)
        )  # lines per corner, above/below the middle
        rows = {"top": 0, "bottom": 0}
        for name, right, bottom in (
            ("tl", False, False),
            ("tr", True, False),
            ("bl", False, True),
            ("br", True, True),
        ):
            lines = tuple(
                self._elided(t, fm, half_w, fkey) for t in corners.get(name, [])[:per_half] if t
            )
            if not lines:
                continue
            height = len(lines) * lh
            x = w - margin - half_w if right else margin
            y = h - margin - height if bottom else margin
            out.append((name, QRectF(x, y, half_w, height), lines, right))
            side = "bottom" if bottom else "top"
            rows[side] = max(rows[side], len(lines))
        warnings = (
            list(self.series.warnings) if self.show_annotations and self.series is not None else []
        )
        room = max(0, per_half - rows["top"])
        if warnings and room:
            lines = tuple(self._elided(t, fm, full_w, fkey) for t in warnings[:room])
            out.append(
                (
                    "warn",
                    QRectF(margin, margin + rows["top"] * lh, full_w, len(lines) * lh),
                    lines,
                    False,
                )
            )
        if self._overlay is not None and self.overlay_item.isVisible():
            tag = (
                self._elided(
                    self.tr("AI overlay — requires review by a physician"), fm, full_w, fkey
                ),
            )
            out.append(
                (
                    "ai",
                    QRectF(margin, h - margin - (rows["bottom"] + 1) * lh, full_w, lh),
                    tag,
                    False,
                )
            )
        return out

    def _annotation_key(self, w: int, h: int) -> tuple[tuple[Any, ...], int] | None:
        """What the overlay texts are made from (None: nothing to paint), as ``(rest, index)``:
        the slice index, and the rest: the viewport size and font, the series (its annotated
        fields), the window, zoom, cine, cursor readout, overlay, message and tool state, and
        the screen orientation (the letters).

        Read from these inputs rather than from the texts: a repaint of an unchanged slice then
        costs a tuple, not the texts' formatting (see :meth:`annotation_text`). Only the
        bottom-left corner's "Im" and "Pos" lines depend on the index.
        """
        s = self.series
        if s is None:
            return None
        st = self.state
        settings = self.settings
        rest = (
            w,
            h,
            self._font_key,
            self.show_annotations,
            s.key,
            s.count,
            s.description,
            s.series_number,
            s.modality,
            s.slice_thickness,
            s.pixel_spacing,
            s.spacing_source,
            s.orientation,
            tuple(s.meta.values()),
            tuple(s.warnings),
            settings.hide_patient_identity,
            self.index in s.low_res,
            st.window,
            st.invert,
            st.orientation,
            self.preset_name,
            self.zoom,
            self.cine.isActive() and settings.cine_fps,
            self._cursor_text,
            self._overlay is not None and self.overlay_item.isVisible(),
            self._message,
            self.tool in ("length", "rect", "ellipse", "angle") and self._angle_pending is not None,
        )
        return rest, self.index

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.FontChange:
            self._font_key = self.font().key()  # the overlay texts are laid out anew
        super().changeEvent(event)

    def _paint_annotations_cached(self, p: QPainter, w: int, h: int) -> None:
        """Paint the overlay texts (corners, warnings, AI notice, orientation letters, message)
        as image blits, kept by what the texts are made from (:meth:`_annotation_key`).

        The texts' layout (eliding, font metrics) is most of a slice's own paint time; scrolling
        revisits slices, so the blits of the last few hundred are kept. A new slice changes
        only the bottom-left corner's lines: the blits of everything else, laid out for another
        slice with the same inputs, are reused around that corner's new lines (and the worker
        that windows the next slices lays theirs out ahead, see :meth:`_slice_text_job`).
        """
        key = self._annotation_key(w, h)
        if key is None:
            return
        cache = self._annotation_ops
        ops = cache.get(key)
        if ops is not None:
            cache.move_to_end(key)
        else:
            ops = cache[key] = self._slice_blits(p, w, h, key[0])
            while len(cache) > 512:
                cache.popitem(last=False)
        for at, pm in ops:
            p.drawImage(at, pm)
        if key[0] != self._last_rest:
            self._last_rest = key[0]
            if not self._cursor_text:
                # the worker lays out the next slices' overlays for these inputs too, around
                # this one's (not while the readout under the cursor changes at every move)
                self._prefetch()

    def _slice_blits(
        self, p: QPainter, w: int, h: int, rest: tuple[Any, ...]
    ) -> list[tuple[QPointF, QImage]]:
        """The overlay blits of the slice on screen; ``rest`` is its key less the index."""
        base = self._overlay_base.get(rest)
        if base is not None and self.series is not None:
            lines = [t for t in self._bottom_left_text(self.series)[: base.per_half] if t]
            if len(lines) == base.n_lines:  # the corner keeps its place: only its lines are new
                fm, font, fkey = base.fm, base.font, base.fkey
                own = [
                    (
                        QPointF(base.left, base.top + i * base.lh),
                        self._line(self._elided(t, fm, base.width, fkey), font, fkey, _TEXT),
                    )
                    for i, t in enumerate(lines)
                ]
                return base.around(own)
        corners = self.annotation_text() if self.show_annotations else {}
        laid = self._annotation_blocks(p, w, h, corners)
        bl = next((b for b in laid if b[0] == "bl"), None)
        if bl is not None and bl[2] is not None and self.series is not None:
            font, _big, fkey, *_ = self._annotation_fonts()
            p.setFont(font)
            fm = p.fontMetrics()
            lh = fm.height()
            if len(self._overlay_base) > 64:
                self._overlay_base.clear()
            self._overlay_base[rest] = _OverlayBase(
                [(kind, ops) for kind, ops, _rect in laid],
                bl[2].left(),
                bl[2].top(),
                bl[2].width(),
                lh,
                max(1, int((h / 2 - 8 - lh) // lh)),  # lines per corner, as laid out
                len(bl[1]),
                fm,
                font,
                fkey,
                tuple(self._bottom_left_tail(self.series)),
            )
        return [op for _kind, ops, _rect in laid for op in ops]

    def _annotation_fonts(self) -> tuple[QFont, QFont, str, str, int, int]:
        """The overlay fonts (9 pt text, 11 pt bold orientation letters), their keys and the
        letters' ascent, made once per widget font."""
        base = self.font()
        cached = self._fonts
        if cached is not None and cached[0] == base:
            return cached[1]
        font = QFont(base)
        font.setPointSizeF(9.0)
        # the face this (GUI) thread resolves, named: each thread keeps its own font cache, and a
        # worker rendering lines ahead must not resolve a generic family to another face (after
        # fonts were added to the database, e.g. for another language)
        font.setFamily(QFontInfo(font).family())
        big = QFont(font)
        big.setPointSizeF(11.0)
        big.setBold(True)
        fonts = (
            font,
            big,
            font.key(),
            big.key(),
            QFontMetrics(font).ascent(),
            QFontMetrics(big).ascent(),
        )
        self._fonts = (base, fonts)
        return fonts

    def _annotation_blocks(
        self, p: QPainter, w: int, h: int, corners: dict[str, list[str]]
    ) -> list[tuple[str, list[tuple[QPointF, QImage]], QRectF | None]]:
        """The overlay texts as image blits ``(top-left, image)`` by block, in painting order:
        ``(kind, blits, rect)`` with the kinds of :meth:`annotation_layout` and its rects, then
        ``letters``, ``message`` and ``hint`` (no rect). ``p`` is the painter they go to: its
        font metrics lay them out; ``corners`` is :meth:`annotation_text` (empty: none shown)."""
        out: list[tuple[str, list[tuple[QPointF, QImage]], QRectF | None]] = []
        if self.series is None:
            return out
        font, big, fkey, bkey, ascent, big_ascent = self._annotation_fonts()
        p.setFont(font)
        fm = p.fontMetrics()
        margin, lh = 8, fm.height()
        blocks = self._block_ops
        if len(blocks) > 1024:
            blocks.clear()

        def text(kind: str, x: float, y: float, s: str, color: QColor = _TEXT) -> None:
            out.append((kind, [(QPointF(x, y - ascent), self._line(s, font, fkey, color))], None))

        for kind, rect, lines, right in self.annotation_layout(w, h, fm, fkey, corners):
            # a block's blits are kept: a new slice changes one corner, the others are reused
            key = (kind, rect.left(), rect.top(), rect.right(), lines, right, fkey, lh)
            ops = blocks.get(key)
            if ops is None:
                color = {"warn": _WARN, "ai": _AI}.get(kind, _TEXT)
                ops = []
                for i, line in enumerate(lines):
                    pm = self._line(line, font, fkey, color)
                    x = rect.right() - pm.width() + 2 if right else rect.left()
                    if kind in ("warn", "ai"):
                        x = rect.center().x() - pm.width() / 2
                    ops.append((QPointF(x, rect.top() + i * lh), pm))
                if kind != "bl" and len(ops) > 1:
                    # a corner that stays while scrolling: its lines as one image, one blit
                    ops = [_composed(ops)]
                blocks[key] = ops
            out.append((kind, ops, rect))
        if self.show_annotations:
            letters = self.orientation_text()
            if letters:
                lkey: tuple[Any, ...] = ("letters", w, h, tuple(sorted(letters.items())), bkey)
                ops = blocks.get(lkey)
                if ops is None:
                    p.setFont(big)
                    bfm = p.fontMetrics()
                    ops = []

                    def letter(x: float, y: float, s: str) -> None:
                        pm = self._line(s, big, bkey, _ACCENT)
                        ops.append((QPointF(x, y - big_ascent), pm))

                    if letters.get("top"):
                        s = letters["top"]
                        letter(w / 2 - bfm.horizontalAdvance(s) / 2, margin + bfm.ascent(), s)
                    if letters.get("bottom"):
                        s = letters["bottom"]
                        letter(w / 2 - bfm.horizontalAdvance(s) / 2, h - margin - bfm.descent(), s)
                    if letters.get("left"):
                        letter(margin, h / 2 + bfm.ascent() / 2, letters["left"])
                    if letters.get("right"):
                        s = letters["right"]
                        letter(w - margin - bfm.horizontalAdvance(s), h / 2 + bfm.ascent() / 2, s)
                    p.setFont(font)
                    blocks[lkey] = ops
                out.append(("letters", ops, None))
        if self._message:
            color = QColor("#bdbdbd") if self._message == "Loading…" else QColor("#ff8a80")
            x = w / 2 - fm.horizontalAdvance(self._message) / 2
            text("message", x, h / 2, self._message, color)
        if self.tool in ("length", "rect", "ellipse", "angle") and self._angle_pending is not None:
            hint = "Click to place the second arm of the angle"
            x = w / 2 - fm.horizontalAdvance(hint) / 2
            text("hint", x, margin + fm.ascent(), hint, _ACCENT)
        return out
