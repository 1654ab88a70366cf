"""The model registry: bundled models (``models/<id>/``) and site-installed ones
(``$HILUM_HOME/models/<id>/``), each verified before it may run.

A site-installed model with the same id as a bundled one is refused, unless its manifest says
``"replaces": "<id>"``: then it runs instead of the bundled model and is shown as a *site override*
(``source == "site override"``) in ``hilum models list``, the AI panel and every result.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

from app.core import paths
from app.core.errors import ModelNotFoundError
from app.inference.manifest import MANIFEST_NAME, Manifest, load_manifest, verify_manifest

log = logging.getLogger(__name__)


def _meta_from(dataset_or_meta: Any) -> dict[str, str]:
    """Modality, body part, view position and photometric interpretation from a pydicom
    dataset or a plain dict (keys as DICOM keywords or lower-case)."""
    keys = {
        "Modality": "modality",
        "BodyPartExamined": "body_part",
        "ViewPosition": "view_position",
        "PhotometricInterpretation": "photometric",
    }
    out: dict[str, str] = {}
    for keyword, short in keys.items():
        if isinstance(dataset_or_meta, dict):
            value = dataset_or_meta.get(keyword, dataset_or_meta.get(short, ""))
        else:
            value = getattr(dataset_or_meta, keyword, "")
        out[short] = str(value or "").strip().upper()
    return out


def applicability_problems(manifest: Manifest, dataset_or_meta: Any) -> list[str]:
    """Why a model does not apply to an image (empty list: it applies).

    Missing header values never exclude a model (many films lack BodyPartExamined or
    ViewPosition); only a value that is present and not listed does.
    """
    meta = _meta_from(dataset_or_meta)
    app = manifest.applicability
    checks = (
        ("modalities", "modality", "modality"),
        ("body_parts", "body_part", "body part"),
        ("view_positions", "view_position", "view position"),
        ("photometric", "photometric", "photometric interpretation"),
    )
    problems = []
    for key, field, words in checks:
        allowed = [str(v).upper() for v in app.get(key, [])]
        value = meta[field]
        if allowed and value and value not in allowed:
            problems.append(f"{words} {value} is not one of {', '.join(allowed)}")
    return problems


class ModelRegistry:
    """All installed models, verified on first access.

    Parameters
    ----------
    bundled_dir, site_dir : Path, optional
        Override the folders (tests); default :func:`app.core.paths.bundled_models_dir` and
        :func:`app.core.paths.site_models_dir`.
    """

    def __init__(self, bundled_dir: Path | None = None, site_dir: Path | None = None) -> None:
        self.bundled_dir = Path(bundled_dir) if bundled_dir else paths.bundled_models_dir()
        self.site_dir = Path(site_dir) if site_dir else paths.site_models_dir()
        self._models: dict[str, Manifest] | None = None
        #: site models refused because they reuse a bundled id without ``replaces``
        self.refused: list[Manifest] = []

    def _scan(self) -> dict[str, Manifest]:
        found: dict[str, Manifest] = {}
        self.refused = []
        for source, root in (("bundled", self.bundled_dir), ("site", self.site_dir)):
            if not root.is_dir():
                continue
            for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                if not (folder / MANIFEST_NAME).is_file():
                    continue  # e.g. a generator model folder, not a classifier
                m = verify_manifest(load_manifest(folder, source=source))
                if source == "site" and m.id in found and found[m.id].source == "bundled":
                    if m.raw.get("replaces") != m.id:
                        m.problems.append(
                            f"a bundled model is already called '{m.id}': this site model was "
                            f'refused (add "replaces": "{m.id}" to its model.json to override '
                            "the bundled model on purpose)"
                        )
                        self.refused.append(m)
                        log.warning("site model %s refused: it reuses a bundled id", m.id)
                        continue
                    m.source = "site override"
                    log.info("site model %s overrides the bundled one", m.id)
                found[m.id] = m
        return found

    def refresh(self) -> None:
        """Forget what was scanned (after a site admin installs a model)."""
        self._models = None

    def models(self) -> list[Manifest]:
        """Every installed model, verified (``.verified`` / ``.problems`` say how it went);
        refused site models are listed after the others (never verified, never run)."""
        if self._models is None:
            self._models = self._scan()
        return list(self._models.values()) + list(self.refused)

    def get(self, model_id: str) -> Manifest:
        """The manifest of one model (verified or not: call ``require_verified()`` before running).

        Raises
        ------
        ModelNotFoundError
            When no installed model has this id.
        """
        self.models()
        assert self._models is not None
        try:
            return self._models[model_id]
        except KeyError:
            known = ", ".join(sorted(self._models)) or "none"
            raise ModelNotFoundError(
                f"No installed model is called '{model_id}' (installed: {known})."
            ) from None

    def verify(self) -> list[Manifest]:
        """Re-run every check (hashes included) and return all models."""
        self.refresh()
        return self.models()

    def applicable(self, dataset_or_meta: Any, include_unverified: bool = False) -> list[Manifest]:
        """Models whose applicability matches a dataset (or a dict of header values)."""
        return [
            m
            for m in self.models()
            if (include_unverified or m.verified)
            and m.raw
            and not applicability_problems(m, dataset_or_meta)
        ]

    def select(self, model_ids: Iterable[str] | None) -> list[Manifest]:
        """The requested models, or every verified model when ``model_ids`` is empty."""
        ids = list(model_ids or [])
        if ids:
            return [self.get(i) for i in ids]
        return [m for m in self.models() if m.verified]

    def running(self) -> list[Manifest]:
        """The models that may run (verified, refused site models excluded)."""
        self.models()
        assert self._models is not None
        return [m for m in self._models.values() if m.verified]
