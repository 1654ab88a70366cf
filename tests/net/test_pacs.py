"""PACS connectivity against a real Orthanc (tests/net/conftest.py): no mocks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from _orthanc import AE_TITLE, Orthanc, free_port

from app.cli import main
from app.core.errors import (
    NetworkError,
    AssociationRejectedError,
    Cancelled,
    ConnectionFailedError,
    DicomWebError,
    DimseStatusError,
)
from app.core.progress import CallbackProgress
from app.dicom.library import SERIES_KEYS, STUDY_KEYS, Library
from app.net import pacs
from app.net.nodes import LocalSettings, Node, NodeStore


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name != "DIRFILE")


def _uids(files: list[Path]) -> dict[str, Path]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in files}


def _study_uid(folder: Path) -> str:
    return str(pydicom.dcmread(_files(folder)[0], stop_before_pixels=True).StudyInstanceUID)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- nodes -------------------------------------------------------------------------------------------------
def test_nodes_add_list_remove_private(
    hilum_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(
        capsys,
        "pacs",
        "add",
        "main",
        "--host",
        "127.0.0.1",
        "--port",
        "104",
        "--ae-title",
        "MAINPACS",
        "--dicomweb",
        "http://127.0.0.1:8042/dicom-web/",
    )
    assert code == 0 and "MAINPACS@127.0.0.1:104" in out
    path = hilum_home / "config" / "pacs.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _cli(capsys, "pacs", "config", "--ae-title", "MYHILUM", "--port", "11113", "--timeout", "5")
    code, out, _ = _cli(capsys, "pacs", "list", "--json")
    doc = json.loads(out)
    assert doc["local"]["ae_title"] == "MYHILUM" and doc["local"]["port"] == 11113
    assert doc["nodes"][0]["dicomweb"] == "http://127.0.0.1:8042/dicom-web"
    code, _, err = _cli(capsys, "pacs", "add", "x", "--host", "h", "--port", "104")
    assert code == 2 and "needs all of --host, --port and --ae-title" in err
    code, _, err = _cli(
        capsys, "pacs", "add", "x", "--host", "h", "--port", "1", "--ae-title", "A" * 17
    )
    assert code == 2 and "not a valid AE title" in err
    assert _cli(capsys, "pacs", "remove", "main")[0] == 0
    code, _, err = _cli(capsys, "pacs", "echo", "main")
    assert code == 1 and "There is no PACS node called 'main'" in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- echo ------------------------------------------------------------------------------------------------------
def test_echo_dimse_and_dicomweb(node: Any, capsys: pytest.CaptureFixture[str]) -> None:
    n, local = node
    assert pacs.echo(n, local) > 0
    assert pacs.echo(n, local, web_only=True) > 0
    code, out, _ = _cli(capsys, "pacs", "echo", "orthanc")
    assert code == 0 and "C-ECHO OK in" in out
    web_only = NodeStore.load().add(Node("web", dicomweb=n.dicomweb))
    assert pacs.echo(web_only, local) > 0  # a DICOMweb-only node is pinged by QIDO-RS


# -- find ------------------------------------------------------------------------------------------------------
def test_find_study_and_series_levels_with_filters(
    orthanc: Orthanc, node: Any, dicom_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n, local = node
    orthanc.load(dicom_dir / "cxr")
    orthanc.load(dicom_dir / "ct_head_ge")
    ct_uid = _study_uid(dicom_dir / "ct_head_ge")
    ct = pydicom.dcmread(_files(dicom_dir / "ct_head_ge")[0], stop_before_pixels=True)
    cr_uid = str(
        pydicom.dcmread(
            dicom_dir / "cxr" / "cr_chest_pa_uncompressed.dcm", stop_before_pixels=True
        ).StudyInstanceUID
    )

    for use_web in (False, True):
        everything = pacs.find(n, local, use_web=use_web)
        assert ct_uid in {s.study_uid for s in everything.studies}
        only_ct = pacs.find(n, local, modality="CT", use_web=use_web)
        assert [s.study_uid for s in only_ct.studies] == [ct_uid]
        by_id = pacs.find(n, local, patient_id=str(ct.PatientID), use_web=use_web)
        assert ct_uid in {s.study_uid for s in by_id.studies}
        assert all(s.patient_id == str(ct.PatientID) for s in by_id.studies)
        # the CR chest study is dated 20040826 (the CT has no date)
        in_range = pacs.find(n, local, study_date="20040101-20041231", use_web=use_web)
        assert cr_uid in {s.study_uid for s in in_range.studies}
        assert all(s.study_date in ("", "20040826") for s in in_range.studies)
        later = pacs.find(n, local, study_date="20050101-", use_web=use_web)
        assert cr_uid not in {s.study_uid for s in later.studies}
        name = str(ct.PatientName)
        wild = pacs.find(n, local, patient_name=name[:3] + "*", use_web=use_web)
        assert ct_uid in {s.study_uid for s in wild.studies}
        assert cr_uid not in {s.study_uid for s in wild.studies}
        series = pacs.find(n, local, series_of=ct_uid, use_web=use_web)
        assert series.level == "SERIES" and len(series.studies) == 1
        (st,) = series.studies
        assert [s.series_uid for s in st.series] == [str(ct.SeriesInstanceUID)]
        assert st.series[0].instances == 28 and st.series[0].modality == "CT"

    code, out, _ = _cli(capsys, "pacs", "find", "orthanc", "--modality", "CT", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["node"] == "orthanc" and doc["errors"] == []
    assert set(STUDY_KEYS) <= set(doc["studies"][0])
    code, out, _ = _cli(capsys, "pacs", "find", "orthanc", "--series", ct_uid, "--json")
    assert set(SERIES_KEYS) <= set(json.loads(out)["studies"][0]["series"][0])
    code, _, err = _cli(capsys, "pacs", "find", "orthanc", "--study-date", "2024-01-01")
    assert code == 2 and "--study-date must be" in err


# -- retrieve ----------------------------------------------------------------------------------------------------
def _assert_identical(received: dict[str, str], originals: dict[str, Path]) -> None:
    assert set(received) == set(originals)
    for sop, path in received.items():
        got, want = pydicom.dcmread(path), pydicom.dcmread(originals[sop])
        assert np.array_equal(got.pixel_array, want.pixel_array), sop
        assert got.pixel_array.dtype == want.pixel_array.dtype


@pytest.mark.parametrize("method", ["get", "move", "wado"])
def test_retrieve_gives_pixel_identical_instances(
    method: str, orthanc: Orthanc, node: Any, dicom_dir: Path
) -> None:
    """Nine transfer syntaxes of one MR slice (uncompressed LE/BE, RLE, JPEG, JPEG-LS, J2K)."""
    n, local = node
    folder = dicom_dir / "mr_transfer_syntaxes"
    orthanc.load(folder)
    originals = _uids(_files(folder))
    seen: list[dict[str, Any]] = []
    updates: list[tuple[int, int | None]] = []
    rep = pacs.retrieve(
        n,
        local,
        _study_uid(folder),
        method=method,
        on_series=seen.append,
        progress=CallbackProgress(lambda d, t, m: updates.append((d, t))),
    )
    assert rep.received == len(originals) and rep.added == len(originals) and not rep.problems
    assert rep.total == len(originals) and updates[-1] == (len(originals), len(originals))
    assert seen and Path(seen[0]["first_path"]).is_file()
    lib = Library()
    rows = {i["sop_uid"]: i["path"] for i in lib.study_instances(_study_uid(folder))}
    _assert_identical(rows, originals)
    home = Path(os.environ["HILUM_HOME"])
    for path in rows.values():
        assert Path(path).is_relative_to(home / "data")
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600


def test_c_get_without_a_guess_of_the_classes_still_gets_every_instance(
    orthanc: Orthanc, node: Any, dicom_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the study-level query says nothing of the study's modalities, the C-GET offers
    every storage class in the uncompressed syntaxes only: the PACS decompresses what it
    stores compressed (it never compresses), or fails and the exact classes are asked for."""
    from app.net import dimse

    monkeypatch.setattr(dimse, "_likely_classes", lambda *a: [])
    n, local = node
    folder = dicom_dir / "mr_transfer_syntaxes"
    orthanc.load(folder)
    originals = _uids(_files(folder))
    rep = pacs.retrieve(n, local, _study_uid(folder), method="get")
    assert rep.received == rep.added == len(originals) and not rep.problems
    rows = {i["sop_uid"]: i for i in Library().study_instances(_study_uid(folder))}
    assert set(rows) == set(originals)
    for sop, row in rows.items():
        got = pydicom.dcmread(row["path"])
        want = pydicom.dcmread(originals[sop])
        # decompressed by the PACS, or as stored (the exact classes asked for after a failure)
        got_ts, want_ts = got.file_meta.TransferSyntaxUID, want.file_meta.TransferSyntaxUID
        assert got_ts in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", want_ts), sop
        if (
            got_ts == want_ts
            or not want_ts.is_compressed
            or want_ts
            in (
                "1.2.840.10008.1.2.5",
                "1.2.840.10008.1.2.4.80",
                "1.2.840.10008.1.2.4.90",
                "1.2.840.10008.1.2.4.70",
                "1.2.840.10008.1.2.4.57",
            )
        ):  # as stored, or decompressed from a lossless syntax: the same pixels
            assert np.array_equal(got.pixel_array, want.pixel_array), sop


def test_retrieve_is_idempotent_and_cli(
    orthanc: Orthanc, node: Any, dicom_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = dicom_dir / "ct_head_ge"
    orthanc.load(folder)
    uid = _study_uid(folder)
    code, out, _ = _cli(capsys, "pacs", "retrieve", "orthanc", uid)
    assert code == 0 and "retrieved 28 instance(s) by GET (28 new" in out
    lib = Library()
    first = sorted((i["sop_uid"], i["path"]) for i in lib.study_instances(uid))
    code, out, _ = _cli(capsys, "pacs", "retrieve", "orthanc", uid, "--method", "wado", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["received"] == 28 and doc["added"] == 0
    assert sorted((i["sop_uid"], i["path"]) for i in lib.study_instances(uid)) == first
    files = [
        p for p in (Path(os.environ["HILUM_HOME"]) / "data" / "pacs").rglob("*") if p.is_file()
    ]
    assert len(files) == 28


def test_cancelled_retrieve_leaves_library_consistent(
    orthanc: Orthanc, node: Any, dicom_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.net import dimse

    # every pending response reaches the progress (and its cancel) here, not 10 a second: the
    # 28 instances come faster than that
    monkeypatch.setattr(dimse, "PENDING_EVERY_S", 0.0)
    n, local = node
    folder = dicom_dir / "ct_head_ge"
    orthanc.load(folder)
    uid = _study_uid(folder)
    progress = CallbackProgress()
    progress._callback = lambda done, total, msg: progress.cancel() if done >= 3 else None
    with pytest.raises(Cancelled):
        pacs.retrieve(n, local, uid, method="get", progress=progress)
    root = Path(os.environ["HILUM_HOME"]) / "data" / "pacs"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert not [p for p in files if not p.name.endswith(".dcm")]  # no partial file left
    rows = Library().study_instances(uid)
    assert 3 <= len(rows) < 28 and len(rows) == len(files)
    for r in rows:
        pydicom.dcmread(r["path"]).pixel_array  # every indexed instance is complete
    rep = pacs.retrieve(n, local, uid, method="get")  # and a retry completes the study
    assert rep.received == 28 and len(Library().study_instances(uid)) == 28


# -- listener and send ---------------------------------------------------------------------------------------
def test_listener_receives_from_storescu(dicom_dir: Path, hilum_home: Path) -> None:
    port = free_port()
    files = [str(p) for p in _files(dicom_dir / "mr_transfer_syntaxes")[:3]]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "pacs",
            "listen",
            "--port",
            str(port),
            "--ae-title",
            "HILUMLISTEN",
            "--count",
            "3",
            "--seconds",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert "listening as HILUMLISTEN" in (proc.stdout.readline() if proc.stdout else "")
        wrong = subprocess.run(
            ["storescu", "-aet", "DCMTK", "-aec", "WRONGAE", "127.0.0.1", str(port), files[0]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrong.returncode != 0  # the listener refuses a wrong called AE title
        sent = subprocess.run(
            ["storescu", "-aet", "DCMTK", "-aec", "HILUMLISTEN", "127.0.0.1", str(port), *files],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "received 3 instance(s), 3 new in the library" in out
    lib = Library()
    assert set(_uids([Path(f) for f in files])) <= {
        i["sop_uid"] for s in lib.studies() for i in lib.study_instances(s["study_uid"])
    }


def test_analysis_outputs_sent_and_found_in_orthanc(
    orthanc: Orthanc, node: Any, dicom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, err = _cli(
        capsys,
        "analyze",
        str(dicom_dir / "cxr" / "cr_chest_pa_uncompressed.dcm"),
        "--out",
        str(out),
        "--saliency",
        "cam",
        "--device",
        "cpu",
        "--quiet",
        "--send",
        "orthanc",
    )
    assert code == 0, err
    sent = sorted((out / "dicom").glob("*.dcm"))
    classes = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPClassUID) for f in sent}
    assert "1.2.840.10008.5.1.4.1.1.104.1" in classes  # Encapsulated PDF
    assert any(c.startswith("1.2.840.10008.5.1.4.1.1.88.") for c in classes)  # SR
    assert any(c.startswith("1.2.840.10008.5.1.4.1.1.7") for c in classes)  # SC (key image)
    assert f"sent {len(sent)} of {len(sent)} file(s) to orthanc" in stdout
    for f in sent:
        assert orthanc.find_instance(
            str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        )
    # STOW-RS too, and a per-file sentence for a file that is not DICOM, or is cut short
    junk = tmp_path / "notes.dcm"
    junk.write_text("not dicom")
    truncated = _truncated_copy(sent[-1], tmp_path)
    n, local = node
    items = pacs.send(n, local, [str(sent[0]), str(junk), str(truncated)], use_web=True)
    assert items[0].ok and not items[1].ok and "Not a DICOM file" in items[1].message
    assert not items[2].ok and items[2].message.startswith("The file is truncated")
    assert not orthanc.find_instance(
        str(pydicom.dcmread(truncated, stop_before_pixels=True).SOPInstanceUID)
    )


def _truncated_copy(path: Path, folder: Path) -> Path:
    """A copy of a DICOM file with a new SOP instance UID, cut short inside its image data."""
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = folder / "truncated.dcm"
    ds.save_as(out, enforce_file_format=True)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 1000])
    return out


# -- failures: one sentence each ----------------------------------------------------------------------------
def test_stopped_pacs_wrong_ae_wrong_port(node: Any, orthanc: Orthanc) -> None:
    n, local = node
    stopped = Orthanc().start()
    port, web = stopped.dicom_port, stopped.dicomweb
    stopped.cleanup()
    dead = Node("stopped", "127.0.0.1", port, AE_TITLE, web)
    with pytest.raises(ConnectionFailedError) as exc:
        pacs.echo(dead, local)
    assert str(exc.value) == (
        f"stopped ({AE_TITLE} at 127.0.0.1:{port}) refused the connection: "
        f"nothing is listening on port {port} (the PACS is stopped, or the "
        f"port is wrong)."
    )
    with pytest.raises(
        ConnectionFailedError, match=r"cannot be reached at .* \(the server is stopped"
    ):
        pacs.echo(dead, local, web_only=True)

    wrong_ae = Node("wrongae", "127.0.0.1", orthanc.dicom_port, "NOTORTHANC")
    with pytest.raises(AssociationRejectedError) as exc:
        pacs.find(wrong_ae, local)
    assert "rejected the association: Called AE title not recognised" in str(exc.value)
    assert "check the node's AE title (NOTORTHANC)" in str(exc.value)

    wrong_port = Node("wrongport", "127.0.0.1", free_port(), AE_TITLE)
    with pytest.raises(ConnectionFailedError, match="nothing is listening on port"):
        pacs.retrieve(wrong_port, local, "1.2.3", method="get")
    assert Library().studies() == []


def test_dimse_status_and_http_status_sentences(
    node: Any, orthanc: Orthanc, dicom_dir: Path
) -> None:
    n, local = node
    orthanc.load(dicom_dir / "mr_transfer_syntaxes")
    unknown = LocalSettings(ae_title="NOBODY", port=free_port(), timeout_s=20.0)
    with pytest.raises(DimseStatusError) as exc:
        pacs.retrieve(n, unknown, _study_uid(dicom_dir / "mr_transfer_syntaxes"), method="move")
    # Orthanc 1.10 answers an unknown move destination with 0xC000 (cannot understand)
    assert str(exc.value) == (
        f"orthanc (ORTHANC at 127.0.0.1:{n.port}) answered the C-MOVE with "
        f"status 0xC000 (the PACS cannot understand the request)."
    )
    assert exc.value.status == 0xC000
    bad_url = Node("badurl", dicomweb=orthanc.url + "/no-such-dicomweb")
    with pytest.raises(DicomWebError, match=r"answered the QIDO-RS search with HTTP 404"):
        pacs.find(bad_url, local)


def test_silent_port_times_out_and_http_port_is_not_dicom(node: Any, orthanc: Orthanc) -> None:
    """A port that accepts TCP but never speaks DICOM, and Orthanc's HTTP port given as DIMSE."""
    import socket

    from app.core.errors import (
        AssociationAbortedError,
        NetworkError,
        NetworkTimeoutError,
    )

    n, local = node
    quick = LocalSettings(ae_title=local.ae_title, port=local.port, timeout_s=1.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        t0 = time.perf_counter()
        with pytest.raises(NetworkTimeoutError) as exc:
            pacs.echo(Node("silent", "127.0.0.1", port, AE_TITLE), quick)
        assert time.perf_counter() - t0 < 10
    assert str(exc.value) == (
        f"silent ({AE_TITLE} at 127.0.0.1:{port}) accepted the connection but "
        f"did not answer the DICOM association request within 1 s (is it a "
        f"DICOM port?)."
    )
    http = Node("http", "127.0.0.1", orthanc.http_port, AE_TITLE)
    with pytest.raises(NetworkError) as exc2:
        pacs.echo(http, quick)
    assert isinstance(exc2.value, (AssociationAbortedError, ConnectionFailedError))
    assert str(exc2.value).startswith(f"http ({AE_TITLE} at 127.0.0.1:{orthanc.http_port})")
    assert str(exc2.value).endswith(
        "aborted the association request (is it a DICOM port, or does it need TLS?)."
    )


def test_refused_instance_reported_per_file(
    node: Any, orthanc: Orthanc, dicom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Orthanc is configured not to take deflated data sets: that file is refused, the rest sent."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    src = _files(dicom_dir / "mr_transfer_syntaxes")[0]
    deflated = tmp_path / "deflated.dcm"
    ds = pydicom.dcmread(src)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(deflated, enforce_file_format=True)
    junk = tmp_path / "notes.txt"
    junk.write_text("not dicom")
    truncated = _truncated_copy(src, tmp_path)
    code, out, err = _cli(
        capsys, "pacs", "send", "orthanc", str(src), str(deflated), str(junk), str(truncated)
    )
    assert code == 1
    assert "sent 1 of 4 file(s) to orthanc" in out
    lines = err.splitlines()
    assert (
        f"hilum: {deflated}: orthanc does not accept MR Image Storage in "
        f"Deflated Explicit VR Little Endian"
    ) in lines
    assert f"hilum: {junk}: Not a DICOM file (no DICOM header found). Not sent." in lines
    assert any(
        line.startswith(f"hilum: {truncated}: The file is truncated: its image data ends early")
        for line in lines
    )
    assert not orthanc.find_instance(str(ds.SOPInstanceUID))
    assert not orthanc.find_instance(
        str(pydicom.dcmread(truncated, stop_before_pixels=True).SOPInstanceUID)
    )
    assert orthanc.find_instance(str(pydicom.dcmread(src, stop_before_pixels=True).SOPInstanceUID))


@pytest.mark.parametrize("method", ["get", "move"])
def test_pending_responses_reach_the_retrieve_at_most_ten_times_a_second(
    orthanc: Orthanc,
    node: Any,
    dicom_dir: Path,
    method: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Progress comes from the PACS's pending responses, one per instance; the thread following
    the retrieve gets one every PENDING_EVERY_S at most (and the final one), with counts that
    are totals so far."""
    from pynetdicom.dimse_messages import C_GET_RSP, C_MOVE_RSP

    from app.net import dimse

    converted: list[int] = []  # pending responses converted to primitives (pynetdicom)
    for cls in (C_GET_RSP, C_MOVE_RSP):
        real = cls.message_to_primitive
        monkeypatch.setattr(
            cls, "message_to_primitive", lambda self, real=real: converted.append(1) or real(self)
        )
    n, local = node
    folder = dicom_dir / "ct_head_ge"
    orthanc.load(folder)
    seen: list[tuple[int, int | None]] = []
    progress = CallbackProgress()
    progress._callback = lambda done, total, msg: seen.append((done, total))
    t0 = time.monotonic()
    rep = pacs.retrieve(n, local, _study_uid(folder), method=method, progress=progress)
    elapsed = time.monotonic() - t0
    assert rep.received == rep.total == 28 and not rep.problems
    assert seen[-1] == (28, 28)
    # the final status, the first pending one, then one per PENDING_EVERY_S at most
    assert len(seen) <= 3 + elapsed / dimse.PENDING_EVERY_S < 28
    # the others were left out as soon as pydicom had decoded their status
    assert len(converted) == len(seen) - 1  # the final progress is the retrieve's own


def test_a_retrieve_takes_the_long_lived_heap_out_of_full_collections_once(
    orthanc: Orthanc, node: Any, dicom_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector's full passes, in the middle of a transfer, walk the whole heap: a
    retrieve freezes what is alive once per process (a window froze its start-up heap)."""
    from app.core import startup

    script = (
        "import gc\n"
        "from app.core import startup\n"
        "first = startup.freeze_long_lived_heap()\n"
        "frozen = gc.get_freeze_count()\n"
        "print(first, frozen > 1000, startup.freeze_long_lived_heap(), gc.get_freeze_count() == frozen)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["True", "True", "False", "True"]

    calls: list[bool] = []
    monkeypatch.setattr(startup, "freeze_long_lived_heap", lambda: calls.append(True) or False)
    n, local = node
    folder = dicom_dir / "ct_head_ge"
    orthanc.load(folder)
    assert pacs.retrieve(n, local, _study_uid(folder)).received == 28
    assert len(calls) == 1


def test_move_uses_the_listener_already_running(
    node: Any, orthanc: Orthanc, dicom_dir: Path
) -> None:
    """With the GUI's background listener on Hilum's port, C-MOVE lands there (no second bind)."""
    from app.net.dimse import Listener
    from app.net.filing import Filer

    n, local = node
    folder = dicom_dir / "mr_transfer_syntaxes"
    orthanc.load(folder)
    filer = Filer()
    with Listener(local, filer=filer):
        rep = pacs.retrieve(n, local, _study_uid(folder), method="move")
    frep = filer.close()
    assert rep.received == 9 and frep.received == 9 and frep.added == 9
    assert len(Library().study_instances(_study_uid(folder))) == 9


def test_tls_node(node: Any, dicom_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second Orthanc with DICOM TLS (self-signed certificate for 127.0.0.1)."""
    _, local = node
    tls = Orthanc(tls=True).start()
    try:
        code, out, err = _cli(
            capsys,
            "pacs",
            "add",
            "secure",
            "--host",
            "127.0.0.1",
            "--port",
            str(tls.dicom_port),
            "--ae-title",
            AE_TITLE,
            "--tls-ca",
            str(tls.cert),
        )
        assert code == 0, err
        secure = NodeStore.load().get("secure")
        assert secure.tls and pacs.echo(secure, local) > 0
        tls.load(dicom_dir / "mr_transfer_syntaxes")
        assert [s.study_uid for s in pacs.find(secure, local).studies] == [
            _study_uid(dicom_dir / "mr_transfer_syntaxes")
        ]
        # C-GET over TLS: the event-driven reactor reads an SSL socket the plain way
        folder = dicom_dir / "mr_transfer_syntaxes"
        rep = pacs.retrieve(secure, local, _study_uid(folder), method="get")
        originals = _uids(_files(folder))
        assert rep.received == len(originals) and not rep.problems
        rows = {i["sop_uid"]: i["path"] for i in Library().study_instances(_study_uid(folder))}
        _assert_identical(rows, originals)
        plain = Node("plain", "127.0.0.1", tls.dicom_port, AE_TITLE)
        quick = LocalSettings(local.ae_title, local.port, 3.0)
        with pytest.raises(NetworkError) as exc:
            pacs.echo(plain, quick)
        assert str(exc.value) == (
            f"plain ({AE_TITLE} at 127.0.0.1:{tls.dicom_port}) aborted the "
            f"association request (is it a DICOM port, or does it need TLS?)."
        )
        untrusted = Node("untrusted", "127.0.0.1", tls.dicom_port, AE_TITLE, tls=True)
        with pytest.raises(ConnectionFailedError) as exc2:
            pacs.echo(untrusted, quick)  # the self-signed certificate is not trusted
        assert str(exc2.value).startswith(
            f"The TLS certificate of untrusted ({AE_TITLE} at "
            f"127.0.0.1:{tls.dicom_port}) is not trusted ("
        )
        assert "--tls-ca FILE" in str(exc2.value)
    finally:
        tls.cleanup()


def test_filer_indexes_a_series_first_instance_at_once_and_the_rest_in_batches(
    dicom_dir: Path, hilum_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The viewer gets the first instance of a series at once; the others are indexed together
    (one transaction) when the transfer ends, or after FLUSH_S while a listener keeps running."""
    from app.net import filing

    monkeypatch.setattr(filing, "FLUSH_S", 0.3)
    files = _files(dicom_dir / "ct_head_ge")[:6]
    lib = Library()
    firsts: list[dict[str, Any]] = []
    filer = filing.Filer(lib, on_series=firsts.append)
    try:
        for f in files:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            filer.file_parts(
                [f.read_bytes()[:64], memoryview(f.read_bytes())[64:]],
                str(ds.StudyInstanceUID),
                str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID),
            )
        deadline = time.monotonic() + 10
        while not firsts and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(firsts) == 1  # one series: reported once, with its first file
        assert Path(firsts[0]["first_path"]).read_bytes() == files[0].read_bytes()
        while (
            len(lib.instances(str(firsts[0]["series_uid"]))) < len(files)
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)  # the batch comes after FLUSH_S, without closing the filer
        assert len(lib.instances(str(firsts[0]["series_uid"]))) == len(files)
    finally:
        report = filer.close()
    assert report.received == report.added == len(files) and not report.errors


def test_flush_indexes_what_is_written_at_once(
    dicom_dir: Path, hilum_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the end of a transfer the batch is indexed at once (while the association closes),
    not FLUSH_S later."""
    from app.net import filing

    monkeypatch.setattr(filing, "FLUSH_S", 60.0)
    files = _files(dicom_dir / "ct_head_ge")[:4]
    lib = Library()
    with filing.Filer(lib) as filer:
        for f in files:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            filer.file_bytes(
                f.read_bytes(),
                str(ds.StudyInstanceUID),
                str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID),
            )
        series = str(ds.SeriesInstanceUID)
        filer.flush()
        deadline = time.monotonic() + 10
        while len(lib.instances(series)) < len(files) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(lib.instances(series)) == len(files)  # long before FLUSH_S
    assert filer.report.added == len(files)


def test_the_listener_does_not_collect_garbage_as_it_polls(
    hilum_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pynetdicom's server runs gc.collect() every 60 looks of its loop: with a C-MOVE's 1 ms
    poll, a full collection every 60 ms in the middle of the transfer."""
    import gc

    from _orthanc import free_port

    from app.net.dimse import Listener
    from app.net.nodes import LocalSettings

    calls: list[int] = []
    real = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(1) or real(*a))
    listener = Listener(LocalSettings("HILUMGC", free_port(), 5.0), poll_s=0.001).start()
    try:
        time.sleep(0.3)  # ~300 looks
    finally:
        listener.stop()
    assert not calls


def test_full_pacs_refuses_with_0xA700_out_of_resources(
    dicom_dir: Path, hilum_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A genuine 0xA700 from Orthanc: storage limited to one patient, that patient protected
    from recycling, so a second patient's instance cannot be stored."""
    full = Orthanc(extra={"MaximumPatientCount": 1})
    full.start()
    try:
        (sid,) = full.upload(_files(dicom_dir / "cxr")[:1])
        patient = full.get(f"/studies/{sid}")["ParentPatient"]
        full._req("PUT", f"/patients/{patient}/protected", b"1", "text/plain")
        store = NodeStore.load()
        store.add(
            Node(
                "full",
                host="127.0.0.1",
                port=full.dicom_port,
                ae_title=AE_TITLE,
                dicomweb=full.dicomweb,
            )
        )
        store.save()
        other = _files(dicom_dir / "ct_head_ge")[0]
        code, out, err = _cli(capsys, "pacs", "send", "full", str(other))
        assert code == 1
        assert "sent 0 of 1 file(s) to full" in out
        assert (
            f"hilum: {other}: refused with status 0xA700 (refused: out of resources)"
            in err.splitlines()
        )
        # STOW-RS: Orthanc's plugin answers 200 with neither sequence filled; not taken as stored
        n, local = pacs.load("full")
        (item,) = pacs.send(n, local, [str(other)], use_web=True)
        assert not item.ok and item.message == (
            "full did not confirm storing it (the STOW-RS "
            "response lists it neither as stored nor as failed)"
        )
        sop = str(pydicom.dcmread(other, stop_before_pixels=True).SOPInstanceUID)
        assert not full.find_instance(sop)
    finally:
        full.cleanup()


@pytest.mark.parametrize(
    ("sop_class", "sop_uid", "syntax"),
    [
        (
            "1.2.840.10008.5.1.4.1.1.2",
            "1.3.46.670589.11.0.0.11.4.2.0.8743.5.5396.20061201143",
            "1.2.840.10008.1.2.1",
        ),
        ("1.2.840.10008.5.1.4.1.1.4", "1.2.3", "1.2.840.10008.1.2"),
        (
            "1.2.840.10008.5.1.4.1.1.7",
            "2.25.1234567890123456789012345678901234567",
            "1.2.840.10008.1.2.4.50",
        ),
    ],
)
def test_file_meta_is_what_pydicom_writes_for_a_received_data_set(
    sop_class: str, sop_uid: str, syntax: str
) -> None:
    """The file meta before a received data set: byte for byte pydicom's write_file_meta_info
    of the dataset pynetdicom's Event.encoded_dataset builds (odd and even UID lengths)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import UID
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

    from app.net.filing import file_meta

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
    buf = DicomBytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta)
    assert file_meta(sop_class, sop_uid, syntax) == buf.getvalue()
    assert file_meta(sop_class, "1.2.3.4", syntax) != buf.getvalue()  # per instance


def test_c_store_responses_are_the_ones_pynetdicom_sends() -> None:
    """One pynetdicom message per association, its command set updated per response: every
    response's PDVs are byte for byte those of pynetdicom's send_msg (UIDs of odd and even
    lengths, another SOP class, a failure status, a small maximum PDU)."""
    from types import SimpleNamespace

    from pynetdicom.dimse_messages import C_STORE_RSP
    from pynetdicom.dimse_primitives import C_STORE

    from app.net.dimse import _StoreResponses

    sent: list[Any] = []
    provider = SimpleNamespace(maximum_pdu_size=16384, dul=SimpleNamespace(send_pdu=sent.append))
    responses = _StoreResponses(SimpleNamespace(dimse=provider))
    ct, mr = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
    cases = [
        (1, ct, "1.2.3.4.5", 0x0000, 1, 16384),
        (2, ct, "1.2.3.4.56", 0x0000, 1, 16384),
        (3, mr, "2.25.123456789012345678901234567890", 0x0000, 3, 16384),
        (70000 % 65536, mr, "1.2.3", 0xA700, 3, 16384),
        (5, ct, "1.2.840.99999.1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20", 0xC000, 5, 40),
    ]
    for msg_id, cls, sop, status, cx_id, max_pdu in cases:
        provider.maximum_pdu_size = max_pdu
        req = C_STORE()
        req.MessageID = msg_id
        req.AffectedSOPClassUID = cls
        req.AffectedSOPInstanceUID = sop
        req.Priority = 2
        sent.clear()
        responses.send(req, status, cx_id)
        rsp = C_STORE()
        rsp.MessageIDBeingRespondedTo = msg_id
        rsp.AffectedSOPClassUID = cls
        rsp.AffectedSOPInstanceUID = sop
        rsp.Status = status
        want = C_STORE_RSP()
        want.primitive_to_message(rsp)
        expected = [p.presentation_data_value_list for p in want.encode_msg(cx_id, max_pdu)]
        assert [p.presentation_data_value_list for p in sent] == expected, (msg_id, sop)


@pytest.mark.parametrize("write_behind", [False, True])
def test_a_received_data_set_is_filed_as_it_came_and_indexed_without_reading_it_back(
    dicom_dir: Path, hilum_home: Path, monkeypatch: pytest.MonkeyPatch, write_behind: bool
) -> None:
    """Filer.receive (every C-STORE): the file is pydicom's file meta, then the data set's
    bytes unchanged; the header read from memory files and indexes it (the library does not
    read the file back); bytes that are no data set are refused, never stored."""
    from pydicom.filereader import read_file_meta_info

    from app.dicom import library as library_mod
    from app.net.filing import Filer

    files = _files(dicom_dir / "ct_head_ge")[:5] + _files(dicom_dir / "mr_transfer_syntaxes")
    read_back: list[str] = []
    real = library_mod.fast_header
    monkeypatch.setattr(
        library_mod, "fast_header", lambda p, t: read_back.append(str(p)) or real(p, t)
    )
    expected = {}
    with Filer(Library(), write_behind=write_behind) as filer:
        for f in files:
            meta = read_file_meta_info(f)
            data = f.read_bytes()
            body = data[data.index(b"DICM") + 4 + 12 + meta.FileMetaInformationGroupLength :]
            expected[str(meta.MediaStorageSOPInstanceUID)] = (meta, body)
            filer.receive(
                memoryview(body),
                str(meta.MediaStorageSOPClassUID),
                str(meta.MediaStorageSOPInstanceUID),
                str(meta.TransferSyntaxUID),
            )
    assert filer.report.received == filer.report.added == len(files), filer.report.errors
    assert not filer.report.errors
    rows = {
        r["sop_uid"]: r for r in Library().study_instances(_study_uid(dicom_dir / "ct_head_ge"))
    }
    for folder in ("mr_transfer_syntaxes",):
        rows.update(
            {r["sop_uid"]: r for r in Library().study_instances(_study_uid(dicom_dir / folder))}
        )
    assert set(rows) == set(expected)
    for sop, (meta, body) in expected.items():
        stored = Path(rows[sop]["path"])
        assert stored.read_bytes().endswith(body) and stat.S_IMODE(stored.stat().st_mode) == 0o600
        got = read_file_meta_info(stored)
        for kw in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"):
            assert got[kw].value == meta[kw].value
        ds = pydicom.dcmread(stored)
        assert ds.SOPInstanceUID == sop and rows[sop]["transfer_syntax"] == meta.TransferSyntaxUID
    # deflated and big endian data sets take pydicom's path; the others are never read back
    slow = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}
    assert sorted(read_back) == sorted(
        rows[sop]["path"] for sop, (meta, _) in expected.items() if meta.TransferSyntaxUID in slow
    )

    junk = b"\x08\x00\x05\x00\xff\xff\xff\x7fnot DICOM at all" * 3
    with Filer(Library(), write_behind=write_behind) as filer:
        if write_behind:
            filer.receive(junk, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1")
        else:
            with pytest.raises(ValueError):
                filer.receive(junk, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1")
    assert filer.report.received == 0
    if write_behind:
        assert filer.report.errors == [
            {
                "path": "instance 1.2.3.4",
                "error": "The instance received cannot be read as DICOM; it was not stored.",
            }
        ]


def test_write_behind_filer_writes_everything_by_close_and_reports_what_it_cannot(
    dicom_dir: Path, hilum_home: Path, tmp_path: Path
) -> None:
    """Retrieves write on a thread of their own; close() waits for every file, and a file that
    cannot be written is a problem in the report, not an instance."""
    from app.net.filing import Filer

    files = _files(dicom_dir / "ct_head_ge")[:4]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    with Filer(Library(), root=tmp_path / "ok", write_behind=True) as filer:
        for f, ds in zip(files, headers):
            filer.file_parts(
                [memoryview(f.read_bytes())],
                str(ds.StudyInstanceUID),
                str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID),
            )
    assert filer.report.received == filer.report.added == 4 and not filer.report.errors
    for f, ds in zip(files, headers):
        got = filer.path_for(
            str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
        )
        assert got.read_bytes() == f.read_bytes()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    with Filer(Library(), root=blocked, write_behind=True) as filer:
        ds = headers[0]
        filer.file_parts(
            [files[0].read_bytes()],
            str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID),
            str(ds.SOPInstanceUID),
        )
    assert filer.report.received == 0 and len(filer.report.errors) == 1
    assert filer.report.errors[0]["error"].startswith("The instance could not be written to disk")


def test_associations_disable_nagle(node: Any) -> None:
    """Every association Hilum opens has TCP_NODELAY (pynetdicom leaves Nagle's algorithm on,
    which costs a delayed ACK, ~40 ms, per C-FIND response)."""
    import socket

    from app.net import dimse

    n, local = node
    ae = dimse._new_ae(local)
    ae.add_requested_context(dimse._VERIFICATION)
    assoc = dimse.associate(n, local, ae)
    try:
        sock = assoc.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        assoc.release()
