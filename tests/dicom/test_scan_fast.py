"""The scanner's fast header walk gives exactly what the pydicom path gives (issue 17, item 1)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from app.core.errors import DicomError

from app.dicom import library as library_mod
from app.dicom.library import Library, _record, _scan_tags, pixel_budget_problem
from app.dicom.reading import (
    RawHeader,
    fast_header,
    fast_header_of,
    read_header,
    safe_int,
    safe_str,
)

_TEXT_KW = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "Modality",
    "SeriesDescription",
    "BodyPartExamined",
)


def _files(*roots: Path) -> list[Path]:
    out = []
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            out.extend(Path(dirpath) / n for n in sorted(names))
    return sorted(out)


def _outcome(header: object, info: object, path: Path, st: os.stat_result) -> object:
    try:
        return _record(header, info, str(path), str(path), st)  # type: ignore[arg-type]
    except DicomError as exc:
        return exc.message


def test_fast_header_matches_pydicom_on_every_real_file(
    dicom_dir: Path, pydicom_files: Path
) -> None:
    tags = _scan_tags()
    fast_count = 0
    for path in _files(dicom_dir, pydicom_files):
        fast = fast_header(path, frozenset(tags))
        if fast is None:
            continue  # unusual files take the pydicom path (checked by the library tests)
        fast_count += 1
        header, info = fast
        assert isinstance(header, RawHeader)
        ds, ref_info = read_header(path, tags)
        assert info == ref_info, path
        st = os.stat(path)
        assert _outcome(header, info, path, st) == _outcome(ds, ref_info, path, st), path
        # the pixel budget (safety's check in the scan path) sees the same header
        assert pixel_budget_problem(str(path), header, info) == pixel_budget_problem(
            str(path), ds, ref_info
        ), path
        full = header.dataset()
        for kw in _TEXT_KW:
            assert safe_str(full, kw) == safe_str(ds, kw), (path, kw)
        assert safe_int(full, "SeriesNumber") == safe_int(ds, "SeriesNumber"), path
    assert fast_count > 300  # the common case really takes the fast path


def test_fast_header_of_the_pieces_a_file_is_written_from_is_the_files(
    dicom_dir: Path, pydicom_files: Path
) -> None:
    """The network filer reads a received instance's header from memory (its file meta, then
    the data set as it came), cut anywhere: the same header as reading the file back."""
    tags = frozenset(_scan_tags())
    for i, path in enumerate(_files(dicom_dir, pydicom_files)):
        data = path.read_bytes()
        cut = (132, 300, 16 * 1024 + 7, len(data) // 2)[i % 4]
        got = fast_header_of([data[:cut], memoryview(data)[cut:]], path, tags)
        ref = fast_header(path, tags)
        if ref is None:
            assert got is None, path
            continue
        assert got is not None, path
        assert got[1] == ref[1], path
        assert got[0].path == ref[0].path == str(path)
        assert got[0].implicit == ref[0].implicit
        for mine, theirs in ((got[0].elements, ref[0].elements), (got[0].meta, ref[0].meta)):
            assert {t: (e.VR, bytes(e.value), e.value_tell) for t, e in mine.items()} == {
                t: (e.VR, bytes(e.value), e.value_tell) for t, e in theirs.items()
            }, path


def test_pixel_budget_refuses_the_same_files_on_the_fast_path(
    dicom_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a budget small enough that the chest films (native and compressed) exceed it
    monkeypatch.setenv("HILUM_MAX_FRAME_PIXELS", "1000000")
    fast = Library(tmp_path / "fast.sqlite").scan([dicom_dir / "cxr"])
    with monkeypatch.context() as m:
        m.setattr(library_mod, "fast_header", lambda *a, **k: None)
        slow = Library(tmp_path / "slow.sqlite").scan([dicom_dir / "cxr"])
    assert fast.errors == slow.errors
    assert sum("megapixels" in e["error"] for e in fast.errors) >= 3
    assert fast.added == slow.added


def test_position_text_is_what_json_writes() -> None:
    import json

    from app.dicom.library import _json_or_none

    for value in (
        [-125.0, -125.0, 0.0],
        [1e-7, 2.5e20, -0.1],
        [0.1 + 0.2],
        [-115.5, -1.85, 694.21],
    ):
        assert _json_or_none(value) == json.dumps(value)
    assert _json_or_none(None) is None


def _dump(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    out = {}
    for table, cols in (
        (
            "studies",
            "study_uid, patient_id, patient_name, patient_birth_date, "
            "patient_sex, study_date, study_time, description, accession",
        ),
        ("series", "series_uid, study_uid, modality, description, number, body_part"),
        (
            "instances",
            "sop_uid, series_uid, study_uid, path, source, size, mtime, "
            "sop_class, instance_number, frames, rows, columns, "
            "transfer_syntax, photometric, position, orientation, "
            "pixel_spacing, slice_location, pixel_offset",
        ),
        ("rejected", "path, size, mtime, sop_uid, error"),
    ):
        out[table] = sorted(conn.execute(f"SELECT {cols} FROM {table}").fetchall(), key=repr)
    conn.close()
    return out


def test_library_contents_are_the_same_as_with_pydicom(
    dicom_dir: Path, pydicom_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = [dicom_dir, pydicom_files]
    fast_lib = Library(tmp_path / "fast.sqlite")
    fast_report = fast_lib.scan(roots)
    with monkeypatch.context() as m:
        m.setattr(library_mod, "fast_header", lambda *a, **k: None)
        slow_lib = Library(tmp_path / "slow.sqlite")
        slow_report = slow_lib.scan(roots)
    assert fast_report.added == slow_report.added > 300
    assert fast_report.errors == slow_report.errors
    assert fast_report.studies == slow_report.studies
    assert _dump(tmp_path / "fast.sqlite") == _dump(tmp_path / "slow.sqlite")
