"""Intended use and the OOD score of the bundled pneumonia model: the card's figures reproduced."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.core import paths
from app.inference.intended_use import patient_age_years, population_problems, reliability
from app.inference.manifest import load_manifest, verify_manifest

MODEL = paths.bundled_models_dir() / "pneumonia_cnn"


@pytest.fixture(scope="module")
def manifest():
    m = verify_manifest(load_manifest(MODEL))
    m.require_verified()
    return m


def _card_rows() -> dict[str, tuple[int, int]]:
    """'| label | n | flagged (x %) |' rows of the card's OOD table."""
    text = (MODEL / "MODEL_CARD.md").read_text()
    rows = {}
    for label, n, k in re.findall(
        r"^\| ([^|]+?) \| (\d+) \| (\d+) \(\d+(?:\.\d)? %\) \|$", text, re.M
    ):
        rows[label] = (int(n), int(k))
    return rows


def test_ood_declared_and_hashed(manifest, tmp_path: Path) -> None:
    ood = manifest.raw["ood"]
    assert ood["method"] == "mahalanobis" and (MODEL / ood["file"]).is_file()
    # a changed statistics file fails verification, as a changed ONNX file does
    copy = tmp_path / "pneumonia_cnn"
    shutil.copytree(MODEL, copy)
    with np.load(copy / "ood.npz") as z:
        np.savez(copy / "ood.npz", means=z["means"] + 1.0, precision=z["precision"])
    bad = verify_manifest(load_manifest(copy))
    assert any("ood.npz" in p and "sha256" in p for p in bad.problems), bad.problems


def test_card_figures_reproduced(manifest, shared_data: Path) -> None:
    from app.inference.ood_measure import dicom_flag_rates, npz_flag_rate

    npz = shared_data / "train" / "pneumoniamnist.npz"
    test = npz_flag_rate(manifest, npz, "test")
    val = npz_flag_rate(manifest, npz, "val")
    foreign = dicom_flag_rates(manifest, shared_data / "dicom")
    measured = manifest.raw["ood"]["measured"]
    assert test == measured["test"] and val == measured["val"]
    for name, rec in foreign.items():
        assert rec == measured[name], name
    rows = _card_rows()
    assert rows["PneumoniaMNIST test split (in distribution)"] == (test["n"], test["flagged"])
    assert rows["PneumoniaMNIST validation split (threshold set here)"] == (
        val["n"],
        val["flagged"],
    )
    assert rows["CT slices (`ct_head_ge`, `ct_phantom_philips`), forced through"] == (
        foreign["CT"]["n"],
        foreign["CT"]["flagged"],
    )
    assert rows["MR slices (`mr_sag_mprage`, `mr_transfer_syntaxes`), forced through"] == (
        foreign["MR"]["n"],
        foreign["MR"]["flagged"],
    )
    assert rows["adult chest films (`cxr/`)"] == (
        foreign["adult chest films"]["n"],
        foreign["adult chest films"]["flagged"],
    )
    # the threshold is the validation split's 99th percentile: about 1 % of it is flagged
    assert 0.005 <= val["fraction"] <= 0.015
    # every forced-through foreign image is outside intended use
    assert all(rec["outside_intended_use"] == rec["n"] > 0 for rec in foreign.values())


def test_age_rules(manifest) -> None:
    assert patient_age_years({"PatientAge": "004Y"}) == 4
    assert patient_age_years({"PatientAge": "018M"}) == pytest.approx(1.5)
    assert patient_age_years(
        {"PatientBirthDate": "19400305", "StudyDate": "20040826"}
    ) == pytest.approx(64.5, abs=0.1)
    assert patient_age_years({"PatientBirthDate": "d14a028c2a3a", "StudyDate": ""}) is None
    assert population_problems(manifest, {"PatientAge": "003Y"}) == []
    assert population_problems(manifest, {"PatientAge": "064Y"}) == [
        "patient age 64 years is outside 1-5 years"
    ]
    assert "not recorded" in population_problems(manifest, {})[0]
    assert reliability([]) == "within intended use"


def test_analyze_flags_every_adult_film(shared_data: Path, tmp_path: Path) -> None:
    from app.inference.analyze import analyze_paths

    doc = analyze_paths(
        [shared_data / "dicom" / "cxr"], tmp_path, model_ids=["pneumonia_cnn"], device="cpu"
    )
    written = json.loads((tmp_path / "results.json").read_text())
    results = [r for im in written["images"] for r in im["results"]]
    assert len(results) == 3 and doc["summary"]["outside_intended_use"] == 3
    for r in results:
        assert r["reliability"].startswith("outside intended use: patient age")
        assert r["ood"]["flagged"] and r["ood"]["score"] > r["ood"]["threshold"]
