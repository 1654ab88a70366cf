"""The pixel pipeline: decode a frame, apply the modality LUT, then the display transform.

Everything that DICOM defines as a LUT or colour operation goes through pydicom's own functions
(:func:`pydicom.pixels.apply_modality_lut`, :func:`~pydicom.pixels.apply_voi`,
:func:`~pydicom.pixels.apply_windowing`, :func:`~pydicom.pixels.apply_color_lut`; YBR to RGB
happens inside pydicom's decoders through :func:`~pydicom.pixels.convert_color_space`). This
module only chooses which attributes apply (per-frame functional groups of enhanced objects,
an explicit window), scales the result to 8 bits and inverts MONOCHROME1.

Decoding is lazy: :func:`read_dataset` leaves the pixel data on disk and :func:`frame_array`
decodes one frame. :class:`FrameCache` keeps recently decoded frames within a byte budget.
"""

from __future__ import annotations

import logging
import os
import struct
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, apply_windowing
from pydicom.pixels import pixel_array as _pixel_array
from pydicom.uid import UID

from app.core.errors import DicomError, PixelDecodeError, UsageError
from app.dicom.budget import check_image
from app.dicom.frame_cache import FrameCache  # noqa: F401 - re-exported (the one frame cache)
from app.dicom.reading import read_dataset as _read_dataset
from app.dicom.windowing import Window, auto_window, window_to_uint8  # noqa: F401 - re-exported
from app.dicom.reading import safe_get, safe_int, safe_str

log = logging.getLogger(__name__)

# pydicom logs every failed decoder attempt with a full traceback at ERROR level. Hilum turns
# those failures into one-line PixelDecodeErrors (logged here at debug level), so pydicom's own
# records would only put tracebacks in front of users.
if logging.getLogger("pydicom").level < logging.CRITICAL:
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)

__all__ = [
    "read_dataset",
    "number_of_frames",
    "decode_frame",
    "frame_array",
    "display_array",
    "default_window",
    "windows",
    "window_to_uint8",
    "FrameCache",
    "compression_name",
    "is_color",
]


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a dataset for display (pixel data is read lazily). See :mod:`app.dicom.reading`."""
    return _read_dataset(path)


def compression_name(ds: Dataset) -> str:
    """A short name of the pixel encoding: ``"JPEG 2000"``, ``"JPEG-LS"``, ``"uncompressed"`` ..."""
    try:
        uid = UID(str(ds.file_meta.TransferSyntaxUID))
        if not uid.is_transfer_syntax:
            return "unknown encoding"
        if not uid.is_compressed:
            return "deflated" if uid == "1.2.840.10008.1.2.1.99" else "uncompressed"
        name = uid.name if uid.is_valid else str(uid)
    except Exception:  # noqa: BLE001 - a corrupt transfer syntax UID
        return "unknown encoding"
    for family in (
        "High-Throughput JPEG 2000",
        "JPEG 2000",
        "JPEG-LS",
        "JPEG XL",
        "RLE",
        "MPEG",
        "HEVC",
        "Deflate",
    ):
        if family.lower() in name.lower():
            return family
    if "jpeg" in name.lower():
        return "JPEG"
    return name


def number_of_frames(ds: Dataset) -> int:
    """Number of frames (1 for single-frame images, 0 when there is no pixel data)."""
    if not any(t in ds for t in (0x7FE00010, 0x7FE00008, 0x7FE00009)):
        return 0
    n = safe_int(ds, "NumberOfFrames", 1)
    return max(1, n or 1)


def is_color(ds: Dataset) -> bool:
    """True for images shown in colour (RGB, YBR, palette colour)."""
    pi = safe_str(ds, "PhotometricInterpretation").upper()
    return (safe_int(ds, "SamplesPerPixel", 1) or 1) > 1 or pi == "PALETTE COLOR"


def transfer_syntax_label(ds: Dataset) -> str:
    """The transfer syntax by name and UID, e.g. ``"JPEG Extended (Process 2 and 4)
    (1.2.840.10008.1.2.4.51)"``; ``"none"`` when the file gives none."""
    try:
        uid = UID(str(ds.file_meta.TransferSyntaxUID))
    except Exception:  # noqa: BLE001 - absent or corrupt
        return "none"
    name = uid.name if uid.is_transfer_syntax else ""
    return f"{name} ({uid})" if name and name != str(uid) else str(uid)


def _declined(text: str) -> bool:
    """True when pydicom's decoder report says a decoder does not support the encoding.

    pydicom joins every plugin's failure into one message ("gdcm: GDCM does not support 'JPEG
    Extended' for samples with 12-bit precision", "pillow: Pillow does not support ...").
    """
    low = text.lower()
    return "does not support" in low or "is not supported" in low or "unsupported" in low


def _decode_error(ds: Dataset, exc: BaseException) -> PixelDecodeError:
    """A one-line reason why pixel data could not be decoded."""
    path = getattr(ds, "filename", None)
    spath = str(path) if isinstance(path, (str, os.PathLike)) else None
    text = str(exc)
    comp = compression_name(ds)
    log.debug("decode failed (%s): %s: %s", comp, type(exc).__name__, text[:300])
    missing = [
        k for k in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation") if k not in ds
    ]
    if missing:
        return PixelDecodeError(
            f"The image header is incomplete (missing {missing[0]}), "
            "so its pixels cannot be decoded.",
            spath,
        )
    syntax = transfer_syntax_label(ds)
    if comp == "unknown encoding":
        return PixelDecodeError(
            f"The file's transfer syntax ({syntax}) is not a DICOM transfer "
            "syntax Hilum knows, so its image data cannot be decoded.",
            spath,
        )
    if (
        isinstance(exc, NotImplementedError)
        or "missing required dependencies" in text
        or "no decoding plugins" in text.lower()
        or "no pixel data decoders" in text.lower()
    ):
        return PixelDecodeError(
            f"The image's transfer syntax, {syntax}, is not supported by the installed decoders.",
            spath,
        )
    if _declined(text):
        # every decoder that says why declines this variant (e.g. 12-bit JPEG Extended): the
        # data is not known to be corrupt, it is just not decodable here
        bits = safe_int(ds, "BitsStored")
        depth = f", {bits}-bit" if bits else ""
        return PixelDecodeError(
            f"This image's encoding ({syntax}{depth}) is not supported by the installed decoders.",
            spath,
        )
    if isinstance(exc, (EOFError, struct.error)) or "truncat" in text.lower():
        return PixelDecodeError("The file is truncated: its image data ends early.", spath)
    if comp == "uncompressed":
        return PixelDecodeError(
            "The image data is corrupt or incomplete and cannot be read.", spath
        )
    return PixelDecodeError(f"The image data is corrupt and cannot be decoded ({comp}).", spath)


def decode_frame(ds: Dataset, frame: int = 0) -> np.ndarray:
    """Decode one frame as stored (YBR converted to RGB), without any LUT.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A dataset from :func:`read_dataset`.
    frame : int
        0-based frame index.

    Returns
    -------
    numpy.ndarray
        (rows, cols) or (rows, cols, samples).

    Raises
    ------
    PixelDecodeError
        No pixel data, no decoder, or corrupt data.
    UsageError
        ``frame`` out of range.
    """
    n = number_of_frames(ds)
    if n == 0:
        what = safe_str(ds, "SOPClassUID")
        try:
            what = UID(what).name if what else "non-image object"
        except Exception:  # noqa: BLE001
            pass
        raise PixelDecodeError(
            f"The file has no image data (it is a {what}).",
            str(getattr(ds, "filename", "") or "") or None,
        )
    if not 0 <= frame < n:
        raise UsageError(
            f"Frame {frame} does not exist: the image has {n} frame(s) (0 to {n - 1})."
        )
    # refuse allocation bombs from the header and the codec stream, before any decoder runs
    check_image(ds)
    try:
        arr = _decode(ds, frame if n > 1 else None)
    except DicomError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - every decoder failure becomes one clear line
        # (BaseException: the Rust decoders raise pyo3 PanicException, which is not an Exception)
        raise _decode_error(ds, exc) from None
    if arr.ndim == 3 and n > 1 and arr.shape[0] == 1 and safe_int(ds, "SamplesPerPixel", 1) == 1:
        arr = arr[0]
    if not arr.dtype.isnative:  # big endian data: native order for everything downstream
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


#: transfer syntax -> the pydicom decoding plugin tried first. JPEG-LS: pyjpegls (CharLS) decodes
#: bit-identical pixels in about half the CPU time of GDCM, pydicom's first choice (whose plugin
#: also copies the codestream through a Python string): 68 ms against 131 ms for the bundled
#: 1955x1841 sample, the first image a new user sees
_PREFERRED_PLUGIN = {"1.2.840.10008.1.2.4.80": "pyjpegls", "1.2.840.10008.1.2.4.81": "pyjpegls"}


def _jpegls_without_gil(ds: Dataset, syntax: str) -> np.ndarray | None:
    """A one-frame grey unsigned JPEG-LS image through :mod:`app.dicom.jpegls` (the same CharLS
    as the pyjpegls plugin, without holding the GIL), or None (pydicom decodes it)."""
    from app.dicom.jpegls import JPEGLS_SYNTAXES, decode_grey

    if syntax not in JPEGLS_SYNTAXES or number_of_frames(ds) != 1:
        return None
    if safe_int(ds, "SamplesPerPixel", 1) != 1 or safe_int(ds, "PixelRepresentation", 0) != 0:
        return None
    if safe_int(ds, "BitsAllocated", 0) not in (8, 16) or "PixelData" not in ds:
        return None
    try:
        from pydicom.encaps import generate_frames

        codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
        return decode_grey(bytes(codestream), int(ds.Rows), int(ds.Columns))
    except Exception as exc:  # noqa: BLE001 - pydicom decodes (and says what is wrong)
        log.debug("JPEG-LS fast path skipped: %s", type(exc).__name__)
        return None


def _decode(ds: Dataset, index: int | None) -> np.ndarray:
    """pydicom's ``pixel_array`` with the preferred plugin first, then every plugin as pydicom
    orders them (the preferred one missing, or failing on this file). A one-frame grey JPEG-LS
    image is decoded by the same CharLS without holding the GIL first."""
    try:
        syntax = str(ds.file_meta.TransferSyntaxUID)
    except AttributeError:
        syntax = ""
    if index is None:
        arr = _jpegls_without_gil(ds, syntax)
        if arr is not None:
            return arr
    plugin = _PREFERRED_PLUGIN.get(syntax, "")
    if plugin:
        try:
            return _pixel_array(ds, index=index, decoding_plugin=plugin)
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - the other plugins get their turn
            log.debug("%s could not decode: %s", plugin, type(exc).__name__)
    return _pixel_array(ds, index=index)


def functional_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The item of a functional group macro that applies to ``frame`` (per-frame, else shared)."""
    for group_kw, index in (
        ("PerFrameFunctionalGroupsSequence", frame),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        try:
            groups = ds.get(group_kw)
            if groups and len(groups) > index:
                seq = groups[index].get(sequence)
                if seq:
                    return seq[0]
        except Exception:  # noqa: BLE001
            continue
    return None


_MODALITY_KEYS = ("RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence")
_VOI_KEYS = (
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
    "WindowCenterWidthExplanation",
)


def _frame_view(ds: Dataset, frame: int, keys: tuple[str, ...], sequence: str) -> Dataset:
    """A small dataset with the image pixel attributes and the LUT attributes for one frame.

    Classic images carry the attributes at the top level; enhanced multi-frame images carry them
    in the functional groups (``sequence`` per frame or shared).
    """
    view = Dataset()
    for kw in (
        "PhotometricInterpretation",
        "BitsStored",
        "BitsAllocated",
        "PixelRepresentation",
        "SamplesPerPixel",
    ):
        value = safe_get(ds, kw)
        if value is not None:
            setattr(view, kw, value)
    if hasattr(ds, "file_meta"):
        view.file_meta = ds.file_meta
    item = (
        functional_item(ds, frame, sequence)
        if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
        else None
    )
    for source in (ds, item):
        if source is None:
            continue
        for kw in keys:
            try:
                if kw in source:
                    view[kw] = source[kw]
            except Exception:  # noqa: BLE001
                continue
    return view


def _modality_view(ds: Dataset, frame: int) -> Dataset:
    return _frame_view(ds, frame, _MODALITY_KEYS, "PixelValueTransformationSequence")


def _voi_view(ds: Dataset, frame: int) -> Dataset:
    return _frame_view(ds, frame, _VOI_KEYS, "FrameVOILUTSequence")


def _to_uint8_rgb(rgb: np.ndarray, bits: int) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb[..., :3])
    top = float(2**bits - 1) if bits > 0 else float(rgb.max() or 1)
    out = np.clip(rgb[..., :3].astype(np.float32) * (255.0 / top), 0, 255)
    return np.ascontiguousarray(out.astype(np.uint8))


def modality_lut(arr: np.ndarray, ds: Dataset, frame: int = 0) -> np.ndarray:
    """Apply the modality LUT (rescale or LUT sequence) of ``frame`` to a grey array -> float32."""
    view = _modality_view(ds, frame)
    try:
        out = apply_modality_lut(arr, view)
    except Exception as exc:  # noqa: BLE001 - a broken LUT: show stored values, but say so
        log.warning("modality LUT not applied: %s", type(exc).__name__)
        out = arr
    return np.asarray(out, dtype=np.float32)


_PALETTE_DATA = (
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "AlphaPaletteColorLookupTableData",
)


def _big_endian(ds: Dataset) -> bool:
    """True when the dataset was encoded big endian (Explicit VR Big Endian)."""
    try:
        little = ds.file_meta._tsyntax_encoding[1] if hasattr(ds, "file_meta") else None
    except Exception:  # noqa: BLE001
        little = None
    if little is None:
        little = getattr(ds, "original_encoding", (None, True))[1]
    return little is False


def _palette_view(ds: Dataset) -> Dataset:
    """The dataset to give :func:`pydicom.pixels.apply_color_lut`, with native-order LUT data.

    pydicom 3.0.2 reads the (non-segmented) 16-bit palette LUT data with
    ``np.frombuffer(lut_bytes, dtype="uint16")``, i.e. in the machine's byte order, whatever the
    transfer syntax. OW values of an Explicit VR Big Endian file are kept as the file's bytes,
    so on a little-endian machine every LUT entry is byte-swapped and the image renders (almost)
    black. The segmented-LUT and Modality LUT paths of the same module do honour the transfer
    syntax. Here the LUT data of a big-endian file is swapped to native order before pydicom
    sees it; segmented LUTs are left to pydicom.

    Upstream report (pydicom/pydicom, to be filed; pydicom 3.0.2, numpy 2.4, x86-64)::

        Title: apply_color_lut ignores big endian transfer syntax for 16-bit palette LUT data

        from pydicom import dcmread
        from pydicom.data import get_testdata_file
        from pydicom.pixels import apply_color_lut
        le = dcmread(get_testdata_file("OBXXXX1A.dcm"))
        be = dcmread(get_testdata_file("OBXXXX1A_expb.dcm"))
        assert (le.pixel_array == be.pixel_array).all()       # indices agree
        print(apply_color_lut(le.pixel_array, le).max())      # 65280
        print(apply_color_lut(be.pixel_array, be).max())      # 255: LUT read byte-swapped

        Expected: identical RGB output. Cause: pydicom/pixels/processing.py apply_color_lut,
        branch "RedPaletteColorLookupTableData" uses np.frombuffer(lut_bytes, dtype=uint16)
        without the endianness the segmented branch takes from file_meta._tsyntax_encoding.
        Fix: dtype=np.dtype(f"uint{depth}").newbyteorder("><"[is_little_endian]).
    """
    if not _big_endian(ds) or "RedPaletteColorLookupTableData" not in ds:
        return ds
    view = Dataset()
    for elem in ds:
        if elem.tag.group == 0x7FE0 or elem.keyword in _PALETTE_DATA:
            continue  # pixel data is not needed; LUT data is added below, swapped (never
            # assigned into ds's own elements, which would swap the caller's dataset)
        view.add(elem)
    view.file_meta = ds.file_meta
    for kw in _PALETTE_DATA:
        try:
            data = ds.get(kw)
        except Exception:  # noqa: BLE001
            data = None
        if not isinstance(data, (bytes, bytearray)):
            if data is not None:
                view.add_new(ds[kw].tag, ds[kw].VR, data)
            continue
        try:
            depth = int(ds.RedPaletteColorLookupTableDescriptor[0]) or 65536
        except Exception:  # noqa: BLE001
            depth = 0
        if len(data) % 2 or (depth and len(data) != 2 * depth):
            view.add_new(ds[kw].tag, ds[kw].VR, data)
            continue  # 8-bit entries (or a length pydicom will reject): no byte order
        swapped = np.frombuffer(bytes(data), dtype=">u2").astype("=u2").tobytes()
        view.add_new(ds[kw].tag, ds[kw].VR, swapped)
    return view


def frame_array(ds_or_path: Dataset | str | os.PathLike[str], frame: int = 0) -> np.ndarray:
    """Decode a frame and apply its modality LUT.

    Parameters
    ----------
    ds_or_path : pydicom.dataset.Dataset or path
        The image.
    frame : int
        0-based frame index.

    Returns
    -------
    numpy.ndarray
        float32 (rows, cols) in modality units (HU for CT) for grey images, or uint8
        (rows, cols, 3) RGB for colour images (palette colour LUT applied).

    Raises
    ------
    PixelDecodeError, NotDicomError, DicomReadError, UsageError
    """
    ds = ds_or_path if isinstance(ds_or_path, Dataset) else read_dataset(ds_or_path)
    arr = decode_frame(ds, frame)
    pi = safe_str(ds, "PhotometricInterpretation").upper()
    if pi == "PALETTE COLOR" and arr.ndim == 2:
        try:
            rgb = apply_color_lut(arr, _palette_view(ds))
        except Exception:  # noqa: BLE001
            raise PixelDecodeError(
                "The palette colour table of this image is corrupt.",
                str(getattr(ds, "filename", "")) or None,
            ) from None
        bits = 16 if rgb.dtype == np.uint16 else 8
        try:
            bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        except Exception:  # noqa: BLE001
            pass
        return _to_uint8_rgb(rgb, bits)
    if arr.ndim == 3:
        return _to_uint8_rgb(arr, safe_int(ds, "BitsStored", 8) or 8)
    return modality_lut(arr, ds, frame)


def windows(ds: Dataset, frame: int = 0) -> list[tuple[float, float, str]]:
    """All windows the header offers for ``frame``: ``[(center, width, explanation), ...]``."""
    view = _voi_view(ds, frame)
    centers = safe_get(view, "WindowCenter")
    widths = safe_get(view, "WindowWidth")
    if centers is None or widths is None:
        return []
    try:
        cs = [
            float(c)
            for c in (
                centers
                if isinstance(centers, (list, tuple))
                or hasattr(centers, "__len__")
                and not isinstance(centers, (str, bytes))
                else [centers]
            )
        ]
        ws = [
            float(w)
            for w in (
                widths
                if isinstance(widths, (list, tuple))
                or hasattr(widths, "__len__")
                and not isinstance(widths, (str, bytes))
                else [widths]
            )
        ]
    except Exception:  # noqa: BLE001
        return []
    names = safe_get(view, "WindowCenterWidthExplanation", [])
    if isinstance(names, str):
        names = [names]
    out = []
    for i, (c, w) in enumerate(zip(cs, ws)):
        if not (np.isfinite(c) and np.isfinite(w)) or w <= 0:
            continue
        name = str(names[i]) if i < len(names) else ""
        out.append((c, w, name))
    return out


def default_window(ds: Dataset, arr: np.ndarray | None = None, frame: int = 0) -> Window | None:
    """The window an image is first shown with.

    The first header window (per-frame for enhanced images); when the header has none and
    ``arr`` (a :func:`frame_array` result) is given, one computed from the data; else None.
    """
    found = windows(ds, frame)
    if found:
        return found[0][0], found[0][1]
    if arr is not None and arr.ndim == 2:
        return auto_window(arr)
    return None


def _lut_range(item: Dataset, ds: Dataset) -> tuple[float, float]:
    """Range of the values of a LUT sequence item (to scale its output to 8 bits)."""
    try:
        desc = [int(v) for v in item.LUTDescriptor]
        nominal = desc[2]
        elem = item["LUTData"]
        if elem.VR == "OW" or isinstance(elem.value, (bytes, bytearray)):
            little = True
            try:
                little = bool(ds.file_meta._tsyntax_encoding[1])
            except Exception:  # noqa: BLE001
                pass
            data = np.frombuffer(bytes(elem.value), dtype="<u2" if little else ">u2")
        else:
            data = np.asarray(elem.value)
        if data.size:
            lo, hi = float(data.min()), float(data.max())
            if hi > lo:
                return lo, hi
        return 0.0, float(2**nominal - 1)
    except Exception:  # noqa: BLE001
        return 0.0, 65535.0


def _window_8bit(
    arr: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """Window to 0..255 with pydicom's :func:`apply_windowing`.

    A tiny dataset describing an unsigned 8-bit output makes pydicom's output range exactly
    0..255, so the result needs no further scaling.
    """
    view = Dataset()
    view.PhotometricInterpretation = "MONOCHROME2"
    view.BitsStored = 8
    view.PixelRepresentation = 0
    function = (function or "LINEAR").upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    if function == "LINEAR":
        width = max(width, 1.0)
    else:
        width = max(width, 1e-6)
    view.WindowCenter = float(center)
    view.WindowWidth = float(width)
    view.VOILUTFunction = function
    out = apply_windowing(arr, view)
    return np.clip(out, 0, 255).astype(np.uint8)


def display_array(
    ds: Dataset, arr: np.ndarray, window: Window | int | None = None, frame: int = 0
) -> np.ndarray:
    """The image as displayed, 8 bits.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The image's dataset.
    arr : numpy.ndarray
        :func:`frame_array` output for ``frame``.
    window : (center, width), int or None
        An explicit window in modality units; an int picks one of the header's windows (or VOI
        LUTs); None uses the header's VOI LUT, else its first window, else one fitted to the data.
    frame : int
        The frame ``arr`` is (for per-frame VOI attributes of enhanced images).

    Returns
    -------
    numpy.ndarray
        uint8 (rows, cols) grey, MONOCHROME1 already inverted; or uint8 (rows, cols, 3) colour.
    """
    if arr.ndim == 3:
        return arr if arr.dtype == np.uint8 else _to_uint8_rgb(arr, 16)
    view = _voi_view(ds, frame)
    function = safe_str(view, "VOILUTFunction") or "LINEAR"
    out: np.ndarray
    if isinstance(window, tuple):
        out = _window_8bit(arr, float(window[0]), float(window[1]), function)
    else:
        index = window if isinstance(window, int) else 0
        voi_seq = safe_get(view, "VOILUTSequence")
        found = windows(ds, frame)
        if (
            voi_seq
            and (window is None or index < len(voi_seq))
            and not (window is not None and found and index < len(found))
        ):
            try:
                item = voi_seq[min(index, len(voi_seq) - 1)]
                ints = np.rint(arr).astype(np.int64)
                lut = apply_voi(ints, view, min(index, len(voi_seq) - 1))
                lo, hi = _lut_range(item, ds)
                scaled = (lut.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1.0))
                out = np.clip(scaled, 0, 255).astype(np.uint8)
            except Exception as exc:  # noqa: BLE001 - fall back to a window
                log.warning("VOI LUT not applied: %s", type(exc).__name__)
                c, w = found[0][:2] if found else auto_window(arr)
                out = _window_8bit(arr, c, w, function)
        elif found:
            c, w, _ = found[min(index, len(found) - 1)]
            out = _window_8bit(arr, c, w, function)
        else:
            c, w = auto_window(arr)
            out = _window_8bit(arr, c, w, "LINEAR")
    if safe_str(ds, "PhotometricInterpretation").upper() == "MONOCHROME1":
        out = 255 - out  # MONOCHROME1: the lowest value is white
    return out


def describe(ds: Dataset) -> dict[str, Any]:
    """A few display facts about an image (no patient data)."""
    return {
        "rows": safe_int(ds, "Rows"),
        "columns": safe_int(ds, "Columns"),
        "frames": number_of_frames(ds),
        "photometric": safe_str(ds, "PhotometricInterpretation"),
        "compression": compression_name(ds),
        "modality": safe_str(ds, "Modality"),
    }
