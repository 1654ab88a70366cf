"""Served copies of classifiers: the model a site's server runs, and the engines that use it.

The served copy is the verified ONNX file with the CAM output of :func:`app.saliency.cam.add_cam_outputs`
added (``hilum_cam``: raw CAMs of every label, (N, labels, h, w)), so a remote classification pass
also returns the saliency maps. ``hilum models export-serving`` writes it as a Triton model
repository (:func:`export_serving`); :func:`engine_factory` gives
:func:`app.inference.analyze.analyze_paths` remote (or local) engines, with the CAM output fetched
in the same request when saliency is asked for.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Callable

import onnx

from app.core import paths
from app.core.errors import ModelVerificationError, NotApplicableError
from app.inference.manifest import Manifest
from app.inference.remote import (
    FallbackEngine,
    RemoteEngine,
    ServingConfig,
    TensorSpec,
    choose_engine,
    model_signature,
    write_repository,
)
from app.saliency.cam import add_cam_outputs

log = logging.getLogger(__name__)

#: the MLServer runtime copied beside exported models (MLServer can serve the same folder)
MLSERVER_RUNTIME = paths.resources_dir() / "serving" / "hilum_onnx_runtime.py"


def _verified_bytes(manifest: Manifest) -> bytes:
    manifest.require_verified()
    data = manifest.onnx_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.sha256:
        raise ModelVerificationError(
            f"Model '{manifest.id}' changed on disk after verification (sha256 mismatch); "
            "it will not be served.",
            path=str(manifest.onnx_path),
        )
    return data


def served_model(manifest: Manifest) -> tuple[bytes, str | None]:
    """The served copy of a verified model and its CAM output name (None without a CAM head).

    The copy keeps the model's outputs and adds only the CAM maps (the raw feature map that the
    rewrite also exposes is dropped again: nothing needs it once the maps are computed in-graph).
    """
    from app.inference.ood import add_feature_output, load_scorer

    data = _verified_bytes(manifest)
    scorer = load_scorer(manifest)
    # the OOD score's features travel with the logits (same served pass, as locally)
    with_ood = add_feature_output(data, scorer.feature_tensor) if scorer is not None else data
    try:
        cam = add_cam_outputs(with_ood, manifest.saliency.get("target_tensor"))
    except NotApplicableError as exc:
        log.info("model %s is served without CAM: %s", manifest.id, exc)
        return _declare_shapes(onnx.load_from_string(with_ood)), None
    proto = onnx.load_from_string(cam.model_bytes)
    keep = set(cam.output_names) | {cam.cam_name}
    outputs = [o for o in proto.graph.output if o.name in keep]
    del proto.graph.output[:]
    proto.graph.output.extend(outputs)
    return _declare_shapes(proto), cam.cam_name


def _declare_shapes(proto: Any) -> bytes:
    """Serialised ``proto`` with every output's shape declared (batch axis free)."""
    # declare the added outputs' shapes (servers and onnx.checker want them): batch axis free
    inferred = onnx.shape_inference.infer_shapes(proto)
    shapes = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in proto.graph.output:
        if out.type.tensor_type.HasField("shape") or out.name not in shapes:
            continue
        dims = [
            d.dim_value if d.HasField("dim_value") else None
            for d in shapes[out.name].type.tensor_type.shape.dim
        ]
        if dims:
            out.CopyFrom(
                onnx.helper.make_tensor_value_info(
                    out.name, out.type.tensor_type.elem_type, ["batch", *dims[1:]]
                )
            )
    return bytes(proto.SerializeToString())


def export_serving(
    manifest: Manifest, out_dir: str | Path, *, max_batch_size: int = 32, mlserver: bool = True
) -> Path:
    """Write ``out_dir/<id>/config.pbtxt`` and ``out_dir/<id>/1/model.onnx`` (CAM outputs added).

    Parameters
    ----------
    manifest : Manifest
        A verified model (one that fails verification is refused).
    out_dir : path
        The model repository root (created if needed).
    max_batch_size : int
        Largest batch Triton's dynamic batcher forms.
    mlserver : bool
        Also write ``model-settings.json`` and Hilum's MLServer runtime, so MLServer serves the
        same folder.

    Returns
    -------
    Path
        The model folder.
    """
    data, _ = served_model(manifest)
    return write_repository(
        manifest,
        data,
        out_dir,
        max_batch_size=max_batch_size,
        mlserver_runtime=MLSERVER_RUNTIME if mlserver else None,
    )


_remote: dict[tuple[Any, ...], Any] = {}
_remote_lock = threading.Lock()


def _remote_explainer(manifest: Manifest, config: ServingConfig) -> Any:
    """An :class:`~app.saliency.api.Explainer` whose session is a :class:`RemoteEngine` that also
    fetches the CAM maps (cached per model and server)."""
    from app.saliency.api import Explainer, _by_engine, _explainers_lock

    key = (manifest.id, str(manifest.folder), manifest.sha256, config)
    with _remote_lock:
        ex = _remote.get(key)
        if ex is not None:
            return ex
        data = _verified_bytes(manifest)
        served, cam_name = served_model(manifest)
        extra: tuple[TensorSpec, ...] = ()
        if cam_name is not None:
            spec = model_signature(served).output(cam_name)
            extra = (spec,) if spec is not None else ()
        pre = manifest.preprocessing
        import numpy as np

        black = (
            -np.asarray(pre.mean, dtype=np.float32) / np.asarray(pre.std, dtype=np.float32)
        ).astype(np.float32)
        ex = Explainer(
            data,
            [lab.name for lab in manifest.labels],
            output_name=manifest.output_name,
            activation=manifest.activation,
            target=manifest.saliency.get("target_tensor"),
            runner_factory=lambda _bytes: RemoteEngine(manifest, config, extra_outputs=extra),
            device="cpu",
            layout=manifest.input.layout,
            baseline=black,
        )
        with _explainers_lock:
            _by_engine[id(ex.runner)] = ex
        _remote[key] = ex
        return ex


def explainer_for(manifest: Manifest, device: str = "auto", inference: str = "auto") -> Any:
    """The explainer of on-demand saliency (the saliency panel, :meth:`StudySession.saliency`).

    A model the site serves (``inference`` ``auto`` or ``remote``) is explained by the server: its
    served copy returns the CAM with the logits, so CAM costs one request and no local session
    (occlusion and RISE build their masked-input sessions here from the verified file, as
    locally). Otherwise, or after a fallback the site allows, the local explainer
    (:func:`app.saliency.api.get_explainer`).
    """
    from app.saliency.api import get_explainer

    def local() -> Any:
        return get_explainer(manifest, device=device)

    chosen = choose_engine(manifest, inference, local, lambda cfg: _remote_explainer(manifest, cfg))
    return local() if isinstance(chosen, FallbackEngine) else chosen  # get_explainer caches


def clear_remote() -> None:
    """Forget cached remote engines (after a site changes its serving setting)."""
    with _remote_lock:
        _remote.clear()


def engine_factory(
    mode: str = "auto", saliency: bool = False
) -> Callable[[Any, str, "bool | None"], tuple[Any, list[str]]]:
    """``engine_factory`` for :func:`app.inference.analyze.analyze_paths` honouring ``mode``.

    Parameters
    ----------
    mode : {"local", "remote", "auto"}
        See :func:`app.inference.remote.choose_engine`.
    saliency : bool
        Fetch the CAM maps in the classifying pass (remote: from the served copy; local: from the
        rewritten session of :func:`app.saliency.api.engine_factory`).
    """
    from app.inference.engine import get_engine
    from app.saliency import api

    def factory(manifest: Any, device: str, fp16: bool | None) -> tuple[Any, list[str]]:
        def local() -> Any:
            return api.get_explainer(manifest, device=device, fp16=fp16) if saliency else None

        def make_local() -> Any:
            ex = local()
            return ex.engine if ex is not None else get_engine(manifest, device=device, fp16=fp16)

        def make_remote(cfg: ServingConfig) -> Any:
            if saliency:
                return _remote_explainer(manifest, cfg)
            return RemoteEngine(manifest, cfg)

        chosen = choose_engine(manifest, mode, make_local, make_remote)
        if hasattr(chosen, "extra_outputs") and hasattr(chosen, "runner"):  # a remote explainer
            return chosen.runner, list(chosen.extra_outputs)
        if isinstance(chosen, FallbackEngine) and saliency:
            ex = local()
            with api._explainers_lock:
                api._by_engine[id(chosen)] = ex
            return chosen, list(ex.extra_outputs)
        if saliency:
            ex = local()
            return chosen, list(ex.extra_outputs)
        return chosen, []

    return factory


def factory_for(
    inference: str, registry: Any = None
) -> Callable[[Any, str, "bool | None"], tuple[Any, list[str]]] | None:
    """The CAM engine factory honouring ``inference`` (``auto``/``remote``/``local``), or None when
    the plain local one applies (``local``, or ``auto`` with no model served by the site)."""
    from app.inference.remote import MODES, serving_config

    if inference not in MODES:
        from app.core.errors import UsageError

        raise UsageError(f"Unknown inference mode '{inference}': use local, remote or auto.")
    if inference == "local":
        return None
    if inference == "auto":
        from app.inference.registry import ModelRegistry

        reg = registry or ModelRegistry()
        if not any(serving_config(m) for m in reg.models() if m.verified):
            return None
    return engine_factory(inference, saliency=True)


__all__ = [
    "served_model",
    "export_serving",
    "engine_factory",
    "factory_for",
    "explainer_for",
    "clear_remote",
    "MLSERVER_RUNTIME",
]
