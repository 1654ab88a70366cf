"""Reduced-resolution JPEG 2000 decoding for progressive display of large films (worker threads).

A 2000x2000 lossless JPEG 2000 chest film takes about a second to decode in full. JPEG 2000 is a
multi-resolution format: OpenJPEG can stop after the lower resolution levels
(``opj_set_decoded_resolution_factor``), which costs a fraction of the time. The viewer paints
that image at once (scaled to the full pixel grid, marked "Loading full resolution"), and
replaces it with the full decode from :mod:`app.dicom.pixels` moments later.

The decoder is the OpenJPEG library that ``pylibjpeg-openjpeg`` already ships (its extension
exports the OpenJPEG C API), called through ``ctypes``. Anything unexpected (another OpenJPEG
version, a lossy or multi-component codestream, a decode error) returns None and the caller
falls back to the normal full decode: this is an accelerator, never the only path.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import tempfile
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: JPEG 2000 transfer syntaxes (lossless, lossy) whose frames are raw J2K codestreams
J2K_SYNTAXES = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91")
#: images with at least this many pixels are shown progressively
PROGRESSIVE_MIN_PIXELS = 2_500_000

_lock = threading.Lock()
_lib: Any = None
_failed = False


class _Comp(ctypes.Structure):
    _fields_ = [
        ("dx", ctypes.c_uint32),
        ("dy", ctypes.c_uint32),
        ("w", ctypes.c_uint32),
        ("h", ctypes.c_uint32),
        ("x0", ctypes.c_uint32),
        ("y0", ctypes.c_uint32),
        ("prec", ctypes.c_uint32),
        ("bpp", ctypes.c_uint32),
        ("sgnd", ctypes.c_uint32),
        ("resno_decoded", ctypes.c_uint32),
        ("factor", ctypes.c_uint32),
        ("data", ctypes.POINTER(ctypes.c_int32)),
        ("alpha", ctypes.c_uint16),
    ]


class _Image(ctypes.Structure):
    _fields_ = [
        ("x0", ctypes.c_uint32),
        ("y0", ctypes.c_uint32),
        ("x1", ctypes.c_uint32),
        ("y1", ctypes.c_uint32),
        ("numcomps", ctypes.c_uint32),
        ("color_space", ctypes.c_int),
        ("comps", ctypes.POINTER(_Comp)),
        ("icc_profile_buf", ctypes.c_void_p),
        ("icc_profile_len", ctypes.c_uint32),
    ]


def _load() -> Any:
    """The OpenJPEG library inside pylibjpeg-openjpeg (None when unusable)."""
    global _lib, _failed
    with _lock:
        if _lib is not None or _failed:
            return _lib
        try:
            import openjpeg

            site = os.path.dirname(os.path.dirname(openjpeg.__file__))
            found = glob.glob(os.path.join(site, "_openjpeg*.so")) + glob.glob(
                os.path.join(site, "_openjpeg*.pyd")
            )
            lib = ctypes.CDLL(found[0])
            lib.opj_version.restype = ctypes.c_char_p
            version = lib.opj_version().decode()
            if not version.startswith(
                ("2.4", "2.5")
            ):  # the struct layouts above are those of 2.4/2.5
                raise OSError(f"OpenJPEG {version}")
            lib.opj_create_decompress.restype = ctypes.c_void_p
            lib.opj_create_decompress.argtypes = [ctypes.c_int]
            lib.opj_set_default_decoder_parameters.argtypes = [ctypes.c_void_p]
            lib.opj_setup_decoder.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.opj_stream_create_default_file_stream.restype = ctypes.c_void_p
            lib.opj_stream_create_default_file_stream.argtypes = [ctypes.c_char_p, ctypes.c_int]
            lib.opj_read_header.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.POINTER(ctypes.POINTER(_Image)),
            ]
            lib.opj_set_decoded_resolution_factor.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
            lib.opj_set_decode_area.argtypes = [
                ctypes.c_void_p,
                ctypes.POINTER(_Image),
                ctypes.c_int32,
                ctypes.c_int32,
                ctypes.c_int32,
                ctypes.c_int32,
            ]
            lib.opj_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(_Image)]
            lib.opj_end_decompress.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.opj_stream_destroy.argtypes = [ctypes.c_void_p]
            lib.opj_destroy_codec.argtypes = [ctypes.c_void_p]
            lib.opj_image_destroy.argtypes = [ctypes.POINTER(_Image)]
            _lib = lib
        except Exception as exc:  # noqa: BLE001 - no accelerator: the normal decode is used
            log.info("reduced-resolution JPEG 2000 decoding unavailable: %s", exc)
            _failed = True
    return _lib


#: a full-resolution decode is split into this many horizontal bands decoded on threads
#: (OpenJPEG here is built without its own thread pool; ctypes calls release the GIL)
#: (two bands cost ~5% more CPU than one piece; more bands cost more on a busy machine)
FULL_DECODE_BANDS = max(1, min(4, os.cpu_count() or 1))
#: images smaller than this are decoded in one piece (the per-band set-up would not pay)
BANDED_MIN_PIXELS = 1_000_000


def decode_codestream(codestream: bytes, factor: int) -> np.ndarray | None:
    """Decode a grey J2K codestream at 1/2**factor of its size (None when not possible).

    A full-resolution decode (``factor`` 0) of a large image is done in horizontal bands on
    threads (``opj_set_decode_area``; the bands are bit-exact pieces of the whole decode).

    Returns
    -------
    numpy.ndarray or None
        int32 (ceil(rows / 2**factor), ceil(cols / 2**factor)) stored values.
    """
    lib = _load()
    if lib is None or factor < 0:
        return None
    fd, tmp = tempfile.mkstemp(suffix=".j2k")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(codestream)
        size = _image_size(lib, tmp)
        if size is None:
            return None
        height, width = size
        bands = FULL_DECODE_BANDS if factor == 0 and height * width >= BANDED_MIN_PIXELS else 1
        bands = max(1, min(bands, height // 64))
        if bands == 1:
            return _decode_file(lib, tmp, factor, None)
        from concurrent.futures import ThreadPoolExecutor

        edges = [round(height * i / bands) for i in range(bands + 1)]
        with ThreadPoolExecutor(bands, thread_name_prefix="j2k-band") as pool:
            parts = list(
                pool.map(
                    lambda i: _decode_file(lib, tmp, 0, (edges[i], edges[i + 1])), range(bands)
                )
            )
        if any(
            p is None or p.shape != (edges[i + 1] - edges[i], width) for i, p in enumerate(parts)
        ):
            return None
        return np.concatenate(parts)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001
        log.debug("J2K decode failed: %s", type(exc).__name__)
        return None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _image_size(lib: Any, path: str) -> tuple[int, int] | None:
    """(rows, columns) of a one-component codestream from its header, else None."""
    codec = stream = None
    img = ctypes.POINTER(_Image)()
    try:
        codec = lib.opj_create_decompress(0)  # OPJ_CODEC_J2K
        params = ctypes.create_string_buffer(16384)  # larger than opj_dparameters_t
        lib.opj_set_default_decoder_parameters(params)
        if not codec or not lib.opj_setup_decoder(codec, params):
            return None
        stream = lib.opj_stream_create_default_file_stream(path.encode(), 1)
        if not stream or not lib.opj_read_header(stream, codec, ctypes.byref(img)) or not img:
            return None
        im = img.contents
        if im.numcomps != 1:
            return None
        return int(im.y1 - im.y0), int(im.x1 - im.x0)
    finally:
        if img:
            lib.opj_image_destroy(img)
        if stream:
            lib.opj_stream_destroy(stream)
        if codec:
            lib.opj_destroy_codec(codec)


def _decode_file(
    lib: Any, path: str, factor: int, rows: tuple[int, int] | None
) -> np.ndarray | None:
    """Decode the codestream in ``path`` (``rows``: only that band, full resolution)."""
    codec = stream = None
    img = ctypes.POINTER(_Image)()
    try:
        codec = lib.opj_create_decompress(0)  # OPJ_CODEC_J2K
        params = ctypes.create_string_buffer(16384)  # larger than opj_dparameters_t
        lib.opj_set_default_decoder_parameters(params)
        if not codec or not lib.opj_setup_decoder(codec, params):
            return None
        stream = lib.opj_stream_create_default_file_stream(path.encode(), 1)
        if not stream or not lib.opj_read_header(stream, codec, ctypes.byref(img)) or not img:
            return None
        if not lib.opj_set_decoded_resolution_factor(codec, int(factor)):
            return None
        if rows is not None:
            im = img.contents
            if not lib.opj_set_decode_area(
                codec, img, int(im.x0), int(im.y0) + rows[0], int(im.x1), int(im.y0) + rows[1]
            ):
                return None
        if not lib.opj_decode(codec, stream, img) or not lib.opj_end_decompress(codec, stream):
            return None
        im = img.contents
        if im.numcomps != 1:
            return None
        comp = im.comps[0]
        if not comp.data or comp.w == 0 or comp.h == 0:
            return None
        return np.ctypeslib.as_array(comp.data, shape=(comp.h, comp.w)).copy()
    except Exception as exc:  # noqa: BLE001
        log.debug("J2K decode failed: %s", type(exc).__name__)
        return None
    finally:
        if img:
            lib.opj_image_destroy(img)
        if stream:
            lib.opj_stream_destroy(stream)
        if codec:
            lib.opj_destroy_codec(codec)


def progressive_candidate(ds: Any) -> bool:
    """True for a large single-frame grey JPEG 2000 image (worth a reduced first decode)."""
    try:
        ts = str(ds.file_meta.TransferSyntaxUID)
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except Exception:  # noqa: BLE001
        return False
    return (
        ts in J2K_SYNTAXES
        and frames == 1
        and samples == 1
        and rows * cols >= PROGRESSIVE_MIN_PIXELS
    )


#: full decodes started ahead of need (:func:`prefetch_full`), by file identity
_ahead: "dict[tuple[str, int, int], Any]" = {}
_AHEAD_MAX = 2


def _identity(ds: Any) -> tuple[str, int, int] | None:
    try:
        path = os.path.abspath(str(ds.filename))
        st = os.stat(path)
        return path, st.st_size, st.st_mtime_ns
    except Exception:  # noqa: BLE001
        return None


def _codestream(ds: Any) -> bytes | None:
    try:
        from pydicom.encaps import generate_frames

        return next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception:  # noqa: BLE001
        return None


def prefetch_full(ds: Any) -> None:
    """Start the full-resolution decode of a big film now, on its own thread.

    The viewer asks for it right after painting the reduced preview; starting it alongside the
    preview decode puts the full image on screen sooner. :func:`reduced_frame` with factor 0
    collects it (or decodes itself when nothing was started).
    """
    if not progressive_candidate(ds):
        return
    key = _identity(ds)
    if key is None:
        return
    from concurrent.futures import Future

    with _lock:
        if key in _ahead:
            return
        fut: Future = Future()
        _ahead[key] = fut
        while len(_ahead) > _AHEAD_MAX:  # never consumed (the film was closed): drop the oldest
            _ahead.pop(next(iter(_ahead)))

    def run() -> None:
        try:
            cs = _codestream(ds)
            fut.set_result(decode_codestream(cs, 0) if cs is not None else None)
        except BaseException as exc:  # noqa: BLE001 - the consumer decodes itself
            fut.set_result(None)
            log.debug("J2K prefetch failed: %s", type(exc).__name__)

    threading.Thread(target=run, name="j2k-prefetch", daemon=True).start()


def reduced_frame(ds: Any, factor: int) -> np.ndarray | None:
    """The first frame of ``ds`` decoded at 1/2**factor, modality LUT applied (float32), or None.

    The stored values are checked against the header (bits, sign) before use.
    """
    if not progressive_candidate(ds):
        return None
    arr = None
    if factor == 0:
        key = _identity(ds)
        with _lock:
            fut = _ahead.pop(key, None) if key is not None else None
        if fut is not None:
            arr = fut.result()
    if arr is None:
        codestream = _codestream(ds)
        if codestream is None:
            return None
        arr = decode_codestream(codestream, factor)
    if arr is None:
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    step = 2**factor
    if arr.shape != (-(-rows // step), -(-cols // step)):
        return None
    from app.dicom.pixels import modality_lut

    return modality_lut(arr, ds, 0)  # OpenJPEG gives int32 stored values (signed or not)


def upsample_to(arr: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Scale a reduced frame back onto the full pixel grid (bilinear), float32."""
    import cv2

    out = cv2.resize(
        arr.astype(np.float32, copy=False), (cols, rows), interpolation=cv2.INTER_LINEAR
    )
    return np.ascontiguousarray(out, dtype=np.float32)
