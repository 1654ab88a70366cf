"""The study library and ``hilum scan`` on the real shared data (counts per its README)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from app.cli import main as cli_main
from app.core.errors import Cancelled, PixelDecodeError
from app.core.progress import CallbackProgress
from app.dicom.library import SERIES_KEYS, STUDY_KEYS, Library, ScanReport
from app.dicom.pixels import frame_array
from app.dicom.series import GEOMETRY_KEYS


def _by_dir(report: ScanReport, lib: Library, dicom_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Studies keyed by the data sub-folder of their first instance."""
    out: dict[str, list[dict[str, Any]]] = {}
    for study in report.studies:
        first = lib.instances(study["series"][0]["series_uid"])[0]["path"]
        sub = Path(first).relative_to(dicom_dir).parts[0]
        out.setdefault(sub, []).append(study)
    return out


@pytest.fixture(scope="module")
def full_scan(
    dicom_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Library, ScanReport]:
    """The whole shared DICOM folder scanned once into a fresh library."""
    lib = Library(tmp_path_factory.mktemp("lib") / "library.sqlite")
    return lib, lib.scan([dicom_dir])


def test_counts_and_grouping_match_the_data_readme(
    full_scan: tuple[Library, ScanReport], dicom_dir: Path
) -> None:
    lib, report = full_scan
    groups = _by_dir(report, lib, dicom_dir)
    # cxr: two studies (the CR film in two encodings = one series of 2, the DX film)
    assert len(groups["cxr"]) == 2
    cxr = sorted((s["series"][0]["modality"], s["series"][0]["instances"]) for s in groups["cxr"])
    assert cxr == [("CR", 2), ("DX", 1)]
    expected = {
        "ct_head_ge": ("CT", 28, 512),
        "ct_phantom_philips": ("CT", 140, 512),
        "mr_sag_mprage": ("MR", 192, 256),
        "mr_transfer_syntaxes": ("MR", 9, 384),
    }
    for sub, (modality, count, size) in expected.items():
        assert len(groups[sub]) == 1, sub
        series = groups[sub][0]["series"]
        assert len(series) == 1, sub
        s = series[0]
        assert (s["modality"], s["instances"], s["frames"], s["rows"], s["columns"]) == (
            modality,
            count,
            count,
            size,
            size,
        ), sub
    # the broken copies never become studies of their own
    assert "broken" not in groups
    assert len(report.studies) == 6
    assert lib.counts()["instances"] == 2 + 1 + 28 + 140 + 192 + 9
    # the nine encodings of the MR slice are listed (7 distinct transfer syntaxes)
    ts = groups["mr_transfer_syntaxes"][0]["series"][0]["transfer_syntaxes"]
    assert "1.2.840.10008.1.2.2" in ts and "1.2.840.10008.1.2.4.90" in ts and len(ts) == 7


def test_every_broken_file_gives_exactly_one_clear_error(
    full_scan: tuple[Library, ScanReport],
) -> None:
    _, report = full_scan
    by_name = {}
    for err in report.errors:
        name = Path(err["path"]).name
        assert name not in by_name, f"two errors for {name}"
        by_name[name] = err["error"]
    assert set(by_name) == {
        "empty.dcm",
        "not_dicom.dcm",
        "cr_chest_truncated.dcm",
        "dx_chest_corrupt_j2k_stream.dcm",
    }
    assert by_name["empty.dcm"] == "The file is empty (0 bytes)."
    assert by_name["not_dicom.dcm"] == "Not a DICOM file (no DICOM header found)."
    assert by_name["cr_chest_truncated.dcm"].startswith("The file is truncated")
    assert "cannot be decoded (JPEG 2000)" in by_name["dx_chest_corrupt_j2k_stream.dcm"]
    for message in by_name.values():
        assert "Traceback" not in message and "\n" not in message


def test_duplicate_uid_keeps_the_decodable_copy_in_either_order(
    dicom_dir: Path, tmp_path: Path
) -> None:
    good = dicom_dir / "cxr" / "dx_chest_pa_j2k_lossless.dcm"
    bad = dicom_dir / "broken" / "dx_chest_corrupt_j2k_stream.dcm"
    for i, order in enumerate(([bad, good], [good, bad])):
        lib = Library(tmp_path / f"lib{i}.sqlite")
        report = lib.scan(order)
        assert len(report.studies) == 1
        series = report.studies[0]["series"][0]
        kept = lib.instances(series["series_uid"])
        assert [Path(k["path"]) for k in kept] == [good]
        assert [Path(e["path"]).name for e in report.errors] == [bad.name]
        assert "SOP Instance UID" in report.errors[0]["error"]
        frame_array(kept[0]["path"])  # the kept copy decodes


def test_identical_copy_is_deduplicated_silently(dicom_dir: Path, tmp_path: Path) -> None:
    src = dicom_dir / "mr_transfer_syntaxes" / "1.dcm"
    copy = tmp_path / "copy" / "same.dcm"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([src, copy])
    assert report.errors == []
    assert report.duplicates == 1
    assert lib.counts()["instances"] == 1


def test_rescan_is_idempotent(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    first = lib.scan([dicom_dir / "ct_head_ge"])
    second = lib.scan([dicom_dir / "ct_head_ge"])
    assert first.added == 28 and second.added == 0 and second.unchanged == 28
    assert first.to_json() == second.to_json()
    assert lib.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 28}


def test_dicomdir_is_an_index_not_an_instance(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([dicom_dir / "ct_phantom_philips" / "DIRFILE"])  # the DICOMDIR alone
    assert report.errors == []
    assert len(report.studies) == 1
    series = report.studies[0]["series"]
    assert len(series) == 1 and series[0]["instances"] == 140
    folder = Library(tmp_path / "lib2.sqlite").scan([dicom_dir / "ct_phantom_philips"])
    assert folder.studies[0]["series"][0]["instances"] == 140  # DIRFILE not counted
    assert folder.files == 141 and folder.errors == []


def test_zip_scans_like_the_folder(dicom_dir: Path, tmp_path: Path, hilum_home: Path) -> None:
    archive = tmp_path / "head.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in sorted((dicom_dir / "ct_head_ge").iterdir()):
            zf.write(f, f"study/ct_head_ge/{f.name}")
    from_zip = Library(tmp_path / "a.sqlite")
    zrep = from_zip.scan([archive])
    frep = Library(tmp_path / "b.sqlite").scan([dicom_dir / "ct_head_ge"])
    assert zrep.errors == []
    assert zrep.to_json() == frep.to_json()
    inst = from_zip.instances(zrep.studies[0]["series"][0]["series_uid"])
    assert len(inst) == 28
    assert inst[0]["source"].startswith(str(archive) + "!study/ct_head_ge/")
    assert Path(inst[0]["path"]).is_relative_to(hilum_home)  # extracted into the cache
    assert frame_array(inst[0]["path"]).shape == (512, 512)  # pixels load later
    again = from_zip.scan([archive])
    assert again.added == 0 and again.unchanged == 28


def test_broken_files_beside_good_ones(dicom_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for f in (dicom_dir / "broken").iterdir():
        shutil.copy(f, folder / f.name)
    for f in (dicom_dir / "mr_transfer_syntaxes").iterdir():
        shutil.copy(f, folder / f"mr_{f.name}")
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([folder])
    names = {Path(e["path"]).name for e in report.errors}
    assert names == {"empty.dcm", "not_dicom.dcm", "cr_chest_truncated.dcm"}
    mr = [s for s in report.studies if s["series"][0]["modality"] == "MR"]
    assert mr and mr[0]["series"][0]["instances"] == 9
    # the corrupt JPEG 2000 file has a valid header: it is indexed, and its pixels fail clearly
    dx = [s for s in report.studies if s["series"][0]["modality"] == "DX"]
    inst = lib.instances(dx[0]["series"][0]["series_uid"])
    with pytest.raises(PixelDecodeError, match=r"corrupt and cannot be decoded \(JPEG 2000\)"):
        frame_array(inst[0]["path"])
    for item in lib.instances(mr[0]["series"][0]["series_uid"]):
        assert frame_array(item["path"]).shape == (384, 384)


def test_missing_path_is_an_error_entry(tmp_path: Path) -> None:
    report = Library(tmp_path / "lib.sqlite").scan([tmp_path / "nope"])
    assert report.errors == [{"path": str(tmp_path / "nope"), "error": "The path does not exist."}]


def test_on_series_fires_before_the_scan_ends(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    seen: list[dict[str, Any]] = []
    updates: list[tuple[int, int | None]] = []

    def on_series(info: dict[str, Any]) -> None:
        # a second connection (as the GUI thread would have) already sees the series
        other = Library(lib.path)
        seen.append({**info, "visible": len(other.instances(info["series_uid"]))})

    progress = CallbackProgress(lambda d, t, m: updates.append((d, t)))
    report = lib.scan([dicom_dir / "mr_sag_mprage"], progress=progress, on_series=on_series)
    assert len(seen) == 1
    assert seen[0]["visible"] == 1 and seen[0]["modality"] == "MR"
    assert os.path.isfile(seen[0]["first_path"])
    assert report.studies[0]["series"][0]["instances"] == 192
    counted = [u for u in updates if u[1]]
    assert counted[-1][0] == counted[-1][1] == 192
    assert [d for d, _ in counted] == sorted(d for d, _ in counted)


def test_cancel_stops_the_scan_and_keeps_what_was_indexed(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    progress = CallbackProgress()
    calls = {"n": 0}

    def on_update(done: int, total: int | None, message: str) -> None:
        calls["n"] += 1
        if done >= 20:
            progress.cancel()

    progress._callback = on_update
    with pytest.raises(Cancelled):
        lib.scan([dicom_dir / "mr_sag_mprage"], progress=progress)
    partial = lib.counts()["instances"]
    assert 1 <= partial < 192
    report = lib.scan([dicom_dir / "mr_sag_mprage"])
    assert report.studies[0]["series"][0]["instances"] == 192 and report.unchanged == partial


def test_library_is_usable_from_several_threads(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    errors: list[BaseException] = []
    reports: list[ScanReport] = []

    def worker() -> None:
        try:
            reports.append(lib.scan([dicom_dir / "ct_head_ge", dicom_dir / "mr_transfer_syntaxes"]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    while t.is_alive():  # the "GUI thread" reads while the worker writes
        for study in lib.studies():
            for s in study["series"]:
                lib.instances(s["series_uid"])
    t.join()
    assert not errors
    assert len(lib.studies()) == 2 and len(reports[0].studies) == 2


def test_results_are_stored_with_a_study(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([dicom_dir / "mr_transfer_syntaxes"])
    uid = report.studies[0]["study_uid"]
    lib.store_result(uid, "ai/pneumonia_cnn", {"p": 0.25, "labels": ["pneumonia"]})
    lib.store_result(uid, "draft", {"text": "No acute findings."})
    lib.store_result(uid, "draft", {"text": "Revised."})
    assert Library(lib.path).results(uid) == {
        "ai/pneumonia_cnn": {"p": 0.25, "labels": ["pneumonia"]},
        "draft": {"text": "Revised."},
    }
    assert lib.result(uid, "missing") is None
    assert lib.study(uid)["series"][0]["instances"] == 9
    assert lib.study("1.2.3.4") is None


def test_instances_are_sorted_along_the_normal(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([dicom_dir / "ct_phantom_philips"])
    inst = lib.instances(report.studies[0]["series"][0]["series_uid"])
    z = [i["position"][2] for i in inst]
    assert z == sorted(z) and len(set(z)) == 140


def test_cli_scan_json(dicom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.sqlite"
    rc = cli_main(
        [
            "scan",
            str(dicom_dir / "cxr"),
            str(dicom_dir / "broken" / "empty.dcm"),
            str(tmp_path / "missing.dcm"),
            "--json",
            "--library",
            str(db),
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"studies", "errors"}
    assert len(doc["studies"]) == 2
    for study in doc["studies"]:
        assert tuple(study) == STUDY_KEYS
        for s in study["series"]:
            assert tuple(s) == SERIES_KEYS + GEOMETRY_KEYS
            assert s["stacks"] and s["unreadable"] == 0
            assert sum(st["slices"] for st in s["stacks"]) == s["frames"]
    assert sorted(Path(e["path"]).name for e in doc["errors"]) == ["empty.dcm", "missing.dcm"]
    assert all(set(e) == {"path", "error"} for e in doc["errors"])


def test_cli_scan_without_paths_is_bad_usage() -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["scan"])
    assert exc.value.code == 2


def test_store_result_does_not_wait_for_a_long_scan(dicom_dir: Path, tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib.sqlite")
    lib.scan([dicom_dir / "mr_transfer_syntaxes"])
    uid = lib.studies()[0]["study_uid"]
    waits: list[float] = []
    threads: list[threading.Thread] = []

    def store() -> None:
        t0 = time.monotonic()
        Library(lib.path).store_result(uid, "ai", {"p": 0.5})
        waits.append(time.monotonic() - t0)

    def on_update(done: int, total: int | None, message: str) -> None:
        if done == 50:  # mid-scan, from another thread (as a GUI worker storing an AI result)
            threads.append(threading.Thread(target=store))
            threads[-1].start()

    lib.scan([dicom_dir / "mr_sag_mprage"], progress=CallbackProgress(on_update))
    threads[0].join(timeout=30)
    assert len(waits) == 1 and waits[0] < 5
    assert lib.results(uid) == {"ai": {"p": 0.5}}


def test_zip_slip_and_corrupt_archives(dicom_dir: Path, tmp_path: Path, hilum_home: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(dicom_dir / "mr_transfer_syntaxes" / "1.dcm", "../../../outside.dcm")
        zf.writestr("notes.txt", "not an image")
        zf.writestr("__MACOSX/._outside.dcm", b"\x00\x05\x16\x07 AppleDouble")  # OS clutter:
        zf.writestr("sub/.DS_Store", b"\x00\x00\x00\x01Bud1")  # skipped silently
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([archive, bad])
    assert not (tmp_path.parent / "outside.dcm").exists()
    # a member whose path climbs out of the archive is refused by name (issue 11, item 9)
    assert report.studies == []
    errors = {e["path"]: e["error"] for e in report.errors}
    assert set(errors) == {f"{archive}!../../../outside.dcm", f"{archive}!notes.txt", str(bad)}
    assert "outside the archive" in errors[f"{archive}!../../../outside.dcm"]
    assert errors[f"{archive}!notes.txt"] == "Not a DICOM file (no DICOM header found)."
    assert errors[str(bad)] == "The zip archive is corrupt and cannot be opened."


def test_prune_forgets_deleted_files(dicom_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(dicom_dir / "mr_transfer_syntaxes", folder)
    lib = Library(tmp_path / "lib.sqlite")
    lib.scan([folder])
    (folder / "4.dcm").unlink()
    assert lib.prune() == 1
    assert lib.studies()[0]["series"][0]["instances"] == 8
    for f in folder.iterdir():
        f.unlink()
    assert lib.prune() == 8 and lib.studies() == []


def test_unwritable_library_is_a_clear_error(tmp_path: Path) -> None:
    from app.dicom.library import LibraryError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LibraryError, match="cannot be opened"):
        Library(blocker / "sub" / "lib.sqlite")


def test_same_uid_same_object_in_another_encoding_vs_changed_content(
    dicom_dir: Path, tmp_path: Path
) -> None:
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian

    src = dicom_dir / "mr_transfer_syntaxes" / "1.dcm"
    reencoded = tmp_path / "implicit.dcm"
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(reencoded, enforce_file_format=True)
    changed = tmp_path / "renamed.dcm"
    ds = pydicom.dcmread(src)
    ds.PatientName = "Someone^Else"
    ds.save_as(changed, enforce_file_format=True)
    assert reencoded.read_bytes() != src.read_bytes()

    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([src, reencoded, changed])
    assert lib.counts()["instances"] == 1 and report.duplicates == 1
    assert [Path(e["path"]).name for e in report.errors] == ["renamed.dcm"]
    assert report.errors[0]["error"].startswith("Duplicate SOP Instance UID with different content")
    assert [Path(i["path"]) for i in lib.study_instances(report.studies[0]["study_uid"])] == [src]


def test_cli_scan_json_reports_geometry_per_series(
    dicom_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Gantry tilt and uneven spacing of the GE head CT, one stack per series, from the CLI."""
    rc = cli_main(
        ["scan", str(dicom_dir / "ct_head_ge"), "--json", "--library", str(tmp_path / "g.sqlite")]
    )
    assert rc == 0
    series = json.loads(capsys.readouterr().out)["studies"][0]["series"][0]
    (stack,) = series["stacks"]
    assert stack["slices"] == 28 and (stack["rows"], stack["columns"]) == (512, 512)
    assert stack["tilt_deg"] == pytest.approx(18.5, abs=0.2)
    assert stack["spacing_mm"][1:] == pytest.approx([0.4883, 0.4883], abs=1e-3)
    assert any("Gantry tilt" in w for w in stack["warnings"])
    assert any("Uneven slice spacing" in w for w in stack["warnings"])
    assert stack["label"] == "" and series["warnings"] == []
