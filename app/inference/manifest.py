"""The model manifest (``model.json``): parsing, schema validation, hash and ONNX I/O checks.

The JSON Schema is published at ``models/model.schema.json``. A :class:`Manifest` records the
problems found by :func:`verify_manifest`; a model with any problem is never run
(:meth:`Manifest.require_verified` raises :class:`~app.core.errors.ModelVerificationError`).
"""

from __future__ import annotations

import hashlib
import os
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.errors import ModelVerificationError

log = logging.getLogger(__name__)

MANIFEST_NAME = "model.json"

#: the model cards' words for a demonstration model (panel, PDF, SR and the CLI say them)
DEMONSTRATION_WORDS = "Demonstration model, not for clinical use"

_ONNX_DTYPES = {1: "float32", 10: "float16", 2: "uint8"}  # onnx.TensorProto codes we accept


@dataclass(frozen=True)
class LabelSpec:
    """One output label and its operating threshold."""

    name: str
    threshold: float
    display_name: str = ""


@dataclass(frozen=True)
class InputSpec:
    """The model's image input."""

    name: str
    layout: str  # NCHW or NHWC
    height: int
    width: int
    channels: int
    dtype: str

    @property
    def item_shape(self) -> tuple[int, int, int]:
        """Shape of one image tensor without the batch axis."""
        if self.layout == "NCHW":
            return (self.channels, self.height, self.width)
        return (self.height, self.width, self.channels)


@dataclass(frozen=True)
class Preprocessing:
    """How a source image becomes a model input (see the schema for the meaning of each field)."""

    frame: str | int = "first"
    intensity: dict[str, Any] = field(default_factory=lambda: {"method": "display"})
    monochrome1: str = "invert"
    resize: str = "stretch"
    interpolation: str = "area"
    scale: float = 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)


@dataclass
class Manifest:
    """A parsed ``model.json`` plus where it came from and what verification found.

    Attributes
    ----------
    raw : dict
        The manifest as read (written back verbatim into results when useful).
    folder : Path
        The model folder.
    source : str
        ``bundled``, ``site``, or ``site override`` (a site model that declares
        ``"replaces": <bundled id>`` and runs instead of the bundled one).
    problems : list of str
        Reasons the model failed verification (empty when verified).
    checked : bool
        True once :func:`verify_manifest` ran.
    """

    raw: dict[str, Any]
    folder: Path
    source: str = "bundled"
    problems: list[str] = field(default_factory=list)
    checked: bool = False

    # -- identity -------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self.raw.get("id", self.folder.name))

    @property
    def name(self) -> str:
        return str(self.raw.get("name", self.id))

    @property
    def version(self) -> str:
        return str(self.raw.get("version", "?"))

    @property
    def sha256(self) -> str:
        return str(self.raw.get("sha256", ""))

    @property
    def task(self) -> str:
        return str(self.raw.get("task", ""))

    @property
    def onnx_path(self) -> Path:
        return self.folder / str(self.raw.get("file", "model.onnx"))

    @property
    def card_path(self) -> Path:
        return self.folder / str(self.raw.get("card", "MODEL_CARD.md"))

    @property
    def demonstration(self) -> bool:
        """True for a demonstration model (not for clinical use): see :func:`is_demonstration`."""
        return is_demonstration(self.raw)

    @property
    def verified(self) -> bool:
        """True when verification ran and found nothing wrong."""
        return self.checked and not self.problems

    # -- typed views ----------------------------------------------------------------------------
    @property
    def labels(self) -> list[LabelSpec]:
        return [
            LabelSpec(
                name=str(lab["name"]),
                threshold=float(lab["threshold"]),
                display_name=str(lab.get("display_name", lab["name"])),
            )
            for lab in self.raw.get("labels", [])
        ]

    @property
    def input(self) -> InputSpec:
        i = self.raw["input"]
        return InputSpec(
            name=str(i["name"]),
            layout=str(i["layout"]),
            height=int(i["height"]),
            width=int(i["width"]),
            channels=int(i["channels"]),
            dtype=str(i["dtype"]),
        )

    @property
    def output_name(self) -> str:
        return str(self.raw["output"]["name"])

    @property
    def activation(self) -> str:
        return str(self.raw["output"].get("activation", "none"))

    @property
    def preprocessing(self) -> Preprocessing:
        p = self.raw.get("preprocessing", {})
        channels = int(self.raw.get("input", {}).get("channels", 1))
        mean = tuple(float(v) for v in p.get("mean", [0.0]))
        std = tuple(float(v) for v in p.get("std", [1.0]))
        return Preprocessing(
            frame=p.get("frame", "first"),
            intensity=dict(p.get("intensity", {"method": "display"})),
            monochrome1=str(p.get("monochrome1", "invert")),
            resize=str(p.get("resize", "stretch")),
            interpolation=str(p.get("interpolation", "area")),
            scale=float(p.get("scale", 255.0)),
            mean=mean if len(mean) == channels else mean[:1] * channels,
            std=std if len(std) == channels else std[:1] * channels,
        )

    @property
    def applicability(self) -> dict[str, Any]:
        return dict(self.raw.get("applicability", {}))

    @property
    def allow_fp16(self) -> bool:
        return bool(self.raw.get("allow_fp16", False))

    @property
    def saliency(self) -> dict[str, Any]:
        return dict(self.raw.get("saliency", {}))

    def card_text(self) -> str:
        """The model card (Markdown), or a note that it is missing."""
        try:
            return self.card_path.read_text(encoding="utf-8")
        except OSError:
            return f"# {self.name}\n\n(No model card was installed with this model.)\n"

    def require_verified(self) -> None:
        """Raise :class:`ModelVerificationError` naming every problem unless the model verified."""
        if not self.checked:
            verify_manifest(self)
        if self.problems:
            raise ModelVerificationError(
                f"Model '{self.id}' failed verification and will not be run: "
                + "; ".join(self.problems),
                path=str(self.folder),
            )

    @property
    def site_override(self) -> bool:
        """True for a site model that replaces a bundled one (shown as such everywhere)."""
        return self.source == "site override"

    def summary(self) -> dict[str, Any]:
        """Short JSON-friendly description (for ``hilum models list --json`` and the GUI)."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "source": self.source,
            "folder": str(self.folder),
            "verified": self.verified,
            "problems": list(self.problems),
            "labels": self._label_names(),
        }

    def _label_names(self) -> list[str]:
        try:
            return [lab.name for lab in self.labels]
        except (KeyError, TypeError, ValueError):  # a malformed manifest (reported in problems)
            return []


def is_demonstration(raw: dict[str, Any]) -> bool:
    """True when a manifest describes a demonstration model, not for clinical use.

    Parameters
    ----------
    raw : dict
        The manifest as read.

    Returns
    -------
    bool
        The manifest's explicit ``"demonstration"`` when it states one; otherwise whether its
        ``intended_use`` or ``name`` says "demonstration" or "not for clinical use" (so that a
        site manifest written before the key existed is still labelled as its card says).
    """
    stated = raw.get("demonstration")
    if isinstance(stated, bool):
        return stated
    text = " ".join(str(raw.get(k, "")) for k in ("intended_use", "name")).lower()
    return "not for clinical use" in text or "demonstration" in text


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The published manifest JSON Schema (``models/model.schema.json``)."""
    path = paths.bundled_models_dir() / "model.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(folder: Path, source: str = "bundled") -> Manifest:
    """Read ``folder/model.json`` without verifying it.

    A manifest that cannot be read or parsed gives a :class:`Manifest` whose ``problems`` say so
    (so that ``hilum models verify`` can name it) rather than an exception.
    """
    folder = Path(folder)
    m = Manifest(raw={}, folder=folder, source=source)
    try:
        raw = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except OSError as exc:
        m.problems.append(f"cannot read {MANIFEST_NAME}: {exc.strerror or exc}")
        m.checked = True
        return m
    except json.JSONDecodeError as exc:
        m.problems.append(f"{MANIFEST_NAME} is not valid JSON (line {exc.lineno}: {exc.msg})")
        m.checked = True
        return m
    if not isinstance(raw, dict):
        m.problems.append(f"{MANIFEST_NAME} must hold a JSON object")
        m.checked = True
        return m
    m.raw = raw
    return m


def _schema_problems(raw: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    problems = []
    for err in sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        problems.append(f"manifest {where}: {err.message}")
    return problems


def _semantic_problems(m: Manifest) -> list[str]:
    """Checks the schema cannot express."""
    raw = m.raw
    problems = []
    if raw.get("id") and raw["id"] != m.folder.name:
        problems.append(
            f"manifest id '{raw['id']}' does not match its folder name '{m.folder.name}'"
        )
    task, labels = raw.get("task"), raw.get("labels", [])
    if task == "binary" and len(labels) != 1:
        problems.append("a binary model must have exactly one label")
    if task == "multi-class" and len(labels) < 2:
        problems.append("a multi-class model needs at least two labels")
    names = [lab.get("name") for lab in labels if isinstance(lab, dict)]
    if len(set(names)) != len(names):
        problems.append("label names must be unique")
    pre = raw.get("preprocessing", {})
    channels = raw.get("input", {}).get("channels", 1)
    for key in ("mean", "std"):
        vals = pre.get(key)
        if isinstance(vals, list) and len(vals) not in (1, channels):
            problems.append(f"preprocessing {key} has {len(vals)} values for {channels} channels")
    for lab in labels:
        if (
            isinstance(lab, dict)
            and isinstance(lab.get("threshold"), (int, float))
            and not 0 < lab["threshold"] < 1
        ):
            problems.append(
                f"label '{lab.get('name')}' threshold {lab['threshold']} is outside (0, 1)"
            )
    for key in ("file", "card"):
        value = raw.get(key)
        if isinstance(value, str) and not _inside(m.folder, m.folder / value):
            problems.append(f"manifest {key} '{value}' lies outside the model folder")
    if "replaces" in raw and raw["replaces"] != raw.get("id"):
        problems.append(
            f"manifest replaces '{raw['replaces']}' must equal the model's id "
            f"'{raw.get('id')}' (a site model overrides the bundled model of its own id)"
        )
    inten = pre.get("intensity", {})
    if (
        isinstance(inten, dict)
        and inten.get("method") == "window"
        and not {"center", "width"} <= inten.keys()
    ):
        problems.append("intensity method 'window' needs center and width")
    return problems


def _inside(folder: Path, path: Path) -> bool:
    """True when ``path`` (symlinks resolved) lies inside ``folder``."""
    base = os.path.realpath(folder)
    real = os.path.realpath(path)
    return real.startswith(base.rstrip(os.sep) + os.sep)


def _external_data_problems(m: Manifest) -> list[str]:
    """Every external-data file the ONNX graph loads must lie in the model folder and be
    covered by a matching sha256 in ``external_data`` (the model's whole weights are hashed)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors

    try:
        proto = onnx.load(str(m.onnx_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - reported by _onnx_problems too
        return [f"{m.onnx_path.name} is not a readable ONNX model ({type(exc).__name__})"]
    listed = m.raw.get("external_data", {}) or {}
    locations: list[str] = []
    for tensor in _get_all_tensors(proto):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            loc = ExternalDataInfo(tensor).location
            if loc not in locations:
                locations.append(loc)
    problems = []
    for loc in locations:
        path = m.folder / loc
        if os.path.isabs(loc) or ".." in Path(loc).parts or not _inside(m.folder, path):
            problems.append(
                f"{m.onnx_path.name} loads external data from '{loc}', outside the model folder"
            )
        elif loc not in listed:
            problems.append(
                f"{m.onnx_path.name} loads external data '{loc}' that no sha256 in the "
                "manifest covers (list it under external_data)"
            )
        elif not path.is_file():
            problems.append(f"external data file {loc} is missing")
        elif sha256_file(path) != listed[loc]:
            problems.append(
                f"external data file {loc} does not match its sha256 (file was changed "
                "or corrupted)"
            )
    for loc in listed:
        if loc not in locations:
            problems.append(f"external_data lists '{loc}', which the ONNX graph does not load")
    return problems


def _onnx_problems(m: Manifest) -> list[str]:
    """Compare the ONNX graph's declared inputs/outputs with the manifest."""
    import onnx

    try:
        proto = onnx.load(str(m.onnx_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
        return [f"{m.onnx_path.name} is not a readable ONNX model ({type(exc).__name__})"]
    problems = []
    graph = proto.graph
    init_names = {i.name for i in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in init_names}
    outputs = {o.name: o for o in graph.output}
    spec = m.input
    if spec.name not in inputs:
        problems.append(
            f"ONNX graph has no input '{spec.name}' (it has {', '.join(sorted(inputs)) or 'none'})"
        )
    else:
        t = inputs[spec.name].type.tensor_type
        dtype = _ONNX_DTYPES.get(t.elem_type, f"type {t.elem_type}")
        if dtype != spec.dtype:
            problems.append(f"ONNX input '{spec.name}' is {dtype}, manifest says {spec.dtype}")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        want = (None, *spec.item_shape)
        if len(dims) != 4:
            problems.append(
                f"ONNX input '{spec.name}' has {len(dims)} dimensions, expected 4 ({spec.layout})"
            )
        else:
            for axis, (have, expect) in enumerate(zip(dims, want)):
                if axis > 0 and have is not None and have != expect:
                    problems.append(
                        f"ONNX input '{spec.name}' shape {dims} does not match manifest "
                        f"{spec.layout} {list(want[1:])}"
                    )
                    break
    extra_inputs = [n for n in inputs if n != spec.name]
    if extra_inputs:
        problems.append(f"ONNX graph has extra inputs Hilum cannot feed: {', '.join(extra_inputs)}")
    out_name = m.raw.get("output", {}).get("name")
    if out_name not in outputs:
        problems.append(
            f"ONNX graph has no output '{out_name}' (it has {', '.join(sorted(outputs)) or 'none'})"
        )
    else:
        dims = [
            d.dim_value if d.HasField("dim_value") else None
            for d in outputs[out_name].type.tensor_type.shape.dim
        ]
        n_labels = len(m.raw.get("labels", []))
        if len(dims) != 2 or (dims[1] is not None and dims[1] != n_labels):
            problems.append(
                f"ONNX output '{out_name}' shape {dims} does not match {n_labels} label(s) "
                "(expected [batch, labels])"
            )
    return problems


def verify_manifest(m: Manifest) -> Manifest:
    """Run every check on a manifest and record the problems on it.

    Checks, in order: JSON Schema, semantic rules, the ONNX file exists and matches ``sha256``,
    and the ONNX graph's input/output names, dtype and shapes agree with the manifest.

    Returns
    -------
    Manifest
        The same object, with ``problems`` filled and ``checked`` set.
    """
    if m.checked and m.problems and not m.raw:
        return m  # unreadable manifest: already explained
    problems = _schema_problems(m.raw)
    if not problems:
        problems += _semantic_problems(m)
    onnx_path = m.onnx_path
    if not onnx_path.is_file():
        problems.append(f"model file {onnx_path.name} is missing")
    elif "sha256" in m.raw:
        digest = sha256_file(onnx_path)
        if digest != m.raw["sha256"]:
            problems.append(
                f"{onnx_path.name} does not match its sha256 (file was changed or corrupted: "
                f"expected {str(m.raw['sha256'])[:12]}..., found {digest[:12]}...)"
            )
        elif not problems:
            problems += _external_data_problems(m)
            if not problems:
                problems += _onnx_problems(m)
    if not problems and m.raw.get(
        "ood"
    ):  # honestai: the OOD statistics file is hashed like the model
        from app.inference.ood import ood_file_problems

        problems += ood_file_problems(m)
    m.problems = problems
    m.checked = True
    if problems:
        log.warning("model %s failed verification: %s", m.id, "; ".join(problems))
    return m
