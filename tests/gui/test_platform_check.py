"""Start-up on a desktop that lacks a library of Qt's xcb plugin: one sentence, not Qt's abort."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.gui.platform_check import XCB_LIBRARIES, missing_xcb_packages, platform_problem

ROOT = Path(__file__).resolve().parents[2]
#: libraries of the plugin that every Linux system (and PySide6 itself) provides
_BASE = {
    "libc.so.6",
    "libm.so.6",
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
}


def _qt_dir() -> Path:
    import PySide6

    return Path(PySide6.__file__).parent / "Qt"


def _needed(lib: Path) -> set[str]:
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.fail("readelf is not installed (binutils)")
    out = subprocess.run(
        [readelf, "-d", str(lib)], capture_output=True, text=True, check=True
    ).stdout
    return {ln.split("[", 1)[1].split("]", 1)[0] for ln in out.splitlines() if "(NEEDED)" in ln}


def test_the_list_covers_every_library_the_xcb_plugin_links() -> None:
    plugin = _qt_dir() / "plugins" / "platforms" / "libqxcb.so"
    qpa = _qt_dir() / "lib" / "libQt6XcbQpa.so.6"
    needed = _needed(plugin) | _needed(qpa)
    outside = {so for so in needed if not so.startswith("libQt6") and so not in _BASE}
    assert outside - set(XCB_LIBRARIES) == set()
    assert {"libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"} <= set(XCB_LIBRARIES.values())


def test_this_machine_has_every_package(hilum_home: Path) -> None:
    # run-tests installs them (README set-up); a failure names what is missing
    assert missing_xcb_packages() == []


def test_offscreen_is_never_checked() -> None:
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}, loader=lambda so: False) is None
    text = platform_problem(
        {"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}, loader=lambda so: so != "libxcb-icccm.so.4"
    )
    assert text is not None and "libxcb-icccm4" in text and text.count(".") >= 1
    assert (
        platform_problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}, loader=lambda so: True)
        is None
    )
    no_display = platform_problem({"QT_QPA_PLATFORM": "xcb"}, loader=lambda so: True)
    assert no_display is not None and "no X display" in no_display


def test_unloadable_xcb_library_prints_one_sentence(tmp_path: Path, hilum_home: Path) -> None:
    """A broken libxcb-cursor.so.0 first on LD_LIBRARY_PATH makes the plugin unloadable."""
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "libxcb-cursor.so.0").write_bytes(b"")  # dlopen: "file too short"
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="xcb",
        DISPLAY=":97",
        PYTHONPATH=str(ROOT),
        HILUM_HOME=str(hilum_home),
        LD_LIBRARY_PATH=str(libs),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "app", "gui"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr)  # not SIGABRT (-6)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hilum: Hilum cannot open its window")
    assert "libxcb-cursor0" in lines[0] and "apt-get install" in lines[0]
