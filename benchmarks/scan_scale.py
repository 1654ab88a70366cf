"""Benchmark: scanning a site-sized collection, Hilum's library scan against a plain pydicom loop.

A synthetic collection is written to a temporary folder: ``--files`` files (default 20,000) as
200 studies x 100 instances (fewer studies when ``--files`` is smaller), each a copy of one real
CT slice (``ct_head_ge/01.dcm``, 512x512, with its pixel data) with rewritten Study/Series/SOP
Instance UIDs, Instance Number and Image Position. Then, with the files in the OS cache:

* the peer: ``os.walk`` + ``pydicom.dcmread(path, stop_before_pixels=True)`` per file;
* ours: :meth:`app.dicom.library.Library.scan` of the folder into a fresh library (index
  written, studies and series built, ready for the browser);
* the rescan of the unchanged tree (the same call again).

The two are run alternately ``--rounds`` times (median kept). ``max_rss_mb`` is the peak
resident memory of the scan, measured in a child process that does only the scan (its worker
processes included). The last line printed is JSON::

    {"benchmark": "scan_scale", "ratio": <loop s over ours>, "files_per_s": x, "rescan_s": x,
     "max_rss_mb": x, "loop_s": x, "scan_s": x, "files": n, "cpu_ratio": <loop CPU s over ours>}

Run: ``python benchmarks/scan_scale.py [--files 20000] [--rounds 1] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: UID root of the synthetic collection (fixed-width values so bytes can be patched in place)
_ROOT_UID = "1.2.826.0.1.3680043.10.543.17"
_PLACE = {
    "study": f"{_ROOT_UID}.1.9999991",
    "series": f"{_ROOT_UID}.2.9999992",
    "sop": f"{_ROOT_UID}.3.9999993",
}


def _template(source: Path) -> bytes:
    """The source slice written with placeholder UIDs, instance number and position."""
    import io

    import pydicom

    ds = pydicom.dcmread(source)
    ds.StudyInstanceUID = _PLACE["study"]
    ds.SeriesInstanceUID = _PLACE["series"]
    ds.SOPInstanceUID = _PLACE["sop"]
    ds.file_meta.MediaStorageSOPInstanceUID = _PLACE["sop"]
    ds.InstanceNumber = "9991"
    ds.ImagePositionPatient = ["-125.000", "-125.000", "+9992.00"]
    for kw in ("SliceLocation",):
        if kw in ds:
            del ds[kw]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    # the markers are patched by first occurrence (after the UIDs): they must be unambiguous
    head = data[: data.index(b"\xe0\x7f\x10\x00")]
    assert head.count(b"9991") == 1 + head.count(_PLACE["study"].encode()), "ambiguous marker"
    assert head.count(b"+9992.00") == 1, "ambiguous marker"
    return data


def build_collection(root: Path, n_files: int, source: Path) -> int:
    """Write ``n_files`` files: 200 studies x 100 instances (2 series of 50 per study)."""
    tpl = _template(source)
    per_study = 100
    n = 0
    for s in range(max(1, (n_files + per_study - 1) // per_study)):
        study_uid = f"{_ROOT_UID}.1.{1000000 + s}".encode()
        folder = root / f"study{s:03d}"
        folder.mkdir(parents=True)
        for k in range(per_study):
            if n >= n_files:
                break
            series_uid = f"{_ROOT_UID}.2.{1000000 + s * 2 + k // 50}".encode()
            sop_uid = f"{_ROOT_UID}.3.{1000000 + n}".encode()
            data = (
                tpl.replace(_PLACE["study"].encode(), study_uid)
                .replace(_PLACE["series"].encode(), series_uid)
                .replace(_PLACE["sop"].encode(), sop_uid)
                .replace(b"9991", f"{k % 50 + 1:04d}".encode(), 1)
                .replace(b"+9992.00", f"{(k % 50) * 2.5:+08.2f}".encode(), 1)
            )
            (folder / f"IM{k:04d}.dcm").write_bytes(data)
            n += 1
    return n


def plain_loop(root: Path) -> tuple[float, int, float]:
    """The peer: walk the folder and read every header with pydicom (wall s, files, CPU s)."""
    import pydicom

    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            pydicom.dcmread(os.path.join(dirpath, name), stop_before_pixels=True)
            n += 1
    return time.perf_counter() - start, n, time.process_time() - cpu


_CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[3])
from app.dicom.library import Library
lib = Library(sys.argv[2])
t0, c0 = time.perf_counter(), time.process_time()
rep = lib.scan([sys.argv[1]])
t1, c1 = time.perf_counter(), time.process_time()
rep2 = lib.scan([sys.argv[1]])
t2 = time.perf_counter()
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0
print(json.dumps({"scan_s": t1 - t0, "scan_cpu_s": c1 - c0, "rescan_s": t2 - t1, "added": rep.added,
                  "unchanged": rep2.unchanged, "errors": len(rep.errors) + len(rep2.errors),
                  "studies": len(rep.studies), "rss_mb": rss, "counts": lib.counts()}))
"""


def our_scan(root: Path, work: Path) -> dict:
    """Ours, in a child process (fresh library; its peak RSS is the scan's alone)."""
    db = work / f"lib{time.monotonic_ns()}.sqlite"
    env = dict(os.environ, HILUM_HOME=str(work / "home"))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), str(db), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"scan failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", help="build the collection here and keep it (reused if present)")
    args = parser.parse_args()

    from app.core.paths import shared_data_dir

    source = shared_data_dir() / "dicom" / "ct_head_ge" / "01.dcm"
    if not source.exists():
        raise SystemExit(f"benchmark data missing: {source} (set HILUM_SHARED_DATA)")
    work = Path(tempfile.mkdtemp(prefix="hilum_scan_scale_"))
    try:
        root = Path(args.keep) if args.keep else work / "collection"
        if not root.exists():
            t0 = time.perf_counter()
            n = build_collection(root, args.files, source)
            print(f"built {n} files in {time.perf_counter() - t0:.1f} s under {root}")
        plain_loop(root)  # warm the OS cache (both sides then read from memory)
        loops, loop_cpus, ours = [], [], []
        for r in range(args.rounds):
            loop_s, n, loop_cpu = plain_loop(root)
            loop_cpus.append(loop_cpu)
            res = our_scan(root, work)
            loops.append(loop_s)
            ours.append(res)
            print(
                f"round {r + 1}: pydicom loop {loop_s:.2f} s ({n / loop_s:.0f} files/s, CPU "
                f"{loop_cpu:.2f} s), hilum scan {res['scan_s']:.2f} s ({n / res['scan_s']:.0f} "
                f"files/s, CPU {res['scan_cpu_s']:.2f} s), "
                f"rescan {res['rescan_s']:.2f} s, rss {res['rss_mb']:.0f} MB, "
                f"added {res['added']}, errors {res['errors']}, {res['counts']}"
            )
            if res["added"] != n or res["unchanged"] != n or res["errors"]:
                raise SystemExit("the scan did not index every file exactly once")
        loop_s = statistics.median(loops)
        scan_s = statistics.median(r["scan_s"] for r in ours)
        print(f"load average: {os.getloadavg()}")
        result = {
            "benchmark": "scan_scale",
            "ratio": round(loop_s / scan_s, 3),
            "files_per_s": round(n / scan_s, 1),
            "rescan_s": round(statistics.median(r["rescan_s"] for r in ours), 3),
            "max_rss_mb": round(max(r["rss_mb"] for r in ours), 1),
            "loop_s": round(loop_s, 3),
            "scan_s": round(scan_s, 3),
            "files": n,
            "cpu_ratio": round(
                statistics.median(loop_cpus) / statistics.median(r["scan_cpu_s"] for r in ours), 3
            ),
        }
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
