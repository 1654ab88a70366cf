"""Render the application icon SVG to a PNG (build-time helper, not part of the app).

Usage::

    QT_QPA_PLATFORM=offscreen .venv/bin/python installer/render_icon.py \
        resources/icons/hilum.svg resources/icons/hilum.png 256

PyInstaller turns the PNG into the Windows ``.ico`` and the macOS ``.icns`` itself (through
Pillow), so only the SVG and this PNG are kept in the repository.
"""

from __future__ import annotations

import sys


def render(svg: str, png: str, size: int) -> bool:
    """Render ``svg`` to a square ``size`` x ``size`` RGBA ``png``; True when it was written."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - keeps Qt alive
    renderer = QSvgRenderer(svg)
    if not renderer.isValid():
        return False
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return bool(image.save(png))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: render_icon.py SVG PNG SIZE")
    sys.exit(0 if render(sys.argv[1], sys.argv[2], int(sys.argv[3])) else 1)
