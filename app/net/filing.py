"""Filing received instances into the study library.

Every instance that arrives (C-GET, C-MOVE, C-STORE to the listener, WADO-RS) is written to
``<data>/pacs/<study>/<series>/<sop>.dcm`` through a private temporary file that is renamed into
place only when complete, so no partial file is ever seen (or indexed) as an instance. The file
name follows the SOP Instance UID, so re-retrieving replaces a file by an identical one and the
library keeps one row per instance (idempotent).

A data set received over the network (:meth:`Filer.receive`) is stored as it came, behind a
File Meta Information header (pydicom's); its header is read once, from memory, for both the file's
place and the library's index (which then does not read the file back).

Indexing runs on the filer's own thread so that the network thread is never held up by SQLite;
the first instance of each series is indexed at once (and reported through ``on_series``) so a
viewer can show it while the rest of the series streams in. The other instances are indexed in
batches (one transaction each): when the transfer ends, or every :data:`FLUSH_S` seconds while it
lasts (a listener that runs for hours), since indexing them one by one costs the network thread
CPU time it needs to answer the PACS. The indexing thread is woken once per batch, not per
instance: every wake-up is a thread switch the network thread waits for.
"""

from __future__ import annotations

import functools
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
from app.dicom.library import Library, scan_tag_set
from app.dicom.reading import PixelInfo, RawHeader, fast_header_of, raw_text

log = logging.getLogger(__name__)

_UID_RE = re.compile(r"^[0-9][0-9.]{0,63}$")

SeriesCallback = Callable[[dict[str, Any]], None]

#: instances that are not the first of their series wait at most this long to be indexed
FLUSH_S = 2.0
#: ... or until this many wait
FLUSH_COUNT = 1000
#: received instances waiting in memory for the disk (write-behind), at most
WRITE_QUEUE = 32

_Header = tuple[RawHeader, PixelInfo]
#: the indexing thread's wake-ups: a batch has begun (its FLUSH_S runs), a batch is full
_BATCH_BEGUN, _BATCH_FULL = "begun", "full"
_PREAMBLE = b"\x00" * 128 + b"DICM"
_INSTANCE_UID_TAG = 0x00020003  # (0002,0003) Media Storage SOP Instance UID


def _encode_meta_elements(elements: Any) -> bytes:
    """File meta elements as pydicom writes them (explicit VR little endian), in order."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    for elem in elements:
        write_data_element(buf, elem)
    return bytes(buf.getvalue())


@functools.lru_cache(maxsize=64)
def _meta_around_instance(sop_class: str, transfer_syntax: str) -> tuple[bytes, bytes]:
    """The file meta elements of one SOP class and transfer syntax before and after the SOP
    Instance UID, encoded by pydicom from the dataset ``write_file_meta_info`` would write."""
    from pydicom.dataset import FileMetaDataset, validate_file_meta
    from pydicom.uid import UID
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID("1.2")  # a stand-in, left out below
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
    validate_file_meta(meta, enforce_standard=True)  # adds the version, as the writer does
    elems = [e for e in meta if e.tag != 0x00020000]  # the group length is the caller's
    return (
        _encode_meta_elements(e for e in elems if e.tag < _INSTANCE_UID_TAG),
        _encode_meta_elements(e for e in elems if e.tag > _INSTANCE_UID_TAG),
    )


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """Preamble and File Meta Information for a data set received over the network, as
    pynetdicom's ``Event.encoded_dataset`` writes them (pydicom's ``write_file_meta_info``),
    to go before the data set's bytes in its file.

    Every element is encoded by pydicom; those that are the same for every instance of a SOP
    class and transfer syntax are encoded once. Only the SOP Instance UID and the group length
    (which follows its length) are encoded per instance: building and writing the whole
    dataset costs ~0.15 ms, at the pace a PACS sends instances.
    """
    from pydicom.dataelem import DataElement
    from pydicom.uid import UID

    before, after = _meta_around_instance(sop_class, transfer_syntax)
    instance = _encode_meta_elements([DataElement(_INSTANCE_UID_TAG, "UI", UID(sop_instance))])
    length = len(before) + len(instance) + len(after)
    group = _encode_meta_elements([DataElement(0x00020000, "UL", length)])
    return b"".join((_PREAMBLE, group, before, instance, after))


def study_series(data: Any, transfer_syntax: str) -> tuple[str, str]:
    """Study and Series Instance UIDs of an encoded data set (bytes or a buffer), read by
    pydicom up to the Series Instance UID; ValueError when it has none."""
    import zlib
    from io import BytesIO

    from pydicom.filereader import read_dataset
    from pydicom.uid import UID

    def stop(tag: Any, vr: Any, length: Any) -> bool:
        return bool(tag > 0x0020000E)  # after the Series Instance UID

    ts = UID(transfer_syntax)
    raw = bytes(data)
    try:
        if ts.is_deflated:
            raw = zlib.decompress(raw, -zlib.MAX_WBITS)
        ds = read_dataset(BytesIO(raw), ts.is_implicit_VR, ts.is_little_endian, stop_when=stop)
    except Exception as exc:  # noqa: BLE001 - hostile bytes: whatever pydicom (or zlib) raises
        raise ValueError(f"not a data set ({type(exc).__name__})") from None
    study, series = (
        str(ds.get("StudyInstanceUID", "") or ""),
        str(ds.get("SeriesInstanceUID", "") or ""),
    )
    if not (study and series):
        raise ValueError("no Study or Series Instance UID")
    return study, series


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
    on_studies : callable, optional
        ``on_studies(studies)`` after each batch of instances is indexed (from the filer's
        thread), with the library's view of the studies the batch touched (``hilum scan
        --json`` shape, whole-series counts): what a window lists grows as instances arrive.
    write_behind : bool
        File instances on a thread of their own, so that :meth:`receive` and
        :meth:`file_parts` return (and the network thread answers the PACS) without waiting
        for the disk; at most
        :data:`WRITE_QUEUE` instances wait in memory. For transfers Hilum asked for (C-GET,
        C-MOVE): a file that then cannot be written is reported in ``report.errors``, and the
        PACS still has it, as it has one whose data set cannot be read. A listener that others
        send to keeps the default (written before the sender is told it is stored).
    """

    def __init__(
        self,
        library: Library | None = None,
        root: str | os.PathLike[str] | None = None,
        on_series: SeriesCallback | None = None,
        on_instance: Callable[[int], None] | None = None,
        write_behind: bool = False,
        on_studies: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.library = library if library is not None else Library()
        self.root = Path(root) if root is not None else received_dir()
        self.on_series = on_series
        self.on_instance = on_instance
        self.on_studies = on_studies
        self.report = FilingReport()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, _Header | None] | str | None] = queue.Queue()
        self._batch: list[str] = []  # written, waiting to be indexed together (under _lock)
        self._headers: dict[str, _Header] = {}  # read from memory, for the index (under _lock)
        self._seen_series: set[str] = set()
        self._dirs: set[Path] = set()
        self._thread = threading.Thread(target=self._index_loop, name="hilum-filer", daemon=True)
        self._thread.start()
        # jobs of the writer thread: what to do, and what to name in an error
        self._writes: queue.Queue[tuple[Callable[[], Any], str] | None] | None = None
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

    def receive(self, dataset: Any, sop_class: str, sop_uid: str, transfer_syntax: str) -> None:
        """File a data set received over the network (a C-STORE request's), as it came.

        Parameters
        ----------
        dataset : bytes or buffer
            The encoded data set, handed over: the caller never touches it again (a CT slice
            is ~0.5 MB, not copied).
        sop_class, sop_uid, transfer_syntax : str
            From the request and its presentation context (the file meta).

        Raises
        ------
        ValueError
            Without ``write_behind``: the data set has no readable study and series.
        OSError
            Without ``write_behind``: the file cannot be written.
        """
        if self._writes is not None:
            self._writes.put(
                (
                    lambda: self._file_received(dataset, sop_class, sop_uid, transfer_syntax),
                    f"instance {_safe(sop_uid)}",
                )
            )
            return
        self._file_received(dataset, sop_class, sop_uid, transfer_syntax)

    def _file_received(self, dataset: Any, sop_class: str, sop_uid: str, ts: str) -> Path:
        pieces = [file_meta(sop_class, sop_uid, ts), dataset]
        # the header, read once from memory: where the file goes, and the library's row
        header = fast_header_of(pieces, "", scan_tag_set())
        study = series = ""
        if header is not None:
            study, series = raw_text(header[0], 0x0020000D), raw_text(header[0], 0x0020000E)
        if not (study and series):  # deflated, big endian or unusual: pydicom reads it
            header = None
            study, series = study_series(dataset, ts)
        return self._write(pieces, study, series, sop_uid, header)

    def file_bytes(self, data: bytes, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Store one encoded DICOM file (preamble + file meta + dataset) and queue it for indexing."""
        return self.file_parts([data], study_uid, series_uid, sop_uid)

    def file_parts(
        self, parts: Sequence[Any], study_uid: str, series_uid: str, sop_uid: str
    ) -> Path:
        """Like :meth:`file_bytes` for a file given in pieces (bytes or buffers), written
        without joining them. With ``write_behind`` the pieces are written by the writer
        thread, from copies (the caller's buffers are not ours once this returns; a data set
        received over the network is handed over whole through :meth:`receive`)."""
        if self._writes is not None:
            target = self.path_for(study_uid, series_uid, sop_uid)
            own = [bytes(p) for p in parts]  # bytes stay as they are: no copy
            self._writes.put(
                (lambda: self._write(own, study_uid, series_uid, sop_uid), str(target))
            )
            return target
        return self._write(parts, study_uid, series_uid, sop_uid)

    def _write_loop(self) -> None:
        assert self._writes is not None
        while True:
            item = self._writes.get()
            if item is None:
                return
            job, where = item
            try:
                job()
            except OSError as exc:  # reported; the writer keeps going
                reason = exc.strerror or type(exc).__name__
                error = f"The instance could not be written to disk ({reason})."
            except Exception:  # noqa: BLE001 - a data set that cannot be read: reported
                error = "The instance received cannot be read as DICOM; it was not stored."
            else:
                continue
            with self._lock:
                self.report.errors.append({"path": where, "error": error})

    def _write(
        self,
        parts: Sequence[Any],
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        header: _Header | None = None,
    ) -> Path:
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
            path = str(target)
            if header is not None:
                header[0].path = path  # read from memory, before the file had its place
            wake: tuple[str, _Header | None] | str | None = None
            if first:  # the viewer waits for this one: indexed alone and at once
                wake = (path, header)
            else:
                if header is not None:
                    self._headers[path] = header
                self._batch.append(path)
                # the indexing thread wakes when a batch begins (to time it) or is full
                wake = {1: _BATCH_BEGUN, FLUSH_COUNT: _BATCH_FULL}.get(len(self._batch))
        if wake is not None:
            self._queue.put(wake)
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
        since: float | None = None  # when the batch waiting began
        while True:
            timeout = None if since is None else max(0.0, since + FLUSH_S - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:  # the batch has waited FLUSH_S
                item = _BATCH_FULL
            if item == _BATCH_BEGUN:
                since = time.monotonic()
                continue
            if isinstance(item, tuple):
                path, header = item
                self._index([path], with_series=True, headers={path: header} if header else None)
                continue
            with self._lock:  # a full batch, FLUSH_S, or closing (None): index what waits
                batch, self._batch = self._batch, []
                headers = {p: self._headers.pop(p) for p in batch if p in self._headers}
            since = None
            if batch:
                self._index(batch, with_series=False, headers=headers)
            if item is None:
                return

    def _index(
        self, files: list[str], with_series: bool, headers: dict[str, _Header] | None = None
    ) -> None:
        try:
            rep = self.library.scan(
                files, on_series=self.on_series if with_series else None, headers=headers
            )
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
        if self.on_studies is not None and rep.studies:
            try:
                self.on_studies(rep.studies)
            except Exception:  # noqa: BLE001 - a listener's window must not stop the filing
                log.debug("on_studies failed", exc_info=True)

    def flush(self) -> None:
        """Index the instances written so far now, not when their batch is due (the transfer
        has ended: the indexing runs while the association closes)."""
        with self._lock:
            waiting = bool(self._batch)
        if waiting:
            self._queue.put(_BATCH_FULL)

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
