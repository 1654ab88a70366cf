"""The ``hilum`` command line: headless commands plus ``gui``, ``demo`` and ``--self-test``.

Each package registers its own sub-commands through ``register(subparsers)`` in its
``commands`` module; the handlers import heavy libraries (onnxruntime, Qt) lazily so that
``hilum --version`` and ``hilum scan`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Sequence

from app import __version__
from app.core.errors import HilumError, UsageError
from app.core.startup import pause_gc, resume_gc

log = logging.getLogger(__name__)

#: modules that add sub-commands; a missing one (while a package is being built) is skipped
_COMMAND_MODULES = (
    "app.dicom.commands",
    "app.net.commands",
    "app.inference.commands",
    "app.saliency.commands",
    "app.reporting.commands",
    "app.reporting.annotation_commands",
    "app.workflow.commands",
    "app.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="hilum", description="Hilum clinical imaging workstation")
    parser.add_argument("--version", action="version", version=f"hilum {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="run the headless self-test (sample -> AI -> CAM -> draft -> PDF)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a package not built yet
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    if os.name == "posix":
        # everything Hilum writes may hold patient data: private whatever the user's umask
        # (the writers also set 0600/0700 themselves, see app.core.paths)
        os.umask(0o077)
    # the reading window's start-up heap is collected for nothing: the collector waits for the
    # first image (app.core.startup, app.gui.app); every other command has it back once parsed
    pause_gc()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except BaseException:
        resume_gc()
        raise
    if args.self_test or args.command not in (None, "gui"):
        resume_gc()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # pydicom warns (with a Python source line) about every out-of-range value it reads;
        # Hilum copies only valid values into its outputs, so these are noise on a terminal
        import warnings

        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
        warnings.filterwarnings(
            "ignore", message=r"(The value length|Invalid value for VR)", category=UserWarning
        )
    if args.self_test:
        from app.selftest import run_self_test

        return run_self_test()
    if args.command is None:
        args = parser.parse_args(["gui", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"hilum: {exc}", file=sys.stderr)
        return 2
    except HilumError as exc:
        print(f"hilum: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        resume_gc()  # the window never painted an image (or main() was called in a process)
