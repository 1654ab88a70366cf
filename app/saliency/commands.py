"""``hilum models export-serving``: a Triton model repository of a verified model, CAM outputs added.

Registered beside the other ``hilum models`` actions (:func:`app.inference.commands.models_actions`);
it lives here because the served copy is rewritten by :mod:`app.saliency.serving`.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.core.errors import UsageError


def register(sub: Any) -> None:
    """Add ``export-serving`` to ``hilum models`` (when that command exists)."""
    from app.inference.commands import models_actions

    msub = models_actions()
    if msub is None:
        return
    p = msub.add_parser(
        "export-serving",
        help="write a Triton model repository (DIR/<id>/config.pbtxt, "
        "DIR/<id>/1/model.onnx with the CAM outputs) for a verified model",
    )
    p.add_argument("model_id", metavar="ID")
    p.add_argument("--out", required=True, metavar="DIR", help="model repository root")
    p.add_argument(
        "--max-batch", type=int, default=32, metavar="N", help="Triton max_batch_size (default 32)"
    )
    p.add_argument(
        "--no-mlserver",
        action="store_true",
        help="do not add model-settings.json and the MLServer runtime beside config.pbtxt",
    )
    p.set_defaults(func=_export_serving)


def _export_serving(args: argparse.Namespace) -> int:
    from app.inference.registry import ModelRegistry
    from app.saliency.serving import export_serving

    if args.max_batch < 1:
        raise UsageError("--max-batch must be at least 1.")
    folder = export_serving(
        ModelRegistry().get(args.model_id),
        args.out,
        max_batch_size=args.max_batch,
        mlserver=not args.no_mlserver,
    )
    print(f"wrote {folder / 'config.pbtxt'} and {folder / '1' / 'model.onnx'}")
    return 0
