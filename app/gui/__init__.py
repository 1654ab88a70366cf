"""Hilum's reading GUI (PySide6 + pyqtgraph): the only package that imports Qt.

Entry point: :func:`app.gui.app.run_gui`. Panels made by other packages plug into the main window
through :mod:`app.gui.panels`.
"""
