"""A torch copy of a plain ONNX classifier graph (Conv, Relu, MaxPool, GlobalAveragePool,
Flatten, Gemm), for autograd references: Grad-CAM and CAM of its last ReLU feature map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _ints(node: Any, name: str, default: list[int]) -> list[int]:
    for a in node.attribute:
        if a.name == name:
            return [int(v) for v in a.ints] or [int(a.i)]
    return default


def torch_reference(onnx_path: Path, inputs: np.ndarray) -> dict[str, Any]:
    """Logits, autograd Grad-CAM (not normalised) and CAM (``sum_c w_c A_c + b``, not
    rectified) maps of ``inputs``, and the name of the feature tensor they are taken from."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    x = torch.from_numpy(inputs.copy()).requires_grad_(True)  # gradients reach the features
    feats: Any = None
    feature_name = ""
    head_w = head_b = None
    for node in model.graph.node:
        if node.op_type == "Conv":
            pads = _ints(node, "pads", [0, 0, 0, 0])
            x = torch.nn.functional.conv2d(
                x,
                w[node.input[1]],
                w[node.input[2]] if len(node.input) > 2 else None,
                stride=_ints(node, "strides", [1, 1]),
                padding=pads[:2],
                dilation=_ints(node, "dilations", [1, 1]),
                groups=_ints(node, "group", [1])[0],
            )
        elif node.op_type == "Relu":
            x = torch.relu(x)
            feats, feature_name = x, node.output[0]
        elif node.op_type == "MaxPool":
            x = torch.nn.functional.max_pool2d(
                x,
                _ints(node, "kernel_shape", [2, 2]),
                stride=_ints(node, "strides", [1, 1]),
                padding=_ints(node, "pads", [0, 0, 0, 0])[:2],
            )
        elif node.op_type == "GlobalAveragePool":
            feats.retain_grad()
            x = x.mean(dim=(2, 3), keepdim=True)
        elif node.op_type == "Flatten":
            x = torch.flatten(x, 1)
        elif node.op_type == "Gemm":
            head_w, head_b = w[node.input[1]], w[node.input[2]]
            x = x @ head_w.T + head_b
        else:
            raise ValueError(f"no torch copy of ONNX op {node.op_type}")
    logits = x
    logits.sum().backward()
    a, g = feats.detach(), feats.grad.detach()
    gradcam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))
    assert head_w is not None and head_b is not None
    cam = (head_w[0][None, :, None, None] * a).sum(dim=1) + head_b[0]
    return {
        "logits": logits.detach().numpy().astype(np.float32),
        "gradcam": gradcam.numpy().astype(np.float32),
        "cam": cam.numpy().astype(np.float32),
        "feature_tensor": np.array(feature_name),
    }
