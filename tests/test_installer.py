"""The desktop bundle: build it with installer/build.sh and run it as a site admin would.

Marked ``slow`` (the PyInstaller build takes a few minutes on two cores); CI runs it. The
bundle is always built afresh from the checkout, then run from a temporary folder with a
temporary ``HILUM_HOME`` and an environment without the development virtual environment, so
every file it needs must come from the bundle itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import __version__

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist" / "hilum"
EXE = DIST / ("hilum.exe" if sys.platform == "win32" else "hilum")
SAMPLE = REPO / "resources" / "samples" / "cxr_jpegls.dcm"


def _clean_env(home: Path) -> dict[str, str]:
    """The environment of a workstation user: no venv, no PYTHONPATH, offscreen Qt, own home."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "HILUM_SHARED_DATA")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["HILUM_HOME"] = str(home)
    return env


def _run(
    args: list[str], home: Path, cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args],
        cwd=cwd,
        env=_clean_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def bundle() -> Path:
    """Build dist/hilum/ from this checkout with the project's build script."""
    if sys.platform == "win32":
        pytest.fail(
            "installer/build.sh builds the Linux bundle; see installer/README.md for Windows"
        )
    env = dict(os.environ, PYTHON=sys.executable)
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(REPO / "installer" / "build.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    took = time.perf_counter() - start
    assert proc.returncode == 0, (
        f"build failed ({took:.0f} s):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    print(f"\nbundle built in {took:.0f} s: {proc.stdout.strip().splitlines()[-1]}")
    assert EXE.is_file() and os.access(EXE, os.X_OK)
    return DIST


def test_bundle_layout(bundle: Path) -> None:
    """Data where app.core.paths looks for it, trimmed Qt, ORT providers, codecs, notices."""
    # models/ and resources/ beside the executable (sys._MEIPASS == the bundle folder)
    assert (bundle / "models" / "pneumonia_cnn" / "model.json").is_file()
    assert (bundle / "resources" / "samples" / "cxr_jpegls.dcm").is_file()
    assert not list((bundle / "models").rglob("train*.py")), "training scripts do not ship"
    # Qt: offscreen + xcb only, no WebEngine / QML / Wayland
    platforms = sorted(
        p.name for p in (bundle / "PySide6" / "Qt" / "plugins" / "platforms").iterdir()
    )
    assert platforms == ["libqoffscreen.so", "libqxcb.so"]
    broken = [
        str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_symlink() and not p.exists()
    ]
    assert not broken, f"dangling links: {broken}"
    libs = {p.name for p in bundle.rglob("*.so*")}
    assert not [n for n in libs if re.match(r"libQt6(WebEngine|Quick|Qml|3D|Multimedia)", n)]
    # the xcb plugin's libraries a fresh desktop lacks travel with the bundle (build.sh checks)
    assert {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"} <= libs
    # onnxruntime(-gpu) with its provider libraries, where onnxruntime looks for them
    capi = bundle / "onnxruntime" / "capi"
    for name in ("libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"):
        assert (capi / name).is_file(), name
    assert list(capi.glob("libonnxruntime.so*"))
    assert (bundle / "onnxruntime_genai" / "libonnxruntime-genai.so").is_file()
    # pylibjpeg plugins are found through their entry points: the metadata must be there
    eps = {
        p.name.split("-")[0]
        for p in bundle.glob("*.dist-info")
        if (p / "entry_points.txt").is_file()
    }
    assert {"pylibjpeg_libjpeg", "pylibjpeg_openjpeg", "pylibjpeg_rle"} <= eps
    # no development tools
    for name in ("torch", "transformers", "SimpleITK", "pytest"):
        assert not (bundle / name).exists(), name
    # desktop integration
    desktop = (bundle / "hilum.desktop").read_text()
    assert "Exec=hilum gui %F" in desktop and "MimeType=application/dicom;" in desktop
    assert (bundle / "hilum.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    validator = shutil.which("desktop-file-validate")
    if validator:
        check = subprocess.run(
            [validator, str(bundle / "hilum.desktop")], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    # third-party notices
    notices = (bundle / "licenses" / "THIRD_PARTY_NOTICES.md").read_text()
    for component in (
        "PySide6_Essentials",
        "shiboken6",
        "onnxruntime-gpu",
        "onnxruntime-genai-cuda",
        "pydicom",
        "highdicom",
        "reportlab",
        "numpy",
        "Python",
    ):
        assert f"| {component} |" in notices, component
    pyside = next((bundle / "licenses").glob("pyside6-essentials-*"), None) or next(
        (bundle / "licenses").glob("pyside6-*")
    )
    assert any(p.name != "METADATA.txt" for p in pyside.iterdir()), "PySide6 licence text copied"


def test_version(bundle: Path, tmp_path: Path) -> None:
    proc = _run(["--version"], tmp_path / "home", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"hilum {__version__}"


def test_scan_and_decode_jpegls(bundle: Path, tmp_path: Path) -> None:
    """The frozen DICOM stack: index the sample, then decode its JPEG-LS pixels to a PNG."""
    home = tmp_path / "home"
    proc = _run(["scan", str(SAMPLE), "--json"], home, tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errors"] == []
    series = report["studies"][0]["series"][0]
    assert series["modality"] == "CR"
    assert series["transfer_syntaxes"] == ["1.2.840.10008.1.2.4.81"]  # JPEG-LS near-lossless

    out = tmp_path / "sample.png"
    proc = _run(["render", str(SAMPLE), "--out", str(out)], home, tmp_path)
    assert proc.returncode == 0, proc.stderr
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert (height, width) == (series["rows"], series["columns"])


def test_self_test(bundle: Path, tmp_path: Path) -> None:
    """``hilum --self-test`` in the frozen app: sample -> classifier -> CAM -> draft -> PDF."""
    start = time.perf_counter()
    proc = _run(["--self-test"], tmp_path / "home", tmp_path)
    took = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"self-test failed (exit {proc.returncode}):\n{output[-6000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    text = proc.stdout.lower()
    for step in ("sample", "cam", "draft", "pdf"):
        assert step in text, f"no '{step}' step line in:\n{proc.stdout}"
    assert re.search(r"classif|model|pneumonia", text), proc.stdout
    # one line per step, each with its time, all of them passed
    timed = [line for line in lines if re.search(r"\d+(\.\d+)?\s*(ms|s)\b", line)]
    assert len(timed) >= 5, proc.stdout
    assert not [line for line in lines if line.startswith("FAIL")], proc.stdout
    assert len([line for line in lines if line.startswith("ok")]) >= 5, proc.stdout
    assert "Traceback" not in output
    print(f"\nself-test in the bundle: {took:.1f} s\n{proc.stdout}")


def test_gui_screenshot(bundle: Path, tmp_path: Path) -> None:
    """The frozen GUI opens the sample offscreen and grabs the window."""
    shot = tmp_path / "window.png"
    start = time.perf_counter()
    proc = _run(
        ["gui", str(SAMPLE), "--screenshot", str(shot)], tmp_path / "home", tmp_path, timeout=300
    )
    took = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 500
    print(f"\nGUI start to screenshot in the bundle: {took:.1f} s")


def test_install_script(bundle: Path, tmp_path: Path) -> None:
    """install.sh stages /opt/hilum, the command link, the menu entry and the icons."""
    root = tmp_path / "root"
    env = dict(os.environ, DESTDIR=str(root))
    proc = subprocess.run(
        ["bash", str(bundle / "install.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert (root / "opt" / "hilum" / "hilum").is_file()
    assert os.readlink(root / "usr" / "local" / "bin" / "hilum") == "/opt/hilum/hilum"
    desktop = (root / "usr" / "share" / "applications" / "hilum.desktop").read_text()
    assert "Exec=/opt/hilum/hilum gui %F" in desktop
    assert (
        root / "usr" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "hilum.png"
    ).is_file()
    installed = subprocess.run(
        [str(root / "opt" / "hilum" / "hilum"), "--version"],
        capture_output=True,
        text=True,
        env=_clean_env(tmp_path / "home"),
        timeout=120,
    )
    assert installed.returncode == 0 and __version__ in installed.stdout
    proc = subprocess.run(
        ["bash", str(bundle / "install.sh"), "--uninstall"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and not (root / "opt" / "hilum").exists()
