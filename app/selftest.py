"""``hilum --self-test``: prove an installation works, headless, in under a minute.

Steps (one line each, with its time): load and decode the bundled sample, verify the bundled
models, classify the sample, compute its CAM map, draft the report with the bundled generator, and
export the PDF to a temporary folder. Stops at the first failure with its reason (exit 1).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from app import __version__


def run_self_test(stdout: TextIO | None = None) -> int:
    """Run every step; return 0 when all pass, 1 at the first failure.

    Long because the steps are small closures sharing one state dict, listed in the order they run.
    """
    out = stdout or sys.stdout
    state: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="hilum-selftest-"))

    def load() -> str:
        from app.core.paths import sample_path
        from app.dicom import pixels

        ds = pixels.read_dataset(sample_path())
        arr = pixels.frame_array(ds, 0)
        state["path"] = str(sample_path())
        return f"{ds.Modality} {arr.shape[1]}x{arr.shape[0]} {ds.file_meta.TransferSyntaxUID.name}"

    def models() -> str:
        from app.inference.registry import ModelRegistry

        manifests = ModelRegistry().models()
        bad = [f"{m.id}: {'; '.join(m.problems)}" for m in manifests if not m.verified]
        if bad:
            raise RuntimeError("models failed verification: " + " | ".join(bad))
        return f"{len(manifests)} model(s) verified"

    def analyse() -> str:
        from app.workflow import StudySession

        session = StudySession.open([state["path"]])
        run = session.analyze(saliency="cam", out_dir=tmp)
        state["session"] = session = session.split().get(
            run.study_uids()[0] if run.study_uids() else "", session
        )
        recs = session.model_results()
        if not recs:
            raise RuntimeError("the bundled classifier produced no result on the sample")
        r = recs[0]
        lab = r.labels[0]
        state["provider"] = r.provider
        return f"{r.model_id} {lab.label} p={lab.probability:.3f} on {r.provider}"

    def cam() -> str:
        session = state["session"]
        r = session.model_results()[0]
        sal = r.saliency or {}
        if sal.get("error") or not sal.get("files"):
            raise RuntimeError(f"no saliency map: {sal.get('error', 'nothing written')}")
        files = [tmp / f["npy"] for f in sal["files"].values()]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise RuntimeError(f"saliency files missing: {missing}")
        maps = session.saliency(session.images()[0].ref, r.model_id)
        if not maps or not all(m.same_forward_pass for m in maps):
            raise RuntimeError("CAM did not come from the classifying pass")
        return f"{sal['method']} map(s) for {', '.join(sal['files'])}"

    def draft() -> str:
        session = state["session"]
        session.draft_report(indication="self-test")
        text = session.draft_text
        if "IMPRESSION" not in text.upper():
            raise RuntimeError("the draft has no IMPRESSION section")
        return f"{len(text)} characters on {session.draft_provenance.get('provider', '?')}"

    def export() -> str:
        session = state["session"]
        session.sign_off("Hilum self-test")
        files = session.export(tmp / "export", pdf=True, dicom=False)
        pdf = files[0]
        if pdf.stat().st_size < 1000 or not pdf.read_bytes().startswith(b"%PDF"):
            raise RuntimeError(f"{pdf} is not a PDF")
        return f"{pdf} ({pdf.stat().st_size // 1024} KiB)"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("load sample", load),
        ("verify models", models),
        ("classify", analyse),
        ("saliency (CAM)", cam),
        ("draft report", draft),
        ("export PDF", export),
    ]
    print(f"hilum {__version__} self-test", file=out, flush=True)
    t_all = time.perf_counter()
    for name, fn in steps:
        t0 = time.perf_counter()
        try:
            detail = fn()
        except Exception as exc:  # noqa: BLE001 - report any failure as one line and stop
            ms = (time.perf_counter() - t0) * 1000
            print(
                f"FAIL {name:<16} {ms:8.0f} ms  {type(exc).__name__}: {exc}", file=out, flush=True
            )
            return 1
        ms = (time.perf_counter() - t0) * 1000
        print(f"ok   {name:<16} {ms:8.0f} ms  {detail}", file=out, flush=True)
    print(f"self-test passed in {time.perf_counter() - t_all:.1f} s (outputs in {tmp})", file=out)
    return 0
