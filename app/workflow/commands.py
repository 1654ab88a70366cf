"""``hilum analyze``: the batch loop over study sessions (:mod:`app.workflow.batch`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.core.errors import UsageError


def register(sub: Any) -> None:
    """Add ``analyze`` to the ``hilum`` sub-commands.

    Long because it declares every `hilum analyze` option in one place.
    """
    a = sub.add_parser(
        "analyze", help="run every applicable AI model on DICOM images, write DIR/results.json"
    )
    a.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders")
    a.add_argument("--out", required=True, metavar="DIR", help="output folder for results.json")
    a.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="ID",
        help="run only this model (repeatable); default every verified model",
    )
    a.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    a.add_argument(
        "--fp16", action="store_true", help="on the GPU, use an fp16 copy where the manifest allows"
    )
    a.add_argument(
        "--override-applicability",
        action="store_true",
        help="also run models on images outside their stated modality/body part/view",
    )
    a.add_argument(
        "--saliency",
        choices=("cam", "occlusion", "rise", "auto"),
        help="write saliency maps (DIR/saliency/<SOPInstanceUID>_<label>.png and .npy)",
    )
    a.add_argument("--draft", action="store_true", help="draft the report text into DIR/draft.txt")
    a.add_argument(
        "--indication", default="", metavar="TEXT", help="clinical indication for the draft"
    )
    a.add_argument(
        "--comparison", default="", metavar="TEXT", help="comparison study for the draft"
    )
    a.add_argument("--notes", default="", metavar="TEXT", help="radiologist's notes for the draft")
    a.add_argument(
        "--backend",
        choices=["bundled", "openai"],
        default="bundled",
        help="draft with the bundled generator or an OpenAI-compatible server",
    )
    a.add_argument(
        "--url",
        help="openai backend: base URL, e.g. https://llm.example.org/v1 (or HILUM_OPENAI_URL)",
    )
    a.add_argument(
        "--model-name",
        "--llm-model",
        dest="llm_model",
        metavar="NAME",
        help="openai backend: model name (or HILUM_OPENAI_MODEL)",
    )
    a.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="openai backend: seconds for the whole request (default 60)",
    )
    a.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="openai backend: allow plain http:// to a host other than this machine",
    )
    a.add_argument(
        "--show-prompt",
        action="store_true",
        help="openai backend: print the de-identified prompt that would be sent, send nothing",
    )
    a.add_argument(
        "--pixels-reviewed",
        action="store_true",
        help="with --deidentify: you checked the key images for burned-in identifiers",
    )
    a.add_argument("--pdf", action="store_true", help="export the report as DIR/report.pdf")
    a.add_argument(
        "--dicom-export",
        action="store_true",
        help="export Encapsulated PDF, SR and Secondary Captures to DIR/dicom/",
    )
    a.add_argument(
        "--deidentify",
        action="store_true",
        help="apply the PS3.15 Basic Profile to the exported report",
    )
    a.add_argument(
        "--reader",
        default="",
        metavar="NAME",
        help="physician signing the exported report (default: marked as not reviewed)",
    )
    a.add_argument(
        "--inference",
        default="auto",
        choices=("auto", "local", "remote"),
        help="models with a serving setting run on the site's inference server (remote), "
        "locally (local), or on the server with local fallback where the site allows (auto)",
    )
    a.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="auto|ADDRESS",
        help="archive mode: one Ray task per study into DIR/<StudyInstanceUID>/, resumable "
        "(DIR/batch.json); 'auto' (default) starts a private local Ray runtime on 127.0.0.1, "
        "ADDRESS joins a cluster",
    )
    a.add_argument(
        "--workers", type=int, metavar="N", help="with --ray auto: CPUs (parallel studies) to use"
    )
    a.add_argument("--quiet", action="store_true", help="print only errors")
    a.add_argument(
        "--send",
        metavar="NODE",
        help="send the DICOM outputs (SR, Encapsulated PDF, SC) to this PACS node "
        "(implies --dicom-export)",
    )
    a.set_defaults(func=_analyze)


def _analyze(args: argparse.Namespace) -> int:
    """Long because it maps every command-line option and prints the per-image report."""
    from app.core.errors import Cancelled
    from app.core.progress import CallbackProgress
    from app.workflow.batch import analyze
    from app.inference.manifest import DEMONSTRATION_WORDS

    model_ids = list(args.models or [])
    if args.backend == "openai":
        # --model names the classifier(s) to run; for the OpenAI backend a non-classifier --model
        # is the server's model name (``analyze --draft --backend openai --url U --model NAME``)
        from app.inference.registry import ModelRegistry

        known = {m.id for m in ModelRegistry().models()}
        names = [m for m in model_ids if m not in known]
        if names and not args.llm_model:
            args.llm_model = names[-1]
        model_ids = [m for m in model_ids if m in known]
    backend_options = {}
    if args.backend == "openai":

        def confirm(message: str) -> bool:
            if args.show_prompt:
                print(message.split("\n\n", 1)[-1])
                return False
            print(f"hilum: warning: {message}", file=sys.stderr)
            return True

        backend_options = {
            "url": args.url,
            "model": args.llm_model,
            "timeout": args.timeout,
            "allow_insecure_http": args.allow_insecure_http,
            "confirm_send": confirm,
        }

    def show(done: int, total: int | None, message: str) -> None:
        if not args.quiet and sys.stderr.isatty():
            print(f"\r{message}", end="", file=sys.stderr, flush=True)

    if args.ray:
        if args.send:
            raise UsageError(
                "--send cannot be combined with --ray; send the outputs with hilum pacs send."
            )
        return _analyze_archive(args, CallbackProgress(show), model_ids, backend_options)

    node = None
    if args.send:  # fail on an unknown node before the analysis, not after
        from app.net import pacs

        node, local = pacs.load(args.send)
        args.dicom_export = True
    try:
        doc = analyze(
            args.paths,
            args.out,
            model_ids=model_ids or None,
            device=args.device,
            progress=CallbackProgress(show),
            override_applicability=args.override_applicability,
            fp16=args.fp16 or None,
            saliency=args.saliency,
            draft=args.draft or args.show_prompt,
            indication=args.indication,
            comparison=args.comparison,
            pdf=args.pdf,
            dicom_export=args.dicom_export,
            deidentify=args.deidentify,
            reader_name=args.reader,
            notes=args.notes,
            backend=args.backend,
            backend_options=backend_options,
            pixels_reviewed=args.pixels_reviewed,
            inference=args.inference,
            log_step=None if args.quiet else (lambda line: print(line, file=sys.stderr)),
        )
    except Cancelled:
        if args.show_prompt:
            print("hilum: nothing was sent (--show-prompt).", file=sys.stderr)
            return 0
        raise
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    for skipped in doc["skipped_models"]:
        print(
            f"hilum: model {skipped['model_id']} was not run (failed verification: "
            f"{'; '.join(skipped['problems'])})",
            file=sys.stderr,
        )
    for err in doc["errors"]:
        print(f"hilum: {err['path']}: {err['error']}", file=sys.stderr)
    if not args.quiet:
        for image in doc["images"]:
            for res in image["results"]:
                flags = ", ".join(
                    f"{name} {v['probability']:.3f}{' POSITIVE' if v['positive'] else ''}"
                    for name, v in res["labels"].items()
                )
                print(f"{image['path']}: {res['model_id']} [{res['provider']}] {flags}")
                if str(res.get("reliability", "")).startswith("outside"):
                    print(f"  ! {res['reliability']}")
                if res.get("demonstration"):
                    print(f"  ! {DEMONSTRATION_WORDS}")
            for err in image.get("errors", []):
                print(f"hilum: {image['path']}: {err['model_id']}: {err['error']}", file=sys.stderr)
            for na in image["not_applicable"]:
                print(
                    f"{image['path']}: {na['model_id']} not applicable ({'; '.join(na['reasons'])})"
                )
        s = doc["summary"]
        if s.get("outside_intended_use"):
            print(
                f"{s['outside_intended_use']} result(s) outside intended use: not reliable, see each note"
            )
        print(
            f"{s['classified']} of {s['images']} image(s) classified, {s['errors']} error(s); "
            f"results in {doc.get('results_path')}"
        )
    if doc["summary"]["images"] == 0 or (doc["errors"] and doc["summary"]["classified"] == 0):
        return 1
    if node is not None:
        from app.net import pacs
        from app.net.commands import report_sent

        files = [f for out in doc["outputs"].values() for f in out if str(f).endswith(".dcm")]
        return report_sent(node.name, pacs.send(node, local, files))
    return 0


def _analyze_archive(
    args: argparse.Namespace, progress: Any, model_ids: list[str], backend_options: dict[str, Any]
) -> int:
    """``hilum analyze --ray``: one task per study (:func:`app.archive.analyze_archive`)."""
    from app.archive import analyze_archive, stop_ray

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1.")
    try:
        state = analyze_archive(
            args.paths,
            args.out,
            ray_address=args.ray,
            workers=args.workers,
            progress=progress,
            model_ids=model_ids or None,
            device=args.device,
            fp16=args.fp16 or None,
            saliency=args.saliency,
            draft=args.draft,
            indication=args.indication,
            comparison=args.comparison,
            pdf=args.pdf,
            dicom_export=args.dicom_export,
            deidentify=args.deidentify,
            reader_name=args.reader,
            override_applicability=args.override_applicability,
            inference=args.inference,
            notes=args.notes,
            backend=args.backend,
            backend_options=backend_options,
            pixels_reviewed=args.pixels_reviewed,
            log_step=None if args.quiet else (lambda line: print(line, file=sys.stderr)),
        )
    finally:
        stop_ray()
    for err in state["errors"]:
        print(f"hilum: {err.get('path', 'a file')}: {err['error']}", file=sys.stderr)
    for uid, rec in state["studies"].items():
        if rec.get("status") != "done":
            print(f"hilum: study {uid}: {rec.get('error', 'not analysed')}", file=sys.stderr)
    s = state["summary"]
    if not args.quiet:
        print(
            f"{s['done']} of {s['studies']} studies done ({s['skipped_already_done']} already done before), "
            f"{s['failed']} failed; state in {state['batch_path']}"
        )
    return 0 if s["failed"] == 0 and s["studies"] > 0 else 1
