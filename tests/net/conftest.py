"""A real Orthanc PACS for the network tests: started once per session, always stopped."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _orthanc import AE_TITLE, HILUM_AE, Orthanc


@pytest.fixture(scope="session")
def orthanc() -> Iterator[Orthanc]:
    """Orthanc on 127.0.0.1 (free ports, DICOMweb plugin, Hilum known for C-MOVE)."""
    server = Orthanc()
    try:
        server.start()
    except RuntimeError as exc:
        server.cleanup()
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture()
def node(orthanc: Orthanc, hilum_home: Path) -> tuple[object, object]:
    """The Orthanc node saved in this test's HILUM_HOME, and Hilum's settings for it."""
    from app.net.nodes import Node, NodeStore

    store = NodeStore.load()
    n = store.add(
        Node(
            "orthanc",
            host="127.0.0.1",
            port=orthanc.dicom_port,
            ae_title=AE_TITLE,
            dicomweb=orthanc.dicomweb,
        )
    )
    store.set_local(ae_title=HILUM_AE, port=orthanc.hilum_port, timeout_s=20.0)
    store.save()
    return n, store.local


@pytest.fixture(scope="session")
def dicom_dir(shared_data: Path) -> Path:
    """``../shared/data/dicom`` (fails, never skips, when missing)."""
    path = shared_data / "dicom"
    for sub in ("cxr", "ct_head_ge", "ct_phantom_philips", "mr_transfer_syntaxes"):
        if not (path / sub).is_dir():
            pytest.fail(f"shared DICOM data incomplete: {path / sub} is missing")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pydicom warns about odd-but-readable values in real files; that is not a test failure."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.filterwarnings("ignore::UserWarning"))
