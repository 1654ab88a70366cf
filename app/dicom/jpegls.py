"""JPEG-LS decoding without holding Python's GIL (CharLS through ``ctypes``).

pydicom decodes JPEG-LS with the CharLS library that ``pyjpegls`` ships (:mod:`app.dicom.pixels`
prefers that plugin); its Cython wrapper keeps the GIL for the whole decode (about 70 ms for a
2000x2000 film), so nothing else in the process runs meanwhile: not the GUI thread building the
window while the first image decodes, not a scroll while the next slices decode. The same
library, called here through its C API (``charls_jpegls_decoder_*``, CharLS 2.x) by ``ctypes``,
which releases the GIL during foreign calls, decodes the same codestream to the same bytes.

Only what that covers bit for bit is taken: one grey (one component) codestream whose size is
the image's, for unsigned pixel data. Anything else, an unexpected library, or an error returns
None and the caller decodes through pydicom as before: an accelerator, never the only path
(like :mod:`app.gui.j2k` for JPEG 2000).
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: JPEG-LS lossless and near-lossless transfer syntaxes
JPEGLS_SYNTAXES = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")

_lock = threading.Lock()
_lib: Any = None
_failed = False


class _FrameInfo(ctypes.Structure):
    """``charls_frame_info`` (CharLS 2.x)."""

    _fields_ = [
        ("width", ctypes.c_uint32),
        ("height", ctypes.c_uint32),
        ("bits_per_sample", ctypes.c_int32),
        ("component_count", ctypes.c_int32),
    ]


def _load() -> Any:
    """CharLS inside pyjpegls's extension (None when unusable)."""
    global _lib, _failed
    if _lib is not None or _failed:
        return _lib
    with _lock:
        if _lib is not None or _failed:
            return _lib
        try:
            import _CharLS  # pyjpegls's extension module: CharLS is linked into it

            lib = ctypes.CDLL(_CharLS.__file__)
            lib.charls_get_version_string.restype = ctypes.c_char_p
            version = lib.charls_get_version_string().decode()
            if not version.startswith("2."):  # the C API below is CharLS 2's
                raise OSError(f"CharLS {version}")
            vp, size_t = ctypes.c_void_p, ctypes.c_size_t
            lib.charls_jpegls_decoder_create.restype = vp
            lib.charls_jpegls_decoder_create.argtypes = []
            lib.charls_jpegls_decoder_destroy.argtypes = [vp]
            lib.charls_jpegls_decoder_set_source_buffer.argtypes = [vp, vp, size_t]
            lib.charls_jpegls_decoder_read_header.argtypes = [vp]
            lib.charls_jpegls_decoder_get_frame_info.argtypes = [vp, ctypes.POINTER(_FrameInfo)]
            lib.charls_jpegls_decoder_get_destination_size.argtypes = [
                vp,
                ctypes.c_uint32,
                ctypes.POINTER(size_t),
            ]
            lib.charls_jpegls_decoder_decode_to_buffer.argtypes = [vp, vp, size_t, ctypes.c_uint32]
            for name in (
                "charls_jpegls_decoder_set_source_buffer",
                "charls_jpegls_decoder_read_header",
                "charls_jpegls_decoder_get_frame_info",
                "charls_jpegls_decoder_get_destination_size",
                "charls_jpegls_decoder_decode_to_buffer",
            ):
                getattr(lib, name).restype = ctypes.c_int32
            _lib = lib
        except Exception as exc:  # noqa: BLE001 - no accelerator: pydicom decodes
            log.info("JPEG-LS decoding without the GIL unavailable: %s", exc)
            _failed = True
    return _lib


def decode_grey(codestream: bytes, rows: int, columns: int) -> np.ndarray | None:
    """Decode a one-component JPEG-LS codestream of ``rows`` x ``columns`` (None: not here).

    Returns
    -------
    numpy.ndarray or None
        uint8 (precision up to 8 bits) or uint16 (up to 16) stored values, (rows, columns):
        the array pydicom's pyjpegls plugin gives for unsigned data.
    """
    lib = _load()
    if lib is None:
        return None
    decoder = lib.charls_jpegls_decoder_create()
    if not decoder:
        return None
    try:
        # ``codestream`` (immutable bytes) stays referenced, and unmoved, until the decode ends
        if lib.charls_jpegls_decoder_set_source_buffer(decoder, codestream, len(codestream)):
            return None
        if lib.charls_jpegls_decoder_read_header(decoder):
            return None
        info = _FrameInfo()
        if lib.charls_jpegls_decoder_get_frame_info(decoder, ctypes.byref(info)):
            return None
        bits = int(info.bits_per_sample)
        if (
            info.component_count != 1
            or (int(info.height), int(info.width)) != (rows, columns)
            or not 2 <= bits <= 16
        ):
            return None
        dtype = np.uint8 if bits <= 8 else np.dtype("<u2")
        size = ctypes.c_size_t()
        if lib.charls_jpegls_decoder_get_destination_size(decoder, 0, ctypes.byref(size)):
            return None
        out = np.empty((rows, columns), dtype)
        if size.value != out.nbytes:
            return None
        # the GIL is released for the whole decode (ctypes foreign call)
        if lib.charls_jpegls_decoder_decode_to_buffer(
            decoder, out.ctypes.data_as(ctypes.c_void_p), out.nbytes, 0
        ):
            return None
        return out if out.dtype.isnative else out.astype(out.dtype.newbyteorder("="))
    finally:
        lib.charls_jpegls_decoder_destroy(decoder)
