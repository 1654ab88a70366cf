"""Report drafting (generator backends, labeller) and outputs (PDF, DICOM)."""
