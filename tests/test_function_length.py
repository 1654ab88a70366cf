"""House rule: no function in app/ over 80 lines without a reason ("Long because ...") in its
docstring."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"


def test_long_functions_say_why() -> None:
    unexplained = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > 80 and "Long because" not in (ast.get_docstring(node) or ""):
                    unexplained.append(
                        f"{path.relative_to(APP.parent)}:{node.lineno} {node.name} ({length} lines)"
                    )
    assert not unexplained, "split these or say why they are long:\n" + "\n".join(unexplained)
