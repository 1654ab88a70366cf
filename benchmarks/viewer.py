"""Viewer benchmark: scrolling speed against a bare pyqtgraph ImageItem, and time to first image.

Run (offscreen, from the repository root)::

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/viewer.py [--rounds 3]

1. Scrolling: ``ct_phantom_philips`` (140 CT slices, 512x512) is decoded once (not timed). Our
   :class:`app.gui.viewport.Viewport` scrolls it with a CT brain window (W 80 / L 40) applied to
   the cached float32 HU frames, annotations and all; a bare ``pg.GraphicsView`` + ``ImageItem``
   of the same size is fed the same frames pre-windowed to uint8. Each frame is painted
   synchronously (``repaint``), so frames/s measure real paints. The two are interleaved frame by
   frame (same load on both); the median over rounds of the ratio and of our frames/s is kept.
   As for a user, the viewport windows the slices around the one on screen (and lays out their
   overlay text) ahead of the scroll on a worker thread (:class:`app.gui.frames.WindowedFrames`);
   that thread competes for the same cores during the timed loop, but its CPU time is not in
   ``ratio_cpu`` (the GUI thread's alone).
2. Time to first image: from handing the folder to the main window (``MainWindow.open_paths``)
   to the first paint of the image, with an empty library (a fresh ``HILUM_HOME``); median of
   several runs. The same for the 2128x2000 JPEG 2000 chest film, whose first paint is its
   reduced-resolution preview (see :mod:`app.gui.j2k`); the time to its full-resolution paint is
   ``first_image_ms_cxr_full``.

The last line printed is JSON:
``{"benchmark": "viewer", "ratio", "fps", "first_image_ms", "first_image_ms_cxr",
"first_image_ms_cxr_full"}``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SIZE = (800, 800)
WINDOW = (40.0, 80.0)  # CT brain: centre, width


def _fresh_home() -> str:
    home = tempfile.mkdtemp(prefix="hilum_bench_")
    os.environ["HILUM_HOME"] = home
    return home


def load_phantom(folder: Path) -> object:
    """Scan and fully decode the phantom series (not timed)."""
    from app.core.progress import NullProgress
    from app.dicom.library import Library
    from app.gui.loader import build_series

    lib = Library()
    report = lib.scan([folder], progress=NullProgress())
    uid = report.studies[0]["series"][0]["series_uid"]
    series = build_series(uid, lib)[0]
    for i in range(series.count):
        if series.cache.get(i) is None:
            series.cache.put(i, series.decode(i))
    return series


def scroll_fps(
    app: object, series: object, frames_u8: np.ndarray, loops: int
) -> tuple[float, float, float, float]:
    """Frames/s of our viewport and of a bare ImageItem, interleaved frame by frame, by wall
    time and by the GUI thread's CPU time: ``(ours, bare, ours_cpu, bare_cpu)``.

    Each step scrolls ours one slice and paints it, then feeds the bare item the same slice and
    paints it; each side's own paint time is summed. Interleaving puts both under the same load.
    The CPU figures (``time.thread_time``: painting is on this thread with the offscreen
    platform) leave out the time the thread waited for a core, the main noise on a busy machine.
    """
    import pyqtgraph as pg

    from app.gui.settings import Settings
    from app.gui.viewport import Viewport

    vp = Viewport(Settings())
    vp.resize(*SIZE)
    vp.show()
    vp.set_series(series)
    vp.set_window(WINDOW[0], WINDOW[1])
    vp.fit()

    view = pg.GraphicsView(background="k")
    vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
    view.setCentralItem(vb)
    img = pg.ImageItem(axisOrder="row-major")
    vb.addItem(img)
    view.resize(*SIZE)
    view.show()
    # uint8 shown as stored (no levels): pyqtgraph's fastest path (a Grayscale8 QImage, no copy)
    img.setImage(frames_u8[0], autoLevels=False)
    img.setLevels(None)
    vb.autoRange(padding=0.02)
    app.processEvents()  # type: ignore[attr-defined]

    ours_w, bare_w = vp.view.viewport(), view.viewport()
    n = series.count  # type: ignore[attr-defined]
    for i in range(5):  # warm-up
        vp.set_index(i)
        ours_w.repaint()
        img.setImage(frames_u8[i], autoLevels=False)
        bare_w.repaint()
    t_ours = t_bare = c_ours = c_bare = 0.0
    frames = 0
    clock, cpu = time.perf_counter, time.thread_time
    for _ in range(loops):
        for i in range(n):
            t0, u0 = clock(), cpu()
            vp.set_index(i)
            ours_w.repaint()
            t1, u1 = clock(), cpu()
            img.setImage(frames_u8[i], autoLevels=False)
            bare_w.repaint()
            t2, u2 = clock(), cpu()
            t_ours += t1 - t0
            t_bare += t2 - t1
            c_ours += u1 - u0
            c_bare += u2 - u1
            frames += 1
    assert vp.frame is not None and vp.index == n - 1
    vp.close()
    view.close()
    vp.deleteLater()
    view.deleteLater()
    return frames / t_ours, frames / t_bare, frames / c_ours, frames / c_bare


def first_image_ms(app: object, path: Path) -> tuple[float, float]:
    """Hand ``path`` to a new main window (empty library) and time the first painted image.

    Returns
    -------
    (first_ms, full_ms)
        The first paint (for a big JPEG 2000 film: its reduced-resolution preview) and the paint
        of the full-resolution image (the same for images shown at full resolution at once).
    """
    from PySide6.QtCore import QEventLoop, QThreadPool, QTimer

    from app.gui.main_window import MainWindow
    from app.gui.settings import Settings

    _fresh_home()
    window = MainWindow(Settings())
    window.resize(1440, 900)
    window.show()
    # the window loads the library listing (and the DICOM modules) at start-up: let it finish,
    # as it does while the user picks the files
    while window.busy or QThreadPool.globalInstance().activeThreadCount():
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)
    app.processEvents()  # type: ignore[attr-defined]
    loop = QEventLoop()
    window.first_image_painted.connect(loop.quit)
    QTimer.singleShot(120000, loop.quit)
    start = time.perf_counter()
    window.open_paths([str(path)])
    loop.exec()
    ms = window.first_image_ms
    vp = window.active_viewport()
    full_ms = ms
    if vp.series is not None and vp.series.low_res:
        done = QEventLoop()

        def painted() -> None:
            if vp.series is not None and not vp.series.low_res:
                done.quit()

        vp.image_painted.connect(painted)
        QTimer.singleShot(120000, done.quit)
        done.exec()
        full_ms = (time.perf_counter() - start) * 1000.0
    # let the import finish before the window goes
    while window.busy:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)
    window.close()
    window.deleteLater()
    app.processEvents()  # type: ignore[attr-defined]
    if ms is None or full_ms is None:
        raise SystemExit(f"no image was shown for {path}")
    return ms, full_ms


def j2k_decoders(path: Path, repeat: int = 3) -> dict[str, float]:
    """Full decode of the film's J2K codestream: best wall ms of pylibjpeg-openjpeg, GDCM and
    Hilum's banded OpenJPEG decode (:func:`app.gui.j2k.decode_codestream`), same run."""
    import gdcm
    import openjpeg
    import pydicom
    from pydicom.encaps import generate_frames

    from app.gui.j2k import FULL_DECODE_BANDS, decode_codestream

    codestream = next(generate_frames(pydicom.dcmread(path).PixelData, number_of_frames=1))

    def by_gdcm() -> object:
        reader = gdcm.ImageReader()
        reader.SetFileName(str(path))
        reader.Read()
        return reader.GetImage().GetBuffer()

    out = {}
    for name, fn in (
        ("pylibjpeg_openjpeg", lambda: openjpeg.decode(codestream)),
        ("gdcm", by_gdcm),
        (f"hilum_{FULL_DECODE_BANDS}_bands", lambda: decode_codestream(codestream, 0)),
    ):
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = round(best * 1000.0, 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved scroll rounds (median kept)"
    )
    parser.add_argument("--loops", type=int, default=2, help="passes over the 140 slices per round")
    parser.add_argument("--runs", type=int, default=3, help="first-image runs (median kept)")
    args = parser.parse_args()

    _fresh_home()
    from app.core.paths import shared_data_dir
    from app.gui.app import ensure_app

    data = shared_data_dir() / "dicom"
    phantom = data / "ct_phantom_philips"
    cxr = data / "cxr" / "dx_chest_pa_j2k_lossless.dcm"
    for p in (phantom, cxr):
        if not p.exists():
            raise SystemExit(f"benchmark data missing: {p} (set HILUM_SHARED_DATA)")
    app = ensure_app()
    importlib.import_module("app.gui.loader")  # the window preloads it at start-up
    from app.gui.app import freeze_startup_heap

    series = load_phantom(phantom)
    lo, hi = WINDOW[0] - WINDOW[1] / 2, WINDOW[0] + WINDOW[1] / 2
    vol = np.stack([series.cache.get(i) for i in range(series.count)])  # type: ignore[attr-defined]
    frames_u8 = np.ascontiguousarray(
        np.clip((vol - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    )
    print(
        f"series: {series.count} slices {vol.shape[1]}x{vol.shape[2]}, window W {WINDOW[1]:g} L {WINDOW[0]:g}"
    )

    freeze_startup_heap()  # as ``hilum gui`` does once its window is built
    ours, bare, cpu_ratios = [], [], []
    for r in range(args.rounds):
        o, b, oc, bc = scroll_fps(app, series, frames_u8, args.loops)
        ours.append(o)
        bare.append(b)
        cpu_ratios.append(oc / bc)
        print(
            f"round {r + 1}: ours {o:.1f} frames/s, bare ImageItem {b:.1f} frames/s, ratio {o / b:.3f}"
            f" (by CPU time: ours {oc:.1f}, bare {bc:.1f} frames/s, ratio {oc / bc:.3f});"
            f" load {os.getloadavg()[0]:.2f}"
        )
    ratio = statistics.median(o / b for o, b in zip(ours, bare))
    best_ours = statistics.median(ours)

    firsts = [first_image_ms(app, phantom)[0] for _ in range(args.runs)]
    print("first image ct_phantom_philips (ms): " + ", ".join(f"{v:.0f}" for v in firsts))
    cxr_runs = [first_image_ms(app, cxr) for _ in range(args.runs)]
    firsts_cxr = [a for a, _ in cxr_runs]
    print(
        "first image 2128x2000 JPEG 2000 film, reduced-resolution preview (ms): "
        + ", ".join(f"{a:.0f}" for a in firsts_cxr)
    )
    print("  the same film at full resolution (ms): " + ", ".join(f"{b:.0f}" for _, b in cxr_runs))
    decoders = j2k_decoders(cxr)
    print(
        "full J2K decode of the film, best of 3 (ms): "
        + ", ".join(f"{k} {v:.0f}" for k, v in decoders.items())
    )

    result = {
        "benchmark": "viewer",
        "ratio": round(ratio, 3),
        "fps": round(best_ours, 1),
        "load": round(os.getloadavg()[0], 2),
        "ratio_cpu": round(statistics.median(cpu_ratios), 3),
        "first_image_ms": round(statistics.median(firsts), 1),
        "first_image_ms_cxr": round(statistics.median(firsts_cxr), 1),
        "first_image_ms_cxr_full": round(statistics.median(b for _, b in cxr_runs), 1),
    }
    print(f"load average: {os.getloadavg()}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
