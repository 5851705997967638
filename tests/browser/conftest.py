"""Browser tests: Playwright (from PyPI) driving Debian's chromium against the real stack.

The stack is the demo launcher (daphne, worker, simulator) in a throw-away data folder, so
pages, websockets and the relay are the real thing. Sync Playwright runs in its own pytest
invocation (`make test-browser`), apart from the asyncio tests.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.launcher_process import start_demo

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        skip_or_fail("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    demo = start_demo(tmp_path_factory.mktemp("browser-stack"))
    yield demo
    demo.stop()


@pytest.fixture
def page(browser, stack):
    """A fresh browser context per test; fails the test on any CSP violation or page error."""
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    assert problems == [], f"browser reported problems: {problems}"


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/chat/")
