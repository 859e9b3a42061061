"""Which platforms neostore installs on from wheels alone: for every
dependency in pyproject.toml (with its own dependencies), ask pip for
binary wheels for each target platform and Python version, and print a
table (Markdown) of what resolves and what does not.

    python scripts/wheels.py [--python 3.11 --python 3.13] [--json FILE]

Needs network access to the package index; downloads into a temporary
folder that is removed afterwards. A dependency marked for other platforms
only (``uvloop; sys_platform != 'win32'``) is skipped where it does not
apply.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
#: name -> (pip --platform tags, the environment markers see)
PLATFORMS: dict[str, tuple[list[str], dict[str, str]]] = {
    "Windows x86-64": (["win_amd64"], {"sys_platform": "win32", "platform_system": "Windows"}),
    "macOS arm64": (["macosx_14_0_arm64"], {"sys_platform": "darwin", "platform_system": "Darwin"}),
    "macOS x86-64": (
        ["macosx_14_0_x86_64"],
        {"sys_platform": "darwin", "platform_system": "Darwin"},
    ),
    "Linux aarch64 (glibc)": (
        ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
        {"sys_platform": "linux", "platform_system": "Linux"},
    ),
    "Linux x86-64 (musl)": (
        ["musllinux_1_2_x86_64", "musllinux_1_1_x86_64"],
        {"sys_platform": "linux", "platform_system": "Linux"},
    ),
    "Linux aarch64 (musl)": (
        ["musllinux_1_2_aarch64", "musllinux_1_1_aarch64"],
        {"sys_platform": "linux", "platform_system": "Linux"},
    ),
}


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def check(requirement: Requirement, tags: list[str], python: str, where: Path) -> str:
    """ "ok", or pip's reason for failing (its last error line)."""
    abi = "cp" + python.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
           "--python-version", python, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
           "--abi", "none", "-d", str(where), str(requirement)]  # fmt: skip
    for tag in tags:
        cmd[4:4] = ["--platform", tag]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode == 0:
        return "ok"
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    return (errors[0] if errors else done.stderr.strip()[-200:]).replace("ERROR: ", "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", help="Python versions (default 3.11, 3.13)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    pythons = args.python or ["3.11", "3.13"]
    results: dict[str, dict[str, dict[str, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for platform, (tags, env) in PLATFORMS.items():
            for python in pythons:
                column = f"{platform}, Python {python}"
                results[column] = {}
                for requirement in requirements():
                    marker = requirement.marker
                    if marker is not None and not Marker(str(marker)).evaluate(env):
                        results[column][requirement.name] = "not needed"
                        continue
                    outcome = check(requirement, tags, python, Path(tmp))
                    results[column][requirement.name] = outcome
                    print(f"{column}: {requirement.name}: {outcome}", file=sys.stderr, flush=True)
    names = [r.name for r in requirements()]
    print("| dependency | " + " | ".join(results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for name in names:
        cells = ["yes" if results[c][name] == "ok" else results[c][name][:60] for c in results]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if all(v in ("ok", "not needed") for c in results.values() for v in c.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
