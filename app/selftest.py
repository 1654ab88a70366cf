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
    """Run every step; return 0 when all pass, 1 at the first failure."""
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
        from app.pipeline import analyze

        doc = analyze([state["path"]], tmp, saliency="cam")
        state["doc"] = doc
        recs = [r for i in doc["images"] for r in i["results"]]
        if not recs:
            raise RuntimeError("the bundled classifier produced no result on the sample")
        r = recs[0]
        label, lab = next(iter(r["labels"].items()))
        state["provider"] = r["provider"]
        return f"{r['model_id']} {label} p={lab['probability']:.3f} on {r['provider']}"

    def cam() -> str:
        recs = [r for i in state["doc"]["images"] for r in i["results"]]
        sal = recs[0].get("saliency") or {}
        if sal.get("error") or not sal.get("files"):
            raise RuntimeError(f"no saliency map: {sal.get('error', 'nothing written')}")
        files = [tmp / f["npy"] for f in sal["files"].values()]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise RuntimeError(f"saliency files missing: {missing}")
        return f"{sal['method']} map(s) for {', '.join(sal['files'])}"

    def draft() -> str:
        from app.pipeline import draft_for_study

        doc = state["doc"]
        study = next(i["study_uid"] for i in doc["images"] if i["results"])
        stream = draft_for_study(doc, study, indication="self-test")
        if "IMPRESSION" not in stream.text.upper():
            raise RuntimeError("the draft has no IMPRESSION section")
        state["stream"], state["study"] = stream, study
        return f"{len(stream.text)} characters on {stream.provenance.get('provider', '?')}"

    def export() -> str:
        from app.pipeline import export_study

        files = export_study(state["doc"], tmp, tmp / "export", state["study"], state["stream"],
                             pdf=True, dicom=False, deidentify=False, reader_name="Hilum self-test")
        pdf = files[0]
        if pdf.stat().st_size < 1000 or not pdf.read_bytes().startswith(b"%PDF"):
            raise RuntimeError(f"{pdf} is not a PDF")
        return f"{pdf} ({pdf.stat().st_size // 1024} KiB)"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("load sample", load), ("verify models", models), ("classify", analyse),
        ("saliency (CAM)", cam), ("draft report", draft), ("export PDF", export)]
    print(f"hilum {__version__} self-test", file=out, flush=True)
    t_all = time.perf_counter()
    for name, fn in steps:
        t0 = time.perf_counter()
        try:
            detail = fn()
        except Exception as exc:  # noqa: BLE001 - report any failure as one line and stop
            ms = (time.perf_counter() - t0) * 1000
            print(f"FAIL {name:<16} {ms:8.0f} ms  {type(exc).__name__}: {exc}", file=out, flush=True)
            return 1
        ms = (time.perf_counter() - t0) * 1000
        print(f"ok   {name:<16} {ms:8.0f} ms  {detail}", file=out, flush=True)
    print(f"self-test passed in {time.perf_counter() - t_all:.1f} s (outputs in {tmp})", file=out)
    return 0

