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


#: CT presets, number keys 1..8 (values as commonly used in neuro/body CT reading)
CT_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset("Brain", 40, 80),
    WindowPreset("Subdural", 75, 215),
    WindowPreset("Stroke", 32, 8),
    WindowPreset("Lung", -600, 1500),
    WindowPreset("Mediastinum", 50, 350),
    WindowPreset("Abdomen", 40, 400),
    WindowPreset("Liver", 60, 160),
    WindowPreset("Bone", 400, 1800),
)


def presets_for(modality: str, header_windows: list[tuple[float, float, str]] | None = None) -> list[WindowPreset]:
    """Presets available for a series, in number-key order.

    Parameters
    ----------
    modality : str
        DICOM Modality (``CT``, ``MR``, ``CR`` ...).
    header_windows : list of (center, width, explanation), optional
        The windows stored in the header (WindowCenter/WindowWidth and explanations).

    Returns
    -------
    list of WindowPreset
        CT presets for CT; otherwise the header windows (named by their explanation).
    """
    if (modality or "").upper() == "CT":
        return list(CT_PRESETS)
    out = []
    for i, (c, w, name) in enumerate(header_windows or []):
        if w and w > 0:
            out.append(WindowPreset(name or f"Header {i + 1}", float(c), float(w)))
    return out
