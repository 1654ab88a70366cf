"""Turn a backend's raw text pieces into a sectioned, guarded draft stream.

Both backends (bundled and OpenAI-compatible) produce raw text pieces; this module cuts them
into sentences, tracks the FINDINGS / IMPRESSION sections, applies the consistency guard and
yields the chunks the user sees.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from app.core.errors import GeneratorError
from app.reporting.generator.guard import ConsistencyGuard

_HEADER = re.compile(r"(?:^|\n|\s)\W{0,3}(FINDINGS|IMPRESSION)\W{0,3}\s*:\W{0,2}\s*", re.IGNORECASE)
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+")
NORMAL_FINDINGS = (
    "The heart size and mediastinal contours are normal. The lungs are clear. "
    "No pleural effusion or pneumothorax."
)


class SectionStreamer:
    """Incremental sentence splitter with section tracking and an optional guard.

    Parameters
    ----------
    guard : ConsistencyGuard or None
        None passes the model's text through unchanged (raw measurement).
    """

    def __init__(self, guard: ConsistencyGuard | None) -> None:
        self.guard = guard
        self.section = "findings"
        self.buffer = ""
        self.started = False
        self.counts = {"findings": 0, "impression": 0}
        #: sentences of the model's own text that reached the draft (the guard's templates and
        #: fallbacks are not counted: a draft is credited to a model only for what it wrote)
        self.model_sentences = 0
        self.model_chars = 0
        #: sentences the guard wrote (templates, missing findings, impression fallback)
        self.inserted: list[str] = []

    # -- helpers --------------------------------------------------------------------------------
    def _emit(self, sentence: str, from_model: bool = True) -> list[str]:
        sentence = sentence.strip()
        if not sentence:
            return []
        if self.guard is not None and not self.guard.accept(sentence, self.section):
            return []
        sep = " " if self.counts[self.section] else ""
        self.counts[self.section] += 1
        if from_model:
            self.model_sentences += 1
        return [sep + sentence]

    def _header(self) -> list[str]:
        out: list[str] = []
        if not self.started:
            self.started = True
            out.append("FINDINGS: ")
        return out

    def _finish_findings(self) -> list[str]:
        out: list[str] = []
        if self.guard is not None:
            if self.counts["findings"] == 0 and self.guard.cond.is_normal:
                for s in re.split(r"(?<=\.)\s+", NORMAL_FINDINGS):
                    emitted = self._emit(s, from_model=False)
                    self.inserted += [e.strip() for e in emitted]
                    out += emitted
            for s in self.guard.missing_sentences():
                self.inserted.append(s)
                sep = " " if self.counts["findings"] else ""
                self.counts["findings"] += 1
                out.append(sep + s)
        out.append("\nIMPRESSION: ")
        self.section = "impression"
        return out

    def _sentences(self, text: str, final: bool) -> tuple[list[str], str]:
        parts = _BOUNDARY.split(text)
        if final:
            return [p for p in parts if p.strip()], ""
        return [p for p in parts[:-1] if p.strip()], parts[-1]

    # -- API ------------------------------------------------------------------------------------
    def feed(self, piece: str) -> list[str]:
        """Add a raw piece; return the chunks ready to show."""
        self.model_chars += len(piece.strip())
        out = self._header()
        self.buffer += piece
        while True:
            m = _HEADER.search(self.buffer)
            if m is None:
                break
            before, name = self.buffer[: m.start()], m.group(1).upper()
            # a header could still be growing ("IMPRESSION" without its colon yet): the regex
            # needs the colon, so a match here is complete
            sents, _ = self._sentences(before, final=True)
            for s in sents:
                out += self._emit(s)
            self.buffer = self.buffer[m.end() :]
            if name == "IMPRESSION" and self.section == "findings":
                out += self._finish_findings()
        # keep a possible partial header in the buffer
        sents, rest = self._sentences(self.buffer, final=False)
        if sents and re.search(r"(?:FINDINGS|IMPRESSION)\W*$", sents[-1], re.IGNORECASE):
            rest = sents.pop() + " " + rest
        for s in sents:
            out += self._emit(s)
        self.buffer = rest
        return out

    def finish(self) -> list[str]:
        """Flush at the end of generation; complete missing sections.

        Raises
        ------
        GeneratorError
            When the backend wrote no text, or none of it survived the guard: the guard never
            writes a whole report from its templates on a backend's behalf.
        """
        sents, _ = self._sentences(self.buffer, final=True)
        self.buffer = ""
        out: list[str] = []
        for s in sents:
            out += self._emit(s)
        if self.model_chars == 0:
            raise GeneratorError("The generator returned no text; no draft was written.")
        if self.model_sentences == 0:
            raise GeneratorError(
                "None of the generator's text could be used (it contradicted the "
                "findings or was not report text); no draft was written."
            )
        out = self._header() + out
        if self.section == "findings":
            out += self._finish_findings()
        if self.counts["impression"] == 0 and self.guard is not None:
            self.counts["impression"] += 1
            fallback = self.guard.impression_fallback()
            self.inserted.append(fallback.strip())
            out.append(fallback)
        if self.guard is not None:  # an AI result outside intended use: say it is not applicable
            for s in self.guard.not_applicable_sentences():
                self.inserted.append(s)
                out.append(" " + s)
        return out


def run(
    pieces: Iterable[str], guard: ConsistencyGuard | None, streamer: SectionStreamer | None = None
) -> Iterator[str]:
    """Stream guarded, sectioned chunks from raw pieces (raises :class:`GeneratorError` when the
    backend wrote nothing usable)."""
    streamer = streamer or SectionStreamer(guard)
    for piece in pieces:
        for chunk in streamer.feed(piece):
            yield chunk
    for chunk in streamer.finish():
        yield chunk


def split_sections(text: str) -> tuple[str, str]:
    """(findings, impression) from a draft's text (the banner line, if any, is ignored)."""
    m_f = re.search(r"FINDINGS\s*:", text, re.IGNORECASE)
    m_i = re.search(r"IMPRESSION\s*:", text, re.IGNORECASE)
    if m_i is None:
        start = m_f.end() if m_f else 0
        return text[start:].strip(), ""
    start = m_f.end() if (m_f and m_f.start() < m_i.start()) else 0
    return text[start : m_i.start()].strip(), text[m_i.end() :].strip()
