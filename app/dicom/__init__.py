"""DICOM input: the study library, header scanning, series geometry and the pixel pipeline.

Modules
-------
library
    :class:`~app.dicom.library.Library`, the SQLite study library and its scanner.
reading
    Header reading with user-readable errors (``NotDicomError``, ``DicomReadError``).
pixels
    Decoding and the display pipeline (modality LUT, VOI LUT / window, MONOCHROME1, colour).
series
    Series geometry: stacks, spacing, gantry tilt, and volume loading.
render
    Rendering one frame to a PNG as displayed.
"""
