"""Archive benchmark: 200 chest-film analyses in one process vs on a 2-worker local Ray cluster.

The shared chest films (``$HILUM_SHARED_DATA/dicom/cxr``: CR uncompressed, CR JPEG-LS, DX
JPEG 2000) are repeated with new Study/Series/SOP UIDs until there are ``--studies`` studies of
one film each. Each study gets the same analysis (classify with the bundled model + CAM saliency
files) by :func:`app.archive.analyze_archive`: once in this process, once as Ray tasks on a private
local runtime (127.0.0.1, 2 CPUs, no dashboard). Outputs are checked to be identical.

Last line: ``{"benchmark": "ray_batch", "ratio": <single-process seconds over Ray seconds
(Ray start included)>, "studies_per_s": <Ray>, ...}`` with the load average (the machine is shared).

Run: ``.venv/bin/python benchmarks/ray_batch.py [--studies 200]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILMS = (
    "cr_chest_pa_jpegls_near_lossless.dcm",
    "cr_chest_pa_uncompressed.dcm",
    "dx_chest_pa_j2k_lossless.dcm",
)


def make_archive(folder: Path, n: int) -> None:
    """``n`` one-film studies from the shared films, each with new UIDs."""
    import pydicom
    from pydicom.uid import generate_uid

    from app.core.paths import shared_data_dir

    folder.mkdir(parents=True)
    sources = [pydicom.dcmread(shared_data_dir() / "dicom" / "cxr" / f) for f in FILMS]
    for k in range(n):
        ds = sources[k % len(sources)]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / f"film_{k:04d}.dcm", enforce_file_format=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hilum-bench-ray-"))
    os.environ["HILUM_HOME"] = str(work / "home")
    from app.archive import analyze_archive, start_ray, stop_ray

    try:
        make_archive(work / "archive", args.studies)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        local = analyze_archive([work / "archive"], work / "local", device="cpu", saliency="cam")
        single_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        start_ray("auto", workers=args.workers)
        start_s = time.perf_counter() - t0
        dist = analyze_archive(
            [work / "archive"], work / "ray", ray_address="auto", device="cpu", saliency="cam"
        )
        ray_s = time.perf_counter() - t0
        stop_ray()
        load_after = os.getloadavg()
        assert local["summary"]["done"] == dist["summary"]["done"] == args.studies, (
            local["summary"],
            dist["summary"],
        )
        same = 0
        for uid, rec in local["studies"].items():
            a = json.loads((work / "local" / rec["folder"] / "results.json").read_text())
            b = json.loads((work / "ray" / rec["folder"] / "results.json").read_text())
            pa = [r["labels"] for i in a["images"] for r in i["results"]]
            pb = [r["labels"] for i in b["images"] for r in i["results"]]
            same += pa == pb
        print(
            json.dumps(
                {
                    "single_process_s": round(single_s, 2),
                    "ray_s": round(ray_s, 2),
                    "ray_start_s": round(start_s, 2),
                    "identical_studies": same,
                }
            ),
            flush=True,
        )
        print(
            json.dumps(
                {
                    "benchmark": "ray_batch",
                    "ratio": round(single_s / ray_s, 3),
                    "studies_per_s": round(args.studies / ray_s, 3),
                    "single_process_studies_per_s": round(args.studies / single_s, 3),
                    "ratio_without_ray_start": round(single_s / (ray_s - start_s), 3),
                    "studies": args.studies,
                    "workers": args.workers,
                    "cpus": os.cpu_count(),
                    "loadavg_before": [round(v, 2) for v in load_before],
                    "loadavg_after": [round(v, 2) for v in load_after],
                }
            )
        )
    finally:
        stop_ray()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
