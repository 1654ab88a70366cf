"""An event-driven DICOM Upper Layer reactor for pynetdicom (installed by :mod:`app.net.dimse`).

pynetdicom 3.0.4's DUL thread polls: when neither the socket nor the queue of outgoing
primitives has anything, it sleeps 1 ms and looks again. In a C-GET the PACS sends one instance,
then waits for its C-STORE response before it sends the next, so every instance pays that poll
twice (the response waits for the reactor to wake up and send it; the next instance waits for
it to notice the socket), ~1.1 ms each, longer on a loaded machine: a third of the wall time of
a CT retrieve. :class:`EventDUL` waits in ``select`` on the socket *and* on a wake-up socket
that is written to whenever a primitive or an event is queued while it waits, so it reacts at
once and uses no CPU while idle.

It also reads each PDU with few system calls (pynetdicom reads 4 KiB at a time) and, on Linux,
sets ``TCP_QUICKACK`` when it has to wait for the rest of a PDU. dcmtk-based PACS (Orthanc) write
a PDU in more than one piece with Nagle's algorithm on, so the second piece waits for our ACK;
a delayed ACK costs 40 ms (once per query response, once at the end of each retrieve).

Everything else is pynetdicom's own :class:`~pynetdicom.dul.DULServiceProvider`: the state
machine, the timers and the error handling are unchanged. The reactor loop below follows
``DULServiceProvider.run_reactor`` of pynetdicom 3.0.4 line for line, except for the wait; it is
installed only for that version (:func:`install`).
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import struct
import time
from typing import Any

from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ

log = logging.getLogger(__name__)

#: the pynetdicom release whose DUL reactor loop :class:`EventDUL` reproduces
PYNETDICOM_VERSION = "3.0.4"
#: longest wait without a socket event, a queued primitive or a kill: the ARTIM timer (the only
#: timer the DUL checks itself) is looked at least this often
MAX_WAIT_S = 0.05
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
#: at most this many PDUs already waiting in the socket are read in one reactor round
BURST = 64
_NOTHING = object()


class _WakingQueue(queue.Queue):  # type: ignore[type-arg]
    """A queue that wakes the reactor when something is put while the reactor waits."""

    def __init__(self, dul: EventDUL) -> None:
        super().__init__()
        self._dul = dul

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        if self._dul._waiting:  # set before the reactor's last look at the queues
            self._dul._wake()


class EventDUL(DULServiceProvider):
    """pynetdicom's DUL service provider, waiting on events instead of polling."""

    def __init__(self, assoc: Any) -> None:
        self._waiting = False
        self._readable = False
        self._kill = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        super().__init__(assoc)
        # only ``stop_dul`` still uses it, to wait for the thread to end (woken by the kill)
        self._run_loop_delay = 0.0002
        self.event_queue = _WakingQueue(self)
        self.to_provider_queue = _WakingQueue(self)

    # ``_kill_thread`` is set by pynetdicom (``kill_dul``, ``stop_dul``) from other threads
    @property
    def _kill_thread(self) -> bool:
        return self._kill

    @_kill_thread.setter
    def _kill_thread(self, value: bool) -> None:
        self._kill = bool(value)
        if value:
            self._wake()

    def stop_dul(self) -> bool:
        """As pynetdicom's (stop the reactor if in Sta1, the connection closed), but waiting up
        to 10 ms for Sta1 in small steps: ``Association.kill`` otherwise sleeps 10 ms whenever
        the connection is still closing (after every release)."""
        deadline = time.monotonic() + 0.01
        while self.state_machine.current_state != "Sta1" and time.monotonic() < deadline:
            if not self.is_alive():
                break
            time.sleep(0.0002)
        return bool(super().stop_dul())

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (a wake-up is already pending) or closed (the reactor ended)
            pass

    def _drain(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _raw_socket(self) -> Any:
        sock = self.socket
        if sock is None or not getattr(sock, "_is_connected", False):
            return None
        raw = sock.socket
        if raw is None or raw.fileno() < 0:
            return None
        return raw

    def _wait(self) -> None:
        """Block until the socket is readable, something is queued, or :data:`MAX_WAIT_S`."""
        raw = self._raw_socket()
        pending = getattr(raw, "pending", None)  # an SSL socket may hold decrypted data
        if pending is not None and pending():
            return
        ready: list[Any] = []
        self._waiting = True
        try:
            # a put after this look finds ``_waiting`` set and wakes us
            if self._kill or not self.event_queue.empty() or not self.to_provider_queue.empty():
                return
            fds = [self._wake_r] if raw is None else [self._wake_r, raw]
            try:
                ready, _, _ = select.select(fds, [], [], MAX_WAIT_S)
            except (OSError, ValueError):  # the socket closed meanwhile: the loop notices
                pass
        finally:
            self._waiting = False
        if self._wake_r in ready:
            self._drain()
        # the loop's next look at the socket need not ask the kernel again
        self._readable = raw is not None and raw in ready

    def _is_transport_event(self) -> bool:
        """As pynetdicom's, without a second ``select`` when :meth:`_wait` just saw data."""
        readable, self._readable = self._readable, False
        if readable and self.state_machine.current_state != "Sta13":
            self._read_pdu_data()
            return True
        return bool(super()._is_transport_event())

    def run_reactor(self) -> None:
        """The DUL reactor: pynetdicom 3.0.4's loop with :meth:`_wait` for its 1 ms sleep."""
        self._idle_timer.start()
        sleep = False
        try:
            while True:
                if not self.assoc._dul_ready.is_set():
                    self.assoc._dul_ready.set()
                    sleep = True
                if sleep:
                    self._wait()
                if self._kill_thread:
                    break
                if self.artim_timer.expired:
                    self.event_queue.put("Evt18")
                try:
                    if self._process_recv_primitive():
                        pass
                    elif self._is_transport_event():
                        self._idle_timer.restart()
                except Exception as exc:  # noqa: BLE001 - as pynetdicom: abort the association
                    log.debug("DUL reactor error, aborting the association: %s", type(exc).__name__)
                    abort_pdu = A_ABORT_RQ()
                    abort_pdu.source = 0x02
                    abort_pdu.reason_diagnostic = 0x00
                    if self.socket is not None:
                        self.socket.send(abort_pdu.encode())
                    self.assoc.is_aborted = True
                    self.assoc.is_established = False
                    self.assoc._kill = True
                    self._kill_thread = True
                    return
                try:
                    event = self.event_queue.get(block=False)
                except queue.Empty:
                    sleep = True
                    continue
                self.state_machine.do_action(event)
                sleep = False
        finally:
            self._wake_r.close()
            self._wake_w.close()

    # -- reading a PDU ------------------------------------------------------------------------
    def _recv_exact(self, raw: Any, n: int, only_if_waiting: bool = False) -> Any:
        """``n`` bytes from the socket (None when it closes, times out or fails first); with
        ``only_if_waiting``, :data:`_NOTHING` when no byte is there yet (a plain blocking
        socket only: for others, :data:`_NOTHING` without asking)."""
        # a plain blocking socket can be asked without waiting (a socket with a timeout, or an
        # SSL socket, cannot: it is read the plain way)
        peek = _QUICKACK is not None and type(raw) is socket.socket and raw.gettimeout() is None
        if only_if_waiting and not peek:
            return _NOTHING
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        try:
            while got < n:
                k = -1
                if peek:
                    try:
                        k = raw.recv_into(view[got:], n - got, socket.MSG_DONTWAIT)
                    except (BlockingIOError, InterruptedError):
                        if only_if_waiting and got == 0:
                            return _NOTHING
                        # the rest is not here yet: acknowledge what came at once, so that a
                        # peer with Nagle's algorithm on sends it now, not after our delayed ACK
                        self._quickack(raw)
                if k == -1:
                    k = raw.recv_into(view[got:], n - got)
                if k == 0:
                    return None
                got += k
        except OSError:
            return None
        return buf

    @staticmethod
    def _quickack(raw: Any) -> None:
        if _QUICKACK is None:
            return
        try:
            raw.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except (OSError, AttributeError):
            pass

    def _read_pdu_data(self) -> None:
        """As pynetdicom's: read one PDU, queue its event (Evt17/19 on failure).

        A P-DATA-TF that carries one middle fragment of a data set (35 per CT slice, all but
        the last) is appended to the DIMSE message being received right here: in state Sta6
        pynetdicom would only pass it through its event queue, the state machine (DT-2, back
        to Sta6) and the DIMSE provider to do the same append, ~25 us of Python per PDU.
        Anything else (command fragments, a data set's last fragment, several PDVs in one
        PDU, another state, bound PDU/FSM event handlers) takes pynetdicom's path. After such
        a fragment, the PDUs already waiting in the socket are read in the same call (at most
        :data:`BURST`), saving the reactor loop's round per PDU.
        """
        raw = self._raw_socket()
        if raw is None:
            self.event_queue.put("Evt17")
            return
        head = self._recv_exact(raw, 6)
        done = 0
        while True:
            if head is None or len(head) != 6:
                self.event_queue.put("Evt17")
                return
            pdu_type, _, pdu_length = struct.unpack(">BBL", head)
            if pdu_type not in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
                log.debug("unknown PDU type 0x%02X received", pdu_type)
                self.event_queue.put("Evt19")
                return
            body = self._recv_exact(raw, pdu_length) if pdu_length else bytearray()
            if body is None:
                self.event_queue.put("Evt17")
                return
            if not (pdu_type == 0x04 and self._append_fragment(body)):
                try:
                    pdu, event = self._decode_pdu(head + body)
                except Exception:  # noqa: BLE001 - as pynetdicom: an invalid PDU
                    log.debug("a received PDU could not be decoded")
                    self.event_queue.put("Evt19")
                    return
                self.event_queue.put(event)
                self._recv_pdu.put(pdu)
                return
            done += 1
            if done >= BURST:  # let the loop look at what is to be sent
                return
            head = self._recv_exact(raw, 6, only_if_waiting=True)
            if head is _NOTHING:
                return

    def _append_fragment(self, body: bytearray) -> bool:
        """Take a P-DATA-TF with a single PDV that pynetdicom would only pass along: a middle
        data-set fragment (appended to the DIMSE message being received, what DT-2 and
        ``DIMSEMessage.decode_msg`` would do) or a whole command set of the messages a
        retrieve receives by the hundred (:meth:`_take_command`). False to let pynetdicom
        handle the PDU instead."""
        # PDV: item length (4), presentation context ID (1), message control header (1), data
        if len(body) < 6 or int.from_bytes(body[0:4], "big") != len(body) - 4:
            return False  # not exactly one PDV
        control = body[5] & 0x03
        if control not in (0x00, 0x03):  # a data set's last fragment, a partial command
            return False
        if (
            self.state_machine.current_state != "Sta6"
            or not self.event_queue.empty()  # earlier PDUs wait: keep the order
            or not self._recv_pdu.empty()
            or self._observed()
        ):
            return False
        dimse = getattr(self.assoc, "dimse", None)
        msg = getattr(dimse, "message", None)
        if control == 0x03:
            return msg is None and self._take_command(dimse, body[4], memoryview(body)[6:])
        if msg is None or msg._data_set_file is not None or msg.data_set is None:
            return False
        msg.data_set.write(memoryview(body)[6:])
        return True

    def _take_command(self, dimse: Any, context_id: int, data: memoryview) -> bool:
        """A whole command set (in one PDV) of a C-STORE request with a data set, or a C-GET
        or C-MOVE response without one, decoded by hand (:func:`app.net.encoding.command_set`)
        instead of through a pydicom Dataset (~0.2 ms each, twice per instance): the C-STORE
        request becomes the message being received (its data set follows, pynetdicom completes
        it); a response is complete and queued as pynetdicom's ``receive_primitive`` would."""
        from pynetdicom import _config

        from app.net.encoding import command_set

        if _config.STORE_RECV_CHUNKED_DATASET:
            return False
        fields = command_set(data)
        if fields is None:
            return False
        kind = _fast_kind(fields)
        if kind is None:
            return False
        from pynetdicom.dimse_messages import DIMSEMessage

        msg = DIMSEMessage()
        msg.context_id = context_id
        msg.encoded_command_set.write(data)
        if kind == "C_STORE":
            msg.__class__ = _FastCStoreRQ
            msg._fields = fields  # type: ignore[attr-defined]
            dimse.message = msg
            return True
        primitive = _primitive(kind, fields, msg)
        dimse.msg_queue.put((context_id, primitive))
        return True

    def _observed(self) -> bool:
        """True when someone bound handlers to the events the fast path does not trigger."""
        from pynetdicom import evt

        handlers = self.assoc._handlers
        return any(
            handlers.get(e)
            for e in (
                evt.EVT_DATA_RECV,
                evt.EVT_PDU_RECV,
                evt.EVT_FSM_TRANSITION,
                evt.EVT_DIMSE_RECV,
            )
        )


def _fast_kind(fields: dict[str, Any]) -> str | None:
    """The primitive for a command set the fast path takes: a C-STORE request with a data set,
    a C-GET or C-MOVE response without one (Command Data Set Type 0x0101: none, PS3.7 E.1)."""
    field, ds_type = fields.get("CommandField"), fields.get("CommandDataSetType")
    if ds_type is None:
        return None
    if field == 0x0001:
        return "C_STORE" if ds_type != 0x0101 else None
    if ds_type != 0x0101:
        return None
    return {0x8010: "C_GET", 0x8021: "C_MOVE"}.get(int(field or 0))


def _primitive(kind: str, fields: dict[str, Any], msg: Any) -> Any:
    """The DIMSE primitive pynetdicom's ``DIMSEMessage.message_to_primitive`` makes from the
    same command set and data set."""
    from pynetdicom import dimse_primitives

    primitive = getattr(dimse_primitives, kind)()
    for keyword, value in fields.items():
        if hasattr(primitive, keyword):
            setattr(primitive, keyword, value)
    setattr(primitive, "DataSet" if kind == "C_STORE" else "Identifier", msg.data_set)
    primitive._context_id = msg.context_id
    primitive._dataset_path = msg._data_set_path
    primitive._dataset_file = msg._data_set_file
    return primitive


def _fast_c_store_rq() -> type:
    from pynetdicom.dimse_messages import C_STORE_RQ

    class FastCStoreRQ(C_STORE_RQ):  # type: ignore[misc]
        """A C-STORE-RQ whose command set was decoded by hand (``_fields``)."""

        _fields: dict[str, Any]

        def message_to_primitive(self) -> Any:
            return _primitive("C_STORE", self._fields, self)

    return FastCStoreRQ


_FastCStoreRQ = _fast_c_store_rq()


def install() -> bool:
    """Make pynetdicom's associations use :class:`EventDUL` (process-wide; idempotent).

    Returns False, leaving pynetdicom as it is, for a pynetdicom release other than
    :data:`PYNETDICOM_VERSION` (its reactor loop may differ).
    """
    import pynetdicom
    from pynetdicom import association

    if pynetdicom.__version__ != PYNETDICOM_VERSION:
        return False
    association.DULServiceProvider = EventDUL  # type: ignore[misc]
    return True
