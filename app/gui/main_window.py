"""The main reading window: study browser, viewports, import log, side panels, menus and toolbar."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from functools import partial
from typing import Any, Callable

import numpy as np
import shiboken6
from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QWidget,
)

from app import __version__
from app.core import paths
from app.core.types import ImageRef
from app.gui.background import BackgroundTasks
from app.gui.browser import StudyBrowser
from app.gui.dialogs import SettingsDialog, ShortcutsDialog, TagBrowser
from app.gui.drops import forward_file_drops_in
from app.gui.errors import show_error, user_message
from app.gui import menus
from app.gui.import_log import ImportLog
from app.gui.panels import PANEL_MODULES
from app.gui.series import SeriesData
from app.gui.settings import (
    Settings,
    load_settings,
    load_window_state,
    save_settings,
    save_window_state,
)
from app.gui.viewport import Viewport
from app.gui.workers import Worker
from app.gui.workers import run_in_background as _run_in_background

log = logging.getLogger(__name__)

LAYOUT_SHAPES = {"1x1": (1, 1), "1x2": (1, 2), "2x2": (2, 2)}


def icon(name: str) -> QIcon:
    """An icon from ``resources/icons``."""
    for ext in ("svg", "png"):
        p = paths.resources_dir() / "icons" / f"{name}.{ext}"
        if p.exists():
            return QIcon(str(p))
    return QIcon()


class ViewportGrid(QWidget):
    """Up to four viewports in a 1x1, 1x2 or 2x2 grid."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewports = [Viewport(settings, self) for _ in range(4)]
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.layout_name = ""
        self.set_layout(settings.layout)

    def set_layout(self, name: str) -> None:
        """Show 1, 2 or 4 viewports."""
        rows, cols = LAYOUT_SHAPES.get(name, (1, 1))
        self.layout_name = name if name in LAYOUT_SHAPES else "1x1"
        for vp in self.viewports:
            self.grid.removeWidget(vp)
            vp.hide()
        for i in range(rows * cols):
            vp = self.viewports[i]
            self.grid.addWidget(vp, i // cols, i % cols)
            vp.show()

    @property
    def visible(self) -> list[Viewport]:
        """The viewports of the current layout."""
        rows, cols = LAYOUT_SHAPES[self.layout_name]
        return self.viewports[: rows * cols]


class MainWindow(QMainWindow):
    """Hilum's reading window. See :mod:`app.gui.panels` for what panels can use.

    Signals
    -------
    study_changed(str), series_changed(object), image_changed(object),
    active_viewport_changed(object)
        What the active viewport shows (for panels).
    first_image_painted()
        The first image after :meth:`open_paths` was painted (screenshots, benchmarks).
    import_finished()
        An import ended (with or without errors).
    """

    study_changed = Signal(str)
    series_changed = Signal(object)
    image_changed = Signal(object)
    active_viewport_changed = Signal(object)
    first_image_painted = Signal()
    import_finished = Signal()

    # built by app.gui.menus (actions, menus, toolbar)
    act_about: QAction
    act_batch: QAction
    act_actual: QAction
    act_annotations: QAction
    act_auto_window: QAction
    act_cancel: QAction
    act_cine: QAction
    act_clear: QAction
    act_delete: QAction
    act_faster: QAction
    act_fit: QAction
    act_flip_h: QAction
    act_flip_v: QAction
    act_fullscreen: QAction
    act_invert: QAction
    act_open: QAction
    act_open_folder: QAction
    act_overlay: QAction
    act_pacs: QAction
    act_quit: QAction
    act_reset: QAction
    act_rotate: QAction
    act_rotate_ccw: QAction
    act_settings: QAction
    act_shortcuts: QAction
    act_slower: QAction
    act_sync: QAction
    act_tags: QAction
    act_zoom_in: QAction
    act_zoom_out: QAction
    tool_group: QActionGroup
    tool_actions: dict[str, QAction]
    layout_group: QActionGroup
    layout_actions: dict[str, QAction]
    preset_actions: list[QAction]
    recent_menu: QMenu
    panels_menu: QMenu
    presets_menu: QMenu
    preset_button: QToolButton

    def __init__(self, settings: Settings | None = None) -> None:
        """Long because it wires the window's docks, viewports and signals in the order Qt needs; each piece is built by its own helper."""

        super().__init__()
        self.settings = settings or load_settings()
        self.setWindowTitle(self.tr("Hilum"))
        self.setWindowIcon(icon("hilum"))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self._library: Any = None
        self._active = 0
        self._current_study = ""
        self._current_series: SeriesData | None = None
        self._waiting_first_image = False
        self._open_started: float | None = None
        self.first_image_ms: float | None = None
        self._syncing = False
        self._import_problems = 0
        self._import_shown = False
        # series being reloaded from the library: True when asked again meanwhile
        self._refreshing: dict[str, bool] = {}
        self._first_shown: threading.Event | None = None
        self._announce_pending = False
        self.panels: dict[str, QDockWidget] = {}

        # central: viewports, or a drop hint while nothing is loaded
        self.grid = ViewportGrid(self.settings, self)
        for vp in self.grid.viewports:
            vp.view.setAcceptDrops(False)
            vp.activated.connect(self._set_active_viewport)
            vp.index_changed.connect(partial(self._viewport_index_changed, vp))
            vp.series_changed.connect(partial(self._viewport_series_changed, vp))
            vp.status.connect(self._cursor_label_set)
            vp.window_changed.connect(partial(self._window_changed, vp))
            vp.image_painted.connect(self._image_painted)
            vp.series_dropped.connect(partial(self._series_dropped, vp))
        self.hint = QLabel(
            self.tr("Drop DICOM files, folders or zip archives here")
            + "\n\n"
            + self.tr("or use File ▸ Open (Ctrl+O)")
        )
        self.hint.setObjectName("DropHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.grid)
        self.setCentralWidget(self.stack)

        # left: studies; bottom: import log
        self.browser = StudyBrowser(self.settings.thumbnail_size)
        self.browser.series_activated.connect(self.show_series)
        self.browser.library_series_requested.connect(self.open_library_series)
        self.browser_dock = self._dock(
            self.tr("Studies"), "dock_studies", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.import_log = ImportLog()
        self.log_dock = self._dock(
            self.tr("Import log"),
            "dock_import_log",
            self.import_log,
            Qt.DockWidgetArea.BottomDockWidgetArea,
        )
        self.log_dock.hide()
        self.import_log.changed.connect(self._log_changed)
        self.tag_browser: TagBrowser | None = None

        self._build_status_bar()
        menus.build_actions(self)
        menus.build_menus(self)
        from app.gui import mpr_view  # the MPR layout (View ▸ MPR, Ctrl+M)

        mpr_view.install(self)
        from app.gui import measure_binding  # measurements stay on their image; key images

        measure_binding.install(self)
        from app.gui import reference_lines  # other viewports' slices as lines

        reference_lines.install(self)
        from app.gui import hanging_view  # priors, hanging protocols, offset sync

        hanging_view.install(self)
        menus.build_toolbar(self)
        self._load_panels()
        self._restore_state()
        self._set_active_viewport(self.grid.viewports[0])
        self._update_actions()
        QTimer.singleShot(0, self.refresh_library)
        QTimer.singleShot(0, self._warm_up)

    # ------------------------------------------------------------------------------ building
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        self.cursor_label = QLabel("")
        self.wl_label = QLabel("")
        self.provider_label = QLabel(self.tr("AI: not loaded"))
        self.provider_label.setToolTip(self.tr("Execution provider of the AI models"))
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setFixedHeight(20)
        self.cancel_button.clicked.connect(self.cancel_background)
        self.cancel_button.hide()
        sb.addPermanentWidget(self.cursor_label)
        sb.addPermanentWidget(self.wl_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)
        sb.addPermanentWidget(self.provider_label)
        self.tasks = BackgroundTasks(
            self, self.progress, self.cancel_button, self.show_error, self._tasks_idle
        )

    def _load_panels(self) -> None:
        """Import the panel modules that exist and add their docks on the right (app.gui.panels)."""
        first: QDockWidget | None = None
        for name in PANEL_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue  # that panel is not part of this build
                log.error("panel %s cannot be imported: missing %s", name, exc.name)
                self.show_status(
                    self.tr("Panel %1 unavailable: missing %2")
                    .replace("%1", name.rsplit(".", 1)[-1])
                    .replace("%2", str(exc.name))
                )
                continue
            except Exception as exc:  # noqa: BLE001 - a broken panel must not stop the window
                log.error("panel %s failed to import", name, exc_info=exc)
                continue
            factory = getattr(module, "create_panel", None)
            if factory is None:
                continue
            try:
                dock = factory(self)
            except Exception as exc:  # noqa: BLE001
                log.error("panel %s failed to start", name, exc_info=exc)
                self.show_status(
                    self.tr("Panel %1 failed to start: %2")
                    .replace("%1", name.rsplit(".", 1)[-1])
                    .replace("%2", user_message(exc))
                )
                continue
            if not isinstance(dock, QDockWidget):
                continue
            if not dock.objectName():
                dock.setObjectName(f"panel_{name.rsplit('.', 1)[-1]}")
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            if first is None:
                first = dock
            else:
                self.tabifyDockWidget(first, dock)
            self.panels[name.rsplit(".", 1)[-1]] = dock
            forward_file_drops_in(dock)  # a film dropped on the Report editor is imported
            self.panels_menu.addAction(dock.toggleViewAction())
        if first is not None:
            first.raise_()
        self.panels_menu.setEnabled(bool(self.panels))

    def _restore_state(self) -> None:
        geom, state = load_window_state()
        if geom is not None:
            self.restoreGeometry(geom)
        else:
            self.resize(1440, 900)
        if state is not None:
            self.restoreState(state)
        self.set_layout(self.settings.layout)

    def _warm_up(self) -> None:
        """Polish and render the (still hidden) viewports once while the window is idle, so the
        first image does not pay for style sheets, fonts and layouts."""
        if self.stack.currentWidget() is self.grid:
            return
        self.grid.resize(self.stack.size())
        self.grid.grab()

    # ------------------------------------------------------------------------------ panels API
    def active_viewport(self) -> Viewport:
        """The viewport the user works in."""
        return self.grid.viewports[self._active]

    def current_series(self) -> SeriesData | None:
        """The series in the active viewport."""
        return self.active_viewport().series

    def current_frame(self) -> np.ndarray | None:
        """The decoded frame shown in the active viewport."""
        return self.active_viewport().frame

    def current_image(self) -> ImageRef | None:
        """The image in the active viewport."""
        vp = self.active_viewport()
        s = vp.series
        if s is None or not (0 <= vp.index < s.count):
            return None
        ref = s.frames[vp.index]
        return ImageRef(
            study_uid=s.study_uid,
            series_uid=s.series_uid,
            sop_uid=ref.sop_uid,
            path=ref.path,
            frame=ref.frame,
        )

    def current_dataset_path(self) -> str | None:
        """File of the current image."""
        ref = self.current_image()
        return ref.path if ref else None

    def set_overlay(self, rgba: np.ndarray | None) -> None:
        """Overlay an RGBA image (source pixel grid) on the active viewport."""
        self.active_viewport().set_overlay(rgba)
        self.act_overlay.setChecked(True)

    def set_provider_text(self, text: str) -> None:
        """Status-bar label for the AI execution provider."""
        self.provider_label.setText(text)

    def show_status(self, text: str, ms: int = 4000) -> None:
        """A transient status-bar message."""
        self.statusBar().showMessage(text, ms)

    def show_error(self, exc: BaseException) -> None:
        """Show an error (the one GUI way)."""
        show_error(self, exc)

    def library(self) -> Any:
        """The study library (use on worker threads)."""
        if self._library is None:
            from app.dicom.library import Library

            self._library = Library()
        return self._library

    def run_in_background(
        self,
        fn: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Worker:
        """Run ``fn(*args, progress=..., **kwargs)`` on the pool with the window's progress bar and
        Cancel (:meth:`app.gui.background.BackgroundTasks.run`: ``on_result``, ``on_error``,
        ``on_progress``, ``on_item``, ``on_finished``)."""
        return self.tasks.run(fn, *args, **kwargs)

    @property
    def _workers(self) -> list[Worker]:
        return self.tasks.workers

    # ------------------------------------------------------------------------------ background
    def _tasks_idle(self) -> None:
        if self._waiting_first_image:
            QTimer.singleShot(300, self._check_first_image)

    def _check_first_image(self) -> None:
        """After an import: stop waiting for a first image that cannot come (nothing shown, or
        every shown frame failed to decode), so the panels still hear about the series."""
        if not self._waiting_first_image or self._workers:
            return
        decoding = any(vp.provider is not None and vp.provider.busy for vp in self.grid.visible)
        if decoding:
            QTimer.singleShot(300, self._check_first_image)
            return
        if any(
            vp.series is not None and vp.frame is None and not vp._message.startswith("Loading")
            for vp in self.grid.visible
        ) or all(vp.series is None for vp in self.grid.visible):
            self._waiting_first_image = False
            if self._announce_pending:
                self._announce(self.active_viewport())
        else:
            QTimer.singleShot(300, self._check_first_image)

    def cancel_background(self) -> None:
        """Cancel every running background task (imports, panel work)."""
        if self.tasks.cancel():
            self.show_status(self.tr("Cancelling…"))

    @property
    def busy(self) -> bool:
        """True while background tasks run."""
        return self.tasks.busy

    # ------------------------------------------------------------------------------ import
    def open_paths(self, paths_in: list[str]) -> Worker | None:
        """Import files, folders, zips or DICOMDIRs in the background; show the first image early."""
        items = [os.fspath(p) for p in paths_in if p]
        if not items:
            return None
        self._open_started = time.perf_counter()
        self._waiting_first_image = True
        self._import_problems = 0
        self._import_shown = False
        self._remember_recent(items)
        self.show_status(self.tr("Importing %1 item(s)…").replace("%1", str(len(items))), 3000)
        cache = self.settings.cache_mb * 1024 * 1024
        self._first_shown = threading.Event()
        worker = self.run_in_background(
            _import_paths,
            items,
            on_item=self._import_item,
            on_result=self._import_done,
            on_error=self._import_error,
            cache_bytes=cache,
            thumb_size=self.settings.thumbnail_size,
            first_shown=self._first_shown,
            on_finished=self.import_finished.emit,
        )
        worker.signals.cancelled.connect(
            lambda: self.show_status(self.tr("Import cancelled; what was read so far stays."))
        )
        return worker

    def _import_item(self, event: Any) -> None:
        kind, payload = event
        if kind == "preview":
            # the first image of each import goes to the active viewport at once
            if not self._import_shown:
                self._import_shown = True
                self._show_in(self.active_viewport(), payload)
        elif kind == "series":
            self.browser.add_series(payload)
            replaced = False
            for vp in self.grid.viewports:
                s = vp.series
                if (
                    s is not None
                    and s.preview
                    and s.series_uid == payload.series_uid
                    and payload.stack_index == 0
                ):
                    self._replace_preview(vp, s, payload)
                    replaced = True
            if not replaced and not self._import_shown:
                self._import_shown = True
                self._show_in(self.active_viewport(), payload)
            elif not replaced:
                empty = self._empty_or_active_viewport()
                if empty is not None:
                    self._show_in(empty, payload)
            if self._current_series is not None and self._current_series.key == payload.key:
                self.browser.select_series(payload)
        elif kind == "errors":
            if payload:
                self._import_problems += len(payload)
                self.import_log.add_many(payload)

    def _replace_preview(self, vp: Viewport, preview: SeriesData, full: SeriesData) -> None:
        """Put the indexed series in place of its preview; a preview still being refined to full
        resolution is replaced once that decode lands (so the film is decoded once)."""
        if preview.low_res and vp.provider is not None and vp.provider.busy:
            provider = vp.provider

            def later(index: int) -> None:
                if not preview.low_res:
                    provider.frame_ready.disconnect(later)
                    # the provider outlives a closed window: its viewport may be gone
                    if shiboken6.isValid(vp) and vp.series is preview:
                        vp.replace_series(full)

            provider.frame_ready.connect(later)
            return
        vp.replace_series(full)

    def _import_done(self, result: dict[str, Any]) -> None:
        n_err = self._import_problems
        msg = (
            self.tr("Imported %1 series from %2 files")
            .replace("%1", str(result.get("series", 0)))
            .replace("%2", str(result.get("files", 0)))
        )
        if n_err:
            msg += self.tr("; %1 problem(s) in the import log").replace("%1", str(n_err))
        self.show_status(msg, 8000)
        self.refresh_library()

    def _import_error(self, exc: BaseException) -> None:
        self.import_log.add("import", user_message(exc))

    def _log_changed(self, n: int) -> None:
        if n:
            if not self.log_dock.isVisible():
                self.log_dock.show()
                self.resizeDocks([self.log_dock], [150], Qt.Orientation.Vertical)
            self.log_dock.setWindowTitle(self.tr("Import log (%1)").replace("%1", str(n)))
        else:
            self.log_dock.setWindowTitle(self.tr("Import log"))

    def refresh_library(self) -> None:
        """List the library's studies in the browser (recent studies), in the background."""
        from app.gui.loader import list_library

        _run_in_background(
            list_library,
            on_result=self._library_listed,
            on_error=lambda e: log.warning("library listing failed: %s", user_message(e)),
        )

    def _library_listed(self, studies: list[dict[str, Any]]) -> None:
        for study in reversed(studies[:50]):
            self.browser.add_library_study(study)

    def open_library_series(self, series_uid: str) -> None:
        """Load a series known from the library and show it in the active viewport."""
        from app.gui.loader import open_library_series

        self._waiting_first_image = True
        self._open_started = time.perf_counter()

        def done(stacks: list[SeriesData]) -> None:
            for s in stacks:
                self.browser.add_series(s)
            if stacks:
                self.show_series(stacks[0])
            else:
                self.show_status(self.tr("That series has no images in the library any more."))

        self.run_in_background(
            open_library_series,
            series_uid,
            on_result=done,
            cache_bytes=self.settings.cache_mb * 1024 * 1024,
            thumb_size=self.settings.thumbnail_size,
        )

    def refresh_library_series(self, series_uid: str) -> None:
        """Reload a loaded series from the library, where more of it has arrived (a retrieve,
        the storage listener), and swap it into the browser and every viewport showing it,
        keeping each view. One reload per series at a time; a request during one is served
        once it lands (the newest library state always lands last)."""
        from app.gui.loader import open_library_series

        if series_uid in self._refreshing:
            self._refreshing[series_uid] = True  # again when this one lands
            return
        self._refreshing[series_uid] = False

        def landed(stacks: list[SeriesData]) -> None:
            again = self._refreshing.pop(series_uid, False)
            for stack in stacks:
                self.browser.add_series(stack)
            if stacks:
                for vp in self.grid.viewports:
                    if vp.series is not None and str(vp.series.series_uid) == series_uid:
                        vp.replace_series(stacks[0])
            if again:
                self.refresh_library_series(series_uid)

        def failed(exc: BaseException) -> None:
            self._refreshing.pop(series_uid, None)
            log.debug("series refresh failed: %s", user_message(exc))

        _run_in_background(
            open_library_series,
            series_uid,
            on_result=landed,
            on_error=failed,
            cache_bytes=self.settings.cache_mb * 1024 * 1024,
            thumb_size=self.settings.thumbnail_size,
        )

    # ------------------------------------------------------------------------------ viewing
    def _empty_or_active_viewport(self) -> Viewport | None:
        for vp in self.grid.visible:
            if vp.series is None:
                return vp
        return None

    def _show_in(self, vp: Viewport, series: SeriesData, index: int | None = None) -> None:
        self.stack.setCurrentWidget(self.grid)
        vp.set_series(series, index)
        vp.set_tool(self.active_viewport().tool)

    def show_series(self, series: SeriesData) -> None:
        """Show a series in the active viewport."""
        self._show_in(self.active_viewport(), series)

    def _series_dropped(self, vp: Viewport, token: str) -> None:
        """A series dragged from the browser onto a viewport."""
        kind, _, key = token.partition(":")
        self._set_active_viewport(vp)
        if kind == "series" and key in self.browser.series_data:
            self._show_in(vp, self.browser.series_data[key])
        elif kind == "library" and key:
            self.open_library_series(key)

    def set_layout(self, name: str) -> None:
        """1x1, 1x2 or 2x2; new viewports get the next series of the browser."""
        self.grid.set_layout(name)
        self.settings.layout = self.grid.layout_name
        self.layout_actions[self.grid.layout_name].setChecked(True)
        if self._active >= len(self.grid.visible):
            self._set_active_viewport(self.grid.visible[0])
        self._highlight_active()
        loaded = self.browser.series_items()
        shown = {vp.series.key for vp in self.grid.visible if vp.series is not None}
        pending = [s for s in loaded if s.key not in shown]
        for vp in self.grid.visible:
            if vp.series is None and pending:
                self._show_in(vp, pending.pop(0))

    def set_tool(self, tool: str) -> None:
        """Left-button tool for every viewport."""
        for vp in self.grid.viewports:
            vp.set_tool(tool)
        self.tool_actions[tool].setChecked(True)

    def apply_preset(self, number: int) -> None:
        """Number key: window preset ``number`` (0 = header/default)."""
        vp = self.active_viewport()
        p = vp.apply_preset(number)
        if p is not None:
            self.show_status(f"{p.name}: W {p.width:g} L {p.center:g}", 2500)

    def _fill_presets_menu(self) -> None:
        self.presets_menu.clear()
        vp = self.active_viewport()
        a = self.presets_menu.addAction("0  Header / default window")
        a.triggered.connect(partial(self.apply_preset, 0))
        from app.gui.presets import preset_for_key

        for i in range(1, 10):
            p = preset_for_key(vp.presets, i)
            if p is not None:
                a = self.presets_menu.addAction(f"{i}  {p.name}   (W {p.width:g}  L {p.center:g})")
                a.triggered.connect(partial(self.apply_preset, i))

    def _cine_speed(self, factor: float) -> None:
        vp = self.active_viewport()
        vp.set_cine_fps(self.settings.cine_fps * factor)
        self.show_status(
            self.tr("Cine %1 fps").replace("%1", f"{self.settings.cine_fps:.0f}"), 1500
        )

    def _toggle_overlay(self) -> None:
        for vp in self.grid.viewports:
            vp.set_overlay_visible(self.act_overlay.isChecked())

    def _toggle_sync(self) -> None:
        self.settings.sync_scroll = self.act_sync.isChecked()

    def _toggle_annotations(self) -> None:
        self.settings.show_annotations = self.act_annotations.isChecked()
        for vp in self.grid.viewports:
            vp.set_show_annotations(self.settings.show_annotations)

    def _toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def _set_active_viewport(self, vp: Viewport) -> None:
        idx = self.grid.viewports.index(vp)
        changed = idx != self._active
        self._active = idx
        self._highlight_active()
        # the status bar follows the active viewport at once (not at the next mouse move)
        self._window_changed(vp, vp.window_center, vp.window_width)
        self.cursor_label.setText(vp.cursor_text)
        if changed or self._current_series is not vp.series:
            self.active_viewport_changed.emit(vp)
            self._announce(vp)
        self._update_actions()

    def _highlight_active(self) -> None:
        """The 2 px accent frame on the active viewport whenever more than one is shown."""
        several = len(self.grid.visible) > 1
        for i, other in enumerate(self.grid.viewports):
            other.set_active(several and i == self._active)

    def _announce(self, vp: Viewport) -> None:
        if vp is not self.active_viewport():
            return
        if self._waiting_first_image and vp.series is not None:
            # panels react to a new series (some load models): let the first image paint first
            self._announce_pending = True
            return
        self._announce_pending = False
        s = vp.series
        if s is not self._current_series:
            self._current_series = s
            self.series_changed.emit(s)
            self.browser.select_series(s)
        study = s.study_uid if s is not None else ""
        if study != self._current_study:
            self._current_study = study
            self.study_changed.emit(study)
        self.image_changed.emit(self.current_image())
        self._update_title()

    def _viewport_series_changed(self, vp: Viewport, series: Any) -> None:
        self._announce(vp)
        self._update_actions()

    def _viewport_index_changed(self, vp: Viewport, index: int) -> None:
        if vp is self.active_viewport():
            self.image_changed.emit(self.current_image())
            if self.tag_browser is not None and self.tag_browser.isVisible():
                self.tag_browser.show_image(vp.series, index)
        if self.settings.sync_scroll and not self._syncing:
            self._sync_from(vp)

    def _sync_from(self, source: Viewport) -> None:
        """Scroll the other viewports to the slice nearest to the source's position."""
        s = source.series
        if s is None:
            return
        pos = s.slice_position(source.index)
        self._syncing = True
        try:
            for vp in self.grid.visible:
                if vp is source or vp.series is None or vp.series.count < 2:
                    continue
                target = None
                if (
                    pos is not None
                    and vp.series.normal is not None
                    and s.normal is not None
                    and abs(float(np.dot(vp.series.normal, s.normal))) > 0.9
                ):
                    # offset sync: relative to the landmark the reader set in each viewport
                    sync = getattr(self, "offset_sync", None)
                    mapped = sync.map(id(source), pos, id(vp)) if sync is not None else pos
                    target = vp.series.nearest_index(mapped)
                if target is None:  # no common geometry: same relative position
                    target = round(source.index / max(s.count - 1, 1) * (vp.series.count - 1))
                vp.set_index(target)
        finally:
            self._syncing = False

    def _window_changed(self, vp: Viewport, center: float, width: float) -> None:
        if vp is self.active_viewport():
            self.wl_label.setText(
                f"W {width:.0f}  L {center:.0f}"
                if width >= 10
                else f"W {width:.3g}  L {center:.3g}"
            )

    def _cursor_label_set(self, text: str) -> None:
        # the readout is always the image under the cursor (whichever viewport that is)
        self.cursor_label.setText(text)

    def _image_painted(self) -> None:
        if self._first_shown is not None:
            self._first_shown.set()
        if self._waiting_first_image:
            self._waiting_first_image = False
            if self._open_started is not None:
                self.first_image_ms = (time.perf_counter() - self._open_started) * 1000.0
                log.info("first image painted after %.0f ms", self.first_image_ms)
            self.first_image_painted.emit()
            if self._announce_pending:
                QTimer.singleShot(0, lambda: self._announce(self.active_viewport()))

    def _update_title(self) -> None:
        s = self.current_series()
        if s is None:
            self.setWindowTitle(self.tr("Hilum"))
            return
        who = (
            ""
            if self.settings.hide_patient_identity
            else (s.meta.get("patient_name", "").replace("^", ", ") + " — ")
        )
        self.setWindowTitle(f"{who}{s.modality} {s.description} — Hilum")

    def _update_actions(self) -> None:
        has = self.active_viewport().series is not None
        for a in (
            self.act_invert,
            self.act_rotate,
            self.act_rotate_ccw,
            self.act_flip_h,
            self.act_flip_v,
            self.act_fit,
            self.act_actual,
            self.act_reset,
            self.act_tags,
            self.act_cine,
            self.act_auto_window,
        ):
            a.setEnabled(has)

    # ------------------------------------------------------------------------------ dialogs
    def open_files_dialog(self) -> None:
        """File > Open files."""
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Open DICOM files",
            "",
            "DICOM and archives (*.dcm *.DCM *.dicom *.zip DICOMDIR *);;All files (*)",
        )
        if files:
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        """File > Open folder."""
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of DICOM files")
        if folder:
            self.open_paths([folder])

    def _remember_recent(self, items: list[str]) -> None:
        recent = [os.path.abspath(p) for p in items] + [
            p for p in self.settings.recent_paths if p not in {os.path.abspath(i) for i in items}
        ]
        self.settings.recent_paths = recent[:10]
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_paths:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(partial(self.open_paths, [p]))
        self.recent_menu.setEnabled(bool(self.settings.recent_paths))

    def show_tags(self) -> None:
        """The DICOM tag browser for the current image."""
        vp = self.active_viewport()
        if self.tag_browser is None:
            self.tag_browser = TagBrowser(self)
        self.tag_browser.show_image(vp.series, vp.index)
        self.tag_browser.show()
        self.tag_browser.raise_()

    def show_shortcuts(self) -> None:
        """Keyboard and mouse help."""
        ShortcutsDialog(self.actions(), self).exec()

    def show_about(self) -> None:
        """About box."""
        QMessageBox.about(
            self,
            self.tr("About Hilum"),
            f"<b>Hilum {__version__}</b><br>Clinical imaging workstation with on-device AI.<br><br>"
            "AI outputs are AI-generated and require review by a physician.",
        )

    def open_settings(self) -> None:
        """The settings dialog (applied and saved on OK)."""
        dlg = SettingsDialog(self.settings, self)
        if dlg.exec() == SettingsDialog.DialogCode.Accepted:
            self.apply_settings(dlg.result_settings())

    def apply_settings(self, new: Settings) -> None:
        """Apply changed settings to the window and store them."""
        self.settings = new
        for vp in self.grid.viewports:
            vp.settings = new
            vp.refresh_presets()
            vp.set_show_annotations(new.show_annotations)
            vp.image.smooth = new.smooth_interpolation
            vp.set_overlay_opacity(new.overlay_opacity)
            vp.update_wl_step()
            vp.view.viewport().update()
        self.act_annotations.setChecked(new.show_annotations)
        self.act_sync.setChecked(new.sync_scroll)
        self.set_layout(new.layout)
        self._update_title()
        save_settings(new)

    # ------------------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        urls: list[QUrl] = event.mimeData().urls()
        local = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if local:
            event.acceptProposedAction()
            self.open_paths(local)

    # ------------------------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        for w in list(self._workers):
            w.cancel()
        for vp in self.grid.viewports:
            vp.stop_cine()
            if vp.provider is not None:
                vp.provider.stop()
        try:
            save_window_state(self.saveGeometry(), self.saveState())
            save_settings(self.settings)
        except Exception as exc:  # noqa: BLE001 - never block closing
            log.warning("settings not saved: %s", user_message(exc))
        super().closeEvent(event)


def _import_paths(
    paths_in: list[str],
    *,
    progress: Any,
    emit: Callable[[Any], None],
    cache_bytes: int,
    thumb_size: int,
    first_shown: threading.Event | None = None,
) -> dict[str, Any]:
    from app.gui.loader import import_paths

    return import_paths(
        paths_in,
        progress=progress,
        emit=emit,
        cache_bytes=cache_bytes,
        thumb_size=thumb_size,
        first_shown=first_shown,
    )
