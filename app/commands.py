"""Application-level commands: ``hilum gui`` and ``hilum demo``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


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
    p.add_argument("--screenshot", metavar="PNG",
                   help="wait for the first painted image, save a grab of the window and exit")
    p.set_defaults(func=_gui)

    d = sub.add_parser("demo", help="run Hilum's main job on the bundled sample chest film")
    d.add_argument("--out", metavar="DIR", help="where headless outputs go (default: a folder in the user data dir)")
    d.add_argument("--headless", action="store_true", help="never open a window, even with a display")
    d.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    d.set_defaults(func=_demo)


def _gui(args: argparse.Namespace) -> int:
    from app.gui.app import run_gui

    return run_gui(list(args.paths), screenshot=args.screenshot)


def _demo(args: argparse.Namespace) -> int:
    from app.pipeline import run_demo

    return run_demo(out=args.out, headless=args.headless or not has_display(), device=args.device)
