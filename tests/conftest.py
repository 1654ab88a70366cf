"""Test-wide setup: offscreen Qt, a temporary HILUM_HOME, and the shared data location."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def hilum_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user folder, so no test touches the real user's data."""
    home = tmp_path_factory.mktemp("hilum_home")
    monkeypatch.setenv("HILUM_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real data; a test that needs it fails (never skips) when it is missing."""
    from app.core.paths import shared_data_dir

    path = shared_data_dir()
    if not (path / "dicom").is_dir():
        pytest.fail(f"shared data not found at {path}: set HILUM_SHARED_DATA to ../shared/data")
    return path


@pytest.fixture(scope="session")
def gradcam_fixture(shared_data: Path) -> dict[str, Any]:
    """Torch references for the bundled classifier on six PneumoniaMNIST test-split films from
    ``../shared/data`` (the first three pneumonia, then the first three normal): its inputs,
    logits, autograd Grad-CAM ``relu(sum_c mean_hw(dlogit/dA_c) * A_c)`` and CAM
    ``sum_c w_c A_c + b`` of the last ReLU feature map, computed by a torch copy of the shipped
    ONNX graph (its weights, layer by layer): an independent path to what Hilum's one-pass CAM
    and engine must reproduce."""
    import json

    import numpy as np

    from app.core.paths import bundled_models_dir

    from _torch_reference import torch_reference

    folder = bundled_models_dir() / "pneumonia_cnn"
    pre = json.loads((folder / "model.json").read_text())["preprocessing"]
    split = np.load(shared_data / "train" / "pneumoniamnist.npz")
    labels = split["test_labels"].reshape(-1)
    pick = np.concatenate([np.where(labels == 1)[0][:3], np.where(labels == 0)[0][:3]])
    x = split["test_images"][pick].astype(np.float32) / np.float32(pre["scale"])
    inputs = ((x - np.float32(pre["mean"][0])) / np.float32(pre["std"][0]))[:, None]
    fx = torch_reference(folder / "model.onnx", inputs)
    fx.update(test_index=pick, labels=labels[pick].astype(np.float32), inputs=inputs)
    return fx
