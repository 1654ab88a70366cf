"""The GUI's view of one displayable stack of frames (plain Python, no Qt).

A :class:`SeriesData` holds what the viewport needs to show and annotate a series: frame
references in display order, geometry (pixel spacing, orientation, positions), header windows,
photometric interpretation and the few identifying fields shown in the corner annotations. Pixels
are decoded on a worker thread through :attr:`SeriesData.decode` (built by
:mod:`app.gui.loader` on top of :mod:`app.dicom`) and kept in a byte-bounded
:class:`~app.dicom.frame_cache.FrameCache`; the GUI thread only reads decoded arrays from that cache.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from app.dicom.frame_cache import FrameCache

_counter = itertools.count(1)


@dataclass
class FrameRef:
    """One frame of a series: the file, the frame index in it and its geometry."""

    path: str = ""
    frame: int = 0
    sop_uid: str = ""
    instance_number: int | None = None
    position: tuple[float, float, float] | None = None  # ImagePositionPatient (mm)
    slice_location: float | None = None


def frame_cache(max_bytes: int = 2 << 30) -> FrameCache:
    """A series' frame cache: the one :class:`app.dicom.frame_cache.FrameCache`, evicting the
    frames farthest from the slice on screen (the neighbours scrolled to next stay decoded)."""
    return FrameCache(max_bytes, eviction="distance")


def _no_decoder(index: int) -> np.ndarray:
    raise RuntimeError("this series has no decoder")


@dataclass(eq=False)
class SeriesData:
    """A displayable stack: frames in order plus what the viewport shows about them."""

    frames: list[FrameRef]
    study_uid: str = ""
    series_uid: str = ""
    #: FrameOfReferenceUID: positions of two series are comparable only when it is the same
    frame_of_reference_uid: str = ""
    modality: str = ""
    description: str = ""
    series_number: int | None = None
    rows: int = 0
    columns: int = 0
    #: (row spacing, column spacing) in mm, or None when the image is not calibrated
    pixel_spacing: tuple[float, float] | None = None
    #: where the spacing comes from ("PixelSpacing", "ImagerPixelSpacing"): shown with lengths
    spacing_source: str = ""
    #: ImageOrientationPatient (row direction cosines, column direction cosines)
    orientation: tuple[float, ...] | None = None
    slice_thickness: float | None = None
    #: header windows (center, width, explanation)
    windows: list[tuple[float, float, str]] = field(default_factory=list)
    monochrome1: bool = False
    is_color: bool = False
    #: "HU" for CT, otherwise "" (the values are modality units)
    units: str = ""
    #: patient_name, patient_id, patient_age, patient_sex, study_date, study_description,
    #: institution: shown in the corner annotations only
    meta: dict[str, str] = field(default_factory=dict)
    #: geometry and loading warnings (gantry tilt, uneven spacing, missing slices ...)
    warnings: list[str] = field(default_factory=list)
    #: decodes frame ``i`` (called on a worker thread only); float32 modality values or RGB uint8
    decode: Callable[[int], np.ndarray] = _no_decoder
    #: reads the full header of frame ``i``'s file (worker thread only; tag browser)
    read_header: Callable[[int], Any] | None = None
    cache: FrameCache = field(default_factory=frame_cache)
    #: which stack of the series this is (a series may split into several stacks)
    stack_index: int = 0
    key: str = ""
    #: a preview holds only the first decoded image until the full series is indexed
    preview: bool = False
    #: small uint8 picture for the series browser (None until made)
    thumbnail: np.ndarray | None = None
    #: frames whose cached array is a reduced-resolution preview (replaced by a full decode)
    low_res: set[int] = field(default_factory=set)
    #: the reduced-resolution decode behind a ``low_res`` frame: the viewer paints it scaled up
    #: by the image item's transform (a quarter of the pixels to window and paint per repaint)
    reduced: dict[int, np.ndarray] = field(default_factory=dict)
    #: problems found while building it (``{"path", "error"}``, for the import log)
    problems: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.key:
            self.key = f"{self.series_uid or 'series'}#{self.stack_index}#{next(_counter)}"

    @property
    def count(self) -> int:
        """Number of frames."""
        return len(self.frames)

    @property
    def normal(self) -> np.ndarray | None:
        """Unit slice normal from the orientation (row x column cosines), or None."""
        if not self.orientation or len(self.orientation) != 6:
            return None
        cached = self.__dict__.get("_normal")
        if cached is not None and cached[0] == self.orientation:
            return cached[1]
        n = np.cross(
            np.asarray(self.orientation[:3], float), np.asarray(self.orientation[3:], float)
        )
        norm = float(np.linalg.norm(n))
        out = n / norm if norm > 1e-6 else None
        self.__dict__["_normal"] = (self.orientation, out)
        return out

    def slice_position(self, index: int) -> float | None:
        """Position of frame ``index`` along the slice normal in mm (None when unknown)."""
        n = self.normal
        if n is None or not (0 <= index < self.count):
            return None
        pos = self.frames[index].position
        return float(np.dot(n, np.asarray(pos, float))) if pos is not None else None

    def nearest_index(self, position: float) -> int | None:
        """Index of the frame nearest to a slice position (None without geometry)."""
        values = [self.slice_position(i) for i in range(self.count)]
        if any(v is None for v in values) or not values:
            return None
        arr = np.asarray(values, float)
        return int(np.argmin(np.abs(arr - position)))

    def index_of_sop(self, sop_uid: str, frame: int = 0) -> int | None:
        """Index of an instance's frame, or None."""
        for i, ref in enumerate(self.frames):
            if ref.sop_uid == sop_uid and ref.frame == frame:
                return i
        return None

    @classmethod
    def from_array(cls, volume: np.ndarray, **kwargs: Any) -> "SeriesData":
        """A series held in memory (tests, benchmarks, derived images).

        Parameters
        ----------
        volume : numpy.ndarray
            (n, rows, cols) values, (rows, cols) for one frame, or (n, rows, cols, 3) uint8 colour.
        **kwargs
            Any :class:`SeriesData` field.
        """
        vol = np.asarray(volume)
        if vol.ndim == 2 or (
            vol.ndim == 3
            and vol.shape[-1] == 3
            and vol.dtype == np.uint8
            and kwargs.get("is_color")
        ):
            vol = vol[None]
        frames = [FrameRef(frame=i, instance_number=i + 1) for i in range(vol.shape[0])]
        if "positions" in kwargs:
            for ref, pos in zip(frames, kwargs.pop("positions")):
                ref.position = tuple(float(v) for v in pos)  # type: ignore[assignment]
        data = cls(frames=frames, rows=int(vol.shape[1]), columns=int(vol.shape[2]), **kwargs)
        data.cache = frame_cache(max(vol.nbytes * 2, 1 << 20))
        prepared = (
            vol if vol.dtype == np.uint8 and data.is_color else vol.astype(np.float32, copy=False)
        )
        for i in range(vol.shape[0]):
            data.cache.put(i, prepared[i])
        data.decode = lambda i: prepared[i]
        return data
