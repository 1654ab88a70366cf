"""Overlay rendering (colormaps, opacity, threshold, contours, legend) and the analyze files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from _saliency_models import pooled_input_model
from app.core.types import GeometryTransform
from app.saliency.api import Explainer, SaliencyError, safe_name, write_saliency
from app.saliency.overlay import colormap_lut, legend_image, overlay_rgba, render_overlay


def _ramp(h: int = 40, w: int = 60) -> np.ndarray:
    return np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))


@pytest.mark.parametrize("name", ["inferno", "jet", "viridis"])
def test_luts(name: str) -> None:
    lut = colormap_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert len({tuple(c) for c in lut}) > 200  # a real ramp, not a constant
    with pytest.raises(ValueError):
        colormap_lut("rainbow-ish")


def test_inferno_runs_dark_to_bright() -> None:
    lut = colormap_lut("inferno").astype(int)
    assert lut[0].sum() < 30 and lut[255].sum() > 600  # black-ish to pale yellow
    assert tuple(colormap_lut("jet")[255]) != tuple(colormap_lut("jet")[0])


def test_opacity_and_threshold() -> None:
    display = np.full((40, 60), 100, np.uint8)
    m = _ramp()
    np.testing.assert_array_equal(render_overlay(display, m, opacity=0.0), np.dstack([display] * 3))
    full = render_overlay(display, m, "viridis", opacity=1.0)
    lut = colormap_lut("viridis")
    np.testing.assert_array_equal(full[:, -1], np.broadcast_to(lut[255], (40, 3)))
    half = render_overlay(display, m, "viridis", opacity=1.0, threshold=0.5)
    np.testing.assert_array_equal(
        half[:, :20], np.dstack([display] * 3)[:, :20]
    )  # hidden below 0.5
    np.testing.assert_array_equal(half[:, -5:], full[:, -5:])
    rgba = overlay_rgba(m, opacity=0.4, threshold=0.5)
    assert set(np.unique(rgba[..., 3])) == {0, 102}
    m[:10] = np.nan  # never seen by the model: transparent even without a threshold
    rgba = overlay_rgba(m, opacity=0.4)
    assert not rgba[:10, :, 3].any() and (rgba[10:, :, 3] == 102).all()


def test_contour_mode_draws_lines_only() -> None:
    yy, xx = np.mgrid[0:80, 0:80]
    blob = np.exp(-((yy - 40) ** 2 + (xx - 40) ** 2) / (2 * 12.0**2)).astype(np.float32)
    rgba = overlay_rgba(blob, contour=True, opacity=1.0)
    drawn = rgba[..., 3] > 0
    assert 0 < drawn.mean() < 0.2  # thin lines, not a filled map
    assert not drawn[40, 40] and not drawn[0, 0]  # centre and corner are not on a line
    # The 0.5 level sits at radius 12 * sqrt(2 ln 2) ~ 14.1 px from the centre.
    assert drawn[40, 40 + 13 : 40 + 16].any()


def test_legend() -> None:
    img = legend_image("jet", height=200, width=60, title="rise")
    assert img.shape == (200, 60, 3) and img.dtype == np.uint8
    lut = colormap_lut("jet")
    assert np.abs(img[23, 6].astype(int) - lut[255].astype(int)).max() <= 12  # hot end at the top
    assert np.abs(img[186, 6].astype(int) - lut[0].astype(int)).max() <= 12


def test_write_saliency_files(tmp_path) -> None:
    rows, cols = 90, 150
    film = np.full((rows, cols), 30, np.uint8)
    film[30:60, 90:120] = 230
    tensor = (
        cv2.resize(film, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)[None, None]
        / 255
    )
    gt = GeometryTransform((rows, cols), (64, 64), "stretch", 64 / rows, 64 / cols)
    maps = Explainer(pooled_input_model(64, 8), ["Pleural Effusion"], device="cpu").explain(
        tensor, gt
    )
    uid = "1.2.826.0.1.3680043.8.498.1"
    files = write_saliency(
        tmp_path / "saliency", uid, film, maps, colormap="jet", opacity=0.6, threshold=0.5
    )
    names = sorted(p.name for p in files)
    assert names == [f"{uid}_Pleural_Effusion.npy", f"{uid}_Pleural_Effusion.png"]
    raw = np.load(tmp_path / "saliency" / f"{uid}_Pleural_Effusion.npy")
    assert raw.shape == (rows, cols) and raw.dtype == np.float32
    png = cv2.imread(str(tmp_path / "saliency" / f"{uid}_Pleural_Effusion.png"))
    assert png.shape == (rows, cols, 3)
    # Where the map is hot the overlay is coloured; far away it is still the grey film.
    assert np.ptp(png[45, 105].astype(int)) > 40 and np.ptp(png[5, 5].astype(int)) < 40
    assert safe_name("a/b c") == "a_b_c"
    (tmp_path / "blocked").write_text("not a folder")
    with pytest.raises(SaliencyError):
        write_saliency(tmp_path / "blocked", uid, film, maps)
