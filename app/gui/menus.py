"""The main window's actions, menus and toolbar (one table each), built onto the window.

:class:`app.gui.main_window.MainWindow` calls :func:`build_actions`, :func:`build_menus` and
:func:`build_toolbar` once while it is built; the actions are set as the window's attributes
(``act_open``, ``tool_actions`` ...), which the window and the panels use. Texts are translated
in the ``MainWindow`` context, as before they moved here.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QCoreApplication, QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QToolButton

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow


def action(
    w: MainWindow,
    text: str,
    slot: Callable[..., Any],
    shortcut: str | QKeySequence | QKeySequence.StandardKey | list[Any] | None = None,
    icon_name: str | None = None,
    checkable: bool = False,
    tip: str = "",
) -> QAction:
    """A window action: icon, shortcut(s) (window-wide), tooltip naming its keys, slot."""
    from app.gui.main_window import icon

    a = QAction(text, w)
    if icon_name:
        a.setIcon(icon(icon_name))
    if shortcut:
        if isinstance(shortcut, list):
            a.setShortcuts([QKeySequence(s) for s in shortcut])
        else:
            a.setShortcut(QKeySequence(shortcut))
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    a.setCheckable(checkable)
    keys = ", ".join(s.toString() for s in a.shortcuts())
    a.setToolTip(f"{tip or text.replace('&', '')}" + (f"  ({keys})" if keys else ""))
    a.triggered.connect(slot)
    w.addAction(a)
    return a


def viewport_call(w: MainWindow, method: str, *args: Any) -> Callable[..., None]:
    """A slot calling ``method(*args)`` on whichever viewport is active when it fires."""

    def call(*_: Any) -> None:
        getattr(w.active_viewport(), method)(*args)

    return call


def build_actions(w: MainWindow) -> None:
    """Long because it is the window's table of actions and shortcuts: one entry per action reads best as one list."""

    A = partial(action, w)  # noqa: N806 - reads as a table of A(...) rows
    w.act_open = A(
        QCoreApplication.translate("MainWindow", "&Open files…"),
        w.open_files_dialog,
        QKeySequence.StandardKey.Open,
        "open",
    )
    w.act_open_folder = A(
        QCoreApplication.translate("MainWindow", "Open &folder…"),
        w.open_folder_dialog,
        "Ctrl+Shift+O",
        "folder",
    )
    w.act_quit = A(
        QCoreApplication.translate("MainWindow", "&Quit"), w.close, QKeySequence.StandardKey.Quit
    )
    w.act_settings = A(
        QCoreApplication.translate("MainWindow", "&Settings…"),
        w.open_settings,
        "Ctrl+,",
        "settings",
    )
    w.act_cancel = A(
        QCoreApplication.translate("MainWindow", "Cancel background work"),
        w.cancel_background,
        None,
    )
    # tools
    w.tool_group = QActionGroup(w)
    w.tool_actions = {}
    for tool, text, key, ic in (
        ("pointer", QCoreApplication.translate("MainWindow", "Pointer / select"), "Esc", "pointer"),
        ("window", QCoreApplication.translate("MainWindow", "Window/level tool"), "W", "window"),
        ("pan", QCoreApplication.translate("MainWindow", "Pan tool"), "P", "pan"),
        ("zoom", QCoreApplication.translate("MainWindow", "Zoom tool"), "Z", "zoom"),
        ("length", QCoreApplication.translate("MainWindow", "Length"), "L", "length"),
        ("rect", QCoreApplication.translate("MainWindow", "Rectangle ROI"), "B", "rect"),
        ("ellipse", QCoreApplication.translate("MainWindow", "Ellipse ROI"), "E", "ellipse"),
        ("angle", QCoreApplication.translate("MainWindow", "Angle"), "G", "angle"),
        (
            "cobb",
            QCoreApplication.translate("MainWindow", "Cobb angle (two lines)"),
            "Shift+G",
            "angle",
        ),
    ):
        a = A(text, partial(w.set_tool, tool), key, ic, checkable=True)
        w.tool_group.addAction(a)
        w.tool_actions[tool] = a
    w.tool_actions["pointer"].setChecked(True)
    w.act_delete = A(
        QCoreApplication.translate("MainWindow", "Delete measurement"),
        lambda: w.active_viewport().delete_selected(),
        [QKeySequence.StandardKey.Delete, "Backspace"],
        "delete",
    )
    w.act_clear = A(
        QCoreApplication.translate("MainWindow", "Clear measurements"),
        lambda: w.active_viewport().clear_measurements(),
        "Ctrl+Shift+Del",
    )
    # image
    w.act_invert = A(
        QCoreApplication.translate("MainWindow", "&Invert"),
        viewport_call(w, "toggle_invert"),
        "I",
        "invert",
    )
    w.act_rotate = A(
        QCoreApplication.translate("MainWindow", "Rotate 90° clockwise"),
        viewport_call(w, "rotate", 90),
        "R",
        "rotate",
    )
    w.act_rotate_ccw = A(
        QCoreApplication.translate("MainWindow", "Rotate 90° counter-clockwise"),
        viewport_call(w, "rotate", -90),
        "Shift+R",
    )
    w.act_flip_h = A(
        QCoreApplication.translate("MainWindow", "Flip horizontal"),
        viewport_call(w, "flip_horizontal"),
        "H",
        "flip",
    )
    w.act_flip_v = A(
        QCoreApplication.translate("MainWindow", "Flip vertical"),
        viewport_call(w, "flip_vertical"),
        "V",
    )
    w.act_fit = A(
        QCoreApplication.translate("MainWindow", "&Fit to window"),
        viewport_call(w, "fit"),
        "F",
        "fit",
    )
    w.act_actual = A(
        QCoreApplication.translate("MainWindow", "Actual pixels (1:1)"),
        viewport_call(w, "actual_size"),
        "A",
        "actual",
    )
    w.act_zoom_in = A(
        QCoreApplication.translate("MainWindow", "Zoom in"),
        lambda: w.active_viewport().set_zoom(w.active_viewport().zoom * 1.25),
        "+",
    )
    w.act_zoom_out = A(
        QCoreApplication.translate("MainWindow", "Zoom out"),
        lambda: w.active_viewport().set_zoom(w.active_viewport().zoom / 1.25),
        "-",
    )
    w.act_reset = A(
        QCoreApplication.translate("MainWindow", "&Reset view"),
        viewport_call(w, "reset"),
        "Ctrl+R",
        "reset",
    )
    w.act_auto_window = A(
        QCoreApplication.translate("MainWindow", "Automatic window"),
        viewport_call(w, "auto_window"),
        "Ctrl+W",
    )
    w.act_cine = A(
        QCoreApplication.translate("MainWindow", "Cine play/pause"),
        viewport_call(w, "toggle_cine"),
        "Space",
        "cine",
        tip="Cine",
    )
    w.act_faster = A(
        QCoreApplication.translate("MainWindow", "Cine faster"), lambda: w._cine_speed(1.25), "]"
    )
    w.act_slower = A(
        QCoreApplication.translate("MainWindow", "Cine slower"), lambda: w._cine_speed(0.8), "["
    )
    w.act_tags = A(
        QCoreApplication.translate("MainWindow", "DICOM &tags…"), w.show_tags, "Ctrl+T", "tags"
    )
    w.act_overlay = A(
        QCoreApplication.translate("MainWindow", "Show AI overlay"),
        w._toggle_overlay,
        "O",
        "overlay",
        checkable=True,
    )
    w.act_overlay.setChecked(True)
    w.preset_actions = []
    for n in range(0, 10):
        label = (
            QCoreApplication.translate("MainWindow", "Header / default window")
            if n == 0
            else QCoreApplication.translate("MainWindow", "Window preset %1").replace("%1", str(n))
        )
        w.preset_actions.append(A(label, partial(w.apply_preset, n), str(n)))
    # view
    w.layout_group = QActionGroup(w)
    w.layout_actions = {}
    for name, key, ic in (
        ("1x1", "Ctrl+1", "layout1"),
        ("1x2", "Ctrl+2", "layout2"),
        ("2x2", "Ctrl+3", "layout4"),
    ):
        a = A(
            QCoreApplication.translate("MainWindow", "Layout %1").replace("%1", name),
            partial(w.set_layout, name),
            key,
            ic,
            checkable=True,
        )
        w.layout_group.addAction(a)
        w.layout_actions[name] = a
    w.layout_actions[w.settings.layout].setChecked(True)
    w.act_sync = A(
        QCoreApplication.translate("MainWindow", "Synchronised scrolling"),
        w._toggle_sync,
        "S",
        "sync",
        checkable=True,
    )
    w.act_sync.setChecked(w.settings.sync_scroll)
    w.act_annotations = A(
        QCoreApplication.translate("MainWindow", "Corner annotations"),
        w._toggle_annotations,
        "T",
        "annotations",
        checkable=True,
    )
    w.act_annotations.setChecked(w.settings.show_annotations)
    w.act_fullscreen = A(
        QCoreApplication.translate("MainWindow", "Full screen"), w._toggle_fullscreen, "F11"
    )
    w.act_shortcuts = A(
        QCoreApplication.translate("MainWindow", "Keyboard and mouse…"),
        w.show_shortcuts,
        ["F1", "?"],
        "help",
    )
    w.act_about = A(QCoreApplication.translate("MainWindow", "About Hilum"), w.show_about)


def build_menus(w: MainWindow) -> None:
    """The menu bar: File, View, Image, Tools, Help."""
    mb = w.menuBar()
    m = mb.addMenu(QCoreApplication.translate("MainWindow", "&File"))
    m.addActions([w.act_open, w.act_open_folder])
    w.recent_menu = m.addMenu(QCoreApplication.translate("MainWindow", "Open &recent"))
    w._fill_recent()
    from app.gui.pacs_dialog import install as install_pacs  # PACS Query/Retrieve (issue 14)

    w.act_pacs = install_pacs(w, m)
    from app.gui.batch_dialog import install as install_batch  # archive analysis (issue 18)

    w.act_batch = install_batch(w, m)
    m.addSeparator()
    m.addAction(w.act_settings)
    m.addSeparator()
    m.addAction(w.act_quit)
    m = mb.addMenu(QCoreApplication.translate("MainWindow", "&View"))
    m.addActions(list(w.layout_actions.values()))
    m.addAction(w.act_sync)
    m.addSeparator()
    m.addActions([w.act_fit, w.act_actual, w.act_zoom_in, w.act_zoom_out])
    m.addSeparator()
    m.addAction(w.act_annotations)
    m.addAction(w.act_overlay)
    m.addAction(w.act_fullscreen)
    m.addSeparator()
    m.addAction(w.browser_dock.toggleViewAction())
    m.addAction(w.log_dock.toggleViewAction())
    w.panels_menu = m.addMenu(QCoreApplication.translate("MainWindow", "Panels"))
    m = mb.addMenu(QCoreApplication.translate("MainWindow", "&Image"))
    w.presets_menu = m.addMenu(QCoreApplication.translate("MainWindow", "Window presets"))
    w.presets_menu.aboutToShow.connect(w._fill_presets_menu)
    m.addAction(w.act_auto_window)
    m.addSeparator()
    m.addActions(
        [
            w.act_invert,
            w.act_rotate,
            w.act_rotate_ccw,
            w.act_flip_h,
            w.act_flip_v,
        ]
    )
    m.addSeparator()
    m.addActions([w.act_cine, w.act_faster, w.act_slower])
    m.addSeparator()
    m.addActions([w.act_reset, w.act_tags])
    m = mb.addMenu(QCoreApplication.translate("MainWindow", "&Tools"))
    m.addActions(list(w.tool_actions.values()))
    m.addSeparator()
    m.addActions([w.act_delete, w.act_clear])
    m = mb.addMenu(QCoreApplication.translate("MainWindow", "&Help"))
    m.addActions([w.act_shortcuts, w.act_about])


def build_toolbar(w: MainWindow) -> None:
    """The main toolbar (a subset of the actions, grouped)."""
    tb = w.addToolBar(QCoreApplication.translate("MainWindow", "Main toolbar"))
    tb.setObjectName("toolbar_main")
    tb.setIconSize(QSize(20, 20))
    tb.setMovable(False)
    tb.addActions([w.act_open, w.act_open_folder])
    tb.addSeparator()
    tb.addActions([w.tool_actions[t] for t in ("pointer", "window", "pan", "zoom")])
    tb.addSeparator()
    tb.addActions([w.tool_actions[t] for t in ("length", "rect", "ellipse", "angle", "cobb")])
    tb.addSeparator()
    w.preset_button = QToolButton()
    w.preset_button.setText(QCoreApplication.translate("MainWindow", "Presets"))
    w.preset_button.setToolTip(
        QCoreApplication.translate("MainWindow", "Window presets (number keys)")
    )
    w.preset_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    w.preset_button.setMenu(w.presets_menu)
    tb.addWidget(w.preset_button)
    tb.addActions(
        [
            w.act_invert,
            w.act_rotate,
            w.act_flip_h,
            w.act_fit,
            w.act_actual,
            w.act_reset,
        ]
    )
    tb.addSeparator()
    tb.addAction(w.act_cine)
    tb.addSeparator()
    tb.addActions(list(w.layout_actions.values()))
    tb.addAction(w.act_sync)
    tb.addSeparator()
    tb.addActions([w.act_annotations, w.act_overlay, w.act_tags])
    tb.addSeparator()
    tb.addActions([w.act_settings, w.act_shortcuts])
