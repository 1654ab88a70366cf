"""Classifiers run by a site's inference server over the Open Inference Protocol (KServe v2).

Triton, KServe and MLServer all speak the protocol. A model is served instead of run locally when
its manifest has a ``serving`` block, or the site setting ``<config dir>/serving.json`` names it::

    {"allow_local_fallback": false,
     "models": {"pneumonia_cnn": {"url": "grpcs://gpu-server:8001", "model_name": "pneumonia_cnn",
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

Client: ``tritonclient`` (pinned), over gRPC for ``grpc://`` / ``grpcs://`` URLs (the recommended
endpoint: tensors travel as raw bytes, Triton's port 8001, MLServer's 8081) or HTTP/REST for
``http://`` / ``https://`` URLs (the binary tensor extension when the server advertises it, as
Triton does; JSON tensors otherwise, as MLServer needs, several times slower for large batches).
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import threading
import time
import urllib.parse
import weakref
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
        ``grpc://host:port`` / ``grpcs://host:port`` (gRPC, TLS with ``grpcs``), or
        ``http://host:port`` / ``https://host:port`` (REST, optionally with a path prefix);
        optionally ``user:password@`` for basic authentication (sent as a header / gRPC
        metadata).
    model_name, model_version : str
        The served model; an empty version lets the server choose.
    timeout_s : float
        Network timeout of one request.
    allow_local_fallback : bool
        The site allows ``auto`` to run the model locally when the server cannot be used.

    Plain ``http://`` and ``grpc://`` are accepted for loopback hosts only, unless the setting says
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
    if scheme not in ("http", "https", "grpc", "grpcs"):
        raise UsageError(
            f"The inference server URL in {where} must start with grpc://, grpcs://, http:// "
            f"or https:// (got '{scheme or url}')."
        )
    host = urllib.parse.urlsplit(url).hostname or ""
    if (
        scheme in ("http", "grpc")
        and not _loopback(host)
        and not bool(block.get("allow_insecure_http", False))
    ):
        raise UsageError(
            f"The inference server URL in {where} uses plain {scheme}:// to {host}: image data "
            f'would travel unencrypted; use {scheme}s:// or set "allow_insecure_http": true '
            "for a trusted network."
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


# --- transports: the same calls over HTTP/REST or gRPC -----------------------------------------
GRPC_SCHEMES = ("grpc", "grpcs")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _grpc_metadata_parameters(response: Any) -> dict[str, Any]:
    """The model-level ``parameters`` of a gRPC model-metadata response.

    MLServer's protocol files add a ``parameters`` map (field 6) to ``ModelMetadataResponse``;
    Triton's, which ``tritonclient`` parses with, do not, so the entries arrive as unknown fields.
    Each entry is a map entry (key 1, ``InferParameter`` value 2), the same wire layout as the
    ``parameters`` map (field 4) of ``ModelInferRequest``: re-tagging the bytes as that field
    lets protobuf decode them instead of a hand-written parser.
    """
    from google.protobuf import unknown_fields
    from tritonclient.grpc import service_pb2

    raw = bytearray()
    for f in unknown_fields.UnknownFieldSet(response):
        if f.field_number == 6 and f.wire_type == 2:  # length-delimited map entry
            data = bytes(f.data)
            raw += _varint((4 << 3) | 2) + _varint(len(data)) + data
    params = service_pb2.ModelInferRequest.FromString(bytes(raw)).parameters
    out: dict[str, Any] = {}
    for key, value in params.items():
        kind = value.WhichOneof("parameter_choice")
        if kind is not None:
            out[key] = getattr(value, kind)
    return out


class _Transport:
    """What both ``tritonclient`` flavours share: the same request built from their own
    ``InferInput`` / ``InferRequestedOutput`` (:attr:`_mod`), with their own options."""

    _mod: Any
    client: Any

    def _tensor_options(self) -> dict[str, Any]:
        raise NotImplementedError

    def _call_options(self, headers: dict[str, str] | None) -> dict[str, Any]:
        raise NotImplementedError

    def infer(
        self,
        name: str,
        version: str,
        input_name: str,
        arr: np.ndarray,
        datatype: str,
        outputs: Sequence[str],
        headers: dict[str, str] | None,
    ) -> Any:
        """One request: ``arr`` as ``input_name``; the response (``as_numpy(name)``)."""
        inp = self._mod.InferInput(input_name, list(arr.shape), datatype)
        inp.set_data_from_numpy(arr, **self._tensor_options())
        outs = [self._mod.InferRequestedOutput(n, **self._tensor_options()) for n in outputs]
        return self.client.infer(
            name, [inp], model_version=version, outputs=outs, **self._call_options(headers)
        )


class _HttpTransport(_Transport):
    """KServe v2 over HTTP/REST (``tritonclient.http``): JSON tensors unless the server
    advertises the binary tensor extension (Triton does, MLServer does not)."""

    protocol = "kserve-v2 (http)"

    def __init__(self, config: ServingConfig) -> None:
        try:
            import tritonclient.http as httpclient
        except ImportError:
            raise InferenceServerError(
                "Remote inference needs the 'tritonclient[http]' package, which is "
                "not installed (pip install 'hilum[cluster]')."
            ) from None
        self._mod = httpclient
        self.binary = False
        u = urllib.parse.urlsplit(config.url)
        timeout = float(config.timeout_s)
        # the HTTP client is gevent-based: one per thread
        self._local = threading.local()
        self._make = lambda: httpclient.InferenceServerClient(
            _netloc(u) + u.path.rstrip("/"),
            ssl=u.scheme == "https",
            connection_timeout=min(timeout, 10.0),
            network_timeout=timeout,
        )

    @property
    def client(self) -> Any:
        c = getattr(self._local, "client", None)
        if c is None:
            c = self._local.client = self._make()
        return c

    def reset(self) -> None:
        self._local.client = None

    def server_metadata(self, headers: dict[str, str] | None) -> dict[str, Any]:
        meta = dict(self.client.get_server_metadata(headers=headers))
        self.binary = "binary_tensor_data" in (meta.get("extensions") or [])
        return meta

    def model_metadata(self, name: str, version: str, headers: Any) -> dict[str, Any]:
        return dict(self.client.get_model_metadata(name, version, headers=headers))

    def model_config(self, name: str, version: str, headers: Any) -> dict[str, Any]:
        return dict(self.client.get_model_config(name, version, headers=headers))

    def is_model_ready(self, name: str, version: str) -> bool:
        return bool(self.client.is_model_ready(name, version))

    def _tensor_options(self) -> dict[str, Any]:
        return {"binary_data": self.binary}

    def _call_options(self, headers: dict[str, str] | None) -> dict[str, Any]:
        return {"headers": headers}


#: gRPC transports with an open channel, closed at exit: a channel left to the garbage collector
#: while the interpreter shuts down prints an ignored exception from grpc's teardown
_open_grpc: "weakref.WeakSet[_GrpcTransport]" = weakref.WeakSet()


@atexit.register
def _close_grpc_channels() -> None:
    for transport in list(_open_grpc):
        transport.reset()


class _GrpcTransport(_Transport):
    """KServe v2 over gRPC (``tritonclient.grpc``): tensors travel as raw bytes
    (``raw_input_contents``), which Triton and MLServer both take, with no JSON encoding."""

    protocol = "kserve-v2 (grpc)"

    def __init__(self, config: ServingConfig) -> None:
        try:
            import tritonclient.grpc as grpcclient
        except ImportError:
            raise InferenceServerError(
                "Remote inference over gRPC needs the 'tritonclient[grpc]' package, which is "
                "not installed (pip install 'hilum[cluster]')."
            ) from None
        self._mod = grpcclient
        u = urllib.parse.urlsplit(config.url)
        self.timeout = float(config.timeout_s)
        self._make = lambda: grpcclient.InferenceServerClient(_netloc(u), ssl=u.scheme == "grpcs")
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        # a gRPC channel is thread-safe: one per engine
        with self._lock:
            if self._client is None:
                self._client = self._make()
                _open_grpc.add(self)
            return self._client

    def reset(self) -> None:
        with self._lock:
            old, self._client = self._client, None
        if old is not None:
            old.close()

    @staticmethod
    def _headers(headers: dict[str, str] | None) -> dict[str, str] | None:
        # gRPC metadata keys are lower case
        return {k.lower(): v for k, v in headers.items()} if headers else None

    def server_metadata(self, headers: dict[str, str] | None) -> dict[str, Any]:
        return dict(
            self.client.get_server_metadata(
                headers=self._headers(headers), as_json=True, client_timeout=self.timeout
            )
        )

    def model_metadata(self, name: str, version: str, headers: Any) -> dict[str, Any]:
        from google.protobuf import json_format

        resp = self.client.get_model_metadata(
            name, version, headers=self._headers(headers), client_timeout=self.timeout
        )
        md = json_format.MessageToDict(resp, preserving_proto_field_name=True)
        md["parameters"] = _grpc_metadata_parameters(resp)
        return md

    def model_config(self, name: str, version: str, headers: Any) -> dict[str, Any]:
        cfg = self.client.get_model_config(
            name,
            version,
            headers=self._headers(headers),
            as_json=True,
            client_timeout=self.timeout,
        )
        return dict(cfg.get("config", cfg))

    def is_model_ready(self, name: str, version: str) -> bool:
        return bool(self.client.is_model_ready(name, version, client_timeout=self.timeout))

    def _tensor_options(self) -> dict[str, Any]:
        return {}  # raw bytes always

    def _call_options(self, headers: dict[str, str] | None) -> dict[str, Any]:
        return {"headers": self._headers(headers), "client_timeout": self.timeout}


def _netloc(u: urllib.parse.SplitResult) -> str:
    host = u.hostname or ""
    return (f"[{host}]" if ":" in host else host) + (f":{u.port}" if u.port else "")


def _transport(config: ServingConfig) -> "_HttpTransport | _GrpcTransport":
    scheme = urllib.parse.urlsplit(config.url).scheme
    return _GrpcTransport(config) if scheme in GRPC_SCHEMES else _HttpTransport(config)


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
        self._transport = _transport(config)
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
        self._check_server()

    # -- connection ------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"The inference server at {self.config.public_url}"

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
            self._transport.reset()
            status = str(exc.status() if callable(getattr(exc, "status", None)) else "")  # type: ignore[attr-defined]
            if "UNAVAILABLE" in status:
                raise InferenceServerError(
                    f"{self._where()} cannot be reached ({_one_line(exc)})."
                ) from None
            if (
                "DEADLINE_EXCEEDED" in status
                or isinstance(exc, TimeoutError)
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
        tr = self._transport
        meta = self._call("send its server metadata", lambda: tr.server_metadata(self._headers))
        md = self._call(
            f"describe model '{cfg.model_name}'",
            lambda: tr.model_metadata(cfg.model_name, cfg.model_version, self._headers),
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
                config = self._transport.model_config(
                    cfg.model_name, cfg.model_version, self._headers
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
        cfg = self.config
        res = self._call(
            "run the model",
            lambda: self._transport.infer(
                cfg.model_name,
                cfg.model_version,
                self.input_name,
                arr,
                _KSERVE_DTYPES[self._dtype.name],
                names,
                self._headers,
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
            "protocol": self._transport.protocol,
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
    transport = _transport(cfg)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if transport.is_model_ready(model_name, model_version):
                return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = _one_line(exc)
            transport.reset()
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
