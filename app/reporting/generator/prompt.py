"""The bundled generator's prompt format, shared by its training script and the runtime.

The training script (``models/report_generator/train.py``) imports these functions, so the text
the model was trained on and the text it is prompted with at run time cannot drift apart.

A prompt is::

    <|findings|>Cardiomegaly; Pleural Effusion<|indication|>67-year-old male. Dyspnea.<|view|>PA and lateral<|report|>

and the model continues with ``FINDINGS: ...\\nIMPRESSION: ...<|endoftext|>``.
"""

from __future__ import annotations

import re
from typing import Iterable

#: special tokens of the bundled tokenizer (single ids, never split by BPE)
EOS = "<|endoftext|>"
T_FINDINGS = "<|findings|>"
T_INDICATION = "<|indication|>"
T_VIEW = "<|view|>"
T_REPORT = "<|report|>"
SPECIAL_TOKENS = [EOS, T_FINDINGS, T_INDICATION, T_VIEW, T_REPORT]

FINDINGS_HEADER = "FINDINGS:"
IMPRESSION_HEADER = "IMPRESSION:"

_WS = re.compile(r"\s+")


def clean_text(text: str | None) -> str:
    """Collapse whitespace and strip; ``None`` and the dataset's "None." become empty."""
    if not text:
        return ""
    text = _WS.sub(" ", str(text)).strip()
    return "" if text.lower() in {"none", "none."} else text


def format_prompt(findings: Iterable[str], indication: str = "", view: str = "") -> str:
    """Build the conditioning prompt.

    Parameters
    ----------
    findings : iterable of str
        Coded findings (``normal``, ``Cardiomegaly``, ``Lung/hypoinflation`` ...), in order.
    indication : str
        Free-text indication (age and sex may be prefixed, as in the training reports).
    view : str
        Projection text, e.g. ``PA and lateral`` or ``frontal``.

    Returns
    -------
    str
        The prompt text, ending with the report marker the model continues from.
    """
    terms = [clean_text(f) for f in findings if clean_text(f)]
    return (
        f"{T_FINDINGS}{'; '.join(terms) or 'normal'}{T_INDICATION}{clean_text(indication)}"
        f"{T_VIEW}{clean_text(view)}{T_REPORT}"
    )


def format_report(findings_text: str, impression_text: str) -> str:
    """The training target: both sections, as the runtime parses them."""
    return f"{FINDINGS_HEADER} {clean_text(findings_text)}\n{IMPRESSION_HEADER} {clean_text(impression_text)}"


def view_from_projections(projections: Iterable[str]) -> str:
    """Projection text from the dataset's per-image projections (``Frontal``/``Lateral``)."""
    p = {x.strip().lower() for x in projections}
    if "frontal" in p and "lateral" in p:
        return "PA and lateral"
    if "lateral" in p:
        return "lateral"
    return "frontal" if p else ""


def view_from_dicom(view_position: str, n_views: int = 1) -> str:
    """Projection text from DICOM ViewPosition (PA, AP, LL, RL, LATERAL ...)."""
    vp = (view_position or "").strip().upper()
    if n_views > 1:
        return "PA and lateral"
    if vp in {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"}:
        return "lateral"
    # PA and AP both map to "frontal": the training data only knows frontal / lateral / both
    return "frontal"
