"""Independent checker: does a draft contradict what it was conditioned on?

Written apart from the generator's guard and its labeller (:mod:`app.reporting.labeller`): its
own vocabulary, its own negation rule, nothing imported from either, so that a draft the guard
lets through is judged by different rules. Five rules (issue 16):

1. ``normal-structure``: no sentence states normality of a structure that a positive finding
   concerns (lungs "clear" with an opacity, heart "normal" with cardiomegaly, "no acute
   cardiopulmonary abnormality" with an acute finding ...), nor denies a positive finding.
2. ``impression-missing``: every positive finding appears (not denied) in the IMPRESSION.
3. ``comparison-language``: no comparison language (stable, unchanged, again, persistent,
   interval, redemonstrated, previously, new, prior, compared ...) unless a comparison is given.
4. ``no-content``: every sentence names some anatomy or finding.
5. ``indication-unanswered``: when the indication names a finding, the draft states or denies it.

A sentence that says an AI result is not applicable ("... is not applicable ...") is a note about
the AI, not a finding: it is exempt from rules 1 and 5 counting it as a statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

#: finding -> (words that name it, structures it concerns, acute?)
_FINDINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {
    "Cardiomegaly": (
        (
            r"cardiomegaly",
            r"(?:heart|cardiac silhouette|cardiac size|cardiac contour)s?\b[\w\s,-]{0,30}?\b(?:is |are )?(?:mildly |moderately |markedly )?(?:enlarged|large)",
            r"enlarged (?:heart|cardiac)",
            r"cardiac enlargement",
        ),
        ("heart",),
        False,
    ),
    "Pleural Effusion": (
        (r"effusions?", r"pleural fluid"),
        ("pleura", "lungs", "costophrenic"),
        True,
    ),
    "Opacity": ((r"opacit(?:y|ies)", r"opacification"), ("lungs",), True),
    "Pulmonary Atelectasis": ((r"atelecta\w+",), ("lungs",), False),
    "Calcinosis": ((r"calcifi\w+", r"calcinosis"), (), False),
    "Calcified Granuloma": ((r"granulom\w*",), ("lungs",), False),
    "Thoracic Vertebrae": (
        (
            r"degenerative (?:changes? )?(?:of |in )?(?:the )?(?:thoracic )?spine",
            r"spondylosis",
            r"osteophytes?",
            r"degenerative changes",
        ),
        ("bones",),
        False,
    ),
    "Spine": (
        (
            r"degenerative (?:changes? )?(?:of |in )?(?:the )?(?:thoracic )?spine",
            r"scoliosis",
            r"kyphosis",
            r"spondylosis",
            r"degenerative changes",
        ),
        ("bones",),
        False,
    ),
    "Cicatrix": ((r"scar\w*", r"cicatri\w*", r"fibrotic"), ("lungs",), False),
    "Markings": (
        (
            r"(?:interstitial|bronchovascular|lung) markings",
            r"markings",
            r"(?:interstitial|bronchovascular) (?:crowding|prominence|thickening)",
        ),
        ("lungs",),
        False,
    ),
    "Lung": (
        (
            r"hypoinflat\w*",
            r"hyperinflat\w*",
            r"hyperexpan\w*",
            r"low lung volumes?",
            r"lung volumes are low",
            r"hyperdisten\w*",
            r"(?:lung volumes|lungs) (?:are )?(?:abnormal|low|hyperexpanded)",
        ),
        ("lungs",),
        False,
    ),
    "Pneumonia": ((r"pneumonia", r"pneumonitis"), ("lungs",), True),
    "Consolidation": ((r"consolidat\w+",), ("lungs",), True),
    "Airspace Disease": ((r"air-?space (?:disease|opacit\w+)", r"infiltrates?"), ("lungs",), True),
    "Pneumothorax": ((r"pneumothora(?:x|ces)",), ("lungs", "pleura"), True),
    "Pulmonary Edema": ((r"edema", r"vascular congestion"), ("lungs",), True),
    "Nodule": ((r"nodul\w+", r"mass(?:es)?"), ("lungs",), False),
    "Pulmonary Emphysema": ((r"emphysema\w*", r"copd"), ("lungs",), False),
    "Fractures, Bone": ((r"fractures?", r"fractured"), ("bones",), True),
    "Hernia, Hiatal": ((r"hiatal hernia", r"hiatus hernia"), ("mediastinum",), False),
}

#: the findings the checker knows (the generator's vocabulary is checked against these)
KNOWN_FINDINGS: tuple[str, ...] = tuple(_FINDINGS)

#: structure -> words naming it
_STRUCTURES: dict[str, str] = {
    "lungs": r"lungs?|pulmonary|lung fields?|parenchyma\w*",
    "heart": r"heart|cardiac|cardiomediastinal|cardiopericardial",
    "mediastinum": r"mediastin\w*|cardiomediastinal|hila|hilar",
    "pleura": r"pleura\w*|pleural spaces?",
    "costophrenic": r"costophrenic",
    "bones": r"osseous|bony|bones?|skeletal|spine|vertebra\w*|ribs?",
}
_NORMAL_WORD = (
    r"clear|normal|unremarkable|within normal limits|intact|well[- ]expanded|"
    r"well[- ]aerated|sharp"
)
#: whole-study normal statements: (pattern, concerns acute findings only)
_GLOBAL_NORMAL = (
    (
        re.compile(
            r"\b(?:no|without) acute (?:cardiopulmonary|cardio-pulmonary|intrathoracic|thoracic|chest|pulmonary|disease|"
            r"abnormalit\w+|process|findings?|osseous|bony)",
            re.I,
        ),
        True,
    ),
    (re.compile(r"\bno (?:radiographic )?evidence of (?:acute|active)", re.I), True),
    (re.compile(r"\bno active (?:disease|process)", re.I), True),
    (re.compile(r"\b(?:normal|negative) (?:chest|study|exam\w*|radiograph)", re.I), False),
    (re.compile(r"\bno (?:significant )?abnormalit\w+", re.I), False),
)
_NEG_BEFORE = re.compile(
    r"\b(?:no|not|without|negative for|free of|absence of|nor|neither)\b", re.I
)
_NEG_AFTER = re.compile(
    r"^\W*(?:\w+\W+){0,3}?(?:is|are|was|were)?\s*(?:not (?:seen|identified|present|visualized|"
    r"evident|demonstrated|noted|appreciated)|absent)\b",
    re.I,
)
_CLAUSE_BREAK = re.compile(
    r"[;:,]|\bbut\b|\bhowever\b|\bwith\b|\bthere (?:is|are)\b|\bwhich\b|\band\b", re.I
)
_COMPARISON = re.compile(
    r"\b(?:stable|stability|unchanged|again|persistent\w*|persists?|interval\w*|"
    r"redemonstrat\w*|re-demonstrat\w*|previous\w*|new|newly|prior|compared|comparison|"
    r"improv\w+|worsen\w*|no change|since|resolv\w+|increas\w+ in size|decreas\w+ in size|"
    r"remains?|again seen|re-?demonstrated)\b",
    re.I,
)
_ANATOMY = re.compile(
    r"\b(?:" + "|".join(_STRUCTURES.values()) + r"|aort\w+|trache\w+|diaphragm\w*|"
    r"hemidiaphragms?|thora\w+|chest|cardiopulmonary|soft tissues?|apex|apices|bases?|basilar|basal|"
    r"lobes?|costophrenic|hilum|vascular\w*|vasculature|silhouette|contours?|"
    r"lung volumes?)\b",
    re.I,
)
_ANSWERED_BY = {"Pneumonia": {"Pneumonia", "Consolidation", "Airspace Disease", "Opacity"}}
_NOT_APPLICABLE = re.compile(r"\bnot applicable\b", re.I)

_FINDING_RX = {
    k: [re.compile(r"\b(?:" + p + r")\b", re.I) for p in v[0]] for k, v in _FINDINGS.items()
}
_STRUCT_RX = {k: re.compile(r"\b(?:" + p + r")\b", re.I) for k, p in _STRUCTURES.items()}
_NORMAL_RX = re.compile(r"\b(?:" + _NORMAL_WORD + r")\b", re.I)
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Violation:
    """One broken rule in one draft."""

    rule: str
    sentence: str
    detail: str


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` (section headers removed)."""
    text = re.sub(r"\b(?:FINDINGS|IMPRESSION)\s*:", "\n", text or "")
    return [s.strip() for s in _SENT.split(text) if s and s.strip() and re.search(r"\w", s)]


def _negated(sentence: str, start: int, end: int) -> bool:
    before = sentence[:start]
    breaks = list(_CLAUSE_BREAK.finditer(before))
    clause = before[breaks[-1].end() :] if breaks else before
    if _NEG_BEFORE.search(clause):
        return True
    return bool(_NEG_AFTER.search(sentence[end:]))


def mentions(sentence: str) -> dict[str, bool]:
    """Findings named in one sentence -> True if stated (any non-negated mention), False if only denied."""
    out: dict[str, bool] = {}
    for name, rxs in _FINDING_RX.items():
        for rx in rxs:
            for m in rx.finditer(sentence):
                out[name] = out.get(name, False) or not _negated(sentence, m.start(), m.end())
    return out


def finding_key(code: str) -> str | None:
    """The checker's name for a coded finding (``Lung/hypoinflation`` -> ``Lung``), None if unknown."""
    base = code.split("/")[0].strip()
    for name in _FINDINGS:
        if name.lower() == base.lower():
            return name
    return None


def findings_named(text: str) -> set[str]:
    """Findings a free text (an indication) names, negated or not."""
    return {name for name, rxs in _FINDING_RX.items() if any(rx.search(text or "") for rx in rxs)}


def _sections(text: str) -> tuple[str, str]:
    m_f = re.search(r"FINDINGS\s*:", text, re.I)
    m_i = re.search(r"IMPRESSION\s*:", text, re.I)
    if m_i is None:
        return text[m_f.end() if m_f else 0 :], ""
    return text[m_f.end() if m_f and m_f.start() < m_i.start() else 0 : m_i.start()], text[
        m_i.end() :
    ]


def check(
    text: str, positives: Iterable[str], indication: str = "", comparison: str = ""
) -> list[Violation]:
    """Every violation of the five rules in a draft.

    Parameters
    ----------
    text : str
        The draft (``FINDINGS: ... IMPRESSION: ...``; a banner line before FINDINGS is ignored).
    positives : iterable of str
        The positive findings it was conditioned on (coded names; ``normal`` ignored).
    indication, comparison : str
        What the reader typed.
    """
    pos = {k for k in (finding_key(c) for c in positives if c.lower() != "normal") if k}
    findings_text, impression = _sections(text)
    out: list[Violation] = []
    concerned = {s for p in pos for s in _FINDINGS[p][1]}
    acute = any(_FINDINGS[p][2] for p in pos)
    all_sents = sentences(findings_text) + sentences(impression)
    stated_anywhere: dict[str, bool] = {}
    for s in all_sents:
        meta = bool(_NOT_APPLICABLE.search(s))
        named = mentions(s)
        if not meta:
            for k, v in named.items():
                stated_anywhere[k] = stated_anywhere.get(k, False) or v
        # rule 1: normality of a concerned structure, a global normal statement, or a denial
        if not meta:
            for struct in concerned:
                if _STRUCT_RX[struct].search(s) and _NORMAL_RX.search(s):
                    # "clear" etc. must not be the negated form ("not clear") nor qualified ("otherwise")
                    if not re.search(
                        r"\b(?:not|otherwise|except|apart from|aside from)\b", s, re.I
                    ):
                        out.append(Violation("normal-structure", s, f"states the {struct} normal"))
                        break
            for rx, acute_only in _GLOBAL_NORMAL:
                if rx.search(s) and pos and (acute or not acute_only):
                    out.append(Violation("normal-structure", s, "states the study normal"))
                    break
            for k, v in named.items():
                if k in pos and v is False:
                    out.append(Violation("normal-structure", s, f"denies {k}"))
        # rule 3
        if not comparison.strip():
            m = _COMPARISON.search(s)
            if m:
                out.append(
                    Violation("comparison-language", s, f"'{m.group(0)}' without a comparison")
                )
        # rule 4
        if not named and not _ANATOMY.search(s):
            out.append(Violation("no-content", s, "names no anatomy or finding"))
    # rule 2
    imp_stated: dict[str, bool] = {}
    for s in sentences(impression):
        for k, v in mentions(s).items():
            imp_stated[k] = imp_stated.get(k, False) or v
    for p in sorted(pos):
        if not imp_stated.get(p):
            out.append(
                Violation("impression-missing", impression.strip(), f"{p} is not in the IMPRESSION")
            )
    # rule 5 (a pneumonia question is answered by any airspace finding stated or denied)
    for k in sorted(findings_named(indication)):
        answers = _ANSWERED_BY.get(k, {k})
        if not answers & stated_anywhere.keys():
            out.append(
                Violation("indication-unanswered", indication, f"the indication asks about {k}")
            )
    return out
