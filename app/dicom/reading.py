"""Reading DICOM headers and datasets with errors a user understands.

Every failure of pydicom (or of a file) is turned into a :class:`~app.core.errors.DicomError`
subclass whose message is one plain sentence: ``"The file is empty (0 bytes)."``,
``"Not a DICOM file (no DICOM header found)."``, ``"The file is truncated: its header ends
early."`` and so on. Nothing here lets a raw pydicom exception escape.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from app.core.errors import DicomError, DicomReadError, NotDicomError

log = logging.getLogger(__name__)

#: SOP Class of a DICOMDIR (Media Storage Directory Storage)
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

#: Pixel data tags: Pixel Data, Float Pixel Data, Double Float Pixel Data
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)

#: Values larger than this are not read into memory with the dataset (pixel data, big LUTs);
#: pydicom reads them from the file when they are used.
DEFER_SIZE = 256 * 1024

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class PixelInfo:
    """Where the pixel data element of a file lies.

    Attributes
    ----------
    offset : int
        File offset of the pixel data element's tag (-1 when the file has no pixel data).
    value_offset : int
        File offset of its value.
    length : int
        Value length in bytes (``0xFFFFFFFF`` for encapsulated data).
    encapsulated : bool
        True for compressed (encapsulated) pixel data.
    """

    offset: int = -1
    value_offset: int = -1
    length: int = 0
    encapsulated: bool = False

    @property
    def present(self) -> bool:
        """True when the file holds a pixel data element."""
        return self.offset >= 0


def _looks_like_raw_dicom(head: bytes) -> bool:
    """True for a DICOM file written without preamble and 'DICM' (old ACR-NEMA style).

    Such a file starts with an element of group 0x0002 (file meta) or 0x0008 (identifying).
    """
    if len(head) < 8:
        return False
    for order in ("<", ">"):
        group, elem = struct.unpack(order + "HH", head[:4])
        if group in (0x0002, 0x0008) and elem < 0x1000:
            return True
    return False


def _translate(exc: BaseException, path: str, size: int) -> DicomError:
    """Turn an exception raised while reading a header into a user-readable error."""
    if isinstance(exc, DicomError):
        return exc
    if isinstance(exc, InvalidDicomError):
        return NotDicomError("Not a DICOM file (no DICOM header found).", path)
    if isinstance(exc, (EOFError, struct.error)):
        return DicomReadError("The file is truncated: its header ends early.", path)
    if isinstance(exc, MemoryError):
        return DicomReadError("The DICOM header is corrupt: it declares an impossible size.", path)
    if isinstance(exc, OSError) and exc.errno is None:
        # pydicom raises a bare OSError ("No tag to read at file position ...") when a length
        # field sends it past the data, e.g. a sequence item declaring 4 GB: a corrupt header,
        # not a failing disk
        log.debug("header parse failed: %s", exc)
        return DicomReadError("The DICOM header is corrupt (a length field points past the "
                              "data) and cannot be read.", path)
    if isinstance(exc, OSError):
        return DicomReadError(f"The file cannot be read ({exc.strerror or 'I/O error'}).", path)
    log.debug("header read failed: %s: %s", type(exc).__name__, exc)
    return DicomReadError("The DICOM header is corrupt and cannot be read.", path)


def _fix_transfer_syntax(ds: Dataset) -> None:
    """Give a dataset without file meta a Transfer Syntax UID (needed to decode its pixels)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _open_checks(path: str, fh: IO[bytes] | None = None) -> tuple[int, bool]:
    """Check size and magic; return ``(size, force)`` or raise a clear error.

    With ``fh`` (an open file) the checks use it and leave it at offset 0.
    """
    if fh is None:
        try:
            if os.path.isdir(path):
                raise NotDicomError("This is a folder, not a file.", path)
            with open(path, "rb") as own:
                return _open_checks(path, own)
        except DicomError:
            raise
        except FileNotFoundError:
            raise DicomReadError("The file does not exist.", path) from None
        except OSError as exc:
            raise _translate(exc, path, 0) from None
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        raise NotDicomError("The file is empty (0 bytes).", path)
    head = fh.read(132)
    fh.seek(0)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return size, False
    if _looks_like_raw_dicom(head):
        return size, True
    raise NotDicomError("Not a DICOM file (no DICOM header found).", path)


def _pixel_info(fh: IO[bytes], ds: Dataset, size: int, path: str) -> PixelInfo:
    """Read the pixel data element header at the current position and check it fits the file.

    ``dcmread(stop_before_pixels=True)`` leaves the file positioned at the start of the pixel
    data element, so this costs one small read (plus a walk over the fragment items for
    compressed data). It catches files cut short inside their image data.
    """
    pos = fh.tell()
    if pos > size:
        raise DicomReadError("The file is truncated: its header ends early.", path)
    head = fh.read(12)
    if len(head) < 8:
        return PixelInfo()
    tsyntax = UID(str(ds.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian)))
    if tsyntax == DeflatedExplicitVRLittleEndian:
        return PixelInfo()  # the body is zlib-compressed: offsets are not file offsets
    little = tsyntax != ExplicitVRBigEndian
    order = "<" if little else ">"
    group, elem = struct.unpack(order + "HH", head[:4])
    tag = group << 16 | elem
    if tag not in PIXEL_TAGS:
        return PixelInfo()
    implicit = tsyntax == ImplicitVRLittleEndian
    if implicit:
        length = struct.unpack(order + "I", head[4:8])[0]
        value_offset = pos + 8
    else:
        if len(head) < 12:
            raise DicomReadError("The file is truncated: its image data is missing.", path)
        length = struct.unpack(order + "I", head[8:12])[0]
        value_offset = pos + 12
    if length != 0xFFFFFFFF:
        if value_offset + length > size:
            have = max(0, size - value_offset)
            raise DicomReadError(
                f"The file is truncated: its image data ends early ({have:,} of {length:,} bytes).",
                path)
        return PixelInfo(pos, value_offset, length, False)
    # Encapsulated: walk the items (Basic Offset Table + fragments) to the sequence delimiter.
    fh.seek(value_offset)
    at = value_offset
    for _ in range(10_000_000):
        item = fh.read(8)
        if len(item) < 8:
            raise DicomReadError("The file is truncated: its compressed image data ends early.", path)
        igroup, ielem, ilen = struct.unpack(order + "HHI", item)
        itag = igroup << 16 | ielem
        at += 8
        if itag == 0xFFFEE0DD:
            return PixelInfo(pos, value_offset, length, True)
        if itag != 0xFFFEE000:
            raise DicomReadError("The compressed image data is corrupt (bad fragment structure).", path)
        if at + ilen > size:
            raise DicomReadError("The file is truncated: its compressed image data ends early.", path)
        at += ilen
        fh.seek(at)
    raise DicomReadError("The compressed image data is corrupt (bad fragment structure).", path)


def read_header(path: PathLike, tags: list[int] | None = None) -> tuple[Dataset, PixelInfo]:
    """Read a file's header (everything before the pixel data) and locate its pixel data.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    tags : list of int, optional
        Read only these elements (faster; the scanner's choice). A DICOMDIR is always read whole.

    Returns
    -------
    (pydicom.dataset.Dataset, PixelInfo)
        The header (large values deferred) and where the pixel data lies.

    Raises
    ------
    NotDicomError
        Empty file, not DICOM.
    DicomReadError
        Truncated or corrupt header, or image data cut short.
    """
    spath = os.fspath(path)
    try:
        fh = open(spath, "rb")
    except IsADirectoryError:
        raise NotDicomError("This is a folder, not a file.", spath) from None
    except FileNotFoundError:
        raise DicomReadError("The file does not exist.", spath) from None
    except OSError as exc:
        raise _translate(exc, spath, 0) from None
    with fh:
        size, force = _open_checks(spath, fh)
        try:
            ds = _parse_from_memory(fh, size, force, tags)
            if ds is None:  # header larger than the first chunk (or unusual): read from the file
                fh.seek(0)
                ds = dcmread(fh, stop_before_pixels=True, defer_size=DEFER_SIZE, force=force,
                             specific_tags=tags)
            if tags is not None and is_dicomdir(ds):
                fh.seek(0)
                ds = dcmread(fh, stop_before_pixels=True, defer_size=DEFER_SIZE, force=force)
            if force and len(ds) == 0 and len(getattr(ds, "file_meta", ())) == 0:
                raise NotDicomError("Not a DICOM file (no DICOM header found).", spath)
            ds.filename = spath  # deferred values are read from the file when used
            _fix_transfer_syntax(ds)
            _check_complete(ds, fh, size, spath)
            info = _pixel_info(fh, ds, size, spath)
        except DicomError:
            raise
        except Exception as exc:  # noqa: BLE001 - every pydicom failure becomes a clear message
            raise _translate(exc, spath, size) from None
    return ds, info


#: most headers fit in this; parsing from memory avoids a seek/tell system call per element
HEADER_CHUNK = 64 * 1024


def _parse_from_memory(fh: IO[bytes], size: int, force: bool,
                       tags: list[int] | None) -> Dataset | None:
    """Parse the header from the file's first bytes in memory; None when they do not suffice.

    On success ``fh`` is left at the pixel data element, as ``dcmread`` on the file would.
    """
    import io

    fh.seek(0)
    chunk = fh.read(HEADER_CHUNK)
    buf = io.BytesIO(chunk)
    try:
        ds = dcmread(buf, stop_before_pixels=True, defer_size=DEFER_SIZE, force=force,
                     specific_tags=tags)
    except Exception:  # noqa: BLE001 - maybe cut by the chunk end: the caller reads the file
        return None
    pos = buf.tell()
    if len(chunk) < size:
        # complete only if parsing stopped at a pixel data tag inside the chunk
        if pos + 4 > len(chunk):
            return None
        try:
            tsyntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
        except Exception:  # noqa: BLE001
            return None
        if tsyntax == DeflatedExplicitVRLittleEndian:
            return None
        order = ">" if tsyntax == ExplicitVRBigEndian else "<"
        group, elem = struct.unpack(order + "HH", chunk[pos:pos + 4])
        if (group << 16 | elem) not in PIXEL_TAGS:
            return None
    fh.seek(pos)
    return ds


def _check_complete(ds: Dataset, fh: IO[bytes], size: int, path: str) -> None:
    """Raise when the header was cut short.

    pydicom reads a value cut by the end of the file without complaint (it gets fewer bytes),
    and skips past the end for values it does not load, so both are checked here.
    """
    if fh.tell() > size:
        raise DicomReadError("The file is truncated: its header ends early.", path)
    for elem in ds._dict.values():
        length = getattr(elem, "length", None)
        tell = getattr(elem, "value_tell", None)
        if length is None or tell is None or length == 0xFFFFFFFF:
            continue
        if tell + length > size:
            raise DicomReadError("The file is truncated or its header is corrupt (an element "
                                 "runs past the end of the file).", path)


def read_dataset(path: PathLike) -> Dataset:
    """Read a whole dataset for display; pixel data stays on disk until it is decoded.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    pydicom.dataset.Dataset
        The dataset (``ds.filename`` is set, so deferred values can be read later).

    Raises
    ------
    NotDicomError, DicomReadError
        With a message a user understands.
    """
    spath = os.fspath(path)
    read_header(spath)  # clear errors for truncation before pydicom reads the whole file
    size, force = _open_checks(spath)
    try:
        ds = dcmread(spath, defer_size=DEFER_SIZE, force=force)
        _fix_transfer_syntax(ds)
    except DicomError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _translate(exc, spath, size) from None
    return ds


def is_dicomdir(ds: Dataset) -> bool:
    """True when a dataset is a DICOMDIR (a media index, not an image)."""
    try:
        meta = getattr(ds, "file_meta", None)
        if meta is not None and raw_text(meta, 0x00020002) == MEDIA_STORAGE_DIRECTORY:
            return True
        return 0x00041220 in ds  # Directory Record Sequence
    except Exception:  # noqa: BLE001
        return False


def safe_get(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """Return ``ds.<keyword>`` or ``default`` when absent or unreadable (corrupt value)."""
    try:
        value = ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - a corrupt value must not stop indexing
        return default
    return default if value is None else value


def safe_str(ds: Dataset, keyword: str) -> str:
    """A header value as text ('' when absent or unreadable)."""
    value = safe_get(ds, keyword, "")
    try:
        return str(value).strip().replace("\x00", "")
    except Exception:  # noqa: BLE001
        return ""


def safe_int(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    """A header value as int (``default`` when absent or unreadable)."""
    value = safe_get(ds, keyword, None)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except Exception:  # noqa: BLE001
        return default


def safe_floats(ds: Dataset, keyword: str, n: int) -> list[float] | None:
    """A multi-valued numeric header value as ``n`` finite floats, or None."""
    import math

    value = safe_get(ds, keyword, None)
    if value is None or value == "":
        return None
    try:
        values = [float(v) for v in value] if not isinstance(value, (str, bytes)) and hasattr(
            value, "__iter__") else [float(value)]
    except Exception:  # noqa: BLE001
        return None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        return None
    return values


def file_kind(path: PathLike) -> str:
    """Quick sniff of a file: ``"zip"``, ``"dicom"`` or ``"other"`` from its first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return "other"
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return "zip"
    if head[128:132] == b"DICM" or _looks_like_raw_dicom(head):
        return "dicom"
    return "other"


def relpath_display(path: PathLike) -> str:
    """A path for messages (as given, normalised)."""
    return str(Path(path))


# --- fast raw accessors (the scanner reads ~15 values per file; pydicom's value conversion
# --- machinery costs more than parsing the file, so ASCII values are decoded directly) ---------
def _raw_element(ds: Dataset, tag: int) -> Any:
    try:
        return ds.get_item(tag)
    except Exception:  # noqa: BLE001
        return None


def raw_text(ds: Dataset, tag: int) -> str:
    """An ASCII-valued element (UI, CS, IS, DS, DA, TM) as text, '' when absent/unreadable."""
    elem = _raw_element(ds, tag)
    if elem is None:
        return ""
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("ascii", "replace").strip(" \x00")
    try:
        return str(value).strip(" \x00")
    except Exception:  # noqa: BLE001
        return ""


def _dictionary_vr(tag: int) -> str | None:
    """The VR of a standard tag (implicit VR files do not store it)."""
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def raw_int(ds: Dataset, tag: int) -> int | None:
    """An IS (text) or US (binary) element as int, None when absent/unreadable."""
    elem = _raw_element(ds, tag)
    if elem is None or elem.value is None:
        return None
    value = elem.value
    try:
        if isinstance(value, (bytes, bytearray)):
            vr = getattr(elem, "VR", None) or _dictionary_vr(tag)
            if vr in ("US", "US or SS"):
                if len(value) != 2:
                    return None
                little = getattr(elem, "is_little_endian", True)
                return int(struct.unpack("<H" if little else ">H", bytes(value))[0])
            text = bytes(value).decode("ascii").strip(" \x00")
            return int(float(text.split("\\")[0])) if text else None
        if isinstance(value, (list, tuple)):
            value = value[0]
        return int(value)
    except Exception:  # noqa: BLE001
        return None


def raw_floats(ds: Dataset, tag: int, n: int) -> list[float] | None:
    """A DS element with exactly ``n`` finite values, else None."""
    import math

    text = raw_text(ds, tag)
    if not text:
        return None
    try:
        values = [float(v) for v in text.split("\\")]
    except ValueError:
        return None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        return None
    return values
