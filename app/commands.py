"""Application-level commands: ``hilum gui`` and ``hilum demo``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO


def has_display() -> bool:
    """True when a window can be shown (a desktop session, or a Qt platform that is not offscreen)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform in ("offscreen", "minimal"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def register(sub: Any) -> None:
    """Add ``gui`` and ``demo`` to the ``hilum`` sub-commands."""
    p = sub.add_parser("gui", help="open the reading window (optionally loading files/folders)")
    p.add_argument("paths", nargs="*", help="DICOM files, folders, zips or DICOMDIRs to load")
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="wait for the first painted image, save a grab of the window and exit",
    )
    p.set_defaults(func=_gui)

    d = sub.add_parser("demo", help="run Hilum's main job on the bundled sample chest film")
    d.add_argument(
        "--out",
        metavar="DIR",
        help="where headless outputs go (default: a folder in the user data dir)",
    )
    d.add_argument(
        "--headless", action="store_true", help="never open a window, even with a display"
    )
    d.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    d.add_argument(
        "--screenshot",
        metavar="PNG",
        help="with a display: save a grab of the window once the demo has finished, and exit",
    )
    d.set_defaults(func=_demo)


def _gui(args: argparse.Namespace) -> int:
    if args.paths:  # the first image needs pydicom and OpenCV: loaded before Qt (see there)
        from app.gui.loader import load_pixel_pipeline, start_early_preview

        load_pixel_pipeline()
        # ... and is read and decoded while Qt, pyqtgraph and the window load
        start_early_preview([os.fspath(p) for p in args.paths])
    from app.gui.app import run_gui

    return run_gui(list(args.paths), screenshot=args.screenshot)


def _demo(args: argparse.Namespace) -> int:
    return run_demo(
        out=args.out,
        headless=args.headless or not has_display(),
        device=args.device,
        screenshot=args.screenshot,
    )


def run_demo(
    out: str | None = None,
    headless: bool = True,
    device: str = "auto",
    stdout: TextIO | None = None,
    screenshot: str | None = None,
) -> int:
    """``hilum demo``: Hilum's main job on the bundled sample chest film.

    With a display it opens the reading window on the sample and runs the whole job there
    (:mod:`app.gui.demo`: classifier result in the AI panel, saliency overlay on the image, the
    draft in the Report panel, the export and where it went); without one (or with
    ``headless``) it scans, analyses (classifier + CAM), drafts and exports the report through
    the study session's batch loop (:func:`app.workflow.batch.analyze`), and prints where the
    outputs are.
    """
    import json
    from pathlib import Path

    from app.core import paths
    from app.core.errors import HilumError

    stdout = stdout or sys.stdout
    sample = paths.sample_path()
    target = Path(out) if out else paths.data_dir() / "demo"
    if not headless:
        from app.gui.app import run_gui

        return run_gui([str(sample)], screenshot=screenshot, demo_out=target, device=device)
    from app.dicom.library import Library
    from app.workflow.batch import analyze
    from app.inference.manifest import DEMONSTRATION_WORDS

    report = Library().scan([str(sample)])
    n_series = sum(len(s["series"]) for s in report.studies)
    print(
        f"scanned the sample: {len(report.studies)} study, {n_series} series "
        f"({len(report.errors)} error(s)) into {paths.library_path()}",
        file=stdout,
    )
    try:
        doc = analyze(
            [str(sample)],
            target,
            device=device,
            saliency="cam",
            draft=True,
            pdf=True,
            dicom_export=True,
            log_step=lambda line: print(line, file=stdout, flush=True),
        )
    except HilumError as exc:
        print(f"hilum demo: {exc}", file=sys.stderr)
        return 1
    for image in doc["images"]:
        for rec in image["results"]:
            for label, lab in rec["labels"].items():
                flag = "POSITIVE" if lab["positive"] else "negative"
                print(
                    f"{rec['model_id']} {label}: p={lab['probability']:.3f} "
                    f"(threshold {lab['threshold']:.2f}) {flag} on {rec['provider']}",
                    file=stdout,
                )
            if str(rec.get("reliability", "")).startswith("outside"):
                print(f"  ! {rec['model_id']}: {rec['reliability']}", file=stdout)
            if rec.get("demonstration"):
                print(f"  ! {rec['model_id']}: {DEMONSTRATION_WORDS}", file=stdout)
    print(
        f"outputs in {target}: results.json, saliency/, draft.txt, report.pdf, dicom/", file=stdout
    )
    print(json.dumps({"out": str(target), "files": doc["outputs"]}), file=stdout)
    return 0
