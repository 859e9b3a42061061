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
# what the tests run for real: restic against neostore-server
# (tests/test_server.py), FUSE 3 for `neostore mount` (tests/test_mount.py),
# unzip for `dump --archive zip` (tests/test_archive.py), headless Chromium
# and its driver for `neostore ui` (tests/test_ui_browser.py), a single-node
# Ceph with its RADOS Gateway for s3: repositories (tests/services/ceph.py),
# OpenSSH's server for sftp: repositories (tests/services/sshd.py), rclone
# serving restic's REST protocol for rest: repositories (tests/services/rclone.py),
# exFAT and FAT volumes through FUSE for restores onto file systems that fold
# case and refuse names (tests/services/fatfs.py), systemd-analyze to verify
# the timers `neostore schedule` writes (tests/test_profiles.py)
missing=()
command -v restic >/dev/null 2>&1 || missing+=(restic)
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
ldconfig -p 2>/dev/null | grep -q 'libfuse3\.so\.3' || missing+=(libfuse3-3)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
for tool in ceph-mon ceph-osd radosgw; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
command -v ceph >/dev/null 2>&1 || missing+=(ceph-common)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v mkfs.exfat >/dev/null 2>&1 || missing+=(exfatprogs)
command -v mount.exfat-fuse >/dev/null 2>&1 || missing+=(exfat-fuse)
command -v mkfs.fat >/dev/null 2>&1 || missing+=(dosfstools)
command -v fusefat >/dev/null 2>&1 || missing+=(fusefat)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "scripts/test.sh: the tests need ${missing[*]}" >&2
        exit 1
    fi
fi
.venv/bin/python -m pytest "$@"
if [ $# -eq 0 ]; then
    # the suites that start worker processes, again with them spawned (the
    # only start method on Windows, macOS's default) instead of forked
    NEOSTORE_START_METHOD=spawn .venv/bin/python -m pytest -q \
        tests/test_roundtrip.py tests/test_dedup.py tests/test_restore_delta.py \
        tests/test_restore_remote.py tests/test_roles.py tests/test_server.py \
        tests/test_startmethod.py tests/test_restrictive_dest.py tests/test_interrupted.py \
        tests/test_errors.py "tests/test_patterns.py::test_streams_are_backed_up_as_one_file" \
        "tests/test_patterns.py::test_dry_run_says_what_would_be_added_and_stores_nothing"
fi
