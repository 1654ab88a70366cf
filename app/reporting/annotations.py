"""Measurements and key images as DICOM, out and in (highdicom).

Out (:func:`export_annotations`), for what the library stores with a study:

* a Grayscale Softcopy Presentation State per series: the measurements as graphic annotations
  (polylines, ellipses, value text) on their images and frames, plus the window and zoomed area
  the reader used (Softcopy VOI LUT, Displayed Area Selection);
* a TID 1500 Measurement Report (Comprehensive 3D SR, ``highdicom.sr.MeasurementReport``): one
  planar ROI group per measurement, with its region (SCOORD on the image, SCOORD3D for a
  reformat plane) and its values (length, mean/SD/min/max/area, angle, Cobb angle);
* a Key Object Selection document for the key images.

In (:func:`import_annotations`): GSPS, TID 1500 SR and KOS objects made elsewhere (another
viewer, or highdicom) become measurements, reading views and key images bound to their images
in the library. ROI statistics of GSPS shapes are computed from the referenced image's pixels
when the library has it; SR values are taken as stored.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app import __version__
from app.core.errors import DicomReadError, ExportError, NotDicomError
from app.core.paths import private_dir
from app.dicom.measurements import (
    ImageKey,
    ImageView,
    KeyImageMark,
    Measurement,
    compute_values,
    load_key_images,
    load_measurements,
    load_views,
    save_key_image,
    save_measurement,
    save_view,
)

log = logging.getLogger(__name__)

__all__ = [
    "GSPS_UID",
    "KOS_UID",
    "ImportSummary",
    "export_annotations",
    "import_annotations",
    "split_annotation_files",
]

GSPS_UID = "1.2.840.10008.5.1.4.1.1.11.1"
KOS_UID = "1.2.840.10008.5.1.4.1.1.88.59"
_SR_UIDS = {
    "1.2.840.10008.5.1.4.1.1.88.11",
    "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.88.33",
    "1.2.840.10008.5.1.4.1.1.88.34",
}
_MANUFACTURER = "Hilum"
_LAYER = "MEASUREMENTS"


def _uid(*parts: str) -> str:
    """A UID derived from ``parts`` (the same measurement keeps its tracking UID)."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


# -- helpers ---------------------------------------------------------------------------------------
def _image_units(ds: Dataset) -> str:
    mod = str(ds.get("Modality", "")).upper()
    if mod == "CT":
        return "HU"
    return str(ds.get("RescaleType", "") or "")


def _spacing(ds: Dataset, frame: int = 0) -> tuple[float, float] | None:
    from app.dicom.pixels import functional_item

    item = functional_item(ds, frame, "PixelMeasuresSequence")
    for src in (item, ds):
        if src is not None and "PixelSpacing" in src:
            try:
                v = [float(x) for x in src.PixelSpacing]
                if len(v) == 2 and v[0] > 0 and v[1] > 0:
                    return v[0], v[1]
            except (TypeError, ValueError):
                pass
    return None


def _frame_array(path: str, frame: int) -> np.ndarray:
    from app.dicom.pixels import frame_array

    return frame_array(path, frame)


def _read(path: str | os.PathLike[str], header_only: bool = True) -> Dataset:
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=header_only)
    except (pydicom.errors.InvalidDicomError, EOFError):
        raise NotDicomError("The file is not a DICOM file.", str(path)) from None
    except OSError as exc:
        raise DicomReadError(
            f"The file cannot be read ({exc.strerror or exc}).", str(path)
        ) from None


def _ellipse_points(p: Sequence[tuple[float, float]]) -> np.ndarray:
    """Major axis ends then minor axis ends of the axis-aligned ellipse in box p[0]-p[1]."""
    (x0, y0), (x1, y1) = p
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    horizontal = [(min(x0, x1), cy), (max(x0, x1), cy)]
    vertical = [(cx, min(y0, y1)), (cx, max(y0, y1))]
    major, minor = (
        (horizontal, vertical) if abs(x1 - x0) >= abs(y1 - y0) else (vertical, horizontal)
    )
    return np.array(major + minor, dtype=np.float64)


def _rect_points(p: Sequence[tuple[float, float]]) -> np.ndarray:
    (x0, y0), (x1, y1) = p
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], dtype=np.float64)


def _shape_of(m: Measurement) -> tuple[str, np.ndarray]:
    """(graphic type, points) of a measurement in image coordinates."""
    if m.kind == "rect":
        return "POLYLINE", _rect_points(m.points)
    if m.kind == "ellipse":
        return "ELLIPSE", _ellipse_points(m.points)
    return "POLYLINE", np.array(m.points, dtype=np.float64)


def _inside(ds: Dataset, pts: np.ndarray) -> np.ndarray:
    """Points clipped to the image (presentation states must stay on it)."""
    cols, rows = float(ds.Columns), float(ds.Rows)
    out = pts.copy()
    out[:, 0] = np.clip(out[:, 0], 0.0, cols)
    out[:, 1] = np.clip(out[:, 1], 0.0, rows)
    return out


@dataclass
class _Image:
    ref: ImageKey
    ds: Dataset
    path: str


def _images(library: Any, refs: Iterable[ImageKey]) -> dict[str, _Image]:
    out: dict[str, _Image] = {}
    for ref in refs:
        if ref.is_reformat or ref.sop_uid in out:
            continue
        inst = library.instance(ref.sop_uid)
        if inst is None:
            continue
        try:
            from app.reporting.dicom_out import complete_type2

            # real sources leave out Type 2 patient/study attributes highdicom copies
            out[ref.sop_uid] = _Image(ref, complete_type2(_read(inst["path"])), str(inst["path"]))
        except (NotDicomError, DicomReadError):
            continue
    return out


# -- export ----------------------------------------------------------------------------------------
def _gsps(
    series_images: list[_Image],
    measurements: list[Measurement],
    views: list[ImageView],
    series_number: int,
) -> Dataset:
    """One GSPS for a series' measurements. Long because the presentation state's layers,
    annotations and displayed areas are built in the standard's order."""
    import highdicom as hd

    layer = hd.pr.GraphicLayer(layer_name=_LAYER, order=1, description="Hilum measurements")
    annotations = []
    by_image: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        by_image.setdefault((m.image.sop_uid, m.image.frame), []).append(m)
    dss = {im.ref.sop_uid: im.ds for im in series_images}
    for (sop, frame), ms in by_image.items():
        ds = dss[sop]
        objects, texts = [], []
        for m in ms:
            graphic, pts = _shape_of(m)
            pts = _inside(ds, pts)
            track = f"hilum:{m.kind}:{m.id}"
            if m.kind == "cobb":
                for half in (pts[:2], pts[2:]):
                    objects.append(
                        hd.pr.GraphicObject(
                            graphic_type="POLYLINE",
                            graphic_data=half,
                            units="PIXEL",
                            tracking_id=track,
                            tracking_uid=_uid(track),
                        )
                    )
            else:
                objects.append(
                    hd.pr.GraphicObject(
                        graphic_type=graphic,
                        graphic_data=pts,
                        units="PIXEL",
                        tracking_id=track,
                        tracking_uid=_uid(track),
                    )
                )
            anchor = pts[np.argmax(pts[:, 0])]
            texts.append(
                hd.pr.TextObject(
                    text_value=m.text()[:64],
                    units="PIXEL",
                    anchor_point=(float(anchor[0]), float(anchor[1])),
                    anchor_point_visible=False,
                    tracking_id=track,
                    tracking_uid=_uid(track, "text"),
                )
            )
        multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
        annotations.append(
            hd.pr.GraphicAnnotation(
                referenced_images=[ds],
                graphic_layer=layer,
                referenced_frame_number=frame + 1 if multi else None,
                graphic_objects=objects,
                text_objects=texts,
            )
        )
    voi = []
    view_by_sop = {v.image.sop_uid: v for v in views if v.image.sop_uid in dss}
    for sop, v in view_by_sop.items():
        ds = dss[sop]
        multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
        voi.append(
            hd.pr.SoftcopyVOILUTTransformation(
                window_center=float(v.center),
                window_width=max(float(v.width), 1.0),
                window_explanation="Reader's window",
                referenced_images=hd.ReferencedImageSequence(
                    referenced_images=[ds],
                    referenced_frame_number=v.image.frame + 1 if multi else None,
                ),
            )
        )
    if voi and len(voi) < len(series_images):
        # images without a stored view keep their own header window
        for im in series_images:
            if im.ref.sop_uid in view_by_sop:
                continue
            from app.dicom.pixels import windows

            found = windows(im.ds)
            if not found:
                continue
            voi.append(
                hd.pr.SoftcopyVOILUTTransformation(
                    window_center=found[0][0],
                    window_width=found[0][1],
                    referenced_images=hd.ReferencedImageSequence(referenced_images=[im.ds]),
                )
            )
    first = series_images[0].ds
    kwargs: dict[str, Any] = {}
    if voi:
        kwargs["voi_lut_transformations"] = voi
    gsps = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[im.ds for im in series_images],
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=_MANUFACTURER,
        manufacturer_model_name="Hilum workstation",
        software_versions=__version__,
        device_serial_number="",
        content_label="HILUM_MEASURE",
        content_description=f"Measurements of series {first.get('SeriesNumber', '')}".strip(),
        graphic_annotations=annotations or None,
        graphic_layers=[layer] if annotations else None,
        content_creator_name="Hilum^Reader",
        **kwargs,
    )
    # General Series: Laterality is required for paired body parts; say which part it is
    if first.get("BodyPartExamined"):
        gsps.BodyPartExamined = first.BodyPartExamined
    elif "Laterality" not in gsps:
        gsps.Laterality = first.get("Laterality", "")
    # the reader's zoom: one displayed area per image that has one
    areas = []
    for sop, v in view_by_sop.items():
        if v.area is None:
            continue
        ds = dss[sop]
        (x0, y0), (x1, y1) = v.area
        item = Dataset()
        item.ReferencedImageSequence = hd.ReferencedImageSequence(referenced_images=[ds])
        item.PixelOriginInterpretation = (
            "VOLUME" if int(ds.get("NumberOfFrames", 1) or 1) > 1 else "FRAME"
        )
        # DICOM: 1-based pixels, top-left and bottom-right pixel of the displayed area
        item.DisplayedAreaTopLeftHandCorner = [
            math.floor(min(x0, x1)) + 1,
            math.floor(min(y0, y1)) + 1,
        ]
        item.DisplayedAreaBottomRightHandCorner = [
            max(math.ceil(max(x0, x1)), 1),
            max(math.ceil(max(y0, y1)), 1),
        ]
        item.PresentationSizeMode = "SCALE TO FIT"
        item.PresentationPixelAspectRatio = [1, 1]
        areas.append(item)
    if areas:
        rest = [
            im
            for im in series_images
            if im.ref.sop_uid not in {s for s, v in view_by_sop.items() if v.area is not None}
        ]
        for im in rest:
            item = Dataset()
            item.ReferencedImageSequence = hd.ReferencedImageSequence(referenced_images=[im.ds])
            item.PixelOriginInterpretation = "FRAME"
            item.DisplayedAreaTopLeftHandCorner = [1, 1]
            item.DisplayedAreaBottomRightHandCorner = [int(im.ds.Columns), int(im.ds.Rows)]
            item.PresentationSizeMode = "SCALE TO FIT"
            item.PresentationPixelAspectRatio = [1, 1]
            areas.append(item)
        if len(areas) == 1:
            del areas[0].ReferencedImageSequence
        gsps.DisplayedAreaSelectionSequence = areas
    return gsps


def _sr_measurements(m: Measurement, unit_code: Any) -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    v = m.values
    out = []

    def add(name: Any, key: str, unit: Any) -> None:
        if key in v and v[key] is not None and math.isfinite(float(v[key])):
            out.append(hd.sr.Measurement(name=name, value=float(v[key]), unit=unit))

    if m.kind == "length":
        add(
            codes.SCT.Length,
            "length",
            codes.UCUM.Millimeter
            if v.get("unit") == "mm"
            else hd.sr.CodedConcept("{px}", "UCUM", "pixels"),
        )
    elif m.kind == "angle":
        add(codes.SCT.Angle, "angle", codes.UCUM.Degree)
    elif m.kind == "cobb":
        add(codes.SCT.CobbAngle, "angle", codes.UCUM.Degree)
    else:
        add(codes.SCT.Mean, "mean", unit_code)
        add(codes.SCT.StandardDeviation, "sd", unit_code)
        add(codes.SCT.Minimum, "min", unit_code)
        add(codes.SCT.Maximum, "max", unit_code)
        add(
            codes.SCT.Area,
            "area",
            codes.UCUM.SquareMillimeter
            if v.get("area_unit") == "mm²"
            else hd.sr.CodedConcept("{px}2", "UCUM", "square pixels"),
        )
    return out


def _measurement_report(
    images: dict[str, _Image],
    measurements: list[Measurement],
    evidence: list[Dataset],
    series_number: int,
    frames_of_reference: dict[str, str],
) -> Dataset:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from app.dicom.mpr import Plane

    groups = []
    for m in measurements:
        ident = f"hilum:{m.kind}:{m.id}"
        graphic, pts = _shape_of(m)
        if m.image.is_reformat:
            for_uid = frames_of_reference.get(m.image.series_uid)
            if not for_uid:
                continue
            plane = Plane.from_json(json.loads(m.image.plane))
            ident += f":{plane.kind}"  # which pane it goes back to (two points do not say)
            xyz = np.array([plane.point(y - 0.5, x - 0.5) for x, y in pts])
            region: Any = hd.sr.ImageRegion3D(
                graphic_type=graphic, graphic_data=xyz, frame_of_reference_uid=for_uid
            )
            ds = None
        else:
            im = images.get(m.image.sop_uid)
            if im is None:
                continue
            ds = im.ds
            multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
            source = hd.sr.SourceImageForRegion.from_source_image(
                ds, referenced_frame_numbers=[m.image.frame + 1] if multi else None
            )
            region = hd.sr.ImageRegion(graphic_type=graphic, graphic_data=pts, source_image=source)
        track = hd.sr.TrackingIdentifier(uid=_uid("hilum", m.id), identifier=ident)
        unit = str(m.values.get("unit", "") or "")
        unit_code = codes.UCUM.HounsfieldUnit if unit == "HU" else codes.UCUM.NoUnits
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=track,
                referenced_region=region,
                measurements=_sr_measurements(m, unit_code) or None,
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_uid("hilum-workstation"),
            name="Hilum",
            manufacturer_name=_MANUFACTURER,
            model_name="Hilum workstation",
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion
        if str(evidence[0].get("Modality", "")) == "CT"
        else hd.sr.CodedConcept("P5-09051", "SRT", "Imaging procedure"),
        imaging_measurements=groups or None,
        title=codes.DCM.ImagingMeasurementReport,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=_MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description="Hilum measurement report",
    )


def _kos(images: dict[str, _Image], keys: list[KeyImageMark], series_number: int) -> Dataset:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    dss = [images[k.image.sop_uid].ds for k in keys if k.image.sop_uid in images]
    notes = "; ".join(k.note for k in keys if k.note)
    content = hd.ko.KeyObjectSelection(
        document_title=codes.DCM.OfInterest,
        referenced_objects=dss,
        description=notes[:1024] or "Key images marked by the reader",
    )
    return hd.ko.KeyObjectSelectionDocument(
        evidence=dss,
        content=content,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=_MANUFACTURER,
        series_description="Hilum key images",
    )


def _write(ds: Dataset, path: Path) -> Path:
    from app.reporting.dicom_out import _add_deid_marks, complete_type2, write

    complete_type2(ds)
    # a de-identified source copied as "identity removed" needs its method (Type 1C)
    _add_deid_marks(ds, ds)
    write(ds, path)  # created private (0600) by the one writer
    return path


def export_annotations(library: Any, study_uid: str, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the GSPS (one per series), TID 1500 SR and KOS for what is stored with a study.

    Parameters
    ----------
    library : Library
    study_uid : str
    out_dir : path
        Created (0700) when missing.

    Returns
    -------
    list of Path
        The files written (none when nothing is stored).

    Raises
    ------
    ExportError
        When the study is unknown, its images are not readable, or a file cannot be written.

    Long because the GSPS, TID 1500 and KOS are built from the same stored measurements in one pass.
    """
    if library.study(study_uid) is None:
        raise ExportError("The study is not in the library.", study_uid)
    measurements = load_measurements(library, study_uid)
    keys = load_key_images(library, study_uid)
    views = load_views(library, study_uid)
    refs = [m.image for m in measurements] + [k.image for k in keys] + [v.image for v in views]
    images = _images(library, refs)
    out = Path(out_dir)
    try:
        private_dir(out)  # 0700, missing parents too, whatever the umask
    except OSError as exc:
        raise ExportError(f"Cannot create {out} ({exc.strerror or exc}).", str(out)) from None
    written: list[Path] = []
    on_images = [m for m in measurements if not m.image.is_reformat and m.image.sop_uid in images]
    # one presentation state per series with measurements or a stored view
    series: dict[str, list[_Image]] = {}
    for im in images.values():
        if any(m.image.sop_uid == im.ref.sop_uid for m in on_images) or any(
            v.image.sop_uid == im.ref.sop_uid for v in views
        ):
            series.setdefault(str(im.ds.SeriesInstanceUID), []).append(im)
    n = 900
    for ims in series.values():
        sops = {im.ref.sop_uid for im in ims}
        ms = [m for m in on_images if m.image.sop_uid in sops]
        vs = [v for v in views if v.image.sop_uid in sops]
        n += 1
        gsps = _gsps(ims, ms, vs, n)
        written.append(_write(gsps, out / f"GSPS_{n}.dcm"))
    if measurements:
        frames_of_reference: dict[str, str] = {}
        for m in measurements:
            if m.image.is_reformat and m.image.series_uid not in frames_of_reference:
                inst = library.instances(m.image.series_uid)
                if inst:
                    try:
                        from app.reporting.dicom_out import complete_type2

                        ds = complete_type2(_read(inst[0]["path"]))
                        images.setdefault(
                            str(ds.SOPInstanceUID),
                            _Image(
                                ImageKey(study_uid, m.image.series_uid, str(ds.SOPInstanceUID)),
                                ds,
                                str(inst[0]["path"]),
                            ),
                        )
                        if ds.get("FrameOfReferenceUID"):
                            frames_of_reference[m.image.series_uid] = str(ds.FrameOfReferenceUID)
                    except (NotDicomError, DicomReadError):
                        pass
        used = {m.image.sop_uid for m in measurements if not m.image.is_reformat}
        used |= {
            im.ref.sop_uid for im in images.values() if im.ref.series_uid in frames_of_reference
        }
        evidence = [images[s].ds for s in used if s in images]
        if evidence:
            sr = _measurement_report(images, measurements, evidence, 950, frames_of_reference)
            written.append(_write(sr, out / "SR_measurements.dcm"))
    if keys and any(k.image.sop_uid in images for k in keys):
        written.append(_write(_kos(images, keys, 960), out / "KOS_key_images.dcm"))
    return written


def measurement_lines(library: Any, study_uid: str) -> list[str]:
    """One line per stored measurement of a study, for the report (panel, PDF, draft):
    e.g. "Series 3, image 41: Length 23.4 mm"."""
    out = []
    for m in load_measurements(library, study_uid):
        where = ""
        series = library.series_info(m.image.series_uid) if m.image.series_uid else None
        number = (series or {}).get("number")
        if m.image.is_reformat:
            kind = json.loads(m.image.plane).get("kind", "oblique")
            where = f"{kind} reformat"
        else:
            inst = library.instance(m.image.sop_uid)
            if inst is not None and inst.get("instance_number") is not None:
                where = f"image {inst['instance_number']}"
            if inst is not None and (inst.get("frames") or 1) > 1:
                where += f" frame {m.image.frame + 1}"
        prefix = ", ".join(
            p for p in (f"Series {number}" if number is not None else "", where) if p
        )
        label = f" ({m.label})" if m.label else ""
        out.append(f"{prefix}: {m.text()}{label}" if prefix else m.text() + label)
    return out


# -- import ----------------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    """What :func:`import_annotations` loaded."""

    measurements: int = 0
    key_images: int = 0
    views: int = 0
    skipped: list[str] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "measurements": self.measurements,
            "key_images": self.key_images,
            "views": self.views,
            "skipped": self.skipped,
            "studies": sorted(self.studies),
        }


def _ref_for(library: Any, study_uid: str, sop_uid: str, frame: int = 0) -> ImageKey:
    inst = library.instance(sop_uid)
    series_uid = str(inst["series_uid"]) if inst else ""
    return ImageKey(study_uid, series_uid, sop_uid, frame)


def _values_from_image(
    library: Any, kind: str, points: Sequence[tuple[float, float]], ref: ImageKey
) -> dict[str, Any]:
    inst = library.instance(ref.sop_uid)
    if inst is None:
        return {}
    try:
        ds = _read(inst["path"])
        frame = _frame_array(inst["path"], ref.frame) if kind in ("rect", "ellipse") else None
    except Exception as exc:  # noqa: BLE001 - an unreadable image leaves the values empty
        log.debug("values not computed: %s", type(exc).__name__)
        return {}
    return compute_values(kind, points, frame, _spacing(ds, ref.frame), _image_units(ds))


def _kind_of(graphic: str, pts: np.ndarray) -> tuple[str, list[tuple[float, float]]] | None:
    """A measurement kind from a presentation-state/SR shape (None: not one Hilum shows)."""
    p = [(float(x), float(y)) for x, y in pts]
    if graphic == "POLYLINE":
        closed = len(p) >= 4 and np.allclose(p[0], p[-1])
        if closed and len(p) == 5:
            xs, ys = [q[0] for q in p[:4]], [q[1] for q in p[:4]]
            if len(set(np.round(xs, 3))) == 2 and len(set(np.round(ys, 3))) == 2:
                return "rect", [(min(xs), min(ys)), (max(xs), max(ys))]
            return None
        if len(p) == 2:
            return "length", p
        if len(p) == 3:
            return "angle", p
        if len(p) == 4 and not closed:
            return "cobb", p
        return None
    if graphic == "ELLIPSE" and len(p) == 4:
        xs, ys = [q[0] for q in p], [q[1] for q in p]
        return "ellipse", [(min(xs), min(ys)), (max(xs), max(ys))]
    if graphic == "CIRCLE" and len(p) == 2:
        r = math.hypot(p[1][0] - p[0][0], p[1][1] - p[0][1])
        return "ellipse", [(p[0][0] - r, p[0][1] - r), (p[0][0] + r, p[0][1] + r)]
    return None


def _frame_numbers(value: Any) -> list[int]:
    """ReferencedFrameNumber as a list of 1-based ints (one value or several)."""
    if value is None or value == "":
        return []
    if isinstance(value, (int, float, str)):
        return [int(value)]
    return [int(v) for v in value]


def _import_id(tracking: str, *parts: str) -> str:
    """The library id of an imported measurement: Hilum's own id when the object came from
    Hilum (its tracking id, so GSPS and SR of one measurement give one record), else derived
    from the object's UID (re-importing replaces instead of duplicating)."""
    if tracking.startswith("hilum:") and tracking.count(":") == 2:
        return tracking.split(":", 2)[2]
    return _uid(tracking, *parts)


def _import_gsps(library: Any, ds: Dataset, summary: ImportSummary) -> None:
    study = str(ds.StudyInstanceUID)
    source = f"GSPS {ds.get('ContentLabel', '')}".strip()
    all_refs: list[tuple[str, int]] = []
    for s in ds.get("ReferencedSeriesSequence", []):
        for r in s.get("ReferencedImageSequence", []):
            frames = _frame_numbers(r.get("ReferencedFrameNumber"))
            all_refs.append((str(r.ReferencedSOPInstanceUID), (frames[0] - 1) if frames else 0))
    for ai, ann in enumerate(ds.get("GraphicAnnotationSequence", [])):
        refs: list[tuple[str, int]] = []
        for r in ann.get("ReferencedImageSequence", []):
            fs = _frame_numbers(r.get("ReferencedFrameNumber")) or [1]
            refs.extend((str(r.ReferencedSOPInstanceUID), f - 1) for f in fs)
        if not refs:
            refs = all_refs  # the annotation applies to every referenced image
        # objects of one measurement (a Cobb angle is two lines) share a tracking id
        shapes: dict[str, list[tuple[str, np.ndarray]]] = {}
        for oi, obj in enumerate(ann.get("GraphicObjectSequence", [])):
            if str(obj.get("GraphicAnnotationUnits", "PIXEL")) != "PIXEL":
                summary.skipped.append("a display-relative graphic (not bound to pixels)")
                continue
            data = np.asarray([float(v) for v in obj.GraphicData]).reshape(-1, 2)
            key = str(obj.get("TrackingID", "") or f"{ai}:{oi}")
            shapes.setdefault(key, []).append((str(obj.GraphicType), data))
        for key, parts in shapes.items():
            if key.startswith("hilum:cobb:") and len(parts) == 2:
                found: Any = ("cobb", [tuple(x) for x in np.vstack([parts[0][1], parts[1][1]])])
            else:
                found = _kind_of(parts[0][0], parts[0][1]) if len(parts) == 1 else None
            if found is None:
                summary.skipped.append(f"a {parts[0][0].lower()} graphic that is not a measurement")
                continue
            kind, pts = found
            for sop, frame in refs:
                ref = _ref_for(library, study, sop, frame)
                m = Measurement(
                    kind=kind,
                    points=tuple(pts),
                    image=ref,
                    values=_values_from_image(library, kind, pts, ref),
                    source=source,
                    id=_import_id(key, str(ds.SOPInstanceUID), sop, str(frame)),
                )
                save_measurement(library, m)
                summary.measurements += 1
    # the window the other reader used
    for item in ds.get("SoftcopyVOILUTSequence", []):
        if "WindowCenter" not in item or "WindowWidth" not in item:
            continue
        c = item.WindowCenter
        w = item.WindowWidth
        c = float(c[0] if isinstance(c, pydicom.multival.MultiValue) else c)
        w = float(w[0] if isinstance(w, pydicom.multival.MultiValue) else w)
        targets = [
            (str(r.ReferencedSOPInstanceUID), 0) for r in item.get("ReferencedImageSequence", [])
        ] or all_refs
        for sop, frame in targets:
            save_view(library, ImageView(_ref_for(library, study, sop, frame), c, w))
            summary.views += 1
    # the zoomed area the other reader displayed
    for item in ds.get("DisplayedAreaSelectionSequence", []):
        try:
            x0, y0 = (float(v) for v in item.DisplayedAreaTopLeftHandCorner)
            x1, y1 = (float(v) for v in item.DisplayedAreaBottomRightHandCorner)
        except (AttributeError, TypeError, ValueError):
            continue
        targets = [
            (str(r.ReferencedSOPInstanceUID), 0) for r in item.get("ReferencedImageSequence", [])
        ] or all_refs
        for sop, frame in targets:
            ref = _ref_for(library, study, sop, frame)
            old = next((v for v in load_views(library, study) if v.image.key() == ref.key()), None)
            inst = library.instance(sop)
            whole = inst is not None and (x0, y0, x1, y1) == (1, 1, inst["columns"], inst["rows"])
            if old is not None and not whole:
                save_view(
                    library, ImageView(ref, old.center, old.width, ((x0 - 1, y0 - 1), (x1, y1)))
                )
    summary.studies.add(study)


def _import_sr(library: Any, path: str, ds: Dataset, summary: ImportSummary) -> None:
    """Long because each TID 1500 measurement kind (length, area, angle, 3-D coordinates) is decoded in turn from one content-tree walk."""

    import highdicom as hd

    try:
        report = hd.sr.MeasurementReport.from_sequence([_root_item(ds)], is_root=True)
    except Exception as exc:  # noqa: BLE001 - not a TID 1500 report
        summary.skipped.append(
            f"{Path(path).name}: not a TID 1500 measurement report ({type(exc).__name__})"
        )
        return
    study = str(ds.StudyInstanceUID)
    names = {
        "Length": "length",
        "Angle": "angle",
        "Cobb angle": "cobb",
        "Mean": "mean",
        "Standard Deviation": "sd",
        "Minimum": "min",
        "Maximum": "max",
        "Area": "area",
    }
    for gi, group in enumerate(report.get_planar_roi_measurement_groups()):
        roi = group.roi
        if roi is None or not isinstance(roi, (hd.sr.ImageRegion, hd.sr.ImageRegion3D)):
            summary.skipped.append("a measurement without an image region")
            continue
        values: dict[str, Any] = {}
        kinds = set()
        for meas in group.get_measurements():
            key = names.get(str(meas.name.meaning))
            if key is None:
                continue
            values[key] = float(meas.value)
            unit = str(meas.unit.value)
            if key == "length":
                values["unit"] = "mm" if unit == "mm" else unit
            elif key in ("angle",):
                values["unit"] = "deg"
            elif key == "cobb":
                values["angle"] = values.pop("cobb")
                values["unit"] = "deg"
                kinds.add("cobb")
            elif key == "area":
                values["area_unit"] = "mm²" if unit == "mm2" else unit
            else:
                values["unit"] = "HU" if unit == "[hnsf'U]" else ("" if unit == "1" else unit)
        tracking = str(group.tracking_identifier or "")
        if isinstance(roi, hd.sr.ImageRegion3D):  # on a reformat plane: patient coordinates
            placed = _on_reformat(library, study, roi, tracking, summary)
            if placed is None:
                continue
            ref, xy = placed
        else:
            xy = np.asarray(roi.value)
        found = _kind_of(str(roi.graphic_type.value), xy)
        if found is None:
            summary.skipped.append(f"a {roi.graphic_type.value.lower()} region")
            continue
        kind, pts = found
        if "cobb" in kinds:
            kind = "cobb" if len(pts) == 4 else kind
        if not isinstance(roi, hd.sr.ImageRegion3D):
            src = roi.ContentSequence[0]
            sop = str(src.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
            frames = _frame_numbers(src.ReferencedSOPSequence[0].get("ReferencedFrameNumber"))
            frame = frames[0] - 1 if frames else 0
            ref = _ref_for(library, study, sop, frame)
            if not values:
                values = _values_from_image(library, kind, pts, ref)
        elif "mean" in values and "n" not in values:
            values.setdefault("area_unit", "mm²")
        m = Measurement(
            kind=kind,
            points=tuple(pts),
            image=ref,
            values=values,
            source=f"SR {ds.get('SeriesDescription', '') or 'measurement report'}".strip(),
            id=_import_id(tracking, str(ds.SOPInstanceUID), str(gi)),
        )
        save_measurement(library, m)
        summary.measurements += 1
    summary.studies.add(study)


def _series_of_frame_of_reference(library: Any, study: str, for_uid: str) -> str:
    """The series of ``study`` in frame of reference ``for_uid`` with the most images (the
    volume a reformat is made from), or ""."""
    best, most = "", 0
    for s in library.series(study):
        inst = library.instances(s["series_uid"])
        if len(inst) < 2 or len(inst) <= most:
            continue
        try:
            ds = _read(inst[0]["path"])
        except (NotDicomError, DicomReadError, OSError):
            continue
        if str(ds.get("FrameOfReferenceUID", "")) == for_uid:
            best, most = str(s["series_uid"]), len(inst)
    return best


#: points farther than this from one plane (mm) are not on it (SCOORD3D values are 32-bit floats)
_PLANE_TOLERANCE_MM = 0.05


def reformat_plane_of(xyz: np.ndarray, hint: str = "") -> Any:
    """The reformat plane 3-D points were drawn on, as an :class:`app.dicom.mpr.Plane` with
    1 mm pixels whose grid starts at the points (the MPR view moves them onto its own plane).

    An axial, coronal or sagittal plane when every point lies on one (``hint``, the kind the
    exporter named, is tried first: two points lie on two standard planes); else the plane of
    three or more points that are not on one line. None when the points fit no plane.
    """
    from app.dicom.mpr import AXES, Plane

    pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    if len(pts) < 2 or not np.all(np.isfinite(pts)):
        return None
    candidates = [hint] if hint in AXES else []
    candidates += [k for k in AXES if k != hint]
    axes: tuple[np.ndarray, np.ndarray, str] | None = None
    for kind in candidates:
        row, col = (np.asarray(v, dtype=np.float64) for v in AXES[kind])
        if np.all(np.abs((pts - pts[0]) @ np.cross(row, col)) <= _PLANE_TOLERANCE_MM):
            axes = (row, col, kind)
            break
    if axes is None and len(pts) >= 3:
        centred = pts - pts.mean(axis=0)
        _u, sv, vt = np.linalg.svd(centred)
        if sv[1] > 1e-6 and np.all(np.abs(centred @ vt[2]) <= _PLANE_TOLERANCE_MM):
            axes = (vt[0], vt[1], "oblique")
    if axes is None:
        return None
    row, col, kind = axes
    u, v = (pts - pts[0]) @ row, (pts - pts[0]) @ col
    origin = pts[0] + u.min() * row + v.min() * col

    def t3(v: np.ndarray) -> tuple[float, float, float]:
        return float(v[0]), float(v[1]), float(v[2])

    return Plane(
        origin=t3(origin),
        row=t3(row),
        col=t3(col),
        spacing=1.0,
        rows=math.ceil(v.max() - v.min()) + 2,
        columns=math.ceil(u.max() - u.min()) + 2,
        kind=kind,
    )


def _on_reformat(
    library: Any, study: str, roi: Any, tracking: str, summary: ImportSummary
) -> tuple[ImageKey, np.ndarray] | None:
    """Where a TID 1500 region in patient coordinates (SCOORD3D) goes: the reformat plane of the
    volume series in its frame of reference, and the points on that plane (image coordinates)."""
    series = _series_of_frame_of_reference(library, study, str(roi.frame_of_reference_uid))
    if not series:
        summary.skipped.append("a measurement in a frame of reference no series of the study has")
        return None
    xyz = np.asarray(roi.value, dtype=np.float64).reshape(-1, 3)
    hint = tracking.rsplit(":", 1)[-1] if tracking.startswith("hilum:") else ""
    plane = reformat_plane_of(xyz, hint)
    if plane is None:
        summary.skipped.append(
            "a measurement whose points lie on no one plane (or a length on "
            "an oblique plane, which two points do not define)"
        )
        return None
    # image coordinates on the plane (pixel centres at +0.5, as the exporter wrote them)
    xy = np.array([(c + 0.5, r + 0.5) for r, c in (plane.pixel(p) for p in xyz)])
    return ImageKey.of_plane(study, series, plane), xy


def _root_item(sr: Dataset) -> Dataset:
    """The SR document root as a content item (for highdicom's ``from_sequence``).

    Some writers leave out the template identifier of a TID 1500 root; the title (Imaging
    Measurement Report, DCM 126000) identifies it as well.
    """
    item = Dataset()
    item.ValueType = "CONTAINER"
    item.ConceptNameCodeSequence = sr.ConceptNameCodeSequence
    item.ContinuityOfContent = sr.get("ContinuityOfContent", "SEPARATE")
    item.ContentSequence = sr.ContentSequence
    if "ContentTemplateSequence" in sr:
        item.ContentTemplateSequence = sr.ContentTemplateSequence
    elif str(sr.ConceptNameCodeSequence[0].CodeValue) == "126000":
        tpl = Dataset()
        tpl.MappingResource = "DCMR"
        tpl.TemplateIdentifier = "1500"
        item.ContentTemplateSequence = [tpl]
    return item


def _import_kos(library: Any, ds: Dataset, summary: ImportSummary) -> None:
    study = str(ds.StudyInstanceUID)
    note = ""
    for item in ds.get("ContentSequence", []):
        if item.get("ValueType") == "TEXT":
            note = str(item.get("TextValue", ""))
    for item in ds.get("ContentSequence", []):
        if item.get("ValueType") != "IMAGE":
            continue
        for r in item.get("ReferencedSOPSequence", []):
            frames = _frame_numbers(r.get("ReferencedFrameNumber"))
            frame = frames[0] - 1 if frames else 0
            save_key_image(
                library,
                KeyImageMark(
                    _ref_for(library, study, str(r.ReferencedSOPInstanceUID), frame), note
                ),
            )
            summary.key_images += 1
    summary.studies.add(study)


def import_annotations(library: Any, files: Iterable[str | os.PathLike[str]]) -> ImportSummary:
    """Load GSPS, TID 1500 SR and KOS objects into the library, bound to their images.

    Re-importing the same object replaces what it gave before (ids derive from its UID).

    Raises
    ------
    NotDicomError, DicomReadError
        For a file that is not DICOM (other objects are reported in ``skipped``).
    """
    summary = ImportSummary()
    for f in files:
        path = str(f)
        ds = _read(path, header_only=False)
        sop_class = str(ds.get("SOPClassUID", ""))
        if "StudyInstanceUID" not in ds:
            summary.skipped.append(f"{Path(path).name}: no study")
            continue
        if sop_class == GSPS_UID:
            _import_gsps(library, ds, summary)
        elif sop_class == KOS_UID:
            _import_kos(library, ds, summary)
        elif sop_class in _SR_UIDS:
            _import_sr(library, path, ds, summary)
        else:
            summary.skipped.append(
                f"{Path(path).name}: not a presentation state, measurement "
                "report or key object selection"
            )
    return summary


def split_annotation_files(
    paths: Iterable[str | os.PathLike[str]], progress: Any = None
) -> tuple[list[str], list[str]]:
    """Dropped or chosen paths split into annotation objects and the rest (worker thread).

    Parameters
    ----------
    paths : iterable of path
    progress : Progress, optional
        Checked for cancel between files.

    Returns
    -------
    (list of str, list of str)
        The files that are presentation states, structured reports or key object selections
        (imported with :func:`import_annotations`, not as images), and everything else
        (folders, archives, images, unreadable files: imported as images, which reports them).
    """
    objects, rest = [], []
    classes = {GSPS_UID, KOS_UID, *_SR_UIDS}
    for p in paths:
        path = os.fspath(p)
        if progress is not None:
            progress.check()
        if os.path.isfile(path):
            try:
                # the class alone: quick for the hundreds of films a drop can hold
                sop_class = str(
                    pydicom.dcmread(
                        path, stop_before_pixels=True, specific_tags=["SOPClassUID"]
                    ).get("SOPClassUID", "")
                )
            except Exception:  # noqa: BLE001 - hostile or not DICOM: the image import reports it
                sop_class = ""
            if sop_class in classes:
                objects.append(path)
                continue
        rest.append(path)
    return objects, rest
