"""Render one frame of a DICOM image to a PNG, exactly as it is displayed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from app.core.errors import HilumError
from app.core.paths import private_dir, write_private
from app.dicom.pixels import Window, display_array, frame_array, read_dataset

log = logging.getLogger(__name__)


class OutputError(HilumError):
    """An output file could not be written."""


def write_png(image: np.ndarray, out: str | os.PathLike[str]) -> Path:
    """Write a uint8 grey (h, w) or RGB (h, w, 3) image as PNG.

    Raises
    ------
    OutputError
        When the file cannot be written.
    """
    import cv2

    path = Path(out)
    if path.parent and not path.parent.exists():
        try:
            private_dir(path.parent)  # a rendered image is patient data: 0700
        except OSError:
            raise OutputError(f"Cannot create the folder {path.parent}.", str(path)) from None
    img = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    try:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError("The image could not be encoded as PNG.", str(path))
    try:
        write_private(path, buf.tobytes())  # 0600 whatever the umask
    except OSError as exc:
        raise OutputError(
            f"Cannot write {path} ({exc.strerror or 'I/O error'}).", str(path)
        ) from None
    return path


def render_array(
    path: str | os.PathLike[str], window: Window | int | None = None, frame: int = 0
) -> np.ndarray:
    """The displayed 8-bit image of one frame (see :func:`app.dicom.pixels.display_array`)."""
    ds = read_dataset(path)
    arr = frame_array(ds, frame)
    return display_array(ds, arr, window=window, frame=frame)


def render_to_png(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    window: Window | int | None = None,
    frame: int = 0,
) -> Path:
    """Render a frame as displayed (header window unless ``window`` is given) to a PNG.

    Parameters
    ----------
    path : path
        The DICOM file.
    out : path
        The PNG to write.
    window : (center, width), int or None
        Explicit window in modality units, or the index of a header window.
    frame : int
        0-based frame.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    NotDicomError, DicomReadError, PixelDecodeError, UsageError, OutputError
        One-line reasons.
    """
    image = render_array(path, window=window, frame=frame)
    return write_png(image, out)
