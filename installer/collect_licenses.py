"""Collect the third-party licence notices of everything a Hilum bundle ships.

Run by ``installer/build.sh`` after PyInstaller, with the same Python that built the bundle::

    .venv/bin/python installer/collect_licenses.py \
        --manifest build/hilum/bundle_manifest.json --out dist/hilum/licenses

``installer/hilum.spec`` writes the manifest: the top-level Python modules, the source paths of
the shared libraries and the top-level data folders that went into the bundle. Each is mapped to
the installed distribution that owns it (``importlib.metadata``); for each distribution the
licence files it ships (PEP 639 ``License-File`` entries, ``LICENSE``/``COPYING``/``NOTICE``/
``ThirdPartyNotices`` files) are copied to ``licenses/<name>-<version>/``. Shared libraries taken
from the operating system are mapped to their Debian package (``dpkg -S``) and that package's
``/usr/share/doc/<pkg>/copyright`` is copied. The Python runtime's own licence is added, and an
index ``licenses/THIRD_PARTY_NOTICES.md`` lists every component with its version and licence.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: names of files that carry licence text
_LICENSE_RE = re.compile(
    r"^(licen[cs]e|copying|notice|third[-_]?party[-_]?notices|authors)([-_.].*)?$", re.IGNORECASE
)
#: never ship these as "third party": Hilum itself and the build-only tools
_SELF = {"hilum", "pyinstaller", "pyinstaller-hooks-contrib", "altgraph"}


def _md(dist: metadata.Distribution) -> Any:
    """The distribution's metadata as the email.message.Message it is (``.get``, ``.items``)."""
    return dist.metadata


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_file_map() -> dict[str, metadata.Distribution]:
    """Map every installed file's resolved path to the distribution that installed it."""
    owners: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        for f in dist.files or ():
            try:
                owners[str(Path(str(f.locate())).resolve())] = dist
            except (OSError, ValueError):
                continue
    return owners


def _license_text_files(dist: metadata.Distribution) -> list[Path]:
    """The licence files a distribution installed (dist-info licences and package notices)."""
    found: list[Path] = []
    declared = set(_md(dist).get_all("License-File") or [])
    for f in dist.files or ():
        name = f.name
        in_dist_info = any(part.endswith(".dist-info") for part in f.parts)
        if f.suffix in (".py", ".pyc", ".so", ".pyd", ".dll", ".dylib"):
            continue
        declared_hit = any(str(f).endswith(d) for d in declared)
        if declared_hit or (_LICENSE_RE.match(name) and (in_dist_info or len(f.parts) <= 3)):
            path = Path(str(f.locate()))
            if path.is_file() and path.stat().st_size < 5_000_000:
                found.append(path)
    return sorted(set(found))


def _top_level(src: str) -> str:
    """The top-level package of a file inside site-packages ("" elsewhere)."""
    parts = Path(src).parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        if rest:
            return rest[0].split(".")[0]
    return ""


#: SPDX identifiers whose full text the OS provides (Debian: /usr/share/common-licenses)
_COMMON_LICENSES = {
    "LGPL-3.0": "LGPL-3",
    "GPL-3.0": "GPL-3",
    "GPL-2.0": "GPL-2",
    "LGPL-2.1": "LGPL-2.1",
    "Apache-2.0": "Apache-2.0",
    "MPL-2.0": "MPL-2.0",
}


def _common_license_texts(label: str) -> list[Path]:
    """Full licence texts for the SPDX ids named in ``label`` (used when a wheel ships none)."""
    found = []
    label = label.replace("Apache Software License", "Apache-2.0")  # the trove classifier's name
    for spdx, name in _COMMON_LICENSES.items():
        if re.search(rf"(?<![\w.-]){re.escape(spdx)}", label):
            path = Path("/usr/share/common-licenses") / name
            if path.is_file():
                found.append(path)
    return found


def _license_label(dist: metadata.Distribution) -> str:
    md = _md(dist)
    expr = md.get("License-Expression")
    if expr:
        return expr
    lic = (md.get("License") or "").strip()
    if lic and len(lic) < 80 and "\n" not in lic:
        return lic
    classifiers = [
        c.split("::")[-1].strip()
        for c in md.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    if classifiers:
        return "; ".join(classifiers)
    return "see licence files" if lic else "unknown"


def _debian_package(path: str) -> str | None:
    try:
        out = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or ":" not in out.stdout:
        return None
    return out.stdout.split(":", 1)[0].strip().split(",")[0].strip()


def collect(manifest_path: Path, out_dir: Path) -> dict[str, object]:
    """Write the notices to ``out_dir``; returns a summary (distribution and system-package counts)."""
    manifest = json.loads(manifest_path.read_text())
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)

    pkg_to_dists = metadata.packages_distributions()
    owners = _dist_file_map()
    dists: dict[str, metadata.Distribution] = {}

    def add(dist: metadata.Distribution | None) -> None:
        if dist is None:
            return
        name = _norm(dist.metadata["Name"] or "")
        if name and name not in _SELF:
            dists.setdefault(name, dist)

    # Python code and data files: the distribution whose RECORD lists the file. Mapping by
    # top-level name alone would over-include (PySide6_WebEngine also installs into PySide6/).
    owned_modules: set[str] = set()
    for src in manifest.get("files", []):
        dist = owners.get(str(Path(src).resolve()))
        if dist is not None:
            add(dist)
            owned_modules.add(_top_level(src))
    # modules whose files no RECORD lists (e.g. compiled into the frozen stdlib): by name
    for module in manifest.get("modules", []):
        if module in owned_modules:
            continue
        for dist_name in pkg_to_dists.get(module, [])[:1]:
            try:
                add(metadata.distribution(dist_name))
            except metadata.PackageNotFoundError:
                continue

    system_libs: dict[str, list[str]] = {}
    unowned: list[str] = []
    for src in manifest.get("binaries", []):
        resolved = str(Path(src).resolve())
        dist = owners.get(resolved)
        if dist is not None:
            add(dist)
            continue
        if "site-packages" in resolved:
            # a vendored wheel library (e.g. numpy.libs/): owned through its RECORD's folder
            parent = Path(resolved).parent.name
            for key, owner in owners.items():
                if f"/{parent}/" in key:
                    add(owner)
                    break
            continue
        pkg = _debian_package(resolved) or _debian_package(src)
        if pkg:
            system_libs.setdefault(pkg, []).append(Path(src).name)
        elif Path(resolved).is_relative_to(Path(sys.base_prefix).resolve()):
            continue  # the Python runtime's own libraries: covered by its licence below
        else:
            unowned.append(resolved)

    rows: list[tuple[str, str, str, str]] = []
    missing_text: list[str] = []
    for name in sorted(dists):
        dist = dists[name]
        version = dist.version
        folder = out_dir / f"{name}-{version}"
        folder.mkdir()
        files = _license_text_files(dist)
        if not files:
            # e.g. the PySide6 wheels name LGPL-3.0/GPL but ship no text: add the standard texts
            files = _common_license_texts(_license_label(dist))
            if not files:
                log.warning("no licence text for %s %s", name, dist.version)
                missing_text.append(f"{dist.metadata['Name']} {dist.version}")
        for path in files:
            target = folder / path.name
            n = 1
            while target.exists():  # two files of the same name (e.g. a vendored LICENSE)
                target = folder / f"{path.stem}.{n}{path.suffix}"
                n += 1
            shutil.copyfile(path, target)
        # the metadata itself names the licence and the project: always keep it
        (folder / "METADATA.txt").write_text(
            "\n".join(
                f"{k}: {v}"
                for k, v in _md(dist).items()
                if k
                in (
                    "Name",
                    "Version",
                    "License",
                    "License-Expression",
                    "Home-page",
                    "Author",
                    "Author-email",
                    "Maintainer",
                    "Project-URL",
                    "Classifier",
                )
                and (k != "Classifier" or v.startswith("License"))
            )
            + "\n"
        )
        home = _md(dist).get("Home-page") or next(
            (
                u.split(",", 1)[1].strip()
                for u in _md(dist).get_all("Project-URL") or []
                if "," in u
            ),
            "",
        )
        rows.append((dist.metadata["Name"], version, _license_label(dist), home))

    for pkg in sorted(system_libs):
        copyright_file = Path("/usr/share/doc") / pkg / "copyright"
        folder = out_dir / f"debian-{pkg}"
        folder.mkdir()
        if copyright_file.is_file():
            shutil.copyfile(copyright_file, folder / "copyright")
        (folder / "LIBRARIES.txt").write_text("\n".join(sorted(set(system_libs[pkg]))) + "\n")
        rows.append(
            (
                f"{pkg} (Debian package)",
                "",
                "see copyright",
                ", ".join(sorted(set(system_libs[pkg]))),
            )
        )

    python_licence = (
        Path(sys.base_prefix)
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "LICENSE.txt"
    )
    py_folder = out_dir / f"python-{sys.version.split()[0]}"
    py_folder.mkdir()
    if python_licence.is_file():
        shutil.copyfile(python_licence, py_folder / "LICENSE.txt")
    rows.append(("Python", sys.version.split()[0], "PSF-2.0", "https://www.python.org"))

    lines = [
        "# Third-party notices",
        "",
        "Hilum bundles the following third-party software. Each folder beside this file holds the",
        "licence texts and notices shipped by that component.",
        "",
        "| component | version | licence | home page / libraries |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {v} | {lic.replace('|', '/')} | {h} |" for n, v, lic, h in rows]
    if missing_text:
        lines += [
            "",
            "These wheels ship no licence text; their licence is named in their METADATA.txt",
            "and the full text is at the project's home page:",
            "",
        ]
        lines += [f"- {m}" for m in missing_text]
    if unowned:
        lines += ["", "Libraries whose owner could not be determined automatically:", ""]
        lines += [f"- {Path(u).name}" for u in sorted(set(unowned))]
    (out_dir / "THIRD_PARTY_NOTICES.md").write_text("\n".join(lines) + "\n")
    return {
        "distributions": len(dists),
        "system_packages": len(system_libs),
        "unowned": len(unowned),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--manifest`` (from the spec) and ``--out`` (the bundle's licenses/)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    summary = collect(args.manifest, args.out)
    print(
        f"licenses: {summary['distributions']} Python distributions, "
        f"{summary['system_packages']} system packages, {summary['unowned']} unowned libraries "
        f"-> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
