"""Small geometry helpers shared by the library (sorting) and series loading (stacks)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def normal(orientation: Sequence[float]) -> np.ndarray | None:
    """Unit slice normal (row direction x column direction) of an ImageOrientationPatient."""
    if orientation is None or len(orientation) != 6:
        return None
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:], dtype=np.float64)
    n = np.cross(row, col)
    length = float(np.linalg.norm(n))
    if not math.isfinite(length) or length < 1e-6:
        return None
    return n / length


def orientation_key(orientation: Sequence[float] | None, decimals: int = 3) -> tuple[float, ...]:
    """A hashable orientation rounded so that float noise does not split a stack."""
    if orientation is None:
        return ()
    return tuple(round(float(v), decimals) + 0.0 for v in orientation)


def slice_distance(position: Sequence[float] | None, orientation: Sequence[float] | None) -> float | None:
    """Position of a slice along its normal (mm), or None without geometry."""
    if position is None or len(position) != 3:
        return None
    n = normal(orientation) if orientation is not None else None
    if n is None:
        return None
    return float(np.dot(np.asarray(position, dtype=np.float64), n))


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors in degrees (0..90, direction ignored)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < 1e-9 or nb < 1e-9:
        return 0.0
    c = abs(float(np.dot(a, b)) / (na * nb))
    return math.degrees(math.acos(min(1.0, c)))
