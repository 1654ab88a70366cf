"""Small geometry helpers shared by the library (sorting) and series loading (stacks)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np


def normal(orientation: Sequence[float] | None) -> np.ndarray | None:
    """Unit slice normal (row direction x column direction) of an ImageOrientationPatient."""
    if orientation is None or len(orientation) != 6:
        return None
    found = _normal(tuple(float(v) for v in orientation))
    return None if found is None else np.asarray(found)


@lru_cache(maxsize=1024)
def _normal(o: tuple[float, ...]) -> tuple[float, float, float] | None:
    # a series has one orientation (or a few): computed once, not per slice
    n = (o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3])
    length = math.sqrt(n[0] ** 2 + n[1] ** 2 + n[2] ** 2)
    if not math.isfinite(length) or length < 1e-6:
        return None
    return (n[0] / length, n[1] / length, n[2] / length)


def orientation_key(orientation: Sequence[float] | None, decimals: int = 3) -> tuple[float, ...]:
    """A hashable orientation rounded so that float noise does not split a stack."""
    if orientation is None:
        return ()
    return tuple(round(float(v), decimals) + 0.0 for v in orientation)


def slice_distance(
    position: Sequence[float] | None, orientation: Sequence[float] | None
) -> float | None:
    """Position of a slice along its normal (mm), or None without geometry."""
    if position is None or len(position) != 3:
        return None
    if orientation is None or len(orientation) != 6:
        return None
    n = _normal(tuple(float(v) for v in orientation))
    if n is None:
        return None
    return float(position[0]) * n[0] + float(position[1]) * n[1] + float(position[2]) * n[2]


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors in degrees (0..90, direction ignored)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < 1e-9 or nb < 1e-9:
        return 0.0
    c = abs(float(np.dot(a, b)) / (na * nb))
    return math.degrees(math.acos(min(1.0, c)))
