"""Remote inference benchmark: a v2 (Open Inference Protocol) server on loopback vs local onnxruntime.

Models: the bundled ``pneumonia_cnn`` and a DenseNet-121-sized classifier (the DenseNet-121
layout: growth 32, blocks 6/12/24/16, 224x224x3 input, 14 labels; random weights, built here with
``onnx.helper`` and installed as a site model with a real manifest). Both are exported with
``hilum models export-serving`` and served by MLServer 1.7.1 (``.venv-serving``, Hilum's
onnxruntime runtime) on 127.0.0.1. Local: :class:`~app.inference.engine.Engine` on the CPU;
remote: :class:`~app.inference.remote.RemoteEngine` over gRPC (``tritonclient.grpc``, tensors as raw
bytes; ``--http`` also measures the HTTP/REST path, where MLServer takes JSON tensors). Calls
alternate local/remote so load swings hit both; medians per call are compared.

Last line: ``{"benchmark": "remote_inference", "ratio": <remote img/s over local at batch 32,
DenseNet-sized>, "b1_ms_remote": .., "b1_ms_local": .., ...}`` with the load average.

Run: ``.venv/bin/python benchmarks/remote_inference.py [--calls-b32 3]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def densenet121(n_labels: int = 14, seed: int = 0) -> bytes:
    """A DenseNet-121 (BN-ReLU-Conv dense layers, transitions, GAP + linear head), random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes: list[Any] = []
    inits: list[Any] = []
    count = [0]

    def name(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def conv(x: str, cin: int, cout: int, k: int, stride: int = 1) -> str:
        w = name("w")
        inits.append(
            numpy_helper.from_array(
                (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(
                    np.float32
                ),
                w,
            )
        )
        y = name("conv")
        nodes.append(
            helper.make_node(
                "Conv",
                [x, w],
                [y],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
            )
        )
        return y

    def bn_relu(x: str, c: int) -> str:
        ps = [name(p) for p in ("g", "b", "m", "v")]
        vals = [
            1.0 + 0.05 * rng.standard_normal(c),
            0.05 * rng.standard_normal(c),
            0.05 * rng.standard_normal(c),
            1.0 + 0.1 * rng.random(c),
        ]
        inits.extend(numpy_helper.from_array(v.astype(np.float32), p) for p, v in zip(ps, vals))
        y, r = name("bn"), name("relu")
        nodes.append(helper.make_node("BatchNormalization", [x, *ps], [y]))
        nodes.append(helper.make_node("Relu", [y], [r]))
        return r

    x = conv("image", 3, 64, 7, 2)
    x = bn_relu(x, 64)
    p = name("pool")
    nodes.append(
        helper.make_node(
            "MaxPool", [x], [p], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
        )
    )
    x, c = p, 64
    for b, layers in enumerate((6, 12, 24, 16)):
        for _ in range(layers):
            h = conv(bn_relu(x, c), c, 128, 1)
            h = conv(bn_relu(h, 128), 128, 32, 3)
            cat = name("cat")
            nodes.append(helper.make_node("Concat", [x, h], [cat], axis=1))
            x, c = cat, c + 32
        if b < 3:
            t = conv(bn_relu(x, c), c, c // 2, 1)
            a = name("avg")
            nodes.append(
                helper.make_node("AveragePool", [t], [a], kernel_shape=[2, 2], strides=[2, 2])
            )
            x, c = a, c // 2
    feat = bn_relu(x, c)
    nodes.append(helper.make_node("GlobalAveragePool", [feat], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1))
    inits.append(
        numpy_helper.from_array(
            (rng.standard_normal((n_labels, c)) * 0.05).astype(np.float32), "head_w"
        )
    )
    inits.append(numpy_helper.from_array(np.zeros(n_labels, np.float32), "head_b"))
    nodes.append(helper.make_node("Gemm", ["flat", "head_w", "head_b"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "densenet121_random",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_labels])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hilum-benchmark"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def install_site_model(home: Path, model_id: str, data: bytes, n_labels: int = 14) -> None:
    """Install ``data`` as a site model with a manifest derived from the bundled one."""
    from app.core import paths

    raw = json.loads((paths.bundled_models_dir() / "pneumonia_cnn" / "model.json").read_text())
    folder = home / "models" / model_id
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(data)
    labels = [f"finding_{k}" for k in range(n_labels)]
    raw.update(
        id=model_id,
        name="DenseNet-121-sized benchmark model (random weights)",
        task="multi-label",
        sha256=hashlib.sha256(data).hexdigest(),
        labels=[{"name": n, "display_name": n, "threshold": 0.5} for n in labels],
        input={
            "name": "image",
            "layout": "NCHW",
            "height": 224,
            "width": 224,
            "channels": 3,
            "dtype": "float32",
        },
        output={"name": "logits", "activation": "sigmoid"},
    )
    raw["preprocessing"].update(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    raw["metrics"] = {
        "split": "none",
        "dataset": "random weights (benchmark only)",
        "labels": {
            n: {
                "auc": 0.5,
                "sensitivity": 0.5,
                "specificity": 0.5,
                "ece": 0.0,
                "threshold": 0.5,
                "n": 1,
                "n_positive": 0,
            }
            for n in labels
        },
    }
    for key in ("saliency", "replaces", "external_data", "card", "ood"):
        raw.pop(key, None)
    (folder / "model.json").write_text(json.dumps(raw, indent=2))


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def compare(local: Any, remote: Any, x: np.ndarray, calls: int) -> tuple[float, float, float]:
    """Median ms per call for local and remote (alternating), and the max abs difference."""
    diff = float(np.abs(local.probabilities(x) - remote.probabilities(x)).max())  # also warms both
    lt, rt = [], []
    for _ in range(calls):
        lt.append(timed(lambda: local.probabilities(x)))
        rt.append(timed(lambda: remote.probabilities(x)))
    return statistics.median(lt), statistics.median(rt), diff


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--calls-b1", type=int, default=15, help="calls per side at batch 1 (DenseNet-sized)"
    )
    ap.add_argument(
        "--calls-b32", type=int, default=3, help="calls per side at batch 32 (DenseNet-sized)"
    )
    ap.add_argument(
        "--threads", type=int, default=0, help="onnxruntime threads on each side (0: default)"
    )
    ap.add_argument(
        "--http", action="store_true", help="also measure the HTTP/REST (JSON tensor) client"
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hilum-bench-remote-"))
    os.environ["HILUM_HOME"] = str(work / "home")
    from app.inference.engine import Engine
    from app.inference.local_server import LocalMLServer
    from app.inference.registry import ModelRegistry
    from app.inference.remote import RemoteEngine, ServingConfig
    from app.saliency.serving import export_serving

    load_before = os.getloadavg()
    install_site_model(work / "home", "densenet121_random", densenet121())
    reg = ModelRegistry()
    models = {
        "pneumonia_cnn": reg.get("pneumonia_cnn"),
        "densenet121": reg.get("densenet121_random"),
    }
    for m in models.values():
        m.require_verified()
        export_serving(m, work / "repo")
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    server = LocalMLServer(work / "repo", work / "mlserver", threads=args.threads)
    try:
        server.start()
        for m in models.values():
            server.wait_ready(m.id, "1")
        for key, m in models.items():
            local = Engine(m, device="cpu", intra_op_threads=args.threads or None)
            urls = {"grpc": server.grpc_url, **({"http": server.url} if args.http else {})}
            for proto, url in urls.items():
                remote = RemoteEngine(m, ServingConfig(url, m.id, "1", timeout_s=600))
                small = key == "pneumonia_cnn"
                for batch, calls in (
                    (1, 200 if small else args.calls_b1),
                    (32, 100 if small else args.calls_b32),
                ):
                    x = rng.standard_normal((batch, *m.input.item_shape)).astype(np.float32)
                    lm, rm, diff = compare(local, remote, x, calls)
                    row = {
                        "model": key,
                        "protocol": proto,
                        "batch": batch,
                        "calls": calls,
                        "local_ms": round(lm, 2),
                        "remote_ms": round(rm, 2),
                        "local_img_s": round(batch * 1000 / lm, 1),
                        "remote_img_s": round(batch * 1000 / rm, 1),
                        "max_abs_diff": diff,
                    }
                    out[f"{key}_{proto}_b{batch}"] = row
                    print(json.dumps(row), flush=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    d1, d32 = out["densenet121_grpc_b1"], out["densenet121_grpc_b32"]
    p1, p32 = out["pneumonia_cnn_grpc_b1"], out["pneumonia_cnn_grpc_b32"]
    http = (
        {
            "http_json_ratio": round(
                out["densenet121_http_b32"]["remote_img_s"]
                / out["densenet121_http_b32"]["local_img_s"],
                3,
            )
        }
        if args.http
        else {}
    )
    print(
        json.dumps(
            {
                "benchmark": "remote_inference",
                "ratio": round(d32["remote_img_s"] / d32["local_img_s"], 3),
                "b1_ms_remote": d1["remote_ms"],
                "b1_ms_local": d1["local_ms"],
                "model": "densenet121-sized (random weights), CPU, MLServer 1.7.1 gRPC on 127.0.0.1",
                **http,
                "small_model_ratio_b32": round(p32["remote_img_s"] / p32["local_img_s"], 3),
                "small_model_b1_ms_remote": p1["remote_ms"],
                "small_model_b1_ms_local": p1["local_ms"],
                "loadavg_before": [round(v, 2) for v in load_before],
                "loadavg_after": [round(v, 2) for v in os.getloadavg()],
                "cpus": os.cpu_count(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
