"""The committed ONNX, evaluated on the PneumoniaMNIST test split through ``hilum models validate``,
reproduces the model card's numbers (+-0.01) and meets the AUC target."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.core import paths
from app.inference.metrics import expected_calibration_error, roc_auc, sens_spec

from _inference_models import BUNDLED_ID


@pytest.fixture(scope="module")
def npz() -> Path:
    path = paths.shared_data_dir() / "train" / "pneumoniamnist.npz"
    if not path.is_file():
        pytest.fail(f"PneumoniaMNIST not found at {path}: set HILUM_SHARED_DATA")
    return path


def _card_row(split: str) -> list[float]:
    card = (paths.bundled_models_dir() / BUNDLED_ID / "MODEL_CARD.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith(f"| {split} |"))
    return [float(v) for v in row.strip("|").split("|")[2:]]


def test_validate_matches_model_card(npz: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "validate", BUNDLED_ID, "--npz", str(npz), "--split", "test"]) == 0
    out = capsys.readouterr().out
    auc = float(re.search(r"^AUC: (0\.\d{3})$", out, re.M).group(1))
    sens = float(re.search(r"^Sensitivity: (\d\.\d{3})", out, re.M).group(1))
    spec = float(re.search(r"^Specificity: (\d\.\d{3})", out, re.M).group(1))
    ece = float(re.search(r"^ECE: (\d\.\d{3})", out, re.M).group(1))
    card_auc, card_sens, card_spec, card_ece = _card_row("test")
    assert abs(auc - card_auc) <= 0.01 and abs(sens - card_sens) <= 0.01
    assert abs(spec - card_spec) <= 0.01 and abs(ece - card_ece) <= 0.01
    assert auc >= 0.95
    assert "matches the model card" in out
    manifest = json.loads((paths.bundled_models_dir() / BUNDLED_ID / "model.json").read_text())
    assert abs(manifest["metrics"]["labels"]["pneumonia"]["auc"] - auc) <= 0.01


def test_validate_json_and_bad_usage(npz: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["models", "validate", BUNDLED_ID, "--npz", str(npz), "--split", "val", "--json"]) == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] == 524 and rep["labels"]["pneumonia"]["n_positive"] == 389
    card_val = _card_row("validation")
    assert abs(rep["labels"]["pneumonia"]["auc"] - card_val[0]) <= 0.01
    assert main(["models", "validate", BUNDLED_ID, "--npz", str(npz), "--split", "nope"]) == 2
    assert "has no split 'nope'" in capsys.readouterr().err
    assert main(["models", "validate", BUNDLED_ID, "--npz", str(npz)]) == 2


def test_metrics_on_known_values() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert sens_spec(y, np.array([0.1, 0.6, 0.7, 0.2]), 0.5) == (0.5, 0.5)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0, 0]), np.array([0.95, 0.95])) == pytest.approx(
        0.95
    )


def test_validate_dicom_with_labels_csv(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The DICOM route: a folder and a CSV of labels (tiny here, real films)."""
    cxr = shared_data / "dicom" / "cxr"
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "file,pneumonia\ncr_chest_pa_uncompressed.dcm,0\ndx_chest_pa_j2k_lossless.dcm,1\n"
        "cr_chest_pa_jpegls_near_lossless.dcm,0\n"
    )
    assert (
        main(
            ["models", "validate", BUNDLED_ID, "--dicom", str(cxr), "--labels", str(csv), "--json"]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] == 3 and rep["labels"]["pneumonia"]["n_positive"] == 1
    assert 0.0 <= rep["labels"]["pneumonia"]["auc"] <= 1.0
