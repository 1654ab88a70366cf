"""Fuzzing: mutated real files (truncation, bit flips, bogus element lengths, random tags,
garbage) never crash or hang ``scan`` or ``render``: each loads or yields one clear error."""

from __future__ import annotations

import itertools
import struct
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import HilumError
from app.dicom.library import Library
from app.dicom.render import render_array

#: per example; a hang would blow through this (and pytest-timeout stops a real one)
MAX_SECONDS = 30.0

SHARED_SEEDS = [
    "mr_transfer_syntaxes/1.dcm",  # explicit VR little endian
    "mr_transfer_syntaxes/2.dcm",  # implicit VR
    "mr_transfer_syntaxes/3.dcm",  # explicit VR big endian
    "mr_transfer_syntaxes/4.dcm",  # RLE
    "mr_transfer_syntaxes/5.dcm",  # JPEG lossless
    "mr_transfer_syntaxes/7.dcm",  # JPEG-LS
    "mr_transfer_syntaxes/9.dcm",  # JPEG 2000
    "ct_head_ge/05.dcm",  # signed CT
    "ct_phantom_philips/DIRFILE",  # a DICOMDIR
]
PYDICOM_SEEDS = [
    "CT_small.dcm",
    "rtdose.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "examples_palette.dcm",
    "SC_rgb_rle_2frame.dcm",
]


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    length_fields: tuple[int, ...]  # offsets of 4 bytes ending at an element's value
    boundaries: tuple[int, ...]  # offsets where an element starts


def _load_seed(path: Path) -> Seed:
    data = path.read_bytes()
    ds = pydicom.dcmread(path, defer_size=64)
    fields: list[int] = []
    starts: list[int] = []
    for elem in itertools.chain(ds.file_meta._dict.values(), ds._dict.values()):
        tell = getattr(elem, "value_tell", None)
        if tell is None or tell < 8:
            continue
        fields.append(tell - 4)
        starts.append(
            tell
            - (
                12
                if getattr(elem, "VR", None)
                in ("OB", "OW", "SQ", "UN", "UT", "OF", "OD", "UC", "UR")
                else 8
            )
        )
    return Seed(path.name, data, tuple(fields), tuple(s for s in starts if s >= 132))


@lru_cache(maxsize=1)
def _seeds() -> tuple[Seed, ...]:
    from app.core.paths import shared_data_dir

    dicom = shared_data_dir() / "dicom"
    base = Path(pydicom.__file__).parent / "data" / "test_files"
    paths = [dicom / s for s in SHARED_SEEDS] + [base / s for s in PYDICOM_SEEDS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.fail(f"fuzz seed files missing: {missing}")
    return tuple(_load_seed(p) for p in paths)


_VRS = [
    b"OB",
    b"OW",
    b"SQ",
    b"UN",
    b"UT",
    b"US",
    b"SS",
    b"DS",
    b"IS",
    b"UI",
    b"LO",
    b"PN",
    b"AT",
    b"FD",
    b"XX",
    b"\x00\x00",
]
_LENGTHS = [0, 1, 2, 3, 7, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF]

mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("flip"), st.floats(0.0, 1.0), st.integers(0, 7)),
    st.tuples(
        st.just("length"),
        st.floats(0.0, 1.0),
        st.one_of(st.sampled_from(_LENGTHS), st.integers(0, 0xFFFFFFFF)),
    ),
    st.tuples(
        st.just("tag"),
        st.floats(0.0, 1.0),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.sampled_from(_VRS),
        st.binary(max_size=24),
    ),
    st.tuples(st.just("garbage"), st.floats(0.0, 1.0), st.binary(min_size=1, max_size=64)),
)


def _apply(seed: Seed, ops: list[tuple]) -> bytes:
    data = bytearray(seed.data)
    for op in ops:
        kind = op[0]
        if not data:
            break
        if kind == "truncate":
            data = data[: int(op[1] * len(data))]
        elif kind == "flip":
            pos = min(len(data) - 1, int(op[1] * len(data)))
            data[pos] ^= 1 << op[2]
        elif kind == "length" and seed.length_fields:
            pos = seed.length_fields[
                min(len(seed.length_fields) - 1, int(op[1] * len(seed.length_fields)))
            ]
            if pos + 4 <= len(data):
                data[pos : pos + 4] = struct.pack("<I", op[2])
        elif kind == "tag" and seed.boundaries:
            pos = seed.boundaries[min(len(seed.boundaries) - 1, int(op[1] * len(seed.boundaries)))]
            value = op[5]
            elem = struct.pack("<HH", op[2], op[3]) + op[4] + struct.pack("<H", len(value)) + value
            data[pos:pos] = elem
        elif kind == "garbage":
            pos = min(len(data), int(op[1] * len(data)))
            data[pos : pos + len(op[2])] = op[2]
    return bytes(data)


_counter = itertools.count()


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(
    seed_index=st.integers(0, len(SHARED_SEEDS) + len(PYDICOM_SEEDS) - 1),
    ops=st.lists(mutation, min_size=1, max_size=4),
)
def test_scan_and_render_never_crash_or_hang(
    seed_index: int, ops: list[tuple], tmp_path_factory: pytest.TempPathFactory
) -> None:
    seed = _seeds()[seed_index]
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"{next(_counter)}_{seed.name}"
    path.write_bytes(_apply(seed, ops))
    start = time.monotonic()

    report = Library(folder / "lib.sqlite").scan([path])  # must not raise
    mine = [e for e in report.errors if Path(e["path"]) == path]
    indexed = sum(s["instances"] for study in report.studies for s in study["series"])
    assert len(mine) <= 1
    for err in report.errors:
        assert err["error"] and "\n" not in err["error"] and "Traceback" not in err["error"]
    if seed.name != "DIRFILE":
        assert indexed == 1 or len(mine) == 1, (report.to_json(), ops)

    try:
        image = render_array(path)
    except HilumError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
    else:
        assert image.dtype == np.uint8 and image.ndim in (2, 3) and image.size > 0
    assert time.monotonic() - start < MAX_SECONDS, ops
