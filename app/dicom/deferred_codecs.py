"""pydicom's codec backends loaded after the first image (``hilum gui PATH...`` start-up).

At its first import pydicom registers a decoding (and encoding) plugin table for every transfer
syntax, and each plugin module imports its backend to see whether it is installed: GDCM,
pylibjpeg (with its libjpeg, OpenJPEG and RLE plugins, found through package entry points) and
Pillow. That is about a third of pydicom's import time, on the GUI thread before the first image,
for a first image (a JPEG-LS film through :mod:`app.dicom.jpegls`, or an uncompressed one) that
needs none of them.

When :func:`request` was called before pydicom is imported (:func:`app.gui.loader.
load_pixel_pipeline`), those backends are hidden while pydicom's package first executes (as
:mod:`app.dicom` hides its downloader's HTTP stack), and the plugin registrations pydicom makes
are noted. :func:`complete` then imports the backends, re-runs the plugin modules that looked for
them, and rebuilds every plugin table from the noted registrations, in pydicom's order: the
tables are those a plain ``import pydicom`` makes. The GUI's import worker calls it once the first
image is painted; before that, any decode or encode through pydicom's pixel backend (any
:class:`~pydicom.pixels.decoders.base.Decoder` or :class:`~pydicom.pixels.encoders.base.Encoder`
with plugins) calls it first, so nothing ever sees the shorter tables.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

log = logging.getLogger(__name__)

#: the backends pydicom's plugin modules import at registration
BACKENDS = ("gdcm", "pylibjpeg", "PIL")
#: pydicom modules that import one of :data:`BACKENDS` at their top (re-run by :func:`complete`)
_LOOKERS = (
    "pydicom.pixels.processing",
    "pydicom.pixels.decoders.gdcm",
    "pydicom.pixels.decoders.pylibjpeg",
    "pydicom.pixels.decoders.pillow",
    "pydicom.pixels.encoders.gdcm",
    "pydicom.pixels.encoders.pylibjpeg",
    "pydicom.pixel_data_handlers.gdcm_handler",
    "pydicom.pixel_data_handlers.pillow_handler",
    "pydicom.pixel_data_handlers.pylibjpeg_handler",
)

_lock = threading.Lock()
_local = threading.local()
_requested = False
_pending = False
#: (coder, label, import path) in the order pydicom registered them
_registrations: list[tuple[Any, str, tuple[str, str]]] = []


def request() -> None:
    """Defer the backends at pydicom's first import (a no-op once pydicom is imported)."""
    global _requested
    if "pydicom" not in sys.modules:
        _requested = True


def pending() -> bool:
    """True while pydicom's plugin tables lack the deferred backends."""
    return _pending


class _RecordingLoader(importlib.abc.Loader):
    """Loads ``pydicom.pixels.common`` and notes every ``add_plugin`` call made meanwhile."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self.restore: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        base = module.CoderBase
        real = base.add_plugin

        def add_plugin(coder: Any, label: str, import_path: tuple[str, str]) -> None:
            _registrations.append((coder, label, (str(import_path[0]), str(import_path[1]))))
            real(coder, label, import_path)

        base.add_plugin = add_plugin
        self.restore = lambda: setattr(base, "add_plugin", real)


class _RecordingFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.loader: _RecordingLoader | None = None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "pydicom.pixels.common" or self.loader is not None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            self.loader = _RecordingLoader(spec.loader)
            spec.loader = self.loader
        return spec


@contextmanager
def hidden_backends() -> Iterator[None]:
    """Around pydicom's first package execution (:mod:`app.dicom`'s loader): the backends
    hidden and the registrations noted, when :func:`request` asked for it."""
    global _pending
    hidden = [name for name in BACKENDS if name not in sys.modules] if _requested else []
    if not hidden:
        yield
        return
    finder = _RecordingFinder()
    sys.meta_path.insert(0, finder)
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # ``import name`` raises ImportError
    ok = False
    try:
        yield
        ok = True
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        if finder.loader is not None and finder.loader.restore is not None:
            finder.loader.restore()
        if ok and _registrations:
            _pending = True
            for coder in {id(c): c for c, _, _ in _registrations}.values():
                _guard(coder)


def _guard(coder: Any) -> None:
    """Make ``coder`` complete the tables before it is used (every decode and encode through
    pydicom's pixel backend asks its coder for its plugins first)."""

    def _validate_plugins(plugin: str = "") -> Any:
        complete()
        return type(coder)._validate_plugins(coder, plugin)

    coder._validate_plugins = _validate_plugins


class Deferred(BaseException):
    """Raised in a thread that declined to complete the tables (:func:`declined_here`).

    A BaseException, so that no ``except Exception`` on the way takes it for a bad file.
    """


@contextmanager
def declining() -> Iterator[None]:
    """Within: a decode that needs the deferred backends raises :class:`Deferred` instead of
    importing them in this thread (:class:`app.gui.loader.EarlyPreview`, which runs while the
    GUI thread imports Qt; the import worker decodes that image later)."""
    _local.decline = True
    _local.declined = False
    try:
        yield
    finally:
        _local.decline = False


def declined_here() -> bool:
    """True when a decode in this thread's last :func:`declining` block needed the backends."""
    return bool(getattr(_local, "declined", False))


def complete() -> None:
    """Import the deferred backends and rebuild pydicom's plugin tables (idempotent, thread-safe).

    The plugin modules that looked for a backend are run again, then every coder's table is
    rebuilt from the noted registrations on a new coder of the same class (pydicom's own
    ``add_plugin``: availability checks, dependency notes, order) and swapped in at once.
    """
    global _pending
    if not _pending:
        return
    if getattr(_local, "decline", False):
        _local.declined = True
        raise Deferred("pydicom's codec plugins are not loaded yet")
    with _lock:
        if not _pending:
            return
        try:
            for name in _LOOKERS:
                module = sys.modules.get(name)
                if module is not None:
                    importlib.reload(module)
            by_coder: dict[int, tuple[Any, list[tuple[str, tuple[str, str]]]]] = {}
            for coder, label, path in _registrations:
                by_coder.setdefault(id(coder), (coder, []))[1].append((label, path))
            for coder, regs in by_coder.values():
                fresh = type(coder)(coder.UID)
                for label, path in regs:
                    fresh.add_plugin(label, path)
                coder._available, coder._unavailable = fresh._available, fresh._unavailable
                coder.__dict__.pop("_validate_plugins", None)
        except Exception as exc:  # noqa: BLE001 - the tables stay as they are (fewer plugins)
            log.warning("codec plugins could not be completed: %s", type(exc).__name__)
            for coder, _, _ in _registrations:
                coder.__dict__.pop("_validate_plugins", None)
        finally:
            _pending = False
