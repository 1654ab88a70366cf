"""Preprocessing: resize modes and their GeometryTransform, intensity methods, MONOCHROME1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.types import GeometryTransform
from app.inference.manifest import InputSpec, Preprocessing
from app.inference.preprocess import Preprocessor, frame_index
from app.inference.registry import ModelRegistry

from _inference_models import BUNDLED_ID


def _to_source(gt: GeometryTransform, y_in: float, x_in: float) -> tuple[float, float]:
    return (
        (y_in - gt.pad_top) / gt.scale_y + gt.crop_top,
        (x_in - gt.pad_left) / gt.scale_x + gt.crop_left,
    )


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "crop"])
@pytest.mark.parametrize("shape", [(300, 500), (500, 300), (64, 64)])
def test_geometry_maps_back_to_the_source(mode: str, shape: tuple[int, int]) -> None:
    rows, cols = shape
    spec = InputSpec("x", "NCHW", 64, 64, 1, "float32")
    pre = Preprocessor(
        Preprocessing(intensity={"method": "minmax"}, resize=mode, interpolation="area"), spec
    )
    img = np.zeros(shape, np.float32)
    cy, cx = rows // 2 + rows // 10, cols // 2 - cols // 10  # a bright block near the centre
    img[cy - rows // 20 : cy + rows // 20, cx - cols // 20 : cx + cols // 20] = 1.0
    tensor, gt = pre(img)
    assert tensor.shape == (1, 64, 64)
    assert gt.mode == mode and gt.source_shape == shape and gt.input_shape == (64, 64)
    ys, xs = np.nonzero(tensor[0] > 0.5 * tensor[0].max())
    sy, sx = _to_source(gt, ys.mean() + 0.5, xs.mean() + 0.5)
    assert abs(sy - cy) <= rows / 64 + 1 and abs(sx - cx) <= cols / 64 + 1
    if mode == "letterbox" and rows != cols:
        assert gt.scale_x == pytest.approx(gt.scale_y, rel=0.02)
        # the padding is black (0 before normalisation)
        assert (tensor[0, 0, :] == 0).all() or (tensor[0, :, 0] == 0).all()
    if mode == "crop" and rows != cols:
        assert gt.crop_top > 0 or gt.crop_left > 0


def test_intensity_methods() -> None:
    spec = InputSpec("x", "NHWC", 4, 4, 1, "float32")
    arr = np.arange(16, dtype=np.float32).reshape(4, 4) * 10 - 50  # -50 .. 100
    win = Preprocessor(
        Preprocessing(intensity={"method": "window", "center": 25, "width": 50}, resize="stretch"),
        spec,
    )
    out, _ = win(arr)
    np.testing.assert_allclose(out[:, :, 0], np.clip((arr - 0) / 50, 0, 1))
    mm = Preprocessor(Preprocessing(intensity={"method": "minmax"}, resize="stretch"), spec)
    out, _ = mm(arr, invert=True)
    np.testing.assert_allclose(out[:, :, 0], 1 - (arr + 50) / 150, atol=1e-6)
    pc = Preprocessor(
        Preprocessing(
            intensity={"method": "percentile", "percentiles": [10, 90]}, resize="stretch"
        ),
        spec,
    )
    out, _ = pc(arr)
    assert out.min() == 0 and out.max() == 1
    disp = Preprocessor(
        Preprocessing(intensity={"method": "display"}, mean=(0.5,), std=(0.25,)), spec
    )
    out, _ = disp(np.full((4, 4), 255, np.uint8))
    np.testing.assert_allclose(out, 2.0)


def test_colour_and_grey_channel_conversion() -> None:
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0] = 255
    grey_model = Preprocessor(Preprocessing(), InputSpec("x", "NCHW", 10, 10, 1, "float32"))
    out, _ = grey_model(rgb)
    assert out.shape == (1, 10, 10) and out.max() == pytest.approx(0.299, abs=0.01)
    colour_model = Preprocessor(Preprocessing(), InputSpec("x", "NCHW", 10, 10, 3, "float32"))
    out, _ = colour_model(np.full((10, 10), 128, np.uint8))
    assert out.shape == (3, 10, 10) and np.allclose(out, 128 / 255)


def test_frame_choice() -> None:
    assert frame_index(Preprocessing(frame="first"), 10) == 0
    assert frame_index(Preprocessing(frame="middle"), 10) == 5
    assert frame_index(Preprocessing(frame="last"), 10) == 9
    assert frame_index(Preprocessing(frame=20), 10) == 9
    assert frame_index(Preprocessing(frame="middle"), 1) == 0


def test_monochrome1_sample_is_inverted_like_the_display(shared_data: Path) -> None:
    """The bundled model sees what the radiologist sees: MONOCHROME1 inverted (bones bright)."""
    from app.dicom import pixels
    from app.inference.engine import Engine

    eng = Engine(ModelRegistry().get(BUNDLED_ID), device="cpu")
    path = shared_data / "dicom" / "cxr" / "cr_chest_pa_uncompressed.dcm"
    ds = pixels.read_dataset(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    tensor, gt, _ = eng.preprocess_dataset(ds)
    assert tensor.shape == (1, 28, 28) and gt.mode == "crop"
    disp = pixels.display_array(ds, pixels.frame_array(ds))
    pre = eng.manifest.preprocessing
    x01 = tensor[0] * pre.std[0] + pre.mean[0]
    # the centre of a chest film (mediastinum) is brighter than the lung fields as displayed
    assert x01[10:18, 12:16].mean() > x01[10:18, 3:8].mean()
    expect, _ = eng.preprocess(disp)
    np.testing.assert_allclose(tensor, expect, atol=1e-6)
