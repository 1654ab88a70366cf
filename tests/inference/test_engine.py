"""The engine on the bundled model and on external models built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.core.errors import Cancelled, ModelInputError, ProviderError
from app.core.progress import CallbackProgress
from app.inference.engine import CPU, Engine, get_engine
from app.inference.registry import ModelRegistry

from _inference_models import BUNDLED_ID


def _cuda_works() -> bool:
    from app.inference.engine import _driver_problem

    if _driver_problem() is not None:
        return False
    try:
        Engine(ModelRegistry().get(BUNDLED_ID), device="cuda")
        return True
    except ProviderError:
        return False


@pytest.mark.gpu
def test_cuda_engine_matches_cpu(gradcam_fixture) -> None:
    """On a machine with a working CUDA device: same answers as the CPU, IOBinding path, fp16 copy."""
    if not _cuda_works():
        pytest.skip("no working CUDA device on this machine")
    m = ModelRegistry().get(BUNDLED_ID)
    x = gradcam_fixture["inputs"]
    cpu = Engine(m, device="cpu").probabilities(x)
    gpu = Engine(m, device="cuda")
    assert gpu.provider == "CUDAExecutionProvider" and gpu.on_gpu
    np.testing.assert_allclose(gpu.probabilities(x), cpu, atol=1e-4)
    half = Engine(m, device="cuda", fp16=True)
    assert half.fp16
    np.testing.assert_allclose(half.probabilities(x), cpu, atol=1e-2)


def test_bundled_engine_matches_bare_session(gradcam_fixture) -> None:
    m = ModelRegistry().get(BUNDLED_ID)
    eng = Engine(m, device="auto")
    from app.inference.engine import cuda_problem

    # auto: the GPU exactly when the one provider probe says CUDA works here, else the CPU
    expected = (
        {"CPUExecutionProvider"}
        if cuda_problem()
        else {"CUDAExecutionProvider", "TensorrtExecutionProvider"}
    )
    assert eng.provider in expected
    data = gradcam_fixture
    x = data["inputs"]
    bare = ort.InferenceSession(str(m.onnx_path), providers=[CPU]).run(None, {"image": x})[0]
    raw = eng.run_raw(x)["logits"]
    np.testing.assert_allclose(raw, bare, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(raw, data["logits"], rtol=1e-4, atol=1e-4)  # the torch copy
    probs = eng.probabilities(x)
    np.testing.assert_allclose(
        probs, 1 / (1 + np.exp(-bare.astype(np.float64))), rtol=1e-5, atol=1e-6
    )
    # a single item (no batch axis) is a batch of one
    np.testing.assert_allclose(eng.run_raw(x[0])["logits"], bare[:1], rtol=1e-4, atol=1e-4)


def test_results_carry_provenance_and_flags() -> None:
    eng = Engine(ModelRegistry().get(BUNDLED_ID), device="cpu")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 80), dtype=np.uint8) for _ in range(5)]
    results = eng.predict(images, batch_size=2)
    assert len(results) == 5
    r = results[0]
    assert r.provider == CPU and r.model_id == BUNDLED_ID and len(r.sha256) == 64
    assert (
        r.provenance["provider"] == CPU
        and "requires review by a physician" in r.provenance["disclaimer"]
    )
    lab = r.labels[0]
    assert lab.label == "pneumonia" and 0 <= lab.probability <= 1
    assert lab.positive == (lab.probability >= lab.threshold)
    assert set(r.timings_ms) == {"preprocess", "inference"}
    d = r.to_dict()
    assert set(d["labels"]["pneumonia"]) == {"probability", "threshold", "positive"}


def test_predict_cancel() -> None:
    eng = Engine(ModelRegistry().get(BUNDLED_ID), device="cpu")
    progress = CallbackProgress()
    seen = []

    def cb(done: int, total: int | None, msg: str) -> None:
        seen.append(done)
        progress.cancel()

    progress._callback = cb
    with pytest.raises(Cancelled):
        eng.predict([np.zeros((28, 28), np.uint8)] * 10, progress=progress, batch_size=4)
    assert seen == [4]


def test_wrong_shapes_are_refused_clearly() -> None:
    eng = Engine(ModelRegistry().get(BUNDLED_ID), device="cpu")
    with pytest.raises(
        ModelInputError,
        match=r"expects input 'image' of shape \(batch, 1, 28, 28\).*got shape \(2, 3, 28, 28\)",
    ):
        eng.run_raw(np.zeros((2, 3, 28, 28), np.float32))
    with pytest.raises(ModelInputError, match="got shape"):
        eng.probabilities(np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(ModelInputError, match="expects float32 input"):
        eng.run_raw(np.zeros((1, 1, 28, 28), np.int32))
    with pytest.raises(ModelInputError, match="image of shape"):
        eng.preprocess(np.zeros((4, 5, 6, 7)))
    # float64 input of the right shape is converted, not refused
    assert eng.run_raw(np.zeros((1, 1, 28, 28)))["logits"].shape == (1, 1)


def test_external_multilabel_224(
    multilabel_model: tuple[Path, onnx.ModelProto], shared_data: Path
) -> None:
    folder, proto = multilabel_model
    reg = ModelRegistry()
    m = reg.get("ext_multilabel")
    assert m.verified, m.problems
    assert m.source == "site"
    eng = get_engine(m, device="cpu")
    assert get_engine(m, device="cpu") is eng  # one session per model
    from app.dicom import pixels

    ds = pixels.read_dataset(shared_data / "dicom" / "cxr" / "dx_chest_pa_j2k_lossless.dcm")
    tensor, gt, frame = eng.preprocess_dataset(ds)
    assert tensor.shape == (3, 224, 224) and tensor.dtype == np.float32 and frame == 0
    assert gt.mode == "letterbox" and gt.source_shape == (int(ds.Rows), int(ds.Columns))
    # letterbox keeps the aspect ratio and centres the image
    assert gt.scale_x == pytest.approx(gt.scale_y, rel=0.01)
    assert gt.pad_left > 0 or gt.pad_top > 0
    # the three channels are the same grey image, normalised per channel
    grey = (
        tensor * np.array([0.229, 0.224, 0.225])[:, None, None]
        + np.array([0.485, 0.456, 0.406])[:, None, None]
    )
    np.testing.assert_allclose(grey[0], grey[1], atol=1e-5)
    bare = ort.InferenceSession(proto.SerializeToString(), providers=[CPU]).run(
        None, {"input": tensor[None]}
    )[0]
    res = eng.results(eng.probabilities(tensor[None]))[0]
    assert [lr.label for lr in res.labels] == ["opacity", "effusion", "cardiomegaly", "nodule"]
    np.testing.assert_allclose(
        [lr.probability for lr in res.labels], 1 / (1 + np.exp(-bare[0])), atol=1e-5
    )
    assert [lr.threshold for lr in res.labels] == [0.5, 0.4, 0.6, 0.3]
    with pytest.raises(
        ModelInputError, match=r"\(batch, 3, 224, 224\).*got shape \(1, 1, 224, 224\)"
    ):
        eng.run_raw(np.zeros((1, 1, 224, 224), np.float32))


def test_external_multiclass_512_nhwc(
    multiclass_model: tuple[Path, onnx.ModelProto], shared_data: Path
) -> None:
    _, proto = multiclass_model
    m = ModelRegistry().get("ext_ct512")
    assert m.verified, m.problems
    eng = Engine(m, device="cpu")
    from app.dicom import pixels

    ds = pixels.read_dataset(shared_data / "dicom" / "ct_head_ge" / "05.dcm")
    tensor, gt, _ = eng.preprocess_dataset(ds)
    assert tensor.shape == (512, 512, 1)
    # window 40/80 on Hounsfield units, then (x - 0.2) / 0.3
    hu = pixels.frame_array(ds)
    expect = (np.clip((hu - 0.0) / 80.0, 0, 1) - 0.2) / 0.3
    np.testing.assert_allclose(tensor[:, :, 0], expect, atol=1e-5)
    probs = eng.probabilities(tensor)
    assert probs.shape == (1, 3)
    assert probs.sum() == pytest.approx(1.0)
    bare = ort.InferenceSession(proto.SerializeToString(), providers=[CPU]).run(
        None, {"pixels": tensor[None]}
    )[0][0]
    e = np.exp(bare - bare.max())
    np.testing.assert_allclose(probs[0], e / e.sum(), atol=1e-5)
    with pytest.raises(
        ModelInputError, match=r"\(batch, 512, 512, 1\).*NHWC.*got shape \(1, 1, 512, 512\)"
    ):
        eng.run_raw(np.zeros((1, 1, 512, 512), np.float32))


def test_in_memory_rewritten_model_with_extra_output(gradcam_fixture) -> None:
    """Saliency rewrites the graph to expose the feature map; the engine runs it from bytes."""
    m = ModelRegistry().get(BUNDLED_ID)
    proto = onnx.load(str(m.onnx_path))
    target = m.saliency["target_tensor"]
    proto.graph.output.append(
        onnx.helper.make_tensor_value_info(target, onnx.TensorProto.FLOAT, None)
    )
    eng = Engine(m, device="cpu", model_bytes=proto.SerializeToString())
    assert eng.rewritten
    x = gradcam_fixture["inputs"]
    out = eng.run_raw(x, extra_outputs=[target])
    assert out[target].shape == (len(x), 64, 7, 7)
    with pytest.raises(ModelInputError, match="no output"):
        eng.run_raw(x, extra_outputs=["nope"])


def test_forced_cuda_without_gpu_is_a_clear_error() -> None:
    if _cuda_works():
        pytest.skip("this machine has a working CUDA device")
    with pytest.raises(ProviderError, match="CUDA was requested but is not available"):
        Engine(ModelRegistry().get(BUNDLED_ID), device="cuda")
    # auto falls back to the CPU and says so in every result
    eng = Engine(ModelRegistry().get(BUNDLED_ID), device="auto")
    assert eng.provider == CPU
    with pytest.raises(ProviderError, match="Unknown device"):
        Engine(ModelRegistry().get(BUNDLED_ID), device="tpu")
