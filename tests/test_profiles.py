"""Profiles and schedules (issue 20, items 11 and 12): ``neostore run
PROFILE`` does snapshot → forget → prune → check as a TOML file says,
with hooks and one summary; ``neostore schedule`` writes systemd units
that ``systemd-analyze verify`` accepts, a launchd plist and a Task
Scheduler task, checked against their formats."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from neostore import schedules
from neostore.errors import UsageError
from neostore.profiles import load_profiles

from conftest import PASSWORD, Cli


def _config(tmp_path: Path, repo: Cli, body: str) -> Path:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    path = tmp_path / "config.toml"
    path.write_text(f'[profiles.docs]\nrepo = "{repo.repo}"\npassword-file = "{pw}"\n' + body)
    return path


def _src(tmp_path: Path) -> Path:
    src = tmp_path / "docs"
    (src / "cache").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "cache" / "junk").write_text("junk")
    return src


def test_run_does_what_the_profile_says(repo: Cli, tmp_path: Path) -> None:
    src = _src(tmp_path)
    marks = tmp_path / "marks"
    config = _config(
        tmp_path,
        repo,
        f'paths = ["{src}"]\nexclude = ["cache"]\ntag = ["scheduled"]\nhost = "laptop"\n'
        'keep-last = 2\nprune = true\ncheck = true\nread-data-subset = "50%"\n'
        f'before = ["echo before >> {marks}"]\n'
        f'after = ["echo after $NEOSTORE_PROFILE >> {marks}"]\n',
    )
    for _ in range(3):
        ran = repo("run", "docs", "--config", config, password=None)
        assert ran.code == 0, ran.err
    assert "profile docs: snapshot " in ran.out and "forgot 1" in ran.out and "check ok" in ran.out
    assert marks.read_text() == "before\nafter docs\n" * 3
    listed = repo.ok("snapshots", "--json").json()
    assert len(listed) == 2 and all(s["host"] == "laptop" for s in listed)
    assert all(s["tags"] == ["scheduled"] for s in listed)
    files = {e["path"] for e in repo.ok("ls", "latest", src, "-R", "--json").json()}
    assert str(src / "a.txt") in files and str(src / "cache") not in files
    streamed = repo("--progress", "run", "docs", "--config", config, "--json", password=None)
    phases = {json.loads(line)["phase"] for line in streamed.err.splitlines()}
    assert {"snapshot", "check"} <= phases  # the steps' progress, passed on as it comes
    as_json = streamed.json()
    assert as_json["ok"] and [s["step"] for s in as_json["steps"]] == [
        "snapshot", "forget", "prune", "check"
    ]  # fmt: skip
    assert as_json["steps"][0]["result"]["files_unchanged"] == 1


def test_a_failing_step_or_hook_runs_on_failure_and_exits_with_its_code(
    repo: Cli, tmp_path: Path
) -> None:
    src = _src(tmp_path)
    marks = tmp_path / "marks"
    hooks = f'on-failure = ["echo $NEOSTORE_FAILED_STEP: $NEOSTORE_ERROR >> {marks}"]\n'
    config = _config(tmp_path, repo, f'paths = ["{src}"]\nbefore = ["exit 4"]\n' + hooks)
    failed = repo("run", "docs", "--config", config, password=None)
    assert failed.code == 1 and "hook 'exit 4' exited 4" in failed.err
    assert marks.read_text().startswith("before: ")
    assert repo.ok("snapshots", "--json").json() == []  # nothing ran after the hook
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(config.read_text().replace('before = ["exit 4"]\n', "").replace(
        f'password-file = "{tmp_path / "pw"}"', 'password-command = "echo not-it"'))  # fmt: skip
    refused = repo("run", "docs", "--config", wrong, "--json", password=None)
    assert refused.code == 12  # the snapshot's exit code: wrong password
    assert refused.json()["steps"][0]["exit_code"] == 12
    assert marks.read_text().splitlines()[-1].startswith("snapshot: snapshot: ")


def test_a_second_run_of_a_profile_is_refused(repo: Cli, tmp_path: Path) -> None:
    src = _src(tmp_path)
    started = tmp_path / "started"
    config = _config(tmp_path, repo, f'paths = ["{src}"]\nbefore = ["touch {started}; sleep 5"]\n')
    env = dict(repo.env, NEOSTORE_REPO=str(repo.repo))
    env.pop("NEOSTORE_PASSWORD", None)
    first = subprocess.Popen(
        [sys.executable, "-m", "neostore_cli.main", "run", "docs", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = repo("run", "docs", "--config", config, password=None)
        assert second.code == 1 and "profile docs is already running" in second.err
    finally:
        assert first.wait(timeout=120) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[profiles.docs]\npaths = ["/x"]\nkeep-daily = "7"\n', "'keep-daily' must be an integer"),
        ('[profiles.docs]\npaths = ["/x"]\nexclud = ["a"]\n', "unknown key 'exclud'"),
        ('[profiles.docs]\nrepo = "/r"\n', "give 'paths'"),
        ('[profile.docs]\npaths = ["/x"]\n', "unknown key 'profile'"),
        ('[profiles.docs]\npaths = ["/x"]\nkeep-daily = = 7\n', "line 3"),
    ],
)
def test_configuration_errors_name_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as caught:
        load_profiles(path)
    assert str(path) in str(caught.value)


def test_cli_configuration_errors_exit_2(cli: Cli, tmp_path: Path) -> None:
    missing = cli("run", "docs", "--config", tmp_path / "none.toml")
    assert missing.code == 2 and "no configuration file there" in missing.err
    path = tmp_path / "c.toml"
    path.write_text('[profiles.other]\npaths = ["/x"]\n')
    unknown = cli("run", "docs", "--config", path)
    assert unknown.code == 2 and "no profile 'docs'" in unknown.err and "other" in unknown.err


def _job(every: str) -> schedules.Job:
    return schedules.Job("docs", schedules.parse_every(every), ["/usr/bin/neostore", "run", "docs"])


@pytest.mark.parametrize("every", ["hourly", "daily", "weekly", "monthly", "02:30"])
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path, every: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian's systemd package has it)")
    neostore = Path(sys.executable).parent / "neostore"
    job = schedules.Job("docs", schedules.parse_every(every), [str(neostore), "run", "docs"])
    units = schedules.systemd_units(job)
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
    for scope in (["--user"], []):
        done = subprocess.run(
            [analyze, *scope, "verify", *(str(tmp_path / n) for n in units)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0 and "neostore-docs" not in done.stderr, done.stderr
    calendar = subprocess.run(
        [analyze, "calendar", schedules.on_calendar(job.when)], capture_output=True, text=True
    )
    assert calendar.returncode == 0, calendar.stderr
    broken = units["neostore-docs.timer"].replace("OnCalendar=", "OnCalendar=every-")
    (tmp_path / "neostore-docs.timer").write_text(broken)
    refused = subprocess.run(
        [analyze, "verify", str(tmp_path / "neostore-docs.timer")], capture_output=True, text=True
    )
    assert refused.returncode != 0  # the check can fail


def test_launchd_plist_has_the_keys_launchd_reads() -> None:
    for every, interval in [
        ("hourly", {"Minute": 0}),
        ("daily", {"Minute": 0, "Hour": 0}),
        ("weekly", {"Minute": 0, "Hour": 0, "Weekday": 0}),
        ("monthly", {"Minute": 0, "Hour": 0, "Day": 1}),
        ("02:30", {"Minute": 30, "Hour": 2}),
    ]:
        plist = plistlib.loads(schedules.launchd_plist(_job(every), Path("/Users/me/Library/Logs")))
        assert plist["Label"] == "org.neostore.docs"
        assert plist["ProgramArguments"] == ["/usr/bin/neostore", "run", "docs"]
        assert plist["StartCalendarInterval"] == interval
        assert plist["StandardErrorPath"].endswith("neostore-docs.log")


def test_task_scheduler_xml_follows_the_task_schema() -> None:
    ns = {"t": schedules.TASK_NS}
    for every, kind in [
        ("hourly", "TimeTrigger"),
        ("daily", "CalendarTrigger"),
        ("weekly", "CalendarTrigger"),
        ("monthly", "CalendarTrigger"),
        ("02:30", "CalendarTrigger"),
    ]:
        text = schedules.task_xml(_job(every))
        root = ET.fromstring(text.encode("utf-16"))
        assert root.tag == f"{{{schedules.TASK_NS}}}Task" and root.get("version") == "1.2"
        # the schema's order of the top-level elements
        order = [child.tag.split("}")[1] for child in root]
        assert order == ["RegistrationInfo", "Triggers", "Principals", "Settings", "Actions"]
        trigger = root.find(f"t:Triggers/t:{kind}", ns)
        assert trigger is not None and trigger.find("t:StartBoundary", ns) is not None
        if every == "hourly":
            assert trigger.findtext("t:Repetition/t:Interval", namespaces=ns) == "PT1H"
        if every == "02:30":
            assert trigger.findtext("t:StartBoundary", namespaces=ns).endswith("T02:30:00")
        assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=ns) == "/usr/bin/neostore"
        assert root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=ns) == "run docs"


def test_schedule_install_writes_the_units_and_says_why_enabling_failed(
    repo: Cli, tmp_path: Path
) -> None:
    """PID 1 is no systemd here: install writes the units, says enabling
    failed (exit 1), list shows the timer, remove deletes the files."""
    src = _src(tmp_path)
    config = _config(tmp_path, repo, f'paths = ["{src}"]\n')
    home = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    shown = repo("schedule", "install", "docs", "--every", "02:30", "--config", config, "--print")
    assert shown.code == 0 and "OnCalendar=*-*-* 02:30:00" in shown.out
    assert f"run docs --config {config}" in shown.out
    assert not (tmp_path / "xdg").exists()
    mac = repo("schedule", "install", "docs", "--every", "daily", "--config", config,
               "--print", "--kind", "launchd")  # fmt: skip
    assert mac.code == 0 and "<key>StartCalendarInterval</key>" in mac.out
    installed = repo("schedule", "install", "docs", "--every", "daily", "--config", config,
                     extra_env=home)  # fmt: skip
    units = tmp_path / "xdg" / "systemd" / "user"
    assert (units / "neostore-docs.timer").exists() and (units / "neostore-docs.service").exists()
    if installed.code != 0:  # no systemd user instance here (PID 1 is no systemd)
        assert installed.code == 1 and "written, but not enabled: systemctl" in installed.err
    listed = repo("schedule", "list", extra_env=home)
    assert listed.code == 0 and listed.out.split()[:2] == ["docs", "daily"]
    removed = repo("schedule", "remove", "docs", extra_env=home)
    assert not (units / "neostore-docs.timer").exists()
    assert removed.code in (0, 1) and "removed" in removed.out
    again = repo("schedule", "remove", "docs", extra_env=home)
    assert again.code == 1 and "not scheduled" in again.err
    bad = repo("schedule", "install", "docs", "--every", "25:00", "--config", config, "--print")
    assert bad.code == 2 and "HH:MM" in bad.err
    assert "Traceback" not in installed.err + removed.err


def test_the_ui_lists_profiles_and_runs_them(repo: Cli, tmp_path: Path) -> None:
    from uiutil import Ui

    src = _src(tmp_path)
    (src / "data.bin").write_bytes(os.urandom(200_000))
    config = _config(tmp_path, repo, f'paths = ["{src}"]\ntag = ["from-ui"]\ncheck = true\n')
    with Ui(repo, env={"NEOSTORE_CONFIG": str(config)}) as ui:
        ui.login()
        page = ui.get("/profiles")
        assert page.status == 200 and "docs" in page.text and "snapshot → check" in page.text
        started = ui.post("/profiles/docs/run", {})
        assert started.status == 303 and started.headers["Location"] == ui.base + "jobs/1"
        job = ui.wait_job(1)
        assert job["state"] == "done", job
        assert job["bytes"] >= 200_005  # the steps' progress reached the page
        assert ui.post("/profiles/nope/run", {}).status == 404
    listed = repo.ok("snapshots", "--json").json()
    assert [s["tags"] for s in listed] == [["from-ui"]]
