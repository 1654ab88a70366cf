"""One-pass CAM against Grad-CAM computed by autograd in torch on the same weights (Pearson r >= 0.99)."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from app.saliency.cam import add_cam_outputs, cam_maps, normalise_map


def _session(model_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(np.corrcoef(a, b)[0, 1])


torch = pytest.importorskip("torch", reason="torch is needed for the autograd Grad-CAM reference")


class _Net(torch.nn.Module):
    """A small GAP + Linear classifier (the structure of ResNet/DenseNet heads)."""

    def __init__(self, n_labels: int = 4) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
            torch.nn.BatchNorm2d(16),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
            torch.nn.ReLU(),
        )
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(32, n_labels)

    def forward(self, x):  # noqa: D102
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _torch_gradcam(net: "_Net", x: "torch.Tensor", label: int) -> np.ndarray:
    """Grad-CAM by autograd (Selvaraju et al.): ReLU(sum_c mean(dy/dA_c) * A_c)."""
    feats = net.features(x)
    feats.retain_grad()
    logits = net.fc(torch.flatten(net.pool(feats), 1))
    net.zero_grad()
    logits[0, label].backward()
    alpha = feats.grad.mean(dim=(2, 3), keepdim=True)
    return torch.relu((alpha * feats).sum(dim=1))[0].detach().numpy()


def test_one_pass_cam_equals_autograd_gradcam() -> None:
    torch.manual_seed(0)
    net = _Net().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    buf = io.BytesIO()
    torch.onnx.export(
        net,
        torch.randn(1, 1, 64, 64),
        buf,
        input_names=["x"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
    )
    cg = add_cam_outputs(onnx.load_from_string(buf.getvalue()))
    sess = _session(cg.model_bytes)
    rng = np.random.default_rng(3)
    for trial in range(3):
        x = rng.normal(size=(1, 1, 64, 64)).astype(np.float32)
        x[0, 0, 10:30, 35:60] += 2.0 * trial  # different evidence per trial
        logits, feat = sess.run(["logits", cg.feature_name], {"x": x})
        ours = normalise_map(cam_maps(feat[0], cg.weights))
        with torch.no_grad():
            ref_logits = net(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-4)
        for label in range(4):
            ref = _torch_gradcam(net, torch.from_numpy(x), label)
            if ref.max() <= 0:
                assert ours[label].max() == 0
                continue
            r = _pearson(ours[label], ref / ref.max())
            assert r >= 0.99, f"label {label}: Pearson r {r:.4f}"
            np.testing.assert_allclose(ours[label], ref / ref.max(), atol=1e-4)
