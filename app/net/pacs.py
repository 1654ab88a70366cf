"""The PACS operations the CLI and the GUI call: echo, find, retrieve, send, listen.

Each picks DIMSE or DICOMweb for the node (DIMSE when the node has a DIMSE address, DICOMweb
otherwise, or as asked) and returns typed results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from app.core import startup
from app.core.errors import Cancelled, UsageError
from app.core.progress import NullProgress, Progress
from app.dicom.library import Library
from app.net import dimse, web
from app.net.dimse import SendItem
from app.net.filing import Filer, FilingReport
from app.net.nodes import LocalSettings, Node, NodeStore

METHODS = ("get", "move", "wado")


# -- typed query results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesMatch:
    """One series found on a PACS (keys as in ``hilum scan --json``)."""

    series_uid: str
    modality: str = ""
    description: str = ""
    instances: int | None = None
    number: int | None = None
    body_part: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``hilum scan --json`` series keys (what a query cannot know is null)."""
        return {
            "series_uid": self.series_uid,
            "modality": self.modality,
            "description": self.description,
            "instances": self.instances,
            "frames": None,
            "rows": None,
            "columns": None,
            "transfer_syntaxes": [],
            "number": self.number,
        }


@dataclass(frozen=True)
class StudyMatch:
    """One study found on a PACS."""

    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    description: str = ""
    accession: str = ""
    modalities: tuple[str, ...] = ()
    instances: int | None = None
    series: tuple[SeriesMatch, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A ``hilum scan --json`` study (plus accession, modalities and instance count)."""
        return {
            "study_uid": self.study_uid,
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "study_date": self.study_date,
            "description": self.description,
            "series": [s.to_json() for s in self.series],
            "accession": self.accession,
            "modalities": list(self.modalities),
            "instances": self.instances,
        }


@dataclass(frozen=True)
class FindResult:
    """What ``hilum pacs find`` found."""

    node: str
    level: str
    studies: tuple[StudyMatch, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"node", "level", "studies": [...], "errors": []}`` (``hilum scan --json`` + node)."""
        return {
            "node": self.node,
            "level": self.level,
            "studies": [s.to_json() for s in self.studies],
            "errors": [],
        }


def _text(ds: Dataset, kw: str) -> str:
    value = ds.get(kw, "")
    if value is None:
        return ""
    if kw == "PatientName":
        return str(value)
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        return "\\".join(str(v) for v in value)
    return str(value)


def _int(ds: Dataset, kw: str) -> int | None:
    try:
        value = ds.get(kw, None)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _modalities(ds: Dataset) -> tuple[str, ...]:
    value = ds.get("ModalitiesInStudy", None)
    if not value:
        return ()
    return tuple(str(v) for v in ([value] if isinstance(value, str) else value) if str(v))


def _study(ds: Dataset, series: tuple[SeriesMatch, ...] = ()) -> StudyMatch:
    return StudyMatch(
        study_uid=_text(ds, "StudyInstanceUID"),
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        study_date=_text(ds, "StudyDate"),
        description=_text(ds, "StudyDescription"),
        accession=_text(ds, "AccessionNumber"),
        modalities=_modalities(ds),
        instances=_int(ds, "NumberOfStudyRelatedInstances"),
        series=series,
    )


def _series(ds: Dataset) -> SeriesMatch:
    return SeriesMatch(
        series_uid=_text(ds, "SeriesInstanceUID"),
        modality=_text(ds, "Modality"),
        description=_text(ds, "SeriesDescription"),
        instances=_int(ds, "NumberOfSeriesRelatedInstances"),
        number=_int(ds, "SeriesNumber"),
        body_part=_text(ds, "BodyPartExamined"),
    )


# -- helpers ---------------------------------------------------------------------------------------------
def load(name: str, store: NodeStore | None = None) -> tuple[Node, LocalSettings]:
    """The node called ``name`` and Hilum's own settings."""
    store = store or NodeStore.load()
    return store.get(name), store.local


def _use_web(node: Node, prefer_web: bool = False) -> bool:
    return bool(node.dicomweb) and (prefer_web or not node.has_dimse)


def check_date_range(text: str) -> str:
    """Validate a DICOM date or range (``20240101``, ``20240101-20241231``, ``-2024...``)."""
    import re

    if text and not re.match(r"^(\d{8})?-?(\d{8})?$", text):
        raise UsageError(f"--study-date must be YYYYMMDD or YYYYMMDD-YYYYMMDD, not {text!r}.")
    return text


# -- operations --------------------------------------------------------------------------------------------
def echo(node: Node, local: LocalSettings, web_only: bool = False) -> float:
    """C-ECHO (QIDO ping for a DICOMweb-only node); the round-trip in milliseconds."""
    if _use_web(node, web_only):
        return web.echo(node, local)
    return dimse.echo(node, local)


def find(
    node: Node,
    local: LocalSettings,
    *,
    patient_id: str = "",
    patient_name: str = "",
    study_date: str = "",
    modality: str = "",
    accession: str = "",
    series_of: str | None = None,
    use_web: bool = False,
    progress: Progress | None = None,
) -> FindResult:
    """Study-level query, or series level for ``series_of`` (a Study Instance UID)."""
    check_date_range(study_date)
    webq = _use_web(node, use_web)
    if series_of:
        filters = {"StudyInstanceUID": series_of, "Modality": modality}
        rows = (
            web.find(node, local, "SERIES", filters)
            if webq
            else dimse.find(node, local, "SERIES", filters, progress)
        )
        study_rows = (
            web.find(node, local, "STUDY", {"StudyInstanceUID": series_of})
            if webq
            else dimse.find(node, local, "STUDY", {"StudyInstanceUID": series_of})
        )
        series = tuple(
            sorted(
                (_series(r) for r in rows),
                key=lambda s: (s.number is None, s.number or 0, s.series_uid),
            )
        )
        base = study_rows[0] if study_rows else Dataset()
        if not study_rows:
            base.StudyInstanceUID = series_of
        studies: tuple[StudyMatch, ...] = (_study(base, series),) if rows or study_rows else ()
        return FindResult(node.name, "SERIES", studies)
    filters = {
        "PatientID": patient_id,
        "PatientName": patient_name,
        "StudyDate": study_date,
        "ModalitiesInStudy": modality,
        "AccessionNumber": accession,
    }
    rows = (
        web.find(node, local, "STUDY", filters)
        if webq
        else dimse.find(node, local, "STUDY", filters, progress)
    )
    studies = tuple(sorted((_study(r) for r in rows), key=lambda s: s.study_date, reverse=True))
    return FindResult(node.name, "STUDY", studies)


@dataclass
class RetrieveReport:
    """What a retrieve did.

    Attributes
    ----------
    method : str
        ``get``, ``move`` or ``wado``.
    received, added : int
        Instances received / new to the library (a re-retrieve adds none).
    total : int or None
        Instances the PACS said it would send.
    failed : int
        Sub-operations the PACS reported as failed.
    sop_uids : list of str
        SOP Instance UIDs received.
    problems : list of str
        Sentences about failed instances or files the library could not index.
    cancelled : bool
        True when the user cancelled (what arrived is in the library).
    elapsed_s, first_instance_s : float
        Wall time, and time to the first instance indexed.
    """

    method: str
    received: int = 0
    added: int = 0
    total: int | None = None
    failed: int = 0
    sop_uids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cancelled: bool = False
    elapsed_s: float = 0.0
    first_instance_s: float | None = None


def retrieve(
    node: Node,
    local: LocalSettings,
    study_uid: str,
    series_uids: Iterable[str] | None = None,
    method: str = "get",
    library: Library | None = None,
    progress: Progress | None = None,
    on_series: Callable[[dict[str, Any]], None] | None = None,
) -> RetrieveReport:
    """Retrieve a study (or some series) into the study library.

    Parameters
    ----------
    method : {"get", "move", "wado"}
        C-GET, C-MOVE to Hilum's listener (``local``), or WADO-RS.
    library : Library, optional
        Target library (default: the user library).
    progress : Progress, optional
        ``update(received, total, message)`` per instance; cancel aborts the transfer, keeps
        the complete instances received so far (indexed) and raises ``Cancelled``.
    on_series : callable, optional
        Called (from a background thread) with the library's series info plus ``first_path``
        as soon as the first instance of each series is indexed: the viewer shows it at once.
    """
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, not {method!r}.")
    startup.freeze_long_lived_heap()  # no full collections of it in the middle of transfers
    progress = progress or NullProgress()
    series = [s for s in (series_uids or []) if s]
    t0 = time.perf_counter()
    report = RetrieveReport(method)

    def first(info: dict[str, Any]) -> None:
        if report.first_instance_s is None:
            report.first_instance_s = time.perf_counter() - t0
        if on_series is not None:
            on_series(info)

    # write-behind: the network thread answers the PACS without waiting for the disk (the
    # PACS keeps its copy; a file that cannot be written is reported in ``problems``)
    filer = Filer(library, on_series=first, write_behind=True)
    outcome = None
    try:
        if method == "get":
            outcome = dimse.get(node, local, study_uid, series, filer, progress)
        elif method == "move":
            outcome = dimse.move(node, local, study_uid, series, filer, progress)
        else:
            outcome = web.retrieve(node, local, study_uid, series, filer, progress)
    except Cancelled:
        report.cancelled = True
        raise
    finally:
        frep: FilingReport = filer.close()  # complete files stay and are indexed, also on cancel
        report.received, report.added = frep.received, frep.added
        report.sop_uids = list(frep.sop_uids)
        report.problems += [f"{e['path']}: {e['error']}" for e in frep.errors]
        report.elapsed_s = time.perf_counter() - t0
        if outcome is not None:
            report.total, report.failed = outcome.total, outcome.failed
            report.problems += outcome.problems
            if method == "move" and not report.received and outcome.completed:
                # a listener already running in this process (the GUI's) filed them
                report.received = outcome.completed
    progress.update(
        report.received, report.total or report.received, f"Received {report.received} instance(s)"
    )
    return report


def send(
    node: Node,
    local: LocalSettings,
    files: list[str],
    use_web: bool = False,
    progress: Progress | None = None,
) -> list[SendItem]:
    """Send files by C-STORE (STOW-RS for a DICOMweb-only node or when asked)."""
    if _use_web(node, use_web):
        return web.send(node, local, files, progress)
    return dimse.send(node, local, files, progress)


def expand_files(paths_in: Iterable[str]) -> list[str]:
    """Files given, plus the files inside folders (recursively, sorted)."""
    import os

    out: list[str] = []
    for p in paths_in:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                out += [os.path.join(root, n) for n in sorted(names) if not n.startswith(".")]
        else:
            out.append(p)
    return out
