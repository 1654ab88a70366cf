"""Plural helper for the English source text of ``tr(..., n)`` messages.

Qt picks the plural form from the translation (zh_CN has one form); without one (English, the
source language) the text keeps its ``(s)`` spelling. :func:`plural` resolves it::

    label.setText(plural(self.tr("%n image(s)", "", n), n))   # "1 image", "2 images", "2 幅图像"
"""

from __future__ import annotations


def plural(text: str, n: int) -> str:
    """``text`` with English ``(s)`` / ``(es)`` markers resolved for ``n`` (a translation has none)."""
    for marker, many in (("(s)", "s"), ("(es)", "es")):
        text = text.replace(marker, "" if n == 1 else many)
    return text
