"""The Indiana chest X-ray reports as used to train and evaluate the bundled generator.

Light (csv only) so that the training script, the evaluation and the tests share one fixed,
seeded train/val/test split by report uid.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from app.reporting.generator.prompt import clean_text, view_from_projections

#: seed and fractions of the split by report uid (never change: the model card depends on them)
SPLIT_SEED = 20240611
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class Report:
    """One report with the fields the generator is conditioned on."""

    uid: str
    problems: tuple[str, ...]  # coded findings, e.g. ("Cardiomegaly", "Pleural Effusion")
    mesh: tuple[str, ...]  # detailed codes, e.g. ("Cardiomegaly/mild",)
    indication: str
    view: str
    findings: str
    impression: str


def reports_csv(shared: Path) -> Path:
    """Path of the reports table inside the shared data folder."""
    return shared / "reports" / "indiana_reports.csv"


def load_reports(shared: Path) -> list[Report]:
    """Load every report that has both a FINDINGS and an IMPRESSION section.

    Parameters
    ----------
    shared : Path
        The shared data folder (``app.core.paths.shared_data_dir()``).
    """
    proj: dict[str, list[str]] = defaultdict(list)
    with open(shared / "reports" / "indiana_projections.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            proj[row["uid"]].append(row["projection"])
    out: list[Report] = []
    with open(reports_csv(shared), newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            findings, impression = clean_text(row["findings"]), clean_text(row["impression"])
            if not findings or not impression:
                continue
            problems = tuple(p.strip() for p in row["Problems"].split(";") if p.strip())
            mesh = tuple(m.strip() for m in row["MeSH"].split(";") if m.strip())
            out.append(
                Report(
                    uid=row["uid"],
                    problems=problems,
                    mesh=mesh,
                    indication=clean_text(row["indication"]),
                    view=view_from_projections(proj.get(row["uid"], [])),
                    findings=findings,
                    impression=impression,
                )
            )
    return out


def split(reports: list[Report]) -> dict[str, list[Report]]:
    """The fixed, seeded split by uid: ``{"train": [...], "val": [...], "test": [...]}``."""
    uids = sorted({r.uid for r in reports}, key=int)
    random.Random(SPLIT_SEED).shuffle(uids)
    n_test = int(len(uids) * TEST_FRACTION)
    n_val = int(len(uids) * VAL_FRACTION)
    test, val = set(uids[:n_test]), set(uids[n_test : n_test + n_val])
    parts: dict[str, list[Report]] = {"train": [], "val": [], "test": []}
    for r in reports:
        parts["test" if r.uid in test else "val" if r.uid in val else "train"].append(r)
    for v in parts.values():
        v.sort(key=lambda r: int(r.uid))
    return parts
