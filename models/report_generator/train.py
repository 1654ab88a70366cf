"""Train the bundled report generator from scratch and build its onnxruntime-genai folder.

Build-time only (needs the ``train`` extra: torch, transformers, onnx-ir)::

    nice -n 10 .venv/bin/python models/report_generator/train.py --minutes 25

Steps: load ``indiana_reports.csv`` (reports with both FINDINGS and IMPRESSION), the fixed
seeded split by uid (``app.reporting.generator.dataset``), train a byte-level BPE tokenizer on the
training split, train a small Llama-style decoder on ``prompt -> report`` (loss on the report
tokens only), then export with onnxruntime-genai's model builder (fp32, CPU; the same folder runs
on CUDA through onnxruntime-genai-cuda) into ``models/report_generator/model/``.

Conditioning is what makes a draft useful, so the script works on it explicitly:
* the prompt lists the coded findings first, in random order each epoch, either as the coarse
  ``Problems`` codes or as the detailed MeSH codes (``Lung/hypoinflation``), so both steer;
* reports with rarer frequent findings are oversampled (up to 4x) so each of the frequent findings
  is seen a few hundred times per epoch;
* weights are rounded to float16 precision before export and also saved as float16 safetensors
  (``hf/``), so the benchmark can run Hugging Face ``generate`` on exactly the same weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from app.core.paths import shared_data_dir  # noqa: E402
from app.reporting.generator.dataset import Report, load_reports, split  # noqa: E402
from app.reporting.generator.prompt import (  # noqa: E402
    EOS,
    SPECIAL_TOKENS,
    format_prompt,
    format_report,
)

log = logging.getLogger("train")

MODEL_ID = "report_generator"
VOCAB_SIZE = 2048
MAX_LEN = 320
CONFIG = dict(
    hidden_size=256,
    intermediate_size=768,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=512,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    tie_word_embeddings=False,
)


def train_tokenizer(texts: list[str], out_dir: Path) -> "object":
    """Byte-level BPE (HF ``tokenizers``) trained on the training split only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))
    # GPT2Tokenizer is what both transformers and onnxruntime-genai's tokenizer understand for a
    # byte-level BPE tokenizer.json; no BOS is added (the prompt starts with <|findings|>).
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "GPT2Tokenizer",
                "bos_token": EOS,
                "eos_token": EOS,
                "pad_token": EOS,
                "unk_token": EOS,
                "add_bos_token": False,
                "add_prefix_space": False,
                "model_max_length": 512,
                "clean_up_tokenization_spaces": False,
            },
            indent=1,
        )
    )
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps(
            {"bos_token": EOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}, indent=1
        )
    )
    return tok


def conditioning(r: Report, rng: random.Random) -> list[str]:
    """Randomised conditioning terms for one training example (coarse or detailed, shuffled)."""
    terms = list(r.mesh if (rng.random() < 0.5 and r.mesh) else r.problems)
    terms = list(dict.fromkeys(terms))
    rng.shuffle(terms)
    return terms


def build_epoch(
    train: list[Report], reps: list[int], tok: "object", rng: random.Random, batch_size: int
) -> list[list[tuple[list[int], int]]]:
    """Tokenised, oversampled, length-bucketed batches for one epoch."""
    items: list[tuple[list[int], int]] = []
    for r, k in zip(train, reps):
        for _ in range(k):
            p = tok.encode(format_prompt(conditioning(r, rng), r.indication, r.view)).ids
            t = tok.encode(format_report(r.findings, r.impression) + EOS).ids
            ids = (p + t)[:MAX_LEN]
            items.append((ids, len(p)))
    rng.shuffle(items)
    batches = []
    chunk = batch_size * 50
    for i in range(0, len(items), chunk):
        block = sorted(items[i : i + chunk], key=lambda x: len(x[0]))
        batches += [block[j : j + batch_size] for j in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(batch: list[tuple[list[int], int]], pad: int) -> tuple["object", "object", "object"]:
    import torch

    n = max(len(ids) for ids, _ in batch)
    x = torch.full((len(batch), n), pad, dtype=torch.long)
    y = torch.full((len(batch), n), -100, dtype=torch.long)
    m = torch.zeros((len(batch), n), dtype=torch.long)
    for i, (ids, plen) in enumerate(batch):
        x[i, : len(ids)] = torch.tensor(ids)
        m[i, : len(ids)] = 1
        y[i, plen : len(ids)] = torch.tensor(ids[plen:])  # loss on the report tokens only
    return x, y, m


def oversampling(train: list[Report], target: int = 350, cap: int = 4) -> list[int]:
    """Repeat counts: reports with a rarer one of the frequent findings are seen more often."""
    counts = Counter(p for r in train for p in r.problems)
    frequent = {p for p, _ in counts.most_common(13)} - {"normal"}
    reps = []
    for r in train:
        k = 1
        for p in r.problems:
            if p in frequent:
                k = max(k, min(cap, round(target / counts[p])))
        reps.append(k)
    return reps


def evaluate_loss(model: "object", val: list[Report], tok: "object", pad: int) -> float:
    import torch

    rng = random.Random(0)
    batches = build_epoch(val, [1] * len(val), tok, rng, 32)
    model.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for b in batches:
            x, y, m = collate(b, pad)
            out = model(input_ids=x, attention_mask=m, labels=y)
            k = int((y[:, 1:] != -100).sum())
            tot += float(out.loss) * k
            n += k
    model.train()
    return tot / max(n, 1)


def train(args: argparse.Namespace) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    parts = split(load_reports(shared_data_dir()))
    train_r, val_r = parts["train"], parts["val"]
    log.info("split: %d train, %d val, %d test", len(train_r), len(val_r), len(parts["test"]))

    hf_dir = args.work / "hf"
    previous: list[dict] = []
    if args.init_from:
        # continue training a checkpoint of this script (a warm restart of the schedule)
        from tokenizers import Tokenizer

        init = Path(args.init_from)
        tok = Tokenizer.from_file(str(init / "tokenizer.json"))
        model = LlamaForCausalLM.from_pretrained(str(init), dtype=torch.float32)
        hf_dir.mkdir(parents=True, exist_ok=True)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (init / name).resolve() != (hf_dir / name).resolve():
                shutil.copy2(init / name, hf_dir / name)
        meta_file = args.work / "train_meta.json"
        if meta_file.exists():
            prev = json.loads(meta_file.read_text())
            previous = prev.get("stages", [prev])
    else:
        texts = [
            format_prompt(r.problems, r.indication, r.view)
            + format_prompt(r.mesh, "", "")
            + format_report(r.findings, r.impression)
            for r in train_r
        ]
        tok = train_tokenizer(texts, hf_dir)
        cfg = LlamaConfig(
            vocab_size=tok.get_vocab_size(),
            bos_token_id=tok.token_to_id(EOS),
            eos_token_id=tok.token_to_id(EOS),
            pad_token_id=tok.token_to_id(EOS),
            attention_dropout=args.attn_dropout,
            **CONFIG,
        )
        model = LlamaForCausalLM(cfg)
    pad = tok.token_to_id(EOS)
    log.info("parameters: %.2fM", sum(p.numel() for p in model.parameters()) / 1e6)

    reps = oversampling(train_r, args.oversample_target, args.oversample_cap)
    steps_per_epoch = math.ceil(sum(reps) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98)
    )
    warmup = 50 if args.init_from else 150
    t0 = time.monotonic()
    budget = args.minutes * 60.0
    step = 0
    done = False
    for epoch in range(args.epochs):
        batches = build_epoch(train_r, reps, tok, rng, args.batch_size)
        run, k = 0.0, 0
        for b in batches:
            # progress is the larger of steps and wall time used, so the cosine schedule still
            # ends at a low learning rate when the (shared) CPU is slower than planned
            progress = max(step / total_steps, (time.monotonic() - t0) / budget)
            if progress >= 1.0:
                done = True
                break
            lr = (
                args.lr
                * min(1.0, (step + 1) / warmup)
                * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
            )
            for g in opt.param_groups:
                g["lr"] = lr
            x, y, m = collate(b, pad)
            loss = model(input_ids=x, attention_mask=m, labels=y).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            run += loss.item()
            k += 1
            if step % 20 == 0:
                log.info(
                    "epoch %d step %d loss %.3f lr %.2e %.0fs",
                    epoch,
                    step,
                    run / k,
                    lr,
                    time.monotonic() - t0,
                )
                run, k = 0.0, 0
        log.info(
            "epoch %d done: val loss %.3f (%.0fs)",
            epoch,
            evaluate_loss(model, val_r, tok, pad),
            time.monotonic() - t0,
        )
        if done:
            break

    # round to float16 precision: the fp32 ONNX and the fp16 safetensors hold identical values
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    model.config.torch_dtype = "float32"
    model.save_pretrained(hf_dir, safe_serialization=True)
    stage = {
        "epochs_run": epoch + 1,
        "steps": step,
        "minutes": round((time.monotonic() - t0) / 60, 1),
        "val_loss": evaluate_loss(model, val_r, tok, pad),
        "lr": args.lr,
        "init_from": "checkpoint of the previous stage" if args.init_from else "scratch",
    }
    stages = previous + [stage]
    meta = {
        "epochs_run": sum(s["epochs_run"] for s in stages),
        "steps": sum(s["steps"] for s in stages),
        "minutes": round(sum(s["minutes"] for s in stages), 1),
        "val_loss": stage["val_loss"],
        "train_reports": len(train_r),
        "oversampled_examples_per_epoch": sum(reps),
        "seed": args.seed,
        "oversample_target": args.oversample_target,
        "oversample_cap": args.oversample_cap,
        "attn_dropout": args.attn_dropout,
        "weight_decay": args.weight_decay,
        "lr": "; ".join(str(s["lr"]) for s in stages),
        "batch_size": args.batch_size,
        "parameters": f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M",
        "stages": stages,
    }
    (args.work / "train_meta.json").write_text(json.dumps(meta, indent=1))
    log.info("trained: %s", meta)
    return hf_dir


def build(hf_dir: Path, out: Path, work: Path) -> None:
    """Export with onnxruntime-genai's model builder and assemble the shipped folder."""
    import torch
    from safetensors.torch import load_file, save_file

    tmp = work / "onnx"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        "-i",
        str(hf_dir),
        "-o",
        str(tmp),
        "-p",
        "fp32",
        "-e",
        "cpu",
        "-c",
        str(work / "cache"),
    ]
    log.info("builder: %s", " ".join(cmd))
    subprocess.run(cmd, check=True)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for f in tmp.iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    # runtime search defaults: greedy, bounded length
    cfg_path = out / "genai_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["search"].update(
        {"do_sample": False, "max_length": 384, "num_beams": 1, "repetition_penalty": 1.0}
    )
    cfg_path.write_text(json.dumps(cfg, indent=4))
    # the same weights for Hugging Face transformers (benchmark), stored as float16 (exact)
    hf_out = out / "hf"
    hf_out.mkdir()
    state = load_file(str(hf_dir / "model.safetensors"))
    save_file(
        {k: v.to(torch.float16).contiguous() for k, v in state.items()},
        str(hf_out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    for name in (
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ):
        if (hf_dir / name).exists():
            shutil.copy2(hf_dir / name, hf_out / name)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy2(hf_dir / name, out / name)
    if (work / "train_meta.json").exists():
        shutil.copy2(work / "train_meta.json", out / "train_meta.json")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log.info("built %s (%.1f MB)", out, size / 1e6)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=25.0, help="wall-clock training budget")
    ap.add_argument("--epochs", type=int, default=30, help="upper bound on epochs")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument(
        "--oversample-target",
        type=int,
        default=350,
        help="examples per epoch aimed at for each frequent finding",
    )
    ap.add_argument(
        "--oversample-cap", type=int, default=4, help="most repeats of one report per epoch"
    )
    ap.add_argument("--attn-dropout", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build" / "report_generator",
        help="scratch folder (checkpoints, builder cache); not shipped",
    )
    ap.add_argument("--out", type=Path, default=HERE / "model", help="the shipped model folder")
    ap.add_argument(
        "--build-only", action="store_true", help="skip training, rebuild from --work/hf"
    )
    ap.add_argument(
        "--init-from", type=Path, help="continue from a checkpoint of this script (e.g. --work/hf)"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    hf_dir = args.work / "hf" if args.build_only else train(args)
    build(hf_dir, args.out, args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
