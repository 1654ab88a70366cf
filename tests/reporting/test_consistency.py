"""The independent draft checker (app/reporting/consistency.py) and the bundled generator under it.

The sweep drafts every single finding and every pair of the findings the generator supports, with
and without an indication, with and without a comparison, and requires zero violations.
"""

from __future__ import annotations

import ast
import collections
import itertools
from pathlib import Path

import pytest

from app.reporting import consistency
from app.reporting.consistency import KNOWN_FINDINGS, check

INDICATIONS = (
    "Rule out pneumothorax.",
    "Cough, rule out pneumonia.",
    "Shortness of breath, evaluate for effusion.",
    "Chest pain, rule out fracture.",
)
COMPARISON = "Chest radiograph of 2025-01-10."


def test_checker_is_independent_of_the_guard() -> None:
    tree = ast.parse(Path(consistency.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and ("labeller" in m or "generator" in m) for m in imported), imported


@pytest.mark.parametrize(
    "text,positives,indication,comparison,rule",
    [
        # the examples
        (
            "FINDINGS: The lungs are clear. There is a pneumothorax.\nIMPRESSION: Pneumothorax.",
            ["Pneumothorax"],
            "",
            "",
            "normal-structure",
        ),
        (
            "FINDINGS: There is a nodule. There is atelectasis.\nIMPRESSION: No acute disease.",
            ["Nodule", "Pulmonary Atelectasis"],
            "",
            "",
            "impression-missing",
        ),
        (
            "FINDINGS: Stable cardiomegaly. There is a pleural effusion.\nIMPRESSION: Cardiomegaly and effusion "
            "without acute cardiopulmonary abnormality.",
            ["Cardiomegaly", "Pleural Effusion"],
            "",
            "",
            "comparison-language",
        ),
        (
            "FINDINGS: Stable cardiomegaly. There is a pleural effusion.\nIMPRESSION: Cardiomegaly and effusion "
            "without acute cardiopulmonary abnormality.",
            ["Cardiomegaly", "Pleural Effusion"],
            "",
            "",
            "normal-structure",
        ),
        (
            "FINDINGS: The heart size is normal.\nIMPRESSION: Cardiomegaly.",
            ["Cardiomegaly"],
            "",
            "",
            "normal-structure",
        ),
        (
            "FINDINGS: No pleural effusion.\nIMPRESSION: Pleural effusion.",
            ["Pleural Effusion"],
            "",
            "",
            "normal-structure",
        ),
        ("FINDINGS: The lungs are clear.\nIMPRESSION: Mild.", [], "", "", "no-content"),
        (
            "FINDINGS: The lungs are clear.\nIMPRESSION: Normal chest.",
            [],
            "Rule out pneumothorax.",
            "",
            "indication-unanswered",
        ),
        (
            "FINDINGS: Interval improvement of the lungs.\nIMPRESSION: Normal chest.",
            [],
            "",
            "",
            "comparison-language",
        ),
    ],
)
def test_checker_catches(
    text: str, positives: list[str], indication: str, comparison: str, rule: str
) -> None:
    assert rule in {v.rule for v in check(text, positives, indication, comparison)}


def test_checker_passes_consistent_text() -> None:
    text = (
        "FINDINGS: The heart is enlarged. There is a small right pleural effusion. No pneumothorax.\n"
        "IMPRESSION: Cardiomegaly with a small right pleural effusion. "
        "The AI result for pneumonia (pneumonia_cnn) is not applicable to this study (outside its intended use)."
    )
    assert check(text, ["Cardiomegaly", "Pleural Effusion"], "Rule out pneumothorax.", "") == []
    assert (
        check(
            "FINDINGS: Stable cardiomegaly.\nIMPRESSION: Stable cardiomegaly.",
            ["Cardiomegaly"],
            "",
            COMPARISON,
        )
        == []
    )


def combinations() -> list[tuple[list[str], str, str]]:
    combos = (
        [[]]
        + [[f] for f in KNOWN_FINDINGS]
        + [list(p) for p in itertools.combinations(KNOWN_FINDINGS, 2)]
    )
    out = []
    for i, fs in enumerate(combos):
        for ind in ("", INDICATIONS[i % len(INDICATIONS)]):
            for comp in ("", COMPARISON):
                out.append((fs, ind, comp))
    return out


def test_generator_covers_the_checker_vocabulary() -> None:
    from app.reporting.generator.guard import CANONICAL

    assert {c.split("/")[0] for c in CANONICAL} >= set(KNOWN_FINDINGS)


def test_every_combination_has_zero_violations() -> None:
    """Every single finding and pair the generator supports, +-indication, +-comparison: 844 drafts."""
    from app.reporting.generator import build_conditioning, draft

    combos = combinations()
    assert len(combos) == 4 * (
        1 + len(KNOWN_FINDINGS) + len(KNOWN_FINDINGS) * (len(KNOWN_FINDINGS) - 1) // 2
    )
    counts: collections.Counter[str] = collections.Counter()
    examples = []
    for fs, ind, comp in combos:
        cond = build_conditioning(
            metadata={"Modality": "CR", "ViewPosition": "PA"},
            indication=ind,
            comparison=comp,
            findings=fs,
        )
        text = draft(cond, device="cpu", include_banner=False).read()
        for v in check(text, fs, ind, comp):
            counts[v.rule] += 1
            examples.append((fs, ind, comp, v.rule, v.sentence, v.detail))
    assert not counts, (
        f"{sum(counts.values())} violations in {len(combos)} drafts {dict(counts)}: {examples[:10]}"
    )
