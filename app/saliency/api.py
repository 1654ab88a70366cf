"""High-level saliency: explain one preprocessed image with CAM, occlusion or RISE, and write files.

:class:`Explainer` is made once per loaded model. When the graph has a global-average-pool +
linear head it rewrites the model to output the feature map too, so a single forward pass gives
the scores *and* the CAM of every label (:meth:`Explainer.forward`). Perturbation methods run
through a second, lazily made session whose graph blends the image with keep-masks on the device
(:func:`app.saliency.perturbation.add_mask_input`), falling back to blending in numpy.

Sessions come from a *runner factory* ``factory(model_bytes) -> runner`` where a runner has
``run_raw(batch, extra_outputs=()) -> dict[name, array]`` and ``input_name``/``output_names``
(the inference engine's interface). The default factory, :class:`OrtRunner`, makes a plain
onnxruntime session on the GPU when there is one.

:func:`compute_saliency` and :func:`write_saliency` are what ``hilum analyze --saliency`` uses:
maps come back in the source image's pixel grid, and files are
``<SOPInstanceUID>_<label>.png`` (overlay on the displayed image) and ``.npy`` (raw map).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import onnx

from app.core.errors import HilumError, NotApplicableError
from app.core.paths import open_private, private_dir, write_private
from app.core.progress import NullProgress, Progress
from app.core.types import GeometryTransform
from app.saliency.cam import CamGraph, add_cam_outputs, cam_maps, normalise_map
from app.saliency.mapping import to_source
from app.saliency.perturbation import (
    MASK_INPUT,
    RISE_INPUTS,
    RISE_SUMS_IN,
    RISE_SUMS_OUT,
    MaskedScoreFn,
    add_mask_input,
    add_rise_graph,
    masked_from_predict,
    occlusion,
    rise,
)

log = logging.getLogger(__name__)

METHODS = ("cam", "occlusion", "rise")


class SaliencyError(HilumError):
    """A saliency map could not be computed or written."""


class Runner(Protocol):
    """What the explainer needs from a session (the inference engine offers the same)."""

    def run_raw(
        self, batch: np.ndarray, extra_outputs: Sequence[str] = ()
    ) -> dict[str, np.ndarray]:
        """Run the model's outputs plus ``extra_outputs`` on ``batch``."""


class OrtRunner:
    """A minimal onnxruntime session over in-memory model bytes.

    Parameters
    ----------
    model_bytes : bytes
        Serialised ONNX model.
    device : str
        ``auto`` (CUDA when present), ``cuda`` or ``cpu``.
    """

    def __init__(self, model_bytes: bytes, device: str = "auto") -> None:
        from app.inference.engine import create_session, session_options

        # the one session factory and provider probe (the engine's); no busy-waiting between
        # runs: several sessions (and other programs) share the CPU
        self.session = create_session(model_bytes, device, options=session_options(spinning=False))
        self.provider = self.session.get_providers()[0]
        self.on_gpu = self.provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.input_name = self.inputs[0]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run_raw(
        self,
        batch: np.ndarray,
        extra_outputs: Sequence[str] = (),
        feeds: dict[str, np.ndarray] | None = None,
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the session; returns every requested output by name."""
        names = list(outputs) if outputs is not None else list(self.output_names)
        names += [n for n in extra_outputs if n not in names]
        inputs = {self.input_name: batch}
        if feeds:
            inputs.update(feeds)
        if self.on_gpu:  # as the engine does: inputs from host memory, outputs bound on the device
            io = self.session.io_binding()
            for name, arr in inputs.items():
                io.bind_cpu_input(name, np.ascontiguousarray(arr))
            for name in names:
                io.bind_output(name, "cuda")
            self.session.run_with_iobinding(io)
            return dict(zip(names, io.copy_outputs_to_cpu()))
        return dict(zip(names, self.session.run(names, inputs)))


class DeviceRiseAccumulator:
    """RISE sums kept on the session's device (see :func:`~app.saliency.perturbation.add_rise_graph`).

    The image and the running sums are bound as device tensors (``OrtValue``) and fed back from
    one batch to the next, so per batch only the mask factors go up and nothing comes back until
    :meth:`result`.
    """

    def __init__(self, runner: OrtRunner, x: np.ndarray, n_outputs: int) -> None:
        import onnxruntime as ort

        self.runner = runner
        self.device = "cuda" if runner.on_gpu else "cpu"
        self.dtype = x.dtype
        self._ort = ort
        self._x_host = np.ascontiguousarray(x)  # an OrtValue on the CPU may share this memory
        self.x = ort.OrtValue.ortvalue_from_numpy(self._x_host, self.device, 0)
        hw = int(x.shape[2] * x.shape[3])
        self._zeros = [
            np.zeros((n_outputs, hw), x.dtype),
            np.zeros(hw, x.dtype),
            np.zeros(n_outputs, x.dtype),
        ]
        self.sums: list[Any] = [
            ort.OrtValue.ortvalue_from_numpy(z, self.device, 0) for z in self._zeros
        ]

    def add(self, ry: np.ndarray, bits: np.ndarray, rxt: np.ndarray) -> None:
        """Score one batch of masks on the device and update the device-side sums."""
        sess = self.runner.session
        io = sess.io_binding()
        io.bind_ortvalue_input(self.runner.input_name, self.x)
        for name, arr in zip(RISE_INPUTS, (ry, bits, rxt)):
            io.bind_cpu_input(name, np.ascontiguousarray(arr, dtype=self.dtype))
        for name, value in zip(RISE_SUMS_IN, self.sums):
            io.bind_ortvalue_input(name, value)
        for name in RISE_SUMS_OUT:
            io.bind_output(name, self.device)
        sess.run_with_iobinding(io)
        self.sums = list(io.get_outputs())

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sums, copied to the host once."""
        out = [np.asarray(v.numpy(), dtype=np.float64) for v in self.sums]
        return out[0], out[1], out[2]


@dataclass
class SaliencyMap:
    """One label's saliency for one image.

    Attributes
    ----------
    label : str
        Label name.
    method : str
        ``cam``, ``occlusion`` or ``rise``.
    map : numpy.ndarray
        Normalised map in [0, 1] (ReLU then divide by the maximum), source pixel grid; NaN
        where the model never saw the pixel (cropped away by preprocessing).
    raw : numpy.ndarray
        The raw map in the source pixel grid: CAM logit density (its mean over the model grid
        plus the bias is the logit), occlusion score drop, or RISE score gain; 0 where the
        model never saw the pixel.
    model_raw : numpy.ndarray
        The raw map in its native grid (feature map for CAM, model input for the others).
    """

    label: str
    method: str
    map: np.ndarray
    raw: np.ndarray
    model_raw: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _activate(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "sigmoid":
        return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    if activation == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return x.astype(np.float32, copy=False)


class Explainer:
    """Saliency for one ONNX classifier.

    Parameters
    ----------
    model : bytes, str, Path or onnx.ModelProto
        The classifier.
    labels : sequence of str
        Label names, in output order.
    output_name : str, optional
        The scores output (first graph output when omitted).
    activation : str
        ``none``, ``sigmoid`` or ``softmax``: applied to ``output_name`` to get the scores that
        occlusion and RISE perturb (CAM always explains the logit).
    target : str, optional
        Feature tensor for CAM (``saliency.target_tensor`` in the manifest).
    runner_factory : callable, optional
        ``factory(model_bytes) -> runner``; :class:`OrtRunner` on ``device`` by default.
    device : str
        Device for the default runner.
    layout : str
        ``NCHW`` or ``NHWC`` (shape of the masks for perturbation methods).
    baseline : float
        Value hidden pixels take in occlusion and RISE, in model-input units.
    """

    def __init__(
        self,
        model: bytes | str | Path | onnx.ModelProto,
        labels: Sequence[str],
        output_name: str | None = None,
        activation: str = "none",
        target: str | None = None,
        runner_factory: Callable[[bytes], Any] | None = None,
        device: str = "auto",
        layout: str = "NCHW",
        baseline: float | Sequence[float] | np.ndarray = 0.0,
    ) -> None:
        if isinstance(model, onnx.ModelProto):
            self._bytes = model.SerializeToString()
        elif isinstance(model, (bytes, bytearray)):
            self._bytes = bytes(model)
        else:
            self._bytes = Path(model).read_bytes()
        self.labels = list(labels)
        self.activation = activation
        self.layout = layout
        base = np.asarray(baseline, dtype=np.float32).reshape(-1)
        self.baseline: float | np.ndarray = float(base[0]) if base.size == 1 else base
        self.device = device
        self._factory = runner_factory or (lambda b: OrtRunner(b, device=device))
        self.cam: CamGraph | None
        try:
            self.cam = add_cam_outputs(self._bytes, target)
        except NotApplicableError as exc:
            log.info("CAM not available for this model: %s", exc)
            self.cam = None
        #: The session the scores come from; for CAM models it also outputs the feature map,
        #: so classification and CAM share one forward pass.
        self.runner = self._factory(self.cam.model_bytes if self.cam else self._bytes)
        outputs = list(getattr(self.runner, "output_names", []) or [])
        self.output_name = (
            output_name
            or getattr(self.runner, "output_name", None)
            or (self.cam.output_names[0] if self.cam else outputs[0])
        )
        if self.cam is not None and self.cam.n_labels != len(self.labels):
            log.warning(
                "CAM head has %d outputs but %d labels were given",
                self.cam.n_labels,
                len(self.labels),
            )
        self._masked_runner: Any = None
        self._masked_failed = False
        self._rise_runner: Any = None
        self._rise_failed = False
        self._lock = threading.Lock()  # the lazily made sessions; explainers are shared by threads

    @classmethod
    def from_manifest(
        cls, manifest: Any, device: str = "auto", fp16: bool | None = None
    ) -> "Explainer":
        """An explainer whose session is an inference :class:`~app.inference.engine.Engine`.

        The verified ONNX file is read (its sha256 checked against the manifest), rewritten for
        CAM when it has a pooled linear head (``saliency.target_tensor`` in the manifest names the
        feature tensor if automatic detection is not wanted), and handed to the engine as
        ``model_bytes``; :attr:`engine` then classifies *and* yields CAM in one forward pass.
        Perturbation methods use black (0 before mean/std) as the hidden value.

        Raises
        ------
        ModelVerificationError
            When the model failed verification or its file changed since.
        """
        import hashlib

        from app.core.errors import ModelVerificationError
        from app.inference.engine import Engine

        manifest.require_verified()
        data = manifest.onnx_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest.sha256:
            raise ModelVerificationError(
                f"Model '{manifest.id}' changed on disk after verification (sha256 mismatch); it will not be run.",
                path=str(manifest.onnx_path),
            )
        pre = manifest.preprocessing
        black: np.ndarray = (
            -np.asarray(pre.mean, dtype=np.float32) / np.asarray(pre.std, dtype=np.float32)
        ).astype(np.float32)

        def factory(model_bytes: bytes) -> Any:
            rewritten = model_bytes != data
            return Engine(
                manifest, device=device, model_bytes=model_bytes if rewritten else None, fp16=fp16
            )

        return cls(
            data,
            [lab.name for lab in manifest.labels],
            output_name=manifest.output_name,
            activation=manifest.activation,
            target=manifest.saliency.get("target_tensor"),
            runner_factory=factory,
            device=device,
            layout=manifest.input.layout,
            baseline=black,
        )

    @property
    def engine(self) -> Any:
        """The session object (an :class:`~app.inference.engine.Engine` from :meth:`from_manifest`)."""
        return self.runner

    @property
    def extra_outputs(self) -> list[str]:
        """Outputs to request with ``run_raw`` so that the same forward pass also yields CAM."""
        return [self.cam.cam_name] if self.cam is not None else []

    @property
    def supports_cam(self) -> bool:
        """True when the graph has a global-average-pool + linear head."""
        return self.cam is not None

    def label_index(self, label: str | int) -> int:
        """Index of a label given by name or index."""
        if isinstance(label, int):
            return label
        try:
            return self.labels.index(label)
        except ValueError:
            raise SaliencyError(f"The model has no label '{label}'.") from None

    # -- CAM -----------------------------------------------------------------------------------
    def forward(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """One forward pass: all model outputs, and raw CAMs (N, n_labels, h, w) when available."""
        if self.cam is None:
            return self.runner.run_raw(batch), None
        out = self.runner.run_raw(batch, extra_outputs=[self.cam.cam_name])
        return out, np.asarray(out.pop(self.cam.cam_name), dtype=np.float32)

    # -- perturbation ----------------------------------------------------------------------------
    def scores(self, batch: np.ndarray) -> np.ndarray:
        """Scores (activation applied) for a batch of inputs."""
        out = self.runner.run_raw(batch)
        return _activate(np.asarray(out[self.output_name]).reshape(len(batch), -1), self.activation)

    def masked_score(self, tensor: np.ndarray) -> MaskedScoreFn:
        """A masked score function for ``tensor`` (device blending when the graph allows it)."""
        x = np.asarray(tensor)
        if x.ndim == 3:
            x = x[None]
        to_layout = (lambda m: m.transpose(0, 2, 3, 1)) if self.layout == "NHWC" else (lambda m: m)
        floating = np.issubdtype(x.dtype, np.floating)
        with self._lock:
            if (
                not self._masked_failed
                and self._masked_runner is None
                and self.layout == "NCHW"
                and floating
            ):
                self._make_masked_runner(x)
        if self._masked_runner is not None and floating:
            return lambda masks: self._masked_run(x, masks.astype(x.dtype, copy=False))
        base = np.asarray(self.baseline, dtype=np.float32)
        if base.size > 1:
            base = base.reshape((1, 1, 1, -1) if self.layout == "NHWC" else (1, -1, 1, 1))
        dtype = x.dtype
        predict = self.scores if floating else (lambda b: self.scores(np.rint(b).astype(dtype)))
        blend = masked_from_predict(predict, x.astype(np.float32), base)
        return lambda masks: blend(to_layout(masks))

    def _make_masked_runner(self, x: np.ndarray) -> None:
        try:
            # Its own small session: the blended graph differs from the engine's graph.
            self._masked_runner = OrtRunner(
                add_mask_input(self._bytes, baseline=self.baseline), device=self._masked_device()
            )
            self._masked_run(x, np.ones((2, 1) + x.shape[2:], dtype=x.dtype))
        except Exception as exc:  # noqa: BLE001 - a graph that cannot broadcast its batch: blend in numpy
            log.info("device-side masking unavailable (%s); blending in numpy", type(exc).__name__)
            self._masked_runner, self._masked_failed = None, True

    def rise_accumulator(self, tensor: np.ndarray) -> "DeviceRiseAccumulator | None":
        """A device-side RISE accumulator for ``tensor`` (None when the graph cannot do it)."""
        x = np.asarray(tensor)
        if x.ndim == 3:
            x = x[None]
        if self._rise_failed or self.layout != "NCHW" or not np.issubdtype(x.dtype, np.floating):
            return None
        with self._lock:
            if self._rise_runner is None and not self._rise_failed:
                try:
                    runner = OrtRunner(
                        add_rise_graph(
                            self._bytes, self.output_name, self.activation, baseline=self.baseline
                        ),
                        device=self._masked_device(),
                    )
                    probe = DeviceRiseAccumulator(runner, x, self._n_outputs())
                    h, w = x.shape[2:4]
                    probe.add(
                        np.ones((2, h, 2), x.dtype),
                        np.ones((2, 2, 2), x.dtype),
                        np.ones((2, 2, w), x.dtype),
                    )
                    probe.result()
                    self._rise_runner = runner
                except Exception as exc:  # noqa: BLE001 - a graph that cannot broadcast its batch: host-side RISE
                    log.info(
                        "device-side RISE unavailable (%s); expanding masks on the host",
                        type(exc).__name__,
                    )
                    self._rise_runner, self._rise_failed = None, True
        if self._rise_runner is None:
            return None
        return DeviceRiseAccumulator(self._rise_runner, x, self._n_outputs())

    def _n_outputs(self) -> int:
        return self.cam.n_labels if self.cam is not None else len(self.labels)

    def _masked_device(self) -> str:
        provider = str(getattr(self.runner, "provider", ""))
        if provider:
            return "cuda" if "CUDA" in provider or "Tensorrt" in provider else "cpu"
        return self.device

    def _masked_run(self, x: np.ndarray, masks: np.ndarray) -> np.ndarray:
        out = self._masked_runner.run_raw(x, feeds={MASK_INPUT: masks}, outputs=[self.output_name])
        return _activate(np.asarray(out[self.output_name]).reshape(len(masks), -1), self.activation)

    # -- one call --------------------------------------------------------------------------------
    def explain(
        self,
        tensor: np.ndarray,
        transform: GeometryTransform | None,
        labels: Sequence[str | int] | None = None,
        method: str = "cam",
        progress: Progress | None = None,
        **params: Any,
    ) -> dict[str, SaliencyMap]:
        """Saliency maps of one preprocessed image, in the source pixel grid.

        Parameters
        ----------
        tensor : numpy.ndarray
            One model input, (C, H, W) or (1, C, H, W) (NHWC models: (H, W, C)).
        transform : GeometryTransform or None
            The preprocessing geometry; ``None`` keeps maps in the model-input grid.
        labels : sequence of str or int, optional
            Labels to explain; all when omitted.
        method : str
            ``cam``, ``occlusion`` or ``rise``.
        progress : Progress, optional
            Progress and cancel for the perturbation methods.
        **params
            Passed to :func:`~app.saliency.perturbation.occlusion` or
            :func:`~app.saliency.perturbation.rise` (``n_masks``, ``batch_size``, ``max_passes``,
            ``seed``, ``window``, ``stride`` ...).

        Raises
        ------
        NotApplicableError
            ``cam`` on a model without a pooled linear head.
        """
        progress = progress or NullProgress()
        if method not in METHODS:
            raise SaliencyError(
                f"Unknown saliency method '{method}'; choose one of {', '.join(METHODS)}."
            )
        x = np.asarray(tensor)
        if x.ndim == 3:
            x = x[None]
        idx = [
            self.label_index(lab)
            for lab in (labels if labels is not None else range(len(self.labels)))
        ]
        hw = tuple(x.shape[1:3]) if self.layout == "NHWC" else tuple(x.shape[2:4])
        info: dict[str, Any] = {"method": method}
        if method == "cam":
            if self.cam is None:
                raise NotApplicableError(
                    "This model has no global-average-pool + linear head, so exact CAM"
                    " is not available; use occlusion or RISE saliency instead."
                )
            out, cams = self.forward(x)
            assert cams is not None
            raw = cams[0, idx]
            info["feature_tensor"] = self.cam.feature_name
        else:
            if method == "rise" and (acc := self.rise_accumulator(x)) is not None:
                raw = rise(
                    None,
                    (int(hw[0]), int(hw[1])),
                    idx,
                    progress=progress,
                    accumulator=acc,
                    **params,
                )
            else:
                fn = occlusion if method == "occlusion" else rise
                raw = fn(
                    self.masked_score(x), (int(hw[0]), int(hw[1])), idx, progress=progress, **params
                )
            info.update({k: v for k, v in params.items() if isinstance(v, (int, float, str))})
        return self._package(raw, idx, hw, transform, method, info)

    def explain_outputs(
        self,
        outputs: dict[str, np.ndarray],
        transform: GeometryTransform | None,
        labels: Sequence[str | int] | None = None,
    ) -> dict[str, SaliencyMap]:
        """CAM from outputs of a forward pass that already fetched :attr:`extra_outputs`.

        Parameters
        ----------
        outputs : dict
            Graph outputs of ONE image (name -> array, with or without the batch axis), as
            returned by ``run_raw(batch, extra_outputs=explainer.extra_outputs)``.
        transform : GeometryTransform or None
            Preprocessing geometry of that image.
        labels : sequence of str or int, optional
            Labels to explain; all when omitted.
        """
        if self.cam is None or not ({self.cam.cam_name, self.cam.feature_name} & set(outputs)):
            raise NotApplicableError(
                "These outputs hold no CAM; run the explainer's engine "
                "with extra_outputs=explainer.extra_outputs."
            )
        idx = [
            self.label_index(lab)
            for lab in (labels if labels is not None else range(len(self.labels)))
        ]
        if self.cam.cam_name in outputs:
            cams = np.asarray(outputs[self.cam.cam_name], dtype=np.float32)
            raw = (cams[0] if cams.ndim == 4 else cams)[idx]
        else:
            feat = np.asarray(outputs[self.cam.feature_name])
            raw = cam_maps(feat[0] if feat.ndim == 4 else feat, self.cam.weights, idx)
        hw = self._input_hw()
        return self._package(
            raw,
            idx,
            hw,
            transform,
            "cam",
            {"method": "cam", "feature_tensor": self.cam.feature_name},
        )

    def maps_from_raw(
        self,
        raw: np.ndarray,
        labels: Sequence[str],
        transform: GeometryTransform | None,
        method: str,
        info: dict[str, Any] | None = None,
    ) -> dict[str, SaliencyMap]:
        """Source-grid maps from raw maps kept in the model grid (``SaliencyMap.model_raw``).

        Lets a caller keep only the small model-grid maps of a run and map them back on demand,
        without running the model again.
        """
        idx = [self.label_index(lab) for lab in labels]
        arr = (
            np.stack([np.asarray(r, dtype=np.float32) for r in raw])
            if len(raw)
            else np.zeros((0, 1, 1))
        )
        hw = self._input_hw() if transform is None else transform.input_shape
        return self._package(arr, idx, hw, transform, method, dict(info or {"method": method}))

    def _input_hw(self) -> tuple[int, int]:
        spec = getattr(getattr(self.runner, "manifest", None), "input", None)
        if spec is not None:
            return int(spec.height), int(spec.width)
        raise SaliencyError(
            "The model input size is unknown; pass the tensor to explain() instead."
        )

    def _package(
        self,
        raw: np.ndarray,
        idx: list[int],
        hw: tuple[int, ...],
        transform: GeometryTransform | None,
        method: str,
        info: dict[str, Any],
    ) -> dict[str, SaliencyMap]:
        norm = normalise_map(raw)
        result = {}
        for k, i in enumerate(idx):
            name = self.labels[i] if i < len(self.labels) else str(i)
            if transform is not None:
                # Pixels the model never saw (cropped away) are NaN in the map: drawn transparent.
                # The shown map is resampled smoothly (bicubic on the coarse grid first): bilinear
                # alone leaves kinks at every cell border, i.e. notches in the threshold contour.
                src_raw = to_source(raw[k], transform)
                src_map = to_source(
                    smooth_upsample(norm[k], max(transform.source_shape)), transform, fill=np.nan
                )
            else:
                size = (int(hw[1]), int(hw[0]))
                import cv2

                src_raw = cv2.resize(raw[k], size, interpolation=cv2.INTER_LINEAR)
                src_map = cv2.resize(norm[k], size, interpolation=cv2.INTER_LINEAR)
            result[name] = SaliencyMap(
                label=name,
                method=method,
                map=np.clip(src_map, 0.0, 1.0),
                raw=src_raw,
                model_raw=raw[k],
                info=dict(info),
            )
        return result


def smooth_upsample(m: np.ndarray, side: int, max_side: int = 2048) -> np.ndarray:
    """A coarse map (h, w) resampled bicubically onto a grid about ``side`` pixels across (the
    same extent, pixel-edge convention; at most ``max_side``):
    C1-smooth at the display's resolution, so a threshold contour is a smooth curve, not the
    blocks and notches of a nearest or bilinear upsampling of the coarse grid."""
    import cv2

    m = np.asarray(m, dtype=np.float32)
    h, w = m.shape
    f = max(1, min(int(side), max_side) // max(h, w, 1))
    if f == 1 or min(h, w) < 2:
        return m
    # not clipped here (a clip would put kinks back); the caller clips the map to [0, 1]
    return cv2.resize(m, (w * f, h * f), interpolation=cv2.INTER_CUBIC)


def compute_saliency(
    explainer: Any,
    tensor: np.ndarray,
    transform: GeometryTransform | None,
    labels: Sequence[str | int] | None = None,
    method: str = "cam",
    progress: Progress | None = None,
    **params: Any,
) -> dict[str, SaliencyMap]:
    """Saliency maps for one image in the source pixel grid (see :meth:`Explainer.explain`).

    Parameters
    ----------
    explainer : Explainer or Engine
        An :class:`Explainer`, or an inference engine (its model's cached explainer is used).
    tensor, transform, labels, method, progress, **params
        As in :meth:`Explainer.explain`.

    Returns
    -------
    dict
        Label name -> :class:`SaliencyMap` (``.map`` normalised, ``.raw`` raw, both source grid).
    """
    if not isinstance(explainer, Explainer):
        manifest = getattr(explainer, "manifest", None)
        if manifest is None:
            raise SaliencyError(
                "Saliency needs an Explainer or an inference engine with a manifest."
            )
        with _explainers_lock:
            found = _by_engine.get(id(explainer))
        explainer = found or get_explainer(manifest, device=getattr(explainer, "device", "auto"))
    return explainer.explain(tensor, transform, labels, method, progress, **params)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A file-name-safe version of a UID or label (other characters become ``_``)."""
    return _SAFE.sub("_", text).strip("_") or "unnamed"


def write_saliency(
    out_dir: str | Path,
    sop_uid: str,
    display_uint8: np.ndarray,
    maps: dict[str, SaliencyMap],
    colormap: str = "inferno",
    opacity: float = 0.5,
    threshold: float = 0.0,
    contour: bool = False,
) -> list[Path]:
    """Write ``<SOPInstanceUID>_<label>.png`` (overlay) and ``.npy`` (raw map) per label.

    Parameters
    ----------
    out_dir : str or Path
        Folder (created if needed), e.g. ``DIR/saliency``.
    sop_uid : str
        The instance's SOPInstanceUID.
    display_uint8 : numpy.ndarray
        The image as displayed, in source resolution (grey or RGB uint8).
    maps : dict
        From :func:`compute_saliency` (source grid).
    colormap, opacity, threshold, contour
        Rendering options (see :func:`app.saliency.overlay.render_overlay`).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    SaliencyError
        When a file cannot be written.
    """
    import cv2

    from app.saliency.overlay import render_overlay

    out = Path(out_dir)
    files: list[Path] = []
    try:
        private_dir(out)  # overlays show the patient's image: private (0700/0600)
        for label, sm in maps.items():
            stem = f"{safe_name(sop_uid)}_{safe_name(label)}"
            rgb = render_overlay(display_uint8, sm.map, colormap, opacity, threshold, contour)
            ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if not ok:
                raise SaliencyError(f"Could not encode the saliency overlay for '{label}'.")
            png_path = out / f"{stem}.png"
            write_private(png_path, png.tobytes())
            npy_path = out / f"{stem}.npy"
            with open_private(npy_path, "wb") as fh:
                np.save(fh, sm.raw.astype(np.float32))
            files += [png_path, npy_path]
    except OSError as exc:
        raise SaliencyError(
            f"Could not write saliency files to {out}: {exc.strerror or exc}", path=str(out)
        ) from exc
    return files


# --- shared explainers and the ``hilum analyze --saliency`` hook ---------------------------------
_explainers: dict[tuple[Any, ...], Explainer] = {}
_by_engine: dict[int, Explainer] = {}
_explainers_lock = threading.Lock()


def get_explainer(manifest: Any, device: str = "auto", fp16: bool | None = None) -> Explainer:
    """The cached :class:`Explainer` of a model (one rewritten session per model and device)."""
    key = (manifest.id, str(manifest.folder), manifest.sha256, device, fp16)
    with _explainers_lock:
        ex = _explainers.get(key)
        if ex is None:
            ex = Explainer.from_manifest(manifest, device=device, fp16=fp16)
            _explainers[key] = ex
            _by_engine[id(ex.runner)] = ex
        return ex


def explainer_of(engine: Any) -> Explainer | None:
    """The cached explainer whose session ``engine`` is (None for a plain engine)."""
    with _explainers_lock:
        return _by_engine.get(id(engine))


def engine_factory(
    manifest: Any, device: str = "auto", fp16: bool | None = None
) -> tuple[Any, list[str]]:
    """``engine_factory`` for :func:`app.inference.analyze.analyze_paths`: (engine, extra outputs).

    The engine runs the CAM-rewritten graph, so the classification pass also returns the feature
    map and :func:`analyze_hook` computes CAM from that same pass.
    """
    ex = get_explainer(manifest, device=device, fp16=fp16)
    return ex.engine, ex.extra_outputs


def clear_explainers() -> None:
    """Drop every cached explainer (after models were reinstalled)."""
    with _explainers_lock:
        _explainers.clear()
        _by_engine.clear()


def choose_method(requested: str, explainer: Explainer, manifest: Any = None) -> str:
    """Resolve ``auto``: the manifest's ``saliency.method``, else CAM when the graph allows, else RISE."""
    if requested != "auto":
        return requested
    wanted = str((manifest.saliency if manifest is not None else {}).get("method", "") or "")
    if wanted in METHODS and (wanted != "cam" or explainer.supports_cam):
        return wanted
    return "cam" if explainer.supports_cam else "rise"


def analyze_hook(
    method: str = "cam",
    labels: Sequence[str] | None = None,
    colormap: str = "inferno",
    opacity: float = 0.5,
    threshold: float = 0.1,
    contour: bool = False,
    progress: Progress | None = None,
    *,
    write: bool = True,
    on_maps: Callable[[Any, Explainer, dict[str, SaliencyMap], dict[str, Any]], None] | None = None,
    **params: Any,
) -> Callable[[Any], None]:
    """A hook for :func:`app.inference.analyze.analyze_paths` that writes saliency files.

    For each image and model it writes ``<out_dir>/saliency/<SOPInstanceUID>_<label>.png`` and
    ``.npy`` (source resolution) and records the method and files in ``result.saliency``. When
    the engine already fetched the CAM feature map (``ctx.raw`` holds it, see
    :attr:`Explainer.extra_outputs`), CAM comes from that same forward pass; otherwise the
    explainer runs its own pass. Failures are recorded per image, never raised (except cancel).

    Parameters
    ----------
    method : str
        ``cam``, ``occlusion``, ``rise`` or ``auto``.
    labels : sequence of str, optional
        Labels to map (all when omitted).
    colormap, opacity, threshold, contour
        Overlay rendering of the PNG files.
    progress : Progress, optional
        Cancel for the perturbation methods.
    write : bool
        Write the PNG/NPY files (``False``: only ``on_maps`` receives the maps).
    on_maps : callable, optional
        ``on_maps(ctx, explainer, maps, info)`` for each image and model once its maps exist
        (the study session keeps them in memory this way).
    **params
        Passed to occlusion / RISE.

    Long because the hook closes over the explainer state it shares across the images of a run.
    """
    from app.core.errors import Cancelled

    def hook(ctx: Any) -> None:
        info: dict[str, Any] = {"method": method}
        try:
            engine = ctx.engine
            with _explainers_lock:
                ex = _by_engine.get(id(engine))
            if ex is None:
                ex = get_explainer(ctx.manifest, device=getattr(engine, "device", "auto"))
            chosen = choose_method(method, ex, ctx.manifest)
            info["method"] = chosen
            wanted = [lab for lab in (labels or ex.labels) if lab in ex.labels]
            if chosen == "cam" and ex.cam is not None and ex.cam.cam_name in ctx.raw:
                maps = ex.explain_outputs(ctx.raw, ctx.geometry, wanted)
                info["same_forward_pass"] = True
            else:
                maps = ex.explain(ctx.tensor, ctx.geometry, wanted, chosen, progress, **params)
                info["same_forward_pass"] = chosen == "cam"
            if chosen == "cam" and ex.cam is not None:
                info["feature_tensor"] = ex.cam.feature_name
            if chosen != "cam":
                info.update({k: v for k, v in params.items() if isinstance(v, (int, float, str))})
            if on_maps is not None:
                on_maps(ctx, ex, maps, info)
            if write:
                out_dir = Path(ctx.out_dir) / "saliency"
                files = write_saliency(
                    out_dir,
                    ctx.ref.sop_uid,
                    ctx.display,
                    maps,
                    colormap,
                    opacity,
                    threshold,
                    contour,
                )
                info["files"] = {
                    lab: {
                        "png": f"saliency/{safe_name(ctx.ref.sop_uid)}_{safe_name(lab)}.png",
                        "npy": f"saliency/{safe_name(ctx.ref.sop_uid)}_{safe_name(lab)}.npy",
                    }
                    for lab in maps
                }
                info["n_files"] = len(files)
            info["overlay"] = {
                "colormap": colormap,
                "opacity": opacity,
                "threshold": threshold,
                "contour": contour,
            }
        except Cancelled:
            raise
        except HilumError as exc:
            info["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - one image's saliency must not stop the analysis
            log.warning("saliency failed for one image: %s", type(exc).__name__)
            info["error"] = f"The saliency map could not be computed ({type(exc).__name__})."
        ctx.result.saliency = info

    return hook
