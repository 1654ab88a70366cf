"""``hilum models list|card|verify|validate`` and ``hilum analyze``.

Handlers import onnxruntime and the DICOM stack lazily so that the CLI starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.core.errors import UsageError


def register(sub: Any) -> None:
    """Add ``models`` and ``analyze`` to the ``hilum`` sub-commands."""
    models = sub.add_parser("models", help="list, show, verify and validate installed AI models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    models.set_defaults(func=lambda args: _usage(models))

    p = msub.add_parser("list", help="installed models and whether each passed verification")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_list)

    p = msub.add_parser("card", help="print a model's card (Markdown)")
    p.add_argument("model_id", metavar="ID")
    p.set_defaults(func=_card)

    p = msub.add_parser("verify", help="check every manifest (schema), hash and ONNX input/output; "
                                       "exit 1 naming each bad model")
    p.add_argument("model_ids", nargs="*", metavar="ID", help="only these models (default all)")
    p.set_defaults(func=_verify)

    p = msub.add_parser("validate", help="local acceptance test: AUC, sensitivity/specificity at the "
                                         "manifest thresholds and calibration error on labelled data")
    p.add_argument("model_id", metavar="ID")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--npz", metavar="FILE", help="NumPy archive with <split>_images and <split>_labels")
    src.add_argument("--dicom", metavar="FOLDER", help="folder of labelled DICOM images")
    p.add_argument("--split", metavar="NAME", help="split name inside the .npz (e.g. test)")
    p.add_argument("--labels", metavar="CSV", help="with --dicom: CSV with a file (or sop_uid) column "
                                                   "and one 0/1 column per label")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=_validate)

    a = sub.add_parser("analyze", help="run every applicable AI model on DICOM images, write DIR/results.json")
    a.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders")
    a.add_argument("--out", required=True, metavar="DIR", help="output folder for results.json")
    a.add_argument("--model", action="append", dest="models", metavar="ID",
                   help="run only this model (repeatable); default every verified model")
    a.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    a.add_argument("--fp16", action="store_true", help="on the GPU, use an fp16 copy where the manifest allows")
    a.add_argument("--override-applicability", action="store_true",
                   help="also run models on images outside their stated modality/body part/view")
    a.add_argument("--saliency", choices=("cam", "occlusion", "rise", "auto"),
                   help="write saliency maps (DIR/saliency/<SOPInstanceUID>_<label>.png and .npy)")
    a.add_argument("--draft", action="store_true", help="draft the report text into DIR/draft.txt")
    a.add_argument("--indication", default="", metavar="TEXT", help="clinical indication for the draft")
    a.add_argument("--comparison", default="", metavar="TEXT", help="comparison study for the draft")
    a.add_argument("--notes", default="", metavar="TEXT", help="radiologist's notes for the draft")
    a.add_argument("--backend", choices=["bundled", "openai"], default="bundled",
                   help="draft with the bundled generator or an OpenAI-compatible server")
    a.add_argument("--url", help="openai backend: base URL, e.g. https://llm.example.org/v1 (or HILUM_OPENAI_URL)")
    a.add_argument("--model-name", "--llm-model", dest="llm_model", metavar="NAME",
                   help="openai backend: model name (or HILUM_OPENAI_MODEL)")
    a.add_argument("--timeout", type=float, default=60.0,
                   help="openai backend: seconds for the whole request (default 60)")
    a.add_argument("--allow-insecure-http", action="store_true",
                   help="openai backend: allow plain http:// to a host other than this machine")
    a.add_argument("--show-prompt", action="store_true",
                   help="openai backend: print the de-identified prompt that would be sent, send nothing")
    a.add_argument("--pixels-reviewed", action="store_true",
                   help="with --deidentify: you checked the key images for burned-in identifiers")
    a.add_argument("--pdf", action="store_true", help="export the report as DIR/report.pdf")
    a.add_argument("--dicom-export", action="store_true",
                   help="export Encapsulated PDF, SR and Secondary Captures to DIR/dicom/")
    a.add_argument("--deidentify", action="store_true",
                   help="apply the PS3.15 Basic Profile to the exported report")
    a.add_argument("--reader", default="", metavar="NAME",
                   help="physician signing the exported report (default: marked as not reviewed)")
    a.add_argument("--quiet", action="store_true", help="print only errors")
    a.set_defaults(func=_analyze)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _list(args: argparse.Namespace) -> int:
    from app.inference.registry import ModelRegistry

    models = ModelRegistry().models()
    if args.json:
        print(json.dumps([m.summary() for m in models], indent=2))
        return 0
    if not models:
        print("No models installed.")
        return 0
    print(f"{'ID':24} {'VERSION':9} {'TASK':12} {'SOURCE':8} STATUS")
    for m in models:
        status = "verified" if m.verified else "FAILED: " + "; ".join(m.problems)
        print(f"{m.id:24} {m.version:9} {m.task:12} {m.source:8} {status}")
    return 0


def _card(args: argparse.Namespace) -> int:
    from app.inference.registry import ModelRegistry

    m = ModelRegistry().get(args.model_id)
    print(m.card_text())
    if not m.verified:
        print("\nWARNING: this model failed verification and will not be run: " + "; ".join(m.problems),
              file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from app.inference.registry import ModelRegistry

    reg = ModelRegistry()
    models = [reg.get(i) for i in args.model_ids] if args.model_ids else reg.verify()
    if not models:
        print("No models installed.")
        return 0
    bad = 0
    for m in models:
        if m.verified:
            print(f"OK      {m.id} {m.version} ({m.source}, sha256 {m.sha256[:12]}...)")
        else:
            bad += 1
            print(f"FAILED  {m.id}: " + "; ".join(m.problems))
    if bad:
        print(f"{bad} model(s) failed verification and will not be run.", file=sys.stderr)
        return 1
    return 0


def _validate(args: argparse.Namespace) -> int:
    from app.inference.validate import print_report, validate_dicom, validate_npz

    if args.npz:
        if not args.split:
            raise UsageError("--npz needs --split NAME (e.g. --split test).")
        report = validate_npz(args.model_id, args.npz, args.split, device=args.device)
    else:
        if not args.labels:
            raise UsageError("--dicom needs --labels CSV.")
        report = validate_dicom(args.model_id, args.dicom, args.labels, device=args.device)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from app.core.errors import Cancelled
    from app.core.progress import CallbackProgress
    from app.pipeline import analyze

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

        backend_options = {"url": args.url, "model": args.llm_model, "timeout": args.timeout,
                           "allow_insecure_http": args.allow_insecure_http, "confirm_send": confirm}

    def show(done: int, total: int | None, message: str) -> None:
        if not args.quiet and sys.stderr.isatty():
            print(f"\r{message}", end="", file=sys.stderr, flush=True)

    try:
        doc = analyze(args.paths, args.out, model_ids=model_ids or None, device=args.device,
                      progress=CallbackProgress(show), override_applicability=args.override_applicability,
                      fp16=args.fp16 or None, saliency=args.saliency,
                      draft=args.draft or args.show_prompt, indication=args.indication,
                      comparison=args.comparison, pdf=args.pdf, dicom_export=args.dicom_export,
                      deidentify=args.deidentify, reader_name=args.reader, notes=args.notes,
                      backend=args.backend, backend_options=backend_options,
                      pixels_reviewed=args.pixels_reviewed,
                      log_step=None if args.quiet else (lambda line: print(line, file=sys.stderr)))
    except Cancelled:
        if args.show_prompt:
            print("hilum: nothing was sent (--show-prompt).", file=sys.stderr)
            return 0
        raise
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    for skipped in doc["skipped_models"]:
        print(f"hilum: model {skipped['model_id']} was not run (failed verification: "
              f"{'; '.join(skipped['problems'])})", file=sys.stderr)
    for err in doc["errors"]:
        print(f"hilum: {err['path']}: {err['error']}", file=sys.stderr)
    if not args.quiet:
        for image in doc["images"]:
            for res in image["results"]:
                flags = ", ".join(f"{name} {v['probability']:.3f}{' POSITIVE' if v['positive'] else ''}"
                                  for name, v in res["labels"].items())
                print(f"{image['path']}: {res['model_id']} [{res['provider']}] {flags}")
                if str(res.get("reliability", "")).startswith("outside"):
                    print(f"  ! {res['reliability']}")
            for err in image.get("errors", []):
                print(f"hilum: {image['path']}: {err['model_id']}: {err['error']}", file=sys.stderr)
            for na in image["not_applicable"]:
                print(f"{image['path']}: {na['model_id']} not applicable ({'; '.join(na['reasons'])})")
        s = doc["summary"]
        if s.get("outside_intended_use"):
            print(f"{s['outside_intended_use']} result(s) outside intended use: not reliable, see each note")
        print(f"{s['classified']} of {s['images']} image(s) classified, {s['errors']} error(s); "
              f"results in {doc.get('results_path')}")
    if doc["summary"]["images"] == 0 or (doc["errors"] and doc["summary"]["classified"] == 0):
        return 1
    return 0
