"""``hilum analyze`` on real DICOM: the bundled sample, folders, bad files, external models, hooks."""

from __future__ import annotations

import pytest

import json
from pathlib import Path

import numpy as np
import onnx
import pydicom

from app.cli import main
from app.core import paths
from app.inference.analyze import ImageContext, analyze_paths

from _inference_models import BUNDLED_ID


def test_analyze_sample_writes_results_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(paths.sample_path()), "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "results.json").read_text())
    ds = pydicom.dcmread(paths.sample_path(), stop_before_pixels=True)
    assert (
        doc["summary"]["images"] == 1 and doc["summary"]["classified"] == 1 and doc["errors"] == []
    )
    image = doc["images"][0]
    assert image["study_uid"] == ds.StudyInstanceUID
    assert image["series_uid"] == ds.SeriesInstanceUID
    assert image["sop_uid"] == ds.SOPInstanceUID
    (res,) = image["results"]
    manifest = json.loads((paths.bundled_models_dir() / BUNDLED_ID / "model.json").read_text())
    assert res["model_id"] == BUNDLED_ID
    assert res["model_version"] == manifest["version"]
    assert res["sha256"] == manifest["sha256"]
    assert res["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    lab = res["labels"]["pneumonia"]
    assert 0.0 <= lab["probability"] <= 1.0
    assert lab["threshold"] == manifest["labels"][0]["threshold"]
    assert lab["positive"] == (lab["probability"] >= lab["threshold"])
    assert res["timings_ms"]["inference"] > 0
    assert res["provenance"]["disclaimer"] == "AI-generated, requires review by a physician"
    assert (
        res["geometry"]["source_shape"] == [ds.Rows, ds.Columns]
        and res["geometry"]["mode"] == "crop"
    )
    assert doc["models"][0]["provider"] == res["provider"]


def test_analyze_folder_with_bad_files_and_two_models(
    tmp_path: Path, shared_data: Path, multiclass_model: tuple[Path, onnx.ModelProto]
) -> None:
    cxr, broken = shared_data / "dicom" / "cxr", shared_data / "dicom" / "broken"
    ct = sorted((shared_data / "dicom" / "ct_head_ge").glob("*.dcm"))[:3]
    doc = analyze_paths([cxr, broken, *ct], tmp_path / "o", device="cpu")
    by_path = {Path(i["path"]).name: i for i in doc["images"]}
    # the three chest films get the chest model, not the CT one
    for name in ("cr_chest_pa_uncompressed.dcm", "dx_chest_pa_j2k_lossless.dcm"):
        ids = [r["model_id"] for r in by_path[name]["results"]]
        assert ids == [BUNDLED_ID], by_path[name]
        assert by_path[name]["not_applicable"][0]["model_id"] == "ext_ct512"
    # the same film, uncompressed and JPEG-LS near-lossless, gets nearly the same probability
    p1 = by_path["cr_chest_pa_uncompressed.dcm"]["results"][0]["labels"]["pneumonia"]["probability"]
    p2 = by_path["cr_chest_pa_jpegls_near_lossless.dcm"]["results"][0]["labels"]["pneumonia"][
        "probability"
    ]
    assert abs(p1 - p2) < 0.05
    # CT slices get the 512x512 multi-class model only
    for f in ct:
        res = by_path[f.name]["results"]
        assert [r["model_id"] for r in res] == ["ext_ct512"]
        assert abs(sum(v["probability"] for v in res[0]["labels"].values()) - 1) < 1e-4
    # every broken file gives one clear error and the rest went on
    errs = {Path(e["path"]).name: e["error"] for e in doc["errors"]}
    assert "empty" in errs["empty.dcm"].lower()
    assert "not a dicom" in errs["not_dicom.dcm"].lower()
    assert "truncated" in errs["cr_chest_truncated.dcm"].lower()
    corrupt = by_path["dx_chest_corrupt_j2k_stream.dcm"]  # header fine, pixel stream corrupt
    assert corrupt["results"] == [] and "corrupt" in corrupt["errors"][0]["error"]
    assert "Traceback" not in json.dumps(doc)
    assert (tmp_path / "o" / "results.json").is_file()


def test_override_applicability_and_hooks(tmp_path: Path, shared_data: Path) -> None:
    ct = sorted((shared_data / "dicom" / "ct_head_ge").glob("*.dcm"))[0]
    doc = analyze_paths([ct], tmp_path, model_ids=[BUNDLED_ID], device="cpu")
    assert doc["images"][0]["results"] == []
    assert "modality CT" in doc["images"][0]["not_applicable"][0]["reasons"][0]
    seen: list[ImageContext] = []

    def hook(ctx: ImageContext) -> None:
        seen.append(ctx)
        ctx.record["hook"] = "ran"
        ctx.result.saliency = {"method": "test"}

    doc = analyze_paths(
        [ct],
        tmp_path,
        model_ids=[BUNDLED_ID],
        device="cpu",
        override_applicability=True,
        hooks=[hook],
    )
    (res,) = doc["images"][0]["results"]
    assert (
        res["applicability_overridden"]
        and res["hook"] == "ran"
        and res["saliency"] == {"method": "test"}
    )
    ctx = seen[0]
    assert (
        ctx.tensor.shape == (1, 28, 28)
        and ctx.display.dtype == np.uint8
        and ctx.display.shape == (512, 512)
    )
    assert ctx.raw["logits"].shape == (1,) and ctx.geometry.source_shape == (512, 512)
    assert ctx.ref.sop_uid == doc["images"][0]["sop_uid"]


def test_engine_factory_fetches_extra_outputs_in_the_same_pass(tmp_path: Path) -> None:
    """Saliency's extension point: a rewritten session and extra outputs reach the hooks."""
    from app.inference.engine import Engine
    from app.inference.manifest import Manifest

    def factory(m: Manifest, device: str, fp16: bool | None) -> tuple[Engine, list[str]]:
        proto = onnx.load(str(m.onnx_path))
        target = m.saliency["target_tensor"]
        proto.graph.output.append(
            onnx.helper.make_tensor_value_info(target, onnx.TensorProto.FLOAT, None)
        )
        return Engine(m, device="cpu", model_bytes=proto.SerializeToString()), [target]

    shapes = []
    doc = analyze_paths(
        [paths.sample_path()],
        tmp_path,
        model_ids=[BUNDLED_ID],
        device="cpu",
        engine_factory=factory,
        hooks=[lambda ctx: shapes.append({k: v.shape for k, v in ctx.raw.items()})],
    )
    plain = analyze_paths(
        [paths.sample_path()], None, model_ids=[BUNDLED_ID], device="cpu", write=False
    )
    # the extra graph output changes nothing in the classification
    assert doc["images"][0]["results"][0]["labels"]["pneumonia"]["probability"] == pytest.approx(
        plain["images"][0]["results"][0]["labels"]["pneumonia"]["probability"], abs=1e-6
    )
    (raw_shapes,) = shapes
    assert raw_shapes["logits"] == (1,) and (64, 7, 7) in raw_shapes.values()
