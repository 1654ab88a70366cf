"""Full-resolution JPEG 2000 decode in bands on threads is bit-exact (issue 17, item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.gui import j2k


def test_banded_decode_is_bit_exact_for_any_band_count(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openjpeg
    import pydicom
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(shared_data / "dicom" / "cxr" / "dx_chest_pa_j2k_lossless.dcm")
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    reference = openjpeg.decode(codestream).astype(np.int32)  # pylibjpeg-openjpeg, one piece
    for bands in (1, 2, 3, 7):
        monkeypatch.setattr(j2k, "FULL_DECODE_BANDS", bands)
        out = j2k.decode_codestream(codestream, 0)
        assert out is not None and np.array_equal(out, reference), bands
    # a corrupt stream gives None (the caller's normal decode words the error)
    assert j2k.decode_codestream(codestream[: len(codestream) // 3], 0) is None
