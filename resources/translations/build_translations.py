"""Regenerate the zh_CN translation: extract the GUI strings, fill them from the glossary, compile.

Run from the repository root with the project's virtual environment::

    .venv/bin/python resources/translations/build_translations.py

1. ``pyside6-lupdate`` scans ``app/gui`` for ``self.tr(...)`` / ``QCoreApplication.translate(...)``
   and updates ``hilum_zh_CN.ts`` (existing translations are kept);
2. every unfinished message whose English text is in ``zh_CN.tsv`` gets its translation;
3. ``pyside6-lrelease`` compiles the ``.ts`` to ``hilum_zh_CN.qm`` (what the GUI loads).

Messages still unfinished are listed so a translator can add them to ``zh_CN.tsv`` (or edit the
``.ts`` in Qt Linguist).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TS = HERE / "hilum_zh_CN.ts"
QM = HERE / "hilum_zh_CN.qm"
GLOSSARY = HERE / "zh_CN.tsv"


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: install PySide6 in this environment")
    return found


def glossary() -> dict[str, str]:
    """English -> Chinese pairs from the TSV (``#`` lines are comments)."""
    pairs: dict[str, str] = {}
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or "\t" not in line:
            continue
        src, dst = line.split("\t", 1)
        pairs[src.replace("\\n", "\n")] = dst.replace("\\n", "\n")  # "\n" stands for a line break
    return pairs


def fill(ts_path: Path, pairs: dict[str, str]) -> list[str]:
    """Fill unfinished translations from ``pairs``; return the sources still missing."""
    tree = ET.parse(ts_path)
    missing = []
    for message in tree.getroot().iter("message"):
        source = message.findtext("source") or ""
        translation = message.find("translation")
        if translation is None:
            continue
        if translation.get("type") in ("unfinished", None) and source in pairs:
            if message.get("numerus") == "yes":
                # a %n message: zh_CN has one plural form
                for child in list(translation):
                    translation.remove(child)
                translation.text = None
                ET.SubElement(translation, "numerusform").text = pairs[source]
            else:
                translation.text = pairs[source]
            translation.attrib.pop("type", None)
        elif translation.get("type") == "unfinished":
            missing.append(source)
        if translation.get("type") == "vanished" or translation.get("type") == "obsolete":
            continue
    tree.write(ts_path, encoding="utf-8", xml_declaration=True)
    return missing


#: contexts lupdate names after a variable (``window.tr(...)`` in a module that extends the main
#: window): at run time ``tr`` looks them up under the window's class name
WINDOW_ALIASES = ("window", "w", "self.w", "main_window", "self.main_window", "self.window")


#: strings of libraries the window shows (translated through Qt with these contexts)
EXTERNAL = (("GraphicsScene", "Export..."),)


def add_external(ts_path: Path) -> None:
    """Add :data:`EXTERNAL` messages (lupdate scans only app/gui) unless already there."""
    tree = ET.parse(ts_path)
    root = tree.getroot()
    contexts = {c.findtext("name"): c for c in root.iter("context")}
    for name, source in EXTERNAL:
        ctx = contexts.get(name)
        if ctx is None:
            ctx = ET.SubElement(root, "context")
            ET.SubElement(ctx, "name").text = name
            contexts[name] = ctx
        if any(m.findtext("source") == source for m in ctx.iter("message")):
            continue
        message = ET.SubElement(ctx, "message")
        ET.SubElement(message, "source").text = source
        ET.SubElement(message, "translation", type="unfinished")
    tree.write(ts_path, encoding="utf-8", xml_declaration=True)


def merge_window_contexts(ts_path: Path) -> None:
    """Move messages of :data:`WINDOW_ALIASES` contexts into ``MainWindow``'s."""
    tree = ET.parse(ts_path)
    root = tree.getroot()
    contexts = {c.findtext("name"): c for c in root.iter("context")}
    target = contexts.get("MainWindow")
    if target is None:
        return
    have = {m.findtext("source") for m in target.iter("message")}
    for alias in WINDOW_ALIASES:
        ctx = contexts.get(alias)
        if ctx is None:
            continue
        for message in list(ctx.iter("message")):
            if message.findtext("source") not in have:
                target.append(message)
                have.add(message.findtext("source"))
        root.remove(ctx)
    tree.write(ts_path, encoding="utf-8", xml_declaration=True)


def main() -> int:
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "app" / "gui").rglob("*.py"))
    subprocess.run(
        [
            _tool("pyside6-lupdate"),
            *sources,
            "-no-obsolete",
            "-locations",
            "none",
            "-target-language",
            "zh_CN",
            "-ts",
            str(TS),
        ],
        cwd=ROOT,
        check=True,
    )
    merge_window_contexts(TS)
    add_external(TS)
    missing = fill(TS, glossary())
    subprocess.run([_tool("pyside6-lrelease"), str(TS), "-qm", str(QM)], check=True)
    if missing:
        print(f"{len(missing)} string(s) without a translation (add them to {GLOSSARY.name}):")
        for text in missing:
            print("  ", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
