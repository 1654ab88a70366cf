"""De-identification of exported objects (DICOM PS3.15 Basic Application Level Confidentiality Profile).

The profile itself (which attribute is removed, emptied, replaced or has its UID remapped) comes from
the maintained ``dicom-anonymizer`` library (KitwareMedical), whose rule tables are generated from
PS3.15 Table E.1-1. This module adds what an export needs on top of it:

* one :class:`Deidentifier` per export, so every exported object gets the *same* new Study, Series
  and SOP Instance UIDs for the same source UID (references between the SR, the Secondary Captures
  and the Encapsulated PDF stay consistent), and different exports are not linkable;
* a :meth:`Deidentifier.preview` listing what will be removed or replaced, for the export dialog;
* scrubbing of the source's patient identifiers out of free text the reader typed;
* the Patient Identity Removed / De-identification Method attributes PS3.15 asks for.

Only headers are de-identified: pixel data is never rewritten, so a source image with burned-in
annotations is refused for key images (see :func:`check_pixels_exportable`).
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from app.core.errors import ExportError

log = logging.getLogger(__name__)

#: PS3.16 CID 7050 code for the profile applied.
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
METHOD_TEXT = "PS3.15 Basic Application Confidentiality Profile"  # LO: <= 64 chars

# dicom-anonymizer keeps its UID map in a module-level dict; exports swap in their own map under
# this lock so two exports never share (or race on) a mapping.
_LIB_LOCK = threading.Lock()

# -- free-text scrubbing: the ONE scrubber (prompts sent to a server, de-identified exports) --------

#: what replaces an identifier in free text
REMOVED = "[removed]"

# Person names (PN): each component (family, given, middle) is an identifier on its own, so the
# name is found in any order or case ("DOE^JOHN" typed as "john doe" or "Doe, J.").
_PERSON_KEYWORDS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "ResponsiblePerson",
)
# Other identifying text: the whole value and (for multi-word values) its distinctive words.
_TEXT_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "DeviceSerialNumber",
    "RequestedProcedureID",
    "ScheduledProcedureStepID",
    "PerformedProcedureStepID",
    "AdmissionID",
    "MilitaryRank",
    "BranchOfService",
    "RegionOfResidence",
    "CountryOfResidence",
)
_DATE_KEYWORDS = (
    "PatientBirthDate",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "InstanceCreationDate",
    "PerformedProcedureStepStartDate",
)
# words of an institution name/address too common to identify anyone on their own
_COMMON_WORDS = {
    "hospital",
    "hospitals",
    "clinic",
    "clinics",
    "medical",
    "center",
    "centre",
    "health",
    "university",
    "general",
    "imaging",
    "radiology",
    "department",
    "institute",
    "the",
    "and",
    "of",
    "for",
    "saint",
    "street",
    "road",
    "avenue",
    "unit",
    "room",
    "floor",
    "care",
    "trust",
    "foundation",
    "nhs",
    "city",
    "county",
    "regional",
    "community",
    "memorial",
    "children",
    "childrens",
    "womens",
    "private",
    "practice",
    "group",
    "services",
    "service",
    "xray",
    "x-ray",
    "chest",
    "ward",
    "suite",
    "station",
    "north",
    "south",
    "east",
    "west",
    "main",
}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_MONTH_RX = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_STREET_RX = (
    r"(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|"
    r"place|pl|terrace|close|crescent|square|sq|parkway|pkwy|highway|hwy|row|gardens|"
    r"strasse|straße|rue|via|calle)"
)
#: generic identifier patterns, most specific first
_GENERIC = [
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "e-mail"),
    (re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.[\w-]+(?:\.[\w-]+)+\S*", re.I), "URL"),
    # street addresses: "13 Elm Street", "221B Baker St.", "Flat 2, 10 Downing Street"
    (
        re.compile(
            r"\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Za-z][\w'.-]*\s+){0,4}" + _STREET_RX + r"\b\.?", re.I
        ),
        "address",
    ),
    # dates: 2024-01-31, 31/01/2024, 1.31.24, 31 Jan 2024, Jan 31, 2024, January 2024
    (re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"), "date"),
    (re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b"), "date"),
    (
        re.compile(r"\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH_RX + r",?\s+\d{2,4}\b", re.I),
        "date",
    ),
    (re.compile(r"\b" + _MONTH_RX + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{2,4}\b", re.I), "date"),
    (re.compile(r"\b" + _MONTH_RX + r"\s+\d{4}\b", re.I), "date"),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?", re.I), "time"),
    # phone numbers: +44 20 7946 0958, (555) 123-4567, 555.123.4567
    (re.compile(r"(?<![\w+])(?:\+|00)?\(?\d{1,4}\)?(?:[\s.-]?\(?\d{2,5}\)?){2,5}\b"), "phone"),
    # postcodes: UK (SW1A 1AA), Canada (K1A 0B1), Netherlands (1234 AB); US ZIP is in the digit rule
    (re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"), "postcode"),
    (re.compile(r"\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b"), "postcode"),
    (re.compile(r"\b\d{4}\s?[A-Z]{2}\b"), "postcode"),
    # ID-like tokens: letters and digits mixed, 5+ characters (MRN PIDCR998877, ACC-7788)
    (re.compile(r"\b(?=[\w-]{5,}\b)(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]+\b"), "id"),
    (re.compile(r"\b\d{5,}\b"), "number"),
    # titled names: "Dr. Smith", "Mrs Jones", "Prof. Ann Lee"
    (
        re.compile(
            r"\b(?i:dr|mr|mrs|ms|miss|mx|prof|sir|dame)\.?\s+[A-Z][a-zA-Z'-]+"
            r"(?:\s+[A-Z][a-zA-Z'-]+)?"
        ),
        "name",
    ),
]

# "<city>, <state/country>" address lines, removed only where they are plainly part of an address:
# right after a street address ("13 Elm Street, Springfield, IL 62704", "7 Kelvin Way, Glasgow,
# Scotland", "10 High St, London SW1A 1AA") and then only when a state/country or a postcode
# follows the city; or right after a postcode ("SW1A 1AA, London", "62704 Springfield, Illinois").
# A capitalised word after a street address alone ("13 Elm Street, Pneumonia.") is not enough, and
# clinical words are never taken for a place; the patient's own city is in the header-aware part
# (PatientAddress, RegionOfResidence).
_POSTCODE_RX = (
    r"(?:\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b|\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b|"
    r"\b\d{4}\s?[A-Z]{2}\b|\b\d{5}(?:-\d{4})?\b)"
)
_PLACE_RX = r"[A-ZÀ-Ý][\w'-]*(?:[ -][A-ZÀ-Ý][\w'-]*){0,2}"
_STATE_RX = r"(?:[A-Z]{2}\b|" + _PLACE_RX + ")"
_STREET_ADDRESS_RX = (
    r"(?i:\b\d{1,5}[A-Za-z]?,?\s+(?:[A-Za-z][\w'.-]*\s+){0,4}" + _STREET_RX + r"\b\.?)"
)
_CITY_AFTER_STREET = re.compile(
    r"(?P<lead>" + _STREET_ADDRESS_RX + r",\s*)(?P<city>" + _PLACE_RX + r")"
    r"(?:(?P<state>,\s*" + _STATE_RX + r")(?=\s*(?:,|" + _POSTCODE_RX + r"|[.;:)\n]|$))"
    r"|(?=,?\s*" + _POSTCODE_RX + r"))"
)
_CITY_AFTER_POSTCODE = re.compile(
    r"(?P<lead>"
    + _POSTCODE_RX
    + r",?\s+)(?P<city>"
    + _PLACE_RX
    + r")(?P<state>,\s*"
    + _STATE_RX
    + r")?(?=\s*(?:[.;,:)\n]|$))"
)
#: words that are clinical, never a place, whatever their case
_CLINICAL_WORDS = {
    "right",
    "left",
    "bilateral",
    "normal",
    "abnormal",
    "no",
    "not",
    "none",
    "chest",
    "lung",
    "lungs",
    "heart",
    "pneumonia",
    "effusion",
    "cardiomegaly",
    "edema",
    "oedema",
    "opacity",
    "nodule",
    "mass",
    "fracture",
    "atelectasis",
    "consolidation",
    "pneumothorax",
    "emphysema",
    "fibrosis",
    "hernia",
    "infiltration",
    "lesion",
    "findings",
    "impression",
    "history",
    "indication",
    "comparison",
    "notes",
    "patient",
    "follow",
    "cough",
    "fever",
    "pain",
    "dyspnea",
    "dyspnoea",
    "stable",
    "unchanged",
    "improved",
    "worse",
    "rll",
    "rul",
    "rml",
    "lll",
    "lul",
    "ap",
    "pa",
    "ct",
    "mr",
    "mri",
    "cr",
    "dx",
    "us",
    "er",
    "ed",
    "icu",
}


def _drop_city(m: re.Match[str]) -> str:
    place = m.group("city") + (m.group("state") or "")
    if any(w.lower() in _CLINICAL_WORDS for w in re.split(r"[\s,.-]+", place) if w):
        return m.group(0)
    return m.group("lead") + REMOVED


def _values(ds: Dataset, keyword: str) -> list[str]:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a corrupt element must not stop de-identification
        return []
    if value in (None, ""):
        return []
    values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def _date_forms(da: str) -> set[str]:
    """The ways a DICOM date (YYYYMMDD) is commonly typed."""
    digits = "".join(ch for ch in da if ch.isdigit())
    if len(digits) != 8:
        return {da} if len(da) >= 4 else set()
    y, m, d = digits[:4], digits[4:6], digits[6:8]
    try:
        month = _MONTHS[int(m) - 1]
    except (ValueError, IndexError):
        return {digits}
    di, mi = str(int(d)), str(int(m))
    out = {digits, f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}"}
    for dd, mm in ((d, m), (di, mi)):
        for sep in "/.-":
            out |= {
                f"{dd}{sep}{mm}{sep}{y}",
                f"{mm}{sep}{dd}{sep}{y}",
                f"{dd}{sep}{mm}{sep}{y[2:]}",
                f"{mm}{sep}{dd}{sep}{y[2:]}",
            }
    for mon in (month, month[:3]):
        out |= {f"{di} {mon} {y}", f"{d} {mon} {y}", f"{mon} {di}, {y}", f"{mon} {di} {y}"}
    return out


def identifiers_from_dataset(ds: Dataset | None) -> frozenset[str]:
    """Every identifying string a DICOM header makes known, for :func:`scrub_text`.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset or None
        A source header (pixel data not needed).

    Returns
    -------
    frozenset of str
        Patient, physician and operator names (whole and each name part), patient IDs (incl.
        Other Patient IDs and its sequence), accession number, study ID, institution name and
        address (whole and distinctive words), station name, and the header's dates (birth
        date included) in the formats people type them.
    """
    if ds is None:
        return frozenset()
    out: set[str] = set()
    for keyword in _PERSON_KEYWORDS:
        for value in _values(ds, keyword):
            out.add(value)
            for part in re.split(r"[\^=,\s]+", value):
                part = part.strip(".")
                # prefixes/suffixes ("Dr", "MR") are titles, not identifiers; one letter is too
                # little to find (initials are scrubbed with the name they follow)
                if len(part) >= 2 and part.lower() not in {
                    "dr",
                    "mr",
                    "mrs",
                    "ms",
                    "prof",
                    "jr",
                    "sr",
                    "md",
                    "phd",
                    "miss",
                    "mx",
                }:
                    out.add(part)
            out.add(" ".join(p for p in re.split(r"[\^=]+", value) if p))
    for keyword in _TEXT_KEYWORDS:
        for value in _values(ds, keyword):
            if len(value) < 2:
                continue
            out.add(value)
            for word in re.split(r"[\s,;/^]+", value):
                word = word.strip(".()'\"")
                if len(word) >= 3 and word.lower() not in _COMMON_WORDS:
                    out.add(word)
    for item in _values_seq(ds, "OtherPatientIDsSequence"):
        for value in _values(item, "PatientID"):
            out.add(value)
    for keyword in _DATE_KEYWORDS:
        for value in _values(ds, keyword):
            out |= _date_forms(value)
    return frozenset(x for x in out if len(x) >= 2)


def _values_seq(ds: Dataset, keyword: str) -> list[Dataset]:
    try:
        return list(ds.get(keyword) or [])
    except Exception:  # noqa: BLE001
        return []


_KEEP = re.compile(r"\d+-(?:years?|yrs?|months?|weeks?|days?|hours?)(?:-olds?)?", re.I)


def _replacer(m: "re.Match[str]") -> str:
    token = m.group(0)
    if REMOVED in token or _KEEP.fullmatch(token):  # "67-year-old" is not an identifier
        return token
    return REMOVED


def scrub_text(text: str, identifiers: Iterable[str] = (), generic: bool = True) -> str:
    """Remove identifiers from free text (the one scrubber Hilum uses).

    Parameters
    ----------
    text : str
        Text a person typed (indication, comparison, notes, report text, reader fields).
    identifiers : iterable of str
        Known identifiers, usually :func:`identifiers_from_dataset` of the study's headers; each
        is removed wherever it appears, case-insensitively, as a whole word.
    generic : bool
        Also remove what looks like an identifier without being known: e-mail addresses, URLs,
        street addresses, dates, times, phone numbers, postcodes, tokens of 5+ characters mixing
        letters and digits, long numbers and titled names ("Dr Smith"); and a "<city>, <state or
        country>" line right after a street address or a postcode (see ``_CITY_AFTER_STREET``).

    Returns
    -------
    str
        The text with each identifier replaced by ``[removed]``.
    """
    if not text:
        return text or ""
    out = str(text)
    for ident in sorted(
        {str(i).strip() for i in identifiers if str(i).strip()}, key=len, reverse=True
    ):
        # word boundaries so an identifier inside a longer word is not mangled; whitespace in
        # the identifier matches any run of whitespace
        body = r"\s+".join(re.escape(w) for w in ident.split())
        pattern = (
            (r"(?<![\w])" if ident[0].isalnum() else "")
            + body
            + (r"(?![\w])" if ident[-1].isalnum() else "")
        )
        out = re.sub(pattern, REMOVED, out, flags=re.IGNORECASE)
    if generic:
        # before the street/postcode rules replace the anchors the city rule needs
        out = _CITY_AFTER_POSTCODE.sub(_drop_city, _CITY_AFTER_STREET.sub(_drop_city, out))
        for rx, _kind in _GENERIC:
            out = rx.sub(_replacer, out)
    # "[removed] [removed]" -> one marker
    out = re.sub(r"(?:\[removed\][\s,]*){2,}", REMOVED + " ", out).replace(
        REMOVED + " .", REMOVED + "."
    )
    return out


# Attributes whose text is a patient identifier worth scrubbing from free text (kept for callers
# that list them; identifiers_from_dataset covers more).
_IDENTIFYING_KEYWORDS = _PERSON_KEYWORDS + _TEXT_KEYWORDS


class DeidentificationError(ExportError):
    """De-identification could not be applied safely."""


@dataclass(frozen=True)
class DeidChange:
    """One attribute the profile changes.

    Attributes
    ----------
    tag : str
        ``(gggg,eeee)``.
    keyword : str
        DICOM keyword (``"PatientName"``) or ``"(private)"``.
    action : str
        ``removed``, ``emptied``, ``replaced`` or ``UID remapped``.
    old : str
        The current value as shown to the user (never logged).
    new : str
        The value after de-identification (empty when removed).
    """

    tag: str
    keyword: str
    action: str
    old: str
    new: str


def _short(value: Any, limit: int = 64) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def header_copy(ds: Dataset) -> Dataset:
    """Deep copy of a dataset without its pixel data (all an export needs from a source).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A source image.

    Returns
    -------
    pydicom.dataset.Dataset
        The copy, with ``file_meta`` but without Pixel Data / Float Pixel Data.
    """
    out = Dataset()
    for elem in ds:
        if elem.tag in (Tag(0x7FE0, 0x0010), Tag(0x7FE0, 0x0008), Tag(0x7FE0, 0x0009)):
            continue
        out.add(copy.deepcopy(elem))
    if hasattr(ds, "file_meta"):
        out.file_meta = copy.deepcopy(ds.file_meta)
    return out


class Deidentifier:
    """Applies the Basic Profile to a set of datasets with one consistent UID mapping.

    Parameters
    ----------
    keep_private_tags : bool
        PS3.15 Basic Profile removes private attributes; leave False.
    """

    def __init__(self, keep_private_tags: bool = False) -> None:
        self.uid_map: dict[str, str] = {}
        self.keep_private_tags = keep_private_tags
        self._identifiers: set[str] = set()

    # -- UIDs ------------------------------------------------------------------------------------
    def remap_uid(self, uid: str) -> str:
        """The replacement for a source UID (the same every time within this export)."""
        uid = str(uid)
        if uid not in self.uid_map:
            self.uid_map[uid] = generate_uid()
        return self.uid_map[uid]

    # -- datasets --------------------------------------------------------------------------------
    def _run_profile(self, ds: Dataset) -> None:
        from dicomanonymizer import simpledicomanonymizer as sda

        with _LIB_LOCK:
            saved = sda.dictionary
            sda.dictionary = self.uid_map  # the library's U action now remaps through our map
            try:
                sda.anonymize_dataset(ds, delete_private_tags=not self.keep_private_tags)
            except Exception as exc:  # the library raises bare errors on unusual VRs
                raise DeidentificationError(
                    f"De-identification failed on one attribute ({type(exc).__name__}); "
                    "nothing was exported."
                ) from exc
            finally:
                sda.dictionary = saved

    def _remember_identifiers(self, ds: Dataset) -> None:
        self._identifiers |= identifiers_from_dataset(ds)

    @property
    def identifiers(self) -> frozenset[str]:
        """The identifiers of every source seen by :meth:`apply` so far."""
        return frozenset(self._identifiers)

    def apply(self, ds: Dataset) -> Dataset:
        """De-identify a header copy of ``ds`` (the input is not modified).

        Parameters
        ----------
        ds : pydicom.dataset.Dataset
            A source dataset.

        Returns
        -------
        pydicom.dataset.Dataset
            The de-identified copy (no pixel data), with Patient Identity Removed = YES and the
            De-identification Method attributes set.
        """
        self._remember_identifiers(ds)
        out = header_copy(ds)
        self._run_profile(out)
        _clear_dummy_dates(out)
        if "PatientID" in out:
            # a pseudonym, not empty: PACS file objects by Patient ID. Random per export and
            # consistent across its objects (derived from this export's UID map is not needed).
            out.PatientID = self._pseudonym()
        mark_deidentified(out)
        return out

    def _pseudonym(self) -> str:
        if not hasattr(self, "_pid"):
            import secrets

            self._pid = "ANON-" + secrets.token_hex(4).upper()
        return self._pid

    def preview(self, datasets: Iterable[Dataset]) -> list[DeidChange]:
        """What :meth:`apply` will remove or replace, attribute by attribute.

        Runs the profile on copies with a throw-away UID map, so the preview neither changes the
        datasets nor this export's mapping.

        Parameters
        ----------
        datasets : iterable of pydicom.dataset.Dataset
            The source datasets of the export.

        Returns
        -------
        list of DeidChange
            One entry per changed top-level attribute and dataset (duplicates across datasets with
            the same old value are merged).
        """
        changes: list[DeidChange] = []
        seen: set[tuple[str, str, str]] = set()
        probe = Deidentifier(self.keep_private_tags)
        for ds in datasets:
            before = header_copy(ds)
            after = header_copy(ds)
            probe._run_profile(after)
            for elem in before:
                tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
                keyword = elem.keyword or "(private)"
                old = _short(elem.value) if elem.VR != "SQ" else f"<{len(elem.value)} item(s)>"
                if elem.tag not in after:
                    action, new = "removed", ""
                else:
                    new_elem = after[elem.tag]
                    if new_elem.VR == "SQ":
                        if str(new_elem.value) == str(elem.value):
                            continue
                        action, new = "replaced", f"<{len(new_elem.value)} item(s), cleaned>"
                    elif new_elem.value == elem.value:
                        continue
                    elif elem.VR == "UI":
                        action, new = "UID remapped", "<new UID>"
                    elif new_elem.value in ("", None, b""):
                        action, new = "emptied", ""
                    else:
                        action, new = "replaced", _short(new_elem.value)
                key = (tag, action, old)
                if key in seen:
                    continue
                seen.add(key)
                changes.append(DeidChange(tag, keyword, action, old, new))
            for elem in after:
                if elem.tag not in before:
                    changes.append(
                        DeidChange(
                            f"({elem.tag.group:04X},{elem.tag.element:04X})",
                            elem.keyword,
                            "added",
                            "",
                            _short(elem.value),
                        )
                    )
        changes.append(DeidChange("(0012,0062)", "PatientIdentityRemoved", "added", "", "YES"))
        changes.append(
            DeidChange("(0012,0063)", "DeidentificationMethod", "added", "", METHOD_TEXT)
        )
        return changes

    # -- free text -------------------------------------------------------------------------------
    def scrub_text(self, text: str) -> str:
        """:func:`scrub_text` with the identifiers of every source this export de-identified.

        Parameters
        ----------
        text : str
            Text the reader typed (findings, impression, indication, comparison, reader).

        Returns
        -------
        str
            The text with every known identifier and generic identifier pattern removed.
        """
        return scrub_text(text, self._identifiers)


_DUMMY = {"DA": "00010101", "DT": "00010101010101.000000+0000"}


def _clear_dummy_dates(ds: Dataset) -> None:
    """Empty the library's dummy dates (0001-01-01): validators reject years before 1800, and an
    empty (Type 2) date says "unknown" honestly."""

    def visit(dataset: Dataset, elem: Any) -> None:
        if elem.VR in _DUMMY and elem.value == _DUMMY[elem.VR]:
            elem.value = ""

    ds.walk(visit)


def mark_deidentified(ds: Dataset) -> None:
    """Set Patient Identity Removed and the De-identification Method attributes (PS3.15 E.1.1)."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD_TEXT
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = BASIC_PROFILE_CODE
    ds.DeidentificationMethodCodeSequence = [item]
    # No "Retain Longitudinal Temporal Information" option: the profile replaced the dates.
    ds.LongitudinalTemporalInformationModified = "REMOVED"


def check_pixels_exportable(ds: Dataset) -> None:
    """Refuse pixels that may carry burned-in identifiers into a de-identified export.

    Raises
    ------
    DeidentificationError
        When the source says Burned In Annotation = YES (header de-identification cannot
        remove text written into the pixels).
    """
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise DeidentificationError(
            "A key image has identifying text burned into its pixels; it cannot be exported "
            "de-identified. Remove that key image or export without de-identification."
        )
