"""A real Orthanc PACS on 127.0.0.1 for tests and benchmarks (Debian `orthanc`, `orthanc-dicomweb`).

It runs as a subprocess with a generated configuration: free ports, its own AE title, an empty
database in a temporary folder, the DICOMweb plugin, and the modalities it may C-MOVE to (Hilum's
listener, and dcmtk's storescp for the benchmark).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

AE_TITLE = "ORTHANC"
HILUM_AE = "HILUMTEST"
STORESCP_AE = "STORESCP"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dicomweb_plugin() -> str:
    """The DICOMweb plugin shipped by the Debian package orthanc-dicomweb."""
    for pattern in (
        "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
        "/usr/lib/orthanc/libOrthancDicomWeb.so*",
        "/usr/lib/*/orthanc/plugins/libOrthancDicomWeb.so*",
    ):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    raise RuntimeError(
        "The Orthanc DICOMweb plugin is not installed (Debian package orthanc-dicomweb; "
        "run ./run-tests once to install it)."
    )


class Orthanc:
    """Start/stop a private Orthanc and talk to its REST API."""

    def __init__(self, tls: bool = False, extra: dict[str, Any] | None = None) -> None:
        exe = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        if not os.path.exists(exe):
            raise RuntimeError(
                "Orthanc is not installed (Debian package orthanc; run ./run-tests once)."
            )
        self.exe = exe
        self.dir = Path(tempfile.mkdtemp(prefix="hilum-orthanc-"))
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.hilum_port = free_port()
        self.storescp_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicomweb = f"{self.url}/dicom-web"
        self._loaded: dict[str, list[str]] = {}
        self.tls = tls
        self.extra = dict(extra or {})  # configuration options added to (or replacing) config()'s
        self.cert = self.dir / "cert.pem"

    def config(self) -> dict[str, Any]:
        """The generated Orthanc configuration."""
        return {
            "Name": "hilum-test",
            "StorageDirectory": str(self.dir / "db"),
            "IndexDirectory": str(self.dir / "db"),
            "StorageCompression": False,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "DicomServerEnabled": True,
            "DicomAet": AE_TITLE,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomScpTimeout": 30,
            "UnknownSopClassAccepted": True,
            "OverwriteInstances": True,
            "DicomModalities": {
                "hilum": [HILUM_AE, "127.0.0.1", self.hilum_port],
                "storescp": [STORESCP_AE, "127.0.0.1", self.storescp_port],
            },
            "Plugins": [dicomweb_plugin()],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
            "ConcurrentJobs": 2,
            # a real per-file refusal to test: Orthanc does not take deflated data sets (none of
            # the test data is deflated, so retrieves are unaffected)
            "DeflatedTransferSyntaxAccepted": False,
            **(
                {
                    "DicomTlsEnabled": True,
                    "DicomTlsCertificate": str(self.cert),
                    "DicomTlsPrivateKey": str(self.dir / "key.pem"),
                    "DicomTlsTrustedCertificates": str(self.cert),
                    "DicomTlsRemoteCertificateRequired": False,
                }
                if self.tls
                else {}
            ),
            **self.extra,
        }

    def start(self, timeout: float = 60.0) -> Orthanc:
        """Run Orthanc and wait until both its REST API and DICOM port answer."""
        if self.tls:  # a self-signed certificate for 127.0.0.1 (openssl, part of the base system)
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    str(self.dir / "key.pem"),
                    "-out",
                    str(self.cert),
                    "-days",
                    "2",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ],
                check=True,
                capture_output=True,
            )
        cfg = self.dir / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=2))
        log = open(self.dir / "orthanc.log", "wb")
        self.proc = subprocess.Popen(
            [self.exe, str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start-up:\n{self.log_tail()}")
            try:
                self.get("/system")
                with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1):
                    return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not start within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop Orthanc (and wait for it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        """Stop and delete the database folder."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return (self.dir / "orthanc.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- REST -----------------------------------------------------------------------------------------
    def _req(
        self, method: str, path: str, data: bytes | None = None, ctype: str = "application/json"
    ) -> Any:
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": ctype} if data is not None else {},
        )
        with urllib.request.urlopen(req, timeout=60) as rsp:
            body = rsp.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body

    def get(self, path: str) -> Any:
        return self._req("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._req("POST", path, json.dumps(body).encode())

    def delete(self, path: str) -> Any:
        return self._req("DELETE", path)

    def upload(self, files: Iterable[str | os.PathLike[str]]) -> list[str]:
        """POST files to /instances; return the Orthanc study ids."""
        studies = []
        for f in files:
            rsp = self._req("POST", "/instances", Path(f).read_bytes(), "application/dicom")
            studies.append(rsp["ParentStudy"])
        return sorted(set(studies))

    def load(self, folder: str | os.PathLike[str]) -> list[str]:
        """Upload every DICOM file of a folder once per Orthanc run (memoised)."""
        key = str(folder)
        if key not in self._loaded:
            files = [
                p
                for p in sorted(Path(folder).iterdir())
                if p.is_file() and p.name != "DIRFILE" and not p.name.startswith(".")
            ]
            self._loaded[key] = self.upload(files)
        return self._loaded[key]

    def study_uid(self, orthanc_id: str) -> str:
        return str(self.get(f"/studies/{orthanc_id}")["MainDicomTags"]["StudyInstanceUID"])

    def find_instance(self, sop_uid: str) -> list[str]:
        """Orthanc ids of the instance with this SOP Instance UID (empty if Orthanc lacks it)."""
        hits = self._req("POST", "/tools/lookup", sop_uid.encode(), "text/plain")
        return [x["ID"] for x in hits if x.get("Type") == "Instance"]
