"""zh_CN: every visible string of the main window (menus, panels, dialogs' labels, the study list)
is translated; a walk over every widget finds no English label left."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QDockWidget,
    QGroupBox,
    QLabel,
    QLineEdit,
    QTabBar,
    QTableWidget,
    QTextEdit,
    QWidget,
)

from app.core.paths import sample_path
from app.gui.app import install_translations
from app.gui.main_window import MainWindow
from app.gui.settings import Settings

#: words that stay as they are in a Chinese UI (names, units, standards, file formats, values)
KEEP = {
    "AI",
    "DICOM",
    "PACS",
    "PDF",
    "CT",
    "MR",
    "CR",
    "DX",
    "HU",
    "CAM",
    "RISE",
    "MPR",
    "Hilum",
    "OpenAI",
    "URL",
    "http",
    "https",
    "sha256",
    "auto",
    "cpu",
    "cuda",
    "inferno",
    "jet",
    "viridis",
    "occlusion",
    "rise",
    "cam",
    "Ctrl",
    "Shift",
    "Alt",
    "Esc",
    "Space",
    "Del",
    "Backspace",
    "PNG",
    "ID",
    "AE",
    "UID",
    "ONNX",
    "CPU",
    "GPU",
    "CUDA",
    "Cobb",
    "GSPS",
    "KOS",
    "SR",
    "JPEG",
    "RGB",
    "ROI",
    "pacs",
    "hilum",
    "add",
    "NAME",
    "host",
    "port",
    "title",
    "FINDINGS",
    "IMPRESSION",
    "report",
    "pdf",
    "dicom",
}
#: widgets whose text is data or report wording in English (the report is written in English)
DATA = {"qt_spinbox_lineedit", "AIModelInfo", "AISeries", "AIUseBanner"}
CJK = re.compile(r"[\u3400-\u9fff]")


def _english(text: str) -> bool:
    """True for a label with English words and no Chinese (an untranslated string)."""
    text = text.replace("&", "")
    if not text.strip() or CJK.search(text):
        return False
    words = re.findall(r"[A-Za-z]{2,}", text)
    return any(w not in KEEP for w in words)


def _texts(w: QWidget) -> list[str]:
    out: list[str] = []
    if isinstance(w, (QLabel, QAbstractButton)):
        out.append(w.text())
    if isinstance(w, QGroupBox):
        out.append(w.title())
    if isinstance(w, QDockWidget):
        out.append(w.windowTitle())
    if isinstance(w, (QLineEdit, QTextEdit)):
        out.append(w.placeholderText())
    if isinstance(w, QTabBar):
        out += [w.tabText(i) for i in range(w.count())]
    if isinstance(w, QTableWidget):
        out += [
            w.horizontalHeaderItem(c).text()
            for c in range(w.columnCount())
            if w.horizontalHeaderItem(c)
        ]
    if isinstance(w, QComboBox) and w.objectName() == "SettingsLanguage":
        # each language in its own name: "English" stays English
        out += [w.itemText(i) for i in range(w.count()) if w.itemData(i) != "en_US"]
    return out


def _untranslated(root: QWidget) -> list[str]:
    found = []
    for w in [root, *root.findChildren(QWidget)]:
        if w.objectName() in DATA:
            continue
        for t in _texts(w):
            if _english(t):
                found.append(f"{type(w).__name__}({w.objectName()}): {t!r}")
    for a in (
        root.findChildren(type(root.menuBar().actions()[0])) if hasattr(root, "menuBar") else []
    ):
        if a.text() and _english(a.text()) and not a.isSeparator() and not a.text().startswith("/"):
            found.append(f"QAction: {a.text()!r}")
    return sorted(set(found))


def test_main_window_in_zh_cn_has_no_english_label(qtbot: Any) -> None:
    from app.gui.dialogs import SettingsDialog

    app = QApplication.instance()
    try:
        assert install_translations(app, "zh_CN") == "zh_CN"
        win = MainWindow(Settings(language="zh_CN"))
        qtbot.addWidget(win)
        win.resize(1440, 900)
        win.show()
        # a study in the window: panels filled, the study list counts an image ("%n image(s)")
        with qtbot.waitSignal(win.first_image_painted, timeout=60000):
            win.open_paths([str(sample_path())])
        qtbot.waitUntil(lambda: not win.busy, timeout=60000)
        ai = win.panels["ai"].widget()
        qtbot.waitUntil(lambda: ai.metadata is not None and ai.models.count() > 0, timeout=60000)
        ai.device.setCurrentText("cpu")
        with qtbot.waitSignal(ai.results_ready, timeout=120000):
            ai.run_button.click()
        qtbot.waitUntil(lambda: ai.worker is None, timeout=10000)
        from PySide6.QtWidgets import QTreeWidgetItemIterator

        items, it = [], QTreeWidgetItemIterator(win.browser)
        while it.value():
            items.append(it.value().text(0))
            it += 1
        assert any(t.endswith("1 幅图像") for t in items), items
        assert "演示模型，不可用于临床" in ai.use_banner.text()
        assert ai.status.text().startswith("1 个结果")
        # the text painted on the image is translated too
        corners = win.active_viewport().annotation_text()
        assert corners["bl"][0] == "图 1 / 1" and corners["br"][0].startswith("缩放")
        problems = _untranslated(win)
        dlg = SettingsDialog(win.settings, win)
        qtbot.addWidget(dlg)
        problems += _untranslated(dlg)
        assert dlg.language.itemText(dlg.language.findData("zh_CN")) == "简体中文"
        # the export dialog (sign-off, outputs, de-identification)
        from app.core.types import ReportDraft
        from app.gui.panels.export import ExportContext, ExportDialog

        export = ExportDialog(ExportContext(ReportDraft("1.2.3", findings="x")), win)
        qtbot.addWidget(export)
        problems += _untranslated(export)
        assert not problems, "\n".join(problems)
        win.cancel_background()
        qtbot.waitUntil(lambda: not win.busy, timeout=30000)
        win.close()
    finally:
        install_translations(app, "en_US")
