"""Provenance attached to every AI output (DEVELOPERS.md convention 5)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from app import __version__

#: the one disclaimer every AI output carries (panels, results.json, provenance)
DISCLAIMER = "AI-generated, requires review by a physician"
#: its form above a report draft (Report panel, ``draft.txt``, the generator's banner line)
DRAFT_BANNER = "AI-generated draft: requires review by a physician"


def provenance(
    model_id: str,
    model_version: str,
    sha256: str,
    provider: str,
    **extra: Any,
) -> dict[str, Any]:
    """Build the provenance record for one AI output.

    Parameters
    ----------
    model_id, model_version, sha256 : str
        Identify the model exactly.
    provider : str
        The execution provider that actually ran (e.g. ``CPUExecutionProvider``).
    **extra
        Anything else worth recording (method, timings).

    Returns
    -------
    dict
        JSON-serialisable record including the app version, UTC time and the disclaimer.
    """
    record: dict[str, Any] = {
        "model_id": model_id,
        "model_version": model_version,
        "sha256": sha256,
        "provider": provider,
        "app_version": __version__,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "disclaimer": DISCLAIMER,
    }
    record.update(extra)
    return record
