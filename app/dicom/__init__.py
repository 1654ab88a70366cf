"""DICOM input: the study library, header scanning, series geometry and the pixel pipeline.

Modules
-------
library
    :class:`~app.dicom.library.Library` (SQLite, one connection per thread, WAL):
    ``scan(paths, progress=None, on_series=None) -> ScanReport`` (files, folders, .zip archives,
    DICOMDIRs; headers only; dedup by SOP Instance UID; idempotent), ``studies()``,
    ``study(uid)``, ``series(study_uid)``, ``series_info(series_uid)``, ``instances(series_uid)``
    (sorted along the slice normal), ``store_result`` / ``results`` / ``result``, ``prune()``.
    ``on_series(info)`` is called from the scanning thread as soon as the first instance of a
    series is committed; ``info`` is ``series_info`` plus ``first_path`` and ``first_sop_uid``.
reading
    Header reading with user-readable errors (``NotDicomError``, ``DicomReadError``) and fast
    raw value accessors.
pixels
    ``read_dataset``, ``frame_array`` (modality LUT applied: float32, or uint8 RGB),
    ``display_array`` (VOI LUT / window / VOI LUT function, MONOCHROME1 inverted -> uint8),
    ``default_window``, ``windows``, ``FrameCache`` (byte-bounded, thread-safe; from
    ``frame_cache``, with LRU or distance-from-shown-slice eviction).
series
    ``load_series(instances_or_paths) -> Series`` with ``.stacks`` (``Stack.spacing`` (z, y, x)
    mm, ``.positions``, ``.orientation``, ``.warnings``, ``.tilt_deg``, ``.volume()``).
render
    ``render_to_png(path, out, window=None, frame=0)``.
jpegls
    ``decode_grey(codestream, rows, columns)``: one-component JPEG-LS through pyjpegls's CharLS
    by ``ctypes``, without holding the GIL (``pixels`` tries it first; pydicom otherwise).
deferred_codecs
    ``request()`` / ``complete()``: pydicom imported without GDCM, pylibjpeg and Pillow (GUI
    start with a path), its plugin tables completed once the first image is painted.
commands
    ``hilum scan PATH... [--json] [--library DB]`` and
    ``hilum render FILE --out PNG [--window C,W] [--frame N]``.
"""

import importlib.abc as _abc
import importlib.machinery as _machinery
import sys as _sys
from typing import Any as _Any

#: what pydicom's test-data downloader imports and Hilum never needs from it
_DOWNLOADER_DEPS = ("requests", "tqdm")


class _PydicomLoader(_abc.Loader):
    """Runs pydicom's own loader with :data:`_DOWNLOADER_DEPS` hidden (see :class:`_PydicomFinder`)."""

    def __init__(self, loader: _Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> _Any:  # anything else (resources, code): pydicom's loader
        return getattr(self._loader, name)

    def create_module(self, spec: _Any) -> _Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: _Any) -> None:
        hidden = [name for name in _DOWNLOADER_DEPS if name not in _sys.modules]
        for name in hidden:
            _sys.modules[name] = None  # type: ignore[assignment]  # ``import name`` raises ImportError
        try:
            # the codec backends too, when the GUI start asked for it (app.dicom.deferred_codecs)
            from app.dicom.deferred_codecs import hidden_backends

            with hidden_backends():
                self._loader.exec_module(module)
        finally:
            for name in hidden:
                if name in _sys.modules and _sys.modules[name] is None:
                    del _sys.modules[name]


class _PydicomFinder(_abc.MetaPathFinder):
    """Imports pydicom without its test-data downloader's HTTP stack.

    ``pydicom.pixels.processing`` imports ``pydicom.data``, whose downloader imports ``requests``
    (urllib3, charset_normalizer...) and ``tqdm`` when installed: about a sixth of the GUI's
    start-up CPU time, for a downloader Hilum never calls (nothing is downloaded at run time).
    They are hidden only while the ``pydicom`` package first executes, so the downloader falls
    back to ``urllib``; whoever imports ``requests`` later (the DICOMweb client) gets it.
    """

    def find_spec(self, fullname: str, path: _Any = None, target: _Any = None) -> _Any:
        if fullname != "pydicom":
            return None
        _sys.meta_path.remove(self)  # once: the first import of pydicom only
        spec = _machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PydicomLoader(spec.loader)
        return spec


if "pydicom" not in _sys.modules and not any(isinstance(f, _PydicomFinder) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _PydicomFinder())
