"""Dialogs: DICOM tag browser, keyboard shortcuts, settings."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.errors import user_message
from app.gui.presets import (
    CT_PRESETS,
    WindowPreset,
    parse_preset,
    preset_to_text,
    presets_from_text,
)
from app.gui.settings import LAYOUTS, Settings
from app.gui.workers import run_in_background

#: values longer than this are cut in the tag browser (pixel data, big LUTs)
MAX_VALUE_CHARS = 200


def dataset_rows(ds: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Flatten a pydicom dataset into rows ``{tag, name, vr, value, depth, children}`` (worker thread).

    Pixel data and other bulk values are summarised, never rendered.
    """
    rows: list[dict[str, Any]] = []
    for elem in ds:
        try:
            tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
            name = elem.name
            vr = str(elem.VR)
            if vr == "SQ":
                children = []
                for i, item in enumerate(elem.value or []):
                    children.append(
                        {
                            "tag": "",
                            "name": f"Item {i + 1}",
                            "vr": "",
                            "value": "",
                            "children": dataset_rows(item, depth + 2),
                        }
                    )
                rows.append(
                    {
                        "tag": tag,
                        "name": name,
                        "vr": vr,
                        "value": f"{len(children)} item(s)",
                        "children": children,
                    }
                )
                continue
            if elem.tag in (0x7FE00010, 0x7FE00008, 0x7FE00009) or vr in (
                "OB",
                "OW",
                "OF",
                "OD",
                "OL",
                "UN",
            ):
                length = getattr(elem, "length", None) or getattr(
                    ds.get_item(elem.tag), "length", None
                )
                value = (
                    f"<binary, {length:,} bytes>"
                    if isinstance(length, int) and length != 0xFFFFFFFF
                    else "<binary>"
                )
            else:
                value = str(elem.value)
                if len(value) > MAX_VALUE_CHARS:
                    value = value[:MAX_VALUE_CHARS] + "…"
        except Exception as exc:  # noqa: BLE001 - one corrupt element must not hide the rest
            value = f"<unreadable: {type(exc).__name__}>"
            vr = vr if "vr" in locals() else "?"
            name = name if "name" in locals() else "?"
        rows.append({"tag": tag, "name": name, "vr": vr, "value": value, "children": []})
    return rows


def read_tag_rows(series: Any, index: int, *, progress: Any) -> list[dict[str, Any]]:
    """Read the header of frame ``index`` of a series and flatten it (worker thread)."""
    if series.read_header is None:
        return []
    ds = series.read_header(index)
    rows = []
    if getattr(ds, "file_meta", None) is not None:
        rows += dataset_rows(ds.file_meta)
    return rows + dataset_rows(ds)


class TagBrowser(QDialog):
    """All DICOM elements of the current image, with a search box (non-modal)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("DICOM tags"))
        self.resize(760, 640)
        self.search = QLineEdit()
        self.search.setPlaceholderText(self.tr("Search tag, name or value…"))
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels([self.tr("Tag"), self.tr("Name"), "VR", self.tr("Value")])
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        h = self.tree.header()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.tree.setColumnWidth(1, 240)
        self.status = QLabel("")
        lay = QVBoxLayout(self)
        lay.addWidget(self.search)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.status)
        self._worker: Any = None

    def show_image(self, series: Any, index: int) -> None:
        """Load the header of frame ``index`` of ``series`` (read on a worker thread)."""
        self.tree.clear()
        if series is None:
            self.status.setText(self.tr("No image."))
            return
        self.status.setText(self.tr("Reading header…"))
        self.setWindowTitle(f"DICOM tags: image {index + 1} of {series.count}")
        self._worker = run_in_background(
            read_tag_rows,
            series,
            index,
            on_result=self._fill,
            on_error=lambda e: self.status.setText(user_message(e)),
        )

    def _fill(self, rows: list[dict[str, Any]]) -> None:
        self.tree.clear()

        def add(parent: Any, row: dict[str, Any]) -> None:
            item = QTreeWidgetItem([row["tag"], row["name"], row["vr"], row["value"]])
            item.setToolTip(3, row["value"])
            (parent.addChild(item) if parent is not None else self.tree.addTopLevelItem(item))
            for child in row["children"]:
                add(item, child)

        for row in rows:
            add(None, row)
        self.status.setText(f"{len(rows)} elements")
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        text = text.strip().lower()

        def visit(item: QTreeWidgetItem) -> bool:
            hit = not text or any(text in item.text(c).lower() for c in range(4))
            child_hit = False
            for i in range(item.childCount()):
                child = item.child(i)
                if child is not None:
                    child_hit = visit(child) or child_hit
            item.setHidden(not (hit or child_hit))
            if text and child_hit:
                item.setExpanded(True)
            return hit or child_hit

        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top is not None:
                visit(top)

    def visible_rows(self) -> list[tuple[str, str, str]]:
        """(tag, name, value) of the top-level rows the search leaves visible."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            it = self.tree.topLevelItem(i)
            if it is not None and not it.isHidden():
                out.append((it.text(0), it.text(1), it.text(3)))
        return out


MOUSE_HELP = [
    ("Wheel", "Next / previous slice"),
    ("Ctrl + wheel", "Zoom about the cursor"),
    ("Right drag", "Window / level (right: wider, down: higher level)"),
    ("Middle drag, Shift + left drag", "Pan"),
    ("Left drag", "Current tool (pointer pans; measurement tools draw)"),
    ("Click a measurement", "Select it (drag to move, handles to edit, Delete to remove)"),
    ("Drop files, folders or zips", "Import them (anywhere on the window)"),
    ("Up / Down, Left / Right", "Previous / next slice"),
    ("Page Up / Page Down", "Back / forward a tenth of the series"),
    ("Home / End", "First / last slice"),
]


class ShortcutsDialog(QDialog):
    """Every keyboard shortcut of the window's actions, plus the mouse bindings."""

    def __init__(self, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Keyboard and mouse"))
        self.resize(560, 640)
        rows: list[tuple[str, str]] = []
        for a in actions:
            keys = ", ".join(s.toString() for s in a.shortcuts())
            if keys:
                rows.append((keys, a.text().replace("&", "")))
        rows += MOUSE_HELP
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels([self.tr("Keys / mouse"), self.tr("Action")])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (k, t) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(k))
            self.table.setItem(r, 1, QTableWidgetItem(t))
        self.table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        self.rows = rows


class PresetsEditor(QWidget):
    """The CT window presets as an editable table: name, W, L and number key (1-9)."""

    def __init__(self, stored: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PresetsEditor")
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("PresetsTable")
        self.table.setHorizontalHeaderLabels(
            [self.tr("Name"), self.tr("W"), self.tr("L"), self.tr("Key")]
        )
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(180)
        self.add_button = QPushButton(self.tr("Add"))
        self.remove_button = QPushButton(self.tr("Remove"))
        self.defaults_button = QPushButton(self.tr("Restore defaults"))
        self.add_button.clicked.connect(
            lambda: self._add(WindowPreset(self.tr("New preset"), 40, 400))
        )
        self.remove_button.clicked.connect(lambda: self.table.removeRow(self.table.currentRow()))
        self.defaults_button.clicked.connect(lambda: self.set_presets(list(CT_PRESETS)))
        self.error = QLabel("")
        self.error.setStyleSheet("color:#ff8a80;")
        row = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.defaults_button):
            row.addWidget(b)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table)
        lay.addLayout(row)
        lay.addWidget(self.error)
        self.set_presets(presets_from_text(stored))

    def set_presets(self, presets: list[WindowPreset]) -> None:
        """Show ``presets`` in the table."""
        self.table.setRowCount(0)
        for p in presets:
            self._add(p)

    def _add(self, p: WindowPreset) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        for c, value in enumerate((p.name, f"{p.width:g}", f"{p.center:g}", p.key)):
            self.table.setItem(r, c, QTableWidgetItem(value))

    def presets(self) -> list[WindowPreset]:
        """The valid rows (a name, a positive W, a number L; key 1-9 or empty)."""
        out, bad = [], []
        for r in range(self.table.rowCount()):
            cells = [
                (cell.text().strip() if (cell := self.table.item(r, c)) is not None else "")
                for c in range(4)
            ]
            p = parse_preset("|".join([cells[0].replace("|", "/"), cells[1], cells[2], cells[3]]))
            if p is None:
                bad.append(cells[0] or str(r + 1))
            else:
                out.append(p)
        self.error.setText(
            self.tr("Ignored (needs a name, W > 0 and a number L): %1").replace(
                "%1", ", ".join(bad)
            )
            if bad
            else ""
        )
        return out

    def values(self) -> list[str]:
        """The settings form; empty when the table holds exactly the built-in presets."""
        presets = self.presets()
        return [] if presets == list(CT_PRESETS) else [preset_to_text(p) for p in presets]


class SettingsDialog(QDialog):
    """Edit :class:`~app.gui.settings.Settings`; :meth:`result_settings` gives the new values."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Settings"))
        self._orig = settings
        form = QFormLayout()
        self.layout_box = QComboBox()
        self.layout_box.addItems(list(LAYOUTS))
        self.layout_box.setCurrentText(settings.layout)
        self.annotations = QCheckBox(self.tr("Show corner annotations"))
        self.annotations.setChecked(settings.show_annotations)
        self.hide_identity = QCheckBox(self.tr("Hide patient name and ID on images"))
        self.hide_identity.setChecked(settings.hide_patient_identity)
        self.sync = QCheckBox(self.tr("Synchronise scrolling by slice position"))
        self.sync.setChecked(settings.sync_scroll)
        self.smooth = QCheckBox(self.tr("Smooth magnified pixels"))
        self.smooth.setChecked(settings.smooth_interpolation)
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(settings.cine_fps)
        self.fps.setSuffix(" fps")
        self.wl = QDoubleSpinBox()
        self.wl.setRange(0.1, 10)
        self.wl.setSingleStep(0.1)
        self.wl.setValue(settings.wl_sensitivity)
        self.cache = QSpinBox()
        self.cache.setRange(128, 65536)
        self.cache.setSingleStep(256)
        self.cache.setSuffix(" MiB")
        self.cache.setValue(settings.cache_mb)
        self.opacity = QDoubleSpinBox()
        self.opacity.setRange(0, 1)
        self.opacity.setSingleStep(0.05)
        self.opacity.setValue(settings.overlay_opacity)
        form.addRow(self.tr("Layout"), self.layout_box)
        form.addRow("", self.annotations)
        form.addRow("", self.hide_identity)
        form.addRow("", self.sync)
        form.addRow("", self.smooth)
        form.addRow(self.tr("Cine speed"), self.fps)
        form.addRow(self.tr("Window/level speed"), self.wl)
        form.addRow(self.tr("Frame cache per series"), self.cache)
        form.addRow(self.tr("AI overlay opacity"), self.opacity)
        self.language = QComboBox()
        self.language.setObjectName("SettingsLanguage")
        # each language in its own name (a reader who cannot read the current UI still finds it)
        for code, name in (
            ("", self.tr("System default")),
            ("en_US", "English"),
            ("zh_CN", "简体中文"),
        ):
            self.language.addItem(name, code)
        self.language.setCurrentIndex(max(self.language.findData(settings.language), 0))
        self.language.setToolTip(self.tr("Takes effect when Hilum is restarted"))
        self.language_note = QLabel(self.tr("The new language applies when Hilum is restarted."))
        self.language_note.setObjectName("SettingsLanguageNote")
        self.language_note.setStyleSheet("color:#ffd54a;")
        self.language_note.setWordWrap(True)
        self.language_note.hide()
        self.language.currentIndexChanged.connect(
            lambda *_: self.language_note.setVisible(
                str(self.language.currentData() or "") != settings.language
            )
        )
        form.addRow(self.tr("Language"), self.language)
        form.addRow("", self.language_note)
        self.presets = PresetsEditor(settings.window_presets, self)
        form.addRow(self.tr("CT window presets"), self.presets)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def result_settings(self) -> Settings:
        """The settings as edited."""
        return dataclasses.replace(
            self._orig,
            layout=self.layout_box.currentText(),
            show_annotations=self.annotations.isChecked(),
            hide_patient_identity=self.hide_identity.isChecked(),
            sync_scroll=self.sync.isChecked(),
            smooth_interpolation=self.smooth.isChecked(),
            cine_fps=self.fps.value(),
            wl_sensitivity=self.wl.value(),
            cache_mb=self.cache.value(),
            overlay_opacity=self.opacity.value(),
            window_presets=self.presets.values(),
            language=str(self.language.currentData() or ""),
        ).validated()
