"""What a draft is conditioned on: AI findings, DICOM metadata and what the radiologist typed."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from app.core.types import ModelResult
from app.reporting.generator.prompt import clean_text, view_from_dicom


@dataclass(frozen=True)
class CoveredLabel:
    """How a classifier label maps onto the generator's coded findings."""

    code: str  # the coded finding the generator knows (``Pneumonia``)
    negative_sentence: str  # what the draft says when the label is below threshold
    negative_codes: tuple[str, ...]  # labeller findings whose denial states the negative


#: classifier labels the generator covers (lower-case label -> mapping)
COVERED_LABELS: dict[str, CoveredLabel] = {
    "pneumonia": CoveredLabel(
        "Pneumonia", "No focal consolidation.", ("Pneumonia", "Consolidation", "Airspace Disease")
    ),
    "consolidation": CoveredLabel(
        "Consolidation",
        "No focal consolidation.",
        ("Consolidation", "Pneumonia", "Airspace Disease"),
    ),
    "cardiomegaly": CoveredLabel("Cardiomegaly", "The heart size is normal.", ("Cardiomegaly",)),
    "pleural effusion": CoveredLabel(
        "Pleural Effusion", "No pleural effusion.", ("Pleural Effusion",)
    ),
    "effusion": CoveredLabel("Pleural Effusion", "No pleural effusion.", ("Pleural Effusion",)),
    "pneumothorax": CoveredLabel("Pneumothorax", "No pneumothorax.", ("Pneumothorax",)),
    "atelectasis": CoveredLabel(
        "Pulmonary Atelectasis", "No atelectasis.", ("Pulmonary Atelectasis",)
    ),
    "edema": CoveredLabel("Pulmonary Edema", "No pulmonary edema.", ("Pulmonary Edema",)),
    "nodule": CoveredLabel("Nodule", "No pulmonary nodule.", ("Nodule",)),
    "opacity": CoveredLabel(
        "Opacity", "No focal airspace opacity.", ("Opacity", "Airspace Disease")
    ),
}


#: words of an indication that name a covered finding ("rule out pneumothorax")
INDICATION_TERMS: dict[str, CoveredLabel] = {
    "pneumothora": COVERED_LABELS["pneumothorax"],
    "pneumonia": CoveredLabel(
        "Pneumonia",
        "No focal consolidation to suggest pneumonia.",
        ("Pneumonia", "Consolidation", "Airspace Disease"),
    ),
    "consolidat": COVERED_LABELS["consolidation"],
    "effusion": COVERED_LABELS["pleural effusion"],
    "cardiomegaly": COVERED_LABELS["cardiomegaly"],
    "atelecta": COVERED_LABELS["atelectasis"],
    "edema": COVERED_LABELS["edema"],
    "nodul": COVERED_LABELS["nodule"],
    "opacit": COVERED_LABELS["opacity"],
    "fracture": CoveredLabel(
        "Fractures, Bone", "No acute displaced fracture.", ("Fractures, Bone",)
    ),
    "emphysema": CoveredLabel("Pulmonary Emphysema", "No emphysema.", ("Pulmonary Emphysema",)),
    "copd": CoveredLabel(
        "Pulmonary Emphysema", "No radiographic evidence of emphysema.", ("Pulmonary Emphysema",)
    ),
    "hernia": CoveredLabel("Hernia, Hiatal", "No hiatal hernia.", ("Hernia, Hiatal",)),
}


@dataclass(frozen=True)
class Finding:
    """One positive finding: its code, and the AI probability when it came from a classifier."""

    code: str
    probability: float | None = None
    source: str = "user"  # "user" or the classifier's model id


@dataclass(frozen=True)
class Negative:
    """A covered finding the classifier found below threshold."""

    code: str
    sentence: str
    codes: tuple[str, ...]
    probability: float | None = None
    source: str = ""


@dataclass
class Conditioning:
    """Everything a draft is conditioned on.

    ``positives`` empty means a normal study.
    """

    positives: list[Finding] = field(default_factory=list)
    negatives: list[Negative] = field(default_factory=list)
    modality: str = ""
    body_part: str = ""
    view: str = ""
    age: str = ""
    sex: str = ""
    indication: str = ""
    comparison: str = ""
    notes: str = ""
    #: AI findings not used because their result is outside the model's intended use
    #: ("pneumonia (pneumonia_cnn)"); the draft says the AI result is not applicable
    not_applicable: list[str] = field(default_factory=list)
    #: the reliability notes behind ``not_applicable``
    not_applicable_reasons: list[str] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        """Positive finding codes, or ``["normal"]``."""
        return [f.code for f in self.positives] or ["normal"]

    @property
    def is_normal(self) -> bool:
        return not self.positives

    def patient_phrase(self) -> str:
        """``"67-year-old male."`` from age and sex (as the training indications start)."""
        age = _age_years(self.age)
        sex = {"M": "male", "F": "female"}.get(self.sex.strip().upper()[:1], "")
        if age and sex:
            return f"{age}-year-old {sex}."
        if age:
            return f"{age}-year-old."
        return f"{sex.capitalize()}." if sex else ""

    def model_indication(self) -> str:
        """Indication text for the bundled model: patient phrase + indication + notes."""
        return " ".join(
            x
            for x in (self.patient_phrase(), clean_text(self.indication), clean_text(self.notes))
            if x
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _age_years(age: str) -> str:
    """DICOM AS (``067Y``) or plain years to ``"67"``; other units give ``""``."""
    a = (age or "").strip().upper()
    if a.endswith("Y"):
        a = a[:-1]
    return str(int(a)) if a.isdigit() else ""


def build_conditioning(
    model_results: Iterable[ModelResult] = (),
    metadata: Mapping[str, Any] | None = None,
    indication: str = "",
    comparison: str = "",
    notes: str = "",
    findings: Iterable[str] = (),
) -> Conditioning:
    """Build the conditioning of a draft.

    Parameters
    ----------
    model_results : iterable of ModelResult
        Classifier results: labels above threshold become positive findings with their
        probabilities; covered labels below threshold become stated negatives.
    metadata : mapping, optional
        DICOM metadata: ``Modality``, ``BodyPartExamined``, ``ViewPosition``, ``PatientAge``,
        ``PatientSex`` (keywords as in pydicom; lower-case ``modality``/``view``/... also accepted),
        and ``n_views`` when a study has several projections.
    indication, comparison, notes : str
        What the radiologist typed.
    findings : iterable of str
        Coded findings given directly (``hilum draft --findings``); ``normal`` is ignored here.

    Returns
    -------
    Conditioning

    Long because each conditioning source (results, header values, typed text, reliability) is folded in turn into one record.
    """
    md = {str(k).lower(): v for k, v in (metadata or {}).items()}

    def get(*keys: str) -> str:
        for k in keys:
            v = md.get(k.lower())
            if v not in (None, ""):
                return str(v)
        return ""

    cond = Conditioning(
        modality=get("Modality"),
        body_part=get("BodyPartExamined", "body_part"),
        age=get("PatientAge", "age"),
        sex=get("PatientSex", "sex"),
        indication=clean_text(indication),
        comparison=clean_text(comparison),
        notes=clean_text(notes),
    )
    n_views = int(get("n_views") or 1)
    cond.view = get("view_text") or view_from_dicom(get("ViewPosition", "view"), n_views)
    seen: set[str] = set()
    for f in findings:
        code = clean_text(f)
        if code and code.lower() != "normal" and code.lower() not in seen:
            seen.add(code.lower())
            cond.positives.append(Finding(code))
    for result in model_results:
        if str(getattr(result, "reliability", "") or "").startswith("outside"):
            # a result outside intended use is not a finding: neither stated nor denied
            for lr in result.labels:
                item = f"{lr.label} ({result.model_id})"
                if item not in cond.not_applicable:
                    cond.not_applicable.append(item)
                    cond.not_applicable_reasons.append(result.reliability)
            continue
        for lr in result.labels:
            covered = COVERED_LABELS.get(lr.label.lower())
            code = covered.code if covered else lr.label
            if lr.positive:
                if code.lower() not in seen:
                    seen.add(code.lower())
                    cond.positives.append(Finding(code, float(lr.probability), result.model_id))
            elif covered and all(n.code != covered.code for n in cond.negatives):
                cond.negatives.append(
                    Negative(
                        covered.code,
                        covered.negative_sentence,
                        covered.negative_codes,
                        float(lr.probability),
                        result.model_id,
                    )
                )
    # the indication is answered: a covered finding it names that is not positive is denied
    for key, covered in INDICATION_TERMS.items():
        related = {c.lower() for c in covered.negative_codes} | {covered.code.lower()}
        if (
            re.search(rf"\b{key}", cond.indication, re.IGNORECASE)
            and not related & seen
            and all(n.code != covered.code for n in cond.negatives)
        ):
            cond.negatives.append(
                Negative(
                    covered.code,
                    covered.negative_sentence,
                    covered.negative_codes,
                    None,
                    "indication",
                )
            )
    # a finding both given and denied: what was given (or found) positive wins
    cond.negatives = [n for n in cond.negatives if n.code.lower() not in seen]
    return cond


def results_from_doc(doc: Any) -> list[ModelResult]:
    """Classifier results from the shapes Hilum writes: a ``results.json`` document
    (``{"images": [{"results": [...]}]}``), ``{"results": [...]}``, a list of result dicts, or one."""
    out: list[ModelResult] = []
    if isinstance(doc, ModelResult):
        return [doc]
    if isinstance(doc, list):
        for item in doc:
            out += results_from_doc(item)
        return out
    if not isinstance(doc, Mapping):
        return out
    if "labels" in doc and "model_id" in doc:
        try:
            return [ModelResult.from_dict(dict(doc))]
        except (KeyError, TypeError, ValueError):
            return []
    if isinstance(doc.get("images"), list):  # a results.json document: its one parser
        from app.core.errors import ResultsFormatError
        from app.core.types import AnalysisRun

        try:
            return AnalysisRun.from_json(doc).model_results()
        except ResultsFormatError:
            return []
    if isinstance(doc.get("results"), list):
        out += results_from_doc(doc["results"])
    return out
