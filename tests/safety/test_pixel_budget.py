"""Issue 11, item 10: allocation bombs are refused from the header / codec stream before decoding."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.dicom import budget
from app.dicom.library import Library
from app.dicom.pixels import decode_frame, read_dataset
from tests.safety._bombs import jpeg_bomb, native_bomb, rle_bomb

BOMBS = {"native": native_bomb, "rle": rle_bomb, "jpeg": jpeg_bomb}
ROOT = Path(__file__).resolve().parents[2]


def _limit_memory() -> None:  # a regression must fail the test, not exhaust the shared machine
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_render_refuses_bomb_fast_and_small(kind, tmp_path):
    bomb = BOMBS[kind](tmp_path / f"{kind}.dcm")
    assert bomb.stat().st_size < 64 * 1024
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-m",
            "app",
            "render",
            str(bomb),
            "--out",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=_limit_memory,
    )
    wall = time.monotonic() - t0
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    print(
        f"render {kind} bomb: exit {proc.returncode}, wall {wall:.2f} s, max RSS {rss_kb / 1024:.0f} MiB"
    )
    assert proc.returncode == 1
    assert "65535 x 65535" in proc.stderr and "not decoded" in proc.stderr
    assert not (tmp_path / "x.png").exists()
    assert wall < 5.0 and rss_kb < 1024 * 1024


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_decode_refused_before_decoder(kind, tmp_path):
    ds = read_dataset(BOMBS[kind](tmp_path / f"{kind}.dcm"))
    with pytest.raises(budget.PixelBudgetError, match="65535 x 65535"):
        decode_frame(ds)


def test_scan_flags_bombs(tmp_path):
    for kind, make in BOMBS.items():
        make(tmp_path / f"{kind}.dcm")
    report = Library(tmp_path / "lib.sqlite").scan([tmp_path])
    flagged = {Path(e["path"]).name for e in report.errors if "65535 x 65535" in e["error"]}
    assert flagged == {"native.dcm", "rle.dcm", "jpeg.dcm"}
    assert report.studies == []


def test_budget_is_a_setting(tmp_path, monkeypatch):
    from app.core.paths import sample_path

    ds = read_dataset(sample_path())  # 1841 x 1955 = 3.6 megapixels
    assert decode_frame(ds).shape == (1955, 1841)
    monkeypatch.setenv(budget.ENV_FRAME, "1000000")
    with pytest.raises(budget.PixelBudgetError, match="HILUM_MAX_FRAME_PIXELS"):
        decode_frame(read_dataset(sample_path()))
    monkeypatch.delenv(budget.ENV_FRAME)
    with pytest.raises(budget.PixelBudgetError, match="per series"):
        budget.check_dimensions(512, 512, 3000, budget=budget.PixelBudget())
    assert budget.PixelBudget.current() == budget.PixelBudget(200_000_000, 2 << 30)


def test_series_volume_refused_before_allocation(tmp_path):
    from pydicom.uid import generate_uid

    from app.dicom.series import load_series
    from tests.safety._bombs import _base

    study, series = generate_uid(), generate_uid()
    files = []
    for k in range(10):  # 10 x 8000 x 8000: 64 megapixels each (allowed), 2.4 GiB as a volume
        ds = _base("1.2.840.10008.1.2.1", 8000, 8000)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, k + 1
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, k], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1, 1]
        ds.PixelData = bytes(64)
        files.append(tmp_path / f"{k}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)
    stack = load_series(files).main
    with pytest.raises(budget.PixelBudgetError, match="per series"):
        stack.volume()
