"""``hilum models list|card|verify|validate`` (``hilum analyze`` is :mod:`app.workflow.commands`).

Handlers import onnxruntime and the DICOM stack lazily so that the CLI starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.core.errors import UsageError


_models_actions: Any = None


def models_actions() -> Any:
    """The ``hilum models`` sub-parsers (None before :func:`register`), for higher layers' actions."""
    return _models_actions


def register(sub: Any) -> None:
    """Add ``models`` to the ``hilum`` sub-commands."""
    models = sub.add_parser("models", help="list, show, verify and validate installed AI models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    global _models_actions
    _models_actions = msub  # higher layers add actions (app.saliency.commands: export-serving)
    models.set_defaults(func=lambda args: _usage(models))

    p = msub.add_parser("list", help="installed models and whether each passed verification")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_list)

    p = msub.add_parser("card", help="print a model's card (Markdown)")
    p.add_argument("model_id", metavar="ID")
    p.set_defaults(func=_card)

    p = msub.add_parser(
        "verify",
        help="check every manifest (schema), hash and ONNX input/output; "
        "exit 1 naming each bad model",
    )
    p.add_argument("model_ids", nargs="*", metavar="ID", help="only these models (default all)")
    p.set_defaults(func=_verify)

    p = msub.add_parser(
        "validate",
        help="local acceptance test: AUC, sensitivity/specificity at the "
        "manifest thresholds and calibration error on labelled data",
    )
    p.add_argument("model_id", metavar="ID")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--npz", metavar="FILE", help="NumPy archive with <split>_images and <split>_labels"
    )
    src.add_argument("--dicom", metavar="FOLDER", help="folder of labelled DICOM images")
    p.add_argument("--split", metavar="NAME", help="split name inside the .npz (e.g. test)")
    p.add_argument(
        "--labels",
        metavar="CSV",
        help="with --dicom: CSV with a file (or sop_uid) column and one 0/1 column per label",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=_validate)


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
        print(
            "\nWARNING: this model failed verification and will not be run: "
            + "; ".join(m.problems),
            file=sys.stderr,
        )
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
