"""Where the UI translations live (headless: no Qt here; the GUI installs the file with a
``QTranslator``).

Hilum ships Simplified Chinese (``zh_CN``); English is the source language and needs no file.
"""

from __future__ import annotations

import locale as _locale
import logging
from pathlib import Path

from app.core.paths import resources_dir

log = logging.getLogger(__name__)

#: locales with a shipped translation (the UI's source language is English)
AVAILABLE = ("zh_CN",)


def translations_dir() -> Path:
    """``resources/translations``."""
    return resources_dir() / "translations"


def normalise(locale: str) -> str | None:
    """Map a locale name to a shipped translation code, or None when there is none.

    ``zh_CN``, ``zh-CN``, ``zh_Hans_CN``, ``zh-Hans``, ``zh_SG`` and ``zh_CN.UTF-8`` give
    ``zh_CN``; Traditional Chinese (``zh_TW``, ``zh_HK``, ``zh_Hant``), English and anything else
    give None.
    """
    text = (locale or "").split(".")[0].split("@")[0].replace("-", "_")
    parts = [p for p in text.split("_") if p]
    if not parts:
        return None
    lang = parts[0].lower()
    rest = {p.upper() if len(p) == 2 else p.title() for p in parts[1:]}
    if lang == "zh" and not rest & {"TW", "HK", "MO", "Hant"}:
        return "zh_CN"
    return None


def translation_file(locale: str | None = None) -> Path | None:
    """The compiled Qt translation (``.qm``) for ``locale``, or None (use the English source).

    Parameters
    ----------
    locale : str, optional
        A locale name such as ``QLocale.system().name()`` or the language chosen in Settings;
        the process locale when not given.

    Returns
    -------
    pathlib.Path or None
        ``resources/translations/hilum_<code>.qm`` when shipped and present.
    """
    if locale is None:
        locale = _locale.getlocale()[0] or ""
    code = normalise(locale)
    if code is None:
        return None
    path = translations_dir() / f"hilum_{code}.qm"
    if not path.is_file():
        log.warning("translation %s is missing from this install", path.name)
        return None
    return path
