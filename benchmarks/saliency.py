"""Saliency benchmark: one-pass CAM and device-side RISE against plain forward passes.

In one run, on a DenseNet-121-sized classifier (3x224x224, 14 labels, random weights, built here
with torch and exported to ONNX in a temporary folder) and on the bundled ``pneumonia_cnn`` when
its ``model.onnx`` is installed:

* correctness first: our CAM against torch autograd Grad-CAM on the same weights (Pearson r);
* ``ratio``: CAM (one forward pass of the rewritten graph that also returns the feature map,
  plus the maps of all labels) over a plain onnxruntime forward pass, batch 1;
* ``torch_gradcam_over_forward``: gradient Grad-CAM in torch (forward + backward for one label)
  over a torch forward pass (no grad), batch 1, same device;
* ``rise_ratio``: RISE with N masks (all labels, masks expanded, blended, scored and accumulated
  by the device in one run per batch) over N/B plain forward passes of batches of B images.

Targets: ratio <= 1.1, rise_ratio <= 1.1. The last line printed is one JSON object.

Here (CPU)::

    nice -n 10 .venv/bin/python benchmarks/saliency.py --quick

On the lent GPU machine (python3.12 with torch, numpy, onnx and onnxruntime-gpu; no Qt), from the
project root, after installing onnxruntime-gpu as ../shared/tools/gpu/README.md says::

    python3 benchmarks/saliency.py --device cuda --out "$OUT/saliency.json"

Imports only numpy, onnx, onnxruntime, torch and ``app.saliency`` (no Qt, no OpenCV needed).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.saliency.api import Explainer, OrtRunner  # noqa: E402
from app.saliency.cam import normalise_map  # noqa: E402
from app.saliency.perturbation import rise  # noqa: E402

N_LABELS = 14


# --- a compact DenseNet-121 (same layout as torchvision's; torchvision is not needed) -----------
def densenet121(n_labels: int = N_LABELS) -> Any:
    """DenseNet-121: growth 32, blocks 6/12/24/16, bottleneck 4, init 64 (~8.0 M parameters)."""
    import torch
    from torch import nn

    class Dense(nn.Module):
        def __init__(self, c_in: int, growth: int = 32, bn_size: int = 4) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.BatchNorm2d(c_in),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_in, bn_size * growth, 1, bias=False),
                nn.BatchNorm2d(bn_size * growth),
                nn.ReLU(inplace=True),
                nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False),
            )

        def forward(self, x: Any) -> Any:
            return torch.cat([x, self.body(x)], 1)

    layers: list[Any] = [
        nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    c = 64
    for i, n in enumerate((6, 12, 24, 16)):
        for _ in range(n):
            layers.append(Dense(c))
            c += 32
        if i < 3:  # transition: halve channels and resolution
            layers += [
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c // 2, 1, bias=False),
                nn.AvgPool2d(2, stride=2),
            ]
            c //= 2
    layers.append(nn.BatchNorm2d(c))

    class DenseNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(c, n_labels)

        def feature_map(self, x: Any) -> Any:
            return torch.relu(self.features(x))

        def head(self, f: Any) -> Any:
            return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(f, 1), 1))

        def forward(self, x: Any) -> Any:
            return self.head(self.feature_map(x))

    torch.manual_seed(0)
    net = DenseNet()
    with torch.no_grad():  # non-trivial BN statistics so the maps are not degenerate
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.8, 1.2)
    return net.eval()


def export_onnx(net: Any, size: int = 224) -> bytes:
    import torch

    buf = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            torch.randn(1, 3, size, size),
            buf,
            input_names=["image"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        )
    return buf.getvalue()


# --- timing ----------------------------------------------------------------------------------------
def median_ms(
    fn: Callable[[], Any], repeats: int, warmup: int = 2, sync: Callable[[], None] | None = None
) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def paired_ratio(
    a: Callable[[], Any], b: Callable[[], Any], repeats: int, warmup: int = 3
) -> tuple[float, float, float, float]:
    """Run ``a`` and ``b`` alternately (so load drifts hit both).

    Returns the median times of ``a`` and ``b`` (ms), the median of the per-pair ratios a/b (the
    headline: robust on a shared machine) and the ratio of the minimum times.
    """
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for k in range(repeats):
        first, second = (a, b) if k % 2 == 0 else (b, a)  # alternate the order too
        t0 = time.perf_counter()
        first()
        t1 = time.perf_counter()
        second()
        t2 = time.perf_counter()
        (ta if first is a else tb).append((t1 - t0) * 1000)
        (tb if first is a else ta).append((t2 - t1) * 1000)
    ratios = [x / y for x, y in zip(ta, tb)]
    return (
        statistics.median(ta),
        statistics.median(tb),
        statistics.median(ratios),
        min(ta) / min(tb),
    )


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


# --- benchmark parts -----------------------------------------------------------------------------
def cam_part(
    model: bytes, labels: list[str], shape: tuple[int, ...], device: str, repeats: int
) -> dict[str, Any]:
    """CAM (rewritten graph + maps of all labels) over a plain forward, batch 1."""
    plain = OrtRunner(model, device=device)
    ex = Explainer(model, labels, device=device)
    if not ex.supports_cam:
        return {"cam": False}
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)

    def cam() -> None:
        _out, maps = ex.forward(x)
        normalise_map(maps)

    t_cam, t_plain, ratio, ratio_min = paired_ratio(cam, lambda: plain.run_raw(x), repeats)
    return {
        "provider": plain.provider,
        "forward_ms": round(t_plain, 3),
        "cam_ms": round(t_cam, 3),
        "ratio": round(ratio, 4),
        "ratio_of_minima": round(ratio_min, 4),
        "feature_tensor": ex.cam.feature_name if ex.cam else None,
        "maps_shape": list(ex.forward(x)[1].shape) if ex.cam else None,
    }  # type: ignore[union-attr]


def rise_part(
    model: bytes,
    labels: list[str],
    shape: tuple[int, ...],
    device: str,
    n_masks: int,
    batch: int,
    repeats: int,
) -> dict[str, Any]:
    """RISE with N masks over N/B batched plain forwards."""
    plain = OrtRunner(model, device=device)
    ex = Explainer(model, labels, activation="sigmoid", device=device)
    x = np.random.default_rng(1).random((1, *shape), dtype=np.float32)
    xb = np.random.default_rng(2).random((batch, *shape), dtype=np.float32)
    device_side = ex.rise_accumulator(x) is not None
    hw = (int(shape[1]), int(shape[2]))
    all_labels = list(range(len(labels)))

    def run_rise() -> None:
        acc = ex.rise_accumulator(x)  # fresh device-side sums per run
        rise(
            None if acc else ex.masked_score(x),
            hw,
            all_labels,
            n_masks=n_masks,
            batch_size=batch,
            seed=0,
            accumulator=acc,
        )

    n_batches = -(-n_masks // batch)

    def run_plain() -> None:
        for _ in range(n_batches):
            plain.run_raw(xb)

    t_rise, t_plain, ratio, ratio_min = paired_ratio(run_rise, run_plain, repeats, warmup=1)
    return {
        "n_masks": n_masks,
        "batch": batch,
        "device_side": device_side,
        "rise_ms": round(t_rise, 2),
        "plain_forward_ms": round(t_plain, 2),
        "rise_ratio": round(ratio, 4),
        "rise_ratio_of_minima": round(ratio_min, 4),
        "masks_per_s": round(n_masks / t_rise * 1000, 1),
    }


def torch_part(
    net: Any, ex: Explainer, device: str, repeats: int, n_compare: int
) -> dict[str, Any]:
    """Torch forward vs forward+backward Grad-CAM, and agreement of our CAM with it."""
    import torch

    import os

    dev = torch.device("cuda" if device == "cuda" else "cpu")
    if dev.type == "cpu":
        torch.set_num_threads(
            max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        )
    net = net.to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    x_np = np.random.default_rng(3).random((1, 3, 224, 224), dtype=np.float32)
    x = torch.from_numpy(x_np).to(dev)

    def forward() -> None:
        with torch.no_grad():
            net(x)

    def gradcam(label: int = 0) -> np.ndarray:
        f = net.feature_map(x)
        f.retain_grad()
        logits = net.head(f)
        net.zero_grad(set_to_none=True)
        logits[0, label].backward()
        alpha = f.grad.mean(dim=(2, 3), keepdim=True)
        return torch.relu((alpha * f).sum(dim=1))[0].detach().cpu().numpy()

    t_fwd = median_ms(forward, repeats, sync=sync)
    t_fb = median_ms(gradcam, repeats, sync=sync)
    # Correctness: our one-pass CAM against autograd Grad-CAM, every label.
    _out, maps = ex.forward(x_np)
    assert maps is not None
    ours = normalise_map(maps[0])
    rs = []
    for label in range(min(n_compare, ours.shape[0])):
        ref = gradcam(label)
        rs.append(pearson(ours[label], ref / ref.max()) if ref.max() > 0 else float("nan"))
    finite = [r for r in rs if r == r]
    return {
        "torch_device": dev.type,
        "torch_forward_ms": round(t_fwd, 3),
        "torch_forward_backward_ms": round(t_fb, 3),
        "torch_forward_img_s": round(1000 / t_fwd, 1),
        "torch_gradcam_img_s": round(1000 / t_fb, 1),
        "torch_gradcam_over_forward": round(t_fb / t_fwd, 4),
        "cam_vs_gradcam_pearson_min": round(min(finite), 6) if finite else None,
        "labels_compared": len(finite),
    }


def bundled_part(device: str, repeats: int) -> dict[str, Any] | None:
    model_dir = ROOT / "models" / "pneumonia_cnn"
    onnx_path = model_dir / "model.onnx"
    if not onnx_path.is_file():
        return None
    import onnx

    proto = onnx.load(str(onnx_path))
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim][1:]
    labels = ["pneumonia"]
    try:
        labels = [
            lab["name"] for lab in json.loads((model_dir / "model.json").read_text())["labels"]
        ]
    except (OSError, KeyError, ValueError):
        pass
    out = cam_part(onnx_path.read_bytes(), labels, tuple(int(d) for d in dims), device, repeats)
    out["input_shape"] = dims
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    ap.add_argument(
        "--rise-masks", type=int, default=None, help="RISE masks (default 2048 cuda, 256 cpu)"
    )
    ap.add_argument("--batch", type=int, default=32, help="RISE / plain batch size")
    ap.add_argument(
        "--rise-repeats", type=int, default=None, help="timed RISE runs (default 3 cuda, 2 cpu)"
    )
    ap.add_argument("--quick", action="store_true", help="fewer repeats and masks (CPU check)")
    ap.add_argument("--out", default=None, help="also write the full results as JSON here")
    ap.add_argument(
        "--parts",
        default="cam,torch,rise,bundled",
        help="comma-separated subset of cam,torch,rise,bundled to run",
    )
    args = ap.parse_args(argv)
    device = args.device
    if device == "auto":
        import onnxruntime as ort

        device = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    on_gpu = device == "cuda"
    repeats = args.repeats or (50 if on_gpu else (5 if args.quick else 15))
    n_masks = args.rise_masks or (2048 if on_gpu else (64 if args.quick else 256))
    labels = [f"label_{i}" for i in range(N_LABELS)]

    t0 = time.perf_counter()
    net: Any = None
    try:
        net = densenet121()
        model = export_onnx(net)
        source = "torch export"
    except ImportError:  # no torch: an equivalent DenseNet-121 graph built with onnx.helper
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from gpu_inference import build_densenet121  # type: ignore[import-not-found]

        model = build_densenet121(N_LABELS)
        source = "onnx.helper"
    results: dict[str, Any] = {
        "device": device,
        "platform": platform.platform(),
        "model": {
            "name": "DenseNet-121",
            "input": [3, 224, 224],
            "labels": N_LABELS,
            "source": source,
            "bytes": len(model),
            "build_s": round(time.perf_counter() - t0, 1),
        },
    }
    print(
        f"DenseNet-121 ({source}, {len(model) / 1e6:.1f} MB) built in {results['model']['build_s']} s",
        flush=True,
    )

    parts = set(args.parts.split(","))
    results["densenet_cam"] = {}
    if "cam" in parts:
        results["densenet_cam"] = cam_part(model, labels, (3, 224, 224), device, repeats)
        print("CAM       ", json.dumps(results["densenet_cam"]), flush=True)
    if net is not None and "torch" in parts:
        ex = Explainer(model, labels, device=device)
        results["torch"] = torch_part(
            net, ex, device, max(3, repeats // 2), N_LABELS if on_gpu else 4
        )
        print("torch     ", json.dumps(results["torch"]), flush=True)
    results["rise"] = {}
    if "rise" in parts:
        results["rise"] = rise_part(
            model,
            labels,
            (3, 224, 224),
            device,
            n_masks,
            args.batch,
            args.rise_repeats or (3 if on_gpu else (1 if args.quick else 2)),
        )
        print("RISE      ", json.dumps(results["rise"]), flush=True)
    results["bundled_cam"] = bundled_part(device, repeats * 4) if "bundled" in parts else None
    print("bundled   ", json.dumps(results["bundled_cam"]), flush=True)

    cam_r = results["densenet_cam"].get("ratio")
    torch_r = results.get("torch", {}).get("torch_gradcam_over_forward")
    rise_r = results["rise"].get("rise_ratio")
    print()
    print(f"{'measure':<44}{'value':>12}  target")
    print(f"{'CAM / plain forward (DenseNet-121, b=1)':<44}{cam_r!s:>12}  <= 1.1")
    print(f"{'RISE N masks / (N/B) batched forwards':<44}{rise_r!s:>12}  <= 1.1")
    if torch_r is not None:
        print(f"{'torch Grad-CAM (fwd+bwd) / torch forward':<44}{torch_r:>12}")
        print(
            f"{'min Pearson r, our CAM vs torch Grad-CAM':<44}{results['torch']['cam_vs_gradcam_pearson_min']:>12}  >= 0.99"
        )
    if results["bundled_cam"]:
        print(
            f"{'CAM / plain forward (bundled pneumonia_cnn)':<44}{results['bundled_cam'].get('ratio'):>12}"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    print(
        json.dumps(
            {
                "benchmark": "saliency",
                "ratio": cam_r,
                "torch_gradcam_over_forward": torch_r,
                "rise_ratio": rise_r,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
