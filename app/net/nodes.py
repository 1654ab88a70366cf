"""PACS nodes and Hilum's own network identity, stored privately under the user config folder.

The file is ``<config>/pacs.json`` (``HILUM_HOME`` overrides the folder), written atomically with
mode 0600 because node lists reveal a site's infrastructure and sit beside patient data.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from app.core import paths
from app.core.errors import NodeError, UsageError

#: DICOM AE titles: 1-16 characters of the default repertoire, no backslash or control characters
_AE_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Node:
    """A remote DICOM node (PACS).

    Attributes
    ----------
    name : str
        What the user calls it (``hilum pacs ... NAME``).
    host, port, ae_title : str, int, str
        DIMSE address; ``port`` 0 means a DICOMweb-only node.
    dicomweb : str
        DICOMweb base URL (``http://host:8042/dicom-web``), empty when the node has none.
    tls : bool
        Use TLS for the DIMSE association (the server certificate is verified).
    tls_ca : str
        PEM file of the certificate authority (or self-signed certificate) to trust for TLS;
        empty: the system's trusted authorities.
    """

    name: str
    host: str = ""
    port: int = 0
    ae_title: str = ""
    dicomweb: str = ""
    tls: bool = False
    tls_ca: str = ""

    @property
    def has_dimse(self) -> bool:
        """True when the node has a DIMSE address."""
        return bool(self.host and self.port and self.ae_title)

    def describe(self) -> str:
        """One line for ``hilum pacs list``."""
        parts = []
        if self.has_dimse:
            parts.append(
                f"{self.ae_title}@{self.host}:{self.port}" + (" (TLS)" if self.tls else "")
            )
        if self.dicomweb:
            parts.append(self.dicomweb)
        return f"{self.name}: " + "  ".join(parts)


@dataclass(frozen=True)
class LocalSettings:
    """Hilum's own network identity and timeouts.

    Attributes
    ----------
    ae_title : str
        Hilum's AE title (calling AE, and the C-MOVE destination).
    port : int
        Port of Hilum's storage listener (C-STORE SCP; also the C-MOVE destination).
    timeout_s : float
        Connection, ACSE and DIMSE timeout in seconds.
    listen_in_gui : bool
        Whether the GUI runs the storage listener in the background while open.
    """

    ae_title: str = "HILUM"
    port: int = 11112
    timeout_s: float = 30.0
    listen_in_gui: bool = False


@dataclass
class NodeStore:
    """The nodes file: load, change, save."""

    path: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    local: LocalSettings = field(default_factory=LocalSettings)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> NodeStore:
        """Read the nodes file (an empty store when there is none)."""
        p = Path(path) if path is not None else paths.config_dir() / "pacs.json"
        store = cls(p)
        if not p.exists():
            return store
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            for item in doc.get("nodes", []):
                node = Node(**{k: item[k] for k in Node.__dataclass_fields__ if k in item})
                store.nodes[node.name] = node
            local = doc.get("local", {})
            store.local = LocalSettings(
                **{k: local[k] for k in LocalSettings.__dataclass_fields__ if k in local}
            )
        except (OSError, ValueError, TypeError, AttributeError):
            raise NodeError(
                f"The PACS node settings {p} cannot be read; fix or delete the file.", str(p)
            ) from None
        return store

    def save(self) -> None:
        """Write the file atomically, readable by the user only (0600)."""
        doc = {"local": asdict(self.local), "nodes": [asdict(n) for n in self.nodes.values()]}
        write_private(self.path, json.dumps(doc, indent=2).encode("utf-8"))

    def get(self, name: str) -> Node:
        """The node called ``name``; raises :class:`NodeError` naming the known ones."""
        try:
            return self.nodes[name]
        except KeyError:
            known = ", ".join(sorted(self.nodes)) or "none yet; add one with `hilum pacs add`"
            raise NodeError(f"There is no PACS node called {name!r} (known: {known}).") from None

    def add(self, node: Node) -> Node:
        """Validate and add (or replace) a node."""
        node = validate_node(node)
        self.nodes[node.name] = node
        return node

    def remove(self, name: str) -> None:
        """Forget a node."""
        self.get(name)
        del self.nodes[name]

    def set_local(self, **changes: Any) -> LocalSettings:
        """Change Hilum's own AE title / port / timeout."""
        local = replace(self.local, **changes)
        check_ae_title(local.ae_title)
        check_port(local.port)
        if not local.timeout_s > 0:
            raise UsageError("The network timeout must be a positive number of seconds.")
        self.local = local
        return local


def check_ae_title(ae: str) -> str:
    """Raise :class:`UsageError` unless ``ae`` is a valid AE title; return it stripped."""
    value = ae.strip()
    if not _AE_RE.match(value):
        raise UsageError(f"{ae!r} is not a valid AE title (1 to 16 characters, no backslash).")
    return value


def check_port(port: int) -> int:
    """Raise :class:`UsageError` unless ``port`` is a TCP port number."""
    if not 1 <= int(port) <= 65535:
        raise UsageError(f"{port} is not a valid port (1 to 65535).")
    return int(port)


def validate_node(node: Node) -> Node:
    """Check a node's fields and return it normalised."""
    if not _NAME_RE.match(node.name):
        raise UsageError(f"{node.name!r} is not a valid node name (letters, digits, . _ -).")
    if not node.host and not node.dicomweb:
        raise UsageError("A PACS node needs --host/--port/--ae-title, or --dicomweb URL, or both.")
    ae = node.ae_title
    if node.host or node.port or node.ae_title:
        if not (node.host and node.port and node.ae_title):
            raise UsageError("A DIMSE node needs all of --host, --port and --ae-title.")
        check_port(node.port)
        ae = check_ae_title(node.ae_title)
    if node.tls_ca and not os.path.isfile(node.tls_ca):
        raise UsageError(f"The TLS certificate file {node.tls_ca} does not exist.")
    url = node.dicomweb.rstrip("/")
    if url and not re.match(r"^https?://", url):
        raise UsageError(f"The DICOMweb URL must start with http:// or https:// (got {url!r}).")
    tls_ca = os.path.abspath(node.tls_ca) if node.tls_ca else ""
    return replace(node, ae_title=ae, dicomweb=url, tls=node.tls or bool(tls_ca), tls_ca=tls_ca)


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, private (0600 file in a 0700 folder).

    Built on :func:`app.core.paths.open_private`; the temporary file is renamed over the target,
    so a reader never sees a half-written settings file.
    """
    target = Path(path)
    paths.private_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    os.close(fd)
    try:
        with paths.open_private(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
