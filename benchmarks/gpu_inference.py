"""GPU inference benchmark for the lent H200 (headless; no Qt, no DICOM).

Measures, through Hilum's manifest-driven :class:`~app.inference.engine.Engine` and through raw
onnxruntime sessions, for the bundled ``pneumonia_cnn`` (1x28x28) and a DenseNet-121-sized
classifier (3x224x224, 14 labels, random weights, built here with onnx.helper):

* correctness first: CUDA fp32 and fp16 outputs against CPU fp32 on the same inputs;
* batch-1 latency and batch-32 throughput: CPU; CUDA fp32/fp16 through the engine (inputs from
  host memory, IOBinding with outputs on the device); CUDA plain ``session.run`` (no IOBinding);
  CUDA with inputs and outputs pre-bound on the device; and the same with ``enable_cuda_graph``.

Prints a table last, writes everything to ``$OUT/gpu_inference.json`` (or ``--out``), and ends
with one JSON line. Without a working CUDA device it still runs the CPU rows (to check the script
here) and marks the CUDA rows as unavailable.

On the GPU machine (see ../shared/tools/gpu/README.md), from the project root::

    ../shared/tools/gpu/prepare.sh platformdirs==4.14.5 jsonschema==4.26.0 \\
        jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 attrs==26.1.0 \\
        typing_extensions==4.16.0
    # then the device calls it prints, the last one ending with:
    #   source .gpu-meta/install.sh && python3 benchmarks/gpu_inference.py

Here (CPU only): ``.venv/bin/python benchmarks/gpu_inference.py --quick``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


# --- a DenseNet-121-sized model, built with onnx.helper ----------------------------------------------
def build_densenet121(n_labels: int = 14, seed: int = 0) -> bytes:
    """DenseNet-121 (growth 32, blocks 6/12/24/16, BN-ReLU-Conv) with random He-initialised weights.

    8.0 M parameters, ~2.9 GFLOPs at 224x224; ends ReLU -> GlobalAveragePool -> Flatten -> Gemm.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes: list[Any] = []
    inits: list[Any] = []
    count = [0]

    def name(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def conv(x: str, c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0) -> str:
        wn, out = name("w"), name("conv")
        w = rng.normal(0, np.sqrt(2.0 / (c_in * k * k)), (c_out, c_in, k, k)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, wn))
        nodes.append(
            helper.make_node(
                "Conv",
                [x, wn],
                [out],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[pad] * 4,
            )
        )
        return out

    def bn_relu(x: str, c: int) -> str:
        names = [name(p) for p in ("g", "b", "m", "v")]
        vals = [np.ones(c), np.zeros(c), rng.normal(0, 0.05, c), np.ones(c)]
        inits.extend(numpy_helper.from_array(v.astype(np.float32), n) for v, n in zip(vals, names))
        bn, out = name("bn"), name("relu")
        nodes.append(helper.make_node("BatchNormalization", [x, *names], [bn], epsilon=1e-5))
        nodes.append(helper.make_node("Relu", [bn], [out]))
        return out

    x = conv("image", 3, 64, 7, 2, 3)
    x = bn_relu(x, 64)
    pooled = name("pool")
    nodes.append(
        helper.make_node(
            "MaxPool", [x], [pooled], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
        )
    )
    x, c = pooled, 64
    for bi, n_layers in enumerate((6, 12, 24, 16)):
        for _ in range(n_layers):
            y = conv(bn_relu(x, c), c, 128, 1)
            y = conv(bn_relu(y, 128), 128, 32, 3, 1, 1)
            cat = name("cat")
            nodes.append(helper.make_node("Concat", [x, y], [cat], axis=1))
            x, c = cat, c + 32
        if bi < 3:
            y = conv(bn_relu(x, c), c, c // 2, 1)
            ap = name("avg")
            nodes.append(
                helper.make_node("AveragePool", [y], [ap], kernel_shape=[2, 2], strides=[2, 2])
            )
            x, c = ap, c // 2
    feat = bn_relu(x, c)
    nodes.append(helper.make_node("GlobalAveragePool", [feat], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1))
    wh = rng.normal(0, 0.01, (n_labels, c)).astype(np.float32)
    inits += [
        numpy_helper.from_array(wh, "head_w"),
        numpy_helper.from_array(np.zeros(n_labels, np.float32), "head_b"),
    ]
    nodes.append(helper.make_node("Gemm", ["flat", "head_w", "head_b"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "densenet121",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_labels])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hilum-bench"
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())


def install_densenet(site: Path) -> None:
    """Install the DenseNet-sized model as a site model with a full manifest."""
    data = build_densenet121()
    folder = site / "densenet121_bench"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(data)
    labels = [f"finding_{i}" for i in range(14)]
    manifest = {
        "schema_version": 1,
        "id": "densenet121_bench",
        "name": "DenseNet-121-sized benchmark model (random weights)",
        "version": "0",
        "task": "multi-label",
        "file": "model.onnx",
        "sha256": hashlib.sha256(data).hexdigest(),
        "labels": [{"name": n, "threshold": 0.5} for n in labels],
        "input": {
            "name": "image",
            "layout": "NCHW",
            "height": 224,
            "width": 224,
            "channels": 3,
            "dtype": "float32",
        },
        "output": {"name": "logits", "activation": "sigmoid"},
        "preprocessing": {
            "resize": "letterbox",
            "intensity": {"method": "display"},
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
        },
        "applicability": {"modalities": ["CR", "DX"]},
        "intended_use": "Benchmark only.",
        "training_data": {"name": "none (random weights)"},
        "metrics": {},
        "allow_fp16": True,
    }
    (folder / "model.json").write_text(json.dumps(manifest))


# --- timing helpers ---------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], iters: int, warmup: int = 5) -> list[float]:
    """Per-call wall times in ms."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def summarise(ms: list[float], batch: int) -> dict[str, float]:
    med = float(np.median(ms))
    return {
        "median_ms": round(med, 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "img_per_s": round(batch * 1000.0 / med, 1),
    }


def raw_session(
    model_bytes: bytes, cuda: bool, fp16: bool = False, cuda_graph: bool = False
) -> Any:
    import onnxruntime as ort

    from app.inference.engine import to_fp16

    data = to_fp16(model_bytes) if fp16 else model_bytes
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if not cuda:
        return ort.InferenceSession(data, so, providers=[CPU])
    opts: dict[str, str] = {"enable_cuda_graph": "1"} if cuda_graph else {}
    return ort.InferenceSession(data, so, providers=[(CUDA, opts), CPU])


def prebound(
    sess: Any, x: np.ndarray, in_name: str, out_name: str, n_out: int
) -> Callable[[], Any]:
    """Input and output allocated on the device and bound once; each call only runs."""
    import onnxruntime as ort

    x_dev = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    y_dev = ort.OrtValue.ortvalue_from_shape_and_type((x.shape[0], n_out), np.float32, "cuda", 0)
    io = sess.io_binding()
    io.bind_ortvalue_input(in_name, x_dev)
    io.bind_ortvalue_output(out_name, y_dev)
    ro = ort.RunOptions()

    def run() -> Any:
        sess.run_with_iobinding(io, ro)
        return y_dev

    run.keep = (x_dev, y_dev, io)  # type: ignore[attr-defined]
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out", default=os.environ.get("OUT", ""), help="folder for gpu_inference.json"
    )
    ap.add_argument("--quick", action="store_true", help="few iterations (for a CPU check)")
    ap.add_argument("--iters", type=int, default=0)
    args = ap.parse_args()

    import onnxruntime as ort

    try:
        ort.preload_dlls()
    except Exception:  # noqa: BLE001
        pass
    home = Path(tempfile.mkdtemp(prefix="hilum_gpu_bench_"))
    os.environ["HILUM_HOME"] = str(home)
    from app.core import paths
    from app.inference import engine as engine_mod
    from app.inference.engine import Engine
    from app.inference.registry import ModelRegistry

    install_densenet(paths.site_models_dir())
    reg = ModelRegistry()
    problems = {m.id: m.problems for m in reg.models() if not m.verified}
    if problems:
        print("model verification failed:", problems)
        return 1
    info: dict[str, Any] = {
        "host": platform.node(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }
    try:
        Engine(reg.get("pneumonia_cnn"), device="cuda")
        has_cuda = True
    except Exception as exc:  # noqa: BLE001
        has_cuda = False
        info["cuda_unavailable"] = str(exc)
    print(json.dumps(info))
    rng = np.random.default_rng(0)
    iters_small = args.iters or (5 if args.quick else 200)
    iters_big = args.iters or (3 if args.quick else 50)
    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []

    for model_id in ("pneumonia_cnn", "densenet121_bench"):
        m = reg.get(model_id)
        spec = m.input
        n_out = len(m.labels)
        model_bytes = m.onnx_path.read_bytes()
        xs = {b: rng.normal(0, 1, (b, *spec.item_shape)).astype(np.float32) for b in (1, 32)}
        big = model_id != "pneumonia_cnn"
        iters = iters_big if big else iters_small
        cpu = Engine(m, device="cpu")
        ref = {b: cpu.run_raw(x)[m.output_name] for b, x in xs.items()}

        def add(variant: str, b: int, ms: list[float]) -> None:
            rows.append({"model": model_id, "variant": variant, "batch": b, **summarise(ms, b)})
            print(
                f"  {model_id:18} {variant:34} batch {b:3d}: {rows[-1]['median_ms']:9.3f} ms  "
                f"{rows[-1]['img_per_s']:10.1f} img/s",
                flush=True,
            )

        for b, x in xs.items():
            add(
                "CPU engine fp32",
                b,
                timed(lambda: cpu.probabilities(x), max(3, iters // (4 if big else 1))),
            )
        if not has_cuda:
            continue
        for fp16 in (False, True):
            engine_mod._cuda_failed = None
            eng = Engine(m, device="cuda", fp16=fp16)
            tag = "fp16" if eng.fp16 else "fp32"
            for b, x in xs.items():  # correctness first
                out = eng.run_raw(x)[m.output_name]
                err = float(np.abs(out - ref[b]).max())
                scale = float(np.abs(ref[b]).max()) or 1.0
                checks.append(
                    {
                        "model": model_id,
                        "precision": tag,
                        "batch": b,
                        "provider": eng.provider,
                        "max_abs_err": err,
                        "max_rel_err": err / scale,
                    }
                )
                print(
                    f"  check {model_id} {tag} batch {b}: max |CUDA - CPU| = {err:.3g} (rel {err / scale:.3g})"
                )
            for b, x in xs.items():
                add(
                    f"CUDA engine {tag} (IOBinding, host in)",
                    b,
                    timed(lambda: eng.probabilities(x), iters),
                )
            plain = raw_session(model_bytes, True, fp16=fp16)
            for b, x in xs.items():
                add(
                    f"CUDA session.run {tag} (no IOBinding)",
                    b,
                    timed(lambda: plain.run([m.output_name], {spec.name: x}), iters),
                )
            for b, x in xs.items():
                add(
                    f"CUDA {tag} pre-bound on device",
                    b,
                    timed(prebound(plain, x, spec.name, m.output_name, n_out), iters),
                )
            for b, x in xs.items():
                try:
                    g = raw_session(model_bytes, True, fp16=fp16, cuda_graph=True)
                    fn = prebound(g, x, spec.name, m.output_name, n_out)
                    add(f"CUDA {tag} pre-bound + CUDA graph", b, timed(fn, iters))
                except Exception as exc:  # noqa: BLE001 - report, do not stop
                    print(
                        f"  CUDA graph {model_id} {tag} batch {b} failed: {type(exc).__name__}: {exc}"
                    )

    result = {"info": info, "checks": checks, "rows": rows}
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_inference.json").write_text(json.dumps(result, indent=2))
    print()
    print("| model | variant | batch | median ms | img/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['variant']} | {r['batch']} | {r['median_ms']:.3f} | {r['img_per_s']:.1f} |"
        )
    for c in checks:
        print(
            f"| {c['model']} | correctness {c['precision']} vs CPU | {c['batch']} | max abs err {c['max_abs_err']:.2e} | rel {c['max_rel_err']:.2e} |"
        )

    def pick(model: str, variant: str, batch: int) -> float | None:
        for r in rows:
            if r["model"] == model and r["variant"] == variant and r["batch"] == batch:
                return float(r["img_per_s"])
        return None

    d = "densenet121_bench"
    cpu32 = pick(d, "CPU engine fp32", 32)
    best32 = max(
        (
            r["img_per_s"]
            for r in rows
            if r["model"] == d and r["batch"] == 32 and "CUDA" in r["variant"]
        ),
        default=None,
    )
    summary = {
        "benchmark": "gpu_inference",
        "cuda": has_cuda,
        "densenet_b32_cuda_best_img_s": best32,
        "densenet_b32_cpu_img_s": cpu32,
        "ratio": round(best32 / cpu32, 2) if best32 and cpu32 else None,
        "densenet_b1_prebound_fp32_ms": next(
            (
                r["median_ms"]
                for r in rows
                if r["model"] == d
                and r["batch"] == 1
                and r["variant"] == "CUDA fp32 pre-bound on device"
            ),
            None,
        ),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
