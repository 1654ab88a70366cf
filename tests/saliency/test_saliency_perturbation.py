"""Occlusion and RISE on a model whose evidence is known by construction."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from _saliency_models import region_mean_model
from app.core.errors import Cancelled
from app.core.progress import CallbackProgress
from app.core.types import GeometryTransform
from app.saliency.api import Explainer
from app.saliency.perturbation import (
    MASK_INPUT,
    add_mask_input,
    masked_from_predict,
    occlusion,
    rise,
    rise_masks,
)

SIZE = 32
REGIONS = [(4, 6, 8, 8), (18, 16, 10, 12)]  # (top, left, h, w) of each label's evidence


def _region_mask(k: int) -> np.ndarray:
    t, l, h, w = REGIONS[k]
    m = np.zeros((SIZE, SIZE), bool)
    m[t : t + h, l : l + w] = True
    return m


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    return Explainer(region_mean_model(SIZE, REGIONS), ["a", "b"], device="cpu")


def _x() -> np.ndarray:
    return np.ones((1, 1, SIZE, SIZE), dtype=np.float32)


def _check_lights_region(raw: np.ndarray, k: int, margin: float) -> None:
    inside, outside = raw[_region_mask(k)], raw[~_region_mask(k)]
    assert inside.mean() > outside.mean() + margin, (inside.mean(), outside.mean())
    peak = np.unravel_index(np.argmax(raw), raw.shape)
    assert _region_mask(k)[peak]


def test_device_masking_matches_numpy_blending(explainer: Explainer) -> None:
    x = np.random.default_rng(0).random((1, 1, SIZE, SIZE)).astype(np.float32)
    masks = rise_masks(5, (SIZE, SIZE), seed=1)
    sess = ort.InferenceSession(
        add_mask_input(region_mean_model(SIZE, REGIONS), baseline=0.3),
        providers=["CPUExecutionProvider"],
    )
    (dev,) = sess.run(["score"], {"x": x, MASK_INPUT: masks})
    plain = ort.InferenceSession(
        region_mean_model(SIZE, REGIONS).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    host = masked_from_predict(lambda b: plain.run(["score"], {"x": b})[0], x, baseline=0.3)(masks)
    np.testing.assert_allclose(dev, host, rtol=1e-5, atol=1e-6)
    assert explainer.masked_score(x) is not None and explainer._masked_runner is not None


def test_occlusion_finds_the_evidence(explainer: Explainer) -> None:
    maps = explainer.explain(_x(), None, method="occlusion", window=4, stride=2)
    for k, name in enumerate(["a", "b"]):
        raw = maps[name].model_raw
        _check_lights_region(raw, k, margin=0.05)
        # A window fully inside the region drops the score by exactly its share of the region.
        t, l, h, w = REGIONS[k]
        assert raw[t + h // 2, l + w // 2] == pytest.approx(16 / (h * w), rel=1e-4)
        assert np.abs(raw[~_region_mask(k)]).max() < 16 / (h * w)


def test_rise_finds_the_evidence_and_is_seeded(explainer: Explainer) -> None:
    a = explainer.explain(_x(), None, method="rise", n_masks=600, grid=8, seed=7, batch_size=50)
    for k, name in enumerate(["a", "b"]):
        _check_lights_region(a[name].model_raw, k, margin=0.02)
        norm = a[name].map
        assert norm.min() >= 0 and norm.max() == pytest.approx(1.0)
        assert norm[_region_mask(k)].mean() > 3 * norm[~_region_mask(k)].mean()
    b = explainer.explain(_x(), None, method="rise", n_masks=600, grid=8, seed=7, batch_size=64)
    np.testing.assert_allclose(a["a"].model_raw, b["a"].model_raw, atol=1e-5)


def test_budget_progress_and_cancel() -> None:
    calls: list[int] = []
    plain = ort.InferenceSession(
        region_mean_model(SIZE, REGIONS).SerializeToString(), providers=["CPUExecutionProvider"]
    )

    def predict(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return plain.run(["score"], {"x": batch})[0]

    score = masked_from_predict(predict, _x())
    updates: list[tuple[int, int | None]] = []
    rise(
        score,
        (SIZE, SIZE),
        [0],
        n_masks=1000,
        max_passes=90,
        batch_size=32,
        progress=CallbackProgress(lambda d, t, m: updates.append((d, t))),
    )
    assert sum(calls) == 90 and max(calls) <= 32
    assert updates[-1] == (90, 90)
    calls.clear()
    occlusion(score, (SIZE, SIZE), [0], window=4, stride=1, max_passes=50)
    assert sum(calls) <= 50
    calls.clear()
    prog = CallbackProgress(lambda d, t, m: prog.cancel() if d >= 64 else None)
    with pytest.raises(Cancelled):
        rise(score, (SIZE, SIZE), [0], n_masks=1000, batch_size=32, progress=prog)
    assert sum(calls) == 64


def test_maps_follow_the_geometry(explainer: Explainer) -> None:
    gt = GeometryTransform((64, 96), (SIZE, SIZE), "stretch", SIZE / 64, SIZE / 96)
    maps = explainer.explain(_x(), gt, labels=["b"], method="occlusion", window=4, stride=2)
    assert (
        list(maps) == ["b"] and maps["b"].map.shape == (64, 96) and maps["b"].raw.shape == (64, 96)
    )
    t, l, h, w = REGIONS[1]
    peak = np.unravel_index(np.argmax(maps["b"].map), (64, 96))
    assert t * 2 <= peak[0] < (t + h) * 2 and l * 3 <= peak[1] < (l + w) * 3


def test_device_rise_equals_host_rise(explainer: Explainer) -> None:
    x = np.random.default_rng(2).random((1, 1, SIZE, SIZE)).astype(np.float32)
    acc = explainer.rise_accumulator(x)
    assert acc is not None
    dev = rise(None, (SIZE, SIZE), [0, 1], n_masks=100, batch_size=30, seed=3, accumulator=acc)
    plain = ort.InferenceSession(
        region_mean_model(SIZE, REGIONS).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    host = rise(
        masked_from_predict(lambda b: plain.run(["score"], {"x": b})[0], x),
        (SIZE, SIZE),
        [0, 1],
        n_masks=100,
        batch_size=30,
        seed=3,
    )
    np.testing.assert_allclose(dev, host, rtol=1e-4, atol=1e-6)


def test_rise_masks_are_smooth_and_prefix_stable() -> None:
    m = rise_masks(50, (40, 30), grid=5, p=0.3, seed=4)
    assert m.shape == (50, 1, 40, 30) and m.min() >= 0 and m.max() <= 1
    assert 0.2 < m.mean() < 0.4  # keep probability p
    np.testing.assert_array_equal(rise_masks(10, (40, 30), grid=5, p=0.3, seed=4), m[:10])
    assert not np.array_equal(rise_masks(10, (40, 30), grid=5, p=0.3, seed=5), m[:10])
