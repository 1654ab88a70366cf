"""The one cache of decoded frames: byte-bounded, thread-safe, with a pluggable eviction policy.

Two policies cover Hilum's two uses:

:class:`LeastRecentlyUsed` (``"lru"``)
    for frames looked up by ``(path, frame)`` keys (rendering, exports, headless commands): the
    frame used longest ago goes first, and an array larger than the whole budget is not kept.
:class:`FarthestFromFocus` (``"distance"``)
    for a viewer scrolling a stack (integer keys = slice indices): the frame farthest from the
    slice on screen goes first, so the neighbours the user scrolls to next stay decoded; the
    shown frame is kept even when it alone exceeds the budget (else it would be decoded again
    and again).

Only numpy and the standard library are imported here: the GUI's series model uses it at
start-up, before pydicom is loaded.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["FrameCache", "Eviction", "LeastRecentlyUsed", "FarthestFromFocus"]


class Eviction(Protocol):
    """Which held key a :class:`FrameCache` over its budget drops next."""

    #: whether an array larger than the whole budget is kept (alone) rather than refused
    keeps_oversized: bool

    def victim(self, keys: Iterable[Hashable], focus: Any) -> Hashable:
        """The key to drop, from ``keys`` (oldest use first), given the caller's ``focus``."""
        ...


class LeastRecentlyUsed:
    """Drop the frame used longest ago (``get`` marks a frame used)."""

    keeps_oversized = False

    def victim(self, keys: Iterable[Hashable], focus: Any) -> Hashable:
        """The first key: keys are held in order of last use."""
        return next(iter(keys))


class FarthestFromFocus:
    """Drop the slice farthest from the focus (the slice on screen); keys are slice indices."""

    keeps_oversized = True

    def victim(self, keys: Iterable[Hashable], focus: Any) -> Hashable:
        """The index with the largest ``abs(index - focus)``."""
        return max(keys, key=lambda k: abs(k - focus))  # type: ignore[operator]


_POLICIES: dict[str, Callable[[], Eviction]] = {
    "lru": LeastRecentlyUsed,
    "distance": FarthestFromFocus,
}


class FrameCache:
    """Decoded frames kept in memory within a byte budget.

    Thread-safe: worker threads decode into it while the GUI thread reads.

    Parameters
    ----------
    max_bytes : int
        Budget for the arrays held (default 512 MiB).
    eviction : {"lru", "distance"} or Eviction
        Which frame goes first when over budget (see the module notes); default ``"lru"``.
    """

    def __init__(
        self,
        max_bytes: int = 512 * 1024 * 1024,
        eviction: Literal["lru", "distance"] | Eviction = "lru",
    ) -> None:
        self.max_bytes = int(max_bytes)
        self.eviction: Eviction = _POLICIES[eviction]() if isinstance(eviction, str) else eviction
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._datasets: OrderedDict[str, Dataset] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable) -> np.ndarray | None:
        """The cached array for ``key`` (marking it recently used), or None."""
        with self._lock:
            arr = self._items.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return arr

    def put(self, key: Hashable, arr: np.ndarray, focus: Any = None) -> bool:
        """Store (or replace) an array, then drop what the eviction policy picks until in budget.

        Parameters
        ----------
        focus : optional
            What the policy measures from (the slice on screen for ``"distance"``; default
            ``key``).

        Returns
        -------
        bool
            False when the array was not kept (over the whole budget, or itself the victim).
        """
        size = int(arr.nbytes)
        focus = key if focus is None else focus
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= int(old.nbytes)
            if size > self.max_bytes and not self.eviction.keeps_oversized:
                return False
            self._items[key] = arr
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                victim = self.eviction.victim(self._items.keys(), focus)
                self._bytes -= int(self._items.pop(victim).nbytes)
                if victim == key:
                    return False
            return True

    def replace(self, key: Hashable, arr: np.ndarray) -> None:
        """Store ``arr`` in place of the array held (a full-resolution decode of a preview)."""
        self.put(key, arr, focus=key)

    def full(self) -> bool:
        """True when the cache holds its budget."""
        with self._lock:
            return self._bytes >= self.max_bytes

    def indices(self) -> list[Any]:
        """Keys currently held (oldest use first)."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self._datasets.clear()
            self._bytes = 0

    def get_or_load(self, key: Hashable, loader: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the cached array or compute it with ``loader()`` and cache it."""
        arr = self.get(key)
        if arr is None:
            arr = loader()
            self.put(key, arr)
        return arr

    def dataset(self, path: str | os.PathLike[str]) -> Dataset:
        """The dataset of ``path`` (a few recent ones are kept; their pixels stay on disk)."""
        from app.dicom.pixels import read_dataset

        key = os.fspath(path)
        with self._lock:
            ds = self._datasets.get(key)
            if ds is not None:
                self._datasets.move_to_end(key)
                return ds
        ds = read_dataset(key)
        with self._lock:
            self._datasets[key] = ds
            while len(self._datasets) > 64:
                self._datasets.popitem(last=False)
        return ds

    def frame(self, path: str | os.PathLike[str], frame: int = 0) -> np.ndarray:
        """:func:`app.dicom.pixels.frame_array` of ``path``/``frame``, cached."""
        from app.dicom.pixels import frame_array

        key = (os.fspath(path), int(frame))
        return self.get_or_load(key, lambda: frame_array(self.dataset(path), frame))
