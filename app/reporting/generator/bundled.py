"""The bundled report generator, run with onnxruntime-genai (CUDA when it loads, else CPU)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from app.core import paths
from app.core.errors import GeneratorError, ProviderError
from app.core.progress import Progress

log = logging.getLogger(__name__)

MODEL_ID = "report_generator"
MODEL_VERSION = "1.0.0"
#: its MODEL_CARD.md: "Demonstration model" (it has no model.json; the draft's provenance says so)
DEMONSTRATION = True


def default_model_dir() -> Path:
    """The generator folder: ``HILUM_GENERATOR_DIR`` when set (a site's own), else the shipped one."""
    override = os.environ.get("HILUM_GENERATOR_DIR")
    return Path(override) if override else paths.bundled_models_dir() / MODEL_ID / "model"


@dataclass
class LoadedModel:
    """An onnxruntime-genai model with its tokenizer and what ran it."""

    model: Any
    tokenizer: Any
    provider: str
    path: Path
    sha256: str
    eos_id: int


_CACHE: dict[tuple[str, str], LoadedModel] = {}
_LOCK = threading.Lock()


def _sha256(folder: Path) -> str:
    """Hash of the graph and its weights (``model.onnx`` + ``model.onnx.data``)."""
    h = hashlib.sha256()
    for name in ("model.onnx", "model.onnx.data"):
        f = folder / name
        if f.exists():
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _load(folder: Path, provider: str) -> Any:
    import onnxruntime_genai as og

    config = og.Config(str(folder))
    config.clear_providers()
    if provider == "cuda":
        config.append_provider("cuda")
    return og.Model(config)


def load(model_dir: Path | str | None = None, device: str = "auto") -> LoadedModel:
    """Load (once, then cached) the generator folder.

    Parameters
    ----------
    model_dir : path, optional
        An onnxruntime-genai folder (default: the bundled one).
    device : {"auto", "cuda", "cpu"}
        ``auto`` tries CUDA and falls back to CPU when it cannot load: ``og.is_cuda_available()``
        reports True even on machines without a GPU, so only a real load tells.

    Raises
    ------
    GeneratorError
        The folder is missing or cannot be loaded.
    ProviderError
        ``device="cuda"`` was asked for and CUDA cannot be used.
    """
    folder = Path(model_dir) if model_dir else default_model_dir()
    if not (folder / "genai_config.json").is_file():
        raise GeneratorError(
            f"The report generator model is missing: no genai_config.json in {folder}."
        )
    if device not in {"auto", "cuda", "cpu"}:
        raise GeneratorError(f"Unknown device {device!r} (use auto, cuda or cpu).")
    key = (str(folder.resolve()), device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        try:
            import onnxruntime_genai as og
        except ImportError as exc:  # pragma: no cover - a broken install
            raise GeneratorError("onnxruntime-genai is not installed.") from exc
        model, provider = None, "CPUExecutionProvider"
        if device in {"auto", "cuda"}:
            try:
                model = _load(folder, "cuda")
                provider = "CUDAExecutionProvider"
            except Exception as exc:  # noqa: BLE001 - any load failure means no usable CUDA
                if device == "cuda":
                    raise ProviderError(
                        f"CUDA is not usable for the report generator: {exc}"
                    ) from exc
                log.info("report generator: CUDA did not load (%s); using the CPU", str(exc)[:200])
        if model is None:
            try:
                model = _load(folder, "cpu")
            except Exception as exc:  # noqa: BLE001
                raise GeneratorError(f"The report generator could not be loaded: {exc}") from exc
        cfg = json.loads((folder / "genai_config.json").read_text())
        eos = cfg["model"]["eos_token_id"]
        loaded = LoadedModel(
            model=model,
            tokenizer=og.Tokenizer(model),
            provider=provider,
            path=folder,
            sha256=_sha256(folder),
            eos_id=int(eos[0] if isinstance(eos, list) else eos),
        )
        _CACHE[key] = loaded
        log.info("report generator loaded on %s", provider)
        return loaded


def generate_tokens(
    loaded: LoadedModel, prompt: str, max_new_tokens: int = 200, progress: Progress | None = None
) -> Iterator[str]:
    """Stream decoded text pieces for ``prompt`` (greedy decoding).

    The generator object is freed when the iterator is closed, so a caller that stops early
    (the Stop button) releases it at once.
    """
    import onnxruntime_genai as og

    ids = loaded.tokenizer.encode(prompt)  # no BOS is added: the prompt starts with its marker
    params = og.GeneratorParams(loaded.model)
    params.set_search_options(max_length=len(ids) + max_new_tokens, do_sample=False)
    gen = og.Generator(loaded.model, params)
    stream = loaded.tokenizer.create_stream()
    try:
        gen.append_tokens(ids)
        while not gen.is_done():
            if progress is not None:
                progress.check()
            gen.generate_next_token()
            token = int(gen.get_next_tokens()[0])
            if token == loaded.eos_id:
                break
            piece = stream.decode(token)
            if piece:
                yield piece
    finally:
        del gen
