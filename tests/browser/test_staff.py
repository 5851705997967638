"""The staff dashboard in Chromium: an invite used end to end, and every staff page at 360 px in
both colour schemes (no sideways scrolling, no CSP violation, the usage chart drawn)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, open_page, sign_in

STAFF_PAGES = ["/staff/", "/staff/usage/", "/staff/invites/", "/staff/relays/", "/staff/audit/"]
NEW_PASSWORD = "lanterns over the bay 31"

USAGE = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from studio.accounts.models import UsageRecord
admin = User.objects.get(username="admin")
for day in range(12):
    for model, tokens in (("gpt-4o", 900 + 40 * day), ("claude-3-haiku", 300)):
        UsageRecord.objects.create(user=admin, source="chat", model=model,
            prompt_tokens=tokens, completion_tokens=tokens // 2,
            at=timezone.now() - timedelta(days=day))
print(admin.pk)
"""


def test_an_invite_makes_an_account_that_staff_then_see(page, browser, stack):
    sign_in(page, "admin", stack.admin_password)
    page.get_by_role("link", name="Staff", exact=True).click()
    page.get_by_role("link", name="Invite someone").first.click()
    page.get_by_label("For", exact=True).fill("for Ines")
    page.get_by_test_id("create-invite").click()
    link = page.get_by_test_id("invite-link").input_value()
    assert re.fullmatch(rf"{re.escape(stack.url)}/accounts/invite/[\w-]+/", link)

    context, invitee, problems = open_page(browser, stack)
    invitee.goto(link)
    invitee.get_by_label("Username", exact=True).fill("ines")
    invitee.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    invitee.get_by_label("Password confirmation", exact=True).fill(NEW_PASSWORD)
    invitee.get_by_role("button", name="Create account").click()
    invitee.wait_for_url("**/settings/")
    expect(invitee.get_by_text("Welcome, ines.")).to_be_visible()
    invitee.goto(link)  # used: it no longer works
    expect(invitee.get_by_role("heading", name="This invite link does not work")).to_be_visible()
    context.close()
    assert [p for p in problems if "404" not in p] == []

    page.goto("/staff/?q=ines")
    expect(page.locator('[data-testid="user-row"][data-username="ines"]')).to_be_visible()
    page.goto("/staff/audit/?action=invite_used")
    expect(page.get_by_test_id("audit-row")).to_have_count(1)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_staff_pages_fit_a_phone_in_both_schemes(browser, stack, scheme):
    admin_id = stack.manage("shell", "-c", USAGE).stdout.strip().splitlines()[-1]
    context = browser.new_context(
        base_url=stack.url, viewport={"width": 360, "height": 740}, color_scheme=scheme
    )
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    sign_in(page, "admin", stack.admin_password)
    ARTIFACTS.mkdir(exist_ok=True)
    for path in [*STAFF_PAGES, f"/staff/users/{admin_id}/"]:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} scrolls sideways at 360 px ({width} px wide)"
    chart = page.get_by_test_id("tokens-chart").locator("svg.chart-svg")
    expect(chart).to_be_visible()
    assert chart.locator("rect").count() >= 24  # two models on each of 12 days
    fill = chart.locator("rect.series-0").first.evaluate("r => getComputedStyle(r).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)"), fill  # coloured by staff.css
    page.screenshot(path=str(ARTIFACTS / f"staff-user-phone-{scheme}.png"), full_page=True)
    context.close()
    assert problems == [], problems
