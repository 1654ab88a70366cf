"""Plain data types that cross package boundaries (dicom -> inference -> saliency -> reporting).

They are JSON-friendly dataclasses: ``to_dict``/``from_dict`` give the shapes written to
``results.json`` and stored with a study.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = {lr.label: {"probability": lr.probability, "threshold": lr.threshold,
                                  "positive": lr.positive} for lr in self.labels}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelResult":
        labels = [LabelResult(label=k, **v) for k, v in d.get("labels", {}).items()]
        return cls(model_id=d["model_id"], model_version=d["model_version"], sha256=d["sha256"],
                   provider=d["provider"], labels=labels, timings_ms=d.get("timings_ms", {}),
                   provenance=d.get("provenance", {}), saliency=d.get("saliency", {}),
                   ood=d.get("ood", {}), reliability=d.get("reliability", ""))


@dataclass
class ReportDraft:
    """The report text and what it was made from; exported once signed off."""

    study_uid: str
    indication: str = ""
    comparison: str = ""
    findings: str = ""
    impression: str = ""
    ai_generated: bool = True          # stays True until the radiologist edits the text
    generator: dict[str, Any] = field(default_factory=dict)   # provenance of the generator
    reader_name: str = ""
    signed_off_at: str = ""            # ISO time; empty until signed off
    reviewed: bool = True              # False: exported unattended, no physician has read it
    #: per AI-written sentence, the AI findings it states (app.reporting.signoff.sentence_evidence)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    #: the reader's decisions on sign-off discrepancies (app.reporting.signoff.acknowledge)
    acknowledgements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def signed_off(self) -> bool:
        return bool(self.reader_name and self.signed_off_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
