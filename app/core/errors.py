"""Typed errors raised by the core.

Every error carries a message a user understands (no traceback text). The GUI turns them into
messages in one place (``app.gui.errors``); the CLI prints ``str(error)``.
"""

from __future__ import annotations


class HilumError(Exception):
    """Base class of every error the core raises on purpose.

    Parameters
    ----------
    message : str
        One sentence a radiologist or site admin understands.
    path : str, optional
        The file or folder the error is about, when there is one.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:  # the message alone: never a repr or a traceback
        return self.message


class Cancelled(HilumError):
    """The user cancelled a long operation."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)


class UsageError(HilumError):
    """Bad arguments given to a command (the CLI exits with status 2)."""


# --- DICOM -------------------------------------------------------------------------------------
class DicomError(HilumError):
    """Base of errors about DICOM input."""


class NotDicomError(DicomError):
    """The file is not a DICOM file."""


class DicomReadError(DicomError):
    """The file looks like DICOM but its header cannot be read (truncated, corrupt)."""


class PixelDecodeError(DicomError):
    """The header is fine but the pixel data cannot be decoded."""


class DuplicateInstanceError(DicomError):
    """Two files claim the same SOPInstanceUID with different content."""


# --- Models and inference ------------------------------------------------------------------------
class ModelError(HilumError):
    """Base of errors about AI models."""


class ModelNotFoundError(ModelError):
    """No installed model has the requested id."""


class ModelVerificationError(ModelError):
    """A model failed its checks (schema, hash, ONNX inputs/outputs) and will not be run."""


class ModelInputError(ModelError):
    """An input does not match the model's manifest (shape, channels, dtype)."""


class NotApplicableError(ModelError):
    """The model does not apply to this image (modality, body part, view)."""


class ProviderError(ModelError):
    """A requested execution provider (e.g. CUDA) is not available on this machine."""


class InferenceServerError(ModelError):
    """A site inference server (Open Inference Protocol) is down, timed out, refused the request
    or serves a model that does not match the manifest."""


# --- Reporting -------------------------------------------------------------------------------------
class ReportingError(HilumError):
    """Base of errors about report drafting and export."""


class GeneratorError(ReportingError):
    """The report generator failed."""


class BackendUnavailableError(GeneratorError):
    """A remote generation backend cannot be reached or refused the request."""


class ExportError(ReportingError):
    """A report could not be exported (PDF or DICOM)."""


class NotSignedOffError(ExportError):
    """Export was asked for a report that nobody has signed off."""


class ResultsFormatError(HilumError):
    """A stored or written analysis document is not in the shape Hilum writes."""


class SignOffError(ReportingError):
    """A report draft cannot be signed off as asked (no reader name, no text)."""


class PlatformError(HilumError):
    """The desktop cannot show Hilum's window (e.g. a system library Qt needs is missing)."""


# --- Network (PACS) -------------------------------------------------------------------------------
class NetworkError(HilumError):
    """Base of errors talking to a PACS or another DICOM node (DIMSE or DICOMweb)."""


class NodeError(NetworkError):
    """A PACS node is unknown, or its settings are invalid."""


class ConnectionFailedError(NetworkError):
    """The node cannot be reached (nothing listening, host unknown, network down)."""


class AssociationRejectedError(NetworkError):
    """The node refused the DICOM association (the sentence carries its reason)."""


class AssociationAbortedError(NetworkError):
    """The association was aborted by the node or the network mid-way."""


class NetworkTimeoutError(NetworkError):
    """The node did not answer within the configured timeout."""


class DimseStatusError(NetworkError):
    """The node answered a DIMSE request with a failure status (e.g. 0xA700, 0xC000)."""

    def __init__(self, message: str, status: int | None = None, path: str | None = None) -> None:
        super().__init__(message, path)
        self.status = status


class DicomWebError(NetworkError):
    """A DICOMweb request failed (the sentence carries the HTTP status)."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
