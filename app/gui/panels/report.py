"""The Report dock: draft FINDINGS and IMPRESSION with the generator, edit, autosave per study.

Integration (see :mod:`app.gui.panels`): ``create_panel(main_window) -> QDockWidget``. The panel
follows ``main_window.study_changed`` / ``series_changed`` and is a view of the study's
:class:`~app.workflow.StudySession`: drafts are ``session.draft_report`` on a worker, conditioned
on the session's AI results (the AI panel's run, or the runs stored with the study) and its header
values (ViewPosition, BodyPartExamined ...: the one metadata reader, as ``hilum analyze``). It
offers ``current_draft() -> ReportDraft`` to the export panel (and hands it to the session).

* Draft streams tokens into the editor from a worker thread (never the GUI thread); Stop cancels,
  Regenerate starts over. The OpenAI-compatible backend asks before anything leaves the machine.
* AI-written text is highlighted until the radiologist edits the draft.
* Drafts autosave (atomic JSON under ``data_dir()/drafts``, and the library) per study, so they
  survive a crash or restart.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QTimer, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core import paths
from app.core.types import BATCH_READER, AnalysisRun, ModelResult, ReportDraft
from app.gui.sessions import sessions_of

from app.core.provenance import DRAFT_BANNER  # noqa: E402 - the one banner string

log = logging.getLogger(__name__)

BANNER = DRAFT_BANNER

STANDARD_PHRASES = (
    "No acute cardiopulmonary abnormality.",
    "The heart size and mediastinal contours are normal.",
    "The lungs are clear.",
    "No focal consolidation.",
    "No pleural effusion or pneumothorax.",
    "No interval change compared with the prior study.",
    "Recommend clinical correlation.",
    "Recommend follow-up chest radiograph.",
)

#: background behind text the generator wrote: a deep amber on the dark theme (light text stays
#: readable, contrast > 7:1), a pale amber on a light palette
AI_COLOR_DARK = QColor(94, 68, 10)
AI_COLOR_LIGHT = QColor(255, 244, 204)
AI_COLOR = AI_COLOR_DARK

_SENTENCE_END = ".!?\n"


def sentence_bounds(text: str, pos: int) -> tuple[int, int]:
    """The sentence of ``text`` around position ``pos`` as ``(start, end)`` (end exclusive): from
    after the previous full stop / line break to the next one (included)."""
    pos = max(0, min(pos, len(text)))
    start = pos
    while start > 0 and text[start - 1] not in _SENTENCE_END:
        start -= 1
    end = pos
    while end < len(text) and text[end] not in _SENTENCE_END:
        end += 1
    if end < len(text) and text[end] != "\n":
        end += 1
    return start, end


def local_time(iso: str) -> str:
    """An ISO time as the user's local date and time (``2026-11-30 11:04``)."""
    try:
        when = _dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def draft_path(study_uid: str) -> Path:
    """Autosave file of a study's draft (the UID is hashed: no identifiers in file names)."""
    digest = hashlib.sha256(study_uid.encode("utf-8")).hexdigest()[:32]
    return paths.data_dir() / "drafts" / f"{digest}.json"


def save_draft_file(study_uid: str, doc: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves a half-written draft."""
    path = draft_path(study_uid)
    paths.private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    with paths.open_private(tmp, "w") as fh:  # drafts hold patient data: 0600
        json.dump(doc, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_draft_file(study_uid: str) -> dict[str, Any] | None:
    path = draft_path(study_uid)
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("autosaved draft unreadable: %s", type(exc).__name__)
        return None
    return doc if isinstance(doc, dict) and doc.get("study_uid") == study_uid else None


def _generate(
    session: Any,
    texts: tuple[str, str, str],
    cond: Any,
    backend: str,
    options: dict[str, Any],
    progress: Any = None,
    emit: Any = None,
) -> dict[str, Any]:
    """Worker: the study session drafts (conditioned on its AI results and its header values,
    the one metadata reader; or on ``cond``, the conditioning whose prompt the user confirmed),
    each chunk emitted as it streams; returns the provenance."""
    forward = (lambda chunk: emit(chunk)) if emit is not None else (lambda chunk: None)
    session.events.draft_chunk.connect(forward)
    try:
        session.draft_report(
            *texts,
            backend=backend,
            include_banner=False,
            conditioning=cond,
            progress=progress,
            confirm_send=lambda message: True,  # the GUI asked before starting
            **options,
        )
    finally:
        session.events.draft_chunk.disconnect(forward)
    return dict(session.draft_provenance)


def _load_session(session: Any, get_library: Any, progress: Any = None) -> Any:
    """Worker: adopt the runs stored with the study (typed, from the library)."""
    if not session.runs:
        session.load(get_library())
    return session


def prepare_remote_prompt(
    session: Any,
    texts: tuple[str, str, str],
    header_paths: list[str],
    options: dict[str, Any],
    progress: Any = None,
) -> tuple[Any, str, frozenset[str]]:
    """Worker: the conditioning (the study session's), the exact de-identified prompt a remote
    draft would send, and the header identifiers it was scrubbed with (read from the study's
    files, off the GUI thread).

    Raises :class:`app.core.errors.GeneratorError` for a server the client refuses (plain http
    outside this machine without the setting, no URL ...), before anything is sent.
    """
    import pydicom

    from app.reporting.deid import identifiers_from_dataset
    from app.reporting.generator.openai_backend import OpenAIBackend, build_messages

    OpenAIBackend.from_settings(
        url=options.get("url"),
        model=options.get("model"),
        allow_insecure_http=bool(options.get("allow_insecure_http")),
    )
    identifiers: set[str] = set()
    for path in dict.fromkeys(header_paths):
        try:
            identifiers |= identifiers_from_dataset(pydicom.dcmread(path, stop_before_pixels=True))
        except Exception:  # noqa: BLE001 - an unreadable file adds no identifiers
            log.debug("header unreadable for the prompt scrubber")
    cond = session.conditioning(*texts)
    _messages, sent = build_messages(cond, identifiers=identifiers)
    return cond, sent, frozenset(identifiers)


class ReportPanel(QWidget):
    """Indication/comparison, backend, Draft/Stop/Regenerate, phrases, editor, banner."""

    draft_changed = Signal()

    def __init__(self, main_window: Any = None, parent: QWidget | None = None) -> None:
        """Long because it builds the panel's widget tree."""
        super().__init__(parent)
        self.main_window = main_window
        self.sessions = sessions_of(main_window)
        self.session: Any = None
        self._bound: set[int] = set()  # session bridges whose run signal this panel follows
        self.study_uid = ""
        self.series: Any = None
        self.model_results: list[ModelResult] = []
        self.provenance: dict[str, Any] = {}
        self.ai_generated = False
        self.edited = False
        self.worker: Any = None
        self._prep_worker: Any = None
        #: the text, AI flags and provenance a new draft replaces (restored if it fails)
        self._previous: tuple[str, bool, bool, dict[str, Any]] | None = None
        self._programmatic = False
        self._loading = False

        lay = QVBoxLayout(self)
        # the English words stay with the translation (the disclaimer every AI output carries)
        self.banner = QLabel(self.tr("AI-generated draft: requires review by a physician"))
        self.banner.setObjectName("reportBanner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#8a1c1c;color:white;font-weight:bold;padding:4px;")
        lay.addWidget(self.banner)

        form = QFormLayout()
        self.indication = QLineEdit()
        self.indication.setPlaceholderText(self.tr("e.g. Cough and fever"))
        self.comparison = QLineEdit()
        self.comparison.setPlaceholderText(self.tr("e.g. None, or prior study date"))
        self.notes = QLineEdit()
        self.notes.setPlaceholderText(self.tr("free notes for the generator"))
        form.addRow(self.tr("Indication"), self.indication)
        form.addRow(self.tr("Comparison"), self.comparison)
        form.addRow(self.tr("Notes"), self.notes)
        self.backend = QComboBox()
        self.backend.addItem(self.tr("Bundled model (offline)"), "bundled")
        self.backend.addItem(self.tr("OpenAI-compatible server"), "openai")
        form.addRow(self.tr("Backend"), self.backend)
        self.url = QLineEdit(os.environ.get("HILUM_OPENAI_URL", ""))
        self.url.setPlaceholderText("http://127.0.0.1:8000/v1")
        self.model_name = QLineEdit(os.environ.get("HILUM_OPENAI_MODEL", ""))
        self.url_label = QLabel(self.tr("Server URL"))
        self.model_label = QLabel(self.tr("Model"))
        form.addRow(self.url_label, self.url)
        form.addRow(self.model_label, self.model_name)
        from PySide6.QtWidgets import QCheckBox

        from app.gui.settings import load_settings

        self.insecure_http = QCheckBox(self.tr("Allow plain http:// to another computer"))
        self.insecure_http.setChecked(load_settings().allow_insecure_http)
        self.insecure_warning = QLabel(
            self.tr(
                "Warning: patient data will cross the network unencrypted. "
                "Use https:// unless the network is trusted."
            )
        )
        self.insecure_warning.setWordWrap(True)
        self.insecure_warning.setStyleSheet("color:#c62828;font-weight:bold;")
        self.insecure_warning.setVisible(self.insecure_http.isChecked())
        self.insecure_http.toggled.connect(self._insecure_toggled)
        form.addRow("", self.insecure_http)
        form.addRow("", self.insecure_warning)
        lay.addLayout(form)
        self.findings_label = QLabel(
            self.tr("AI findings: none (run the AI panel, or the draft is conditioned as normal)")
        )
        self.findings_label.setWordWrap(True)
        lay.addWidget(self.findings_label)

        row = QHBoxLayout()
        self.draft_button = QPushButton(self.tr("Draft"))
        self.stop_button = QPushButton(self.tr("Stop"))
        self.regen_button = QPushButton(self.tr("Regenerate"))
        for b in (self.draft_button, self.stop_button, self.regen_button):
            row.addWidget(b)
        lay.addLayout(row)
        prow = QHBoxLayout()
        self.phrases = QComboBox()
        self.phrases.addItems(STANDARD_PHRASES)
        self.insert_button = QPushButton(self.tr("Insert"))
        prow.addWidget(self.phrases, 1)
        prow.addWidget(self.insert_button)
        lay.addLayout(prow)

        self.editor = QTextEdit()
        self.editor.setAcceptRichText(False)
        self.editor.setPlaceholderText(self.tr("FINDINGS:\n\nIMPRESSION:"))
        lay.addWidget(self.editor, 1)
        # sentence-level evidence (issue 16): the AI finding(s) behind the sentence at the cursor
        self.evidence_label = QLabel("")
        self.evidence_label.setObjectName("reportEvidence")
        self.evidence_label.setWordWrap(True)
        lay.addWidget(self.evidence_label)
        self.evidence: list[dict[str, Any]] = []
        self._image_series: dict[str, str] = {}  # SOP Instance UID -> series (sentence evidence)
        self.result_pairs: list[tuple[ModelResult, str]] = []
        self.state = QLabel("")
        self.state.setObjectName("reportState")
        self.state.setWordWrap(True)
        lay.addWidget(self.state)
        #: signed state: reader and local time; the text is read-only until Amend
        srow = QHBoxLayout()
        self.signed_label = QLabel("")
        self.signed_label.setObjectName("reportSigned")
        self.signed_label.setWordWrap(True)
        self.signed_label.setStyleSheet(
            "background:#1e4d2b;color:#e8f5e9;font-weight:bold;padding:4px;"
        )
        self.amend_button = QPushButton(self.tr("Amend"))
        self.amend_button.setObjectName("reportAmend")
        self.amend_button.setToolTip(self.tr("Unlock the signed report for a new, amended version"))
        self.amend_button.clicked.connect(self.amend)
        srow.addWidget(self.signed_label, 1)
        srow.addWidget(self.amend_button)
        lay.addLayout(srow)
        self.signed_label.hide()
        self.amend_button.hide()
        #: the signed-off draft shown (None while the report is open for editing)
        self.signed: ReportDraft | None = None
        #: version of the report: 1, then +1 for every amendment after a sign-off
        self.version = 1

        self.autosave = QTimer(self)
        self.autosave.setSingleShot(True)
        self.autosave.setInterval(800)
        self.autosave.timeout.connect(self.save_now)

        self.draft_button.clicked.connect(self.start_draft)
        self.regen_button.clicked.connect(self.regenerate)
        self.stop_button.clicked.connect(self.stop)
        self.insert_button.clicked.connect(self.insert_phrase)
        self.backend.currentIndexChanged.connect(self._update)
        self.editor.textChanged.connect(self._text_changed)
        self.editor.cursorPositionChanged.connect(self.show_evidence)
        for field in (self.indication, self.comparison, self.notes):
            field.textEdited.connect(lambda _t: self.autosave.start())
        self._update()

    # -- state ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def _update(self) -> None:
        remote = self.backend.currentData() == "openai"
        # the server fields only mean something for the OpenAI-compatible backend
        for w in (self.url, self.model_name, self.url_label, self.model_label, self.insecure_http):
            w.setVisible(remote)
        self.insecure_warning.setVisible(remote and self.insecure_http.isChecked())
        if self.signed is not None:
            self.draft_button.setEnabled(False)
            self.regen_button.setEnabled(False)
            self.stop_button.setEnabled(False)
            self.insert_button.setEnabled(False)
            self.state.setText("")  # the signed banner says it all
            return
        self.insert_button.setEnabled(True)
        self.draft_button.setEnabled(not self.running)
        self.regen_button.setEnabled(not self.running and bool(self.editor.toPlainText().strip()))
        self.stop_button.setEnabled(self.running)
        if self.running:
            self.state.setText(self.tr("Drafting ..."))
        elif getattr(self, "last_error", ""):
            self.state.setText(self.last_error)  # the failed draft's reason stays visible
        elif self.ai_generated and not self.edited:
            self.state.setText(
                self.tr("AI-written text is highlighted: review and edit it before sign-off.")
            )
        elif self.edited:
            self.state.setText(
                self.tr("Edited by the radiologist; sentences still highlighted are AI-written.")
            )

    def _insecure_toggled(self, on: bool) -> None:
        from app.gui.settings import load_settings, save_settings

        self.insecure_warning.setVisible(on and self.backend.currentData() == "openai")
        settings = load_settings()
        settings.allow_insecure_http = on
        save_settings(settings)

    def set_study(self, study_uid: str) -> None:
        """Switch to another study: save the current draft, load the new one's autosave."""
        study_uid = study_uid or ""
        if study_uid == self.study_uid:
            return
        if self.running:
            self.stop()
        if self.study_uid:
            self.save_now()
        self.study_uid = study_uid
        self.session = self.sessions.get(study_uid) if study_uid else None
        if (
            self.session is not None
        ):  # a view of the session: a new analysis run updates the findings
            self._bind(self.session)
        self._set_signed(None)
        self.version = 1
        self.model_results = self.session.model_results() if self.session is not None else []
        self._show_findings()
        self._set_text("", ai=False)
        self.ai_generated = self.edited = False
        self.provenance = {}
        for f in (self.indication, self.comparison, self.notes):
            f.clear()
        if study_uid:
            doc = load_draft_file(study_uid)
            if doc is not None:
                self._restore(doc)
            self._load_stored_results(study_uid)
        self._update()

    def set_series(self, series: Any) -> None:
        self.series = series
        uid = str(getattr(series, "study_uid", "") or "") if series is not None else ""
        if uid:
            self.set_study(uid)
            self.sessions.for_series(series)  # the series' files join the study's session

    def sentence_at_cursor(self) -> str:
        """The sentence of the editor text under the cursor."""
        import re as _re

        text = self.editor.toPlainText()
        pos = self.editor.textCursor().position()
        starts = [0] + [
            m.end() for m in _re.finditer(r"[.!?](?=\s)|\n|(?:FINDINGS|IMPRESSION)\s*:", text)
        ]
        start = max(p for p in starts if p <= pos) if starts else 0
        m = _re.search(r"[.!?](?=\s|$)|\n", text[pos:])
        end = pos + m.end() if m else len(text)
        return text[start:end].strip()

    def show_evidence(self) -> None:
        """Show the AI finding(s) behind the sentence at the cursor, and its overlay when the
        saliency panel can compute it (pure text work: no I/O on the GUI thread)."""
        sentence = self.sentence_at_cursor()
        if not sentence or not self.result_pairs:
            self.evidence_label.setText("")
            return
        from app.reporting.signoff import sentence_evidence  # first used here, not at start-up

        ev = sentence_evidence(sentence, self.result_pairs)
        links = [f for e in ev for f in e["findings"]]
        if not links:
            self.evidence_label.setText(self.tr("Evidence: no AI result concerns this sentence."))
            return
        parts = []
        for f in links:
            note = f"{f['model_id']} \u00b7 {f['label']} p={f['probability']:.2f} (threshold {f['threshold']:.2f})"
            if str(f.get("reliability", "")).startswith("outside"):
                note += " \u00b7 outside intended use"
            parts.append(note)
        self.evidence_label.setText(
            self.tr("Evidence: %1").replace("%1", "; ".join(dict.fromkeys(parts)))
        )
        self._show_overlay(links[0])

    def _show_overlay(self, link: dict[str, Any]) -> None:
        """Show this finding's overlay on the finding's own image (the SOP instance its evidence
        names), not on whichever image is on screen: that image is brought on screen first (a
        viewport showing its series, a series the browser holds, or its series from the library
        on a worker), then the saliency panel computes the finding's map there (worker)."""
        panels = getattr(self.main_window, "panels", None) or {}
        dock = panels.get("saliency") if isinstance(panels, dict) else None
        sal = dock.widget() if dock is not None else None
        if sal is None or not hasattr(sal, "model"):
            return
        model_id, label = str(link["model_id"]), str(link["label"])
        idx = sal.model.findData(model_id)
        if idx >= 0:
            sal.model.setCurrentIndex(idx)
        if hasattr(sal, "label"):
            if sal.label.findText(label) < 0:
                sal.label.addItem(label)  # kept selected when the maps arrive (SaliencyPanel._done)
            sal.label.setCurrentText(label)

        def compute() -> None:
            if getattr(sal, "result", None) is not None and sal.result.get("model_id") != model_id:
                sal.result = None  # maps of another model: this finding's are computed anew
            if hasattr(sal, "enabled") and not sal.enabled.isChecked():
                sal.enabled.setChecked(True)  # computes the map for the image now on screen
            elif getattr(sal, "result", None) is None and getattr(sal, "worker", None) is None:
                sal.compute()
            else:
                sal.render()

        sop = str(link.get("sop_uid") or "")
        if not sop:  # results without image identity (a bare list): the image on screen
            compute()
            return
        self.show_image(sop, then=compute)

    def _series_of(self, sop_uid: str) -> str:
        """The series UID of an analysed image (from the results given or the study's session)."""
        if sop_uid in self._image_series:
            return self._image_series[sop_uid]
        images = self.session.images() if self.session is not None else []
        return next((i.series_uid for i in images if i.sop_uid == sop_uid and i.series_uid), "")

    def show_image(self, sop_uid: str, frame: int = 0, then: Any = None) -> None:
        """Bring the image ``sop_uid`` on screen in the main window, then call ``then()``.

        The image on screen, a viewport showing its series, a series the browser holds, or else
        its series from the library (loaded on a worker: ``then`` runs when it is shown). When the
        image cannot be found, the evidence line says so and ``then`` is not called (a map of
        another image would be shown as this finding's)."""
        mw = self.main_window
        if mw is None or not hasattr(mw, "current_image"):
            return
        cur = mw.current_image()
        done = then or (lambda: None)
        if cur is not None and cur.sop_uid == sop_uid and int(cur.frame) == frame:
            done()
            return
        grid = getattr(mw, "grid", None)
        for vp in list(grid.visible) if grid is not None else []:
            j = vp.series.index_of_sop(sop_uid, frame) if vp.series is not None else None
            if j is not None:
                vp.activated.emit(vp)  # the main window makes it the active viewport
                vp.set_index(j)
                done()
                return
        browser = getattr(mw, "browser", None)

        def show(stacks: list[Any]) -> bool:
            for s in stacks:
                j = s.index_of_sop(sop_uid, frame)
                if j is not None:
                    mw.show_series(s)
                    mw.active_viewport().set_index(j)
                    done()
                    return True
            return False

        if show(list(getattr(browser, "series_data", {}).values())):
            return
        series_uid = self._series_of(sop_uid)
        if not series_uid or not hasattr(mw, "run_in_background"):
            self.evidence_label.setText(
                self.evidence_label.text() + " " + self.tr("(its image is not open)")
            )
            return
        from app.gui.loader import open_library_series

        def loaded(stacks: list[Any]) -> None:
            for s in stacks:
                if browser is not None:
                    browser.add_series(s)
            if not show(stacks):
                self.evidence_label.setText(
                    self.evidence_label.text() + " " + self.tr("(its image is not in the library)")
                )

        settings = getattr(mw, "settings", None)
        kwargs = (
            {}
            if settings is None
            else {
                "cache_bytes": settings.cache_mb * 1024 * 1024,
                "thumb_size": settings.thumbnail_size,
            }
        )
        mw.run_in_background(open_library_series, series_uid, on_result=loaded, **kwargs)

    def _bind(self, session: Any) -> None:
        """Follow the session's events through its Qt bridge (GUI thread): a new analysis run
        updates the findings; a sign-off (Export dialog, demo; on a worker) shows the signed state."""
        bridge = self.sessions.bridge(session)
        if id(bridge) not in self._bound:
            self._bound.add(id(bridge))
            bridge.run.connect(self._on_run)
            bridge.signed_off.connect(self._show_signed)

    def _on_run(self, run: Any) -> None:
        """The study's session has a new analysis run (from any panel or a stored one)."""
        if self.session is not None and any(
            i.study_uid in ("", self.study_uid) for i in run.images
        ):
            results = self.session.model_results()
            if results:
                self.model_results = results
                self._show_findings()

    def set_results(self, doc: dict[str, Any]) -> None:
        """Classifier results (``results.json`` shape) to condition the next draft on; a run the
        study's session does not hold yet is adopted by it."""
        from app.reporting.generator.conditioning import results_from_doc
        from app.reporting.signoff import results_with_images

        results = results_from_doc(doc) if isinstance(doc, dict) else []
        if not results:
            return
        self.result_pairs = results_with_images(doc)  # sentence evidence (model, p, image)
        self._image_series.update(
            {
                str(im.get("sop_uid", "")): str(im.get("series_uid", ""))
                for im in doc.get("images", []) or []
                if isinstance(im, dict) and im.get("sop_uid") and im.get("series_uid")
            }
        )
        if self.session is not None and results != self.session.model_results()[-len(results) :]:
            from app.core.errors import ResultsFormatError

            try:
                run = AnalysisRun.from_json(doc)
                series = next((i.series_uid for i in run.images if i.series_uid), "")
                self.session.set_run(run, series)
            except ResultsFormatError:
                log.warning("AI results in an unexpected shape; not used for the draft")
        self.model_results = results
        self._show_findings()

    def _show_findings(self) -> None:
        pos: list[str] = []
        neg: list[str] = []
        for r in self.model_results:
            for lr in r.labels:
                (pos if lr.positive else neg).append(f"{lr.label} {lr.probability:.3f}")
        if not self.model_results:
            self.findings_label.setText(
                self.tr(
                    "AI findings: none (run the AI panel, or the draft is conditioned as normal)"
                )
            )
        else:
            text = self.tr("AI findings: %1").replace(
                "%1", ", ".join(pos) or self.tr("none above threshold")
            )
            if neg:
                text += self.tr("; below threshold: %1").replace("%1", ", ".join(neg))
            self.findings_label.setText(text)

    def _load_stored_results(self, study_uid: str) -> None:
        session = self.session
        if session is None:
            return

        def done(loaded: Any) -> None:
            results = loaded.model_results()
            if loaded is not self.session or self.model_results or not results:
                return
            self.model_results = results
            self._show_findings()

        try:
            from app.gui.workers import run_in_background

            run_in_background(
                _load_session,
                session,
                self.sessions.library,
                on_result=done,
                on_error=lambda e: log.debug("stored results not loaded: %s", type(e).__name__),
            )
        except Exception as exc:  # noqa: BLE001 - drafting works without stored results
            log.debug("stored results not loaded: %s", type(exc).__name__)

    # -- editor ---------------------------------------------------------------------------------
    def _ai_format(self, ai: bool) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setBackground(self.ai_color() if ai else QColor(0, 0, 0, 0))
        fmt.setProperty(QTextCharFormat.Property.UserProperty, bool(ai))
        return fmt

    def ai_color(self) -> QColor:
        """The AI-text background for the editor's palette (dark theme: deep amber)."""
        base = self.editor.palette().color(self.editor.backgroundRole())
        return AI_COLOR_DARK if base.lightness() < 128 else AI_COLOR_LIGHT

    def is_ai_marked(self, pos: int) -> bool:
        """Whether the character at ``pos`` is still marked as AI-written."""
        cur = QTextCursor(self.editor.document())
        cur.setPosition(pos)
        cur.setPosition(pos + 1, QTextCursor.MoveMode.KeepAnchor)
        return bool(cur.charFormat().property(QTextCharFormat.Property.UserProperty))

    def _unmark_sentence(self, pos: int) -> None:
        """The radiologist edited the sentence at ``pos``: it is theirs now (others stay marked)."""
        start, end = sentence_bounds(self.editor.toPlainText(), pos)
        if end <= start:
            return
        self._programmatic = True
        try:
            cur = QTextCursor(self.editor.document())
            cur.setPosition(start)
            cur.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            cur.setCharFormat(self._ai_format(False))
        finally:
            self._programmatic = False

    def _set_text(self, text: str, ai: bool) -> None:
        doc = self.editor.document()
        if not text and doc.isEmpty() and not doc.isUndoAvailable() and not doc.isRedoAvailable():
            # already empty, with no history that could bring another study's text back: clearing
            # costs a relayout (~60 ms at start-up) for nothing; the typing format is reset as
            # clear() would (no AI mark carried over)
            self.editor.setCurrentCharFormat(QTextCharFormat())
            return
        self._programmatic = True
        try:
            self.editor.clear()
            if text:
                cur = self.editor.textCursor()
                cur.insertText(text, self._ai_format(ai))
        finally:
            self._programmatic = False

    def _append(self, chunk: str) -> None:
        self._programmatic = True
        try:
            cur = self.editor.textCursor()
            cur.movePosition(QTextCursor.MoveOperation.End)
            cur.insertText(chunk, self._ai_format(True))
            self.editor.setTextCursor(cur)
        finally:
            self._programmatic = False

    def _clear_marks(self) -> None:
        self._programmatic = True
        try:
            cur = QTextCursor(self.editor.document())
            cur.select(QTextCursor.SelectionType.Document)
            cur.setCharFormat(self._ai_format(False))
        finally:
            self._programmatic = False

    def _text_changed(self) -> None:
        if self._programmatic:
            return
        self.last_error = ""
        if self.ai_generated and not self.running:
            self.edited = True
            # only the sentence being edited becomes the radiologist's; the rest stays marked
            self._unmark_sentence(max(self.editor.textCursor().position() - 1, 0))
        self.autosave.start()
        self.draft_changed.emit()
        self._update()

    def insert_phrase(self) -> None:
        phrase = self.phrases.currentText()
        cur = self.editor.textCursor()
        text = (
            phrase
            if not cur.position()
            or self.editor.toPlainText()[cur.position() - 1 : cur.position()] in " \n"
            else " " + phrase
        )
        cur.insertText(text, self._ai_format(False))  # typed by the user: counts as an edit
        self.editor.setFocus()

    # -- drafting -------------------------------------------------------------------------------
    def _session(self) -> Any:
        if self.session is None:
            self.session = self.sessions.get(self.study_uid)
            self._bind(self.session)
        return self.session

    # -- sign-off -------------------------------------------------------------------------------
    def _set_signed(self, draft: ReportDraft | None) -> None:
        self.signed = draft if draft is not None and draft.signed_off else None
        signed = self.signed
        locked = signed is not None
        self.editor.setReadOnly(locked)
        for f in (self.indication, self.comparison, self.notes):
            f.setReadOnly(locked)
        self.signed_label.setVisible(locked)
        self.amend_button.setVisible(locked)
        if signed is not None and signed.reader_name == BATCH_READER:
            self.signed_label.setText(
                self.tr(
                    "Exported unattended on %1 (version %2): NOT reviewed by a "
                    "physician. Read-only: Amend to change it."
                )
                .replace("%1", local_time(signed.signed_off_at))
                .replace("%2", str(self.version))
            )
        elif signed is not None:
            self.signed_label.setText(
                self.tr("Signed off by %1 on %2 (version %3). Read-only: Amend to change it.")
                .replace("%1", signed.reader_name)
                .replace("%2", local_time(signed.signed_off_at))
                .replace("%3", str(self.version))
            )
        self._update()

    def _show_signed(self, draft: Any) -> None:
        """The study's report was signed off (Export dialog or demo): show it, store it."""
        if (
            not isinstance(draft, ReportDraft)
            or draft.study_uid not in ("", self.study_uid)
            or not draft.signed_off
        ):
            return
        self._set_signed(draft)
        self.save_now()

    def amend(self) -> None:
        """Reopen a signed report as a new version; the signed one stays stored beside it."""
        if self.signed is None:
            return
        previous = self.signed
        self.amends = [*getattr(self, "amends", []), previous.to_dict()]
        self.version += 1
        self._set_signed(None)
        unsigned = dataclasses.replace(previous, reader_name="", signed_off_at="")
        if self.session is not None:
            self.session.set_draft(unsigned)
        self.state.setText(
            self.tr("Amending: version %1; the signed version %2 is kept.")
            .replace("%1", str(self.version))
            .replace("%2", str(self.version - 1))
        )
        self.save_now()

    def _texts(self) -> tuple[str, str, str]:
        return (self.indication.text(), self.comparison.text(), self.notes.text())

    def conditioning(self) -> Any:
        """What the next draft is conditioned on (the session's; reads the header: call on a
        worker, as drafting does)."""
        if self.session is None:
            self.session = self.sessions.get(self.study_uid)
        return self.session.conditioning(
            self.indication.text(), self.comparison.text(), self.notes.text()
        )

    def start_draft(self) -> None:
        if self.running:
            return
        backend = self.backend.currentData()
        options: dict[str, Any] = {}
        if backend == "openai":
            url, model = self.url.text().strip(), self.model_name.text().strip()
            if not url or not model:
                QMessageBox.warning(
                    self,
                    self.tr("Report"),
                    self.tr("Enter the server URL and the model name first."),
                )
                return
            self.last_error = ""
            options = {
                "url": url,
                "model": model,
                "allow_insecure_http": self.insecure_http.isChecked(),
            }
            frames = getattr(self.series, "frames", None) or []
            header_paths = [f.path for f in frames if getattr(f, "path", "")][:50]
            from app.gui.workers import run_in_background

            # build the exact prompt off the GUI thread, then show it before anything is sent
            self.state.setText(self.tr("Preparing the de-identified prompt ..."))
            self._prep_worker = run_in_background(
                prepare_remote_prompt,
                self._session(),
                self._texts(),
                header_paths,
                options,
                on_result=lambda res: self._confirm_prompt(res[0], options, *res[1:]),
                on_error=self._failed,
                on_finished=self._prepared,
            )
            return
        self._start_generation(backend, None, options)  # conditioned by the session, on the worker

    def _prepared(self) -> None:
        self._prep_worker = None

    def _confirm_prompt(
        self, cond: Any, options: dict[str, Any], sent: str, identifiers: frozenset[str]
    ) -> None:
        """Show the exact prompt; generation starts only when the user confirms it."""
        box = QMessageBox(self)
        box.setWindowTitle(self.tr("Send to the generation server?"))
        box.setIcon(QMessageBox.Icon.Warning)
        box.setText(
            self.tr(
                "This de-identified prompt will be sent to %1. Patient data leaves this "
                "workstation. Check it before sending."
            ).replace("%1", options["url"].split("@")[-1])
        )
        box.setDetailedText(sent)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        self.prompt_preview = box  # tests read the shown prompt here
        if box.exec() != QMessageBox.StandardButton.Yes:
            self.state.setText(self.tr("Nothing was sent."))
            return
        self._start_generation("openai", cond, {**options, "identifiers": identifiers})

    def _start_generation(self, backend: str, cond: Any, options: dict[str, Any]) -> None:
        self.last_error = ""
        # what was there before: restored when the backend fails (no text means no draft)
        self._previous = (
            self.editor.toPlainText(),
            self.ai_generated,
            self.edited,
            dict(self.provenance),
        )
        self._set_text("", ai=True)
        self.ai_generated, self.edited = True, False
        self.provenance = {}
        from app.gui.workers import run_in_background

        self.worker = run_in_background(
            _generate,
            self._session(),
            self._texts(),
            cond,
            backend,
            options,
            on_item=self._append,
            on_result=self._generated,
            on_error=self._failed,
            on_finished=self._finished,
        )
        self._update()

    def regenerate(self) -> None:
        if (
            self.edited
            and QMessageBox.question(
                self, self.tr("Regenerate"), self.tr("Replace your edited text with a new draft?")
            )
            != QMessageBox.StandardButton.Yes
        ):
            return
        self.start_draft()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _generated(self, prov: dict[str, Any]) -> None:
        self._previous = None
        self.provenance = prov or {}
        self.state.setText(
            self.tr("Drafted by %1 on %2.")
            .replace("%1", str(self.provenance.get("model_id", "?")))
            .replace("%2", str(self.provenance.get("provider", "?")))
        )

    def _failed(self, exc: BaseException) -> None:
        from app.gui.errors import user_message

        previous = self._previous
        if previous is not None:  # keep the previous text: a failed draft writes nothing
            text, ai, edited, prov = previous
            self._set_text(text, ai=ai and not edited)
            self.ai_generated, self.edited, self.provenance = ai, edited, prov
            self._previous = None
        self.last_error = user_message(exc)
        self.state.setText(self.last_error)

    def _finished(self) -> None:
        self.worker = None
        self.save_now()
        self._update()

    # -- persistence ----------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        draft = self.current_draft()
        doc = draft.to_dict()
        doc.update(
            {
                "text": self.editor.toPlainText(),
                "notes": self.notes.text(),
                "edited": self.edited,
                "backend": self.backend.currentData(),
                "version": self.version,
                "amends": list(getattr(self, "amends", [])),
                "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
        )
        return doc

    def _restore(self, doc: dict[str, Any]) -> None:
        self.indication.setText(doc.get("indication", ""))
        self.comparison.setText(doc.get("comparison", ""))
        self.notes.setText(doc.get("notes", ""))
        self.ai_generated = bool(doc.get("ai_generated", False))
        self.edited = bool(doc.get("edited", False))
        self.provenance = doc.get("generator", {}) or {}
        self._set_text(doc.get("text", ""), ai=self.ai_generated and not self.edited)
        self.version = int(doc.get("version", 1) or 1)
        self.amends = list(doc.get("amends", []) or [])
        if doc.get("reader_name") and doc.get("signed_off_at"):
            try:
                self._set_signed(ReportDraft.from_dict(doc))
            except Exception as exc:  # noqa: BLE001 - a broken stored sign-off: shown unsigned
                log.warning("stored sign-off unreadable: %s", type(exc).__name__)

    def save_now(self) -> None:
        """Autosave the current study's draft (file + library) off the GUI thread."""
        self.autosave.stop()
        if not self.study_uid:
            return
        doc = self.document()
        uid = self.study_uid

        def write(progress: Any = None) -> None:
            save_draft_file(uid, doc)
            try:
                lib = (
                    self.main_window.library()
                    if self.main_window is not None and hasattr(self.main_window, "library")
                    else None
                )
                if lib is not None:
                    lib.store_draft(ReportDraft.from_dict(doc))
            except Exception as exc:  # noqa: BLE001 - the file autosave is the one that matters
                log.debug("draft not stored in the library: %s", type(exc).__name__)

        try:
            from app.gui.workers import run_in_background

            run_in_background(
                write,
                on_error=lambda e: self.state.setText(
                    self.tr("Draft not saved: %1").replace("%1", type(e).__name__)
                ),
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("draft autosave failed: %s", type(exc).__name__)

    def current_draft(self) -> ReportDraft:
        """The editor's text as a :class:`ReportDraft` (for the export panel); the study's
        session adopts it (its draft is what the export signs off)."""
        from app.reporting.generator.stream import split_sections

        if self.signed is not None:
            return self.signed  # what was signed, exactly (read-only until Amend)
        findings, impression = split_sections(self.editor.toPlainText())
        draft = ReportDraft(
            study_uid=self.study_uid,
            indication=self.indication.text(),
            comparison=self.comparison.text(),
            findings=findings,
            impression=impression,
            ai_generated=self.ai_generated and not self.edited,
            generator=dict(self.provenance),
        )
        if self.session is not None and self.session.draft != draft:
            self.session.set_draft(draft)
        return draft


def create_panel(main_window: Any) -> QDockWidget:
    """The Report dock (see the module docstring)."""
    dock = QDockWidget(QCoreApplication.translate("ReportPanel", "Report"), main_window)
    dock.setObjectName("panel_report")
    panel = ReportPanel(main_window, dock)
    dock.setWidget(panel)
    for name, slot in (("study_changed", panel.set_study), ("series_changed", panel.set_series)):
        signal = getattr(main_window, name, None)
        if signal is not None and hasattr(signal, "connect"):
            signal.connect(slot)
    # the AI panel's results (created before this one: PANEL_MODULES order)
    try:
        from app.gui.panels.ai import AIPanel

        for ai in main_window.findChildren(AIPanel):
            ai.results_ready.connect(panel.set_results)
    except Exception as exc:  # noqa: BLE001 - drafting still works (conditioned as normal)
        log.debug("report panel not connected to the AI panel: %s", type(exc).__name__)
    return dock
