"""Qt fixtures for the GUI tests (offscreen; every test has its own HILUM_HOME)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The window's pool threads import pydicom on first use, one at a time (app.gui.workers); the
# tests' own thread builds series and reads headers too, without that lock. Two threads importing
# pydicom's package and one of its submodules for the first time at once meet CPython's
# import-deadlock guard (a partially initialised module), so it is imported here, before any
# window starts a thread. The GUI itself never imports pydicom on its thread at start-up.
import pydicom  # noqa: E402, F401


@pytest.fixture(scope="session")
def qapp(qapp_args: Any) -> Any:
    """The themed Hilum QApplication (pytest-qt's ``qapp``, overridden)."""
    from app.gui.app import ensure_app

    return ensure_app()


@pytest.fixture(scope="session")
def ct_head_series(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The ct_head_ge series, scanned into a temporary library and built for display (once)."""
    old = os.environ.get("HILUM_HOME")
    os.environ["HILUM_HOME"] = str(tmp_path_factory.mktemp("ct_head_home"))
    try:
        from app.core.progress import NullProgress
        from app.dicom.library import Library
        from app.gui.loader import build_series

        lib = Library()
        report = lib.scan([shared_data / "dicom" / "ct_head_ge"], progress=NullProgress())
        uid = report.studies[0]["series"][0]["series_uid"]
        stacks = build_series(uid, lib)
    finally:
        if old is None:
            os.environ.pop("HILUM_HOME", None)
        else:
            os.environ["HILUM_HOME"] = old
    assert len(stacks) == 1
    return stacks[0]


@pytest.fixture
def window(qtbot: Any) -> Any:
    """A shown 1280x800 main window with default settings, closed after the test once its
    background work has ended."""
    from app.gui.main_window import MainWindow
    from app.gui.settings import Settings

    w = MainWindow(Settings())

    def finish(win: MainWindow) -> None:
        # pytest-qt closes and deletes the window before fixture teardown: background work
        # (e.g. the deferred model-registry check) must end before that, not after
        win.cancel_background()
        qtbot.waitUntil(lambda: not win.busy, timeout=30000)

    qtbot.addWidget(w, before_close_func=finish)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w
