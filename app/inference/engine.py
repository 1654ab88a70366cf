"""onnxruntime execution: one session per model, provider selection, input checks, batching.

``Engine(manifest, device="auto")`` creates its session once; :func:`get_engine` caches engines
so that the GUI and the CLI reuse one session per model and device. The provider that actually
runs is :attr:`Engine.provider` and is recorded in every :class:`~app.core.types.ModelResult`.

Device choice:

* ``auto``: CUDA when a CUDA session can really be created (onnxruntime-gpu lists the CUDA
  provider even without a GPU, so a session is tried and ``get_providers()`` checked), else CPU.
  TensorRT is tried first only when enabled (``tensorrt=True`` or ``HILUM_TENSORRT=1``).
* ``cpu`` / ``cuda``: forced; ``cuda`` raises :class:`~app.core.errors.ProviderError` when CUDA
  does not work here.

On CUDA the inputs and outputs are bound with IOBinding and, where the manifest sets
``allow_fp16`` and the caller asks (``fp16=True`` or ``HILUM_FP16=1``), an fp16 copy of the
graph (fp32 inputs/outputs kept) is used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from typing import Any, Sequence

import numpy as np

from app.core.errors import ModelInputError, ProviderError
from app.core.progress import NullProgress, Progress
from app.core.provenance import provenance
from app.core.types import GeometryTransform, LabelResult, ModelResult
from app.inference.manifest import Manifest
from app.inference.preprocess import Preprocessor

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")

_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}
_HALF, _ONE = np.float32(0.5), np.float32(1.0)  # same-dtype scalars: no promotion work per call
_cuda_failed: str | None = None  # why CUDA could not be used in this process (tried once)
_dll_lock = threading.Lock()
_dlls_loaded = False


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _preload_cuda_dlls() -> None:
    """Load the CUDA/cuDNN libraries shipped as pip packages (needed by onnxruntime-gpu >= 1.21)."""
    global _dlls_loaded
    import onnxruntime as ort

    with _dll_lock:
        if _dlls_loaded:
            return
        _dlls_loaded = True
        preload = getattr(ort, "preload_dlls", None)
        if preload is not None:
            import contextlib
            import io

            buf = io.StringIO()
            try:
                with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                    preload()
            except Exception as exc:  # noqa: BLE001 - missing libraries just mean no CUDA
                log.debug("onnxruntime.preload_dlls failed: %s", exc)
            if buf.getvalue().strip():
                log.debug("onnxruntime.preload_dlls: %s", buf.getvalue().strip())


def _driver_problem() -> str | None:
    """Why no NVIDIA driver can be loaded here (None when one can). Cheap and quiet, so that
    machines without a GPU never try to start CUDA (which logs loud errors)."""
    import ctypes
    import sys

    names = ["nvcuda.dll"] if sys.platform.startswith("win") else ["libcuda.so.1", "libcuda.so"]
    for name in names:
        try:
            ctypes.CDLL(name)
            return None
        except OSError:
            continue
    return "no NVIDIA driver was found"


def cuda_problem() -> str | None:
    """Why CUDA cannot be used in this process (None when it may be tried). The one provider
    probe: the inference engine and saliency's extra sessions both ask it. Cheap and quiet on
    machines without a GPU; loads the pip-shipped CUDA libraries once when a driver is there."""
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        return "this onnxruntime build has no CUDA provider"
    if _cuda_failed is not None:
        return _cuda_failed
    driver = _driver_problem()
    if driver is not None:
        _note_cuda_failure(driver)
        return driver
    _preload_cuda_dlls()
    return None


def _note_cuda_failure(reason: str) -> None:
    global _cuda_failed
    _cuda_failed = reason


def session_options(threads: int | None = None, spinning: bool = True) -> Any:
    """The onnxruntime session options every Hilum session uses (quiet, full graph optimisation;
    ``spinning=False`` for sessions that sit idle between runs, sharing the CPU). ``threads``
    defaults to ``$HILUM_ORT_THREADS`` when set, else onnxruntime's choice (every core)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3  # failed provider probes are expected; keep stderr clean
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not threads:
        # a Ray task's share of the CPUs (app.archive sets it), else onnxruntime's default
        threads = int(os.environ.get("HILUM_ORT_THREADS", "0") or 0)
    if threads:
        so.intra_op_num_threads = int(threads)
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def create_session(
    model_bytes: bytes,
    device: str = "auto",
    *,
    options: Any = None,
    gpu_bytes: bytes | None = None,
    tensorrt: bool = False,
) -> Any:
    """The one onnxruntime session factory: CUDA (optionally TensorRT) when ``device`` allows and
    it works here, else the CPU.

    Parameters
    ----------
    model_bytes : bytes
        The model for the CPU (and the GPU unless ``gpu_bytes`` is given, e.g. an fp16 copy).
    device : {"auto", "cpu", "cuda"}
    options : onnxruntime.SessionOptions, optional
        Default :func:`session_options`.

    Raises
    ------
    ProviderError
        ``device="cuda"`` where CUDA does not work (with the reason).
    """
    import onnxruntime as ort

    if device == "cpu":
        return ort.InferenceSession(
            model_bytes, sess_options=options or session_options(), providers=[CPU]
        )
    reason = cuda_problem()
    if reason is None:
        providers: list[Any] = [CUDA, CPU]
        if tensorrt and TENSORRT in ort.get_available_providers():
            providers.insert(0, TENSORRT)
        try:
            sess = ort.InferenceSession(
                gpu_bytes or model_bytes,
                sess_options=options or session_options(),
                providers=providers,
            )
            if sess.get_providers()[0] in (CUDA, TENSORRT):
                return sess
            reason = "no usable CUDA device (onnxruntime fell back to the CPU)"
        except Exception as exc:  # noqa: BLE001 - any failure to start CUDA means no CUDA
            reason = (
                f"CUDA could not start ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            )
        _note_cuda_failure(reason)
    if device == "cuda":
        raise ProviderError(f"CUDA was requested but is not available on this machine: {reason}.")
    log.info("using the CPU: %s", reason)
    return ort.InferenceSession(
        model_bytes, sess_options=options or session_options(), providers=[CPU]
    )


def available_devices() -> dict[str, Any]:
    """What this machine offers: onnxruntime's providers and whether CUDA was found working."""
    import onnxruntime as ort

    return {
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "cuda_failed": _cuda_failed,
    }


def to_fp16(model_bytes: bytes) -> bytes:
    """An fp16 copy of an fp32 ONNX model, keeping fp32 inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load_from_string(model_bytes)
    half = convert_float_to_float16(proto, keep_io_types=True)
    return bytes(half.SerializeToString())


#: graph output added by the engine: the manifest's activation applied to the model output
PROB_OUTPUT = "hilum_probabilities"


def _with_activation(
    model_bytes: bytes, output_name: str, activation: str
) -> tuple[bytes, str | None]:
    """Append the manifest's output activation (Sigmoid / Softmax over labels) to the graph as an
    extra output :data:`PROB_OUTPUT`, so probabilities come out of the same ``run`` without any
    per-call numpy work. The model's own outputs are unchanged. Returns the bytes to load and
    the probability output name (None when the activation is ``none`` or cannot be added)."""
    if activation not in ("sigmoid", "softmax"):
        return model_bytes, None
    import onnx
    from onnx import helper

    try:
        proto = onnx.load_from_string(model_bytes)
        graph = proto.graph
        if any(o.name == PROB_OUTPUT for o in graph.output):
            return model_bytes, PROB_OUTPUT
        out = next(o for o in graph.output if o.name == output_name)
        elem = out.type.tensor_type.elem_type
        if activation == "sigmoid":
            node = helper.make_node(
                "Sigmoid", [output_name], [PROB_OUTPUT], name="hilum_activation"
            )
        else:
            node = helper.make_node(
                "Softmax", [output_name], [PROB_OUTPUT], name="hilum_activation", axis=-1
            )
        graph.node.append(node)
        graph.output.append(helper.make_tensor_value_info(PROB_OUTPUT, elem, None))
        return bytes(proto.SerializeToString()), PROB_OUTPUT
    except Exception as exc:  # noqa: BLE001 - fall back to numpy activation
        log.debug("activation not added to the graph: %s", exc)
        return model_bytes, None


class Engine:
    """One onnxruntime session for one verified model.

    Parameters
    ----------
    manifest : Manifest
        The model (must pass verification; a model that fails is never run).
    device : {"auto", "cpu", "cuda"}
        Where to run.
    model_bytes : bytes, optional
        An in-memory rewrite of the verified model (e.g. saliency adds the feature-map output);
        its inputs must be the same. When absent the ONNX file is read and its sha256 checked
        against the manifest again (so a file swapped after verification is refused).
    fp16 : bool, optional
        Use an fp16 copy on CUDA when the manifest allows it (default: ``HILUM_FP16`` env).
    tensorrt : bool, optional
        Try TensorRT first (default: ``HILUM_TENSORRT`` env).
    intra_op_threads : int, optional
        CPU threads for onnxruntime (default: onnxruntime's choice).

    Raises
    ------
    ModelVerificationError
        The model failed its checks.
    ProviderError
        ``device="cuda"`` where CUDA does not work.
    """

    def __init__(
        self,
        manifest: Manifest,
        device: str = "auto",
        model_bytes: bytes | None = None,
        fp16: bool | None = None,
        tensorrt: bool | None = None,
        intra_op_threads: int | None = None,
    ) -> None:
        if device not in DEVICES:
            raise ProviderError(f"Unknown device '{device}': use auto, cpu or cuda.")
        manifest.require_verified()
        self.manifest = manifest
        self.device = device
        spec = manifest.input
        self.input_name = spec.name
        self.output_name = manifest.output_name
        self.labels = manifest.labels
        self._item_shape = spec.item_shape
        self._dtype = np.dtype(_NP_DTYPES[spec.dtype])
        self._preprocessor = Preprocessor(manifest.preprocessing, spec)
        self._activation = manifest.activation
        self._thresholds = np.array([lab.threshold for lab in self.labels], dtype=np.float64)
        if model_bytes is None:
            model_bytes = manifest.onnx_path.read_bytes()
            digest = hashlib.sha256(model_bytes).hexdigest()
            if digest != manifest.sha256:
                from app.core.errors import ModelVerificationError

                raise ModelVerificationError(
                    f"Model '{manifest.id}' changed on disk after verification (sha256 mismatch); "
                    "it will not be run.",
                    path=str(manifest.onnx_path),
                )
            self.rewritten = False
        else:
            self.rewritten = True
        self.fp16 = False
        want_fp16 = _env_flag("HILUM_FP16") if fp16 is None else bool(fp16)
        use_trt = _env_flag("HILUM_TENSORRT") if tensorrt is None else bool(tensorrt)
        self._threads = intra_op_threads
        from app.inference.ood import add_feature_output, load_scorer

        #: the manifest's OOD scorer; its feature tensor is fetched in every classifying pass
        self.ood = load_scorer(manifest)
        if self.ood is not None:
            model_bytes = add_feature_output(model_bytes, self.ood.feature_tensor)
        model_bytes, self._prob_output = _with_activation(
            model_bytes, self.output_name, self._activation
        )
        self.session = self._create_session(model_bytes, device, want_fp16, use_trt)
        self.provider: str = self.session.get_providers()[0]
        self.on_gpu = self.provider in (CUDA, TENSORRT)
        self.output_names = [o.name for o in self.session.get_outputs() if o.name != PROB_OUTPUT]
        self._default_outputs = [self.output_name] + (
            [self.ood.feature_tensor] if self.ood is not None else []
        )
        self._prob_outputs = [self._prob_output or self.output_name]
        self._run = self.session.run
        log.info(
            "model %s runs on %s%s", manifest.id, self.provider, " (fp16)" if self.fp16 else ""
        )

    # -- session --------------------------------------------------------------------------------
    def _options(self) -> Any:
        return session_options(self._threads)

    def _create_session(
        self, model_bytes: bytes, device: str, want_fp16: bool, use_trt: bool
    ) -> Any:
        gpu_bytes = None
        if (
            device != "cpu"
            and cuda_problem() is None
            and want_fp16
            and self.manifest.allow_fp16
            and self._dtype == np.float32
        ):
            try:
                gpu_bytes = to_fp16(model_bytes)
            except Exception as exc:  # noqa: BLE001 - fall back to fp32, say why
                log.warning("fp16 conversion of %s failed (%s); using fp32", self.manifest.id, exc)
        sess = create_session(
            model_bytes, device, options=self._options(), gpu_bytes=gpu_bytes, tensorrt=use_trt
        )
        self.fp16 = gpu_bytes is not None and sess.get_providers()[0] in (CUDA, TENSORRT)
        return sess

    # -- preprocessing --------------------------------------------------------------------------
    def preprocess(
        self, image: np.ndarray, invert: bool = False
    ) -> tuple[np.ndarray, GeometryTransform]:
        """One image -> (input item without batch axis, GeometryTransform), per the manifest."""
        return self._preprocessor(image, invert)

    def preprocess_dataset(
        self, ds: Any, frame: int | None = None, cache: dict[Any, np.ndarray] | None = None
    ) -> tuple[np.ndarray, GeometryTransform, int]:
        """A DICOM dataset -> (input item, GeometryTransform, frame used), per the manifest.

        ``cache`` shares decoded frames between models (see :func:`app.inference.preprocess.model_image`).
        """
        from app.inference.preprocess import model_image

        image, invert, idx = model_image(ds, self.manifest.preprocessing, frame, cache)
        tensor, gt = self._preprocessor(image, invert)
        return tensor, gt, idx

    # -- running --------------------------------------------------------------------------------
    def check_batch(self, batch: Any) -> np.ndarray:
        """Return ``batch`` as the model's input array or raise :class:`ModelInputError`.

        A single item (no batch axis) is accepted as a batch of one; float arrays of another
        precision are converted. Anything else that does not match the manifest is refused:
        onnxruntime would accept some wrong shapes silently.
        """
        arr = batch if type(batch) is np.ndarray else np.asarray(batch)
        shape = arr.shape
        if shape[1:] == self._item_shape and arr.dtype == self._dtype:
            return arr  # the fast path: nothing to do
        if shape == self._item_shape:
            arr = arr[None]
            shape = arr.shape
        if len(shape) != len(self._item_shape) + 1 or shape[1:] != self._item_shape or shape[0] < 1:
            spec = self.manifest.input
            raise ModelInputError(
                f"Model '{self.manifest.id}' expects input '{self.input_name}' of shape "
                f"(batch, {', '.join(str(d) for d in self._item_shape)}) ({spec.layout}, {spec.channels} "
                f"channel(s), {spec.height}x{spec.width}), but got shape {tuple(shape)}."
            )
        if arr.dtype != self._dtype:
            if np.issubdtype(arr.dtype, np.floating) and np.issubdtype(self._dtype, np.floating):
                arr = arr.astype(self._dtype)
            else:
                raise ModelInputError(
                    f"Model '{self.manifest.id}' expects {self._dtype.name} input, "
                    f"got {arr.dtype.name}."
                )
        return arr

    def run_raw(
        self, batch: np.ndarray, extra_outputs: Sequence[str] = ()
    ) -> dict[str, np.ndarray]:
        """Run the graph on a checked batch and return the requested outputs (no activation).

        Parameters
        ----------
        batch : np.ndarray
            Model input, shape ``(n, *item_shape)`` (or one item).
        extra_outputs : sequence of str
            Further graph outputs to fetch in the same forward pass (e.g. a CAM feature map
            added by a rewritten model).

        Returns
        -------
        dict
            Output name -> array, always including the manifest's output.
        """
        arr = self.check_batch(batch)
        names = (
            self._default_outputs
            if not extra_outputs
            else [
                *self._default_outputs,
                *(n for n in extra_outputs if n not in self._default_outputs),
            ]
        )
        if extra_outputs:
            missing = [n for n in extra_outputs if n not in self.output_names]
            if missing:
                raise ModelInputError(
                    f"Model '{self.manifest.id}' has no output(s) {', '.join(missing)}."
                )
        if self.on_gpu:
            io = self.session.io_binding()
            io.bind_cpu_input(self.input_name, np.ascontiguousarray(arr))
            for n in names:
                io.bind_output(n, "cuda")
            self.session.run_with_iobinding(io)
            outs = io.copy_outputs_to_cpu()
        else:
            outs = self.session.run(names, {self.input_name: arr})
        return dict(zip(names, outs))

    def activate(self, raw: np.ndarray) -> np.ndarray:
        """Apply the manifest's output activation: raw output -> probabilities (n, labels)."""
        z = raw if raw.ndim == 2 else raw.reshape(raw.shape[0], -1)
        if self._activation == "sigmoid":
            # sigmoid(z) = (1 + tanh(z / 2)) / 2: never overflows, four cheap in-place ufuncs
            half = _HALF if z.dtype == np.float32 else 0.5
            p = np.multiply(z, half)
            np.tanh(p, out=p)
            np.add(p, _ONE if z.dtype == np.float32 else 1.0, out=p)
            return np.multiply(p, half, out=p)
        z = z.astype(np.float64)
        if self._activation == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return z

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Checked batch -> probabilities, shape (n, labels). The lean path used for bulk runs.

        The activation runs inside the graph (see :func:`_with_activation`), so this is one
        ``session.run`` plus the manifest input check.
        """
        # the common case inline (this is the per-batch hot path); anything else gets the full check
        if (
            batch.__class__ is np.ndarray
            and batch.dtype is self._dtype
            and batch.shape[1:] == self._item_shape
        ):
            arr = batch
        else:
            arr = self.check_batch(batch)
        if self.on_gpu:
            io = self.session.io_binding()
            io.bind_cpu_input(self.input_name, np.ascontiguousarray(arr))
            io.bind_output(self._prob_outputs[0], "cuda")
            self.session.run_with_iobinding(io)
            out = io.copy_outputs_to_cpu()[0]
        else:
            out = self._run(self._prob_outputs, {self.input_name: arr})[0]
        if self._prob_output is None:
            return self.activate(out)
        return out if out.ndim == 2 else out.reshape(out.shape[0], -1)

    def ood_records(self, raw: dict[str, np.ndarray]) -> list[dict[str, Any]] | None:
        """Per-image OOD records (method, score, threshold, flagged) from a :meth:`run_raw` output
        (None when the model declares no OOD score)."""
        if self.ood is None or self.ood.feature_tensor not in raw:
            return None
        return [self.ood.describe(s) for s in self.ood.score(raw[self.ood.feature_tensor])]

    def results(
        self,
        probs: np.ndarray,
        timings_ms: dict[str, float] | None = None,
        ood: Sequence[dict[str, Any]] | None = None,
    ) -> list[ModelResult]:
        """Probabilities (n, labels) -> one :class:`ModelResult` per row, with provenance.

        ``ood`` (from :meth:`ood_records`) adds each row's OOD record and reliability note.
        """
        from app.inference.intended_use import ood_problem, reliability

        m = self.manifest
        prov = provenance(
            m.id, m.version, m.sha256, self.provider, fp16=self.fp16, task=m.task, source=m.source
        )
        out = []
        for i, row in enumerate(probs):
            labels = [
                LabelResult(
                    label=lab.name,
                    probability=round(float(p), 6),
                    threshold=lab.threshold,
                    positive=bool(p >= lab.threshold),
                )
                for lab, p in zip(self.labels, row)
            ]
            rec = dict(ood[i]) if ood is not None else {}
            out.append(
                ModelResult(
                    model_id=m.id,
                    model_version=m.version,
                    sha256=m.sha256,
                    provider=self.provider,
                    labels=labels,
                    timings_ms=dict(timings_ms or {}),
                    provenance=dict(prov),
                    ood=rec,
                    reliability=reliability(ood_problem(rec)),
                    demonstration=m.demonstration,
                )
            )
        return out

    def predict(
        self, images: list[np.ndarray], progress: Progress | None = None, batch_size: int = 16
    ) -> list[ModelResult]:
        """Preprocess and classify images in batches, with progress and cancel.

        Parameters
        ----------
        images : list of np.ndarray
            Grey (rows, cols) or RGB (rows, cols, 3) images; uint8 for displayed images.
        progress : Progress, optional
            ``check()`` is called between batches (raises Cancelled).
        batch_size : int
            Images per forward pass.

        Returns
        -------
        list of ModelResult
            One per image, in order; timings per image (``preprocess``, ``inference``).
        """
        progress = progress or NullProgress()
        results: list[ModelResult] = []
        n = len(images)
        for start in range(0, n, batch_size):
            progress.check()
            chunk = images[start : start + batch_size]
            t0 = time.perf_counter()
            batch = np.stack([self.preprocess(img)[0] for img in chunk])
            t1 = time.perf_counter()
            ood = None
            if self.ood is not None:  # features come out of the same pass as the scores
                raw = self.run_raw(batch)
                probs = self.activate(raw[self.output_name])
                ood = self.ood_records(raw)
            else:
                probs = self.probabilities(batch)
            t2 = time.perf_counter()
            k = len(chunk)
            results += self.results(
                probs,
                {
                    "preprocess": round((t1 - t0) * 1000 / k, 3),
                    "inference": round((t2 - t1) * 1000 / k, 3),
                },
                ood=ood,
            )
            progress.update(min(start + k, n), n, f"{self.manifest.id}: {min(start + k, n)}/{n}")
        return results


_engines: dict[tuple[Any, ...], Engine] = {}
_engines_lock = threading.Lock()


def get_engine(manifest: Manifest, device: str = "auto", fp16: bool | None = None) -> Engine:
    """The cached :class:`Engine` for a model and device (created on first use).

    One session per model: later calls with the same model, file hash, device and precision
    return the same engine.
    """
    key = (
        manifest.id,
        str(manifest.folder),
        manifest.sha256,
        device,
        _env_flag("HILUM_FP16") if fp16 is None else bool(fp16),
    )
    with _engines_lock:
        eng = _engines.get(key)
        if eng is None:
            eng = Engine(manifest, device=device, fp16=fp16)
            _engines[key] = eng
        return eng


def clear_engines() -> None:
    """Drop every cached session (after models were reinstalled)."""
    with _engines_lock:
        _engines.clear()
