"""Model-agnostic saliency by perturbation: occlusion sensitivity and RISE.

Both methods run the classifier on many perturbed copies of one input, in batches, through a
*masked score function*: it takes keep-masks ``(n, 1, H, W)`` in [0, 1] and returns scores
``(n, n_labels)`` for ``baseline + (x - baseline) * mask``. Build one with
:func:`masked_from_predict` (composition in numpy, for any predict function) or let
:func:`add_mask_input` put the composition inside the ONNX graph so that only the masks travel to
the device and the GPU does the blending.

RISE masks are seeded, so the same seed gives the same map. They are kept in factored form
(interpolation matrices and a small binary grid per mask), and :func:`add_rise_graph` lets the
device expand them, blend, classify and update the running score-weighted sums in one run per
batch; with the sums kept on the device (``app.saliency.api.DeviceRiseAccumulator``) the host's
work per batch is a few kilobytes of indexing and nothing comes back until the end.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Protocol, Sequence

import numpy as np
import onnx

from app.core.progress import NullProgress, Progress

log = logging.getLogger(__name__)

#: (n, C, H, W) input batch -> (n, n_labels) scores.
PredictFn = Callable[[np.ndarray], np.ndarray]
#: (n, 1, H, W) keep-masks -> (n, n_labels) scores of the masked input.
MaskedScoreFn = Callable[[np.ndarray], np.ndarray]

MASK_INPUT = "hilum_keep_mask"


def masked_from_predict(
    predict: PredictFn, tensor: np.ndarray, baseline: float | np.ndarray = 0.0
) -> MaskedScoreFn:
    """Wrap a batched predict function as a masked score function (blending in numpy).

    Parameters
    ----------
    predict : callable
        ``predict(batch (n, C, H, W)) -> scores (n, n_labels)``.
    tensor : numpy.ndarray
        The preprocessed input, shape (1, C, H, W) or (C, H, W).
    baseline : float or numpy.ndarray
        Value that hidden pixels take (in model-input units); an array broadcast against the
        input (e.g. (1, C, 1, 1) per channel).
    """
    x = np.asarray(tensor, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    base = np.asarray(baseline, dtype=np.float32)
    diff = x - base
    nonzero = bool(np.any(base))

    def score(masks: np.ndarray) -> np.ndarray:
        batch = diff * masks.astype(np.float32, copy=False)
        if nonzero:
            batch += base
        return np.asarray(predict(batch), dtype=np.float32).reshape(len(masks), -1)

    return score


def add_mask_input(
    model: onnx.ModelProto | bytes,
    input_name: str | None = None,
    baseline: float | np.ndarray = 0.0,
) -> bytes:
    """Rewrite a model so that it blends its input with a keep-mask input on the device.

    The new model takes the original image input (batch 1) and ``hilum_keep_mask`` (n, 1, H, W);
    it evaluates ``baseline + (x - baseline) * mask`` by broadcasting, i.e. n perturbed copies in
    one run. Models exported with a fixed batch size of 1 cannot use this (use
    :func:`masked_from_predict` with batch size 1).

    Parameters
    ----------
    model : onnx.ModelProto or bytes
        The classifier (not modified).
    input_name : str, optional
        The image input; the first non-initializer graph input when omitted.
    baseline : float or numpy.ndarray
        Value hidden pixels take, in model-input units (a scalar or one value per channel).

    Returns
    -------
    bytes
        The serialised rewritten model.
    """
    proto = onnx.ModelProto()
    if isinstance(model, (bytes, bytearray)):
        proto.ParseFromString(bytes(model))
    else:
        proto.CopyFrom(model)
    g = proto.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    image = next(
        (i for i in inputs if i.name == input_name), inputs[0] if input_name is None else None
    )
    if image is None:
        raise ValueError(f"model has no input named {input_name!r}")
    elem = image.type.tensor_type.elem_type
    dims = image.type.tensor_type.shape.dim
    hw = [d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in dims][2:]
    blended = image.name + "__hilum_masked"
    for node in g.node:
        for k, name in enumerate(node.input):
            if name == image.name:
                node.input[k] = blended
    for out in g.output:  # an input that is also an output keeps its meaning
        if out.name == image.name:
            raise ValueError("the image input is also a graph output; cannot add a mask input")
    new_nodes = []
    base = np.asarray(baseline, dtype=onnx.helper.tensor_dtype_to_np_dtype(elem))
    if np.any(base):
        if base.size > 1:  # one value per channel (NCHW)
            base = base.reshape(1, -1, 1, 1)
        g.initializer.append(onnx.numpy_helper.from_array(base, name="hilum_mask_baseline"))
        new_nodes += [
            onnx.helper.make_node("Sub", [image.name, "hilum_mask_baseline"], ["hilum_mask_diff"]),
            onnx.helper.make_node("Mul", ["hilum_mask_diff", MASK_INPUT], ["hilum_mask_prod"]),
            onnx.helper.make_node("Add", ["hilum_mask_prod", "hilum_mask_baseline"], [blended]),
        ]
    else:
        new_nodes.append(onnx.helper.make_node("Mul", [image.name, MASK_INPUT], [blended]))
    for node in reversed(new_nodes):
        g.node.insert(0, node)
    g.input.append(onnx.helper.make_tensor_value_info(MASK_INPUT, elem, ["n_masks", 1, *hw]))
    # Shape hints recorded for batch 1 would contradict the broadcast batch; they are optional.
    del g.value_info[:]
    for out in g.output:
        if out.type.tensor_type.HasField("shape") and out.type.tensor_type.shape.dim:
            out.type.tensor_type.shape.dim[0].Clear()
            out.type.tensor_type.shape.dim[0].dim_param = "n_masks"
    return proto.SerializeToString()


# --- RISE --------------------------------------------------------------------------------------
class RiseAccumulator(Protocol):
    """Scores batches of RISE masks and keeps the running sums.

    ``add(ry, bits, rxt)`` takes the factors of a batch (masks are ``ry @ bits @ rxt``);
    ``result()`` returns the score-weighted mask sum (L, H*W), the mask sum (H*W,) and the score
    sum (L,) over all batches, for every model output L.
    """

    def add(self, ry: np.ndarray, bits: np.ndarray, rxt: np.ndarray) -> None:
        """Score one batch of masks and add it to the sums."""

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weighted mask sum (L, H*W), mask sum (H*W,), score sum (L,))."""


#: Graph inputs of :func:`add_rise_graph`: mask factors, then the running sums.
RISE_INPUTS = ("hilum_rise_ry", "hilum_rise_bits", "hilum_rise_rxt")
RISE_SUMS_IN = ("hilum_rise_acc_in", "hilum_rise_msum_in", "hilum_rise_ssum_in")
RISE_SUMS_OUT = ("hilum_rise_acc", "hilum_rise_msum", "hilum_rise_ssum")


def _interp_matrix(n_out: int, n_grid: int, span: float) -> np.ndarray:
    """Linear interpolation (n_out, n_grid) from grid cells of size span/n_grid, edges clamped."""
    centres = (np.arange(n_out) + 0.5) * (n_grid / span) - 0.5
    centres = np.clip(centres, 0.0, n_grid - 1.0)
    k0 = np.floor(centres).astype(int)
    k1 = np.minimum(k0 + 1, n_grid - 1)
    f = centres - k0
    m = np.zeros((n_out, n_grid), dtype=np.float32)
    m[np.arange(n_out), k0] += 1.0 - f
    m[np.arange(n_out), k1] += f
    return m


class RisePlan:
    """Seeded RISE masks (Petsiuk et al. 2018), kept in factored form.

    Mask ``i`` is a binary ``grid x grid`` pattern (keep probability ``p``) upsampled bilinearly
    to ``(grid + 1) * cell`` pixels and cropped at a random offset below one cell, as in the
    paper. It is stored as ``ry_i @ bits_i @ rx_i.T`` (row/column interpolation matrices), so a
    batch of full-size masks can be expanded on the device from a few kilobytes. The first ``k``
    masks are the same for every ``n >= k`` with the same seed.
    """

    def __init__(
        self, n: int, shape: tuple[int, int], grid: int = 7, p: float = 0.5, seed: int = 0
    ) -> None:
        h, w = shape
        self.n, self.shape, self.grid, self.p = n, (h, w), grid, p
        cell_y, cell_x = math.ceil(h / grid), math.ceil(w / grid)
        up_y, up_x = (grid + 1) * cell_y, (grid + 1) * cell_x
        self._ry, self._rx = _interp_matrix(up_y, grid, up_y), _interp_matrix(up_x, grid, up_x)
        self.bits = (np.random.default_rng([seed, 0]).random((n, grid, grid)) < p).astype(
            np.float32
        )
        # Shifts from uniform doubles (prefix-stable, unlike buffered bounded-integer draws).
        shifts = np.random.default_rng([seed, 1]).random((n, 2))
        self.dy = np.minimum((shifts[:, 0] * cell_y).astype(np.int64), cell_y - 1)
        self.dx = np.minimum((shifts[:, 1] * cell_x).astype(np.int64), cell_x - 1)
        self._rows, self._cols = np.arange(h), np.arange(w)

    def factors(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ry (b, H, s), bits (b, s, s), rxt (b, s, W))`` for masks ``start .. start+count-1``."""
        sl = slice(start, start + count)
        ry = self._ry[self.dy[sl, None] + self._rows]
        rxt = self._rx[self.dx[sl, None] + self._cols].transpose(0, 2, 1)
        return np.ascontiguousarray(ry), self.bits[sl], np.ascontiguousarray(rxt)

    @staticmethod
    def expand(ry: np.ndarray, bits: np.ndarray, rxt: np.ndarray) -> np.ndarray:
        """Full masks (b, 1, H, W) from factors."""
        return np.matmul(np.matmul(ry, bits), rxt)[:, None]

    def masks(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """Full masks (b, 1, H, W), float32 in [0, 1]."""
        return self.expand(*self.factors(start, self.n - start if count is None else count))


def rise_masks(
    n: int, shape: tuple[int, int], grid: int = 7, p: float = 0.5, seed: int = 0
) -> np.ndarray:
    """``n`` seeded RISE masks (n, 1, H, W) (see :class:`RisePlan`)."""
    return RisePlan(n, shape, grid, p, seed).masks()


class HostRiseAccumulator:
    """RISE sums on the host: expand masks in numpy, score them through ``score``, accumulate."""

    def __init__(self, score: MaskedScoreFn) -> None:
        self.score = score
        self._sums: list[np.ndarray] | None = None

    def add(self, ry: np.ndarray, bits: np.ndarray, rxt: np.ndarray) -> None:
        """Score one batch of masks and add it to the sums."""
        masks = RisePlan.expand(ry, bits, rxt)
        scores = np.asarray(self.score(masks), dtype=np.float32).reshape(len(masks), -1)
        flat = masks.reshape(len(masks), -1)
        parts = [scores.T @ flat, flat.sum(axis=0), scores.sum(axis=0)]
        if self._sums is None:
            self._sums = [p.astype(np.float64) for p in parts]
        else:
            for acc, p in zip(self._sums, parts):
                acc += p

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weighted mask sum (L, H*W), mask sum (H*W,), score sum (L,))."""
        if self._sums is None:
            raise ValueError("no RISE batch was added")
        return self._sums[0], self._sums[1], self._sums[2]


def add_rise_graph(
    model: onnx.ModelProto | bytes,
    output_name: str,
    activation: str = "none",
    input_name: str | None = None,
    baseline: float | np.ndarray = 0.0,
) -> bytes:
    """Rewrite a classifier so that one run does a whole RISE batch on the device.

    Inputs: the image (batch 1), the mask factors ``hilum_rise_ry`` (b, H, s),
    ``hilum_rise_bits`` (b, s, s), ``hilum_rise_rxt`` (b, s, W), and the running sums
    :data:`RISE_SUMS_IN` (L, H*W), (H*W,), (L,). The graph expands the masks, blends
    ``baseline + (x - baseline) * mask``, runs the classifier on the b copies, applies the
    activation and outputs the updated sums :data:`RISE_SUMS_OUT`. Bound with IOBinding the
    image and the sums stay on the device: per batch only the factors (kilobytes) go up and
    nothing comes back until the end.
    """
    proto = onnx.ModelProto()
    proto.ParseFromString(add_mask_input(model, input_name, baseline))
    g = proto.graph
    helper = onnx.helper
    elem = next(i.type.tensor_type.elem_type for i in g.input if i.name == MASK_INPUT)
    # The mask input becomes an internal tensor computed from the factors.
    keep = [i for i in g.input if i.name != MASK_INPUT]
    del g.input[:]
    g.input.extend(keep)
    ry, bits, rxt = RISE_INPUTS
    g.input.extend(
        [
            helper.make_tensor_value_info(ry, elem, ["b", None, "s"]),
            helper.make_tensor_value_info(bits, elem, ["b", "s", "s"]),
            helper.make_tensor_value_info(rxt, elem, ["b", "s", None]),
            helper.make_tensor_value_info(RISE_SUMS_IN[0], elem, ["L", None]),
            helper.make_tensor_value_info(RISE_SUMS_IN[1], elem, [None]),
            helper.make_tensor_value_info(RISE_SUMS_IN[2], elem, ["L"]),
        ]
    )
    g.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.array([1], np.int64), "hilum_rise_axis1"),
            onnx.numpy_helper.from_array(np.array([0], np.int64), "hilum_rise_axis0"),
            onnx.numpy_helper.from_array(np.array([0, -1], np.int64), "hilum_rise_flat"),
        ]
    )
    head = [
        helper.make_node("MatMul", [ry, bits], ["hilum_rise_t"]),
        helper.make_node("MatMul", ["hilum_rise_t", rxt], ["hilum_rise_m"]),
        helper.make_node("Unsqueeze", ["hilum_rise_m", "hilum_rise_axis1"], [MASK_INPUT]),
    ]
    for node in reversed(head):
        g.node.insert(0, node)
    scores = output_name
    if activation == "sigmoid":
        g.node.append(helper.make_node("Sigmoid", [output_name], ["hilum_rise_act"]))
        scores = "hilum_rise_act"
    elif activation == "softmax":
        g.node.append(helper.make_node("Softmax", [output_name], ["hilum_rise_act"], axis=-1))
        scores = "hilum_rise_act"
    g.node.extend(
        [
            helper.make_node("Flatten", [scores], ["hilum_rise_s"], axis=1),
            helper.make_node("Reshape", ["hilum_rise_m", "hilum_rise_flat"], ["hilum_rise_mflat"]),
            helper.make_node("Transpose", ["hilum_rise_s"], ["hilum_rise_st"], perm=[1, 0]),
            helper.make_node("MatMul", ["hilum_rise_st", "hilum_rise_mflat"], ["hilum_rise_w"]),
            helper.make_node(
                "ReduceSum", ["hilum_rise_mflat", "hilum_rise_axis0"], ["hilum_rise_ms"], keepdims=0
            ),
            helper.make_node(
                "ReduceSum", ["hilum_rise_s", "hilum_rise_axis0"], ["hilum_rise_ss"], keepdims=0
            ),
            helper.make_node("Add", [RISE_SUMS_IN[0], "hilum_rise_w"], [RISE_SUMS_OUT[0]]),
            helper.make_node("Add", [RISE_SUMS_IN[1], "hilum_rise_ms"], [RISE_SUMS_OUT[1]]),
            helper.make_node("Add", [RISE_SUMS_IN[2], "hilum_rise_ss"], [RISE_SUMS_OUT[2]]),
        ]
    )
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info(name, elem, None) for name in RISE_SUMS_OUT])
    return proto.SerializeToString()


def _batches(total: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(size, total - s)) for s in range(0, total, size)]


def rise(
    score: MaskedScoreFn | None,
    input_shape: tuple[int, int],
    labels: Sequence[int],
    *,
    n_masks: int = 2000,
    grid: int = 7,
    p: float = 0.5,
    batch_size: int = 32,
    seed: int = 0,
    max_passes: int | None = None,
    progress: Progress | None = None,
    accumulator: RiseAccumulator | None = None,
) -> np.ndarray:
    """RISE saliency: score-weighted average of random masks, minus the mean score.

    Parameters
    ----------
    score : callable or None
        Masked score function (see module doc); not needed when ``accumulator`` is given.
    input_shape : tuple of int
        Model input (H, W).
    labels : sequence of int
        Output indices to explain.
    n_masks, grid, p, seed : int, int, float, int
        RISE parameters; masks are reproducible for a given seed.
    batch_size : int
        Masks per forward run.
    max_passes : int, optional
        Budget of forward passes (images); caps ``n_masks``.
    progress : Progress, optional
        Receives ``update(done, total)`` per batch; ``check()`` may raise ``Cancelled``.
    accumulator : RiseAccumulator, optional
        Does mask expansion, scoring and the sums (e.g. on the device, see
        :func:`add_rise_graph`); a :class:`HostRiseAccumulator` over ``score`` when omitted.

    Returns
    -------
    numpy.ndarray
        Raw maps (n_labels, H, W): ``E[score | pixel kept] - E[score]`` (mask-weighted), in
        score units; positive where showing the pixel raises the score.
    """
    progress = progress or NullProgress()
    n = min(n_masks, max_passes) if max_passes else n_masks
    if n < 1:
        raise ValueError("RISE needs at least one mask")
    if accumulator is None:
        if score is None:
            raise ValueError("rise needs a score function or an accumulator")
        accumulator = HostRiseAccumulator(score)
    h, w = input_shape
    labels = list(labels)
    plan = RisePlan(n, (h, w), grid, p, seed)
    for start, count in _batches(n, batch_size):
        progress.check()
        accumulator.add(*plan.factors(start, count))
        progress.update(start + count, n, "RISE")
    weighted, mask_sum, score_sum = accumulator.result()
    sal = np.asarray(weighted, dtype=np.float64)[labels]
    weight = np.asarray(mask_sum, dtype=np.float64).reshape(-1)
    mean_score = np.asarray(score_sum, dtype=np.float64).reshape(-1)[labels] / n
    raw = sal / np.maximum(weight, 1e-12) - mean_score[:, None]
    return raw.reshape(len(labels), h, w).astype(np.float32)


# --- Occlusion ------------------------------------------------------------------------------------
def occlusion_windows(
    input_shape: tuple[int, int], window: int, stride: int
) -> list[tuple[int, int]]:
    """Top-left corners of occlusion windows covering the whole input (last ones flush)."""
    h, w = input_shape

    def starts(n: int) -> list[int]:
        if window >= n:
            return [0]
        s = list(range(0, n - window + 1, stride))
        if s[-1] != n - window:
            s.append(n - window)
        return s

    return [(y, x) for y in starts(h) for x in starts(w)]


def occlusion(
    score: MaskedScoreFn,
    input_shape: tuple[int, int],
    labels: Sequence[int],
    *,
    window: int | None = None,
    stride: int | None = None,
    batch_size: int = 32,
    max_passes: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Occlusion sensitivity (Zeiler & Fergus 2014): score drop when a square is hidden.

    Parameters
    ----------
    score : callable
        Masked score function (see module doc); hidden pixels take its baseline value.
    input_shape : tuple of int
        Model input (H, W).
    labels : sequence of int
        Output indices to explain.
    window, stride : int, optional
        Square size and step in input pixels; default 1/8 of the shorter side and half of it.
    batch_size : int
        Perturbed copies per forward run.
    max_passes : int, optional
        Budget of forward passes; the stride grows until the windows (plus the one unmasked
        pass) fit.
    progress : Progress, optional
        Receives ``update(done, total)`` per batch; ``check()`` may raise ``Cancelled``.

    Returns
    -------
    numpy.ndarray
        Raw maps (n_labels, H, W): mean score drop over the windows covering each pixel,
        positive where hiding the pixel lowers the score.
    """
    progress = progress or NullProgress()
    h, w = input_shape
    window = window or max(1, min(h, w) // 8)
    stride = stride or max(1, window // 2)
    corners = occlusion_windows((h, w), window, stride)
    if max_passes is not None:
        if max_passes < 2:
            raise ValueError("occlusion needs a budget of at least 2 passes")
        while len(corners) + 1 > max_passes and stride < max(h, w):
            stride += 1
            corners = occlusion_windows((h, w), window, stride)
        if len(corners) + 1 > max_passes:
            log.warning(
                "occlusion budget %d below the %d windows of size %d",
                max_passes,
                len(corners) + 1,
                window,
            )
    labels = list(labels)
    base = np.asarray(score(np.ones((1, 1, h, w), dtype=np.float32)), dtype=np.float32)[0, labels]
    sal = np.zeros((len(labels), h, w), dtype=np.float64)
    count = np.zeros((h, w), dtype=np.float64)
    total = len(corners) + 1
    done = 1
    for start, n in _batches(len(corners), batch_size):
        progress.check()
        masks = np.ones((n, 1, h, w), dtype=np.float32)
        chunk = corners[start : start + n]
        for j, (y, x) in enumerate(chunk):
            masks[j, 0, y : y + window, x : x + window] = 0.0
        scores = np.asarray(score(masks), dtype=np.float32).reshape(n, -1)[:, labels]
        drops = base[None, :] - scores
        for j, (y, x) in enumerate(chunk):
            sal[:, y : y + window, x : x + window] += drops[j][:, None, None]
            count[y : y + window, x : x + window] += 1.0
        done += n
        progress.update(done, total, "Occlusion")
    return (sal / np.maximum(count, 1.0)).astype(np.float32)
