"""Start MLServer on the loopback interface serving an exported model repository.

Used by the tests and the benchmark (a real Open Inference Protocol server, no hand-written one)
and handy for a site admin trying an export. MLServer pins libraries that Hilum's own environment
cannot share (protobuf, fastapi), so it runs from its own virtual environment
(``.venv-serving``, made by ``run-tests`` from ``requirements-serving.txt``; override with
``HILUM_SERVING_VENV``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.errors import InferenceServerError


def serving_venv() -> Path:
    """The MLServer virtual environment."""
    value = os.environ.get("HILUM_SERVING_VENV")
    return Path(value) if value else paths.ROOT / ".venv-serving"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all held open while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


#: the gRPC message limit the server is started with (a batch of 32 224x224x3 float32 images is
#: 19 MB; CAM outputs come back in the same message)
GRPC_MAX_MESSAGE_BYTES = 512 * 1024 * 1024


class LocalMLServer:
    """MLServer serving ``repository`` on 127.0.0.1 (HTTP, gRPC and metrics ports all loopback).

    Use as a context manager; :attr:`url` is the HTTP endpoint, :attr:`grpc_url` the gRPC one.
    The server's log goes to ``workdir/mlserver.log``.
    """

    def __init__(
        self,
        repository: str | Path,
        workdir: str | Path,
        threads: int = 0,
        ready_timeout_s: float = 180.0,
    ) -> None:
        self.repository = Path(repository)
        self.workdir = Path(workdir)
        self.threads = threads
        self.ready_timeout_s = ready_timeout_s
        self.http_port, self._grpc_port, self._metrics_port = free_ports(3)
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        """The gRPC endpoint (``grpc://127.0.0.1:PORT``)."""
        return f"grpc://127.0.0.1:{self._grpc_port}"

    def start(self) -> "LocalMLServer":
        exe = serving_venv() / "bin" / "mlserver"
        if not exe.is_file():
            raise InferenceServerError(
                f"MLServer is not installed in {serving_venv()} (run ./run-tests once, "
                "or create it from requirements-serving.txt)."
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        # ``mlserver start DIR`` takes DIR as the repository root, so the server settings travel
        # as MLSERVER_* environment variables (nothing is written into the repository)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MLSERVER_"))
        }
        env.update(
            {
                "MLSERVER_HOST": "127.0.0.1",
                "MLSERVER_HTTP_PORT": str(self.http_port),
                "MLSERVER_GRPC_PORT": str(self._grpc_port),
                # gRPC's default 4 MiB message limit is smaller than one batch of 32 images
                "MLSERVER_GRPC_MAX_MESSAGE_LENGTH": str(GRPC_MAX_MESSAGE_BYTES),
                "MLSERVER_METRICS_PORT": str(self._metrics_port),
                "MLSERVER_PARALLEL_WORKERS": "0",
                "MLSERVER_DEBUG": "false",
                "MLSERVER_ENVIRONMENTS_DIR": str(self.workdir / ".envs"),
                "MLSERVER_METRICS_DIR": str(self.workdir / ".metrics"),
            }
        )
        env["PATH"] = f"{exe.parent}:{env.get('PATH', '')}"
        if self.threads:
            env["HILUM_SERVING_THREADS"] = str(self.threads)
        log = open(self.workdir / "mlserver.log", "wb")
        self.proc = subprocess.Popen(
            [str(exe), "start", str(self.repository)],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, model_name: str, model_version: str = "") -> None:
        """Block until the model is ready (the server's log tail is in the error otherwise)."""
        import urllib.request

        path = (
            f"/v2/models/{model_name}"
            + (f"/versions/{model_version}" if model_version else "")
            + "/ready"
        )
        deadline = time.monotonic() + self.ready_timeout_s
        retried = False
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                if retried or "address already in use" not in self.log_tail(4000).lower():
                    break
                # another program took one of the ports between choosing and binding: new ports
                retried = True
                self.http_port, self._grpc_port, self._metrics_port = free_ports(3)
                self.url = f"http://127.0.0.1:{self.http_port}"
                self.start()
                continue
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        tail = self.log_tail()
        self.stop()
        raise InferenceServerError(f"MLServer did not get model '{model_name}' ready: {tail}")

    def log_tail(self, n: int = 800) -> str:
        try:
            return (self.workdir / "mlserver.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> "LocalMLServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
