#!/usr/bin/env bash
# Install neostore with its test extra into .venv and run lint, types and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# tests/test_server.py runs the real restic client against neostore-server
if ! command -v restic >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq restic >/dev/null
    else
        echo "scripts/test.sh: the tests need restic (https://restic.net)" >&2
        exit 1
    fi
fi
.venv/bin/python -m pytest "$@"
