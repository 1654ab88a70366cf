#!/usr/bin/env bash
# Install the Hilum bundle system-wide (run from inside the bundle folder, as root):
#
#   sudo ./install.sh                 # -> /opt/hilum, /usr/local/bin/hilum, menu entry, .dcm association
#   sudo ./install.sh --uninstall
#
# PREFIX (default /opt/hilum), BINDIR (/usr/local/bin) and DATADIR (/usr/share) can be overridden,
# and DESTDIR stages everything under another root (packaging, tests).
set -euo pipefail
SRC="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${PREFIX:-/opt/hilum}"
BINDIR="${BINDIR:-/usr/local/bin}"
DATADIR="${DATADIR:-/usr/share}"
DESTDIR="${DESTDIR:-}"

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$DESTDIR$PREFIX" "$DESTDIR$BINDIR/hilum" "$DESTDIR$DATADIR/applications/hilum.desktop" \
         "$DESTDIR$DATADIR/icons/hicolor/256x256/apps/hilum.png" "$DESTDIR$DATADIR/icons/hicolor/scalable/apps/hilum.svg"
  echo "Hilum removed."
  exit 0
fi

test -x "$SRC/hilum" || { echo "install.sh: run it from the hilum bundle folder" >&2; exit 1; }
case "$PREFIX" in /|/usr|/usr/local|/opt|"") echo "install.sh: refusing PREFIX=$PREFIX" >&2; exit 1;; esac
mkdir -p "$DESTDIR$BINDIR" "$DESTDIR$DATADIR/applications" \
         "$DESTDIR$DATADIR/icons/hicolor/256x256/apps" "$DESTDIR$DATADIR/icons/hicolor/scalable/apps"
if [ ! -d "$DESTDIR$PREFIX" ] || [ "$SRC" != "$(cd "$DESTDIR$PREFIX" && pwd)" ]; then
  rm -rf "$DESTDIR$PREFIX"          # a previous version: replaced whole, never merged
  mkdir -p "$DESTDIR$PREFIX"
  cp -a "$SRC"/. "$DESTDIR$PREFIX"/
fi
ln -sf "$PREFIX/hilum" "$DESTDIR$BINDIR/hilum"
# the menu entry points at the installed executable (no PATH assumptions)
sed -e "s|^Exec=hilum |Exec=$PREFIX/hilum |" -e "s|^TryExec=hilum|TryExec=$PREFIX/hilum|" \
    "$SRC/hilum.desktop" >"$DESTDIR$DATADIR/applications/hilum.desktop"
cp "$SRC/hilum.png" "$DESTDIR$DATADIR/icons/hicolor/256x256/apps/hilum.png"
cp "$SRC/hilum.svg" "$DESTDIR$DATADIR/icons/hicolor/scalable/apps/hilum.svg"
# application/dicom (*.dcm) is defined by shared-mime-info; refresh the caches when installed live
if [ -z "$DESTDIR" ]; then
  command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATADIR/applications" || true
  command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATADIR/icons/hicolor" || true
fi
echo "Hilum installed in $PREFIX (command: $BINDIR/hilum). Check it with: hilum --self-test"
