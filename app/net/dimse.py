"""DIMSE services over pynetdicom: C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE (SCU) and the
storage listener (C-STORE SCP).

Each function associates, does its one job and releases; every failure becomes a typed
:class:`~app.core.errors.NetworkError` whose text is one sentence (the association's rejection
reason, an abort, a timeout, or the DIMSE status and what it means).
"""

from __future__ import annotations

import functools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from app.core.errors import (
    AssociationAbortedError,
    AssociationRejectedError,
    Cancelled,
    ConnectionFailedError,
    DimseStatusError,
    HilumError,
    NetworkError,
    NetworkTimeoutError,
)
from app.core.progress import NullProgress, Progress
from app.dicom.reading import read_header
from app.net.filing import Filer
from app.net.nodes import LocalSettings, Node

log = logging.getLogger(__name__)

# pynetdicom logs every PDU at INFO and identifiers (patient data) at DEBUG: keep it quiet
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


def _configure_pynetdicom() -> None:
    """Process-wide pynetdicom settings, the same for every association Hilum makes.

    * no standard event logging: with the logger silenced it only costs CPU (a few handlers per
      PDU, ~35 PDUs per CT slice);
    * the unrestricted storage service: the listener (and the C-GET storage SCP) accept any
      storage class in the transfer syntax proposed first, without a list of ~170 supported
      contexts that pynetdicom deep-copies for every association (~0.3 s CPU per C-MOVE);
    * the event-driven DUL reactor (:mod:`app.net.reactor`) instead of pynetdicom's 1 ms poll,
      which a C-GET pays twice per instance.
    """
    from pynetdicom import _config

    from app.net import reactor

    _config.LOG_HANDLER_LEVEL = "none"
    _config.UNRESTRICTED_STORAGE_SERVICE = True
    reactor.install()


#: storage SOP classes proposed for C-GET (with the SCP role) and accepted by the listener; the
#: classes a study actually holds (SOPClassesInStudy) are added to these when the PACS says
_STORAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # DX for processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # MG for presentation
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.3.1",  # US multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame grayscale byte SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame true colour SC
    "1.2.840.10008.5.1.4.1.1.12.1",  # XA
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
)

_STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
_STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
_STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
_VERIFICATION = "1.2.840.10008.1.1"

#: what the common failure statuses mean to a user
_MEANINGS = (
    (0xA700, 0xA7FF, "refused: out of resources"),
    (0xA701, 0xA701, "refused: out of resources, unable to calculate the number of matches"),
    (0xA702, 0xA702, "refused: out of resources, unable to perform the sub-operations"),
    (0xA801, 0xA801, "refused: the move destination is unknown to the PACS"),
    (0xA900, 0xA9FF, "the data set does not match the SOP class"),
    (0xC000, 0xCFFF, "the PACS cannot understand the request"),
    (0x0122, 0x0122, "refused: SOP class not supported"),
    (0x0124, 0x0124, "refused: not authorised"),
    (0x0110, 0x0110, "processing failure"),
    (0xFE00, 0xFE00, "cancelled"),
    (0xB000, 0xB000, "warning: some sub-operations failed"),
    (0x0111, 0x0111, "duplicate SOP instance"),
)


def status_meaning(code: int, error_comment: str = "") -> str:
    """``0xA700`` -> ``"0xA700 (refused: out of resources)"``, plus the node's comment if any."""
    meaning = ""
    for lo, hi, text in sorted(_MEANINGS, key=lambda m: m[1] - m[0]):  # most specific first
        if lo <= code <= hi:
            meaning = text
            break
    if not meaning:
        from pynetdicom import status as pstatus

        for table in (
            pstatus.STORAGE_SERVICE_CLASS_STATUS,
            pstatus.QR_GET_SERVICE_CLASS_STATUS,
            pstatus.QR_MOVE_SERVICE_CLASS_STATUS,
            pstatus.QR_FIND_SERVICE_CLASS_STATUS,
            pstatus.GENERAL_STATUS,
        ):
            if code in table and table[code][1]:
                meaning = table[code][1].lower()
                break
    meaning = meaning or "unknown status"
    comment = error_comment.strip()
    return f"0x{code:04X} ({meaning}{': ' + comment if comment else ''})"


# -- associations -----------------------------------------------------------------------------------
def _new_ae(local: LocalSettings) -> Any:
    from pynetdicom import AE

    _configure_pynetdicom()
    ae = AE(ae_title=local.ae_title)
    t = float(local.timeout_s)
    ae.acse_timeout = t
    ae.dimse_timeout = t
    ae.network_timeout = t
    ae.connection_timeout = t
    ae.maximum_pdu_size = 0  # no limit on what we receive: fewer, larger PDUs
    return ae


def _nodelay(event: Any) -> None:
    """EVT_CONN_OPEN: disable Nagle's algorithm on the association's socket.

    pynetdicom sends a DIMSE message as several writes (command, then data set); with Nagle on,
    a small second write waits for the peer's delayed ACK (~40 ms on Linux): ~40 ms per C-FIND
    or C-STORE response. dcmtk does the same with ``TCP_NODELAY=1``."""
    try:
        sock = event.assoc.dul.socket.socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass  # not a TCP socket (or already closed): nothing to tune


def _where(node: Node) -> str:
    return f"{node.name} ({node.ae_title} at {node.host}:{node.port})"


def _diagnose_connect(node: Node, timeout: float) -> NetworkError | None:
    """Why no association: find out with a plain TCP connect (refused, unknown host, timeout)."""
    try:
        with socket.create_connection((node.host, int(node.port)), timeout=min(timeout, 10.0)):
            pass
    except socket.gaierror:
        return ConnectionFailedError(
            f"The host name {node.host!r} of PACS node {node.name} is unknown."
        )
    except ConnectionRefusedError:
        return ConnectionFailedError(
            f"{_where(node)} refused the connection: nothing is listening on port {node.port} "
            f"(the PACS is stopped, or the port is wrong)."
        )
    except TimeoutError:
        return NetworkTimeoutError(
            f"{_where(node)} did not answer within {timeout:g} s "
            f"(unreachable host, or a firewall drops the connection)."
        )
    except OSError as exc:
        return ConnectionFailedError(f"{_where(node)} cannot be reached ({exc.strerror or exc}).")
    return None  # TCP is fine: the trouble is at the DICOM level


def _diagnose_tls(node: Node, ctx: Any, timeout: float) -> NetworkError | None:
    """Why a TLS association failed: the handshake, tried on its own."""
    import ssl

    try:
        with socket.create_connection(
            (node.host, int(node.port)), timeout=min(timeout, 10.0)
        ) as raw:
            with ctx.wrap_socket(raw, server_hostname=node.host):
                return None
    except ssl.SSLCertVerificationError as exc:
        return ConnectionFailedError(
            f"The TLS certificate of {_where(node)} is not trusted ({exc.verify_message}); "
            f"give its certificate authority with `hilum pacs add ... --tls-ca FILE`."
        )
    except ssl.SSLError as exc:
        return ConnectionFailedError(
            f"The TLS handshake with {_where(node)} failed "
            f"({exc.reason or 'no reason given'}; does it use TLS?)."
        )
    except OSError:
        return None


def _tls_args(node: Node) -> Any:
    if not node.tls:
        return None
    import ssl

    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=node.tls_ca or None)
    except (OSError, ssl.SSLError):
        raise ConnectionFailedError(
            f"The TLS certificate file {node.tls_ca} of PACS node {node.name} cannot be read."
        ) from None
    return (ctx, node.host)


def associate(
    node: Node,
    local: LocalSettings,
    ae: Any,
    ext_neg: list[Any] | None = None,
    evt_handlers: list[Any] | None = None,
) -> Any:
    """Open an association with ``node`` (contexts already on ``ae``); typed errors on failure."""
    if not node.has_dimse:
        from app.core.errors import NodeError

        raise NodeError(f"PACS node {node.name} has no DIMSE address (it is DICOMweb only).")
    from pynetdicom import evt

    kwargs: dict[str, Any] = {
        "ae_title": node.ae_title,
        "ext_neg": ext_neg or None,
        "evt_handlers": [*(evt_handlers or []), (evt.EVT_CONN_OPEN, _nodelay)],
    }
    tls = _tls_args(node)
    if tls is not None:
        kwargs["tls_args"] = tls
    t0 = time.monotonic()
    assoc = ae.associate(node.host, int(node.port), **kwargs)
    waited = time.monotonic() - t0
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        prim = getattr(assoc.acceptor, "primitive", None)
        reason = getattr(prim, "reason_str", "") if prim is not None else ""
        result = getattr(prim, "result_str", "") if prim is not None else ""
        hint = ""
        if "Called AE" in reason:
            hint = f"; check the node's AE title ({node.ae_title})"
        elif "Calling AE" in reason:
            hint = f"; the PACS does not know Hilum's AE title {local.ae_title}"
        raise AssociationRejectedError(
            f"{_where(node)} rejected the association: {reason or 'no reason given'}"
            f"{' (' + result.lower() + ')' if result else ''}{hint}."
        )
    diagnosis = _diagnose_connect(node, float(local.timeout_s))
    if diagnosis is not None:
        raise diagnosis
    if waited >= 0.95 * float(local.timeout_s):  # pynetdicom aborts when the ACSE timer expires
        raise NetworkTimeoutError(
            f"{_where(node)} accepted the connection but did not answer the "
            f"DICOM association request within {float(local.timeout_s):g} s "
            f"(is it a DICOM port?)."
        )
    if node.tls and tls is not None:
        tls_problem = _diagnose_tls(node, tls[0], float(local.timeout_s))
        if tls_problem is not None:
            raise tls_problem
    if assoc.is_aborted:
        raise AssociationAbortedError(
            f"{_where(node)} aborted the association request "
            f"(is it a DICOM port{'' if node.tls else ', or does it need TLS'}?)."
        )
    raise ConnectionFailedError(
        f"{_where(node)} accepted the connection but did not answer the "
        f"DICOM association request within {float(local.timeout_s):g} s "
        f"(is it a DICOM port?)."
    )


def _after_failure(assoc: Any, node: Node, local: LocalSettings, what: str) -> NetworkError:
    """The sentence for a DIMSE exchange that got no valid response."""
    if assoc.is_aborted:
        return AssociationAbortedError(
            f"The association with {_where(node)} was aborted during {what}."
        )
    return NetworkTimeoutError(
        f"{_where(node)} did not answer the {what} within {float(local.timeout_s):g} s."
    )


def _check_context(assoc: Any, node: Node, abstract: str, what: str) -> None:
    if not any(cx.abstract_syntax == abstract for cx in assoc.accepted_contexts):
        assoc.release()
        raise DimseStatusError(f"{_where(node)} does not support {what}.")


# -- C-ECHO -------------------------------------------------------------------------------------------
def echo(node: Node, local: LocalSettings) -> float:
    """C-ECHO; return the round-trip time in milliseconds (association included)."""
    ae = _new_ae(local)
    ae.add_requested_context(_VERIFICATION)
    t0 = time.perf_counter()
    assoc = associate(node, local, ae)
    try:
        _check_context(assoc, node, _VERIFICATION, "verification (C-ECHO)")
        status = assoc.send_c_echo()
        if not status or "Status" not in status:
            raise _after_failure(assoc, node, local, "C-ECHO")
        if status.Status != 0:
            raise DimseStatusError(
                f"{_where(node)} answered C-ECHO with status {status_meaning(status.Status)}.",
                status.Status,
            )
        ms = (time.perf_counter() - t0) * 1000.0
    finally:
        if assoc.is_established:
            assoc.release()
    return ms


# -- C-FIND --------------------------------------------------------------------------------------------
STUDY_RETURN_KEYS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "StudyInstanceUID",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_RETURN_KEYS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)


def find(
    node: Node,
    local: LocalSettings,
    level: str,
    filters: dict[str, str],
    progress: Progress | None = None,
) -> list[Dataset]:
    """Study Root C-FIND at ``level`` ("STUDY", "SERIES" or "IMAGE"); ``filters`` are DICOM
    keywords (an empty value asks for that attribute back)."""
    progress = progress or NullProgress()
    ident = Dataset()
    ident.QueryRetrieveLevel = level
    for kw in {"STUDY": STUDY_RETURN_KEYS, "SERIES": SERIES_RETURN_KEYS}.get(level, ()):
        setattr(ident, kw, "")
    for kw, value in filters.items():
        if value or level == "IMAGE":
            setattr(ident, kw, value)
    ae = _new_ae(local)
    ae.add_requested_context(_STUDY_ROOT_FIND)
    assoc = associate(node, local, ae)
    out: list[Dataset] = []
    try:
        _check_context(assoc, node, _STUDY_ROOT_FIND, "Study Root queries (C-FIND)")
        for status, identifier in assoc.send_c_find(ident, _STUDY_ROOT_FIND):
            if progress.cancelled:
                assoc.abort()
                raise Cancelled()
            if not status or "Status" not in status:
                raise _after_failure(assoc, node, local, "C-FIND")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                if identifier is not None:
                    out.append(identifier)
                    progress.update(len(out), None, f"{len(out)} match(es)")
            elif code == 0x0000:
                break
            else:
                raise DimseStatusError(
                    f"{_where(node)} answered the query with status "
                    f"{status_meaning(code, str(status.get('ErrorComment', '') or ''))}.",
                    code,
                )
    finally:
        if assoc.is_established:
            assoc.release()
    return out


# -- retrieve (C-GET / C-MOVE) ---------------------------------------------------------------------
@dataclass
class RetrieveOutcome:
    """Sub-operation counts reported by the PACS for one C-GET/C-MOVE."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    total: int | None = None
    problems: list[str] = field(default_factory=list)


def _store(filer: Filer, req: Any, transfer_syntax: str) -> int:
    """File a received C-STORE request's data set as it came; the C-STORE status.

    With a write-behind filer (a retrieve Hilum asked for) the status is success once the
    instance is handed to the filer: reading its header and writing it happen off the network
    thread, and a failure is in the filer's report (the PACS keeps the instance)."""
    try:
        # the data set as received (a BytesIO), stored without decoding; handed over:
        # pynetdicom gives each request a data set of its own, dropped after this
        filer.receive(
            req.DataSet.getbuffer(),
            str(req.AffectedSOPClassUID),
            str(req.AffectedSOPInstanceUID),
            str(transfer_syntax),
        )
    except Exception as exc:  # noqa: BLE001 - refuse the instance, keep the association
        log.debug("instance not stored: %s", type(exc).__name__)
        return 0xA700 if isinstance(exc, OSError) else 0xC000
    return 0x0000


def _store_handler(filer: Filer) -> Callable[[Any], int]:
    """EVT_C_STORE handler (the listener): file the instance."""

    def handle(event: Any) -> int:
        return _store(filer, event.request, event.context.transfer_syntax)

    return handle


def _fast_c_store_scp(assoc: Any, filer: Filer) -> Callable[[Any, int], bool]:
    """Answer a C-STORE request as pynetdicom would (``Association._c_store_scp`` within a
    C-GET, ``StorageServiceClass.SCP`` in the listener), on the association's network thread
    (the PACS waits for each response before it sends the next instance). Returns False, having done nothing,
    for a request pynetdicom must handle (a listener's request on an unknown context or during
    release: pynetdicom aborts or ignores it; one that arrives before pynetdicom has marked the
    association established: its reactor serves it once it is)."""

    responses = _StoreResponses(assoc)

    def scp(req: Any, context_id: int) -> bool:
        if assoc.is_requestor:
            try:
                context = assoc._get_valid_context(
                    req.AffectedSOPClassUID, "", "scp", context_id=req._context_id
                )
            except ValueError:  # as pynetdicom: no such context, SOP class not supported
                context, status = None, 0x0122
            else:
                status = _store(filer, req, context.transfer_syntax[0])
        else:
            context = assoc._accepted_cx.get(context_id)
            if (
                context is None
                or assoc._sent_release
                or not req.is_valid_request
                # pynetdicom marks the association established only after it has sent the
                # A-ASSOCIATE-AC: a request that comes faster waits for its reactor, as before
                or not assoc.is_established
            ):
                return False
            status = _store(filer, req, context.transfer_syntax[0])
            if assoc.is_aborted or assoc.is_released:  # meanwhile: no response, as pynetdicom
                return True
        cx_id = 1 if context is None else int(context.context_id)
        responses.send(req, status, cx_id)
        return True

    return scp


#: a pending C-GET/C-MOVE response reaches the thread following the retrieve at most this often
PENDING_EVERY_S = 0.1


#: a received pending response that :class:`_InlineQueue` leaves out (never converted)
_LEFT_OUT = object()


class _InlineQueue(queue.Queue):  # type: ignore[type-arg]
    """The DIMSE message queue of an association that retrieves or receives instances (see
    :func:`_inline_queue`): C-STORE requests are answered right where they are decoded (the DUL
    thread), pending C-GET/C-MOVE responses are passed on at most every
    :data:`PENDING_EVERY_S`, everything else is queued as before.

    pynetdicom queues each C-STORE request for another thread (the one waiting on the C-GET
    responses; the listener's association thread, which looks every millisecond), which files
    it and queues the response back for the DUL thread to send: two thread hand-offs per
    instance while the PACS waits (each a wake-up and a GIL hand-over, which on a busy machine
    can take a scheduler time slice). Filing and answering in the DUL thread also holds the
    PACS back when the disk is slow (the write-behind queue is full), as TCP would.

    A PACS sends a pending response after each instance; pynetdicom converts each into a
    primitive (every element, validated), and the thread following the retrieve turns it into
    a status dataset, only to update a progress bar. The counts in a response are totals, so
    the next one passed on, or the final one, which always is, carries those of the responses
    left out; a cancel is seen within ``PENDING_EVERY_S``.
    """

    def __init__(self, scp: Callable[[Any, int], bool] | None = None, activity: Any = None) -> None:
        super().__init__()
        self._scp = scp
        self._activity = activity  # the event-driven association reactor waits on it
        self._last_pending = -PENDING_EVERY_S

    def convert(self, message: Any) -> Any:
        """``message.message_to_primitive()`` (pynetdicom), or :data:`_LEFT_OUT` for a pending
        C-GET/C-MOVE response that comes within ``PENDING_EVERY_S`` of the last one passed
        on: its status is read from the command set pydicom decoded, nothing else is."""
        from pynetdicom.dimse_messages import C_GET_RSP, C_MOVE_RSP

        if isinstance(message, C_GET_RSP | C_MOVE_RSP):
            status = message.command_set.get("Status", None)
            if status in (0xFF00, 0xFF01):
                now = time.monotonic()
                if now - self._last_pending < PENDING_EVERY_S:
                    return _LEFT_OUT  # counted in the next response passed on
                self._last_pending = now
        return type(message).message_to_primitive(message)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        from pynetdicom.dimse_primitives import C_STORE

        context_id, msg = item
        if msg is _LEFT_OUT:
            return
        if isinstance(msg, C_STORE) and self._scp is not None:
            if msg.MessageIDBeingRespondedTo is None and self._scp(msg, context_id):  # request
                return
        super().put(item, block, timeout)
        if self._activity is not None:
            self._activity.set()


def _inline_queue(assoc: Any, scp: Callable[[Any, int], bool] | None = None) -> None:
    """Give ``assoc`` an :class:`_InlineQueue` (before any DIMSE message has arrived): its
    DIMSE provider converts each message it completes through :meth:`_InlineQueue.convert`."""
    from pynetdicom.dimse_messages import DIMSEMessage

    inline = _InlineQueue(scp, getattr(assoc.dul, "activity", None))
    provider = assoc.dimse
    provider.msg_queue = inline
    receive = provider.receive_primitive

    def receive_primitive(primitive: Any) -> None:
        if provider.message is None:  # a new message: pynetdicom would make it the same way
            message = provider.message = DIMSEMessage()
            # converted while it is still the provider's message (no reference cycle with it)
            message.message_to_primitive = lambda: inline.convert(  # type: ignore[method-assign]
                provider.message
            )
        receive(primitive)

    provider.receive_primitive = receive_primitive


def _answer_stores_inline(assoc: Any, filer: Filer) -> None:
    """Make ``assoc`` file and answer C-STORE requests in its DUL thread (:class:`_InlineQueue`),
    unless someone watches the DIMSE messages it sends (EVT_DIMSE_SENT handlers then run in the
    order pynetdicom's own service gives them)."""
    from pynetdicom import evt

    if assoc.get_handlers(evt.EVT_DIMSE_SENT):
        return
    scp = _fast_c_store_scp(assoc, filer)
    assoc._c_store_scp = lambda req: scp(req, req._context_id)  # a C-STORE that got queued
    _inline_queue(assoc, scp)
    if assoc.is_acceptor and getattr(assoc.dul, "activity", None) is not None:
        from app.net import reactor

        # the listener's association: its loop waits for events instead of polling
        assoc._run_reactor = lambda: reactor.event_run_reactor(assoc)


class _StoreResponses:
    """The C-STORE responses of one association, sent from one pynetdicom C-STORE-RSP message.

    pynetdicom's ``send_msg`` builds a new message for every response (a primitive, then a
    command set of seven elements set one by one, each validated by pydicom), ~0.25 ms at the
    pace a PACS sends instances, which waits for each response. Here the message is built so
    once; for each response the elements that change are set in its command set (pydicom), and
    pynetdicom recomputes the group length, encodes the command set and sends it as it does in
    ``send_msg``.
    """

    def __init__(self, assoc: Any) -> None:
        self._assoc = assoc
        self._lock = threading.Lock()  # the DUL thread, or a thread serving a queued request
        self._message: Any = None

    def send(self, req: Any, status: int, cx_id: int) -> None:
        """Answer ``req`` with ``status`` on presentation context ``cx_id``."""
        from pynetdicom.dimse_messages import C_STORE_RSP
        from pynetdicom.dimse_primitives import C_STORE

        with self._lock:
            message = self._message
            if message is None:
                rsp = C_STORE()
                rsp.MessageIDBeingRespondedTo = req.MessageID
                rsp.AffectedSOPInstanceUID = req.AffectedSOPInstanceUID
                rsp.AffectedSOPClassUID = req.AffectedSOPClassUID
                rsp.Status = status
                message = self._message = C_STORE_RSP()
                message.primitive_to_message(rsp)
            else:
                command = message.command_set
                command.MessageIDBeingRespondedTo = req.MessageID
                command.AffectedSOPInstanceUID = req.AffectedSOPInstanceUID
                if command.AffectedSOPClassUID != req.AffectedSOPClassUID:
                    command.AffectedSOPClassUID = req.AffectedSOPClassUID
                if command.Status != status:
                    command.Status = status
                message._set_command_group_length()
            message.context_id = cx_id
            provider = self._assoc.dimse
            for pdata in message.encode_msg(cx_id, provider.maximum_pdu_size):
                provider.dul.send_pdu(pdata)


def _retrieve_ident(study_uid: str, series_uid: str) -> Dataset:
    ident = Dataset()
    ident.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
    ident.StudyInstanceUID = study_uid
    if series_uid:
        ident.SeriesInstanceUID = series_uid
    return ident


def _sop_classes(
    node: Node, local: LocalSettings, study_uid: str, series_uids: list[str]
) -> list[str]:
    """The SOP classes of the instances to retrieve (an IMAGE-level C-FIND); empty if unknown."""
    found: list[str] = []
    try:
        for series in series_uids or [""]:
            hits = find(
                node,
                local,
                "IMAGE",
                {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series, "SOPClassUID": ""},
            )
            found += [str(h.get("SOPClassUID", "") or "") for h in hits]
    except NetworkError:
        return []
    return [c for c in dict.fromkeys(found) if c]


#: transfer syntaxes offered one per presentation context for the classes being retrieved, so the
#: PACS sends each instance exactly as stored (no transcoding, which it may not be able to do)
_OFFERED_SYNTAXES = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
)


def _offered_syntaxes() -> list[str]:
    return list(_OFFERED_SYNTAXES)


#: what the contexts for storage classes nobody expected offer: the uncompressed syntaxes, which
#: every PACS can send (decompressing if it must); offered with the others, a PACS may pick a
#: compressed one for the whole context and compress (perhaps lossily) what it stores as is
_FALLBACK_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")


def _get_contexts(classes: list[str]) -> list[tuple[str, list[str]]]:
    """Requested contexts for C-GET: one per (class, syntax) for the study's classes while they
    fit, then one context with the uncompressed syntaxes for the other storage classes (127
    at most). A class outside both, or a PACS that cannot decompress, fails its
    sub-operations: :func:`get` then asks for the exact classes."""
    syntaxes = _offered_syntaxes()
    out: list[tuple[str, list[str]]] = []
    budget = 127
    for cls in classes:
        if budget - len(syntaxes) < 0:
            break
        out += [(cls, [ts]) for ts in syntaxes]
        budget -= len(syntaxes)
    have = {c for c, _ in out}
    for cls in [*classes, *_STORAGE_CLASSES]:
        if budget <= 0:
            break
        if cls not in have:
            out.append((cls, list(_FALLBACK_SYNTAXES)))
            have.add(cls)
            budget -= 1
    return out


def _follow(
    responses: Iterator[tuple[Dataset, Any]],
    assoc: Any,
    node: Node,
    local: LocalSettings,
    what: str,
    outcome: RetrieveOutcome,
    progress: Progress,
    received: Callable[[], int],
) -> None:
    """Consume C-GET/C-MOVE responses: counts, progress, cancel, final status."""
    for status, identifier in responses:
        if not status or "Status" not in status:
            raise _after_failure(assoc, node, local, what)
        code = int(status.Status)
        rem = status.get("NumberOfRemainingSuboperations", None)
        done = status.get("NumberOfCompletedSuboperations", None)
        failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
        warn = int(status.get("NumberOfWarningSuboperations", 0) or 0)
        if rem is not None and done is not None:
            outcome.total = int(rem) + int(done) + failed + warn
        if done is not None:
            outcome.completed = int(done)
        outcome.failed, outcome.warning = failed, warn
        n = received()
        progress.update(n, outcome.total, f"Received {n} of {outcome.total or '?'} instance(s)")
        if progress.cancelled:
            assoc.abort()  # files stored so far are complete; the filer indexes them
            raise Cancelled("Retrieve cancelled; the instances received so far are in the library.")
        if code in (0xFF00, 0xFF01):
            continue
        if code in (0x0000, 0xB000):
            if code == 0xB000 or failed:
                outcome.problems.append(
                    f"{failed} instance(s) failed in {what} ({status_meaning(code)})"
                )
            return
        if code == 0xFE00:
            raise Cancelled()
        raise DimseStatusError(
            f"{_where(node)} answered the {what} with status "
            f"{status_meaning(code, str(status.get('ErrorComment', '') or ''))}.",
            code,
        )


#: storage classes a study of each modality usually holds (plus SC, SR and PDF, which any study
#: may carry); used to offer exact transfer syntaxes without an instance-level query first
_CLASSES_BY_MODALITY = {
    "CT": ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"),
    "MR": ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"),
    "CR": ("1.2.840.10008.5.1.4.1.1.1",),
    "DX": ("1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1"),
    "MG": ("1.2.840.10008.5.1.4.1.1.1.2",),
    "US": ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1"),
    "XA": ("1.2.840.10008.5.1.4.1.1.12.1",),
    "NM": ("1.2.840.10008.5.1.4.1.1.20",),
    "PT": ("1.2.840.10008.5.1.4.1.1.128",),
    "SEG": ("1.2.840.10008.5.1.4.1.1.66.4",),
    "PR": ("1.2.840.10008.5.1.4.1.1.11.1",),
    "KO": ("1.2.840.10008.5.1.4.1.1.88.59",),
    "SR": (
        "1.2.840.10008.5.1.4.1.1.88.22",
        "1.2.840.10008.5.1.4.1.1.88.33",
        "1.2.840.10008.5.1.4.1.1.88.11",
    ),
    "DOC": ("1.2.840.10008.5.1.4.1.1.104.1",),
    "OT": ("1.2.840.10008.5.1.4.1.1.7",),
}


def _likely_classes(node: Node, local: LocalSettings, study_uid: str) -> list[str]:
    """The storage classes a study probably holds, from its ModalitiesInStudy (one C-FIND
    response, where an instance-level query costs one response per instance)."""
    try:
        hits = find(node, local, "STUDY", {"StudyInstanceUID": study_uid})
    except NetworkError:
        return []
    mods: list[str] = []
    for h in hits:
        value = h.get("ModalitiesInStudy", None) or []
        mods += [str(v) for v in ([value] if isinstance(value, str) else value)]
    out: list[str] = []
    for m in mods:
        out += _CLASSES_BY_MODALITY.get(m.upper(), ())
    return list(dict.fromkeys(out))


def _get_once(
    node: Node,
    local: LocalSettings,
    study_uid: str,
    series_list: list[str],
    classes: list[str],
    filer: Filer,
    progress: Progress,
) -> RetrieveOutcome:
    from pynetdicom import evt
    from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

    contexts = _get_contexts(classes)
    ae = _new_ae(local)
    ae.add_requested_context(_STUDY_ROOT_GET)
    roles = []
    for cls, syntaxes in contexts:
        ae.add_requested_context(cls, syntaxes)
    for cls in dict.fromkeys(c for c, _ in contexts):
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = UID(cls)
        role.scu_role = False
        role.scp_role = True
        roles.append(role)
    handlers = [(evt.EVT_C_STORE, _store_handler(filer))]
    assoc = associate(node, local, ae, ext_neg=roles, evt_handlers=handlers)
    outcome = RetrieveOutcome()
    try:
        _check_context(assoc, node, _STUDY_ROOT_GET, "C-GET retrieval")
        _answer_stores_inline(assoc, filer)  # before the C-GET: no message has arrived yet
        for series in series_list or [""]:
            progress.check()
            responses = assoc.send_c_get(_retrieve_ident(study_uid, series), _STUDY_ROOT_GET)
            _follow(
                responses,
                assoc,
                node,
                local,
                "C-GET",
                outcome,
                progress,
                lambda: filer.report.received,
            )
        filer.flush()  # every instance is in: indexed while the association is released
    finally:
        if assoc.is_established:
            assoc.release()
    return outcome


def get(
    node: Node,
    local: LocalSettings,
    study_uid: str,
    series_uids: Iterable[str] | None,
    filer: Filer,
    progress: Progress | None = None,
) -> RetrieveOutcome:
    """C-GET a study (or some of its series) into ``filer``.

    The presentation contexts offer every common transfer syntax separately for the classes the
    study's modalities suggest, so the PACS sends each instance as stored. When some
    sub-operations fail anyway (a class nobody expected, stored compressed, that the PACS cannot
    transcode), the exact classes are asked for (instance-level C-FIND) and the C-GET is repeated;
    instances already received are simply replaced by identical files.
    """
    progress = progress or NullProgress()
    series_list = list(series_uids or [])
    guessed = _likely_classes(node, local, study_uid)
    try:
        outcome = _get_once(node, local, study_uid, series_list, guessed, filer, progress)
        if not outcome.failed:
            return outcome
        failure: DimseStatusError | None = None
    except DimseStatusError as exc:  # e.g. 0xC000 when the PACS could not transcode
        failure = exc
    exact = _sop_classes(node, local, study_uid, series_list)
    if not set(exact) - set(guessed):
        if failure is not None:
            raise failure
        return outcome
    return _get_once(node, local, study_uid, series_list, exact, filer, progress)


def move(
    node: Node,
    local: LocalSettings,
    study_uid: str,
    series_uids: Iterable[str] | None,
    filer: Filer,
    progress: Progress | None = None,
) -> RetrieveOutcome:
    """C-MOVE a study (or series) to Hilum's own listener (``local.ae_title`` / ``local.port``).

    A listener already running in this process on that port receives the instances; otherwise
    one is started for the duration of the move.
    """
    progress = progress or NullProgress()
    running = Listener.running(local.port)
    listener = None
    if running is None:
        # a short poll: stopping it at the end of the move takes at most that long (1000
        # wake-ups a second, ~0.5% of a core, only while the move lasts)
        listener = Listener(local, filer=filer, poll_s=0.001)
        listener.start()
    # a listener already running counts from what it had received before this move
    counter = filer if running is None else running.filer
    base = counter.report.received if running is not None else 0

    def received() -> int:
        return counter.report.received - base

    try:
        ae = _new_ae(local)
        ae.add_requested_context(_STUDY_ROOT_MOVE)
        assoc = associate(node, local, ae)
        outcome = RetrieveOutcome()
        try:
            _check_context(assoc, node, _STUDY_ROOT_MOVE, "C-MOVE retrieval")
            _inline_queue(assoc)  # before the C-MOVE: no message has arrived yet
            for series in list(series_uids) if series_uids else [""]:
                progress.check()
                responses = assoc.send_c_move(
                    _retrieve_ident(study_uid, series), local.ae_title, _STUDY_ROOT_MOVE
                )
                _follow(responses, assoc, node, local, "C-MOVE", outcome, progress, received)
            counter.flush()  # every instance is in: indexed while the associations close
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        if listener is not None:
            listener.stop()
    return outcome


# -- C-STORE SCU ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendItem:
    """The outcome of sending one file."""

    path: str
    ok: bool
    message: str = ""
    sop_uid: str = ""


def _refused(path: str, exc: HilumError) -> SendItem:
    return SendItem(path, False, f"{exc.message} Not sent.")


def unsendable(path: str) -> SendItem | None:
    """Why a file is not sent (C-STORE or STOW-RS), or None when it can be.

    A file that is not DICOM, or is damaged (truncated: a PACS may store what it is sent, cut
    short; a corrupt header), is refused here with the library's own sentence
    (:func:`read_header`), before any network traffic.
    """
    try:
        read_header(path)
    except HilumError as exc:
        return _refused(path, exc)
    return None


def _file_header(path: str) -> tuple[str, str, str]:
    """(SOP class, SOP instance, transfer syntax) of a DICOM file, as pynetdicom will send it,
    from one read of its header that also checks the file is whole (:func:`read_header`).

    Raises
    ------
    HilumError
        Not DICOM, or damaged (see :func:`unsendable`).
    ValueError
        No file meta (pynetdicom sends a file by it), or no SOP class, instance or transfer
        syntax.
    """
    ds, _ = read_header(path, [0x00080016, 0x00080018])  # SOP Class, SOP Instance UID
    meta = ds.file_meta
    if "MediaStorageSOPClassUID" not in meta:  # a bare data set: no file meta to send it by
        raise ValueError("no file meta")
    ts = str(meta.get("TransferSyntaxUID", "") or "")
    cls, sop = str(ds.get("SOPClassUID", "") or ""), str(ds.get("SOPInstanceUID", "") or "")
    if not (cls and sop and ts):
        raise ValueError("no SOP class, instance or transfer syntax")
    return cls, sop, ts


def send(
    node: Node, local: LocalSettings, files: list[str], progress: Progress | None = None
) -> list[SendItem]:
    """C-STORE files, one presentation context per (SOP class, transfer syntax) of the files."""
    from pydicom.uid import UID as _UID

    progress = progress or NullProgress()
    results: dict[str, SendItem] = {}
    headers: dict[str, tuple[str, str, str]] = {}
    for path in files:
        try:
            headers[path] = _file_header(path)
        except HilumError as exc:
            results[path] = _refused(path, exc)
        except Exception:  # noqa: BLE001 - hostile or non-DICOM input: reported per file
            results[path] = SendItem(
                path,
                False,
                "not a DICOM file with a SOP class, instance and transfer syntax; not sent",
            )
    pairs = list(dict.fromkeys((c, t) for c, _, t in headers.values()))
    if len(pairs) > 128:
        raise NetworkError(
            f"These files need {len(pairs)} presentation contexts (at most 128 fit "
            f"one association); send them in smaller groups."
        )
    if headers:
        ae = _new_ae(local)
        for cls, ts in pairs:
            ae.add_requested_context(cls, [ts])
        assoc = associate(node, local, ae)
        try:
            accepted = {
                (cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts
            }
            for i, (path, (cls, sop, ts)) in enumerate(headers.items()):
                progress.check()
                progress.update(i, len(headers), f"Sending {i + 1} of {len(headers)}")
                if (cls, ts) not in accepted:
                    results[path] = SendItem(
                        path,
                        False,
                        f"{node.name} does not accept {_UID(cls).name} in {_UID(ts).name}",
                        sop,
                    )
                    continue
                status = assoc.send_c_store(path)
                if not status or "Status" not in status:
                    err = _after_failure(assoc, node, local, "C-STORE")
                    results[path] = SendItem(path, False, str(err), sop)
                    for rest in list(headers)[i + 1 :]:
                        results[rest] = SendItem(
                            rest, False, "not sent (the association ended)", headers[rest][1]
                        )
                    break
                code = int(status.Status)
                comment = str(status.get("ErrorComment", "") or "")
                if code == 0x0000:
                    results[path] = SendItem(path, True, "stored", sop)
                elif 0xB000 <= code <= 0xBFFF:
                    results[path] = SendItem(
                        path, True, f"stored with warning {status_meaning(code, comment)}", sop
                    )
                else:
                    results[path] = SendItem(
                        path, False, f"refused with status {status_meaning(code, comment)}", sop
                    )
            progress.update(len(headers), len(headers), "Sent")
        finally:
            if assoc.is_established:
                assoc.release()
    return [results[p] for p in files]


# -- storage listener (C-STORE SCP) --------------------------------------------------------------------
_LISTENER_AES: dict[tuple[str, float], Any] = {}
_LISTENER_AES_LOCK = threading.Lock()


def _listener_ae(local: LocalSettings) -> Any:
    """The listener's application entity, made once per AE title and timeout.

    It accepts every storage class in the transfer syntax the sender proposes first, through
    pynetdicom's unrestricted storage service (see :func:`_configure_pynetdicom`).
    """
    key = (local.ae_title, float(local.timeout_s))
    with _LISTENER_AES_LOCK:
        ae = _LISTENER_AES.get(key)
        if ae is None:
            ae = _new_ae(local)
            ae.require_called_aet = True  # a PACS sending to the wrong AE title is told so
            ae.add_supported_context(_VERIFICATION)
            _LISTENER_AES[key] = ae
        return ae


@functools.cache
def _server_class() -> type:
    """pynetdicom's threaded association server, without its ``gc.collect()`` every 60 looks
    of the serve loop (every 60 ms while a C-MOVE's listener looks every millisecond): a full
    collection of a workstation's heap costs tens of milliseconds, in the middle of a transfer.
    The associations it was meant for are reference cycles that Python's collector frees
    anyway."""
    from pynetdicom.transport import ThreadedAssociationServer

    class Server(ThreadedAssociationServer):
        def service_actions(self) -> None:
            pass

    return Server


class Listener:
    """Hilum's storage listener: accepts C-STORE (and C-ECHO) and files instances in the library.

    Parameters
    ----------
    local : LocalSettings
        AE title and port to listen on.
    filer : Filer, optional
        Where instances go (default: a new filer on the user library).
    host : str
        Address to bind (all interfaces by default, so a PACS can reach us).
    poll_s : float
        How often the server looks whether it should stop (``stop`` waits up to this long).
    """

    _registry: dict[int, Listener] = {}
    _reg_lock = threading.Lock()

    def __init__(
        self, local: LocalSettings, filer: Filer | None = None, host: str = "", poll_s: float = 0.5
    ) -> None:
        self.local = local
        self.poll_s = float(poll_s)
        self.filer = filer if filer is not None else Filer()
        self._own_filer = filer is None
        self.host = host
        self._server: Any = None

    @classmethod
    def running(cls, port: int) -> Listener | None:
        """The listener this process runs on ``port``, if any."""
        with cls._reg_lock:
            return cls._registry.get(int(port))

    def start(self) -> Listener:
        """Start listening in the background; raises NetworkError when the port is taken."""
        from pynetdicom import evt

        ae = _listener_ae(self.local)
        filer = self.filer
        handlers = [
            (evt.EVT_C_STORE, _store_handler(filer)),
            (evt.EVT_CONN_OPEN, _nodelay),
            # before the association is accepted, so before any C-STORE can arrive
            (evt.EVT_REQUESTED, lambda event: _answer_stores_inline(event.assoc, filer)),
        ]
        try:
            server = ae.make_server(
                (self.host, int(self.local.port)),
                evt_handlers=handlers,
                server_class=_server_class(),
            )
        except OSError as exc:
            raise ConnectionFailedError(
                f"Hilum cannot listen on port {self.local.port} ({exc.strerror or exc}); "
                f"another program may use it."
            ) from None
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": self.poll_s},
            name="hilum-listener",
            daemon=True,
        ).start()
        ae._servers.append(server)  # as AE.start_server does: server.shutdown() removes it
        self._server = server
        with self._reg_lock:
            self._registry[int(self.local.port)] = self
        return self

    def stop(self) -> None:
        """Stop listening; index what arrived."""
        with self._reg_lock:
            if self._registry.get(int(self.local.port)) is self:
                del self._registry[int(self.local.port)]
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._own_filer:
            self.filer.close()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
