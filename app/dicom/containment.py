"""Containment and limits for what a scan unpacks: zip archives and DICOMDIR references.

The scanner (:mod:`app.dicom.library`) calls these functions; they hold no scan state, so the
scan loop can change without touching the rules:

* :func:`check_archive` refuses an archive before anything is written when its declared sizes
  exceed :class:`ArchiveLimits` (total uncompressed bytes, compression ratio, member count);
* :func:`extract_member` streams one member to a private file and stops as soon as the bytes
  actually produced exceed what was declared or allowed (a lying header cannot fill the disk);
* :func:`member_parts` / :func:`dicomdir_ref_parts` refuse absolute paths and ``..`` components,
  and :func:`is_inside` checks that a resolved path (symlinks followed) stays in its folder;
* :func:`evict_archive_cache` keeps the extraction cache within a byte budget.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable

from app.core import paths
from app.core.errors import DicomError


class ContainmentError(DicomError):
    """An archive or a DICOMDIR reference breaks a safety limit or points outside its folder."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits on what one zip archive (nested archives included) may expand to.

    Attributes
    ----------
    max_total_bytes : int
        Uncompressed bytes of all members together (default 8 GiB).
    max_ratio : float
        Uncompressed / compressed size, of the whole archive and of each member (default 200:
        DICOM rarely compresses better than 20:1; a zip bomb reaches 1000:1 and more).
    max_members : int
        Files in the archive (default 100 000).
    min_ratio_bytes : int
        Members smaller than this are not held to the ratio (tiny text files compress well).
    """

    max_total_bytes: int = 8 << 30
    max_ratio: float = 200.0
    max_members: int = 100_000
    min_ratio_bytes: int = 1 << 20


def _fmt(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_archive(
    members: Iterable[zipfile.ZipInfo], archive_bytes: int, limits: ArchiveLimits = ArchiveLimits()
) -> None:
    """Refuse an archive from its central directory, before anything is extracted.

    Raises
    ------
    ContainmentError
        Too many members, too many uncompressed bytes, or a compression ratio typical of a zip
        bomb; the message names the limit.
    """
    members = list(members)
    if len(members) > limits.max_members:
        raise ContainmentError(
            f"The zip archive holds {len(members):,} files, more than the "
            f"limit of {limits.max_members:,}; nothing was extracted."
        )
    total = sum(max(0, m.file_size) for m in members)
    if total > limits.max_total_bytes:
        raise ContainmentError(
            f"The zip archive would expand to {_fmt(total)}, more than the "
            f"limit of {_fmt(limits.max_total_bytes)}; nothing was extracted."
        )
    if total >= limits.min_ratio_bytes and total > limits.max_ratio * max(1, archive_bytes):
        raise ContainmentError(
            f"The zip archive would expand from {_fmt(archive_bytes)} to {_fmt(total)} (ratio "
            f"{total / max(1, archive_bytes):,.0f}:1, limit {limits.max_ratio:,.0f}:1): it looks "
            "like a zip bomb; nothing was extracted."
        )
    for m in members:
        if m.file_size >= limits.min_ratio_bytes and m.file_size > limits.max_ratio * max(
            1, m.compress_size
        ):
            raise ContainmentError(
                f"A member of the zip archive would expand {m.file_size / max(1, m.compress_size):,.0f}"
                f"-fold (limit {limits.max_ratio:,.0f}:1): it looks like a zip bomb; nothing was "
                "extracted."
            )


def member_parts(name: str) -> list[str]:
    """The path components of a zip member, refusing absolute paths and ``..``.

    Raises
    ------
    ContainmentError
        For ``/etc/x``, ``C:\\x``, ``../x`` or ``a/../../x``.
    """
    text = name.replace("\\", "/")
    if text.startswith("/") or PureWindowsPath(name).drive or ":" in text.split("/")[0]:
        raise ContainmentError("The archive member has an absolute path; it was not extracted.")
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if ".." in parts:
        raise ContainmentError(
            "The archive member's path leads outside the archive (..); it was not extracted."
        )
    return parts


def dicomdir_ref_parts(ref: Any) -> list[str]:
    """The components of a DICOMDIR Referenced File ID, refusing absolute paths and ``..``.

    Parameters
    ----------
    ref : str or sequence of str
        The value of (0004,1500).

    Raises
    ------
    ContainmentError
        When a component is absolute (``/``, ``\\``, a drive letter) or is ``..`` (PS3.10 allows
        only relative IDs made of upper-case letters, digits and ``_``).
    """
    raw = [str(ref)] if isinstance(ref, str) else [str(p) for p in ref]
    parts: list[str] = []
    for i, comp in enumerate(raw):
        comp = comp.strip()
        if not comp:
            continue
        if (
            i == 0 and (comp.startswith(("/", "\\")) or PureWindowsPath(comp).drive)
        ) or ":" in comp:
            raise ContainmentError(
                "The DICOMDIR refers to a file by an absolute path; the entry was refused."
            )
        sub = [p for p in comp.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in sub or comp.startswith(("/", "\\")):
            raise ContainmentError(
                "The DICOMDIR refers to a file outside its folder (..); the entry was refused."
            )
        parts += sub
    return parts


def is_inside(base: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """True when ``path`` (symlinks resolved) lies inside the folder ``base``."""
    b = os.path.realpath(base)
    p = os.path.realpath(path)
    return p == b or p.startswith(b.rstrip(os.sep) + os.sep)


class ExtractionBudget:
    """Bytes an archive extraction may still write (shared by nested archives)."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.left = limits.max_total_bytes
        self.members = 0

    def take_member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ContainmentError(
                f"The zip archive holds more than {self.limits.max_members:,} "
                "files (nested archives included); extraction stopped."
            )


def extract_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: ExtractionBudget
) -> None:
    """Stream one member to ``dest`` (0600) within the declared size and the budget.

    Raises
    ------
    ContainmentError
        When the member produces more bytes than its header declared or than the budget allows
        (the partial file is removed).
    """
    tmp = dest.with_name(dest.name + ".part")
    paths.private_dir(dest.parent)
    written = 0
    try:
        with zf.open(info) as src, paths.open_private(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > info.file_size or written > budget.left:
                    raise ContainmentError(
                        "An archive member expands beyond its declared size or the archive's "
                        "limit; extraction stopped."
                    )
                out.write(chunk)
        budget.left -= written
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_tree(path: Path) -> None:
    """Remove an extraction folder (nothing of a refused archive stays behind)."""
    shutil.rmtree(path, ignore_errors=True)


def evict_archive_cache(root: Path, max_bytes: int, keep: Iterable[Path] = ()) -> list[Path]:
    """Keep the zip extraction cache within ``max_bytes``: leftover partial files go, then the
    least recently used archive folders (not those in ``keep``) until the cache fits.

    Returns
    -------
    list of Path
        The archive folders removed (the library forgets their instances).
    """
    if not root.is_dir():
        return []
    keep_set = {os.path.realpath(k) for k in keep}
    folders = []
    total = 0
    for entry in root.iterdir():
        if not entry.is_dir():
            continue
        size = 0
        for dirpath, _dirs, files in os.walk(entry):
            for name in files:
                full = os.path.join(dirpath, name)
                if name.endswith(".part"):
                    try:
                        os.unlink(full)
                    except OSError:
                        pass
                    continue
                try:
                    size += os.path.getsize(full)
                except OSError:
                    pass
        total += size
        folders.append((entry.stat().st_mtime, entry, size))
    removed: list[Path] = []
    for _mtime, entry, size in sorted(folders):
        if total <= max_bytes:
            break
        if os.path.realpath(entry) in keep_set:
            continue
        remove_tree(entry)
        removed.append(entry)
        total -= size
    return removed
