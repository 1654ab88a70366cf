"""Fixtures for the inference tests: external ONNX models built with onnx.helper, installed as
site models under ``$HILUM_HOME/models`` with real manifests."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.core import paths

BUNDLED_ID = "pneumonia_cnn"


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(arr.astype(np.float32), name)


def build_multilabel_224(seed: int = 1) -> onnx.ModelProto:
    """3-channel 224x224 NCHW multi-label CNN (4 labels): Conv/Relu x2 -> GAP -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node(
            "Conv",
            ["input", "w1", "b1"],
            ["c1"],
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node(
            "Conv",
            ["r1", "w2", "b2"],
            ["c2"],
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["c2"], ["features"]),
        helper.make_node("GlobalAveragePool", ["features"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "wh", "bh"], ["logits"], transB=1),
    ]
    inits = [
        _init("w1", rng.normal(0, 0.3, (8, 3, 3, 3))),
        _init("b1", rng.normal(0, 0.1, 8)),
        _init("w2", rng.normal(0, 0.3, (16, 8, 3, 3))),
        _init("b2", rng.normal(0, 0.1, 16)),
        _init("wh", rng.normal(0, 1.0, (4, 16))),
        _init("bh", rng.normal(0, 0.1, 4)),
    ]
    graph = helper.make_graph(
        nodes,
        "multilabel224",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hilum-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_multiclass_512(seed: int = 2) -> onnx.ModelProto:
    """1-channel 512x512 NHWC multi-class CNN (3 classes): Transpose -> Conv/Relu -> MaxPool -> GAP -> Gemm."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv",
            ["nchw", "w1", "b1"],
            ["c1"],
            kernel_shape=[5, 5],
            strides=[4, 4],
            pads=[2, 2, 2, 2],
        ),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node(
            "Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["c2"], ["feat"]),
        helper.make_node("GlobalAveragePool", ["feat"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "wh", "bh"], ["scores"], transB=1),
    ]
    inits = [
        _init("w1", rng.normal(0, 0.2, (8, 1, 5, 5))),
        _init("b1", rng.normal(0, 0.1, 8)),
        _init("w2", rng.normal(0, 0.2, (12, 8, 3, 3))),
        _init("b2", rng.normal(0, 0.1, 12)),
        _init("wh", rng.normal(0, 1.0, (3, 12))),
        _init("bh", rng.normal(0, 0.1, 3)),
    ]
    graph = helper.make_graph(
        nodes,
        "multiclass512",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 512, 512, 1])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hilum-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def manifest_for(model_id: str, model_bytes: bytes, **over: Any) -> dict[str, Any]:
    """A complete manifest; ``over`` replaces top-level keys."""
    m: dict[str, Any] = {
        "schema_version": 1,
        "id": model_id,
        "name": f"Test model {model_id}",
        "version": "0.1",
        "task": "binary",
        "file": "model.onnx",
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "labels": [{"name": "finding", "threshold": 0.5}],
        "input": {
            "name": "input",
            "layout": "NCHW",
            "height": 224,
            "width": 224,
            "channels": 3,
            "dtype": "float32",
        },
        "output": {"name": "logits", "activation": "sigmoid"},
        "preprocessing": {
            "frame": "first",
            "intensity": {"method": "display"},
            "monochrome1": "invert",
            "resize": "letterbox",
            "interpolation": "area",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
        },
        "applicability": {"modalities": ["CR", "DX"]},
        "intended_use": "Tests only.",
        "training_data": {"name": "random weights"},
        "metrics": {},
    }
    m.update(over)
    return m


def install(
    root: Path, model_id: str, model: onnx.ModelProto | bytes, manifest: dict[str, Any]
) -> Path:
    """Write ``root/<id>/model.onnx``, ``model.json`` and a model card."""
    folder = root / model_id
    folder.mkdir(parents=True, exist_ok=True)
    data = model if isinstance(model, bytes) else model.SerializeToString()
    (folder / "model.onnx").write_bytes(data)
    (folder / "model.json").write_text(json.dumps(manifest, indent=2))
    (folder / "MODEL_CARD.md").write_text(f"# {manifest.get('name', model_id)}\n\nTest model.\n")
    return folder


@pytest.fixture
def site_models(hilum_home: Path) -> Path:
    """The site model folder under the test's HILUM_HOME."""
    root = paths.site_models_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def multilabel_model(site_models: Path) -> tuple[Path, onnx.ModelProto]:
    model = build_multilabel_224()
    data = model.SerializeToString()
    manifest = manifest_for(
        "ext_multilabel",
        data,
        task="multi-label",
        labels=[
            {"name": n, "threshold": t}
            for n, t in (
                ("opacity", 0.5),
                ("effusion", 0.4),
                ("cardiomegaly", 0.6),
                ("nodule", 0.3),
            )
        ],
        preprocessing={
            "frame": "first",
            "intensity": {"method": "percentile", "percentiles": [1, 99]},
            "monochrome1": "invert",
            "resize": "letterbox",
            "interpolation": "area",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
        },
        applicability={"modalities": ["CR", "DX"], "body_parts": ["CHEST"]},
    )
    return install(site_models, "ext_multilabel", data, manifest), model


@pytest.fixture
def multiclass_model(site_models: Path) -> tuple[Path, onnx.ModelProto]:
    model = build_multiclass_512()
    data = model.SerializeToString()
    manifest = manifest_for(
        "ext_ct512",
        data,
        task="multi-class",
        labels=[{"name": n, "threshold": 0.5} for n in ("normal", "bleed", "other")],
        input={
            "name": "pixels",
            "layout": "NHWC",
            "height": 512,
            "width": 512,
            "channels": 1,
            "dtype": "float32",
        },
        output={"name": "scores", "activation": "softmax"},
        preprocessing={
            "frame": "middle",
            "intensity": {"method": "window", "center": 40, "width": 80},
            "monochrome1": "invert",
            "resize": "stretch",
            "interpolation": "linear",
            "mean": [0.2],
            "std": [0.3],
        },
        applicability={"modalities": ["CT"]},
    )
    return install(site_models, "ext_ct512", data, manifest), model


@pytest.fixture
def bundled_copy(site_models: Path) -> Path:
    """A byte-identical copy of the bundled model installed as a site model (to tamper with)."""
    src = paths.bundled_models_dir() / BUNDLED_ID
    dst = site_models / BUNDLED_ID
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.py", "*.npz", "__pycache__"))
    # a site model reusing a bundled id must say so (issue 11 item 8), else it is refused
    manifest = json.loads((dst / "model.json").read_text(encoding="utf-8"))
    manifest["replaces"] = BUNDLED_ID
    (dst / "model.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return dst
