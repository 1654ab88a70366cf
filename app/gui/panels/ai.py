"""The AI dock: models applicable to the current series, Run (background), results, model card.

Integration (main window)
-------------------------
``create_panel(main_window) -> QDockWidget``. The panel follows the series on screen by
connecting, when present, ``main_window.series_changed`` (a signal carrying a
:class:`app.gui.series.SeriesData` or ``None``) and else every ``Viewport.series_changed`` under
the main window; the main window may also call ``dock.widget().set_series(series)`` itself.
The panel is a view of the study's :class:`~app.workflow.StudySession` (:mod:`app.gui.sessions`):
Run calls ``session.analyze`` on a worker (the same call ``hilum analyze`` makes, so CAM is kept
from the classifying pass for the Saliency panel), applicability uses the session's header values
(the one metadata reader), and runs are stored with the study as typed
:class:`~app.core.types.AnalysisRun` (``Library.store_run``/``runs``, through
``main_window.library()`` when offered) and shown again when the series is opened later. The
provider is shown in the panel and through ``main_window.set_provider_text``. Model checks,
library reads/writes and inference all run on the thread pool, never on the GUI thread.
``AIPanel.results_ready(dict)`` is emitted with the ``results.json``-shaped document after each run.
"""

from __future__ import annotations

import logging
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.gui.i18n import plural
from app.core.types import StudyMetadata
from app.gui.elided import ElidedLabel
from app.gui.errors import user_message
from app.gui.model_registry import request_registry
from app.gui.sessions import series_files, sessions_of
from app.gui.workers import Worker, run_in_background
from app.inference.manifest import DEMONSTRATION_WORDS

log = logging.getLogger(__name__)

RESULT_KEY_PREFIX = "ai:"  # Library.store_run's key (tests read the raw document)

#: result table columns (translated at display time)
COLUMNS = ("Image", "Model", "Finding", "Prob.", "Threshold", "Flag")
COL_IMAGE, COL_MODEL, COL_FINDING, COL_PROB, COL_THRESHOLD, COL_FLAG = range(len(COLUMNS))
#: amber, dark text: readable on the dark and the light theme
BANNER_STYLE = "background:#f0b429;color:#1a1a1a;font-weight:bold;padding:4px;border-radius:3px;"
#: the model card's words for a demonstration model (shown in the panel, next to its result)
DEMO_WORDS = DEMONSTRATION_WORDS


def _banner(name: str) -> QLabel:
    """A hidden amber banner (shown next to the results it qualifies)."""
    label = QLabel("")
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setStyleSheet(BANNER_STYLE)
    label.hide()
    return label


def _series_files(series: Any) -> list[str]:
    """Unique file paths of a series, in display order."""
    return series_files(series)


def _run_models(
    session: Any,
    files: list[str],
    series_uid: str,
    model_ids: list[str],
    device: str,
    override: bool,
    get_library: Any = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Worker-thread job: the session classifies the series (CAM kept from the same pass) and
    stores the run with the study; returns the ``results.json`` document for the table."""
    run = session.analyze(
        files,
        series_uid=series_uid,
        model_ids=model_ids,
        device=device,
        override_applicability=override,
        progress=progress,
    )
    doc = run.to_json()
    if get_library is not None and session.study_uid:
        try:
            get_library().store_run(session.study_uid, series_uid, run)
        except Exception as exc:  # noqa: BLE001 - results are still shown; say they were not kept
            doc["store_error"] = str(exc) or type(exc).__name__
    return doc


def _read_stored(session: Any, get_library: Any, series_uid: str, progress: Any = None) -> Any:
    """Worker-thread job: the header values (the one reader) and the stored run of the series
    (opens the library here: never on the GUI thread)."""
    md = session.metadata()
    run = None
    try:
        run = get_library().runs(session.study_uid).get(series_uid) if session.study_uid else None
    except Exception as exc:  # noqa: BLE001 - a missing library only means nothing stored
        log.debug("no stored AI results: %s", type(exc).__name__)
    return md, run


class AIPanel(QWidget):
    """Models for the current series, a Run button, the results table and the model card."""

    results_ready = Signal(object)

    def __init__(self, main_window: Any = None, parent: QWidget | None = None) -> None:
        """Long because it builds the panel's widget tree."""
        super().__init__(parent)
        self.setObjectName("AIPanel")
        self.main_window = main_window
        self.series: Any = None
        self.session: Any = None
        self.metadata: StudyMetadata | None = None
        self.worker: Worker | None = None
        self.last_doc: dict[str, Any] | None = None
        self._registry: Any = None
        self._library: Any = None

        # elided (full text in the tooltip): a long UID never widens the dock
        self.series_label = ElidedLabel(self.tr("No series open."))
        self.series_label.setObjectName("AISeries")
        self.models = QListWidget()
        self.models.setObjectName("AIModels")
        self.models.setMaximumHeight(110)
        self.models.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.show_all = QCheckBox(self.tr("Show models outside their stated use"))
        self.show_all.setToolTip(
            self.tr("Override applicability (modality / body part / view); results are marked.")
        )
        self.show_all.toggled.connect(lambda *_: self._refresh_models())
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.device.setToolTip(
            self.tr("Where the models run; the provider actually used is shown below.")
        )
        self.run_button = QPushButton(self.tr("Run"))
        self.run_button.setObjectName("AIRun")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.card_button = QPushButton(self.tr("Model card"))
        self.card_button.clicked.connect(self.show_card)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel("")
        self.status.setObjectName("AIStatus")
        self.status.setWordWrap(True)
        self.provider_label = QLabel(self.tr("Provider: -"))
        #: intended use / OOD of the results (population, OOD score): amber, not a tooltip
        self.reliability_banner = _banner("AIReliabilityBanner")
        self.provider_label.setObjectName("AIProvider")
        self.table = self._build_table()
        #: model name, version and short sha256 of the shown results (not only in a tooltip)
        self.model_info = QLabel("")
        self.model_info.setObjectName("AIModelInfo")
        self.model_info.setWordWrap(True)
        self.model_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        #: amber banner: a model used outside its stated intended use / a demonstration model
        self.use_banner = _banner("AIUseBanner")
        self.disclaimer = QLabel(self.tr("AI-generated, requires review by a physician."))
        self.disclaimer.setObjectName("AIDisclaimer")

        row = QHBoxLayout()
        row.addWidget(QLabel(self.tr("Device")))
        row.addWidget(self.device)
        row.addStretch(1)
        row.addWidget(self.card_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.run_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.series_label)
        lay.addWidget(self.models)
        lay.addWidget(self.show_all)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.use_banner)
        lay.addWidget(self.reliability_banner)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.model_info)
        lay.addWidget(self.provider_label)
        lay.addWidget(self.disclaimer)
        self._update_buttons()
        self.status.setText(self.tr("Checking installed models..."))
        # verified once per process on a worker (main_window.run_in_background), then cached
        request_registry(main_window, self._registry_ready, self._failed)

    def _build_table(self) -> QTableWidget:
        """The results table: threshold and flag as columns, readable at the dock's width."""
        table = QTableWidget(0, len(COLUMNS))
        table.setObjectName("AIResults")
        table.setHorizontalHeaderLabels(
            [
                self.tr("Image"),
                self.tr("Model"),
                self.tr("Finding"),
                self.tr("Prob."),
                self.tr("Threshold"),
                self.tr("Flag"),
            ]
        )
        head = table.horizontalHeaderItem(COL_PROB)
        if head is not None:
            head.setToolTip(self.tr("Probability"))
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = table.horizontalHeader()
        # short columns fit their contents; model and finding share what is left (elided)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_MODEL, QHeaderView.ResizeMode.Stretch)  # elided, tooltip
        header.setSectionResizeMode(COL_FINDING, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_PROB, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_PROB, 58)
        header.setMinimumSectionSize(36)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return table

    # -- models ---------------------------------------------------------------------------------
    def _registry_ready(self, registry: Any) -> None:
        self._registry = registry
        self.status.setText("")
        self._refresh_models()

    def registry(self) -> Any:
        """The verified model registry (None until the background check finished)."""
        return self._registry

    def library(self) -> Any:
        """The study library: the main window's when it offers one (call it on worker threads)."""
        if self._library is None:
            getter = getattr(self.main_window, "library", None)
            if callable(getter):
                self._library = getter()
            else:
                from app.dicom.library import Library

                self._library = Library()
        return self._library

    def _refresh_models(self) -> None:
        from app.inference.registry import applicability_problems  # pure Python: header values only

        self.models.clear()
        if self.series is None or self._registry is None:
            self._update_buttons()
            return
        # the session's header values (the one reader, as `hilum analyze` checks them); until
        # they are read, only the series' modality
        md = self.metadata or StudyMetadata(
            modality=str(getattr(self.series, "modality", "") or "").upper()
        )
        meta = md.as_dicom()
        manifests = self._registry.models()
        for m in manifests:
            reasons = applicability_problems(m, meta) if m.raw else ["manifest unreadable"]
            if reasons and not self.show_all.isChecked():
                continue
            text = f"{m.name} ({m.version})"
            if getattr(m, "site_override", False):
                text += self.tr(" - site override of the bundled model")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, m.id)
            if not m.verified:
                item.setText(text + self.tr(" - will not run: failed verification"))
                item.setToolTip("; ".join(m.problems))
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            elif reasons:
                item.setText(text + self.tr(" - outside stated use"))
                item.setToolTip("; ".join(reasons))
            item.setCheckState(
                Qt.CheckState.Checked if m.verified and not reasons else Qt.CheckState.Unchecked
            )
            self.models.addItem(item)
        if self.models.count() == 0:
            self.status.setText(self.tr("No installed model applies to this series."))
        elif not self.worker:
            self.status.setText("")
        if self.models.count():
            self.models.setCurrentRow(0)
        self._update_buttons()

    def checked_models(self) -> list[str]:
        """Ids of the models ticked for the next run."""
        out = []
        for i in range(self.models.count()):
            item = self.models.item(i)
            if (
                item.checkState() == Qt.CheckState.Checked
                and item.flags() & Qt.ItemFlag.ItemIsEnabled
            ):
                out.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return out

    def _update_buttons(self) -> None:
        busy = self.worker is not None
        self.run_button.setEnabled(not busy and self.series is not None and self.models.count() > 0)
        self.cancel_button.setEnabled(busy)
        self.card_button.setEnabled(self.models.currentItem() is not None)

    # -- series ---------------------------------------------------------------------------------
    def set_series(self, series: Any) -> None:
        """Show the models for ``series`` (a SeriesData or None) and its stored results."""
        if (
            series is not None
            and getattr(series, "preview", False)
            and self.series is not None
            and getattr(self.series, "series_uid", None) == getattr(series, "series_uid", None)
        ):
            return
        self.series = series
        self.session = sessions_of(self.main_window).for_series(series)
        self.metadata = None
        self.table.setRowCount(0)
        self.last_doc = None
        if series is None:
            self.series_label.setText(self.tr("No series open."))
        else:
            desc = getattr(series, "description", "") or getattr(series, "series_uid", "")
            n = len(_series_files(series))
            self.series_label.setText(
                plural(self.tr("%1 %2 - %n image file(s)", "", n), n)
                .replace("%1", str(getattr(series, "modality", "")))
                .replace("%2", str(desc))
            )
        self._refresh_models()
        if series is not None:
            self._show_stored()

    def _show_stored(self) -> None:
        study = str(getattr(self.series, "study_uid", "") or "")
        if not study or self.session is None:
            return
        series = self.series

        def shown(value: Any) -> None:
            md, run = value
            # the panel may be gone (window closed while the stored run was read)
            if not shiboken6.isValid(self) or series is not self.series:
                return
            self.metadata = md
            self._refresh_models()
            if run is not None and self.last_doc is None:
                self.session.set_run(run, str(getattr(series, "series_uid", "")))
                self._show(run.to_json(), stored=True)

        def failed(exc: BaseException) -> None:
            log.debug("header values not read: %s", type(exc).__name__)

        try:
            run_in_background(
                _read_stored,
                self.session,
                self.library,
                str(getattr(series, "series_uid", "")),
                on_result=shown,
                on_error=failed,
            )
        except Exception as exc:  # noqa: BLE001
            failed(exc)

    # -- running --------------------------------------------------------------------------------
    def run(self) -> None:
        """Classify every image of the series with the ticked models, in the background."""
        if self.series is None or self.worker is not None:
            return
        ids = self.checked_models()
        if not ids:
            self.status.setText(self.tr("Tick at least one model."))
            return
        files = _series_files(self.series)
        if not files:
            self.status.setText(self.tr("This series has no image files to classify."))
            return
        self.progress.setRange(0, max(len(files), 1))
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText(self.tr("Running..."))
        series = self.series
        self.worker = run_in_background(
            _run_models,
            self.session,
            files,
            str(getattr(series, "series_uid", "")),
            ids,
            self.device.currentText(),
            self.show_all.isChecked(),
            self.library,
            on_result=lambda doc: self._done(series, doc),
            on_error=self._failed,
            on_progress=self._on_progress,
            on_finished=self._finished,
        )
        self.worker.signals.cancelled.connect(lambda: self.status.setText(self.tr("Cancelled.")))
        self._update_buttons()

    def cancel(self) -> None:
        """Stop the running classification at its next batch."""
        if self.worker is not None:
            self.worker.cancel()

    def _on_progress(self, done: int, total: Any, message: str) -> None:
        if total:
            self.progress.setRange(0, int(total))
        self.progress.setValue(int(done))

    def _finished(self) -> None:
        self.worker = None
        self.progress.hide()
        self._update_buttons()

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(user_message(exc))

    def _done(self, series: Any, doc: dict[str, Any]) -> None:
        if series is self.series:
            self._show(doc)
        if doc.get("store_error"):
            log.warning("AI results not stored")
            self.status.setText(
                self.tr("Results could not be stored with the study: %1").replace(
                    "%1", str(doc["store_error"])
                )
            )
        providers = sorted(
            {m.get("provider", "") for m in doc.get("models", []) if m.get("provider")}
        )
        setter = getattr(self.main_window, "set_provider_text", None)
        if providers and callable(setter):
            setter("AI: " + ", ".join(p.replace("ExecutionProvider", "") for p in providers))
        self.results_ready.emit(doc)

    # -- display --------------------------------------------------------------------------------
    def _instance_numbers(self) -> dict[str, int]:
        """SOP Instance UID -> Instance Number of the images of the series on screen."""
        out: dict[str, int] = {}
        for f in getattr(self.series, "frames", None) or []:
            sop, inum = getattr(f, "sop_uid", ""), getattr(f, "instance_number", None)
            if sop and inum is not None and sop not in out:
                out[sop] = int(inum)
        return out

    def image_identity(self, image: dict[str, Any], index: int) -> str:
        """How a result's image is named in the table: its instance number (and frame of a
        multi-frame image), as the PDF names it; the position in the run when unknown."""
        inum = self._instance_numbers().get(str(image.get("sop_uid", "")))
        text = self.tr("Im %1").replace("%1", str(inum)) if inum is not None else f"#{index}"
        frame = int(image.get("frame", 0) or 0)
        if frame:
            text += " " + self.tr("fr %1").replace("%1", str(frame + 1))
        return text

    def _manifest(self, model_id: str) -> Any:
        try:
            return self._registry.get(model_id) if self._registry is not None else None
        except Exception:  # noqa: BLE001 - a model removed since the run: no card words
            return None

    def _show(self, doc: dict[str, Any], stored: bool = False) -> None:
        """Long because it fills the table, the model line and both amber banners from one pass over the results."""

        self.last_doc = doc
        self.table.setRowCount(0)
        providers = set()
        models: dict[str, dict[str, Any]] = {}
        outside: set[str] = set()
        n_errors = len(doc.get("errors", []))
        for i, image in enumerate(doc.get("images", []), start=1):
            ident = self.image_identity(image, i)
            for res in image.get("results", []):
                providers.add(str(res.get("provider", "")))
                models.setdefault(str(res.get("model_id", "")), res)
                if res.get("applicability_overridden"):
                    outside.add(str(res.get("model_id", "")))
                for label, v in res.get("labels", {}).items():
                    self._add_row(ident, res, label, v)
            n_errors += len(image.get("errors", []))
        self.provider_label.setText(
            self.tr("Provider: %1").replace(
                "%1", ", ".join(sorted(p for p in providers if p)) or "-"
            )
        )
        info, banner = [], []
        for model_id, res in models.items():
            m = self._manifest(model_id)
            name = getattr(m, "name", "") or model_id
            info.append(
                self.tr("%1, version %2, sha256 %3")
                .replace("%1", name)
                .replace("%2", str(res.get("model_version", "?")))
                .replace("%3", str(res.get("sha256", ""))[:12])
            )
            if model_id in outside:
                banner.append(
                    self.tr(
                        "%1 was used outside its stated intended use: "
                        "interpret its result with care."
                    ).replace("%1", name)
                )
            # the result says so (set where it was made); a run stored before the flag existed
            # falls back to the installed manifest
            demo = res.get("demonstration")
            if demo is None:
                demo = bool(getattr(m, "demonstration", False))
            if demo:
                banner.append(
                    f"{name}: " + self.tr("Demonstration model, not for clinical use") + "."
                )
        # one model: named (with version and sha256) under the table, its column left out so
        # threshold and flag stay readable at the dock's default width
        self.table.setColumnHidden(COL_MODEL, len(models) <= 1)
        self.model_info.setText("\n".join(info))
        self.use_banner.setText("\n".join(banner))
        self.use_banner.setVisible(bool(banner))
        unreliable = sorted(
            {
                f"{res.get('model_id', '')}: {str(res['reliability'])[len('outside intended use: ') :]}"
                for image in doc.get("images", [])
                for res in image.get("results", [])
                if str(res.get("reliability", "")).startswith("outside")
            }
        )
        if unreliable:
            self.reliability_banner.setText(
                "\u26a0 "
                + self.tr("Outside intended use: these AI results are not reliable.")
                + "\n"
                + "\n".join(unreliable[:4])
                + ("\n..." if len(unreliable) > 4 else "")
            )
            self.reliability_banner.show()
        else:
            self.reliability_banner.hide()
        when = doc.get("created", "")
        rows = self.table.rowCount()
        parts = [
            plural(self.tr("%n result(s)", "", rows), rows)
            + (self.tr(", stored %1").replace("%1", str(when)) if stored else "")
        ]
        if n_errors:
            parts.append(
                plural(self.tr("%n image(s) could not be classified", "", n_errors), n_errors)
            )
        na = sum(len(im.get("not_applicable", [])) for im in doc.get("images", []))
        if na and not rows:
            parts.append(self.tr("the ticked models do not apply to these images"))
        self.status.setText("; ".join(parts) + ".")

    def _add_row(self, image: str, res: dict[str, Any], label: str, v: dict[str, Any]) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        prob = float(v.get("probability", 0.0))
        threshold = float(v.get("threshold", 0.0))
        positive = bool(v.get("positive", False))
        self.table.setItem(r, COL_IMAGE, QTableWidgetItem(image))
        model = QTableWidgetItem(str(res.get("model_id", "")))
        model.setToolTip(
            f"version {res.get('model_version')}, sha256 {str(res.get('sha256', ''))[:12]}..., "
            f"{res.get('provider')}"
        )
        self.table.setItem(r, COL_MODEL, model)
        self.table.setItem(r, COL_FINDING, QTableWidgetItem(label))
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setValue(int(round(prob * 1000)))
        bar.setFormat(f"{prob:.3f}")
        bar.setToolTip(f"probability {prob:.3f}, threshold {threshold:.3f}")
        bar.setProperty("positive", positive)
        self.table.setCellWidget(r, COL_PROB, bar)
        self.table.setItem(r, COL_THRESHOLD, QTableWidgetItem(f"{threshold:.3f}"))
        flag = QTableWidgetItem(self.tr("POSITIVE") if positive else "-")
        flag.setData(Qt.ItemDataRole.UserRole, prob)
        if positive:
            font = flag.font()
            font.setBold(True)
            flag.setFont(font)
        # a short marker keeps the column readable at the dock's width; the amber banners above
        # the table say it in full, the tooltip gives this result's reason
        if res.get("applicability_overridden"):
            flag.setText(flag.text() + " \u26a0")
            flag.setToolTip(self.tr("(outside stated use)") + " " + str(res.get("reliability", "")))
        elif str(res.get("reliability", "")).startswith("outside"):
            flag.setText(flag.text() + " \u26a0")
            flag.setToolTip(self.tr("(outside intended use)") + " " + str(res["reliability"]))
        self.table.setItem(r, COL_FLAG, flag)

    def show_card(self) -> None:
        """Show the current model's card (Markdown) in a dialog."""
        item = self.models.currentItem()
        if item is None:
            return
        try:
            m = self._registry.get(str(item.data(Qt.ItemDataRole.UserRole)))
            text = m.card_text()
            if not m.verified:
                text = (
                    "**This model failed verification and will not be run:** "
                    + "; ".join(m.problems)
                    + "\n\n"
                    + text
                )
        except Exception as exc:  # noqa: BLE001
            text = user_message(exc)
        dlg = QDialog(self)
        dlg.setWindowTitle(self.tr("Model card"))
        view = QTextBrowser(dlg)
        view.setObjectName("AIModelCard")
        view.setMarkdown(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=dlg)
        buttons.rejected.connect(dlg.reject)
        lay = QVBoxLayout(dlg)
        lay.addWidget(view)
        lay.addWidget(buttons)
        dlg.resize(640, 560)
        self.card_dialog = dlg
        dlg.show()


def create_panel(main_window: Any) -> QDockWidget:
    """The AI dock for the main window (see the module docstring for the integration)."""
    dock = QDockWidget(QCoreApplication.translate("AIPanel", "AI"), main_window)
    dock.setObjectName("AIDock")
    panel = AIPanel(main_window, dock)
    dock.setWidget(panel)
    signal = getattr(main_window, "series_changed", None)
    if signal is not None and hasattr(signal, "connect"):
        signal.connect(panel.set_series)
    else:
        try:
            from app.gui.viewport import Viewport

            for vp in main_window.findChildren(Viewport):
                vp.series_changed.connect(panel.set_series)
        except Exception as exc:  # noqa: BLE001 - the panel still works through set_series
            log.debug("AI panel not connected to viewports: %s", type(exc).__name__)
    return dock
