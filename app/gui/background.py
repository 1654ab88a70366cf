"""The main window's background tasks: one progress bar and one Cancel button for all of them.

:class:`BackgroundTasks` runs plain functions on the thread pool (:mod:`app.gui.workers`), keeps
the running workers, shows the progress of the latest report and hides bar and button when the
last task ends (then calls ``on_idle``). :class:`app.gui.main_window.MainWindow` delegates its
``run_in_background``, ``cancel_background`` and ``busy`` here.
"""

from __future__ import annotations

from typing import Any, Callable

import shiboken6
from PySide6.QtWidgets import QProgressBar, QPushButton, QWidget

from app.gui.workers import Worker
from app.gui.workers import run_in_background as _run_in_background

ProgressFn = Callable[[int, "int | None", str], None]


class BackgroundTasks:
    """Workers started for a window, shown in its status bar.

    Parameters
    ----------
    owner : QWidget
        The window; callbacks that touch it are skipped once it is deleted.
    progress : QProgressBar
    cancel_button : QPushButton
        Shown while a task runs; clicking it cancels every task.
    on_error : callable
        Default error handler (the window's one way to show errors).
    on_idle : callable, optional
        Called when the last running task has ended.
    """

    def __init__(
        self,
        owner: QWidget,
        progress: QProgressBar,
        cancel_button: QPushButton,
        on_error: Callable[[BaseException], None],
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.owner = owner
        self.progress = progress
        self.cancel_button = cancel_button
        self.on_error = on_error
        self.on_idle = on_idle
        self.workers: list[Worker] = []

    @property
    def busy(self) -> bool:
        """True while a task runs."""
        return bool(self.workers)

    def _alive(self, callback: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
        """``callback``, skipped once the window is deleted: a task that outlives its window
        (closed meanwhile) must not reach into the window's deleted panels."""
        if callback is None:
            return None

        def call(value: Any) -> None:
            if shiboken6.isValid(self.owner):
                callback(value)

        return call

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: ProgressFn | None = None,
        on_item: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Worker:
        """Run ``fn(*args, progress=..., **kwargs)`` on the pool with the progress bar and Cancel."""

        def progress(done: int, total: int | None, message: str) -> None:
            if not shiboken6.isValid(self.owner):
                return
            self.show_progress(done, total, message)
            if on_progress is not None:
                on_progress(done, total, message)

        started: list[Worker] = []

        def finished() -> None:
            # connected before the worker starts: a task faster than this method still reports;
            # a window closed (and deleted) while the task ran has no progress bar to hide
            if started and shiboken6.isValid(self.owner):
                self.done(started[0])
            if on_finished is not None:
                on_finished()

        worker = _run_in_background(
            fn,
            *args,
            on_result=self._alive(on_result),
            on_error=self._alive(on_error or self.on_error),
            on_progress=progress,
            on_item=self._alive(on_item),
            on_finished=finished,
            **kwargs,
        )
        started.append(worker)
        self.workers.append(worker)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        return worker

    def show_progress(self, done: int, total: int | None, message: str) -> None:
        """Show a progress report (no total: a busy indicator)."""
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(int(done))
        else:
            self.progress.setRange(0, 0)
        self.progress.setFormat(message[:60] if message else "%p%")
        self.progress.setToolTip(message)

    def done(self, worker: Worker) -> None:
        """Forget a finished worker; hide the bar and call ``on_idle`` after the last."""
        if worker in self.workers:
            self.workers.remove(worker)
        if not self.workers:
            self.progress.hide()
            self.cancel_button.hide()
            if self.on_idle is not None:
                self.on_idle()

    def cancel(self) -> bool:
        """Cancel every running task; True when there was one."""
        for w in list(self.workers):
            w.cancel()
        return bool(self.workers)
