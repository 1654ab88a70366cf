"""The pixel budget: images whose header or codec stream claims more pixels than a workstation
should allocate are refused *before* anything is decoded.

Settings (environment, read on each check so a running GUI can change them):

``HILUM_MAX_FRAME_PIXELS``
    Pixels one frame may have (rows x columns), default 200 000 000 (200 megapixels: a large
    digital mammogram or whole-slide tile is far below; 65535 x 65535 = 4 295 megapixels is not).
``HILUM_MAX_SERIES_BYTES``
    Decoded bytes one series (or one multi-frame file) may occupy, default 2 GiB.

Checked are the header (Rows, Columns, Samples per Pixel, Bits Allocated, Number of Frames) and,
for compressed transfer syntaxes, the dimensions the codec stream itself declares (JPEG and
JPEG-LS start-of-frame, JPEG 2000 SIZ): decoders allocate what the *stream* says, whatever the
header claims. RLE streams carry no dimensions (the decoder uses the header's), so the header check
covers them.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from app.core.errors import PixelDecodeError

if TYPE_CHECKING:  # the scanner's fast header offers the same get/contains as a Dataset
    from app.dicom.reading import RawHeader

ENV_FRAME = "HILUM_MAX_FRAME_PIXELS"
ENV_SERIES = "HILUM_MAX_SERIES_BYTES"
DEFAULT_FRAME_PIXELS = 200_000_000
DEFAULT_SERIES_BYTES = 2 << 30


class PixelBudgetError(PixelDecodeError):
    """An image claims more pixels than the pixel budget allows; it is not decoded."""


@dataclass(frozen=True)
class PixelBudget:
    """Limits on what decoding may allocate (see the module documentation for the settings)."""

    max_frame_pixels: int = DEFAULT_FRAME_PIXELS
    max_series_bytes: int = DEFAULT_SERIES_BYTES

    @classmethod
    def current(cls) -> "PixelBudget":
        """The budget from the environment settings (defaults where unset or invalid)."""

        def get(name: str, default: int) -> int:
            try:
                value = int(os.environ.get(name, "") or default)
            except ValueError:
                return default
            return value if value > 0 else default

        return cls(get(ENV_FRAME, DEFAULT_FRAME_PIXELS), get(ENV_SERIES, DEFAULT_SERIES_BYTES))


def _int(ds: Dataset | RawHeader, keyword: str, default: int = 0) -> int:
    try:
        value = ds.get(keyword, default)
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default
    except Exception:  # noqa: BLE001 - a corrupt element: treat as absent
        return default


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:,.0f} megapixels"


def check_dimensions(
    rows: int,
    cols: int,
    frames: int = 1,
    samples: int = 1,
    bits: int = 16,
    budget: PixelBudget | None = None,
    what: str = "The image header",
    path: str | None = None,
) -> None:
    """Refuse dimensions beyond the budget.

    Raises
    ------
    PixelBudgetError
        One sentence naming the claimed size and the limit.
    """
    budget = budget or PixelBudget.current()
    pixels = max(0, rows) * max(0, cols)
    if pixels > budget.max_frame_pixels:
        raise PixelBudgetError(
            f"{what} claims {cols} x {rows} pixels ({_mp(pixels)}), more than the "
            f"{_mp(budget.max_frame_pixels)} per frame Hilum decodes (setting {ENV_FRAME}); "
            "the image was not decoded.",
            path,
        )
    # decoded size as float32 for grey images (what the viewer keeps), bytes for colour
    per_pixel = max(4, (max(bits, 8) + 7) // 8) if samples == 1 else max(1, samples)
    nbytes = pixels * max(1, frames) * per_pixel
    if nbytes > budget.max_series_bytes:
        raise PixelBudgetError(
            f"{what} claims {max(1, frames)} frame(s) of {cols} x {rows} pixels "
            f"({nbytes / 2**30:,.1f} GiB decoded), more than the {budget.max_series_bytes / 2**30:,.1f}"
            f" GiB per series Hilum decodes (setting {ENV_SERIES}); the image was not decoded.",
            path,
        )


def check_header(
    ds: Dataset | RawHeader, budget: PixelBudget | None = None, has_pixels: bool | None = None
) -> None:
    """Refuse an image whose header claims more than the budget (nothing is read or decoded)."""
    if has_pixels is None:
        has_pixels = any(t in ds for t in (0x7FE00010, 0x7FE00008, 0x7FE00009))
    if not has_pixels:
        return
    path = getattr(ds, "filename", None)
    # one frame at a time: decoding a frame allocates one frame (a long cine stays viewable);
    # loading a whole series is checked against the series budget by Series.volume
    check_dimensions(
        _int(ds, "Rows"),
        _int(ds, "Columns"),
        1,
        _int(ds, "SamplesPerPixel", 1) or 1,
        _int(ds, "BitsAllocated", 16) or 16,
        budget,
        "The image header",
        str(path) if isinstance(path, str) else None,
    )


# -- codec streams --------------------------------------------------------------------------------
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}


def stream_dimensions(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) a JPEG, JPEG-LS or JPEG 2000 codestream declares, or None.

    Parameters
    ----------
    data : bytes
        The start of the first fragment (the frame header lies in the first few hundred bytes
        after any tables).
    """
    if data[:2] == b"\xff\xd8":  # JPEG / JPEG-LS: walk the markers to the start of frame
        i = 2
        while i + 4 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in _SOF:
                if i + 9 > len(data):
                    return None
                rows, cols = struct.unpack(">HH", data[i + 5 : i + 9])
                return rows, cols
            if marker == 0xDA:  # start of scan before any frame header: malformed
                return None
            i += 2 + length
        return None
    at = data.find(b"\xff\x4f\xff\x51")  # JPEG 2000 codestream (raw or inside a JP2 box)
    if at >= 0 and at + 4 + 2 + 2 + 16 <= len(data):
        xsiz, ysiz, xo, yo = struct.unpack(">IIII", data[at + 8 : at + 24])
        return max(0, ysiz - yo), max(0, xsiz - xo)
    return None


def _first_fragment(fh: IO[bytes], value_offset: int, limit: int = 1 << 16) -> bytes:
    """The start of the first fragment after the Basic Offset Table (little endian items)."""
    fh.seek(value_offset)
    for k in range(2):
        head = fh.read(8)
        if len(head) < 8:
            return b""
        group, elem, length = struct.unpack("<HHI", head)
        if (group, elem) != (0xFFFE, 0xE000):
            return b""
        if k == 0:
            fh.seek(length, os.SEEK_CUR)  # the Basic Offset Table
            continue
        return fh.read(min(length, limit))
    return b""


def check_stream(
    ds: Dataset | RawHeader,
    fh: IO[bytes] | None = None,
    value_offset: int | None = None,
    budget: PixelBudget | None = None,
) -> None:
    """Refuse a compressed image whose codec stream declares more than the budget.

    Reads at most 64 KiB of the first fragment: from ``fh`` at ``value_offset`` when given (the
    scanner, which knows where the pixel data lies), else from the dataset's file.
    """
    try:
        tsyntax = ds.file_meta.TransferSyntaxUID
        if not tsyntax.is_compressed or tsyntax == "1.2.840.10008.1.2.5":  # RLE: header decides
            return
    except Exception:  # noqa: BLE001 - unknown transfer syntax: the decoder refuses it anyway
        return
    data = b""
    if fh is not None and value_offset is not None:
        data = _first_fragment(fh, value_offset)
    else:
        path = getattr(ds, "filename", None)
        if isinstance(path, str) and os.path.isfile(path):
            from app.dicom.reading import read_header

            try:
                _hdr, info = read_header(path)
            except PixelDecodeError:
                raise
            except Exception:  # noqa: BLE001 - reading problems are reported by the decoder
                return
            if info.present and info.encapsulated:
                with open(path, "rb") as f:
                    data = _first_fragment(f, info.value_offset)
        elif "PixelData" in ds:
            raw = ds.PixelData  # type: ignore[union-attr]  # a RawHeader never holds pixels
            data = _first_fragment_bytes(raw)
    dims = stream_dimensions(data) if data else None
    if dims is None:
        return
    path = getattr(ds, "filename", None)
    check_dimensions(
        dims[0],
        dims[1],
        1,
        _int(ds, "SamplesPerPixel", 1) or 1,
        _int(ds, "BitsAllocated", 16) or 16,
        budget,
        "The compressed image data",
        str(path) if isinstance(path, str) else None,
    )


def _first_fragment_bytes(raw: Any) -> bytes:
    import io

    if not isinstance(raw, (bytes, bytearray)):
        return b""
    return _first_fragment(io.BytesIO(bytes(raw[: 1 << 17])), 0)


def check_image(ds: Dataset, budget: PixelBudget | None = None) -> None:
    """Header and codec stream checks, before any decoding (see :func:`check_header`).

    A dataset that passed is remembered (the check reads the file once, not per frame).
    """
    budget = budget or PixelBudget.current()
    key = (budget.max_frame_pixels, budget.max_series_bytes)
    if getattr(ds, "_hilum_budget_ok", None) == key:
        return
    check_header(ds, budget)
    check_stream(ds, budget=budget)
    try:
        object.__setattr__(ds, "_hilum_budget_ok", key)
    except Exception:  # noqa: BLE001 - caching is optional
        pass


def check_file(
    path: str,
    ds: Dataset | RawHeader | None = None,
    info: Any = None,
    budget: PixelBudget | None = None,
) -> None:
    """Header and codec-stream checks of a file, reading its header once (or using the header
    ``ds`` and pixel location ``info`` the caller already has, as the scanner does).

    Raises
    ------
    PixelBudgetError
        When the header or the codec stream claims more than the budget.
    """
    budget = budget or PixelBudget.current()
    if ds is None or info is None:
        from app.dicom.reading import read_header

        ds, info = read_header(path)
    check_header(ds, budget, has_pixels=bool(getattr(info, "present", False)))
    if getattr(info, "present", False) and getattr(info, "encapsulated", False):
        try:
            with open(path, "rb") as fh:
                check_stream(ds, fh, info.value_offset, budget)
        except OSError:
            return
