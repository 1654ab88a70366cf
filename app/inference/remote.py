"""Classifiers run by a site's inference server over the Open Inference Protocol (KServe v2).

Triton, KServe and MLServer all speak the protocol. A model is served instead of run locally when
its manifest has a ``serving`` block, or the site setting ``<config dir>/serving.json`` names it::

    {"allow_local_fallback": false,
     "models": {"pneumonia_cnn": {"url": "http://gpu-server:8000", "model_name": "pneumonia_cnn",
                                  "model_version": "1", "timeout_s": 30}}}

(the site setting wins over the manifest). :class:`RemoteEngine` has the local
:class:`~app.inference.engine.Engine`'s interface (``preprocess_dataset``, ``run_raw``,
``activate``, ``results``, ``predict``), so :func:`app.inference.analyze.analyze_paths`, the
saliency explainer and the GUI use it unchanged: preprocessing stays on the workstation, only the
preprocessed batch travels, and the logits come back together with any extra output asked for
(the CAM maps of a model exported by ``hilum models export-serving``), so saliency still costs no
extra pass.

Before first use the server's model metadata (input/output names, datatypes, shapes) is compared
with the manifest and a mismatch is refused. Results record the server URL (credentials removed),
the served model name and version as the provider.

Client: ``tritonclient[http]`` (pinned). Its gRPC flavour needs protobuf < 7, which the
onnx/onnxruntime pins here exclude, so HTTP is used; the binary tensor extension is used when the
server advertises it (Triton does), JSON tensors otherwise (MLServer).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from app.core import paths
from app.core.errors import InferenceServerError, ModelInputError, UsageError
from app.core.types import ModelResult
from app.inference.engine import Engine
from app.inference.manifest import Manifest
from app.inference.preprocess import Preprocessor

log = logging.getLogger(__name__)

#: ``--inference`` choices: ``local`` never uses a server; ``remote`` requires one for every
#: model that has a serving block; ``auto`` uses the server when configured and falls back to
#: local inference only when the site allows it (and says so on every result)
MODES = ("local", "remote", "auto")
SETTINGS_NAME = "serving.json"
_KSERVE_DTYPES = {"float32": "FP32", "float16": "FP16", "uint8": "UINT8"}
_ONNX_TO_KSERVE = {1: "FP32", 10: "FP16", 2: "UINT8", 11: "FP64", 7: "INT64", 6: "INT32"}


@dataclass(frozen=True)
class ServingConfig:
    """Where one model is served.

    Attributes
    ----------
    url : str
        ``http://host:port`` or ``https://host:port`` (optionally ``user:password@`` for HTTP
        basic authentication and a path prefix).
    model_name, model_version : str
        The served model; an empty version lets the server choose.
    timeout_s : float
        Network timeout of one request.
    allow_local_fallback : bool
        The site allows ``auto`` to run the model locally when the server cannot be used.

    Plain ``http://`` is accepted for loopback hosts only, unless the setting says
    ``"allow_insecure_http": true`` (a trusted site network); only the preprocessed pixel tensor
    travels, never a DICOM header.
    """

    url: str
    model_name: str
    model_version: str = ""
    timeout_s: float = 30.0
    allow_local_fallback: bool = False

    @property
    def public_url(self) -> str:
        """The URL without credentials, query or fragment (what results record)."""
        u = urllib.parse.urlsplit(self.url)
        host = u.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{u.port}" if u.port else "")
        return urllib.parse.urlunsplit((u.scheme, netloc, u.path.rstrip("/"), "", ""))

    def describe(self) -> str:
        """``<url> <model>/<version>``: the provider recorded on results."""
        return f"{self.public_url} {self.model_name}/{self.model_version or 'latest'}"


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_config(block: Any, where: str, fallback: bool) -> ServingConfig:
    if not isinstance(block, dict):
        raise UsageError(f"The serving setting in {where} must be a JSON object.")
    url, name = str(block.get("url", "")).strip(), str(block.get("model_name", "")).strip()
    if not url or not name:
        raise UsageError(f"The serving setting in {where} needs both 'url' and 'model_name'.")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise UsageError(
            f"The inference server URL in {where} must start with http:// or https:// "
            f"(got '{scheme or url}')."
        )
    host = urllib.parse.urlsplit(url).hostname or ""
    if (
        scheme == "http"
        and not _loopback(host)
        and not bool(block.get("allow_insecure_http", False))
    ):
        raise UsageError(
            f"The inference server URL in {where} uses plain http:// to {host}: image data would "
            'travel unencrypted; use https:// or set "allow_insecure_http": true for a '
            "trusted network."
        )
    try:
        timeout = float(block.get("timeout_s", 30.0))
    except (TypeError, ValueError):
        raise UsageError(f"The serving timeout_s in {where} must be a number.") from None
    return ServingConfig(
        url=url,
        model_name=name,
        model_version=str(block.get("model_version", "") or ""),
        timeout_s=timeout if timeout > 0 else 30.0,
        allow_local_fallback=bool(block.get("allow_local_fallback", fallback)),
    )


def site_settings() -> dict[str, Any]:
    """The site's ``serving.json`` (empty when there is none)."""
    path = paths.config_dir() / SETTINGS_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"The site serving setting {path} cannot be read ({type(exc).__name__}).",
            path=str(path),
        ) from None
    if not isinstance(raw, dict):
        raise UsageError(
            f"The site serving setting {path} must hold a JSON object.", path=str(path)
        )
    return raw


def serving_config(manifest: Manifest) -> ServingConfig | None:
    """The model's serving configuration: the site setting, else the manifest's ``serving`` block."""
    site = site_settings()
    fallback = bool(site.get("allow_local_fallback", False))
    block = (site.get("models") or {}).get(manifest.id)
    if block is not None:
        return _parse_config(block, paths.config_dir().name + "/" + SETTINGS_NAME, fallback)
    if "serving" in manifest.raw:
        return _parse_config(manifest.raw["serving"], f"the manifest of '{manifest.id}'", fallback)
    return None


# --- what the served model must look like -----------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    """One tensor in Open Inference Protocol terms (``-1``: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    """The inputs and outputs a served model must have."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = field(default_factory=tuple)

    def output(self, name: str) -> TensorSpec | None:
        return next((o for o in self.outputs if o.name == name), None)


def manifest_signature(manifest: Manifest) -> Signature:
    """What the manifest alone requires: its input and its ``(batch, labels)`` output."""
    spec = manifest.input
    return Signature(
        inputs=(TensorSpec(spec.name, _KSERVE_DTYPES[spec.dtype], (-1, *spec.item_shape)),),
        outputs=(TensorSpec(manifest.output_name, "FP32", (-1, len(manifest.labels))),),
    )


def model_signature(model_bytes: bytes) -> Signature:
    """Input/output specs of an ONNX model (batch axis as ``-1``; shapes inferred where missing)."""
    import onnx

    proto = onnx.load_from_string(model_bytes)
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
    except Exception as exc:  # noqa: BLE001 - declared shapes are still usable
        log.debug("shape inference failed: %s", exc)
    g = proto.graph
    init = {i.name for i in g.initializer}
    known = {vi.name: vi for vi in list(g.value_info) + list(g.output) + list(g.input)}

    def spec(vi: Any) -> TensorSpec:
        best = known.get(vi.name, vi)
        t = best.type.tensor_type if best.type.tensor_type.shape.dim else vi.type.tensor_type
        dims = [int(d.dim_value) if d.HasField("dim_value") else -1 for d in t.shape.dim]
        if dims:
            dims[0] = -1
        return TensorSpec(
            vi.name, _ONNX_TO_KSERVE.get(t.elem_type, f"TYPE{t.elem_type}"), tuple(dims)
        )

    return Signature(
        inputs=tuple(spec(i) for i in g.input if i.name not in init),
        outputs=tuple(spec(o) for o in g.output),
    )


def _shape_problem(have: Sequence[int], want: Sequence[int]) -> bool:
    if len(have) != len(want):
        return True
    if int(have[0]) != -1:  # the batch axis must be free: Hilum sends batches of any size
        return True
    return any(h != w and -1 not in (h, w) for h, w in zip(list(have)[1:], list(want)[1:]))


#: the model parameter of an exported repository naming the verified model's sha256 (manifest)
SHA256_PARAMETER = "hilum_sha256"


def served_sha256(metadata: dict[str, Any], config: dict[str, Any] | None = None) -> str | None:
    """The ``hilum_sha256`` parameter a server reports for a model: in the model metadata
    (MLServer, through the exported runtime) or in the model configuration (Triton returns
    ``config.pbtxt`` parameters only there); None when the model does not declare one."""
    params = metadata.get("parameters") or {}
    value = params.get(SHA256_PARAMETER) if isinstance(params, dict) else None
    if isinstance(value, str) and value:
        return value
    params = (config or {}).get("parameters") or {}
    entry = params.get(SHA256_PARAMETER) if isinstance(params, dict) else None
    value = entry.get("string_value") if isinstance(entry, dict) else entry
    return value if isinstance(value, str) and value else None


def metadata_problems(metadata: dict[str, Any], expected: Signature) -> list[str]:
    """How a server's model metadata differs from what Hilum will send and read (empty: fine)."""
    problems: list[str] = []
    for section, wanted in (("inputs", expected.inputs), ("outputs", expected.outputs)):
        served = {
            str(t.get("name")): t for t in metadata.get(section, []) or [] if isinstance(t, dict)
        }
        for spec in wanted:
            kind = section[:-1]
            t = served.get(spec.name)
            if t is None:
                problems.append(
                    f"it has no {kind} '{spec.name}' (it has {', '.join(sorted(served)) or 'none'})"
                )
                continue
            if str(t.get("datatype", "")).upper() != spec.datatype:
                problems.append(
                    f"{kind} '{spec.name}' is {t.get('datatype')}, expected {spec.datatype}"
                )
            shape = [int(d) for d in t.get("shape", []) or []]
            if spec.shape and _shape_problem(shape, spec.shape):
                problems.append(
                    f"{kind} '{spec.name}' has shape {shape}, expected {list(spec.shape)}"
                )
        if section == "inputs":
            extra = sorted(set(served) - {s.name for s in wanted})
            if extra:
                problems.append(f"it has inputs Hilum cannot feed: {', '.join(extra)}")
    return problems


# --- the client -------------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message (tritonclient errors keep it in ``message()``)."""
    msg = exc.message() if callable(getattr(exc, "message", None)) else str(exc)  # type: ignore[attr-defined]
    msg = str(msg or "").strip()
    return (msg.splitlines()[0] if msg else type(exc).__name__)[:200]


class RemoteEngine(Engine):
    """A model run by an Open Inference Protocol server, with the local engine's interface.

    Parameters
    ----------
    manifest : Manifest
        The verified model (preprocessing, labels and thresholds come from it).
    config : ServingConfig
        Where it is served.
    extra_outputs : Signature, optional
        Further outputs the caller will request (e.g. the CAM maps); checked against the server's
        metadata together with the manifest's input and output.

    Raises
    ------
    InferenceServerError
        The server cannot be reached, or its model does not match the manifest.
    """

    # Engine's session-free helpers (preprocess, check_batch, activate, predict) are reused; the
    # session parts are replaced by requests to the server.
    def __init__(
        self,
        manifest: Manifest,
        config: ServingConfig,  # noqa: D107
        extra_outputs: Sequence[TensorSpec] = (),
    ) -> None:
        manifest.require_verified()
        self.manifest = manifest
        self.config = config
        self.device = "remote"
        spec = manifest.input
        self.input_name = spec.name
        self.output_name = manifest.output_name
        self.labels = manifest.labels
        self._item_shape = spec.item_shape
        self._dtype = np.dtype(
            {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}[spec.dtype]
        )
        self._preprocessor = Preprocessor(manifest.preprocessing, spec)
        self._activation = manifest.activation
        self._thresholds = np.array([lab.threshold for lab in self.labels], dtype=np.float64)
        self._prob_output = None
        self.rewritten = False
        self.fp16 = False
        self.on_gpu = False
        self.provider = config.describe()
        self.fallback_reason = ""
        self._local = threading.local()  # the HTTP client is gevent-based: one per thread
        self._lock = threading.Lock()
        self.server_metadata: dict[str, Any] = {}
        from app.inference.ood import load_scorer

        # the OOD features come out of the same served pass as the logits (exported with them)
        self.ood = load_scorer(manifest)
        base = manifest_signature(manifest)
        feature: tuple[TensorSpec, ...] = ()
        if self.ood is not None and not any(
            o.name == self.ood.feature_tensor for o in extra_outputs
        ):
            feature = (TensorSpec(self.ood.feature_tensor, "FP32", ()),)  # () : any shape
        self.expected = Signature(base.inputs, base.outputs + feature + tuple(extra_outputs))
        self._default_outputs = [self.output_name] + (
            [self.ood.feature_tensor] if self.ood is not None else []
        )
        self.output_names = [o.name for o in self.expected.outputs]
        self._binary = False
        self._check_server()

    # -- connection ------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"The inference server at {self.config.public_url}"

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                import tritonclient.http as httpclient
            except ImportError:
                raise InferenceServerError(
                    "Remote inference needs the 'tritonclient[http]' package, which is "
                    "not installed (pip install 'hilum[cluster]')."
                ) from None
            u = urllib.parse.urlsplit(self.config.url)
            host = u.hostname or ""
            netloc = (
                (f"[{host}]" if ":" in host else host)
                + (f":{u.port}" if u.port else "")
                + u.path.rstrip("/")
            )
            timeout = float(self.config.timeout_s)
            client = httpclient.InferenceServerClient(
                netloc,
                ssl=u.scheme == "https",
                connection_timeout=min(timeout, 10.0),
                network_timeout=timeout,
            )
            self._local.client = client
        return client

    @property
    def _headers(self) -> dict[str, str] | None:
        u = urllib.parse.urlsplit(self.config.url)
        if u.username is None:
            return None
        token = f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password or '')}"
        return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except InferenceServerError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - socket, gevent and tritonclient errors: one sentence
            self._local.client = None
            if (
                isinstance(exc, TimeoutError)
                or "timeout" in type(exc).__name__.lower()
                or "timed out" in str(exc).lower()
            ):
                raise InferenceServerError(
                    f"{self._where()} did not answer within {self.config.timeout_s:g} s."
                ) from None
            if isinstance(exc, (ConnectionError, OSError)):
                raise InferenceServerError(
                    f"{self._where()} cannot be reached ({_one_line(exc)})."
                ) from None
            raise InferenceServerError(
                f"{self._where()} failed to {what} ({_one_line(exc)})."
            ) from None

    def _check_server(self) -> None:
        cfg = self.config
        client = self._client()
        meta = self._call(
            "send its server metadata", lambda: client.get_server_metadata(headers=self._headers)
        )
        self._binary = "binary_tensor_data" in (meta.get("extensions") or [])
        md = self._call(
            f"describe model '{cfg.model_name}'",
            lambda: client.get_model_metadata(
                cfg.model_name, cfg.model_version, headers=self._headers
            ),
        )
        versions = [str(v) for v in md.get("versions", []) or []]
        if cfg.model_version and versions and cfg.model_version not in versions:
            raise InferenceServerError(
                f"{self._where()} serves model '{cfg.model_name}' in version(s) "
                f"{', '.join(versions)}, not {cfg.model_version}."
            )
        problems = metadata_problems(md, self.expected)
        if not problems:
            self._check_sha256(md)
        if problems:
            raise InferenceServerError(
                f"{self._where()} serves a model '{cfg.model_name}' that does not match "
                f"the manifest of '{self.manifest.id}': {'; '.join(problems)}; "
                "it will not be used."
            )
        self.server_metadata = {
            "server": meta.get("name", ""),
            "server_version": meta.get("version", ""),
            "platform": md.get("platform", ""),
            "versions": versions,
        }

    def _check_sha256(self, md: dict[str, Any]) -> None:
        """Refuse a served model that is not the verified one (its ``hilum_sha256`` parameter)."""
        cfg = self.config
        config: dict[str, Any] | None = None
        if served_sha256(md) is None:  # Triton: config.pbtxt parameters are in the model config
            try:
                client = self._client()
                config = client.get_model_config(
                    cfg.model_name, cfg.model_version, headers=self._headers
                )
            except Exception:  # noqa: BLE001 - a server without the config endpoint (MLServer)
                config = None
        have = served_sha256(md, config)
        if have is None:
            raise InferenceServerError(
                f"{self._where()} serves a model '{cfg.model_name}' that does not say which "
                f"model file it is (no '{SHA256_PARAMETER}' parameter); serve the repository "
                f"written by 'hilum models export-serving {self.manifest.id}'. It will not be used."
            )
        if have.lower() != str(self.manifest.sha256).lower():
            raise InferenceServerError(
                f"{self._where()} serves a model '{cfg.model_name}' exported from another model "
                f"file (sha256 {have[:12]}…, the manifest of '{self.manifest.id}' has "
                f"{str(self.manifest.sha256)[:12]}…); it will not be used."
            )

    # -- running ----------------------------------------------------------------------------------
    def run_raw(
        self, batch: np.ndarray, extra_outputs: Sequence[str] = ()
    ) -> dict[str, np.ndarray]:
        """Send a checked batch to the server; return the manifest output plus ``extra_outputs``."""
        import tritonclient.http as httpclient

        arr = np.ascontiguousarray(self.check_batch(batch))
        names = [
            *self._default_outputs,
            *[n for n in extra_outputs if n not in self._default_outputs],
        ]
        missing = [n for n in names if n not in self.output_names]
        if missing:
            raise ModelInputError(
                f"Model '{self.manifest.id}' as served has no output(s) {', '.join(missing)}."
            )
        inp = httpclient.InferInput(
            self.input_name, list(arr.shape), _KSERVE_DTYPES[self._dtype.name]
        )
        inp.set_data_from_numpy(arr, binary_data=self._binary)
        outs = [httpclient.InferRequestedOutput(n, binary_data=self._binary) for n in names]
        cfg = self.config
        client = self._client()
        res = self._call(
            "run the model",
            lambda: client.infer(
                cfg.model_name,
                [inp],
                model_version=cfg.model_version,
                outputs=outs,
                headers=self._headers,
            ),
        )
        out: dict[str, np.ndarray] = {}
        for n in names:
            a = res.as_numpy(n)
            want = self.expected.output(n)
            if (
                a is None
                or a.shape[0] != arr.shape[0]
                or (
                    want is not None
                    and want.shape
                    and _shape_problem((-1, *a.shape[1:]), want.shape)
                )
            ):
                raise InferenceServerError(
                    f"{self._where()} returned output '{n}' with shape "
                    f"{None if a is None else list(a.shape)} for a batch of {arr.shape[0]}."
                )
            out[n] = a.astype(np.float32, copy=False)
        return out

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Checked batch -> probabilities (n, labels): the server's logits, activated here."""
        return self.activate(self.run_raw(batch)[self.output_name])

    def results(
        self,
        probs: np.ndarray,
        timings_ms: dict[str, float] | None = None,
        ood: Sequence[dict[str, Any]] | None = None,
    ) -> list[ModelResult]:
        """As :meth:`Engine.results`, with the server recorded in each result's provenance."""
        out = super().results(probs, timings_ms, ood=ood)
        server = {
            "url": self.config.public_url,
            "model_name": self.config.model_name,
            "model_version": self.config.model_version or "latest",
            "protocol": "kserve-v2 (http)",
            **self.server_metadata,
        }
        for r in out:
            r.provenance["server"] = dict(server)
        return out


class FallbackEngine:
    """A local engine used because the server could not be, and the site allows it.

    Everything is the local engine's; each result's provenance says why it ran locally
    (``remote_fallback``).
    """

    def __init__(self, local: Any, reason: str) -> None:
        self._local = local
        self.fallback_reason = reason

    def __getattr__(self, name: str) -> Any:
        return getattr(self._local, name)

    def results(
        self,
        probs: np.ndarray,
        timings_ms: dict[str, float] | None = None,
        ood: Sequence[dict[str, Any]] | None = None,
    ) -> list[ModelResult]:
        out = self._local.results(probs, timings_ms, ood=ood)
        for r in out:
            r.provenance["remote_fallback"] = self.fallback_reason
        return out


def choose_engine(
    manifest: Manifest,
    mode: str,
    make_local: Callable[[], Any],
    make_remote: Callable[[ServingConfig], Any] | None = None,
) -> Any:
    """The engine for ``mode`` (see :data:`MODES`).

    Parameters
    ----------
    manifest : Manifest
        The model.
    mode : {"local", "remote", "auto"}
        ``remote`` fails (one sentence) when the model has no serving setting or the server
        cannot be used; ``auto`` uses the server when one is configured and falls back to
        ``make_local()`` only when the site allows it, saying so on every result.
    make_local : callable
        Makes the local engine.
    make_remote : callable, optional
        ``make_remote(config)`` makes the remote engine (default :class:`RemoteEngine`).
    """
    if mode not in MODES:
        raise UsageError(f"Unknown inference mode '{mode}': use local, remote or auto.")
    if mode == "local":
        return make_local()
    cfg = serving_config(manifest)
    if cfg is None:
        if mode == "remote":
            raise InferenceServerError(
                f"Model '{manifest.id}' has no inference server configured (a 'serving' "
                f"block in its manifest or in the site's {SETTINGS_NAME})."
            )
        return make_local()
    make_remote = make_remote or (lambda c: RemoteEngine(manifest, c))
    try:
        return make_remote(cfg)
    except InferenceServerError as exc:
        if mode == "auto" and cfg.allow_local_fallback:
            reason = f"{exc} Ran locally instead, as the site allows."
            log.warning("%s", reason)
            return FallbackEngine(make_local(), reason)
        raise


def engine_factory(
    mode: str = "auto",
) -> Callable[[Manifest, str, "bool | None"], tuple[Any, list[str]]]:
    """An ``engine_factory`` for :func:`app.inference.analyze.analyze_paths` without saliency."""
    from app.inference.engine import get_engine

    def factory(manifest: Manifest, device: str, fp16: bool | None) -> tuple[Any, list[str]]:
        return choose_engine(
            manifest, mode, lambda: get_engine(manifest, device=device, fp16=fp16)
        ), []

    return factory


def wait_until_ready(
    url: str, model_name: str, model_version: str = "", timeout_s: float = 60.0
) -> None:
    """Block until a server reports the model ready (for scripts that start one)."""
    cfg = ServingConfig(url=url, model_name=model_name, model_version=model_version, timeout_s=5.0)
    import tritonclient.http as httpclient

    u = urllib.parse.urlsplit(url)
    client = httpclient.InferenceServerClient(
        f"{u.hostname}:{u.port}", connection_timeout=2.0, network_timeout=5.0
    )
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if client.is_model_ready(model_name, model_version):
                return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = _one_line(exc)
        time.sleep(0.25)
    raise InferenceServerError(
        f"The inference server at {cfg.public_url} did not get model '{model_name}' "
        f"ready within {timeout_s:g} s{f' ({last})' if last else ''}."
    )


def write_repository(
    manifest: Manifest,
    model_bytes: bytes,
    out_dir: str | Path,
    *,
    max_batch_size: int = 32,
    version: str = "1",
    mlserver_runtime: Path | None = None,
) -> Path:
    """Write a Triton model repository entry ``out_dir/<id>/`` for a served copy of a model.

    ``config.pbtxt`` (ONNX Runtime backend, dynamic batching on) and ``<version>/model.onnx``;
    with ``mlserver_runtime`` also ``model-settings.json`` and that runtime file, so MLServer can
    serve the same folder.

    Parameters
    ----------
    manifest : Manifest
        The verified model.
    model_bytes : bytes
        The model to serve (e.g. with the CAM outputs added).
    out_dir : path
        The repository root.
    max_batch_size : int
        Triton's ``max_batch_size``.
    version : str
        The version folder.
    mlserver_runtime : Path, optional
        The MLServer runtime module to copy beside the model.

    Returns
    -------
    Path
        The model folder.

    Long because the Triton config and the MLServer settings are written side by side from the same metadata.
    """
    import hashlib
    import shutil

    sig = model_signature(model_bytes)
    names = {i.name for i in sig.inputs}
    if names != {manifest.input.name}:
        raise UsageError(
            f"The served copy of '{manifest.id}' must have exactly the input '{manifest.input.name}'."
        )
    folder = Path(out_dir) / manifest.id
    (folder / version).mkdir(parents=True, exist_ok=True)
    (folder / version / "model.onnx").write_bytes(model_bytes)

    def block(specs: Sequence[TensorSpec]) -> str:
        rows = [
            f'  {{ name: "{s.name}" data_type: TYPE_{s.datatype} dims: [ {", ".join(str(d) for d in s.shape[1:])} ] }}'
            for s in specs
        ]
        return ",\n".join(rows)

    digest = hashlib.sha256(model_bytes).hexdigest()
    config = (
        f"# Written by hilum models export-serving for {manifest.id} {manifest.version}\n"
        f"# manifest sha256 {manifest.sha256}; served model.onnx sha256 {digest}\n"
        f'name: "{manifest.id}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {int(max_batch_size)}\n"
        f"version_policy: {{ specific: {{ versions: [ {int(version)} ] }} }}\n"
        f"input [\n{block(sig.inputs)}\n]\n"
        f"output [\n{block(sig.outputs)}\n]\n"
        "dynamic_batching {\n  max_queue_delay_microseconds: 500\n}\n"
        # which verified model this is: RemoteEngine reads it back before first use
        f'parameters {{ key: "{SHA256_PARAMETER}" value: {{ string_value: "{manifest.sha256}" }} }}\n'
        f'parameters {{ key: "hilum_served_sha256" value: {{ string_value: "{digest}" }} }}\n'
    )
    (folder / "config.pbtxt").write_text(config, encoding="utf-8")
    if mlserver_runtime is not None:
        shutil.copyfile(mlserver_runtime, folder / mlserver_runtime.name)
        settings = {
            "name": manifest.id,
            "implementation": f"{mlserver_runtime.stem}.HilumOnnxRuntime",
            "parameters": {
                "uri": f"./{version}/model.onnx",
                "version": version,
                # returned in the model metadata by the runtime (RemoteEngine checks it)
                "extra": {SHA256_PARAMETER: manifest.sha256, "hilum_served_sha256": digest},
            },
            "inputs": [s.to_dict() for s in sig.inputs],
            "outputs": [s.to_dict() for s in sig.outputs],
        }
        (folder / "model-settings.json").write_text(
            json.dumps(settings, indent=2) + "\n", encoding="utf-8"
        )
    return folder


__all__ = [
    "MODES",
    "ServingConfig",
    "RemoteEngine",
    "FallbackEngine",
    "choose_engine",
    "engine_factory",
    "serving_config",
    "manifest_signature",
    "model_signature",
    "metadata_problems",
    "served_sha256",
    "SHA256_PARAMETER",
    "write_repository",
    "wait_until_ready",
    "Signature",
    "TensorSpec",
]
