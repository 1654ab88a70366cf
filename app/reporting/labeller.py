"""Rule-based findings labeller for chest X-ray report text, with negation handling.

It decides, for each coded finding it knows (the Indiana collection's ``Problems`` codes), whether a
report *states* it (a positive mention), only *denies* it ("No pleural effusion."), or does not
mention it. It judges the bundled generator's findings consistency (model card), drives the
run-time consistency guard of the generator, and can be run on any report text.

How it works (a small NegEx): the text is cut into sentences, sentences into clauses at scope
breakers ("but", "however", "except" ...); each finding has regular expressions; a match is
negated when a negation cue ("no", "without", "negative for", "free of", "resolved" ...) stands
before it in its clause, or a post-negation ("... is not seen", "... has resolved") follows it.
Hedged mentions ("possible", "cannot be excluded") count as stated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: the 12 most frequent ``Problems`` codes in the Indiana reports (model card metric set)
TOP_FINDINGS: tuple[str, ...] = (
    "normal",
    "Lung",
    "Opacity",
    "Cardiomegaly",
    "Calcinosis",
    "Pulmonary Atelectasis",
    "Calcified Granuloma",
    "Thoracic Vertebrae",
    "Cicatrix",
    "Spine",
    "Markings",
    "Pleural Effusion",
)

_SPINE_DEGEN = (
    r"(?:degenerat\w*|spondylo\w*|osteophyt\w*|dis[ck] (?:space )?(?:narrowing|disease))"
    r"[^.;]*?\b(?:spine|spinal|vertebra\w*|thoracic|t-?spine|thoracolumbar|endplates?)"
    r"|\b(?:spine|spinal|vertebra\w*|thoracic|t-?spine|thoracolumbar|endplates?)\b[^.;]*?"
    r"(?:degenerat\w*|spondylo\w*|osteophyt\w*)"
    r"|\bspondylosis\b|\bosteophytes?\b"
)

#: finding -> regular expressions (case-insensitive) whose match states the finding
PATTERNS: dict[str, tuple[str, ...]] = {
    "Cardiomegaly": (
        r"\bcardiomegaly\b",
        r"\b(?:heart|cardiac(?: silhouette| contour| size| shadow)?|cardiomediastinal silhouette)"
        r"\b[^.;]*?\b(?:enlarge\w*|large|increased in size|prominent)\b",
        r"\benlarge\w* (?:heart|cardiac)\b",
        r"\bcardiac enlargement\b",
    ),
    "Pleural Effusion": (
        r"\beffusions?\b",
        r"\bpleural fluid\b",
        r"\bblunt\w*\b[^.;]*?\bcostophrenic\b",
        r"\bcostophrenic\b[^.;]*?\bblunt\w*",
    ),
    "Opacity": (r"\bopacit(?:y|ies)\b", r"\bopacifi\w*\b", r"\bopacified\b"),
    "Pulmonary Atelectasis": (r"\batelecta\w*\b",),
    "Calcinosis": (r"\bcalcinosis\b", r"\bcalcifi(?:c|ed|cation|cations)\b(?!\s+granulom)"),
    "Calcified Granuloma": (r"\bgranulom(?:a|as|ata)\b",),
    "Thoracic Vertebrae": (_SPINE_DEGEN,),
    "Spine": (_SPINE_DEGEN, r"\bscoliosis\b", r"\bkyphosis\b"),
    "Cicatrix": (r"\bscar(?:s|ring|red)?\b", r"\bcicatri\w*\b"),
    "Markings": (
        r"\b(?:prominent|increased|coarse\w*|chronic|accentuated|interstitial|reticular\w*|crowd\w*|"
        r"streaky|irregular|prominence of)\b[^.;]*?\bmarkings?\b",
        r"\bmarkings?\b[^.;]*?\b(?:prominent|increased|coarse\w*|accentuated|crowd\w*)\b",
        r"\b(?:interstitial|bronchovascular) (?:prominence|crowding|thickening)\b",
    ),
    "Lung": (
        r"\bhypo-?inflat\w*\b",
        r"\bhyper-?inflat\w*\b",
        r"\bhyper-?expan\w*\b",
        r"\bhyper-?disten\w*\b",
        r"\bhyper-?aerat\w*\b",
        r"\bhyperlucen\w*\b",
        r"\bover-?inflat\w*\b",
        r"\bover-?expan\w*\b",
        r"\b(?:low|decreased|reduced|diminished|small) lung volumes?\b",
        r"\blung volumes? (?:is|are) (?:low|decreased|reduced|diminished)\b",
        r"\bpoor(?:ly)? inspirat\w*\b",
        r"\bshallow inspiration\b",
        r"\bazygos lobe\b",
        r"\bflatten\w* (?:of )?(?:the )?(?:hemi)?diaphragms?\b",
    ),
    # further findings the generator and the classifier conditioning use
    "Pneumonia": (r"\bpneumonias?\b", r"\bpneumonitis\b"),
    "Consolidation": (r"\bconsolidat\w*\b",),
    "Airspace Disease": (
        r"\bair-?space (?:disease|opacit\w*|consolidation)\b",
        r"\binfiltrates?\b",
    ),
    "Pneumothorax": (r"\bpneumothora(?:x|ces)\b",),
    "Pulmonary Edema": (r"\bedema\b", r"\bvascular congestion\b", r"\bcongestive\b"),
    "Nodule": (r"\bnodul(?:e|es|ar)\b", r"\bmass(?:es)?\b"),
    "Pulmonary Emphysema": (r"\bemphysema\w*\b", r"\bcopd\b"),
    "Fractures, Bone": (r"\bfractures?\b", r"\bfractured\b"),
    "Hernia, Hiatal": (r"\bhiatal hernia\b", r"\bhiatus hernia\b"),
}

#: findings whose positive mention means the study is not normal
ABNORMAL_FINDINGS: tuple[str, ...] = tuple(f for f in PATTERNS)

_COMPILED = {k: [re.compile(p, re.IGNORECASE) for p in v] for k, v in PATTERNS.items()}

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|(?<=\.)(?=[A-Z])")
# clause boundaries that end the scope of a negation cue
_SCOPE = re.compile(
    r";|:|,?\s+\bbut\b|,?\s+\bhowever\b|\balthough\b|\bthough\b|\bexcept\b|"
    r"\baside from\b|\bapart from\b|\bwhich\b|\bwith the exception of\b|"
    r"\bthere (?:is|are)\b(?! no)",
    re.IGNORECASE,
)
_PRE_NEG = re.compile(
    r"\b(?:no|not|without|negative for|free of|clear of|absence of|absent|"
    r"resolution of|resolved|removal of|rather than|never|nor|none)\b|n't\b",
    re.IGNORECASE,
)
_POST_NEG = re.compile(
    r"^[^.;]{0,40}?\b(?:(?:is|are|was|were|has been|have been)\s+)?"
    r"(?:not (?:seen|identified|visualized|visible|present|evident|demonstrated|"
    r"appreciated|noted|apparent|detected)|absent|resolved|no longer)\b",
    re.IGNORECASE,
)
_HEDGE_POSITIVE = re.compile(
    r"(?:cannot|can ?not|not) be (?:excluded|ruled out)|not excluded", re.IGNORECASE
)


@dataclass(frozen=True)
class Mention:
    """One mention of a finding in a report."""

    finding: str
    sentence: str
    start: int  # character offset of the match inside ``sentence``
    end: int
    negated: bool


def sentences(text: str) -> list[str]:
    """Cut report text into sentences (keeps the final full stop)."""
    parts = _SENTENCE.split(text or "")
    return [p.strip() for p in parts if p and p.strip()]


def _clause_bounds(sentence: str, pos: int) -> tuple[int, int]:
    start, end = 0, len(sentence)
    for m in _SCOPE.finditer(sentence):
        if m.end() <= pos:
            start = m.end()
        elif m.start() >= pos:
            end = m.start()
            break
    return start, end


def _negated(sentence: str, start: int, end: int) -> bool:
    c0, c1 = _clause_bounds(sentence, start)
    after = sentence[end:c1]
    if _HEDGE_POSITIVE.search(after) or _HEDGE_POSITIVE.search(sentence[c0:start]):
        return False
    # cue before the finding word in its clause; a cue inside the matched phrase counts too
    # ("the heart is not enlarged" matches from "heart" to "enlarged")
    if _PRE_NEG.search(sentence[c0:start]) or _PRE_NEG.search(sentence[start:end]):
        return True
    return bool(_POST_NEG.search(after))


def mentions(text: str, findings: tuple[str, ...] | None = None) -> list[Mention]:
    """Every mention of the known findings in ``text``, with its negation status.

    Parameters
    ----------
    text : str
        Report text (any sections).
    findings : tuple of str, optional
        Restrict to these findings (default: all in ``PATTERNS``).
    """
    out: list[Mention] = []
    names = findings or tuple(PATTERNS)
    for sent in sentences(text):
        for name in names:
            for rx in _COMPILED.get(name, ()):
                for m in rx.finditer(sent):
                    out.append(
                        Mention(name, sent, m.start(), m.end(), _negated(sent, m.start(), m.end()))
                    )
    return out


def label(text: str) -> dict[str, bool]:
    """Findings mentioned in ``text``: True when stated (any positive mention), False when only denied.

    Findings the text does not mention are absent from the result.
    """
    result: dict[str, bool] = {}
    for m in mentions(text):
        result[m.finding] = result.get(m.finding, False) or not m.negated
    return result


def positive_findings(text: str) -> set[str]:
    """The findings ``text`` states."""
    return {k for k, v in label(text).items() if v}


def states(text: str, finding: str) -> bool:
    """Whether ``text`` states ``finding``; for ``normal``: whether it states no abnormality.

    ``finding`` may be a detailed code (``Lung/hypoinflation``): its first part is used.
    """
    name = finding.split("/")[0].strip()
    if name.lower() == "normal":
        return is_normal(text)
    if name not in PATTERNS:
        raise KeyError(f"the labeller does not know the finding {name!r}")
    return name in positive_findings(text)


def is_normal(text: str) -> bool:
    """True when ``text`` states no abnormality the labeller knows."""
    return not (positive_findings(text) & set(ABNORMAL_FINDINGS))


def knows(finding: str) -> bool:
    """Whether the labeller has rules for ``finding`` (``normal`` included)."""
    name = finding.split("/")[0].strip()
    return name.lower() == "normal" or name in PATTERNS
