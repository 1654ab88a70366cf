"""Fixtures for the DICOM tests: real data from ../shared/data/dicom and pydicom's test files."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest


@pytest.fixture(scope="session")
def dicom_dir(shared_data: Path) -> Path:
    """``../shared/data/dicom`` (fails, never skips, when missing)."""
    path = shared_data / "dicom"
    for sub in (
        "cxr",
        "ct_head_ge",
        "ct_phantom_philips",
        "mr_sag_mprage",
        "mr_transfer_syntaxes",
        "broken",
    ):
        if not (path / sub).is_dir():
            pytest.fail(f"shared DICOM data incomplete: {path / sub} is missing")
    return path


@pytest.fixture(scope="session")
def pydicom_files() -> Path:
    """pydicom's bundled test files (shipped inside the wheel; no download)."""
    path = Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files"
    if not path.is_dir():
        pytest.fail(f"pydicom test files not found at {path}")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pydicom warns about odd-but-readable values in real files; that is not a test failure."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.filterwarnings("ignore::UserWarning"))
