"""Train, calibrate and export Hilum's bundled demonstration classifier ``pneumonia_cnn``.

Run from the repository root (torch is a training-time tool only, never a Hilum dependency)::

    nice -n 10 .venv/bin/python models/pneumonia_cnn/train.py [--npz PATH] [--epochs 12]

Steps: train a small CNN (conv blocks -> global average pooling -> one linear unit) on the
PneumoniaMNIST training split, keep the epoch with the best validation AUC, fit a temperature on
the validation split and fold it into the linear head (calibrated logits), choose the operating
threshold on the validation split (Youden's J), export ONNX (opset 17, dynamic batch), evaluate
the *exported* ONNX on the test split with onnxruntime, and write ``model.onnx``, ``model.json``
(with the file's sha256) and ``MODEL_CARD.md``. Seeded: a rerun on the same machine gives the same model.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from app.inference.metrics import (  # noqa: E402
    expected_calibration_error,
    label_metrics,
    roc_auc,
    youden_threshold,
)

SEED = 20261128
MODEL_ID = "pneumonia_cnn"
VERSION = "1.0.0"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    """3x3 convolution, batch norm, ReLU (the batch norm is folded into the conv at export)."""
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class PneumoniaNet(nn.Module):
    """Small CNN: 28x28 -> 14x14 -> 7x7 feature map (64 channels) -> global average pool -> linear.

    The global-average-pooling + linear head is what makes class activation maps exact: the
    exported graph ends ``Relu -> GlobalAveragePool -> Flatten -> Gemm``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_block(1, 16),
            *conv_block(16, 16),
            nn.MaxPool2d(2),
            *conv_block(16, 32),
            *conv_block(32, 32),
            nn.MaxPool2d(2),
            *conv_block(32, 64),
            *conv_block(64, 64),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.head(self.dropout(torch.flatten(self.pool(f), 1)))


def normalise(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 (n, 28, 28) -> float tensor (n, 1, 28, 28), exactly as the manifest's preprocessing."""
    x = images.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(mean)) / np.float32(std)
    return torch.from_numpy(x[:, None])


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random translation (+-2 px) and mild contrast/brightness jitter, seeded."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    dy = torch.randint(0, 5, (n,), generator=gen)
    dx = torch.randint(0, 5, (n,), generator=gen)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + 28, dx[i] : dx[i] + 28] for i in range(n)])
    gain = 1.0 + 0.1 * (torch.rand((n, 1, 1, 1), generator=gen) - 0.5)
    bias = 0.1 * (torch.rand((n, 1, 1, 1), generator=gen) - 0.5)
    return out * gain + bias


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i : i + 512]) for i in range(0, len(x), 512)]).numpy().ravel()


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the validation negative log-likelihood (grid, then refine)."""
    y = labels.astype(np.float64)

    def nll(t: float) -> float:
        p = np.clip(sigmoid(logits / t), 1e-7, 1 - 1e-7)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 200))
    best = min(grid, key=nll)
    fine = np.linspace(best * 0.95, best * 1.05, 101)
    return float(min(fine, key=nll))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    default_npz = (
        Path(os.environ.get("HILUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
        / "train"
        / "pneumoniamnist.npz"
    )
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, default=default_npz)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not args.npz.is_file():
        print(
            f"train.py: PneumoniaMNIST not found at {args.npz} (set HILUM_SHARED_DATA)",
            file=sys.stderr,
        )
        return 1

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(SEED)

    d = np.load(args.npz)
    tr_x, tr_y = d["train_images"], d["train_labels"].ravel().astype(np.float32)
    va_x, va_y = d["val_images"], d["val_labels"].ravel().astype(np.float32)
    te_x, te_y = d["test_images"], d["test_labels"].ravel().astype(np.float32)
    mean = round(float(tr_x.mean() / 255.0), 4)
    std = round(float(tr_x.std() / 255.0), 4)
    xtr, xva, xte = (
        normalise(tr_x, mean, std),
        normalise(va_x, mean, std),
        normalise(te_x, mean, std),
    )
    ytr = torch.from_numpy(tr_y)

    model = PneumoniaNet()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps_per_epoch = (len(xtr) + 63) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=args.epochs * steps_per_epoch
    )
    best_auc, best_state, best_epoch = -1.0, None, -1
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), 64):
            idx = perm[i : i + 64]
            xb = augment(xtr[idx], gen)
            loss = F.binary_cross_entropy_with_logits(model(xb).ravel(), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        val_auc = roc_auc(va_y, logits_of(model, xva))
        if val_auc > best_auc:
            best_auc, best_epoch = val_auc, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        print(
            f"epoch {epoch + 1:2d}/{args.epochs} loss {total / len(xtr):.4f} val AUC {val_auc:.4f}"
            f" ({time.time() - t0:.0f} s)",
            flush=True,
        )
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()

    # calibration: fold the validation temperature into the head so the ONNX outputs calibrated logits
    temperature = fit_temperature(logits_of(model, xva), va_y)
    with torch.no_grad():
        model.head.weight.div_(temperature)
        model.head.bias.div_(temperature)
    val_probs = sigmoid(logits_of(model, xva))
    threshold = round(youden_threshold(va_y, val_probs), 4)
    print(
        f"best epoch {best_epoch + 1}, val AUC {best_auc:.4f}, temperature {temperature:.3f}, "
        f"threshold {threshold}, val ECE {expected_calibration_error(va_y, val_probs):.4f}"
    )

    # export
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    torch.onnx.export(
        model,
        (xte[:1],),
        str(onnx_path),
        dynamo=False,
        opset_version=17,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        do_constant_folding=True,
    )
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(onnx_path))
    proto.doc_string = f"Hilum {MODEL_ID} {VERSION}: demonstration model, not for clinical use"
    proto.producer_name = "hilum-train"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(onnx_path))
    ops = [n.op_type for n in proto.graph.node]
    print("ONNX ops:", " ".join(ops))
    relu_feature = [n for n in proto.graph.node if n.op_type == "Relu"][-1].output[0]

    # evaluate the exported file with onnxruntime: the numbers on the card are the ONNX model's
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = sess.run(None, {INPUT_NAME: xte.numpy()})[0].ravel()
    torch_logits = logits_of(model, xte)
    max_diff = float(np.abs(onnx_logits - torch_logits).max())
    print(f"ONNX vs torch max |logit diff| on test: {max_diff:.2e}")
    test_probs = sigmoid(onnx_logits.astype(np.float64))
    test = label_metrics(te_y, test_probs, threshold)
    val = label_metrics(va_y, val_probs, threshold)
    print("TEST", json.dumps(test))

    digest = sha256_of(onnx_path)
    manifest = {
        "schema_version": 1,
        "id": MODEL_ID,
        "name": "Pneumonia, pediatric chest film (PneumoniaMNIST demonstration CNN)",
        "version": VERSION,
        "task": "binary",
        "file": "model.onnx",
        "sha256": digest,
        "card": "MODEL_CARD.md",
        "labels": [{"name": "pneumonia", "display_name": "Pneumonia", "threshold": threshold}],
        "input": {
            "name": INPUT_NAME,
            "layout": "NCHW",
            "height": 28,
            "width": 28,
            "channels": 1,
            "dtype": "float32",
        },
        "output": {"name": OUTPUT_NAME, "activation": "sigmoid"},
        "preprocessing": {
            "frame": "first",
            "intensity": {"method": "display"},
            "monochrome1": "invert",
            "resize": "crop",
            "interpolation": "area",
            "scale": 255.0,
            "mean": [mean],
            "std": [std],
        },
        "applicability": {
            "modalities": ["CR", "DX"],
            "body_parts": ["CHEST"],
            "view_positions": ["PA", "AP"],
            "photometric": ["MONOCHROME1", "MONOCHROME2"],
        },
        "intended_use": (
            "Demonstration only: flags frontal chest films with a pattern resembling "
            "pneumonia. Trained on 28x28 pediatric films; not for clinical use."
        ),
        "training_data": {
            "name": "PneumoniaMNIST (MedMNIST v2)",
            "source": "Kermany et al. 2018, Guangzhou Women and Children's Medical Center pediatric chest X-rays",
            "licence": "CC BY 4.0",
            "splits": {"train": int(len(tr_x)), "val": int(len(va_x)), "test": int(len(te_x))},
        },
        "metrics": {
            "split": "test",
            "dataset": "PneumoniaMNIST test split",
            "labels": {"pneumonia": test},
            "validation": {"pneumonia": val},
            "calibration": {
                "method": "temperature scaling on the validation split",
                "temperature": round(temperature, 4),
                "ece_bins": 10,
            },
        },
        "allow_fp16": True,
        "saliency": {"target_tensor": relu_feature, "method": "cam"},
        "created": dt.date.today().isoformat(),
    }
    (args.out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")

    write_card(
        args.out / "MODEL_CARD.md",
        manifest,
        test,
        val,
        best_epoch + 1,
        temperature,
        max_diff,
        os.path.getsize(onnx_path),
        args.epochs,
    )
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes, sha256 {digest})")
    return 0


def write_card(
    path: Path,
    m: dict,
    test: dict,
    val: dict,
    epoch: int,
    temperature: float,
    max_diff: float,
    size: int,
    epochs: int,
) -> None:
    """Write the model card from the measured numbers (nothing here is typed in by hand)."""
    t = m["labels"][0]["threshold"]
    text = f"""# Model card: {m["name"]}

**id** `{m["id"]}` · **version** {m["version"]} · **task** binary (label `pneumonia`) ·
**file** `model.onnx` ({size} bytes, ONNX opset 17, dynamic batch) · **sha256** `{m["sha256"]}`

> **A demonstration model, not for clinical use.** It was trained on 28x28-pixel thumbnails of
> pediatric chest films from one hospital. It has never been validated on adult films, on
> full-resolution images, on other sites or on other scanners, and it must not inform a diagnosis.
> Its outputs are AI-generated and require review by a physician.

## Intended use
Shows how Hilum runs a site's ONNX classifier: given a frontal chest radiograph (CR/DX, PA or AP),
it outputs a probability that the film shows a pneumonia-like pattern. The film is reduced to what
the radiologist sees (default VOI window, MONOCHROME1 inverted), centre-cropped to a square,
downsampled to 28x28 (area interpolation), scaled to [0, 1] and normalised with
mean {m["preprocessing"]["mean"][0]} and std {m["preprocessing"]["std"][0]}.

## Limits (read before use)
- 28x28 input: fine detail (lines, small nodules, tubes, subtle consolidation) is invisible to it.
- Pediatric films (ages 1-5) from a single centre (Guangzhou); adult anatomy and other
  populations are out of distribution and its probabilities there mean nothing. For example, it
  calls the adult chest films in Hilum's test data, the bundled sample included, "pneumonia"
  with probabilities near 1.0: that output is an artefact of the population shift, not a finding.
- Labels are "normal" vs "pneumonia" (bacterial and viral pooled) as graded for the source data
  set; no other finding is modelled, and a film with another abnormality may be called either way.
- Sites must run their own acceptance test before any use:
  `hilum models validate pneumonia_cnn --npz FILE --split NAME` or `--dicom FOLDER --labels CSV`.

## Training data and licence
PneumoniaMNIST from MedMNIST v2 (Yang et al., Scientific Data 2023), licensed **CC BY 4.0**,
derived from the pediatric chest X-ray data of Kermany et al., Cell 2018 (Guangzhou Women and
Children's Medical Center). Splits used: train {m["training_data"]["splits"]["train"]} images
(the official split less one image), validation {m["training_data"]["splits"]["val"]},
test {m["training_data"]["splits"]["test"]} (official). The test split was used only for the numbers below.

## Training
`models/pneumonia_cnn/train.py` (torch on CPU, seed {SEED}): six 3x3 conv/batch-norm/ReLU layers
(16-16-32-32-64-64 channels, two 2x2 max-pools) -> global average pooling -> one linear unit
(dropout 0.2 in training). AdamW, one-cycle learning rate (max 3e-3) over {epochs} epochs, batch 64, random +-2 px
shifts and mild contrast jitter; the epoch with the best validation AUC was kept (epoch {epoch}).
Calibration: temperature scaling fitted on the validation split (T = {temperature:.3f}), folded into
the linear head, so the ONNX output is a calibrated logit (apply a sigmoid).
Operating threshold {t} chosen on the validation split (Youden's J). The exported ONNX agrees with
torch to {max_diff:.1e} (max absolute logit difference on the test split).

## Performance (exported ONNX, onnxruntime CPU)
| split | n (positive) | AUC | sensitivity @ {t} | specificity @ {t} | ECE (10 bins) |
|---|---|---|---|---|---|
| test | {test["n"]} ({test["n_positive"]}) | {test["auc"]:.3f} | {test["sensitivity"]:.3f} | {test["specificity"]:.3f} | {test["ece"]:.3f} |
| validation | {val["n"]} ({val["n_positive"]}) | {val["auc"]:.3f} | {val["sensitivity"]:.3f} | {val["specificity"]:.3f} | {val["ece"]:.3f} |

Reproduce the test row with
`hilum models validate pneumonia_cnn --npz ../shared/data/train/pneumoniamnist.npz --split test`.
The test split of PneumoniaMNIST differs from the training and validation splits (62.5 % vs 74 %
pneumonia, and films graded separately): on it the model over-calls pneumonia. At the operating
threshold it misses few pneumonia films but flags about {100 * (1 - test["specificity"]):.0f} % of the normal test
films, and its probabilities are over-confident there (ECE {test["ece"]:.3f} vs {val["ece"]:.3f} on
validation). Expect worse on any other population: this is why sites must validate locally.

## Saliency
The graph ends `Relu -> GlobalAveragePool -> Flatten -> Gemm`, so class activation maps are exact:
the feature map is `{m["saliency"]["target_tensor"]}` (64 x 7 x 7 for a 28x28 input).
The saliency tests compute the torch-autograd Grad-CAM and CAM (`cam` = sum_c w_c A_c + b) of
this feature map on six PneumoniaMNIST test-split films from `../shared/data`, with a torch
copy of the shipped graph (`tests/_torch_reference.py`), and compare Hilum's one-pass CAM with them.
"""
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
