#!/usr/bin/env bash
# Build the Linux one-folder desktop bundle dist/hilum/ (see installer/README.md).
#
#   installer/build.sh            # uses .venv/bin/python (or $PYTHON)
#
# Result: dist/hilum/hilum (executable), dist/hilum/models/, dist/hilum/resources/,
# dist/hilum/licenses/ (third-party notices), dist/hilum/hilum.desktop + hilum.png,
# dist/hilum/install.sh (installs under /opt/hilum with a menu entry and .dcm association).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
PYINSTALLER_VERSION="6.22.3"   # keep equal to the pin in pyproject.toml's dev extra

if [ "$("$PYTHON" -c 'import PyInstaller; print(PyInstaller.__version__)' 2>/dev/null)" != "$PYINSTALLER_VERSION" ]; then
  echo "build.sh: installing pyinstaller==$PYINSTALLER_VERSION into $PYTHON's environment"
  "$PYTHON" -m pip install -q "pyinstaller==$PYINSTALLER_VERSION"
fi

# PyInstaller bundles the libraries Qt's xcb plugin links to from this machine: they must be
# here, or the bundle would abort on a desktop without them (app/gui/platform_check.py lists them)
missing=$(PYTHONPATH=. "$PYTHON" -m app.gui.platform_check | tr '\n' ' ')
if [ -n "${missing// /}" ]; then
  echo "build.sh: install the xcb libraries the bundle carries first: sudo apt-get -o DPkg::Lock::Timeout=300 install $missing" >&2
  exit 1
fi

start=$(date +%s)
rm -rf dist/hilum build/hilum
# Quiet unless something goes wrong: the full log is kept in build/pyinstaller.log.
mkdir -p build
if ! "$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build \
      installer/hilum.spec >build/pyinstaller.log 2>&1; then
  tail -n 60 build/pyinstaller.log >&2
  echo "build.sh: PyInstaller failed (full log: build/pyinstaller.log)" >&2
  exit 1
fi

# desktop integration files and the licence notices
cp installer/linux/hilum.desktop installer/linux/install.sh dist/hilum/
cp resources/icons/hilum.png resources/icons/hilum.svg dist/hilum/
chmod +x dist/hilum/install.sh
"$PYTHON" installer/collect_licenses.py --manifest build/hilum/bundle_manifest.json --out dist/hilum/licenses

# the bundle must at least start and find its data
test -x dist/hilum/hilum
test -d dist/hilum/models && test -d dist/hilum/resources
dist/hilum/hilum --version
echo "build.sh: dist/hilum built in $(( $(date +%s) - start )) s, size $(du -sh dist/hilum | cut -f1)"
