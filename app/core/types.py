"""Plain data types that cross package boundaries (dicom -> inference -> saliency -> reporting).

They are JSON-friendly dataclasses: ``to_dict``/``from_dict`` give the shapes written to
``results.json`` and stored with a study.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any, Mapping


@dataclass(frozen=True)
class ImageRef:
    """One displayed image: a frame of a DICOM instance."""

    study_uid: str
    series_uid: str
    sop_uid: str
    path: str
    frame: int = 0


@dataclass(frozen=True)
class GeometryTransform:
    """How preprocessing mapped a source image (rows x cols) onto the model input grid.

    Model-input pixel ``(y_in, x_in)`` samples source pixel
    ``(y_in - pad_top) / scale_y + crop_top, (x_in - pad_left) / scale_x + crop_left``.
    ``mode`` is ``stretch``, ``letterbox`` or ``crop``. Saliency maps are mapped back through this.
    """

    source_shape: tuple[int, int]
    input_shape: tuple[int, int]
    mode: str
    scale_y: float
    scale_x: float
    pad_top: float = 0.0
    pad_left: float = 0.0
    crop_top: float = 0.0
    crop_left: float = 0.0


@dataclass
class LabelResult:
    """One label's output."""

    label: str
    probability: float
    threshold: float
    positive: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelResult:
    """One model run on one image, with its provenance."""

    model_id: str
    model_version: str
    sha256: str
    provider: str
    labels: list[LabelResult]
    timings_ms: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    saliency: dict[str, Any] = field(default_factory=dict)  # method, files per label
    #: out-of-distribution record from the same forward pass: method, score, threshold, flagged
    ood: dict[str, Any] = field(default_factory=dict)
    #: "within intended use" or "outside intended use: <reasons>" (app.inference.intended_use)
    reliability: str = ""
    #: made by a demonstration model, not for clinical use (app.inference.manifest.is_demonstration)
    demonstration: bool = False
    #: further keys of the written record (geometry, frame, applicability_overridden ...):
    #: kept so that a document read back writes out unchanged
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        d["labels"] = {
            lr.label: {
                "probability": lr.probability,
                "threshold": lr.threshold,
                "positive": lr.positive,
            }
            for lr in self.labels
        }
        return {**extra, **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelResult":
        labels = [
            LabelResult(
                label=k,
                probability=float(v["probability"]),
                threshold=float(v["threshold"]),
                positive=bool(v["positive"]),
            )
            for k, v in d.get("labels", {}).items()
        ]
        known = {
            "model_id",
            "model_version",
            "sha256",
            "provider",
            "labels",
            "timings_ms",
            "provenance",
            "saliency",
            "ood",
            "reliability",
            "demonstration",
        }
        return cls(
            model_id=d["model_id"],
            model_version=d["model_version"],
            sha256=d["sha256"],
            provider=d["provider"],
            labels=labels,
            timings_ms=dict(d.get("timings_ms", {})),
            provenance=dict(d.get("provenance", {})),
            saliency=dict(d.get("saliency", {})),
            ood=dict(d.get("ood", {})),
            reliability=str(d.get("reliability", "")),
            demonstration=bool(d.get("demonstration", False)),
            extra={k: v for k, v in d.items() if k not in known},
        )


#: the reader recorded on reports exported by unattended batch runs: the PDF and SR say plainly
#: that no physician has signed the draft
BATCH_READER = "Not reviewed (automated batch export)"


@dataclass(frozen=True)
class ReportDraft:
    """The report text and what it was made from; exported once signed off.

    Frozen: edits and the sign-off make new drafts (:func:`dataclasses.replace`,
    :meth:`sign_off`). The constructor enforces the sign-off rules: a sign-off time needs a
    reader name and is an ISO 8601 time; a reader name needs a sign-off time; an unreviewed
    draft (``reviewed=False``) is only ever signed by :data:`BATCH_READER`.
    """

    study_uid: str
    indication: str = ""
    comparison: str = ""
    findings: str = ""
    impression: str = ""
    ai_generated: bool = True  # stays True until the radiologist edits the text
    generator: dict[str, Any] = field(default_factory=dict)  # provenance of the generator
    reader_name: str = ""
    signed_off_at: str = ""  # ISO time; empty until signed off
    reviewed: bool = True  # False: exported unattended, no physician has read it
    #: per AI-written sentence, the AI findings it states (app.reporting.signoff.sentence_evidence)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    #: the reader's decisions on sign-off discrepancies (app.reporting.signoff.acknowledge)
    acknowledgements: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from app.core.errors import SignOffError

        if bool(self.reader_name.strip()) != bool(self.signed_off_at):
            raise SignOffError("A sign-off needs both the reader's name and the time.")
        if self.signed_off_at:
            try:
                _dt.datetime.fromisoformat(self.signed_off_at)
            except ValueError:
                raise SignOffError("The sign-off time is not a valid date and time.") from None
        if not self.reviewed and self.reader_name and self.reader_name != BATCH_READER:
            raise SignOffError("A physician's sign-off cannot be marked as not reviewed.")

    @property
    def signed_off(self) -> bool:
        return bool(self.reader_name and self.signed_off_at)

    @property
    def text(self) -> str:
        """FINDINGS and IMPRESSION as one text (the editor's and ``draft.txt``'s layout)."""
        return f"FINDINGS: {self.findings}\n\nIMPRESSION: {self.impression}"

    def sign_off(self, reader: str, at: "_dt.datetime | str | None" = None) -> "ReportDraft":
        """A new draft signed off by ``reader`` at ``at`` (default: now, UTC).

        ``reader`` :data:`BATCH_READER` records an unattended export (``reviewed=False``).

        Raises
        ------
        SignOffError
            No reader name, or no findings and no impression to sign.
        """
        from app.core.errors import SignOffError

        reader = (reader or "").strip()
        if not reader:
            raise SignOffError("Enter the reader's name to sign off the report.")
        if not (self.findings.strip() or self.impression.strip()):
            raise SignOffError("The report is empty; there is nothing to sign off.")
        when = at or _dt.datetime.now(_dt.timezone.utc)
        stamp = when.isoformat(timespec="seconds") if isinstance(when, _dt.datetime) else str(when)
        return replace(
            self, reader_name=reader, signed_off_at=stamp, reviewed=reader != BATCH_READER
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ReportDraft":
        """A draft from :meth:`to_dict`'s shape (unknown keys ignored).

        Raises
        ------
        ResultsFormatError
            When ``d`` is not a mapping with a ``study_uid``.
        SignOffError
            When the stored sign-off breaks the rules.
        """
        from app.core.errors import ResultsFormatError

        if not isinstance(d, Mapping) or "study_uid" not in d:
            raise ResultsFormatError("The stored report draft is not in the shape Hilum writes.")
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


class Device(str, Enum):
    """Where models run: the user's choice (``auto`` takes CUDA when there is one)."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class SaliencyMethod(str, Enum):
    """How a saliency map is made. ``auto``: the model card's method, else CAM, else RISE."""

    AUTO = "auto"
    CAM = "cam"
    OCCLUSION = "occlusion"
    RISE = "rise"


class Task(str, Enum):
    """What an AI step does."""

    CLASSIFY = "classify"
    EXPLAIN = "explain"
    DRAFT = "draft"


@dataclass(frozen=True)
class StudyMetadata:
    """The DICOM header values that decide model applicability and condition a draft.

    The one reader of these values (:meth:`from_dataset`): the AI panel, the Report panel,
    ``hilum analyze`` and the study session all use it. No patient identifiers.
    """

    modality: str = ""
    body_part: str = ""
    view_position: str = ""
    photometric: str = ""
    patient_age: str = ""
    patient_sex: str = ""
    study_description: str = ""

    @classmethod
    def from_dataset(cls, ds: Any) -> "StudyMetadata":
        """Read from a pydicom ``Dataset`` (or any mapping of DICOM keywords)."""

        def get(key: str) -> str:
            try:
                value = ds.get(key, "") if hasattr(ds, "get") else ""
            except Exception:  # noqa: BLE001 - a malformed element is an absent value here
                value = ""
            return str(value or "").strip()

        return cls(
            modality=get("Modality").upper(),
            body_part=get("BodyPartExamined").upper(),
            view_position=get("ViewPosition").upper(),
            photometric=get("PhotometricInterpretation").upper(),
            patient_age=get("PatientAge"),
            patient_sex=get("PatientSex"),
            study_description=get("StudyDescription"),
        )

    def as_dicom(self) -> dict[str, str]:
        """DICOM keyword -> value, only values present (applicability and conditioning input)."""
        pairs = (
            ("Modality", self.modality),
            ("BodyPartExamined", self.body_part),
            ("ViewPosition", self.view_position),
            ("PhotometricInterpretation", self.photometric),
            ("PatientAge", self.patient_age),
            ("PatientSex", self.patient_sex),
            ("StudyDescription", self.study_description),
        )
        return {k: v for k, v in pairs if v}


@dataclass(frozen=True)
class ImageResult:
    """Every model's result on one image of an analysis run."""

    path: str
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str = ""
    frame: int = 0
    results: tuple[ModelResult, ...] = ()
    not_applicable: tuple[dict[str, Any], ...] = ()
    errors: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> ImageRef:
        return ImageRef(self.study_uid, self.series_uid, self.sop_uid, self.path, self.frame)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            **self.extra,
            "path": self.path,
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "sop_uid": self.sop_uid,
            "modality": self.modality,
            "results": [r.to_dict() for r in self.results],
            "not_applicable": [dict(n) for n in self.not_applicable],
        }
        if self.results or "frame" in self.extra:
            d["frame"] = self.frame
        if self.errors:
            d["errors"] = [dict(e) for e in self.errors]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ImageResult":
        known = {
            "path",
            "study_uid",
            "series_uid",
            "sop_uid",
            "modality",
            "frame",
            "results",
            "not_applicable",
            "errors",
        }
        return cls(
            path=str(d.get("path", "")),
            study_uid=str(d.get("study_uid", "")),
            series_uid=str(d.get("series_uid", "")),
            sop_uid=str(d.get("sop_uid", "")),
            modality=str(d.get("modality", "")),
            frame=int(d.get("frame", 0) or 0),
            results=tuple(ModelResult.from_dict(r) for r in d.get("results", []) or []),
            not_applicable=tuple(dict(n) for n in d.get("not_applicable", []) or []),
            errors=tuple(dict(e) for e in d.get("errors", []) or []),
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass(frozen=True)
class AnalysisRun:
    """One classification run (``results.json``): the images, their results and provenance.

    :meth:`from_json` is the one parser of that document; :meth:`to_json` writes it back.
    """

    images: tuple[ImageResult, ...] = ()
    models: tuple[dict[str, Any], ...] = ()
    skipped_models: tuple[dict[str, Any], ...] = ()
    errors: tuple[dict[str, Any], ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)
    app_version: str = ""
    created: str = ""
    device_requested: str = "auto"
    results_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: "Mapping[str, Any] | str | bytes") -> "AnalysisRun":
        """Parse a ``results.json`` document (text or already-decoded mapping).

        Raises
        ------
        ResultsFormatError
            When the document is not JSON or not in the shape Hilum writes.
        """
        import json

        from app.core.errors import ResultsFormatError

        if isinstance(doc, (str, bytes)):
            try:
                doc = json.loads(doc)
            except ValueError:
                raise ResultsFormatError("The analysis results are not valid JSON.") from None
        if not isinstance(doc, Mapping) or not isinstance(doc.get("images", []), list):
            raise ResultsFormatError("The analysis results are not in the shape Hilum writes.")
        known = {
            "images",
            "models",
            "skipped_models",
            "errors",
            "summary",
            "app_version",
            "created",
            "device_requested",
            "results_path",
            "outputs",
        }
        try:
            return cls(
                images=tuple(ImageResult.from_dict(i) for i in doc.get("images", [])),
                models=tuple(dict(m) for m in doc.get("models", []) or []),
                skipped_models=tuple(dict(m) for m in doc.get("skipped_models", []) or []),
                errors=tuple(dict(e) for e in doc.get("errors", []) or []),
                summary=dict(doc.get("summary", {}) or {}),
                app_version=str(doc.get("app_version", "")),
                created=str(doc.get("created", "")),
                device_requested=str(doc.get("device_requested", "auto")),
                results_path=str(doc.get("results_path", "")),
                extra={k: v for k, v in doc.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ResultsFormatError(
                "The analysis results are not in the shape Hilum writes."
            ) from None

    def to_json(self) -> dict[str, Any]:
        """The ``results.json`` document (a JSON-ready dict)."""
        d: dict[str, Any] = {
            **self.extra,
            "app_version": self.app_version,
            "created": self.created,
            "device_requested": self.device_requested,
            "models": [dict(m) for m in self.models],
            "skipped_models": [dict(m) for m in self.skipped_models],
            "images": [i.to_dict() for i in self.images],
            "errors": [dict(e) for e in self.errors],
            "summary": dict(self.summary),
        }
        if self.results_path:
            d["results_path"] = self.results_path
        return d

    def study_uids(self) -> list[str]:
        """Studies with at least one classified image, in document order."""
        return list(dict.fromkeys(i.study_uid for i in self.images if i.results))

    def images_of(self, study_uid: str = "") -> list[ImageResult]:
        """Images of one study (all when empty)."""
        return [
            i for i in self.images if not study_uid or not i.study_uid or i.study_uid == study_uid
        ]

    def model_results(self, study_uid: str = "") -> list[ModelResult]:
        """Every model result on one study's images (all studies when empty), each naming the
        image it is about in its provenance (``sop_uid``, ``series_uid``, ``frame``: the PDF
        prints one row per image)."""
        out: list[ModelResult] = []
        for image in self.images_of(study_uid):
            # the path too: two files may hold one SOP Instance UID (the same film stored twice)
            where = {
                "sop_uid": image.sop_uid,
                "series_uid": image.series_uid,
                "frame": image.frame,
                "path": image.path,
            }
            for r in image.results:
                extra = {
                    k: v for k, v in where.items() if v not in (None, "") and k not in r.provenance
                }
                out.append(replace(r, provenance={**r.provenance, **extra}) if extra else r)
        return out

    def source_paths(self, study_uid: str = "") -> list[str]:
        """The classified image files of one study, in order, once each."""
        return list(
            dict.fromkeys(i.path for i in self.images_of(study_uid) if i.results and i.path)
        )

    def providers(self) -> list[str]:
        """Execution providers the run used."""
        return sorted({str(m.get("provider", "")) for m in self.models if m.get("provider")})


@dataclass(frozen=True)
class SaliencyOutput:
    """One label's saliency map on one image, in the image's source pixel grid.

    ``map`` is normalised to [0, 1] (NaN where the model never saw the pixel); ``raw`` the raw
    map; ``same_forward_pass`` says CAM came from the classifying pass (no extra model run).
    """

    ref: ImageRef
    model_id: str
    label: str
    method: SaliencyMethod
    map: Any  # numpy.ndarray (rows, cols) float32
    raw: Any  # numpy.ndarray (rows, cols) float32
    same_forward_pass: bool = False
    info: dict[str, Any] = field(default_factory=dict)
