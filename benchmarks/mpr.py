"""Benchmark: multiplanar reformats and a thick-slab MIP, Hilum against SimpleITK's Resample.

On ``ct_phantom_philips`` (140 x 512 x 512 CT) in one run, both libraries working on the same
voxels (decoded once; the decode is not timed) and producing the same output grids:

* a coronal and a sagittal reformat at full resolution (0.45 mm square pixels) and two oblique
  planes (30 degrees about the feet-head axis; double oblique), trilinear;
* a 20 mm coronal MIP.

Hilum: :class:`app.dicom.mpr.Volume` (``sample`` / ``slab``). SimpleITK: ``sitk.Resample`` with
a linear interpolator onto a one-slice grid with the plane's origin, spacing and direction
(and, for the MIP, a slab grid followed by ``MaximumProjection``). The outputs are compared
before any figure is printed. Both run with 2 threads (the workstation's 2 cores). Each time is
the median of ``--repeat`` runs. The last line printed is JSON::

    {"benchmark": "mpr", "ratio": <SimpleITK time / Hilum time, all planes + MIP>,
     "plane_ms": <Hilum ms per oblique plane>, "mip_ms": <Hilum ms per 20 mm MIP>,
     "planes_ratio": <the same ratio for the four planes alone, without the MIP>,
     "oblique_mip_ms": <Hilum ms per 20 mm MIP on the oblique plane>}

Run: ``python benchmarks/mpr.py [--data DIR] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def median_ms(n: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Median wall time in ms of ``n`` runs (after one warm-up) and the last result."""
    result = fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("HILUM_SHARED_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default / "dicom" / "ct_phantom_philips")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import cv2
    import SimpleITK as sitk

    from app.dicom.mpr import Plane, Volume
    from app.dicom.series import load_series

    cv2.setNumThreads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    warnings.simplefilter("ignore")

    files = sorted(str(p) for p in args.data.iterdir() if p.is_file())
    stack = load_series(files).main
    data = stack.volume()
    vol = Volume(stack, data=data)
    print(f"volume {vol.shape} spacing {stack.spacing}, tilt {stack.tilt_deg:.1f} deg")

    # the same voxels as a SimpleITK image: index (j, i, k) -> patient via spacing/direction
    img = sitk.GetImageFromArray(data)
    img.SetSpacing((vol.dx, vol.dy, vol.dz))
    img.SetOrigin(tuple(float(v) for v in vol.p0))
    img.SetDirection(
        tuple(
            float(v)
            for v in np.column_stack([vol.row, vol.col, vol.w / np.linalg.norm(vol.w)]).ravel()
        )
    )

    def sitk_plane(
        plane: Plane, depth: int = 1, step: float = 1.0, start: float = 0.0
    ) -> np.ndarray:
        n = plane.normal
        origin = np.asarray(plane.origin) + start * n
        direction = np.column_stack([plane.row, plane.col, n]).ravel()
        out = sitk.Resample(
            img,
            [plane.columns, plane.rows, depth],
            sitk.Transform(),
            sitk.sitkLinear,
            tuple(float(v) for v in origin),
            (plane.spacing, plane.spacing, step),
            tuple(float(v) for v in direction),
            vol.fill,
            sitk.sitkFloat32,
        )
        return out

    a = math.radians(30)
    planes = {
        "coronal": vol.standard_plane("coronal"),
        "sagittal": vol.standard_plane("sagittal"),
        "oblique": vol.plane((math.cos(a), math.sin(a), 0.0), (0.0, 0.0, -1.0)),
        "double_oblique": vol.plane((math.cos(a), math.sin(a), 0.2), (0.1, -0.2, -1.0)),
    }
    ours_total = peer_total = 0.0
    planes_ours = planes_peer = 0.0
    oblique_ms = []
    for name, plane in planes.items():
        t_ours, mine = median_ms(args.repeat, lambda p=plane: vol.sample(p))
        t_peer, theirs = median_ms(args.repeat, lambda p=plane: sitk_plane(p))
        ref = sitk.GetArrayFromImage(theirs)[0]
        diff = float(np.median(np.abs(np.asarray(mine) - ref)))
        if diff > 1.0:
            raise SystemExit(f"{name}: outputs differ (median |diff| {diff:.2f})")
        print(
            f"{name:15s} {plane.columns}x{plane.rows}: hilum {t_ours:7.2f} ms  "
            f"SimpleITK {t_peer:7.2f} ms  median |diff| {diff:.3f}"
        )
        ours_total += t_ours
        peer_total += t_peer
        planes_ours += t_ours
        planes_peer += t_peer
        if "oblique" in name:
            oblique_ms.append(t_ours)

    slab = 20.0
    plane = planes["coronal"]
    depth = round(slab / vol.dy) + 1
    t_mip, mine = median_ms(args.repeat, lambda: vol.slab(plane, slab, "mip"))

    def sitk_mip() -> sitk.Image:
        return sitk.MaximumProjection(sitk_plane(plane, depth, vol.dy, -slab / 2.0), 2)

    t_peer_mip, theirs = median_ms(args.repeat, sitk_mip)
    ref = sitk.GetArrayFromImage(theirs)[0]
    diff = float(np.median(np.abs(np.asarray(mine) - ref)))
    if diff > 5.0:
        raise SystemExit(f"MIP outputs differ (median |diff| {diff:.2f})")
    print(
        f"coronal MIP {slab:g} mm: hilum {t_mip:7.2f} ms  SimpleITK {t_peer_mip:7.2f} ms  "
        f"median |diff| {diff:.3f}"
    )
    ours_total += t_mip
    peer_total += t_peer_mip
    # an oblique slab has no voxel axis to reduce along: Hilum samples planes across it
    t_obl_mip, _ = median_ms(
        max(3, args.repeat // 2), lambda: vol.slab(planes["oblique"], slab, "mip")
    )
    print(f"oblique MIP {slab:g} mm: hilum {t_obl_mip:7.2f} ms (not in the ratio)")
    print(
        json.dumps(
            {
                "benchmark": "mpr",
                "ratio": round(peer_total / ours_total, 2),
                "plane_ms": round(statistics.mean(oblique_ms), 2),
                "mip_ms": round(t_mip, 2),
                "planes_ratio": round(planes_peer / planes_ours, 2),
                "oblique_mip_ms": round(t_obl_mip, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
