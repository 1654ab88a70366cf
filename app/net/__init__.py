"""PACS connectivity: DIMSE (pynetdicom) and DICOMweb (dicomweb-client) clients, the storage
listener and the configured nodes.

Layer: above :mod:`app.dicom`, below inference/workflow; imports only :mod:`app.core` and
:mod:`app.dicom`. Every failure is raised as a :class:`app.core.errors.NetworkError` whose text is
one sentence a user understands.
"""
