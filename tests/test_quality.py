"""House rules checked mechanically: the import-linter contract and mypy on the headless packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_only_gui_imports_qt_import_linter() -> None:
    proc = subprocess.run(
        [str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.slow
def test_mypy_is_clean_on_the_headless_packages() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "app"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
