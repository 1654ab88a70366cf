"""Sentence-level evidence and the sign-off check.

* :func:`sentence_evidence`: each sentence of a draft with the AI finding(s) it states or denies,
  each with its model, probability, threshold, reliability and saliency map (what the Report panel
  shows when a sentence is clicked).
* :func:`compare`: the text the reader is about to sign, labelled, against the AI results:
  "AI flagged Pleural Effusion (0.91); your report does not mention it" and "Your report states
  Cardiomegaly; the AI found it below threshold (0.12)". Each :class:`Discrepancy` is either
  acknowledged (:func:`acknowledge`, stored with the signed report and written to the SR as the
  reader's decision) or resolved by editing the text.

``hilum draft --check REPORT.txt --results results.json`` prints the same comparison.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

from app.core.types import ModelResult
from app.reporting import labeller


@dataclass(frozen=True)
class EvidenceLink:
    """One AI result label behind a sentence."""

    code: str  # the finding as the labeller names it (``Pneumonia``)
    model_id: str
    label: str
    probability: float
    threshold: float
    positive: bool
    reliability: str = ""
    saliency_png: str = ""  # overlay file relative to the results folder ("" when none)
    sop_uid: str = ""
    stated: bool = True  # the sentence states it (False: the sentence denies it)


@dataclass(frozen=True)
class Discrepancy:
    """One difference between the signed text and the AI results."""

    id: str
    kind: str  # "ai-positive-not-reported" | "reported-ai-negative" | "ai-positive-denied"
    code: str
    model_id: str
    probability: float
    threshold: float
    message: str


def _code_of(label: str) -> str:
    from app.reporting.generator.conditioning import COVERED_LABELS

    covered = COVERED_LABELS.get(label.lower())
    if covered is not None:
        return covered.code
    for name in labeller.PATTERNS:
        if name.lower() == label.lower():
            return name
    return label


def _links(results: Iterable[tuple[ModelResult, str]]) -> list[EvidenceLink]:
    out = []
    for res, sop in results:
        files = (res.saliency or {}).get("files", {}) if isinstance(res.saliency, Mapping) else {}
        for lr in res.labels:
            png = (
                files.get(lr.label, {}).get("png", "")
                if isinstance(files.get(lr.label), Mapping)
                else ""
            )
            out.append(
                EvidenceLink(
                    code=_code_of(lr.label),
                    model_id=res.model_id,
                    label=lr.label,
                    probability=float(lr.probability),
                    threshold=float(lr.threshold),
                    positive=bool(lr.positive),
                    reliability=res.reliability,
                    saliency_png=png,
                    sop_uid=sop,
                )
            )
    return out


def results_with_images(doc: Any, study_uid: str | None = None) -> list[tuple[ModelResult, str]]:
    """(ModelResult, SOPInstanceUID) pairs from a ``results.json`` document (or a list of results)."""
    if isinstance(doc, Mapping) and isinstance(doc.get("images"), list):
        out = []
        for im in doc["images"]:
            if study_uid and str(im.get("study_uid", "")) != study_uid:
                continue
            for rec in im.get("results", []):
                out.append((ModelResult.from_dict(rec), str(im.get("sop_uid", ""))))
        return out
    from app.reporting.generator.conditioning import results_from_doc

    return [(r, "") for r in results_from_doc(doc)]


def sentence_evidence(
    text: str, results: Sequence[tuple[ModelResult, str]]
) -> list[dict[str, Any]]:
    """Each sentence of ``text`` with the AI findings it states or denies.

    Returns
    -------
    list of dict
        ``{"sentence", "findings": [EvidenceLink as dict, ...]}`` in text order; a sentence no AI
        result concerns has an empty list.
    """
    links = _links(results)
    out = []
    for sent in labeller.sentences(re.sub(r"\b(?:FINDINGS|IMPRESSION)\s*:", "\n", text)):
        found = []
        for code, stated in labeller.label(sent).items():
            for link in links:
                if link.code == code:
                    found.append(asdict(EvidenceLink(**{**asdict(link), "stated": stated})))
        out.append({"sentence": sent, "findings": found})
    return out


def _fmt(p: float) -> str:
    return f"{p:.2f}"


def compare(
    text: str, results: Sequence[tuple[ModelResult, str]] | Sequence[ModelResult]
) -> list[Discrepancy]:
    """The signed text against the AI results (results outside intended use are not compared).

    Parameters
    ----------
    text : str
        The report text the reader is signing (FINDINGS and IMPRESSION).
    results : sequence
        ``(ModelResult, sop_uid)`` pairs or ModelResults.
    """
    pairs = [r if isinstance(r, tuple) else (r, "") for r in results]
    labels = labeller.label(text)
    best: dict[str, EvidenceLink] = {}
    for link in _links(pairs):
        if str(link.reliability).startswith("outside"):
            continue  # not applicable: the draft says so; nothing to compare
        key = link.code
        cur = best.get(key)
        # a positive outranks a negative; then the higher probability
        if cur is None or (link.positive, link.probability) > (cur.positive, cur.probability):
            best[key] = link
    out: list[Discrepancy] = []
    for code, link in best.items():
        said = labels.get(code)
        name = code
        if link.positive and said is None:
            msg = f"AI flagged {name} ({_fmt(link.probability)}); your report does not mention it"
            kind = "ai-positive-not-reported"
        elif link.positive and said is False:
            msg = f"AI flagged {name} ({_fmt(link.probability)}); your report states there is none"
            kind = "ai-positive-denied"
        elif not link.positive and said is True:
            msg = f"Your report states {name}; the AI found it below threshold ({_fmt(link.probability)})"
            kind = "reported-ai-negative"
        else:
            continue
        ident = hashlib.sha256(f"{kind}|{code}|{link.model_id}".encode()).hexdigest()[:12]
        out.append(
            Discrepancy(ident, kind, code, link.model_id, link.probability, link.threshold, msg)
        )
    return sorted(out, key=lambda d: (d.kind, d.code))


def acknowledge(
    discrepancies: Sequence[Discrepancy], reader: str, note: str = ""
) -> list[dict[str, Any]]:
    """The reader's decision on each discrepancy, as stored with the signed report.

    Returns
    -------
    list of dict
        ``{"id", "kind", "code", "model_id", "probability", "threshold", "message", "decision",
        "reader", "time", "note"}``.
    """
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return [
        {
            **asdict(d),
            "decision": "acknowledged: report kept as written",
            "reader": reader,
            "time": now,
            "note": note,
        }
        for d in discrepancies
    ]


def format_comparison(discrepancies: Sequence[Discrepancy]) -> str:
    """The comparison as lines of text (``hilum draft --check``)."""
    if not discrepancies:
        return "The report agrees with every AI result within intended use."
    return "\n".join(f"- {d.message}" for d in discrepancies)
