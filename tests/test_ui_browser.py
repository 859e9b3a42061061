"""``neostore ui`` in a real browser: headless Chromium from the system's
packages, driven by Selenium (scripts/test.sh installs both). A failing
test leaves a screenshot of the page it was on (its path is in the
failure). With NEOSTORE_SCREENSHOTS=DIR the main pages are saved there too
(how docs/screenshots/ is made)."""

from __future__ import annotations

import os
import shutil
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from conftest import Cli
from uiutil import Ui

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
]


def _png(width: int, height: int) -> bytes:
    """A small real PNG (a gradient), for the image preview."""
    rows = b"".join(
        b"\0" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if CHROMIUM is None or DRIVER is None:
        pytest.fail("chromium and chromedriver are needed (scripts/test.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except Exception:  # the page is still changing
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Pages:
    """The browser on the UI, with screenshots on demand and on failure."""

    def __init__(self, driver: webdriver.Chrome, ui: Ui, tmp_path: Path) -> None:
        self.driver, self.ui, self.tmp_path = driver, ui, tmp_path
        self.shots = os.environ.get("NEOSTORE_SCREENSHOTS")

    def shot(self, name: str) -> None:
        if self.shots:
            Path(self.shots).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(os.path.join(self.shots, f"{name}.png"))

    def failed(self) -> str:
        path = self.tmp_path / "failure.png"
        self.driver.save_screenshot(str(path))
        return f"screenshot of the page: {path} ({self.driver.current_url})"

    def link(self, text: str) -> WebElement:
        return self.driver.find_element(By.LINK_TEXT, text)

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def job_done(self) -> str:
        state = _wait("the job to end", lambda: self.by_id("job-state").text in
                      ("done", "failed", "cancelled") and self.by_id("job-state").text)  # fmt: skip
        return str(state)

    def unlabelled(self) -> list[str]:
        """Controls without an accessible name, and ones the keyboard cannot reach."""
        return list(self.driver.execute_script(
            """
            const bad = [];
            for (const el of document.querySelectorAll('a, button, input, select, textarea')) {
              if (el.type === 'hidden') continue;
              const name = (el.getAttribute('aria-label') || (el.labels && el.labels.length &&
                el.labels[0].textContent) || el.textContent || el.value || '').trim();
              if (!name) bad.push('no name: ' + el.outerHTML.slice(0, 80));
              if (el.tabIndex < 0) bad.push('not focusable: ' + el.outerHTML.slice(0, 80));
            }
            return bad;
            """
        ))  # fmt: skip

    def tab_reaches_all(self) -> list[str]:
        """Tab through the page: every control is reached, in order."""
        expected = self.driver.execute_script(
            "return [...document.querySelectorAll('a[href], button, input:not([type=hidden]),"
            " select, textarea')].filter(e => e.offsetParent !== null).length"
        )
        body = self.driver.find_element(By.TAG_NAME, "body")
        body.click()
        seen: list[str] = []
        for _ in range(int(expected) + 5):
            self.driver.switch_to.active_element.send_keys(Keys.TAB)
            focused = self.driver.switch_to.active_element
            key = focused.get_attribute("outerHTML")[:120]
            if key in seen:
                break
            seen.append(key)
        return seen if len(seen) >= int(expected) else [f"reached {len(seen)} of {expected}"]


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "docs" / "drafts").mkdir(parents=True)
    (src / "docs" / "notes.txt").write_text("first version of the notes\n")
    (src / "docs" / "drafts" / "plan.md").write_text("# plan\n\n- back up\n- restore\n")
    (src / "photo.png").write_bytes(_png(64, 48))
    (src / "big.bin").write_bytes(os.urandom(2_500_000))
    return src


def test_the_ui_in_a_browser(repo: Cli, tmp_path: Path, browser: webdriver.Chrome) -> None:
    src = _source(tmp_path)
    repo.ok("snapshot", src, "--tag", "first")
    (src / "docs" / "notes.txt").write_text("second version of the notes\n")
    repo.ok("snapshot", src)
    repo.ok("check")
    first, second = (s["id"] for s in repo.ok("snapshots", "--json").json())
    with Ui(repo) as ui:
        pages = Pages(browser, ui, tmp_path)
        try:
            _walkthrough(pages, src, first, second, tmp_path)
        except BaseException as e:
            raise AssertionError(f"{e}\n{pages.failed()}") from e


def _walkthrough(pages: Pages, src: Path, first: str, second: str, tmp_path: Path) -> None:
    driver = pages.driver
    driver.get(pages.ui.url)
    _wait("the snapshot list", lambda: second[:8] in pages.text())
    assert first[:8] in pages.text() and "no problem found" in pages.text()
    assert "?token=" not in driver.current_url  # the token left the address bar
    assert pages.unlabelled() == [] and len(pages.tab_reaches_all()) > 5
    pages.shot("home")
    # browse into the folder that was backed up, one click per component
    pages.driver.find_elements(By.CSS_SELECTOR, "td a")[0].click()
    for part in src.parts[1:]:
        _wait(f"the link to {part}", lambda p=part: pages.link(p + "/")).click()  # type: ignore[misc]
    _wait("the folder", lambda: "big.bin" in pages.text())
    pages.shot("folder")
    pages.link("docs/").click()
    _wait("the notes", lambda: pages.link("notes.txt")).click()
    _wait("the file page", lambda: "second version of the notes" in pages.text())
    assert "changed" in pages.text() and "first version" in pages.text()
    pages.shot("file")
    # download a file: the same bytes
    driver.find_element(By.CSS_SELECTOR, ".crumbs").find_element(By.LINK_TEXT, "src").click()
    _wait("the big file", lambda: pages.link("big.bin")).click()
    _wait("the download link", lambda: pages.by_id("download")).click()
    downloaded = tmp_path / "downloads" / "big.bin"
    _wait("the download", lambda: downloaded.exists() and downloaded.stat().st_size == 2_500_000)
    assert downloaded.read_bytes() == (src / "big.bin").read_bytes()
    # search, from the keyboard
    pages.link("Search").click()
    box = _wait("the search box", lambda: pages.by_id("q"))
    box.send_keys("*.md", Keys.ENTER)
    _wait("matches", lambda: "2 match(es)" in pages.text())
    assert "plan.md" in pages.text() and pages.unlabelled() == []
    pages.shot("search")
    pages.link("Compare").click()
    pages.by_id("main").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait("the changes", lambda: "1 modified" in pages.text())
    pages.shot("compare")
    _restore(pages, src, second, tmp_path)
    _backup(pages, src)


def _restore(pages: Pages, src: Path, second: str, tmp_path: Path) -> None:
    driver = pages.driver
    driver.get(pages.ui.url.split("/?")[0] + f"/s/{second}{src}")
    _wait("the folder", lambda: "docs/" in pages.text())
    box = driver.find_element(By.CSS_SELECTOR, "input[aria-label='select docs']")
    box.send_keys(Keys.SPACE)  # from the keyboard
    assert box.is_selected()
    pages.by_id("restore-selected").click()
    target = tmp_path / "restored"
    _wait("the restore form", lambda: pages.by_id("destination")).send_keys(str(target))
    assert pages.unlabelled() == [] and len(pages.tab_reaches_all()) > 5
    pages.by_id("start-restore").click()
    assert pages.job_done() == "done"
    pages.shot("restore")
    for path in ("notes.txt", "drafts/plan.md"):
        assert (target / "docs" / path).read_bytes() == (src / "docs" / path).read_bytes()


def _backup(pages: Pages, src: Path) -> None:
    (src / "docs" / "added later.txt").write_text("new\n")
    pages.link("Back up").click()
    _wait("the backup form", lambda: pages.by_id("paths")).send_keys(str(src))
    assert pages.unlabelled() == []
    pages.by_id("start-backup").click()
    assert pages.job_done() == "done"
    assert "Finished" in pages.text()
    pages.shot("backup")
    pages.by_id("new-snapshot").click()
    _wait("the new snapshot", lambda: pages.link(src.parts[1] + "/"))
    pages.link("Snapshots").click()
    _wait("three snapshots", lambda: "Target default (3 snapshots)" in pages.text())
    pages.by_id("quit").click()
    _wait("the UI to stop", lambda: pages.ui.proc.poll() == 0)
