"""A small OpenAI-compatible chat-completions server on 127.0.0.1 for the safety tests.

It records every request (headers and JSON body) and answers in one of several modes: a proper
SSE stream, an HTML page, ``data: {not json}``, an empty 200, a hang, SSE keep-alive comments
trickled forever, or an error whose message carries terminal escape sequences.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD_REPLY = (
    "FINDINGS: There is a focal opacity in the right lower lobe consistent with pneumonia. "
    "No pleural effusion.\nIMPRESSION: Right lower lobe pneumonia."
)


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as srv:``; set ``srv.mode``; read ``srv.requests``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.mode = "good"
        self.reply = GOOD_REPLY
        self.requests: list[dict[str, Any]] = []
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                outer.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": doc,
                        "raw": body.decode("utf-8", "replace"),
                    }
                )
                outer.respond(self)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- answers ---------------------------------------------------------------------------------
    def respond(self, h: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        if mode == "hang":
            self.stop.wait(30)
            return
        if mode == "html":
            self._send(h, 200, "text/html", b"<html><body><h1>Welcome to nginx</h1></body></html>")
            return
        if mode == "empty":
            self._send(h, 200, "text/event-stream", b"")
            return
        if mode == "notjson":
            self._send(h, 200, "text/event-stream", b"data: {not json}\n\ndata: [DONE]\n\n")
            return
        if mode == "escape":
            msg = json.dumps({"error": {"message": "bad \x1b[2J\x1b]0;pwned\x07 key\r\x08"}})
            self._send(h, 401, "application/json", msg.encode())
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        if mode == "trickle":
            # keep-alive comments forever: a per-read timeout would never fire
            while not self.stop.is_set():
                try:
                    h.wfile.write(b": keep-alive\n\n")
                    h.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
            return
        words = self.reply.split(" ")
        for i, w in enumerate(words):
            piece = w + (" " if i < len(words) - 1 else "")
            event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            h.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, ctype: str, body: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
