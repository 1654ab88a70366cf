"""Remote inference over the Open Inference Protocol against a REAL server: MLServer 1.7.1 (from
``.venv-serving``) on 127.0.0.1 serving the repository that ``hilum models export-serving`` writes.

Remote results (probabilities and CAM maps) must equal local ones within 1e-5; a server that is
down or serves a different model is refused in one sentence; ``auto`` falls back to local only
where the site allows and says so.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnx
import pytest

from app.cli import main
from app.core import paths
from app.core.errors import InferenceServerError
from app.inference.local_server import LocalMLServer
from app.inference.remote import ServingConfig, manifest_signature, metadata_problems
from app.workflow.batch import analyze

from _inference_models import BUNDLED_ID


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMLServer]:
    """MLServer serving the exported bundled model, plus 'wrong' (a model with another input)."""
    repo = tmp_path_factory.mktemp("repo")
    assert main(["models", "export-serving", BUNDLED_ID, "--out", str(repo)]) == 0
    wrong = repo / "wrong"
    shutil.copytree(repo / BUNDLED_ID, wrong)
    settings = json.loads((wrong / "model-settings.json").read_text())
    settings["name"] = "wrong"
    settings["inputs"][0]["shape"] = [-1, 3, 224, 224]
    (wrong / "model-settings.json").write_text(json.dumps(settings))
    # the right tensors, but exported from another model file ('stale') or not saying ('unmarked')
    for name, sha in (("stale", "0" * 64), ("unmarked", None)):
        shutil.copytree(repo / BUNDLED_ID, repo / name)
        settings = json.loads((repo / name / "model-settings.json").read_text())
        settings["name"] = name
        if sha is None:
            settings["parameters"].pop("extra")
        else:
            settings["parameters"]["extra"]["hilum_sha256"] = sha
        (repo / name / "model-settings.json").write_text(json.dumps(settings))
    srv = LocalMLServer(repo, tmp_path_factory.mktemp("mlserver"), threads=1)
    srv.start()
    try:
        for name in (BUNDLED_ID, "wrong", "stale", "unmarked"):
            srv.wait_ready(name, "1")
        yield srv
    finally:
        srv.stop()


#: both client transports: gRPC (raw tensor bytes, the recommended one) and HTTP/REST (JSON
#: tensors with MLServer)
PROTOCOLS = ("grpc", "http")


def _url(server: LocalMLServer, proto: str) -> str:
    return server.grpc_url if proto == "grpc" else server.url


def _site(settings: dict[str, Any]) -> None:
    (paths.config_dir() / "serving.json").write_text(json.dumps(settings))


def _serve(url: str, model_name: str = BUNDLED_ID, **extra: Any) -> None:
    _site(
        {
            "models": {
                BUNDLED_ID: {
                    "url": url,
                    "model_name": model_name,
                    "model_version": "1",
                    "timeout_s": 20,
                }
            },
            **extra,
        }
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_export_serving_writes_a_triton_repository(tmp_path: Path) -> None:
    assert (
        main(["models", "export-serving", BUNDLED_ID, "--out", str(tmp_path), "--max-batch", "16"])
        == 0
    )
    folder = tmp_path / BUNDLED_ID
    config = (folder / "config.pbtxt").read_text()
    assert f'name: "{BUNDLED_ID}"' in config and 'platform: "onnxruntime_onnx"' in config
    assert "max_batch_size: 16" in config and "dynamic_batching" in config
    assert '{ name: "image" data_type: TYPE_FP32 dims: [ 1, 28, 28 ] }' in config
    assert '{ name: "logits" data_type: TYPE_FP32 dims: [ 1 ] }' in config
    assert '{ name: "hilum_cam" data_type: TYPE_FP32 dims: [ 1, 7, 7 ] }' in config
    model = onnx.load(str(folder / "1" / "model.onnx"))
    onnx.checker.check_model(model)
    # the OOD score's feature map travels with the logits (the manifest declares one)
    ood_feature = json.loads((paths.bundled_models_dir() / BUNDLED_ID / "model.json").read_text())[
        "ood"
    ]["feature_tensor"]
    assert [o.name for o in model.graph.output] == ["logits", ood_feature, "hilum_cam"]
    assert f'name: "{ood_feature}"' in config
    settings = json.loads((folder / "model-settings.json").read_text())
    assert settings["implementation"] == "hilum_onnx_runtime.HilumOnnxRuntime"
    # the verified model's sha256 (the manifest's) travels in both servers' model parameters
    from app.inference.registry import ModelRegistry

    sha = ModelRegistry().get(BUNDLED_ID).sha256
    assert f'parameters {{ key: "hilum_sha256" value: {{ string_value: "{sha}" }} }}' in config
    assert settings["parameters"]["extra"]["hilum_sha256"] == sha
    assert (folder / "hilum_onnx_runtime.py").is_file()
    # a model that fails verification is refused
    assert main(["models", "export-serving", "no_such_model", "--out", str(tmp_path)]) == 1


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_remote_matches_local_including_cam(
    server: LocalMLServer, tmp_path: Path, shared_data: Path, proto: str
) -> None:
    films = shared_data / "dicom" / "cxr"
    local = analyze([films], tmp_path / "local", device="cpu", saliency="cam", inference="local")
    url = _url(server, proto)
    # credentials in the URL are sent (basic auth) but never recorded
    _serve(url.replace("://", "://reader:s3cret@"))
    remote = analyze([films], tmp_path / "remote", device="cpu", saliency="cam", inference="remote")
    assert remote["summary"]["classified"] == local["summary"]["classified"] == 3
    text = (tmp_path / "remote" / "results.json").read_text()
    assert "s3cret" not in text and "reader" not in text
    for li, ri in zip(local["images"], remote["images"]):
        (lr,), (rr,) = li["results"], ri["results"]
        assert rr["provider"] == f"{url} {BUNDLED_ID}/1"
        assert rr["provenance"]["server"]["url"] == url
        assert rr["provenance"]["server"]["protocol"] == f"kserve-v2 ({proto})"
        assert rr["provenance"]["server"]["model_name"] == BUNDLED_ID
        assert rr["provenance"]["server"]["model_version"] == "1"
        assert rr["provenance"]["server"]["server"] == "mlserver"
        assert rr["provenance"]["disclaimer"] == "AI-generated, requires review by a physician"
        assert lr["provider"] == "CPUExecutionProvider"
        # a demonstration model's result says so whether it ran here or on the server (issue 13)
        assert rr["demonstration"] is lr["demonstration"] is True
        # the OOD score came out of the served pass too, equal to the local one
        assert (
            rr["ood"]["method"] == lr["ood"]["method"]
            and abs(rr["ood"]["score"] - lr["ood"]["score"]) <= 1e-3
        )
        assert rr["ood"]["flagged"] == lr["ood"]["flagged"]
        for label, lab in lr["labels"].items():
            assert abs(lab["probability"] - rr["labels"][label]["probability"]) <= 1e-5
            assert lab["positive"] == rr["labels"][label]["positive"]
        # CAM came from the same (remote) pass and matches the local map
        assert rr["saliency"]["same_forward_pass"] is True and "error" not in rr["saliency"]
        for label, files in lr["saliency"]["files"].items():
            a = np.load(tmp_path / "local" / files["npy"])
            b = np.load(tmp_path / "remote" / rr["saliency"]["files"][label]["npy"])
            assert a.shape == b.shape and float(np.nanmax(np.abs(a - b))) <= 1e-5


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_remote_engine_batches_match_local_session(server: LocalMLServer, proto: str) -> None:
    from app.inference.engine import Engine
    from app.inference.registry import ModelRegistry
    from app.inference.remote import RemoteEngine

    m = ModelRegistry().get(BUNDLED_ID)
    remote = RemoteEngine(m, ServingConfig(_url(server, proto), BUNDLED_ID, "1"))
    local = Engine(m, device="cpu")
    x = np.random.default_rng(3).normal(size=(32, 1, 28, 28)).astype(np.float32)
    assert np.abs(remote.probabilities(x) - local.probabilities(x)).max() <= 1e-5
    assert np.abs(remote.probabilities(x[:1]) - local.probabilities(x[:1])).max() <= 1e-5


def test_gui_analysis_path_uses_the_site_server(server: LocalMLServer) -> None:
    """analyze_paths without an engine factory (the AI panel's call) honours the site setting."""
    from app.inference.analyze import analyze_paths

    _serve(server.url)
    doc = analyze_paths([paths.sample_path()], None, device="cpu", write=False)
    (res,) = doc["images"][0]["results"]
    assert res["provider"] == f"{server.url} {BUNDLED_ID}/1"
    assert doc["models"][0]["provider"] == res["provider"]


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_server_down_is_one_sentence_and_fallback_only_where_allowed(
    tmp_path: Path, proto: str
) -> None:
    url = f"{proto}://127.0.0.1:{_closed_port()}"
    _serve(url)
    for mode in ("remote", "auto"):
        with pytest.raises(InferenceServerError) as info:
            analyze([paths.sample_path()], tmp_path / mode, device="cpu", inference=mode)
        msg = str(info.value)
        assert (
            msg.startswith(f"The inference server at {url} cannot be reached") and "\n" not in msg
        )
    # the CLI prints that sentence and exits 1
    assert (
        main(
            [
                "analyze",
                str(paths.sample_path()),
                "--out",
                str(tmp_path / "cli"),
                "--inference",
                "remote",
                "--quiet",
            ]
        )
        == 1
    )
    # local ignores the server
    doc = analyze([paths.sample_path()], tmp_path / "local", device="cpu", inference="local")
    assert doc["images"][0]["results"][0]["provider"] == "CPUExecutionProvider"
    # the site allows the fallback: auto runs locally and says so on the result
    _serve(url, allow_local_fallback=True)
    doc = analyze(
        [paths.sample_path()], tmp_path / "fb", device="cpu", saliency="cam", inference="auto"
    )
    (res,) = doc["images"][0]["results"]
    assert res["provider"] == "CPUExecutionProvider"
    assert "cannot be reached" in res["provenance"]["remote_fallback"]
    assert res["provenance"]["remote_fallback"].endswith("Ran locally instead, as the site allows.")
    assert res["saliency"]["same_forward_pass"] is True
    # remote still refuses even where the site allows a fallback
    with pytest.raises(InferenceServerError):
        analyze([paths.sample_path()], tmp_path / "r2", device="cpu", inference="remote")


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_mismatched_served_model_is_refused(
    server: LocalMLServer, tmp_path: Path, proto: str
) -> None:
    _serve(_url(server, proto), model_name="wrong", allow_local_fallback=False)
    with pytest.raises(InferenceServerError) as info:
        analyze([paths.sample_path()], tmp_path / "o", device="cpu", inference="remote")
    msg = str(info.value)
    assert (
        "does not match the manifest" in msg and "input 'image' has shape [-1, 3, 224, 224]" in msg
    )
    assert "\n" not in msg
    # an unknown model name on a live server: one sentence too
    _serve(_url(server, proto), model_name="absent")
    with pytest.raises(InferenceServerError, match="failed to describe model 'absent'"):
        analyze([paths.sample_path()], tmp_path / "o2", device="cpu", inference="remote")


def test_metadata_check_rules() -> None:
    from app.inference.registry import ModelRegistry

    sig = manifest_signature(ModelRegistry().get(BUNDLED_ID))
    good = {
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 1]}],
    }
    assert metadata_problems(good, sig) == []
    fixed_batch = json.loads(json.dumps(good))
    fixed_batch["inputs"][0]["shape"] = [1, 1, 28, 28]
    assert metadata_problems(fixed_batch, sig) == [
        "input 'image' has shape [1, 1, 28, 28], expected [-1, 1, 28, 28]"
    ]
    fp16 = json.loads(json.dumps(good))
    fp16["outputs"][0]["datatype"] = "FP16"
    assert metadata_problems(fp16, sig) == ["output 'logits' is FP16, expected FP32"]
    assert (
        ServingConfig("https://u:p@host:8443/base/?k=v", "m").public_url == "https://host:8443/base"
    )


def test_plain_http_to_another_host_needs_the_site_to_allow_it(tmp_path: Path) -> None:
    from app.core.errors import UsageError
    from app.inference.registry import ModelRegistry
    from app.inference.remote import serving_config

    m = ModelRegistry().get(BUNDLED_ID)
    _site(
        {
            "models": {
                BUNDLED_ID: {"url": "http://inference.example.org:8000", "model_name": BUNDLED_ID}
            }
        }
    )
    with pytest.raises(UsageError, match="unencrypted"):
        serving_config(m)
    _site(
        {
            "models": {
                BUNDLED_ID: {
                    "url": "http://inference.example.org:8000",
                    "model_name": BUNDLED_ID,
                    "allow_insecure_http": True,
                }
            }
        }
    )
    assert serving_config(m).public_url == "http://inference.example.org:8000"  # type: ignore[union-attr]
    _site(
        {"models": {BUNDLED_ID: {"url": "https://inference.example.org", "model_name": BUNDLED_ID}}}
    )
    assert serving_config(m) is not None
    # the same rule for gRPC: grpcs:// anywhere, plain grpc:// on loopback only
    for url, ok in (
        ("grpc://inference.example.org:8001", False),
        ("grpcs://inference.example.org:8001", True),
        ("grpc://127.0.0.1:8001", True),
        ("ftp://inference.example.org", False),
    ):
        _site({"models": {BUNDLED_ID: {"url": url, "model_name": BUNDLED_ID}}})
        if ok:
            assert serving_config(m).public_url == url  # type: ignore[union-attr]
        else:
            with pytest.raises(UsageError):
                serving_config(m)


def test_panel_saliency_of_a_served_model_comes_from_the_server(
    server: LocalMLServer, shared_data: Path
) -> None:
    """The saliency panel's on-demand CAM of an image not analysed yet: with the model served,
    the map comes from the server's CAM output (one request), equal to the local map."""
    import pydicom

    from app.core.types import ImageRef
    from app.gui.panels.saliency import compute_maps
    from app.inference.remote import RemoteEngine
    from app.saliency.serving import explainer_for
    from app.workflow.session import StudySession

    film = shared_data / "dicom" / "cxr" / "cr_chest_pa_uncompressed.dcm"
    ds = pydicom.dcmread(film, stop_before_pixels=True)
    ref = ImageRef(
        str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), str(film)
    )
    local = StudySession.open([film]).saliency(ref, BUNDLED_ID, "cam", inference="local")
    _serve(server.grpc_url)
    session = StudySession.open([film])
    got = compute_maps(session, ref, BUNDLED_ID, "cam", "cpu")
    assert got["method"] == "cam" and set(got["maps"]) == {o.label for o in local}
    for o in local:
        a, b = o.map, got["maps"][o.label]
        assert a.shape == b.shape and float(np.nanmax(np.abs(a - b))) <= 1e-5
    ex = explainer_for(session.registry().get(BUNDLED_ID), device="cpu")
    assert isinstance(ex.runner, RemoteEngine)
    assert ex.runner.config.url == server.grpc_url and ex.extra_outputs == ["hilum_cam"]
    # "local" keeps the local session
    assert not isinstance(
        explainer_for(session.registry().get(BUNDLED_ID), "cpu", "local").runner, RemoteEngine
    )
    # a served model whose server is down: "remote" says so in one sentence
    _serve(f"http://127.0.0.1:{_closed_port()}")
    from app.saliency.serving import clear_remote

    clear_remote()
    with pytest.raises(InferenceServerError):
        StudySession.open([film]).saliency(ref, BUNDLED_ID, "cam", inference="remote")


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_served_weights_must_match_the_manifest_sha256(
    server: LocalMLServer, tmp_path: Path, proto: str
) -> None:
    """The server's model metadata names the sha256 of the model it was exported from; a model
    exported from another file, or one that does not say, is refused before first use."""
    import tritonclient.http as httpclient

    from app.inference.registry import ModelRegistry
    from app.inference.remote import RemoteEngine

    m = ModelRegistry().get(BUNDLED_ID)
    client = httpclient.InferenceServerClient(server.url.split("://", 1)[1])
    md = client.get_model_metadata(BUNDLED_ID, "1")
    assert md["parameters"]["hilum_sha256"] == m.sha256
    x = np.random.default_rng(5).normal(size=(2, 1, 28, 28)).astype(np.float32)
    url = _url(server, proto)  # over gRPC the sha256 arrives in MLServer's metadata parameters
    assert RemoteEngine(m, ServingConfig(url, BUNDLED_ID, "1")).probabilities(x).shape[0] == 2
    with pytest.raises(InferenceServerError) as stale:
        RemoteEngine(m, ServingConfig(url, "stale", "1")).probabilities(x)
    msg = str(stale.value)
    assert "exported from another model file" in msg and "will not be used" in msg
    assert "\n" not in msg and m.sha256[:12] in msg
    with pytest.raises(InferenceServerError) as unmarked:
        RemoteEngine(m, ServingConfig(url, "unmarked", "1")).probabilities(x)
    assert "does not say which model file it is" in str(unmarked.value)
    # analyze with the site pointing at the stale copy: remote refuses before classifying
    _serve(url, model_name="stale")
    from app.saliency.serving import clear_remote

    clear_remote()
    with pytest.raises(InferenceServerError, match="exported from another model file"):
        analyze([paths.sample_path()], tmp_path, device="cpu", inference="remote")
    assert not (tmp_path / "results.json").exists()
