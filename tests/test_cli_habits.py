"""What a restic user types (issue 20, items 1-3 and 7): global options
before or after the command, ``backup``, ``--version``, completion
scripts, choices in ``--help``, one typo suggestion, ``-v``/``-q``, and a
summary line on stderr even when it is no terminal."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest

from neostore_cli.group import reorder
from neostore_cli.main import app

from conftest import PASSWORD, Cli


def _tree(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("a" * 3000)
    (root / "b.txt").write_text("b")
    return root


def test_global_options_go_before_or_after_the_command(repo: Cli, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    repo.ok("snapshot", src)
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD)
    before = repo(
        "-r", repo.repo, "--password-file", password_file, "--json", "snapshots", password=None
    )
    after = repo(
        "snapshots", "-r", repo.repo, "--password-file", password_file, "--json", password=None
    )
    assert before.code == after.code == 0, before.err + after.err
    assert before.json() == after.json() and len(before.json()) == 1
    elsewhere = repo(f"--repo={tmp_path / 'none'}", "snapshots")
    assert (
        elsewhere.code == 10 and "no repository there" in elsewhere.err
    )  # -r wins over the variable
    # the group's own options after the command (a local repository ignores them)
    pinned = repo("snapshots", "--server-fingerprint", "SHA256:" + "A" * 43, "--json")
    assert pinned.code == 0 and pinned.json() == before.json()
    nested = repo("-r", repo.repo, "--json", "key", "list")
    assert nested.code == 0 and nested.json()[0]["role"] == "owner"
    refused = repo("--json", "completion", "bash")
    assert refused.code == 2 and "'completion' does not take --json" in refused.err


def test_reorder_leaves_values_and_what_follows_a_double_dash() -> None:
    ctx = click.Context(click.Command("neostore"))
    group = typer_group()
    args = ["-r", "R", "--json", "ls", "latest", "/x", "--", "-r", "--json"]
    assert reorder(group, ctx, args) == [
        "ls",
        "-r",
        "R",
        "--json",
        "latest",
        "/x",
        "--",
        "-r",
        "--json",
    ]
    args = ["find", "--server-ca", "ca.pem", "-vv", "*.txt"]
    assert reorder(group, ctx, args) == ["--server-ca", "ca.pem", "find", "-vv", "*.txt"]
    # a value that looks like a command is the option's value, not the command
    assert reorder(group, ctx, ["--password-file", "restore", "ls", "x"])[:3] == [
        "ls",
        "--password-file",
        "restore",
    ]


def typer_group() -> click.Group:
    import typer

    command = typer.main.get_command(app)
    assert isinstance(command, click.Group)
    return command


def test_backup_is_snapshot_and_restore_target_dir_says_what_to_type(
    repo: Cli, tmp_path: Path
) -> None:
    src = _tree(tmp_path / "src")
    made = repo("backup", src)
    assert made.code == 0 and re.fullmatch(r"[0-9a-f]{64}\n", made.out)
    assert "backup" not in repo("--help").out.split("Commands:")[1]  # restic's name, not listed
    wrong = repo("restore", "latest", "--target", tmp_path / "out")
    assert wrong.code == 2
    assert f"type: neostore restore latest --to {tmp_path / 'out'}" in wrong.err
    assert not (tmp_path / "out").exists()
    missing = repo("restore", "latest")
    assert missing.code == 2 and "Missing option '--to'" in missing.err


def test_version_help_choices_and_one_suggestion(cli: Cli) -> None:
    shown = cli("--version")
    assert shown.code == 0 and shown.out == f"neostore {version('neostore')}\n"
    restore_help = cli("restore", "--help").out
    assert "[always|if-changed|if-newer|never]" in restore_help
    assert "[rename|skip|fail]" in restore_help
    assert "[owner|writer|reader|read-write]" in cli("key", "add", "--help").out
    forget_help = cli("forget", "--help").out
    assert "--keep-last" in forget_help and "[default: 0]" not in forget_help
    typo = cli("chekc")
    assert typo.code == 2 and typo.err.count("Did you mean") == 1 and "'check'" in typo.err
    restic = cli("rebuild-index")
    assert restic.code == 2 and "neostore repair index" in restic.err


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_scripts_are_printed(cli: Cli, shell: str) -> None:
    script = cli("completion", shell)
    assert script.code == 0 and "_NEOSTORE_COMPLETE" in script.out and "neostore" in script.out


def test_bash_completes_commands_with_the_printed_script(tmp_path: Path) -> None:
    """The script, sourced by a real bash, asks the installed command."""
    bash = shutil.which("bash")
    assert bash is not None
    bindir = Path(sys.executable).parent
    assert (bindir / "neostore").exists(), "the neostore command is installed beside python"
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    line = (
        "source <(neostore completion bash); COMP_WORDS=(neostore sna); COMP_CWORD=1; "
        '_neostore_completion neostore; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run([bash, "-c", line], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["snapshot", "snapshots"]


def test_verbose_lists_files_quiet_says_nothing_and_the_summary_is_always_there(
    repo: Cli, tmp_path: Path
) -> None:
    src = _tree(tmp_path / "src")
    first = repo("snapshot", "-v", src)
    assert first.code == 0
    assert f"new       {src / 'docs' / 'a.txt'}" in first.err
    # stderr is no terminal here: the summary is written all the same
    assert re.search(r"files 2 new, 0 changed, 0 unchanged; read 2\.93 KiB of 2\.93 KiB", first.err)
    (src / "b.txt").write_text("changed")
    second = repo("-v", "snapshot", src)
    assert (
        f"changed   {src / 'b.txt'}" in second.err and "unchanged" not in second.err.split("\n")[0]
    )
    assert f"unchanged {src / 'docs' / 'a.txt'}" not in second.err
    third = repo("snapshot", "-vv", src)
    assert f"unchanged {src / 'docs' / 'a.txt'}" in third.err
    quiet = repo("snapshot", "-q", src)
    assert quiet.code == 0 and quiet.err == "" and len(quiet.out.strip()) == 64
    out = tmp_path / "out"
    restored = repo("restore", "-v", f"latest:{src}", "--to", out)
    assert restored.code == 0
    assert f"restored  {src / 'docs' / 'a.txt'}" in restored.err
    assert re.search(r"restored 2 files, 1 directories \(2\.94 KiB written", restored.err)
    silent = repo("restore", "-q", f"latest:{src}", "--to", tmp_path / "out2")
    assert silent.code == 0 and silent.err == ""


def test_if_changed_applies_metadata_changed_since_the_last_restore(
    repo: Cli, tmp_path: Path
) -> None:
    src = _tree(tmp_path / "src")
    os.chmod(src / "b.txt", 0o640)
    os.setxattr(src / "b.txt", "user.note", b"as backed up")
    repo.ok("snapshot", src)
    out = tmp_path / "out"
    repo.ok("restore", f"latest:{src}", "--to", out)
    os.chmod(out / "b.txt", 0o600)
    os.setxattr(out / "b.txt", "user.note", b"changed since")
    inode = (out / "b.txt").stat().st_ino
    again = repo("restore", f"latest:{src}", "--to", out, "--overwrite", "if-changed", "--json")
    assert again.code == 0, again.err
    assert again.json()["files_skipped"] == 2 and again.json()["bytes_downloaded"] == 0
    assert (out / "b.txt").stat().st_mode & 0o777 == 0o640
    assert os.getxattr(out / "b.txt", "user.note") == b"as backed up"
    assert (out / "b.txt").stat().st_ino == inode  # the file itself was left alone


def test_check_says_each_finding_once_and_find_says_no_match(repo: Cli, tmp_path: Path) -> None:
    repo.ok("snapshot", _tree(tmp_path / "src"))
    nothing = repo("find", "no-such-name")
    assert nothing.code == 0 and nothing.out == "" and "no match in 1 snapshot(s)" in nothing.err
    packs = sorted(p for p in (repo.repo / "data").rglob("*") if p.is_file())
    damaged = bytearray(packs[0].read_bytes())
    damaged[len(damaged) // 2] ^= 1
    packs[0].write_bytes(bytes(damaged))
    text = repo("check", "--read-data")
    assert text.code == 1
    lines = [line for line in text.err.splitlines() if line.startswith("error: ")]
    assert lines and len(lines) == len(set(lines)), text.err
    assert f"{len(lines)} error(s)" in text.out
    as_json = repo("check", "--read-data", "--json")
    assert as_json.code == 1 and len(as_json.json()["errors"]) == len(lines)


def test_password_command_and_the_warning_at_init(cli: Cli, tmp_path: Path) -> None:
    """restic's --password-command, before or after the command's name;
    one that fails is a clear error; init says a lost password is lost data."""
    secret = tmp_path / "secret"
    secret.write_text("a long passphrase from the keychain\n")
    fetch = f"cat {secret}"
    made = cli("init", "--password-command", fetch, password=None)
    assert made.code == 0, made.err
    assert "a lost password means lost data" in made.err
    listed = cli("--password-command", fetch, "snapshots", "--json", password=None)
    assert listed.code == 0 and listed.json() == []
    wrong = cli("snapshots", "--password-command", "echo not it", password=None)
    assert wrong.code == 12
    failed = cli("snapshots", "--password-command", "false", password=None)
    assert failed.code == 1 and "--password-command: exited with status 1" in failed.err
    both = cli("snapshots", "--password-command", fetch, "--password-file", secret, password=None)
    assert both.code == 2 and "not both" in both.err


def test_json_errors_warnings_and_progress_on_stderr(repo: Cli, tmp_path: Path) -> None:
    """Under --json what goes to stderr is JSON too, a line each; with
    --progress, progress events stream there (issue 20, items 8 and 9)."""
    import json

    missing = repo("snapshots", "--json", "-r", tmp_path / "nowhere")
    assert missing.code == 10 and missing.out == ""
    (error,) = [json.loads(line) for line in missing.err.splitlines()]
    assert error["type"] == "error" and error["exit_code"] == 10
    assert "no repository there" in error["message"]
    src = _tree(tmp_path / "src")
    made = repo("snapshot", "--json", "--progress", src)
    assert made.code == 0, made.err
    events = [json.loads(line) for line in made.err.splitlines()]
    assert events and all(e["type"] == "progress" for e in events)
    last = events[-1]
    assert (last["phase"], last["bytes_done"], last["items_done"]) == ("snapshot", 3001, 2)
    assert last["bytes_total"] in (None, 3001)  # the pre-count may finish after the snapshot
    out = tmp_path / "out"
    restored = repo("--progress", "restore", "latest", "--to", out, "--json", "-v")
    events = [json.loads(line) for line in restored.err.splitlines()]
    assert {e["type"] for e in events} == {"progress", "file"}
    assert sorted(e["path"] for e in events if e["type"] == "file") == [
        str(src / "b.txt"), str(src / "docs" / "a.txt")
    ]  # fmt: skip
    final = [e for e in events if e["type"] == "progress"][-1]
    assert final["bytes_done"] == final["bytes_total"] == 3001 and final["eta_seconds"] == 0
    nothing = repo("forget", "--json")
    (warning,) = [json.loads(line) for line in nothing.err.splitlines()]
    assert warning["type"] == "warning" and "no policy" in warning["message"]
    none_found = repo("find", "nothing-here", "--json")
    assert json.loads(none_found.err)["type"] == "notice" and none_found.json() == []
    # without --json: text, as before
    assert repo("forget").err.startswith("warning: no policy")


def test_prune_streams_its_progress(repo: Cli, tmp_path: Path) -> None:
    import json

    src = _tree(tmp_path / "src")
    first = repo.ok("snapshot", src, "--json").json()["id"]
    (src / "docs" / "a.txt").write_text("rewritten " * 5000)
    repo.ok("snapshot", src)
    repo.ok("forget", first)
    pruned = repo("prune", "--json", "--progress", "--max-unused", "0%", "--grace", "0s")
    assert pruned.code == 0, pruned.err
    phases = {json.loads(line)["phase"] for line in pruned.err.splitlines()}
    assert {"check", "repack"} <= phases
    assert pruned.json()["packs_repacked"] >= 1
