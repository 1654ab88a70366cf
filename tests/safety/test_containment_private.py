"""Issue 11, items 6 and 9: private files whatever the umask; zip and DICOMDIR containment."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from app.core import paths
from app.core.paths import sample_path
from app.dicom import containment
from app.dicom.library import Library


@pytest.fixture()
def loose_umask():
    old = os.umask(0o022)  # the careless default that made files world-readable
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def _small_dicom(path: Path, uid_suffix: str = "1", name: str = "INSIDE^MEDIA") -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.99.{uid_suffix}"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.98.{uid_suffix}"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.97.{uid_suffix}"
    ds.PatientName, ds.PatientID, ds.Modality = name, "X" + uid_suffix, "OT"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = bytes(16)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


# -- item 6 ---------------------------------------------------------------------------------------
def test_patient_data_files_are_private(loose_umask, hilum_home, tmp_path):
    lib = Library()
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(sample_path(), "IMG/CXR1.dcm")
    report = lib.scan([archive])
    assert report.added == 1 and not report.errors
    assert _mode(paths.data_dir()) == 0o700 and _mode(paths.cache_dir()) == 0o700
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(paths.library_path()) + suffix)
        if p.exists():
            assert _mode(p) == 0o600, p
    member = Path(lib.study_instances(report.studies[0]["study_uid"])[0]["path"])
    assert member.is_relative_to(paths.cache_dir()) and _mode(member) == 0o600
    d = member.parent
    while d != paths.cache_dir():
        assert _mode(d) == 0o700, d
        d = d.parent
    # results, drafts and exports of an analysis
    from app.workflow.batch import analyze
    from tests.safety._openai_server import FakeOpenAI

    out = tmp_path / "out"
    with FakeOpenAI() as srv:
        analyze(
            [str(sample_path())],
            out,
            saliency="cam",
            draft=True,
            pdf=True,
            dicom_export=True,
            backend="openai",
            backend_options={"url": srv.url, "model": "m"},
        )
    files = [p for p in out.rglob("*")]
    assert any(p.name == "results.json" for p in files) and any(p.suffix == ".pdf" for p in files)
    assert _mode(out) == 0o700
    for p in files:
        assert _mode(p) == (0o700 if p.is_dir() else 0o600), p
    # settings with recent paths
    from app.gui.settings import Settings, save_settings, settings_path

    save_settings(Settings(recent_paths=[str(archive)]))
    assert _mode(settings_path()) == 0o600 and _mode(settings_path().parent) == 0o700


def test_archive_cache_is_bounded_and_cleaned(hilum_home, tmp_path, monkeypatch):
    lib = Library()
    zips = []
    for i in range(3):
        z = tmp_path / f"s{i}.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.write(_small_dicom(tmp_path / f"src{i}.dcm", str(i)), "a.dcm")
        zips.append(z)
    root = paths.cache_dir() / "archives"
    lib.scan([zips[0]])
    stale = next(root.iterdir())
    (stale / "left.dcm.part").write_bytes(b"partial")
    monkeypatch.setenv("HILUM_ARCHIVE_CACHE_BYTES", "0")
    lib.scan(zips[1:])
    # the cache keeps only this scan's archives; the evicted archive's instances are forgotten
    assert not stale.exists() and len(list(root.iterdir())) == 2
    assert not list(root.rglob("*.part"))
    assert {s["patient_id"] for s in lib.studies()} == {"X1", "X2"}


# -- item 9 ---------------------------------------------------------------------------------------
def _dicomdir(folder: Path, refs: list[list[str] | str]) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.96.1"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.FileSetID = "EVIL"
    ds.FileSetConsistencyFlag = 0
    records = []
    for ref in refs:
        rec = Dataset()
        rec.DirectoryRecordType = "IMAGE"
        rec.ReferencedFileID = ref
        records.append(rec)
    ds.DirectoryRecordSequence = records
    path = folder / "DICOMDIR"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicomdir_refuses_absolute_and_dotdot(tmp_path):
    media = tmp_path / "media"
    _small_dicom(media / "IMG" / "GOOD", "10")
    secret = _small_dicom(tmp_path / "outside" / "SECRET", "11", "SECRET^OUTSIDE")
    dd = _dicomdir(
        media,
        [
            ["IMG", "GOOD"],
            ["..", "outside", "SECRET"],
            str(secret),
            ["IMG", "..", "..", "outside", "SECRET"],
        ],
    )
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([dd])
    indexed = [
        i["path"]
        for s in lib.studies()
        for se in lib.series(s["study_uid"])
        for i in lib.instances(se["series_uid"])
    ]
    assert indexed == [str(media / "IMG" / "GOOD")]
    refused = [e for e in report.errors if "refused" in e["error"]]
    assert len(refused) == 3, report.errors
    assert all(e["path"].startswith(str(dd)) for e in refused)
    assert "SECRET^OUTSIDE" not in json.dumps(lib.studies())


def test_zip_bomb_refused_and_nothing_left(tmp_path, hilum_home):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("IMG/bomb.dcm", "w", force_zip64=True) as fh:
            block = bytes(16 << 20)
            for _ in range(32):  # 512 MiB of zeros
                fh.write(block)
    assert bomb.stat().st_size < 600_000
    lib = Library(tmp_path / "lib.sqlite")
    report = lib.scan([bomb])
    assert report.studies == [] and len(report.errors) == 1
    err = report.errors[0]
    assert err["path"] == str(bomb) and "zip bomb" in err["error"] and "512.0 MiB" in err["error"]
    archives = paths.cache_dir() / "archives"
    assert not archives.exists() or not any(archives.rglob("*"))


def test_archive_limits_count_total_and_lying_sizes(tmp_path):
    infos = [zipfile.ZipInfo(f"f{i}") for i in range(11)]
    for zi in infos:
        zi.file_size, zi.compress_size = 10, 10
    with pytest.raises(containment.ContainmentError, match="more than the limit of 10"):
        containment.check_archive(infos, 1000, containment.ArchiveLimits(max_members=10))
    with pytest.raises(containment.ContainmentError, match="expand to"):
        containment.check_archive(infos, 1000, containment.ArchiveLimits(max_total_bytes=100))
    # a member producing more than its header declared is stopped while streaming
    z = tmp_path / "lie.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("x", b"A" * 5000)
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("x")
        budget = containment.ExtractionBudget(containment.ArchiveLimits(max_total_bytes=1000))
        with pytest.raises(containment.ContainmentError):
            containment.extract_member(zf, info, tmp_path / "out" / "x", budget)
    assert not (tmp_path / "out" / "x").exists() and not (tmp_path / "out" / "x.part").exists()
    for bad in ("/etc/passwd", "../x", "a/../../x", "C:\\\\x"):
        with pytest.raises(containment.ContainmentError):
            containment.member_parts(bad)
