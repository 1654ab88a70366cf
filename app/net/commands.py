"""``hilum pacs ...``: nodes, echo, find, retrieve, listen and send."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from app.core.errors import UsageError


def register(sub: Any) -> None:
    """Add ``pacs`` and its sub-commands to the ``hilum`` sub-commands.

    Long because it declares every `hilum pacs` subcommand and option in one place.
    """
    p = sub.add_parser(
        "pacs",
        help="PACS: nodes, echo, find, retrieve, listen, send",
        description="Query, retrieve, receive and send over DIMSE and DICOMweb.",
    )
    ps = p.add_subparsers(dest="pacs_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    a = ps.add_parser("add", help="add (or replace) a PACS node")
    a.add_argument("name")
    a.add_argument("--host", default="")
    a.add_argument("--port", type=int, default=0)
    a.add_argument("--ae-title", default="")
    a.add_argument("--dicomweb", default="", metavar="URL", help="DICOMweb base URL")
    a.add_argument("--tls", action="store_true", help="use TLS for DIMSE")
    a.add_argument(
        "--tls-ca",
        default="",
        metavar="PEM",
        help="certificate (authority) to trust for TLS (implies --tls)",
    )
    a.set_defaults(func=_quietly(_add))

    ls = ps.add_parser("list", help="list the PACS nodes and Hilum's own AE title/port")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_quietly(_list))

    r = ps.add_parser("remove", help="forget a PACS node")
    r.add_argument("name")
    r.set_defaults(func=_quietly(_remove))

    c = ps.add_parser("config", help="Hilum's own AE title, listener port and network timeout")
    c.add_argument("--ae-title")
    c.add_argument("--port", type=int)
    c.add_argument("--timeout", type=float, metavar="S")
    c.add_argument(
        "--listen-in-gui",
        choices=("on", "off"),
        help="run the storage listener in the background while the GUI is open",
    )
    c.set_defaults(func=_quietly(_config))

    e = ps.add_parser("echo", help="C-ECHO (or a QIDO-RS ping for a DICOMweb-only node)")
    e.add_argument("name")
    e.add_argument("--web", action="store_true", help="ping the DICOMweb URL even if DIMSE is set")
    e.set_defaults(func=_quietly(_echo))

    f = ps.add_parser("find", help="query studies (C-FIND / QIDO-RS), or the series of one study")
    f.add_argument("name")
    f.add_argument("--patient-id", default="")
    f.add_argument("--patient-name", default="", help='e.g. "DOE*"')
    f.add_argument("--study-date", default="", help="YYYYMMDD or YYYYMMDD-YYYYMMDD")
    f.add_argument("--modality", default="")
    f.add_argument("--accession", default="")
    f.add_argument("--series", metavar="STUDY_UID", help="list the series of this study")
    f.add_argument("--web", action="store_true", help="use QIDO-RS even if DIMSE is set")
    f.add_argument(
        "--json", action="store_true", help="JSON shaped like `hilum scan --json` plus the node"
    )
    f.set_defaults(func=_quietly(_find))

    g = ps.add_parser("retrieve", help="retrieve a study (or series) into the study library")
    g.add_argument("name")
    g.add_argument("study_uid", metavar="STUDY_UID")
    g.add_argument("--series", nargs="+", default=[], metavar="UID")
    g.add_argument("--method", choices=("get", "move", "wado"), default="get")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=_quietly(_retrieve))

    li = ps.add_parser("listen", help="run the storage listener (C-STORE SCP) until Ctrl+C")
    li.add_argument("--port", type=int)
    li.add_argument("--ae-title")
    li.add_argument(
        "--count",
        type=int,
        default=0,
        metavar="N",
        help="stop after N instances (default: run until interrupted)",
    )
    li.add_argument("--seconds", type=float, default=0.0, help="stop after this long")
    li.set_defaults(func=_quietly(_listen))

    s = ps.add_parser("send", help="send DICOM files (C-STORE, or STOW-RS)")
    s.add_argument("name")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--web", action="store_true", help="use STOW-RS even if DIMSE is set")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_quietly(_send))


def _quietly(fn: Any) -> Any:
    """Run a handler with library chatter silenced (the CLI promises one-line reasons)."""

    def run(args: argparse.Namespace) -> int:
        import logging
        import warnings

        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            logging.getLogger("pydicom").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            if not logging.getLogger().isEnabledFor(logging.DEBUG):
                warnings.simplefilter("ignore")
            return int(fn(args) or 0)

    return run


def _store() -> Any:
    from app.net.nodes import NodeStore

    return NodeStore.load()


def _add(args: argparse.Namespace) -> int:
    from app.net.nodes import Node

    store = _store()
    node = store.add(
        Node(
            args.name,
            host=args.host,
            port=args.port,
            ae_title=args.ae_title,
            dicomweb=args.dicomweb,
            tls=args.tls,
            tls_ca=args.tls_ca,
        )
    )
    store.save()
    print(f"saved {node.describe()}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    store = _store()
    if args.json:
        print(
            json.dumps(
                {"local": asdict(store.local), "nodes": [asdict(n) for n in store.nodes.values()]},
                indent=2,
            )
        )
        return 0
    loc = store.local
    print(f"Hilum: AE title {loc.ae_title}, listener port {loc.port}, timeout {loc.timeout_s:g} s")
    if not store.nodes:
        print("no PACS nodes; add one with `hilum pacs add NAME --host H --port P --ae-title AE`")
    for node in store.nodes.values():
        print(node.describe())
    return 0


def _remove(args: argparse.Namespace) -> int:
    store = _store()
    store.remove(args.name)
    store.save()
    print(f"removed {args.name}")
    return 0


def _config(args: argparse.Namespace) -> int:
    store = _store()
    changes: dict[str, Any] = {}
    if args.ae_title is not None:
        changes["ae_title"] = args.ae_title.strip()
    if args.port is not None:
        changes["port"] = args.port
    if args.timeout is not None:
        changes["timeout_s"] = args.timeout
    if args.listen_in_gui is not None:
        changes["listen_in_gui"] = args.listen_in_gui == "on"
    if changes:
        store.set_local(**changes)
        store.save()
    loc = store.local
    print(
        f"Hilum: AE title {loc.ae_title}, listener port {loc.port}, timeout {loc.timeout_s:g} s, "
        f"listener in the GUI {'on' if loc.listen_in_gui else 'off'}"
    )
    return 0


def _echo(args: argparse.Namespace) -> int:
    from app.net import pacs

    node, local = pacs.load(args.name)
    ms = pacs.echo(node, local, web_only=args.web)
    kind = "QIDO-RS" if (args.web or not node.has_dimse) else "C-ECHO"
    print(f"{args.name}: {kind} OK in {ms:.1f} ms")
    return 0


def _find(args: argparse.Namespace) -> int:
    from app.net import pacs

    node, local = pacs.load(args.name)
    result = pacs.find(
        node,
        local,
        patient_id=args.patient_id,
        patient_name=args.patient_name,
        study_date=args.study_date,
        modality=args.modality,
        accession=args.accession,
        series_of=args.series,
        use_web=args.web,
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return 0
    for st in result.studies:
        print(
            f"Study {st.study_date or '(no date)'} {st.description}".rstrip()
            + f"  patient {st.patient_id or '?'}  {'/'.join(st.modalities)}  "
            f"{st.instances if st.instances is not None else '?'} instance(s)  {st.study_uid}"
        )
        for se in st.series:
            print(
                f"  {se.modality or '??':<3} {se.instances if se.instances is not None else '?':>5} "
                f"instance(s)  {se.description}  {se.series_uid}"
            )
    print(f"{len(result.studies)} stud(ies) on {args.name}")
    return 0


def _progress_printer(quiet: bool) -> Any:
    from app.core.progress import CallbackProgress

    interactive = not quiet and sys.stderr.isatty()

    def show(done: int, total: int | None, message: str) -> None:
        if interactive:
            print(f"\r{message}   ", end="", file=sys.stderr, flush=True)

    return CallbackProgress(show), interactive


def _interruptible(progress: Any) -> None:
    """Ctrl+C cancels the running transfer cleanly (the library stays consistent)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: progress.cancel())


def _retrieve(args: argparse.Namespace) -> int:
    from app.core.errors import Cancelled
    from app.net import pacs

    node, local = pacs.load(args.name)
    progress, interactive = _progress_printer(args.json)
    _interruptible(progress)
    try:
        rep = pacs.retrieve(
            node, local, args.study_uid, args.series, method=args.method, progress=progress
        )
    except Cancelled as exc:
        if interactive:
            print(file=sys.stderr)
        print(f"hilum: {exc}", file=sys.stderr)
        return 130
    if interactive:
        print(file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "node": args.name,
                    "method": rep.method,
                    "received": rep.received,
                    "added": rep.added,
                    "total": rep.total,
                    "failed": rep.failed,
                    "problems": rep.problems,
                    "elapsed_s": round(rep.elapsed_s, 3),
                },
                indent=2,
            )
        )
    else:
        for prob in rep.problems:
            print(f"hilum: {prob}", file=sys.stderr)
        print(
            f"retrieved {rep.received} instance(s) by {rep.method.upper()} "
            f"({rep.added} new in the library) in {rep.elapsed_s:.2f} s"
        )
    return 1 if rep.failed or (rep.total and rep.received < rep.total) else 0


def _listen(args: argparse.Namespace) -> int:
    import time
    from dataclasses import replace

    from app.net.dimse import Listener
    from app.net.filing import Filer
    from app.net.nodes import check_ae_title, check_port

    local = _store().local
    if args.port is not None:
        local = replace(local, port=check_port(args.port))
    if args.ae_title is not None:
        local = replace(local, ae_title=check_ae_title(args.ae_title))
    stop = threading.Event()

    def arrived(count: int) -> None:
        if args.count and count >= args.count:
            stop.set()

    filer = Filer(
        on_instance=arrived,
        on_series=lambda info: print(
            f"receiving series {info.get('modality') or '??'} "
            f"{info.get('description') or ''} "
            f"{info.get('series_uid')}",
            flush=True,
        ),
    )
    listener = Listener(local, filer=filer).start()
    print(f"listening as {local.ae_title} on port {local.port} (Ctrl+C to stop)", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    finally:
        listener.stop()
        rep = filer.close()
    print(f"received {rep.received} instance(s), {rep.added} new in the library", flush=True)
    return 0


def _send(args: argparse.Namespace) -> int:
    from app.net import pacs

    node, local = pacs.load(args.name)
    files = pacs.expand_files(args.paths)
    if not files:
        raise UsageError("No files to send.")
    progress, interactive = _progress_printer(args.json)
    items = pacs.send(node, local, files, use_web=args.web, progress=progress)
    if interactive:
        print(file=sys.stderr)
    return report_sent(args.name, items, as_json=args.json)


def report_sent(name: str, items: list[Any], as_json: bool = False) -> int:
    """Print per-file send outcomes; 1 if any file was refused."""
    if as_json:
        print(
            json.dumps(
                {
                    "node": name,
                    "files": [
                        {"path": i.path, "ok": i.ok, "message": i.message, "sop_uid": i.sop_uid}
                        for i in items
                    ],
                },
                indent=2,
            )
        )
    else:
        for i in items:
            if not i.ok:
                print(f"hilum: {i.path}: {i.message}", file=sys.stderr)
        ok = sum(1 for i in items if i.ok)
        print(f"sent {ok} of {len(items)} file(s) to {name}")
    return 0 if all(i.ok for i in items) else 1
