"""Filing received instances into the study library.

Every instance that arrives (C-GET, C-MOVE, C-STORE to the listener, WADO-RS) is written to
``<data>/pacs/<study>/<series>/<sop>.dcm`` through a private temporary file that is renamed into
place only when complete, so no partial file is ever seen (or indexed) as an instance. The file
name follows the SOP Instance UID, so re-retrieving replaces a file by an identical one and the
library keeps one row per instance (idempotent).

Indexing runs on the filer's own thread so that the network thread is never held up by SQLite;
the first instance of each series is indexed at once (and reported through ``on_series``) so a
viewer can show it while the rest of the series streams in. The other instances are indexed in
batches (one transaction each): when the transfer ends, or every :data:`FLUSH_S` seconds while it
lasts (a listener that runs for hours), since indexing them one by one costs the network thread
CPU time it needs to answer the PACS.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.errors import HilumError
from app.dicom.library import Library

log = logging.getLogger(__name__)

_UID_RE = re.compile(r"^[0-9][0-9.]{0,63}$")

SeriesCallback = Callable[[dict[str, Any]], None]

#: instances that are not the first of their series wait at most this long to be indexed
FLUSH_S = 2.0
#: ... or until this many wait
FLUSH_COUNT = 1000
#: received instances waiting in memory for the disk (write-behind), at most
WRITE_QUEUE = 32


def received_dir() -> Path:
    """Where received instances are stored (under the user data folder, private)."""
    return paths.private_dir(paths.data_dir() / "pacs")


def _safe(uid: str) -> str:
    """A UID as a file name; anything that is not a plain UID (hostile input) is hashed."""
    uid = (uid or "").strip().rstrip("\x00")
    if _UID_RE.match(uid) and ".." not in uid:
        return uid
    return "x" + hashlib.sha1(uid.encode("utf-8", "replace")).hexdigest()


@dataclass
class FilingReport:
    """What a :class:`Filer` stored.

    Attributes
    ----------
    received : int
        Instances written to disk.
    added : int
        Instances new to the library.
    sop_uids : list of str
        SOP Instance UIDs received, in arrival order.
    series_uids : list of str
        Series touched, in order of first arrival.
    errors : list of dict
        ``{"path", "error"}`` for files the library could not index.
    """

    received: int = 0
    added: int = 0
    sop_uids: list[str] = field(default_factory=list)
    series_uids: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)


class Filer:
    """Writes received instances to disk and indexes them in the library on its own thread.

    Parameters
    ----------
    library : Library, optional
        The study library (default: the user library).
    root : path, optional
        Folder for the files (default :func:`received_dir`).
    on_series : callable, optional
        ``on_series(info)`` once the first instance of a series is indexed (``info`` as
        :meth:`Library.scan`'s ``on_series``: ``series_info`` plus ``first_path``).
    on_instance : callable, optional
        ``on_instance(count)`` after each instance is written (from the network thread).
    write_behind : bool
        Write files on a thread of their own, so that :meth:`file_parts` returns (and the
        network thread answers the PACS) without waiting for the disk; at most
        :data:`WRITE_QUEUE` instances wait in memory. For transfers Hilum asked for (C-GET,
        C-MOVE): a file that then cannot be written is reported in ``report.errors``, and the
        PACS still has it. A listener that others send to keeps the default (written before
        the sender is told it is stored).
    """

    def __init__(
        self,
        library: Library | None = None,
        root: str | os.PathLike[str] | None = None,
        on_series: SeriesCallback | None = None,
        on_instance: Callable[[int], None] | None = None,
        write_behind: bool = False,
    ) -> None:
        self.library = library if library is not None else Library()
        self.root = Path(root) if root is not None else received_dir()
        self.on_series = on_series
        self.on_instance = on_instance
        self.report = FilingReport()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, bool] | None] = queue.Queue()
        self._seen_series: set[str] = set()
        self._dirs: set[Path] = set()
        self._thread = threading.Thread(target=self._index_loop, name="hilum-filer", daemon=True)
        self._thread.start()
        self._writes: queue.Queue[tuple[list[Any], str, str, str] | None] | None = None
        self._writer: threading.Thread | None = None
        if write_behind:
            self._writes = queue.Queue(maxsize=WRITE_QUEUE)
            self._writer = threading.Thread(
                target=self._write_loop, name="hilum-writer", daemon=True
            )
            self._writer.start()
        self._closed = False

    # -- receiving (any thread) ----------------------------------------------------------------
    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Where an instance is stored."""
        return self.root / _safe(study_uid) / _safe(series_uid) / f"{_safe(sop_uid)}.dcm"

    def file_bytes(self, data: bytes, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Store one encoded DICOM file (preamble + file meta + dataset) and queue it for indexing."""
        return self.file_parts([data], study_uid, series_uid, sop_uid)

    def file_parts(
        self,
        parts: Sequence[Any],
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        handed_over: bool = False,
    ) -> Path:
        """Like :meth:`file_bytes` for a file given in pieces (bytes or buffers, e.g. the file
        meta and a memoryview of the data set as received), written without joining them.
        With ``write_behind`` the pieces are written by the writer thread: copied first, unless
        ``handed_over`` (the caller never touches them again: a received data set, ~0.5 MB
        per CT slice not copied)."""
        if self._writes is not None:
            target = self.path_for(study_uid, series_uid, sop_uid)
            # the caller's buffers are not ours once this returns, unless handed over
            own = list(parts) if handed_over else [bytes(p) for p in parts]
            self._writes.put((own, study_uid, series_uid, sop_uid))
            return target
        return self._write(parts, study_uid, series_uid, sop_uid)

    def _write_loop(self) -> None:
        assert self._writes is not None
        while True:
            item = self._writes.get()
            if item is None:
                return
            parts, study_uid, series_uid, sop_uid = item
            try:
                self._write(parts, study_uid, series_uid, sop_uid)
            except Exception as exc:  # noqa: BLE001 - reported; the writer keeps going
                reason = (
                    (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else "error"
                )
                with self._lock:
                    self.report.errors.append(
                        {
                            "path": str(self.path_for(study_uid, series_uid, sop_uid)),
                            "error": f"The instance could not be written to disk ({reason}).",
                        }
                    )

    def _write(self, parts: Sequence[Any], study_uid: str, series_uid: str, sop_uid: str) -> Path:
        target = self.path_for(study_uid, series_uid, sop_uid)
        if target.parent not in self._dirs:
            if not target.parent.is_dir():
                paths.private_dir(target.parent)
            self._dirs.add(target.parent)
        tmp = target.parent / f".part-{_safe(sop_uid)}-{threading.get_ident()}"
        try:
            with paths.open_private(tmp, "wb") as fh:
                for part in parts:
                    fh.write(part)
            os.replace(tmp, target)  # atomic: the instance exists complete or not at all
        except BaseException:
            self._dirs.discard(target.parent)  # a folder removed meanwhile is made again
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        with self._lock:
            self.report.received += 1
            self.report.sop_uids.append(sop_uid)
            first = series_uid not in self._seen_series
            if first:
                self._seen_series.add(series_uid)
                self.report.series_uids.append(series_uid)
            count = self.report.received
        self._queue.put((str(target), first))
        if self.on_instance is not None:
            self.on_instance(count)
        return target

    def file_dataset(self, ds: Any) -> Path:
        """Store a pydicom Dataset (WADO-RS) in the DICOM file format."""
        from io import BytesIO

        import pydicom

        buf = BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        return self.file_bytes(
            buf.getvalue(),
            str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID),
            str(ds.SOPInstanceUID),
        )

    # -- indexing (the filer's thread) ---------------------------------------------------------
    def _index_loop(self) -> None:
        try:
            self._index_queue()
        finally:
            self.library.close()  # this thread's SQLite connection

    def _index_queue(self) -> None:
        pending: list[str] = []  # instances other than a series' first, waiting for a batch
        since = 0.0
        while True:
            timeout = max(0.0, since + FLUSH_S - time.monotonic()) if pending else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:  # time to index what waits
                self._index(pending, with_series=False)
                pending = []
                continue
            if item is None:  # closing: index everything
                if pending:
                    self._index(pending, with_series=False)
                return
            if item:
                path, first = item
                if first:  # the viewer waits for this one: indexed alone and at once
                    self._index([path], with_series=True)
                    continue
                if not pending:
                    since = time.monotonic()
                pending.append(path)
                if len(pending) < FLUSH_COUNT:
                    continue
            if pending:
                self._index(pending, with_series=False)
                pending = []

    def _index(self, files: list[str], with_series: bool) -> None:
        try:
            rep = self.library.scan(files, on_series=self.on_series if with_series else None)
        except HilumError as exc:
            with self._lock:
                self.report.errors.extend({"path": f, "error": exc.message} for f in files)
            return
        except Exception as exc:  # noqa: BLE001 - the filer thread must keep going
            log.debug("indexing failed: %s", type(exc).__name__)
            with self._lock:
                self.report.errors.extend(
                    {"path": f, "error": "The file could not be indexed."} for f in files
                )
            return
        with self._lock:
            self.report.added += rep.added
            self.report.errors.extend(rep.errors)

    def close(self) -> FilingReport:
        """Index everything still queued, stop the thread and return the report."""
        if not self._closed:
            self._closed = True
            if self._writer is not None and self._writes is not None:
                self._writes.put(None)  # what is queued is written first
                self._writer.join()
            self._queue.put(None)
            self._thread.join()
        return self.report

    def __enter__(self) -> Filer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
