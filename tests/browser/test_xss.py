"""Stored XSS (Open WebUI #18387 and its kin): model output and user input never run in the page.

Hostile text reaches every place it is shown: a model reply (the simulator's `[[echo]]` marker
makes the reply the user's text verbatim), the conversation title the model writes and the one
the user types, search snippets, a job's prompt in the gallery and on its page, the relay's
rewritten prompt, the "Use this prompt" suggestions a relay returns, and uploaded file names.
Every payload calls `__xss()` (counted) or `alert()` (a dialog, recorded): neither may happen,
the text must show as text, and the `page` fixture fails on any CSP violation or script error.
"""

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in

CHAT_LOG = "#chat-log"
TITLE = "[data-testid=conversation-title]"
SIDEBAR_LIST = ".conversation-nav"
JOB_TEXT = "[data-job] .job-prompt, [data-revised-prompt], [data-testid=job-prompts] ol"
GALLERY = "[data-testid=gallery]"
CONVERSATION_URL = re.compile(r".*/chat/[0-9a-f-]{36}/(#.*)?$")
JOB_PAGE = re.compile(r".*/jobs/[0-9a-f-]{36}/$")

IMG = "<img src=x onerror=__xss()>"
SCRIPT = "<script>__xss()</script>"
SVG = "<svg onload=alert(1)>"
# One reply with many shapes of hostile markdown and HTML (tests/browser/test_chat.py sends a
# longer list one reply at a time).
REPLY = "\n\n".join(
    [
        f"Title line {IMG}",
        SCRIPT,
        SVG,
        '<a href="javascript:__xss()">html link</a>',
        "[markdown link](javascript:__xss())",
        "[spaced link]( JaVaScRiPt:__xss() )",
        "![markdown image](javascript:__xss())",
        '![svg data image](data:image/svg+xml,<svg onload="__xss()">)',
        "[ref link][evil]\n\n[evil]: javascript:__xss()",
        '<iframe srcdoc="<script>parent.__xss()</script>"></iframe>',
        f"inline code `{IMG}`",
        f'```html\n{SCRIPT}\n{IMG}\n<a href="javascript:__xss()">x</a>\n```',
        f"```\n{SVG}\n```",
    ]
)
# Elements that hostile text must never become where it is shown.
FORBIDDEN = (
    "script, iframe, object, embed, svg, math, form, input, style, base, meta, link,"
    " [onerror], [onload], [onclick], [onmouseover], [srcdoc],"
    " a[href^='javascript' i], a[href*='javascript:' i], a[href^='data' i],"
    " img[src^='data' i], img[src^='javascript' i]"
)
# ...and that the whole page never has (the app's own markup uses none of them).
HOSTILE = (
    "[onerror], [onload], [onclick], [onmouseover], [ontoggle], iframe, object, embed,"
    " a[href^='javascript' i], a[href^='vbscript' i], iframe[srcdoc], base"
)


@pytest.fixture
def traps(page: Page) -> list[str]:
    """`__xss()` counts calls; every dialog (alert, confirm, prompt) is recorded and dismissed."""
    fired: list[str] = []
    page.add_init_script(
        "window.__xss = () => { window.__xssFired = (window.__xssFired || 0) + 1; };"
    )

    def record(dialog) -> None:
        fired.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", record)
    return fired


def assert_inert(page: Page, traps: list[str], *regions: str) -> None:
    """Nothing ran, and the places showing hostile text (`regions`) hold no element it could
    have made; anywhere in the page, no handler attribute or script: link exists."""
    page.wait_for_timeout(300)  # whatever would fire late (an image error, a load) does so
    assert page.evaluate("typeof window.__xss") == "function", "the trap is not armed"
    for region in regions:
        found = page.locator(region).locator(FORBIDDEN)
        assert found.count() == 0, [
            found.nth(i).evaluate("e => e.outerHTML") for i in range(found.count())
        ]
    assert page.evaluate("window.__xssFired || 0") == 0
    assert traps == []
    hostile = page.locator(HOSTILE)
    assert hostile.count() == 0, hostile.first.evaluate("e => e.outerHTML")
    inline = page.locator("script:not([src]):not([type='application/json'])")
    assert inline.count() == 0, inline.first.evaluate("e => e.outerHTML")


# ---------------------------------------------------------------- chat


def test_model_reply_title_and_search_snippets_stay_text(page, stack, traps):
    sign_in(page, "admin", stack.admin_password)
    composer = page.get_by_test_id("composer-input")
    composer.fill(f"[[echo]] {REPLY}")
    composer.press("Enter")
    page.wait_for_url(CONVERSATION_URL)
    reply = page.locator("article[data-role=assistant]").first
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    body = reply.get_by_test_id("message-body")
    # The HTML shows as text: in prose, inline code and code blocks.
    expect(body).to_contain_text(f"Title line {IMG}")
    expect(body.locator("code", has_text=IMG).first).to_be_visible()
    expect(body.locator("pre code").first).to_contain_text(SCRIPT)
    expect(body.locator("pre code").nth(1)).to_contain_text(SVG)
    # The question is shown as the user typed it.
    question = page.locator("article[data-role=user]").first.get_by_test_id("message-body")
    expect(question).to_contain_text(SCRIPT)

    # The model wrote the title (the simulator echoes the question's first line).
    title = page.get_by_test_id("conversation-title")
    expect(title).to_have_text(re.compile(re.escape(f"Title line {IMG}")), timeout=15_000)
    assert_inert(page, traps, CHAT_LOG, TITLE, SIDEBAR_LIST)
    page.reload()
    expect(page.locator("article[data-role=assistant]").first).to_have_attribute(
        "data-status", "complete"
    )
    expect(title).to_have_text(f"Title line {IMG}")
    assert f"Title line {IMG}" in page.title()
    sidebar = page.get_by_test_id("sidebar")
    expect(sidebar.get_by_role("link", name=f"Title line {IMG}")).to_have_count(1)
    assert_inert(page, traps, CHAT_LOG, TITLE, SIDEBAR_LIST)

    # The user renames it to more HTML: header, sidebar and the tab's title show text.
    renamed = f'"><svg onload=alert(2)> {SCRIPT}'
    page.get_by_test_id("conversation-menu").click()
    page.get_by_role("button", name="Rename").click()
    page.locator("#rename-title").fill(renamed)
    page.locator("#rename-title").press("Enter")
    expect(title).to_have_text(renamed)
    expect(sidebar.get_by_role("link", name=renamed)).to_have_count(1)
    assert_inert(page, traps, CHAT_LOG, TITLE, SIDEBAR_LIST)
    page.reload()
    expect(title).to_have_text(renamed)
    assert renamed in page.title()
    assert_inert(page, traps, CHAT_LOG, TITLE, SIDEBAR_LIST)

    # Search: the snippet marks the match and escapes the rest.
    page.goto("/chat/search/?q=onerror")
    results = page.get_by_test_id("search-results")
    expect(results.locator("mark").first).to_have_text("onerror")
    expect(results).to_contain_text(IMG)
    expect(results).to_contain_text(renamed)
    assert results.locator("mark").count() >= 1
    assert_inert(page, traps, "[data-testid=search-results]", SIDEBAR_LIST)
    page.goto(f"/chat/search/?q={SCRIPT}")
    expect(page.get_by_test_id("search-summary")).to_contain_text(SCRIPT)
    assert SCRIPT in page.title()
    assert_inert(page, traps, "[data-testid=search-summary]")


# ---------------------------------------------------------------- jobs


def wait_succeeded(page: Page) -> None:
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=45_000
    )


def test_job_prompts_suggestions_and_relay_text_stay_text(page, stack, traps):
    sign_in(page, "admin", stack.admin_password)
    prompt = f"A kite {IMG} over {SCRIPT} hills"
    page.goto("/jobs/new/dalle/")
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(JOB_PAGE)
    job_path = page.url.removeprefix(stack.url)
    wait_succeeded(page)
    section = page.locator("[data-job]")
    expect(section.locator(".job-prompt").first).to_have_text(prompt)
    # The relay rewrote the prompt (and kept the HTML in it): shown as text too.
    expect(page.locator("[data-revised-prompt] span")).to_contain_text(prompt)
    assert_inert(page, traps, JOB_TEXT)

    page.goto("/jobs/")
    card = page.get_by_test_id("gallery").locator(f'a[href="{job_path}"]').first
    expect(card).to_contain_text("A kite <img src=x")
    expect(card.locator("img")).to_have_attribute("alt", re.compile(r"^A kite <img src=x"))
    page.goto(f"/jobs/?q={IMG}")
    expect(page.get_by_test_id("gallery").locator(f'a[href="{job_path}"]')).to_have_count(1)
    expect(page.locator("#filter-q")).to_have_value(IMG)
    assert_inert(page, traps, GALLERY)

    # Midjourney Shorten: the relay's suggestions carry the prompt's HTML back to us.
    page.goto("/jobs/new/midjourney/")
    page.get_by_label("Mode").select_option("shorten")
    page.get_by_label("Prompt").fill(f"{IMG} a quiet harbour at dusk with fishing boats")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(JOB_PAGE)
    wait_succeeded(page)
    suggestions = page.get_by_test_id("job-prompts")
    expect(suggestions.locator("li").first).to_contain_text(IMG)
    assert_inert(page, traps, JOB_TEXT)
    suggestions.get_by_role("link", name="Use this prompt").first.click()
    page.wait_for_url(re.compile(r".*/jobs/new/midjourney/\?prompt="))
    expect(page.get_by_label("Prompt")).to_have_value(re.compile(re.escape(IMG)))
    assert_inert(page, traps)


def png_upload(name: str, size: tuple[int, int]) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, "PNG")
    return {"name": name, "mimeType": "image/png", "buffer": buffer.getvalue()}


def test_uploaded_file_names_stay_text(page, stack, traps):
    sign_in(page, "admin", stack.admin_password)
    face = f"{IMG}face'.png"
    scene = f"{SCRIPT}scene.png"
    page.goto("/jobs/new/faceswap/")
    page.get_by_label("Face to use").set_input_files(png_upload(face, (80, 80)))
    page.get_by_label("Picture to change").set_input_files(png_upload(scene, (160, 100)))
    previews = page.get_by_test_id("upload-preview")
    expect(previews.locator("img")).to_have_count(2)
    expect(previews.locator("img").first).to_have_attribute("alt", face)
    assert_inert(page, traps, "[data-testid=upload-preview]")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(JOB_PAGE)
    job_path = page.url.removeprefix(stack.url)
    wait_succeeded(page)
    # A job without a prompt is named after its first upload.
    expect(page.locator("[data-job] .job-prompt").first).to_have_text(face)
    assert_inert(page, traps, JOB_TEXT)

    page.goto("/jobs/")
    card = page.get_by_test_id("gallery").locator(f'a[href="{job_path}"]').first
    expect(card).to_contain_text(face)
    assert_inert(page, traps, GALLERY)

    # "Use these settings again" keeps the files and shows their names as text.
    page.goto(f"/jobs/new/faceswap/?from={job_path.strip('/').split('/')[-1]}")
    assert_inert(page, traps)
