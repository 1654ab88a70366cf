"""Test-wide setup: offscreen Qt, a temporary HILUM_HOME, and the shared data location."""

from __future__ import annotations

import os
from pathlib import Path

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
