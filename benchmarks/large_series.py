"""Benchmark: a 1,000-slice CT in the viewer (first image, scrolling while it loads, memory).

A synthetic series is written to a temporary folder: ``--slices`` (default 1000) 512x512 CT
slices made from the 140 slices of ``ct_phantom_philips`` (slice ``i`` is phantom slice
``i % 140``) with rewritten Study/Series/SOP Instance UIDs, Instance Number, Image Position and
Slice Location (1 mm apart). Then, offscreen, with the files in the OS cache:

1. ``first_image_ms``: from handing the folder to the main window (``MainWindow.open_paths``,
   empty library, frame cache ``--cache-mb``, default 1024) to the first painted image;
2. ``fps_while_loading``: once the viewport holds the indexed 1,000-slice series, it is scrolled
   (one slice per step, each painted synchronously, back and forth over the slices decoded so
   far) while the viewer keeps decoding the rest in the background; painted slices per second
   over ``--scroll-s`` seconds (or until everything is decoded);
3. ``ratio``: our viewport against a bare pyqtgraph ``ImageItem`` fed the same frames
   pre-windowed to uint8, interleaved frame by frame over ``--ratio-frames`` slices (as in
   ``benchmarks/viewer.py``), once loading is over;
4. ``max_rss_mb``: the process's peak resident memory, against the frame cache budget + 500 MB.

The last line printed is JSON::

    {"benchmark": "large_series", "ratio": x, "first_image_ms": x, "fps_while_loading": x,
     "max_rss_mb": x, "rss_limit_mb": x, "bare_fps": x, "ours_fps": x}

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/large_series.py [--slices 1000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SIZE = (800, 800)
WINDOW = (40.0, 400.0)  # CT soft tissue: centre, width
_ROOT_UID = "1.2.826.0.1.3680043.10.543.18"


def build_series(folder: Path, n: int, phantom: Path) -> None:
    """Write ``n`` slices made from the phantom's (new UIDs and positions)."""
    import pydicom

    sources = sorted(
        (p for p in phantom.iterdir() if p.name != "DIRFILE"),
        key=lambda p: int(p.name.lstrip("I") or 0),
    )
    datasets = []
    for p in sources:
        ds = pydicom.dcmread(p)
        if "PixelData" in ds:
            datasets.append(ds)
    folder.mkdir(parents=True)
    for i in range(n):
        ds = datasets[i % len(datasets)]
        ds.StudyInstanceUID = f"{_ROOT_UID}.1"
        ds.SeriesInstanceUID = f"{_ROOT_UID}.2"
        ds.SOPInstanceUID = f"{_ROOT_UID}.3.{i + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        x, y = float(ds.ImagePositionPatient[0]), float(ds.ImagePositionPatient[1])
        ds.ImagePositionPatient = [x, y, float(-i)]
        ds.SliceLocation = float(-i)
        ds.save_as(folder / f"IM{i:04d}.dcm", enforce_file_format=True)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--cache-mb", type=int, default=1024, help="frame cache budget (Settings)")
    parser.add_argument("--scroll-s", type=float, default=4.0)
    parser.add_argument("--ratio-frames", type=int, default=200)
    parser.add_argument("--loops", type=int, default=2)
    args = parser.parse_args()

    os.environ["HILUM_HOME"] = tempfile.mkdtemp(prefix="hilum_bench_")
    from app.core.paths import shared_data_dir

    phantom = shared_data_dir() / "dicom" / "ct_phantom_philips"
    if not phantom.is_dir():
        raise SystemExit(f"benchmark data missing: {phantom} (set HILUM_SHARED_DATA)")
    work = Path(tempfile.mkdtemp(prefix="hilum_large_series_"))
    try:
        folder = work / "series"
        t0 = time.perf_counter()
        build_series(folder, args.slices, phantom)
        print(f"built {args.slices} slices in {time.perf_counter() - t0:.1f} s")
        for p in folder.iterdir():  # into the OS cache (not timed)
            p.read_bytes()
        return _run(args, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, folder: Path) -> int:
    import pyqtgraph as pg
    from PySide6.QtCore import QEventLoop, QThreadPool, QTimer

    from app.gui.app import ensure_app
    from app.gui.main_window import MainWindow
    from app.gui.settings import Settings
    from app.gui.viewport import Viewport, window_to_uint8

    app = ensure_app()
    settings = Settings(cache_mb=args.cache_mb)
    window = MainWindow(settings)
    window.resize(1440, 900)
    window.show()
    while window.busy or QThreadPool.globalInstance().activeThreadCount():
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    # 1. first image
    loop = QEventLoop()
    window.first_image_painted.connect(loop.quit)
    QTimer.singleShot(120000, loop.quit)
    window.open_paths([str(folder)])
    loop.exec()
    first_ms = window.first_image_ms
    if first_ms is None:
        raise SystemExit("no image was shown")
    vp = window.active_viewport()
    deadline = time.monotonic() + 120
    while (vp.series is None or vp.series.count < args.slices) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    series = vp.series
    if series is None or series.count != args.slices:
        raise SystemExit(f"the series did not open with {args.slices} slices")
    vp.set_window(*WINDOW)
    # 2. scroll while the rest loads: back and forth over the decoded slices
    cache = series.cache
    shown = 0
    direction = 1
    widget = vp.view.viewport()
    start = time.perf_counter()
    cached_at_start = len(cache.indices())
    while time.perf_counter() - start < args.scroll_s:
        app.processEvents()  # frame_ready signals, the import's events
        nxt = vp.index + direction
        if not (0 <= nxt < series.count) or cache.get(nxt) is None:
            direction = -direction
            nxt = vp.index + direction
            if not (0 <= nxt < series.count) or cache.get(nxt) is None:
                time.sleep(0.001)  # nothing decoded beside the current slice yet
                continue
        vp.set_index(nxt)
        widget.repaint()
        if vp.frame is not None and vp._shown_key == (series.key, nxt):
            shown += 1
        if len(cache.indices()) >= series.count:
            break
    scroll_s = time.perf_counter() - start
    fps_loading = shown / scroll_s
    print(
        f"scrolled {shown} slices in {scroll_s:.2f} s while loading ({fps_loading:.1f} fps); "
        f"decoded {cached_at_start} -> {len(cache.indices())} of {series.count}"
    )
    # wait for the import and the decoding to finish
    while window.busy or (vp.provider is not None and vp.provider.busy):
        app.processEvents()
        time.sleep(0.01)
    held = len(cache.indices())
    print(
        f"decoded frames held: {held} of {series.count} ({cache.max_bytes / 2**20:.0f} MB budget)"
    )
    # 3. ours vs a bare ImageItem on the same frames, interleaved
    n = min(args.ratio_frames, held)
    idx = sorted(cache.indices())[:n]
    frames = [cache.get(i) for i in idx]
    frames_u8 = [np.ascontiguousarray(window_to_uint8(f, *WINDOW, False)) for f in frames]
    ours_vp = Viewport(settings)
    ours_vp.resize(*SIZE)
    ours_vp.show()
    ours_vp.set_series(series, idx[0])
    ours_vp.set_window(*WINDOW)
    ours_vp.fit()
    view = pg.GraphicsView(background="k")
    vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
    view.setCentralItem(vb)
    img = pg.ImageItem(axisOrder="row-major")
    vb.addItem(img)
    view.resize(*SIZE)
    view.show()
    img.setImage(frames_u8[0], autoLevels=False)
    img.setLevels(None)
    vb.autoRange(padding=0.02)
    app.processEvents()
    ours_w, bare_w = ours_vp.view.viewport(), view.viewport()
    t_ours = t_bare = 0.0
    count = 0
    clock = time.perf_counter
    for _ in range(args.loops):
        for k, i in enumerate(idx):
            t0 = clock()
            ours_vp.set_index(i)
            ours_w.repaint()
            t1 = clock()
            img.setImage(frames_u8[k], autoLevels=False)
            bare_w.repaint()
            t2 = clock()
            t_ours += t1 - t0
            t_bare += t2 - t1
            count += 1
    ours_fps, bare_fps = count / t_ours, count / t_bare
    print(
        f"scroll over {n} decoded slices: ours {ours_fps:.1f} fps, bare ImageItem {bare_fps:.1f} fps"
    )
    rss = _rss_mb()
    limit = args.cache_mb + 500
    print(f"peak RSS {rss:.0f} MB (limit {limit} MB: cache budget + 500 MB)")
    print(f"load average: {os.getloadavg()}")
    print(
        json.dumps(
            {
                "benchmark": "large_series",
                "ratio": round(ours_fps / bare_fps, 3),
                "first_image_ms": round(first_ms, 1),
                "fps_while_loading": round(fps_loading, 1),
                "max_rss_mb": round(rss, 1),
                "rss_limit_mb": limit,
                "bare_fps": round(bare_fps, 1),
                "ours_fps": round(ours_fps, 1),
            }
        )
    )
    ours_vp.close()
    view.close()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
