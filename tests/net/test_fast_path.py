"""The retrieve fast path: hand encodings equal pydicom's / pynetdicom's, the event-driven DUL
reactor (no polling), against real data and a real Orthanc."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from app.net import dimse, encoding, reactor

SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.90")


@pytest.mark.parametrize("ts", SYNTAXES)
@pytest.mark.parametrize("sop", ["1.2.3.4", "1.2.840.113619.2.55.3.604688119.969.1268071029.5"])
def test_file_meta_is_what_pydicom_writes(ts: str, sop: str) -> None:
    from pynetdicom.dsutils import create_file_meta

    buf = DicomBytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    cls = "1.2.840.10008.5.1.4.1.1.2"
    write_file_meta_info(
        buf,
        create_file_meta(
            sop_class_uid=UID(cls), sop_instance_uid=UID(sop), transfer_syntax=UID(ts)
        ),
    )
    assert encoding.file_meta(cls, sop, ts) == buf.getvalue()


@pytest.mark.parametrize("status", [0x0000, 0xA700, 0xC000, 0xB007])
@pytest.mark.parametrize("sop", ["1.2.3.4", "1.2.3.45"])
def test_c_store_response_is_what_pynetdicom_encodes(status: int, sop: str) -> None:
    from pynetdicom.dimse_messages import C_STORE_RSP
    from pynetdicom.dimse_primitives import C_STORE

    rsp = C_STORE()
    rsp.MessageID = rsp.MessageIDBeingRespondedTo = 513
    rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    rsp.AffectedSOPInstanceUID = sop
    rsp.Status = status
    msg = C_STORE_RSP()
    msg.primitive_to_message(rsp)
    (pdata,) = list(msg.encode_msg(1, 16384))
    ((_, pdv),) = pdata.presentation_data_value_list
    assert pdv == b"\x03" + (encoding.c_store_rsp(rsp.AffectedSOPClassUID, sop, 513, status) or b"")
    assert encoding.c_store_rsp("1.2", "1.2.3", 70000, 0) is None  # not a US value


def _data_sets(folder: Path) -> list[tuple[Path, str, io.BytesIO]]:
    out = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        with p.open("rb") as fh:
            if fh.read(132)[128:] != b"DICM":
                continue
            meta = _read_file_meta_info(fh)
            out.append((p, str(meta.TransferSyntaxUID), io.BytesIO(fh.read())))
    return out


def test_study_series_scan_agrees_with_pydicom(dicom_dir: Path) -> None:
    """Every shared file (nine transfer syntaxes among them): the hand scan finds pydicom's UIDs
    or hands over to pydicom (big endian); truncated and garbled data sets never raise."""
    checked = fallback = 0
    for path, ts, body in _data_sets(dicom_dir):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        got = encoding.study_series(body.getbuffer(), ts)
        if "StudyInstanceUID" not in ds or "SeriesInstanceUID" not in ds:  # a DICOMDIR
            assert got is None, path
            continue
        want = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
        if got is None:
            fallback += 1
        else:
            assert got == want, path
        assert dimse._study_series(body, ts) == want, path  # with the pydicom fallback
        checked += 1
        data = body.getvalue()
        for cut in (0, 7, 9, 100, len(data) // 3):
            encoding.study_series(data[:cut], ts)  # None or UIDs: no exception
        encoding.study_series(bytes(b ^ 0x5A for b in data[:4096]), ts)
    assert checked >= 100 and fallback < checked // 2
    big = next(
        b for _, ts, b in _data_sets(dicom_dir / "mr_transfer_syntaxes") if ts.endswith(".2.2")
    )
    assert encoding.study_series(big.getbuffer(), "1.2.840.10008.1.2.2") is None


def test_associations_use_the_event_driven_reactor_and_do_not_poll(node: Any) -> None:
    """An idle association's DUL waits in select (woken at most every MAX_WAIT_S) where
    pynetdicom's polls every millisecond; C-ECHO and C-FIND still work through it."""
    from pynetdicom import association

    n, local = node
    ae = dimse._new_ae(local)  # installs the reactor
    assert association.DULServiceProvider is reactor.EventDUL
    ae.add_requested_context(dimse._VERIFICATION)
    waits = [0]
    assoc = dimse.associate(n, local, ae)
    try:
        assert type(assoc.dul) is reactor.EventDUL
        original = assoc.dul._wait

        def counting() -> None:
            if threading.current_thread() is assoc.dul:
                waits[0] += 1
            original()

        assoc.dul._wait = counting  # type: ignore[method-assign]
        time.sleep(0.5)
        assert waits[0] <= 0.5 / reactor.MAX_WAIT_S + 5  # pynetdicom: ~500
        assert assoc.send_c_echo().Status == 0
    finally:
        assoc.release()
    assoc.dul.join(5)
    assert not assoc.dul.is_alive()


def test_listener_answers_a_store_that_arrives_before_the_association_is_marked_established(
    dicom_dir: Path, hilum_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pynetdicom marks an accepted association established only after sending the
    A-ASSOCIATE-AC; a sender's first C-STORE can be decoded before that (a busy machine
    deschedules the association thread). It must still be filed and answered."""
    from _orthanc import free_port
    from pynetdicom import acse

    from app.net.nodes import LocalSettings, Node

    send_accept = acse.ACSE.send_accept

    def slow_bookkeeping(self: Any) -> None:
        send_accept(self)
        time.sleep(0.5)  # the sender's C-STORE arrives meanwhile

    monkeypatch.setattr(acse.ACSE, "send_accept", slow_bookkeeping)
    port = free_port()
    files = [str(p) for p in sorted((dicom_dir / "mr_transfer_syntaxes").iterdir())[:2]]
    with dimse.Listener(LocalSettings("HILUMFAST", port, 5.0), host="127.0.0.1") as listener:
        sent = dimse.send(
            Node("self", "127.0.0.1", port, "HILUMFAST"),
            LocalSettings("SENDER", free_port(), 5.0),
            files,
        )
        assert [s.ok for s in sent] == [True, True], [s.message for s in sent]
        assert listener.filer.report.received == 2


def _roundtrip(primitive: Any, message_class: Any, kind: str) -> None:
    """Encode with pynetdicom, decode with pynetdicom and with the fast path: same primitive."""
    from pynetdicom.dimse_messages import DIMSEMessage

    msg = message_class()
    msg.primitive_to_message(primitive)
    pdatas = list(msg.encode_msg(5, 0))
    command = pdatas[0].presentation_data_value_list[0][1]
    assert command[0] == 0x03  # one PDV: the whole command set
    theirs = DIMSEMessage()
    for p in pdatas:
        theirs.decode_msg(p)
    want = theirs.message_to_primitive()
    fields = encoding.command_set(memoryview(command)[1:])
    assert fields is not None and reactor._fast_kind(fields) == kind
    ours = DIMSEMessage()
    ours.context_id = 5
    if kind == "C_STORE":
        ours.__class__ = reactor._FastCStoreRQ
        ours._fields = fields  # type: ignore[attr-defined]
        ours.data_set.write(primitive.DataSet.getvalue())
        got = ours.message_to_primitive()
    else:
        got = reactor._primitive(kind, fields, ours)
    names = [a for a in dir(want) if not a.startswith("__") and not callable(getattr(want, a))]
    assert len(names) > 40
    for name in names:
        a, b = getattr(want, name), getattr(got, name)
        if isinstance(a, io.BytesIO):
            a, b = a.getvalue(), b.getvalue()
        assert a == b and type(a) is type(b), name


def test_hand_decoded_commands_give_pynetdicoms_primitives() -> None:
    from pynetdicom.dimse_messages import C_GET_RSP, C_MOVE_RSP, C_STORE_RQ
    from pynetdicom.dimse_primitives import C_GET, C_MOVE, C_STORE

    for move_ae in ("HILUM", None):
        req = C_STORE()
        req.MessageID = 65535
        req.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        req.AffectedSOPInstanceUID = "1.2.3.4.56"
        req.Priority = 2
        if move_ae:
            req.MoveOriginatorApplicationEntityTitle = move_ae
            req.MoveOriginatorMessageID = 3
        req.DataSet = io.BytesIO(b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100")
        _roundtrip(req, C_STORE_RQ, "C_STORE")
    for cls, msg_cls, kind, status in (
        (C_GET, C_GET_RSP, "C_GET", 0xFF00),
        (C_MOVE, C_MOVE_RSP, "C_MOVE", 0),
    ):
        rsp = cls()
        rsp.MessageIDBeingRespondedTo = 1
        rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.3"
        rsp.Status = status
        rsp.NumberOfRemainingSuboperations = 139
        rsp.NumberOfCompletedSuboperations = 1
        rsp.NumberOfFailedSuboperations = 0
        rsp.NumberOfWarningSuboperations = 0
        _roundtrip(rsp, msg_cls, kind)
    # an Error Comment (or anything else unexpected) is left to pynetdicom
    assert encoding.command_set(b"\x00\x00\x02\x09\x04\x00\x00\x00oops") is None
    assert encoding.command_set(b"\x00\x00\x00\x01\x03\x00\x00\x00") is None  # truncated


def test_listener_takes_pdus_larger_than_the_receive_buffer(
    dicom_dir: Path, hilum_home: Path
) -> None:
    """A sender that honours the listener's unlimited PDU size sends each CT slice (~0.5 MB)
    as one PDU: larger than the reactor's receive buffer, which grows for it and back."""
    from _orthanc import free_port

    from app.net.nodes import LocalSettings, Node

    files = sorted(p for p in (dicom_dir / "ct_phantom_philips").iterdir() if p.name != "DIRFILE")
    files = files[:3]
    assert all(f.stat().st_size > reactor.RECV_BUFFER for f in files)
    port = free_port()
    local = LocalSettings("HILUMBIG", port, 10.0)
    with dimse.Listener(local, host="127.0.0.1") as listener:
        sent = dimse.send(
            Node("self", "127.0.0.1", port, "HILUMBIG"),
            LocalSettings("SENDER", free_port(), 10.0),
            [str(f) for f in files],
        )
        assert [s.ok for s in sent] == [True] * 3, [s.message for s in sent]
    report = listener.filer.report
    assert report.received == 3 and not report.errors
    for f in files:
        want = pydicom.dcmread(f)
        got = pydicom.dcmread(
            listener.filer.path_for(
                want.StudyInstanceUID, want.SeriesInstanceUID, want.SOPInstanceUID
            )
        )
        assert got.PixelData == want.PixelData
