"""OpenAI-compatible chat-completions backend (vLLM, Ollama, llama.cpp, TGI, ``transformers serve``).

Settings: base URL (``--url`` / ``HILUM_OPENAI_URL``, e.g. ``http://127.0.0.1:8000/v1``), model name
(``--model`` / ``HILUM_OPENAI_MODEL``) and API key (``HILUM_OPENAI_API_KEY``, else the OS keyring
entry service ``hilum-openai`` / user = the base URL; none is fine for local servers).

Patient data leaves the workstation through this backend, so by default the prompt is
de-identified (:func:`deidentify_text`, ages over 89 banded) and :func:`warn_before_sending` logs a
warning and asks the caller's confirmation hook before anything is sent.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from app.core.errors import BackendUnavailableError, Cancelled, GeneratorError
from app.core.progress import Progress
from app.reporting.generator.conditioning import Conditioning

log = logging.getLogger(__name__)

ENV_URL = "HILUM_OPENAI_URL"
ENV_MODEL = "HILUM_OPENAI_MODEL"
ENV_KEY = "HILUM_OPENAI_API_KEY"
KEYRING_SERVICE = "hilum-openai"

SYSTEM_PROMPT = (
    "You are a radiology assistant drafting a chest X-ray report for a radiologist to review. "
    "Write exactly two sections, each starting on its own line: 'FINDINGS:' and 'IMPRESSION:'. "
    "State every positive finding listed, state the listed negative findings as negatives, and do "
    "not invent other abnormalities. Plain text, no markdown, no patient identifiers."
)


def deidentify_text(text: str) -> str:
    """Remove identifiers from free text before it leaves the machine.

    Dates, times, long numbers (record and accession numbers), e-mail addresses, phone numbers,
    URLs and titled names ("Dr. Smith", "Mrs Jones") are replaced by ``[REDACTED]``.
    """
    if not text:
        return ""
    rx = [
        r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b",                                    # e-mail
        r"\bhttps?://\S+",                                                   # URL
        r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b",                              # dates 2024-01-31, 1/31/24
        r"\b(?:\d{1,2}\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
        r"(?:\s+\d{1,2})?(?:,?\s+\d{4})\b",                                   # 31 Jan 2024, Jan 31, 2024
        r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?",                     # times
        r"\+?\(?\d{2,4}\)?[\s-]\d{3,4}[\s-]\d{3,4}\b",                        # phone numbers
        r"\b\d{5,}\b",                                                       # MRN, accession
        r"\b(?:dr|mr|mrs|ms|miss|prof)\.?\s+[A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+)?",  # titled names
    ]
    out = text
    for pattern in rx:
        out = re.sub(pattern, "[REDACTED]", out, flags=re.IGNORECASE)
    return out


def _age_text(age: str, deidentify: bool) -> str:
    digits = "".join(ch for ch in age if ch.isdigit())
    if not digits:
        return ""
    years = int(digits)
    if deidentify and years > 89:
        return "90 or older"
    return f"{years} years"


def build_messages(cond: Conditioning, deidentify: bool = True) -> tuple[list[dict[str, str]], str]:
    """Chat messages for the conditioning; also returns the user text that will be sent."""
    lines = []
    if cond.modality or cond.body_part or cond.view:
        lines.append("Examination: " + ", ".join(x for x in (cond.modality, cond.body_part, cond.view) if x))
    age = _age_text(cond.age, deidentify)
    sex = {"M": "male", "F": "female"}.get(cond.sex.strip().upper()[:1], "")
    if age or sex:
        lines.append("Patient: " + ", ".join(x for x in (age, sex) if x))
    scrub = deidentify_text if deidentify else (lambda s: s)
    if cond.indication:
        lines.append(f"Indication: {scrub(cond.indication)}")
    if cond.comparison:
        lines.append(f"Comparison: {scrub(cond.comparison)}")
    if cond.positives:
        pos = [f"{f.code} (AI probability {f.probability:.2f})" if f.probability is not None else f.code
               for f in cond.positives]
        lines.append("Positive findings: " + "; ".join(pos))
    else:
        lines.append("Positive findings: none (normal study)")
    if cond.negatives:
        lines.append("Negative findings (state as absent): " + "; ".join(
            f"{n.code} (AI probability {n.probability:.2f})" if n.probability is not None else n.code
            for n in cond.negatives))
    if cond.notes:
        lines.append(f"Radiologist's notes: {scrub(cond.notes)}")
    user = "\n".join(lines)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}], user


def warn_before_sending(url: str, text: str, confirm: Callable[[str], bool] | None) -> None:
    """Warn that data is about to leave the machine; ``confirm`` may refuse (raises Cancelled)."""
    host = urllib.parse.urlsplit(url).hostname or url
    message = (f"The report prompt ({len(text)} characters, de-identified unless you turned that off) "
               f"will be sent to the generation server at {host}.")
    if confirm is None:
        log.warning("%s", message)
    elif not confirm(message):
        raise Cancelled("Sending the prompt to the generation server was cancelled.")


def api_key_for(url: str) -> str | None:
    """API key from ``HILUM_OPENAI_API_KEY`` or the OS keyring (service ``hilum-openai``)."""
    key = os.environ.get(ENV_KEY)
    if key:
        return key
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, url) or keyring.get_password(KEYRING_SERVICE, "default")
    except Exception as exc:  # noqa: BLE001 - no keyring backend on this machine
        log.debug("keyring not usable: %s", exc)
        return None


@dataclass
class OpenAIBackend:
    """A chat-completions client over plain HTTP(S) with SSE streaming."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0          # per socket operation (connect, and between streamed chunks)

    @classmethod
    def from_settings(cls, url: str | None = None, model: str | None = None, api_key: str | None = None,
                      timeout: float = 60.0) -> "OpenAIBackend":
        """Fill missing settings from the environment and the keyring."""
        base = (url or os.environ.get(ENV_URL) or "").strip()
        if not base:
            raise GeneratorError(f"No server URL for the OpenAI-compatible backend: give --url or set {ENV_URL}.")
        if not re.match(r"^https?://", base):
            raise GeneratorError(f"The server URL must start with http:// or https:// (got {base!r}).")
        name = (model or os.environ.get(ENV_MODEL) or "").strip()
        if not name:
            raise GeneratorError(f"No model name for the OpenAI-compatible backend: give --model or set {ENV_MODEL}.")
        return cls(base.rstrip("/"), name, api_key or api_key_for(base), timeout)

    def _connection(self) -> tuple[http.client.HTTPConnection, str]:
        parts = urllib.parse.urlsplit(self.base_url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=self.timeout)
        prefix = parts.path.rstrip("/")
        # ".../v1" is the usual base URL; a bare host gets the standard /v1 prefix
        path = prefix + ("/chat/completions" if prefix.endswith("/v1") else "/v1/chat/completions")
        return conn, path

    def stream_chat(self, messages: list[dict[str, str]], max_tokens: int = 400, temperature: float = 0.0,
                    progress: Progress | None = None) -> Iterator[str]:
        """Stream content pieces of a chat completion (``stream: true``, server-sent events).

        Raises
        ------
        BackendUnavailableError
            The server cannot be reached, times out, or answers with an error status.
        """
        body = json.dumps({"model": self.model, "messages": messages, "stream": True,
                           "max_tokens": max_tokens, "temperature": temperature}).encode()
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        conn, path = self._connection()
        where = f"{self.base_url}"
        try:
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
            except (ConnectionError, socket.timeout, TimeoutError, OSError) as exc:
                raise BackendUnavailableError(
                    f"The generation server at {where} cannot be reached ({exc.__class__.__name__}: {exc}). "
                    "Check the URL and that the server is running, or use the bundled generator.") from exc
            if resp.status != 200:
                detail = resp.read(500).decode("utf-8", "replace").strip()
                hint = " (check the API key)" if resp.status in (401, 403) else ""
                raise BackendUnavailableError(
                    f"The generation server at {where} answered HTTP {resp.status}{hint}: {detail[:200]}")
            yield from self._events(resp, progress, where)
        finally:
            conn.close()

    def _events(self, resp: http.client.HTTPResponse, progress: Progress | None, where: str) -> Iterator[str]:
        try:
            while True:
                if progress is not None:
                    progress.check()
                line = resp.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").strip()
                if not text.startswith("data:"):
                    continue            # comments, event names, blank separators
                data = text[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event: dict[str, Any] = json.loads(data)
                except json.JSONDecodeError:
                    log.debug("unparsable SSE data line skipped")
                    continue
                if "error" in event:
                    raise BackendUnavailableError(f"The generation server at {where} reported an error: "
                                                  f"{str(event['error'])[:200]}")
                for choice in event.get("choices", []):
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        yield piece.replace("**", "").replace("#", "")
        except (socket.timeout, TimeoutError) as exc:
            raise BackendUnavailableError(
                f"The generation server at {where} stopped answering (timeout after {self.timeout:.0f} s).") from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise BackendUnavailableError(f"The connection to the generation server at {where} broke: {exc}") from exc
