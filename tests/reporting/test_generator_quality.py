"""Reproduce the model card's quality numbers on its fixed subset of the seeded test split.

The subset (40 reports) takes a few seconds on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.paths import bundled_models_dir

EVAL = bundled_models_dir() / "report_generator" / "eval.json"
CARD = bundled_models_dir() / "report_generator" / "MODEL_CARD.md"


def test_card_numbers_reproduce_on_fixed_subset(shared_data: Path) -> None:
    from app.reporting.generator.dataset import load_reports, split
    from app.reporting.generator.evaluation import evaluate

    card = json.loads(EVAL.read_text())
    expected = card["subset"]
    test = split(load_reports(shared_data))["test"]
    subset = test[: card["subset_n"]]
    assert [r.uid for r in subset] == expected["uids"]  # the same seeded split
    got = evaluate(subset, device="cpu")
    for name in ("raw", "guarded"):
        for metric in ("bleu4", "rouge_l"):
            assert got[name][metric] == pytest.approx(expected[name][metric], abs=0.01), (
                name,
                metric,
            )
        for finding, v in expected[name]["consistency"].items():
            g = got[name]["consistency"][finding]
            assert g["n"] == v["n"]
            assert abs(g["stated"] - v["stated"]) <= 1, (name, finding, g, v)
    # what Hilum ships (guarded) meets the targets on this subset too
    for finding, v in got["guarded"]["consistency"].items():
        if v["n"]:
            assert v["share"] >= (0.95 if finding == "normal" else 0.9), (finding, v)


def test_card_states_the_measured_numbers() -> None:
    card = json.loads(EVAL.read_text())
    text = CARD.read_text()
    full = card["full"]
    for name in ("raw", "guarded"):
        assert f"{full[name]['bleu4']:.4f}" in text and f"{full[name]['rouge_l']:.4f}" in text
    for finding in full["guarded"]["consistency"]:
        assert f"| {finding} |" in text
    for phrase in ("demonstration model", "XXXX", "requires review", "de-identified"):
        assert phrase.lower() in text.lower()
