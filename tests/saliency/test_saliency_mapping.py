"""Registration: maps go back through stretch / letterbox / crop onto the source pixel grid."""

from __future__ import annotations

import numpy as np
import pytest

from _saliency_models import pooled_input_model
from app.core.types import GeometryTransform
from app.inference.manifest import InputSpec, Preprocessing
from app.inference.preprocess import Preprocessor
from app.saliency.api import Explainer
from app.saliency.mapping import to_source


def _preprocess(image: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, GeometryTransform]:
    pre = Preprocessor(
        Preprocessing(resize=mode, interpolation="linear"),
        InputSpec(name="x", layout="NCHW", height=size, width=size, channels=1, dtype="float32"),
    )
    return pre(image)


@pytest.mark.parametrize("mode", ["stretch", "letterbox", "crop"])
def test_input_grid_maps_back_onto_source(mode: str) -> None:
    """Mapping the model input itself back must reproduce the (smooth) source image."""
    rows, cols = 300, 500
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    source = (0.5 + 0.25 * np.sin(yy / 37.0) + 0.25 * np.cos(xx / 53.0)) * 255
    tensor, gt = _preprocess(source.astype(np.uint8), 128, mode)
    back = to_source(tensor[0], gt, fill=np.nan)
    assert back.shape == (rows, cols)
    valid = ~np.isnan(back)
    if mode == "crop":  # the sides were cut off: those pixels were never seen
        assert not valid[:, :50].any() and valid[:, 150:350].all()
    else:
        assert valid.all()
    err = np.abs(back[valid] - source.astype(np.uint8)[valid] / 255.0)
    assert err.max() < 0.02, f"{mode}: max error {err.max():.4f}"


def test_bright_square_registers_on_letterboxed_non_square_film() -> None:
    """A bright square in a 300 x 500 film, letterboxed to 64 x 64: its CAM lights up in place."""
    rows, cols = 300, 500
    film = np.full((rows, cols), 20, dtype=np.uint8)
    top, left, side = 180, 330, 60
    film[top : top + side, left : left + side] = 250
    tensor, gt = _preprocess(film, 64, "letterbox")
    assert gt.mode == "letterbox" and gt.pad_top > 0
    ex = Explainer(pooled_input_model(64, 4), ["bright"], device="cpu")
    sm = ex.explain(tensor, gt, method="cam")["bright"]
    assert sm.model_raw.shape == (16, 16) and sm.map.shape == (rows, cols)
    # The hottest source pixel lies in the square, and the map's centre of mass is on its centre.
    peak = np.unravel_index(np.argmax(sm.map), sm.map.shape)
    assert top <= peak[0] < top + side and left <= peak[1] < left + side
    hot = np.where(sm.map > 0.5, sm.map, 0.0)
    yy, xx = np.mgrid[0:rows, 0:cols]
    cy, cx = (hot * yy).sum() / hot.sum(), (hot * xx).sum() / hot.sum()
    assert abs(cy - (top + side / 2 - 0.5)) < 4 and abs(cx - (left + side / 2 - 0.5)) < 4
    # And nothing lights up far from it.
    assert sm.map[:100, :200].max() < 0.2


def test_to_source_exact_half_pixel_convention() -> None:
    """Integer-scale stretch: every source pixel takes the value of the input pixel it fed."""
    gt = GeometryTransform((4, 6), (8, 12), "stretch", 2.0, 2.0)
    m = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    up = np.kron(m, np.ones((2, 2), np.float32))  # input-grid map (8 x 12) made of 2x2 blocks
    np.testing.assert_allclose(to_source(up, gt), m)
    # A map at a quarter of the input resolution covers the same extent.
    np.testing.assert_allclose(
        to_source(m, GeometryTransform((4, 6), (16, 24), "stretch", 4.0, 4.0)), m
    )


def test_stack_and_crop_fill() -> None:
    gt = GeometryTransform((10, 20), (10, 10), "crop", 1.0, 1.0, crop_left=5.0)
    out = to_source(np.ones((2, 10, 10), np.float32), gt, fill=-1.0)
    assert out.shape == (2, 10, 20)
    assert (
        (out[:, :, :5] == -1).all()
        and (out[:, :, 5:15] == 1).all()
        and (out[:, :, 15:] == -1).all()
    )
