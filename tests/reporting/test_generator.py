"""Report generator: conditioning, consistency guard, streaming, bundled model, CLI, backend errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.core.errors import BackendUnavailableError, Cancelled, GeneratorError
from app.core.progress import CallbackProgress
from app.core.types import LabelResult, ModelResult
from app.reporting import labeller
from app.reporting.generator import BANNER, build_conditioning, draft, split_sections
from app.reporting.generator.bundled import default_model_dir
from app.reporting.generator.guard import ConsistencyGuard
from app.reporting.generator.stream import run

MODEL_DIR = default_model_dir()


def _result(prob: float, label: str = "pneumonia", threshold: float = 0.5) -> ModelResult:
    return ModelResult(
        "pneumonia_cnn",
        "1.0.0",
        "abc",
        "CPUExecutionProvider",
        [LabelResult(label, prob, threshold, prob >= threshold)],
    )


# -- conditioning ------------------------------------------------------------------------------
def test_conditioning_from_classifier_and_metadata() -> None:
    cond = build_conditioning(
        [_result(0.87)],
        {
            "PatientAge": "067Y",
            "PatientSex": "M",
            "Modality": "CR",
            "BodyPartExamined": "CHEST",
            "ViewPosition": "PA",
        },
        indication="Cough and fever",
        comparison="None.",
        notes="smoker",
    )
    assert [(f.code, f.probability) for f in cond.positives] == [("Pneumonia", 0.87)]
    assert cond.negatives == []
    assert cond.model_indication() == "67-year-old male. Cough and fever smoker"
    assert (cond.modality, cond.body_part, cond.view, cond.comparison) == (
        "CR",
        "CHEST",
        "frontal",
        "",
    )


def test_below_threshold_covered_label_becomes_negative() -> None:
    cond = build_conditioning([_result(0.12)], findings=["Cardiomegaly"])
    assert cond.codes == ["Cardiomegaly"]
    assert [(n.code, n.sentence, n.probability) for n in cond.negatives] == [
        ("Pneumonia", "No focal consolidation.", 0.12)
    ]
    assert build_conditioning([_result(0.1)]).codes == ["normal"]


# -- guard and streaming (no model needed) -------------------------------------------------------
def _guarded(text: str, cond: object, by_char: bool = False) -> str:
    pieces = list(text) if by_char else [text]
    return "".join(run(pieces, ConsistencyGuard(cond)))  # type: ignore[arg-type]


def test_guard_adds_missing_findings_and_negatives() -> None:
    cond = build_conditioning([_result(0.2)], findings=["Cardiomegaly", "Pleural Effusion"])
    raw = "FINDINGS: The lungs are clear. There is a small left pleural effusion.\nIMPRESSION: Effusion."
    out = _guarded(raw, cond)
    f, imp = split_sections(out)
    assert labeller.states(f, "Cardiomegaly") and labeller.states(f, "Pleural Effusion")
    assert "No focal consolidation." in f
    assert imp == "Effusion."
    assert f.count("effusion") == 1  # stated by the model: no canonical sentence added


def test_guard_drops_contradictions_repeats_and_fills_impression() -> None:
    normal = build_conditioning([_result(0.1)])
    raw = (
        "FINDINGS: Heart size is normal. There is cardiomegaly. Heart size is normal. "
        "The lungs are clear."
    )
    out = _guarded(raw, normal)
    f, imp = split_sections(out)
    assert "cardiomegaly" not in out.lower() and f.count("Heart size is normal.") == 1
    assert labeller.is_normal(out) and imp == "No acute cardiopulmonary abnormality."
    # denied by the classifier: a sentence stating pneumonia is dropped even for an abnormal study
    cond = build_conditioning([_result(0.1)], findings=["Cardiomegaly"])
    out = _guarded(
        "FINDINGS: Cardiomegaly. Right lower lobe pneumonia.\nIMPRESSION: Cardiomegaly.", cond
    )
    assert "pneumonia" not in out.lower()


def test_guard_drops_denials_and_all_clear_statements_for_acute_findings() -> None:
    cond = build_conditioning(findings=["Pneumonia", "Pleural Effusion"])
    raw = (
        "FINDINGS: Heart size normal. The lungs are clear. No pleural effusion or pneumothorax. "
        "Right lower lobe consolidation. The lungs are otherwise clear.\nIMPRESSION: No acute disease."
    )
    f, imp = split_sections(_guarded(raw, cond))
    assert "The lungs are clear." not in f and "No pleural effusion" not in f
    assert "Right lower lobe consolidation." in f and "The lungs are otherwise clear." in f
    assert labeller.states(f, "Pneumonia") and labeller.states(f, "Pleural Effusion")
    assert "No acute disease." not in imp and labeller.states(imp, "Pneumonia")


def test_streaming_is_independent_of_piece_boundaries() -> None:
    cond = build_conditioning(findings=["Opacity"])
    raw = (
        "FINDINGS: Heart size normal. Left basilar opacity. No effusion.\n"
        "IMPRESSION: 1. Left basilar opacity, possibly atelectasis."
    )
    assert _guarded(raw, cond, by_char=True) == _guarded(raw, cond)
    assert "".join(run(list(raw), None)) == "".join(run([raw], None))
    assert split_sections("".join(run([raw], None))) == (
        "Heart size normal. Left basilar opacity. No effusion.",
        "1. Left basilar opacity, possibly atelectasis.",
    )


# -- the bundled model ----------------------------------------------------------------------------
def test_bundled_model_folder_is_complete_and_small() -> None:
    files = {p.name for p in MODEL_DIR.iterdir()}
    assert {"genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json"} <= files
    total = sum(p.stat().st_size for p in MODEL_DIR.rglob("*") if p.is_file())
    assert total <= 30 * 1024 * 1024


@pytest.mark.parametrize(
    "codes",
    [["Cardiomegaly", "Pleural Effusion"], ["Pulmonary Atelectasis"], ["Lung/hypoinflation"]],
)
def test_draft_streams_and_states_conditioned_findings(codes: list[str]) -> None:
    stream = draft(codes, {"indication": "Shortness of breath"}, device="cpu")
    chunks = list(stream)
    assert chunks[0] == BANNER + "\n" and len(chunks) > 4
    text = "".join(chunks)
    assert "FINDINGS:" in text and "\nIMPRESSION: " in text
    assert stream.findings and stream.impression
    for c in codes:
        assert labeller.states(stream.findings, c), (c, text)
    prov = stream.provenance
    assert prov["provider"] == "CPUExecutionProvider" and prov["model_id"] == "report_generator"
    h = hashlib.sha256(
        (MODEL_DIR / "model.onnx").read_bytes() + (MODEL_DIR / "model.onnx.data").read_bytes()
    )
    assert prov["sha256"] == h.hexdigest()
    assert "requires review by a physician" in prov["disclaimer"]
    d = stream.to_report_draft("1.2.3")
    assert (
        d.ai_generated and d.findings == stream.findings and d.generator["sha256"] == h.hexdigest()
    )


def test_normal_draft_with_negative_and_auto_device() -> None:
    stream = draft(
        [_result(0.05)], {"metadata": {"PatientAge": "045Y", "PatientSex": "F"}}, device="auto"
    )
    text = stream.read()
    assert labeller.is_normal(text), text
    # the classifier's negative is stated, and nothing says consolidation is present
    assert labeller.label(stream.findings).get("Consolidation") is False
    # auto: the GPU exactly when the provider probe says CUDA works here, else the CPU
    from app.inference.engine import cuda_problem

    assert stream.provenance["provider"] == (
        "CPUExecutionProvider" if cuda_problem() else "CUDAExecutionProvider"
    )


def test_greedy_draft_is_deterministic() -> None:
    a = draft(["Cardiomegaly"], device="cpu").read()
    b = draft(["Cardiomegaly"], device="cpu").read()
    assert a == b


def test_cancel_stops_generation() -> None:
    progress = CallbackProgress()
    stream = draft(["Opacity"], device="cpu", progress=progress)
    next(stream)
    progress.cancel()
    with pytest.raises(Cancelled):
        stream.read()


def test_missing_model_and_unknown_backend() -> None:
    with pytest.raises(GeneratorError):
        draft(["normal"], model_dir="/nonexistent").read()
    with pytest.raises(GeneratorError):
        draft(["normal"], backend="nope")


def test_cli_draft(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from app.cli import main

    prov = tmp_path / "prov.json"
    rc = main(
        [
            "draft",
            "--findings",
            "Cardiomegaly;Pleural Effusion",
            "--indication",
            "Dyspnea",
            "--negatives",
            "pneumonia",
            "--device",
            "cpu",
            "--provenance",
            str(prov),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith(BANNER)
    f, _ = split_sections(out)
    assert labeller.states(f, "Cardiomegaly") and labeller.states(f, "Pleural Effusion")
    assert prov.exists() and "sha256" in prov.read_text()
    assert main(["draft", "--max-new-tokens", "0"]) == 2


# -- OpenAI-compatible backend without a server ------------------------------------------------
def test_openai_unreachable_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    with pytest.raises(BackendUnavailableError, match="cannot be reached"):
        draft(
            ["normal"], backend="openai", url=f"http://127.0.0.1:{port}/v1", model="m", timeout=5
        ).read()
    monkeypatch.delenv("HILUM_OPENAI_URL", raising=False)
    with pytest.raises(GeneratorError, match="URL"):
        draft(["normal"], backend="openai", model="m").read()


def test_openai_prompt_is_deidentified_and_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.reporting.generator.openai_backend import (
        OpenAIBackend,
        build_messages,
        deidentify_text,
    )

    text = (
        "Mr. John Smith, MRN 12345678, seen 2024-03-01 at 10:30, call 555-123-4567, j.smith@x.org"
    )
    clean = deidentify_text(text)
    for secret in ("John", "Smith", "12345678", "2024-03-01", "10:30", "555-123-4567", "j.smith"):
        assert secret not in clean
    cond = build_conditioning(
        [_result(0.91)], {"PatientAge": "093Y", "PatientSex": "F"}, indication=text
    )
    messages, sent = build_messages(cond)
    assert (
        "Smith" not in sent and "90 or older" in sent and "Pneumonia (AI probability 0.91)" in sent
    )
    assert messages[0]["role"] == "system" and "FINDINGS:" in messages[0]["content"]
    _, raw = build_messages(cond, deidentify=False)
    assert "Smith" in raw
    monkeypatch.setenv("HILUM_OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("HILUM_OPENAI_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("HILUM_OPENAI_MODEL", "m")
    client = OpenAIBackend.from_settings()
    assert (client.api_key, client.model, client.base_url) == (
        "sk-test",
        "m",
        "http://127.0.0.1:1/v1",
    )
