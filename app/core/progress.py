"""The progress/cancel protocol used by every long-running function.

Long work is a plain function that takes a :class:`Progress`. The CLI passes a
:class:`NullProgress` or a :class:`CallbackProgress`; the GUI passes one whose callback emits a Qt
signal from its worker thread. Functions call :meth:`Progress.update` now and then and
:meth:`Progress.check` at safe points, which raises :class:`~app.core.errors.Cancelled`.
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol, runtime_checkable

from app.core.errors import Cancelled


@runtime_checkable
class Progress(Protocol):
    """What long-running functions need from their caller."""

    def update(self, done: int, total: int | None = None, message: str = "") -> None:
        """Report that ``done`` of ``total`` units are finished."""

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop."""

    @property
    def cancelled(self) -> bool:
        """True once cancel was requested."""


class CallbackProgress:
    """A thread-safe progress object that forwards updates to a callback.

    Parameters
    ----------
    callback : callable, optional
        Called as ``callback(done, total, message)`` from the worker thread.
    """

    def __init__(self, callback: Callable[[int, int | None, str], None] | None = None) -> None:
        self._callback = callback
        self._cancel = threading.Event()

    def update(self, done: int, total: int | None = None, message: str = "") -> None:
        """Forward an update to the callback, if any."""
        if self._callback is not None:
            self._callback(done, total, message)

    def cancel(self) -> None:
        """Ask the work to stop at its next :meth:`check`."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._cancel.is_set():
            raise Cancelled()


class NullProgress(CallbackProgress):
    """Progress that reports nowhere and is never cancelled (unless asked)."""

    def __init__(self) -> None:
        super().__init__(None)
