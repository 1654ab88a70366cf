"""Import and series building for the GUI, on top of :mod:`app.dicom` (worker threads only).

These are plain functions taking a progress object; :mod:`app.gui.workers` runs them on the
thread pool. :func:`import_paths` scans with the study library and sends events through ``emit``
as soon as they exist, so the first image appears while the scan goes on:

``("preview", SeriesData)``
    the first image of the first series, already decoded (one frame);
``("series", SeriesData)``
    a full, geometry-sorted stack, with a thumbnail (one per stack);
``("errors", [{"path", "error"}, ...])``
    the per-file problems of the scan (for the import log).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import Any, Callable

import numpy as np

from app.core.progress import NullProgress, Progress
from app.gui.series import FrameRef, SeriesData, frame_cache

log = logging.getLogger(__name__)

Emit = Callable[[Any], None]

#: default decoded-frame budget per series (the settings override it)
CACHE_BYTES = 2 << 30
#: how long an import waits for the GUI to paint the preview before scanning on
FIRST_PAINT_WAIT_S = 1.0
#: big JPEG 2000 films: the first image is decoded at 1/2**factor of the size (1/4 for 2)
PREVIEW_J2K_FACTOR = 2


def _library() -> Any:
    from app.dicom.library import Library

    return Library()


def _header_facts(path_or_ds: Any) -> dict[str, Any]:
    """Facts the library does not index, from the first file's full header."""
    from app.dicom.pixels import is_color, read_dataset, windows
    from app.dicom.reading import safe_floats, safe_str

    ds = read_dataset(path_or_ds) if isinstance(path_or_ds, (str, os.PathLike)) else path_or_ds
    spacing = safe_floats(ds, "PixelSpacing", 2)
    source = "PixelSpacing" if spacing else ""
    if spacing is None:
        spacing = safe_floats(ds, "ImagerPixelSpacing", 2)
        source = "ImagerPixelSpacing" if spacing else ""
    try:
        thickness = (
            float(ds.get("SliceThickness")) if ds.get("SliceThickness") not in (None, "") else None
        )
    except (TypeError, ValueError):
        thickness = None
    modality = safe_str(ds, "Modality").upper()
    rescale_type = safe_str(ds, "RescaleType").upper()
    return {
        "windows": windows(ds),
        "pixel_spacing": tuple(spacing) if spacing else None,
        "spacing_source": source,
        "orientation": tuple(safe_floats(ds, "ImageOrientationPatient", 6) or ()) or None,
        "slice_thickness": thickness,
        "monochrome1": safe_str(ds, "PhotometricInterpretation").upper() == "MONOCHROME1",
        "is_color": is_color(ds),
        "modality": modality,
        "frame_of_reference_uid": safe_str(ds, "FrameOfReferenceUID"),
        "units": "HU" if modality == "CT" or rescale_type == "HU" else "",
        "meta": {
            "patient_name": safe_str(ds, "PatientName"),
            "patient_id": safe_str(ds, "PatientID"),
            "patient_age": safe_str(ds, "PatientAge"),
            "patient_sex": safe_str(ds, "PatientSex"),
            "study_date": safe_str(ds, "StudyDate"),
            "study_description": safe_str(ds, "StudyDescription"),
            "institution": safe_str(ds, "InstitutionName"),
        },
        "description": safe_str(ds, "SeriesDescription"),
        "series_number": _int(ds.get("SeriesNumber")),
        "rows": _int(ds.get("Rows")) or 0,
        "columns": _int(ds.get("Columns")) or 0,
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _decoder(series: SeriesData) -> Callable[[int], np.ndarray]:
    """A decode function for a series (worker threads only).

    Big JPEG 2000 films go through :mod:`app.gui.j2k` (the same OpenJPEG, called without holding
    Python's GIL, so the GUI stays responsive during the second-long decode); everything else,
    and any failure there, through :func:`app.dicom.pixels.frame_array`.
    """
    from app.dicom.pixels import frame_array, read_dataset

    def decode(index: int) -> np.ndarray:
        ref = series.frames[index]
        if series.count == 1 and series.rows * series.columns >= 2_500_000:
            from app.gui.j2k import reduced_frame

            ds = read_dataset(ref.path)
            arr = reduced_frame(ds, 0)
            return arr if arr is not None else frame_array(ds, ref.frame)
        return frame_array(ref.path, ref.frame)

    return decode


def _header_reader(series: SeriesData) -> Callable[[int], Any]:
    from app.dicom.pixels import read_dataset

    def read(index: int) -> Any:
        return read_dataset(series.frames[index].path)

    return read


def thumbnail(
    frame: np.ndarray, size: int, window: tuple[float, float] | None, invert: bool
) -> np.ndarray:
    """A small uint8 picture of a frame (grey or RGB), longest edge ``size``."""
    step = max(1, int(math.ceil(max(frame.shape[:2]) / size)))
    small = frame[::step, ::step]
    if small.ndim == 3:
        out = small.astype(np.uint8)
        return np.ascontiguousarray(255 - out if invert else out)
    if window is None:
        finite = small[np.isfinite(small)]
        lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    else:
        lo, hi = window[0] - window[1] / 2, window[0] + window[1] / 2
    scaled = np.clip(
        (small.astype(np.float32) - lo) / max(float(hi - lo), 1e-6) * 255.0, 0, 255
    ).astype(np.uint8)
    return np.ascontiguousarray(255 - scaled if invert else scaled)


def preview_series(
    info: dict[str, Any], cache_bytes: int = CACHE_BYTES, ds: Any = None
) -> SeriesData:
    """The first image of a series as a one-frame series, decoded now (worker thread).

    Parameters
    ----------
    info : dict
        What :meth:`app.dicom.library.Library.scan` passes to ``on_series`` (series summary plus
        ``first_path`` and ``first_sop_uid``).
    """
    from app.dicom.pixels import frame_array, read_dataset

    path = info["first_path"]
    ds = read_dataset(path) if ds is None else ds
    facts = _header_facts(ds)
    series = SeriesData(
        frames=[FrameRef(path=path, frame=0, sop_uid=info.get("first_sop_uid", ""))],
        study_uid=info.get("study_uid", ""),
        series_uid=info.get("series_uid", ""),
        frame_of_reference_uid=facts["frame_of_reference_uid"],
        modality=facts["modality"] or info.get("modality", ""),
        description=facts["description"] or info.get("description", ""),
        series_number=facts["series_number"],
        rows=facts["rows"],
        columns=facts["columns"],
        pixel_spacing=facts["pixel_spacing"],
        spacing_source=facts["spacing_source"],
        orientation=facts["orientation"],
        slice_thickness=facts["slice_thickness"],
        windows=facts["windows"],
        monochrome1=facts["monochrome1"],
        is_color=facts["is_color"],
        units=facts["units"],
        meta=facts["meta"],
        cache=frame_cache(cache_bytes),
        preview=True,
    )
    series.decode = _decoder(series)
    series.read_header = _header_reader(series)
    # a big JPEG 2000 film is shown from a reduced-resolution decode first (a tenth of the time);
    # the viewer's decoder replaces it with the full image
    from app.gui.j2k import prefetch_full, reduced_frame, upsample_to

    prefetch_full(ds)  # the viewer asks for the full image next: decode it alongside
    small = reduced_frame(ds, PREVIEW_J2K_FACTOR)
    if small is not None:
        series.cache.put(0, upsample_to(small, facts["rows"], facts["columns"]))
        series.low_res.add(0)
        series.reduced[0] = small.astype(np.float32, copy=False)
    else:
        series.cache.put(0, frame_array(ds, 0))
    return series


def _candidate_files(paths: list[str], limit: int = 24) -> list[str]:
    """The first few files a scan would read, in the scanner's order (sorted walk), lazily."""
    out: list[str] = []

    def walk(folder: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if len(out) >= limit:
                return
            try:
                if e.is_file() and not e.name.lower().endswith(".zip"):
                    out.append(e.path)
            except OSError:
                continue
        for e in entries:
            if len(out) >= limit:
                return
            try:
                if e.is_dir():
                    walk(e.path)
            except OSError:
                continue

    for p in paths:
        if len(out) >= limit:
            break
        if os.path.isdir(p):
            walk(p)
        elif os.path.isfile(p) and not p.lower().endswith(".zip"):
            out.append(p)
    return out


def _is_index_file(path: str) -> bool:
    """True for a DICOMDIR (its file meta says so): an index, not an image."""
    from pydicom.filereader import read_file_meta_info

    from app.dicom.reading import MEDIA_STORAGE_DIRECTORY

    try:
        meta = read_file_meta_info(path)
    except Exception:  # noqa: BLE001 - not our concern here: the scan reports it
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY


def quick_preview(paths: list[str], cache_bytes: int = CACHE_BYTES) -> SeriesData | None:
    """Decode the first image found in ``paths`` before the scan starts (worker thread).

    The scanner reads every header (and indexes DICOMDIRs) before it reaches a later series;
    this looks only at the first few files in scan order, skipping indexes and unreadable files,
    so the first image is on screen within a fraction of a second.

    Returns
    -------
    SeriesData or None
        A one-frame preview, or None when none of the first files can be shown.
    """
    from app.dicom.pixels import number_of_frames, read_dataset
    from app.dicom.reading import safe_str

    for path in _candidate_files(paths):
        if _is_index_file(path):
            continue
        try:
            ds = read_dataset(path)
            if number_of_frames(ds) < 1:
                continue
            info = {
                "first_path": path,
                "first_sop_uid": safe_str(ds, "SOPInstanceUID"),
                "study_uid": safe_str(ds, "StudyInstanceUID"),
                "series_uid": safe_str(ds, "SeriesInstanceUID"),
            }
            return preview_series(info, cache_bytes, ds)
        except Exception as exc:  # noqa: BLE001 - the scan reports every bad file; try the next
            log.debug("preview candidate skipped: %s", type(exc).__name__)
    return None


class EarlyPreview:
    """The first image of the paths given on the command line, read and decoded on a thread
    started before Qt, pyqtgraph and the window are loaded and built.

    :func:`quick_preview` (the same function, on the same paths) runs while the GUI thread
    builds the window; JPEG-LS and JPEG 2000 films are decoded without holding the GIL
    (:mod:`app.dicom.jpegls`, :mod:`app.gui.j2k`), so the decode runs alongside it on another
    core. The import (:func:`import_paths`) takes the result instead of decoding again.
    Started only once :func:`load_pixel_pipeline` has imported everything it uses: the thread
    imports no module while the GUI thread imports Qt (two threads importing interdependent
    modules at once can meet CPython's import-deadlock guard). An image that needs a codec
    backend deferred by :mod:`app.dicom.deferred_codecs` (JPEG baseline or lossless, RLE, a
    small JPEG 2000 image) is therefore left to the import worker, as before.
    """

    def __init__(self, paths: list[str]) -> None:
        self.paths = [os.fspath(p) for p in paths if p]
        self.series: SeriesData | None = None
        self.failed = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="early-preview", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from app.dicom import deferred_codecs

        try:
            # an image that needs GDCM, pylibjpeg or Pillow (not loaded yet, deferred_codecs) is
            # left to the import worker: they are not imported here, alongside Qt's import
            with deferred_codecs.declining():
                self.series = quick_preview(self.paths)
            self.failed = deferred_codecs.declined_here()
        except BaseException as exc:  # noqa: BLE001 - the import decodes it again itself
            log.debug("early preview failed: %s", type(exc).__name__)
            self.failed = True
        finally:
            self._done.set()

    def take(self, paths: list[str], cache_bytes: int) -> tuple[bool, SeriesData | None]:
        """The preview of ``paths`` (waiting for it): ``(True, series or None)``, or
        ``(False, None)`` when it was made for other paths or failed (decode again)."""
        if [os.fspath(p) for p in paths] != self.paths:
            return False, None
        self._done.wait()
        if self.failed:
            return False, None
        series = self.series
        if series is not None:
            series.cache.max_bytes = int(cache_bytes)  # the settings' budget (read later)
            frame = series.cache.get(0)
            if frame is not None:
                series.cache.put(0, frame)
        return True, series


_early: list[EarlyPreview] = []


def start_early_preview(paths: list[str]) -> None:
    """Start reading and decoding the first image of ``paths`` now (``hilum gui PATH...``,
    after :func:`load_pixel_pipeline`, before Qt loads); the next :func:`import_paths` of the
    same paths takes it."""
    items = [os.fspath(p) for p in paths if p]
    if items:
        _early[:] = [EarlyPreview(items)]


def _take_early_preview(paths: list[str], cache_bytes: int) -> tuple[bool, SeriesData | None]:
    if not _early:
        return False, None
    return _early.pop().take(paths, cache_bytes)


def _frame_refs(stack: Any, instances: list[dict[str, Any]]) -> list[FrameRef]:
    """The display references of a stack's frames (in the stack's geometric order)."""
    location = {inst["path"]: inst.get("slice_location") for inst in instances}
    return [
        FrameRef(
            path=f.path,
            frame=f.index,
            sop_uid=f.sop_uid,
            instance_number=f.instance_number,
            position=f.position,
            slice_location=location.get(f.path) if f.frames_in_file == 1 else None,
        )
        for f in stack.frames
    ]


def _stack_data(
    stack: Any,
    stack_index: int,
    loaded: Any,
    instances: list[dict[str, Any]],
    info: dict[str, Any],
    study: dict[str, Any],
    cache_bytes: int,
) -> SeriesData:
    """One :class:`~app.dicom.series.Stack` as a displayable :class:`SeriesData` (no decode)."""
    facts = _header_facts(stack.frames[0].path)
    meta = dict(facts["meta"])
    meta["patient_name"] = meta.get("patient_name") or study.get("patient_name", "")
    meta["patient_id"] = meta.get("patient_id") or study.get("patient_id", "")
    _, rows, columns = stack.shape
    description = facts["description"] or info.get("description", "")
    if stack.label:
        description = f"{description} ({stack.label})" if description else stack.label
    first = stack.frames[0]
    series = SeriesData(
        frames=_frame_refs(stack, instances),
        study_uid=info.get("study_uid", instances[0]["study_uid"]),
        series_uid=loaded.series_uid or info.get("series_uid", ""),
        frame_of_reference_uid=facts["frame_of_reference_uid"],
        modality=facts["modality"] or info.get("modality", ""),
        description=description,
        series_number=facts["series_number"]
        if facts["series_number"] is not None
        else info.get("number"),
        rows=int(rows),
        columns=int(columns),
        pixel_spacing=facts["pixel_spacing"] or first.pixel_spacing,
        spacing_source=facts["spacing_source"] or ("PixelSpacing" if first.pixel_spacing else ""),
        orientation=first.orientation or facts["orientation"],
        slice_thickness=facts["slice_thickness"],
        windows=facts["windows"],
        monochrome1=facts["monochrome1"],
        is_color=facts["is_color"],
        units=facts["units"],
        meta=meta,
        # the series' notes (split into stacks, unreadable files) then this stack's geometry
        warnings=list(loaded.warnings) + list(stack.warnings),
        cache=frame_cache(cache_bytes),
        stack_index=stack_index,
    )
    series.decode = _decoder(series)
    series.read_header = _header_reader(series)
    return series


def _add_thumbnail(series: SeriesData, thumb_size: int) -> None:
    """Decode a middle frame for the browser's thumbnail (a problem is noted, not raised)."""
    mid = series.count // 2
    try:
        arr = _thumbnail_source(series, mid, thumb_size)
        if arr is None:
            arr = series.decode(mid)
            series.cache.put(mid, arr, focus=0)
        win = series.windows[0][:2] if series.windows else None
        series.thumbnail = thumbnail(arr, thumb_size, win, series.monochrome1)
    except Exception as exc:  # noqa: BLE001 - no thumbnail; the viewer says why per frame
        from app.gui.errors import user_message

        log.debug("thumbnail failed: %s", type(exc).__name__)
        series.thumbnail = None
        series.problems.append(
            {"path": series.frames[mid].path, "error": user_message(exc, with_name=False)}
        )


def build_series(
    series_uid: str,
    lib: Any = None,
    progress: Progress | None = None,
    cache_bytes: int = CACHE_BYTES,
    thumb_size: int = 72,
) -> list[SeriesData]:
    """Build the displayable stacks of an indexed series (worker thread).

    Stacking, ordering and geometry warnings come from :func:`app.dicom.series.load_series`
    (the one implementation the command line uses too): instances whose orientation or size
    differ, and enhanced multi-frame objects whose frames differ in frame type, temporal
    position or another dimension, become separate stacks. A middle frame of each is decoded
    for the thumbnail.

    Returns
    -------
    list of SeriesData
        One per stack (usually one), largest first.
    """
    from app.dicom.series import load_series

    progress = progress or NullProgress()
    lib = lib or _library()
    instances = lib.instances(series_uid)
    info = lib.series_info(series_uid) or {}
    if not instances:
        return []
    study = lib.study_info(info.get("study_uid", instances[0]["study_uid"])) or {}
    loaded = load_series(instances, progress)
    out: list[SeriesData] = []
    for stack_index, stack in enumerate(loaded.stacks):
        progress.check()
        series = _stack_data(stack, stack_index, loaded, instances, info, study, cache_bytes)
        series.problems.extend(loaded.errors if stack_index == 0 else [])
        _add_thumbnail(series, thumb_size)
        out.append(series)
    return out


def _thumbnail_source(series: SeriesData, index: int, size: int) -> np.ndarray | None:
    """A reduced decode for the thumbnail of a big JPEG 2000 film (None: decode normally)."""
    from app.dicom.pixels import read_dataset
    from app.gui.j2k import progressive_candidate, reduced_frame

    if series.count != 1 or series.rows * series.columns < 2_500_000:
        return None
    try:
        ds = read_dataset(series.frames[index].path)
    except Exception:  # noqa: BLE001
        return None
    if not progressive_candidate(ds):
        return None
    factor = max(0, int(math.log2(max(series.rows, series.columns) / max(size * 2, 1))))
    return reduced_frame(ds, min(factor, 5))


def _send_first_preview(
    paths: list[str], emit: Emit, cache_bytes: int, first_shown: threading.Event | None
) -> bool:
    """Emit the first image (the early preview, else :func:`quick_preview`) and wait for the
    GUI to paint it; then complete pydicom's codec plugins. True when a preview was sent."""
    items = [os.fspath(p) for p in paths]
    found, preview = _take_early_preview(items, cache_bytes)
    if not found:
        preview = quick_preview(items, cache_bytes)
    if preview is not None:
        emit(("preview", preview))
        if first_shown is not None:
            # let the GUI thread paint it before the scan competes for the interpreter
            first_shown.wait(FIRST_PAINT_WAIT_S)
    from app.dicom.deferred_codecs import complete

    complete()  # pydicom's codec backends, deferred at the start (load_pixel_pipeline)
    return preview is not None


def import_paths(
    paths: list[str],
    *,
    progress: Progress,
    emit: Emit,
    cache_bytes: int = CACHE_BYTES,
    thumb_size: int = 72,
    first_shown: threading.Event | None = None,
) -> dict[str, Any]:
    """Scan ``paths`` into the library and emit previews, series and errors (worker thread).

    ``first_shown``, when given, is set by the GUI once the preview is painted; the scan waits
    for it (at most :data:`FIRST_PAINT_WAIT_S`) so the first image is not slowed by the scan.

    Returns
    -------
    dict
        ``{"studies": [...], "errors": [...], "files": n, "series": n}``.
    """
    lib = _library()
    state = {"preview_sent": _send_first_preview(paths, emit, cache_bytes, first_shown)}

    def on_series(info: dict[str, Any]) -> None:
        # the first image of the first series goes to the screen before the scan goes on
        if state["preview_sent"]:
            return
        state["preview_sent"] = True
        try:
            emit(("preview", preview_series(info, cache_bytes)))
        except Exception as exc:  # noqa: BLE001 - the full series will say per frame what is wrong
            log.debug("preview failed: %s", type(exc).__name__)
            state["preview_sent"] = False

    report = lib.scan([os.fspath(p) for p in paths], progress=progress, on_series=on_series)
    emit(("errors", list(report.errors)))
    count = 0
    total = sum(len(s["series"]) for s in report.studies)
    for study in report.studies:
        for s in study["series"]:
            progress.check()
            progress.update(count, total, f"Preparing series {count + 1} of {total}")
            try:
                for stack in build_series(s["series_uid"], lib, progress, cache_bytes, thumb_size):
                    emit(("series", stack))
                    if stack.problems:
                        emit(("errors", list(stack.problems)))
            except Exception as exc:  # noqa: BLE001 - one bad series must not stop the others
                from app.gui.errors import user_message

                emit(
                    (
                        "errors",
                        [
                            {
                                "path": s.get("description") or s["series_uid"],
                                "error": user_message(exc, with_name=False),
                            }
                        ],
                    )
                )
            count += 1
    progress.update(total, total, f"Loaded {count} series")
    return {
        "studies": report.studies,
        "errors": report.errors,
        "files": report.files,
        "series": count,
    }


def load_pixel_pipeline() -> None:
    """Import what reading, decoding and windowing the first image needs: pydicom with its
    codec plugins (:mod:`app.dicom.pixels`) and OpenCV (:mod:`app.dicom.windowing`).

    ``hilum gui PATH...`` calls it before Qt is loaded: once ``PySide6.QtCore`` is imported,
    its ``__feature__`` import hook reads the source of every module imported after it
    (``inspect.getsource``, to see whether it uses PySide), which costs about a third more CPU
    time for pydicom's sixty modules (its data dictionaries are megabytes of source) and
    OpenCV's. Loaded first, they are imported once, without that check, on one thread (and
    :class:`EarlyPreview` then runs without importing anything).
    """
    import concurrent.futures  # noqa: F401 - app.gui.j2k's full-resolution prefetch
    import numpy.ctypeslib  # noqa: F401 - app.gui.j2k's decode

    import cv2  # noqa: F401

    from app.dicom import deferred_codecs

    # GDCM, pylibjpeg and Pillow load once the first image is painted (import_paths)
    deferred_codecs.request()

    import app.dicom.jpegls  # noqa: F401
    import app.dicom.pixels  # noqa: F401
    import app.gui.j2k  # noqa: F401


def list_library(*, progress: Progress) -> list[dict[str, Any]]:
    """Every study in the library (``hilum scan --json`` shape), newest first (worker thread).

    It runs at start-up, so it also loads the pixel pipeline's modules before the first import.
    """
    import app.dicom.pixels  # noqa: F401

    return _library().studies()


def open_library_series(
    series_uid: str, *, progress: Progress, cache_bytes: int = CACHE_BYTES, thumb_size: int = 72
) -> list[SeriesData]:
    """Build the stacks of a series already in the library (worker thread)."""
    return build_series(series_uid, None, progress, cache_bytes, thumb_size)
