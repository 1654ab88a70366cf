"""Typed, versioned user settings stored with ``QSettings`` (INI format).

The file is ``<config_dir>/hilum.ini`` (:func:`app.core.paths.config_dir`, so ``HILUM_HOME``
isolates tests). :class:`Settings` is a plain dataclass; :func:`load_settings` reads it (unknown or
ill-typed values fall back to their defaults, older versions are migrated) and
:func:`save_settings` writes it. Window geometry and dock state are bytes kept beside it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from app.core import paths

log = logging.getLogger(__name__)

#: bump when a field changes meaning; add the migration to :func:`_migrate`
SETTINGS_VERSION = 3

LAYOUTS = ("1x1", "1x2", "2x2")

#: UI languages offered in Settings ("" follows the system locale; English is the source language)
LANGUAGES = ("", "en_US", "zh_CN")


@dataclass
class Settings:
    """Everything the user can change in the Settings dialog (and a little state)."""

    version: int = SETTINGS_VERSION
    #: viewport layout: one of :data:`LAYOUTS`
    layout: str = "1x1"
    #: corner annotations (patient, study, slice, W/L, zoom) shown
    show_annotations: bool = True
    #: hide patient name and ID in the corner annotations (teaching, screenshots)
    hide_patient_identity: bool = False
    #: scroll the other viewports to the same slice position
    sync_scroll: bool = False
    #: allow plain http:// to a generation server outside this machine (shown with a red warning)
    allow_insecure_http: bool = False
    #: cine frames per second
    cine_fps: float = 10.0
    #: multiplier on the right-drag window/level speed
    wl_sensitivity: float = 1.0
    #: smooth (bilinear) interpolation when magnified; off shows the true pixels
    smooth_interpolation: bool = False
    #: decoded-frame cache per series, in MiB
    cache_mb: int = 2048
    #: series thumbnail edge in pixels
    thumbnail_size: int = 72
    #: opacity of AI overlays on the image (0..1)
    overlay_opacity: float = 0.45
    #: colour of measurement graphics (#rrggbb)
    measurement_color: str = "#ffd54a"
    #: most recently opened paths, newest first
    recent_paths: list[str] = field(default_factory=list)
    #: UI language, one of :data:`LANGUAGES` ("" = the system locale); applied at the next start
    language: str = ""
    #: saliency overlay: colour map (one of app.saliency.overlay's), opacity 0..1, "hide below" 0..0.95
    saliency_colormap: str = "inferno"
    saliency_opacity: float = 0.5
    saliency_threshold: float = 0.2
    #: window presets as "name|W|L|key" strings (key "" = no shortcut); empty = the built-in CT presets
    window_presets: list[str] = field(default_factory=list)

    def validated(self) -> "Settings":
        """Return a copy with every value clamped into its allowed range."""
        s = dataclasses.replace(self)
        if s.layout not in LAYOUTS:
            s.layout = "1x1"
        s.cine_fps = min(max(float(s.cine_fps), 1.0), 60.0)
        s.wl_sensitivity = min(max(float(s.wl_sensitivity), 0.1), 10.0)
        s.cache_mb = min(max(int(s.cache_mb), 128), 65536)
        s.thumbnail_size = min(max(int(s.thumbnail_size), 32), 256)
        s.overlay_opacity = min(max(float(s.overlay_opacity), 0.0), 1.0)
        s.recent_paths = [str(p) for p in s.recent_paths][:10]
        if s.language not in LANGUAGES:
            s.language = ""
        if s.saliency_colormap not in ("inferno", "jet", "viridis"):
            s.saliency_colormap = "inferno"
        s.saliency_opacity = min(max(float(s.saliency_opacity), 0.0), 1.0)
        s.saliency_threshold = min(max(float(s.saliency_threshold), 0.0), 0.95)
        s.window_presets = [str(p) for p in s.window_presets][:20]
        s.version = SETTINGS_VERSION
        return s


def settings_path() -> Path:
    """The INI file the settings live in."""
    return paths.config_dir() / "hilum.ini"


def qsettings() -> QSettings:
    """A ``QSettings`` on the INI file (used for geometry and dock state too)."""
    return QSettings(str(settings_path()), QSettings.Format.IniFormat)


def _coerce(value: Any, default: Any) -> Any:
    """Convert an INI string back to the type of ``default``; raise ValueError when impossible."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError(value)
    if isinstance(default, int):
        return int(float(value))
    if isinstance(default, float):
        return float(value)
    if isinstance(default, list):
        if value in (None, ""):
            return []
        return [str(v) for v in (value if isinstance(value, list) else [value])]
    return str(value)


def _migrate(version: int, raw: dict[str, Any]) -> dict[str, Any]:
    """Bring values stored by an older version up to date."""
    if version < 2 and "smooth" in raw:  # v1 called it "smooth"
        raw["smooth_interpolation"] = raw.pop("smooth")
    if version < 3:  # v3 added "language"; older files follow the system locale
        raw.setdefault("language", "")
    return raw


def load_settings(store: QSettings | None = None) -> Settings:
    """Read the settings (defaults for anything missing or unreadable)."""
    store = store or qsettings()
    store.beginGroup("settings")
    raw = {k: store.value(k) for k in store.childKeys()}
    store.endGroup()
    try:
        version = int(raw.get("version", SETTINGS_VERSION))
    except (TypeError, ValueError):
        version = SETTINGS_VERSION
    raw = _migrate(version, raw)
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name == "version" or f.name not in raw:
            continue
        try:
            values[f.name] = _coerce(raw[f.name], getattr(defaults, f.name))
        except (TypeError, ValueError):
            log.warning("setting %s has an unreadable value; using the default", f.name)
    return Settings(**values).validated()


def save_settings(settings: Settings, store: QSettings | None = None) -> None:
    """Write the settings."""
    store = store or qsettings()
    s = settings.validated()
    store.beginGroup("settings")
    for f in dataclasses.fields(Settings):
        store.setValue(f.name, getattr(s, f.name))
    store.endGroup()
    store.sync()
    paths.private_file(settings_path())  # recent paths name patients' files: 0600


def save_window_state(
    geometry: QByteArray, state: QByteArray, store: QSettings | None = None
) -> None:
    """Store the main window geometry and dock/toolbar state."""
    store = store or qsettings()
    store.setValue("window/geometry", geometry)
    store.setValue("window/state", state)
    store.sync()
    paths.private_file(settings_path())  # recent paths name patients' files: 0600


def load_window_state(
    store: QSettings | None = None,
) -> tuple[QByteArray | None, QByteArray | None]:
    """The stored geometry and state (None when never saved)."""
    store = store or qsettings()
    geom = store.value("window/geometry")
    state = store.value("window/state")
    return (
        geom if isinstance(geom, QByteArray) else None,
        state if isinstance(state, QByteArray) else None,
    )
