"""``hilum analyze``: the batch loop over study sessions (:mod:`app.workflow.batch`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add ``analyze`` to the ``hilum`` sub-commands."""
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
    a.add_argument("--pdf", action="store_true", help="export the report as DIR/report.pdf")
    a.add_argument("--dicom-export", action="store_true",
                   help="export Encapsulated PDF, SR and Secondary Captures to DIR/dicom/")
    a.add_argument("--deidentify", action="store_true",
                   help="apply the PS3.15 Basic Profile to the exported report")
    a.add_argument("--reader", default="", metavar="NAME",
                   help="physician signing the exported report (default: marked as not reviewed)")
    a.add_argument("--quiet", action="store_true", help="print only errors")
    a.set_defaults(func=_analyze)


def _analyze(args: argparse.Namespace) -> int:
    from app.core.progress import CallbackProgress
    from app.workflow.batch import analyze

    def show(done: int, total: int | None, message: str) -> None:
        if not args.quiet and sys.stderr.isatty():
            print(f"\r{message}", end="", file=sys.stderr, flush=True)

    doc = analyze(args.paths, args.out, model_ids=args.models, device=args.device,
                  progress=CallbackProgress(show), override_applicability=args.override_applicability,
                  fp16=args.fp16 or None, saliency=args.saliency, draft=args.draft, indication=args.indication,
                  comparison=args.comparison, pdf=args.pdf, dicom_export=args.dicom_export,
                  deidentify=args.deidentify, reader_name=args.reader,
                  log_step=None if args.quiet else (lambda line: print(line, file=sys.stderr)))
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
            for err in image.get("errors", []):
                print(f"hilum: {image['path']}: {err['model_id']}: {err['error']}", file=sys.stderr)
            for na in image["not_applicable"]:
                print(f"{image['path']}: {na['model_id']} not applicable ({'; '.join(na['reasons'])})")
        s = doc["summary"]
        print(f"{s['classified']} of {s['images']} image(s) classified, {s['errors']} error(s); "
              f"results in {doc.get('results_path')}")
    if doc["summary"]["images"] == 0 or (doc["errors"] and doc["summary"]["classified"] == 0):
        return 1
    return 0
