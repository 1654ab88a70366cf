"""Application start-up: QApplication, dark theme, main window, optional screenshot mode."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, Qt, QTimer, QTranslator
from PySide6.QtGui import QColor, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app import __version__
from app.core import paths, startup

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
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
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


#: translators installed on the application (Qt keeps only a pointer: they must stay referenced)
_TRANSLATORS: list[QTranslator] = []
#: the CJK fallback font family once registered with QFontDatabase
_CJK_FAMILY: list[str] = []


def ui_locale(language: str = "") -> str:
    """The locale the UI uses: ``language`` from Settings, or the system locale when empty."""
    return language or QLocale.system().name()


def install_translations(app: QCoreApplication, language: str = "") -> str | None:
    """Install Hilum's and Qt's own (qtbase) translators for ``language``.

    Parameters
    ----------
    app : QCoreApplication
        The application.
    language : str
        ``Settings.language`` (``"zh_CN"``, ``"en_US"``; empty: the system locale).

    Returns
    -------
    str or None
        The shipped translation code installed (``"zh_CN"``), or None for English. Translators
        installed by an earlier call are removed first, so the call can switch languages.
    """
    from app.reporting.i18n import normalise, translation_file

    for tr in _TRANSLATORS:
        app.removeTranslator(tr)
    _TRANSLATORS.clear()
    locale = ui_locale(language)
    qm = translation_file(locale)
    if qm is None:
        return None
    code = normalise(locale)
    ours = QTranslator(app)
    if ours.load(str(qm)):
        app.installTranslator(ours)
        _TRANSLATORS.append(ours)
    else:
        log.warning("translation %s could not be loaded", qm.name)
        return None
    qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    qtbase = QTranslator(app)
    if qtbase.load(QLocale(code or locale), "qtbase", "_", qt_dir):
        app.installTranslator(qtbase)
        _TRANSLATORS.append(qtbase)
    else:
        log.info("no qtbase translation for %s", code)
    if code == "zh_CN":
        register_cjk_font(app)
    return code


def register_cjk_font(app: QCoreApplication) -> str | None:
    """Register ``resources/fonts/DroidSansFallbackFull.ttf`` and add it as a fallback family."""
    if _CJK_FAMILY:
        return _CJK_FAMILY[0]
    font_path = paths.resources_dir() / "fonts" / "DroidSansFallbackFull.ttf"
    font_id = QFontDatabase.addApplicationFont(str(font_path))
    families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
    if not families:
        log.warning("CJK font could not be registered: %s", font_path.name)
        return None
    _CJK_FAMILY.append(families[0])
    if isinstance(app, QGuiApplication):
        font = app.font()
        font.setFamilies([font.family(), families[0]])
        app.setFont(font)
    return families[0]


def emit_leaks_bool_reference() -> bool:
    """True when this PySide6 build's ``Signal.emit`` drops a reference to ``True`` (6.12.0 does).

    On Python 3.11 ``True`` is an ordinary reference-counted object: such a leak makes the
    interpreter abort ("bool_dealloc") after a few hundred signals.
    """
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    # other threads (the start-up's early preview, pool workers) take and drop references to
    # True too, when they run between the two counts (rarely: a few microseconds): a leak must
    # show three times in a row
    for _ in range(3):
        before = sys.getrefcount(True)
        for _ in range(8):
            probe.ping.emit()
        if sys.getrefcount(True) >= before:
            return False
    return True


def _guard_bool_refcounts() -> None:
    """Keep ``True``/``False`` alive under a PySide6 that leaks them (see pyproject's pin).

    Adds references (harmless: the bools are never freed anyway) now and tops them up every few
    seconds, so a wrong PySide6 build cannot crash a reading session.
    """
    import ctypes

    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]

    def top_up() -> None:
        for obj in (True, False):
            while sys.getrefcount(obj) < (1 << 22):
                for _ in range(1 << 16):
                    incref(obj)

    top_up()
    timer = QTimer(QCoreApplication.instance())
    timer.timeout.connect(top_up)
    timer.start(2000)
    log.warning("this PySide6 build leaks references in Signal.emit; install the pinned version")


def ensure_app() -> QApplication:
    """The QApplication (created, themed and named once)."""
    app = QApplication.instance()
    if app is None:
        from app.core.errors import PlatformError
        from app.gui.platform_check import platform_problem

        problem = platform_problem()  # Qt would abort the process instead of saying why
        if problem:
            raise PlatformError(problem)
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Hilum")
        app.setOrganizationName("Hilum")
        app.setApplicationVersion(__version__)
        apply_theme(app)
        # background imports are pure Python: hand the interpreter back to the GUI thread often
        sys.setswitchinterval(0.002)
        if sys.version_info < (3, 12) and emit_leaks_bool_reference():
            _guard_bool_refcounts()
    assert isinstance(app, QApplication)
    return app


def freeze_startup_heap() -> None:
    """Take everything alive now (modules, Qt wrappers, the window) out of the garbage
    collector's full passes (:func:`gc.freeze`).

    Called once the window is built: after that a full collection walks only what was created
    since, instead of the start-up heap's several hundred thousand objects, a pause of about
    50 ms on the GUI thread that lands, every so often, in the middle of a scroll or a cine
    loop (the variance source of the viewer benchmark's scroll ratio). Start-up objects live
    as long as the process anyway. While the collector's start-up pause lasts
    (:mod:`app.core.startup`), its end does this, after one collection of what the start-up
    left unreachable.
    """
    import gc

    if startup.gc_paused():
        return
    gc.freeze()


#: the longest the start-up pause of the garbage collector waits for the first image (ms)
GC_PAUSE_MAX_MS = 3000


def _end_gc_pause(window: Any, wait_image: bool) -> None:
    """End the collector's start-up pause (:mod:`app.core.startup`, begun by :mod:`app.cli`) once
    the first image is painted, or the empty window shown; at the latest after
    :data:`GC_PAUSE_MAX_MS` (an import with no image to show)."""
    if not startup.gc_paused():
        return

    def end() -> None:
        startup.resume_gc(freeze=True)  # what is alive now lives as long as the process

    # once the paint is on screen (the end collects the start-up's heap once: about 0.1 s)
    if wait_image:
        window.first_image_painted.connect(lambda: QTimer.singleShot(0, end))
    else:
        from PySide6.QtCore import QEvent, QObject

        class _Painted(QObject):
            def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
                if event.type() == QEvent.Type.Paint:
                    obj.removeEventFilter(self)
                    QTimer.singleShot(0, end)
                return False

        window.installEventFilter(_Painted(window))
    QTimer.singleShot(GC_PAUSE_MAX_MS, end)


def _report_startup(app: QApplication, window: Any, out: Path, wait_image: bool) -> None:
    """Write when the window and the first image were first painted, then quit (benchmark).

    ``HILUM_STARTUP_REPORT=<file>`` asks for it: ``{"window": t, "image": t}`` as ``time.time()``
    values (the benchmark compares them with the moment it started the process), and the
    process's CPU seconds at both (``window_cpu``, ``image_cpu``; all threads).
    """
    import gc
    import json

    from PySide6.QtCore import QEvent, QObject

    marks: dict[str, float] = {}

    def finish() -> None:
        marks["gc_enabled"] = gc.isenabled()  # the start-up pause is over
        out.write_text(json.dumps(marks), encoding="utf-8")
        window.close()
        app.quit()

    class _FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.Paint and "window" not in marks:
                # the paint event is being delivered: stamp once it has been handled
                QTimer.singleShot(
                    0,
                    lambda: (
                        marks.setdefault("window", time.time())
                        and marks.setdefault("window_cpu", time.process_time())
                    ),
                )
                QTimer.singleShot(0, lambda: None if wait_image else finish())
                obj.removeEventFilter(self)
            return False

    def image() -> None:
        marks.setdefault("image", time.time())
        marks.setdefault("image_cpu", time.process_time())
        QTimer.singleShot(0, finish)

    probe = _FirstPaint(window)
    window.installEventFilter(probe)
    if wait_image:
        window.first_image_painted.connect(image)
    QTimer.singleShot(120000, finish)


def run_gui(
    paths_in: list[str],
    screenshot: str | None = None,
    demo_out: str | os.PathLike[str] | None = None,
    device: str = "auto",
) -> int:
    """Open the reading window, loading ``paths_in`` in the background.

    Parameters
    ----------
    paths_in : list of str
        Files, folders, zips or DICOMDIRs to import at start.
    screenshot : str, optional
        A PNG path: wait until the first image is painted (and the import settles), save a grab of
        the whole window, and exit. Works with ``QT_QPA_PLATFORM=offscreen``. With ``demo_out`` the
        grab is taken once the demo has finished.
    demo_out : path, optional
        ``hilum demo``: open ``paths_in[0]`` and run the whole job in the window
        (:mod:`app.gui.demo`), exporting here.
    device : str
        The demo's AI device.

    Returns
    -------
    int
        Exit status: 0, or 1 when a screenshot was asked for and no image could be shown/saved.

    Long because the application start-up sequence (platform checks, translations, style, window, screenshot) reads top to bottom.
    """
    app = ensure_app()
    from app.gui.main_window import MainWindow
    from app.gui.settings import load_settings

    settings = load_settings()
    install_translations(app, settings.language)
    if paths_in:  # the first image comes before the AI model check
        from app.gui.model_registry import defer_until_first_image

        defer_until_first_image()
    window = MainWindow(settings)
    if screenshot:
        window.resize(max(window.width(), 1440), max(window.height(), 900))
    window.show()
    QTimer.singleShot(0, freeze_startup_heap)  # the window is built: its heap is long-lived
    _end_gc_pause(window, bool(paths_in))
    status = {"code": 0}

    if screenshot:
        out = Path(screenshot)
        started = time.monotonic()

        def save(code: int) -> None:
            from app.core.paths import open_private, private_dir

            private_dir(out.parent)  # a screenshot shows the patient: 0700 folder, 0600 file
            app.processEvents()
            pixmap = window.grab()
            try:  # created 0600 first: Qt's save then truncates it and keeps the mode
                open_private(out, "wb").close()
            except OSError:
                pass
            if not pixmap.save(str(out), "PNG"):
                log.error("could not write %s", out)
                code = 1
            status["code"] = code
            window.close()
            app.quit()

        def settle() -> None:
            status["saved"] = True
            decoding = any(
                vp.provider is not None
                and vp.provider.busy
                and vp.series is not None
                and vp.series.low_res
                for vp in window.grid.viewports
            )
            if (window.busy or decoding) and time.monotonic() - started < SCREENSHOT_TIMEOUT_S:
                QTimer.singleShot(200, settle)
                return
            QTimer.singleShot(150, lambda: save(0))

        def painted() -> None:
            QTimer.singleShot(100, settle)

        def give_up() -> None:
            if window.first_image_ms is None and not status.get("saved"):
                status["saved"] = True
                print("hilum: no image could be shown; saved the window as it is", file=sys.stderr)
                save(1)

        def import_ended() -> None:
            # nothing loadable (every path bad): do not wait for an image that will not come
            def check() -> None:
                decoding = any(
                    vp.provider is not None and vp.provider.busy for vp in window.grid.viewports
                )
                if window.busy or decoding:
                    QTimer.singleShot(300, check)
                else:
                    give_up()

            QTimer.singleShot(300, check)

        if demo_out is not None:
            pass  # saved when the demo has finished (below)
        elif paths_in:
            window.first_image_painted.connect(painted)
            window.import_finished.connect(import_ended)
            QTimer.singleShot(int(SCREENSHOT_TIMEOUT_S * 1000), give_up)
        else:
            QTimer.singleShot(500, lambda: save(0))

    report = os.environ.get("HILUM_STARTUP_REPORT")
    if report:
        _report_startup(app, window, Path(report), bool(paths_in))
    if demo_out is not None and paths_in:
        from app.gui.demo import start_demo

        def demo_done(_value: Any) -> None:
            if screenshot:
                QTimer.singleShot(
                    500, lambda: save(0 if getattr(window, "demo").state == "done" else 1)
                )

        QTimer.singleShot(
            0,
            lambda: start_demo(
                window, os.fspath(paths_in[0]), Path(demo_out), device, on_done=demo_done
            ),
        )
    elif paths_in:
        QTimer.singleShot(0, lambda: window.open_paths([os.fspath(p) for p in paths_in]))
    app.exec()
    from app.gui.workers import wait_all

    for w in list(window._workers):
        w.cancel()
    wait_all(5000)
    return status["code"]
