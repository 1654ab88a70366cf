#!/usr/bin/env bash
# Build Hilum.app and a drag-to-Applications disk image on macOS (12 or newer, arm64 or x86_64).
#
#   installer/macos/build_dmg.sh --setup   # first time: .venv with the macOS ONNX Runtime packages
#   installer/macos/build_dmg.sh           # dist/Hilum.app and dist/Hilum-<version>.dmg
#
# Signing/notarisation (optional): HILUM_CODESIGN_IDENTITY="Developer ID Application: ..." and
# HILUM_NOTARY_PROFILE=<notarytool keychain profile>. Without them the app is signed ad hoc and
# Gatekeeper asks the user to confirm the first start (right-click > Open).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname -s)" = Darwin ] || { echo "build_dmg.sh: run this on macOS" >&2; exit 1; }
PYTHON="${PYTHON:-.venv/bin/python}"

if [ "${1:-}" = "--setup" ]; then
  # onnxruntime-gpu / onnxruntime-genai-cuda have no macOS wheels: install the CPU/CoreML builds
  # of the same versions instead, everything else exactly as pinned in pyproject.toml.
  python3 -m venv .venv
  reqs=$(.venv/bin/python - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
swap = {"onnxruntime-gpu": "onnxruntime", "onnxruntime-genai-cuda": "onnxruntime-genai"}
out = []
for d in deps:
    name = re.split(r"[=<>!~ \[]", d, 1)[0]
    out.append(d.replace(name, swap[name], 1) if name in swap else d)
print(" ".join(out))
PY
)
  .venv/bin/pip install -q $reqs "pyinstaller==6.22.3"
  .venv/bin/pip install -q --no-deps -e .
  exit 0
fi

"$PYTHON" -m pip install -q "pyinstaller==6.22.3"
rm -rf build/hilum dist/hilum dist/Hilum.app
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build installer/hilum.spec
APP=dist/Hilum.app
test -x "$APP/Contents/MacOS/hilum"
"$PYTHON" installer/collect_licenses.py --manifest build/hilum/bundle_manifest.json \
  --out "$APP/Contents/Resources/licenses"

# adding the licences changed the bundle: sign it again (ad hoc without an identity)
IDENTITY="${HILUM_CODESIGN_IDENTITY:--}"
if [ "$IDENTITY" = "-" ]; then
  codesign --force --deep --sign - "$APP"
else
  codesign --force --deep --options runtime --timestamp --sign "$IDENTITY" "$APP"
fi
codesign --verify --deep --strict "$APP"

# the app must pass its own self-test before it is packaged
HILUM_HOME="$(mktemp -d)" QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/hilum" --self-test

VERSION=$("$PYTHON" -c "import app; print(app.__version__)")
STAGE="$(mktemp -d)"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
DMG="dist/Hilum-$VERSION.dmg"
rm -f "$DMG"
hdiutil create -volname "Hilum $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
rm -rf "$STAGE"

if [ -n "${HILUM_NOTARY_PROFILE:-}" ] && [ "$IDENTITY" != "-" ]; then
  codesign --sign "$IDENTITY" --timestamp "$DMG"
  xcrun notarytool submit "$DMG" --keychain-profile "$HILUM_NOTARY_PROFILE" --wait
  xcrun stapler staple "$DMG"
fi
echo "built $DMG ($(du -sh "$DMG" | cut -f1))"
