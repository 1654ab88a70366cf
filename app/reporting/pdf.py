"""The signed-off report as a PDF (reportlab), with embedded fonts that cover Latin and Chinese.

Layout: institution header (name, address, logo), patient and study block, indication, comparison,
FINDINGS, IMPRESSION, the AI results table with provenance, key images (optionally with the
saliency overlay and its legend), reader and sign-off time, the AI disclaimer, and on every page
the document id and "Page n of N".

Fonts: Bitstream Vera (shipped inside reportlab) for Latin text and Droid Sans Fallback
(``resources/fonts``, Apache 2.0) for CJK. Both are TrueType fonts registered with reportlab's
``TTFont``, so they are subset-embedded in the file; text is split into runs by glyph coverage so
mixed English/Chinese lines render with the right font.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import escape

import numpy as np
from pydicom.dataset import Dataset

from app.core.errors import ExportError
from app.core.paths import resources_dir
from app.core.types import ImageRef, ModelResult, ReportDraft
from app.inference.manifest import DEMONSTRATION_WORDS

log = logging.getLogger(__name__)

#: The sentence every exported report carries (issue 7).
PDF_DISCLAIMER = "AI-generated content requires review by a physician"

LATIN_FONT = "HilumSans"
LATIN_BOLD = "HilumSans-Bold"
CJK_FONT = "HilumCJK"
CJK_FONT_FILE = "DroidSansFallbackFull.ttf"
#: resolution key images are embedded at (at their printed size)
PRINT_DPI = 300


@dataclass
class InstitutionHeader:
    """The letterhead printed at the top of the report (from the site's settings).

    Attributes
    ----------
    name : str
        Institution name.
    address : str
        Address lines, separated by newlines.
    logo_path : str
        A PNG/JPEG logo; empty for none. A missing file is logged and skipped.
    """

    name: str = ""
    address: str = ""
    logo_path: str = ""


@dataclass
class KeyImage:
    """An image the reader chose for the report.

    Attributes
    ----------
    display : numpy.ndarray
        uint8 (h, w) or (h, w, 3): the image as displayed (window applied).
    overlay : numpy.ndarray, optional
        uint8 (h, w, 3): the same image with the saliency overlay rendered on it.
    use_overlay : bool
        Show the overlay (True) or the plain image (False) in the PDF; a Secondary Capture is
        written for every key image that has an overlay either way.
    legend : str
        Text legend of the overlay (method, label, colour map, threshold).
    legend_image : numpy.ndarray, optional
        uint8 RGB colour bar to print beside the legend.
    caption : str
        Reader's caption.
    source : ImageRef, optional
        The source instance (for DICOM references).
    """

    display: np.ndarray
    overlay: np.ndarray | None = None
    use_overlay: bool = True
    legend: str = ""
    legend_image: np.ndarray | None = None
    caption: str = ""
    source: ImageRef | None = None

    def shown(self) -> np.ndarray:
        """The array printed in the PDF."""
        if self.use_overlay and self.overlay is not None:
            return self.overlay
        return self.display


@dataclass
class PatientBlock:
    """Patient and study fields printed on the report (already de-identified when asked)."""

    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    accession: str = ""
    modality: str = ""
    study_description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dataset(cls, ds: Dataset | None) -> "PatientBlock":
        """Read the block from a (header of a) source dataset."""
        if ds is None:
            return cls()

        def get(keyword: str) -> str:
            value = ds.get(keyword, "")
            return "" if value is None else str(value)

        name = get("PatientName").replace("^", " ").strip()
        return cls(
            patient_name=name,
            patient_id=get("PatientID"),
            birth_date=_fmt_date(get("PatientBirthDate")),
            sex=get("PatientSex"),
            study_date=_fmt_date(get("StudyDate")),
            accession=get("AccessionNumber"),
            modality=get("Modality"),
            study_description=get("StudyDescription"),
        )


def local_time(iso: str) -> str:
    """An ISO 8601 time as the reader reads it: ``"2026-11-30 10:22 CET"`` in the workstation's
    time zone. Text that is not an ISO time is returned as it is; a time without a zone is
    taken as local."""
    text = (iso or "").strip()
    if not text:
        return ""
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    when = when.astimezone() if when.tzinfo is not None else when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M %Z").strip()


def _fmt_date(da: str) -> str:
    if len(da) == 8 and da.isdigit():
        return f"{da[:4]}-{da[4:6]}-{da[6:]}"
    return da


# --- fonts ----------------------------------------------------------------------------------------
_FONTS: dict[str, Any] = {}
_FONTS_LOCK = threading.Lock()


def font_path() -> Path:
    """The bundled CJK font file."""
    return resources_dir() / "fonts" / CJK_FONT_FILE


def register_fonts() -> None:
    """Register the embedded TrueType fonts with reportlab (once per process).

    Raises
    ------
    ExportError
        When the bundled CJK font is missing (a broken install).
    """
    with _FONTS_LOCK:  # exports run on worker threads
        if not _FONTS:
            _register_fonts()


def _register_fonts() -> None:
    from reportlab import rl_config
    from reportlab.lib.fonts import addMapping

    # binary image streams: the ASCII85 text encoding reportlab defaults to runs in pure Python
    # here (no rl_accel) and took seconds per key image
    rl_config.useA85 = 0
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    cjk = font_path()
    if not cjk.is_file():
        raise ExportError(f"The report font is missing ({cjk.name}); reinstall Hilum.", str(cjk))
    latin = TTFont(LATIN_FONT, "Vera.ttf")  # found on reportlab's own font path
    latin_bold = TTFont(LATIN_BOLD, "VeraBd.ttf")
    cjk_font = TTFont(CJK_FONT, str(cjk))
    for f in (latin, latin_bold, cjk_font):
        pdfmetrics.registerFont(f)
    addMapping(LATIN_FONT, 0, 0, LATIN_FONT)
    addMapping(LATIN_FONT, 1, 0, LATIN_BOLD)
    addMapping(LATIN_FONT, 0, 1, LATIN_FONT)
    addMapping(LATIN_FONT, 1, 1, LATIN_BOLD)
    _FONTS["latin"] = set(latin.face.charToGlyph)
    _FONTS["cjk"] = set(cjk_font.face.charToGlyph)


def has_cjk(text: str) -> bool:
    """True when ``text`` has characters only the CJK font covers."""
    register_fonts()
    latin = _FONTS["latin"]
    return any(ord(ch) not in latin and ord(ch) in _FONTS["cjk"] for ch in text)


def rich(text: str, bold: bool = False) -> str:
    """Paragraph markup for ``text``: XML-escaped, newlines kept, CJK runs in the CJK font.

    Parameters
    ----------
    text : str
        Plain text (may mix English and Chinese).
    bold : bool
        Latin runs in bold (the CJK font has a single weight).

    Returns
    -------
    str
        reportlab paragraph markup.
    """
    register_fonts()
    latin, cjk = _FONTS["latin"], _FONTS["cjk"]
    out: list[str] = []
    run: list[str] = []
    run_cjk = False

    def flush() -> None:
        if not run:
            return
        chunk = escape("".join(run)).replace("\n", "<br/>")
        if run_cjk:
            out.append(f'<font name="{CJK_FONT}">{chunk}</font>')
        else:
            out.append(f"<b>{chunk}</b>" if bold else chunk)
        run.clear()

    for ch in text.replace("\r\n", "\n"):
        is_cjk = ord(ch) not in latin and ord(ch) in cjk and ch != "\n"
        if is_cjk != run_cjk:
            flush()
            run_cjk = is_cjk
        run.append(ch)
    flush()
    return "".join(out)


# --- document -------------------------------------------------------------------------------------
def _styles() -> dict[str, Any]:
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("body", fontName=LATIN_FONT, fontSize=9.5, leading=13)
    return {
        "body": base,
        "body_cjk": ParagraphStyle("body_cjk", parent=base, wordWrap="CJK"),
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5),
        "small_cjk": ParagraphStyle(
            "small_cjk", parent=base, fontSize=7.5, leading=9.5, wordWrap="CJK"
        ),
        "title": ParagraphStyle(
            "title", parent=base, fontName=LATIN_BOLD, fontSize=15, leading=19, spaceAfter=4
        ),
        "inst": ParagraphStyle("inst", parent=base, fontName=LATIN_BOLD, fontSize=12, leading=15),
        "heading": ParagraphStyle(
            "heading",
            parent=base,
            fontName=LATIN_BOLD,
            fontSize=10.5,
            leading=14,
            spaceBefore=8,
            spaceAfter=2,
            keepWithNext=1,
            textColor=colors.HexColor("#1f3a5f"),
        ),
        "disclaimer": ParagraphStyle(
            "disclaimer",
            parent=base,
            fontName=LATIN_BOLD,
            fontSize=9,
            textColor=colors.HexColor("#8a1c1c"),
            spaceBefore=6,
        ),
    }


def _para(text: str, styles: dict[str, Any], style: str = "body", bold: bool = False) -> Any:
    from reportlab.platypus import Paragraph

    name = style + "_cjk" if has_cjk(text) and style + "_cjk" in styles else style
    return Paragraph(rich(text, bold=bold), styles[name])


def _image_flowable(arr: np.ndarray, max_w: float, max_h: float) -> Any:
    import io

    from PIL import Image as PILImage
    from reportlab.platypus import Image

    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise ExportError("Key images must be 8-bit display images.")
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    pil = PILImage.fromarray(np.ascontiguousarray(a))
    h, w = a.shape[:2]
    # ~300 dpi at the printed size is all a page can show; full-resolution films would make the
    # PDF megabytes larger and slow to write
    scale_px = min(1.0, PRINT_DPI / 72.0 * max_w / w, PRINT_DPI / 72.0 * max_h / h)
    if scale_px < 1.0:
        pil = pil.resize(
            (max(1, round(w * scale_px)), max(1, round(h * scale_px))), PILImage.Resampling.LANCZOS
        )
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=1)  # lossless; reportlab recompresses it
    buf.seek(0)
    scale = min(max_w / w, max_h / h)
    return Image(buf, width=w * scale, height=h * scale)


def _numbered_canvas(document_id: str, generated: str) -> type:
    from reportlab.lib.colors import HexColor
    from reportlab.pdfgen import canvas

    class NumberedCanvas(canvas.Canvas):
        """Canvas that writes "Page n of N" and the document id once all pages are known."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # the embedded font from the start, so no non-embedded base-14 font is referenced
            kwargs["initialFontName"] = LATIN_FONT
            kwargs["initialFontSize"] = 9
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab API
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(total)
                super().showPage()
            super().save()

        def _footer(self, total: int) -> None:
            width, _ = self._pagesize
            self.saveState()
            self.setStrokeColor(HexColor("#999999"))
            self.line(40, 44, width - 40, 44)
            self.setFont(LATIN_FONT, 7.5)
            self.drawString(40, 32, f"Document ID: {document_id}")
            self.drawString(40, 22, f"{PDF_DISCLAIMER}.  Generated {generated}")
            self.drawRightString(width - 40, 32, f"Page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


def image_identity(result: ModelResult) -> str:
    """Which image a result is about, as printed: ``"Im 3"``, ``"Im 3 fr 2"``, or ``""``.

    From the result's provenance (``instance_number``, ``frame``), which
    :func:`app.reporting.export.export_report` fills in from the source headers.
    """
    prov = result.provenance or {}
    parts = []
    inum = prov.get("instance_number")
    if inum not in (None, ""):
        parts.append(f"Im {inum}")
    elif prov.get("sop_uid"):
        parts.append(f"…{str(prov['sop_uid'])[-8:]}")
    frames = prov.get("frames")
    frame = prov.get("frame")
    if frame not in (None, "") and (frames or 1) > 1:
        parts.append(f"fr {int(frame) + 1}")
    return " ".join(parts)


def unique_results(results: Sequence[ModelResult]) -> list[ModelResult]:
    """The results without repeats: one per (image, frame, model, version, sha256).

    The same run can reach an export twice (stored once per series and once for the study,
    or added twice in a session); two images of one series stay two results.
    """
    seen: set[tuple[Any, ...]] = set()
    out: list[ModelResult] = []
    for r in results:
        prov = r.provenance or {}
        sop = str(prov.get("sop_uid") or "")
        # the file too: one SOP Instance UID stored twice (two instance numbers) is two rows
        key = (
            sop,
            str(prov.get("path") or ""),
            prov.get("instance_number"),
            prov.get("frame"),
            r.model_id,
            r.model_version,
            r.sha256,
            tuple((lab.label, round(lab.probability, 6)) for lab in r.labels),
            "" if sop else str(prov.get("time", "")),
        )  # no image identity: same run only
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


def acknowledgement_lines(acknowledgements: Sequence[dict[str, Any]]) -> list[str]:
    """One printed line per sign-off acknowledgement (:func:`app.reporting.signoff.acknowledge`).

    Parameters
    ----------
    acknowledgements : sequence of dict
        ``ReportDraft.acknowledgements``.

    Returns
    -------
    list of str
        ``"<message>: <decision> (<reader>, <time>). Note: <note>"``; the same message and
        decision the SR stores.
    """
    out = []
    for a in acknowledgements:
        line = f"{a.get('message', '')}: {a.get('decision', 'acknowledged')}"
        who = ", ".join(
            x
            for x in (str(a.get("reader", "") or ""), local_time(str(a.get("time", "") or "")))
            if x
        )
        if who:
            line += f" ({who})"
        if str(a.get("note", "") or "").strip():
            line += f". Note: {str(a['note']).strip()}"
        out.append(line)
    return out


def _provenance_lines(results: Sequence[ModelResult]) -> list[str]:
    """One line per model run configuration (model, version, sha256, provider, app version)."""
    lines: dict[tuple[str, ...], list[str]] = {}
    for r in results:
        app_version = str(r.provenance.get("app_version", "") or "")
        key = (r.model_id, r.model_version, r.sha256, r.provider, app_version)
        when = local_time(str(r.provenance.get("time", "") or ""))
        times = lines.setdefault(key, [])
        if when and when not in times:
            times.append(when)
    out = []
    for (model_id, version, sha, provider, app_version), times in lines.items():
        when = ""
        if times:
            ordered = sorted(times)
            when = ordered[0] if len(ordered) == 1 else f"{ordered[0]} to {ordered[-1]}"
        out.append(
            f"{model_id} {version} sha256 {sha} on {provider}"
            + (f", Hilum {app_version}" if app_version else "")
            + (f", run {when}" if when else "")
        )
    return out


def _results_table(results: Sequence[ModelResult], styles: dict[str, Any]) -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    head = [
        "Image",
        "Model",
        "Version",
        "SHA-256",
        "Provider",
        "Label",
        "Probability",
        "Threshold",
        "Flag",
    ]
    rows: list[list[Any]] = [[_para(h, styles, "small", bold=True) for h in head]]
    spans: list[tuple[int, bool]] = []  # note rows: (row, amber)
    for r in unique_results(results):
        for lab in r.labels:
            flag = "POSITIVE" if lab.positive else "negative"
            provider = r.provider.replace("ExecutionProvider", "")
            cells = [
                image_identity(r) or "-",
                r.model_id,
                r.model_version,
                r.sha256[:10],
                provider,
                lab.label,
                f"{lab.probability:.3f}",
                f"{lab.threshold:.3f}",
                flag,
            ]
            rows.append(
                [
                    _para(c, styles, "small", bold=(i == 8 and lab.positive))
                    for i, c in enumerate(cells)
                ]
            )
        if r.reliability:  # intended use and OOD, on the line under the model's labels
            note = "Reliability: " + r.reliability
            if r.ood and "OOD" not in r.reliability:
                note += (
                    f" (OOD {r.ood.get('method', '')} score {float(r.ood.get('score', 0)):.1f}, "
                    f"threshold {float(r.ood.get('threshold', 0)):.1f})"
                )
            outside = r.reliability.startswith("outside")
            rows.append([_para(note, styles, "small", bold=outside)] + [""] * 8)
            spans.append((len(rows) - 1, outside))
        if r.demonstration:  # the model card's words, amber like an outside-use note
            demo = _para(f"{r.model_id}: {DEMONSTRATION_WORDS}.", styles, "small", bold=True)
            rows.append([demo] + [""] * 8)
            spans.append((len(rows) - 1, True))
    if len(rows) == 1:
        rows.append([_para("No AI model was run on this study.", styles, "small")] + [""] * 8)
    widths = [42, 72, 40, 64, 44, 66, 56, 56, 56]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), LATIN_FONT),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6ecf3")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                *[("SPAN", (0, row), (-1, row)) for row, _ in spans],
                *[
                    ("BACKGROUND", (0, row), (-1, row), colors.HexColor("#ffcc66"))
                    for row, out in spans
                    if out
                ],
            ]
        )
    )
    return table


def build_pdf(
    out_path: str | os.PathLike[str],
    draft: ReportDraft,
    results: Sequence[ModelResult],
    patient: PatientBlock,
    header: InstitutionHeader | None = None,
    key_images: Sequence[KeyImage] = (),
    document_id: str = "",
    deidentified: bool = False,
    export_notes: Sequence[str] = (),
    measurements: Sequence[str] = (),
) -> Path:
    """Write the report PDF.

    Parameters
    ----------
    out_path : path
        The PDF to write (parent folder must exist).
    draft : ReportDraft
        The signed-off report text.
    results : sequence of ModelResult
        AI results for the table (with provenance).
    patient : PatientBlock
        Patient and study fields (de-identified by the caller when asked).
    header : InstitutionHeader, optional
        Letterhead.
    key_images : sequence of KeyImage
        Images to print, in order.
    document_id : str
        Printed on every page (the Encapsulated PDF's SOP Instance UID when DICOM is exported).
    deidentified : bool
        Print a "De-identified" note in the patient block.
    export_notes : sequence of str
        Export notes printed under KEY IMAGES (e.g. key images left out of a de-identified
        export).
    measurements : sequence of str
        One line per measurement (``app.reporting.annotations.measurement_lines``), printed in
        a MEASUREMENTS section after the impression.

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    ExportError
        When the file cannot be written or an input cannot be rendered.

    Long because the page is laid out in reading order.
    """
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import KeepTogether, SimpleDocTemplate, Spacer, Table, TableStyle

    register_fonts()
    styles = _styles()
    header = header or InstitutionHeader()
    out = Path(out_path)
    generated = local_time(_dt.datetime.now(_dt.timezone.utc).isoformat())
    story: list[Any] = []

    # letterhead
    head_cells: list[Any] = []
    if header.logo_path:
        logo = Path(header.logo_path)
        if logo.is_file():
            try:
                from PIL import Image as PILImage

                with PILImage.open(logo) as im:
                    head_cells.append(_image_flowable(np.asarray(im.convert("RGB")), 60, 60))
            except Exception:  # noqa: BLE001 - an unreadable logo must not block the report
                log.warning("institution logo could not be read; printed without it")
        else:
            log.warning("institution logo not found; printed without it")
    inst_lines = []
    if header.name:
        inst_lines.append(_para(header.name, styles, "inst", bold=True))
    if header.address:
        inst_lines.append(_para(header.address, styles, "small"))
    if head_cells or inst_lines:
        table = Table(
            [[head_cells[0] if head_cells else "", inst_lines]],
            colWidths=[70 if head_cells else 0, None],
        )
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), LATIN_FONT),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ]
            )
        )
        story += [table, Spacer(1, 6)]
    story.append(_para("Radiology Report", styles, "title", bold=True))

    # patient and study block
    pairs = [
        ("Patient", patient.patient_name),
        ("Patient ID", patient.patient_id),
        ("Birth date", patient.birth_date),
        ("Sex", patient.sex),
        ("Study date", patient.study_date),
        ("Accession", patient.accession),
        ("Modality", patient.modality),
        ("Study", patient.study_description),
    ]
    pairs += list(patient.extra.items())
    if deidentified:
        pairs.append(("Privacy", "De-identified (PS3.15 Basic Profile)"))
    grid: list[list[Any]] = []
    for i in range(0, len(pairs), 2):
        row: list[Any] = []
        for label, value in pairs[i : i + 2]:
            row += [_para(label, styles, "small", bold=True), _para(value or "-", styles, "small")]
        row += [""] * (4 - len(row))
        grid.append(row)
    block = Table(grid, colWidths=[62, 180, 62, 180])
    block.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), LATIN_FONT),
                ("BOX", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f5f7fa")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [block, Spacer(1, 4)]

    # report sections
    for title, text in (
        ("INDICATION", draft.indication),
        ("COMPARISON", draft.comparison),
        ("FINDINGS", draft.findings),
        ("IMPRESSION", draft.impression),
    ):
        story.append(_para(title, styles, "heading", bold=True))
        story.append(_para(text.strip() or "None.", styles))

    if measurements:
        story.append(_para("MEASUREMENTS", styles, "heading", bold=True))
        for line in measurements:
            story.append(_para(line, styles))

    # AI results
    story.append(_para("AI RESULTS", styles, "heading", bold=True))
    story.append(_results_table(results, styles))
    prov_lines = _provenance_lines(results)
    if draft.ai_generated and draft.generator:
        g = draft.generator
        prov_lines.append(
            "Report text drafted by "
            + " ".join(
                str(g.get(k, "")) for k in ("model_id", "model_version", "backend") if g.get(k)
            )
            + (f" ({DEMONSTRATION_WORDS})" if g.get("demonstration") else "")
        )
    for line in prov_lines:
        story.append(_para(line, styles, "small"))
    story.append(_para(PDF_DISCLAIMER + ".", styles, "disclaimer", bold=True))

    # key images
    if key_images or export_notes:
        image_numbers = {
            str(r.provenance.get("sop_uid")): image_identity(r)
            for r in results
            if r.provenance.get("sop_uid") and image_identity(r)
        }
        story.append(_para("KEY IMAGES", styles, "heading", bold=True))
        for note in export_notes:
            story.append(_para(note, styles))
        for n, ki in enumerate(key_images, 1):
            cells: list[Any] = [_image_flowable(ki.shown(), 240, 240)]
            title = f"Image {n}"
            if ki.source is not None and ki.source.sop_uid in image_numbers:
                title += f" ({image_numbers[ki.source.sop_uid]})"
            notes: list[Any] = [_para(title, styles, "small", bold=True)]
            caption = (ki.caption or "").strip()
            # a default caption ("Image 1", the panel's numbering) would repeat the title
            if caption and not re.fullmatch(r"(image|图像)\s*\d+", caption, re.IGNORECASE):
                notes.append(_para(caption, styles, "small"))
            if ki.use_overlay and ki.overlay is not None:
                notes.append(
                    _para(
                        "Saliency overlay (where the model looked; not a diagnosis): "
                        + (ki.legend or ""),
                        styles,
                        "small",
                    )
                )
                if ki.legend_image is not None:
                    notes.append(_image_flowable(ki.legend_image, 60, 90))
            cells.append(notes)
            image_row = Table([cells], colWidths=[260, None])
            image_row.setStyle(
                TableStyle(
                    [
                        ("FONTNAME", (0, 0), (-1, -1), LATIN_FONT),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story += [KeepTogether([image_row]), Spacer(1, 6)]

    # the reader's decisions at the sign-off check (also in the SR), each with who and when
    if draft.acknowledgements:
        story.append(_para("READER'S DECISIONS ON AI DISCREPANCIES", styles, "heading", bold=True))
        for line in acknowledgement_lines(draft.acknowledgements):
            story.append(_para(line, styles))

    # sign-off
    sign_off = [_para("SIGN-OFF", styles, "heading", bold=True)]
    if not draft.reviewed:
        sign_off.append(
            _para(
                f"Not signed off: exported unattended at "
                f"{local_time(draft.signed_off_at)}. "
                "This AI draft has not been reviewed by a physician.",
                styles,
            )
        )
    else:
        sign_off.append(
            _para(f"Signed off by {draft.reader_name} at {local_time(draft.signed_off_at)}", styles)
        )
    if draft.reviewed and draft.ai_generated:
        sign_off.append(
            _para(
                "Parts of this report were drafted by AI and reviewed by the reader.",
                styles,
                "small",
            )
        )
    story.append(KeepTogether(sign_off))  # never split the sign-off over two pages

    doc = SimpleDocTemplate(
        str(out),
        pagesize=A4,
        leftMargin=40,
        rightMargin=40,
        topMargin=40,
        bottomMargin=60,
        title="Radiology Report",
        author="Hilum",
        subject=document_id,
        creator="Hilum",
    )
    try:
        from app.core.paths import open_private

        # created 0600 first: reportlab then truncates it and the report stays private
        open_private(out, "wb").close()
        doc.build(story, canvasmaker=_numbered_canvas(document_id, generated))
    except OSError as exc:
        raise ExportError(f"The PDF could not be written: {exc.strerror or exc}", str(out)) from exc
    log.info("PDF written (%d key images, %d results)", len(key_images), len(results))
    return out
