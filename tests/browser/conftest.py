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


def open_page(browser, stack, *, allowed: tuple[str, ...] = ()):
    """A fresh browser context; collects CSP violations, console errors and page errors,
    except console lines containing one of `allowed`."""
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []

    def on_console(message) -> None:
        reported = "Content Security Policy" in message.text or message.type == "error"
        if reported and not any(text in message.text for text in allowed):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return context, page, problems


@pytest.fixture
def page(browser, stack):
    """A fresh browser context per test; fails the test on any CSP violation or page error."""
    context, page, problems = open_page(browser, stack)
    yield page
    context.close()
    assert problems == [], f"browser reported problems: {problems}"


@pytest.fixture
def page_expecting_400(browser, stack):
    """Like `page`, except that Chrome's console line for an HTTP 400 answer is expected: a
    refused form or settings value is answered with 400 (and the page shows why)."""
    context, page, problems = open_page(
        browser, stack, allowed=("the server responded with a status of 400",)
    )
    yield page
    context.close()
    assert problems == [], f"browser reported problems: {problems}"


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/chat/")
