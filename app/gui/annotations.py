"""Text shown over the image: corner annotations and patient orientation letters (no Qt)."""

from __future__ import annotations

import numpy as np


def direction_letters(vector: np.ndarray | tuple[float, ...], threshold: float = 0.25) -> str:
    """Patient direction letters of a unit vector in LPS space (DICOM patient coordinates).

    +x is patient Left, +y Posterior, +z Head. Components are listed from the largest, and only
    those larger than ``threshold`` (so an oblique axis reads e.g. ``"LA"``).

    Examples
    --------
    >>> direction_letters((1, 0, 0))
    'L'
    >>> direction_letters((0, -0.8, -0.6))
    'AF'
    """
    v = np.asarray(vector, dtype=float)
    letters = (("R", "L"), ("A", "P"), ("F", "H"))
    order = np.argsort(-np.abs(v))
    out = ""
    for axis in order:
        if abs(v[axis]) > threshold:
            out += letters[axis][1 if v[axis] > 0 else 0]
    return out[:3]


def format_age(age: str) -> str:
    """``"045Y"`` -> ``"45 y"`` (DICOM AS values)."""
    age = (age or "").strip()
    if len(age) == 4 and age[:3].isdigit() and age[3] in "DWMY":
        return f"{int(age[:3])} {age[3].lower()}"
    return age


def format_date(da: str) -> str:
    """``"20240131"`` -> ``"2024-01-31"`` (DICOM DA values; anything else unchanged)."""
    da = (da or "").strip()
    if len(da) == 8 and da.isdigit():
        return f"{da[:4]}-{da[4:6]}-{da[6:]}"
    return da


def format_name(name: str) -> str:
    """``"DOE^JANE"`` -> ``"DOE, JANE"`` (DICOM PN)."""
    parts = [p for p in (name or "").split("^") if p]
    if len(parts) >= 2:
        return f"{parts[0]}, {' '.join(parts[1:])}"
    return parts[0] if parts else ""
