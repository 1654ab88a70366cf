"""Intended use: the population a model was made for, and the reliability note on each result.

The manifest's ``applicability`` may state a population beside the modality/body part/view
rules that decide whether a model runs at all (:func:`app.inference.registry.applicability_problems`):

* ``age_years: [min, max]`` (from PatientAge, else PatientBirthDate and the study date),
* ``sexes: ["F", "M", ...]`` (PatientSex),
* ``pixel_spacing_mm: [min, max]`` (PixelSpacing, else ImagerPixelSpacing; the smaller value),
* ``unknown_population: "flag" | "accept"`` (default ``flag``): whether a value the model's
  population depends on but the header does not give puts the result outside intended use (a
  pediatric model cannot claim a film of unknown age is pediatric).

A model still runs on an image outside its population (the modality and anatomy are right), but
its result carries ``reliability: "outside intended use: <reasons>"``, as does a result the user
forced through the modality/anatomy rules, and one whose OOD score (:mod:`app.inference.ood`) is
above its threshold.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Sequence

WITHIN = "within intended use"
OUTSIDE = "outside intended use"

_AGE_UNITS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def _get(ds: Any, keyword: str) -> Any:
    if isinstance(ds, dict):
        return ds.get(keyword)
    return getattr(ds, keyword, None) if ds is not None else None


def _date(value: Any) -> dt.date | None:
    text = str(value or "").strip()
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def patient_age_years(ds: Any) -> float | None:
    """Age in years from PatientAge (``033Y``, ``006M``...), else birth date and study date."""
    m = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY])\s*", str(_get(ds, "PatientAge") or ""))
    if m:
        return int(m.group(1)) * _AGE_UNITS[m.group(2)]
    born = _date(_get(ds, "PatientBirthDate"))
    seen = None
    for key in ("StudyDate", "AcquisitionDate", "ContentDate", "SeriesDate"):
        seen = _date(_get(ds, key))
        if seen:
            break
    if born and seen and seen >= born:
        return (seen - born).days / 365.25
    return None


def pixel_spacing_mm(ds: Any) -> float | None:
    """The finer pixel spacing in mm (PixelSpacing, else ImagerPixelSpacing); None if absent or 0."""
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _get(ds, key)
        try:
            vals = [float(v) for v in (value or [])]
        except (TypeError, ValueError):
            continue
        vals = [v for v in vals if v > 0]
        if vals:
            return min(vals)
    return None


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 or x >= 10 else f"{x:.1f}"


def population_problems(manifest: Any, ds: Any) -> list[str]:
    """Why an image lies outside the model's stated population (empty: inside, or not stated)."""
    app = manifest.applicability
    flag_unknown = app.get("unknown_population", "flag") == "flag"
    problems: list[str] = []
    if "age_years" in app:
        lo, hi = (float(v) for v in app["age_years"])
        age = patient_age_years(ds)
        if age is None:
            if flag_unknown:
                problems.append(
                    f"patient age not recorded (intended for ages {_fmt(lo)}-{_fmt(hi)} years)"
                )
        elif not lo <= age <= hi:
            problems.append(f"patient age {_fmt(age)} years is outside {_fmt(lo)}-{_fmt(hi)} years")
    if "sexes" in app:
        allowed = [str(s).upper() for s in app["sexes"]]
        sex = str(_get(ds, "PatientSex") or "").strip().upper()
        if not sex:
            if flag_unknown:
                problems.append(f"patient sex not recorded (intended for {', '.join(allowed)})")
        elif sex not in allowed:
            problems.append(f"patient sex {sex} is not one of {', '.join(allowed)}")
    if "pixel_spacing_mm" in app:
        lo, hi = (float(v) for v in app["pixel_spacing_mm"])
        sp = pixel_spacing_mm(ds)
        if sp is None:
            if flag_unknown:
                problems.append(f"pixel spacing not recorded (intended for {lo:g}-{hi:g} mm)")
        elif not lo <= sp <= hi:
            problems.append(f"pixel spacing {sp:g} mm is outside {lo:g}-{hi:g} mm")
    return problems


def ood_problem(ood: dict[str, Any] | None) -> list[str]:
    """The reason an OOD record flags a result (empty when not flagged or absent)."""
    if not ood or not ood.get("flagged"):
        return []
    return [
        f"image unlike the training data (OOD {ood.get('method', 'score')} {ood['score']:g} "
        f"above threshold {ood['threshold']:g})"
    ]


def reliability(reasons: Sequence[str]) -> str:
    """The one-line note a result carries: ``within intended use`` or ``outside intended use: ...``."""
    return f"{OUTSIDE}: " + "; ".join(reasons) if reasons else WITHIN


def is_outside(note: str | None) -> bool:
    """True for a reliability note that puts a result outside intended use."""
    return bool(note) and str(note).startswith(OUTSIDE)
