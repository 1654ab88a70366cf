"""Measure a model's OOD flag rates: in-distribution test images and clearly foreign inputs.

Used by ``models/<id>/fit_ood.py`` to write the model card's figures and by the tests that
reproduce them. Every figure comes from the engine's own classifying pass (the OOD score is
computed from the features fetched in that pass).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: the foreign sets forced through the bundled chest-film model (folder under shared dicom/)
FOREIGN_SETS = {
    "CT": ("ct_head_ge", "ct_phantom_philips"),
    "MR": ("mr_sag_mprage", "mr_transfer_syntaxes"),
    "adult chest films": ("cxr",),
}


def npz_flag_rate(
    manifest: Any, npz: str | Path, split: str, device: str = "cpu"
) -> dict[str, Any]:
    """Fraction of ``<split>_images`` flagged by the OOD score (images go through full preprocessing)."""
    from app.inference.engine import get_engine

    eng = get_engine(manifest, device=device)
    with np.load(npz) as z:
        images = list(z[f"{split}_images"])
    res = eng.predict(images, batch_size=128)
    flagged = sum(1 for r in res if r.ood.get("flagged"))
    return {"n": len(res), "flagged": flagged, "fraction": round(flagged / len(res), 4)}


def dicom_flag_rates(
    manifest: Any,
    dicom_root: str | Path,
    sets: dict[str, Sequence[str]] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Per foreign set: images forced through the model (applicability overridden) and flagged."""
    from app.inference.analyze import analyze_paths
    from app.inference.registry import ModelRegistry

    registry = ModelRegistry(bundled_dir=manifest.folder.parent, site_dir=Path("/nonexistent"))
    out: dict[str, Any] = {}
    for name, folders in (sets or FOREIGN_SETS).items():
        doc = analyze_paths(
            [Path(dicom_root) / f for f in folders],
            None,
            model_ids=[manifest.id],
            device=device,
            override_applicability=True,
            write=False,
            registry=registry,
        )
        recs = [r for im in doc["images"] for r in im["results"] if r["model_id"] == manifest.id]
        flagged = sum(1 for r in recs if r.get("ood", {}).get("flagged"))
        out[name] = {
            "n": len(recs),
            "flagged": flagged,
            "fraction": round(flagged / len(recs), 4) if recs else None,
            "outside_intended_use": sum(
                1 for r in recs if str(r.get("reliability", "")).startswith("outside")
            ),
        }
    return out
