"""``hilum annotations export|import``: measurements and key images as DICOM (GSPS, TID 1500, KOS)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add ``annotations`` to the ``hilum`` sub-commands."""
    p = sub.add_parser(
        "annotations",
        help="export/import measurements and key images as DICOM",
        description="Write the stored measurements, reading views and key images "
        "of a study as GSPS, TID 1500 SR and KOS, or load such "
        "objects made elsewhere into the library.",
    )
    inner = p.add_subparsers(dest="annotations_command", metavar="ACTION", required=True)
    e = inner.add_parser("export", help="write GSPS, TID 1500 SR and KOS for a study")
    e.add_argument("study_uid", metavar="STUDY_UID")
    e.add_argument("--out", required=True, metavar="DIR", help="output folder")
    e.add_argument("--library", metavar="DB", help="library database (default: the user library)")
    e.set_defaults(func=_export)
    i = inner.add_parser("import", help="load GSPS / TID 1500 SR / KOS files into the library")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--library", metavar="DB", help="library database (default: the user library)")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(func=_import)


def _library(args: argparse.Namespace) -> Any:
    from app.dicom.library import Library

    return Library(args.library) if args.library else Library()


def _export(args: argparse.Namespace) -> int:
    from app.reporting.annotations import export_annotations

    written = export_annotations(_library(args), args.study_uid, args.out)
    if not written:
        print("Nothing is stored with this study (no measurements, views or key images).")
    for path in written:
        print(f"wrote {path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from app.reporting.annotations import import_annotations

    summary = import_annotations(_library(args), args.files)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
        return 0
    print(
        f"{summary.measurements} measurement(s), {summary.views} view(s), "
        f"{summary.key_images} key image(s) loaded into {len(summary.studies)} study(ies)."
    )
    for s in summary.skipped:
        print(f"skipped: {s}")
    return 0
