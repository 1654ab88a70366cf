"""The study library: an SQLite index of Patient > Study > Series > Instance, and its scanner.

Files are referenced in place (members of zip archives are extracted once into the cache folder,
because their pixels are needed later). Scanning reads headers only (pydicom with
``stop_before_pixels``), deduplicates by SOP Instance UID and is idempotent: a file whose size
and modification time are unchanged is not read again.

Thread safety: every thread gets its own SQLite connection (the library may be used from the
GUI thread and from worker threads at once); writes are serialised by a lock, and the database
runs in WAL mode so readers never wait for a scan.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, cast

from pydicom.dataset import Dataset

from app.core import paths
from app.core.errors import Cancelled, DicomError, DicomReadError, HilumError
from app.core.progress import NullProgress, Progress
from app.dicom import containment
from app.dicom.geometry import orientation_key, slice_distance
from app.dicom.reading import (
    PixelInfo,
    RawHeader,
    fast_header,
    file_kind,
    is_dicomdir,
    raw_floats,
    raw_int,
    raw_text,
    read_header,
    safe_get,
    safe_int,
    safe_str,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY, patient_id TEXT, patient_name TEXT, patient_birth_date TEXT,
    patient_sex TEXT, study_date TEXT, study_time TEXT, description TEXT, accession TEXT,
    added REAL);
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL, modality TEXT, description TEXT,
    number INTEGER, body_part TEXT, added REAL);
CREATE INDEX IF NOT EXISTS series_study ON series(study_uid);
CREATE TABLE IF NOT EXISTS instances (
    sop_uid TEXT PRIMARY KEY, series_uid TEXT NOT NULL, study_uid TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE, source TEXT, size INTEGER, mtime REAL, sop_class TEXT,
    instance_number INTEGER, frames INTEGER, rows INTEGER, columns INTEGER,
    transfer_syntax TEXT, photometric TEXT, position TEXT, orientation TEXT,
    pixel_spacing TEXT, slice_location REAL, pixel_offset INTEGER, added REAL);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series_uid);
CREATE INDEX IF NOT EXISTS instances_study ON instances(study_uid);
CREATE TABLE IF NOT EXISTS rejected (
    path TEXT PRIMARY KEY, size INTEGER, mtime REAL, sop_uid TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS results (
    study_uid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated REAL,
    PRIMARY KEY (study_uid, key));
"""

#: measurements, key images and reading views bound to one image (app.dicom.measurements)
_ANNOTATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    id TEXT PRIMARY KEY, study_uid TEXT NOT NULL, kind TEXT NOT NULL, series_uid TEXT,
    sop_uid TEXT, frame INTEGER, plane TEXT, data TEXT NOT NULL, updated REAL)
"""

#: keys of a series in ``hilum scan --json`` (and in :meth:`Library.studies`)
SERIES_KEYS = (
    "series_uid",
    "modality",
    "description",
    "instances",
    "frames",
    "rows",
    "columns",
    "transfer_syntaxes",
)
#: keys of a study in ``hilum scan --json``
STUDY_KEYS = ("study_uid", "patient_id", "patient_name", "study_date", "description", "series")

SeriesCallback = Callable[[dict[str, Any]], None]


class LibraryError(HilumError):
    """The study library database cannot be opened or written (permissions, disk full)."""


#: the elements the scanner reads (the rest of a header is skipped, which is much faster)
_STUDY_KW = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
)
_SERIES_KW = ("Modality", "SeriesDescription", "SeriesNumber", "BodyPartExamined")
_INSTANCE_KW = (
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "PhotometricInterpretation",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceLocation",
    "SpecificCharacterSet",
)


def _scan_tags() -> list[int]:
    from pydicom.datadict import tag_for_keyword

    out = []
    for kw in (*_STUDY_KW, *_SERIES_KW, *_INSTANCE_KW):
        tag = tag_for_keyword(kw)
        if tag is not None:
            out.append(int(tag))
    return out


@functools.cache
def scan_tag_set() -> frozenset[int]:
    """The top-level elements the library indexes: what a header given to :meth:`Library.scan`
    (``headers``, read with :func:`~app.dicom.reading.fast_header_of`) must keep."""
    return frozenset(_scan_tags())


@dataclass
class ScanReport:
    """What one :meth:`Library.scan` did.

    Attributes
    ----------
    studies : list of dict
        The studies the scanned files belong to, shaped as in ``hilum scan --json``.
    errors : list of dict
        ``{"path", "error"}`` per file that could not be indexed (one sentence each).
    files : int
        Files examined (DICOMDIRs and archive members included).
    added : int
        Instances newly indexed.
    unchanged : int
        Files skipped because they were indexed before and have not changed.
    duplicates : int
        Identical copies of instances already indexed.
    elapsed_s : float
        Wall time of the scan.
    """

    studies: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    files: int = 0
    added: int = 0
    unchanged: int = 0
    duplicates: int = 0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``hilum scan --json`` document."""
        return {"studies": self.studies, "errors": self.errors}


@dataclass
class _Candidate:
    path: str  # file on disk
    label: str  # what the user knows it as (archive!member for zip members)
    dicomdir_ok: bool = True


#: files operating systems leave in folders and archives: not user files, skipped silently
_CLUTTER = {".ds_store", "thumbs.db", "desktop.ini", ".directory"}


def _is_os_clutter(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    base = parts[-1]
    return base.lower() in _CLUTTER or base.startswith("._") or "__MACOSX" in parts


def _norm(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.fspath(path))


def _json_or_none(value: list[float] | None) -> str | None:
    # json.dumps of finite floats (what raw_floats gives), without the encoder's per-call set-up
    return "[" + ", ".join(map(float.__repr__, value)) + "]" if value is not None else None


def _loads(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


class Library:
    """The study library (SQLite).

    Parameters
    ----------
    path : str or Path, optional
        Database file; default :func:`app.core.paths.library_path`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else paths.library_path()
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        try:
            _make_private_db(self.path)
            self._init_schema()
            _make_private_db(self.path)  # -wal/-shm now exist too
        except (sqlite3.Error, OSError) as exc:
            raise LibraryError(
                f"The study library {self.path} cannot be opened ({exc}).", str(self.path)
            ) from None

    def _init_schema(self) -> None:
        conn = self._conn()
        try:  # an existing library: no write at all (a scan may be writing in another thread)
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            current = row is not None and row[0] == str(SCHEMA_VERSION)
        except sqlite3.DatabaseError:
            current = False
        if not current:
            with self._write_lock:
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)",
                    (str(SCHEMA_VERSION),),
                )
                conn.commit()

    # -- connections -----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections must not cross threads)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), timeout=30.0)
            conn.row_factory = sqlite3.Row
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError:
                pass
            self._local.conn = conn
            with self._conn_lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._conn_lock:
                if conn in self._connections:
                    self._connections.remove(conn)

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------------------
    def _series_summary(self, series_uid: str) -> dict[str, Any] | None:
        conn = self._conn()
        row = conn.execute("SELECT * FROM series WHERE series_uid=?", (series_uid,)).fetchone()
        if row is None:
            return None
        inst = conn.execute(
            "SELECT frames, rows, columns, transfer_syntax FROM instances WHERE series_uid=?",
            (series_uid,),
        ).fetchall()
        sizes = Counter((r["rows"], r["columns"]) for r in inst)
        rows, cols = sizes.most_common(1)[0][0] if sizes else (None, None)
        return {
            "series_uid": row["series_uid"],
            "modality": row["modality"] or "",
            "description": row["description"] or "",
            "instances": len(inst),
            "frames": int(sum(r["frames"] or 0 for r in inst)),
            "rows": rows,
            "columns": cols,
            "transfer_syntaxes": sorted(
                {r["transfer_syntax"] for r in inst if r["transfer_syntax"]}
            ),
        }

    def series(self, study_uid: str) -> list[dict[str, Any]]:
        """The series of a study (``hilum scan --json`` shape), by series number."""
        conn = self._conn()
        rows = conn.execute(
            "SELECT series_uid FROM series WHERE study_uid=? ORDER BY number IS NULL, number, "
            "added, series_uid",
            (study_uid,),
        ).fetchall()
        out = []
        for r in rows:
            s = self._series_summary(r["series_uid"])
            if s is not None and s["instances"] > 0:
                out.append(s)
        return out

    def study(self, study_uid: str) -> dict[str, Any] | None:
        """One study with its series (``hilum scan --json`` shape), or None if unknown."""
        row = (
            self._conn().execute("SELECT * FROM studies WHERE study_uid=?", (study_uid,)).fetchone()
        )
        if row is None:
            return None
        return {
            "study_uid": row["study_uid"],
            "patient_id": row["patient_id"] or "",
            "patient_name": row["patient_name"] or "",
            "study_date": row["study_date"] or "",
            "description": row["description"] or "",
            "series": self.series(study_uid),
        }

    def studies(self) -> list[dict[str, Any]]:
        """Every study in the library with its series, newest study date first."""
        rows = (
            self._conn()
            .execute(
                "SELECT study_uid FROM studies ORDER BY study_date DESC, study_time DESC, added"
            )
            .fetchall()
        )
        out = []
        for r in rows:
            s = self.study(r["study_uid"])
            if s is not None and s["series"]:
                out.append(s)
        return out

    def patients(self) -> list[dict[str, Any]]:
        """Studies grouped by patient: ``[{"patient_id", "patient_name", "studies": [...]}]``."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for s in self.studies():
            groups.setdefault((s["patient_id"], s["patient_name"]), []).append(s)
        return [
            {"patient_id": pid, "patient_name": name, "studies": studies}
            for (pid, name), studies in groups.items()
        ]

    def study_info(self, study_uid: str) -> dict[str, Any] | None:
        """All stored study attributes (patient sex/birth date, accession, time ...)."""
        row = (
            self._conn().execute("SELECT * FROM studies WHERE study_uid=?", (study_uid,)).fetchone()
        )
        return dict(row) if row is not None else None

    def series_info(self, series_uid: str) -> dict[str, Any] | None:
        """A series summary plus ``study_uid``, ``number`` and ``body_part``."""
        summary = self._series_summary(series_uid)
        if summary is None:
            return None
        row = (
            self._conn()
            .execute(
                "SELECT study_uid, number, body_part FROM series WHERE series_uid=?", (series_uid,)
            )
            .fetchone()
        )
        summary.update(
            study_uid=row["study_uid"], number=row["number"], body_part=row["body_part"] or ""
        )
        return summary

    @staticmethod
    def _instance_dict(r: sqlite3.Row) -> dict[str, Any]:
        return {
            "sop_uid": r["sop_uid"],
            "series_uid": r["series_uid"],
            "study_uid": r["study_uid"],
            "path": r["path"],
            "source": r["source"],
            "sop_class": r["sop_class"] or "",
            "instance_number": r["instance_number"],
            "frames": r["frames"] or 0,
            "rows": r["rows"],
            "columns": r["columns"],
            "transfer_syntax": r["transfer_syntax"] or "",
            "photometric": r["photometric"] or "",
            "position": _loads(r["position"]),
            "orientation": _loads(r["orientation"]),
            "pixel_spacing": _loads(r["pixel_spacing"]),
            "slice_location": r["slice_location"],
        }

    def instances(self, series_uid: str) -> list[dict[str, Any]]:
        """The instances of a series, sorted along the slice normal (else by InstanceNumber).

        Each is a dict: ``sop_uid, series_uid, study_uid, path, source, sop_class,
        instance_number, frames, rows, columns, transfer_syntax, photometric, position,
        orientation, pixel_spacing, slice_location``.
        """
        rows = (
            self._conn()
            .execute("SELECT * FROM instances WHERE series_uid=?", (series_uid,))
            .fetchall()
        )
        items = [self._instance_dict(r) for r in rows]
        return sort_instances(items)

    def instance(self, sop_uid: str) -> dict[str, Any] | None:
        """One instance by SOP Instance UID."""
        r = self._conn().execute("SELECT * FROM instances WHERE sop_uid=?", (sop_uid,)).fetchone()
        return self._instance_dict(r) if r is not None else None

    def study_instances(self, study_uid: str) -> list[dict[str, Any]]:
        """Every instance of a study, series by series."""
        out: list[dict[str, Any]] = []
        for s in self.series(study_uid):
            out.extend(self.instances(s["series_uid"]))
        return out

    def counts(self) -> dict[str, int]:
        """Numbers of patients, studies, series and instances in the library."""
        conn = self._conn()
        return {
            "patients": conn.execute(
                "SELECT COUNT(DISTINCT patient_id) FROM studies "
                "WHERE study_uid IN (SELECT study_uid FROM instances)"
            ).fetchone()[0],
            "studies": conn.execute("SELECT COUNT(DISTINCT study_uid) FROM instances").fetchone()[
                0
            ],
            "series": conn.execute("SELECT COUNT(DISTINCT series_uid) FROM instances").fetchone()[
                0
            ],
            "instances": conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0],
        }

    # -- results stored with a study -------------------------------------------------------------
    def store_result(self, study_uid: str, key: str, value: dict[str, Any]) -> None:
        """Store a JSON document (AI results, a report draft) with a study, replacing ``key``."""
        text = json.dumps(value)
        with self._write_lock:
            conn = self._conn()
            conn.execute(
                "INSERT OR REPLACE INTO results(study_uid, key, value, updated) VALUES (?,?,?,?)",
                (study_uid, key, text, time.time()),
            )
            conn.commit()

    def results(self, study_uid: str) -> dict[str, Any]:
        """Every stored document of a study: ``{key: value}``."""
        rows = (
            self._conn()
            .execute("SELECT key, value FROM results WHERE study_uid=? ORDER BY key", (study_uid,))
            .fetchall()
        )
        return {r["key"]: json.loads(r["value"]) for r in rows}

    def result(self, study_uid: str, key: str) -> dict[str, Any] | None:
        """One stored document, or None."""
        row = (
            self._conn()
            .execute("SELECT value FROM results WHERE study_uid=? AND key=?", (study_uid, key))
            .fetchone()
        )
        return json.loads(row["value"]) if row is not None else None

    # -- typed documents (callers never spell the keys) ------------------------------------------
    _RUN_PREFIX = "ai:"
    _DRAFT_KEY = "draft"
    _SIGNED_KEY = "report:signed_off"

    def store_run(self, study_uid: str, series_uid: str, run: Any) -> None:
        """Store an :class:`~app.core.types.AnalysisRun` of one series with its study."""
        self.store_result(study_uid, self._RUN_PREFIX + series_uid, run.to_json())

    def runs(self, study_uid: str) -> dict[str, Any]:
        """The stored :class:`~app.core.types.AnalysisRun` of each series of a study
        (documents that do not parse are logged and left out)."""
        from app.core.errors import ResultsFormatError
        from app.core.types import AnalysisRun

        out: dict[str, Any] = {}
        for key, doc in self.results(study_uid).items():
            if key.startswith(self._RUN_PREFIX):
                try:
                    out[key[len(self._RUN_PREFIX) :]] = AnalysisRun.from_json(doc)
                except ResultsFormatError:
                    log.warning("a stored analysis run could not be read; left out")
        return out

    def store_draft(self, draft: Any) -> None:
        """Store a :class:`~app.core.types.ReportDraft` with its study (replaces the last one)."""
        self.store_result(draft.study_uid, self._DRAFT_KEY, draft.to_dict())

    def store_signed_report(self, draft: Any) -> None:
        """Keep an exported, signed-off :class:`~app.core.types.ReportDraft` with its study."""
        self.store_result(draft.study_uid, self._SIGNED_KEY, draft.to_dict())

    def signed_report(self, study_uid: str) -> Any:
        """The last signed-off :class:`~app.core.types.ReportDraft` of a study, or None."""
        from app.core.types import ReportDraft

        doc = self.result(study_uid, self._SIGNED_KEY)
        return ReportDraft.from_dict(doc) if doc is not None else None

    def stored_draft(self, study_uid: str) -> Any:
        """The stored :class:`~app.core.types.ReportDraft` of a study, or None."""
        from app.core.errors import HilumError
        from app.core.types import ReportDraft

        doc = self.result(study_uid, self._DRAFT_KEY)
        if doc is None:
            return None
        try:
            return ReportDraft.from_dict(doc)
        except (HilumError, TypeError):
            log.warning("the stored report draft could not be read")
            return None

    def delete_result(self, study_uid: str, key: str) -> None:
        """Remove a stored document."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("DELETE FROM results WHERE study_uid=? AND key=?", (study_uid, key))
            conn.commit()

    # -- annotations (measurements, key images, reading views; app.dicom.measurements) ----------
    def _annotations_table(self, conn: sqlite3.Connection) -> None:
        # created on first use so that the library's schema version stays as it is
        if getattr(self._local, "annotations_ok", False):
            return
        with self._write_lock:
            conn.execute(_ANNOTATIONS_SCHEMA)
            conn.execute("CREATE INDEX IF NOT EXISTS annotations_study ON annotations(study_uid)")
            conn.commit()
        self._local.annotations_ok = True

    def save_annotation(
        self, annotation_id: str, kind: str, image: dict[str, Any], data: dict[str, Any]
    ) -> None:
        """Store (or replace) one annotation bound to an image.

        Parameters
        ----------
        annotation_id : str
        kind : str
            "measurement", "key_image" or "view".
        image : dict
            ``study_uid``, ``series_uid``, ``sop_uid``, ``frame``, ``plane`` (see
            :class:`app.dicom.measurements.ImageRef`).
        data : dict
            The annotation itself (JSON).
        """
        conn = self._conn()
        self._annotations_table(conn)
        with self._write_lock:
            conn.execute(
                "INSERT OR REPLACE INTO annotations(id, study_uid, kind, series_uid, sop_uid, "
                "frame, plane, data, updated) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    annotation_id,
                    image["study_uid"],
                    kind,
                    image.get("series_uid", ""),
                    image.get("sop_uid", ""),
                    int(image.get("frame", 0)),
                    image.get("plane", ""),
                    json.dumps(data),
                    time.time(),
                ),
            )
            conn.commit()

    def annotations(self, study_uid: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The annotations of a study (oldest first): dicts with the image keys, ``id``,
        ``kind`` and ``data``."""
        conn = self._conn()
        self._annotations_table(conn)
        sql = "SELECT * FROM annotations WHERE study_uid=?"
        args: tuple[Any, ...] = (study_uid,)
        if kind is not None:
            sql += " AND kind=?"
            args += (kind,)
        out = []
        for r in conn.execute(sql + " ORDER BY rowid", args).fetchall():
            try:
                data = json.loads(r["data"])
            except ValueError:
                continue
            out.append(
                {
                    "id": r["id"],
                    "kind": r["kind"],
                    "study_uid": r["study_uid"],
                    "series_uid": r["series_uid"],
                    "sop_uid": r["sop_uid"],
                    "frame": r["frame"],
                    "plane": r["plane"],
                    "data": data,
                }
            )
        return out

    def delete_annotation(self, annotation_id: str) -> None:
        """Remove one annotation."""
        conn = self._conn()
        self._annotations_table(conn)
        with self._write_lock:
            conn.execute("DELETE FROM annotations WHERE id=?", (annotation_id,))
            conn.commit()

    def remove_study(self, study_uid: str) -> None:
        """Forget a study (its files are not touched)."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("DELETE FROM instances WHERE study_uid=?", (study_uid,))
            conn.execute("DELETE FROM series WHERE study_uid=?", (study_uid,))
            conn.execute("DELETE FROM studies WHERE study_uid=?", (study_uid,))
            conn.execute("DELETE FROM results WHERE study_uid=?", (study_uid,))
            conn.commit()

    # -- scanning --------------------------------------------------------------------------------
    def scan(
        self,
        paths_in: Iterable[str | os.PathLike[str]],
        progress: Progress | None = None,
        on_series: SeriesCallback | None = None,
        headers: dict[str, tuple[RawHeader, PixelInfo]] | None = None,
    ) -> ScanReport:
        """Index files, folders (recursively), zip archives and DICOMDIRs.

        Parameters
        ----------
        paths_in : iterable of path
            What to scan.
        progress : Progress, optional
            Gets ``update(done, total, message)`` per file; ``check()`` is called per file, so
            a cancel stops the scan (what was indexed so far stays) by raising ``Cancelled``.
        on_series : callable, optional
            Called as ``on_series(info)`` (from the scanning thread) as soon as the first
            instance of each series touched by this scan is committed, so a viewer can show it
            before the scan ends. ``info`` is :meth:`series_info` plus ``first_path``
            (the file just indexed) and ``first_sop_uid``.
        headers : dict, optional
            Headers of some of the files, already read by whoever just wrote them
            (:func:`~app.dicom.reading.fast_header_of` with :func:`scan_tag_set`), by path: those
            files are not read again.

        Returns
        -------
        ScanReport
        """
        try:
            return _Scanner(self, progress or NullProgress(), on_series, headers).run(
                list(paths_in)
            )
        except sqlite3.Error as exc:
            raise LibraryError(
                f"The study library {self.path} could not be updated ({exc}).", str(self.path)
            ) from None

    def prune(self) -> int:
        """Forget instances whose files are gone (moved or deleted); return how many."""
        rows = self._conn().execute("SELECT path FROM instances").fetchall()
        gone = [r["path"] for r in rows if not os.path.isfile(r["path"])]
        with self._write_lock:
            conn = self._conn()
            conn.executemany("DELETE FROM instances WHERE path=?", [(p,) for p in gone])
            conn.execute(
                "DELETE FROM series WHERE series_uid NOT IN "
                "(SELECT DISTINCT series_uid FROM instances)"
            )
            conn.execute(
                "DELETE FROM studies WHERE study_uid NOT IN "
                "(SELECT DISTINCT study_uid FROM instances)"
            )
            conn.commit()
        return len(gone)


def sort_instances(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sort instance dicts along the slice normal; InstanceNumber (then path) breaks ties.

    Instances in different orientations are kept in groups (largest group first) so that a
    localiser does not land between axial slices.
    """
    groups: dict[tuple[float, ...], list[dict[str, Any]]] = {}
    for it in items:
        groups.setdefault(orientation_key(it.get("orientation")), []).append(it)
    ordered_groups = sorted(groups.values(), key=lambda g: -len(g))
    out: list[dict[str, Any]] = []
    for g in ordered_groups:

        def key(it: dict[str, Any]) -> tuple[int, float, int, str]:
            d = slice_distance(it.get("position"), it.get("orientation"))
            n = it.get("instance_number")
            return (
                0 if d is not None else 1,
                d if d is not None else 0.0,
                n if isinstance(n, int) else 1 << 30,
                str(it.get("path")),
            )

        if all(slice_distance(it.get("position"), it.get("orientation")) is not None for it in g):
            out.extend(sorted(g, key=key))
        else:
            out.extend(
                sorted(
                    g,
                    key=lambda it: (
                        it.get("instance_number")
                        if isinstance(it.get("instance_number"), int)
                        else 1 << 30,
                        str(it.get("path")),
                    ),
                )
            )
    return out


#: environment setting: bytes the zip extraction cache may keep between scans (default 4 GiB)
ENV_ARCHIVE_CACHE = "HILUM_ARCHIVE_CACHE_BYTES"


def archive_cache_budget() -> int:
    """Bytes of extracted archive members kept after a scan (``HILUM_ARCHIVE_CACHE_BYTES``)."""
    try:
        return max(0, int(os.environ.get(ENV_ARCHIVE_CACHE, "") or (4 << 30)))
    except ValueError:
        return 4 << 30


def pixel_budget_problem(path: str, ds: Dataset | RawHeader, info: PixelInfo) -> str | None:
    """Why an image would be refused by the pixel budget (header or codec stream), or None."""
    from app.dicom.budget import PixelBudgetError, check_file

    try:
        check_file(path, ds, info)
    except PixelBudgetError as exc:
        return exc.message
    return None


def _make_private_db(path: Path) -> None:
    """The library holds patient data: its folder 0700, the database and its -wal/-shm 0600
    (SQLite creates the journal files with the database file's mode)."""
    paths.private_dir(path.parent)
    if not path.exists():
        paths.open_private(path, "ab").close()  # an empty file is a valid SQLite database
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            paths.private_file(p)


# ------------------------------------------------------------------------------------------------
class _Scanner:
    """One scan run (kept out of Library to keep its state per call)."""

    def __init__(
        self,
        lib: Library,
        progress: Progress,
        on_series: SeriesCallback | None,
        headers: dict[str, tuple[RawHeader, PixelInfo]] | None = None,
    ) -> None:
        self.lib = lib
        self.progress = progress
        self.on_series = on_series
        self.headers = {_norm(p): h for p, h in (headers or {}).items()}
        self.report = ScanReport()
        self.seen_paths: set[str] = set()
        self.touched_studies: list[str] = []
        self.touched_series: set[str] = set()
        self.queue: list[_Candidate] = []
        self.last_commit = time.monotonic()
        self.known_studies: set[str] = set()
        self.known_series: set[str] = set()
        self.tags = _scan_tags()
        self.tag_set = scan_tag_set()
        self.limits = containment.ArchiveLimits()
        self.archive_dirs: list[Path] = []

    # -- discovery -------------------------------------------------------------------------------
    def error(self, label: str, message: str) -> None:
        self.report.errors.append({"path": label, "error": message})

    def add_candidate(self, path: str, label: str | None = None) -> None:
        key = _norm(path)
        if key in self.seen_paths:
            return
        self.seen_paths.add(key)
        self.queue.append(_Candidate(key, label or path))

    def expand(self, item: str | os.PathLike[str]) -> None:
        path = os.fspath(item)
        if _norm(path) in self.headers:  # a DICOM file just written, its header read already
            self.add_candidate(path)
            return
        if not os.path.exists(path):
            self.error(path, "The path does not exist.")
            return
        if os.path.isdir(path):
            self.walk(path)
        elif self.is_zip(path):
            self.extract_zip(path, path)
        else:
            self.add_candidate(path)

    @staticmethod
    def is_zip(path: str) -> bool:
        return path.lower().endswith(".zip") or file_kind(path) == "zip"

    def walk(self, root: str) -> None:
        cache_root = _norm(paths.cache_dir())
        for dirpath, dirnames, filenames in os.walk(
            root,
            onerror=lambda e: self.error(
                getattr(e, "filename", root) or root,
                "The folder cannot be read (permission denied or removed).",
            ),
        ):
            self.progress.check()
            if _norm(dirpath).startswith(cache_root):
                dirnames[:] = []
                continue
            dirnames.sort()
            for name in sorted(filenames):
                if _is_os_clutter(name):
                    continue
                full = os.path.join(dirpath, name)
                if name.lower().endswith(".zip"):
                    self.extract_zip(full, full)
                else:
                    self.add_candidate(full)

    def extract_zip(
        self, path: str, label: str, budget: "containment.ExtractionBudget | None" = None
    ) -> None:
        """Extract an archive's files into the private cache (once, within the limits of
        :mod:`app.dicom.containment`) and queue them. A refused archive leaves nothing behind."""
        top = budget is None
        budget = budget or containment.ExtractionBudget(self.limits)
        target: Path | None = None
        queued_from = len(self.queue)
        try:
            st = os.stat(path)
            ident = f"{_norm(path)}|{st.st_size}|{st.st_mtime_ns}"
            target = paths.cache_dir() / "archives" / hashlib.sha1(ident.encode()).hexdigest()[:20]
            with zipfile.ZipFile(path) as zf:
                members = [
                    m for m in zf.infolist() if not m.is_dir() and not _is_os_clutter(m.filename)
                ]
                containment.check_archive(members, st.st_size, self.limits)
                paths.private_dir(target)
                self.archive_dirs.append(target)
                for k, m in enumerate(members):
                    self.progress.check()
                    self.progress.update(
                        k,
                        len(members),
                        f"Extracting {os.path.basename(label)} ({k + 1} of {len(members)})",
                    )
                    member_label = f"{label}!{m.filename}"
                    try:
                        parts = containment.member_parts(m.filename)
                    except containment.ContainmentError as exc:
                        self.error(member_label, exc.message)
                        continue
                    if not parts:
                        continue
                    budget.take_member()
                    dest = target.joinpath(*parts)
                    if m.flag_bits & 0x1:
                        self.error(member_label, "The archive member is password-protected.")
                        continue
                    if not (dest.is_file() and dest.stat().st_size == m.file_size):
                        try:
                            containment.extract_member(zf, m, dest, budget)
                        except containment.ContainmentError:
                            raise
                        except (
                            zipfile.BadZipFile,
                            OSError,
                            EOFError,
                            ValueError,
                            NotImplementedError,
                        ) as exc:
                            log.debug("zip member failed: %s", type(exc).__name__)
                            self.error(
                                member_label,
                                "The archive member is corrupt and cannot be extracted.",
                            )
                            continue
                    else:
                        budget.left -= m.file_size
                    if parts[-1].lower().endswith(".zip"):
                        self.extract_zip(str(dest), member_label, budget)
                    else:
                        self.add_candidate(str(dest), member_label)
        except Cancelled:
            raise
        except containment.ContainmentError as exc:
            if target is not None:
                containment.remove_tree(target)
                prefix = _norm(target)
                self.queue[queued_from:] = [
                    c for c in self.queue[queued_from:] if not c.path.startswith(prefix)
                ]
            if not top:
                raise  # the outermost archive is refused as a whole
            self.error(label, exc.message)
        except zipfile.BadZipFile:
            self.error(label, "The zip archive is corrupt and cannot be opened.")
        except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
            self.error(label, "The zip archive cannot be read.")

    def clean_archive_cache(self) -> None:
        """At the end of a scan: partial extractions are removed and the cache is evicted down to
        its budget (archives of this scan kept); the library forgets evicted instances."""
        removed = containment.evict_archive_cache(
            paths.cache_dir() / "archives", archive_cache_budget(), keep=self.archive_dirs
        )
        if removed:
            with self.lib._write_lock:
                conn = self.lib._conn()
                for folder in removed:
                    conn.execute(
                        "DELETE FROM instances WHERE path LIKE ?",
                        (_norm(folder).rstrip(os.sep) + os.sep + "%",),
                    )
                conn.execute(
                    "DELETE FROM series WHERE series_uid NOT IN "
                    "(SELECT DISTINCT series_uid FROM instances)"
                )
                conn.execute(
                    "DELETE FROM studies WHERE study_uid NOT IN "
                    "(SELECT DISTINCT study_uid FROM instances)"
                )
                conn.commit()

    def queue_dicomdir(self, ds: Dataset, cand: _Candidate) -> None:
        """Queue the files a DICOMDIR refers to (it is an index, not an instance)."""
        base = os.path.dirname(cand.path)
        # The records are read directly rather than through pydicom's FileSet, which refuses
        # many real DICOMDIRs (e.g. Philips IMAGE records without Referenced SOP Instance UID).
        refs: list[list[str]] = []
        refused = 0
        records = safe_get(ds, "DirectoryRecordSequence", []) or []
        for rec in records:
            try:
                ref = rec.get("ReferencedFileID")
            except Exception:  # noqa: BLE001
                continue
            if ref is None:
                continue
            try:
                parts = containment.dicomdir_ref_parts(ref)
            except containment.ContainmentError as exc:
                refused += 1
                shown = "\\".join([str(ref)] if isinstance(ref, str) else [str(p) for p in ref])
                self.error(f"{cand.label} -> {shown[:120]}", exc.message)
                continue
            if parts:
                refs.append(parts)
        missing: list[str] = []
        for parts in refs:
            found = self.resolve_ref(base, parts)
            if found is not None and not containment.is_inside(base, found):
                # a symlink on the media pointing elsewhere: never index outside the media folder
                self.error(
                    f"{cand.label} -> {'/'.join(parts)}",
                    "The DICOMDIR entry leads outside the media folder; the entry was refused.",
                )
                continue
            if found is None:
                missing.append("/".join(parts))
            else:
                label = (
                    found
                    if not cand.label.count("!")
                    else f"{cand.label.rsplit('/', 1)[0]}/{'/'.join(parts)}"
                )
                self.add_candidate(found, label)
        if not refs and not refused:
            self.error(cand.label, "The DICOMDIR lists no files.")
        elif missing:
            self.error(
                cand.label,
                f"The DICOMDIR refers to {len(missing)} file(s) that are "
                f"missing (e.g. {missing[0]}).",
            )

    @staticmethod
    def resolve_ref(base: str, parts: list[str]) -> str | None:
        """Find a referenced file: as written, case-insensitively, or flattened beside it."""
        direct = os.path.join(base, *parts)
        if os.path.isfile(direct):
            return direct
        cur = base
        for p in parts:  # case-insensitive walk (DICOMDIR file IDs are upper case)
            try:
                names = {n.lower(): n for n in os.listdir(cur)}
            except OSError:
                cur = ""
                break
            hit = names.get(p.lower())
            if hit is None:
                cur = ""
                break
            cur = os.path.join(cur, hit)
        if cur and os.path.isfile(cur):
            return cur
        flat = os.path.join(base, parts[-1])  # media copied without its folders
        if os.path.isfile(flat):
            return flat
        return None

    # -- indexing --------------------------------------------------------------------------------
    def run(self, items: list[str | os.PathLike[str]]) -> ScanReport:
        start = time.perf_counter()
        self.progress.update(0, None, "Looking for files")
        try:
            for item in items:
                self.progress.check()
                self.expand(item)
            conn = self.lib._conn()
            i = 0
            # No Python lock is held across the scan: SQLite serialises writers (busy timeout)
            # and the scan commits at least every 0.5 s, so a store_result() from another
            # thread waits at most that long.
            try:
                while i < len(self.queue):
                    self.progress.check()
                    cand = self.queue[i]
                    i += 1
                    self.report.files += 1
                    self.index(conn, cand)
                    self.progress.update(
                        i, len(self.queue), f"Reading headers ({i} of {len(self.queue)})"
                    )
                    now = time.monotonic()
                    if now - self.last_commit > 0.5:
                        conn.commit()
                        self.last_commit = now
            finally:
                conn.commit()
        finally:
            self.report.studies = [
                s for s in (self.lib.study(uid) for uid in self.touched_studies) if s is not None
            ]
            self.report.elapsed_s = time.perf_counter() - start
        self.clean_archive_cache()
        self.progress.update(
            len(self.queue),
            len(self.queue),
            f"Indexed {self.report.added} new instance(s) in {len(self.report.studies)} stud(ies)",
        )
        return self.report

    def index(self, conn: sqlite3.Connection, cand: _Candidate) -> None:
        path = cand.path
        try:
            st = os.stat(path)
        except OSError:
            self.error(cand.label, "The file cannot be read (it was removed or is not accessible).")
            return
        row = conn.execute(
            "SELECT sop_uid, study_uid, series_uid, size, mtime FROM instances WHERE path=?",
            (path,),
        ).fetchone()
        if row is not None and row["size"] == st.st_size and row["mtime"] == st.st_mtime:
            self.report.unchanged += 1
            self.touch(conn, row["study_uid"], row["series_uid"], path, row["sop_uid"])
            return
        rej = conn.execute(
            "SELECT size, mtime, error FROM rejected WHERE path=?", (path,)
        ).fetchone()
        if rej is not None and rej["size"] == st.st_size and rej["mtime"] == st.st_mtime:
            self.error(cand.label, rej["error"])
            return
        try:
            fast = self.headers.get(path) or fast_header(path, self.tag_set)
            ds, info = fast if fast is not None else read_header(path, self.tags)
        except DicomError as exc:
            self.error(cand.label, exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - never let one file stop a scan
            log.debug("unexpected header failure: %s", type(exc).__name__)
            self.error(cand.label, "The file cannot be read as DICOM.")
            return
        if not isinstance(ds, RawHeader) and is_dicomdir(ds):  # fast_header skips DICOMDIRs
            self.queue_dicomdir(ds, cand)
            return
        problem = pixel_budget_problem(path, ds, info)
        if problem is not None:
            self.error(cand.label, problem)  # flagged, never indexed: it would not be decoded
            return
        try:
            rec = _record(ds, info, path, cand.label, st)
        except DicomError as exc:
            self.error(cand.label, exc.message)
            return
        if row is not None and row["sop_uid"] != rec["sop_uid"]:
            conn.execute("DELETE FROM instances WHERE path=?", (path,))  # file was replaced
        existing = conn.execute(
            "SELECT path, size FROM instances WHERE sop_uid=?", (rec["sop_uid"],)
        ).fetchone()
        if existing is not None and existing["path"] != path:
            if not self.resolve_duplicate(conn, cand, rec, existing["path"], st):
                return
        self.upsert(conn, rec, ds)
        self.report.added += 1 if row is None else 0
        self.touch(conn, rec["study_uid"], rec["series_uid"], path, rec["sop_uid"])

    def resolve_duplicate(
        self,
        conn: sqlite3.Connection,
        cand: _Candidate,
        rec: dict[str, Any],
        other: str,
        st: os.stat_result,
    ) -> bool:
        """Decide between two files with one SOP Instance UID; True to index ``cand``."""
        if not os.path.isfile(other):
            conn.execute("DELETE FROM instances WHERE path=?", (other,))  # moved: follow it
            return True
        if _same_bytes(cand.path, other):
            self.report.duplicates += 1
            self.touch(conn, rec["study_uid"], rec["series_uid"], other, rec["sop_uid"])
            return False
        new_err = _decode_problem(cand.path)
        old_err = _decode_problem(other)
        if new_err is None and old_err is not None:
            conn.execute("DELETE FROM instances WHERE path=?", (other,))
            msg = _duplicate_message(cand.path, old_err)
            self.error(other, msg)
            self.reject(conn, other, rec["sop_uid"], msg)
            return True
        if new_err is None and _same_identity(cand.path, other) and _same_image(cand.path, other):
            self.report.duplicates += 1  # the same image, stored in another encoding
            self.touch(conn, rec["study_uid"], rec["series_uid"], other, rec["sop_uid"])
            return False
        msg = _duplicate_message(other, new_err)
        self.error(cand.label, msg)
        self.reject(conn, cand.path, rec["sop_uid"], msg, st)
        return False

    def reject(
        self,
        conn: sqlite3.Connection,
        path: str,
        sop_uid: str,
        msg: str,
        st: os.stat_result | None = None,
    ) -> None:
        try:
            st = st or os.stat(path)
        except OSError:
            return
        conn.execute(
            "INSERT OR REPLACE INTO rejected(path, size, mtime, sop_uid, error) VALUES (?,?,?,?,?)",
            (path, st.st_size, st.st_mtime, sop_uid, msg),
        )

    def upsert(
        self, conn: sqlite3.Connection, rec: dict[str, Any], ds: Dataset | RawHeader
    ) -> None:
        now = time.time()
        if isinstance(ds, RawHeader) and (
            rec["study_uid"] not in self.known_studies or rec["series_uid"] not in self.known_series
        ):
            ds = ds.dataset()  # names need the character set: pydicom decodes them
        # a study or series seen for the first time always has the full Dataset (above)
        full = cast(Dataset, ds)
        conn.execute("DELETE FROM rejected WHERE path=?", (rec["path"],))
        if rec["study_uid"] not in self.known_studies:
            self.known_studies.add(rec["study_uid"])
            self.insert_study(conn, rec, full, now)
        if rec["series_uid"] not in self.known_series:
            self.known_series.add(rec["series_uid"])
            self.insert_series(conn, rec, full, now)
        conn.execute(
            "INSERT OR REPLACE INTO instances(sop_uid, series_uid, study_uid, path, source, size, "
            "mtime, sop_class, instance_number, frames, rows, columns, transfer_syntax, "
            "photometric, position, orientation, pixel_spacing, slice_location, pixel_offset, "
            "added) VALUES (:sop_uid, :series_uid, :study_uid, :path, :source, :size, :mtime, "
            ":sop_class, :instance_number, :frames, :rows, :columns, :transfer_syntax, "
            ":photometric, :position, :orientation, :pixel_spacing, :slice_location, "
            ":pixel_offset, :added)",
            {**rec, "added": now},
        )

    @staticmethod
    def insert_study(
        conn: sqlite3.Connection, rec: dict[str, Any], ds: Dataset, now: float
    ) -> None:
        conn.execute(
            "INSERT INTO studies(study_uid, patient_id, patient_name, patient_birth_date, "
            "patient_sex, study_date, study_time, description, accession, added) "
            "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(study_uid) DO NOTHING",
            (
                rec["study_uid"],
                safe_str(ds, "PatientID"),
                safe_str(ds, "PatientName"),
                safe_str(ds, "PatientBirthDate"),
                safe_str(ds, "PatientSex"),
                safe_str(ds, "StudyDate"),
                safe_str(ds, "StudyTime"),
                safe_str(ds, "StudyDescription"),
                safe_str(ds, "AccessionNumber"),
                now,
            ),
        )

    @staticmethod
    def insert_series(
        conn: sqlite3.Connection, rec: dict[str, Any], ds: Dataset, now: float
    ) -> None:
        conn.execute(
            "INSERT INTO series(series_uid, study_uid, modality, description, number, body_part, "
            "added) VALUES (?,?,?,?,?,?,?) ON CONFLICT(series_uid) DO NOTHING",
            (
                rec["series_uid"],
                rec["study_uid"],
                safe_str(ds, "Modality"),
                safe_str(ds, "SeriesDescription"),
                safe_int(ds, "SeriesNumber"),
                safe_str(ds, "BodyPartExamined"),
                now,
            ),
        )

    def touch(
        self, conn: sqlite3.Connection, study_uid: str, series_uid: str, path: str, sop_uid: str
    ) -> None:
        """Remember a study/series for the report; announce a series the first time."""
        if study_uid not in self.touched_studies:
            self.touched_studies.append(study_uid)
        if series_uid in self.touched_series:
            return
        self.touched_series.add(series_uid)
        if self.on_series is None:
            return
        conn.commit()  # so that the GUI's own connection sees it
        self.last_commit = time.monotonic()
        info = self.lib.series_info(series_uid)
        if info is None:
            return
        info.update(first_path=path, first_sop_uid=sop_uid)
        try:
            self.on_series(info)
        except Cancelled:
            raise
        except Exception:  # noqa: BLE001 - a failing listener must not break the scan
            log.exception("on_series callback failed")


def _record(
    ds: Dataset | RawHeader, info: PixelInfo, path: str, label: str, st: os.stat_result
) -> dict[str, Any]:
    """The index row of one file (raises DicomReadError when it cannot be indexed)."""
    sop = raw_text(ds, 0x00080018)
    study = raw_text(ds, 0x0020000D)
    series = raw_text(ds, 0x0020000E)
    for value, name in (
        (sop, "SOP Instance UID"),
        (study, "Study Instance UID"),
        (series, "Series Instance UID"),
    ):
        if not value:
            raise DicomReadError(f"The file has no {name}, so it cannot be filed in a study.", path)
        if len(value) > 128 or not value.isprintable():
            raise DicomReadError(f"The file's {name} is corrupt.", path)
    frames = 0
    if info.present:
        frames = max(1, raw_int(ds, 0x00280008) or 1)
    loc = raw_floats(ds, 0x00201041, 1)
    ts = ""
    try:
        ts = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
    except Exception:  # noqa: BLE001
        pass
    return {
        "sop_uid": sop,
        "series_uid": series,
        "study_uid": study,
        "path": path,
        "source": label if label != path else None,
        "size": st.st_size,
        "mtime": st.st_mtime,
        "sop_class": raw_text(ds, 0x00080016),
        "instance_number": raw_int(ds, 0x00200013),
        "frames": frames,
        "rows": raw_int(ds, 0x00280010),
        "columns": raw_int(ds, 0x00280011),
        "transfer_syntax": ts,
        "photometric": raw_text(ds, 0x00280004),
        "position": _json_or_none(raw_floats(ds, 0x00200032, 3)),
        "orientation": _json_or_none(raw_floats(ds, 0x00200037, 6)),
        "pixel_spacing": _json_or_none(raw_floats(ds, 0x00280030, 2)),
        "slice_location": loc[0] if loc else None,
        "pixel_offset": info.offset if info.present else None,
    }


def _duplicate_message(kept: str, problem: str | None) -> str:
    """The error for the copy of a duplicate SOP Instance UID that was not kept."""
    if problem is None:
        return (
            f"Duplicate SOP Instance UID with different content (also in {kept}); "
            "the copy indexed first was kept."
        )
    reason = problem.rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    return f"Duplicate SOP Instance UID (also in {kept}); this copy was not kept because {reason}."


def _same_bytes(a: str, b: str) -> bool:
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                ca, cb = fa.read(1 << 20), fb.read(1 << 20)
                if ca != cb:
                    return False
                if not ca:
                    return True
    except OSError:
        return False


def _decode_problem(path: str) -> str | None:
    """None when every frame of a file decodes, else the reason (one line)."""
    from app.dicom.pixels import decode_frame, number_of_frames, read_dataset

    try:
        ds = read_dataset(path)
        for i in range(number_of_frames(ds)):
            decode_frame(ds, i)
    except HilumError as exc:
        return exc.message
    except Exception:  # noqa: BLE001
        return "The image data cannot be read."
    return None


#: attributes that must agree for two files with one SOP Instance UID to be the same object
_IDENTITY = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "Modality",
    "SOPClassUID",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
)


def _same_identity(a: str, b: str) -> bool:
    """True when two headers agree on patient, study, geometry and value attributes.

    The encoding (transfer syntax, file meta, VR form) may differ: that is the same object.
    """
    try:
        ha, _ = read_header(a)
        hb, _ = read_header(b)
        for kw in _IDENTITY:
            va, vb = safe_get(ha, kw), safe_get(hb, kw)
            if (va is None) != (vb is None) or (va is not None and str(va) != str(vb)):
                return False
        return True
    except Exception:  # noqa: BLE001
        return False


def _same_image(a: str, b: str) -> bool:
    """True when two files decode to the same pixels (the same image in two encodings)."""
    import numpy as np

    from app.dicom.pixels import decode_frame, number_of_frames, read_dataset

    try:
        da, db = read_dataset(a), read_dataset(b)
        n = number_of_frames(da)
        if n != number_of_frames(db):
            return False
        return all(np.array_equal(decode_frame(da, i), decode_frame(db, i)) for i in range(n))
    except Exception:  # noqa: BLE001
        return False
