"""Turn exceptions into messages a user understands, in ONE place for the whole GUI.

Every worker error, import problem and failed action goes through :func:`user_message`; dialogs
are shown by :func:`show_error`. Typed :class:`~app.core.errors.HilumError` carry their own
sentence; anything else is logged with its traceback and shown as a short, generic sentence.
"""

from __future__ import annotations

import logging
import os

from app.core.errors import Cancelled, HilumError

log = logging.getLogger(__name__)


def user_message(exc: BaseException, path: str | None = None, with_name: bool = True) -> str:
    """Return one readable sentence for ``exc`` (never a traceback).

    Parameters
    ----------
    exc : BaseException
        The error raised by core code or by the GUI.
    path : str, optional
        The file the error is about, when the caller knows it better than the error.
    with_name : bool
        Prefix the file name (off where the caller shows the path beside the message).

    Returns
    -------
    str
        The message to show.
    """
    where = path or getattr(exc, "path", None)
    name = os.path.basename(where) if where else ""
    if isinstance(exc, Cancelled):
        return "Cancelled."
    if isinstance(exc, HilumError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "Not enough memory for this operation; close other series or lower the cache size in Settings."
    elif isinstance(exc, FileNotFoundError):
        text = "The file or folder does not exist."
    elif isinstance(exc, PermissionError):
        text = "Permission denied: Hilum may not read this file."
    elif isinstance(exc, OSError):
        text = f"The file could not be read ({exc.strerror or 'input/output error'})."
    else:
        # an unexpected bug: keep the traceback in the log, show a short sentence
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        text = f"Unexpected internal error ({type(exc).__name__}); the details are in the log."
    if with_name and name and name not in text:
        text = f"{name}: {text}"
    return text


def show_error(parent: object, exc: BaseException, title: str = "Hilum") -> None:
    """Show ``exc`` in a message box (nothing for a user's own cancel).

    Parameters
    ----------
    parent : QWidget or None
        Parent window of the dialog.
    exc : BaseException
        The error.
    title : str
        Dialog title.
    """
    if isinstance(exc, Cancelled):
        return
    from PySide6.QtWidgets import QMessageBox

    QMessageBox.warning(parent, title, user_message(exc))  # type: ignore[arg-type]
