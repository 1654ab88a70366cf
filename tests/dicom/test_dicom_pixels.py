"""The pixel pipeline on real images: decoders, modality LUT, VOI, MONOCHROME1, colour."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian

from app.core.errors import DicomReadError, NotDicomError, PixelDecodeError, UsageError
from app.dicom import pixels
from app.dicom.pixels import (
    FrameCache,
    decode_frame,
    default_window,
    display_array,
    frame_array,
    read_dataset,
    windows,
)


def test_nine_transfer_syntaxes_decode_to_identical_arrays(dicom_dir: Path) -> None:
    files = sorted((dicom_dir / "mr_transfer_syntaxes").glob("*.dcm"))
    assert len(files) == 9
    datasets = [read_dataset(f) for f in files]
    syntaxes = {str(ds.file_meta.TransferSyntaxUID) for ds in datasets}
    assert ExplicitVRBigEndian in syntaxes and len(syntaxes) == 7
    raw = [decode_frame(ds) for ds in datasets]
    ref = raw[0]
    assert ref.shape == (384, 384) and ref.max() > 1000
    for f, arr in zip(files, raw):
        assert arr.dtype.isnative, f.name
        np.testing.assert_array_equal(arr, ref, err_msg=f.name)
    shown = [display_array(ds, frame_array(ds)) for ds in datasets]
    for f, img in zip(files, shown):
        np.testing.assert_array_equal(img, shown[0], err_msg=f.name)


def test_ct_phantom_air_is_minus_1000_hu(dicom_dir: Path) -> None:
    ds = read_dataset(dicom_dir / "ct_phantom_philips" / "I700")
    assert float(ds.RescaleIntercept) == -1024
    hu = frame_array(ds)
    assert hu.dtype == np.float32
    corner = hu[:40, :40]  # air outside the phantom
    assert abs(float(np.median(corner)) + 1000) < 30
    # the phantom itself is far denser than air
    assert float(np.mean(hu > -200)) > 0.05 and hu.max() > 0


def test_monochrome1_films_display_inverted(dicom_dir: Path) -> None:
    for name in ("cr_chest_pa_uncompressed.dcm", "dx_chest_pa_j2k_lossless.dcm"):
        ds = read_dataset(dicom_dir / "cxr" / name)
        assert ds.PhotometricInterpretation == "MONOCHROME1"
        arr = frame_array(ds)
        shown = display_array(ds, arr)
        mono2 = read_dataset(dicom_dir / "cxr" / name)
        mono2.PhotometricInterpretation = "MONOCHROME2"
        np.testing.assert_array_equal(shown, 255 - display_array(mono2, arr))
        # higher stored values (more attenuation in MONOCHROME1) are shown darker
        sample = (slice(None, None, 16), slice(None, None, 16))
        corr = np.corrcoef(arr[sample].ravel(), shown[sample].ravel().astype(np.float64))[0, 1]
        assert corr < -0.5, name


def test_signed_ct_and_rescale(dicom_dir: Path) -> None:
    ds = read_dataset(dicom_dir / "ct_head_ge" / "01.dcm")
    assert ds.PixelRepresentation == 1
    hu = frame_array(ds)
    stored = ds.pixel_array
    expected = stored.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(hu, expected.astype(np.float32))
    assert hu.min() < -1000


def test_explicit_window(dicom_dir: Path) -> None:
    ds = read_dataset(dicom_dir / "ct_phantom_philips" / "I700")
    hu = np.array([[-1000.0, 0.0, 40.0, 80.0, 1000.0]], dtype=np.float32)
    out = display_array(ds, hu, window=(40.0, 80.0))
    assert out.dtype == np.uint8
    assert out[0, 0] == 0 and out[0, 1] == 0 and out[0, 4] == 255 and out[0, 3] == 255
    assert 120 <= out[0, 2] <= 135
    assert default_window(ds) == (40.0, 80.0)


def test_several_header_windows(pydicom_files: Path) -> None:
    ds = read_dataset(pydicom_files / "examples_overlay.dcm")
    found = windows(ds)
    assert len(found) == 2
    arr = frame_array(ds)
    first = display_array(ds, arr)
    second = display_array(ds, arr, window=1)
    np.testing.assert_array_equal(first, display_array(ds, arr, window=found[0][:2]))
    np.testing.assert_array_equal(second, display_array(ds, arr, window=found[1][:2]))
    assert not np.array_equal(first, second)


def test_voi_lut_sequence_is_applied(dicom_dir: Path) -> None:
    ds = read_dataset(dicom_dir / "ct_phantom_philips" / "I700")
    # a real CT given a VOI LUT that maps stored HU -1024..3071 onto 0..4095 in reverse
    item = Dataset()
    item.LUTDescriptor = [4096, -1024, 16]
    item.LUTData = list(range(4095, -1, -1))
    ds.VOILUTSequence = Sequence([item])
    hu = frame_array(ds)
    shown = display_array(ds, hu)
    expected = np.clip(np.rint(hu) + 1024, 0, 4095)
    expected = np.clip((4095 - expected) * (255.0 / 4095), 0, 255).astype(np.uint8)
    assert np.abs(shown.astype(int) - expected.astype(int)).max() <= 1
    assert shown[:40, :40].mean() > 200  # air is bright through this inverted LUT


def test_modality_lut_sequence_is_applied(dicom_dir: Path) -> None:
    ds = read_dataset(dicom_dir / "ct_phantom_philips" / "I700")
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = [min(65535, 2 * v) for v in range(4096)]
    item.ModalityLUTType = "US"
    ds.ModalityLUTSequence = Sequence([item])
    out = frame_array(ds)
    stored = decode_frame(ds).astype(np.int64)
    np.testing.assert_array_equal(out, np.clip(stored, 0, 4095) * 2)


def test_palette_colour(pydicom_files: Path) -> None:
    ds = read_dataset(pydicom_files / "examples_palette.dcm")
    rgb = frame_array(ds)
    assert rgb.dtype == np.uint8 and rgb.shape == (ds.Rows, ds.Columns, 3)
    ref = apply_color_lut(ds.pixel_array, ds)
    if ref.dtype == np.uint16:
        ref = (ref.astype(np.float32) * (255.0 / 65535)).astype(np.uint8)
    assert np.abs(rgb.astype(int) - ref.astype(int)).max() <= 1
    assert display_array(ds, rgb) is rgb


def test_ybr_is_converted_to_rgb(pydicom_files: Path) -> None:
    rgb_ref = frame_array(read_dataset(pydicom_files / "SC_rgb_rle.dcm"))  # lossless RGB
    for name in (
        "SC_rgb_dcmtk_+eb+cy+np.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
    ):
        ds = read_dataset(pydicom_files / name)
        assert ds.PhotometricInterpretation.startswith("YBR")
        rgb = frame_array(ds)
        assert rgb.shape == rgb_ref.shape and rgb.dtype == np.uint8
        assert np.abs(rgb.astype(int) - rgb_ref.astype(int)).mean() < 6, name


def test_multiframe_frames_and_bounds(pydicom_files: Path) -> None:
    ds = read_dataset(pydicom_files / "examples_ybr_color.dcm")
    assert pixels.number_of_frames(ds) == 30
    last = frame_array(ds, 29)
    assert last.shape == (ds.Rows, ds.Columns, 3)
    assert not np.array_equal(frame_array(ds, 0), last)
    with pytest.raises(UsageError, match="Frame 30 does not exist"):
        frame_array(ds, 30)


def test_16_bit_rgb_and_deflate(pydicom_files: Path) -> None:
    rgb16 = frame_array(read_dataset(pydicom_files / "SC_rgb_rle_16bit.dcm"))
    rgb8 = frame_array(read_dataset(pydicom_files / "SC_rgb_rle.dcm"))
    assert rgb16.dtype == np.uint8 and np.abs(rgb16.astype(int) - rgb8.astype(int)).max() <= 1
    dfl = read_dataset(pydicom_files / "image_dfl.dcm")
    assert frame_array(dfl).shape == (dfl.Rows, dfl.Columns)


def test_clear_errors_for_broken_files(dicom_dir: Path, tmp_path: Path) -> None:
    broken = dicom_dir / "broken"
    with pytest.raises(NotDicomError, match=r"^The file is empty \(0 bytes\)\.$"):
        read_dataset(broken / "empty.dcm")
    with pytest.raises(NotDicomError, match=r"^Not a DICOM file \(no DICOM header found\)\.$"):
        read_dataset(broken / "not_dicom.dcm")
    with pytest.raises(DicomReadError, match="^The file is truncated"):
        read_dataset(broken / "cr_chest_truncated.dcm")
    ds = read_dataset(broken / "dx_chest_corrupt_j2k_stream.dcm")  # the header is fine
    with pytest.raises(PixelDecodeError) as exc:
        frame_array(ds)
    assert str(exc.value) == "The image data is corrupt and cannot be decoded (JPEG 2000)."
    head = (dicom_dir / "ct_head_ge" / "01.dcm").read_bytes()
    cut = tmp_path / "cut_header.dcm"
    cut.write_bytes(head[:700])
    with pytest.raises(DicomReadError, match="truncated"):
        read_dataset(cut)


def test_pydicom_truncated_file(pydicom_files: Path) -> None:
    with pytest.raises(DicomReadError, match="truncated"):
        frame_array(pydicom_files / "MR_truncated.dcm")


def test_frame_cache_stays_within_budget() -> None:
    cache = FrameCache(max_bytes=3 * 1000)
    for i in range(10):
        cache.put(i, np.zeros(1000, dtype=np.uint8))
        assert cache.nbytes <= 3000
    assert len(cache) == 3 and 9 in cache and 0 not in cache
    cache.get(7)  # 7 becomes most recent; 8 is dropped next
    cache.put(10, np.zeros(1000, dtype=np.uint8))
    assert 7 in cache and 8 not in cache
    cache.put("huge", np.zeros(5000, dtype=np.uint8))  # larger than the budget: not kept
    assert "huge" not in cache and cache.nbytes <= 3000


def test_frame_cache_distance_policy_keeps_the_slices_near_the_shown_one() -> None:
    """The viewer's policy (the same class): the slice farthest from the focus goes first."""
    cache = FrameCache(max_bytes=3 * 1000, eviction="distance")
    for i in (10, 11, 12):
        assert cache.put(i, np.zeros(1000, dtype=np.uint8), focus=10)
    assert cache.put(9, np.zeros(1000, dtype=np.uint8), focus=10)  # 12 is farthest: dropped
    assert sorted(cache.indices()) == [9, 10, 11]
    # a frame farther than everything held is not kept (the caller stops decoding that way)
    assert not cache.put(30, np.zeros(1000, dtype=np.uint8), focus=10)
    assert 30 not in cache and cache.full()
    # the shown frame is kept even when it alone is over the budget (LRU refuses it)
    cache.put(10, np.zeros(5000, dtype=np.uint8), focus=10)
    assert cache.indices() == [10]
    lru = FrameCache(max_bytes=3 * 1000)
    assert not lru.put(10, np.zeros(5000, dtype=np.uint8)) and len(lru) == 0


def test_frame_cache_is_shared_across_threads(dicom_dir: Path) -> None:
    cache = FrameCache(max_bytes=64 * 1024 * 1024)
    path = dicom_dir / "ct_phantom_philips" / "I700"
    results: list[np.ndarray] = []

    def read() -> None:
        results.append(cache.frame(path, 0))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_array_equal(r, results[0])
    assert cache.frame(path, 0) is cache.frame(path, 0)
    assert cache.nbytes == 512 * 512 * 4


def test_no_pixel_data_is_a_clear_error(tmp_path: Path, dicom_dir: Path) -> None:
    ds = pydicom.dcmread(dicom_dir / "ct_head_ge" / "01.dcm")
    del ds.PixelData
    out = tmp_path / "nopix.dcm"
    ds.save_as(out)
    with pytest.raises(PixelDecodeError, match="no image data"):
        frame_array(out)


def test_voi_lut_function_sigmoid(dicom_dir: Path) -> None:
    ds = read_dataset(dicom_dir / "ct_phantom_philips" / "I700")
    hu = frame_array(ds)
    linear = display_array(ds, hu)
    ds.VOILUTFunction = "SIGMOID"
    sigmoid = display_array(ds, hu)
    c, w = 40.0, 80.0
    expected = 255.0 / (1 + np.exp(-4 * (hu.astype(np.float64) - c) / w))
    assert np.abs(sigmoid.astype(int) - expected.astype(np.uint8).astype(int)).max() <= 1
    assert not np.array_equal(linear, sigmoid)


@pytest.mark.parametrize("name", ["OBXXXX1A_expb.dcm", "OBXXXX1A_expb_2frame.dcm"])
def test_big_endian_palette_colour_matches_little_endian(name: str) -> None:
    # pydicom-data's big-endian copies of a palette colour image: pydicom 3.0.2 reads their
    # 16-bit LUT byte-swapped (all black); Hilum renders them pixel-identical to the LE copy.
    from pydicom.data import get_testdata_file

    be = read_dataset(get_testdata_file(name))
    le = read_dataset(get_testdata_file(name.replace("_expb", "")))
    assert str(be.file_meta.TransferSyntaxUID) == ExplicitVRBigEndian
    lut_before = bytes(be.RedPaletteColorLookupTableData)
    for frame in range(pixels.number_of_frames(le)):
        ours, ref = frame_array(be, frame), frame_array(le, frame)
        assert ref.max() > 200
        np.testing.assert_array_equal(ours, ref)
        np.testing.assert_array_equal(display_array(be, ours), display_array(le, ref))
    assert bytes(be.RedPaletteColorLookupTableData) == lut_before  # caller's dataset untouched


def test_12_bit_jpeg_extended_is_unsupported_not_corrupt() -> None:
    from pydicom.data import get_testdata_file

    with pytest.raises(PixelDecodeError) as exc:
        frame_array(get_testdata_file("JPEG-lossy.dcm"))  # 12-bit JPEG Extended (Process 2+4)
    msg = exc.value.message
    assert "not supported by the installed decoders" in msg and "corrupt" not in msg
    assert "JPEG Extended" in msg and "1.2.840.10008.1.2.4.51" in msg and "12-bit" in msg


@pytest.mark.parametrize(
    "uid, words",
    [
        (
            "1.2.840.10008.1.2.4.100",
            [
                "MPEG2 Main Profile",
                "1.2.840.10008.1.2.4.100",
                "not supported by the installed decoders",
            ],
        ),
        ("1.2.3.4.5.6", ["1.2.3.4.5.6", "not a DICOM transfer syntax"]),
    ],
)
def test_unsupported_transfer_syntax_is_named(tmp_path: Path, uid: str, words: list[str]) -> None:
    from pydicom.data import get_testdata_file
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = uid
    ds.PixelData = encapsulate([ds.PixelData])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "ts.dcm"
    ds.save_as(path)
    with pytest.raises(PixelDecodeError) as exc:
        frame_array(path)
    for w in words:
        assert w in exc.value.message


def test_sequence_item_of_4_gb_is_a_corrupt_header(tmp_path: Path) -> None:
    import struct

    from pydicom.data import get_testdata_file

    from app.dicom.library import Library
    from app.dicom.reading import read_header

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "X1", "99T", "marker"
    ds.ProcedureCodeSequence = Sequence([item])
    ds["ProcedureCodeSequence"].is_undefined_length = True
    path = tmp_path / "item4g.dcm"
    ds.save_as(path)
    data = bytearray(path.read_bytes())
    at = data.find(b"\xfe\xff\x00\xe0", data.find(struct.pack("<HH", 0x0008, 0x1032)))
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFF0)  # the item declares ~4 GB
    path.write_bytes(data)
    for read in (read_header, read_dataset, frame_array):
        with pytest.raises(DicomReadError) as exc:
            read(path)
        assert "header is corrupt" in exc.value.message and "I/O" not in exc.value.message
    report = Library(tmp_path / "lib.sqlite").scan([path])
    assert ["header is corrupt" in e["error"] for e in report.errors] == [True]


@pytest.mark.parametrize(
    "name",
    [
        "sample",
        "cxr/cr_chest_pa_jpegls_near_lossless.dcm",
        "mr_transfer_syntaxes/7.dcm",
        "mr_transfer_syntaxes/8.dcm",
    ],
)
def test_jpeg_ls_decodes_with_charls_first_to_the_same_pixels_as_gdcm(
    dicom_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydicom.pixels import pixel_array

    from app.core.paths import sample_path

    path = sample_path() if name == "sample" else dicom_dir / name
    ds = pydicom.dcmread(path)
    assert str(ds.file_meta.TransferSyntaxUID) in pixels._PREFERRED_PLUGIN
    by_gdcm = pixel_array(ds, decoding_plugin="gdcm")
    used: list[str] = []
    real = pixels._pixel_array

    def spy(*args: object, **kwargs: object) -> np.ndarray:
        used.append(str(kwargs.get("decoding_plugin", "")))
        return real(*args, **kwargs)

    monkeypatch.setattr(pixels, "_pixel_array", spy)
    # one-frame grey films: CharLS through ctypes (app.dicom.jpegls, without the GIL) first
    ours = pixels.decode_frame(pixels.read_dataset(path), 0)
    assert used == []
    assert ours.dtype == by_gdcm.dtype and np.array_equal(ours, by_gdcm)  # bit-exact
    # that path unusable: pydicom with the preferred plugin (the same CharLS)
    monkeypatch.setattr(pixels, "_jpegls_without_gil", lambda ds, syntax: None)
    ours = pixels.decode_frame(pixels.read_dataset(path), 0)
    assert used == ["pyjpegls"]
    assert ours.dtype == by_gdcm.dtype and np.array_equal(ours, by_gdcm)  # bit-exact
    # the preferred plugin unusable: every plugin, in pydicom's order, as before
    used.clear()
    monkeypatch.setitem(
        pixels._PREFERRED_PLUGIN, str(ds.file_meta.TransferSyntaxUID), "no-such-plugin"
    )
    again = pixels.decode_frame(pixels.read_dataset(path), 0)
    assert used == ["no-such-plugin", ""]
    assert np.array_equal(again, by_gdcm)


@pytest.mark.parametrize(
    "name",
    [
        "JPEGLSNearLossless_08.dcm",
        "JPEGLSNearLossless_16.dcm",
        "MR_small_jpeg_ls_lossless.dcm",  # signed: pydicom decodes it
        "SC_rgb_jls_lossy_sample.dcm",  # colour: pydicom decodes it
        "SC_rgb_jls_lossy_line.dcm",
    ],
)
def test_jpeg_ls_without_the_gil_is_bit_exact_or_declines(pydicom_files: Path, name: str) -> None:
    from pydicom.pixels import pixel_array

    ds = read_dataset(pydicom_files / name)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    fast = pixels._jpegls_without_gil(ds, syntax)
    ref = pixel_array(ds, decoding_plugin="pyjpegls")
    grey_unsigned = ds.SamplesPerPixel == 1 and ds.PixelRepresentation == 0
    assert (fast is not None) == grey_unsigned
    if fast is not None:
        assert fast.dtype == ref.dtype and np.array_equal(fast, ref)
    assert np.array_equal(decode_frame(ds), ref)


def test_jpeg_ls_decode_lets_other_threads_run() -> None:
    # the GUI thread keeps running while a worker decodes a JPEG-LS film (and the window is
    # built while the first image decodes): ctypes releases the GIL during CharLS's decode
    import time

    from app.core.paths import sample_path
    from app.dicom.jpegls import decode_grey
    from pydicom.encaps import generate_frames

    ds = read_dataset(sample_path())
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    ticks = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.01)
        t0 = time.perf_counter()
        before = ticks[0]
        arr = decode_grey(bytes(codestream), int(ds.Rows), int(ds.Columns))
        spent, during = time.perf_counter() - t0, ticks[0] - before
    finally:
        stop.set()
        counter.join()
    assert arr is not None and arr.shape == (ds.Rows, ds.Columns)
    # a GIL held throughout would let the counter tick at most about once
    assert during >= max(3, int(spent * 1000) // 4), (during, spent)
