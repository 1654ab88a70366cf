"""Background work on the global ``QThreadPool``.

Long work is a plain function that takes a progress object (:mod:`app.core.progress`). The GUI
wraps it in a :class:`Worker` whose signals are delivered on the GUI thread (queued connections):
``progress(done, total, message)``, ``item(obj)`` for intermediate results (a decoded first
image, a series ready), ``result(obj)``, ``error(exc)`` and ``finished()`` (always last).

Example
-------
>>> worker = run_in_background(load_study, path, on_result=show, on_error=report)  # doctest: +SKIP
>>> worker.cancel()                                                                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from app.core.errors import Cancelled
from app.core.progress import CallbackProgress

log = logging.getLogger(__name__)

#: workers alive, so that Python does not collect a QRunnable's signals while it runs
_ALIVE: set["Worker"] = set()

#: pydicom is imported by the first task that needs it (it stays off the start-up path). Two pool
#: threads importing ``pydicom`` and one of its submodules for the first time at once meet
#: CPython's import-deadlock guard, which hands one of them a partially initialised module
#: ("cannot import name 'Dataset' from partially initialized module 'pydicom.dataset'"), so
#: tasks import it here first, one at a time. Tasks that never read DICOM (the model registry
#: check at start-up) say so with ``reads_dicom=False`` and skip it.
_DICOM_IMPORT = threading.Lock()
_dicom_imported = False


def _import_dicom_once() -> None:
    global _dicom_imported
    if _dicom_imported:
        return
    with _DICOM_IMPORT:
        if not _dicom_imported:
            import pydicom  # noqa: F401

            _dicom_imported = True


class WorkerSignals(QObject):
    """Signals of one :class:`Worker` (emitted from the pool thread, received on the GUI thread)."""

    progress = Signal(int, object, str)
    item = Signal(object)
    result = Signal(object)
    error = Signal(object)
    cancelled = Signal()
    finished = Signal()


class Worker(QRunnable):
    """Run ``fn(*args, progress=..., **kwargs)`` on the thread pool.

    Parameters
    ----------
    fn : callable
        The plain function. It receives a :class:`~app.core.progress.CallbackProgress` as the
        ``progress`` keyword; with ``pass_emit=True`` it also receives ``emit`` (a callable that
        sends an intermediate object to the GUI through ``signals.item``).
    *args, **kwargs
        Passed to ``fn``.
    pass_emit : bool
        Whether ``fn`` takes the ``emit`` keyword.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        pass_emit: bool = False,
        reads_dicom: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.reads_dicom = reads_dicom
        self.setAutoDelete(False)  # Python owns it; released in _done
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.signals = WorkerSignals()
        self.progress = CallbackProgress(self._on_progress)
        self.pass_emit = pass_emit

    def _on_progress(self, done: int, total: int | None, message: str) -> None:
        self.signals.progress.emit(int(done), total, message)

    def emit(self, obj: Any) -> None:
        """Send an intermediate result to the GUI thread."""
        self.signals.item.emit(obj)

    def cancel(self) -> None:
        """Ask the function to stop at its next ``progress.check()``."""
        self.progress.cancel()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.progress.cancelled

    def run(self) -> None:  # runs on a pool thread
        try:
            if self.reads_dicom:
                _import_dicom_once()
            kwargs = dict(self.kwargs)
            kwargs["progress"] = self.progress
            if self.pass_emit:
                kwargs["emit"] = self.emit
            value = self.fn(*self.args, **kwargs)
        except Cancelled:
            self._send(self.signals.cancelled)
        except BaseException as exc:  # noqa: BLE001 - every error goes to the GUI, none kills the pool
            log.debug("background task failed: %s", type(exc).__name__, exc_info=exc)
            self._send(self.signals.error, exc)
        else:
            self._send(self.signals.result, value)
        finally:
            self._send(self.signals.finished)

    @staticmethod
    def _send(signal: Any, *args: Any) -> None:
        """Emit, unless the receiving side is already gone (the window closed meanwhile)."""
        try:
            signal.emit(*args)
        except RuntimeError:
            log.debug("result dropped: its receiver was deleted")


def run_in_background(
    fn: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_progress: Callable[[int, int | None, str], None] | None = None,
    on_item: Callable[[Any], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    pool: QThreadPool | None = None,
    reads_dicom: bool = True,
    **kwargs: Any,
) -> Worker:
    """Start ``fn`` on the thread pool and connect the given callbacks.

    ``on_item`` set means ``fn`` takes an ``emit`` keyword. Callbacks run on the GUI thread.
    ``reads_dicom=False``: the task never imports pydicom (see :func:`_import_dicom_once`).

    Returns
    -------
    Worker
        The running worker (keep it to cancel).
    """
    worker = Worker(fn, *args, pass_emit=on_item is not None, reads_dicom=reads_dicom, **kwargs)
    sig = worker.signals
    if on_result is not None:
        sig.result.connect(on_result)
    if on_error is not None:
        sig.error.connect(on_error)
    if on_progress is not None:
        sig.progress.connect(on_progress)
    if on_item is not None:
        sig.item.connect(on_item)
    if on_finished is not None:
        sig.finished.connect(on_finished)
    _ALIVE.add(worker)
    sig.finished.connect(lambda: _ALIVE.discard(worker))
    (pool or QThreadPool.globalInstance()).start(worker)
    return worker


def wait_all(timeout_ms: int = 10000) -> bool:
    """Wait for the global pool to finish (used at exit and in tests)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
