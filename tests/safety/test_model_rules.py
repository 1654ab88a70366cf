"""Issue 11, item 8: every loaded model file hashed, paths inside the model folder, bundled ids
not silently replaced, thresholds inside (0, 1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from app.cli import main
from app.core.paths import bundled_models_dir, sample_path
from app.inference.manifest import sha256_file
from app.inference.registry import ModelRegistry

BUNDLED = "pneumonia_cnn"


def _site_model(home: Path, model_id: str, **changes) -> Path:
    folder = home / "models" / model_id
    folder.mkdir(parents=True)
    src = bundled_models_dir() / BUNDLED
    for name in ("model.onnx", "MODEL_CARD.md", "ood.npz"):  # ood.npz: the hashed OOD statistics
        shutil.copy(src / name, folder / name)
    raw = json.loads((src / "model.json").read_text())
    raw["id"] = model_id
    raw.update(changes)
    (folder / "model.json").write_text(json.dumps(raw))
    return folder


def _set(folder: Path, **changes) -> None:
    raw = json.loads((folder / "model.json").read_text())
    raw.update(changes)
    (folder / "model.json").write_text(json.dumps(raw))


def _external(folder: Path, location: str = "weights.bin") -> None:
    proto = onnx.load(str(folder / "model.onnx"))
    onnx.save_model(
        proto,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=0,
    )
    _set(folder, sha256=sha256_file(folder / "model.onnx"))


def _model(model_id: str):
    return next(m for m in ModelRegistry().models() if m.id == model_id and m.source != "bundled")


def test_external_data_must_be_hashed(hilum_home, tmp_path, capsys):
    folder = _site_model(hilum_home, "ext_cnn")
    _external(folder)
    m = _model("ext_cnn")
    assert not m.verified and any("weights.bin" in p and "sha256" in p for p in m.problems)
    assert main(["models", "verify", "ext_cnn"]) == 1
    # analyze never crashes on it: skipped with the reason, or refused by name in one line
    out = tmp_path / "out"
    assert main(["analyze", str(sample_path()), "--out", str(out), "--quiet"]) == 0
    assert "ext_cnn was not run" in capsys.readouterr().err
    assert (
        main(["analyze", str(sample_path()), "--out", str(out), "--model", "ext_cnn", "--quiet"])
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "weights.bin" in err[0]
    # hashed: verified; tampered weights: refused
    _set(folder, external_data={"weights.bin": sha256_file(folder / "weights.bin")})
    assert _model("ext_cnn").verified
    with open(folder / "weights.bin", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02\x03")
    assert any("does not match" in p for p in _model("ext_cnn").problems)


def test_external_data_outside_folder_refused(hilum_home):
    folder = _site_model(hilum_home, "evil_cnn")
    (hilum_home / "models" / "shared").mkdir()
    _external(folder, "w.bin")
    shutil.move(folder / "w.bin", hilum_home / "models" / "shared" / "w.bin")
    (folder / "w.bin").symlink_to(hilum_home / "models" / "shared" / "w.bin")
    _set(folder, external_data={"w.bin": sha256_file(hilum_home / "models" / "shared" / "w.bin")})
    assert any("outside the model folder" in p for p in _model("evil_cnn").problems)
    _set(folder, external_data={"../shared/w.bin": "0" * 64})
    assert not _model("evil_cnn").verified


def test_card_and_file_stay_inside(hilum_home, capsys):
    folder = _site_model(hilum_home, "card_cnn", card="../../../../etc/passwd")
    assert not _model("card_cnn").verified
    _set(folder, card="CARD.md")
    (folder / "CARD.md").symlink_to("/etc/passwd")
    m = _model("card_cnn")
    assert any("card 'CARD.md' lies outside" in p for p in m.problems)
    _set(folder, card="MODEL_CARD.md", file="../model.onnx")
    assert not _model("card_cnn").verified


@pytest.mark.parametrize("threshold", [0, 1, 0.0, 1.0, -0.1, 1.5])
def test_threshold_outside_open_interval_refused(hilum_home, threshold):
    _site_model(hilum_home, "thr_cnn", labels=[{"name": "pneumonia", "threshold": threshold}])
    m = _model("thr_cnn")
    assert not m.verified and any("threshold" in p for p in m.problems)


def test_site_model_with_bundled_id(hilum_home, tmp_path, capsys):
    folder = _site_model(hilum_home, BUNDLED, version="9.9.9-site")
    reg = ModelRegistry()
    assert reg.get(BUNDLED).source == "bundled"  # the bundled one still runs
    refused = [m for m in reg.models() if m.source == "site"]
    assert refused and "replaces" in refused[0].problems[0]
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "FAILED: a bundled model is already called 'pneumonia_cnn'" in listing
    # declared on purpose: it runs, and says so in the list and in every result
    _set(folder, replaces=BUNDLED)
    reg = ModelRegistry()
    m = reg.get(BUNDLED)
    assert m.source == "site override" and m.version == "9.9.9-site" and m.verified
    assert main(["models", "list"]) == 0
    assert "site override" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["analyze", str(sample_path()), "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["models"][0]["source"] == "site override"
    rec = doc["images"][0]["results"][0]
    assert rec["provenance"]["source"] == "site override"
