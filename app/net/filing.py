"""Filing received instances into the study library.

Every instance that arrives (C-GET, C-MOVE, C-STORE to the listener, WADO-RS) is written to
``<data>/pacs/<study>/<series>/<sop>.dcm`` through a private temporary file that is renamed into
place only when complete, so no partial file is ever seen (or indexed) as an instance. The file
name follows the SOP Instance UID, so re-retrieving replaces a file by an identical one and the
library keeps one row per instance (idempotent).

Indexing runs on the filer's own thread so that the network thread is never held up by SQLite;
the first instance of each series is indexed at once (and reported through ``on_series``) so a
viewer can show it while the rest of the series streams in.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.errors import HilumError
from app.dicom.library import Library

log = logging.getLogger(__name__)

_UID_RE = re.compile(r"^[0-9][0-9.]{0,63}$")

SeriesCallback = Callable[[dict[str, Any]], None]


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
    """

    def __init__(self, library: Library | None = None, root: str | os.PathLike[str] | None = None,
                 on_series: SeriesCallback | None = None,
                 on_instance: Callable[[int], None] | None = None) -> None:
        self.library = library if library is not None else Library()
        self.root = Path(root) if root is not None else received_dir()
        self.on_series = on_series
        self.on_instance = on_instance
        self.report = FilingReport()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, bool] | None] = queue.Queue()
        self._seen_series: set[str] = set()
        self._thread = threading.Thread(target=self._index_loop, name="hilum-filer", daemon=True)
        self._thread.start()
        self._closed = False

    # -- receiving (any thread) ----------------------------------------------------------------
    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Where an instance is stored."""
        return self.root / _safe(study_uid) / _safe(series_uid) / f"{_safe(sop_uid)}.dcm"

    def file_bytes(self, data: bytes, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Store one encoded DICOM file (preamble + file meta + dataset) and queue it for indexing."""
        target = self.path_for(study_uid, series_uid, sop_uid)
        if not target.parent.is_dir():
            paths.private_dir(target.parent)
        tmp = target.parent / f".part-{_safe(sop_uid)}-{threading.get_ident()}"
        try:
            with paths.open_private(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)  # atomic: the instance exists complete or not at all
        except BaseException:
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
        return self.file_bytes(buf.getvalue(), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                               str(ds.SOPInstanceUID))

    # -- indexing (the filer's thread) ---------------------------------------------------------
    def _index_loop(self) -> None:
        try:
            self._index_queue()
        finally:
            self.library.close()  # this thread's SQLite connection

    def _index_queue(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            # take what else is waiting, so a fast transfer is indexed in few transactions;
            # a series' first instance is indexed alone and at once (the viewer waits for it)
            if not item[1]:
                while len(batch) < 256:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    if nxt[1]:
                        self._index([p for p, _ in batch], with_series=False)
                        batch = [nxt]
                        break
                    batch.append(nxt)
            self._index([p for p, _ in batch], with_series=batch[0][1])
            if stop:
                return

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
                self.report.errors.extend({"path": f, "error": "The file could not be indexed."}
                                          for f in files)
            return
        with self._lock:
            self.report.added += rep.added
            self.report.errors.extend(rep.errors)

    def close(self) -> FilingReport:
        """Index everything still queued, stop the thread and return the report."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        return self.report

    def __enter__(self) -> Filer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
