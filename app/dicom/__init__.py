"""DICOM input: the study library, header scanning, series geometry and the pixel pipeline.

Modules
-------
library
    :class:`~app.dicom.library.Library` (SQLite, one connection per thread, WAL):
    ``scan(paths, progress=None, on_series=None) -> ScanReport`` (files, folders, .zip archives,
    DICOMDIRs; headers only; dedup by SOP Instance UID; idempotent), ``studies()``,
    ``study(uid)``, ``series(study_uid)``, ``series_info(series_uid)``, ``instances(series_uid)``
    (sorted along the slice normal), ``store_result`` / ``results`` / ``result``, ``prune()``.
    ``on_series(info)`` is called from the scanning thread as soon as the first instance of a
    series is committed; ``info`` is ``series_info`` plus ``first_path`` and ``first_sop_uid``.
reading
    Header reading with user-readable errors (``NotDicomError``, ``DicomReadError``) and fast
    raw value accessors.
pixels
    ``read_dataset``, ``frame_array`` (modality LUT applied: float32, or uint8 RGB),
    ``display_array`` (VOI LUT / window / VOI LUT function, MONOCHROME1 inverted -> uint8),
    ``default_window``, ``windows``, ``FrameCache`` (byte-bounded, thread-safe).
series
    ``load_series(instances_or_paths) -> Series`` with ``.stacks`` (``Stack.spacing`` (z, y, x)
    mm, ``.positions``, ``.orientation``, ``.warnings``, ``.tilt_deg``, ``.volume()``).
render
    ``render_to_png(path, out, window=None, frame=0)``.
commands
    ``hilum scan PATH... [--json] [--library DB]`` and
    ``hilum render FILE --out PNG [--window C,W] [--frame N]``.
"""
