"""Big JPEG 2000 films: a reduced-resolution first image, then the exact full decode."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.dicom.windowing import window_to_uint8
from app.gui.main_window import MainWindow
from app.gui.settings import Settings

FILM = ("cxr", "dx_chest_pa_j2k_lossless.dcm")


def test_ctypes_openjpeg_matches_the_pixel_pipeline_and_releases_the_gil(shared_data: Path) -> None:
    from app.dicom.pixels import frame_array, read_dataset
    from app.gui.j2k import progressive_candidate, reduced_frame

    ds = read_dataset(shared_data / "dicom" / FILM[0] / FILM[1])
    assert progressive_candidate(ds)
    full = frame_array(ds)
    ticks = [0]
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        mine = reduced_frame(ds, 0)
    finally:
        done.set()
        t.join()
    assert mine is not None and mine.dtype == np.float32
    assert np.array_equal(mine, full)  # bit-exact with app.dicom.pixels
    assert ticks[0] > 20  # another Python thread ran during the decode
    quarter = reduced_frame(ds, 2)
    assert quarter is not None and quarter.shape == (532, 500)
    # the reduced image is the same picture: close to a 4x4 subsample of the full one
    assert np.corrcoef(quarter.ravel(), full[::4, ::4].ravel())[0, 1] > 0.99


def test_film_shows_a_preview_then_the_full_resolution(qtbot: Any, shared_data: Path) -> None:
    from app.dicom.pixels import frame_array

    w = MainWindow(Settings())
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    with qtbot.waitSignal(w.first_image_painted, timeout=60000):
        w.open_paths([str(shared_data / "dicom" / FILM[0] / FILM[1])])
    vp = w.active_viewport()
    assert vp.frame is not None and vp.frame.shape == (2128, 2000)  # full pixel grid from the start
    assert vp.series.monochrome1 and vp.invert  # MONOCHROME1 shown inverted
    if vp.series.low_res:  # the preview: painted at its reduced size, scaled onto the full grid
        small = vp.series.reduced[0]
        assert vp.image.image.shape == small.shape and small.shape[0] < 2128
        corner = vp.image.mapRectToParent(vp.image.boundingRect())
        assert (corner.width(), corner.height()) == (2000.0, 2128.0)
        assert np.array_equal(vp.image.image, window_to_uint8(small, *vp.window_level, vp.invert))
        assert vp.displayed_image().shape == (2128, 2000)  # still the source pixel grid
    qtbot.waitUntil(
        lambda: not vp.series.low_res and vp.frame is vp.series.cache.get(0) and not w.busy,
        timeout=120000,
    )
    # the full image replaces it, painted 1:1 again
    assert vp.image.image.shape == (2128, 2000) and vp.image.transform().isIdentity()
    assert np.array_equal(vp.displayed_image(), window_to_uint8(vp.frame, *vp.window_level, True))
    assert not vp.series.reduced
    assert np.array_equal(vp.frame, frame_array(str(shared_data / "dicom" / FILM[0] / FILM[1])))
    assert not any("full resolution" in line for line in vp.annotation_text()["br"])
    w.close()
