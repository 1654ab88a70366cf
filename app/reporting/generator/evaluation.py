"""Quality metrics of the bundled generator (model card): BLEU-4, ROUGE-L, findings consistency.

* BLEU-4: corpus BLEU (Papineni et al. 2002), uniform weights over 1-4-grams, brevity penalty,
  one reference per draft, lower-cased word/punctuation tokens, no smoothing.
* ROUGE-L: mean over drafts of the LCS F1 (precision and recall of the longest common
  subsequence of tokens, beta = 1).
* Findings consistency: for each of :data:`app.reporting.labeller.TOP_FINDINGS`, the share of
  drafts conditioned on it that state it (``normal``: that state no abnormality), judged by the
  rule-based labeller.

Drafts and references compare the FINDINGS and IMPRESSION text (no headers, no banner).
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from app.core.errors import GeneratorError
from app.reporting import labeller
from app.reporting.generator.conditioning import build_conditioning
from app.reporting.generator.dataset import Report
from app.reporting.generator.guard import ConsistencyGuard
from app.reporting.generator.prompt import format_prompt
from app.reporting.generator.stream import run as run_stream
from app.reporting.generator.stream import split_sections

_TOKEN = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")


def tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _TOKEN.findall(text.lower())


def bleu4(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 with one reference per hypothesis."""
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        h, r = tokens(hyp), tokens(ref)
        hyp_len += len(h)
        ref_len += len(r)
        for n in range(1, 5):
            hc = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if min(matches) == 0 or hyp_len == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals)) / 4
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(log_p)


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 over the pairs."""
    scores = []
    for hyp, ref in zip(hypotheses, references):
        h, r = tokens(hyp), tokens(ref)
        lcs = _lcs(h, r) if h and r else 0
        if lcs == 0:
            scores.append(0.0)
            continue
        p, rec = lcs / len(h), lcs / len(r)
        scores.append(2 * p * rec / (p + rec))
    return sum(scores) / max(len(scores), 1)


def report_text(findings: str, impression: str) -> str:
    """FINDINGS and IMPRESSION text on two lines (BLEU/ROUGE tokens ignore the line break)."""
    return f"{findings.strip()}\n{impression.strip()}".strip()


def consistency(
    drafts: Sequence[str], conditioned: Sequence[Iterable[str]]
) -> dict[str, dict[str, Any]]:
    """Per top finding: ``{"n": drafts conditioned on it, "stated": how many state it, "share": ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for finding in labeller.TOP_FINDINGS:
        n = stated = 0
        for text, codes in zip(drafts, conditioned):
            codes = list(codes)
            if finding == "normal":
                if codes != ["normal"]:
                    continue
            elif finding not in codes:
                continue
            n += 1
            stated += labeller.states(text, finding)
        out[finding] = {"n": n, "stated": stated, "share": round(stated / n, 4) if n else None}
    return out


def generate_pieces(loaded: Any, report: Report, max_new_tokens: int = 200) -> list[str]:
    """Raw pieces for a test report, prompted as at run time with its coded findings."""
    from app.reporting.generator.bundled import generate_tokens

    cond = conditioning_for(report)
    prompt = format_prompt(cond.codes, cond.model_indication(), report.view)
    return list(generate_tokens(loaded, prompt, max_new_tokens))


def conditioning_for(report: Report) -> Any:
    """The run-time conditioning of a test report: its coded findings and its indication."""
    codes = [p for p in report.problems if p.lower() != "normal"]
    cond = build_conditioning(
        (), {"view_text": report.view}, report.indication, "", "", findings=codes
    )
    return cond


def evaluate(
    reports: Sequence[Report],
    model_dir: str | Path | None = None,
    device: str = "cpu",
    max_new_tokens: int = 200,
) -> dict[str, Any]:
    """Generate a draft per report (raw and guarded) and compute every metric.

    Returns
    -------
    dict
        ``{"n", "raw": {...}, "guarded": {...}, "seconds", "provider", "uids"}`` where each of
        raw/guarded holds ``bleu4``, ``rouge_l`` and ``consistency``.
    """
    from app.reporting.generator.bundled import load

    loaded = load(model_dir, device)
    refs, raw, guarded, conds, indications = [], [], [], [], []
    t0 = time.perf_counter()
    from app.reporting.generator.constrained import generate_constrained

    for r in reports:
        pieces = generate_pieces(loaded, r, max_new_tokens)
        cond = conditioning_for(r)
        raw.append(report_text(*split_sections("".join(run_stream(pieces, None)))))
        # what Hilum ships: the guard constrains the decoding itself
        prompt = format_prompt(cond.codes, cond.model_indication(), r.view)
        try:
            shipped = "".join(
                generate_constrained(loaded, prompt, ConsistencyGuard(cond), max_new_tokens)
            )
        except GeneratorError:  # nothing of the model's own text could be kept: no draft
            shipped = ""
        guarded.append(report_text(*split_sections(shipped)))
        refs.append(report_text(r.findings, r.impression))
        conds.append(cond.codes)
        indications.append(cond.indication)
    out = summarize(reports, raw, guarded, refs, conds, indications)
    out.update({"provider": loaded.provider, "seconds": round(time.perf_counter() - t0, 1)})
    out["texts"] = {
        "raw": raw,
        "guarded": guarded,
        "refs": refs,
        "conds": conds,
        "indications": indications,
    }
    return out


def checker_violations(
    drafts: Sequence[str], conds: Sequence[Sequence[str]], indications: Sequence[str]
) -> dict[str, int]:
    """Violations of the independent checker (:mod:`app.reporting.consistency`) by rule, no comparison given."""
    from app.reporting.consistency import check

    counts: Counter[str] = Counter()
    for text, codes, ind in zip(drafts, conds, indications):
        findings, impression = _split_report_text(text)
        for v in check(f"FINDINGS: {findings}\nIMPRESSION: {impression}", codes, ind, ""):
            counts[v.rule] += 1
    return dict(sorted(counts.items()))


def _split_report_text(text: str) -> tuple[str, str]:
    findings, _, impression = text.partition("\n")
    return findings, impression


def summarize(
    reports: Sequence[Report],
    raw: Sequence[str],
    guarded: Sequence[str],
    refs: Sequence[str],
    conds: Sequence[Sequence[str]],
    indications: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics of already generated drafts (see :func:`evaluate`)."""
    out: dict[str, Any] = {"n": len(reports), "uids": [r.uid for r in reports]}
    for name, drafts in (("raw", raw), ("guarded", guarded)):
        out[name] = {
            "bleu4": round(bleu4(drafts, refs), 4),
            "rouge_l": round(rouge_l(drafts, refs), 4),
            "consistency": consistency(drafts, conds),
            "no_draft": sum(1 for d in drafts if not d.strip()),
        }
        if indications is not None:
            out[name]["checker"] = checker_violations(drafts, conds, indications)
    out["examples"] = [
        {"uid": r.uid, "conditioned": list(c), "draft": g, "reference": ref}
        for r, c, g, ref in list(zip(reports, conds, guarded, refs))[:3]
    ]
    return out
