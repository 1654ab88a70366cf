"""Plug-in point for the side panels other packages add to the main window.

How it works
------------
At start-up :class:`app.gui.main_window.MainWindow` imports each module named in
:data:`PANEL_MODULES` (``app.gui.panels.ai``, ``app.gui.panels.report``,
``app.gui.panels.export``). A module that is not there is skipped. A module that is there must
define::

    def create_panel(main_window: MainWindow) -> QDockWidget: ...

The window gives the dock an object name (``panel_<module>``) if it has none, adds it to the
RIGHT dock area (tabbed with the other panels, so its position is saved with the window state)
and lists it in View > Panels. A panel that raises while being created is skipped, and the
reason goes to the log and the status bar: one broken panel never stops the window.

What the main window offers a panel
-----------------------------------
Signals (Qt, on the GUI thread):

``main_window.study_changed(str)``
    StudyInstanceUID of the study in the active viewport ('' when none).
``main_window.series_changed(object)``
    The :class:`app.gui.series.SeriesData` in the active viewport (or None).
``main_window.image_changed(object)``
    :class:`app.core.types.ImageRef` of the image in the active viewport (or None): fires on
    slice changes, series changes and when another viewport becomes active.
``main_window.active_viewport_changed(object)``
    The active :class:`app.gui.viewport.Viewport`.

Methods:

``main_window.active_viewport() -> Viewport``
    The viewport the user works in. ``Viewport.set_overlay(rgba)`` shows an RGBA uint8 array
    ``(rows, cols, 4)`` in the SOURCE pixel grid of the current frame (e.g. a saliency map mapped
    back with ``app.saliency.mapping.to_source`` and coloured with a colormap); it follows zoom,
    pan, rotation, flips and slices (a 3-D overlay shows on the frame it was set on; a 4-D one
    ``(n, rows, cols, 4)`` gives one layer per frame). ``set_overlay(None)`` removes it;
    ``set_overlay_opacity(x)`` and ``set_overlay_visible(b)`` adjust it.
    ``Viewport.frame`` is the current frame (float32 modality values, or uint8 RGB);
    ``Viewport.displayed_image()`` the same as painted (uint8, window and invert applied);
    ``Viewport.window_center``/``window_width`` the window (modality units), ``Viewport.series``/``Viewport.index`` what is shown.
``main_window.set_overlay(rgba)``
    Shortcut for ``active_viewport().set_overlay(rgba)``.
``main_window.current_series()``, ``main_window.current_image()``
    The :class:`SeriesData` / :class:`ImageRef` in the active viewport (or None).
``main_window.current_frame()``
    The decoded current frame (numpy) or None.
``main_window.current_dataset_path()``
    The file of the current image (read it on a worker, never on the GUI thread).
``main_window.set_provider_text(text)``
    Sets the status-bar label for the AI execution provider (e.g. ``"AI: CUDA"``).
``main_window.show_status(text, ms=4000)``
    A transient status-bar message.
``main_window.run_in_background(fn, *args, on_result=, on_error=, on_progress=, on_item=, **kw)``
    Runs the plain function ``fn(*args, progress=..., **kw)`` on the thread pool with the
    window's progress bar and Cancel button; returns the :class:`app.gui.workers.Worker`.
    ``on_error`` defaults to :meth:`main_window.show_error`.
``main_window.show_error(exc)``
    Shows an error the one GUI way (:mod:`app.gui.errors`); never show tracebacks yourself.
``main_window.library()``
    The :class:`app.dicom.library.Library` (use it on worker threads: ``store_result``,
    ``results`` for AI results and drafts stored with a study).
``main_window.settings``
    The typed :class:`app.gui.settings.Settings`.

The study session
-----------------
A panel is a view of the study on screen, not of files: ``app.gui.sessions.sessions_of(
main_window)`` gives the window's :class:`app.workflow.StudySession` per study (``.for_series(s)``,
``.get(study_uid)``) and a Qt bridge re-emitting its events on the GUI thread (``.bridge(s)``).
Call session methods (``analyze``, ``saliency``, ``draft_report``, ``sign_off``, ``export``) on a
worker; they are the same calls ``hilum analyze`` makes, so the window and the CLI agree.
"""

from __future__ import annotations

#: panel modules tried at start-up, in tab order
PANEL_MODULES = (
    "app.gui.panels.ai",
    "app.gui.panels.saliency",
    "app.gui.panels.report",
    "app.gui.panels.export",
    "app.gui.panels.measurements",
)
