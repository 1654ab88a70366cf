"""Allocation bombs built with pydicom: tiny files whose header or codec stream claims 65535 x 65535."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless, generate_uid


def _base(ts: str, rows: int, cols: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ts
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "BOMB^TEST", "BOMB1", "OT"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    return ds


def native_bomb(path: Path) -> Path:
    ds = _base(ExplicitVRLittleEndian, 65535, 65535)
    ds.PixelData = bytes(4096)
    ds.save_as(path, enforce_file_format=True)
    return path


def rle_bomb(path: Path) -> Path:
    ds = _base(RLELossless, 65535, 65535)
    # one RLE segment: header (1 segment at offset 64) + runs of "repeat 0 x128"
    header = (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + bytes(56)
    body = bytes([0x81, 0x00]) * 4096
    ds.PixelData = encapsulate([header + body])
    ds.save_as(path, enforce_file_format=True)
    return path


def jpeg_bomb(path: Path) -> Path:
    """A real 16 x 16 baseline JPEG whose start-of-frame is patched to 65535 x 65535; the header
    says 16 x 16, so only the codec stream tells the truth about the allocation."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(buf, format="JPEG", quality=90)
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = b"\xff\xff\xff\xff"
    ds = _base(JPEGBaseline8Bit, 16, 16)
    ds.PixelData = encapsulate([bytes(data)])
    ds.save_as(path, enforce_file_format=True)
    return path
