"""The chat page against the real stack: streaming, resume after reload, stop, branches, edits,
hostile model output, keyboard use and a phone-sized screen.

The simulator's markers steer the replies: `[[tokens=N]] [[tps=R]]` makes an N-token reply at
R tokens per second (taken literally, whatever SIMULATOR_SPEED is), `[[echo]]` makes the reply
exactly the user's text without the markers.
"""

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, sign_in

CONVERSATION_URL = re.compile(r".*/chat/[0-9a-f-]{36}/(#.*)?$")
LONG_REPLY = "[[tokens=400]] [[tps=40]]"  # ten seconds of streaming


# ---------- helpers ----------


def start_chat(page: Page, stack, text: str) -> None:
    """Sign in, type `text` on /chat/ and send it: the new conversation's page sends it."""
    sign_in(page, "admin", stack.admin_password)
    composer = page.get_by_test_id("composer-input")
    composer.fill(text)
    composer.press("Enter")
    page.wait_for_url(CONVERSATION_URL)


def replies(page: Page):
    return page.locator("article[data-role=assistant]")


def questions(page: Page):
    return page.locator("article[data-role=user]")


def wait_finished(message, status: str = "complete", timeout: float = 30_000) -> None:
    expect(message).to_have_attribute("data-status", status, timeout=timeout)


def send(page: Page, text: str) -> None:
    expect(page.locator("[data-chat-main]")).to_have_attribute("data-socket", "open")
    composer = page.get_by_test_id("composer-input")
    composer.fill(text)
    composer.press("Enter")


def body_text(message) -> str:
    return message.get_by_test_id("message-body").inner_text()


def wait_for_text(message, at_least: int, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = body_text(message)
        if len(text) >= at_least:
            return text
        time.sleep(0.05)
    raise AssertionError(f"the reply did not reach {at_least} characters: {body_text(message)!r}")


# ---------- streaming ----------


def test_a_reply_streams_in_then_finishes(page, stack):
    start_chat(page, stack, "Tell me something [[tokens=160]] [[tps=40]]")
    expect(questions(page)).to_have_count(1)
    expect(questions(page).first.get_by_test_id("message-body")).to_have_text(
        "Tell me something [[tokens=160]] [[tps=40]]"
    )
    reply = replies(page).first
    expect(reply).to_have_attribute("data-status", re.compile("pending|streaming"))
    expect(page.get_by_test_id("stop")).to_be_visible()

    # Watch the text grow over several frames.
    lengths = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and reply.get_attribute("data-status") != "complete":
        lengths.append(len(body_text(reply)))
        time.sleep(0.1)
    growth = sorted(set(lengths))
    assert len(growth) >= 4, f"the text did not grow over several frames: {lengths}"
    assert lengths == sorted(lengths), f"the text shrank while streaming: {lengths}"

    wait_finished(reply)
    expect(reply.get_by_test_id("message-status")).to_be_hidden()
    expect(reply.get_by_test_id("message-usage")).to_have_text(re.compile(r"\d+ \+ \d+ tokens"))
    expect(page.get_by_test_id("usage-total")).to_contain_text("tokens")
    expect(page.get_by_test_id("stop")).to_be_hidden()
    expect(page.get_by_test_id("send")).to_be_visible()
    # The finished reply is read out once, as a whole (not token by token).
    announced = page.locator("#chat-announcer")
    expect(announced).not_to_be_empty()
    words = " ".join(body_text(reply).split())
    assert words[:60] in " ".join(announced.inner_text().split())
    # The text typed on /chat/ was sent, so nothing is left to send again.
    assert page.evaluate("sessionStorage.getItem('studio.pendingSend')") is None
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-reply.png"))


def test_reload_mid_reply_continues_without_lost_or_repeated_text(page, stack):
    start_chat(page, stack, f"A long one please {LONG_REPLY}")
    reply = replies(page).first
    wait_for_text(reply, 200)
    page.reload()

    reply = replies(page).first
    expect(reply).to_have_attribute("data-status", "streaming")
    before = len(body_text(reply))
    wait_for_text(reply, before + 100)  # it keeps growing after the reload
    page.reload()  # and once more, for good measure
    reply = replies(page).first
    wait_finished(reply, timeout=30_000)
    live = body_text(reply)

    page.reload()
    reloaded = body_text(replies(page).first)
    assert live == reloaded, "the text shown live differs from the stored reply"
    assert len(live) > 1000


def test_the_page_follows_the_reply_only_when_the_reader_is_at_the_bottom(page, stack):
    page.set_viewport_size({"width": 1280, "height": 600})
    start_chat(page, stack, f"Scroll test {LONG_REPLY}")
    reply = replies(page).first
    wait_for_text(reply, 1200)  # taller than the window by now
    at_bottom = "innerHeight + scrollY >= document.documentElement.scrollHeight - 150"
    page.wait_for_function(at_bottom)  # it has been following the text
    page.evaluate("window.scrollTo(0, 0)")
    before = len(body_text(reply))
    wait_for_text(reply, before + 150)
    assert page.evaluate("scrollY") == 0, "the page scrolled while the reader was reading above"
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    before = len(body_text(reply))
    wait_for_text(reply, before + 150)
    assert page.evaluate(at_bottom), "the page stopped following the reply at the bottom"
    page.keyboard.press("Escape")
    wait_finished(reply, "stopped")


def test_a_refused_message_goes_back_into_the_composer(page, stack):
    start_chat(page, stack, "[[echo]] hi")
    wait_finished(replies(page).first)
    too_long = "x" * 100_001  # over the server's limit for one message
    send(page, too_long)
    error = page.get_by_test_id("composer-error")
    expect(error).to_contain_text("too long")
    expect(page.get_by_test_id("composer-input")).to_have_value(too_long)
    expect(questions(page)).to_have_count(1)  # the optimistic bubble is gone again
    expect(page.get_by_test_id("send")).to_be_enabled()


def test_a_dropped_socket_reconnects_by_itself_and_resumes_the_reply(page, stack):
    # Every websocket of the page goes through this route, so the test can cut it at will.
    routes = []
    refuse = {"on": False}

    def route(ws):
        if refuse["on"]:
            ws.close(code=1013, reason="try again later")
            return
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket(re.compile(r"/ws/chat/"), route)
    start_chat(page, stack, f"Keep going {LONG_REPLY}")
    reply = replies(page).first
    wait_for_text(reply, 150)

    refuse["on"] = True
    routes[-1].close(code=1012, reason="server restart")
    status = page.get_by_test_id("connection-status")
    expect(status).to_have_text("Reconnecting…")
    expect(page.get_by_test_id("stop")).to_be_visible()  # the reply still runs on the server
    # While disconnected nothing can be sent, and what is typed stays.
    composer = page.get_by_test_id("composer-input")
    composer.fill("typed while offline")
    composer.press("Enter")
    expect(composer).to_have_value("typed while offline")
    expect(page.get_by_test_id("composer-error")).to_contain_text("Not connected")
    page.wait_for_timeout(2500)  # a refused attempt or two, with backoff

    refuse["on"] = False
    expect(status).to_be_hidden(timeout=20_000)
    wait_finished(reply, timeout=30_000)
    live = body_text(reply)
    expect(composer).to_have_value("typed while offline")
    page.reload()
    assert body_text(replies(page).first) == live


@pytest.mark.parametrize("how", ["escape", "button"])
def test_stop_keeps_the_partial_reply(page, stack, how):
    start_chat(page, stack, f"Go on and on {LONG_REPLY}")
    reply = replies(page).first
    wait_for_text(reply, 100)
    if how == "escape":
        page.keyboard.press("Escape")
    else:
        page.get_by_test_id("stop").click()
    wait_finished(reply, "stopped", timeout=10_000)
    expect(reply.get_by_test_id("message-status")).to_have_text("Stopped")
    partial = body_text(reply)
    assert len(partial) >= 100
    time.sleep(0.5)
    assert body_text(reply) == partial, "text kept arriving after the stop"

    page.reload()
    reply = replies(page).first
    expect(reply).to_have_attribute("data-status", "stopped")
    assert body_text(reply) == partial


# ---------- branches ----------


def test_regenerate_adds_a_version_and_arrows_switch_between_them(page, stack):
    start_chat(page, stack, "Short answer [[tokens=20]]")
    first = replies(page).first
    wait_finished(first)
    first_id = first.get_attribute("data-message-id")

    first.get_by_role("button", name="Regenerate reply").click()
    reply = replies(page).first
    expect(reply).not_to_have_attribute("data-message-id", first_id)
    wait_finished(reply)
    second_id = reply.get_attribute("data-message-id")
    expect(replies(page)).to_have_count(1)  # versions replace each other on screen
    expect(reply.get_by_test_id("sibling-position")).to_have_text("2/2")
    expect(reply.get_by_role("button", name="Next version")).to_be_disabled()

    with page.expect_response(re.compile(r"/branch/$")) as branch:
        reply.get_by_role("button", name="Previous version").click()
    assert branch.value.ok
    reply = replies(page).first
    expect(reply).to_have_attribute("data-message-id", first_id)
    expect(reply.get_by_test_id("sibling-position")).to_have_text("1/2")
    # The keyboard stays on the arrows (now "Next", since "Previous" is disabled).
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Next version"

    page.reload()  # the chosen version is remembered
    reply = replies(page).first
    expect(reply).to_have_attribute("data-message-id", first_id)
    reply.get_by_role("button", name="Next version").click()
    expect(replies(page).first).to_have_attribute("data-message-id", second_id)


def test_editing_a_question_starts_a_new_branch_and_keeps_the_old_one(page, stack):
    start_chat(page, stack, "[[echo]] first question")
    wait_finished(replies(page).first)
    expect(replies(page).first.get_by_test_id("message-body")).to_have_text("first question")

    question = questions(page).first
    question.get_by_role("button", name="Edit message").click()
    editor = question.get_by_role("textbox", name="Edit message")
    expect(editor).to_be_focused()
    editor.fill("[[echo]] second question")
    question.get_by_role("button", name="Save & resend").click()

    reply = replies(page).first
    expect(reply.get_by_test_id("message-body")).to_have_text("second question", timeout=15_000)
    wait_finished(reply)
    question = questions(page).first
    expect(question.get_by_test_id("message-body")).to_have_text("[[echo]] second question")
    expect(question.get_by_test_id("sibling-position")).to_have_text("2/2")

    question.get_by_role("button", name="Previous version").click()
    expect(questions(page).first.get_by_test_id("message-body")).to_have_text(
        "[[echo]] first question"
    )
    expect(replies(page).first.get_by_test_id("message-body")).to_have_text("first question")


def test_an_edit_can_be_cancelled_with_escape(page, stack):
    start_chat(page, stack, "[[echo]] keep me")
    wait_finished(replies(page).first)
    question = questions(page).first
    question.get_by_role("button", name="Edit message").click()
    question.get_by_role("textbox", name="Edit message").fill("changed my mind")
    page.keyboard.press("Escape")
    expect(question.get_by_test_id("message-body")).to_have_text("[[echo]] keep me")
    expect(question.get_by_role("button", name="Edit message")).to_be_focused()
    expect(questions(page)).to_have_count(1)


def test_copy_buttons_copy_the_markdown_and_the_code(page, stack):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    start_chat(page, stack, "[[echo]] **bold** words\n\n```python\nprint('copied')\n```")
    reply = replies(page).first
    wait_finished(reply)
    expect(reply.locator(".code-block .code-language")).to_have_text("python")
    expect(reply.locator("code .hljs-built_in, code .hljs-string").first).to_be_visible()

    reply.get_by_role("button", name="Copy reply").click()
    expect(reply.get_by_role("button", name="Copy reply")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == "**bold** words\n\n```python\nprint('copied')\n```"

    reply.get_by_role("button", name="Copy code").click()
    assert page.evaluate("navigator.clipboard.readText()").strip() == "print('copied')"


# ---------- errors ----------


def test_a_relay_error_shows_in_the_bubble_with_retry(page, stack):
    start_chat(page, stack, "Busy relay [[error:429]]")
    reply = replies(page).first
    wait_finished(reply, "error")
    error = reply.get_by_test_id("message-error")
    expect(error).to_contain_text(re.compile(r"Try again in \d+ s"))
    expect(error).to_contain_text("当前分组上游负载已饱和")  # the relay's own words, kept
    error.get_by_role("button", name="Retry this reply").click()
    reply = replies(page).first
    wait_finished(reply, "error")
    expect(reply.get_by_test_id("sibling-position")).to_have_text("2/2")


# ---------- hostile output ----------

XSS_PAYLOADS = [
    "<script>__xss()</script>",
    "<img src=x onerror=__xss()>",
    "<svg onload=__xss()></svg>",
    "<svg><script>__xss()</script></svg>",
    '<iframe src="javascript:__xss()"></iframe>',
    '<iframe srcdoc="<script>parent.__xss()</script>"></iframe>',
    '<object data="javascript:__xss()"></object>',
    '<embed src="javascript:__xss()">',
    "[click](javascript:__xss())",
    "[click](JaVaScRiPt:__xss())",
    "[click](jav&#x09;ascript:__xss())",
    "[click](&#106;avascript:__xss())",
    "[click]( javascript:__xss() )",
    "[click](vbscript:__xss())",
    "[click](data:text/html;base64,PHNjcmlwdD5fX3hzcygpPC9zY3JpcHQ+)",
    "![x](javascript:__xss())",
    "![x](data:image/svg+xml,<svg onload=__xss()>)",
    "[reference][r]\n\n[r]: javascript:__xss()",
    "<javascript:__xss()>",
    '<a href="jav&#x09;ascript:__xss()">tab</a>',
    '<a href="https://example.com" onclick="__xss()">handler</a>',
    "<!-- <img src=x onerror=__xss()> -->after the comment",
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=javascript:__xss()">',
    '<form action="https://evil.example"><input name="a"><button>go</button></form>',
    "<math><mtext><table><mglyph><style><img src=x onerror=__xss()>",
    "<style>body { display: none }</style>styled",
    '<div style="position:fixed;inset:0" onmouseover="__xss()">overlay</div>',
    '<details open ontoggle="__xss()"><summary>s</summary></details>',
    '<noscript><p title="</noscript><img src=x onerror=__xss()>">',
    '<a href="https://example.com/"onmouseover="__xss()">quote</a>',
    "<img src=x onerror=alert(1)>",
    "```html\n<script>__xss()</script>\n```",
]

FORBIDDEN = (
    "script, iframe, object, embed, svg, math, form, input,"
    " button:not([data-action]):not([data-copy-code]),"
    " style, base, meta, link, [onerror], [onload], [onclick], [onmouseover], [ontoggle], [style],"
    " [srcdoc], a[href^='javascript' i], a[href^='data' i], a[href^='vbscript' i],"
    " img[src^='data' i], img[src^='javascript' i]"
)


@pytest.fixture
def dialogs(page) -> list[str]:
    """Arm the traps: payloads call __xss() (counted) or alert() (a dialog, recorded)."""
    fired: list[str] = []
    page.add_init_script(
        "window.__xss = () => { window.__xssFired = (window.__xssFired || 0) + 1; };"
    )

    def record(dialog) -> None:
        fired.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return fired


def assert_nothing_hostile(page: Page, stack, dialogs: list[str]) -> None:
    log = page.locator("#chat-log")
    found = log.locator(FORBIDDEN)
    assert found.count() == 0, [
        found.nth(i).evaluate("e => e.outerHTML") for i in range(found.count())
    ]
    assert page.evaluate("window.__xssFired || 0") == 0
    assert dialogs == []
    assert page.evaluate("document.baseURI").startswith(stack.url)
    # Every image left loads from this site; every link elsewhere opens safely in a new tab.
    for src in log.locator("img").evaluate_all("els => els.map(e => e.src)"):
        assert src.startswith(stack.url), src
    for link in log.locator("a[href^='http']").all():
        href = link.get_attribute("href") or ""
        if not href.startswith(stack.url):
            assert link.get_attribute("target") == "_blank", href
            rel = (link.get_attribute("rel") or "").split()
            assert set(rel) >= {"noopener", "noreferrer", "nofollow"}, href


def test_hostile_replies_are_rendered_inert(page, stack, dialogs):
    start_chat(page, stack, "[[echo]] **start**")
    wait_finished(replies(page).first)
    for index, payload in enumerate(XSS_PAYLOADS, start=2):
        send(page, f"[[echo]] {payload}")
        expect(replies(page)).to_have_count(index)
        wait_finished(replies(page).nth(index - 1))
    # Things a reply may legitimately contain still work.
    send(page, "[[echo]] ![site](/static/favicon.svg) ![remote cat](https://example.com/cat.png)")
    expect(replies(page)).to_have_count(len(XSS_PAYLOADS) + 2)
    last = replies(page).last
    wait_finished(last)
    expect(last.locator("img[alt=site]")).to_have_count(1)
    figure = last.locator("figure.offsite-image")
    expect(figure).to_contain_text("remote cat")
    expect(figure.get_by_role("link", name="Open image")).to_have_attribute(
        "href", "https://example.com/cat.png"
    )
    page.wait_for_timeout(300)  # let anything that would fire late do so
    assert_nothing_hostile(page, stack, dialogs)

    page.reload()  # the same replies rendered from the database
    expect(replies(page)).to_have_count(len(XSS_PAYLOADS) + 2)
    page.wait_for_timeout(300)
    assert_nothing_hostile(page, stack, dialogs)
    page.mouse.move(300, 300)
    page.mouse.move(600, 500)
    assert page.evaluate("window.__xssFired || 0") == 0


# ---------- keyboard ----------


def test_keyboard_enter_shift_enter_composition_and_ctrl_k(page, stack):
    start_chat(page, stack, "[[echo]] hello")
    wait_finished(replies(page).first)
    composer = page.get_by_test_id("composer-input")
    composer.click()
    composer.type("line one")
    composer.press("Shift+Enter")
    composer.type("line two")
    assert composer.input_value() == "line one\nline two"
    expect(questions(page)).to_have_count(1)

    # Enter while an input method is composing (pinyin picking a candidate) does not send.
    composer.evaluate(
        """el => el.dispatchEvent(new KeyboardEvent("keydown",
             {key: "Enter", isComposing: true, bubbles: true, cancelable: true}))"""
    )
    page.wait_for_timeout(200)
    expect(questions(page)).to_have_count(1)
    assert composer.input_value() == "line one\nline two"

    composer.press("Enter")
    expect(questions(page)).to_have_count(2)
    expect(questions(page).last.get_by_test_id("message-body")).to_have_text("line one\nline two")
    expect(composer).to_have_value("")
    wait_finished(replies(page).last)

    page.keyboard.press("Control+k")
    expect(page.get_by_test_id("chat-search")).to_be_focused()


def test_a_draft_survives_a_reload(page, stack):
    start_chat(page, stack, "[[echo]] hi")
    wait_finished(replies(page).first)
    page.get_by_test_id("composer-input").fill("half-written 问题")
    page.reload()
    expect(page.get_by_test_id("composer-input")).to_have_value("half-written 问题")


# ---------- small screens ----------


def test_phone_width_has_no_sideways_scroll_and_a_drawer(browser, stack):
    context = browser.new_context(
        base_url=stack.url, viewport={"width": 360, "height": 740}, color_scheme="dark"
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    wide = (
        "[[echo]] A_very_long_word_without_any_break_" + "x" * 120 + "\n\n"
        "```python\nprint('" + "wide " * 60 + "')\n```\n\n"
        "| " + " | ".join(f"column {i}" for i in range(12)) + " |\n"
        "|" + "---|" * 12 + "\n"
        "| " + " | ".join(str(i) for i in range(12)) + " |\n\n"
        "https://example.com/" + "path/" * 40
    )
    start_chat(page, stack, wide)
    wait_finished(replies(page).first)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the chat page scrolls sideways at 360 px ({width} px wide)"

    sidebar = page.get_by_test_id("sidebar")
    expect(sidebar).to_be_hidden()
    page.get_by_role("button", name="Conversations").click()
    expect(sidebar).to_be_visible()
    expect(sidebar).to_be_in_viewport(ratio=1)  # slid all the way in
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-phone-drawer.png"))
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(page.get_by_role("button", name="Conversations")).to_be_focused()

    page.keyboard.press("Control+k")  # opens the drawer to reach the search box
    expect(page.get_by_test_id("chat-search")).to_be_focused()
    page.keyboard.press("Escape")
    page.screenshot(path=str(ARTIFACTS / "chat-phone-dark.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.goto("/chat/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()
    assert problems == []


# ---------- search ----------


def test_search_result_opens_the_branch_with_the_message(page, stack):
    start_chat(page, stack, "[[echo]] the zebra-quokka answer")
    wait_finished(replies(page).first)
    page.keyboard.press("Control+k")
    page.keyboard.type("zebra-quokka")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/chat/search/\?q="))
    results = page.get_by_test_id("search-results")
    expect(results.locator("mark").first).to_be_visible()
    results.get_by_role("link").first.click()
    page.wait_for_url(CONVERSATION_URL)
    target = page.locator("article.is-highlighted")
    expect(target).to_have_count(1)
    expect(target).to_be_in_viewport()
    expect(target).to_be_focused()


# ---------- conversation tools ----------


def test_settings_rename_delete_message_and_delete_conversation(page_expecting_400, stack):
    page = page_expecting_400
    start_chat(page, stack, "[[echo]] tools")
    wait_finished(replies(page).first)

    # Settings: a value out of range is refused next to its field, nothing typed is lost.
    page.get_by_test_id("settings-toggle").click()
    panel = page.locator("#settings-panel")
    panel.get_by_label("System prompt").fill("Answer in haiku.")
    panel.get_by_label("Temperature").fill("5")
    panel.get_by_test_id("settings-save").click()
    expect(panel.locator("#settings-temperature-errors")).to_be_visible()
    expect(panel.get_by_label("Temperature")).to_have_attribute("aria-invalid", "true")
    expect(panel.get_by_label("System prompt")).to_have_value("Answer in haiku.")
    panel.get_by_label("Temperature").fill("0.7")
    panel.get_by_test_id("settings-save").click()
    expect(panel.get_by_role("status")).to_have_text("Saved.")
    expect(panel.locator("#settings-temperature-errors")).to_have_count(0)
    page.reload()
    page.get_by_test_id("settings-toggle").click()
    expect(page.locator("#settings-panel").get_by_label("Temperature")).to_have_value("0.7")
    expect(page.locator("#settings-panel").get_by_label("System prompt")).to_have_value(
        "Answer in haiku."
    )

    # Rename from the "More" menu: header, tab title and sidebar follow.
    page.get_by_test_id("conversation-menu").click()
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Title").fill("Renamed by the test")
    page.get_by_label("Title").press("Enter")
    expect(page.get_by_test_id("conversation-title")).to_have_text("Renamed by the test")
    expect(page.get_by_test_id("sidebar").locator("[aria-current=page]")).to_have_text(
        "Renamed by the test"
    )
    assert page.title().startswith("Renamed by the test")

    # Deleting the reply (after confirming) leaves the question, whose reply can be asked again.
    page.once("dialog", lambda dialog: dialog.accept())
    replies(page).first.get_by_role("button", name="Delete reply").click()
    expect(replies(page)).to_have_count(0)
    expect(questions(page)).to_have_count(1)
    page.reload()
    expect(replies(page)).to_have_count(0)

    # Deleting the conversation goes through a confirmation page.
    page.get_by_test_id("conversation-menu").click()
    page.get_by_role("link", name="Delete conversation").click()
    expect(page.get_by_role("heading", name="Delete this conversation?")).to_be_visible()
    page.get_by_test_id("confirm-delete").click()
    page.wait_for_url("**/chat/")
    expect(page.get_by_test_id("sidebar")).not_to_contain_text("Renamed by the test")


def test_the_page_speaks_chinese(page, stack):
    # Its own user: the language choice is saved on the profile and would follow the admin.
    stack.manage("adduser", "reader_zh", "--allow-site-key", stdin="reader zh passphrase 31\n")
    sign_in(page, "reader_zh", "reader zh passphrase 31")
    with page.expect_navigation():
        page.get_by_label("Language").select_option("zh-hans")
    expect(page.get_by_test_id("send")).to_have_text("发送")
    composer = page.get_by_test_id("composer-input")
    composer.fill("[[echo]] 你好")
    composer.press("Enter")
    page.wait_for_url(CONVERSATION_URL)
    reply = replies(page).first
    wait_finished(reply)
    expect(reply.get_by_role("button", name="重新生成回复")).to_be_visible()
    expect(reply.get_by_test_id("message-usage")).to_contain_text("令牌")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-zh.png"))
