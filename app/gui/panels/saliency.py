"""The saliency dock: where the model looked, as an overlay on the image in the active viewport.

Controls: on/off, model, method (auto / CAM / occlusion / RISE), label, colormap, opacity,
threshold ("hide below"), contour mode and a legend. Maps are computed on a worker thread
(reading the file, preprocessing and the model run never touch the GUI thread) and come back in
the image's source pixel grid, so the viewport's overlay follows zoom, pan, W/L and flips
exactly. Opacity changes only the layer's opacity; colormap, threshold, contour and label
re-colour the stored map (a table lookup). Maps belong to one image: when the image changes the
overlay is removed, and CAM is fetched again automatically while the overlay is on. Maps come from
the study's :class:`~app.workflow.StudySession`: CAM of an image the AI panel analysed is taken
from that classifying pass (no second forward pass); perturbation methods run on request.

Integration: ``create_panel(main_window) -> QDockWidget`` (see :mod:`app.gui.panels`); add
``"app.gui.panels.saliency"`` to ``PANEL_MODULES``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.gui.errors import user_message
from app.gui.model_registry import request_registry
from app.gui.sessions import sessions_of
from app.gui.workers import Worker, run_in_background

log = logging.getLogger(__name__)

METHODS = ("auto", "cam", "occlusion", "rise")
COLORMAPS = ("inferno", "jet", "viridis")


def compute_maps(
    session: Any, ref: Any, model_id: str, method: str, device: str, progress: Any = None
) -> dict[str, Any]:
    """Worker-thread job: the study session's saliency maps of one image (source grid), every
    label of a model. CAM of an analysed image comes from its classifying pass (no model run);
    perturbation methods run with the same defaults as ``hilum analyze``."""
    outs = session.saliency(ref, model_id, method, device=device, progress=progress)
    return {
        "path": str(ref.path),
        "frame": outs[0].ref.frame if outs else int(ref.frame),
        "model_id": model_id,
        "method": outs[0].method.value if outs else method,
        "same_forward_pass": bool(outs and outs[0].same_forward_pass),
        "maps": {o.label: o.map for o in outs},
    }


class SaliencyPanel(QWidget):
    """Saliency overlay controls for the active viewport."""

    def __init__(self, main_window: Any = None, parent: QWidget | None = None) -> None:
        """Long because it builds the panel's controls and wires them, top to bottom as shown."""
        super().__init__(parent)
        self.setObjectName("SaliencyPanel")
        self.main_window = main_window
        self.worker: Worker | None = None
        self.result: dict[str, Any] | None = None
        self._key: tuple[str, int] | None = None  # (path, frame) the maps belong to

        self.enabled = QCheckBox(self.tr("Show saliency overlay"))
        self.enabled.setObjectName("SaliencyOn")
        self.enabled.toggled.connect(self._on_toggled)
        self.model = QComboBox()
        self.model.setObjectName("SaliencyModel")
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.method.setToolTip(self.tr("auto: exact CAM when the model allows it, else RISE"))
        self.label = QComboBox()
        self.label.setObjectName("SaliencyLabel")
        self.label.currentIndexChanged.connect(lambda *_: self.render())
        self.colormap = QComboBox()
        self.colormap.addItems(list(COLORMAPS))
        self.colormap.currentIndexChanged.connect(lambda *_: self.render())
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.valueChanged.connect(self._on_opacity)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 95)
        self.threshold.setValue(20)
        self.threshold.setToolTip(
            self.tr("Hide the overlay below this fraction of the map's maximum")
        )
        self.threshold.valueChanged.connect(lambda *_: self.render())
        self.contour = QCheckBox(self.tr("Contours only"))
        self.contour.toggled.connect(lambda *_: self.render())
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.compute_button = QPushButton(self.tr("Compute"))
        self.compute_button.setObjectName("SaliencyCompute")
        self.compute_button.clicked.connect(self.compute)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.legend = QLabel()
        self.legend.setObjectName("SaliencyLegend")
        self.status = QLabel("")
        self.status.setObjectName("SaliencyStatus")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow(self.tr("Model"), self.model)
        form.addRow(self.tr("Method"), self.method)
        form.addRow(self.tr("Label"), self.label)
        form.addRow(self.tr("Colormap"), self.colormap)
        form.addRow(self.tr("Opacity"), self.opacity)
        form.addRow(self.tr("Hide below"), self.threshold)
        form.addRow(self.tr("Device"), self.device)
        buttons = QHBoxLayout()
        buttons.addWidget(self.contour)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.compute_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.enabled)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addWidget(self.legend)
        lay.addStretch(1)
        lay.addWidget(QLabel(self.tr("AI-generated, requires review by a physician.")))
        self._restore_overlay_settings()
        for sig in (
            self.colormap.currentIndexChanged,
            self.opacity.valueChanged,
            self.threshold.valueChanged,
        ):
            sig.connect(lambda *_: self._remember())
        self._load_models()
        # the legend is drawn with the first map, or when the user picks a colour map (drawing
        # it loads OpenCV, ~130 ms: not on the start-up path)
        self._legend_stale = True
        self._legend_wanted = False
        self.colormap.activated.connect(self._colormap_picked)

    # -- remembered overlay settings --------------------------------------------------------------
    def _settings(self) -> Any:
        from app.gui.settings import load_settings

        s = getattr(self.main_window, "settings", None)
        return s if s is not None and hasattr(s, "saliency_colormap") else load_settings()

    def _restore_overlay_settings(self) -> None:
        s = self._settings()
        for w in (self.colormap, self.opacity, self.threshold):
            w.blockSignals(True)
        idx = self.colormap.findText(s.saliency_colormap)
        self.colormap.setCurrentIndex(max(idx, 0))
        self.opacity.setValue(int(round(s.saliency_opacity * 100)))
        self.threshold.setValue(int(round(s.saliency_threshold * 100)))
        for w in (self.colormap, self.opacity, self.threshold):
            w.blockSignals(False)

    def _remember(self) -> None:
        """Colour map, opacity and threshold are kept in the settings (next image, next start)."""
        from app.gui.settings import save_settings

        s = self._settings()
        s.saliency_colormap = self.colormap.currentText()
        s.saliency_opacity = self.opacity.value() / 100.0
        s.saliency_threshold = self.threshold.value() / 100.0
        try:
            save_settings(s)
        except Exception as exc:  # noqa: BLE001 - the overlay works; only the memory is lost
            log.warning("saliency settings not saved: %s", type(exc).__name__)

    # -- models ---------------------------------------------------------------------------------
    def _load_models(self) -> None:
        # the registry is verified on a worker once per process (never on the GUI thread)
        self.compute_button.setEnabled(False)
        request_registry(self.main_window, self._models_ready, self._models_failed)

    def _models_ready(self, registry: Any) -> None:
        models = [m for m in registry.models() if m.verified and m.labels]
        self.model.clear()
        for m in models:
            self.model.addItem(m.name, m.id)
        self.compute_button.setEnabled(bool(models) and self.worker is None)

    def _models_failed(self, exc: BaseException) -> None:
        self.status.setText(
            self.tr("Models could not be listed: %1").replace("%1", user_message(exc))
        )

    # -- viewport ---------------------------------------------------------------------------------
    def _viewport(self) -> Any:
        mw = self.main_window
        return mw.active_viewport() if mw is not None and hasattr(mw, "active_viewport") else None

    def _current(self) -> tuple[str, int] | None:
        ref = self.main_window.current_image() if self.main_window is not None else None
        return (str(ref.path), int(ref.frame)) if ref is not None and ref.path else None

    def on_image_changed(self, _ref: Any = None) -> None:
        """The image on screen changed: drop maps of another image; recompute CAM if on."""
        if self._current() == self._key:
            return
        self.result, self._key = None, None
        vp = self._viewport()
        if vp is not None:
            vp.set_overlay(None)
        if self.enabled.isChecked() and self.method.currentText() in ("auto", "cam"):
            self.compute()

    def _on_toggled(self, on: bool) -> None:
        vp = self._viewport()
        if on and self.result is None and self._current() is not None:
            self.compute()
        elif vp is not None:
            vp.set_overlay_visible(on)

    def _on_opacity(self, value: int) -> None:
        vp = self._viewport()
        if vp is not None:
            vp.set_overlay_opacity(value / 100.0)

    # -- computing ------------------------------------------------------------------------------
    def compute(self) -> None:
        """Compute maps for the current image in the background."""
        cur = self._current()
        if cur is None:
            self.status.setText(self.tr("Open an image first."))
            return
        if self.worker is not None or self.model.currentData() is None:
            return
        self.status.setText(self.tr("Computing saliency..."))
        self.compute_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        ref = self.main_window.current_image()
        session = (
            sessions_of(self.main_window).for_series(self.main_window.current_series())
            if hasattr(self.main_window, "current_series")
            else sessions_of(self.main_window).for_image(ref)
        )
        self.worker = run_in_background(
            compute_maps,
            session,
            ref,
            str(self.model.currentData()),
            self.method.currentText(),
            self.device.currentText(),
            on_result=self._done,
            on_error=self._failed,
            on_progress=self._progress,
            on_finished=self._finished,
        )

    def cancel(self) -> None:
        """Stop a running perturbation method at its next batch."""
        if self.worker is not None:
            self.worker.cancel()
            self.status.setText(self.tr("Cancelled."))

    def _progress(self, done: int, total: Any, message: str) -> None:
        if total:
            self.status.setText(f"{message or self.tr('Saliency')}: {int(done)}/{int(total)}")

    def _finished(self) -> None:
        self.worker = None
        self.compute_button.setEnabled(self.model.count() > 0)
        self.cancel_button.setEnabled(False)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(user_message(exc))

    def _done(self, result: dict[str, Any]) -> None:
        if self._current() != (result["path"], result["frame"]):
            self.status.setText(
                self.tr("The image changed while the map was computed; compute again.")
            )
            return
        self.result, self._key = result, (result["path"], result["frame"])
        current = self.label.currentText()
        self.label.blockSignals(True)
        self.label.clear()
        self.label.addItems(list(result["maps"]))
        if current in result["maps"]:
            self.label.setCurrentText(current)
        self.label.blockSignals(False)
        self.status.setText(
            self.tr("%1 map of %2.")
            .replace("%1", str(result["method"]).upper())
            .replace("%2", str(result["model_id"]))
        )
        if not self.enabled.isChecked():
            self.enabled.blockSignals(True)
            self.enabled.setChecked(True)
            self.enabled.blockSignals(False)
        self.render()

    # -- rendering ------------------------------------------------------------------------------
    def current_map(self) -> np.ndarray | None:
        """The normalised map of the selected label (source grid), if computed."""
        if self.result is None:
            return None
        return self.result["maps"].get(self.label.currentText())

    def render(self) -> None:  # type: ignore[override]  # the panel's own; never QWidget.render
        """Colour the selected map with the current settings and show it on the viewport."""
        self._update_legend()
        m = self.current_map()
        vp = self._viewport()
        if m is None or vp is None:
            return
        from app.saliency.overlay import overlay_rgba

        rgba = overlay_rgba(
            m,
            self.colormap.currentText(),
            opacity=1.0,
            threshold=self.threshold.value() / 100.0,
            contour=self.contour.isChecked(),
        )
        try:
            vp.set_overlay(rgba)
        except Exception as exc:  # noqa: BLE001 - e.g. the image size changed under us
            self.status.setText(user_message(exc))
            return
        vp.set_overlay_opacity(self.opacity.value() / 100.0)
        vp.set_overlay_visible(self.enabled.isChecked())

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._legend_stale and self.result is not None:
            self._update_legend()

    def _colormap_picked(self, _index: int) -> None:
        self._legend_wanted = True  # the user chose a colour map: show it, map or not
        self._update_legend()

    def _update_legend(self) -> None:
        if not self.isVisible() or (self.result is None and not self._legend_wanted):
            self._legend_stale = True
            return
        self._legend_stale = False
        from app.saliency.overlay import legend_image

        method = (self.result or {}).get("method", "")
        img = np.ascontiguousarray(
            legend_image(
                self.colormap.currentText(),
                height=160,
                width=70,
                title=str(method).upper(),
                low="low",
                high="high",
            )
        )
        h, w = img.shape[:2]
        qimg = QImage(img.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.legend.setPixmap(QPixmap.fromImage(qimg))


def create_panel(main_window: Any) -> QDockWidget:
    """The saliency dock for the main window (see :mod:`app.gui.panels`)."""
    dock = QDockWidget(QCoreApplication.translate("SaliencyPanel", "Saliency"), main_window)
    dock.setObjectName("SaliencyDock")
    panel = SaliencyPanel(main_window, dock)
    dock.setWidget(panel)
    for name in ("image_changed", "active_viewport_changed"):
        signal = getattr(main_window, name, None)
        if signal is not None and hasattr(signal, "connect"):
            signal.connect(panel.on_image_changed)
    return dock
