"""Inference benchmark: Hilum's engine against a bare ``onnxruntime.InferenceSession.run``.

Both run the bundled ``pneumonia_cnn`` on the same preprocessed PneumoniaMNIST test images, at
batch 1 and batch 16, on the CPU, alternating call by call (so load swings on a shared machine hit
both alike); images/s from the median per-call times are compared. Ours is
:meth:`Engine.probabilities` (manifest input check + output activation), the path every analysis
uses; bare is ``session.run`` returning the raw logits.

Also measured, when torch is installed: torch eager on the same network (weights read from the
ONNX file), for ``cpu_vs_torch`` = onnxruntime images/s over torch images/s at batch 16.

Last line: ``{"benchmark": "inference", "ratio": ..., "cpu_vs_torch": ...}`` where ``ratio`` is
ours over bare, the lower of the two batch sizes (target >= 0.95).

Run: ``.venv/bin/python benchmarks/inference.py [--calls 4000]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import paths  # noqa: E402
from app.inference.engine import CPU, Engine  # noqa: E402
from app.inference.registry import ModelRegistry  # noqa: E402


def images_per_second(fn: Callable[[], Any], batch: int, seconds: float) -> float:
    """Run ``fn`` repeatedly for about ``seconds`` and return images per second."""
    fn()  # warm
    n, t0 = 0, time.perf_counter()
    deadline = t0 + seconds
    while True:
        fn()
        n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n * batch / (now - t0)


def torch_model_from_onnx(path: Path) -> Any:
    """Rebuild the bundled network in torch eager from its ONNX graph (Conv/Relu/MaxPool/GAP/Gemm)."""
    import onnx
    import torch
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in proto.graph.initializer}
    layers: list[torch.nn.Module] = []
    for node in proto.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            weight = w[node.input[1]]
            conv = torch.nn.Conv2d(
                weight.shape[1],
                weight.shape[0],
                tuple(attrs["kernel_shape"]),
                stride=tuple(attrs.get("strides", [1, 1])),
                padding=tuple(attrs.get("pads", [0, 0, 0, 0])[:2]),
                bias=len(node.input) > 2,
            )
            conv.weight.data = weight
            if len(node.input) > 2:
                conv.bias.data = w[node.input[2]]
            layers.append(conv)
        elif node.op_type == "Relu":
            layers.append(torch.nn.ReLU())
        elif node.op_type == "MaxPool":
            layers.append(
                torch.nn.MaxPool2d(
                    tuple(attrs["kernel_shape"]), tuple(attrs.get("strides", [1, 1]))
                )
            )
        elif node.op_type == "GlobalAveragePool":
            layers.append(torch.nn.AdaptiveAvgPool2d(1))
        elif node.op_type == "Flatten":
            layers.append(torch.nn.Flatten(1))
        elif node.op_type == "Gemm":
            weight = w[node.input[1]]
            lin = torch.nn.Linear(weight.shape[1], weight.shape[0])
            lin.weight.data, lin.bias.data = weight, w[node.input[2]]
            layers.append(lin)
        else:
            raise ValueError(f"unsupported op {node.op_type}")
    return torch.nn.Sequential(*layers).eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--calls", type=int, default=4000, help="alternating calls at batch 1 (1/8 at batch 16)"
    )
    ap.add_argument("--seconds", type=float, default=0.3, help="seconds per torch measurement")
    args = ap.parse_args()

    import onnxruntime as ort

    manifest = ModelRegistry().get("pneumonia_cnn")
    eng = Engine(manifest, device="cpu")
    bare = ort.InferenceSession(str(manifest.onnx_path), providers=[CPU])
    npz = paths.shared_data_dir() / "train" / "pneumoniamnist.npz"
    if not npz.is_file():
        print(f"PneumoniaMNIST not found at {npz} (set HILUM_SHARED_DATA)", file=sys.stderr)
        return 1
    images = np.load(npz)["test_images"][:16]
    x16 = np.stack([eng.preprocess(img)[0] for img in images])
    inputs = {1: x16[:1].copy(), 16: x16}
    in_name, out_name = manifest.input.name, manifest.output_name
    for b, x in inputs.items():  # same answers first
        np.testing.assert_allclose(
            eng.run_raw(x)[out_name], bare.run([out_name], {in_name: x})[0], rtol=1e-6
        )

    torch_fn: dict[int, Callable[[], Any]] = {}
    try:
        import torch

        tmodel = torch_model_from_onnx(manifest.onnx_path)
        tx = {b: torch.from_numpy(x) for b, x in inputs.items()}
        with torch.no_grad():
            np.testing.assert_allclose(
                tmodel(tx[16]).numpy(),
                bare.run([out_name], {in_name: x16})[0],
                rtol=1e-3,
                atol=1e-4,
            )

        def make(b: int) -> Callable[[], Any]:
            def run() -> Any:
                with torch.no_grad():
                    return tmodel(tx[b])

            return run

        torch_fn = {b: make(b) for b in inputs}
    except ImportError:
        torch = None  # type: ignore[assignment]

    # torch first, while onnxruntime's thread pools are idle (their spinning threads would slow it)
    torch_ips = {
        b: statistics.median(images_per_second(fn, b, args.seconds) for _ in range(5))
        for b, fn in torch_fn.items()
    }
    rows = []
    ratios = {}
    torch_ratio = None
    pc = time.perf_counter
    for b, x in inputs.items():
        # calls alternate one by one (ours, bare, bare, ours, ...) so that load swings on a shared
        # machine hit both alike; the medians of the per-call times are compared
        calls = args.calls if b == 1 else max(args.calls // 8, 50)
        ours_t, bare_t = [], []
        feed = {in_name: x}
        names = [out_name]
        for _ in range(20):
            eng.probabilities(x)
            bare.run(names, feed)
        for i in range(calls):
            if i % 2:
                t0 = pc()
                bare.run(names, feed)
                t1 = pc()
                eng.probabilities(x)
                t2 = pc()  # noqa: E702
                bare_t.append(t1 - t0)
                ours_t.append(t2 - t1)
            else:
                t0 = pc()
                eng.probabilities(x)
                t1 = pc()
                bare.run(names, feed)
                t2 = pc()  # noqa: E702
                ours_t.append(t1 - t0)
                bare_t.append(t2 - t1)
        o = b / statistics.median(ours_t)
        p = b / statistics.median(bare_t)
        ratios[b] = o / p
        t = torch_ips.get(b)
        rows.append((b, o, p, t))
        if b == 16 and t:
            torch_ratio = p / t
    print(
        f"{'batch':>5} {'hilum img/s':>12} {'bare ORT img/s':>15} {'ratio':>6} {'torch eager img/s':>18}"
    )
    for b, o, p, t in rows:
        print(f"{b:>5} {o:>12.0f} {p:>15.0f} {ratios[b]:>6.3f} {t if t is None else round(t):>18}")
    print(
        json.dumps(
            {
                "benchmark": "inference",
                "ratio": round(min(ratios.values()), 4),
                "cpu_vs_torch": round(torch_ratio, 3) if torch_ratio else None,
                "ratio_batch1": round(ratios[1], 4),
                "ratio_batch16": round(ratios[16], 4),
                "model": "pneumonia_cnn",
                "provider": eng.provider,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
