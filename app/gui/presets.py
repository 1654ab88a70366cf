"""Window/level presets per modality (documented values, centre/width in modality units).

CT presets are in Hounsfield units and sit on the number keys 1-8 in this order; other modalities
use the windows stored in the image header (1..n) and an automatic window from the pixel data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowPreset:
    """One named window: ``center`` and ``width`` in modality units (HU for CT)."""

    name: str
    center: float
    width: float
    #: the number key that applies it ("" = its position in the list)
    key: str = ""


#: CT presets, number keys 1..8 (values as commonly used in neuro/body CT reading)
CT_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("Brain", 40, 80, "1"),
    WindowPreset("Subdural", 75, 215, "2"),
    WindowPreset("Stroke", 32, 8, "3"),
    WindowPreset("Lung", -600, 1500, "4"),
    WindowPreset("Mediastinum", 50, 350, "5"),
    WindowPreset("Abdomen", 40, 400, "6"),
    WindowPreset("Liver", 60, 160, "7"),
    WindowPreset("Bone", 400, 1800, "8"),
)

#: number keys a preset can sit on
PRESET_KEYS = tuple(str(n) for n in range(1, 10))


def preset_to_text(p: WindowPreset) -> str:
    """The settings form of a preset: ``name|W|L|key``."""
    return f"{p.name.replace('|', '/')}|{p.width:g}|{p.center:g}|{p.key}"


def presets_from_text(items: list[str] | tuple[str, ...]) -> list[WindowPreset]:
    """The CT presets kept in the settings (``name|W|L|key``; unreadable entries skipped);
    the built-in :data:`CT_PRESETS` when there are none."""
    out = [p for p in (parse_preset(item) for item in items or ()) if p is not None]
    return out or list(CT_PRESETS)


def parse_preset(item: str) -> WindowPreset | None:
    """One ``name|W|L|key`` entry; None when it has no name, no positive W or no number L."""
    parts = str(item).split("|")
    if len(parts) != 4:
        return None
    name, width, center, key = (t.strip() for t in parts)
    try:
        w, c = float(width), float(center)
    except ValueError:
        return None
    if not name or not w > 0 or not abs(c) < 1e9:
        return None
    return WindowPreset(name, c, w, key if key in PRESET_KEYS else "")


def preset_for_key(presets: list[WindowPreset], number: int) -> WindowPreset | None:
    """The preset on number key ``number``: the one given that key, else the ``number``-th one
    that has no key of its own."""
    for p in presets:
        if p.key == str(number):
            return p
    free = [p for p in presets if not p.key]
    return free[number - 1] if 1 <= number <= len(free) else None


def presets_for(
    modality: str,
    header_windows: list[tuple[float, float, str]] | None = None,
    ct_presets: list[WindowPreset] | None = None,
) -> list[WindowPreset]:
    """Presets available for a series, in number-key order.

    Parameters
    ----------
    modality : str
        DICOM Modality (``CT``, ``MR``, ``CR`` ...).
    header_windows : list of (center, width, explanation), optional
        The windows stored in the header (WindowCenter/WindowWidth and explanations).
    ct_presets : list of WindowPreset, optional
        The user's CT presets (Settings); default :data:`CT_PRESETS`.

    Returns
    -------
    list of WindowPreset
        CT presets for CT; otherwise the header windows (named by their explanation).
    """
    if (modality or "").upper() == "CT":
        return list(ct_presets or CT_PRESETS)
    out = []
    for i, (c, w, name) in enumerate(header_windows or []):
        if w and w > 0:
            out.append(WindowPreset(name or f"Header {i + 1}", float(c), float(w)))
    return out
