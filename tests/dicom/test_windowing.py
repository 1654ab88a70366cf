"""One windowing path: the viewer's fast window (OpenCV) matches pydicom's VOI LINEAR window,
the reference the exports and analysis displays use; one automatic window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.dicom import pixels
from app.dicom.pixels import _window_8bit, auto_window, window_to_uint8


@pytest.fixture(scope="module")
def ct_frame(shared_data: Path) -> np.ndarray:
    ds = pixels.read_dataset(shared_data / "dicom" / "ct_head_ge" / "05.dcm")
    return pixels.frame_array(ds, 0).astype(np.float32)


@pytest.mark.parametrize(
    "window", [(40.0, 80.0), (40.0, 400.0), (-600.0, 1500.0), (300.0, 2.0), (0.0, 1.0)]
)
@pytest.mark.parametrize("invert", [False, True])
def test_fast_window_matches_pydicom_voi(
    ct_frame: np.ndarray, window: tuple[float, float], invert: bool
) -> None:
    ref = _window_8bit(ct_frame, *window).astype(np.int16)
    if invert:
        ref = 255 - ref
    fast = window_to_uint8(ct_frame, *window, invert).astype(np.int16)
    assert fast.shape == ref.shape and fast.dtype == np.int16
    # OpenCV rounds where pydicom truncates: at most one grey level apart, and most pixels equal
    assert int(np.abs(fast - ref).max()) <= 1
    assert (fast == ref).mean() > 0.5
    # a real window: the image spans dark to bright in both
    assert {int(fast.min()), int(fast.max())} <= {0, 1, 254, 255} or window[1] > 1000


def test_full_range_window_leaves_8bit_images_unchanged() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert window_to_uint8(rgb, 128.0, 256.0) is rgb
    # pydicom's reference: the identity up to its float truncation
    ref = _window_8bit(rgb[..., 0], 128.0, 256.0).astype(np.int16)
    assert int(np.abs(ref - rgb[..., 0]).max()) <= 1


def test_one_auto_window_for_grey_and_colour(ct_frame: np.ndarray) -> None:
    c, w = auto_window(ct_frame)
    lo, hi = np.percentile(ct_frame, [0.5, 99.5])
    assert abs((c - w / 2) - lo) < 0.05 * (hi - lo) and abs((c + w / 2) - hi) < 0.05 * (hi - lo)
    colour = np.stack([ct_frame] * 3, axis=-1)
    assert auto_window(colour) == pytest.approx((c, w))
    from app.gui import viewport  # the viewer uses the same function, not a copy

    assert viewport.auto_window is auto_window and viewport.window_to_uint8 is window_to_uint8
