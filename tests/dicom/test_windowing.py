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


def _numpy_auto_window(arr: np.ndarray) -> tuple[float, float]:
    """The automatic window as it was, with ``np.percentile``: the reference (issue 17)."""
    step = max(1, int((arr.size / (arr.shape[-1] if arr.ndim == 3 else 1) / 65536) ** 0.5))
    sample = arr[::step, ::step]
    if sample.ndim == 3:
        sample = sample.mean(axis=-1)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, (0.5, 99.5))
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    width = max(float(hi - lo), 1.0)
    return float(lo + width / 2.0), width


def test_auto_window_is_bit_for_bit_numpy_percentile_on_the_shared_data(shared_data: Path) -> None:
    # the partition-based percentiles (no numpy.ma import at the first image) give the same window
    files = sorted((shared_data / "dicom").rglob("*.dcm"))
    files = [f for f in files if "broken" not in f.parts][::3][:40]
    checked = 0
    for f in files:
        try:
            ds = pixels.read_dataset(f)
            frame = pixels.frame_array(ds, 0)
        except Exception:  # noqa: BLE001 - a codec this machine lacks: not this test's subject
            continue
        for arr in (frame, frame.astype(np.float32)):
            assert auto_window(arr) == _numpy_auto_window(arr), f
        checked += 1
    assert checked >= 5
    rng = np.random.default_rng(17)
    for dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        for n in (1, 2, 3, 257, 70001):
            arr = (rng.standard_normal((n, 3)) * 900).astype(dtype)
            assert auto_window(arr) == _numpy_auto_window(arr)
            assert auto_window(arr[:, 0:1]) == _numpy_auto_window(arr[:, 0:1])
