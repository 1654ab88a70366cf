"""The event-driven DUL reactor (no polling) against a real Orthanc, and the races it must not
reopen."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest

from app.net import dimse, reactor

SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.90")


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
