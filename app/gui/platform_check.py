"""Can Qt's X11 (``xcb``) platform plugin load? Checked before the QApplication is made.

When a library the plugin links to is missing, Qt prints a screen of diagnostics and aborts the
process (SIGABRT), which a Python ``try`` cannot catch. Hilum loads the same libraries first,
with :mod:`ctypes` (the dynamic loader and ``LD_LIBRARY_PATH`` as Qt would use them), and names
the Debian package of each one missing in one sentence instead.

This module imports no Qt, so ``run-tests`` and the bundle build can ask it which packages a
machine lacks: ``python -m app.gui.platform_check`` prints them, one per line.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable, Mapping

__all__ = ["XCB_LIBRARIES", "missing_xcb_packages", "platform_problem", "uses_xcb"]

#: Every shared library PySide6 6.11's ``libqxcb.so`` and ``libQt6XcbQpa.so.6`` link to (their
#: DT_NEEDED entries, Qt's own and glibc/libstdc++ left out) with the Debian 12 / Ubuntu package
#: that ships it. ``libxcb-cursor0``, ``libxcb-icccm4`` and ``libxcb-keysyms1`` are the ones a
#: fresh desktop usually lacks. tests/gui/test_platform_check.py keeps this list complete.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libGL.so.1": "libgl1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}


def uses_xcb(env: Mapping[str, str] | None = None) -> bool:
    """True when Qt will use its xcb plugin: Linux, and ``QT_QPA_PLATFORM`` unset or ``xcb``."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "").strip().split(":", 1)[0].lower()
    if platform:
        return platform == "xcb" or platform.startswith("xcb;")
    # unset: Qt picks wayland in a Wayland session when its plugin is there (the bundle ships
    # xcb only, so a frozen Hilum always uses xcb, through XWayland)
    wayland = env.get("XDG_SESSION_TYPE", "").lower() == "wayland" and bool(
        env.get("WAYLAND_DISPLAY")
    )
    return not wayland or bool(getattr(sys, "frozen", False))


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_xcb_packages(loader: Callable[[str], bool] = _loadable) -> list[tuple[str, str]]:
    """``(library, Debian package)`` for each library of the xcb plugin that cannot be loaded.

    Parameters
    ----------
    loader : callable, optional
        ``loader(soname) -> bool``; the default asks the dynamic loader (``dlopen``).
    """
    return [(so, pkg) for so, pkg in XCB_LIBRARIES.items() if not loader(so)]


def platform_problem(
    env: Mapping[str, str] | None = None, loader: Callable[[str], bool] = _loadable
) -> str | None:
    """One sentence saying which package the window needs, or None when it can start.

    Parameters
    ----------
    env : mapping, optional
        The environment (default ``os.environ``).
    loader : callable, optional
        See :func:`missing_xcb_packages`.
    """
    if not uses_xcb(env):
        return None
    env = os.environ if env is None else env
    if not env.get("DISPLAY") and "display=" not in env.get("QT_QPA_PLATFORM", ""):
        return (
            "Hilum cannot open its window because no X display is set (DISPLAY is empty): "
            "start it from a desktop session, or run without a window with "
            "QT_QPA_PLATFORM=offscreen."
        )
    missing = missing_xcb_packages(loader)
    if not missing:
        return None
    packages = list(dict.fromkeys(pkg for _, pkg in missing))
    libs = ", ".join(so for so, _ in missing)
    which = (
        f"the package {packages[0]}"
        if len(packages) == 1
        else "the packages " + ", ".join(packages)
    )
    return (
        f"Hilum cannot open its window because Qt's X11 platform plugin needs {which} "
        f"({libs} cannot be loaded): install with 'sudo apt-get install "
        f"{' '.join(packages)}', or run without a window with QT_QPA_PLATFORM=offscreen."
    )


def main() -> int:
    """Print the Debian packages the xcb plugin still needs, one per line (for scripts)."""
    for pkg in dict.fromkeys(pkg for _, pkg in missing_xcb_packages()):
        print(pkg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
