"""Every user path Hilum writes to, in one place.

``HILUM_HOME`` overrides all of them (tests point it at a temporary folder); otherwise the
platform's user folders from platformdirs are used.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Hilum"

#: The repository / install root (holds ``models/`` and ``resources/``). In a frozen PyInstaller
#: bundle the data lies beside the executable in ``sys._MEIPASS``.
import sys as _sys

if getattr(_sys, "frozen", False):  # pragma: no cover - only inside the bundle
    ROOT = Path(getattr(_sys, "_MEIPASS", Path(_sys.executable).parent))
else:
    ROOT = Path(__file__).resolve().parents[2]


def _home() -> Path | None:
    value = os.environ.get("HILUM_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Folder for the study library, stored results and drafts."""
    home = _home()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Folder for thumbnails and other derived, disposable files."""
    home = _home()
    path = home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Folder for settings files (the GUI's QSettings store lives here)."""
    home = _home()
    path = home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
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
