"""Measurements bound to images, persisted in the library, and as DICOM out and in
(GSPS, TID 1500 SR, KOS; checked with dciodvfy), on the shared CT phantom."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.cli import main as cli_main
from app.dicom.library import Library
from app.dicom.measurements import (
    ImageKey,
    ImageView,
    KeyImageMark,
    Measurement,
    compute_values,
    for_image,
    load_key_images,
    load_measurements,
    load_views,
    save_key_image,
    save_measurement,
    save_view,
)
from app.dicom.pixels import frame_array
from app.reporting.annotations import export_annotations, import_annotations

SPACING = (0.451171875, 0.451171875)


def dciodvfy_errors(path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.fail("dciodvfy (dicom3tools) is not installed: run ./run-tests once")
    out = subprocess.run([tool, str(path)], check=False, capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def phantom_library(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> tuple[str, dict]:
    """A library holding the CT phantom (module-wide; tests copy it before writing)."""
    folder = tmp_path_factory.mktemp("lib")
    db = folder / "library.db"
    lib = Library(db)
    lib.scan([shared_data / "dicom" / "ct_phantom_philips"])
    study = lib.studies()[0]
    lib.close()
    return str(db), study


@pytest.fixture()
def lib(phantom_library: tuple[str, dict], tmp_path: Path) -> Library:
    db = tmp_path / "library.db"
    shutil.copy(phantom_library[0], db)
    return Library(db)


def _refs(lib: Library) -> tuple[str, str, list[dict]]:
    study = lib.studies()[0]
    series = study["series"][0]["series_uid"]
    return study["study_uid"], series, lib.instances(series)


def _measure(kind: str, pts: list[tuple[float, float]], ref: ImageKey, path: str) -> Measurement:
    arr = frame_array(path)
    return Measurement(kind, tuple(pts), ref, compute_values(kind, pts, arr, SPACING, "HU"))


SHAPES = [
    ("length", [(100.0, 100.0), (200.0, 150.0)]),
    ("rect", [(200.0, 200.0), (260.0, 240.0)]),
    ("ellipse", [(250.0, 250.0), (300.0, 330.0)]),
    ("angle", [(100.0, 300.0), (150.0, 250.0), (200.0, 300.0)]),
    ("cobb", [(50.0, 50.0), (150.0, 60.0), (60.0, 200.0), (160.0, 180.0)]),
]


def test_values() -> None:
    img = np.zeros((10, 10), np.float32)
    img[2:4, 2:6] = 100.0
    v = compute_values("rect", [(2, 2), (6, 4)], img, (0.5, 0.5), "HU")
    assert v["mean"] == 100.0 and v["sd"] == 0.0 and v["n"] == 8 and v["area"] == pytest.approx(2.0)
    assert compute_values("length", [(0, 0), (3, 4)], None, (2.0, 2.0))["length"] == pytest.approx(
        10
    )
    assert compute_values("angle", [(1, 0), (0, 0), (0, 1)], None, None)["angle"] == pytest.approx(
        90
    )
    # Cobb: lines at +10 and -15 degrees from horizontal -> 25 degrees, whatever their direction
    import math

    a, b = math.radians(10), math.radians(-15)
    pts = [(0, 0), (math.cos(a), math.sin(a)), (5 + math.cos(b), math.sin(b)), (5, 0)]
    assert compute_values("cobb", pts, None, None)["angle"] == pytest.approx(25)


def test_measurements_persist_per_image(lib: Library) -> None:
    study, series, inst = _refs(lib)
    on40 = ImageKey(study, series, inst[40]["sop_uid"], 0)
    on41 = ImageKey(study, series, inst[41]["sop_uid"], 0)
    roi = _measure("ellipse", [(250, 250), (300, 330)], on40, inst[40]["path"])
    save_measurement(lib, roi)
    lib.close()
    reopened = Library(lib.path)
    stored = load_measurements(reopened, study)
    assert [m.id for m in stored] == [roi.id]
    assert stored[0].values["mean"] == pytest.approx(roi.values["mean"])
    assert stored[0].values["unit"] == "HU"
    # shown only on slice 40, not on its neighbour
    assert for_image(stored, on40) == stored and for_image(stored, on41) == []


def test_export_passes_dciodvfy_and_imports_back(
    lib: Library, tmp_path: Path, phantom_library: tuple[str, dict]
) -> None:
    study, series, inst = _refs(lib)
    ref = ImageKey(study, series, inst[40]["sop_uid"], 0)
    made = [_measure(kind, pts, ref, inst[40]["path"]) for kind, pts in SHAPES]
    other = _measure(
        "length",
        [(10, 10), (20, 10)],
        ImageKey(study, series, inst[90]["sop_uid"]),
        inst[90]["path"],
    )
    for m in made + [other]:
        save_measurement(lib, m)
    save_key_image(lib, KeyImageMark(ref, "lesion"))
    save_view(lib, ImageView(ref, 40.0, 400.0, ((100.0, 120.0), (400.0, 420.0))))
    # a measurement on a coronal reformat goes to the SR as 3-D coordinates
    from app.dicom.mpr import Volume
    from app.dicom.series import load_series

    plane = Volume(load_series(inst).main).standard_plane("coronal")
    save_measurement(
        lib,
        Measurement(
            "length",
            ((10.0, 10.0), (100.0, 100.0)),
            ImageKey.of_plane(study, series, plane),
            compute_values("length", [(10, 10), (100, 100)], None, (plane.spacing, plane.spacing)),
        ),
    )
    files = export_annotations(lib, study, tmp_path / "out")
    names = sorted(f.name for f in files)
    assert names == ["GSPS_901.dcm", "KOS_key_images.dcm", "SR_measurements.dcm"]
    for f in files:
        assert dciodvfy_errors(f) == [], f.name
        assert (f.stat().st_mode & 0o077) == 0
    gsps = pydicom.dcmread(tmp_path / "out" / "GSPS_901.dcm")
    assert gsps.SoftcopyVOILUTSequence[0].WindowCenter == 40
    sr = pydicom.dcmread(tmp_path / "out" / "SR_measurements.dcm")
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    scoord3d = [it for it in _walk(sr.ContentSequence) if it.ValueType == "SCOORD3D"]
    assert len(scoord3d) == 1

    # a fresh library with the same images: import what was exported
    shutil.copy(phantom_library[0], tmp_path / "fresh.db")
    fresh = Library(tmp_path / "fresh.db")
    summary = import_annotations(fresh, files)
    assert summary.key_images == 1 and summary.views >= 1
    back = {m.id: m for m in load_measurements(fresh, study)}
    for m in made + [other]:
        got = back[m.id]  # the same measurement from GSPS and SR: one record
        assert got.kind == m.kind and got.image == m.image
        np.testing.assert_allclose(np.array(got.points), np.array(m.points), atol=1e-3)
        for key in ("length", "mean", "sd", "min", "max", "area", "angle"):
            if key in m.values:
                assert float(got.values[key]) == pytest.approx(float(m.values[key]), rel=1e-4)
    assert len(for_image(back.values(), ref)) == len(SHAPES)
    # the coronal reformat's length comes back on a coronal plane at the same patient points
    import json

    from app.dicom.mpr import Plane

    (on_plane,) = [m for m in back.values() if m.image.is_reformat]
    got_plane = Plane.from_json(json.loads(on_plane.image.plane))
    assert got_plane.kind == "coronal" and on_plane.image.series_uid == series
    assert on_plane.values["length"] == pytest.approx(
        compute_values("length", [(10, 10), (100, 100)], None, (plane.spacing, plane.spacing))[
            "length"
        ],
        rel=1e-4,
    )
    np.testing.assert_allclose(
        [got_plane.point(y - 0.5, x - 0.5) for x, y in on_plane.points],
        [plane.point(y - 0.5, x - 0.5) for x, y in ((10, 10), (100, 100))],
        atol=1e-3,
    )
    assert not any("image region" in s for s in summary.skipped)
    assert [k.note for k in load_key_images(fresh, study)] == ["lesion"]
    view = for_image(load_views(fresh, study), ref)[0]
    assert (view.center, view.width) == (40.0, 400.0)
    assert view.area == ((100.0, 120.0), (400.0, 420.0))


def _walk(items):  # type: ignore[no-untyped-def]
    for it in items:
        yield it
        if "ContentSequence" in it:
            yield from _walk(it.ContentSequence)


def test_import_gsps_and_tid1500_made_elsewhere(lib: Library, tmp_path: Path) -> None:
    """Objects made directly with highdicom (as another viewer would) are shown on their images."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    study, series, inst = _refs(lib)
    ds = pydicom.dcmread(inst[60]["path"])
    layer = hd.pr.GraphicLayer(layer_name="OTHER", order=1)
    ann = hd.pr.GraphicAnnotation(
        referenced_images=[ds],
        graphic_layer=layer,
        graphic_objects=[
            hd.pr.GraphicObject("POLYLINE", np.array([[10.0, 10.0], [110.0, 10.0]]), "PIXEL"),
            hd.pr.GraphicObject(
                "ELLIPSE",
                np.array([[200.0, 250.0], [300.0, 250.0], [250.0, 230.0], [250.0, 270.0]]),
                "PIXEL",
            ),
            hd.pr.GraphicObject("CIRCLE", np.array([[256.0, 256.0], [266.0, 256.0]]), "PIXEL"),
        ],
    )
    gsps = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[ds],
        series_instance_uid=generate_uid(),
        series_number=77,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="Other",
        manufacturer_model_name="Other viewer",
        software_versions="1",
        device_serial_number="1",
        content_label="OTHER",
        graphic_annotations=[ann],
        graphic_layers=[layer],
        voi_lut_transformations=[
            hd.pr.SoftcopyVOILUTTransformation(window_center=50, window_width=350)
        ],
    )
    gsps.save_as(tmp_path / "other_gsps.dcm")

    region = hd.sr.ImageRegion(
        graphic_type="POLYLINE",
        graphic_data=np.array([[20.0, 30.0], [20.0, 130.0]]),
        source_image=hd.sr.SourceImageForRegion.from_source_image(ds),
    )
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="lesion 1"),
        referenced_region=region,
        measurements=[
            hd.sr.Measurement(name=codes.SCT.Length, value=45.1, unit=codes.UCUM.Millimeter)
        ],
    )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name="Other^Reader"
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[group],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[ds],
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=78,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="Other",
    )
    sr.save_as(tmp_path / "other_sr.dcm")

    assert (
        cli_main(
            [
                "annotations",
                "import",
                str(tmp_path / "other_gsps.dcm"),
                str(tmp_path / "other_sr.dcm"),
                "--library",
                str(lib.path),
            ]
        )
        == 0
    )
    ms = load_measurements(Library(lib.path), study)
    ref = ImageKey(study, series, inst[60]["sop_uid"], 0)
    assert len(ms) == 4 and for_image(ms, ref) == ms
    kinds = sorted(m.kind for m in ms)
    assert kinds == ["ellipse", "ellipse", "length", "length"]
    gsps_len = next(m for m in ms if m.kind == "length" and m.source.startswith("GSPS"))
    assert gsps_len.values["length"] == pytest.approx(100 * SPACING[1])
    ellipse = next(m for m in ms if m.kind == "ellipse" and m.points[0] == (200.0, 230.0))
    expect = compute_values(
        "ellipse", [(200, 230), (300, 270)], frame_array(inst[60]["path"]), SPACING, "HU"
    )
    assert ellipse.values["mean"] == pytest.approx(expect["mean"])
    sr_len = next(m for m in ms if m.source.startswith("SR"))
    assert sr_len.values["length"] == pytest.approx(45.1)
    assert [(v.center, v.width) for v in load_views(Library(lib.path), study)] == [(50.0, 350.0)]


def test_cli_export(lib: Library, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study, series, inst = _refs(lib)
    save_measurement(
        lib,
        _measure(
            "length",
            [(1, 1), (50, 50)],
            ImageKey(study, series, inst[3]["sop_uid"]),
            inst[3]["path"],
        ),
    )
    out = tmp_path / "ann"
    assert (
        cli_main(["annotations", "export", study, "--out", str(out), "--library", str(lib.path)])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["GSPS_901.dcm", "SR_measurements.dcm"]
    assert (
        cli_main(
            ["annotations", "export", "1.2.3.4", "--out", str(out), "--library", str(lib.path)]
        )
        == 1
    )


def test_measurements_in_report_pdf(lib: Library, tmp_path: Path) -> None:
    from app.core.types import ReportDraft
    from app.reporting.annotations import measurement_lines
    from app.reporting.pdf import PatientBlock, build_pdf

    study, series, inst = _refs(lib)
    save_measurement(
        lib,
        _measure(
            "length",
            [(100, 100), (200, 150)],
            ImageKey(study, series, inst[40]["sop_uid"]),
            inst[40]["path"],
        ),
    )
    lines = measurement_lines(lib, study)
    assert len(lines) == 1 and "Length 50.4 mm" in lines[0] and "image" in lines[0]
    draft = ReportDraft(
        study_uid=study,
        indication="",
        comparison="",
        findings="Normal.",
        impression="Normal.",
        reader_name="Jane Smith",
        signed_off_at="2026-11-28T21:00:00+00:00",
    )
    out = build_pdf(
        tmp_path / "r.pdf",
        draft,
        [],
        PatientBlock.from_dataset(pydicom.dcmread(inst[40]["path"], stop_before_pixels=True)),
        measurements=lines,
    )
    tool = shutil.which("pdftotext")
    assert tool is not None, "pdftotext (poppler-utils) is not installed: run ./run-tests once"
    text = subprocess.run(
        [tool, "-layout", str(out), "-"], check=False, capture_output=True, text=True
    ).stdout
    assert "MEASUREMENTS" in text and "Length 50.4 mm" in text
