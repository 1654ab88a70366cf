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
    """The bundled classifier's torch Grad-CAM fixture, with its inputs rebuilt from the shared
    PneumoniaMNIST test split (the repo keeps only the indices and the torch-derived maps)."""
    import json

    import numpy as np

    from app.core.paths import bundled_models_dir

    folder = bundled_models_dir() / "pneumonia_cnn"
    fx = dict(np.load(folder / "gradcam_fixture.npz"))
    pre = json.loads((folder / "model.json").read_text())["preprocessing"]
    images = np.load(shared_data / "train" / "pneumoniamnist.npz")["test_images"][fx["test_index"]]
    x = images.astype(np.float32) / np.float32(pre["scale"])
    fx["inputs"] = ((x - np.float32(pre["mean"][0])) / np.float32(pre["std"][0]))[:, None]
    return fx
