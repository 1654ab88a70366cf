"""Bundled report generator on the GPU machine: onnxruntime-genai CUDA against CPU, same run.

Reuses :func:`benchmarks.generation.ours` (greedy, fixed prompt, fixed number of new tokens) and
checks first that CUDA and CPU produce the same greedy tokens. The peer comparison with HF
transformers lives in ``benchmarks/generation.py`` (CPU, where transformers is installed).
Last line JSON: ``{"benchmark": "gpu_generation", "ratio": <cuda tokens/s over cpu>, ...}``.

Usage (GPU machine, after ../shared/tools/gpu install with onnxruntime-genai-cuda and tokenizers
wheels): ``python3 benchmarks/gpu_generation.py``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generation import MODEL_DIR, PROMPT, ours  # noqa: E402


def main() -> int:
    from tokenizers import Tokenizer

    try:  # onnxruntime-gpu finds the CUDA/cuDNN libraries of the nvidia-* wheels; genai then loads
        import onnxruntime

        onnxruntime.preload_dlls()
    except Exception:  # noqa: BLE001 - CPU-only machines
        pass

    ids = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json")).encode(PROMPT).ids
    c_tps, c_ttft, c_out = ours(MODEL_DIR, ids, 128, 5, "cpu")
    print(f"onnxruntime-genai CPU : {c_tps:8.1f} tokens/s, time to first token {c_ttft:6.2f} ms")
    try:
        g_tps, g_ttft, g_out = ours(MODEL_DIR, ids, 128, 5, "cuda")
    except Exception as exc:  # noqa: BLE001 - report a missing CUDA provider as a result
        print(f"onnxruntime-genai CUDA: unavailable ({exc})")
        print(
            json.dumps(
                {"benchmark": "gpu_generation", "ratio": None, "cpu_tokens_per_s": round(c_tps, 1)}
            )
        )
        return 1
    same = sum(a == b for a, b in zip(c_out, g_out))
    print(f"onnxruntime-genai CUDA: {g_tps:8.1f} tokens/s, time to first token {g_ttft:6.2f} ms")
    print(f"greedy tokens identical CPU vs CUDA: {same}/{len(c_out)}")
    print(
        json.dumps(
            {
                "benchmark": "gpu_generation",
                "ratio": round(g_tps / c_tps, 2),
                "cuda_tokens_per_s": round(g_tps, 1),
                "cuda_ttft_ms": round(g_ttft, 2),
                "cpu_tokens_per_s": round(c_tps, 1),
                "cpu_ttft_ms": round(c_ttft, 2),
                "identical_tokens": f"{same}/{len(c_out)}",
                "prompt_tokens": len(ids),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
