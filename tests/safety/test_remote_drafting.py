"""Issue 11, items 1, 2 and 7: what reaches an OpenAI-compatible server, broken replies, and the
network client's rules -- against a real HTTP server on 127.0.0.1 started by the test."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pydicom
import pytest

from app.cli import main
from app.core.errors import BackendUnavailableError, GeneratorError
from app.core.paths import sample_path
from app.reporting.generator import draft
from tests.safety._openai_server import FakeOpenAI

PHI = {
    "PatientName": "ZZDOE^JOHN",
    "PatientID": "PIDCR998877",
    "AccessionNumber": "ACC778899",
    "InstitutionName": "STMUNGO HOSPITAL",
    "InstitutionAddress": "7 Kelvin Way, Glasgow G3 7TA",
    "ReferringPhysicianName": "REFDOC^ANNA",
    "OperatorsName": "OPSMITH^KIM",
    "PerformingPhysicianName": "PERFDOC^LEE",
    "StationName": "XRAYSTN42",
    "StudyID": "STU5521",
    "OtherPatientIDs": "OPID55443",
    "PatientBirthDate": "19560412",
}
INDICATION = (
    "John ZZDOE MRN PIDCR998877 seen at STMUNGO HOSPITAL by Dr REFDOC, acc ACC778899, "
    "born 12/04/1956, cough for 3 days"
)
NOTES = (
    "Lives at 13 Elm Street, London SW1A 1AA; phone +44 20 7946 0958; e-mail jd@example.org; "
    "see https://pacs.example.org/study/1; operator Kim Opsmith on station XRAYSTN42; "
    "other id OPID55443, study STU5521, doe john"
)
SECRETS = [
    "ZZDOE",
    "John",
    "JOHN",
    "PIDCR998877",
    "ACC778899",
    "STMUNGO",
    "REFDOC",
    "1956",
    "Elm Street",
    "SW1A",
    "7946",
    "jd@example.org",
    "pacs.example.org",
    "Opsmith",
    "XRAYSTN42",
    "OPID55443",
    "STU5521",
    "Kelvin",
]


@pytest.fixture()
def phi_image(tmp_path: Path) -> Path:
    ds = pydicom.dcmread(sample_path())
    for k, v in PHI.items():
        setattr(ds, k, v)
    path = tmp_path / "in" / "cxr.dcm"
    path.parent.mkdir()
    ds.save_as(path)
    return path


@pytest.fixture()
def server():
    with FakeOpenAI() as srv:
        yield srv


def _analyze(phi_image: Path, out: Path, url: str, *extra: str) -> int:
    return main(
        [
            "analyze",
            str(phi_image),
            "--out",
            str(out),
            "--quiet",
            "--draft",
            "--backend",
            "openai",
            "--url",
            url,
            "--model",
            "remote-llm",
            "--timeout",
            "20",
            "--indication",
            INDICATION,
            "--notes",
            NOTES,
            *extra,
        ]
    )


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret.lower() not in text.lower(), f"{secret!r} reached the server"


# -- item 1 ---------------------------------------------------------------------------------------
def test_prompt_sent_by_analyze_has_no_header_identifier(phi_image, server, tmp_path, capsys):
    out = tmp_path / "out"
    assert _analyze(phi_image, out, server.url) == 0
    assert len(server.requests) == 1
    req = server.requests[0]
    assert req["json"]["model"] == "remote-llm"
    _assert_clean(req["raw"])
    user = req["json"]["messages"][1]["content"]
    assert "cough for 3 days" in user and "[removed]" in user
    # the exact prompt is kept with the draft's provenance, and was shown on stderr
    prov = json.loads((out / "draft.provenance.json").read_text())
    assert prov["prompt"] == user and prov["backend"] == "openai"
    assert user in capsys.readouterr().err
    # the film is an adult's: the pneumonia result is outside the model's intended use (issue 16),
    # so the draft does not state it and says the AI result is not applicable
    text = (out / "draft.txt").read_text()
    assert "FINDINGS:" in text and "Right lower lobe pneumonia" not in text
    assert "The AI result for pneumonia (pneumonia_cnn) is not applicable" in text


def test_show_prompt_prints_and_sends_nothing(phi_image, server, tmp_path, capsys):
    out = tmp_path / "out"
    assert _analyze(phi_image, out, server.url, "--show-prompt") == 0
    printed = capsys.readouterr().out
    assert "Indication:" in printed and "cough for 3 days" in printed
    _assert_clean(printed)
    assert server.requests == [] and not (out / "draft.txt").exists()


def test_draft_command_scrubs_with_header(phi_image, server, capsys):
    assert (
        main(
            [
                "draft",
                "--backend",
                "openai",
                "--url",
                server.url,
                "--model",
                "m",
                "--findings",
                "Pneumonia",
                "--header",
                str(phi_image),
                "--indication",
                INDICATION,
                "--notes",
                NOTES,
            ]
        )
        == 0
    )
    _assert_clean(server.requests[0]["raw"])


def test_draft_command_finds_the_header_itself(phi_image, server, tmp_path, hilum_home, capsys):
    """No --header: the study's headers come from the library (--study, or the results.json's
    study), else from the files results.json lists; without any, nothing is sent unless the
    user says --no-header."""
    base = [
        "draft",
        "--backend",
        "openai",
        "--url",
        server.url,
        "--model",
        "m",
        "--findings",
        "Pneumonia",
        "--indication",
        INDICATION,
        "--notes",
        NOTES,
    ]
    # no header known: refused in one line, nothing sent
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no DICOM header" in err[0] and "--no-header" in err[0]
    assert server.requests == []
    # --no-header: sent, with the same line as a warning (generic patterns only)
    assert main([*base, "--no-header"]) == 0
    assert "no DICOM header" in capsys.readouterr().err and len(server.requests) == 1
    # results.json of files never scanned: the listed files' headers
    out = tmp_path / "out"
    assert main(["analyze", str(phi_image), "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    assert main([*base, "--results", str(out / "results.json")]) == 0
    _assert_clean(server.requests[-1]["raw"])
    # a study in the library: --study, and results.json whose source file has moved away
    assert main(["scan", str(phi_image)]) == 0
    uid = str(pydicom.dcmread(phi_image, stop_before_pixels=True).StudyInstanceUID)
    assert main([*base, "--study", uid]) == 0
    _assert_clean(server.requests[-1]["raw"])
    doc = json.loads((out / "results.json").read_text())
    for im in doc["images"]:
        im["path"] = str(tmp_path / "gone.dcm")
    (out / "moved.json").write_text(json.dumps(doc))
    assert main([*base, "--results", str(out / "moved.json")]) == 0
    _assert_clean(server.requests[-1]["raw"])
    assert main([*base, "--study", "1.2.3.999"]) == 2 and len(server.requests) == 4
    capsys.readouterr()


# -- item 2 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["html", "notjson", "empty"])
def test_broken_reply_gives_no_draft(mode, phi_image, server, tmp_path, capsys):
    server.mode = mode
    out = tmp_path / "out"
    assert _analyze(phi_image, out, server.url) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hilum: ") and "no draft" in err[-1]
    assert not (out / "draft.txt").exists() and not (out / "draft.provenance.json").exists()


@pytest.mark.parametrize("mode", ["html", "notjson", "empty"])
def test_broken_reply_never_templated(mode, server):
    server.mode = mode
    stream = draft(["Pneumonia"], backend="openai", url=server.url, model="m", timeout=10)
    with pytest.raises(GeneratorError, match="no draft"):
        stream.read()
    assert "FINDINGS" not in stream.text and "IMPRESSION" not in stream.text


def test_guard_never_writes_report_for_empty_backend():
    from app.reporting.generator import build_conditioning
    from app.reporting.generator.guard import ConsistencyGuard
    from app.reporting.generator.stream import run

    g = ConsistencyGuard(build_conditioning([], {}, "", "", "", findings=["Cardiomegaly"]))
    with pytest.raises(GeneratorError):
        list(run(iter(["", "  "]), g))


def test_good_reply_credits_model_only_for_its_text(server):
    stream = draft(["Pneumonia"], backend="openai", url=server.url, model="m", timeout=10)
    text = stream.read()
    assert "Right lower lobe pneumonia" in text
    assert stream.provenance["model_sentences"] >= 2
    assert isinstance(stream.provenance["guard_inserted"], list)


def test_template_sentences_are_named_in_provenance(server):
    # the model writes only an impression: the guard's template findings are not credited to it
    server.reply = "IMPRESSION: Right lower lobe pneumonia."
    stream = draft(["Pneumonia"], backend="openai", url=server.url, model="m", timeout=10)
    stream.read()
    assert stream.provenance["guard_inserted"], stream.text
    for sentence in stream.provenance["guard_inserted"]:
        assert sentence in stream.text


def test_generated_text_has_no_terminal_controls(server):
    server.reply = "FINDINGS: Right lower lobe \x1b[2Jopacity\x07 consistent with pneumonia. IMPRESSION: Pneumonia."
    text = draft(["Pneumonia"], backend="openai", url=server.url, model="m", timeout=10).read()
    assert "\x1b" not in text and "\x07" not in text and "opacity" in text


# -- item 7 ---------------------------------------------------------------------------------------
def test_plain_http_refused_outside_loopback():
    from app.reporting.generator.openai_backend import OpenAIBackend

    for url in (
        "http://llm-a.invalid:8000/v1",
        "http://llm.example.org/v1",
        "HTTP://llm-b.invalid/v1",
    ):
        with pytest.raises(GeneratorError, match="http://"):
            OpenAIBackend.from_settings(url=url, model="m")
        assert OpenAIBackend.from_settings(url=url, model="m", allow_insecure_http=True)
    for url in (
        "http://127.0.0.1:1/v1",
        "http://127.9.9.9/v1",
        "http://[::1]:8000/v1",
        "http://localhost:8000/v1",
        "https://llm.example.org/v1",
    ):
        OpenAIBackend.from_settings(url=url, model="m")
    # and the CLI says so before anything is sent
    assert (
        main(
            [
                "draft",
                "--backend",
                "openai",
                "--url",
                "http://llm-a.invalid/v1",
                "--model",
                "m",
                "--no-header",
            ]
        )
        == 1
    )


def test_api_key_only_for_its_server(server, monkeypatch):
    monkeypatch.setenv("HILUM_OPENAI_API_KEY", "sk-other-server")
    monkeypatch.setenv("HILUM_OPENAI_URL", "http://127.0.0.2:9/v1")
    draft(["Pneumonia"], backend="openai", url=server.url, model="m", timeout=10).read()
    assert "Authorization" not in server.requests[-1]["headers"]
    monkeypatch.setenv("HILUM_OPENAI_URL", server.url + "/")
    draft(["Pneumonia"], backend="openai", url=server.url, model="m", timeout=10).read()
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer sk-other-server"


def test_url_credentials_never_shown_or_stored(server, capsys):
    url = server.url.replace("http://", "http://alice:s3cr3tpw@")
    stream = draft(["Pneumonia"], backend="openai", url=url, model="m", timeout=10)
    stream.read()
    assert server.requests[-1]["headers"]["Authorization"].startswith("Basic ")
    assert "s3cr3tpw" not in json.dumps(stream.provenance) and "alice" not in json.dumps(
        stream.provenance
    )
    server.mode = "escape"
    with pytest.raises(BackendUnavailableError) as exc:
        draft(["Pneumonia"], backend="openai", url=url, model="m", timeout=10).read()
    msg = str(exc.value)
    assert "s3cr3tpw" not in msg and "401" in msg
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in msg), repr(msg)
    assert main(["draft", "--backend", "openai", "--url", url, "--model", "m", "--no-header"]) == 1
    err = capsys.readouterr().err
    assert "s3cr3tpw" not in err and "\x1b" not in err and "\x07" not in err


@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_timeout_is_one_deadline(mode, server):
    server.mode = mode
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="timeout"):
        draft(["Pneumonia"], backend="openai", url=server.url, model="m", timeout=1.5).read()
    assert time.monotonic() - t0 < 4.0


# -- city names in address lines (deid.py, the one scrubber) ------------------------------------------
@pytest.mark.parametrize(
    "text,place",
    [
        ("Lives at 13 Elm Street, London SW1A 1AA; cough", "London"),
        ("Home: 221B Baker St., Springfield, IL 62704. Cough.", "Springfield"),
        ("Address 7 Kelvin Way, Glasgow, Scotland. Cough for 3 days.", "Glasgow"),
        ("Seen at 4 High Road, Boston, Massachusetts", "Boston"),
        ("10 Main Street, New York, NY 10001", "New York"),
        ("Postcode SW1A 1AA, London. Cough.", "London"),
        ("62704 Springfield, Illinois; no effusion", "Springfield"),
    ],
)
def test_city_after_street_or_postcode_is_removed(text, place):
    from app.reporting.deid import scrub_text

    out = scrub_text(text)
    assert place not in out, out
    assert "Scotland" not in out and "Illinois" not in out and "Massachusetts" not in out
    for word in ("cough", "Cough", "effusion"):
        assert (word in out) == (word in text), out


@pytest.mark.parametrize(
    "text",
    [
        "Lives at 13 Elm Street, Right lower lobe opacity.",
        "13 Elm Street, Pneumonia, RLL.",
        "Right lower lobe pneumonia. Left, Normal heart size.",
        "Compared with 2 views, Left Lower Lobe, Stable.",
        "CT chest in Boston, MA showed a nodule.",  # no street address or postcode before it
    ],
)
def test_city_rule_keeps_clinical_words(text):
    from app.reporting.deid import scrub_text

    out = scrub_text(text)
    for word in (
        "Right",
        "Pneumonia",
        "RLL",
        "Left",
        "Normal",
        "Lower",
        "Stable",
        "nodule",
        "Boston",
    ):
        assert (word in out) == (word in text), out
