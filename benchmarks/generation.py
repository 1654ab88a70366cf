"""Bundled generator speed: onnxruntime-genai vs Hugging Face transformers ``generate``.

Same weights (``models/report_generator/model`` and its ``hf/`` copy hold identical values), same
precision (fp32), same prompt, greedy decoding, the same number of new tokens (EOS suppressed by a
minimum length on both sides), in the same process. Prints a few lines, the last one JSON::

    {"benchmark": "generation", "ratio": <ours tokens/s over transformers>, "tokens_per_s": <x>, "ttft_ms": <x>, ...}

Usage: ``python benchmarks/generation.py [--new-tokens 128] [--runs 5] [--device cpu|cuda]``
(needs torch and transformers: the ``train`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.reporting.generator.prompt import format_prompt  # noqa: E402

MODEL_DIR = ROOT / "models" / "report_generator" / "model"
PROMPT = format_prompt(
    ["Cardiomegaly", "Pleural Effusion"], "Shortness of breath.", "PA and lateral"
)


def ours(
    model_dir: Path, ids: list[int], n_new: int, runs: int, device: str
) -> tuple[float, float, list[int]]:
    import onnxruntime_genai as og

    config = og.Config(str(model_dir))
    config.clear_providers()
    if device == "cuda":
        config.append_provider("cuda")
    model = og.Model(config)
    times, ttfts, out = [], [], []
    for i in range(runs + 1):  # first run is a warm-up
        params = og.GeneratorParams(model)
        params.set_search_options(
            max_length=len(ids) + n_new, min_length=len(ids) + n_new, do_sample=False
        )
        t0 = time.perf_counter()
        gen = og.Generator(model, params)
        gen.append_tokens(ids)
        toks: list[int] = []
        ttft = 0.0
        while not gen.is_done():
            gen.generate_next_token()
            toks.append(int(gen.get_next_tokens()[0]))
            if len(toks) == 1:
                ttft = time.perf_counter() - t0
        dt = time.perf_counter() - t0
        del gen
        if i:
            times.append(dt)
            ttfts.append(ttft)
            out = toks
    return len(out) / statistics.median(times), statistics.median(ttfts) * 1000, out


def transformers_generate(
    model_dir: Path, ids: list[int], n_new: int, runs: int, device: str
) -> tuple[float, float, list[int]]:
    import torch
    from transformers import LlamaForCausalLM

    model = (
        LlamaForCausalLM.from_pretrained(str(model_dir / "hf"), dtype=torch.float32)
        .to(device)
        .eval()
    )
    x = torch.tensor([ids], device=device)
    mask = torch.ones_like(x)
    times, ttfts, out = [], [], []
    with torch.inference_mode():
        for i in range(runs + 1):
            t0 = time.perf_counter()
            model.generate(
                x, attention_mask=mask, max_new_tokens=1, min_new_tokens=1, do_sample=False
            )
            if device == "cuda":
                torch.cuda.synchronize()
            ttft = time.perf_counter() - t0
            t0 = time.perf_counter()
            y = model.generate(
                x,
                attention_mask=mask,
                max_new_tokens=n_new,
                min_new_tokens=n_new,
                do_sample=False,
                pad_token_id=model.config.pad_token_id,
            )
            if device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            if i:
                times.append(dt)
                ttfts.append(ttft)
                out = [int(t) for t in y[0, len(ids) :]]
    return len(out) / statistics.median(times), statistics.median(ttfts) * 1000, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = ap.parse_args()
    import torch
    from tokenizers import Tokenizer

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)  # transformers gets every core, as onnxruntime does by default
    ids = Tokenizer.from_file(str(args.model_dir / "tokenizer.json")).encode(PROMPT).ids
    o_tps, o_ttft, o_out = ours(args.model_dir, ids, args.new_tokens, args.runs, args.device)
    print(f"onnxruntime-genai: {o_tps:.1f} tokens/s, time to first token {o_ttft:.1f} ms")
    t_tps, t_ttft, t_out = transformers_generate(
        args.model_dir, ids, args.new_tokens, args.runs, args.device
    )
    print(f"transformers generate: {t_tps:.1f} tokens/s, time to first token {t_ttft:.1f} ms")
    same = sum(a == b for a, b in zip(o_out, t_out))
    print(f"greedy tokens identical: {same}/{len(o_out)} (prompt {len(ids)} tokens)")
    print(
        json.dumps(
            {
                "benchmark": "generation",
                "ratio": round(o_tps / t_tps, 2),
                "tokens_per_s": round(o_tps, 1),
                "ttft_ms": round(o_ttft, 2),
                "transformers_tokens_per_s": round(t_tps, 1),
                "transformers_ttft_ms": round(t_ttft, 2),
                "new_tokens": args.new_tokens,
                "prompt_tokens": len(ids),
                "device": args.device,
                "threads": threads,
                "identical_tokens": f"{same}/{len(o_out)}",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
