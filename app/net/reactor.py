"""An event-driven DICOM Upper Layer reactor for pynetdicom (installed by :mod:`app.net.dimse`).

pynetdicom 3.0.4's DUL thread polls: when neither the socket nor the queue of outgoing
primitives has anything, it sleeps 1 ms and looks again. In a C-GET the PACS sends one instance,
then waits for its C-STORE response before it sends the next, so every instance pays that poll
twice (the response waits for the reactor to wake up and send it; the next instance waits for
it to notice the socket), ~1.1 ms each, longer on a loaded machine: a third of the wall time of
a CT retrieve. :class:`EventDUL` waits in ``select`` on the socket *and* on a wake-up socket
that is written to whenever a primitive or an event is queued while it waits, so it reacts at
once and uses no CPU while idle.

Receiving costs pynetdicom ~25 us of Python per PDU (35 PDUs per CT slice with Orthanc's 16 KiB
PDUs) and two system calls per 4 KiB. :class:`EventDUL` reads into a buffer (one system call
brings every PDU waiting), and takes the PDUs of the receive path that pynetdicom's state machine
would only pass along (Sta6, DT-2: middle data-set fragments, appended to the message being
received); every command set, and anything else, takes pynetdicom's path (its PDU and DIMSE
decoding). On Linux it sets ``TCP_QUICKACK`` when it has to wait for the rest
of a PDU: dcmtk-based PACS (Orthanc) write a PDU in more than one piece with Nagle's algorithm
on, so the second piece waits for our ACK, which a delayed ACK holds 40 ms (once per query
response, once at the end of each retrieve).

The state machine, the timers and the error handling are pynetdicom's. The reactor loop
follows ``DULServiceProvider.run_reactor`` of pynetdicom 3.0.4 line for line, except for the
wait; it is installed only for that version (:func:`install`).
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import struct
import threading
import time
from typing import Any

from pynetdicom.dul import DULServiceProvider
from pynetdicom.fsm import TRANSITION_TABLE as _TABLE
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
#: bytes one read may bring (grown for a larger PDU, then back)
RECV_BUFFER = 256 * 1024
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


class _SignallingQueue(queue.Queue):  # type: ignore[type-arg]
    """A queue that sets an event whenever something is put (the association reactor waits
    on it, see :func:`event_run_reactor`)."""

    def __init__(self, activity: threading.Event) -> None:
        super().__init__()
        self._activity = activity

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._activity.set()


class EventDUL(DULServiceProvider):
    """pynetdicom's DUL service provider, waiting on events instead of polling."""

    def __init__(self, assoc: Any) -> None:
        self._waiting = False
        self._readable = False
        # received bytes not yet taken: ``_rbuf[_rstart:_rend]`` (see _fill)
        self._rbuf = bytearray(RECV_BUFFER)
        self._rstart = self._rend = 0
        self._peek_raw: Any = None  # the socket _fill last looked at, and whether it can peek
        self._peek = False
        self._kill = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        super().__init__(assoc)
        # only ``stop_dul`` still uses it, to wait for the thread to end (woken by the kill)
        self._run_loop_delay = 0.0002
        self.event_queue = _WakingQueue(self)
        self.to_provider_queue = _WakingQueue(self)
        #: C-GET / C-MOVE pending responses that come sooner than this after the last one
        #: passed on are dropped (0: none is); the first always passes (it has the total)
        self.pending_interval_s = 0.0
        self._last_pending: float | None = None
        #: set when the association's reactor has something to look at: a primitive for the
        #: service user (release, abort), a DIMSE message, the end of this thread, a kill
        self.activity = threading.Event()
        self.to_user_queue = _SignallingQueue(self.activity)

    # ``_kill_thread`` is set by pynetdicom (``kill_dul``, ``stop_dul``) from other threads
    @property
    def _kill_thread(self) -> bool:
        return self._kill

    @_kill_thread.setter
    def _kill_thread(self, value: bool) -> None:
        self._kill = bool(value)
        if value:
            self._wake()
            activity = getattr(self, "activity", None)
            if activity is not None:
                activity.set()

    def send_now(self, primitive: Any) -> None:
        """Send a P-DATA primitive: at once when called on the reactor thread in Sta6 with
        nothing queued before it (what DT-1 would do on the loop's next round, after the
        interpreter lock has perhaps gone to another thread), otherwise queued as usual."""
        from pynetdicom.pdu import P_DATA_TF

        if (
            threading.current_thread() is self
            and self.state_machine.current_state == "Sta6"
            and self.to_provider_queue.empty()
            and not self._observed(sending=True)
        ):
            self._send(P_DATA_TF(primitive))
        else:
            self.send_pdu(primitive)

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
        if self._rend > self._rstart:  # received and not yet taken: no need to wait
            self._readable = True
            return
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
        """As pynetdicom's, without a second ``select`` when :meth:`_wait` just saw data, and
        counting bytes already received into the buffer as data to read (in any state: in
        Sta13 pynetdicom too reads what is there before it closes)."""
        readable, self._readable = self._readable, False
        if self._rend > self._rstart or (readable and self.state_machine.current_state != "Sta13"):
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
                if event == "Evt9" and ("Evt9", self.state_machine.current_state) not in _TABLE:
                    # a P-DATA queued just as the association was aborted (a C-STORE response
                    # from this thread, an instant after the user cancelled): nothing can be
                    # sent any more; pynetdicom's state machine would raise and end the thread
                    self.to_provider_queue.get(block=False)
                    log.debug("P-DATA dropped in %s", self.state_machine.current_state)
                else:
                    self.state_machine.do_action(event)
                sleep = False
        finally:
            self._wake_r.close()
            self._wake_w.close()
            self.activity.set()  # the association reactor checks whether this thread lives

    # -- reading a PDU ------------------------------------------------------------------------
    def _fill(self, raw: Any, need: int, wait: bool = True) -> Any:
        """Have at least ``need`` received bytes in the buffer: True, or None when the
        connection closes, times out or fails first. Reads take what the socket has (up to the
        buffer's size), so one system call brings many PDUs when they are waiting. Without
        ``wait``: :data:`_NOTHING` when not one byte is there yet (a plain blocking socket is
        asked without blocking; for others only what is buffered counts)."""
        if self._rend - self._rstart >= need:
            return True
        if raw is None:
            return None
        # a plain blocking socket can be asked without waiting (a socket with a timeout, or an
        # SSL socket, cannot: it is read the plain way)
        if raw is not self._peek_raw:
            self._peek_raw = raw
            self._peek = (
                _QUICKACK is not None and type(raw) is socket.socket and raw.gettimeout() is None
            )
        peek = self._peek
        if not wait and self._rend == self._rstart and not peek:
            return _NOTHING
        self._make_room(need)
        try:
            while self._rend - self._rstart < need:
                space = len(self._rbuf) - self._rend
                k = -1
                if peek:
                    try:
                        k = raw.recv_into(
                            memoryview(self._rbuf)[self._rend :], space, socket.MSG_DONTWAIT
                        )
                    except (BlockingIOError, InterruptedError):
                        if not wait and self._rend == self._rstart:
                            return _NOTHING
                        # the rest is not here yet: acknowledge what came at once, so that a
                        # peer with Nagle's algorithm on sends it now, not after our delayed ACK
                        self._quickack(raw)
                if k == -1:
                    k = raw.recv_into(memoryview(self._rbuf)[self._rend :], space)
                if k == 0:
                    return None
                self._rend += k
                # acknowledge at once what came: a peer with Nagle's algorithm on holds a small
                # message (a C-GET response, the next C-STORE's command) until then, which a
                # delayed ACK makes 40 ms
                self._quickack(raw)
        except OSError:
            return None
        return True

    def _make_room(self, need: int) -> None:
        """Room in the buffer for ``need`` bytes from its start (moved to the front, or a
        larger buffer for a PDU larger than :data:`RECV_BUFFER`)."""
        start, end = self._rstart, self._rend
        if start == end:
            self._rstart = self._rend = start = end = 0
            if len(self._rbuf) > RECV_BUFFER:  # after a huge PDU
                self._rbuf = bytearray(RECV_BUFFER)
        if start + need <= len(self._rbuf):
            return
        if need <= len(self._rbuf):  # same size, in place: fine while views are out
            self._rbuf[0 : end - start] = self._rbuf[start:end]
        else:
            bigger = bytearray(need)
            bigger[0 : end - start] = self._rbuf[start:end]
            self._rbuf = bigger
        self._rstart, self._rend = 0, end - start

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

        A P-DATA-TF that pynetdicom would only pass along (:meth:`_append_fragment`: a middle
        data-set fragment, 35 per CT slice; the command set of a C-STORE request or of a C-GET
        or C-MOVE response) is taken right here: in state Sta6 pynetdicom would pass it through
        its event queue, the state machine (DT-2, back to Sta6) and the DIMSE provider to do
        the same, ~25 us of Python per PDU. Anything else takes pynetdicom's path. After a PDU
        taken here, the PDUs already received are read in the same call (at most
        :data:`BURST`), saving the reactor loop's round per PDU.
        """
        raw = self._raw_socket()
        ok = self._fill(raw, 6)
        done = 0
        # what lets a PDU be taken here, unchanged through the burst (a PDU that is not taken
        # ends it): pynetdicom's state machine in Sta6 with no earlier PDU waiting for it, and
        # nobody watching the events the fast paths do not trigger
        fast = (
            self.state_machine.current_state == "Sta6"
            and self.event_queue.empty()
            and self._recv_pdu.empty()
            and not self._observed()
        )
        while True:
            if ok is not True:
                self.event_queue.put("Evt17")
                return
            pdu_type, _, pdu_length = struct.unpack_from(">BBL", self._rbuf, self._rstart)
            if pdu_type not in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
                log.debug("unknown PDU type 0x%02X received", pdu_type)
                self._rstart += 6
                self.event_queue.put("Evt19")
                return
            if self._fill(raw, 6 + pdu_length) is not True:
                self.event_queue.put("Evt17")
                return
            start = self._rstart
            self._rstart = start + 6 + pdu_length
            pdu_view = memoryview(self._rbuf)[start : start + 6 + pdu_length]
            if not (fast and pdu_type == 0x04 and self._append_fragment(pdu_view[6:])):
                try:
                    pdu, event = self._decode_pdu(bytearray(pdu_view))
                except Exception:  # noqa: BLE001 - as pynetdicom: an invalid PDU
                    log.debug("a received PDU could not be decoded")
                    self.event_queue.put("Evt19")
                    return
                self.event_queue.put(event)
                self._recv_pdu.put(pdu)
                return
            del pdu_view
            done += 1
            if done >= BURST:  # let the loop look at what is to be sent
                return
            ok = self._fill(raw, 6, wait=False)
            if ok is _NOTHING:
                return

    def _append_fragment(self, body: memoryview) -> bool:
        """Take a P-DATA-TF with a single PDV that pynetdicom would only pass along: a middle
        data-set fragment, appended to the DIMSE message being received (what DT-2 and
        ``DIMSEMessage.decode_msg`` would do). Command sets and a data set's last fragment go
        through pynetdicom, which decodes and completes the message. False to let pynetdicom
        handle the PDU. Only called when the state allows it (see :meth:`_read_pdu_data`)."""
        # PDV: item length (4), presentation context ID (1), message control header (1), data
        if len(body) < 6 or int.from_bytes(body[0:4], "big") != len(body) - 4:
            return False  # not exactly one PDV
        if body[5] & 0x03 != 0x00:  # a command set, or the data set's last fragment
            return False
        dimse = getattr(self.assoc, "dimse", None)
        msg: Any = getattr(dimse, "message", None)
        if msg is None or msg._data_set_file is not None or msg.data_set is None:
            return False
        msg.data_set.write(body[6:])
        return True

    def _observed(self, sending: bool = False) -> bool:
        """True when someone bound handlers to the events the fast paths do not trigger."""
        from pynetdicom import evt

        handlers = self.assoc._handlers
        events = (
            (evt.EVT_FSM_TRANSITION, evt.EVT_ACSE_SENT)
            if sending
            else (evt.EVT_DATA_RECV, evt.EVT_PDU_RECV, evt.EVT_FSM_TRANSITION, evt.EVT_DIMSE_RECV)
        )
        return any(handlers.get(e) for e in events)


def event_run_reactor(assoc: Any) -> None:
    """``Association._run_reactor`` of pynetdicom 3.0.4 (an accepted association's loop: serve
    DIMSE requests, notice a release request, an abort, the end of the DUL, the idle timeout),
    waiting on the DUL's :attr:`EventDUL.activity` instead of sleeping 1 ms between looks: the
    listener's associations then wake when something happens, not 1000 times a second. Set as
    ``assoc._run_reactor`` (see :mod:`app.net.dimse`); the DIMSE message queue must set
    ``assoc.dul.activity`` on put, as :class:`app.net.dimse._InlineQueue` does."""
    activity: threading.Event = assoc.dul.activity
    assoc._is_paused = False
    idle = False
    while not assoc._kill:
        if idle:
            activity.wait(MAX_WAIT_S)  # the idle timer is looked at least this often
            activity.clear()  # what was put before this is found by the looks below
        idle = True
        assoc._is_paused = True
        assoc._reactor_checkpoint.wait()
        assoc._is_paused = False
        context_id, msg = assoc.dimse.get_msg(block=False)
        if msg:
            assoc._serve_request(msg, context_id)
            idle = False  # another may wait: look again at once
        if assoc.is_established and assoc.acse.is_release_requested():
            assoc.acse.send_release(is_response=True)
            assoc.is_released = True
            assoc.is_established = False
            from pynetdicom import evt

            evt.trigger(assoc, evt.EVT_RELEASED, {})
            assoc.kill()
            return
        if assoc.acse.is_aborted():
            assoc.dul.receive_pdu(wait=False)  # as pynetdicom: EVT_ACSE_RECV fires
            assoc.is_aborted = True
            assoc.is_established = False
            from pynetdicom import evt

            evt.trigger(assoc, evt.EVT_ABORTED, {})
            assoc.kill()
            return
        if not assoc.dul.is_alive():
            assoc.kill()
            return
        if assoc.dul.idle_timer_expired():
            if assoc.network_timeout_response == "A-RELEASE":
                assoc._is_paused = True
                assoc._reactor_checkpoint.wait()
                assoc.release()
                assoc._is_paused = False
            else:
                assoc.abort()
            assoc.kill()
            return


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
