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
from collections.abc import Sequence
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
        return DicomReadError(
            "The DICOM header is corrupt (a length field points past the data) and cannot be read.",
            path,
        )
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
                path,
            )
        return PixelInfo(pos, value_offset, length, False)
    # Encapsulated: walk the items (Basic Offset Table + fragments) to the sequence delimiter.
    fh.seek(value_offset)
    at = value_offset
    for _ in range(10_000_000):
        item = fh.read(8)
        if len(item) < 8:
            raise DicomReadError(
                "The file is truncated: its compressed image data ends early.", path
            )
        igroup, ielem, ilen = struct.unpack(order + "HHI", item)
        itag = igroup << 16 | ielem
        at += 8
        if itag == 0xFFFEE0DD:
            return PixelInfo(pos, value_offset, length, True)
        if itag != 0xFFFEE000:
            raise DicomReadError(
                "The compressed image data is corrupt (bad fragment structure).", path
            )
        if at + ilen > size:
            raise DicomReadError(
                "The file is truncated: its compressed image data ends early.", path
            )
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
                ds = dcmread(
                    fh,
                    stop_before_pixels=True,
                    defer_size=DEFER_SIZE,
                    force=force,
                    specific_tags=tags,
                )
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


def _parse_from_memory(
    fh: IO[bytes], size: int, force: bool, tags: list[int] | None
) -> Dataset | None:
    """Parse the header from the file's first bytes in memory; None when they do not suffice.

    On success ``fh`` is left at the pixel data element, as ``dcmread`` on the file would.
    """
    import io

    fh.seek(0)
    chunk = fh.read(HEADER_CHUNK)
    buf = io.BytesIO(chunk)
    try:
        ds = dcmread(
            buf, stop_before_pixels=True, defer_size=DEFER_SIZE, force=force, specific_tags=tags
        )
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
        group, elem = struct.unpack(order + "HH", chunk[pos : pos + 4])
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
            raise DicomReadError(
                "The file is truncated or its header is corrupt (an element "
                "runs past the end of the file).",
                path,
            )


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
        values = (
            [float(v) for v in value]
            if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__")
            else [float(value)]
        )
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
def _raw_element(ds: Dataset | RawHeader, tag: int) -> Any:
    try:
        return ds.get_item(tag)
    except Exception:  # noqa: BLE001
        return None


def raw_text(ds: Dataset | RawHeader, tag: int) -> str:
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


def raw_int(ds: Dataset | RawHeader, tag: int) -> int | None:
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


def raw_floats(ds: Dataset | RawHeader, tag: int, n: int) -> list[float] | None:
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


# --- the scanner's fast header walk ----------------------------------------------------------------
# pydicom builds an element object for every element of a header even when ``specific_tags``
# keeps a few, which costs more than the rest of indexing a file. The scanner needs ~25 values,
# so the common case (Part 10 file, little endian, explicit or implicit VR, not deflated) is
# walked here with ``struct``: skipped elements cost one unpack, kept ones become pydicom
# RawDataElements (the very objects dcmread would store), so values decode identically. Anything
# unusual returns None and the caller falls back to :func:`read_header`.

#: explicit VRs whose length is 4 bytes (after 2 reserved bytes)
_VR_LONG = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
_VR_SHORT = frozenset(
    (
        b"AE",
        b"AS",
        b"AT",
        b"CS",
        b"DA",
        b"DS",
        b"DT",
        b"FD",
        b"FL",
        b"IS",
        b"LO",
        b"LT",
        b"PN",
        b"SH",
        b"SL",
        b"SS",
        b"ST",
        b"TM",
        b"UI",
        b"UL",
        b"US",
    )
)
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_FIRST_READ = 16 * 1024
_MAX_WALK = 4 * 1024 * 1024


class _NeedMore(Exception):
    """The walk ran past the bytes read so far."""


class _Unusual(Exception):
    """Something the fast walk leaves to pydicom."""


class RawHeader:
    """A header as the scanner's fast walk read it: undecoded elements by tag.

    Offers what the scanner's raw accessors (:func:`raw_text`, :func:`raw_int`,
    :func:`raw_floats`) use: ``get_item(tag)`` and ``file_meta.get("TransferSyntaxUID")``;
    :meth:`dataset` gives the pydicom Dataset (for charset-aware text such as names).
    """

    __slots__ = ("elements", "meta", "file_meta", "implicit", "path")

    def __init__(
        self, elements: dict[int, Any], meta: dict[int, Any], implicit: bool, path: str
    ) -> None:
        self.elements = elements
        self.meta = meta
        self.implicit = implicit
        self.path = path
        ts = meta.get(0x00020010)
        self.file_meta = _RawMeta(
            bytes(ts.value).decode("ascii", "replace").strip(" \x00") if ts is not None else ""
        )

    @property
    def filename(self) -> str:
        """The file (as ``Dataset.filename``)."""
        return self.path

    def get_item(self, tag: int) -> Any:
        """The RawDataElement of ``tag`` (None when absent)."""
        return self.elements.get(tag)

    def get(self, keyword: str, default: Any = None) -> Any:
        """A kept element's value by keyword, converted as pydicom does (``Dataset.get``)."""
        from pydicom.datadict import tag_for_keyword
        from pydicom.dataelem import convert_raw_data_element

        tag = _KEYWORD_TAGS.get(keyword)
        if tag is None:
            tag = _KEYWORD_TAGS.setdefault(keyword, tag_for_keyword(keyword) or -1)
        raw = self.elements.get(tag)
        if raw is None:
            return default
        if raw.length == 2 and (raw.VR or _dictionary_vr(tag)) == "US":
            return int.from_bytes(raw.value, "little")  # what pydicom converts US to
        return convert_raw_data_element(raw).value

    def __contains__(self, key: int | str) -> bool:
        if isinstance(key, str):
            from pydicom.datadict import tag_for_keyword

            key = tag_for_keyword(key) or -1
        return key in self.elements

    def dataset(self) -> Dataset:
        """The header as a pydicom Dataset (as ``read_header(path, tags)`` would return it)."""
        from pydicom.charset import convert_encodings, default_encoding
        from pydicom.dataelem import convert_raw_data_element
        from pydicom.tag import BaseTag

        elems = {BaseTag(t): e for t, e in self.elements.items()}
        ds = Dataset(elems)
        encoding: Any = default_encoding
        cs = self.elements.get(0x00080005)
        if cs is not None:
            encoding = convert_encodings(convert_raw_data_element(cs).value)
        ds.set_original_encoding(self.implicit, True, encoding)
        meta = FileMetaDataset()
        for t, e in self.meta.items():
            meta._dict[BaseTag(t)] = e
        ds.file_meta = meta
        ds.filename = self.path
        return ds


_KEYWORD_TAGS: dict[str, int] = {}


class _RawMeta:
    """The file meta of a :class:`RawHeader`: its transfer syntax (``.TransferSyntaxUID``, a
    pydicom UID, and ``.get("TransferSyntaxUID")``, its text, as the scanner reads it)."""

    __slots__ = ("_ts", "_uid")

    def __init__(self, ts: str) -> None:
        self._ts = ts
        self._uid: UID | None = None

    @property
    def TransferSyntaxUID(self) -> UID:  # noqa: N802 - the DICOM keyword, as in pydicom
        # built on demand: pydicom validates a UID on creation, which costs more than the rest
        # of the file meta for the scanner (only compressed images need it, for the budget)
        if self._uid is None:
            self._uid = UID(self._ts)
        return self._uid

    def get(self, keyword: str, default: Any = None) -> Any:
        return self._ts if keyword == "TransferSyntaxUID" else default

    def __contains__(self, keyword: str) -> bool:
        return keyword == "TransferSyntaxUID"


def _skip_sequence(buf: bytes, pos: int, implicit: bool) -> int:
    """Position after an undefined-length sequence starting at ``pos`` (its first item)."""
    unpack = struct.unpack_from
    n = len(buf)
    while True:
        if pos + 8 > n:
            raise _NeedMore
        group, elem, length = unpack("<HHI", buf, pos)
        tag = group << 16 | elem
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _Unusual
        if length != _UNDEFINED:
            pos += length
            continue
        pos = _walk(buf, pos, implicit, None, None, in_item=True)


_EXPLICIT = struct.Struct("<HH2sH").unpack_from
_IMPLICIT = struct.Struct("<HHI").unpack_from
_U32 = struct.Struct("<I").unpack_from
_PIXEL_TAG_SET = frozenset(PIXEL_TAGS)


def _walk(
    buf: bytes,
    pos: int,
    implicit: bool,
    wanted: frozenset[int] | None,
    out: dict[int, Any] | None,
    in_item: bool = False,
) -> int:
    """Walk elements from ``pos``; keep ``wanted`` ones in ``out``.

    Returns the position of the pixel data element (top level) or after the item delimiter
    (inside an undefined-length item). One ``unpack`` per element: this loop is the scan's
    hot path.
    """
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import BaseTag

    n = len(buf)
    short, long_ = _VR_SHORT, _VR_LONG
    pixel_tags = _PIXEL_TAG_SET
    keep = wanted if out is not None and wanted is not None else frozenset()
    while True:
        if pos + 8 > n:
            raise _NeedMore
        if implicit:
            group, elem, length = _IMPLICIT(buf, pos)
            start = pos + 8
            vrb = None
        else:
            group, elem, vrb, length = _EXPLICIT(buf, pos)
            if vrb in short:
                start = pos + 8
            elif vrb in long_:
                if pos + 12 > n:
                    raise _NeedMore
                length = _U32(buf, pos + 8)[0]
                start = pos + 12
            elif group == 0xFFFE:
                length = _U32(buf, pos + 4)[0]  # delimiters carry no VR
                start = pos + 8
            else:
                raise _Unusual
        tag = group << 16 | elem
        if in_item:
            if tag == _ITEM_END:
                return pos + 8
        elif tag in pixel_tags:
            return pos
        if group == 0xFFFE or (group == 0x0002 and not in_item):
            raise _Unusual
        if length == _UNDEFINED:
            if implicit or vrb in (b"SQ", b"UN"):
                if tag in keep:
                    raise _Unusual
                # an undefined-length UN holds an implicit VR sequence (PS3.5 6.2.2)
                pos = _skip_sequence(buf, start, implicit or vrb == b"UN")
                continue
            raise _Unusual
        end = start + length
        if tag in keep:
            if end > n:
                raise _NeedMore
            if length > DEFER_SIZE:
                raise _Unusual
            out[tag] = RawDataElement(  # type: ignore[index]
                BaseTag(tag),
                vrb.decode() if vrb else None,
                length,
                buf[start:end],
                start,
                implicit,
                True,
                True,
            )
        pos = end


def fast_header(path: PathLike, tags: frozenset[int]) -> tuple[RawHeader, PixelInfo] | None:
    """The scanner's header read for the common case; None to use :func:`read_header`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    tags : frozenset of int
        Top-level elements to keep (besides the file meta).

    Returns
    -------
    (RawHeader, PixelInfo) or None
        The same values :func:`read_header` with ``tags`` would give, or None when the file is
        anything but a plain little-endian Part 10 file whose header ends at its pixel data
        (errors included: :func:`read_header` words them).
    """
    spath = os.fspath(path)
    try:
        with open(spath, "rb", buffering=0) as fh:
            return _fast_header(fh, os.fstat(fh.fileno()).st_size, spath, tags)
    except OSError:
        return None


def fast_header_of(
    pieces: Sequence[bytes | memoryview], path: PathLike, tags: frozenset[int]
) -> tuple[RawHeader, PixelInfo] | None:
    """:func:`fast_header` of a file given as the pieces it is written from (preamble and file
    meta, then a data set as it came from the network), without reading the file back.

    Parameters
    ----------
    pieces : sequence of bytes or memoryview
        The file's bytes, in order.
    path : str or os.PathLike
        Where the file is (or will be) stored: the header's ``path``.
    tags : frozenset of int
        Top-level elements to keep (besides the file meta).

    Returns
    -------
    (RawHeader, PixelInfo) or None
        What :func:`fast_header` gives for that file.
    """
    reader = _PiecesReader(pieces)
    return _fast_header(reader, reader.size, os.fspath(path), tags)


class _PiecesReader:
    """A read-only file over byte pieces (``read``, ``seek``, ``tell``): nothing is copied but
    what is read."""

    def __init__(self, pieces: Sequence[bytes | memoryview]) -> None:
        self._pieces = [memoryview(p).cast("B") for p in pieces]
        self._starts: list[int] = []
        pos = 0
        for p in self._pieces:
            self._starts.append(pos)
            pos += len(p)
        self.size = pos
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = self.size if n < 0 else min(self.size, self._pos + n)
        out = []
        for start, piece in zip(self._starts, self._pieces, strict=True):
            lo, hi = max(self._pos, start), min(end, start + len(piece))
            if lo < hi:
                out.append(piece[lo - start : hi - start])
        self._pos = max(self._pos, end)
        return b"".join(out)

    def seek(self, pos: int, whence: int = 0) -> int:
        base = (0, self._pos, self.size)[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _fast_header(
    fh: Any, size: int, spath: str, tags: frozenset[int]
) -> tuple[RawHeader, PixelInfo] | None:
    """:func:`fast_header` of an open file of ``size`` bytes (``read``, ``seek``, ``tell``).

    Long because a single pass over the byte stream, kept in one function for speed (the scan
    loop's hot path).
    """
    try:
        buf = fh.read(_FIRST_READ)
        if len(buf) < 144 or buf[128:132] != b"DICM":
            return None
        while True:
            try:
                meta: dict[int, Any] = {}
                # file meta: explicit VR little endian, announced by its group length
                if buf[132:134] != b"\x02\x00" or buf[136:138] != b"UL":
                    return None
                meta_end = 144 + struct.unpack_from("<I", buf, 140)[0]
                pos = _walk_meta(buf, 132, meta_end, meta)
                ts_elem = meta.get(0x00020010)
                if ts_elem is None:
                    return None
                ts = bytes(ts_elem.value).decode("ascii", "replace").strip(" \x00")
                if ts == ImplicitVRLittleEndian:
                    implicit = True
                elif ts in (
                    ExplicitVRBigEndian,
                    DeflatedExplicitVRLittleEndian,
                ) or not ts.startswith("1.2.840.10008.1.2"):
                    return None  # big endian, deflated, private: pydicom decides
                else:
                    implicit = False
                sop_class = meta.get(0x00020002)
                if (
                    sop_class is not None
                    and bytes(sop_class.value).strip(b" \x00") == MEDIA_STORAGE_DIRECTORY.encode()
                ):
                    return None
                if pos + 6 > len(buf):
                    raise _NeedMore
                # pydicom checks the first element's VR against the transfer syntax
                looks_explicit = 0x40 < buf[pos + 4] < 0x5B and 0x40 < buf[pos + 5] < 0x5B
                if looks_explicit == implicit:
                    return None
                out: dict[int, Any] = {}
                pix = _walk(buf, pos, implicit, tags, out)
                break
            except _NeedMore:
                if len(buf) >= size or len(buf) >= _MAX_WALK:
                    return None
                more = fh.read(min(size, _MAX_WALK) - len(buf))
                if not more:
                    return None
                buf += more
        header = RawHeader(out, meta, implicit, spath)
        for e in out.values():
            if e.value_tell + e.length > size:
                return None
        if pix + 12 > len(buf):
            fh.seek(pix)
            head = fh.read(12)
        else:
            head = buf[pix : pix + 12]
        if len(head) < 12:
            return None
        if implicit:
            length = struct.unpack_from("<I", head, 4)[0]
            value_offset = pix + 8
        else:
            length = struct.unpack_from("<I", head, 8)[0]
            value_offset = pix + 12
        if length != _UNDEFINED:
            if value_offset + length > size:
                return None
            return header, PixelInfo(pix, value_offset, length, False)
        fh.seek(pix)
        info = _pixel_info(fh, header, size, spath)  # type: ignore[arg-type]
        return header, info
    except (OSError, struct.error, _Unusual, DicomError):
        return None


def _walk_meta(buf: bytes, pos: int, end: int, out: dict[int, Any]) -> int:
    """Read the file meta elements (explicit VR little endian) between ``pos`` and ``end``."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import BaseTag

    if end > len(buf):
        raise _NeedMore
    while pos < end:
        group, elem = struct.unpack_from("<HH", buf, pos)
        if group != 0x0002:
            raise _Unusual
        vrb = buf[pos + 4 : pos + 6]
        if vrb in _VR_SHORT:
            length = struct.unpack_from("<H", buf, pos + 6)[0]
            start = pos + 8
        elif vrb in _VR_LONG:
            length = struct.unpack_from("<I", buf, pos + 8)[0]
            start = pos + 12
        else:
            raise _Unusual
        if length == _UNDEFINED or start + length > end:
            raise _Unusual
        tag = group << 16 | elem
        out[tag] = RawDataElement(
            BaseTag(tag),
            vrb.decode(),
            length,
            buf[start : start + length],
            start,
            False,
            True,
            True,
        )
        pos = start + length
    if pos != end:
        raise _Unusual
    return pos
