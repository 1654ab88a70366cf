"""Report drafting: the bundled generator and an OpenAI-compatible backend.

Public API::

    cond = build_conditioning(model_results, metadata, indication, comparison, notes)
    stream = draft(cond, backend="bundled")
    for chunk in stream:          # text chunks as they are generated
        ...
    stream.provenance             # model id, version, sha256, provider, disclaimer ...
    stream.to_report_draft(study_uid)

``draft`` also accepts a list of coded findings (``["Cardiomegaly", "Pleural Effusion"]``) or of
:class:`app.core.types.ModelResult` in place of a :class:`Conditioning`, with ``context`` holding
``indication``, ``comparison``, ``notes`` and ``metadata``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from app.core.errors import GeneratorError
from app.core.progress import Progress
from app.core.provenance import provenance as make_provenance
from app.core.types import ModelResult, ReportDraft
from app.reporting.generator.conditioning import (
    COVERED_LABELS,
    Conditioning,
    Finding,
    Negative,
    build_conditioning,
    results_from_doc,
)
from app.reporting.generator.guard import ConsistencyGuard
from app.reporting.generator.stream import SectionStreamer
from app.reporting.generator.stream import run as _run_stream
from app.reporting.generator.stream import split_sections

__all__ = [
    "BANNER",
    "COVERED_LABELS",
    "Conditioning",
    "DraftStream",
    "Finding",
    "Negative",
    "build_conditioning",
    "draft",
    "results_from_doc",
    "split_sections",
]

from app.core.provenance import DRAFT_BANNER  # noqa: E402 - the one banner string

log = logging.getLogger(__name__)

#: shown above every draft (panel, CLI, exported text)
BANNER = DRAFT_BANNER


class DraftStream(Iterator[str]):
    """An iterator of draft text chunks that also records the draft and its provenance.

    Attributes
    ----------
    provenance : dict
        Filled once the backend is loaded (before the first text chunk).
    text : str
        Everything yielded so far.
    conditioning : Conditioning
    guard : ConsistencyGuard or None
        What the guard dropped and inserted (``.dropped``, ``.inserted``).
    """

    def __init__(
        self,
        conditioning: Conditioning,
        guard: ConsistencyGuard | None,
        source: Callable[["DraftStream"], Iterator[str]],
    ) -> None:
        self.conditioning = conditioning
        self.guard = guard
        self.provenance: dict[str, Any] = {}
        self.text = ""
        #: per sentence, the AI findings it states (filled by the caller that knows the images)
        self.evidence: list[dict[str, Any]] = []
        self.first_chunk_s: float | None = None
        self._t0 = time.perf_counter()
        self._it = source(self)
        self.done = False

    def __iter__(self) -> "DraftStream":
        return self

    def __next__(self) -> str:
        try:
            chunk = next(self._it)
        except StopIteration:
            self.done = True
            raise
        if self.first_chunk_s is None:
            self.first_chunk_s = time.perf_counter() - self._t0
        self.text += chunk
        return chunk

    def close(self) -> None:
        """Stop generating (frees the backend's generator)."""
        close = getattr(self._it, "close", None)
        if close is not None:
            close()

    def read(self) -> str:
        """Consume the rest of the stream and return the whole text."""
        for _ in self:
            pass
        return self.text

    @property
    def findings(self) -> str:
        return split_sections(self.text)[0]

    @property
    def impression(self) -> str:
        return split_sections(self.text)[1]

    def to_report_draft(self, study_uid: str = "") -> ReportDraft:
        """The draft as a :class:`ReportDraft` (AI-generated, with the generator's provenance)."""
        c = self.conditioning
        return ReportDraft(
            study_uid=study_uid,
            indication=c.indication,
            comparison=c.comparison,
            findings=self.findings,
            impression=self.impression,
            ai_generated=True,
            generator=dict(self.provenance),
            evidence=list(self.evidence),
        )


def _as_conditioning(findings: Any, context: Mapping[str, Any] | None) -> Conditioning:
    if isinstance(findings, Conditioning):
        return findings
    ctx = dict(context or {})
    results: list[ModelResult] = []
    codes: list[str] = []
    if isinstance(findings, str):
        findings = [f for f in findings.split(";")]
    elif isinstance(findings, Mapping):  # a results.json document
        findings = [findings]
    for f in findings or ():
        if isinstance(f, (ModelResult, Mapping)):
            results += results_from_doc(f)
        else:
            codes.append(str(f))
    return build_conditioning(
        results,
        ctx.get("metadata"),
        ctx.get("indication", ""),
        ctx.get("comparison", ""),
        ctx.get("notes", ""),
        findings=codes,
    )


def draft(
    findings: Conditioning | Sequence[Any] | str,
    context: Mapping[str, Any] | None = None,
    backend: str = "bundled",
    *,
    model_dir: str | None = None,
    device: str = "auto",
    max_new_tokens: int = 200,
    guard: bool = True,
    include_banner: bool = True,
    progress: Progress | None = None,
    url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    deidentify: bool = True,
    confirm_send: Callable[[str], bool] | None = None,
    identifiers: Iterable[str] = (),
    allow_insecure_http: bool = False,
) -> DraftStream:
    """Draft FINDINGS and IMPRESSION, streaming text chunks.

    Parameters
    ----------
    findings : Conditioning, list or str
        A :class:`Conditioning` (see :func:`build_conditioning`), or coded findings
        (``"Cardiomegaly;Pleural Effusion"``) and/or :class:`ModelResult` objects.
    context : mapping, optional
        ``indication``, ``comparison``, ``notes`` and ``metadata`` (DICOM keywords), used when
        ``findings`` is not already a :class:`Conditioning`.
    backend : {"bundled", "openai"}
        The bundled onnxruntime-genai model (offline) or an OpenAI-compatible server.
    model_dir, device :
        Bundled backend: the model folder (default: bundled) and ``auto``/``cuda``/``cpu``.
    max_new_tokens : int
        Upper bound on generated tokens.
    guard : bool
        Apply the findings-consistency guard (:mod:`.guard`). Off only to measure the raw model.
    include_banner : bool
        Start the text with the banner line (:data:`BANNER`).
    progress : Progress, optional
        ``check()`` is called per token, so ``cancel()`` stops the generation.
    url, model, api_key, timeout, deidentify, confirm_send, allow_insecure_http :
        OpenAI-compatible backend (see :mod:`app.reporting.generator.openai_backend`).
        ``confirm_send(message)`` receives the exact prompt before it is sent and may refuse.
    identifiers : iterable of str
        The study's header identifiers (:func:`app.reporting.deid.identifiers_from_dataset`),
        scrubbed from every free text sent to a server.

    Returns
    -------
    DraftStream
        Iterate it for the chunks; ``.provenance``, ``.text``, ``.to_report_draft()``.

    Long because the two backends' streaming sources are closures sharing the call's state.
    """
    cond = _as_conditioning(findings, context)
    g = ConsistencyGuard(cond, strict=(backend == "bundled")) if guard else None

    if backend == "bundled":

        def source(ds: DraftStream) -> Iterator[str]:
            from app.reporting.generator import bundled
            from app.reporting.generator.prompt import format_prompt

            loaded = bundled.load(model_dir, device)
            ds.provenance = make_provenance(
                bundled.MODEL_ID,
                bundled.MODEL_VERSION,
                loaded.sha256,
                loaded.provider,
                backend="bundled",
                demonstration=bundled.DEMONSTRATION,
                banner=BANNER,
                guard=guard,
                conditioning=cond.to_dict(),
            )
            if include_banner:
                yield BANNER + "\n"
            prompt = format_prompt(cond.codes, cond.model_indication(), cond.view)
            if g is not None:  # the guard constrains the decoding itself (see .constrained)
                from app.reporting.generator.constrained import generate_constrained

                stats: dict[str, Any] = {}
                yield from generate_constrained(
                    loaded, prompt, g, max_new_tokens, progress, stats=stats
                )
                ds.provenance["model_sentences"] = stats.get("model_sentences", 0)
                ds.provenance["guard_inserted"] = list(stats.get("inserted", []))
                ds.provenance["guard_rejected"] = len(g.dropped)
            else:
                streamer = SectionStreamer(g)
                yield from _run_stream(
                    bundled.generate_tokens(loaded, prompt, max_new_tokens, progress), g, streamer
                )
                ds.provenance["model_sentences"] = streamer.model_sentences
                ds.provenance["guard_inserted"] = list(streamer.inserted)
    elif backend == "openai":
        idents = frozenset(identifiers)

        def source(ds: DraftStream) -> Iterator[str]:
            from app.reporting.generator import openai_backend

            client = openai_backend.OpenAIBackend.from_settings(
                url=url,
                model=model,
                api_key=api_key,
                timeout=timeout,
                allow_insecure_http=allow_insecure_http,
            )
            messages, sent = openai_backend.build_messages(
                cond, deidentify=deidentify, identifiers=idents
            )
            openai_backend.warn_before_sending(client.base_url, sent, confirm_send)
            # provenance names the server without credentials and keeps the exact prompt sent;
            # it credits the model only once the model has written text (see below)
            ds.provenance = make_provenance(
                client.model,
                "remote",
                "",
                client.base_url,
                backend="openai",
                banner=BANNER,
                guard=guard,
                deidentified=deidentify,
                prompt=sent,
                conditioning=cond.to_dict(),
            )
            pieces = client.stream_chat(messages, max_tokens=max_new_tokens * 2, progress=progress)
            first = ""
            for first in pieces:  # connect first: an unreachable or mute server shows no banner
                if first.strip():
                    break
            if not first.strip():
                raise GeneratorError(
                    "The generation server returned no text; no draft was written."
                )

            def chained() -> Iterator[str]:
                yield first
                yield from pieces

            if include_banner:
                yield BANNER + "\n"
            streamer = SectionStreamer(g)
            yield from _run_stream(chained(), g, streamer)
            ds.provenance["model_sentences"] = streamer.model_sentences
            # what the model did not write is named, so provenance never credits it
            ds.provenance["guard_inserted"] = list(streamer.inserted)
            if g is not None:
                ds.provenance["guard_dropped"] = len(g.dropped)
    else:
        raise GeneratorError(f"Unknown generator backend {backend!r} (use bundled or openai).")
    return DraftStream(cond, g, source)
