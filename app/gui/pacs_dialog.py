"""PACS in the GUI: the Query/Retrieve dialog and the background storage listener.

:func:`install` is the one hook the main window calls: it adds *File ▸ PACS Query/Retrieve…* and,
when the setting is on (``hilum pacs config --listen-in-gui on`` or the dialog's checkbox), runs
Hilum's storage listener while the window is open; what arrives is listed in the study browser.

All networking runs on workers (:mod:`app.gui.workers`); the GUI thread only shows results. The
first image of a retrieving series is shown as soon as its first instance is in the library, and
the rest streams in (the shown series is refreshed from the library every 1.5 s, keeping
the displayed slice, and once more when the retrieve ends).
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.errors import user_message
from app.gui.workers import Worker, run_in_background

log = logging.getLogger(__name__)

ROLE_STUDY = Qt.ItemDataRole.UserRole + 1
ROLE_SERIES = Qt.ItemDataRole.UserRole + 2


# -- plain functions run on workers ------------------------------------------------------------------
def _find(node_name: str, filters: dict[str, Any], series_of: str | None, *, progress: Any) -> Any:
    from app.net import pacs

    node, local = pacs.load(node_name)
    return pacs.find(node, local, series_of=series_of, progress=progress, **filters)


def _echo(node_name: str, *, progress: Any) -> float:
    from app.net import pacs

    node, local = pacs.load(node_name)
    return pacs.echo(node, local)


def _retrieve(
    node_name: str,
    study_uid: str,
    series: list[str],
    method: str,
    library: Any,
    *,
    progress: Any,
    emit: Any,
) -> Any:
    from app.net import pacs

    node, local = pacs.load(node_name)
    return pacs.retrieve(
        node,
        local,
        study_uid,
        series,
        method=method,
        library=library,
        progress=progress,
        on_series=lambda info: emit(("series", info)),
    )


class QueryRetrieveDialog(QDialog):
    """Node picker, search fields, study/series results and Retrieve with progress and cancel.

    Parameters
    ----------
    window : MainWindow, optional
        Where retrieved series are shown (``open_library_series``) and listed (``refresh_library``).
    """

    retrieved = Signal(object)  # RetrieveReport

    def __init__(self, window: Any = None, parent: QWidget | None = None) -> None:
        """Long because it builds the dialog's widget tree."""
        super().__init__(parent or window)
        self.main_window = window
        self.setWindowTitle(self.tr("PACS Query/Retrieve"))
        self.resize(900, 560)
        self._worker: Worker | None = None
        self._shown_first = False
        self._opened_series = ""
        self._streamed_at = 0.0
        self.last_report: Any = None
        self.last_error = ""
        self.first_shown_at: float | None = None  # perf_counter when the first series was shown
        self.done_at: float | None = None

        self.node = QComboBox()
        self.echo_button = QPushButton(self.tr("Echo"))
        self.echo_button.clicked.connect(self.echo)
        top = QHBoxLayout()
        top.addWidget(QLabel(self.tr("PACS node:")))
        top.addWidget(self.node, 1)
        top.addWidget(self.echo_button)

        self.patient_id = QLineEdit()
        self.patient_name = QLineEdit()
        self.patient_name.setPlaceholderText("DOE*")
        self.study_date = QLineEdit()
        self.study_date.setPlaceholderText("20240101-20241231")
        self.modality = QLineEdit()
        self.modality.setPlaceholderText("CT")
        self.accession = QLineEdit()
        form = QFormLayout()
        form.addRow(self.tr("Patient ID"), self.patient_id)
        form.addRow(self.tr("Patient name"), self.patient_name)
        form.addRow(self.tr("Study date"), self.study_date)
        form.addRow(self.tr("Modality"), self.modality)
        form.addRow(self.tr("Accession"), self.accession)
        self.search_button = QPushButton(self.tr("Search"))
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        for edit in (
            self.patient_id,
            self.patient_name,
            self.study_date,
            self.modality,
            self.accession,
        ):
            edit.returnPressed.connect(self.search)

        self.results = QTreeWidget()
        self.results.setColumnCount(6)
        self.results.setHeaderLabels(
            [
                self.tr("Patient"),
                self.tr("Patient ID"),
                self.tr("Date"),
                self.tr("Description"),
                self.tr("Modality"),
                self.tr("Images"),
            ]
        )
        self.results.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.results.itemExpanded.connect(self._expanded)

        self.method = QComboBox()
        self.method.addItem("C-GET", "get")
        self.method.addItem("C-MOVE", "move")
        self.method.addItem("WADO-RS", "wado")
        self.retrieve_button = QPushButton(self.tr("Retrieve"))
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.progress.hide()
        self.listen = QCheckBox(self.tr("Receive from PACS in the background while Hilum is open"))
        self.listen.toggled.connect(self._listen_toggled)
        self.status = QLabel()
        self.status.setWordWrap(True)

        bottom = QHBoxLayout()
        bottom.addWidget(QLabel(self.tr("Method:")))
        bottom.addWidget(self.method)
        bottom.addWidget(self.retrieve_button)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.progress, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addWidget(self.search_button, alignment=Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.results, 1)
        layout.addLayout(bottom)
        layout.addWidget(self.listen)
        layout.addWidget(self.status)
        layout.addWidget(close)
        self.reload_nodes()

    # -- nodes -----------------------------------------------------------------------------------------
    def reload_nodes(self) -> None:
        """Fill the node picker from the nodes file (small local file: read here)."""
        from app.net.nodes import NodeStore

        self.node.clear()
        try:
            store = NodeStore.load()
        except Exception as exc:  # noqa: BLE001 - shown, never raised into Qt
            self._say(user_message(exc))
            return
        for name, node in store.nodes.items():
            self.node.addItem(node.describe(), name)
        self.listen.blockSignals(True)
        self.listen.setChecked(store.local.listen_in_gui)
        self.listen.blockSignals(False)
        if not store.nodes:
            self._say(
                self.tr(
                    "No PACS node yet: add one with `hilum pacs add NAME --host H "
                    "--port P --ae-title AE`."
                )
            )

    def node_name(self) -> str:
        """The chosen node's name."""
        return str(self.node.currentData() or "")

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _failed(self, exc: BaseException) -> None:
        self.last_error = user_message(exc)
        self._say(self.last_error)
        self._idle()

    def _busy(self) -> None:
        for w in (self.search_button, self.retrieve_button, self.echo_button):
            w.setEnabled(False)

    def _idle(self) -> None:
        for w in (self.search_button, self.retrieve_button, self.echo_button):
            w.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self._worker = None

    # -- echo / search ---------------------------------------------------------------------------------
    def echo(self) -> Worker | None:
        """C-ECHO the chosen node."""
        if not self.node_name():
            return None
        self._busy()
        self._worker = run_in_background(
            _echo,
            self.node_name(),
            on_error=self._failed,
            on_result=self._echoed,
        )
        return self._worker

    def filters(self) -> dict[str, str]:
        """The search fields as :func:`app.net.pacs.find` keywords."""
        return {
            "patient_id": self.patient_id.text().strip(),
            "patient_name": self.patient_name.text().strip(),
            "study_date": self.study_date.text().strip(),
            "modality": self.modality.text().strip().upper(),
            "accession": self.accession.text().strip(),
        }

    def search(self) -> Worker | None:
        """Study-level query with the search fields."""
        if not self.node_name():
            return None
        self._busy()
        self._say(self.tr("Searching…"))
        self._worker = run_in_background(
            _find,
            self.node_name(),
            self.filters(),
            None,
            on_result=self._found,
            on_error=self._failed,
        )
        return self._worker

    def _found(self, result: Any) -> None:
        self.results.clear()
        for st in result.studies:
            item = QTreeWidgetItem(
                [
                    st.patient_name,
                    st.patient_id,
                    st.study_date,
                    st.description,
                    "/".join(st.modalities),
                    "" if st.instances is None else str(st.instances),
                ]
            )
            item.setData(0, ROLE_STUDY, st.study_uid)
            item.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
            self.results.addTopLevelItem(item)
        self._say(self.tr("%1 stud(ies) found").replace("%1", str(len(result.studies))))
        self._idle()

    def _expanded(self, item: QTreeWidgetItem) -> None:
        """Series level, queried when a study is opened."""
        if item.parent() is not None or item.childCount():
            return
        study_uid = str(item.data(0, ROLE_STUDY))
        run_in_background(
            _find,
            self.node_name(),
            {},
            study_uid,
            on_error=self._failed,
            on_result=lambda res: self._series_found(item, res),
        )

    def _series_found(self, item: QTreeWidgetItem, result: Any) -> None:
        for st in result.studies:
            for se in st.series:
                child = QTreeWidgetItem(
                    [
                        "",
                        "",
                        "",
                        se.description,
                        se.modality,
                        "" if se.instances is None else str(se.instances),
                    ]
                )
                child.setData(0, ROLE_STUDY, st.study_uid)
                child.setData(0, ROLE_SERIES, se.series_uid)
                item.addChild(child)
        if not item.childCount():
            item.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.DontShowIndicator)

    def _echoed(self, ms: float) -> None:
        self._say(self.tr("Echo OK in %1 ms").replace("%1", f"{ms:.0f}"))
        self._idle()

    # -- retrieve ------------------------------------------------------------------------------------------
    def selection(self) -> tuple[str, list[str]] | None:
        """(study UID, [series UIDs] or [] for the whole study) of the selection."""
        current = self.results.currentItem()
        items = self.results.selectedItems() or ([current] if current is not None else [])
        if not items:
            return None
        study = str(items[0].data(0, ROLE_STUDY))
        series = [
            str(i.data(0, ROLE_SERIES))
            for i in items
            if i.data(0, ROLE_SERIES) and str(i.data(0, ROLE_STUDY)) == study
        ]
        if any(i.parent() is None and str(i.data(0, ROLE_STUDY)) == study for i in items):
            series = []  # the study itself is selected: all of it
        return study, series

    def retrieve(self) -> Worker | None:
        """Retrieve the selected study or series on a worker, with progress and cancel."""
        sel = self.selection()
        if sel is None or not self.node_name():
            self._say(self.tr("Select a study or series first."))
            return None
        study, series = sel
        library = self.main_window.library() if self.main_window is not None else None
        self._busy()
        self.cancel_button.setEnabled(True)
        self._shown_first = False
        self._opened_series = ""
        self.progress.setRange(0, 0)
        self.progress.show()
        self._say(self.tr("Retrieving…"))
        self._worker = run_in_background(
            _retrieve,
            self.node_name(),
            study,
            series,
            str(self.method.currentData()),
            library,
            on_progress=self._progress,
            on_item=self._arrived,
            on_result=self._done,
            on_error=self._failed,
        )
        self._worker.signals.cancelled.connect(self._cancelled)
        self._worker.signals.finished.connect(self.progress.hide)
        return self._worker

    def cancel(self) -> None:
        """Stop the running retrieve (what arrived stays in the library)."""
        if self._worker is not None:
            self._worker.cancel()
            self._say(self.tr("Cancelling…"))

    def _progress(self, done: int, total: int | None, message: str) -> None:
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(int(done))
        self._say(message)
        import time

        if self._opened_series and time.perf_counter() - self._streamed_at > 1.5:
            self._stream()

    def _stream(self) -> None:
        """Swap the shown retrieving series for what the library holds now (keeps the view)."""
        import time

        if self.main_window is None or not self._opened_series:
            return
        self._streamed_at = time.perf_counter()
        self.main_window.refresh_library_series(self._opened_series)

    def _arrived(self, event: Any) -> None:
        kind, info = event
        if kind != "series" or self.main_window is None:
            return
        if not self._shown_first:  # the first image, as soon as its instance is in the library
            import time

            self._shown_first = True
            self.first_shown_at = time.perf_counter()
            self._opened_series = str(info["series_uid"])
            self.main_window.open_library_series(self._opened_series)

    def _done(self, report: Any) -> None:
        import time

        self.done_at = time.perf_counter()
        self.last_report = report
        text = (
            self.tr("Retrieved %1 instance(s) (%2 new)")
            .replace("%1", str(report.received))
            .replace("%2", str(report.added))
        )
        if report.problems:
            text += "; " + "; ".join(report.problems[:3])
        self._say(text)
        self._idle()
        if self.main_window is not None:
            self.main_window.refresh_library()
            if report.received and self._opened_series:  # now complete: the whole series
                self._stream()
        self.retrieved.emit(report)

    def _cancelled(self) -> None:
        self._say(self.tr("Retrieve cancelled; the instances received so far are in the library."))
        self._idle()
        if self.main_window is not None:
            self.main_window.refresh_library()

    # -- listener setting ---------------------------------------------------------------------------------
    def _listen_toggled(self, on: bool) -> None:
        from app.net.nodes import NodeStore

        try:
            store = NodeStore.load()
            store.set_local(listen_in_gui=bool(on))
            store.save()
        except Exception as exc:  # noqa: BLE001
            self._say(user_message(exc))
            return
        if self.main_window is not None:
            if on:
                start_listener(self.main_window)
            else:
                stop_listener(self.main_window)


# -- background listener ----------------------------------------------------------------------------------
class _ArrivalRelay(QObject):
    """Carries listener arrivals from the filer thread to the GUI thread (queued signal)."""

    study = Signal(object)


def start_listener(window: Any) -> Any:
    """Run Hilum's storage listener for ``window``; new series appear in its study browser.

    Returns the listener, or None when it cannot start (the reason goes to the status bar).
    """
    from app.net.dimse import Listener
    from app.net.filing import Filer
    from app.net.nodes import NodeStore

    if getattr(window, "_pacs_listener", None) is not None:
        return window._pacs_listener
    relay = _ArrivalRelay(window)
    relay.study.connect(lambda study: _show_arrival(window, study))

    def arrived(studies: list[dict[str, Any]]) -> None:  # filer thread, after each batch
        for study in studies:
            try:
                relay.study.emit(study)
            except RuntimeError:
                return  # the window is closing

    try:
        local = NodeStore.load().local
        filer = Filer(window.library(), on_studies=arrived)
        listener = Listener(local, filer=filer).start()
    except Exception as exc:  # noqa: BLE001 - a taken port must not stop the window
        window.show_status(user_message(exc), 10000)
        return None
    window._pacs_listener = listener
    window._pacs_relay = relay
    window.show_status(
        window.tr("Receiving from PACS as %1 on port %2")
        .replace("%1", local.ae_title)
        .replace("%2", str(local.port)),
        5000,
    )
    window.destroyed.connect(lambda *_: _stop(listener))
    return listener


def _stop(listener: Any) -> None:
    try:
        listener.stop()
        listener.filer.close()
    except Exception:
        log.debug("listener stop failed", exc_info=True)


def stop_listener(window: Any) -> None:
    """Stop the window's background listener, if it runs."""
    listener = getattr(window, "_pacs_listener", None)
    if listener is not None:
        window._pacs_listener = None
        _stop(listener)


def _show_arrival(window: Any, study: dict[str, Any]) -> None:
    """List (or update) a study the listener received into; series already open that have
    grown are reloaded where they are shown."""
    browser = window.browser
    browser.add_library_study(study)
    for s in study.get("series", []):
        uid = str(s["series_uid"])
        loaded = [d for d in browser.series_data.values() if str(d.series_uid) == uid]
        if loaded and sum(d.count for d in loaded) < int(
            s.get("frames") or s.get("instances") or 0
        ):
            window.refresh_library_series(uid)
    window.show_status(
        window.tr("Received from PACS: %1").replace(
            "%1", study.get("description") or study.get("patient_id") or study["study_uid"]
        ),
        5000,
    )


def install(window: Any, menu: QMenu) -> QAction:
    """The main window's one hook: a menu action, and the background listener when enabled."""
    action = QAction(window.tr("PACS &Query/Retrieve…"), window)
    action.setShortcut("Ctrl+Shift+Q")

    def open_dialog() -> None:
        dlg = getattr(window, "_pacs_dialog", None)
        if dlg is None:
            dlg = QueryRetrieveDialog(window)
            window._pacs_dialog = dlg
        dlg.reload_nodes()
        dlg.show()
        dlg.raise_()

    action.triggered.connect(open_dialog)
    menu.addAction(action)
    try:
        from app.net.nodes import NodeStore

        if NodeStore.load().local.listen_in_gui:
            start_listener(window)
    except Exception as exc:  # noqa: BLE001
        log.warning("PACS listener not started: %s", user_message(exc))
    return action
