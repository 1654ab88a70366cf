"""``hilum render`` and :func:`app.dicom.render.render_to_png`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main as cli_main
from app.dicom.pixels import display_array, frame_array, read_dataset
from app.dicom.render import render_to_png

ROOT = Path(__file__).resolve().parents[2]


def test_render_writes_the_displayed_image(dicom_dir: Path, tmp_path: Path) -> None:
    src = dicom_dir / "cxr" / "cr_chest_pa_jpegls_near_lossless.dcm"
    out = render_to_png(src, tmp_path / "cr.png")
    png = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    ds = read_dataset(src)
    np.testing.assert_array_equal(png, display_array(ds, frame_array(ds)))


def test_cli_render_window_and_frame(dicom_dir: Path, pydicom_files: Path, tmp_path: Path) -> None:
    src = dicom_dir / "ct_head_ge" / "10.dcm"
    assert cli_main(["render", str(src), "--out", str(tmp_path / "a.png")]) == 0
    assert (
        cli_main(["render", str(src), "--out", str(tmp_path / "b.png"), "--window", "400,2000"])
        == 0
    )
    a = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == b.shape == (512, 512) and not np.array_equal(a, b)
    ds = read_dataset(src)
    np.testing.assert_array_equal(b, display_array(ds, frame_array(ds), window=(400.0, 2000.0)))
    multi = pydicom_files / "examples_ybr_color.dcm"
    assert cli_main(["render", str(multi), "--out", str(tmp_path / "f5.png"), "--frame", "5"]) == 0
    colour = cv2.imread(str(tmp_path / "f5.png"), cv2.IMREAD_COLOR)
    expected = frame_array(multi, 5)
    np.testing.assert_array_equal(colour[..., ::-1], expected)  # PNG stores RGB, cv2 reads BGR


@pytest.mark.parametrize(
    "args",
    [
        ["--window", "40"],
        ["--window", "a,b"],
        ["--window", "40,-5"],
        ["--frame", "-1"],
        ["--frame", "9"],
    ],
)
def test_cli_render_bad_usage_exits_2(
    dicom_dir: Path, tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    src = dicom_dir / "ct_head_ge" / "10.dcm"
    assert cli_main(["render", str(src), "--out", str(tmp_path / "x.png"), *args]) == 2
    assert capsys.readouterr().err.startswith("hilum: ")


@pytest.mark.parametrize(
    "name,reason",
    [
        (
            "dx_chest_corrupt_j2k_stream.dcm",
            "The image data is corrupt and cannot be decoded (JPEG 2000).",
        ),
        ("empty.dcm", "The file is empty (0 bytes)."),
        ("not_dicom.dcm", "Not a DICOM file (no DICOM header found)."),
    ],
)
def test_cli_render_broken_file_one_line_reason(
    dicom_dir: Path, tmp_path: Path, name: str, reason: str
) -> None:
    """A real process: nothing but one line on stderr (decoders print to fd 2 themselves)."""
    out = tmp_path / "x.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "render",
            str(dicom_dir / "broken" / name),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"hilum: {reason}"]
    assert not out.exists()


def test_cli_render_truncated(
    dicom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli_main(
        [
            "render",
            str(dicom_dir / "broken" / "cr_chest_truncated.dcm"),
            "--out",
            str(tmp_path / "t.png"),
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("hilum: The file is truncated") and "\n" not in err
