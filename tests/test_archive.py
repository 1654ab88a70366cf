"""Archive analysis on a REAL local Ray cluster (127.0.0.1, 2 CPUs): outputs identical to the
in-process run, resume from DIR/batch.json, cancel, and a failing study that does not stop the rest.

The archive is made of the shared chest films, each rewritten as its own study (new UIDs), plus a
study whose JPEG 2000 stream is corrupt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from app.archive import BATCH_NAME, analyze_archive, start_ray, stop_ray, study_folder, study_key
from app.cli import main
from app.core.errors import Cancelled
from app.core.progress import CallbackProgress

FILMS = (
    "cxr/cr_chest_pa_jpegls_near_lossless.dcm",
    "cxr/cr_chest_pa_uncompressed.dcm",
    "cxr/dx_chest_pa_j2k_lossless.dcm",
)
BROKEN = "broken/dx_chest_corrupt_j2k_stream.dcm"


def make_archive(
    shared_data: Path,
    folder: Path,
    films: tuple[str, ...] = FILMS,
    broken: bool = True,
    repeat: int = 1,
) -> dict[str, str]:
    """Copy films into ``folder`` as separate studies (new UIDs); returns study UID -> source film."""
    folder.mkdir(parents=True, exist_ok=True)
    studies: dict[str, str] = {}
    sources = list(films) * repeat + ([BROKEN] if broken else [])
    for k, rel in enumerate(sources):
        ds = pydicom.dcmread(shared_data / "dicom" / rel)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / f"film_{k:03d}.dcm", enforce_file_format=True)
        studies[str(ds.StudyInstanceUID)] = rel
    return studies


def normalised(path: Path) -> dict[str, Any]:
    """A results.json without what legitimately differs between runs (times, timings, own path)."""
    doc = json.loads(path.read_text())
    doc.pop("created", None)
    for image in doc["images"]:
        for res in image["results"]:
            res.pop("timings_ms", None)
            res["provenance"].pop("time", None)
    return doc


@pytest.fixture(scope="module")
def archive(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("archive")
    return folder, make_archive(shared_data, folder)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = start_ray("auto", workers=2)
    yield ray
    stop_ray()


def test_ray_outputs_identical_to_local_and_failing_study(
    ray_cluster: Any, archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, studies = archive
    # the runtime is local, on the loopback interface, without a dashboard
    nodes = ray_cluster.nodes()
    assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
    assert ray_cluster.cluster_resources()["CPU"] == 2
    # every socket Ray's processes listen on is on the loopback interface
    import psutil

    # this runtime's processes descend from this test process (ray.init starts the GCS and the
    # raylet, the raylet its workers): another Ray on the machine is not this test's business
    def command(p: Any) -> str:
        try:
            return " ".join([p.name() or "", *(p.cmdline() or [])])
        except psutil.Error:  # exited meanwhile
            return ""

    ray_pids = {
        p.pid
        for p in psutil.Process().children(recursive=True)
        if any(
            k in command(p)
            for k in ("raylet", "gcs_server", "ray::", "ray/_private", "ray/dashboard")
        )
    }
    listening = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in ray_pids
    ]
    assert listening
    assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening
    lines: list[str] = []
    local = analyze_archive([folder], tmp_path / "local", device="cpu", saliency="cam")
    dist = analyze_archive(
        [folder],
        tmp_path / "ray",
        ray_address="auto",
        device="cpu",
        saliency="cam",
        log_step=lines.append,
    )
    assert dist["executor"] == "ray" and local["executor"] == "local"
    assert (
        dist["summary"]
        == local["summary"]
        == {"studies": 4, "done": 3, "failed": 1, "skipped_already_done": 0, "file_errors": 0}
    )
    assert len(lines) == 4
    for uid, rel in studies.items():
        lrec, rrec = local["studies"][uid], dist["studies"][uid]
        assert lrec["status"] == rrec["status"] == ("failed" if rel == BROKEN else "done")
        if rel == BROKEN:
            assert (
                rrec["error"]
                == lrec["error"]
                == "The image data is corrupt and cannot be decoded (JPEG 2000)."
            )
            continue
        sub = study_folder(uid)
        assert normalised(tmp_path / "local" / sub / "results.json") == normalised(
            tmp_path / "ray" / sub / "results.json"
        )
        npys = sorted((tmp_path / "local" / sub / "saliency").glob("*.npy"))
        assert npys
        for f in npys:
            assert np.array_equal(
                np.load(f), np.load(tmp_path / "ray" / sub / "saliency" / f.name), equal_nan=True
            )
    saved = json.loads((tmp_path / "ray" / BATCH_NAME).read_text())
    assert saved["studies"] == dist["studies"]


def test_ray_resume_and_cancel(
    ray_cluster: Any, archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, studies = archive
    out = tmp_path / "out"
    progress: CallbackProgress

    def cancel_after_first(done: int, total: int | None, message: str) -> None:
        if message.startswith("Analysed") and done >= 1:
            progress.cancel()

    progress = CallbackProgress(cancel_after_first)
    with pytest.raises(Cancelled):
        analyze_archive([folder], out, ray_address="auto", device="cpu", progress=progress)
    first = json.loads((out / BATCH_NAME).read_text())["studies"]
    assert 1 <= len(first) < 4
    done_before = {u for u, r in first.items() if r["status"] == "done"}
    stamps = {u: (out / study_folder(u) / "results.json").stat().st_mtime_ns for u in done_before}
    # the rerun skips what is done and finishes the rest
    state = analyze_archive([folder], out, ray_address="auto", device="cpu")
    assert state["summary"]["skipped_already_done"] == len(done_before)
    assert state["summary"]["done"] == 3 and state["summary"]["failed"] == 1
    for u, stamp in stamps.items():
        assert (out / study_folder(u) / "results.json").stat().st_mtime_ns == stamp
    # a study whose outputs were removed is analysed again; the failed one is retried
    again = next(u for u, rel in studies.items() if rel != BROKEN)
    shutil.rmtree(out / study_folder(again))
    state = analyze_archive([folder], out, ray_address="auto", device="cpu")
    assert state["summary"]["skipped_already_done"] == 2
    assert (out / study_folder(again) / "results.json").is_file()


def test_deidentified_archive_keeps_no_original_uid(
    archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, studies = archive
    good = {uid: rel for uid, rel in studies.items() if rel != BROKEN}
    one = next(iter(good))
    src = next(
        f
        for f in folder.glob("*.dcm")
        if str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) == one
    )
    state = analyze_archive([src], tmp_path / "d", device="cpu", deidentify=True)
    assert state["summary"]["done"] == 1
    (key,) = state["studies"]
    assert key == study_key(one, True) and key.startswith("study-") and one not in key
    assert (tmp_path / "d" / key / "results.json").is_file()
    assert one not in (tmp_path / "d" / "batch.json").read_text()


def test_cli_analyze_ray(
    archive: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, studies = archive
    good = [
        f
        for f in sorted(folder.glob("*.dcm"))
        if studies[str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID)] != BROKEN
    ]
    out = tmp_path / "cli"
    # the failing study makes the exit status 1 and is named; the others are done
    assert (
        main(
            [
                "analyze",
                str(folder),
                "--out",
                str(out),
                "--ray",
                "--workers",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "3 of 4 studies done" in captured.out and "cannot be decoded" in captured.err
    assert main(["analyze", *map(str, good), "--out", str(out), "--ray", "auto", "--quiet"]) == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_cluster(temp_dir: str) -> None:
    """`ray stop` for this one cluster: `ray stop` itself ends every Ray process on the machine
    (other developers' too), so end exactly the processes of this cluster's temp dir, by pid."""
    import os

    import psutil

    procs: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.pid != os.getpid() and any(temp_dir in a for a in (p.info["cmdline"] or [])):
                procs[p.pid] = p
                procs.update({c.pid: c for c in p.children(recursive=True)})
        except psutil.Error:
            continue
    for p in procs.values():
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=15)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


def test_cli_analyze_joins_existing_cluster(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--ray 127.0.0.1:PORT` joins a cluster made by `ray start --head` (token authentication on,
    as Ray 2.59+ starts it) and writes the same outputs as a local run."""
    import os
    import subprocess
    import sys
    import tempfile

    stop_ray()  # a runtime of another test in this process
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    folder = tmp_path / "archive"
    studies = make_archive(shared_data, folder, films=FILMS[:2])
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="hray")  # short: Ray's socket paths have a length limit
    # the head on the loopback interface only (Ray rewrites --node-ip-address 127.0.0.1 to the
    # routable address otherwise)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    try:
        started = subprocess.run(
            [ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port)]
            + ["--include-dashboard=false", "--num-cpus", "2", "--temp-dir", temp_dir],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert started.returncode == 0, started.stderr[-2000:]
        assert "Token authentication is enabled" in started.stderr + started.stdout
        local = analyze_archive([folder], tmp_path / "local", device="cpu", saliency="cam")
        out = tmp_path / "joined"
        code = main(
            ["analyze", str(folder), "--out", str(out), "--ray", f"127.0.0.1:{port}"]
            + ["--device", "cpu", "--saliency", "cam", "--quiet"]
        )
        assert code == 1  # the corrupt study
        # the analysis ran as a job of that cluster (on the loopback interface, 2 CPUs)
        ray = start_ray(f"127.0.0.1:{port}")
        assert ray.get_runtime_context().gcs_address == f"127.0.0.1:{port}"
        assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
        assert ray.cluster_resources()["CPU"] == 2
        from ray._private.state import jobs

        assert len(jobs()) == 2  # the CLI's and this check's
        stop_ray()
        joined = json.loads((out / BATCH_NAME).read_text())
        assert joined["executor"] == "ray" and joined["ray_address"] == f"127.0.0.1:{port}"
        assert joined["summary"] == local["summary"]
        assert local["summary"]["done"] == 2 and local["summary"]["failed"] == 1
        for uid, rel in studies.items():
            assert joined["studies"][uid]["status"] == local["studies"][uid]["status"]
            if rel == BROKEN:
                assert joined["studies"][uid]["error"] == local["studies"][uid]["error"]
                continue
            sub = study_folder(uid)
            assert normalised(out / sub / "results.json") == normalised(
                tmp_path / "local" / sub / "results.json"
            )
            for f in sorted((tmp_path / "local" / sub / "saliency").glob("*.npy")):
                assert np.array_equal(np.load(f), np.load(out / sub / "saliency" / f.name))
    finally:
        stop_ray()
        _stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
