"""Multiplanar reformats (MPR) and thick-slab projections, resampled in patient space.

A :class:`Volume` holds one :class:`app.dicom.series.Stack` decoded once into a float32 mosaic
(the slices tiled side by side in one 2-D array, so that OpenCV's ``remap`` can sample any slice
with bilinear interpolation) plus the stack geometry. A :class:`Plane` is a grid of square
pixels in patient space (LPS, mm). :meth:`Volume.sample` maps every plane pixel to voxel
coordinates with the DICOM geometry of the stack:

* the slice index from the distance along the slice normal, interpolated over the measured
  slice positions (uneven spacing is honoured, not averaged away);
* the in-slice row and column from the offset to that slice's ImagePositionPatient projected on
  the column and row directions. Slices of a gantry-tilted CT are shifted along the stack; the
  shift is taken from the positions, so a sagittal of a tilted head CT is not sheared.

The sample is trilinear: a bilinear sample in the two bracketing slices (two ``cv2.remap``
calls on the mosaic) blended by the fractional slice index.

Thick slabs (MIP, MinIP, average) reduce along a voxel axis directly when the slab normal is a
voxel axis (the common case: coronal/sagittal/axial slabs of an axial stack), else sample
several planes across the slab.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from app.core.errors import UsageError
from app.core.progress import Progress
from app.dicom.geometry import normal as _normal
from app.dicom.series import Stack

__all__ = ["PLANES", "PROJECTIONS", "Plane", "Volume", "orientation_letters", "render_plane"]

Vec3 = tuple[float, float, float]
PlaneKind = Literal["axial", "coronal", "sagittal"]
Projection = Literal["mip", "minip", "avg"]
PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")

PROJECTIONS: tuple[str, ...] = ("mip", "minip", "avg")

#: (row direction, column direction) of the standard planes in LPS, as radiologists view them:
#: axial from the feet (patient's right on the image left), coronal from the front, sagittal
#: from the patient's left (anterior on the image left); head up in coronal and sagittal.
_AXES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
#: row and column directions (LPS) of the standard planes (the MPR panes start with these)
AXES = _AXES

_SHRT_MAX = 32767  # cv2.remap: source and destination sides must stay below this


def _t3(v: Any) -> Vec3:
    """Three plain floats (dataclass fields stay hashable and JSON-friendly)."""
    return (float(v[0]), float(v[1]), float(v[2]))


def _letters(v: np.ndarray) -> str:
    """Orientation letters of a direction in LPS, strongest first (e.g. 'LA')."""
    names = (("L", "R"), ("P", "A"), ("H", "F"))
    order = np.argsort(-np.abs(v))
    out = ""
    for axis in order:
        if abs(v[axis]) > 0.2:
            out += names[axis][0] if v[axis] > 0 else names[axis][1]
    return out


def orientation_letters(row: Sequence[float], col: Sequence[float]) -> dict[str, str]:
    """The letters at the four edges of an image with these row/column directions.

    Returns
    -------
    dict
        ``{"left", "right", "top", "bottom"}``: e.g. an axial image gives R, L, A, P.
    """
    r, c = np.asarray(row, dtype=float), np.asarray(col, dtype=float)
    return {"left": _letters(-r), "right": _letters(r), "top": _letters(-c), "bottom": _letters(c)}


@dataclass(frozen=True)
class Plane:
    """A grid of square pixels in patient space.

    Attributes
    ----------
    origin : (x, y, z)
        Centre of the top-left pixel (mm, LPS), as ImagePositionPatient.
    row, col : unit vectors
        Direction along a row (left to right) and down a column, as ImageOrientationPatient.
    spacing : float
        Pixel size in mm (square).
    rows, columns : int
    kind : str
        "axial", "coronal", "sagittal" or "oblique".
    """

    origin: Vec3
    row: Vec3
    col: Vec3
    spacing: float
    rows: int
    columns: int
    kind: str = "oblique"

    @property
    def normal(self) -> np.ndarray:
        """Unit normal (row x col)."""
        return np.cross(np.asarray(self.row), np.asarray(self.col))

    @property
    def center(self) -> np.ndarray:
        """Patient position of the image centre."""
        return self.point((self.rows - 1) / 2.0, (self.columns - 1) / 2.0)

    @property
    def position(self) -> float:
        """Distance of the plane along its normal (mm)."""
        return float(np.dot(np.asarray(self.origin), self.normal))

    def point(self, r: float, c: float) -> np.ndarray:
        """Patient position (mm) of the pixel at row ``r``, column ``c`` (fractions allowed)."""
        return (
            np.asarray(self.origin)
            + c * self.spacing * np.asarray(self.row)
            + r * self.spacing * np.asarray(self.col)
        )

    def pixel(self, p: npt.ArrayLike) -> tuple[float, float]:
        """(row, column) of the projection of patient point ``p`` on this plane."""
        d = np.asarray(p, dtype=float) - np.asarray(self.origin)
        return (
            float(np.dot(d, self.col) / self.spacing),
            float(np.dot(d, self.row) / self.spacing),
        )

    def distance(self, p: npt.ArrayLike) -> float:
        """Signed distance (mm) of patient point ``p`` from the plane."""
        return float(np.dot(np.asarray(p, dtype=float) - np.asarray(self.origin), self.normal))

    def letters(self) -> dict[str, str]:
        """Orientation letters at the image edges (see :func:`orientation_letters`)."""
        return orientation_letters(self.row, self.col)

    def moved(self, offset_mm: float) -> Plane:
        """The same plane shifted along its normal."""
        o = np.asarray(self.origin) + offset_mm * self.normal
        return replace(self, origin=_t3(o))

    def intersection(self, other: Plane) -> tuple[np.ndarray, np.ndarray] | None:
        """The line where ``other`` cuts this plane, in this plane's pixels.

        Returns
        -------
        ((r0, c0), (r1, c1)) or None
            Two points of the line (pixel coordinates) spanning the image, or None when the
            planes are parallel. Used for reference lines.
        """
        n1, n2 = self.normal, other.normal
        direction = np.cross(n1, n2)
        if float(np.linalg.norm(direction)) < 1e-6:
            return None
        # a point on both planes: solve n1.x = d1, n2.x = d2, direction.x = d1's origin projection
        a = np.stack([n1, n2, direction])
        b = np.array(
            [np.dot(n1, self.origin), np.dot(n2, other.origin), np.dot(direction, self.center)]
        )
        p = np.linalg.solve(a, b)
        r0, c0 = self.pixel(p)
        dr, dc = float(np.dot(direction, self.col)), float(np.dot(direction, self.row))
        length = max(self.rows, self.columns) * 2.0
        norm = math.hypot(dr, dc) or 1.0
        dr, dc = dr / norm * length, dc / norm * length
        return np.array([r0 - dr, c0 - dc]), np.array([r0 + dr, c0 + dc])

    def to_json(self) -> dict[str, object]:
        """Plain values (for the library and presentation states)."""
        return {
            "origin": list(self.origin),
            "row": list(self.row),
            "col": list(self.col),
            "spacing": self.spacing,
            "rows": self.rows,
            "columns": self.columns,
            "kind": self.kind,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Plane:
        """Inverse of :meth:`to_json`."""
        return Plane(
            origin=_t3(d["origin"]),
            row=_t3(d["row"]),
            col=_t3(d["col"]),
            spacing=float(d["spacing"]),
            rows=int(d["rows"]),
            columns=int(d["columns"]),
            kind=str(d.get("kind", "oblique")),
        )


_POOL = None


def _pool():  # type: ignore[no-untyped-def]
    """Two worker threads for plane bands (the workstation's 2 cores)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hilum-mpr")
    return _POOL


def _unit(v: npt.ArrayLike) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(a))
    if n < 1e-9:
        raise UsageError("A plane direction must not be zero.")
    return a / n


class Volume:
    """A stack decoded once, ready for reformats.

    Parameters
    ----------
    stack : Stack
        A greyscale stack of at least 2 slices with position and orientation.
    data : numpy.ndarray, optional
        Its (n, rows, cols) voxels when already decoded (else :meth:`Stack.volume` is called).
    progress : Progress, optional
        Passed to :meth:`Stack.volume`.

    Raises
    ------
    UsageError
        When the stack is not a volume (one slice, colour, no geometry).
    """

    def __init__(
        self, stack: Stack, data: np.ndarray | None = None, progress: Progress | None = None
    ) -> None:
        if stack.color:
            raise UsageError("Reformats need a greyscale series; this one is in colour.")
        if len(stack) < 2 or stack.positions is None or stack.orientation is None:
            raise UsageError(
                "Reformats need a series of at least 2 slices with positions and orientation."
            )
        nrm = _normal(stack.orientation)
        if nrm is None:
            raise UsageError("The series has an invalid image orientation.")
        self.stack = stack
        self.modality = stack.modality
        n, rows, cols = stack.shape
        self.shape = (n, rows, cols)
        self.row = _unit(stack.orientation[:3])
        self.col = _unit(stack.orientation[3:])
        self.n = nrm
        self.dy, self.dx = float(stack.spacing[1]), float(stack.spacing[2])
        pos = np.asarray(stack.positions, dtype=np.float64)
        self.positions = pos
        self.dists = pos @ self.n
        if np.any(np.diff(self.dists) <= 0):
            # duplicates: keep a strictly increasing sequence for the index interpolation
            self.dists = self.dists + np.arange(n) * 1e-6
        self.p0 = pos[0]
        self.d0 = float(self.dists[0])
        span = float(self.dists[-1] - self.dists[0])
        # stack direction per mm of normal distance: n for a straight stack, n + shear for tilt
        self.w = (pos[-1] - pos[0]) / span if span > 1e-6 else self.n.copy()
        steps = np.diff(self.dists)
        self.dz = float(np.median(steps))
        self.even = bool(np.all(np.abs(steps - span / (n - 1)) < 1e-3 * max(1.0, self.dz)))
        if self.even:
            self.dz = span / (n - 1)
        vol = data if data is not None else stack.volume(progress)
        if vol.shape != self.shape:
            raise UsageError("The voxel data does not match the series geometry.")
        self.fill = float(vol.min()) if vol.size else 0.0
        self.vmax = float(vol.max()) if vol.size else 0.0
        # tile the slices side by side, each framed by one pixel of the fill value, with a fill
        # tile before the first slice and after the last: samples outside the volume then read
        # the fill value without any masking (cv2.remap needs sides below 32767)
        self.pitch = (rows + 2, cols + 2)
        ntiles = n + 2
        self.tiles = min(ntiles, max(1, math.ceil(math.sqrt(ntiles * (rows + 2) / (cols + 2)))))
        self.tiles_y = math.ceil(ntiles / self.tiles)
        self.use_remap = (
            self.tiles * (cols + 2) < _SHRT_MAX and self.tiles_y * (rows + 2) < _SHRT_MAX
        )
        if self.use_remap:
            mosaic = np.full(
                (self.tiles_y, rows + 2, self.tiles, cols + 2), self.fill, dtype=np.float32
            )
            for k in range(n):
                ty, tx = divmod(k + 1, self.tiles)
                mosaic[ty, 1 : rows + 1, tx, 1 : cols + 1] = vol[k]
            self.mosaic = mosaic.reshape(self.tiles_y * (rows + 2), self.tiles * (cols + 2))
            t = np.arange(ntiles + 1)
            # pixel offset of voxel (0, 0) of slice k is at index k + 1 of these tables
            self._xoff = ((t % self.tiles) * (cols + 2) + 1).astype(np.float32)
            self._yoff = ((t // self.tiles) * (rows + 2) + 1).astype(np.float32)
            self._data: np.ndarray | None = None
        else:
            self.mosaic = None  # type: ignore[assignment]
            self._data = np.ascontiguousarray(vol, dtype=np.float32)

    # -- voxel access -------------------------------------------------------------------------
    def slice(self, k: int) -> np.ndarray:
        """Slice ``k`` of the stack (a view, no copy)."""
        if self._data is not None:
            return self._data[k]
        _, rows, cols = self.shape
        y, x = int(self._yoff[k + 1]), int(self._xoff[k + 1])
        return self.mosaic[y : y + rows, x : x + cols]

    def _blocks(self) -> np.ndarray:
        """The mosaic as a (tiles_y, rows + 2, tiles, cols + 2) view (tile t = slice t - 1)."""
        return self.mosaic.reshape(self.tiles_y, self.pitch[0], self.tiles, self.pitch[1])

    def voxel_to_patient(self, k: float, i: float, j: float) -> np.ndarray:
        """Patient position (mm) of voxel (slice k, row i, column j), from the slice positions."""
        kk = np.clip(k, 0, self.shape[0] - 1)
        k0 = int(min(math.floor(kk), self.shape[0] - 2))
        f = kk - k0
        origin = self.positions[k0] * (1 - f) + self.positions[k0 + 1] * f
        return origin + i * self.dy * self.col + j * self.dx * self.row

    # -- geometry -----------------------------------------------------------------------------
    def corners(self) -> np.ndarray:
        """The 8 corners of the voxel grid in patient space, (8, 3)."""
        n, rows, cols = self.shape
        return np.array(
            [
                self.voxel_to_patient(k, i, j)
                for k in (0, n - 1)
                for i in (0, rows - 1)
                for j in (0, cols - 1)
            ]
        )

    def center(self) -> np.ndarray:
        """Patient position of the centre of the volume."""
        return self.corners().mean(axis=0)

    @property
    def min_spacing(self) -> float:
        """Smallest in-plane voxel size (the reformat pixel size)."""
        return min(self.dx, self.dy)

    def _axis_step(self, direction: np.ndarray) -> float:
        """Distance along ``direction`` that moves about one voxel."""
        a = (
            float(np.dot(direction, self.row)) / self.dx,
            float(np.dot(direction, self.col)) / self.dy,
            float(np.dot(direction, self.n)) / self.dz,
        )
        norm = math.sqrt(sum(x * x for x in a))
        return 1.0 / norm if norm > 0 else self.min_spacing

    def plane(
        self,
        row: npt.ArrayLike,
        col: npt.ArrayLike,
        center: npt.ArrayLike | None = None,
        spacing: float | None = None,
        kind: str = "oblique",
    ) -> Plane:
        """A plane through ``center`` (default: volume centre) covering the whole volume.

        Parameters
        ----------
        row, col : 3 floats
            Row and column directions (LPS); ``col`` is made orthogonal to ``row``.
        center : 3 floats, optional
            A patient point the plane passes through.
        spacing : float, optional
            Pixel size in mm (default: the smallest in-plane voxel size).
        """
        r = _unit(row)
        c = np.asarray(col, dtype=np.float64)
        c = _unit(c - np.dot(c, r) * r)
        s = float(spacing or self.min_spacing)
        if not (s > 0 and math.isfinite(s)):
            raise UsageError("The pixel size must be a positive number.")
        ctr = np.asarray(center if center is not None else self.center(), dtype=np.float64)
        nrm = np.cross(r, c)
        corners = self.corners()
        u = (corners - ctr) @ r
        v = (corners - ctr) @ c
        cols = math.floor((u.max() - u.min()) / s + 1e-6) + 1
        rows = math.floor((v.max() - v.min()) / s + 1e-6) + 1
        if rows * cols > 64_000_000:
            raise UsageError("The reformat would be too large; choose a larger pixel size.")
        # keep the plane through ctr: origin = the projection of ctr plus the in-plane offsets
        origin = ctr + u.min() * r + v.min() * c
        origin = origin - np.dot(origin - ctr, nrm) * nrm
        return Plane(
            origin=_t3(origin),
            row=_t3(r),
            col=_t3(c),
            spacing=s,
            rows=rows,
            columns=cols,
            kind=kind,
        )

    def standard_plane(
        self,
        kind: str,
        position: float | None = None,
        index: int | None = None,
        spacing: float | None = None,
    ) -> Plane:
        """An axial, coronal or sagittal plane in patient space.

        Parameters
        ----------
        kind : {"axial", "coronal", "sagittal"}
        position : float, optional
            Patient coordinate along the plane's normal in mm: z for axial (head positive),
            y for coronal (posterior positive), x for sagittal (left positive).
        index : int, optional
            The ``index``-th plane of :meth:`positions` (instead of ``position``).
        Default: through the volume centre.
        """
        if kind not in _AXES:
            raise UsageError(f"The plane must be one of {', '.join(PLANES)}, not {kind!r}.")
        row, col = _AXES[kind]
        ctr = self.center()
        nrm = np.cross(row, col)
        if index is not None:
            pos = self.positions_along(kind)
            if not 0 <= index < len(pos):
                raise UsageError(
                    f"--index must be between 0 and {len(pos) - 1} for the {kind} plane."
                )
            position = float(pos[index])
        if position is not None:
            lo, hi = self.extent(kind)
            if not (lo - 1e-6 <= position <= hi + 1e-6):
                raise UsageError(
                    f"The {kind} position {position:g} mm lies outside the volume "
                    f"({lo:.1f} to {hi:.1f} mm)."
                )
            axis = int(np.argmax(np.abs(nrm)))
            ctr = ctr.copy()
            ctr[axis] = position * float(np.sign(nrm[axis]))
        return self.plane(row, col, center=ctr, spacing=spacing, kind=kind)

    def extent(self, kind: str) -> tuple[float, float]:
        """(lowest, highest) patient coordinate of the volume along a standard plane's normal."""
        row, col = _AXES[kind]
        axis = int(np.argmax(np.abs(np.cross(row, col))))
        vals = self.corners()[:, axis]
        return float(vals.min()), float(vals.max())

    def positions_along(self, kind: str) -> np.ndarray:
        """The positions (mm) of the planes a reader scrolls through, one voxel step apart."""
        row, col = _AXES[kind]
        lo, hi = self.extent(kind)
        step = self._axis_step(np.cross(row, col))
        count = math.floor((hi - lo) / step + 1e-6) + 1
        return lo + np.arange(count) * step

    # -- sampling -----------------------------------------------------------------------------
    def _affine(self, plane: Plane) -> dict[str, tuple[float, float, float]]:
        """Voxel coordinates as affine functions of the plane pixel (row r, column c).

        ``{"d" or "k", "i", "j"}: (offset, per row, per column)``; "k" (slice index) when the
        slices are evenly spaced, else "d" (distance along the slice normal, mm) to be mapped
        to a slice index over the measured slice positions.
        """
        o = np.asarray(plane.origin, dtype=np.float64)
        s = plane.spacing
        R = np.asarray(plane.row) * s
        C = np.asarray(plane.col) * s

        def form(v: np.ndarray, offset: float) -> tuple[float, float, float]:
            return (offset, float(np.dot(C, v)), float(np.dot(R, v)))

        # slice origin at normal distance d: p0 + (d - d0) w (w = n, or n + shear with tilt), so
        # q = p - p0 - ((p.n) - d0) w is the in-slice offset, linear in p
        on = float(np.dot(o, self.n))
        wc, wr = float(np.dot(self.w, self.col)), float(np.dot(self.w, self.row))
        out = {
            "i": form(
                (self.col - wc * self.n) / self.dy,
                float(np.dot(o - self.p0, self.col) - wc * (on - self.d0)) / self.dy,
            ),
            "j": form(
                (self.row - wr * self.n) / self.dx,
                float(np.dot(o - self.p0, self.row) - wr * (on - self.d0)) / self.dx,
            ),
        }
        if self.even:
            out["k"] = form(self.n / self.dz, (on - self.d0) / self.dz)
        else:
            out["d"] = form(self.n, on)
        return out

    @staticmethod
    def _grid(form: tuple[float, float, float], r0: int, r1: int, cols: int) -> np.ndarray:
        offset, per_row, per_col = form
        a = (np.arange(r0, r1, dtype=np.float64) * per_row + offset).astype(np.float32)
        b = (np.arange(cols, dtype=np.float64) * per_col).astype(np.float32)
        return np.add.outer(a, b)

    def _coords(
        self, plane: Plane, r0: int = 0, r1: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fractional voxel (k, i, j) of the plane pixels in rows r0..r1, each float32."""
        r1 = plane.rows if r1 is None else r1
        forms = self._affine(plane)
        i = self._grid(forms["i"], r0, r1, plane.columns)
        j = self._grid(forms["j"], r0, r1, plane.columns)
        if "k" in forms:
            k = self._grid(forms["k"], r0, r1, plane.columns)
        else:
            d = self._grid(forms["d"], r0, r1, plane.columns)
            k = np.interp(
                d, self.dists, np.arange(self.shape[0], dtype=np.float64), left=-1e6, right=1e6
            ).astype(np.float32)
        return k, i, j

    def sample(self, plane: Plane, fill: float | None = None) -> np.ndarray:
        """Trilinear resample of the volume on ``plane``.

        Parameters
        ----------
        plane : Plane
        fill : float, optional
            Value outside the volume (default: the volume minimum).

        Returns
        -------
        numpy.ndarray
            float32 (rows, columns) in modality units.
        """
        if not self.use_remap:
            k, i, j = self._coords(plane)
            return self._sample_kij(k, i, j, self.fill if fill is None else fill)
        out = np.empty((plane.rows, plane.columns), dtype=np.float32)
        forms = self._affine(plane)
        # bands of rows: temporaries stay in cache, and two bands run at once (numpy and
        # OpenCV release the GIL)
        band = max(16, (1 << 16) // max(1, plane.columns))
        jobs = [(r, min(plane.rows, r + band)) for r in range(0, plane.rows, band)]
        if len(jobs) > 1:
            list(_pool().map(lambda rr: self._band(forms, plane.columns, rr[0], rr[1], out), jobs))
        else:
            for r0, r1 in jobs:
                self._band(forms, plane.columns, r0, r1, out)
        if fill is not None and fill != self.fill:
            # padding reads the volume minimum: a different fill needs the outside pixels found
            k, i, j = self._coords(plane)
            n, rows, cols = self.shape
            outside = (
                (k < -1e-3)
                | (k > n - 1 + 1e-3)
                | (i < -0.5)
                | (i > rows - 0.5)
                | (j < -0.5)
                | (j > cols - 0.5)
            )
            out[outside] = fill
        return out

    def _band(
        self,
        forms: dict[str, tuple[float, float, float]],
        cols_out: int,
        r0: int,
        r1: int,
        out: np.ndarray,
    ) -> None:
        import cv2

        n, rows, cols = self.shape
        i = self._grid(forms["i"], r0, r1, cols_out)
        j = self._grid(forms["j"], r0, r1, cols_out)
        if "k" in forms:
            k = self._grid(forms["k"], r0, r1, cols_out)
        else:
            d = self._grid(forms["d"], r0, r1, cols_out)
            k = np.interp(
                d, self.dists, np.arange(n, dtype=np.float64), left=-1e6, right=1e6
            ).astype(np.float32)
        # outside the volume: onto the fill frame (one pixel / one tile beyond the edge)
        np.clip(i, -1, rows, out=i)
        np.clip(j, -1, cols, out=j)
        np.clip(k, -1, n, out=k)
        k0 = np.floor(k).astype(np.int32)
        np.minimum(k0, n - 1, out=k0)
        np.subtract(k, k0, out=k, casting="unsafe")
        k0 += 1  # table index of slice k0
        mx = self._xoff.take(k0)
        mx += j
        my = self._yoff.take(k0)
        my += i
        a = cv2.remap(
            self.mosaic,
            mx,
            my,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.fill,
        )
        k0 += 1
        np.take(self._xoff, k0, out=mx)
        mx += j
        np.take(self._yoff, k0, out=my)
        my += i
        b = cv2.remap(
            self.mosaic,
            mx,
            my,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.fill,
        )
        np.subtract(b, a, out=b)
        np.multiply(b, k, out=b)
        np.add(a, b, out=out[r0:r1])

    def _sample_kij(self, k: np.ndarray, i: np.ndarray, j: np.ndarray, fill: float) -> np.ndarray:
        n, rows, cols = self.shape
        eps = np.float32(1e-3)
        outside = (
            (k < -eps)
            | (k > n - 1 + eps)
            | (i < -0.5)
            | (i > rows - 0.5)
            | (j < -0.5)
            | (j > cols - 0.5)
        )
        np.clip(k, 0, n - 1, out=k)
        np.clip(i, 0, rows - 1, out=i)
        np.clip(j, 0, cols - 1, out=j)
        k0 = np.minimum(k.astype(np.int32), n - 2)
        f = k - k0
        return self._sample_numpy(k0, f, i, j, outside, fill)

    def _sample_numpy(
        self,
        k0: np.ndarray,
        f: np.ndarray,
        i: np.ndarray,
        j: np.ndarray,
        outside: np.ndarray,
        fill: float,
    ) -> np.ndarray:
        """Trilinear sample without OpenCV (volumes too large for a remap mosaic)."""
        _, rows, cols = self.shape
        data = self._data
        assert data is not None
        i0 = np.minimum(i.astype(np.int32), rows - 2)
        j0 = np.minimum(j.astype(np.int32), cols - 2)
        fi, fj = i - i0, j - j0
        out = np.zeros(k0.shape, dtype=np.float32)
        for dk, wk in ((0, 1 - f), (1, f)):
            for di, wi in ((0, 1 - fi), (1, fi)):
                for dj, wj in ((0, 1 - fj), (1, fj)):
                    out += data[k0 + dk, i0 + di, j0 + dj] * (wk * wi * wj)
        out[outside] = fill
        return out

    def slab(self, plane: Plane, thickness: float, projection: str = "mip") -> np.ndarray:
        """Thick-slab projection centred on ``plane``.

        Parameters
        ----------
        plane : Plane
        thickness : float
            Slab thickness in mm (0 or less: the plane itself).
        projection : {"mip", "minip", "avg"}
            Maximum, minimum or mean intensity along the plane normal.

        Returns
        -------
        numpy.ndarray
            float32 (rows, columns).
        """
        if projection not in PROJECTIONS:
            raise UsageError(
                f"The projection must be one of {', '.join(PROJECTIONS)}, not {projection!r}."
            )
        if not math.isfinite(thickness) or thickness > 10_000:
            raise UsageError("The slab thickness must be a number of millimetres.")
        if thickness <= 0:
            return self.sample(plane)
        fast = self._axis_slab(plane, thickness, projection)
        if fast is None:
            fast = self._in_slice_slab(plane, thickness, projection)
        if fast is not None:
            return fast
        nrm = plane.normal
        step = self._axis_step(nrm)
        m = max(2, math.ceil(thickness / step) + 1)
        offsets = np.linspace(-thickness / 2.0, thickness / 2.0, m)
        if projection == "avg":
            total = np.zeros((plane.rows, plane.columns), dtype=np.float32)
            count = np.zeros_like(total)
            for off in offsets:
                img = self.sample(plane.moved(float(off)), fill=np.nan)
                ok = np.isfinite(img)
                total[ok] += img[ok]
                count += ok
            out = np.full_like(total, self.fill)
            np.divide(total, count, out=out, where=count > 0)
            return out
        if projection == "mip":
            out = self.sample(plane.moved(float(offsets[0])))
            for off in offsets[1:]:
                np.maximum(out, self.sample(plane.moved(float(off))), out=out)
            return out
        big = float(np.finfo(np.float32).max)
        out = self.sample(plane.moved(float(offsets[0])), fill=big)
        for off in offsets[1:]:
            np.minimum(out, self.sample(plane.moved(float(off)), fill=big), out=out)
        out[out >= np.float32(big)] = self.fill
        return out

    def _in_slice_slab(self, plane: Plane, thickness: float, projection: str) -> np.ndarray | None:
        """Slab whose normal lies in the slice plane (an oblique made by rotating about the
        slice normal): within each slice the slab is a band; it is cut out of every slice with
        one affine warp, reduced across its width, and the (slice x position) result resampled
        once onto the plane."""
        nrm = plane.normal
        if abs(float(np.dot(nrm, self.n))) > 1e-6 or self._data is not None:
            return None
        n, _rows, _cols = self.shape
        line = np.cross(nrm, self.n)
        line /= float(np.linalg.norm(line))
        p0 = np.asarray(plane.origin, dtype=np.float64)
        # the plane pixels' position along the line (u, mm from p0) and their slice
        corners = np.array(
            [plane.point(r, c) for r in (0, plane.rows - 1) for c in (0, plane.columns - 1)]
        )
        u_all = (corners - p0) @ line
        s_u = plane.spacing
        u0 = float(u_all.min())
        width = math.floor((float(u_all.max()) - u0) / s_u + 1e-6) + 1
        s_v = min(self.dx, self.dy)
        depth = max(2, math.ceil(thickness / s_v) + 1)
        v0 = -thickness / 2.0
        s_v = thickness / (depth - 1)
        if width * depth > 16_000_000:
            return None
        fill = {"mip": self.fill, "minip": float(np.finfo(np.float32).max), "avg": np.nan}[
            projection
        ]
        q = np.empty((n, width), dtype=np.float32)
        # band pixel (x=m, y=t) is base + m s_u line + t s_v nrm, moved onto slice k along the
        # slice normal (which the row/column directions ignore); its pixel (j, i) in slice k is
        # affine in (m, t) with a translation that depends on the slice's position only
        base = p0 + u0 * line + v0 * nrm
        lin = np.array(
            [
                [
                    float(np.dot(line, self.row)) * s_u / self.dx,
                    float(np.dot(nrm, self.row)) * s_v / self.dx,
                ],
                [
                    float(np.dot(line, self.col)) * s_u / self.dy,
                    float(np.dot(nrm, self.col)) * s_v / self.dy,
                ],
            ]
        )
        tj = ((float(np.dot(base, self.row)) - self.positions @ self.row) / self.dx) + 1.0
        ti = ((float(np.dot(base, self.col)) - self.positions @ self.col) / self.dy) + 1.0

        def run(ks: range) -> None:
            band = np.empty((depth, width), dtype=np.float32)
            m = np.zeros((2, 3))
            m[:, :2] = lin
            for k in ks:
                m[0, 2], m[1, 2] = tj[k], ti[k]
                self._band_reduce(k, m, width, depth, fill, projection, band, q[k])

        half = n // 2
        list(_pool().map(run, [range(half), range(half, n)]))
        if projection == "minip":
            q[q >= np.float32(fill)] = self.fill
        elif projection == "avg":
            q[~np.isfinite(q)] = self.fill
        # onto the plane: slice index from the normal distance, column from u
        k, _, _ = self._coords(plane)
        rr = np.arange(plane.rows, dtype=np.float64)
        cc = np.arange(plane.columns, dtype=np.float64)
        R = np.asarray(plane.row) * plane.spacing
        C = np.asarray(plane.col) * plane.spacing
        a = (rr * float(np.dot(C, line)) - u0) / s_u
        b = cc * float(np.dot(R, line)) / s_u
        x = np.add.outer(a.astype(np.float32), b.astype(np.float32))
        return self._remap2d(q, k, x, n, width)

    def _band_reduce(
        self,
        k: int,
        m: np.ndarray,
        width: int,
        depth: int,
        fill: float,
        projection: str,
        band: np.ndarray,
        out: np.ndarray,
    ) -> None:
        """One slice of :meth:`_in_slice_slab`: warp the slab's band out of slice ``k`` (``m``:
        band pixel -> slice pixel, +1 for the fill frame) and reduce it into ``out``."""
        import cv2

        _, rows, cols = self.shape
        y, x = int(self._yoff[k + 1]), int(self._xoff[k + 1])
        cv2.warpAffine(
            self.mosaic[y - 1 : y + rows + 1, x - 1 : x + cols + 1],
            m,
            (width, depth),
            dst=band,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=fill,
        )
        if projection == "mip":
            band.max(axis=0, out=out)
        elif projection == "minip":
            band.min(axis=0, out=out)
        else:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[:] = np.nanmean(band, axis=0)

    def _axis_slab(self, plane: Plane, thickness: float, projection: str) -> np.ndarray | None:
        """Slab along the stack's row or column axis (or the slice axis of a straight stack):
        reduce the voxels along that axis, then resample the 2-D result once."""
        if not self.use_remap:
            return None
        nrm = plane.normal
        n, rows, cols = self.shape
        blocks = self._blocks()
        reducers: dict[str, Callable[..., Any]] = {"mip": np.max, "minip": np.min, "avg": np.mean}
        reduce = reducers[projection]
        k, i, j = self._coords(plane)
        if abs(abs(float(np.dot(nrm, self.col))) - 1.0) < 1e-6:
            ic = float(i.flat[0])  # constant over the plane
            lo, hi = self._range(ic, thickness / self.dy, rows)
            if lo is None:
                return np.full((plane.rows, plane.columns), self.fill, dtype=np.float32)
            img = reduce(blocks[:, 1 + lo : 1 + hi, :, 1 : cols + 1], axis=1).reshape(-1, cols)[
                1 : n + 1
            ]
            return self._remap2d(np.ascontiguousarray(img, dtype=np.float32), k, j, n, cols)
        if abs(abs(float(np.dot(nrm, self.row))) - 1.0) < 1e-6:
            jc = float(j.flat[0])
            lo, hi = self._range(jc, thickness / self.dx, cols)
            if lo is None:
                return np.full((plane.rows, plane.columns), self.fill, dtype=np.float32)
            img = (
                reduce(blocks[:, 1 : rows + 1, :, 1 + lo : 1 + hi], axis=3)
                .transpose(0, 2, 1)
                .reshape(-1, rows)[1 : n + 1]
            )
            return self._remap2d(np.ascontiguousarray(img, dtype=np.float32), k, i, n, rows)
        if (
            abs(abs(float(np.dot(nrm, self.n))) - 1.0) < 1e-6
            and float(np.linalg.norm(self.w - self.n)) < 1e-6
        ):
            dc = plane.position * float(np.dot(nrm, self.n))
            sel = np.nonzero(np.abs(self.dists - dc) <= thickness / 2.0 + 1e-6)[0]
            if sel.size == 0:
                return None
            acc = np.array(self.slice(int(sel[0])), dtype=np.float32)
            for kk in sel[1:]:
                sl = self.slice(int(kk))
                if projection == "mip":
                    np.maximum(acc, sl, out=acc)
                elif projection == "minip":
                    np.minimum(acc, sl, out=acc)
                else:
                    acc += sl
            if projection == "avg":
                acc /= np.float32(sel.size)
            import cv2

            outside = (i < -0.5) | (i > rows - 0.5) | (j < -0.5) | (j > cols - 0.5)
            mx = np.clip(j, 0, cols - 1)
            my = np.clip(i, 0, rows - 1)
            mx[outside] = -10.0
            return cv2.remap(
                acc, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=self.fill
            )
        return None

    @staticmethod
    def _range(center: float, half_width_vox: float, size: int) -> tuple[int | None, int]:
        lo = math.ceil(center - half_width_vox / 2.0 - 1e-6)
        hi = math.floor(center + half_width_vox / 2.0 + 1e-6) + 1
        lo, hi = max(lo, 0), min(hi, size)
        if hi <= lo:
            return None, 0
        return lo, hi

    def _remap2d(
        self, img: np.ndarray, k: np.ndarray, x: np.ndarray, n: int, size: int
    ) -> np.ndarray:
        import cv2

        outside = (k < -1e-3) | (k > n - 1 + 1e-3) | (x < -0.5) | (x > size - 0.5)
        mx = np.clip(x, 0, size - 1)
        my = np.clip(k, 0, n - 1)
        mx[outside] = -10.0
        return cv2.remap(
            img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=self.fill
        )

    def window(self) -> tuple[float, float]:
        """The first header window of the middle slice, else one computed from the data."""
        from app.dicom.pixels import auto_window, windows

        f = self.stack.frames[len(self.stack) // 2]
        if f.header is not None:
            found = windows(f.header, f.index)
            if found:
                return found[0][0], found[0][1]
        return auto_window(self.slice(self.shape[0] // 2))


def to_uint8(image: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear DICOM window of a reformat to 0..255 (same formula as the viewer)."""
    width = max(float(width), 1.0)
    lo = center - 0.5 - (width - 1) / 2.0
    scaled = (image - np.float32(lo)) * np.float32(255.0 / (width - 1 if width > 1 else 1))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def render_plane(
    volume: Volume,
    kind: str,
    position: float | None = None,
    index: int | None = None,
    slab: float = 0.0,
    projection: str = "mip",
    window: tuple[float, float] | None = None,
) -> tuple[np.ndarray, Plane]:
    """The displayed 8-bit reformat of ``volume`` (used by ``hilum render --plane``).

    Returns
    -------
    (numpy.ndarray, Plane)
        uint8 (rows, columns) and the plane it shows.
    """
    plane = volume.standard_plane(kind, position=position, index=index)
    img = volume.slab(plane, slab, projection) if slab > 0 else volume.sample(plane)
    center, width = window or volume.window()
    return to_uint8(img, center, width), plane
