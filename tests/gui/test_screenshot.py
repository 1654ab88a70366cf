"""``hilum gui PATH --screenshot PNG`` writes a non-blank grab of the whole window and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def test_gui_screenshot_writes_a_real_png(
    tmp_path: Path, shared_data: Path, hilum_home: Path
) -> None:
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HILUM_HOME=str(hilum_home))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "gui",
            str(shared_data / "dicom" / "ct_head_ge"),
            "--screenshot",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    from PySide6.QtGui import QImage

    img = QImage(str(out))
    assert not img.isNull()
    assert img.width() >= 800 and img.height() >= 600
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(
        img.height(), img.bytesPerLine()
    )
    arr = arr[:, : img.width() * 3].reshape(img.height(), img.width(), 3)
    assert arr.std() > 20  # not a blank window
    # the image area holds CT grey levels: many distinct values in the middle of the window
    mid = arr[img.height() // 4 : 3 * img.height() // 4, img.width() // 4 : 3 * img.width() // 4]
    assert len(np.unique(mid.reshape(-1, 3), axis=0)) > 100
