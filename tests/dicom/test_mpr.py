"""MPR and slabs (app.dicom.mpr) and ``hilum render --plane`` on the shared CT series."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from app.cli import main as cli_main
from app.dicom.mpr import Volume, orientation_letters
from app.dicom.series import load_series


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir() if p.is_file())


@pytest.fixture(scope="module")
def phantom(dicom_dir: Path) -> Volume:
    return Volume(load_series(_files(dicom_dir / "ct_phantom_philips")).main)


@pytest.fixture(scope="module")
def tilted_sphere(
    dicom_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Volume, np.ndarray, float]:
    """The real tilted, unevenly spaced head CT headers with a 30 mm ball drawn in patient space.

    Every pixel's patient position comes from its own slice's ImagePositionPatient and the
    ImageOrientationPatient (the DICOM definition), so the ball is round in patient space
    whatever the tilt; a reformat that ignored the tilt would shear it.
    """
    src = _files(dicom_dir / "ct_head_ge")
    series = load_series(src)
    stack = series.main
    assert stack.tilt_deg > 18 and any("Uneven" in w for w in stack.warnings)
    corners = Volume(stack).corners()
    center = corners.mean(axis=0)
    radius = 30.0
    out = tmp_path_factory.mktemp("tilted_ball")
    for path in src:
        ds = pydicom.dcmread(path)
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
        iop = [float(v) for v in ds.ImageOrientationPatient]
        row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
        dy, dx = (float(v) for v in ds.PixelSpacing)
        ii, jj = np.mgrid[0 : ds.Rows, 0 : ds.Columns]
        pts = ipp + ii[..., None] * dy * col + jj[..., None] * dx * row
        inside = np.linalg.norm(pts - center, axis=-1) <= radius
        arr = np.where(inside, 1000, 0).astype(np.int16)
        ds.PixelData = arr.tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.save_as(out / Path(path).name)
    return Volume(load_series(_files(out)).main), center, radius


def test_axial_through_a_slice_reproduces_it(phantom: Volume) -> None:
    k = 70
    plane = phantom.standard_plane("axial", position=float(phantom.dists[k]))
    img = phantom.sample(plane)
    assert img.shape == phantom.slice(k).shape
    assert float(np.abs(img - phantom.slice(k)).max()) < 1e-3
    assert plane.spacing == pytest.approx(0.451171875)


def test_standard_planes_have_square_pixels_and_correct_letters(phantom: Volume) -> None:
    expect = {
        "axial": ("R", "L", "A", "P"),
        "coronal": ("R", "L", "H", "F"),
        "sagittal": ("A", "P", "H", "F"),
    }
    for kind, (left, right, top, bottom) in expect.items():
        plane = phantom.standard_plane(kind)
        letters = plane.letters()
        assert (letters["left"], letters["right"], letters["top"], letters["bottom"]) == (
            left,
            right,
            top,
            bottom,
        )
        img = phantom.sample(plane)
        assert img.shape == (plane.rows, plane.columns)
    cor = phantom.standard_plane("coronal")
    # the slices span 139 mm (1 mm apart), resampled at 0.451 mm: height = 139 / 0.451 + 1
    span = float(phantom.dists[-1] - phantom.dists[0])
    assert span == pytest.approx(139.0)
    assert cor.rows == int(span / 0.451171875) + 1
    # oblique: rotated 45 degrees about the feet-head axis gives two-letter labels
    assert orientation_letters((1, 1, 0), (0, 0, -1))["right"] == "LP"


def test_coronal_matches_the_voxels(phantom: Volume) -> None:
    """A coronal through row i of the slices is that row of every slice (no tilt, even spacing)."""
    i = 200
    y = float(phantom.voxel_to_patient(0, i, 0)[1])
    plane = phantom.standard_plane("coronal", position=y)
    img = phantom.sample(plane)
    # plane row r lies at z = top - r * spacing; slices are 1 mm apart
    for k in (0, 40, 138):
        z = float(phantom.voxel_to_patient(k, i, 0)[2])
        r = plane.pixel((plane.origin[0], y, z))[0]
        if abs(r - round(r)) < 1e-3:
            np.testing.assert_allclose(img[round(r)], phantom.slice(k)[i], atol=1e-2)


def _ideal_disk(plane, center: np.ndarray, radius: float) -> np.ndarray:
    rr, cc = np.mgrid[0 : plane.rows, 0 : plane.columns]
    pts = (
        np.asarray(plane.origin)
        + cc[..., None] * plane.spacing * np.asarray(plane.row)
        + rr[..., None] * plane.spacing * np.asarray(plane.col)
    )
    return np.linalg.norm(pts - center, axis=-1) <= radius


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_tilted_head_sagittal_is_undistorted(
    tilted_sphere: tuple[Volume, np.ndarray, float],
) -> None:
    vol, center, radius = tilted_sphere
    plane = vol.standard_plane("sagittal", position=float(center[0]))
    assert plane.letters() == {"left": "A", "right": "P", "top": "H", "bottom": "F"}
    mask = vol.sample(plane) > 500
    area = float(mask.sum()) * plane.spacing**2
    assert area == pytest.approx(math.pi * radius**2, rel=0.06)
    rr, cc = np.nonzero(mask)
    centroid = plane.point(float(rr.mean()), float(cc.mean()))
    assert float(np.linalg.norm(centroid[1:] - center[1:])) < 1.5
    # the section overlaps the true disk (the ball lies where slices are 7 mm apart, so its
    # edge steps along the tilted slices; a sheared reformat overlaps far less, see below)
    assert _iou(mask, _ideal_disk(plane, center, radius)) > 0.9


def test_naive_stacking_would_shear_the_ball(
    tilted_sphere: tuple[Volume, np.ndarray, float],
) -> None:
    """Control: the same ball resampled as if the slices were stacked straight is distorted."""
    vol, center, radius = tilted_sphere
    plane = vol.standard_plane("sagittal", position=float(center[0]))
    saved = vol.w
    try:
        vol.w = vol.n.copy()  # ignore the shift of the tilted slices
        mask = vol.sample(plane) > 500
    finally:
        vol.w = saved
    assert _iou(mask, _ideal_disk(plane, center, radius)) < 0.6


def test_oblique_plane_through_a_point(tilted_sphere: tuple[Volume, np.ndarray, float]) -> None:
    vol, center, radius = tilted_sphere
    a = math.radians(30)
    plane = vol.plane((math.cos(a), math.sin(a), 0), (0, 0, -1), center=center)
    assert abs(plane.distance(center)) < 1e-6
    mask = vol.sample(plane) > 500
    assert _iou(mask, _ideal_disk(plane, center, radius)) > 0.9


def test_slabs(phantom: Volume) -> None:
    for kind in ("axial", "coronal", "sagittal"):
        plane = phantom.standard_plane(kind)
        base = phantom.sample(plane)
        mip = phantom.slab(plane, 20, "mip")
        minip = phantom.slab(plane, 20, "minip")
        avg = phantom.slab(plane, 20, "avg")
        inside = base > phantom.fill
        assert np.all(mip[inside] >= base[inside] - 1e-3)
        assert np.all(minip[inside] <= base[inside] + 1e-3)
        assert np.all((avg[inside] <= mip[inside] + 1e-3) & (avg[inside] >= minip[inside] - 1e-3))
        assert float((mip - base).max()) > 10
    # the voxel-axis shortcut agrees with sampling planes across the slab
    plane = phantom.standard_plane("coronal")
    fast = phantom.slab(plane, 10, "mip")
    planes = [phantom.sample(plane.moved(float(o))) for o in np.arange(-5, 5.0001, phantom.dy)]
    slow = np.max(planes, axis=0)
    # (edges differ by interpolation: the shortcut takes whole voxels, the planes interpolate)
    assert float(np.median(np.abs(fast - slow))) < 3.0


def test_cli_render_plane(
    dicom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sag.png"
    assert (
        cli_main(
            [
                "render",
                str(dicom_dir / "ct_head_ge"),
                "--plane",
                "sagittal",
                "--window",
                "40,80",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.ndim == 2 and img.dtype == np.uint8 and img.max() == 255
    assert "left A right P top H bottom F" in capsys.readouterr().out
    out2 = tmp_path / "mip.png"
    assert (
        cli_main(
            [
                "render",
                str(dicom_dir / "ct_phantom_philips"),
                "--plane",
                "coronal",
                "--index",
                "100",
                "--slab",
                "20",
                "--projection",
                "mip",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    assert cv2.imread(str(out2), cv2.IMREAD_UNCHANGED).shape == (309, 512)
    assert (
        cli_main(
            [
                "render",
                str(dicom_dir / "ct_phantom_philips"),
                "--plane",
                "axial",
                "--position",
                "10",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    assert (
        cli_main(
            [
                "render",
                str(dicom_dir / "ct_phantom_philips"),
                "--slab",
                "5",
                "--out",
                str(tmp_path / "y.png"),
            ]
        )
        == 2
    )


def test_oblique_slab_band_shortcut_matches_sampled_planes(phantom: Volume) -> None:
    """A slab rotated about the slice normal is cut out of each slice as a band: the result
    agrees with sampling planes across the slab."""
    a = math.radians(30)
    plane = phantom.plane((math.cos(a), math.sin(a), 0.0), (0.0, 0.0, -1.0))
    step = phantom._axis_step(plane.normal)
    offsets = np.linspace(-10, 10, math.ceil(20 / step) + 1)
    sampled = np.stack([phantom.sample(plane.moved(float(o))) for o in offsets])
    for projection, reduce in (("mip", np.max), ("minip", np.min), ("avg", np.mean)):
        fast = phantom._in_slice_slab(plane, 20.0, projection)
        assert fast is not None and fast.shape == (plane.rows, plane.columns)
        inside = sampled.min(axis=0) > phantom.fill
        diff = np.abs(fast - reduce(sampled, axis=0))[inside]
        assert float(np.median(diff)) < 2.0
    # a double-oblique slab has no such band: the generic path is used
    tilted = phantom.plane((math.cos(a), math.sin(a), 0.3), (0.0, 0.2, -1.0))
    assert phantom._in_slice_slab(tilted, 20.0, "mip") is None


def test_volumes_too_large_for_a_mosaic_use_the_numpy_sampler(
    dicom_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.dicom.mpr as mpr

    stack = load_series(_files(dicom_dir / "ct_head_ge")).main
    data = stack.volume()
    fast = Volume(stack, data=data)
    monkeypatch.setattr(mpr, "_SHRT_MAX", 600)  # pretend the mosaic would not fit cv2.remap
    slow = Volume(stack, data=data)
    assert fast.use_remap and not slow.use_remap
    for kind in ("axial", "sagittal"):
        a = fast.sample(fast.standard_plane(kind))
        b = slow.sample(slow.standard_plane(kind))
        assert a.shape == b.shape and float(np.median(np.abs(a - b))) < 0.5
    plane = slow.standard_plane("coronal")
    assert slow.slab(plane, 8.0, "mip").shape == (plane.rows, plane.columns)
