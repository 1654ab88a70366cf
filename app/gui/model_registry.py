"""The AI model registry for the panels: loaded once on a worker thread and cached.

Reading the registry verifies every installed model (JSON Schema, sha256 of the ONNX file, the
ONNX graph's inputs and outputs): hundreds of milliseconds of imports and I/O that must never run on
the GUI thread. :func:`request_registry` starts that check once per process (per ``HILUM_HOME``,
so tests with their own site models get their own), through ``main_window.run_in_background`` when
the window offers it, and hands the cached :class:`app.inference.registry.ModelRegistry` to every
panel that asks. Afterwards panels filter applicability from the cached manifests and the series'
header values only (``app.inference.registry.applicability_problems``), which is pure Python.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

from app.core import paths
from app.gui.workers import run_in_background

log = logging.getLogger(__name__)

_cache: dict[tuple[str, str], Any] = {}
_waiting: dict[
    tuple[str, str], list[tuple[Callable[[Any], None], Callable[[BaseException], None]]]
] = {}


def _key() -> tuple[str, str]:
    # the folders the registry reads; cheap (no file system access)
    return str(paths.bundled_models_dir()), os.environ.get("HILUM_HOME", "")


def load_registry(progress: Any = None) -> Any:
    """Worker-thread job: read and verify every installed model (hashes files, parses ONNX)."""
    from app.inference.registry import ModelRegistry

    registry = ModelRegistry()
    registry.models()
    return registry


def cached_registry() -> Any:
    """The verified registry when it has been loaded, else None (never loads it)."""
    return _cache.get(_key())


def forget_registry() -> None:
    """Drop the cached registry (after a site admin installs a model); the next request reloads."""
    _cache.pop(_key(), None)


def _call(callback: Callable[[Any], None], value: Any) -> None:
    try:
        callback(value)
    except RuntimeError as exc:  # the panel was deleted while the registry loaded
        log.debug("registry callback skipped: %s", exc)


def request_registry(
    main_window: Any, on_ready: Callable[[Any], None], on_error: Callable[[BaseException], None]
) -> None:
    """Give the cached registry to ``on_ready``, loading it in the background the first time.

    Parameters
    ----------
    main_window : MainWindow or None
        Its ``run_in_background`` (progress bar, Cancel) is used when it has one.
    on_ready, on_error : callable
        Called on the GUI thread with the registry, or with the exception when loading failed.
        ``on_ready`` runs at once when the registry is already cached.
    """
    key = _key()
    if key in _cache:
        on_ready(_cache[key])
        return
    if key in _waiting:
        _waiting[key].append((on_ready, on_error))
        return
    _waiting[key] = [(on_ready, on_error)]

    def done(registry: Any) -> None:
        _cache[key] = registry
        for ready, _ in _waiting.pop(key, []):
            _call(ready, registry)

    def failed(exc: BaseException) -> None:
        for _, error in _waiting.pop(key, []):
            _call(error, exc)

    def start() -> None:
        runner = getattr(main_window, "run_in_background", None)
        if callable(runner):
            try:
                runner(load_registry, on_result=done, on_error=failed, reads_dicom=False)
                return
            except RuntimeError:  # the window was closed meanwhile: load for the next one
                pass
        run_in_background(load_registry, on_result=done, on_error=failed, reads_dicom=False)

    _after_first_image(main_window, start)


#: the longest the registry check waits for a first image at start-up (ms)
FIRST_IMAGE_WAIT_MS = 3000
_defer = {"first_image": False}


def defer_until_first_image() -> None:
    """``hilum gui PATHS``: the first registry check waits for the window's first image.

    The check costs ~250 ms of CPU (onnx, jsonschema, hashing); at start-up that would be taken
    from decoding the first image. :func:`app.gui.app.run_gui` calls this before it builds the
    window when it was given files to show.
    """
    _defer["first_image"] = True


def _after_first_image(main_window: Any, start: Callable[[], None]) -> None:
    """Run ``start`` now, or (once, after :func:`defer_until_first_image`) when ``main_window``
    has painted its first image, at most :data:`FIRST_IMAGE_WAIT_MS` later."""
    signal = getattr(main_window, "first_image_painted", None)
    if not _defer["first_image"] or signal is None:
        start()
        return
    _defer["first_image"] = False
    from PySide6.QtCore import QObject, QTimer

    state = {"started": False}

    def once() -> None:
        if not state["started"]:
            state["started"] = True
            start()

    signal.connect(once)
    # the window is the timer's context: a window closed meanwhile never starts the check
    if isinstance(main_window, QObject):
        QTimer.singleShot(FIRST_IMAGE_WAIT_MS, main_window, once)
    else:
        QTimer.singleShot(FIRST_IMAGE_WAIT_MS, once)
