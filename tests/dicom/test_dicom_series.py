"""Series geometry and volume loading on real series."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.core.errors import Cancelled, DicomReadError
from app.core.progress import CallbackProgress
from app.dicom.library import Library
from app.dicom.series import load_series


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name != "DIRFILE")


def _pydicom_volume(paths: list[str]) -> np.ndarray:
    """Reference: pydicom's own decode + rescale, slice by slice."""
    out = []
    for p in paths:
        ds = pydicom.dcmread(p)
        arr = ds.pixel_array.astype(np.float64)
        arr = arr * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        out.append(arr.astype(np.float32))
    return np.stack(out)


def test_gantry_tilt_and_uneven_spacing_in_ct_head_ge(dicom_dir: Path) -> None:
    series = load_series(_files(dicom_dir / "ct_head_ge"))
    assert len(series.stacks) == 1 and series.errors == []
    stack = series.main
    assert len(stack) == 28
    assert abs(stack.tilt_deg - 18.5) < 0.2
    text = " ".join(stack.warnings)
    assert "Gantry tilt of 18.5 degrees" in text
    assert "Uneven slice spacing" in text
    assert stack.spacing[1:] == pytest.approx((0.4882812, 0.4882812))
    d = [f.distance for f in stack.frames]
    assert d == sorted(d)
    assert [f.instance_number for f in stack.frames] == list(range(1, 29))


def test_ct_phantom_volume_in_hu(dicom_dir: Path) -> None:
    files = _files(dicom_dir / "ct_phantom_philips")
    series = load_series(files)
    stack = series.main
    assert len(series.stacks) == 1 and len(stack) == 140 and stack.warnings == []
    assert stack.spacing == pytest.approx((1.0, 0.451171875, 0.451171875))
    z = stack.positions[:, 2]
    assert np.all(np.diff(z) > 0)
    vol = stack.volume()
    assert vol.shape == (140, 512, 512) and vol.dtype == np.float32
    assert abs(float(np.median(vol[:, :30, :30])) + 1000) < 30  # air
    # the fast path equals pydicom's decode + rescale on every slice
    np.testing.assert_array_equal(vol, _pydicom_volume(stack.paths))


@pytest.mark.parametrize("folder", ["mr_sag_mprage", "ct_head_ge"])
def test_volume_equals_pydicom(dicom_dir: Path, folder: str) -> None:
    stack = load_series(_files(dicom_dir / folder)).main
    vol = stack.volume(workers=2)
    np.testing.assert_array_equal(vol, _pydicom_volume(stack.paths))


def test_every_encoding_loads_the_same_volume(dicom_dir: Path) -> None:
    series = load_series(_files(dicom_dir / "mr_transfer_syntaxes"))
    stack = series.main
    assert len(stack) == 9
    assert any("share a position" in w for w in stack.warnings)
    vol = stack.volume()
    for k in range(1, 9):
        np.testing.assert_array_equal(vol[k], vol[0])


def test_missing_slices_are_reported(dicom_dir: Path) -> None:
    files = _files(dicom_dir / "ct_phantom_philips")
    series = load_series(files)
    ordered = series.main.paths
    kept = ordered[:60] + ordered[63:]  # drop three slices from the middle
    stack = load_series(kept).main
    assert any("About 3 slice(s) missing" in w for w in stack.warnings), stack.warnings
    assert stack.spacing[0] == pytest.approx(1.0)


def test_mixed_sizes_split_into_stacks(dicom_dir: Path) -> None:
    files = [
        dicom_dir / "cxr" / "cr_chest_pa_uncompressed.dcm",
        dicom_dir / "cxr" / "dx_chest_pa_j2k_lossless.dcm",
    ]
    series = load_series(files)
    assert len(series.stacks) == 2
    assert any("split into 2 stacks" in w for w in series.warnings)


def test_unreadable_files_are_listed_not_fatal(dicom_dir: Path) -> None:
    files = _files(dicom_dir / "ct_head_ge")[:5] + [dicom_dir / "broken" / "not_dicom.dcm"]
    series = load_series(files)
    assert len(series.main) == 5
    assert series.errors == [
        {
            "path": str(dicom_dir / "broken" / "not_dicom.dcm"),
            "error": "Not a DICOM file (no DICOM header found).",
        }
    ]
    with pytest.raises(DicomReadError, match="empty"):
        load_series([dicom_dir / "broken" / "empty.dcm"])


def test_library_instances_load_in_order(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([dicom_dir / "ct_head_ge"])
    inst = lib.instances(report.studies[0]["series"][0]["series_uid"])
    stack = load_series(inst).main
    assert stack.paths == [i["path"] for i in inst]


def test_multiframe_with_frame_offsets(pydicom_files: Path) -> None:
    series = load_series([pydicom_files / "rtdose.dcm"])
    stack = series.main
    ds = pydicom.dcmread(pydicom_files / "rtdose.dcm")
    assert len(stack) == int(ds.NumberOfFrames) == 15
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    d = np.asarray([f.distance for f in stack.frames])
    assert np.allclose(np.diff(d), np.diff(sorted(offsets)))
    vol = stack.volume()
    ref = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1))
    order = [f.index for f in stack.frames]
    np.testing.assert_allclose(vol, ref[order].astype(np.float32), rtol=1e-6)


def test_enhanced_multiframe_uses_per_frame_geometry(dicom_dir: Path, tmp_path: Path) -> None:
    """The real GE series converted to one Legacy Converted Enhanced CT object (highdicom)."""
    from highdicom.legacy import LegacyConvertedEnhancedCTImage
    from pydicom.uid import generate_uid

    files = _files(dicom_dir / "ct_head_ge")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        legacy = [pydicom.dcmread(f) for f in files]
        enhanced = LegacyConvertedEnhancedCTImage(
            legacy,
            series_instance_uid=generate_uid(),
            series_number=99,
            sop_instance_uid=generate_uid(),
            instance_number=1,
        )
    out = tmp_path / "enhanced_ct.dcm"
    enhanced.save_as(out)
    multi = load_series([out]).main
    single = load_series(files).main
    assert len(multi) == 28
    assert multi.spacing == pytest.approx(single.spacing)
    assert multi.tilt_deg == pytest.approx(single.tilt_deg, abs=0.05)
    np.testing.assert_array_equal(multi.volume(), single.volume())


def test_volume_load_can_be_cancelled(dicom_dir: Path) -> None:
    stack = load_series(_files(dicom_dir / "mr_sag_mprage")).main
    progress = CallbackProgress()
    progress.cancel()
    with pytest.raises(Cancelled):
        stack.volume(progress=progress)


def test_colour_multiframe_volume(pydicom_files: Path) -> None:
    from app.dicom.pixels import frame_array

    path = pydicom_files / "examples_ybr_color.dcm"
    stack = load_series([path]).main
    vol = stack.volume()
    assert vol.shape == (30, 240, 320, 3) and vol.dtype == np.uint8
    order = [f.index for f in stack.frames]
    np.testing.assert_array_equal(vol[order.index(5)], frame_array(path, 5))


def _enhanced_mr(dicom_dir: Path, tmp_path: Path, kind: str) -> tuple[Path, np.ndarray]:
    """An enhanced MR object with two frame types (magnitude/phase) or three temporal positions.

    Built from 6 real MPRAGE slices (highdicom's Legacy Converted Enhanced MR), then made
    multi-dimensional with pydicom the way scanners write them: frames interleaved slice by
    slice, a Dimension Index with position plus frame type (Philips field map) or plus Temporal
    Position Index (4D). Returns the file and the expected (stacks, slices, rows, cols) volume,
    slices in file order (which is position order here).
    """
    import copy

    from highdicom.legacy import LegacyConvertedEnhancedMRImage
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    files = _files(dicom_dir / "mr_sag_mprage")[:6]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        legacy = [pydicom.dcmread(f) for f in files]
        ds = LegacyConvertedEnhancedMRImage(
            legacy,
            series_instance_uid=generate_uid(),
            series_number=98,
            sop_instance_uid=generate_uid(),
            instance_number=1,
        )
    pix = ds.pixel_array.astype(np.int32)
    slices = [
        it.PlanePositionSequence[0].ImagePositionPatient
        for it in ds.PerFrameFunctionalGroupsSequence
    ]
    order = np.argsort([float(np.dot(p, [1, 0, 0])) for p in slices])  # sagittal: along x
    base = [pix[i] for i in order]
    per_frame = [ds.PerFrameFunctionalGroupsSequence[i] for i in order]
    n_stacks = 2 if kind == "type" else 3
    expected = np.stack(
        [[np.clip(b // (k + 1) + 7 * k, 0, 4095) for b in base] for k in range(n_stacks)]
    ).astype(np.float32)
    dim_org = generate_uid()
    pos_dim = Dataset()
    pos_dim.DimensionOrganizationUID = dim_org
    pos_dim.DimensionIndexPointer = 0x00200032
    pos_dim.FunctionalGroupPointer = 0x00209113
    other = Dataset()
    other.DimensionOrganizationUID = dim_org
    if kind == "type":
        other.DimensionIndexPointer = 0x00089007  # Frame Type
        other.FunctionalGroupPointer = 0x00189226  # MR Image Frame Type Sequence
        dims = [pos_dim, other]
    else:
        other.DimensionIndexPointer = 0x00209128  # Temporal Position Index
        other.FunctionalGroupPointer = 0x00209111  # Frame Content Sequence
        dims = [other, pos_dim]
    ds.DimensionIndexSequence = Sequence(dims)
    frames, items = [], []
    for s, (item, _) in enumerate(zip(per_frame, base)):
        for k in range(n_stacks):  # interleaved: slice 1 M, slice 1 P, slice 2 M ...
            frames.append(expected[k, s].astype(np.uint16))
            it = copy.deepcopy(item)
            content = it.FrameContentSequence[0]
            if kind == "type":
                ft = Dataset()
                ft.FrameType = ["ORIGINAL", "PRIMARY", ["M_FFE", "P_FFE"][k], "NONE"]
                it.MRImageFrameTypeSequence = Sequence([ft])
                content.DimensionIndexValues = [s + 1, k + 1]
            else:
                content.TemporalPositionIndex = k + 1
                content.DimensionIndexValues = [k + 1, s + 1]
            items.append(it)
    shared = ds.SharedFunctionalGroupsSequence[0]
    if kind == "type" and "MRImageFrameTypeSequence" in shared:
        del shared.MRImageFrameTypeSequence
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    ds.NumberOfFrames = len(frames)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.stack(frames).astype("<u2").tobytes()
    out = tmp_path / f"enhanced_mr_{kind}.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out, expected


@pytest.mark.parametrize("kind", ["type", "temporal"])
def test_enhanced_multidimensional_splits_into_stacks(
    dicom_dir: Path, tmp_path: Path, kind: str
) -> None:
    path, expected = _enhanced_mr(dicom_dir, tmp_path, kind)
    series = load_series([path])
    assert len(series.stacks) == expected.shape[0]
    for k, stack in enumerate(series.stacks):
        assert len(stack) == expected.shape[1]
        assert not any("share a position" in w for w in stack.warnings)
        vol = stack.volume()
        # sorted along the normal: the same order as expected, or the reverse
        if not np.array_equal(vol, expected[k]):
            vol = vol[::-1]
        np.testing.assert_array_equal(vol, expected[k])
    labels = [s.label for s in series.stacks]
    if kind == "type":
        assert "M_FFE" in labels[0] and "P_FFE" in labels[1]
    else:
        assert [lab.split()[-1] for lab in labels] == ["1", "2", "3"]
    assert any("same positions" in w for w in series.warnings)
