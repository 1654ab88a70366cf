"""The zh_CN translation: chosen in Settings, installed at start-up with Qt's own, with a CJK font."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QApplication, QDockWidget

from app.gui.app import install_translations
from app.gui.dialogs import SettingsDialog
from app.gui.main_window import MainWindow
from app.gui.settings import SETTINGS_VERSION, Settings, load_settings, qsettings, save_settings


def _menu_titles(window: MainWindow) -> list[str]:
    return [a.text() for a in window.menuBar().actions()]


def test_language_setting_selects_the_ui_translation(qtbot: Any) -> None:
    app = QApplication.instance()
    try:
        assert install_translations(app, "zh_CN") == "zh_CN"
        win = MainWindow(Settings(language="zh_CN"))
        qtbot.addWidget(win)
        titles = _menu_titles(win)
        assert titles[0] == "文件(&F)"
        assert "视图(&V)" in titles and "帮助(&H)" in titles
        assert win.act_open.text() == "打开文件(&O)…"
        assert win.act_settings.text() == "设置(&S)…"
        assert win.tool_actions["length"].text() != "Length"
        assert win.log_dock.windowTitle() == "导入日志"
        assert win.provider_label.text() == "AI：未加载"
        assert win.findChild(QDockWidget, "AIDock").windowTitle() == "人工智能"
        assert win.browser_dock.windowTitle() == "检查"
        # Qt's own strings (qtbase) are translated too, and the CJK font is registered
        assert QApplication.translate("QPlatformTheme", "Cancel") == "取消"
        assert "Droid Sans Fallback" in QFontDatabase.families()
        dlg = SettingsDialog(Settings(language="zh_CN"), win)
        assert dlg.windowTitle() == "设置"
        assert dlg.language.currentData() == "zh_CN"
        dlg.language.setCurrentIndex(dlg.language.findData("en_US"))
        assert dlg.result_settings().language == "en_US"
        qtbot.waitUntil(lambda: not win.busy, timeout=30000)
        win.close()

        assert install_translations(app, "en_US") is None
        win2 = MainWindow(Settings(language="en_US"))
        qtbot.addWidget(win2)
        assert _menu_titles(win2)[0] == "&File"
        assert win2.act_open.text() == "&Open files…"
        assert win2.log_dock.windowTitle() == "Import log"
        assert win2.findChild(QDockWidget, "AIDock").windowTitle() == "AI"
        qtbot.waitUntil(lambda: not win2.busy, timeout=30000)
        win2.close()
    finally:
        install_translations(app, "en_US")


def test_language_is_stored_and_old_settings_migrate(hilum_home: Path) -> None:
    save_settings(Settings(language="zh_CN"))
    assert load_settings().language == "zh_CN"
    store = qsettings()
    store.clear()
    store.setValue("settings/version", 2)
    store.setValue("settings/layout", "1x2")
    store.sync()
    s = load_settings()
    assert s.language == "" and s.layout == "1x2" and s.version == SETTINGS_VERSION == 3
    save_settings(Settings(language="xx_YY"))
    assert load_settings().language == ""
