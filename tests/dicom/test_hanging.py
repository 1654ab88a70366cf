"""Priors and hanging protocols (app.dicom.hanging) on the shared data."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from app.core.errors import UsageError
from app.dicom.hanging import (
    OffsetSync,
    Protocol,
    choose_protocol,
    find_priors,
    load_protocols,
    plan,
    save_protocol,
    study_features,
    user_dir,
)
from app.dicom.library import Library


def _prior_copy(src: Path, out: Path, date: str) -> Path:
    """The same patient's film on an earlier date (a new study, real pixels)."""
    ds = pydicom.dcmread(src)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDate = date
    ds.save_as(out)
    return out


@pytest.fixture
def chest(dicom_dir: Path, tmp_path: Path) -> tuple[Library, str, str]:
    src = dicom_dir / "cxr" / "cr_chest_pa_uncompressed.dcm"
    prior = _prior_copy(src, tmp_path / "prior.dcm", "20030115")
    older = _prior_copy(src, tmp_path / "older.dcm", "20010101")
    lib = Library(tmp_path / "lib.db")
    lib.scan([src, prior, older, dicom_dir / "ct_phantom_philips"])
    current = str(pydicom.dcmread(src, stop_before_pixels=True).StudyInstanceUID)
    prior_uid = str(pydicom.dcmread(prior, stop_before_pixels=True).StudyInstanceUID)
    return lib, current, prior_uid


def test_priors_of_a_chest_film(chest: tuple[Library, str, str]) -> None:
    lib, current, prior = chest
    priors = find_priors(lib, current)
    assert priors[0] == prior and len(priors) == 2  # newest first; the CT is another patient
    assert find_priors(lib, priors[-1]) == []  # nothing is older than the oldest
    f = study_features(lib, current)
    assert f.modalities == ("CR",) and f.body_parts == ("CHEST",) and f.views == ("PA",)


def test_chest_current_and_prior_side_by_side(chest: tuple[Library, str, str]) -> None:
    lib, current, prior = chest
    protocols = load_protocols()
    priors = find_priors(lib, current)
    p = choose_protocol(protocols, study_features(lib, current), len(priors))
    assert p is not None and p.name == "Chest film: current and prior" and p.layout == "1x2"
    hp = plan(p, study_features(lib, current), [study_features(lib, u) for u in priors])
    assert [(pl.viewport, pl.study_uid, pl.role) for pl in hp.placements] == [
        (0, current, "current"),
        (1, prior, "prior"),
    ]
    # without priors the single-study chest protocol applies
    alone = choose_protocol(protocols, study_features(lib, current), 0)
    assert alone is not None and alone.name == "Chest film"


def test_ct_defaults_and_user_override(chest: tuple[Library, str, str]) -> None:
    lib, _current, _ = chest
    ct = next(s["study_uid"] for s in lib.studies() if s["series"][0]["modality"] == "CT")
    f = study_features(lib, ct)
    assert choose_protocol(load_protocols(), f, 0).name == "CT stack"
    # the user saves their own version of "CT stack" as MPR: it replaces the default
    mine = Protocol.from_json(
        {**next(p for p in load_protocols() if p.name == "CT stack").to_json(), "layout": "mpr"}
    )
    path = save_protocol(mine)
    assert path.parent == user_dir() and (path.stat().st_mode & 0o077) == 0
    chosen = choose_protocol(load_protocols(), f, 0)
    assert chosen.name == "CT stack" and chosen.layout == "mpr"
    hp = plan(chosen, f)
    assert hp.layout == "mpr" and len(hp.placements) == 1
    # a broken user file is skipped, not fatal
    (user_dir() / "broken.json").write_text("{not json")
    assert any(p.name == "CT stack" for p in load_protocols())


def test_mr_by_series_description(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.db")
    lib.scan([dicom_dir / "mr_sag_mprage"])
    uid = lib.studies()[0]["study_uid"]
    f = study_features(lib, uid)
    p = choose_protocol(load_protocols(), f, 0)
    assert p.name == "MR 2x2 by sequence" and p.layout == "2x2"
    hp = plan(p, f)
    assert [pl.viewport for pl in hp.placements] == [0]  # the MPRAGE is the T1 slot


def test_protocol_validation() -> None:
    with pytest.raises(UsageError):
        Protocol.from_json({"name": "x", "layout": "3x3"})
    with pytest.raises(UsageError):
        Protocol.from_json({"name": "x", "viewports": [{"series": {"description": "("}}]})
    with pytest.raises(UsageError):
        Protocol.from_json({"layout": "1x1"})


def test_offset_sync() -> None:
    sync = OffsetSync()
    assert sync.map("a", 10.0, "b") == 10.0
    sync.set_landmark("a", 100.0)  # carina at table 100 in the current study
    sync.set_landmark("b", 40.0)  # and at table 40 in the prior
    assert sync.map("a", 130.0, "b") == pytest.approx(70.0)
    assert sync.map("b", 70.0, "a") == pytest.approx(130.0)
    assert json.dumps(sync.landmarks)
