"""``hilum draft``: stream a report draft to stdout."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.core.errors import UsageError


def register(subparsers: Any) -> None:
    """Add the ``draft`` sub-command.

    Long because it declares every `hilum draft` option in one place.
    """
    p = subparsers.add_parser(
        "draft",
        help="draft FINDINGS and IMPRESSION from coded findings",
        description="Stream an AI-generated report draft (requires review by a physician) to stdout.",
    )
    p.add_argument(
        "--findings",
        default="normal",
        help='coded findings separated by ";", e.g. "Cardiomegaly;Pleural Effusion" (default: normal)',
    )
    p.add_argument(
        "--negatives",
        default="",
        help='classifier labels found below threshold, stated as negatives, e.g. "pneumonia"',
    )
    p.add_argument(
        "--results",
        metavar="JSON",
        help="classifier results (results.json of `hilum analyze`) to condition on",
    )
    p.add_argument("--indication", default="")
    p.add_argument("--comparison", default="")
    p.add_argument("--notes", default="")
    p.add_argument("--age", default="", help="patient age (years or DICOM AS like 067Y)")
    p.add_argument("--sex", default="", help="M or F")
    p.add_argument("--view", default="", help="ViewPosition (PA, AP, LL) or 'PA and lateral'")
    p.add_argument("--backend", choices=["bundled", "openai"], default="bundled")
    p.add_argument(
        "--device",
        choices=["auto", "cuda", "cpu"],
        default="auto",
        help="bundled backend: where to run (auto tries CUDA, then the CPU)",
    )
    p.add_argument("--model-dir", help="bundled backend: another onnxruntime-genai folder")
    p.add_argument(
        "--url",
        help="openai backend: base URL, e.g. http://127.0.0.1:8000/v1 (or HILUM_OPENAI_URL)",
    )
    p.add_argument("--model", help="openai backend: model name (or HILUM_OPENAI_MODEL)")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="openai backend: seconds for the whole request (default 60)",
    )
    p.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="openai backend: allow plain http:// to a host other than this machine",
    )
    p.add_argument(
        "--show-prompt",
        action="store_true",
        help="openai backend: print the de-identified prompt that would be sent, send nothing",
    )
    p.add_argument(
        "--header",
        metavar="DICOM",
        help="the study's DICOM file: its identifiers are scrubbed from what is sent "
        "(default: the headers of --study, or of the --results study, in the library)",
    )
    p.add_argument(
        "--study",
        metavar="UID",
        help="the study in the library this draft is for (its headers are scrubbed)",
    )
    p.add_argument("--library", metavar="DB", help="library database (default: the user library)")
    p.add_argument(
        "--no-header",
        action="store_true",
        help="openai backend: send without a DICOM header (generic patterns only)",
    )
    p.add_argument(
        "--no-deidentify",
        action="store_true",
        help="openai backend: send indication/notes as typed (default: de-identified)",
    )
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument(
        "--no-guard",
        action="store_true",
        help="raw model output, without the findings-consistency guard",
    )
    p.add_argument("--provenance", metavar="FILE", help="also write the draft's provenance as JSON")
    p.add_argument(
        "--check",
        metavar="REPORT.txt",
        help="instead of drafting: compare a report's text with --results (the sign-off check)",
    )
    p.add_argument("--json", action="store_true", help="--check: print the comparison as JSON")
    p.set_defaults(func=run_draft)


def run_check(args: argparse.Namespace) -> int:
    """``hilum draft --check REPORT.txt --results results.json``: the sign-off comparison.

    Exit status 0 when the report agrees with every AI result within intended use, 3 when there
    are discrepancies to acknowledge or fix.
    """
    from dataclasses import asdict

    from app.reporting.signoff import compare, format_comparison, results_with_images

    if not args.results:
        raise UsageError("--check needs --results results.json")
    try:
        with open(args.check, encoding="utf-8") as fh:
            text = fh.read()
        with open(args.results, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {exc}") from exc
    pairs = results_with_images(doc)
    if not pairs:
        raise UsageError(f"no classifier results found in {args.results}")
    found = compare(text, pairs)
    skipped = sorted(
        {f"{r.model_id}: {r.reliability}" for r, _ in pairs if r.reliability.startswith("outside")}
    )
    if args.json:
        print(
            json.dumps(
                {"discrepancies": [asdict(d) for d in found], "not_compared": skipped}, indent=1
            )
        )
    else:
        print(format_comparison(found))
        for line in skipped:
            print(f"(not compared, {line})")
    return 3 if found else 0


def _load_results(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read results file {path}: {exc}") from exc


def _results(path: str, data: Any) -> list[Any]:
    from app.reporting.generator.conditioning import results_from_doc

    out = results_from_doc(data)
    if not out:
        raise UsageError(f"no classifier results found in {path}")
    return out


#: headers read per draft at most (one per series): enough for every identifier a study names
_MAX_HEADERS = 32


def _header_files(args: argparse.Namespace, doc: Any) -> list[str]:
    """The DICOM files whose headers name this draft's identifiers (none when unknown).

    ``--header`` wins; else the first instance of each series of ``--study`` (or of the study the
    ``--results`` document is about) in the library; else the source files ``results.json`` lists.
    """
    import os

    if args.header:
        return [args.header]
    images = (
        [im for im in (doc.get("images") or []) if isinstance(im, dict)]
        if isinstance(doc, dict)
        else []
    )
    studies = (
        [args.study]
        if args.study
        else list(dict.fromkeys(str(im.get("study_uid")) for im in images if im.get("study_uid")))
    )
    files: list[str] = []
    from app.core import paths

    db = args.library or paths.library_path()
    if studies and os.path.exists(db):
        from app.dicom.library import Library

        lib = Library(db)
        try:
            for uid in studies:
                seen: set[str] = set()
                for inst in lib.study_instances(uid):
                    if inst["series_uid"] not in seen and os.path.isfile(inst["path"]):
                        seen.add(inst["series_uid"])
                        files.append(inst["path"])
        finally:
            lib.close()
    if args.study and not files:
        raise UsageError(f"The study {args.study} is not in the library (or its files are gone).")
    if not files:  # results.json of files never scanned: their own headers
        files = list(
            dict.fromkeys(
                str(im["path"])
                for im in images
                if im.get("path") and os.path.isfile(str(im["path"]))
            )
        )
    return files[:_MAX_HEADERS]


def _header_identifiers(args: argparse.Namespace, doc: Any) -> tuple[frozenset[str], int]:
    """Identifiers from this draft's DICOM headers, and how many headers were read."""
    import pydicom

    from app.reporting.deid import identifiers_from_dataset

    out: set[str] = set()
    files = _header_files(args, doc)
    for f in files:
        try:
            out |= identifiers_from_dataset(pydicom.dcmread(f, stop_before_pixels=True))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a usage problem
            raise UsageError(f"cannot read the DICOM header {f} ({type(exc).__name__})") from exc
    return frozenset(out), len(files)


def run_draft(args: argparse.Namespace) -> int:
    """Handler of ``hilum draft``.

    Long because it resolves the header, the backend and the safety checks in the order the user's options require.
    """
    from app.core.types import LabelResult, ModelResult
    from app.reporting.generator import build_conditioning, draft

    if args.check:
        return run_check(args)
    if args.max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be positive")
    codes = [c.strip() for c in args.findings.split(";") if c.strip()]
    doc = _load_results(args.results) if args.results else None
    results = _results(args.results, doc) if args.results else []
    negs = [n.strip() for n in args.negatives.split(";") if n.strip()]
    if negs:
        results.append(
            ModelResult("cli", "", "", "", [LabelResult(n, 0.0, 0.5, False) for n in negs])
        )
    metadata = {"PatientAge": args.age, "PatientSex": args.sex}
    if args.view.lower().startswith("pa and"):
        metadata["view_text"] = "PA and lateral"
    else:
        metadata["ViewPosition"] = args.view
    cond = build_conditioning(
        results,
        metadata,
        args.indication,
        args.comparison,
        args.notes,
        findings=[c for c in codes if c.lower() != "normal"],
    )

    identifiers: frozenset[str] = frozenset()
    headers = 0
    remote = args.backend == "openai" and not args.no_deidentify
    if args.header or (remote and not args.no_header):  # the bundled model runs here: no need
        identifiers, headers = _header_identifiers(args, doc)
    if remote and not headers:
        # the header-aware scrub is the one that removes names, IDs and the hospital: say so
        # before anything leaves, and go on only when the user chose to
        line = (
            "no DICOM header is known for this draft: only generic patterns (dates, phone, "
            "e-mail, ID-like tokens, addresses) are scrubbed"
        )
        if args.no_header or args.show_prompt:
            print(f"hilum: warning: {line}.", file=sys.stderr)
        else:
            raise UsageError(
                f"{line}; give --header FILE or --study UID, or --no-header to send anyway."
            )

    def confirm(message: str) -> bool:
        if args.show_prompt:
            print(message.split("\n\n", 1)[-1])
            return False
        print(f"hilum: warning: {message}", file=sys.stderr)
        return True

    from app.core.errors import Cancelled

    stream = draft(
        cond,
        backend=args.backend,
        model_dir=args.model_dir,
        device=args.device,
        max_new_tokens=args.max_new_tokens,
        guard=not args.no_guard,
        url=args.url,
        model=args.model,
        timeout=args.timeout,
        deidentify=not args.no_deidentify,
        confirm_send=confirm,
        identifiers=identifiers,
        allow_insecure_http=args.allow_insecure_http,
    )
    try:
        for chunk in stream:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except Cancelled:
        if args.show_prompt:
            print("hilum: nothing was sent (--show-prompt).", file=sys.stderr)
            return 0
        raise
    sys.stdout.write("\n")
    if args.provenance:
        from app.core.paths import write_private

        write_private(args.provenance, json.dumps(stream.provenance, indent=1))
    return 0
