"""OpenAI-compatible chat-completions backend (vLLM, Ollama, llama.cpp, TGI, ``transformers serve``).

Settings: base URL (``--url`` / ``HILUM_OPENAI_URL``, e.g. ``http://127.0.0.1:8000/v1``), model name
(``--model`` / ``HILUM_OPENAI_MODEL``) and API key, looked up *per server URL*: the OS keyring entry
service ``hilum-openai`` / user = the base URL, or ``HILUM_OPENAI_API_KEY`` only when the server is
the one named by ``HILUM_OPENAI_URL``. No key is ever sent to a server it was not stored for.

Patient data leaves the workstation through this backend, so:

* the prompt is de-identified with the one header-aware scrubber
  (:func:`app.reporting.deid.scrub_text` with the study's header identifiers; ages over 89 banded)
  and :func:`warn_before_sending` shows the exact prompt to the caller's confirmation hook;
* plain ``http://`` is refused for any host outside 127.0.0.0/8, ::1 and ``localhost`` unless the
  user allowed insecure HTTP; credentials written in the URL are used but never printed or stored;
* ``timeout`` is one deadline for the whole request (SSE keep-alive comments do not extend it);
* text from the server shown in messages has its terminal control characters removed.
"""

from __future__ import annotations

import http.client
import base64
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

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


def deidentify_text(text: str, identifiers: Iterable[str] = ()) -> str:
    """Remove identifiers from free text before it leaves the machine.

    The one scrubber (:func:`app.reporting.deid.scrub_text`): the study's header identifiers
    (``identifiers``) plus generic patterns (dates, times, long numbers and ID-like tokens, e-mail,
    phone numbers, URLs, street addresses, postcodes, titled names).
    """
    from app.reporting.deid import scrub_text

    return scrub_text(text or "", identifiers)


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_generated_text(piece: str) -> str:
    """Generated text made safe to print: escape sequences and control characters (except
    newlines and tabs) removed, markdown emphasis and headings dropped."""
    return _TEXT_CONTROL.sub("", _ANSI.sub("", piece)).replace("**", "").replace("#", "")


def clean_server_text(text: str, limit: int = 200) -> str:
    """Server-supplied text made safe to show: escape sequences and control characters removed
    (a hostile server cannot rewrite the user's terminal), whitespace collapsed, shortened."""
    text = _CONTROL.sub(" ", _ANSI.sub("", str(text)))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def redact_url(url: str) -> str:
    """The URL without credentials (``https://user:pw@host/v1`` -> ``https://host/v1``)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (traffic that never leaves the machine)."""
    host = (host or "").strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _age_text(age: str, deidentify: bool) -> str:
    digits = "".join(ch for ch in age if ch.isdigit())
    if not digits:
        return ""
    years = int(digits)
    if deidentify and years > 89:
        return "90 or older"
    return f"{years} years"


def build_messages(
    cond: Conditioning, deidentify: bool = True, identifiers: Iterable[str] = ()
) -> tuple[list[dict[str, str]], str]:
    """Chat messages for the conditioning; also returns the user text that will be sent.

    Parameters
    ----------
    cond : Conditioning
        Findings and what the radiologist typed.
    deidentify : bool
        Scrub the free text (indication, comparison, notes) and band ages over 89.
    identifiers : iterable of str
        The study's header identifiers (:func:`app.reporting.deid.identifiers_from_dataset`),
        removed from the free text wherever they appear.
    """
    idents = frozenset(identifiers)
    lines = []
    if cond.modality or cond.body_part or cond.view:
        lines.append(
            "Examination: " + ", ".join(x for x in (cond.modality, cond.body_part, cond.view) if x)
        )
    age = _age_text(cond.age, deidentify)
    sex = {"M": "male", "F": "female"}.get(cond.sex.strip().upper()[:1], "")
    if age or sex:
        lines.append("Patient: " + ", ".join(x for x in (age, sex) if x))
    scrub = (lambda s: deidentify_text(s, idents)) if deidentify else (lambda s: s)
    if cond.indication:
        lines.append(f"Indication: {scrub(cond.indication)}")
    if cond.comparison:
        lines.append(f"Comparison: {scrub(cond.comparison)}")
    if cond.positives:
        pos = [
            f"{f.code} (AI probability {f.probability:.2f})"
            if f.probability is not None
            else f.code
            for f in cond.positives
        ]
        lines.append("Positive findings: " + "; ".join(pos))
    else:
        lines.append("Positive findings: none (normal study)")
    if cond.negatives:
        lines.append(
            "Negative findings (state as absent): "
            + "; ".join(
                f"{n.code} (AI probability {n.probability:.2f})"
                if n.probability is not None
                else n.code
                for n in cond.negatives
            )
        )
    if cond.notes:
        lines.append(f"Radiologist's notes: {scrub(cond.notes)}")
    user = "\n".join(lines)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}], user


def send_message(url: str, text: str) -> str:
    """What the user is asked before ``text`` is sent to the server at ``url``."""
    host = urllib.parse.urlsplit(url).hostname or redact_url(url)
    return (
        f"The report prompt below ({len(text)} characters, de-identified unless you turned that "
        f"off) will be sent to the generation server at {host}:\n\n{text}"
    )


def warn_before_sending(url: str, text: str, confirm: Callable[[str], bool] | None) -> None:
    """Show the exact prompt about to leave the machine; ``confirm`` may refuse (raises Cancelled)."""
    message = send_message(url, text)
    if confirm is None:
        log.warning(
            "The report prompt (%d characters) will be sent to %s.",
            len(text),
            urllib.parse.urlsplit(url).hostname or "the generation server",
        )
    elif not confirm(message):
        raise Cancelled("Sending the prompt to the generation server was cancelled.")


def _norm_url(url: str) -> str:
    return redact_url(url.strip()).rstrip("/")


def api_key_for(url: str) -> str | None:
    """The API key stored for this server URL, or None.

    The OS keyring entry (service ``hilum-openai``, user = the base URL without credentials), or
    ``HILUM_OPENAI_API_KEY`` when ``HILUM_OPENAI_URL`` names this same server. There is no
    "default" key: a key is never sent to a server it was not stored for.
    """
    want = _norm_url(url)
    key = os.environ.get(ENV_KEY)
    if key and os.environ.get(ENV_URL) and _norm_url(os.environ[ENV_URL]) == want:
        return key
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, want) or None
    except Exception as exc:  # noqa: BLE001 - no keyring backend on this machine
        log.debug("keyring not usable: %s", type(exc).__name__)
        return None


@dataclass
class OpenAIBackend:
    """A chat-completions client over HTTP(S) with SSE streaming.

    ``base_url`` never holds credentials (they are kept apart, in ``_auth``, and never shown);
    ``timeout`` bounds the whole request, from connecting to the last byte.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0  # seconds for the whole request
    allow_insecure_http: bool = False
    _auth: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.username is not None or parts.password is not None:
            if self._auth is None:
                user = urllib.parse.unquote(parts.username or "")
                pw = urllib.parse.unquote(parts.password or "")
                self._auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
            self.base_url = redact_url(self.base_url)
        host = parts.hostname or ""
        if parts.scheme == "http" and not is_loopback_host(host) and not self.allow_insecure_http:
            raise GeneratorError(
                f"Refusing to send patient data over plain http:// to {host}: use https:// (or, on a "
                "trusted network only, allow insecure HTTP with --allow-insecure-http)."
            )

    @classmethod
    def from_settings(
        cls,
        url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        allow_insecure_http: bool = False,
    ) -> "OpenAIBackend":
        """Fill missing settings from the environment and the keyring (per server URL)."""
        base = (url or os.environ.get(ENV_URL) or "").strip()
        if not base:
            raise GeneratorError(
                f"No server URL for the OpenAI-compatible backend: give --url or set {ENV_URL}."
            )
        if not re.match(r"^https?://", base, re.IGNORECASE):
            raise GeneratorError(
                f"The server URL must start with http:// or https:// "
                f"(got {clean_server_text(redact_url(base), 80)!r})."
            )
        name = (model or os.environ.get(ENV_MODEL) or "").strip()
        if not name:
            raise GeneratorError(
                f"No model name for the OpenAI-compatible backend: give --model or set {ENV_MODEL}."
            )
        if timeout <= 0:
            raise GeneratorError("The timeout must be a positive number of seconds.")
        return cls(
            base.rstrip("/"), name, api_key or api_key_for(base), timeout, allow_insecure_http
        )

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, str]:
        parts = urllib.parse.urlsplit(self.base_url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=timeout)
        prefix = parts.path.rstrip("/")
        # ".../v1" is the usual base URL; a bare host gets the standard /v1 prefix
        path = prefix + ("/chat/completions" if prefix.endswith("/v1") else "/v1/chat/completions")
        return conn, path

    def stream_chat(
        self,
        messages: list[dict[str, str]],
        max_tokens: int = 400,
        temperature: float = 0.0,
        progress: Progress | None = None,
    ) -> Iterator[str]:
        """Stream content pieces of a chat completion (``stream: true``, server-sent events).

        Raises
        ------
        BackendUnavailableError
            The server cannot be reached, passes the deadline, answers with an error status, or
            answers with something that is not a chat-completions stream.

        Long because one overall deadline covers connecting, streaming and parsing: the loop shares its clock.
        """
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "stream": True,
                "max_tokens": max_tokens,
                "temperature": temperature,
            }
        ).encode()
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        elif self._auth:
            headers["Authorization"] = self._auth
        deadline = time.monotonic() + self.timeout
        conn, path = self._connection(self.timeout)
        where = self.base_url
        expired = threading.Event()

        def expire() -> None:  # the one deadline: unblock any read by closing the socket
            expired.set()
            sock = conn.sock
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        timer = threading.Timer(self.timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            try:
                conn.request("POST", path, body=body, headers=headers)
                sock = conn.sock
                resp = conn.getresponse()
            except (
                ConnectionError,
                socket.timeout,
                TimeoutError,
                OSError,
                http.client.HTTPException,
            ) as exc:
                if expired.is_set():
                    raise self._timeout_error(where) from exc
                raise BackendUnavailableError(
                    f"The generation server at {where} cannot be reached ({exc.__class__.__name__}: "
                    f"{clean_server_text(str(exc), 120)}). Check the URL and that the server is running, "
                    "or use the bundled generator."
                ) from exc
            if resp.status != 200:
                detail = clean_server_text(resp.read(500).decode("utf-8", "replace"))
                hint = " (check the API key)" if resp.status in (401, 403) else ""
                raise BackendUnavailableError(
                    f"The generation server at {where} answered HTTP {resp.status}{hint}: {detail}"
                )
            ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/json":
                yield from self._whole(resp, where)
            elif ctype in ("text/event-stream", ""):
                yield from self._events(resp, progress, where, sock, deadline, expired)
            else:
                raise BackendUnavailableError(
                    f"The generation server at {where} answered with {clean_server_text(ctype, 40)}, "
                    "not a chat-completions stream; no draft was written."
                )
        finally:
            timer.cancel()
            conn.close()

    def _timeout_error(self, where: str) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"The generation server at {where} did not finish within the {self.timeout:g} s timeout."
        )

    def _whole(self, resp: http.client.HTTPResponse, where: str) -> Iterator[str]:
        """A server that ignored ``stream: true`` and sent one JSON completion."""
        try:
            doc = json.loads(resp.read(4 << 20).decode("utf-8", "replace"))
            text = doc["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendUnavailableError(
                f"The generation server at {where} sent a reply that is not a chat completion; "
                "no draft was written."
            ) from exc
        if isinstance(text, str) and text:
            yield clean_generated_text(text)

    def _events(
        self,
        resp: http.client.HTTPResponse,
        progress: Progress | None,
        where: str,
        sock: socket.socket | None,
        deadline: float,
        expired: threading.Event,
    ) -> Iterator[str]:
        try:
            while True:
                if progress is not None:
                    progress.check()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or expired.is_set():
                    raise self._timeout_error(where)
                if sock is not None:
                    sock.settimeout(remaining)
                line = resp.readline(1 << 20)
                if expired.is_set():
                    raise self._timeout_error(where)
                if not line:
                    return
                text = line.decode("utf-8", "replace").strip()
                if not text.startswith("data:"):
                    continue  # comments (keep-alives), event names, blank separators
                data = text[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event: dict[str, Any] = json.loads(data)
                    if not isinstance(event, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    raise BackendUnavailableError(
                        f"The generation server at {where} sent data that is not a chat-completions "
                        "event; no draft was written."
                    ) from exc
                if "error" in event:
                    raise BackendUnavailableError(
                        f"The generation server at {where} reported an error: "
                        f"{clean_server_text(str(event['error']))}"
                    )
                for choice in event.get("choices", []) or []:
                    if not isinstance(choice, dict):
                        continue
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if isinstance(piece, str) and piece:
                        yield clean_generated_text(piece)
        except (socket.timeout, TimeoutError) as exc:
            raise self._timeout_error(where) from exc
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise self._timeout_error(where) from exc
            raise BackendUnavailableError(
                f"The connection to the generation server at {where} broke: "
                f"{clean_server_text(str(exc), 120)}"
            ) from exc
