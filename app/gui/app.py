"""Application start-up: QApplication, dark theme, main window, optional screenshot mode."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app import __version__
from app.core import paths

log = logging.getLogger(__name__)

#: the longest a screenshot run waits for the first image before giving up (seconds)
SCREENSHOT_TIMEOUT_S = 120.0
#: after the first image, how long a screenshot waits for the import to settle (seconds)
SCREENSHOT_SETTLE_S = 20.0


def dark_palette() -> QPalette:
    """The palette matching ``resources/styles/dark.qss``."""
    p = QPalette()
    base, window, text = QColor("#121417"), QColor("#16181b"), QColor("#c9ced6")
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor("#16191d"))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor("#22262b"))
    p.setColor(QPalette.ColorRole.ToolTipText, QColor("#e6eaef"))
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, QColor("#23272d"))
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor("#ffffff"))
    p.setColor(QPalette.ColorRole.Highlight, QColor("#2b5f8a"))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    p.setColor(QPalette.ColorRole.Link, QColor("#3d8fd1"))
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#5c626b"))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c626b"))
    return p


def apply_theme(app: QApplication) -> None:
    """Fusion style, the dark palette and ``resources/styles/dark.qss``."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    qss = paths.resources_dir() / "styles" / "dark.qss"
    try:
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    except OSError:
        log.warning("style sheet not found: %s", qss)


def ensure_app() -> QApplication:
    """The QApplication (created, themed and named once)."""
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Hilum")
        app.setOrganizationName("Hilum")
        app.setApplicationVersion(__version__)
        apply_theme(app)
    assert isinstance(app, QApplication)
    return app


def _preload() -> None:
    """Import the DICOM stack on a worker while the window appears (first image sooner)."""
    def work(*, progress: object) -> None:
        import app.dicom.library  # noqa: F401
        import app.dicom.pixels  # noqa: F401
        import app.gui.loader  # noqa: F401

    from app.gui.workers import run_in_background

    run_in_background(work)


def run_gui(paths_in: list[str], screenshot: str | None = None) -> int:
    """Open the reading window, loading ``paths_in`` in the background.

    Parameters
    ----------
    paths_in : list of str
        Files, folders, zips or DICOMDIRs to import at start.
    screenshot : str, optional
        A PNG path: wait until the first image is painted (and the import settles), save a grab of
        the whole window, and exit. Works with ``QT_QPA_PLATFORM=offscreen``.

    Returns
    -------
    int
        Exit status: 0, or 1 when a screenshot was asked for and no image could be shown/saved.
    """
    app = ensure_app()
    from app.gui.main_window import MainWindow

    window = MainWindow()
    if screenshot:
        window.resize(max(window.width(), 1440), max(window.height(), 900))
    window.show()
    status = {"code": 0}

    if screenshot:
        out = Path(screenshot)
        started = time.monotonic()

        def save(code: int) -> None:
            out.parent.mkdir(parents=True, exist_ok=True)
            app.processEvents()
            pixmap = window.grab()
            if not pixmap.save(str(out), "PNG"):
                log.error("could not write %s", out)
                code = 1
            status["code"] = code
            window.close()
            app.quit()

        def settle() -> None:
            if window.busy and time.monotonic() - started < SCREENSHOT_TIMEOUT_S:
                QTimer.singleShot(200, settle)
                return
            QTimer.singleShot(150, lambda: save(0))

        def painted() -> None:
            QTimer.singleShot(100, settle)

        def give_up() -> None:
            if window.first_image_ms is None:
                print("hilum: no image could be shown; saved the window as it is", file=sys.stderr)
                save(1)

        if paths_in:
            window.first_image_painted.connect(painted)
            QTimer.singleShot(int(SCREENSHOT_TIMEOUT_S * 1000), give_up)
        else:
            QTimer.singleShot(500, lambda: save(0))

    if paths_in:
        QTimer.singleShot(0, lambda: window.open_paths([os.fspath(p) for p in paths_in]))
    else:
        _preload()
    app.exec()
    from app.gui.workers import wait_all

    for w in list(window._workers):
        w.cancel()
    wait_all(5000)
    return status["code"]
