"""Series geometry and volume loading.

A series is read into :class:`Stack` objects: frames that share orientation and image size,
sorted by position along the slice normal (ImagePositionPatient projected on the normal of
ImageOrientationPatient), falling back to InstanceNumber. Multi-frame objects contribute one
frame each, with their per-frame geometry for enhanced objects. Gantry tilt, uneven spacing,
missing slices, duplicate positions and mixed orientations or sizes are reported in
``warnings`` (mixed ones split the series into several stacks).

:meth:`Stack.volume` decodes the frames on a thread pool and applies the rescale at numpy level
(one multiply-add per slice into the output volume), which makes a CT load faster than GDCM's
and SimpleITK's readers on the same files (see ``benchmarks/dicom_load.py``).
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array as _pixel_array

from app.core.errors import DicomError, DicomReadError, HilumError, PixelDecodeError
from app.core.progress import NullProgress, Progress
from app.dicom.pixels import functional_item
from app.dicom.geometry import angle_deg, normal, orientation_key, slice_distance
from app.dicom.reading import (
    PixelInfo,
    raw_floats,
    raw_int,
    raw_text,
    read_header,
    safe_floats,
    safe_get,
    safe_str,
)

log = logging.getLogger(__name__)

__all__ = ["Frame", "Stack", "Series", "load_series", "GEOMETRY_KEYS"]

#: keys :meth:`Series.geometry` adds to a series in ``hilum scan --json``
GEOMETRY_KEYS = ("stacks", "warnings", "unreadable")


@dataclass
class Frame:
    """One 2-D frame of a stack: a single-frame file, or one frame of a multi-frame file."""

    path: str
    index: int  # frame index inside the file
    sop_uid: str
    instance_number: int | None
    rows: int
    columns: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slope: float = 1.0
    intercept: float = 0.0
    frames_in_file: int = 1
    header: Dataset | None = field(default=None, repr=False)
    lut: bool = False  # a Modality LUT Sequence applies (not a plain rescale)
    # uncompressed data: where the frame's bytes lie and how to read them (else None)
    native_offset: int = -1
    native_dtype: str | None = None
    shift: int = 0  # Bits Allocated - Bits Stored (unused high bits)
    # which stack of a multi-dimensional object the frame belongs to (frame type, temporal
    # position, non-spatial dimension indices), and that in words; () for plain images
    group: tuple[str, ...] = ()
    label: str = ""

    @property
    def distance(self) -> float | None:
        """Position along the slice normal (mm)."""
        return slice_distance(self.position, self.orientation)


@dataclass
class Stack:
    """Frames with one orientation and size, in order along the slice normal.

    Attributes
    ----------
    frames : list of Frame
    spacing : (z, y, x) in mm (z: between slices along the normal; y, x: pixel spacing)
    positions : numpy.ndarray or None
        (n, 3) ImagePositionPatient of each frame, when known.
    orientation : tuple or None
        ImageOrientationPatient (6 values).
    warnings : list of str
        Gantry tilt, uneven spacing, missing slices, duplicates ... one sentence each.
    tilt_deg : float
        Angle between the slice stacking direction and the slice normal (gantry tilt).
    """

    frames: list[Frame]
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    positions: np.ndarray | None = None
    orientation: tuple[float, ...] | None = None
    warnings: list[str] = field(default_factory=list)
    tilt_deg: float = 0.0
    modality: str = ""
    color: bool = False
    #: what sets the stack apart inside its series ("frame type M_FFE; temporal position 2")
    label: str = ""

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(n, rows, columns)."""
        f = self.frames[0]
        return len(self.frames), f.rows, f.columns

    @property
    def paths(self) -> list[str]:
        """The file of each frame, in stack order."""
        return [f.path for f in self.frames]

    def affine(self) -> np.ndarray:
        """4x4 voxel (k, i, j) -> patient (x, y, z) mm matrix, from the first frame's geometry."""
        out = np.eye(4)
        if self.orientation is None or self.positions is None:
            out[0, 0], out[1, 1], out[2, 2] = self.spacing[2], self.spacing[1], self.spacing[0]
            return out
        row = np.asarray(self.orientation[:3])
        col = np.asarray(self.orientation[3:])
        step = (
            (self.positions[-1] - self.positions[0]) / max(1, len(self.frames) - 1)
            if len(self.frames) > 1
            else np.cross(row, col) * self.spacing[0]
        )
        out[:3, 0] = step
        out[:3, 1] = col * self.spacing[1]
        out[:3, 2] = row * self.spacing[2]
        out[:3, 3] = self.positions[0]
        return out

    def volume(self, progress: Progress | None = None, workers: int | None = None) -> np.ndarray:
        """Decode every frame into one array.

        Parameters
        ----------
        progress : Progress, optional
            ``update`` per file; ``check`` (cancel) between files.
        workers : int, optional
            Decoding threads (default: CPU count, at most 8).

        Returns
        -------
        numpy.ndarray
            float32 (n, rows, cols) in modality units (HU for CT), or uint8 (n, rows, cols, 3)
            for colour images.

        Raises
        ------
        PixelDecodeError
            When no frame can be decoded (a few bad frames are filled with the volume minimum
            and listed in ``warnings``).
        Cancelled
            When the progress object was cancelled.

        Long because the threaded decode, rescale and progress/cancel loop share local state for speed.
        """
        progress = progress or NullProgress()
        n, rows, cols = self.shape
        from app.dicom.budget import check_dimensions

        # the whole series is allocated at once: refuse one beyond the pixel budget first
        check_dimensions(
            rows,
            cols,
            n,
            3 if self.color else 1,
            32,
            what="The series",
            path=self.frames[0].path if self.frames else None,
        )
        vol = np.empty(
            (n, rows, cols, 3) if self.color else (n, rows, cols),
            dtype=np.uint8 if self.color else np.float32,
        )
        by_file: dict[str, list[int]] = {}
        for k, f in enumerate(self.frames):
            by_file.setdefault(f.path, []).append(k)
        files = list(by_file.items())
        failed: list[tuple[int, str]] = []

        def load(item: tuple[str, list[int]]) -> None:
            path, ks = item
            if progress.cancelled:
                return
            first = self.frames[ks[0]]
            try:
                if self.color:
                    # colour: the full pipeline (palette LUT, YBR) per frame, as displayed
                    from app.dicom.pixels import frame_array, read_dataset

                    ds = read_dataset(path)
                    for k in ks:
                        vol[k] = frame_array(ds, self.frames[k].index)
                    return
                if first.native_dtype is not None:
                    arrays = {}
                    with open(path, "rb") as fh:
                        for k in ks:
                            f = self.frames[k]
                            fh.seek(f.native_offset)
                            a = np.fromfile(fh, dtype=f.native_dtype, count=rows * cols)
                            if a.size != rows * cols:
                                raise PixelDecodeError(
                                    "The file is truncated: its image data ends early.", path
                                )
                            a = a.reshape(rows, cols)
                            if f.shift:  # clear unused high bits / extend the sign, as pydicom does
                                np.left_shift(a, f.shift, out=a)
                                np.right_shift(a, f.shift, out=a)
                            arrays[f.index] = a
                elif not _stream_ok(path):
                    raise AssertionError("unreachable")  # _stream_ok raises PixelBudgetError
                elif first.frames_in_file > 1 and len(ks) < first.frames_in_file / 2:
                    arrays = {
                        self.frames[k].index: _pixel_array(path, index=self.frames[k].index)
                        for k in ks
                    }
                else:
                    whole = _pixel_array(path)
                    if first.frames_in_file == 1:
                        arrays = {0: whole}
                    else:
                        arrays = {self.frames[k].index: whole[self.frames[k].index] for k in ks}
            except HilumError as exc:
                failed.extend((k, exc.message) for k in ks)
                return
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - reported per slice (incl. Rust panics)
                from app.dicom.pixels import _decode_error

                hdr = first.header if first.header is not None else Dataset()
                failed.extend((k, _decode_error(hdr, exc).message) for k in ks)
                return
            for k in ks:
                f = self.frames[k]
                arr = arrays[f.index]
                if arr.shape != (rows, cols):
                    failed.append((k, f"The frame has size {arr.shape}, not {(rows, cols)}."))
                    continue
                if f.lut and f.header is not None:
                    from app.dicom.pixels import modality_lut

                    vol[k] = modality_lut(arr, f.header, f.index)
                else:
                    # numpy-level rescale straight into the output slice (no float64 temporary)
                    np.multiply(arr, np.float32(f.slope), out=vol[k], casting="unsafe")
                    if f.intercept:
                        vol[k] += np.float32(f.intercept)

        nworkers = workers or min(8, os.cpu_count() or 2)
        done = 0
        if nworkers <= 1 or len(files) < 4:
            for item in files:
                progress.check()
                load(item)
                done += 1
                progress.update(done, len(files), "Loading slices")
        else:
            with ThreadPoolExecutor(
                max_workers=nworkers, thread_name_prefix="hilum-decode"
            ) as pool:
                for _ in pool.map(load, files):
                    done += 1
                    progress.update(done, len(files), "Loading slices")
                    if progress.cancelled:
                        break
        progress.check()
        if failed:
            if len(failed) == n:
                raise PixelDecodeError(failed[0][1], self.frames[failed[0][0]].path)
            good = np.ones(n, dtype=bool)
            good[[k for k, _ in failed]] = False
            fill = vol[good].min() if not self.color else 0
            for k, _ in failed:
                vol[k] = fill
            self.warnings.append(
                f"{len(failed)} slice(s) could not be decoded and are shown blank: {failed[0][1]}"
            )
        return vol


@dataclass
class Series:
    """A loaded series: one or more stacks plus what could not be read.

    Attributes
    ----------
    stacks : list of Stack
        Largest first.
    warnings : list of str
        Series-level notes (split into stacks, files skipped).
    errors : list of dict
        ``{"path", "error"}`` per file that could not be read.
    """

    stacks: list[Stack]
    warnings: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    series_uid: str = ""
    modality: str = ""

    @property
    def main(self) -> Stack:
        """The largest stack."""
        return self.stacks[0]

    def geometry(self) -> dict[str, Any]:
        """The series' geometry as plain JSON values (``hilum scan --json``).

        Returns
        -------
        dict
            ``{"stacks": [{"label", "slices", "rows", "columns", "spacing_mm" (z, y, x),
            "tilt_deg", "warnings"}], "warnings": [...], "unreadable": n}``.
        """
        stacks = []
        for st in self.stacks:
            n, rows, cols = st.shape
            stacks.append(
                {
                    "label": st.label,
                    "slices": n,
                    "rows": rows,
                    "columns": cols,
                    "spacing_mm": [round(float(v), 4) for v in st.spacing],
                    "tilt_deg": round(float(st.tilt_deg), 2),
                    "warnings": list(st.warnings),
                }
            )
        return {"stacks": stacks, "warnings": list(self.warnings), "unreadable": len(self.errors)}


def _stream_ok(path: str) -> bool:
    """Refuse a compressed file whose codec stream claims more than the pixel budget (raises
    :class:`app.dicom.budget.PixelBudgetError`); True otherwise."""
    from app.dicom.budget import check_file

    check_file(path)
    return True


def _float(value: Any, default: float) -> float:
    try:
        v = float(value)
        return v if math.isfinite(v) else default
    except Exception:  # noqa: BLE001
        return default


def _fg(ds: Dataset, frame: int, seq: str) -> Dataset | None:
    """Functional group item for a frame: per-frame first, then shared."""
    return functional_item(ds, frame, seq)


def _tuple(values: list[float] | None) -> Any:
    return tuple(values) if values is not None else None


_NATIVE = {"1.2.840.10008.1.2": "<", "1.2.840.10008.1.2.1": "<", "1.2.840.10008.1.2.2": ">"}

#: elements load_series needs (reading only these is several times faster than a full header)
_GEOMETRY_KW = (
    "SOPInstanceUID",
    "SOPClassUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "SliceLocation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "ModalityLUTSequence",
    "GantryDetectorTilt",
    "GridFrameOffsetVector",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
    "SpecificCharacterSet",
    "DimensionIndexSequence",
    "ImageType",
    "TemporalPositionIdentifier",
)


def _geometry_tags() -> list[int]:
    from pydicom.datadict import tag_for_keyword

    return [int(t) for t in (tag_for_keyword(k) for k in _GEOMETRY_KW) if t is not None]


_TAGS = _geometry_tags()


#: Dimension Index Pointers that step through space (or just number the frames): frames that
#: differ only in these belong to one stack. Any other dimension (Temporal Position Index,
#: echo time, b-value, a private "image type" dimension ...) separates stacks.
_SPATIAL_DIMENSIONS = {
    0x00200032,  # Image Position (Patient)
    0x00209057,  # In-Stack Position Number
    0x00201041,  # Slice Location
    0x00200013,  # Instance Number (legacy converted objects)
    0x00209156,  # Frame Acquisition Number
}


def _dimension_pointers(ds: Dataset) -> list[tuple[int, str]]:
    """``(pointer tag, description)`` of each dimension of an enhanced object's index."""
    out: list[tuple[int, str]] = []
    for item in safe_get(ds, "DimensionIndexSequence", []) or []:
        try:
            tag = int(item.DimensionIndexPointer)
        except Exception:  # noqa: BLE001
            tag = -1
        name = safe_str(item, "DimensionDescriptionLabel")
        if not name and tag >= 0:
            from pydicom.datadict import keyword_for_tag

            name = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        out.append((tag, name))
    return out


def _frame_type(ds: Dataset, frame: int) -> str:
    """FrameType of an enhanced frame (from its ``*FrameTypeSequence``, per-frame or shared)."""
    for group_kw, index in (
        ("PerFrameFunctionalGroupsSequence", frame),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        try:
            groups = ds.get(group_kw)
            if not groups or len(groups) <= index:
                continue
            for elem in groups[index]:
                if elem.keyword.endswith("FrameTypeSequence") and elem.value:
                    value = elem.value[0].get("FrameType")
                    if value:
                        return (
                            "\\".join(str(v) for v in value)
                            if not isinstance(value, str)
                            else value
                        )
        except Exception:  # noqa: BLE001
            continue
    return ""


def _stack_group(
    ds: Dataset, frame: int, dims: list[tuple[int, str]]
) -> tuple[tuple[str, ...], str]:
    """The stack key and label of one frame of an enhanced object.

    Frames with another Frame Type (magnitude / phase), Temporal Position Index or index along
    a non-spatial dimension are different stacks: sorting them together by position would
    interleave them into one nonsense volume.
    """
    key: list[str] = []
    words: list[str] = []
    ftype = _frame_type(ds, frame)
    if ftype:
        key.append(ftype)
        words.append(f"frame type {ftype}")
    content = _fg(ds, frame, "FrameContentSequence")
    if content is not None:
        stack_id = safe_str(content, "StackID")
        if stack_id:
            key.append(f"stack {stack_id}")
            words.append(f"stack {stack_id}")
        values = safe_get(content, "DimensionIndexValues")
        if (
            values is not None
            and not isinstance(values, (list, tuple))
            and not hasattr(values, "__len__")
        ):
            values = [values]
        temporal_dim = False
        for (tag, name), value in zip(dims, list(values or [])):
            if tag in _SPATIAL_DIMENSIONS or tag == 0x00209056:  # Stack ID: taken above
                continue
            temporal_dim = temporal_dim or tag == 0x00209128
            key.append(f"{tag}={value}")
            words.append(f"{name} {value}")
        temporal = safe_get(content, "TemporalPositionIndex")
        if temporal is not None and not temporal_dim:
            key.append(f"t={temporal}")
            words.append(f"temporal position {temporal}")
    return tuple(key), "; ".join(words)


def _frames_of(ds: Dataset, path: str, info: PixelInfo | None = None) -> list[Frame]:
    """The frames of one file with their geometry.

    Long because classic and enhanced multi-frame geometry are read side by side so their rules stay comparable.
    """
    rows = raw_int(ds, 0x00280010) or 0
    cols = raw_int(ds, 0x00280011) or 0
    if rows <= 0 or cols <= 0:
        raise DicomReadError("The file has no image (no rows/columns).", path)
    n = max(1, raw_int(ds, 0x00280008) or 1)
    sop = raw_text(ds, 0x00080018)
    inum = raw_int(ds, 0x00200013)
    lut = "ModalityLUTSequence" in ds and bool(safe_get(ds, "ModalityLUTSequence"))
    pos = _tuple(raw_floats(ds, 0x00200032, 3))
    ori = _tuple(raw_floats(ds, 0x00200037, 6))
    ps = _tuple(raw_floats(ds, 0x00280030, 2))
    slope_v = raw_floats(ds, 0x00281053, 1)
    icpt_v = raw_floats(ds, 0x00281052, 1)
    slope = slope_v[0] if slope_v else 1.0
    intercept = icpt_v[0] if icpt_v else 0.0
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    # where uncompressed frames lie in the file, so the volume can read them directly
    native_dtype: str | None = None
    shift = 0
    frame_bytes = 0
    if info is not None and info.present and not info.encapsulated:
        order = _NATIVE.get(str(ds.file_meta.get("TransferSyntaxUID", "")))
        bits = raw_int(ds, 0x00280100) or 0
        stored = raw_int(ds, 0x00280101) or bits
        signed = (raw_int(ds, 0x00280103) or 0) == 1
        spp = raw_int(ds, 0x00280002) or 1
        if order and spp == 1 and bits in (8, 16, 32) and 0 < stored <= bits:
            native_dtype = f"{order}{'i' if signed else 'u'}{bits // 8}"
            shift = bits - stored
            frame_bytes = rows * cols * bits // 8
            if info.length < frame_bytes * n:
                native_dtype = None  # let pydicom report the short data
    frames: list[Frame] = []
    offsets: list[float] | None = None
    dims = _dimension_pointers(ds) if enhanced else []
    classic_group: tuple[str, ...] = ()
    classic_label = ""
    if not enhanced:
        # classic files: several phases (or image types) of one series at the same positions are
        # separated in load_series, only when positions repeat
        temporal = safe_str(ds, "TemporalPositionIdentifier")
        itype = safe_get(ds, "ImageType")
        itype_s = (
            "\\".join(str(v) for v in itype)
            if isinstance(itype, (list, tuple))
            or (itype is not None and not isinstance(itype, str))
            else str(itype or "")
        )
        classic_group = (itype_s, temporal)
        classic_label = "; ".join(
            w
            for w in (
                f"image type {itype_s}" if itype_s else "",
                f"temporal position {temporal}" if temporal else "",
            )
            if w
        )
    if n > 1 and not enhanced:
        grid = safe_get(ds, "GridFrameOffsetVector")
        try:
            if grid is not None and len(grid) == n:
                offsets = [float(v) for v in grid]
        except Exception:  # noqa: BLE001
            offsets = None
        if offsets is None:
            step = _float(safe_get(ds, "SpacingBetweenSlices", 0.0), 0.0)
            if step:
                offsets = [i * step for i in range(n)]
    for i in range(n):
        f_pos, f_ori, f_ps, f_slope, f_icpt = pos, ori, ps, slope, intercept
        group, label = classic_group, classic_label
        if enhanced:
            group, label = _stack_group(ds, i, dims)
            item = _fg(ds, i, "PlanePositionSequence")
            if item is not None:
                f_pos = _tuple(safe_floats(item, "ImagePositionPatient", 3)) or f_pos
            item = _fg(ds, i, "PlaneOrientationSequence")
            if item is not None:
                f_ori = _tuple(safe_floats(item, "ImageOrientationPatient", 6)) or f_ori
            item = _fg(ds, i, "PixelMeasuresSequence")
            if item is not None:
                f_ps = _tuple(safe_floats(item, "PixelSpacing", 2)) or f_ps
            item = _fg(ds, i, "PixelValueTransformationSequence")
            if item is not None:
                f_slope = _float(safe_get(item, "RescaleSlope", f_slope), f_slope)
                f_icpt = _float(safe_get(item, "RescaleIntercept", f_icpt), f_icpt)
        elif offsets is not None and pos is not None and ori is not None:
            nrm = normal(ori)
            if nrm is not None:
                f_pos = tuple(float(v) for v in np.asarray(pos) + offsets[i] * nrm)
        frames.append(
            Frame(
                path=path,
                index=i,
                sop_uid=sop,
                instance_number=inum,
                rows=rows,
                columns=cols,
                position=f_pos,
                orientation=f_ori,
                pixel_spacing=f_ps,
                slope=f_slope,
                intercept=f_icpt,
                frames_in_file=n,
                header=ds,
                lut=lut,
                native_offset=(info.value_offset + i * frame_bytes)
                if native_dtype and info
                else -1,
                native_dtype=native_dtype,
                shift=shift,
                group=(("enhanced",) if enhanced else ("classic",)) + group,
                label=label,
            )
        )
    return frames


def _build_stack(
    frames: list[Frame], modality: str, color: bool, tilt_header: float, label: str = ""
) -> Stack:
    """Sort frames and measure spacing, tilt, gaps.

    Long because the geometry checks (tilt, spacing, missing slices, mixed sizes) share the sorted positions they all read.
    """
    warnings: list[str] = []
    geo = all(f.distance is not None for f in frames)
    if geo:
        frames = sorted(frames, key=lambda f: (f.distance, f.instance_number or 0, f.index))
    else:
        frames = sorted(
            frames,
            key=lambda f: (
                f.instance_number if f.instance_number is not None else 1 << 30,
                f.path,
                f.index,
            ),
        )
    ps = frames[0].pixel_spacing
    if ps is None or min(ps) <= 0:
        ps = (1.0, 1.0)
        if modality in ("CT", "MR", "PT", "NM"):
            warnings.append("The images give no pixel spacing; 1 mm is assumed.")
    z = 1.0
    tilt = 0.0
    positions = None
    orientation = frames[0].orientation
    if geo and len(frames) > 1:
        positions = np.asarray([f.position for f in frames], dtype=np.float64)
        d = np.asarray([f.distance for f in frames], dtype=np.float64)
        gaps = np.diff(d)
        dup = int(np.sum(gaps < 1e-3))
        real = gaps[gaps >= 1e-3]
        if dup:
            warnings.append(
                f"{dup} slice(s) share a position with another slice "
                "(duplicates or several phases)."
            )
        if real.size:
            z = float(np.median(real))
            ratio = real / z
            # a gap of (about) 2, 3 ... times the usual spacing means slices are missing; other
            # differences (e.g. 4 mm slices followed by 7 mm slices) are uneven spacing
            multiple = (np.round(ratio) >= 2) & (np.abs(ratio - np.round(ratio)) < 0.15)
            missing = real[multiple]
            rest = real[~multiple]
            if missing.size:
                count = int(np.sum(np.round(missing / z) - 1))
                warnings.append(
                    f"About {count} slice(s) missing: gap of {float(missing.max()):.2f} "
                    f"mm where {z:.2f} mm is expected."
                )
            if rest.size and float(rest.max() - rest.min()) > max(0.01 * z, 0.01):
                warnings.append(
                    f"Uneven slice spacing: {float(rest.min()):.2f} to "
                    f"{float(rest.max()):.2f} mm between slices."
                )
        nrm = normal(orientation) if orientation is not None else None
        direction = positions[-1] - positions[0]
        if nrm is not None and float(np.linalg.norm(direction)) > 1e-6:
            tilt = angle_deg(direction, nrm)
            if tilt > 0.5:
                warnings.append(
                    f"Gantry tilt of {tilt:.1f} degrees: slices are sheared along "
                    "the stack; measurements across slices need care."
                )
                # the slices lie further apart along the table than along the normal
    elif not geo and len(frames) > 1:
        thickness = (
            _float(
                safe_get(frames[0].header, "SpacingBetweenSlices", 0)
                or safe_get(frames[0].header, "SliceThickness", 0),
                0.0,
            )
            if frames[0].header is not None
            else 0.0
        )
        z = thickness or 1.0
        if modality in ("CT", "MR", "PT", "NM") and frames[0].frames_in_file == 1:
            warnings.append("The slices have no position; they are ordered by instance number.")
    elif len(frames) == 1 and frames[0].header is not None:
        z = _float(safe_get(frames[0].header, "SliceThickness", 1.0), 1.0) or 1.0
    if tilt <= 0.5 and abs(tilt_header) > 0.5:
        tilt = abs(tilt_header)
        warnings.append(f"Gantry tilt of {tilt:.1f} degrees (from the header).")
    elif positions is None and len(frames) == 1 and positions is None and frames[0].position:
        positions = np.asarray([frames[0].position], dtype=np.float64)
    return Stack(
        frames=frames,
        spacing=(abs(z), float(ps[0]), float(ps[1])),
        positions=positions,
        orientation=orientation,
        warnings=warnings,
        tilt_deg=tilt,
        modality=modality,
        color=color,
        label=label,
    )


def _split_dimensions(frames: list[Frame]) -> dict[tuple[Any, ...], list[Frame]]:
    """Frames of one orientation and size, separated by their :attr:`Frame.group`.

    Enhanced objects are split whenever their frames differ in type, temporal position or a
    non-spatial dimension. Classic single-frame series are split by ImageType / Temporal
    Position Identifier only when slice positions repeat (several phases at the same places):
    a CT whose first slice is marked differently stays one stack.
    """
    by: dict[tuple[Any, ...], list[Frame]] = {}
    for f in frames:
        by.setdefault(f.group, []).append(f)
    if len(by) <= 1:
        return {(): frames}
    if all(f.group[:1] == ("enhanced",) for f in frames):
        return by
    known = [f.distance for f in frames]
    if any(d is None for d in known):
        return {(): frames}
    rounded = [round(float(d), 2) for d in known]  # type: ignore[arg-type]
    if len(set(rounded)) == len(rounded):
        return {(): frames}
    return by


def load_series(
    instances_or_paths: Iterable[dict[str, Any] | str | os.PathLike[str]],
    progress: Progress | None = None,
) -> Series:
    """Read the headers of a series and arrange its frames into stacks.

    Parameters
    ----------
    instances_or_paths : iterable
        Instance dicts from :meth:`app.dicom.library.Library.instances` (their ``path`` is
        used) or file paths.
    progress : Progress, optional
        ``update`` per file and ``check`` (cancel).

    Returns
    -------
    Series
        Pixels are not decoded here; call :meth:`Stack.volume`.

    Raises
    ------
    DicomReadError
        When no file of the series can be read (the first file's reason).

    Long because grouping, sorting and every geometry warning are one readable sequence.
    """
    progress = progress or NullProgress()
    items = list(instances_or_paths)
    paths_: list[str] = []
    for it in items:
        if isinstance(it, dict):
            paths_.append(str(it["path"]))
        else:
            paths_.append(os.fspath(it))
    errors: list[dict[str, str]] = []
    frames: list[Frame] = []
    modality = ""
    series_uid = ""
    tilt_header = 0.0
    photometric = ""
    seen: set[str] = set()
    for i, path in enumerate(paths_):
        progress.check()
        progress.update(i, len(paths_), "Reading slice headers")
        try:
            ds, info = read_header(path, _TAGS)
            if not info.present:
                raise PixelDecodeError("The file has no image data.", path)
            ds.filename = path
            sop = raw_text(ds, 0x00080018)
            if sop and sop in seen:
                continue  # the same instance listed twice
            seen.add(sop)
            frames.extend(_frames_of(ds, path, info))
        except DicomError as exc:
            errors.append({"path": path, "error": exc.message})
            continue
        except Exception as exc:  # noqa: BLE001
            log.debug("header failed: %s", type(exc).__name__)
            errors.append({"path": path, "error": "The file cannot be read as DICOM."})
            continue
        if not modality:
            modality = safe_str(ds, "Modality")
            series_uid = safe_str(ds, "SeriesInstanceUID")
            photometric = safe_str(ds, "PhotometricInterpretation").upper()
            tilt_header = _float(safe_get(ds, "GantryDetectorTilt", 0.0), 0.0)
    progress.update(len(paths_), len(paths_), "Arranging slices")
    if not frames:
        if errors:
            raise DicomReadError(errors[0]["error"], errors[0]["path"])
        raise DicomReadError("The series holds no images.")
    color = photometric not in ("MONOCHROME1", "MONOCHROME2", "")
    groups: dict[tuple[Any, ...], list[Frame]] = {}
    for f in frames:
        key = (orientation_key(f.orientation, 2), f.rows, f.columns)
        groups.setdefault(key, []).append(f)
    geometric = len(groups)
    groups = {
        k + sub: g for k, frames_ in groups.items() for sub, g in _split_dimensions(frames_).items()
    }
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
    # a stack is labelled only when it was split from others at the same positions
    stacks = [
        _build_stack(g, modality, color, tilt_header, g[0].label if k[3:] else "")
        for k, g in ordered
    ]
    warnings: list[str] = []
    if geometric > 1:
        warnings.append(
            f"The series mixes orientations or image sizes; it is split into {len(stacks)} stacks."
        )
    elif len(stacks) > 1:
        warnings.append(
            f"The series holds {len(stacks)} stacks at the same positions (image "
            "types, phases or other dimensions); each is shown on its own."
        )
    if errors:
        warnings.append(f"{len(errors)} file(s) of the series could not be read.")
    return Series(
        stacks=stacks, warnings=warnings, errors=errors, series_uid=series_uid, modality=modality
    )
