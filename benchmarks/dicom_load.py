"""Benchmark: DICOM header scan and CT volume load, Hilum against its peers, on real data.

On ``ct_phantom_philips`` (140 CT slices, 512x512) in one run:

* header scan files/s: :meth:`app.dicom.library.Library.scan` (into a fresh library) against a
  plain ``pydicom.dcmread(stop_before_pixels=True)`` loop;
* full volume load slices/s (sorted, in HU): :func:`app.dicom.series.load_series` +
  :meth:`Stack.volume` against python-gdcm (``gdcm.ImageReader`` per file, sort by position,
  numpy rescale) and SimpleITK's ``ImageSeriesReader`` (GDCM series sorting included).

The volumes are checked to be identical before any figure is printed. Each timing is the best
of ``--repeat`` runs with the files in the OS cache (a warm-up read comes first), so the figures
compare decoding and parsing, not disk speed. The last line printed is JSON::

    {"benchmark": "dicom_load", "ratio": <ours/gdcm slices/s>, "vs_simpleitk": <ours/sitk>,
     "scan_ratio": <ours/pydicom files/s>, "scan_s": <seconds for the 140 headers>}

Run: ``python benchmarks/dicom_load.py [--data DIR] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def best_of(n: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Best wall time of ``n`` runs and the last result."""
    best = float("inf")
    result: object = None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def plain_pydicom_headers(files: list[str]) -> int:
    import pydicom

    for f in files:
        pydicom.dcmread(f, stop_before_pixels=True)
    return len(files)


def hilum_scan(files: list[str]) -> int:
    from app.dicom.library import Library

    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(Path(tmp) / "bench.sqlite")
        report = lib.scan(files)
        n = sum(s["instances"] for st in report.studies for s in st["series"])
        lib.close()
    if n != len(files) or report.errors:
        raise SystemExit(f"scan indexed {n} of {len(files)} files, errors: {report.errors[:3]}")
    return n


def hilum_volume(files: list[str]) -> np.ndarray:
    from app.dicom.series import load_series

    series = load_series(files)
    return series.main.volume()


def gdcm_volume(files: list[str]) -> np.ndarray:
    """python-gdcm: read each file, sort along the slice normal, rescale with numpy."""
    import gdcm

    dtypes = {
        gdcm.PixelFormat.UINT8: np.uint8,
        gdcm.PixelFormat.INT8: np.int8,
        gdcm.PixelFormat.UINT16: np.uint16,
        gdcm.PixelFormat.INT16: np.int16,
        gdcm.PixelFormat.UINT32: np.uint32,
        gdcm.PixelFormat.INT32: np.int32,
    }
    slices = []
    for f in files:
        reader = gdcm.ImageReader()
        reader.SetFileName(f)
        if not reader.Read():
            raise SystemExit(f"gdcm could not read {f}")
        image = reader.GetImage()
        dims = image.GetDimensions()
        pf = image.GetPixelFormat()
        buf = image.GetBuffer().encode("utf-8", "surrogateescape")
        arr = np.frombuffer(buf, dtype=dtypes[pf.GetScalarType()]).reshape(dims[1], dims[0])
        cos = image.GetDirectionCosines()
        normal = np.cross(cos[:3], cos[3:])
        z = float(np.dot(image.GetOrigin(), normal))
        slope, intercept = image.GetSlope(), image.GetIntercept()
        slices.append((z, arr, slope, intercept))
    slices.sort(key=lambda s: s[0])
    vol = np.empty((len(slices), *slices[0][1].shape), dtype=np.float32)
    for k, (_, arr, slope, intercept) in enumerate(slices):
        vol[k] = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return vol


def simpleitk_volume(folder: str) -> np.ndarray:
    import SimpleITK as sitk

    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    return sitk.GetArrayFromImage(reader.Execute())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", help="folder of the CT series (default: shared ct_phantom_philips)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best kept)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    os.environ.setdefault("HILUM_HOME", tempfile.mkdtemp(prefix="hilum-bench-"))

    from app.core.paths import shared_data_dir

    folder = Path(args.data) if args.data else shared_data_dir() / "dicom" / "ct_phantom_philips"
    files = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.name != "DIRFILE")
    if len(files) < 2:
        raise SystemExit(f"no series found in {folder}")
    for f in files:  # warm the OS cache: every contender reads from memory
        Path(f).read_bytes()
    n = len(files)
    print(f"dicom_load: {n} files from {folder}")

    plain_s, _ = best_of(args.repeat, lambda: plain_pydicom_headers(files))
    scan_s, _ = best_of(args.repeat, lambda: hilum_scan(files))
    print(
        f"header scan   pydicom loop {n / plain_s:8.1f} files/s ({plain_s:.3f} s)   "
        f"hilum scan {n / scan_s:8.1f} files/s ({scan_s:.3f} s, SQLite index included)"
    )

    ours_s, ours = best_of(args.repeat, lambda: hilum_volume(files))
    gdcm_s, ref_gdcm = best_of(args.repeat, lambda: gdcm_volume(files))
    sitk_s, ref_sitk = best_of(args.repeat, lambda: simpleitk_volume(str(folder)))
    ours_v = np.asarray(ours)
    if not np.array_equal(ours_v, np.asarray(ref_gdcm)):
        raise SystemExit("volumes differ between hilum and python-gdcm")
    if not np.array_equal(ours_v, np.asarray(ref_sitk).astype(np.float32)):
        raise SystemExit("volumes differ between hilum and SimpleITK")
    print(
        f"volume load   hilum {n / ours_s:8.1f} slices/s ({ours_s:.3f} s)   "
        f"python-gdcm {n / gdcm_s:8.1f} slices/s ({gdcm_s:.3f} s)   "
        f"SimpleITK {n / sitk_s:8.1f} slices/s ({sitk_s:.3f} s)   (identical HU volumes)"
    )
    result = {
        "benchmark": "dicom_load",
        "ratio": round(gdcm_s / ours_s, 3),
        "vs_simpleitk": round(sitk_s / ours_s, 3),
        "scan_ratio": round(plain_s / scan_s, 3),
        "scan_s": round(scan_s, 4),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
