"""``hilum scan`` and ``hilum render``."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import warnings
from typing import Any, Iterator

from app.core.errors import UsageError


def register(sub: Any) -> None:
    """Add ``scan`` and ``render`` to the ``hilum`` sub-commands."""
    p = sub.add_parser(
        "scan",
        help="index DICOM files, folders, zip archives and DICOMDIRs",
        description="Read the headers of DICOM files (folders recursively, .zip "
        "archives, DICOMDIR indexes) into the study library.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="file, folder, .zip or DICOMDIR")
    p.add_argument("--json", action="store_true", help="print studies and errors as JSON")
    p.add_argument("--library", metavar="DB", help="library database (default: the user library)")
    p.set_defaults(func=_scan)

    r = sub.add_parser(
        "render",
        help="write a DICOM image (or a reformat of a series) to PNG",
        description="Render one frame as displayed (header window by default), "
        "or with --plane an axial/coronal/sagittal reformat of the "
        "series in a folder (optionally a thick slab).",
    )
    r.add_argument("file", metavar="PATH", help="DICOM file, or a series folder with --plane")
    r.add_argument("--out", required=True, metavar="PNG", help="PNG file to write")
    r.add_argument(
        "--window", metavar="CENTER,WIDTH", help="window in modality units (e.g. 40,400)"
    )
    r.add_argument("--frame", type=int, default=0, metavar="N", help="0-based frame (default 0)")
    r.add_argument(
        "--plane",
        choices=("axial", "coronal", "sagittal"),
        help="reformat the series in PATH (resampled in patient space)",
    )
    r.add_argument(
        "--position",
        type=float,
        metavar="MM",
        help="plane position along its normal in patient mm (z, y or x)",
    )
    r.add_argument("--index", type=int, metavar="N", help="0-based plane index (instead of MM)")
    r.add_argument("--slab", type=float, default=0.0, metavar="MM", help="slab thickness in mm")
    r.add_argument(
        "--projection",
        choices=("mip", "minip", "avg"),
        default="mip",
        help="slab projection (default mip)",
    )
    r.set_defaults(func=_render)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence library chatter (pydicom warnings, C decoders writing to stderr) in the CLI.

    The CLI promises one-line reasons; the JPEG 2000 decoder prints its own diagnostics
    straight to file descriptor 2, so that is redirected while decoding. Not used in ``-v``.
    """
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = None
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            saved = None
        try:
            yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)


def parse_window(text: str | None) -> tuple[float, float] | None:
    """``"40,400"`` -> (40.0, 400.0); raises UsageError for anything else."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise UsageError(f"--window must be CENTER,WIDTH (e.g. 40,400), not {text!r}.") from None
    if not (width > 0) or width != width or center != center:
        raise UsageError("--window width must be a positive number.")
    return center, width


def _scan(args: argparse.Namespace) -> int:
    from app.core.progress import CallbackProgress
    from app.dicom.library import Library

    lib = Library(args.library) if args.library else Library()
    interactive = not args.json and sys.stderr.isatty()

    def show(done: int, total: int | None, message: str) -> None:
        if interactive and total:
            print(f"\r{message}", end="", file=sys.stderr, flush=True)

    with _quiet():
        report = lib.scan(args.paths, progress=CallbackProgress(show))
    if interactive:
        print(file=sys.stderr)
    if args.json:
        doc = report.to_json()
        with _quiet():
            _add_geometry(lib, doc)
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    for study in report.studies:
        print(
            f"Study {study['study_date'] or '(no date)'} {study['description'] or ''}".rstrip()
            + f"  patient {study['patient_id'] or '?'}"
        )
        for s in study["series"]:
            print(
                f"  {s['modality'] or '??':<3} {s['instances']:>5} instance(s) "
                f"{s['frames']:>6} frame(s) {s['rows']}x{s['columns']}  {s['description']}"
            )
    for err in report.errors:
        print(f"error: {err['path']}: {err['error']}")
    print(
        f"{report.files} file(s) examined, {report.added} new instance(s), "
        f"{report.unchanged} unchanged, {len(report.errors)} error(s) in "
        f"{report.elapsed_s:.2f} s."
    )
    return 0


def _add_geometry(lib: Any, doc: dict[str, Any]) -> None:
    """Add each series' stacks (slices, spacing, tilt, warnings) from :mod:`app.dicom.series`.

    Only headers are read (no pixel decoding). A series whose files cannot be arranged gets
    ``{"stacks": [], "warnings": [reason]}`` instead of failing the whole scan report.
    """
    from app.core.errors import DicomError
    from app.dicom.series import load_series

    for study in doc.get("studies", []):
        for s in study.get("series", []):
            try:
                s.update(load_series(lib.instances(s["series_uid"])).geometry())
            except DicomError as exc:
                s.update(stacks=[], warnings=[exc.message], unreadable=s.get("instances", 0))


def _render(args: argparse.Namespace) -> int:
    from app.dicom.render import render_to_png

    window = parse_window(args.window)
    if args.plane:
        return _render_plane(args, window)
    if args.position is not None or args.index is not None or args.slab:
        raise UsageError("--position, --index and --slab need --plane.")
    if args.frame < 0:
        raise UsageError("--frame must be 0 or more.")
    with _quiet():
        out = render_to_png(args.file, args.out, window=window, frame=args.frame)
    print(f"wrote {out}")
    return 0


def _render_plane(args: argparse.Namespace, window: tuple[float, float] | None) -> int:
    from pathlib import Path

    from app.dicom.mpr import Volume, render_plane
    from app.dicom.render import write_png
    from app.dicom.series import load_series

    if args.position is not None and args.index is not None:
        raise UsageError("Give --position or --index, not both.")
    if args.slab < 0 or args.slab != args.slab:
        raise UsageError("--slab must be 0 or more millimetres.")
    folder = Path(args.file)
    if folder.is_dir():
        files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    else:
        files = [str(folder)]
    with _quiet():
        series = load_series(files)
        volume = Volume(series.main)
        image, plane = render_plane(
            volume,
            args.plane,
            position=args.position,
            index=args.index,
            slab=args.slab,
            projection=args.projection,
            window=window,
        )
        out = write_png(image, args.out)
    letters = plane.letters()
    print(
        f"wrote {out} ({args.plane} {plane.columns}x{plane.rows} at {plane.spacing:.3f} mm, "
        f"left {letters['left']} right {letters['right']} top {letters['top']} "
        f"bottom {letters['bottom']})"
    )
    return 0
