"""Measurements that stay on the image they were drawn on, and survive series changes.

A :class:`MeasurementBinder` watches one :class:`app.gui.viewport.Viewport`. Each on-screen
measurement is bound to the image (SOP instance + frame, an
:class:`app.dicom.measurements.ImageKey`) shown when it was drawn: it is displayed and
re-measured only on that image (the viewport's ``measurement_filter``). Every change is stored
in the study library on a background thread, debounced: a handle dragged across the image is
written once, when it is released or after :data:`SAVE_IDLE_MS` without a move (and at once when
the reader goes to another image or series); when a series is shown again (in any viewport, or
after reopening the study) its measurements come back on their images. Imported presentation
states and TID 1500 reports appear the same way, since they are stored the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from app.dicom.measurements import (
    ImageKey,
    ImageView,
    KeyImageMark,
    delete_key_image,
    delete_measurement,
    load_measurements,
    save_key_image,
    save_measurement,
    save_view,
)
from app.dicom.measurements import (
    Measurement as StoredMeasurement,
)
from app.gui.measure import Measurement

log = logging.getLogger(__name__)

#: measurement kinds the viewport can draw and show
_GUI_KINDS = ("length", "rect", "ellipse", "angle", "cobb")

_IO = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hilum-measure-io")

#: a changed measurement is written after this long without another change (or on release)
SAVE_IDLE_MS = 300


class MeasurementBinder(QObject):
    """Bind a viewport's measurements to images and keep them in the library.

    Parameters
    ----------
    viewport : Viewport
    library : callable
        Returns the :class:`app.dicom.library.Library` (called on the I/O thread), or None for
        in-memory only.
    """

    _loaded = Signal(str, object)  # study uid, list of StoredMeasurement (from the I/O thread)

    def __init__(self, viewport: Any, library: Callable[[], Any] | None = None) -> None:
        super().__init__(viewport)
        self.vp = viewport
        self._library = library
        self._keys: dict[int, ImageKey] = {}  # id(gui measurement) -> its image
        self._ids: dict[int, str] = {}  # id(gui measurement) -> stored id
        self._stored: dict[str, dict[str, StoredMeasurement]] = {}  # study -> id -> measurement
        self._pending: ImageKey | None = None
        self._restoring = False
        self._keys_marked: set[str] = set()
        self._dirty: dict[str, StoredMeasurement] = {}  # stored id -> changed, not yet written
        self._dirty_view: ImageView | None = None
        self._released: set[int] = set()  # id(gui measurement): release hooked
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_IDLE_MS)
        self._timer.timeout.connect(self.flush)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.flush)
        viewport.measurement_filter = self._on_this_image
        viewport.measurements_changed.connect(self._changed)
        viewport.index_changed.connect(lambda *_: self.flush())
        viewport.measurement_removed.connect(self._removed)
        viewport.series_changed.connect(self._series_changed)
        self._loaded.connect(self._study_loaded)

    # -- which image -------------------------------------------------------------------------
    def current_key(self) -> ImageKey | None:
        """The image the viewport shows."""
        s = self.vp.series
        if s is None or not (0 <= self.vp.index < s.count):
            return None
        f = s.frames[self.vp.index]
        return ImageKey(
            s.study_uid, s.series_uid, f.sop_uid or f"{s.key}:{self.vp.index}", int(f.frame)
        )

    def key_of(self, m: Measurement) -> ImageKey | None:
        """The image a measurement belongs to."""
        return self._keys.get(id(m))

    def _on_this_image(self, m: Measurement) -> bool:
        key = self._keys.get(id(m))
        current = self.current_key()
        if key is None:  # new: it belongs to the image it is drawn on (or restored onto)
            key = self._pending or current
            if key is None:
                return True
            self._keys[id(m)] = key
        return current is not None and key.key() == current.key()

    # -- storing -----------------------------------------------------------------------------
    def stored(self, study_uid: str) -> list[StoredMeasurement]:
        """The measurements known for a study (stored and drawn)."""
        return list(self._stored.get(study_uid, {}).values())

    def _changed(self) -> None:
        if self._restoring or self.vp.series is None:
            return
        current = self.current_key()
        units = self.vp.series.units
        for m in self.vp.measurements:
            key = self._keys.get(id(m))
            if key is None or current is None or key.key() != current.key():
                continue  # values are only taken on the measurement's own image
            if m is getattr(self.vp, "_angle_pending", None) or m is getattr(
                self.vp, "_drawing", None
            ):
                continue  # still being drawn
            if not m.values:
                continue
            sid = self._ids.setdefault(
                id(m), StoredMeasurement(m.kind, tuple(m.points()[: _n(m)]), key).id
            )
            values = dict(m.values)
            if m.kind in ("rect", "ellipse"):
                values["unit"] = units  # ROI statistics are in the series' units (HU for CT)
            try:
                stored = StoredMeasurement(
                    kind=m.kind, points=tuple(m.points()[: _n(m)]), image=key, values=values, id=sid
                )
            except Exception as exc:  # noqa: BLE001 - a half-drawn shape is not stored
                log.debug("not stored: %s", exc)
                continue
            old = self._stored.setdefault(key.study_uid, {}).get(sid)
            if (
                old is not None
                and old.points == stored.points
                and dict(old.values) == dict(stored.values)
            ):
                continue
            self._stored[key.study_uid][sid] = stored
            self._dirty[sid] = stored
            if id(m) not in self._released and hasattr(m.roi, "sigRegionChangeFinished"):
                self._released.add(id(m))
                m.roi.sigRegionChangeFinished.connect(lambda *_: self.flush())  # handle released
        if self._dirty:
            self._dirty_view = self.view_state()  # the view it was drawn in (flush may come later)
            self._timer.start()  # restarted by every move: written once the drag rests

    def flush(self) -> None:
        """Write the changed measurements now (on the I/O thread), with the reader's view."""
        self._timer.stop()
        if not self._dirty:
            return
        dirty, self._dirty = list(self._dirty.values()), {}
        for stored in dirty:
            self._write(save_measurement, stored)
        view, self._dirty_view = self._dirty_view, None
        if view is not None:
            self._write(save_view, view)

    def view_state(self) -> ImageView | None:
        """The reader's window and zoomed area on the shown image (for presentation states)."""
        key = self.current_key()
        if key is None:
            return None
        area = None
        if not getattr(self.vp, "_fitted", True):
            from PySide6.QtCore import QPointF

            rect = self.vp.vb.viewRect()
            a = self.vp.group.mapFromParent(QPointF(rect.left(), rect.top()))
            b = self.vp.group.mapFromParent(QPointF(rect.right(), rect.bottom()))
            s = self.vp.series
            x0, x1 = sorted((max(0.0, min(a.x(), b.x())), min(float(s.columns), max(a.x(), b.x()))))
            y0, y1 = sorted((max(0.0, min(a.y(), b.y())), min(float(s.rows), max(a.y(), b.y()))))
            if x1 - x0 >= 1 and y1 - y0 >= 1:
                area = ((x0, y0), (x1, y1))
        return ImageView(key, float(self.vp.window_center), float(self.vp.window_width), area)

    def save_view(self) -> None:
        """Store the window/zoom of the shown image (exported in its presentation state)."""
        view = self.view_state()
        if view is not None:
            self._write(save_view, view)

    def toggle_key_image(self) -> bool:
        """Mark the shown image as a key image (or unmark it); True when it is now marked."""
        self.flush()  # the measurements drawn before marking are stored with it
        key = self.current_key()
        if key is None:
            return False
        mark = KeyImageMark(key)
        if mark.id in self._keys_marked:
            self._keys_marked.discard(mark.id)
            self._write(delete_key_image, mark.id)
            return False
        self._keys_marked.add(mark.id)
        self._write(save_key_image, mark)
        self.save_view()
        return True

    def _removed(self, m: Measurement) -> None:
        sid = self._ids.pop(id(m), None)
        key = self._keys.pop(id(m), None)
        self._released.discard(id(m))
        if sid is None or key is None:
            return
        self._dirty.pop(sid, None)  # deleted: a pending save must not bring it back
        self._stored.get(key.study_uid, {}).pop(sid, None)
        self._write(delete_measurement, sid)

    def _write(self, fn: Callable[[Any, Any], None], arg: Any) -> None:
        if self._library is None:
            return
        library = self._library

        def run() -> None:
            try:
                lib = library()
                if lib is not None:
                    fn(lib, arg)
            except Exception as exc:  # noqa: BLE001 - storage must never break drawing
                log.warning("measurement not stored: %s", type(exc).__name__)

        _IO.submit(run)

    # -- restoring ---------------------------------------------------------------------------
    def _series_changed(self, series: Any) -> None:
        self.flush()  # what was drawn on the previous series is written before it leaves
        alive = {id(m) for m in self.vp.measurements}  # the others left the screen
        self._keys = {k: v for k, v in self._keys.items() if k in alive}
        self._ids = {k: v for k, v in self._ids.items() if k in alive}
        self._released &= alive
        if series is None:
            return
        study = series.study_uid
        if study in self._stored:
            self._restore()
        elif self._library is not None and study:
            library = self._library
            self._stored[study] = {}

            def run() -> None:
                try:
                    lib = library()
                    found = load_measurements(lib, study) if lib is not None else []
                except Exception as exc:  # noqa: BLE001
                    log.warning("measurements not loaded: %s", type(exc).__name__)
                    found = []
                self._loaded.emit(study, found)

            _IO.submit(run)

    def _study_loaded(self, study: str, found: list[StoredMeasurement]) -> None:
        known = self._stored.setdefault(study, {})
        for m in found:
            known.setdefault(m.id, m)
        if self.vp.series is not None and self.vp.series.study_uid == study:
            self._restore()

    def _restore(self) -> None:
        """Put the stored measurements of the shown series back (each on its image)."""
        s = self.vp.series
        if s is None:
            return
        shown = set(self._ids.values())
        self._restoring = True
        try:
            for stored in self._stored.get(s.study_uid, {}).values():
                if stored.image.series_uid != s.series_uid or stored.id in shown:
                    continue
                if stored.kind not in _GUI_KINDS or stored.image.is_reformat:
                    continue
                self._pending = stored.image
                try:
                    m = self.vp.add_measurement(stored.kind, [tuple(p) for p in stored.points])
                finally:
                    self._pending = None
                self._keys[id(m)] = stored.image
                self._ids[id(m)] = stored.id
                if stored.values and not m.values:
                    m.values = dict(stored.values)
        finally:
            self._restoring = False


def _n(m: Measurement) -> int:
    return {"length": 2, "rect": 2, "ellipse": 2, "angle": 3, "cobb": 4}.get(m.kind, 2)


def _import_job(library: Callable[[], Any], files: list[str], *, progress: Any) -> Any:
    """Worker thread: GSPS, TID 1500 SR and KOS files into the library."""
    from app.reporting.annotations import import_annotations

    progress.update(0, len(files), "Importing annotations")
    return import_annotations(library(), files)


def _split_job(paths: list[str], *, progress: Any) -> tuple[list[str], list[str]]:
    from app.reporting.annotations import split_annotation_files

    return split_annotation_files(paths, progress)


class _DropFilter(QObject):
    """Drops on the main window go through :func:`open_dropped` (annotation objects apart)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self._window: Any = window

    def eventFilter(self, obj: QObject, event: Any) -> bool:  # noqa: N802 - Qt API
        from PySide6.QtCore import QEvent

        if obj is not self._window or event.type() != QEvent.Type.Drop:
            return False
        mime = event.mimeData()
        local = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if not local:
            return False
        event.acceptProposedAction()
        cast(Any, self._window).open_dropped(local)  # set by install()
        return True


def reload_measurements(window: Any, study_uid: str) -> None:
    """Show what the library now holds for a study (after an import) in every viewport and
    in the MPR layout."""
    for binder in getattr(window, "measurement_binders", []):
        binder._stored.pop(study_uid, None)
        if binder.vp.series is not None and binder.vp.series.study_uid == study_uid:
            binder._series_changed(binder.vp.series)
    mpr = getattr(window, "mpr_view", None)
    if (
        mpr is not None
        and getattr(mpr, "series", None) is not None
        and mpr.series.study_uid == study_uid
    ):
        mpr._restore_measurements()


def import_annotation_files(window: Any, files: list[str]) -> Any:
    """Import presentation states, TID 1500 reports and key object selections on a worker;
    the study's viewports then show them. Returns the worker."""

    def done(summary: Any) -> None:
        text = (
            window.tr("Imported %1 measurement(s), %2 key image(s), %3 view(s).")
            .replace("%1", str(summary.measurements))
            .replace("%2", str(summary.key_images))
            .replace("%3", str(summary.views))
        )
        if summary.skipped:
            text += " " + window.tr("Not imported: %1").replace(
                "%1", "; ".join(summary.skipped[:3])
            )
        window.show_status(text, 8000)
        window.annotations_imported = summary
        for study in summary.studies:
            reload_measurements(window, study)

    return window.run_in_background(
        _import_job, window.library, list(files), on_result=done, on_error=window.show_error
    )


def open_dropped(window: Any, paths: list[str]) -> None:
    """Dropped paths: presentation states, SR and KOS files are imported as annotations (after
    the images dropped with them), the rest as images (``open_paths``). Folders are not looked
    into here: they go to the image import as they are."""
    paths = [p for p in paths if p]
    if not paths:
        return

    def split(parts: tuple[list[str], list[str]]) -> None:
        objects, rest = parts
        if rest:
            if objects:  # their images first: annotations are bound to images in the library

                def after() -> None:
                    window.import_finished.disconnect(after)
                    import_annotation_files(window, objects)

                window.import_finished.connect(after)
            window.open_paths(rest)
        elif objects:
            import_annotation_files(window, objects)

    window.run_in_background(_split_job, paths, on_result=split, on_error=window.show_error)


def install(window: Any) -> list[MeasurementBinder]:
    """Bind every viewport of the main window, add Image ▸ Mark key image (K) and
    File ▸ Import annotations, and import dropped GSPS/SR/KOS files as annotations."""
    from PySide6.QtGui import QAction, QKeySequence

    binders = [MeasurementBinder(vp, window.library) for vp in window.grid.viewports]
    window.measurement_binders = binders
    window.open_dropped = lambda paths: open_dropped(window, paths)
    window._annotation_drops = _DropFilter(window)
    window.installEventFilter(window._annotation_drops)

    def choose() -> None:
        from PySide6.QtWidgets import QFileDialog

        files, _ = QFileDialog.getOpenFileNames(
            window,
            window.tr("Import annotations"),
            "",
            window.tr(
                "DICOM presentation states, measurement reports, key images (*.dcm *);;All files (*)"
            ),
        )
        if files:
            import_annotation_files(window, files)

    importer = QAction(window.tr("Import annotations (GSPS, SR, KOS)…"), window)
    importer.triggered.connect(choose)
    window.act_import_annotations = importer

    def toggle() -> None:
        vp = window.active_viewport()
        binder = next((b for b in binders if b.vp is vp), None)
        if binder is None or vp.series is None:
            return
        marked = binder.toggle_key_image()
        window.show_status(
            window.tr("Key image marked (exported as a Key Object Selection).")
            if marked
            else window.tr("Key image unmarked.")
        )

    action = QAction(window.tr("Mark key image"), window)
    action.setShortcut(QKeySequence("K"))
    action.triggered.connect(toggle)
    window.act_key_image = action
    window.addAction(action)
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is not None and menu_action.text().replace("&", "") == window.tr("Image"):
            menu.addAction(action)
        elif menu is not None and menu_action.text().replace("&", "") == window.tr("File"):
            # after Open recent: the file menu's opening actions come first
            anchor = next((a for a in menu.actions() if a.isSeparator()), None)
            if anchor is not None:
                menu.insertAction(anchor, importer)
            else:
                menu.addAction(importer)
    return binders
