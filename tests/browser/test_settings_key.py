"""A new user signs in, saves a relay key, verifies it against the simulator, sees it masked."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, sign_in

KEY = "sk-sim-browser-test-key-7Q3Z"
PASSWORD = "browser test passphrase 77"


def test_save_verify_and_reload_shows_the_key_masked(page, stack):
    stack.manage("adduser", "newcomer", stdin=f"{PASSWORD}\n")
    sign_in(page, "newcomer", PASSWORD)

    page.get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_test_id("no-key-notice")).to_be_visible()
    page.get_by_label("Relay", exact=True).select_option(stack.simulator_url)
    page.get_by_label("API key", exact=True).fill(KEY)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "settings-new-user.png"), full_page=True)
    page.get_by_role("button", name="Save key").click()

    expect(page.get_by_test_id("masked-key")).to_have_text("sk-…7Q3Z")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("status").filter(has_text="The key works")).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ models are available"))).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "settings-verified.png"), full_page=True)

    page.reload()
    expect(page.get_by_test_id("masked-key")).to_have_text("sk-…7Q3Z")
    assert KEY not in page.content()
    assert page.get_by_label("API key", exact=True).input_value() == ""


def test_settings_page_fits_a_phone_in_dark_mode(browser, stack):
    context = browser.new_context(
        base_url=stack.url, viewport={"width": 360, "height": 740}, color_scheme="dark"
    )
    page = context.new_page()
    sign_in(page, "admin", stack.admin_password)
    page.goto("/settings/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways at 360 px ({width} px wide)"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "settings-phone-dark.png"), full_page=True)
    context.close()
    # Dark scheme: the body background is dark (sum of RGB well below mid-grey).
    assert sum(int(part) for part in re.findall(r"\d+", background)[:3]) < 200, background


def test_keyboard_alone_reaches_every_section(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
        if reached[-1] == "Settings":
            break
    assert {"Chat", "Create", "Settings"} <= set(reached), reached
    page.keyboard.press("Enter")
    page.wait_for_url("**/settings/")
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
