"""The study/series browser: patients, their studies (newest first) and the series with
thumbnails. Grouping by patient puts a patient's prior studies under the current one."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

from app.gui.i18n import plural
from app.gui.annotations import format_date, format_name
from app.gui.series import SeriesData

ROLE_KIND = Qt.ItemDataRole.UserRole + 1
ROLE_KEY = Qt.ItemDataRole.UserRole + 2
ROLE_DATE = Qt.ItemDataRole.UserRole + 3

#: drag-and-drop format of a series dragged from the browser onto a viewport
SERIES_MIME = "application/x-hilum-series"


def array_to_pixmap(arr: np.ndarray) -> QPixmap:
    """A uint8 grey (h, w) or RGB (h, w, 3) array as a QPixmap (GUI thread; small arrays only)."""
    a = np.ascontiguousarray(arr)
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(img.copy())


def _children(item: QTreeWidgetItem | None) -> Iterator[QTreeWidgetItem]:
    """The child rows of a tree item (none for a missing item)."""
    if item is None:
        return
    for i in range(item.childCount()):
        child = item.child(i)
        if child is not None:
            yield child


def _date_of(item: QTreeWidgetItem | None) -> Any:
    return item.data(0, ROLE_DATE) if item is not None else None


class StudyBrowser(QTreeWidget):
    """Studies (patient, date, description) with their series (thumbnail, modality, description).

    Signals
    -------
    series_activated(object)
        A loaded series was chosen (its :class:`~app.gui.series.SeriesData`).
    library_series_requested(str)
        A series known only from the library was chosen (its SeriesInstanceUID): load it.
    """

    series_activated = Signal(object)
    library_series_requested = Signal(str)

    def __init__(self, thumb_size: int = 72, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setColumnCount(1)
        self.setIconSize(QSize(thumb_size, thumb_size))
        self.setIndentation(12)
        self.setUniformRowHeights(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAnimated(True)
        self._studies: dict[str, QTreeWidgetItem] = {}
        self._patients: dict[str, QTreeWidgetItem] = {}  # patient id (or name) -> item
        self._series: dict[str, QTreeWidgetItem] = {}  # series key -> item
        self._by_uid: dict[tuple[str, int], QTreeWidgetItem] = {}
        self.series_data: dict[str, SeriesData] = {}
        self.itemActivated.connect(self._activated)
        self.itemClicked.connect(self._activated)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData:  # noqa: N802 - Qt name
        """A series dragged out: ``series:<key>`` (loaded) or ``library:<uid>``."""
        mime = QMimeData()
        for item in items:
            kind, key = item.data(0, ROLE_KIND), item.data(0, ROLE_KEY)
            if kind in ("series", "library"):
                mime.setData(SERIES_MIME, f"{kind}:{key}".encode())
                break
        return mime

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return [SERIES_MIME]

    # --- studies ----------------------------------------------------------------------------
    def _patient_item(self, meta: dict[str, str]) -> QTreeWidgetItem:
        """The top-level item of a patient (studies of one patient are grouped)."""
        name = format_name(meta.get("patient_name", "")) or self.tr("(no name)")
        pid = meta.get("patient_id", "")
        key = pid or name
        item = self._patients.get(key)
        if item is None:
            item = QTreeWidgetItem([name])
            item.setData(0, ROLE_KIND, "patient")
            item.setData(0, ROLE_KEY, key)
            font = item.font(0)
            font.setBold(True)
            item.setFont(0, font)
            self.insertTopLevelItem(0, item)
            self._patients[key] = item
            item.setExpanded(True)
        item.setText(0, f"{name}\nID {pid}" if pid else name)
        item.setToolTip(0, f"{name}  ID {pid}")
        return item

    def patient_studies(self, study_uid: str) -> list[str]:
        """The studies shown under the same patient as ``study_uid`` (newest first)."""
        item = self._studies.get(study_uid)
        parent = item.parent() if item is not None else None
        if parent is None:
            return [study_uid] if item is not None else []
        children = (parent.child(i) for i in range(parent.childCount()))
        return [c.data(0, ROLE_KEY) for c in children if c is not None]

    def _study_item(
        self, study_uid: str, meta: dict[str, str], description: str = "", date: str = ""
    ) -> QTreeWidgetItem:
        item = self._studies.get(study_uid)
        name = format_name(meta.get("patient_name", "")) or self.tr("(no name)")
        pid = meta.get("patient_id", "")
        raw_date = date or meta.get("study_date", "")
        date = format_date(raw_date)
        desc = description or meta.get("study_description", "")
        text = f"{date or self.tr('(no date)')}  {desc}".rstrip()
        if item is None:
            patient = self._patient_item(meta)
            item = QTreeWidgetItem([text])
            item.setSizeHint(0, QSize(-1, 28))
            item.setData(0, ROLE_KIND, "study")
            item.setData(0, ROLE_KEY, study_uid)
            item.setData(0, ROLE_DATE, raw_date)
            # newest first: a patient's priors follow the current study
            at = 0
            while at < patient.childCount() and (_date_of(patient.child(at)) or "") > raw_date:
                at += 1
            patient.insertChild(at, item)
            self._studies[study_uid] = item
            item.setExpanded(True)
        else:
            item.setText(0, text)
        item.setToolTip(0, f"{name}  ID {pid}\n{date}  {desc}")
        return item

    def add_series(self, series: SeriesData) -> QTreeWidgetItem:
        """Add (or refresh) a loaded series under its study."""
        study = self._study_item(series.study_uid, series.meta)
        self.series_data[series.key] = series
        item = self._by_uid.get((series.series_uid, series.stack_index))
        if item is None or item.data(0, ROLE_KIND) == "library":
            owner = item.parent() if item is not None else None
            if item is not None and owner is not None:  # known from the library: now loaded
                owner.removeChild(item)
            item = QTreeWidgetItem()
            item.setSizeHint(0, QSize(-1, self.iconSize().height() + 10))
            study.addChild(item)
            self._by_uid[(series.series_uid, series.stack_index)] = item
        else:  # a fuller version of a loaded series: the row now opens that one
            stale = item.data(0, ROLE_KEY)
            if stale != series.key:
                self.series_data.pop(stale, None)
                self._series.pop(stale, None)
        item.setData(0, ROLE_KIND, "series")
        item.setData(0, ROLE_KEY, series.key)
        num = (
            self.tr("Se %1 · ").replace("%1", str(series.series_number))
            if series.series_number is not None
            else ""
        )
        stack = (
            self.tr(" [stack %1]").replace("%1", str(series.stack_index + 1))
            if series.stack_index
            else ""
        )
        no_desc = self.tr("(no description)")
        item.setText(
            0,
            f"{num}{series.modality}{stack}\n{series.description or no_desc}\n"
            + plural(self.tr("%n image(s)", "", series.count), series.count),
        )
        tip = [
            f"{series.modality} {series.description}",
            f"{series.count} images, {series.rows}x{series.columns}",
        ]
        tip += series.warnings
        item.setToolTip(0, "\n".join(tip))
        if series.thumbnail is not None:
            item.setIcon(0, QIcon(array_to_pixmap(series.thumbnail)))
        self._series[series.key] = item
        return item

    def add_library_study(self, study: dict[str, Any]) -> None:
        """Add a study known from the library (its series load when chosen)."""
        meta = {
            "patient_name": study.get("patient_name", ""),
            "patient_id": study.get("patient_id", ""),
        }
        known = study["study_uid"] in self._studies
        item = self._study_item(
            study["study_uid"], meta, study.get("description", ""), study.get("study_date", "")
        )
        if not known:
            item.setExpanded(False)  # a study from earlier sessions: its series load when chosen
        for s in study.get("series", []):
            desc = s.get("description") or self.tr("(no description)")
            n = int(s.get("frames") or s.get("instances") or 0)
            text = f"{s.get('modality', '')}\n{desc}\n" + plural(self.tr("%n image(s)", "", n), n)
            known_row = self._by_uid.get((s["series_uid"], 0))
            if known_row is not None and known_row.data(0, ROLE_KIND) == "library":
                known_row.setText(0, text)  # more of it has arrived
            if any(k[0] == s["series_uid"] for k in self._by_uid):
                continue  # listed already (a loaded series is reloaded by its owner)
            child = QTreeWidgetItem([text])
            child.setSizeHint(0, QSize(-1, 48))
            child.setData(0, ROLE_KIND, "library")
            child.setData(0, ROLE_KEY, s["series_uid"])
            item.addChild(child)
            self._by_uid[(s["series_uid"], 0)] = child

    def series_items(self) -> list[SeriesData]:
        """The loaded series, in browser order."""
        out = []
        for i in range(self.topLevelItemCount()):
            patient = self.topLevelItem(i)
            for study in _children(patient):
                for row in _children(study):
                    key = row.data(0, ROLE_KEY)
                    if key in self.series_data:
                        out.append(self.series_data[key])
        return out

    def select_series(self, series: SeriesData | None) -> None:
        """Highlight the series shown in the active viewport."""
        item = self._series.get(series.key) if series is not None else None
        self.blockSignals(True)
        self.setCurrentItem(item) if item is not None else self.clearSelection()
        self.blockSignals(False)

    def _activated(self, item: QTreeWidgetItem, column: int = 0) -> None:
        kind = item.data(0, ROLE_KIND)
        key = item.data(0, ROLE_KEY)
        if kind == "series" and key in self.series_data:
            self.series_activated.emit(self.series_data[key])
        elif kind == "library":
            self.library_series_requested.emit(key)
