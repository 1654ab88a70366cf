"""Benchmark: cold start of ``hilum gui`` against a bare PySide6 + pyqtgraph window (the floor).

Each run starts a new Python process (offscreen Qt, a fresh empty ``HILUM_HOME``) and measures
wall time from just before the process is spawned:

* ours: ``python -m app gui <bundled sample>`` with ``HILUM_STARTUP_REPORT`` set, which makes
  the window note when it was first painted (``window_ms``) and when the sample's first image
  was painted (``sample_ms``), then quit;
* the floor: a script that imports PySide6, pyqtgraph and numpy, loads the same pixels
  (decoded and windowed to uint8 beforehand, not timed) and paints them in a ``pg.ImageItem``.

Runs alternate between the two (``--runs``, median kept). With ``--importtime`` one more run of
ours under ``python -X importtime`` prints the slowest imports (cumulative, ms). The last line
printed is JSON::

    {"benchmark": "startup", "ratio": <bare sample ms over ours>, "window_ms": x,
     "sample_ms": x, "bare_ms": x, "sample_cpu_ms": x, "bare_cpu_ms": x}

(CPU ms: the process's CPU time, all threads, at the first image: a figure that depends less
on what else the machine runs than wall time does.)

Run: ``python benchmarks/startup.py [--runs 5] [--importtime]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_BARE = r"""
import json, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
import numpy as np
import pyqtgraph as pg
app = QApplication(sys.argv[:1])
frame = np.load(sys.argv[1])
view = pg.GraphicsView(background="k")
vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
view.setCentralItem(vb)
img = pg.ImageItem(frame, axisOrder="row-major", autoLevels=False)
img.setLevels(None)
vb.addItem(img)
view.resize(1280, 800)
marks = {}
def done():
    marks["image"] = time.time()
    marks["image_cpu"] = time.process_time()
    open(sys.argv[2], "w").write(json.dumps(marks))
    app.quit()
class First(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and not marks:
            marks["window"] = 0
            QTimer.singleShot(0, done)
        return False
f = First()
view.viewport().installEventFilter(f)
view.show()
app.exec()
"""


def _env(home: str) -> dict[str, str]:
    env = dict(
        os.environ, HILUM_HOME=home, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen")
    )
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # an installed Hilum has its bytecode compiled (pip does it); so does this checkout after
    # the warm-up run, instead of compiling every module at every start
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_ours(sample: Path, work: Path, extra: list[str] | None = None) -> dict[str, float]:
    """One cold start of ``hilum gui <sample>``: ms to the painted window and image."""
    home = tempfile.mkdtemp(dir=work)
    report = work / f"ours{time.monotonic_ns()}.json"
    env = _env(home)
    env["HILUM_STARTUP_REPORT"] = str(report)
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, *(extra or []), "-m", "app", "gui", str(sample)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    if not report.exists():
        raise SystemExit(f"hilum gui did not report its start-up:\n{out.stderr[-3000:]}")
    marks = json.loads(report.read_text())
    if "image" not in marks or "window" not in marks:
        raise SystemExit(f"no image painted: {marks}\n{out.stderr[-3000:]}")
    res = {
        "window_ms": (marks["window"] - t0) * 1000.0,
        "sample_ms": (marks["image"] - t0) * 1000.0,
        "window_cpu_ms": marks.get("window_cpu", 0.0) * 1000.0,
        "sample_cpu_ms": marks.get("image_cpu", 0.0) * 1000.0,
    }
    if extra:
        res["stderr"] = out.stderr  # type: ignore[assignment]
    return res


def run_bare(frame: Path, work: Path) -> tuple[float, float]:
    """One cold start of the bare window showing the same pixels: (wall ms, CPU ms) to its
    first paint."""
    report = work / f"bare{time.monotonic_ns()}.json"
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", _BARE, str(frame), str(report)],
        env=_env(tempfile.mkdtemp(dir=work)),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if not report.exists():
        raise SystemExit(f"bare window failed:\n{out.stderr[-3000:]}")
    marks = json.loads(report.read_text())
    return (marks["image"] - t0) * 1000.0, marks["image_cpu"] * 1000.0


def sample_pixels(sample: Path, out: Path) -> None:
    """The sample's first frame, windowed to uint8 as the viewer shows it at first (not timed)."""
    import numpy as np

    from app.dicom.pixels import frame_array

    arr = frame_array(sample)
    lo, hi = np.percentile(arr, [1, 99])
    u8 = np.clip((arr - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    np.save(out, np.ascontiguousarray(u8))


def importtime_top(stderr: str, n: int = 15) -> list[tuple[str, float]]:
    """The ``n`` slowest imports (cumulative ms) from ``-X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line.split("|")
        try:
            rows.append((parts[2].rstrip(), int(parts[1]) / 1000.0))
        except (IndexError, ValueError):
            continue
    return sorted(rows, key=lambda r: -r[1])[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--importtime", action="store_true", help="print the slowest imports")
    args = parser.parse_args()

    from app.core.paths import sample_path

    sample = sample_path()
    work = Path(tempfile.mkdtemp(prefix="hilum_startup_"))
    try:
        frame = work / "frame.npy"
        sample_pixels(sample, frame)
        run_ours(sample, work)  # warm the OS file cache and bytecode for both (not counted)
        run_bare(frame, work)
        ours, bare, bare_cpu = [], [], []
        for r in range(args.runs):
            o = run_ours(sample, work)
            b, b_cpu = run_bare(frame, work)
            ours.append(o)
            bare.append(b)
            bare_cpu.append(b_cpu)
            print(
                f"run {r + 1}: hilum window {o['window_ms']:.0f} ms (CPU {o['window_cpu_ms']:.0f}),"
                f" sample image {o['sample_ms']:.0f} ms (CPU {o['sample_cpu_ms']:.0f}); bare "
                f"pyqtgraph window with the image {b:.0f} ms (CPU {b_cpu:.0f}); "
                f"load {os.getloadavg()[0]:.2f}"
            )
        if args.importtime:
            res = run_ours(sample, work, ["-X", "importtime"])
            print("slowest imports of hilum gui (cumulative ms):")
            for name, ms in importtime_top(str(res.get("stderr", ""))):
                print(f"  {ms:8.1f}  {name}")
        window_ms = statistics.median(o["window_ms"] for o in ours)
        sample_ms = statistics.median(o["sample_ms"] for o in ours)
        bare_ms = statistics.median(bare)
        print(f"load average: {os.getloadavg()}")
        print(
            json.dumps(
                {
                    "benchmark": "startup",
                    "ratio": round(bare_ms / sample_ms, 3),
                    "window_ms": round(window_ms, 1),
                    "sample_ms": round(sample_ms, 1),
                    "bare_ms": round(bare_ms, 1),
                    "sample_cpu_ms": round(statistics.median(o["sample_cpu_ms"] for o in ours), 1),
                    "bare_cpu_ms": round(statistics.median(bare_cpu), 1),
                    "load": round(os.getloadavg()[0], 2),
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
