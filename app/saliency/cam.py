"""Exact class activation maps from an ONNX classifier in the same forward pass as its scores.

For a classifier whose head is global average pooling followed by a linear layer,

    logit_l = b_l + sum_c W[l, c] * mean_{i,j} A[c, i, j],

the gradient of ``logit_l`` with respect to the last feature map ``A`` is ``W[l, c] / (h * w)``
everywhere, so Grad-CAM's channel weights are exactly ``W[l] / (h * w)`` and Grad-CAM equals CAM
up to a positive factor. No autograd is needed: the ONNX graph is rewritten in memory so that it
also outputs ``A``, the head's weights are read from the graph, and the map for any label is a
weighted channel sum computed from the very forward pass that produced the probabilities.

The head is detected automatically (``GlobalAveragePool`` or ``ReduceMean`` over axes 2 and 3,
then any of ``Flatten``/``Reshape``/``Squeeze``/``Identity``/``Dropout``, then ``Gemm`` or
``MatMul`` + ``Add``); a manifest may name the feature tensor instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from app.core.errors import NotApplicableError

log = logging.getLogger(__name__)

#: Ops that only reshape or pass through the pooled (N, C[, 1, 1]) vector on its way to the head.
_PASS_THROUGH = {"Flatten", "Reshape", "Squeeze", "Identity", "Dropout"}


@dataclass
class CamGraph:
    """A classifier rewritten to output its last feature map, and its linear head.

    Attributes
    ----------
    model_bytes : bytes
        The rewritten model (serialised ``ModelProto``), loadable by onnxruntime.
    feature_name : str
        Name of the feature-map tensor added as a graph output, shape (N, C, h, w).
    logits_name : str
        Name of the head's output (the logits the CAM explains).
    weights : numpy.ndarray
        Head weights, shape (n_labels, C), float32 (Gemm ``alpha`` and ``transB`` applied).
    bias : numpy.ndarray
        Head bias, shape (n_labels,), float32 (Gemm ``beta`` applied; zeros when absent).
    output_names : list of str
        The original graph outputs, in order (the rewritten model keeps them first).
    pool_op : str
        ``GlobalAveragePool`` or ``ReduceMean``.
    cam_name : str
        Name of the added output holding the raw CAMs of every label, (N, n_labels, h, w),
        computed by the session itself (on the GPU when it runs there); ``cam_maps`` of the
        feature map gives the same numbers.
    """

    model_bytes: bytes
    feature_name: str
    logits_name: str
    weights: np.ndarray
    bias: np.ndarray
    output_names: list[str] = field(default_factory=list)
    pool_op: str = "GlobalAveragePool"
    cam_name: str = "hilum_cam"

    @property
    def n_labels(self) -> int:
        """Number of head outputs."""
        return int(self.weights.shape[0])


class _Graph:
    """Index of a graph: producers, consumers and constant tensors."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        self.constants: dict[str, np.ndarray] = {}
        for init in graph.initializer:
            self.constants[init.name] = numpy_helper.to_array(init)
        for node in graph.node:
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                if inp:
                    self.consumers.setdefault(inp, []).append(node)
            if node.op_type == "Constant":
                value = _constant_node_value(node)
                if value is not None:
                    self.constants[node.output[0]] = value
        self.outputs = [o.name for o in graph.output]

    def constant(self, name: str) -> np.ndarray | None:
        """The value of a constant tensor (initializer, Constant node, or a transposed one)."""
        if name in self.constants:
            return self.constants[name]
        node = self.producer.get(name)
        # Some exporters store a Linear weight (L, C) and transpose it in the graph for MatMul.
        if node is not None and node.op_type == "Transpose":
            src = self.constant(node.input[0])
            if src is not None:
                perm = _attr(node, "perm")
                return (
                    np.transpose(src, [int(v) for v in perm]) if isinstance(perm, list) else src.T
                )
        if node is not None and node.op_type in ("Identity", "Cast"):
            src = self.constant(node.input[0])
            if src is not None:
                return src
        return None

    def only_consumer(self, name: str) -> onnx.NodeProto | None:
        nodes = self.consumers.get(name, [])
        return nodes[0] if len(nodes) == 1 and name not in self.outputs else None


def _attr(node: onnx.NodeProto, name: str) -> object | None:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return None


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), dtype=np.int64)
    return None


def _is_spatial_mean(node: onnx.NodeProto, g: _Graph) -> bool:
    """True for ``GlobalAveragePool`` or a ``ReduceMean`` over axes {2, 3} of a 4-D tensor."""
    if node.op_type == "GlobalAveragePool":
        return True
    if node.op_type != "ReduceMean":
        return False
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = g.constant(node.input[1])
        axes = None if value is None else [int(v) for v in np.ravel(value)]
    if axes is None:
        return False
    if not isinstance(axes, list):
        return False
    return {int(a) % 4 for a in axes} == {2, 3}


def _head_after_pool(pool: onnx.NodeProto, g: _Graph) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Follow the pooled vector to a linear head; return (weights (L, C), bias (L,), logits)."""
    name = pool.output[0]
    node = g.only_consumer(name)
    while node is not None and node.op_type in _PASS_THROUGH:
        name = node.output[0]
        node = g.only_consumer(name)
    if node is None:
        return None
    if node.op_type == "Gemm":
        if node.input[0] != name or int(_attr(node, "transA") or 0):  # type: ignore[call-overload]
            return None
        b = g.constant(node.input[1])
        if b is None or b.ndim != 2:
            return None
        alpha = float(_attr(node, "alpha") or 1.0)  # type: ignore[arg-type]
        beta = float(_attr(node, "beta") or 1.0)  # type: ignore[arg-type]
        weights = (b if int(_attr(node, "transB") or 0) else b.T) * alpha  # type: ignore[call-overload]
        n_labels = weights.shape[0]
        bias = np.zeros(n_labels, dtype=np.float32)
        if len(node.input) > 2 and node.input[2]:
            c = g.constant(node.input[2])
            if c is None:
                return None
            bias = np.broadcast_to(np.asarray(c, dtype=np.float32).reshape(-1), (n_labels,)) * beta
        return weights.astype(np.float32), np.asarray(bias, dtype=np.float32), node.output[0]
    if node.op_type == "MatMul":
        if node.input[0] != name:
            return None
        b = g.constant(node.input[1])
        if b is None or b.ndim != 2:
            return None
        weights = b.T.astype(np.float32)
        n_labels = weights.shape[0]
        bias = np.zeros(n_labels, dtype=np.float32)
        logits = node.output[0]
        add = g.only_consumer(logits)
        if add is not None and add.op_type == "Add":
            other = add.input[1] if add.input[0] == logits else add.input[0]
            c = g.constant(other)
            if c is not None and c.size in (1, n_labels):
                bias = np.broadcast_to(np.asarray(c, dtype=np.float32).reshape(-1), (n_labels,))
                logits = add.output[0]
        return weights, np.asarray(bias, dtype=np.float32).copy(), logits
    return None


def find_cam_head(
    model: onnx.ModelProto, target: str | None = None
) -> tuple[str, np.ndarray, np.ndarray, str, str]:
    """Find the global-average-pool + linear head of a classifier graph.

    Parameters
    ----------
    model : onnx.ModelProto
        The classifier.
    target : str, optional
        Name of the feature tensor (the pool's input) to use, e.g. from the manifest. When
        omitted, the last pooled linear head in the graph is used.

    Returns
    -------
    tuple
        ``(feature_name, weights (L, C), bias (L,), logits_name, pool_op)``.

    Raises
    ------
    NotApplicableError
        When the graph has no such head (use occlusion or RISE for it).
    """
    g = _Graph(model.graph)
    candidates = []
    for node in g.graph.node:
        if not _is_spatial_mean(node, g):
            continue
        if target is not None and node.input[0] != target:
            continue
        head = _head_after_pool(node, g)
        if head is not None:
            candidates.append((node.input[0], head[0], head[1], head[2], node.op_type))
    if not candidates:
        where = f" after tensor {target!r}" if target else ""
        raise NotApplicableError(
            "This model has no global-average-pool + linear head"
            + where
            + ", so exact CAM is not available; use occlusion or RISE saliency instead."
        )
    if len(candidates) > 1:
        log.info("%d pooled linear heads found; using the last one", len(candidates))
    return candidates[-1]


def add_cam_outputs(model: onnx.ModelProto | bytes | str, target: str | None = None) -> CamGraph:
    """Rewrite a classifier in memory so that it also outputs its last feature map.

    Parameters
    ----------
    model : onnx.ModelProto or bytes or str
        The classifier (a proto, its serialised bytes, or a path). Not modified.
    target : str, optional
        Feature tensor named by the manifest; detected automatically when omitted.

    Returns
    -------
    CamGraph
        The rewritten model bytes, the feature tensor name and the head weights and bias.

    Raises
    ------
    NotApplicableError
        When no global-average-pool + linear head exists.
    """
    if isinstance(model, (bytes, bytearray)):
        proto = onnx.load_from_string(bytes(model))
    elif isinstance(model, str):
        proto = onnx.load(model)
    else:
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
    feature, weights, bias, logits, pool_op = find_cam_head(proto, target)
    outputs = [o.name for o in proto.graph.output]
    g = proto.graph
    elem = onnx.TensorProto.FLOAT
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        if vi.name == feature and vi.type.tensor_type.elem_type:
            elem = vi.type.tensor_type.elem_type
            break
    if feature not in outputs:
        g.output.append(onnx.helper.make_tensor_value_info(feature, elem, None))
    _append_cam_nodes(proto, feature, weights, elem, CAM_OUTPUT)
    log.debug(
        "CAM head: feature %s, %d labels x %d channels, via %s",
        feature,
        weights.shape[0],
        weights.shape[1],
        pool_op,
    )
    return CamGraph(
        model_bytes=proto.SerializeToString(),
        feature_name=feature,
        logits_name=logits,
        weights=weights,
        bias=bias,
        output_names=outputs,
        pool_op=pool_op,
        cam_name=CAM_OUTPUT,
    )


CAM_OUTPUT = "hilum_cam"


def _static_hw(model: onnx.ModelProto, feature: str) -> tuple[int, int] | None:
    """The feature map's (h, w) when shape inference can fix them, else None."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shape inference is an optimisation only
        return None
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.name == feature:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[2].HasField("dim_value") and dims[3].HasField("dim_value"):
                return int(dims[2].dim_value), int(dims[3].dim_value)
    return None


def _append_cam_nodes(
    model: onnx.ModelProto, feature: str, weights: np.ndarray, elem: int, out: str
) -> None:
    """Add ``out = reshape(W @ reshape(A, (N, C, h*w)), (N, L, h, w))`` to the graph.

    Computing the maps inside the session keeps them on the device with the feature map (only
    L x h x w values come back instead of C x h x w) and off the host's BLAS threads. With a
    static feature size the target shape is a constant (three small nodes in all).
    """
    g = model.graph
    helper, nh = onnx.helper, onnx.numpy_helper
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    n_labels = weights.shape[0]
    hw = _static_hw(model, feature)
    g.initializer.extend(
        [
            nh.from_array(weights.astype(dtype), "hilum_cam_w"),
            nh.from_array(np.array([0, 0, -1], np.int64), "hilum_cam_flat"),
        ]
    )
    g.node.extend(
        [
            helper.make_node("Reshape", [feature, "hilum_cam_flat"], ["hilum_cam_a"]),
            helper.make_node("MatMul", ["hilum_cam_w", "hilum_cam_a"], ["hilum_cam_m"]),
        ]
    )
    if hw is not None:
        g.initializer.append(
            nh.from_array(np.array([0, n_labels, hw[0], hw[1]], np.int64), "hilum_cam_target")
        )
    else:
        g.initializer.extend(
            [
                nh.from_array(np.array([n_labels], np.int64), "hilum_cam_labels"),
                nh.from_array(np.array([0], np.int64), "hilum_cam_0"),
                nh.from_array(np.array([1], np.int64), "hilum_cam_1"),
                nh.from_array(np.array([2], np.int64), "hilum_cam_2"),
                nh.from_array(np.array([4], np.int64), "hilum_cam_4"),
            ]
        )
        g.node.extend(
            [
                helper.make_node("Shape", [feature], ["hilum_cam_shape"]),
                helper.make_node(
                    "Slice", ["hilum_cam_shape", "hilum_cam_0", "hilum_cam_1"], ["hilum_cam_n"]
                ),
                helper.make_node(
                    "Slice", ["hilum_cam_shape", "hilum_cam_2", "hilum_cam_4"], ["hilum_cam_hw"]
                ),
                helper.make_node(
                    "Concat",
                    ["hilum_cam_n", "hilum_cam_labels", "hilum_cam_hw"],
                    ["hilum_cam_target"],
                    axis=0,
                ),
            ]
        )
    g.node.append(helper.make_node("Reshape", ["hilum_cam_m", "hilum_cam_target"], [out]))
    g.output.append(helper.make_tensor_value_info(out, elem, None))


def cam_maps(
    features: np.ndarray, weights: np.ndarray, labels: Sequence[int] | None = None
) -> np.ndarray:
    """Raw class activation maps: the head's weighted channel sum of the feature map.

    Parameters
    ----------
    features : numpy.ndarray
        Feature map, shape (C, h, w) for one image or (N, C, h, w) for a batch.
    weights : numpy.ndarray
        Head weights (n_labels, C) from :class:`CamGraph`.
    labels : sequence of int, optional
        Label indices to compute; all when omitted.

    Returns
    -------
    numpy.ndarray
        float32 maps (n_labels, h, w), or (N, n_labels, h, w) for a batch. The mean of a map
        plus the label's bias equals its logit; ``normalise_map`` of it equals normalised Grad-CAM.
    """
    w = weights if labels is None else weights[list(labels)]
    f = np.asarray(features, dtype=np.float32)
    if f.ndim == 3:
        c, h, wd = f.shape
        return (w.astype(np.float32, copy=False) @ f.reshape(c, h * wd)).reshape(-1, h, wd)
    if f.ndim == 4:
        n, c, h, wd = f.shape
        # A broadcast matmul (BLAS per image): far less overhead than einsum for small maps.
        out = np.matmul(w.astype(np.float32, copy=False), f.reshape(n, c, h * wd))
        return out.reshape(n, -1, h, wd)
    raise ValueError(f"features must be (C, h, w) or (N, C, h, w), got shape {f.shape}")


def normalise_map(raw: np.ndarray) -> np.ndarray:
    """Scale a raw saliency map to [0, 1] the Grad-CAM way: ReLU, then divide by the maximum.

    Works on (h, w) or (..., h, w) stacks (each map on its own). A map with no positive
    evidence is all zeros.
    """
    r = np.maximum(np.asarray(raw, dtype=np.float32), 0.0)
    peak = r.max(axis=(-2, -1), keepdims=True)
    return np.divide(r, peak, out=np.zeros_like(r), where=peak > 0)


# The team contract names the perturbation methods beside CAM; they live in perturbation.py.
from app.saliency.perturbation import occlusion, rise  # noqa: E402,F401
