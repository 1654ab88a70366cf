"""Issue 13: a demonstration model says "Demonstration model, not for clinical use" wherever its
result appears (results.json, the CLI, the PDF, the SR); a site model that is not one does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest

from app.cli import main
from app.core.paths import bundled_models_dir, sample_path
from app.core.types import AnalysisRun, ModelResult
from app.inference.manifest import DEMONSTRATION_WORDS, is_demonstration, load_manifest

from test_export import dciodvfy_errors, pdf_text, sr_texts

BUNDLED = "pneumonia_cnn"


def _site_model(home: Path, model_id: str, **changes: object) -> Path:
    """The bundled classifier installed as a site model of another id (so no "replaces" rule)."""
    folder = home / "models" / model_id
    folder.mkdir(parents=True)
    src = bundled_models_dir() / BUNDLED
    for name in ("model.onnx", "MODEL_CARD.md", "ood.npz"):
        shutil.copy(src / name, folder / name)
    raw = json.loads((src / "model.json").read_text())
    raw["id"] = model_id
    raw.update(changes)
    (folder / "model.json").write_text(json.dumps(raw))
    return folder


def _analyze(out: Path, *extra: str) -> int:
    return main(["analyze", str(sample_path()), "--out", str(out), "--pdf", *extra])


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_bundled_manifest_states_it() -> None:
    m = load_manifest(bundled_models_dir() / BUNDLED)
    assert m.raw["demonstration"] is True and m.demonstration


def test_detection_from_the_manifest() -> None:
    clinical = {"name": "Chest CNN", "intended_use": "Triage of adult frontal chest films."}
    assert not is_demonstration(clinical)
    assert is_demonstration({**clinical, "intended_use": "Research only; not for clinical use."})
    assert is_demonstration({**clinical, "name": "Chest CNN (demonstration)"})
    # an explicit statement wins over the words
    assert is_demonstration({**clinical, "demonstration": True})
    assert not is_demonstration({**clinical, "name": "demonstration", "demonstration": False})


def test_analyze_pdf_results_and_sr_say_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert _analyze(out, "--model", BUNDLED, "--dicom-export") == 0
    printed = capsys.readouterr().out
    assert f"  ! {DEMONSTRATION_WORDS}" in printed

    doc = json.loads((out / "results.json").read_text())
    results = [r for image in doc["images"] for r in image["results"]]
    assert results and all(r["demonstration"] is True for r in results)
    assert doc["models"][0]["demonstration"] is True
    run = AnalysisRun.from_json(doc)
    assert all(r.demonstration for image in run.images for r in image.results)

    text = _flat(pdf_text(out / "report.pdf"))
    assert f"{BUNDLED}: {DEMONSTRATION_WORDS}." in text

    sr_path = next((out / "dicom").glob("SR_*.dcm"))
    comments = [v for k, v in sr_texts(pydicom.dcmread(sr_path)) if k == "Comment"]
    assert any(c.startswith(f"{DEMONSTRATION_WORDS}. patient age 64 years") for c in comments)
    assert not dciodvfy_errors(sr_path)


def test_site_model_that_is_not_a_demonstration(
    hilum_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _site_model(
        hilum_home,
        "site_cnn",
        name="Pneumonia, chest film (site CNN)",
        intended_use="Flags frontal chest films with a pattern resembling pneumonia.",
        demonstration=False,
    )
    out = tmp_path / "out"
    assert _analyze(out, "--model", "site_cnn") == 0
    assert DEMONSTRATION_WORDS not in capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    results = [r for image in doc["images"] for r in image["results"]]
    assert results and all(r["model_id"] == "site_cnn" for r in results)
    assert all(r["demonstration"] is False for r in results)
    text = _flat(pdf_text(out / "report.pdf"))
    assert "site_cnn" in text and f"site_cnn: {DEMONSTRATION_WORDS}" not in text
    # the words appear once: for the bundled report drafter (itself a demonstration model)
    assert text.count(DEMONSTRATION_WORDS) == 1
    assert f"bundled ({DEMONSTRATION_WORDS})" in text


def test_model_result_round_trips_the_flag() -> None:
    r = ModelResult("m", "1", "ab" * 32, "CPUExecutionProvider", [], demonstration=True)
    back = ModelResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.demonstration and "demonstration" not in back.extra
    # a result written before the flag existed reads back as not a demonstration
    old = {k: v for k, v in r.to_dict().items() if k != "demonstration"}
    assert ModelResult.from_dict(old).demonstration is False


def test_demo_prints_it_and_the_pdf_names_the_demonstration_drafter(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--headless", "--out", str(out)]) == 0
    assert f"  ! {BUNDLED}: {DEMONSTRATION_WORDS}" in capsys.readouterr().out
    assert json.loads((out / "draft.provenance.json").read_text())["demonstration"] is True
    text = _flat(pdf_text(out / "report.pdf"))
    assert f"{BUNDLED}: {DEMONSTRATION_WORDS}." in text
    assert f"Report text drafted by report_generator 1.0.0 bundled ({DEMONSTRATION_WORDS})" in text
