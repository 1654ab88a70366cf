"""Start-up stays light: heavy libraries load when first used (issue 17, item 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, HILUM_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_ok(code: str, tmp_path: Path) -> None:
    """Run ``code`` in a fresh interpreter (a real start-up); it must exit 0."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]


def test_the_window_is_built_without_the_export_and_inference_stacks(tmp_path: Path) -> None:
    code = (
        "import importlib, sys\n"
        "from app.gui.app import ensure_app\n"
        "from app.gui.main_window import MainWindow\n"
        "from app.gui.panels import PANEL_MODULES\n"
        "for name in PANEL_MODULES:\n"
        "    importlib.import_module(name)\n"
        "def loaded(names):\n"
        "    return [m for m in names if m in sys.modules]\n"
        "# importing the window and its panels loads none of the heavy stacks\n"
        "on_import = loaded(('reportlab', 'highdicom', 'onnxruntime', 'onnx', 'torch', 'pydicom',\n"
        "                    'app.reporting.export', 'app.reporting.pdf'))\n"
        "app = ensure_app()\n"
        "w = MainWindow()\n"
        "w.show()\n"
        "# built on the GUI thread (before the background library listing starts): no DICOM\n"
        "# codecs, no MPR, OpenCV, sign-off, annotations or PACS stacks (they load on first use)\n"
        "on_import += loaded(('pydicom', 'cv2', 'PIL', 'gdcm', 'app.dicom.mpr',\n"
        "                     'app.dicom.series', 'app.saliency.overlay', 'app.reporting.signoff',\n"
        "                     'app.reporting.annotations', 'app.net.pacs', 'numpy.ma'))\n"
        "app.processEvents()\n"
        "# built and shown (the model check runs in the background): still no export stack\n"
        "shown = loaded(('reportlab', 'highdicom', 'app.reporting.export', 'app.reporting.pdf'))\n"
        "print(sorted(w.panels), on_import, shown)\n"
        "sys.exit(1 if on_import or shown or 'export' not in w.panels else 0)\n"
    )
    _run_ok(code, tmp_path)


@pytest.mark.parametrize("name", ["sample", "mr_transfer_syntaxes/5.dcm"])
def test_startup_report_marks_the_window_and_the_sample(
    tmp_path: Path, shared_data: Path, name: str
) -> None:
    # the sample (decoded early, JPEG-LS) and a JPEG lossless image (left to the import worker,
    # which loads the deferred codec backends first) are both painted
    from app.core.paths import sample_path

    path = sample_path() if name == "sample" else shared_data / "dicom" / name
    report = tmp_path / "startup.json"
    env = _env(tmp_path)
    env["HILUM_STARTUP_REPORT"] = str(report)
    out = subprocess.run(
        [sys.executable, "-m", "app", "gui", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    marks = json.loads(report.read_text())
    assert marks["window"] <= marks["image"]
    assert 0 < marks["window_cpu"] <= marks["image_cpu"]
    # the garbage collector, paused for the start-up (app.core.startup), is back on
    assert marks["gc_enabled"] is True


def test_only_the_window_start_pauses_the_garbage_collector(tmp_path: Path) -> None:
    # a headless command has the collector back once its arguments are parsed; an argument
    # error or a command that returns (main() called in a process) leaves it on too
    code = (
        "import gc, sys\n"
        "from app.cli import main\n"
        "from app.core import startup\n"
        "seen = []\n"
        "real = startup.resume_gc\n"
        "def spy(freeze=False):\n"
        "    seen.append(gc.isenabled())\n"
        "    return real(freeze)\n"
        "import app.cli\n"
        "app.cli.resume_gc = spy\n"
        f"rc = main(['scan', {str(tmp_path / 'empty')!r}, '--json'])\n"
        "after_scan = gc.isenabled()\n"
        "try:\n"
        "    main(['no-such-command'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(rc, seen, after_scan, gc.isenabled())\n"
        "sys.exit(0 if seen[0] is False and after_scan and gc.isenabled() else 1)\n"
    )
    (tmp_path / "empty").mkdir()
    _run_ok(code, tmp_path)


def test_the_collector_pause_ends_without_an_image(tmp_path: Path) -> None:
    # nothing to show (a file that is not DICOM): the pause still ends (at most a few seconds)
    from app.core.startup import pause_gc, resume_gc

    assert pause_gc()
    try:
        assert not pause_gc()  # once
    finally:
        assert resume_gc()
    assert not resume_gc()
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    code = (
        "import gc, sys\n"
        "from PySide6.QtCore import QTimer\n"
        "import app.gui.app as A\n"
        "from app.core import startup\n"
        "A.GC_PAUSE_MAX_MS = 500\n"
        "seen = {}\n"
        "def check():\n"
        "    seen['enabled'] = gc.isenabled()\n"
        "    A.QApplication.instance().closeAllWindows()\n"
        "    A.QApplication.instance().quit()\n"
        "A.ensure_app()\n"
        "startup.pause_gc()\n"
        "QTimer.singleShot(2500, check)\n"
        f"A.run_gui([{str(bad)!r}])\n"
        "print(seen)\n"
        "sys.exit(0 if seen.get('enabled') else 1)\n"
    )
    _run_ok(code, tmp_path)


def test_pydicom_loads_without_the_downloader_http_stack(tmp_path: Path) -> None:
    # pydicom's test-data downloader would pull requests/urllib3/tqdm into every start; Hilum
    # never downloads at run time. Whoever needs requests afterwards (DICOMweb) still gets it.
    code = (
        "import sys\n"
        "import app.dicom.pixels\n"
        "assert 'pydicom' in sys.modules\n"
        "early = [m for m in ('requests', 'urllib3', 'tqdm') if m in sys.modules]\n"
        "import requests, tqdm, dicomweb_client\n"
        "import pydicom.data.download as dl\n"
        "from app.dicom.pixels import frame_array\n"
        "from app.core.paths import sample_path\n"
        "a = frame_array(sample_path())\n"
        "print(early, requests.__version__, a.shape)\n"
        "sys.exit(1 if early or dl.HAVE_REQUESTS else 0)\n"
    )
    _run_ok(code, tmp_path)


def test_the_start_up_heap_is_frozen_once_the_window_is_built(tmp_path: Path) -> None:
    # a full garbage collection then walks only what was created since the start: no ~50 ms
    # pause in the middle of a scroll (the viewer benchmark's variance source). ~78k objects
    # once the MPR, codec and OpenCV stacks stopped loading with the window (issue 17)
    code = (
        "import gc, sys\n"
        "from PySide6.QtCore import QTimer\n"
        "import app.gui.app as A\n"
        "seen = {}\n"
        "def check():\n"
        "    seen['frozen'] = gc.get_freeze_count()\n"
        "    A.QApplication.instance().closeAllWindows()\n"
        "    A.QApplication.instance().quit()\n"
        "A.ensure_app()\n"
        "QTimer.singleShot(300, check)\n"
        "A.run_gui([])\n"
        "print(seen)\n"
        "sys.exit(0 if seen.get('frozen', 0) > 50000 else 1)\n"
    )
    _run_ok(code, tmp_path)


def test_hilum_gui_with_a_path_loads_the_pixel_pipeline_before_qt(tmp_path: Path) -> None:
    # PySide6's import hook reads the source of every module imported after it: the modules
    # the first image needs (pydicom, OpenCV) are loaded before Qt, without that tax. An empty
    # window (no path) does not load them at all before it is shown.
    code = (
        "import sys, types\n"
        "seen = {}\n"
        "fake = types.ModuleType('app.gui.app')\n"
        "def run_gui(paths, screenshot=None):\n"
        "    seen[bool(paths)] = [m in sys.modules for m in ('pydicom', 'cv2', 'PySide6.QtCore')]\n"
        "    return 0\n"
        "fake.run_gui = run_gui\n"
        "sys.modules['app.gui.app'] = fake\n"
        "from app.cli import main\n"
        "main(['gui'])\n"
        f"main(['gui', {str(tmp_path)!r}])\n"
        "print(seen)\n"
        "sys.exit(0 if seen == {False: [False, False, False], True: [True, True, False]} else 1)\n"
    )
    _run_ok(code, tmp_path)


def test_the_early_preview_is_the_image_the_import_shows(tmp_path: Path) -> None:
    # hilum gui PATH reads and decodes the first image on a thread started before Qt loads;
    # the import takes it (the same pixels, bit for bit) with the settings' cache budget
    import numpy as np

    from app.core.paths import sample_path
    from app.core.progress import NullProgress
    from app.dicom.pixels import frame_array
    from app.gui import loader

    sample = str(sample_path())
    loader.load_pixel_pipeline()
    loader.start_early_preview([sample])
    early = loader._early[0]
    events: list[tuple[str, object]] = []
    loader.import_paths([sample], progress=NullProgress(), emit=events.append, cache_bytes=1 << 30)
    previews = [p for kind, p in events if kind == "preview"]
    assert len(previews) == 1 and previews[0] is early.series
    assert not loader._early  # taken once
    shown = early.series.cache.get(0) if early.series is not None else None
    assert shown is not None and np.array_equal(shown, frame_array(sample))
    assert early.series is not None and early.series.cache.max_bytes == 1 << 30

    # an import of other paths does not take it: it reads its own first image
    loader.start_early_preview([sample])
    other = tmp_path / "copy.dcm"
    other.write_bytes(Path(sample).read_bytes())
    events.clear()
    loader.import_paths(
        [str(other)], progress=NullProgress(), emit=events.append, cache_bytes=1 << 30
    )
    previews = [p for kind, p in events if kind == "preview"]
    assert len(previews) == 1 and previews[0].frames[0].path == str(other)
    assert not loader._early


@pytest.mark.parametrize(
    "name, early",
    [
        ("sample", True),  # JPEG-LS: CharLS without the GIL
        ("cxr/dx_chest_pa_j2k_lossless.dcm", True),  # a big JPEG 2000 film: OpenJPEG by ctypes
        ("cxr/cr_chest_pa_uncompressed.dcm", True),
        ("mr_transfer_syntaxes/5.dcm", False),  # JPEG lossless: the codecs are not loaded yet
    ],
)
def test_the_early_preview_thread_imports_nothing(
    tmp_path: Path, shared_data: Path, name: str, early: bool
) -> None:
    # it runs while the GUI thread imports Qt: every module it needs was loaded before it, and
    # an image that needs the deferred codec backends is left to the import worker
    from app.core.paths import sample_path

    path = sample_path() if name == "sample" else shared_data / "dicom" / name
    code = (
        "import sys, threading\n"
        "from app.gui import loader\n"
        "from app.dicom import deferred_codecs\n"
        "loader.load_pixel_pipeline()\n"
        "seen = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if threading.current_thread().name == 'early-preview':\n"
        "            seen.append(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Spy())\n"
        f"loader.start_early_preview([{str(path)!r}])\n"
        "early = loader._early[0]\n"
        "early._done.wait(60)\n"
        "ok = early.series is not None and not early.failed\n"
        "print(seen, ok, deferred_codecs.pending())\n"
        f"sys.exit(0 if not seen and ok is {early} and deferred_codecs.pending() else 1)\n"
    )
    _run_ok(code, tmp_path)


_TABLES = r"""
import hashlib, json, sys
mode = sys.argv[1]
if mode == "deferred":
    from app.gui.loader import load_pixel_pipeline

    load_pixel_pipeline()
else:
    import app.dicom.pixels
early = sorted(m for m in ("gdcm", "pylibjpeg", "PIL") if m in sys.modules)
from app.dicom import deferred_codecs

pending = deferred_codecs.pending()
import pydicom
from pydicom.pixels import pixel_array

# a JPEG 2000 film through pydicom (GDCM first) before anything completed the tables
arr = pixel_array(pydicom.dcmread(sys.argv[2]))
import pydicom.pixels.common as C
import pydicom.pixels.decoders.base as D
import pydicom.pixels.encoders.base as E

tables = {
    k: [[(label, f.__module__ + "." + f.__name__) for label, f in v._available.items()],
        sorted(v._unavailable), "_validate_plugins" in v.__dict__]
    for mod in (D, E) for k, v in vars(mod).items() if isinstance(v, C.CoderBase)
}
print(json.dumps({"early": early, "pending": pending, "tables": tables,
                  "pixels": hashlib.sha256(arr.tobytes()).hexdigest()}))
"""


def test_deferred_codec_backends_end_in_pydicoms_own_tables(
    tmp_path: Path, shared_data: Path
) -> None:
    # hilum gui PATH imports pydicom without GDCM, pylibjpeg and Pillow (app.dicom.
    # deferred_codecs); the first use of a coder completes the tables: the same plugins, in
    # the same order, decoding the same pixels as a plain import of pydicom
    film = shared_data / "dicom" / "cxr" / "dx_chest_pa_j2k_lossless.dcm"
    runs = {}
    for mode in ("plain", "deferred"):
        out = subprocess.run(
            [sys.executable, "-c", _TABLES, mode, str(film)],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    assert runs["plain"]["early"] == ["PIL", "gdcm", "pylibjpeg"] and not runs["plain"]["pending"]
    assert runs["deferred"]["early"] == [] and runs["deferred"]["pending"]
    assert runs["deferred"]["tables"] == runs["plain"]["tables"]
    assert runs["deferred"]["pixels"] == runs["plain"]["pixels"]


def test_the_signal_leak_probe_ignores_other_threads() -> None:
    # the early preview decodes while the QApplication is made: references to True that
    # another thread drops meanwhile are not a leaking Signal.emit (whose guard would spend a
    # second topping up reference counts and warn about a wrong PySide6)
    import threading

    from app.gui.app import emit_leaks_bool_reference

    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            held = [True] * 5000
            del held

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns as often as they can
    worker = threading.Thread(target=churn)
    worker.start()
    try:
        assert not any(emit_leaks_bool_reference() for _ in range(100))
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(interval)


def test_the_end_of_the_pause_frees_the_start_ups_cycles_then_freezes(tmp_path: Path) -> None:
    # the reference cycles the start-up left (a thousand objects: probe classes, caught
    # exceptions) are collected once, not frozen for the life of the process
    from app.core.paths import sample_path

    code = (
        "import gc, json, runpy, sys\n"
        "import app.core.startup as S\n"
        "real = S.resume_gc\n"
        "seen = {}\n"
        "def resume(freeze=False):\n"
        "    was = S.gc_paused()\n"
        "    out = real(freeze)\n"
        "    if was and freeze:\n"
        "        seen['frozen'] = gc.get_freeze_count()\n"
        "        gc.unfreeze()\n"
        "        seen['left'] = gc.collect()\n"
        "        gc.freeze()\n"
        "    return out\n"
        "S.resume_gc = resume\n"
        f"sys.argv = ['app', 'gui', {str(sample_path())!r}]\n"
        "try:\n"
        "    runpy.run_module('app', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(seen))\n"
    )
    env = _env(tmp_path)
    env["HILUM_STARTUP_REPORT"] = str(tmp_path / "startup.json")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["frozen"] > 50000 and seen["left"] < 200, seen
