"""The rule-based findings labeller: negation handling and agreement with the coded findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.reporting import labeller as L


@pytest.mark.parametrize(
    "text, finding, expected",
    [
        ("There is cardiomegaly.", "Cardiomegaly", True),
        ("The heart is enlarged.", "Cardiomegaly", True),
        ("The heart is not enlarged.", "Cardiomegaly", False),
        ("Heart size is normal.", "Cardiomegaly", None),
        ("No pleural effusion or pneumothorax.", "Pleural Effusion", False),
        ("No pneumothorax, but there is a small left pleural effusion.", "Pleural Effusion", True),
        ("No pneumothorax, but there is a small left pleural effusion.", "Pneumothorax", False),
        ("There are no XXXX of a pleural effusion.", "Pleural Effusion", False),
        ("Pleural effusion is not seen.", "Pleural Effusion", False),
        ("The previously seen effusion has resolved.", "Pleural Effusion", False),
        ("Pneumonia cannot be excluded.", "Pneumonia", True),
        ("Lungs are clear without focal consolidation.", "Consolidation", False),
        ("Streaky left basilar opacity, likely atelectasis.", "Opacity", True),
        ("Streaky left basilar opacity, likely atelectasis.", "Pulmonary Atelectasis", True),
        ("Calcified granuloma in the right upper lobe.", "Calcified Granuloma", True),
        ("Calcified granuloma in the right upper lobe.", "Calcinosis", None),
        ("Atherosclerotic calcification of the aorta.", "Calcinosis", True),
        ("Degenerative changes of the thoracic spine.", "Thoracic Vertebrae", True),
        ("Mild scarring at the left base.", "Cicatrix", True),
        ("Prominent interstitial markings.", "Markings", True),
        ("Low lung volumes.", "Lung", True),
        ("The lungs are hyperexpanded.", "Lung", True),
        ("No hyperinflation.", "Lung", False),
        ("Negative for acute abnormality.", "Opacity", None),
    ],
)
def test_sentence_rules(text: str, finding: str, expected: bool | None) -> None:
    assert L.label(text).get(finding) is expected


def test_normal() -> None:
    normal = (
        "The heart size and mediastinal contours are normal. The lungs are clear. "
        "No pleural effusion or pneumothorax. No focal consolidation."
    )
    assert L.is_normal(normal)
    assert L.states(normal, "normal")
    assert not L.states(normal + " Small left pleural effusion.", "normal")


def test_detailed_codes_and_unknown() -> None:
    assert L.states("Low lung volumes.", "Lung/hypoinflation")
    assert L.knows("Cardiomegaly") and L.knows("normal") and not L.knows("Foreign Bodies")
    with pytest.raises(KeyError):
        L.states("text", "Foreign Bodies")


def test_agrees_with_coded_findings_on_real_reports(shared_data: Path) -> None:
    """On all Indiana reports, the labeller finds each top finding in most reports coded with it."""
    from app.reporting.generator.dataset import load_reports

    reports = load_reports(shared_data)
    assert len(reports) > 3000
    stated = {r.uid: L.positive_findings(f"{r.findings} {r.impression}") for r in reports}

    def says(r: object, finding: str) -> bool:
        pos = stated[r.uid]  # type: ignore[attr-defined]
        return not (pos & set(L.ABNORMAL_FINDINGS)) if finding == "normal" else finding in pos

    for finding in L.TOP_FINDINGS:
        coded = [r for r in reports if finding in r.problems]
        others = [r for r in reports if finding not in r.problems]
        sens = sum(says(r, finding) for r in coded) / len(coded)
        assert sens >= 0.88, (finding, sens)
        if finding not in {"normal", "Spine", "Thoracic Vertebrae"}:  # overlapping codes
            fpr = sum(says(r, finding) for r in others) / len(others)
            assert fpr <= 0.05, (finding, fpr)
