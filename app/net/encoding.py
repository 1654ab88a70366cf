"""The few fixed DICOM byte layouts on the receive path, encoded and scanned without pydicom.

A retrieve handles each instance three times with pydicom (~0.8 ms per instance, on the thread
the PACS waits for): the File Meta Information written before the received data set, the
Study/Series Instance UIDs read from its first elements (for the folder it is filed in), and
the C-STORE response. Each is a handful of fixed elements; encoding or scanning them by hand
takes microseconds. Anything outside the plain case (big endian, deflated, undefined lengths,
multiple values) returns None so that the caller uses pydicom as before. The tests compare these
bytes with pydicom's and pynetdicom's own encodings.
"""

from __future__ import annotations

import struct
from typing import Any

_UL = struct.Struct("<L")
_US = struct.Struct("<H")
_TAG = struct.Struct("<HH")
_TAG_VR_LEN16 = struct.Struct("<HH2sH")

#: explicit VR with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2)
_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
_SHORT_VRS = frozenset(
    (b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT")
    + (b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US")
)
_STUDY_UID = 0x0020000D
_SERIES_UID = 0x0020000E


def _ui(value: str) -> bytes:
    """A UI value: ASCII, padded to even length with a NUL."""
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def _explicit(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return _TAG.pack(group, elem) + vr + b"\x00\x00" + _UL.pack(len(value)) + value
    return _TAG_VR_LEN16.pack(group, elem, vr, len(value)) + value


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information of a received instance, byte for byte
    what pydicom's ``write_file_meta_info`` writes for pynetdicom's ``Event.file_meta``."""
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

    version = PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii")
    if len(version) % 2:
        version += b" "
    body = b"".join(
        (
            _explicit(0x0002, 0x0001, b"OB", b"\x00\x01"),
            _explicit(0x0002, 0x0002, b"UI", _ui(sop_class)),
            _explicit(0x0002, 0x0003, b"UI", _ui(sop_instance)),
            _explicit(0x0002, 0x0010, b"UI", _ui(transfer_syntax)),
            _explicit(0x0002, 0x0012, b"UI", _ui(str(PYNETDICOM_IMPLEMENTATION_UID))),
            _explicit(0x0002, 0x0013, b"SH", version),
        )
    )
    length = _explicit(0x0002, 0x0000, b"UL", _UL.pack(len(body)))
    return b"\x00" * 128 + b"DICM" + length + body


def _implicit(group: int, elem: int, value: bytes) -> bytes:
    return _TAG.pack(group, elem) + _UL.pack(len(value)) + value


def c_store_rsp(sop_class: str, sop_instance: str, message_id: int, status: int) -> bytes | None:
    """The command set of a C-STORE response (Implicit VR Little Endian), as pynetdicom encodes
    it for a response with no Offending Element or Error Comment; None for values it cannot
    hold."""
    if not (0 <= message_id <= 0xFFFF and 0 <= status <= 0xFFFF):
        return None
    try:
        body = b"".join(
            (
                _implicit(0x0000, 0x0002, _ui(sop_class)),
                _implicit(0x0000, 0x0100, _US.pack(0x8001)),
                _implicit(0x0000, 0x0120, _US.pack(message_id)),
                _implicit(0x0000, 0x0800, _US.pack(0x0101)),
                _implicit(0x0000, 0x0900, _US.pack(status)),
                _implicit(0x0000, 0x1000, _ui(sop_instance)),
            )
        )
    except UnicodeEncodeError:
        return None
    return _implicit(0x0000, 0x0000, _UL.pack(len(body))) + body


def study_series(data: Any, transfer_syntax: str) -> tuple[str, str] | None:
    """Study and Series Instance UIDs from the first elements of an encoded data set in (Explicit
    or Implicit) VR Little Endian; None when it takes pydicom (another transfer syntax, an
    element of undefined length or an unknown VR before them, a missing, multi-valued or
    non-ASCII value)."""
    from pydicom.uid import UID

    try:
        uid = UID(str(transfer_syntax))
        implicit, little, deflated = uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated
    except ValueError:  # a private transfer syntax: pydicom knows no better, but decides
        return None
    if deflated or not little:
        return None
    buf = memoryview(data)
    n = len(buf)
    pos = 0
    found: dict[int, bytes] = {}
    while pos + 8 <= n:
        group, elem = _TAG.unpack_from(buf, pos)
        tag = (group << 16) | elem
        if tag > _SERIES_UID:
            break
        if implicit:
            length = _UL.unpack_from(buf, pos + 4)[0]
            head = 8
        else:
            vr = bytes(buf[pos + 4 : pos + 6])
            if vr in _LONG_VRS:
                if pos + 12 > n:
                    return None
                length = _UL.unpack_from(buf, pos + 8)[0]
                head = 12
            elif vr in _SHORT_VRS:
                length = _US.unpack_from(buf, pos + 6)[0]
                head = 8
            else:
                return None
        if length == 0xFFFFFFFF or pos + head + length > n:
            return None
        if tag in (_STUDY_UID, _SERIES_UID):
            found[tag] = bytes(buf[pos + head : pos + head + length])
        pos += head + length
    try:
        study = found[_STUDY_UID].decode("ascii").rstrip("\x00 ")
        series = found[_SERIES_UID].decode("ascii").rstrip("\x00 ")
    except (KeyError, UnicodeDecodeError):
        return None
    if not study or not series or "\\" in study or "\\" in series:
        return None
    return study, series


#: command set elements the receive fast path reads (PS3.7 E.1), by element number (group 0000)
_COMMAND_ELEMENTS = {
    0x0000: ("CommandGroupLength", "UL"),
    0x0002: ("AffectedSOPClassUID", "UI"),
    0x0100: ("CommandField", "US"),
    0x0110: ("MessageID", "US"),
    0x0120: ("MessageIDBeingRespondedTo", "US"),
    0x0700: ("Priority", "US"),
    0x0800: ("CommandDataSetType", "US"),
    0x0900: ("Status", "US"),
    0x1000: ("AffectedSOPInstanceUID", "UI"),
    0x1020: ("NumberOfRemainingSuboperations", "US"),
    0x1021: ("NumberOfCompletedSuboperations", "US"),
    0x1022: ("NumberOfFailedSuboperations", "US"),
    0x1023: ("NumberOfWarningSuboperations", "US"),
    0x1030: ("MoveOriginatorApplicationEntityTitle", "AE"),
    0x1031: ("MoveOriginatorMessageID", "US"),
}


def command_set(data: Any) -> dict[str, int | str] | None:
    """A DIMSE command set (Implicit VR Little Endian) as ``{keyword: value}``, values as pydicom
    decodes them (US/UL ints, UI and AE text without padding); None when it holds an element
    not in :data:`_COMMAND_ELEMENTS` (an Error Comment, an Offending Element...), a
    multi-valued or malformed one: pynetdicom then decodes it."""
    buf = memoryview(data)
    n = len(buf)
    pos = 0
    out: dict[str, int | str] = {}
    while pos < n:
        if pos + 8 > n:
            return None
        group, elem = _TAG.unpack_from(buf, pos)
        length = _UL.unpack_from(buf, pos + 4)[0]
        pos += 8
        if group != 0x0000 or elem not in _COMMAND_ELEMENTS or pos + length > n:
            return None
        keyword, vr = _COMMAND_ELEMENTS[elem]
        raw = bytes(buf[pos : pos + length])
        pos += length
        if vr == "US":
            if length != 2:
                return None
            out[keyword] = _US.unpack(raw)[0]
        elif vr == "UL":
            if length != 4:
                return None
            out[keyword] = _UL.unpack(raw)[0]
        else:
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                return None
            text = text.rstrip("\x00 ") if vr == "UI" else text.strip()
            if "\\" in text or "\x00" in text:
                return None
            out[keyword] = text
    return out
