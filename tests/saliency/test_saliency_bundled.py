"""The bundled pneumonia_cnn: one-pass CAM against its torch Grad-CAM fixture, and analyze files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.core import paths
from app.inference.manifest import load_manifest, verify_manifest
from app.saliency.api import Explainer, analyze_hook, engine_factory
from app.saliency.cam import normalise_map

MODEL_DIR = paths.ROOT / "models" / "pneumonia_cnn"


@pytest.fixture(scope="module")
def manifest():
    m = verify_manifest(load_manifest(MODEL_DIR))
    assert m.verified, m.problems
    return m


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def test_bundled_cam_equals_torch_gradcam_fixture(manifest, gradcam_fixture) -> None:
    fx = gradcam_fixture
    ex = Explainer.from_manifest(manifest, device="cpu")
    assert ex.supports_cam and ex.cam is not None
    assert (
        ex.cam.feature_name
        == str(fx["feature_tensor"])
        == manifest.saliency.get("target_tensor", ex.cam.feature_name)
    )
    assert ex.engine.rewritten  # the engine runs the rewritten graph: one pass for both
    for i in range(len(fx["inputs"])):
        out, cams = ex.forward(fx["inputs"][i : i + 1])
        assert cams is not None
        np.testing.assert_allclose(out["logits"], fx["logits"][i : i + 1], atol=1e-4)
        np.testing.assert_allclose(cams[0, 0] + ex.cam.bias[0], fx["cam"][i], atol=1e-4)
        ref = fx["gradcam"][i]
        ours = normalise_map(cams[0, 0])
        if ref.max() <= 0:
            assert ours.max() == 0
            continue
        r = _pearson(ours, ref / ref.max())
        assert r >= 0.99, f"fixture image {i}: Pearson r {r:.4f}"


@pytest.mark.parametrize("method", ["cam", "rise"])
def test_analyze_writes_source_resolution_files(
    method: str, manifest, shared_data: Path, tmp_path: Path
) -> None:
    import pydicom

    from app.inference.analyze import analyze_paths

    film = shared_data / "dicom" / "cxr" / "cr_chest_pa_uncompressed.dcm"
    ds = pydicom.dcmread(film, stop_before_pixels=True)
    params = {"n_masks": 200, "batch_size": 50} if method == "rise" else {}
    doc = analyze_paths(
        [film],
        tmp_path,
        model_ids=["pneumonia_cnn"],
        device="cpu",
        hooks=[analyze_hook(method, **params)],
        engine_factory=engine_factory,
    )
    rec = doc["images"][0]["results"][0]
    sal = rec["saliency"]
    assert sal["method"] == method and "error" not in sal, sal
    if method == "cam":
        assert sal["same_forward_pass"] is True
    files = sal["files"]["pneumonia"]
    raw = np.load(tmp_path / files["npy"])
    assert raw.shape == (ds.Rows, ds.Columns) and raw.dtype == np.float32
    import cv2

    png = cv2.imread(str(tmp_path / files["png"]))
    assert png.shape == (ds.Rows, ds.Columns, 3)
    assert (tmp_path / files["png"]).name == f"{ds.SOPInstanceUID}_pneumonia.png"
    # The model centre-crops the 1955 x 1841 film to a square: rows outside the crop were never seen.
    top = (ds.Rows - ds.Columns) // 2
    assert not raw[: top - 2].any() and raw[top + 2 : top + ds.Columns - 2].any()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["images"][0]["results"][0]["saliency"]["method"] == method


def test_compute_saliency_accepts_an_engine(manifest) -> None:
    from app.inference.engine import Engine
    from app.saliency.api import compute_saliency

    engine = Engine(manifest, device="cpu")
    film = np.zeros((300, 200), np.uint8)
    film[100:200, 50:150] = 200
    tensor, gt = engine.preprocess(film)
    maps = compute_saliency(engine, tensor, gt, method="occlusion", window=4, stride=2)
    sm = maps["pneumonia"]
    assert (
        sm.method == "occlusion" and sm.map.shape == (300, 200) and sm.model_raw.shape == (28, 28)
    )
    assert 0.0 <= np.nanmin(sm.map) and np.nanmax(sm.map) <= 1.0
    # The model centre-crops 300 x 200 to 200 x 200: the top and bottom 50 rows were never seen.
    assert (
        np.isnan(sm.map[:49]).all()
        and np.isnan(sm.map[251:]).all()
        and not np.isnan(sm.map[52:248]).any()
    )
    assert not sm.raw[:49].any() and np.isfinite(sm.raw).all()
