"""The study session, without a QApplication: analyse, CAM from the same pass, draft, sign off,
export; typed results parsed once; events; storage in the library."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from app.core.errors import NotSignedOffError, ResultsFormatError, SignOffError
from app.core.paths import sample_path
from app.core.types import BATCH_READER, AnalysisRun, ReportDraft, SaliencyMethod, StudyMetadata
from app.workflow import StudySession


@pytest.fixture
def ort_runs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts every onnxruntime forward pass (plain and IO-bound runs)."""
    import onnxruntime as ort

    counts = {"runs": 0}
    for name in ("run", "run_with_iobinding"):
        original = getattr(ort.InferenceSession, name)

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            counts["runs"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ort.InferenceSession, name, counting)
    return counts


def test_session_analyses_explains_drafts_signs_and_exports(
    tmp_path: Path, ort_runs: dict[str, int]
) -> None:
    session = StudySession.open([str(sample_path())])
    seen: dict[str, list[Any]] = {
        name: [] for name in ("run", "saliency", "draft", "signed_off", "exported", "draft_chunk")
    }
    for name, values in seen.items():
        getattr(session.events, name).connect(values.append)

    run = session.analyze(device="cpu")
    assert isinstance(run, AnalysisRun) and seen["run"] == [run]
    ds = pydicom.dcmread(sample_path(), stop_before_pixels=True)
    assert session.study_uid == ds.StudyInstanceUID
    (image,) = session.images()
    (result,) = image.results
    assert result.model_id == "pneumonia_cnn" and 0.0 <= result.labels[0].probability <= 1.0

    # CAM comes out of the classifying pass: asking for it runs no model
    before = ort_runs["runs"]
    assert before >= 1
    maps = session.saliency(image.ref, result.model_id, SaliencyMethod.CAM)
    assert ort_runs["runs"] == before
    (m,) = maps
    assert m.same_forward_pass and m.method is SaliencyMethod.CAM
    assert m.map.shape == (ds.Rows, ds.Columns) and np.nanmax(m.map) == pytest.approx(1.0)
    assert seen["saliency"] == [maps]
    # a perturbation method is computed on request (it does run the model)
    occ = session.saliency(image.ref, result.model_id, "occlusion", window=56, stride=56)
    assert ort_runs["runs"] > before and not occ[0].same_forward_pass
    assert occ[0].map.shape == m.map.shape

    # the one metadata reader conditions the draft with ViewPosition and BodyPartExamined
    md = session.metadata()
    assert md == StudyMetadata.from_dataset(ds)
    assert (md.view_position, md.body_part) == ("PA", "CHEST")
    cond = session.conditioning("Cough")
    assert cond.view and cond.body_part == "CHEST"

    draft = session.draft_report(indication="Cough", device="cpu")
    assert draft.study_uid == session.study_uid and not draft.signed_off
    assert "".join(seen["draft_chunk"]) == session.draft_text
    assert draft.findings or draft.impression
    assert seen["draft"] == [draft]

    with pytest.raises(NotSignedOffError):
        session.export(tmp_path / "early")
    signed = session.sign_off(
        "Dr Ada Reader", dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)
    )
    assert signed is not draft and not draft.signed_off  # a new draft; the old one unchanged
    assert (
        signed.signed_off
        and signed.reviewed
        and signed.signed_off_at == "2026-11-30T09:00:00+00:00"
    )
    assert seen["signed_off"] == [signed]

    files = session.export(tmp_path / "out", pdf=True, dicom=True)
    names = [f.name for f in files]
    assert names[0] == "report.pdf" and any(n.startswith("SR_") for n in names)
    assert (
        any(n.startswith("SC_") for n in names) == result.labels[0].positive
    )  # key image: positive + CAM
    assert seen["exported"] == [files]


def test_report_draft_is_frozen_and_enforces_sign_off_rules() -> None:
    d = ReportDraft(study_uid="1.2", findings="Clear lungs.", impression="Normal.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.reader_name = "x"  # type: ignore[misc]
    with pytest.raises(SignOffError):
        d.sign_off("  ")
    with pytest.raises(SignOffError):
        ReportDraft(study_uid="1.2").sign_off("Dr A")  # nothing to sign
    with pytest.raises(SignOffError):
        ReportDraft(study_uid="1.2", reader_name="Dr A")  # a name without a time
    with pytest.raises(SignOffError):
        ReportDraft(study_uid="1.2", reader_name="Dr A", signed_off_at="yesterday")
    with pytest.raises(SignOffError):
        ReportDraft(
            study_uid="1.2", reader_name="Dr A", signed_off_at="2026-11-30T09:00:00", reviewed=False
        )
    batch = d.sign_off(BATCH_READER)
    assert batch.signed_off and not batch.reviewed
    assert ReportDraft.from_dict(batch.to_dict()) == batch
    with pytest.raises(ResultsFormatError):
        ReportDraft.from_dict({"findings": "no study"})


def test_analysis_run_parses_once_and_round_trips(tmp_path: Path) -> None:
    session = StudySession.open([str(sample_path())])
    session.analyze(device="cpu", out_dir=tmp_path)
    doc = json.loads((tmp_path / "results.json").read_text())
    run = AnalysisRun.from_json((tmp_path / "results.json").read_text())
    written = run.to_json()
    written.pop("results_path", None)
    assert json.loads(json.dumps(written)) == doc  # unknown keys (geometry, frame ...) kept
    assert run.model_results()[0].extra["geometry"]["mode"]
    for bad in (
        "not json",
        "[1, 2]",
        json.dumps({"images": [{"results": [{"model_id": "x"}]}]}),
        json.dumps({"images": "x"}),
    ):
        with pytest.raises(ResultsFormatError):
            AnalysisRun.from_json(bad)


def test_library_stores_and_returns_typed_runs_and_drafts(tmp_path: Path) -> None:
    from app.dicom.library import Library

    lib = Library()
    session = StudySession.open([str(sample_path())], library=lib)
    run = session.analyze(device="cpu", series_uid="1.2.3")
    session.set_draft(ReportDraft(study_uid=session.study_uid, findings="F.", impression="I."))
    session.save()
    again = StudySession(session.study_uid, library=Library())
    runs: list[AnalysisRun] = []
    again.events.run.connect(runs.append)
    again.load()
    assert runs == [run] and again.runs == {"1.2.3": run}
    assert again.draft == session.draft
    assert again.model_results() == session.model_results()


def test_batch_split_keeps_each_study_apart() -> None:
    session = StudySession.open([str(sample_path())])
    session.analyze(device="cpu")
    parts = session.split()
    assert list(parts) == [session.study_uid]
    part = parts[session.study_uid]
    assert part.model_results() == session.model_results()
    # CAM kept by the batch session travels with the study
    assert part.saliency(part.images()[0].ref)[0].same_forward_pass


def test_headless_commands_never_import_qt() -> None:
    code = (
        "import sys, app.cli, app.workflow, app.workflow.batch, app.workflow.commands, app.selftest;"
        "app.cli.build_parser();"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','shiboken6','pyqtgraph')"
        " or m.startswith('app.gui')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
