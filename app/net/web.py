"""DICOMweb services over dicomweb-client: QIDO-RS (echo, find), WADO-RS (retrieve), STOW-RS (send).

HTTP failures become :class:`~app.core.errors.DicomWebError` sentences naming the HTTP status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset

from app.core.errors import (
    Cancelled,
    ConnectionFailedError,
    DicomWebError,
    NetworkError,
    NetworkTimeoutError,
    NodeError,
)
from app.core.progress import NullProgress, Progress
from app.net.dimse import (
    SERIES_RETURN_KEYS,
    STUDY_RETURN_KEYS,
    RetrieveOutcome,
    SendItem,
    unsendable,
)
from app.net.filing import Filer
from app.net.nodes import LocalSettings, Node

log = logging.getLogger(__name__)
logging.getLogger("dicomweb_client").setLevel(logging.CRITICAL)


def _client(node: Node, local: LocalSettings) -> Any:
    if not node.dicomweb:
        raise NodeError(f"PACS node {node.name} has no DICOMweb URL (add one with --dicomweb).")
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(node.dicomweb, timeout=float(local.timeout_s))
    client.set_http_retry_params(retry=False)  # one clear answer, not minutes of retries
    return client


def _http_error(node: Node, exc: BaseException, what: str) -> NetworkError:
    """One sentence for a failed DICOMweb request."""
    import requests

    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        reason = exc.response.reason or ""
        return DicomWebError(
            f"{node.name} ({node.dicomweb}) answered the {what} with HTTP "
            f"{code}{' ' + reason if reason else ''}.",
            code,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return NetworkTimeoutError(
            f"{node.name} ({node.dicomweb}) did not answer the {what} in time."
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectionFailedError(
            f"{node.name} cannot be reached at {node.dicomweb} "
            f"(the server is stopped, or the URL is wrong)."
        )
    if isinstance(exc, NetworkError):
        return exc
    return DicomWebError(
        f"{node.name} ({node.dicomweb}) sent an answer Hilum cannot read for the {what}."
    )


def echo(node: Node, local: LocalSettings) -> float:
    """A QIDO-RS ping (search for one study); return the round-trip time in milliseconds."""
    client = _client(node, local)
    t0 = time.perf_counter()
    try:
        client.search_for_studies(limit=1)
    except Exception as exc:  # noqa: BLE001 - mapped to one sentence
        raise _http_error(node, exc, "QIDO-RS ping") from None
    return (time.perf_counter() - t0) * 1000.0


def _qido(node: Node, local: LocalSettings, path: str, params: list[tuple[str, str]]) -> list[Any]:
    """GET a QIDO-RS resource; the query string keeps ``*`` and ``?`` literal.

    dicomweb-client percent-encodes them (``%2A``), which some servers (Orthanc's DICOMweb plugin
    1.7 among them) do not decode, so a wildcard search would silently match nothing.
    """
    from urllib.parse import quote, urlencode

    import requests

    query = urlencode(params, safe="*?,", quote_via=quote)
    url = f"{node.dicomweb}/{path}" + (f"?{query}" if query else "")
    rsp = requests.get(
        url, headers={"Accept": "application/dicom+json"}, timeout=float(local.timeout_s)
    )
    rsp.raise_for_status()
    if rsp.status_code == 204 or not rsp.content:
        return []
    doc = rsp.json()
    return doc if isinstance(doc, list) else []


def find(node: Node, local: LocalSettings, level: str, filters: dict[str, str]) -> list[Dataset]:
    """QIDO-RS search at ``level`` ("STUDY" or "SERIES"); results as pydicom datasets."""
    if not node.dicomweb:
        raise NodeError(f"PACS node {node.name} has no DICOMweb URL (add one with --dicomweb).")
    keys = STUDY_RETURN_KEYS if level == "STUDY" else SERIES_RETURN_KEYS
    params = [("includefield", k) for k in keys]
    try:
        if level == "STUDY":
            params += [(k, v) for k, v in filters.items() if v]
            rows = _qido(node, local, "studies", params)
        else:
            study = filters["StudyInstanceUID"]
            params += [(k, v) for k, v in filters.items() if v and k != "StudyInstanceUID"]
            rows = _qido(node, local, f"studies/{study}/series", params)
    except Exception as exc:  # noqa: BLE001
        raise _http_error(node, exc, "QIDO-RS search") from None
    out = []
    for row in rows:
        try:
            out.append(Dataset.from_json(row))
        except Exception:  # noqa: BLE001 - one unreadable match is skipped, not fatal
            log.debug("unreadable QIDO-RS match skipped")
    return out


def retrieve(
    node: Node,
    local: LocalSettings,
    study_uid: str,
    series_uids: Iterable[str] | None,
    filer: Filer,
    progress: Progress | None = None,
) -> RetrieveOutcome:
    """WADO-RS retrieve of a study (or series), streamed instance by instance into ``filer``."""
    progress = progress or NullProgress()
    client = _client(node, local)
    outcome = RetrieveOutcome()
    wanted = list(series_uids or [])
    series_rows = find(node, local, "SERIES", {"StudyInstanceUID": study_uid})
    counts = {
        str(r.get("SeriesInstanceUID", "")): int(r.get("NumberOfSeriesRelatedInstances", 0) or 0)
        for r in series_rows
    }
    if not wanted:
        wanted = [uid for uid in counts if uid]
    if wanted:
        outcome.total = sum(counts.get(s, 0) for s in wanted) or None
    for series in wanted:
        progress.check()
        try:
            # "*": the stored transfer syntax, so the pixels arrive exactly as the PACS holds them
            for ds in client.iter_series(
                study_uid, series, media_types=(("application/dicom", "*"),)
            ):
                filer.file_dataset(ds)
                outcome.completed += 1
                n = filer.report.received
                progress.update(
                    n, outcome.total, f"Received {n} of {outcome.total or '?'} instance(s)"
                )
                if progress.cancelled:
                    raise Cancelled(
                        "Retrieve cancelled; the instances received so far are in the library."
                    )
        except (Cancelled, NetworkError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise _http_error(node, exc, "WADO-RS retrieve") from None
    return outcome


def send(
    node: Node, local: LocalSettings, files: list[str], progress: Progress | None = None
) -> list[SendItem]:
    """STOW-RS the files (one request per file, so a refusal is reported per file)."""
    import pydicom

    progress = progress or NullProgress()
    client = _client(node, local)
    out: list[SendItem] = []
    for i, path in enumerate(files):
        progress.check()
        progress.update(i, len(files), f"Sending {i + 1} of {len(files)}")
        refused = unsendable(path)
        if refused is not None:
            out.append(refused)
            continue
        try:
            ds = pydicom.dcmread(path)
            sop = str(ds.SOPInstanceUID)
        except Exception:  # noqa: BLE001
            out.append(SendItem(path, False, "not a DICOM file; not sent"))
            continue
        try:
            rsp = client.store_instances([ds])
        except Exception as exc:  # noqa: BLE001
            err = _http_error(node, exc, "STOW-RS request")
            if isinstance(err, (ConnectionFailedError, NetworkTimeoutError)):
                raise err from None
            out.append(SendItem(path, False, str(err), sop))
            continue
        failed = rsp.get("FailedSOPSequence", None) if rsp is not None else None
        stored = {
            str(item.get("ReferencedSOPInstanceUID", "") or "")
            for item in (
                (rsp.get("ReferencedSOPSequence", None) if rsp is not None else None) or []
            )
        }
        if failed:
            reason = failed[0].get("FailureReason", None)
            out.append(
                SendItem(
                    path,
                    False,
                    f"refused (failure reason "
                    f"{'0x%04X' % int(reason) if reason is not None else 'not given'})",
                    sop,
                )
            )
        elif sop in stored:
            out.append(SendItem(path, True, "stored", sop))
        else:  # e.g. Orthanc's plugin when its storage is full: both sequences empty
            out.append(
                SendItem(
                    path,
                    False,
                    f"{node.name} did not confirm storing it (the STOW-RS "
                    f"response lists it neither as stored nor as failed)",
                    sop,
                )
            )
    progress.update(len(files), len(files), "Sent")
    return out
