"""Priors and hanging protocols (no Qt).

Priors: earlier studies of the same patient in the library with the same modality (and body
part when both studies give one), newest first (:func:`find_priors`).

Hanging protocols are small JSON documents. Defaults ship in ``resources/hanging_protocols``;
the user's own (or edited copies, same ``name``) live in ``<config>/hanging_protocols`` and win.
A protocol::

    {
      "name": "Chest film: current and prior",
      "match": {"modality": ["CR", "DX"], "body_part": ["CHEST"], "view": ["PA", "AP"],
                "min_priors": 1},
      "layout": "1x2",                       # 1x1, 1x2, 2x2 or "mpr"
      "viewports": [
        {"study": "current", "series": {"modality": ["CR", "DX"]}},
        {"study": "prior", "series": {"modality": ["CR", "DX"]}}
      ],
      "window": "header",                    # header, auto, or a preset name ("Lung" ...)
      "sync": "offset",                      # none, position or offset
      "priority": 20
    }

A viewport's ``series`` selects the first series of its study (current, or prior number
``prior_index``) whose modality, body part, view and description (a case-insensitive regular
expression) match, and that no other viewport took. :func:`choose_protocol` picks the
matching protocol with the highest priority, then the most specific match; :func:`plan`
turns it into typed placements.

Offset sync (:class:`OffsetSync`): linked scrolling across studies by position relative to a
landmark the reader picked in each viewport, not by raw table positions.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.errors import UsageError

log = logging.getLogger(__name__)

__all__ = [
    "LAYOUTS",
    "HangingPlan",
    "OffsetSync",
    "Placement",
    "Protocol",
    "StudyFeatures",
    "choose_protocol",
    "find_priors",
    "load_protocols",
    "plan",
    "save_protocol",
    "study_features",
]

LAYOUTS = ("1x1", "1x2", "2x2", "mpr")
_SYNC = ("none", "position", "offset")


def defaults_dir() -> Path:
    """The protocols shipped with Hilum."""
    return paths.resources_dir() / "hanging_protocols"


def user_dir() -> Path:
    """The user's protocols (config folder)."""
    return paths.config_dir() / "hanging_protocols"


@dataclass(frozen=True)
class Protocol:
    """One hanging protocol (see the module docstring for the JSON)."""

    name: str
    match: dict[str, Any]
    layout: str
    viewports: tuple[dict[str, Any], ...]
    window: str = "header"
    sync: str = "position"
    priority: int = 0
    source: str = ""

    @staticmethod
    def from_json(d: dict[str, Any], source: str = "") -> Protocol:
        """Parse and check a protocol document.

        Raises
        ------
        UsageError
            With one sentence saying what is wrong.
        """
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"].strip():
            raise UsageError("A hanging protocol needs a name.")
        layout = d.get("layout", "1x1")
        if layout not in LAYOUTS:
            raise UsageError(
                f"Hanging protocol {d['name']!r}: layout must be one of {', '.join(LAYOUTS)}."
            )
        sync = d.get("sync", "position")
        if sync not in _SYNC:
            raise UsageError(
                f"Hanging protocol {d['name']!r}: sync must be one of {', '.join(_SYNC)}."
            )
        vps = d.get("viewports", [])
        if not isinstance(vps, list) or not all(isinstance(v, dict) for v in vps):
            raise UsageError(
                f"Hanging protocol {d['name']!r}: viewports must be a list of objects."
            )
        for v in vps:
            for key in ("description",):
                pattern = v.get("series", {}).get(key)
                if pattern:
                    try:
                        re.compile(pattern)
                    except re.error:
                        raise UsageError(
                            f"Hanging protocol {d['name']!r}: {pattern!r} is not a valid pattern."
                        ) from None
        match = d.get("match", {})
        if not isinstance(match, dict):
            raise UsageError(f"Hanging protocol {d['name']!r}: match must be an object.")
        return Protocol(
            name=d["name"].strip(),
            match=match,
            layout=layout,
            viewports=tuple(vps),
            window=str(d.get("window", "header")),
            sync=sync,
            priority=int(d.get("priority", 0)),
            source=source,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "match": self.match,
            "layout": self.layout,
            "viewports": list(self.viewports),
            "window": self.window,
            "sync": self.sync,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class StudyFeatures:
    """What protocols match on: one study's modalities, body parts, views and series."""

    study_uid: str
    patient_id: str
    study_date: str
    modalities: tuple[str, ...]
    body_parts: tuple[str, ...]
    views: tuple[str, ...]
    series: tuple[dict[str, Any], ...]  # series_uid, modality, description, body_part, view, number


@dataclass(frozen=True)
class Placement:
    """Which series goes in which viewport."""

    viewport: int
    study_uid: str
    series_uid: str
    role: str  # "current" or "prior"
    window: str = "header"


@dataclass(frozen=True)
class HangingPlan:
    """A protocol applied to a study and its priors."""

    protocol: str
    layout: str
    placements: tuple[Placement, ...]
    sync: str
    priors: tuple[str, ...] = field(default=())


# -- priors ---------------------------------------------------------------------------------------
def _series_view(library: Any, series_uid: str) -> str:
    """ViewPosition of a series' first instance ('' when none: CT/MR, or unreadable)."""
    inst = library.instances(series_uid)
    if not inst:
        return ""
    try:
        import pydicom

        ds = pydicom.dcmread(
            inst[0]["path"], stop_before_pixels=True, specific_tags=["ViewPosition"]
        )
        return str(ds.get("ViewPosition", "") or "").upper()
    except Exception:  # noqa: BLE001 - a view we cannot read is no view
        return ""


def study_features(library: Any, study_uid: str) -> StudyFeatures:
    """The features of a library study (reads one header per series for the view).

    Raises
    ------
    UsageError
        When the study is not in the library.
    """
    info = library.study_info(study_uid)
    if info is None:
        raise UsageError("The study is not in the library.")
    series = []
    for s in library.series(study_uid):
        extra = library.series_info(s["series_uid"]) or {}
        series.append(
            {
                "series_uid": s["series_uid"],
                "modality": (s["modality"] or "").upper(),
                "description": s["description"] or "",
                "body_part": (extra.get("body_part") or "").upper(),
                "number": extra.get("number"),
                "view": _series_view(library, s["series_uid"]),
            }
        )
    return StudyFeatures(
        study_uid=study_uid,
        patient_id=str(info.get("patient_id") or ""),
        study_date=str(info.get("study_date") or ""),
        modalities=tuple(sorted({s["modality"] for s in series if s["modality"]})),
        body_parts=tuple(sorted({s["body_part"] for s in series if s["body_part"]})),
        views=tuple(sorted({s["view"] for s in series if s["view"]})),
        series=tuple(series),
    )


def find_priors(library: Any, study_uid: str) -> list[str]:
    """Earlier studies of the same patient with a common modality (and body part when both
    give one), newest first."""
    cur = study_features(library, study_uid)
    if not cur.patient_id:
        return []
    out = []
    for s in library.studies():
        uid = s["study_uid"]
        if uid == study_uid or (s.get("patient_id") or "") != cur.patient_id:
            continue
        date = s.get("study_date") or ""
        if not date or not cur.study_date or date >= cur.study_date:
            continue
        other = study_features(library, uid)
        if not set(other.modalities) & set(cur.modalities):
            continue
        if other.body_parts and cur.body_parts and not set(other.body_parts) & set(cur.body_parts):
            continue
        out.append((date, uid))
    return [uid for _, uid in sorted(out, reverse=True)]


# -- protocols ------------------------------------------------------------------------------------
def load_protocols(extra_dirs: Sequence[Path] = ()) -> list[Protocol]:
    """Shipped protocols, overridden by the user's (same name), plus any in ``extra_dirs``.

    A user file that cannot be read or parsed is skipped with a warning in the log.
    """
    found: dict[str, Protocol] = {}
    for folder in (defaults_dir(), user_dir(), *extra_dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                if path.stat().st_size > 256 * 1024:
                    raise UsageError("The file is too large for a hanging protocol.")
                p = Protocol.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
            except (OSError, ValueError, UsageError) as exc:
                log.warning("hanging protocol %s skipped: %s", path.name, exc)
                continue
            found[p.name] = p
    return list(found.values())


def _in(value: str, allowed: Any) -> bool:
    if allowed is None:
        return True
    allowed = [allowed] if isinstance(allowed, str) else list(allowed)
    return value.upper() in {str(a).upper() for a in allowed}


def _score(p: Protocol, f: StudyFeatures, n_priors: int) -> int | None:
    """How specifically ``p`` matches (None: it does not)."""
    m = p.match
    score = 0
    for key, values in (("modality", f.modalities), ("body_part", f.body_parts), ("view", f.views)):
        if key in m:
            if not any(_in(v, m[key]) for v in values):
                return None
            score += 1
    if n_priors < int(m.get("min_priors", 0)):
        return None
    if "max_priors" in m and n_priors > int(m["max_priors"]):
        return None
    if "min_priors" in m:
        score += 1
    return score


def choose_protocol(
    protocols: Iterable[Protocol], features: StudyFeatures, n_priors: int
) -> Protocol | None:
    """The matching protocol with the highest priority, then the most specific match."""
    best: tuple[int, int, str] | None = None
    chosen = None
    for p in protocols:
        s = _score(p, features, n_priors)
        if s is None:
            continue
        key = (p.priority, s, p.name)
        if best is None or key > best:
            best, chosen = key, p
    return chosen


def _series_matches(s: dict[str, Any], want: dict[str, Any]) -> bool:
    if "modality" in want and not _in(s["modality"], want["modality"]):
        return False
    if "body_part" in want and not _in(s["body_part"], want["body_part"]):
        return False
    if "view" in want and not _in(s["view"], want["view"]):
        return False
    pattern = want.get("description")
    return not (pattern and not re.search(pattern, s["description"], flags=re.IGNORECASE))


def plan(
    protocol: Protocol, current: StudyFeatures, priors: Sequence[StudyFeatures] = ()
) -> HangingPlan:
    """Place the series of ``current`` and its ``priors`` by ``protocol``."""
    used: set[str] = set()
    placements = []
    for i, vp in enumerate(protocol.viewports):
        role = vp.get("study", "current")
        if role == "prior":
            k = int(vp.get("prior_index", 0))
            if k >= len(priors):
                continue
            study = priors[k]
        else:
            study = current
        want = vp.get("series", {})
        pick = next(
            (s for s in study.series if s["series_uid"] not in used and _series_matches(s, want)),
            None,
        )
        if pick is None:
            continue
        used.add(pick["series_uid"])
        placements.append(
            Placement(
                viewport=i,
                study_uid=study.study_uid,
                series_uid=pick["series_uid"],
                role=role,
                window=str(vp.get("window", protocol.window)),
            )
        )
    return HangingPlan(
        protocol=protocol.name,
        layout=protocol.layout,
        placements=tuple(placements),
        sync=protocol.sync,
        priors=tuple(p.study_uid for p in priors),
    )


def save_protocol(protocol: Protocol) -> Path:
    """Write a protocol to the user's folder (private), replacing one of the same name."""
    folder = user_dir()
    paths.private_dir(folder)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", protocol.name).strip("_") or "protocol"
    path = folder / f"{safe}.json"
    # created 0600 (never readable by others, even briefly), whatever the umask
    return paths.write_private(path, json.dumps(protocol.to_json(), indent=2))


# -- offset sync ----------------------------------------------------------------------------------
class OffsetSync:
    """Linked scrolling by position relative to a landmark picked in each viewport.

    The reader scrolls every viewport to the same anatomical landmark (e.g. the carina) and
    sets it; from then on a position ``p`` in viewport A maps to ``p - landmark[A] +
    landmark[B]`` in viewport B. Viewports without a landmark follow raw positions.
    """

    def __init__(self) -> None:
        self.landmarks: dict[Any, float] = {}

    def set_landmark(self, key: Any, position: float) -> None:
        self.landmarks[key] = float(position)

    def clear(self) -> None:
        self.landmarks.clear()

    def map(self, source: Any, position: float, target: Any) -> float:
        """The position in ``target`` that corresponds to ``position`` in ``source``."""
        if source in self.landmarks and target in self.landmarks:
            return position - self.landmarks[source] + self.landmarks[target]
        return position
