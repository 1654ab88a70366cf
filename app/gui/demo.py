"""``hilum demo`` with a display: the whole job shown in the window, through the study session.

The window opens on the bundled sample; then the demo drives the panels the way a user would:
the AI panel's Run (``session.analyze``: classifier result in the table, CAM kept from the same
pass), the Saliency panel's CAM overlay on the image, the Report panel's Draft (bundled
generator) and finally the session's sign-off and export (``session.sign_off`` /
``session.export``, the same calls as the headless demo; signed as
:data:`~app.core.types.BATCH_READER`, i.e. not reviewed by a physician). Where the files went is
shown in the status bar and in a message. Nothing here is a second implementation: each step is
the panel's own action or a session method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox

from app.gui.i18n import plural

log = logging.getLogger(__name__)

#: the indication the demo types into the Report panel (conditions the bundled draft)
DEMO_INDICATION = "Cough and fever"


def _export(session: Any, draft: Any, out_dir: Path, progress: Any = None) -> list[Path]:
    """Worker: the session signs the shown draft off (unattended: not reviewed) and exports it."""
    from app.core import paths as core_paths
    from app.core.types import BATCH_READER

    core_paths.private_dir(out_dir)
    session.set_draft(draft)
    session.sign_off(BATCH_READER)
    return session.export(out_dir, pdf=True, dicom=True, progress=progress)


class DemoRunner(QObject):
    """Drives one window through the demo (see the module docstring).

    Signals
    -------
    step(str)
        A step began (also shown in the status bar).
    finished(object)
        The exported files (list of Path); ``failed(str)`` instead when a step failed.
    """

    step = Signal(str)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(
        self, window: Any, out_dir: Path, device: str = "auto", timeout_s: float = 600.0
    ) -> None:
        super().__init__(window)
        self.window = window
        self.out_dir = Path(out_dir)
        self.device = device
        self.files: list[Path] = []
        self.message = ""
        self.state = "waiting"
        self._waited = 0.0
        self._timeout = timeout_s
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self._poll)

    # -- panels ---------------------------------------------------------------------------------
    def _panel(self, name: str) -> Any:
        dock = getattr(self.window, "panels", {}).get(name)
        return dock.widget() if dock is not None else None

    def start(self) -> None:
        """Begin once the sample is on screen (call after ``window.open_paths``)."""
        self._say(self.tr("Demo: loading the sample chest film ..."))
        self._timer.start()

    def _say(self, text: str) -> None:
        self.step.emit(text)
        self.window.statusBar().showMessage(text)

    def _fail(self, text: str) -> None:
        self._timer.stop()
        self.state = "failed"
        self.message = self.tr("Demo stopped: %1").replace("%1", text)
        self.window.statusBar().showMessage(self.message)
        self.failed.emit(self.message)

    def _poll(self) -> None:
        self._waited += self._timer.interval() / 1000.0
        if self._waited > self._timeout:
            self._fail(self.tr("a step took too long."))
            return
        ai, sal, rep = self._panel("ai"), self._panel("saliency"), self._panel("report")
        if ai is None or sal is None or rep is None:
            self._fail(self.tr("the AI, Saliency and Report panels are needed."))
            return
        if self.state == "waiting":
            ready = (
                self.window.current_image() is not None
                and not self.window.busy
                and ai.series is not None
                and ai.metadata is not None
                and ai.models.count() > 0
                and ai.worker is None
            )
            if ready:
                self.state = "analysing"
                self._say(self.tr("Demo: the classifier runs on the image (AI panel) ..."))
                ai.device.setCurrentText(self.device)
                ai.results_ready.connect(self._analysed)
                ai.run()
                if ai.worker is None:
                    self._fail(ai.status.text() or self.tr("the classifier could not start."))
        elif self.state == "explaining":
            if sal.worker is None and sal.result is not None and rep.study_uid:
                self.state = "drafting"
                self._say(
                    self.tr("Demo: the bundled generator drafts the report (Report panel) ...")
                )
                rep.indication.setText(DEMO_INDICATION)
                rep.start_draft()
            elif (
                sal.worker is None
                and sal.result is None
                and sal.status.text()
                and not sal.status.text().endswith(("...", "…"))
            ):
                self._fail(sal.status.text())
        elif self.state == "drafting":
            if not rep.running:
                if getattr(rep, "last_error", ""):
                    self._fail(rep.last_error)
                    return
                self.state = "exporting"
                self._say(
                    self.tr("Demo: signing off (not reviewed) and exporting PDF and DICOM ...")
                )
                self.window.run_in_background(
                    _export,
                    rep._session(),
                    rep.current_draft(),
                    self.out_dir,
                    on_result=self._exported,
                    on_error=lambda exc: self._fail(self._message(exc)),
                )

    @staticmethod
    def _message(exc: BaseException) -> str:
        from app.gui.errors import user_message

        return user_message(exc)

    def _analysed(self, doc: Any) -> None:
        ai, sal = self._panel("ai"), self._panel("saliency")
        ai.results_ready.disconnect(self._analysed)
        if not any(i.get("results") for i in doc.get("images", [])):
            self._fail(ai.status.text() or self.tr("the classifier gave no result."))
            return
        self.state = "explaining"
        self._say(
            self.tr(
                "Demo: the saliency map of the same pass goes on the image (Saliency panel) ..."
            )
        )
        model_id = next(r["model_id"] for i in doc["images"] for r in i.get("results", []))
        idx = sal.model.findData(model_id)
        if idx >= 0:
            sal.model.setCurrentIndex(idx)
        sal.method.setCurrentText("cam")
        sal.enabled.setChecked(True)  # computes the CAM (kept from the classifying pass)
        if sal.worker is None and sal.result is None:
            sal.compute()

    def _exported(self, files: list[Path]) -> None:
        self._timer.stop()
        self.files = [Path(f) for f in files]
        self.state = "done"
        pdf = next((f for f in self.files if f.suffix == ".pdf"), None)
        n_dcm = sum(1 for f in self.files if f.suffix == ".dcm")
        self.message = plural(
            self.tr("Demo finished: report.pdf and %n DICOM file(s) exported to %1", "", n_dcm),
            n_dcm,
        ).replace("%1", str(self.out_dir))
        self.window.statusBar().showMessage(self.message)
        box = QMessageBox(
            QMessageBox.Icon.Information,
            self.tr("Hilum demo"),
            self.message,
            QMessageBox.StandardButton.Ok,
            self.window,
        )
        box.setInformativeText(
            self.tr(
                "The classifier's result is in the AI panel, the saliency map "
                "is on the image and the draft is in the Report panel. The "
                "export was signed off unattended: not reviewed by a physician."
            )
        )
        box.setDetailedText("\n".join(str(f) for f in self.files))
        box.setModal(False)
        self.box = box
        box.show()
        log.info("demo exported %d file(s)%s", len(self.files), " with a PDF" if pdf else "")
        self.finished.emit(self.files)


def start_demo(
    window: Any,
    sample: str,
    out_dir: Path,
    device: str = "auto",
    on_done: Callable[[Any], None] | None = None,
) -> DemoRunner:
    """Open ``sample`` in ``window`` and run the demo in it; returns the runner."""
    from PySide6.QtCore import Qt

    runner = DemoRunner(window, out_dir, device)
    window.demo = runner
    docks = getattr(window, "panels", {})
    if "ai" in docks and "report" in docks:
        # the classifier's result and the draft side by side (not hidden behind each other's tab)
        # (a tabbed dock is only ever split as a new tab: take the Report dock out first)
        window.removeDockWidget(docks["report"])
        window.addDockWidget(
            Qt.DockWidgetArea.RightDockWidgetArea, docks["report"], Qt.Orientation.Vertical
        )
        docks["ai"].show()
        docks["report"].show()
    if on_done is not None:
        runner.finished.connect(on_done)
        runner.failed.connect(on_done)
    window.open_paths([str(sample)])
    runner.start()
    return runner
