"""Every user path Hilum writes to, in one place.

``HILUM_HOME`` overrides all of them (tests point it at a temporary folder); otherwise the
platform's user folders from platformdirs are used.

Patient data is private to the user, whatever the umask: every folder Hilum creates for it is
0700 and every file 0600 on POSIX (:func:`private_dir`, :func:`write_private`, :func:`secure_tree`;
the one helper every writer calls).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Hilum"

#: The repository / install root (holds ``models/`` and ``resources/``). In a frozen PyInstaller
#: bundle the data lies beside the executable in ``sys._MEIPASS``.
import sys as _sys  # noqa: E402 - kept beside the root it decides

if getattr(_sys, "frozen", False):  # pragma: no cover - only inside the bundle
    ROOT = Path(getattr(_sys, "_MEIPASS", Path(_sys.executable).parent))
else:
    ROOT = Path(__file__).resolve().parents[2]


DIR_MODE = 0o700
FILE_MODE = 0o600


def _posix() -> bool:
    return os.name == "posix"


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) as private folders (0700, umask-independent).

    A folder that already exists is left as it is unless Hilum owns it by construction (its own
    user folders, made private here too); the folders created by this call are always 0700.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if _posix():
        for q in missing:  # mkdir's mode is masked by the umask: set it explicitly
            try:
                os.chmod(q, DIR_MODE)
            except OSError:
                pass
    return path


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make an existing file private (0600)."""
    path = Path(path)
    if _posix():
        try:
            os.chmod(path, FILE_MODE)
        except OSError:
            pass
    return path


def open_private(path: str | os.PathLike[str], mode: str = "wb"):  # type: ignore[no-untyped-def]
    """Open a file for writing, created 0600 (never world- or group-readable, even briefly)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(os.fspath(path), flags | getattr(os, "O_BINARY", 0), FILE_MODE)
    if _posix():
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its old mode otherwise
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding="utf-8")


def write_private(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write a whole file as 0600 (text as UTF-8)."""
    path = Path(path)
    with open_private(path, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def secure_tree(root: str | os.PathLike[str]) -> None:
    """Make a folder Hilum wrote private: the folder and its sub-folders 0700, files 0600."""
    root = Path(root)
    if not _posix() or not root.exists():
        return
    if root.is_file():
        private_file(root)
        return
    for dirpath, dirnames, filenames in os.walk(root):
        try:
            os.chmod(dirpath, DIR_MODE)
        except OSError:
            pass
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                private_file(full)


def _home() -> Path | None:
    value = os.environ.get("HILUM_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Folder for the study library, stored results and drafts."""
    home = _home()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return _own_private(path)


def cache_dir() -> Path:
    """Folder for thumbnails and other derived, disposable files."""
    home = _home()
    path = home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    return _own_private(path)


def config_dir() -> Path:
    """Folder for settings files (the GUI's QSettings store lives here)."""
    home = _home()
    path = (
        home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    )
    return _own_private(path)


def _own_private(path: Path) -> Path:
    """Hilum's own user folder: created private, and made private again if it is not."""
    private_dir(path)
    if _posix():
        try:
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, DIR_MODE)
        except OSError:
            pass
    return path


def library_path() -> Path:
    """The SQLite study library."""
    return data_dir() / "library.sqlite"


def bundled_models_dir() -> Path:
    """Models shipped with Hilum."""
    return ROOT / "models"


def site_models_dir() -> Path:
    """Models a site admin installed (``$HILUM_HOME/models`` or the user data folder)."""
    home = _home()
    return home / "models" if home else data_dir() / "models"


def resources_dir() -> Path:
    """Icons, styles, templates, fonts, translations and the bundled sample."""
    return ROOT / "resources"


def sample_path() -> Path:
    """The bundled sample chest film."""
    return resources_dir() / "samples" / "cxr_jpegls.dcm"


def shared_data_dir() -> Path:
    """The shared real data (``HILUM_SHARED_DATA`` or ``../shared/data`` beside the repo)."""
    value = os.environ.get("HILUM_SHARED_DATA")
    return Path(value) if value else ROOT.parent / "shared" / "data"
