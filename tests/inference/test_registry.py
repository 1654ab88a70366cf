"""Registry and verification: schema, hash, ONNX I/O; a bad model is never run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.core.errors import ModelNotFoundError, ModelVerificationError
from app.inference.engine import Engine
from app.inference.registry import ModelRegistry, applicability_problems

from _inference_models import BUNDLED_ID, build_multilabel_224, install, manifest_for


def test_bundled_model_verifies() -> None:
    reg = ModelRegistry()
    m = reg.get(BUNDLED_ID)
    assert m.verified, m.problems
    assert m.source == "bundled"
    assert [lab.name for lab in m.labels] == ["pneumonia"]
    assert m.onnx_path.stat().st_size < 1_000_000
    assert main(["models", "verify"]) == 0


def test_models_list_and_card(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert BUNDLED_ID in out and "verified" in out
    assert main(["models", "card", BUNDLED_ID]) == 0
    card = capsys.readouterr().out
    assert "not for clinical use" in card and "CC BY 4.0" in card and "28x28" in card


def test_tampered_hash_is_caught_and_never_run(
    bundled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx_file = bundled_copy / "model.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-10] ^= 0xFF  # flip one byte inside the weights
    onnx_file.write_bytes(bytes(data))
    reg = ModelRegistry()
    m = reg.get(BUNDLED_ID)
    assert m.source == "site override"  # the site copy replaces the bundled model
    assert not m.verified
    assert any("sha256" in p for p in m.problems)
    with pytest.raises(ModelVerificationError, match="will not be run"):
        Engine(m, device="cpu")
    assert main(["models", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"FAILED  {BUNDLED_ID}" in out and "sha256" in out
    # the CLI refuses to analyse with it, and says why
    rc = main(
        ["analyze", str(Path(__file__)), "--out", str(bundled_copy / "out"), "--model", BUNDLED_ID]
    )
    assert rc == 1
    assert "sha256" in capsys.readouterr().err


def test_schema_and_io_problems_are_named(site_models: Path) -> None:
    model = build_multilabel_224()
    data = model.SerializeToString()
    bad_schema = manifest_for("bad_schema", data)
    del bad_schema["labels"]
    bad_schema["task"] = "segmentation"
    install(site_models, "bad_schema", data, bad_schema)
    install(
        site_models,
        "bad_io",
        data,
        manifest_for(
            "bad_io",
            data,
            input={
                "name": "image",
                "layout": "NCHW",
                "height": 256,
                "width": 256,
                "channels": 3,
                "dtype": "float32",
            },
        ),
    )
    install(
        site_models, "bad_outputs", data, manifest_for("bad_outputs", data)
    )  # 4 outputs, 1 label
    wrong_folder = manifest_for("other_name", data)
    install(site_models, "misnamed", data, wrong_folder)
    (site_models / "broken_json").mkdir()
    (site_models / "broken_json" / "model.json").write_text("{not json")
    reg = ModelRegistry()
    probs = {m.id: " ".join(m.problems) for m in reg.models() if not m.verified}
    assert "labels" in probs["bad_schema"] and "segmentation" in probs["bad_schema"]
    assert "no input 'image'" in probs["bad_io"]
    assert "does not match 1 label" in probs["bad_outputs"]
    assert "folder name" in probs["other_name"]
    assert "not valid JSON" in probs["broken_json"]
    assert reg.get(BUNDLED_ID).verified  # one bad model does not spoil the others
    assert {m.id for m in reg.select(None)} == {BUNDLED_ID}


def test_unknown_model() -> None:
    with pytest.raises(ModelNotFoundError, match="nope"):
        ModelRegistry().get("nope")


def test_applicability() -> None:
    m = ModelRegistry().get(BUNDLED_ID)
    assert (
        applicability_problems(
            m, {"Modality": "CR", "BodyPartExamined": "CHEST", "ViewPosition": "PA"}
        )
        == []
    )
    assert applicability_problems(m, {"Modality": "DX"}) == []  # missing values never exclude
    assert "modality CT" in applicability_problems(m, {"Modality": "CT"})[0]
    assert applicability_problems(m, {"Modality": "CR", "ViewPosition": "LL"})
    assert [x.id for x in ModelRegistry().applicable({"Modality": "CR"})] == [BUNDLED_ID]
    assert ModelRegistry().applicable({"Modality": "MR"}) == []


def test_schema_is_published_and_valid() -> None:
    import jsonschema

    from app.core import paths

    schema = json.loads((paths.bundled_models_dir() / "model.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    manifest = json.loads((paths.bundled_models_dir() / BUNDLED_ID / "model.json").read_text())
    jsonschema.validate(manifest, schema)
