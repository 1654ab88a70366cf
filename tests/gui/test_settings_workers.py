"""Typed settings (QSettings INI under HILUM_HOME), the background worker and error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.errors import Cancelled, DicomReadError, PixelDecodeError
from app.gui.errors import user_message
from app.gui.settings import (
    SETTINGS_VERSION,
    Settings,
    load_settings,
    qsettings,
    save_settings,
    settings_path,
)
from app.gui.workers import run_in_background


def test_settings_round_trip_in_hilum_home(hilum_home: Path) -> None:
    assert load_settings() == Settings()
    s = Settings(
        layout="2x2", cine_fps=24.0, sync_scroll=True, recent_paths=["/a", "/b"], cache_mb=512
    )
    save_settings(s)
    assert settings_path() == hilum_home / "config" / "hilum.ini"
    assert "layout=2x2" in settings_path().read_text()
    back = load_settings()
    assert back == s and back.version == SETTINGS_VERSION
    assert isinstance(back.cine_fps, float) and isinstance(back.sync_scroll, bool)


def test_bad_values_fall_back_and_old_versions_migrate(hilum_home: Path) -> None:
    store = qsettings()
    store.setValue("settings/version", 1)
    store.setValue("settings/smooth", "true")  # v1 name
    store.setValue("settings/cine_fps", "fast")  # unreadable
    store.setValue("settings/layout", "9x9")  # out of range
    store.setValue("settings/wl_sensitivity", 500)  # clamped
    store.sync()
    s = load_settings()
    assert s.smooth_interpolation is True
    assert s.cine_fps == Settings().cine_fps
    assert s.layout == "1x1"
    assert s.wl_sensitivity == 10.0
    assert s.version == SETTINGS_VERSION


def test_worker_delivers_progress_items_result(qtbot: Any) -> None:
    got: dict[str, Any] = {"progress": [], "items": []}

    def work(n: int, *, progress: Any, emit: Any) -> int:
        for i in range(n):
            progress.update(i + 1, n, f"step {i}")
            emit(i)
        return n * 2

    run_in_background(
        work,
        3,
        on_progress=lambda *a: got["progress"].append(a),
        on_item=got["items"].append,
        on_result=lambda r: got.__setitem__("result", r),
        on_finished=lambda: got.__setitem__("finished", True),
    )
    qtbot.waitUntil(lambda: "finished" in got, timeout=10000)
    assert (
        got["result"] == 6 and got["items"] == [0, 1, 2] and got["progress"][-1] == (3, 3, "step 2")
    )


def test_worker_cancel_and_errors(qtbot: Any) -> None:
    events: list[str] = []

    def slow(*, progress: Any) -> None:
        import time

        for _ in range(500):
            progress.check()
            time.sleep(0.01)

    w = run_in_background(slow)
    w.signals.cancelled.connect(lambda: events.append("cancelled"))
    w.cancel()
    qtbot.waitUntil(lambda: events == ["cancelled"], timeout=10000)

    def bad(*, progress: Any) -> None:
        raise PixelDecodeError(
            "The image data is corrupt and cannot be decoded (JPEG 2000).", "/x/film.dcm"
        )

    errors: list[BaseException] = []
    w = run_in_background(bad, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=10000)
    assert (
        user_message(errors[0])
        == "film.dcm: The image data is corrupt and cannot be decoded (JPEG 2000)."
    )


def test_user_messages_never_show_tracebacks() -> None:
    assert user_message(Cancelled()) == "Cancelled."
    assert (
        user_message(DicomReadError("The file is truncated.", "/d/a.dcm"), with_name=False)
        == "The file is truncated."
    )
    assert (
        user_message(FileNotFoundError(2, "No such file")) == "The file or folder does not exist."
    )
    text = user_message(KeyError("x"))
    assert "KeyError" in text and "Traceback" not in text and "log" in text


@pytest.mark.parametrize(
    "vector,letters",
    [
        ((1, 0, 0), "L"),
        ((-1, 0, 0), "R"),
        ((0, 1, 0), "P"),
        ((0, 0, 1), "H"),
        ((0, -0.8, -0.6), "AF"),
    ],
)
def test_direction_letters(vector: tuple[float, ...], letters: str) -> None:
    from app.gui.annotations import direction_letters

    assert direction_letters(vector) == letters


def test_pyside_signals_do_not_leak_bool_references(qapp: Any) -> None:
    """PySide6 6.12.0's Signal.emit drops a reference to True, which aborts Python 3.11 after a
    few hundred signals; the pinned PySide6 must not."""
    from app.gui.app import emit_leaks_bool_reference

    assert not emit_leaks_bool_reference()
