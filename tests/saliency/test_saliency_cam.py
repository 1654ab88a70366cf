"""One-pass CAM: head detection, graph rewrite, weights, and logits recovered from the maps."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from _saliency_models import pooled_head_model
from app.core.errors import NotApplicableError
from app.saliency.cam import add_cam_outputs, cam_maps, find_cam_head, normalise_map


def _session(model_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("head", ["gemm_t", "gemm", "matmul"])
@pytest.mark.parametrize("pool", ["gap", "reducemean"])
def test_head_detected_and_cam_matches_logits(head: str, pool: str) -> None:
    model, params = pooled_head_model(head=head, pool=pool, const_node=(head == "gemm"))
    cg = add_cam_outputs(model)
    assert cg.feature_name == "feat"
    np.testing.assert_allclose(cg.weights, params["w"], rtol=1e-6)
    np.testing.assert_allclose(cg.bias, params["b"], rtol=1e-6)
    sess = _session(cg.model_bytes)
    x = np.random.default_rng(1).normal(size=(2, 1, 32, 32)).astype(np.float32)
    prob, feat = sess.run(["prob", cg.feature_name], {"x": x})
    # The rewrite keeps the original output unchanged.
    (prob0,) = _session(model.SerializeToString()).run(["prob"], {"x": x})
    np.testing.assert_allclose(prob, prob0, rtol=1e-6)
    maps = cam_maps(feat, cg.weights)
    assert maps.shape == (2, 3, 32, 32)
    # The mean of the CAM plus the bias is exactly the logit the probability came from.
    logits = maps.mean(axis=(2, 3)) + cg.bias
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), prob, rtol=1e-5, atol=1e-6)


def test_manifest_target_and_missing_head() -> None:
    model, _ = pooled_head_model()
    assert find_cam_head(model, target="feat")[0] == "feat"
    with pytest.raises(NotApplicableError):
        find_cam_head(model, target="conv")  # not the pool's input
    from _saliency_models import region_mean_model

    with pytest.raises(NotApplicableError, match="occlusion or RISE"):
        add_cam_outputs(region_mean_model(16, [(0, 0, 4, 4)]))


def test_original_model_not_modified() -> None:
    model, _ = pooled_head_model()
    before = model.SerializeToString()
    add_cam_outputs(model)
    assert model.SerializeToString() == before


def test_normalise_map() -> None:
    raw = np.array([[[-1.0, 0.0], [1.0, 4.0]], [[-1.0, -2.0], [-3.0, -4.0]]], dtype=np.float32)
    n = normalise_map(raw)
    np.testing.assert_allclose(n[0], [[0, 0], [0.25, 1.0]])
    assert not n[1].any()


def test_reducemean_axes_as_input_opset18() -> None:
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    nodes = [
        helper.make_node("Relu", ["x"], ["feat"]),
        helper.make_node("ReduceMean", ["feat", "axes"], ["pooled"], keepdims=1),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"]),
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["flat", "wt"], ["logits"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([-2, -1], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1, 3], np.int64), "shape"),
        numpy_helper.from_array(w, "w"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 7])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    cg = add_cam_outputs(model)
    np.testing.assert_allclose(cg.weights, w)
    x = np.random.default_rng(0).normal(size=(1, 3, 5, 7)).astype(np.float32)
    logits, feat = _session(cg.model_bytes).run(["logits", "feat"], {"x": x})
    np.testing.assert_allclose(
        cam_maps(feat[0], cg.weights).mean(axis=(1, 2)), logits[0], rtol=1e-5
    )


def test_in_graph_cam_output_equals_numpy_cam() -> None:
    model, _ = pooled_head_model(n_labels=5, channels=6)
    cg = add_cam_outputs(model)
    x = np.random.default_rng(4).normal(size=(3, 1, 32, 32)).astype(np.float32)
    feat, cams = _session(cg.model_bytes).run([cg.feature_name, cg.cam_name], {"x": x})
    assert cams.shape == (3, 5, 32, 32)
    np.testing.assert_allclose(cams, cam_maps(feat, cg.weights), rtol=1e-5, atol=1e-5)


def test_in_graph_cam_with_dynamic_feature_size() -> None:
    """Symbolic H and W: the CAM output's shape is computed in the graph."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Relu", ["x"], ["feat"]),
        helper.make_node("GlobalAveragePool", ["feat"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1),
    ]
    w = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    cg = add_cam_outputs(model)
    sess = _session(cg.model_bytes)
    for shape in [(1, 3, 5, 7), (2, 3, 9, 4)]:
        x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
        feat, cams = sess.run(["feat", cg.cam_name], {"x": x})
        np.testing.assert_allclose(cams, cam_maps(feat, w), rtol=1e-5, atol=1e-6)
