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

# Attributes whose text is a patient identifier worth scrubbing from free text.
_IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "AccessionNumber", "PatientAddress", "PatientTelephoneNumbers",
    "MedicalRecordLocator", "StudyID",
)


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
        for keyword in _IDENTIFYING_KEYWORDS:
            value = ds.get(keyword)
            if value in (None, ""):
                continue
            values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
            for v in values:
                text = str(v).strip()
                if len(text) < 2:
                    continue
                self._identifiers.add(text)
                if keyword in ("PatientName", "OtherPatientNames", "PatientBirthName",
                               "PatientMotherBirthName"):
                    # also each name component on its own: "DOE^JOHN" is typed as "John Doe"
                    for part in re.split(r"[\^=\s]+", text):
                        if len(part) >= 3:
                            self._identifiers.add(part)

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
                    changes.append(DeidChange(f"({elem.tag.group:04X},{elem.tag.element:04X})",
                                              elem.keyword, "added", "", _short(elem.value)))
        changes.append(DeidChange("(0012,0062)", "PatientIdentityRemoved", "added", "", "YES"))
        changes.append(DeidChange("(0012,0063)", "DeidentificationMethod", "added", "",
                                  METHOD_TEXT))
        return changes

    # -- free text -------------------------------------------------------------------------------
    def scrub_text(self, text: str) -> str:
        """Replace the source patients' identifiers found in free text with ``[removed]``.

        Parameters
        ----------
        text : str
            Text the reader typed (findings, impression, indication, comparison).

        Returns
        -------
        str
            The text with every remembered identifier (case-insensitive) replaced.
        """
        if not text:
            return text
        for ident in sorted(self._identifiers, key=len, reverse=True):
            # word boundaries so an identifier inside a longer word is not mangled
            pattern = (r"\b" if ident[0].isalnum() else "") + re.escape(ident) + (
                r"\b" if ident[-1].isalnum() else "")
            text = re.sub(pattern, "[removed]", text, flags=re.IGNORECASE)
        return text


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
