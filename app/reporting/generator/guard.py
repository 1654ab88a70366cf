"""Run-time findings-consistency guard for generated drafts (a form of constrained decoding).

A small language model does not always say what it was conditioned on. The guard watches the
draft sentence by sentence while it streams and, judged by the rule-based labeller
(:mod:`app.reporting.labeller`):

* drops a sentence that states a finding contradicting the conditioning (a finding the classifier
  found below threshold; any abnormality when the study is conditioned as normal; with
  ``strict``, an abnormality unrelated to every conditioned finding), and a sentence that denies a
  conditioned finding ("No pleural effusion." when an effusion is conditioned), or calls the lungs
  clear / the study free of acute disease when an airspace or acute finding is conditioned;
* drops a sentence repeated verbatim (greedy decoding of a small model can loop);
* before the IMPRESSION starts, adds a plain canonical sentence for each conditioned finding the
  FINDINGS did not state, and the negative sentence of each covered finding the classifier found
  below threshold ("No focal consolidation.").

The model card reports findings consistency both for the raw model output and with the guard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.reporting import labeller
from app.reporting.generator.conditioning import Conditioning

#: canonical sentence stating a coded finding; detailed codes (``Lung/hypoinflation``) first
CANONICAL: dict[str, str] = {
    "Cardiomegaly": "The heart is enlarged.",
    "Pleural Effusion": "There is a pleural effusion.",
    "Opacity": "There is an airspace opacity.",
    "Pulmonary Atelectasis": "There is atelectasis.",
    "Calcinosis": "There are calcifications.",
    "Calcinosis/aorta": "There is calcification of the aorta.",
    "Calcified Granuloma": "There is a calcified granuloma.",
    "Thoracic Vertebrae": "There are degenerative changes of the thoracic spine.",
    "Spine": "There are degenerative changes of the spine.",
    "Cicatrix": "There is scarring in the lungs.",
    "Markings": "There are prominent interstitial markings.",
    "Markings/bronchovascular": "There are prominent bronchovascular markings.",
    "Lung": "Lung volumes are abnormal, with hypoinflation or hyperinflation.",
    "Lung/hypoinflation": "The lung volumes are low.",
    "Lung/hyperdistention": "The lungs are hyperexpanded.",
    "Pneumonia": "Findings are consistent with pneumonia.",
    "Consolidation": "There is focal consolidation.",
    "Airspace Disease": "There is airspace disease.",
    "Pneumothorax": "There is a pneumothorax.",
    "Pulmonary Edema": "There is pulmonary edema.",
    "Nodule": "There is a pulmonary nodule.",
    "Pulmonary Emphysema": "There is emphysema.",
    "Fractures, Bone": "There is a fracture.",
    "Hernia, Hiatal": "There is a hiatal hernia.",
}

NORMAL_IMPRESSION = "No acute cardiopulmonary abnormality."

#: findings that describe overlapping appearances: stating one of a group is not a contradiction
#: of another conditioned member (a "left basilar opacity, likely atelectasis")
RELATED: tuple[frozenset[str], ...] = (
    frozenset({"Spine", "Thoracic Vertebrae"}),
    frozenset({"Calcinosis", "Calcified Granuloma", "Nodule"}),
    frozenset(
        {
            "Opacity",
            "Airspace Disease",
            "Consolidation",
            "Pneumonia",
            "Pulmonary Atelectasis",
            "Cicatrix",
        }
    ),
    frozenset({"Lung", "Pulmonary Emphysema"}),
    frozenset({"Markings", "Pulmonary Edema", "Cicatrix"}),
    frozenset({"Cardiomegaly", "Pulmonary Edema", "Pleural Effusion"}),
)


_PNEUMONIA_LIKE = frozenset({"Pneumonia", "Consolidation", "Airspace Disease"})
#: conditioned findings that make "The lungs are clear." a contradiction ("otherwise clear" is fine)
_PARENCHYMAL = frozenset(
    {
        "Pneumonia",
        "Consolidation",
        "Airspace Disease",
        "Opacity",
        "Pulmonary Atelectasis",
        "Pulmonary Edema",
        "Nodule",
    }
)
#: conditioned findings that make "No acute disease." a contradiction
_ACUTE = frozenset(
    {
        "Pneumonia",
        "Consolidation",
        "Airspace Disease",
        "Pleural Effusion",
        "Pneumothorax",
        "Pulmonary Edema",
    }
)
#: sentences broken by the corpus's "XXXX" redactions (removed in training, leaving gaps such as
#: "Mild . identified." or "There is an under the diaphragm.") and bare list numbers ("1.")
_MALFORMED = re.compile(
    r"X{3,}|\s[.,;:]|^\W*\d+\W*$|\b(?:a|an|the)\s+(?:under|of|in|on|at|with|to|from|the|a|an|is|are|and)\b",
    re.IGNORECASE,
)
_CLEAR_LUNGS = re.compile(
    r"\b(?:lungs? (?:are|is|remain) (?!otherwise)(?:\w+ )?clear|clear lungs?)\b", re.IGNORECASE
)
_NO_ACUTE = re.compile(
    r"\b(?:no acute|without acute|negative (?:chest|study|exam\w*)|normal chest|no active (?:disease|process)|"
    r"no (?:radiographic )?evidence of (?:acute|active))\b",
    re.IGNORECASE,
)


#: comparison language, allowed only when the reader gave a comparison
_COMPARISON = re.compile(
    r"\b(?:stable|stability|unchanged|again|persist\w*|interval\w*|re-?demonstrat\w*|"
    r"previous\w*|new|newly|prior|compared|comparison|improv\w+|worsen\w*|no change|"
    r"since|resolv\w+|remains?|(?:in|de)creas\w+ in size)\b",
    re.IGNORECASE,
)
#: a sentence must name some anatomy or a finding ("Mild." or "No acute disease." say nothing)
_ANATOMY = re.compile(
    r"\b(?:lungs?|pulmonary|parenchym\w*|heart|cardiac|cardiomediastinal|cardiopulmonary|cardiophrenic|mediastin\w*|hil(?:a|ar|um)|"
    r"pleura\w*|costophrenic|osseous|bon(?:e|es|y)|skeletal|spine|spinal|vertebra\w*|ribs?|"
    r"aort\w+|trache\w+|diaphragm\w*|hemidiaphragms?|thora\w+|chest|soft tissues?|apex|apices|"
    r"bases?|basilar|lobes?|vascular\w*|vasculature|silhouette|contours?|lung volumes?|"
    r"airspace)\b",
    re.IGNORECASE,
)


#: structure-normal statements and the conditioned findings they contradict
def _either_order(structure: str, normal: str) -> re.Pattern[str]:
    """``structure ... normal`` or ``normal ... structure`` within one sentence."""
    return re.compile(
        rf"\b(?:{structure})\b[^.]*\b(?:{normal})\b|\b(?:{normal})\b[^.]*\b(?:{structure})\b",
        re.IGNORECASE,
    )


_NORMALISH = r"normal|unremarkable|within normal limits"
#: structure-normal statements and the conditioned findings they contradict
_STRUCTURE_NORMAL: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (
        _either_order(r"heart|cardiac|cardiomediastinal", _NORMALISH + "|stable"),
        frozenset({"Cardiomegaly", "Hernia"}),
    ),
    (
        _either_order(r"mediastin\w*|hila|hilar|hilum", _NORMALISH + "|stable"),
        frozenset({"Hernia"}),
    ),
    (
        _either_order(r"osseous|bony|bones?|skeletal|spine", _NORMALISH + "|intact|clear"),
        frozenset({"Fractures", "Spine", "Thoracic Vertebrae"}),
    ),
    (
        _either_order(
            r"lungs?|pulmonary|lung fields?",
            _NORMALISH + r"|clear|well[- ]expanded|well[- ]aerated",
        ),
        frozenset(
            {
                "Pneumonia",
                "Consolidation",
                "Airspace Disease",
                "Opacity",
                "Pulmonary Atelectasis",
                "Pulmonary Edema",
                "Nodule",
                "Pleural Effusion",
                "Pneumothorax",
                "Lung",
                "Cicatrix",
                "Markings",
                "Calcified Granuloma",
                "Pulmonary Emphysema",
            }
        ),
    ),
    (
        _either_order(r"pleura\w*", _NORMALISH + "|clear"),
        frozenset({"Pleural Effusion", "Pneumothorax"}),
    ),
)
_GLOBAL_NORMAL = re.compile(
    r"\b(?:normal|negative) (?:chest|study|exam\w*|radiograph)|\bno (?:significant )?"
    r"abnormalit\w+|\bno acute (?:disease|process|findings?)\b",
    re.IGNORECASE,
)
_HEDGE_OTHERWISE = re.compile(r"\b(?:otherwise|except|apart from|aside from|not)\b", re.IGNORECASE)


def canonical_sentence(code: str) -> str:
    """A plain sentence stating ``code`` (detailed code first, then its first part)."""
    key = "/".join(p.strip() for p in code.split("/")[:2])
    if key in CANONICAL:
        return CANONICAL[key]
    base = code.split("/")[0].strip()
    if base in CANONICAL:
        return CANONICAL[base]
    return f"{base[:1].upper()}{base[1:]} is noted."


def _base(code: str) -> str:
    return code.split("/")[0].strip()


@dataclass
class ConsistencyGuard:
    """Sentence filter and completion for one draft (see the module docstring)."""

    cond: Conditioning
    strict: bool = True
    findings_text: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    dropped: list[str] = field(default_factory=list)
    inserted: list[str] = field(default_factory=list)
    openings: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.positive = {_base(c) for c in self.cond.codes if c.lower() != "normal"}
        self.allowed = set(self.positive)
        for group in RELATED:
            if group & self.positive:
                self.allowed |= group
        self.denied: set[str] = set()
        for n in self.cond.negatives:
            self.denied |= {n.code, *n.codes}
        self.denied -= self.positive
        # a sentence denying a conditioned finding contradicts it ("No pleural effusion." for an
        # effusion): dropped, so the draft never says both
        self.must_not_deny = set(self.positive)
        if self.positive & _PNEUMONIA_LIKE:
            self.must_not_deny |= _PNEUMONIA_LIKE
        self.no_clear_lungs = bool(self.positive & _PARENCHYMAL)
        self.no_all_clear = bool(self.positive & (_ACUTE | {"Opacity", "Fractures, Bone"}))
        #: comparison language is allowed only when a comparison was given
        self.no_comparison = not self.cond.comparison.strip()
        bases = {p.split(",")[0].strip() for p in self.positive} | self.positive
        self.structure_rules = [rx for rx, concerns in _STRUCTURE_NORMAL if bases & concerns]

    def accept(self, sentence: str, section: str) -> bool:
        """Whether to keep ``sentence`` (of section ``"findings"`` or ``"impression"``)."""
        key = " ".join(sentence.lower().split())
        opening = " ".join(key.split()[:3])
        if (
            key in self.seen
            or _MALFORMED.search(sentence)
            or sentence[:1].islower()
            or (len(key.split()) > 4 and opening in self.openings)
        ):  # a small model's loop
            self.dropped.append(sentence)
            return False
        labels = labeller.label(sentence)
        stated = {k for k, v in labels.items() if v}
        bad = stated & self.denied
        bad |= {k for k, v in labels.items() if v is False} & self.must_not_deny
        if self.cond.is_normal:
            bad |= stated & set(labeller.ABNORMAL_FINDINGS)
        elif self.strict:
            bad |= stated - self.allowed
        if (
            bad
            or (self.no_clear_lungs and _CLEAR_LUNGS.search(sentence))
            or (self.no_all_clear and _NO_ACUTE.search(sentence))
            or self.violates_house_rules(sentence, stated)
        ):
            self.dropped.append(sentence)
            return False
        self.seen.add(key)
        if len(key.split()) > 4:
            self.openings.add(opening)
        if section == "findings":
            self.findings_text.append(sentence)
        return True

    def violates_house_rules(self, sentence: str, stated: set[str]) -> bool:
        """The sentence rules that hold for every draft: comparison language only with a
        comparison, some anatomy or finding named, no normal structure that a conditioned finding
        concerns, no normal study when anything is conditioned."""
        if self.no_comparison and _COMPARISON.search(sentence):
            return True
        if not stated and not labeller.label(sentence) and not _ANATOMY.search(sentence):
            return True
        if self.positive and _GLOBAL_NORMAL.search(sentence):
            return True
        if not _HEDGE_OTHERWISE.search(sentence):
            for rx in self.structure_rules:
                if rx.search(sentence):
                    return True
        return False

    def missing_in_impression(self, impression: str) -> list[str]:
        """Conditioned findings the IMPRESSION text does not state yet (coded names)."""
        out = []
        for code in self.cond.codes:
            if code.lower() == "normal":
                continue
            base = _base(code)
            if labeller.knows(base):
                if not labeller.states(impression, base):
                    out.append(code)
            elif base.lower() not in impression.lower():
                out.append(code)
        return out

    def not_applicable_sentences(self) -> list[str]:
        """The note that an AI result was not used because it is outside its intended use."""
        return [
            f"The AI result for {item} is not applicable to this study (outside its intended use)."
            for item in self.cond.not_applicable
        ]

    def missing_sentences(self) -> list[str]:
        """Sentences to add at the end of FINDINGS so that every conditioned finding is stated."""
        text = " ".join(self.findings_text)
        out: list[str] = []
        for code in self.cond.codes:
            if code.lower() == "normal":
                continue
            base = _base(code)
            if labeller.knows(base):
                if labeller.states(text, base):
                    continue
            elif base.lower() in text.lower():
                continue
            out.append(canonical_sentence(code))
        labels = labeller.label(text)
        for neg in self.cond.negatives:
            if any(labels.get(c) is False for c in neg.codes):
                continue  # already denied in the model's own words
            out.append(neg.sentence)
        out = [s for s in dict.fromkeys(out) if " ".join(s.lower().split()) not in self.seen]
        self.inserted.extend(out)
        for s in out:
            self.seen.add(" ".join(s.lower().split()))
            self.findings_text.append(s)
        return out

    def impression_fallback(self) -> str:
        """IMPRESSION text when the model produced none."""
        if self.cond.is_normal:
            return NORMAL_IMPRESSION
        return " ".join(canonical_sentence(c) for c in self.cond.codes)
