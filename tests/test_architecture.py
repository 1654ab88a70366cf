"""Only app/gui may import Qt (DEVELOPERS.md convention 1), checked on the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6")
APP = Path(__file__).resolve().parents[1] / "app"


def qt_imports(path: Path) -> list[str]:
    """Qt modules imported anywhere in a file (top level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names = [str(node.args[0].value)]
        found += [n for n in names if n.split(".")[0] in QT_MODULES]
    return found


def test_no_module_outside_app_gui_imports_qt() -> None:
    offenders = {}
    files = [p for p in APP.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(files) > 10
    for path in files:
        rel = path.relative_to(APP)
        if rel.parts[0] == "gui":
            continue
        hits = qt_imports(path)
        if hits:
            offenders[str(rel)] = hits
    assert offenders == {}, f"Qt imported outside app/gui: {offenders}"


def test_the_check_sees_qt_imports() -> None:
    gui = [p for p in (APP / "gui").rglob("*.py") if qt_imports(p)]
    assert gui, "the scanner found no Qt import even in app/gui"
