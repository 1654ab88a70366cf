"""Constrained decoding of the bundled generator: the guard acts inside the decoding loop.

Instead of dropping sentences from finished text, the decoder asks the guard
(:class:`~app.reporting.generator.guard.ConsistencyGuard`) about every sentence the moment the
model finishes it. A rejected sentence is taken back (``Generator.rewind_to``) and the model
decodes that position again with the rejected sentence's first token banned (``set_logits``),
so what follows is the model's own next-best continuation, conditioned on everything kept. After
:data:`MAX_RETRIES` rejections at one position the section ends there.

Further constraints:

* without a comparison, whole-word comparison tokens (``stable``, `` unchanged`` ...) are banned
  at every step (the training reports were written with priors the prompt never mentions), and
  the corpus's ``XXXX`` redaction tokens are banned always;
* before the IMPRESSION header, the sentences the guard requires (a conditioned finding the
  FINDINGS did not state, the answer to the indication, a covered negative) are fed to the model
  as forced tokens, so the IMPRESSION is decoded conditioned on them;
* the end-of-text token is banned while the IMPRESSION misses a conditioned finding; if the model
  still has not stated it near the token budget, its canonical sentence is forced.

Output chunks have the same shape as :func:`app.reporting.generator.stream.run`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

import numpy as np

from app.core.progress import Progress
from app.reporting.generator.guard import ConsistencyGuard, canonical_sentence
from app.reporting.generator.stream import NORMAL_FINDINGS

MAX_RETRIES = 6
_COMPARISON_WORDS = {
    "stable",
    "stability",
    "unchanged",
    "again",
    "persistent",
    "persists",
    "persist",
    "interval",
    "redemonstrated",
    "redemonstrates",
    "previously",
    "previous",
    "new",
    "newly",
    "prior",
    "compared",
    "comparison",
    "improved",
    "improving",
    "worsened",
    "worsening",
    "resolved",
    "resolving",
    "remains",
    "remain",
    "since",
}
_HEADER = re.compile(r"\W{0,3}(FINDINGS|IMPRESSION)\W{0,3}\s*:\s*", re.IGNORECASE)
_PARTIAL_HEADER = re.compile(r"(?:^|\s)(?:F|FI|FIN\w*|I|IM|IMP\w*)$")


@lru_cache(maxsize=4)
def _comparison_token_ids(tokenizer_key: int, vocab: tuple[str, ...]) -> np.ndarray:
    ids = [
        i
        for i, piece in enumerate(vocab)
        if re.fullmatch(r"\s?[A-Za-z]+", piece) and piece.strip().lower() in _COMPARISON_WORDS
    ]
    return np.array(ids, dtype=np.int64)


def _vocab(loaded: Any, size: int) -> tuple[str, ...]:
    return tuple(loaded.tokenizer.decode(np.array([i], dtype=np.int32)) for i in range(size))


class _Decoder:
    def __init__(
        self,
        loaded: Any,
        prompt: str,
        guard: ConsistencyGuard,
        max_new_tokens: int,
        progress: Progress | None,
    ) -> None:
        import onnxruntime_genai as og

        self.loaded, self.guard, self.progress = loaded, guard, progress
        self.tok = loaded.tokenizer
        ids = self.tok.encode(prompt)
        self.prompt_len = len(ids)
        self.max_new = max_new_tokens
        params = og.GeneratorParams(loaded.model)
        # room for forced sentences beyond the model's own budget
        params.set_search_options(max_length=len(ids) + max_new_tokens + 160, do_sample=False)
        self.gen = og.Generator(loaded.model, params)
        self.gen.append_tokens(ids)
        self.steps = 0
        self.step_budget = max_new_tokens * 6  # decoding steps, rewinds included
        self.bans: dict[int, set[int]] = {}
        self.retries: dict[int, int] = {}
        self.global_bans: np.ndarray | None = None
        self._forced_impression = False
        #: provenance: sentences the model wrote that reached the draft, and sentences forced in
        self.model_sentences = 0
        self.inserted: list[str] = []
        size = int(self.gen.get_logits().shape[-1])
        vocab = _vocab(loaded, size)
        # the training reports' "XXXX" redactions are never report text: banned at every step
        redaction = np.array([i for i, piece in enumerate(vocab) if "XX" in piece], dtype=np.int64)
        bans = [redaction]
        if guard.no_comparison:
            bans.append(_comparison_token_ids(id(loaded), vocab))
        self.global_bans = np.unique(np.concatenate(bans))
        #: tokens that can begin a sentence (a retry must start a new sentence, not a fragment)
        self.not_sentence_start = np.array(
            [not (re.match(r"\s?[A-Z]", piece) or "\n" in piece) for piece in vocab], dtype=bool
        )
        self.not_sentence_start[loaded.eos_id] = False

    # -- low level -----------------------------------------------------------------------------
    def _next(self, ban_eos: bool) -> int:
        if self.progress is not None:
            self.progress.check()
        pos = self.gen.token_count()
        extra = self.bans.get(pos)
        if extra or ban_eos or (self.global_bans is not None and len(self.global_bans)):
            logits = np.array(self.gen.get_logits(), dtype=np.float32, copy=True)
            flat = logits.reshape(-1)
            if self.global_bans is not None and len(self.global_bans):
                flat[self.global_bans] = -1e9
            if extra:  # a retry: a different first token, and one that starts a sentence
                flat[list(extra)] = -1e9
                flat[self.not_sentence_start[: flat.size]] = -1e9
            if ban_eos:
                flat[self.loaded.eos_id] = -1e9
            self.gen.set_logits(logits)
        self.gen.generate_next_token()
        self.steps += 1
        return int(self.gen.get_next_tokens()[0])

    def _force(self, text: str) -> None:
        ids = self.tok.encode(text)
        if len(ids):
            self.gen.append_tokens(ids)

    def _decode(self, ids: list[int]) -> str:
        return self.tok.decode(np.array(ids, dtype=np.int32)) if ids else ""

    def _reject(self, start: int, first_token: int) -> bool:
        """Take back the sentence that began at ``start``; False when this position gave up."""
        self.gen.rewind_to(start)
        self.retries[start] = self.retries.get(start, 0) + 1
        self.bans.setdefault(start, set()).add(first_token)
        # until the model has written one usable sentence it gets more tries (the guard never
        # writes a whole report on its behalf)
        return self.retries[start] <= (MAX_RETRIES if self.model_sentences else 3 * MAX_RETRIES)

    def _budget_left(self) -> int:
        return self.max_new - (self.gen.token_count() - self.prompt_len)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> Iterator[str]:
        """Decode, yielding the draft's chunks.

        Long because it is one state machine over the token stream (header, sentence boundary,
        rejection and rewind, section end, forced sentences, end of text) whose branches share
        the decoder's position; split up, each part would need all of that state passed around.
        """
        g = self.guard
        yield "FINDINGS: "
        section = "findings"
        count = {"findings": 0, "impression": 0}
        impression_text = ""
        start = self.gen.token_count()
        sent: list[int] = []
        header_seen = False

        def emit(sentence: str, from_model: bool = True) -> str:
            sep = " " if count[section] else ""
            count[section] += 1
            if from_model:
                self.model_sentences += 1
            else:
                self.inserted.append(sentence)
            return sep + sentence

        while True:
            done = self.gen.is_done() or self.steps >= self.step_budget
            missing = g.missing_in_impression(impression_text) if section == "impression" else []
            # the model may not end while a finding is missing, for a few sentences at most
            ban_eos = bool(missing) and self._budget_left() > 40 and count["impression"] < 3
            token = -1 if done else self._next(ban_eos)
            end = done or token == self.loaded.eos_id
            if not end:
                sent.append(token)
            text = self._decode(sent)
            # section headers ---------------------------------------------------------------------
            m = _HEADER.search(text)
            if m is not None:
                before = text[: m.start()].strip()
                name = m.group(1).upper()
                if name == "FINDINGS" and not header_seen and not before:
                    header_seen = True
                    start, sent = self.gen.token_count(), []
                    continue
                kept = ""
                if before:  # a sentence without its full stop, cut by the header
                    if g.accept(before, section):
                        yield emit(before)
                        kept = before
                        if section == "impression":
                            impression_text += " " + before
                    elif self._reject(start, sent[0]):
                        sent = []
                        continue
                # take the header back (forced sentences go before it); keep the accepted text
                self.gen.rewind_to(start)
                if kept:
                    self._force(" " + kept)
                if section == "findings":  # IMPRESSION (or a repeated FINDINGS): findings end here
                    for chunk in self._end_findings(count):
                        yield chunk
                    section = "impression"
                    self._force("\nIMPRESSION:")
                    yield "\nIMPRESSION: "
                elif (
                    sent and not kept and self._reject(start, sent[0])
                ):  # a header in the IMPRESSION: retry
                    sent = []
                    continue
                else:  # retried enough: the IMPRESSION ends at the next turn, with the checks
                    self.step_budget = self.steps
                start, sent = self.gen.token_count(), []
                continue
            if end or re.search(r"[.!?]\s*$", text) or ("\n" in text and text.strip()):
                sentence = text.strip()
                if sentence and _PARTIAL_HEADER.search(sentence) and not end:
                    continue
                if sentence:
                    if g.accept(sentence, section):
                        yield emit(sentence)
                        if section == "impression":
                            impression_text += " " + sentence
                    else:
                        if not end or sent:
                            first = sent[0] if sent else token
                            if self._reject(start, first):
                                sent = []
                                continue
                        # gave up at this position: end the section here
                        self.gen.rewind_to(start)
                        if section == "findings":
                            for chunk in self._end_findings(count):
                                yield chunk
                            section = "impression"
                            self._force("\nIMPRESSION:")
                            yield "\nIMPRESSION: "
                            start, sent = self.gen.token_count(), []
                            continue
                        end = True
                start, sent = self.gen.token_count(), []
            if end:
                if section == "findings":
                    for chunk in self._end_findings(count):
                        yield chunk
                    section = "impression"
                    yield "\nIMPRESSION: "
                    if not self.gen.is_done() and self.steps < self.step_budget:
                        self._force("\nIMPRESSION:")
                        start, sent = self.gen.token_count(), []
                        continue
                missing = g.missing_in_impression(impression_text)
                if (
                    missing
                    and not self.gen.is_done()
                    and self.steps < self.step_budget
                    and self._budget_left() > 0
                    and not self._forced_impression
                ):
                    # the model would end without a conditioned finding: force its sentence, go on
                    self._forced_impression = True
                    forced = [canonical_sentence(c) for c in missing]
                    g.inserted.extend(forced)
                    for s in forced:
                        yield emit(s, from_model=False)
                        impression_text += " " + s
                    self._force(" " + " ".join(forced))
                    start, sent = self.gen.token_count(), []
                    continue
                if missing:  # out of budget: state them anyway
                    forced = [canonical_sentence(c) for c in missing]
                    g.inserted.extend(forced)
                    for s in forced:
                        yield emit(s, from_model=False)
                    impression_text += " " + " ".join(forced)
                if self.model_sentences == 0:
                    from app.core.errors import GeneratorError

                    raise GeneratorError(
                        "None of the generator's text could be used (it contradicted the "
                        "findings or was not report text); no draft was written."
                    )
                if count["impression"] == 0:
                    yield emit(g.impression_fallback(), from_model=False)
                for s in g.not_applicable_sentences():
                    yield emit(s, from_model=False)
                return

    def _end_findings(self, count: dict[str, int]) -> Iterator[str]:
        """Forced sentences at the end of FINDINGS (fed to the model before its IMPRESSION)."""
        g = self.guard
        forced: list[str] = []
        if count["findings"] == 0 and g.cond.is_normal:
            forced += [
                s for s in re.split(r"(?<=\.)\s+", NORMAL_FINDINGS) if g.accept(s, "findings")
            ]
        forced += g.missing_sentences()
        for s in forced:
            sep = " " if count["findings"] else ""
            count["findings"] += 1
            self.inserted.append(s)
            yield sep + s
        if forced:
            self._force(" " + " ".join(forced))


def generate_constrained(
    loaded: Any,
    prompt: str,
    guard: ConsistencyGuard,
    max_new_tokens: int = 200,
    progress: Progress | None = None,
    stats: dict[str, Any] | None = None,
) -> Iterator[str]:
    """Stream a guarded draft (``FINDINGS: ...\\nIMPRESSION: ...``) decoded under the guard's constraints.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`app.reporting.generator.bundled.load`.
    prompt : str
        The conditioning prompt (:func:`app.reporting.generator.prompt.format_prompt`).
    guard : ConsistencyGuard
        Decides every sentence; records what was rejected (``dropped``) and forced (``inserted``).
    max_new_tokens : int
        The model's own token budget (forced sentences come on top).
    progress : Progress, optional
        ``check()`` every token (cancel).
    stats : dict, optional
        Filled with ``model_sentences`` (the model's own sentences kept) and ``inserted`` (the
        sentences forced in), for the draft's provenance.

    Raises
    ------
    GeneratorError
        None of the model's own sentences could be kept (the guard never writes a whole report).
    """
    dec = _Decoder(loaded, prompt, guard, max_new_tokens, progress)
    try:
        pending = ""  # the FINDINGS header goes out with the first sentence (nothing shows before)
        for chunk in dec.run():
            if (
                chunk == "FINDINGS: "
                and not pending
                and dec.model_sentences == 0
                and not dec.inserted
            ):
                pending = chunk
                continue
            yield pending + chunk
            pending = ""
        if pending:
            yield pending
    finally:
        if stats is not None:
            stats["model_sentences"] = dec.model_sentences
            stats["inserted"] = list(dec.inserted)
        del dec.gen
