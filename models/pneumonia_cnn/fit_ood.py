"""Fit the OOD score of pneumonia_cnn and measure it (numpy + onnxruntime; no torch needed).

Run from the repository root::

    HILUM_SHARED_DATA=../shared/data python models/pneumonia_cnn/fit_ood.py

1. Every PneumoniaMNIST train image goes through the model's own preprocessing and the exported
   ONNX graph; the feature map after the fourth conv block (``/features/features.12/Relu_output_0``,
   32 x 7 x 7, global-average pooled to 32 values) is fetched from the classifying pass. (The
   card compares all six ReLU outputs; the last one, the map CAM explains, misses adult films.)
2. Class-conditional Gaussians with a shared covariance are fitted on the train split
   (:func:`app.inference.ood.fit_mahalanobis`); ``ood.npz`` holds the class means and precision.
3. The threshold is the 99th percentile of the validation split's Mahalanobis scores.
4. ``model.json`` gets the ``ood`` block (file, sha256, threshold) and the measured flag rates:
   test split (in distribution) and CT, MR and adult chest films from ``../shared/data/dicom``
   forced through the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from app.core import paths  # noqa: E402
from app.inference.manifest import load_manifest, verify_manifest  # noqa: E402
from app.inference.ood import add_feature_output, fit_mahalanobis, pool  # noqa: E402
from app.inference.preprocess import Preprocessor  # noqa: E402

FEATURES = "/features/features.12/Relu_output_0"  # 32 x 7 x 7, see MODEL_CARD.md
PERCENTILE = 99.0


def features(session, pre: Preprocessor, images: np.ndarray) -> np.ndarray:
    out = []
    for start in range(0, len(images), 256):
        batch = np.stack([pre(img)[0] for img in images[start : start + 256]])
        out.append(pool(session.run([FEATURES], {"image": batch})[0]))
    return np.concatenate(out)


def main() -> int:
    import onnxruntime as ort

    shared = paths.shared_data_dir()
    npz = shared / "train" / "pneumoniamnist.npz"
    manifest_path = HERE / "model.json"
    raw = json.loads(manifest_path.read_text())
    raw.pop("ood", None)
    m = load_manifest(HERE)
    m.raw = raw
    pre = Preprocessor(m.preprocessing, m.input)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(
        add_feature_output(m.onnx_path.read_bytes(), FEATURES),
        so,
        providers=["CPUExecutionProvider"],
    )
    with np.load(npz) as z:
        tr_x, tr_y, va_x = z["train_images"], z["train_labels"].reshape(-1), z["val_images"]
    means, precision = fit_mahalanobis(features(sess, pre, tr_x), tr_y)
    ood_file = HERE / "ood.npz"
    np.savez(ood_file, means=means, precision=precision)
    f_val = features(sess, pre, va_x)
    d = f_val[:, None, :] - means[None]
    val_scores = np.einsum("nkc,cd,nkd->nk", d, precision, d).min(axis=1)
    threshold = float(np.percentile(val_scores, PERCENTILE))
    raw["ood"] = {
        "method": "mahalanobis",
        "feature_tensor": FEATURES,
        "file": ood_file.name,
        "sha256": hashlib.sha256(ood_file.read_bytes()).hexdigest(),
        "threshold": round(threshold, 4),
        "threshold_rule": f"{PERCENTILE:g}th percentile of the validation split's scores",
        "fitted_on": f"PneumoniaMNIST train split ({len(tr_x)} images), class-conditional means, shared covariance",
    }
    manifest_path.write_text(json.dumps(raw, indent=2) + "\n")

    from app.inference.ood_measure import dicom_flag_rates, npz_flag_rate

    m = verify_manifest(load_manifest(HERE))
    m.require_verified()
    measured = {"test": npz_flag_rate(m, npz, "test"), "val": npz_flag_rate(m, npz, "val")}
    measured.update(dicom_flag_rates(m, shared / "dicom"))
    raw["ood"]["measured"] = measured
    manifest_path.write_text(json.dumps(raw, indent=2) + "\n")
    print(json.dumps({"threshold": raw["ood"]["threshold"], "measured": measured}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
