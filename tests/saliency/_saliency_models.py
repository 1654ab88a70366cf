"""Small ONNX models built with onnx.helper whose saliency is known by construction."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def pooled_head_model(
    channels: int = 4,
    size: int = 32,
    n_labels: int = 3,
    head: str = "gemm_t",
    pool: str = "gap",
    seed: int = 0,
    const_node: bool = False,
) -> tuple[onnx.ModelProto, dict]:
    """Conv -> Relu -> (GAP | ReduceMean) -> Flatten -> (Gemm | MatMul+Add) -> Sigmoid.

    Returns the model and its parameters, so a numpy reference can recompute everything.
    """
    rng = np.random.default_rng(seed)
    conv_w = rng.normal(size=(channels, 1, 3, 3)).astype(np.float32)
    conv_b = rng.normal(size=(channels,)).astype(np.float32) * 0.1
    w = rng.normal(size=(n_labels, channels)).astype(np.float32)
    b = rng.normal(size=(n_labels,)).astype(np.float32)
    inits = [numpy_helper.from_array(conv_w, "conv_w"), numpy_helper.from_array(conv_b, "conv_b")]
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["feat"]),
    ]
    if pool == "gap":
        nodes.append(helper.make_node("GlobalAveragePool", ["feat"], ["pooled"]))
        nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"]))
    else:  # ReduceMean with axes as an input (opset 18 style) is covered by the attribute form here
        nodes.append(helper.make_node("ReduceMean", ["feat"], ["flat"], axes=[2, 3], keepdims=0))
    if head == "gemm_t":
        weight, attrs = w, {"transB": 1}
    elif head == "gemm":
        weight, attrs = w.T.copy(), {}
    else:
        weight, attrs = w.T.copy(), {}
    if const_node:
        nodes.insert(
            0, helper.make_node("Constant", [], ["head_w"], value=numpy_helper.from_array(weight))
        )
    else:
        inits.append(numpy_helper.from_array(weight, "head_w"))
    inits.append(numpy_helper.from_array(b, "head_b"))
    if head.startswith("gemm"):
        nodes.append(helper.make_node("Gemm", ["flat", "head_w", "head_b"], ["logits"], **attrs))
    else:
        nodes.append(helper.make_node("MatMul", ["flat", "head_w"], ["mm"]))
        nodes.append(helper.make_node("Add", ["mm", "head_b"], ["logits"]))
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["prob"]))
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", n_labels])],
        inits,
    )
    return model, {"conv_w": conv_w, "conv_b": conv_b, "w": w, "b": b}


def region_mean_model(size: int, regions: list[tuple[int, int, int, int]]) -> onnx.ModelProto:
    """Score ``k`` is the mean of the single-channel input over region ``k`` (top, left, h, w).

    The evidence for each label is exactly its region, so perturbation maps must light it up.
    """
    cols = np.zeros((size * size, len(regions)), dtype=np.float32)
    for k, (t, l, h, w) in enumerate(regions):
        m = np.zeros((size, size), dtype=np.float32)
        m[t : t + h, l : l + w] = 1.0 / (h * w)
        cols[:, k] = m.ravel()
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("MatMul", ["flat", "region_w"], ["score"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", len(regions)])],
        [numpy_helper.from_array(cols, "region_w")],
    )


def pooled_input_model(size: int, factor: int) -> onnx.ModelProto:
    """AveragePool(factor) of the input as the feature map, then GAP + Gemm(1): CAM = pooled input."""
    nodes = [
        helper.make_node(
            "AveragePool", ["x"], ["feat"], kernel_shape=[factor, factor], strides=[factor, factor]
        ),
        helper.make_node("GlobalAveragePool", ["feat"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logits"], transB=1),
    ]
    inits = [
        numpy_helper.from_array(np.ones((1, 1), np.float32), "w"),
        numpy_helper.from_array(np.zeros((1,), np.float32), "b"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
