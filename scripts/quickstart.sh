#!/usr/bin/env bash
# Install neostore into .venv, create a local repository (once) and back up a folder.
#   bash scripts/quickstart.sh [FOLDER]      (default: ~/Documents)
# Repository: $NEOSTORE_REPO, default ~/neostore-repo. Password: prompted, or
# $NEOSTORE_PASSWORD / $NEOSTORE_PASSWORD_FILE.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python3}
if [ ! -x "$here/.venv/bin/python" ]; then
    "$PYTHON" -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install --quiet -e "$here"
export NEOSTORE_REPO="${NEOSTORE_REPO:-$HOME/neostore-repo}"
folder="${1:-$HOME/Documents}"
neostore="$here/.venv/bin/neostore"
if [ ! -f "$NEOSTORE_REPO/config" ]; then
    echo "creating repository $NEOSTORE_REPO" >&2
    "$neostore" init
fi
"$neostore" snapshot "$folder"
"$neostore" snapshots
