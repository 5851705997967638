"""The playground in the browser against the real stack: a completion streams into the page and
can be stopped, errors keep the text so far, form errors, and embeddings with their similarity
table and CSV download; keyboard only and a phone-sized screen.

`[[tokens=N]] [[tps=R]]` makes an N-token completion at R tokens per second (taken literally).
"""

import csv
import io
import re
import time

from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, sign_in


def open_playground(page: Page, stack) -> None:
    sign_in(page, "admin", stack.admin_password)
    page.get_by_role("link", name="Playground", exact=True).click()
    page.wait_for_url("**/playground/")
    # The model suggestions come from the relay's list.
    expect(page.locator("#completion-models option[value='gpt-3.5-turbo-instruct']")).to_have_count(
        1
    )


def output(page: Page):
    return page.get_by_test_id("completion-output")


def status(page: Page):
    return page.get_by_test_id("completion-status")


def test_a_completion_streams_into_the_page_and_finishes(page, stack):
    open_playground(page, stack)
    page.get_by_label("Max tokens").fill("200")
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("Once upon a time [[tokens=60]] [[tps=20]]")
    prompt.press("Control+Enter")  # the keyboard shortcut sends the form

    expect(status(page)).to_have_attribute("data-state", "streaming")
    expect(page.get_by_role("button", name="Stop")).to_be_focused()
    lengths = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and status(page).get_attribute("data-state") == "streaming":
        lengths.append(len(output(page).inner_text()))
        time.sleep(0.1)
    assert len(set(lengths)) >= 4, f"the text did not grow over several frames: {lengths}"
    assert lengths == sorted(lengths), f"the text shrank while streaming: {lengths}"

    expect(status(page)).to_have_attribute("data-state", "done")
    expect(status(page)).to_have_text(re.compile(r"Finished \(stop\)\. Tokens: \d+ in, 60 out\."))
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.get_by_role("button", name="Complete")).to_be_enabled()
    assert len(output(page).inner_text().split()) >= 30
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-completion.png"))


def test_stop_and_a_relay_error_keep_the_text_so_far(page, stack):
    open_playground(page, stack)
    page.get_by_label("Max tokens").fill("1000")
    page.get_by_label("Prompt", exact=True).fill("A long story [[tokens=400]] [[tps=20]]")
    page.get_by_role("button", name="Complete").click()
    expect(output(page)).to_have_text(re.compile(r"\w+ \w+ \w+"))
    page.get_by_role("button", name="Stop").click()
    expect(status(page)).to_have_attribute("data-state", "stopped")
    expect(status(page)).to_have_text("Stopped. The text so far is kept.")
    kept = output(page).inner_text()
    time.sleep(0.5)
    assert output(page).inner_text() == kept and kept.strip()
    # The server noticed the stop: it closed the relay's stream and counted what was written.
    counted = stack.manage(
        "shell",
        "-c",
        "from studio.accounts.models import UsageRecord as U; "
        "r = U.objects.filter(model='gpt-3.5-turbo-instruct').latest('at'); "
        "print(r.estimated, r.completion_tokens)",
    ).stdout.split()[-2:]
    assert counted[0] == "True" and 0 < int(counted[1]) < 400, counted

    page.get_by_label("Prompt", exact=True).fill("Hello [[tokens=30]] [[error:midstream]]")
    page.get_by_role("button", name="Complete").click()
    error = page.get_by_test_id("completion-error")
    expect(error).to_contain_text("upstream stream interrupted")
    expect(status(page)).to_have_attribute("data-state", "error")
    assert output(page).inner_text().strip(), "the text before the error is gone"


def test_a_bad_form_shows_field_errors_and_keeps_the_input(page_expecting_400, stack):
    page = page_expecting_400
    open_playground(page, stack)
    page.get_by_label("Model").fill("my-instruct-model")
    page.get_by_label("Temperature").fill("7")
    page.get_by_role("button", name="Complete").click()
    prompt = page.get_by_label("Prompt", exact=True)
    expect(page.locator("#id_prompt_error")).to_have_text("Type a prompt first.")
    expect(page.locator("#id_temperature_error")).to_contain_text("less than or equal to 2")
    expect(prompt).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Model")).to_have_value("my-instruct-model")
    expect(status(page)).to_have_attribute("data-state", "idle")

    # Fixed, sent again: the old errors go away.
    page.get_by_label("Model").fill("gpt-3.5-turbo-instruct")
    page.get_by_label("Temperature").fill("")
    prompt.fill("Fine now [[tokens=5]]")
    page.get_by_role("button", name="Complete").click()
    expect(status(page)).to_have_attribute("data-state", "done")
    expect(page.locator("#id_prompt_error")).to_have_count(0)
    expect(prompt).not_to_have_attribute("aria-invalid", "true")


def test_embeddings_show_a_similarity_matrix_and_download_as_csv(page, stack):
    open_playground(page, stack)
    page.get_by_role("link", name="Embeddings").click()
    texts = ["the cat sat on the mat", "a cat sat on the mat", "stock market report"]
    field = page.get_by_label("Texts", exact=True)
    field.fill("\n".join(texts))
    field.press("Control+Enter")
    page.wait_for_url("**/playground/embeddings/")

    matrix = page.get_by_test_id("similarity-matrix")
    expect(matrix).to_be_visible()
    expect(matrix.locator("tbody tr")).to_have_count(3)
    expect(matrix.locator("thead th[scope=col]")).to_have_count(3)
    for i in range(3):
        row = matrix.locator("tbody tr").nth(i)
        expect(row.locator("th[scope=row]")).to_contain_text(texts[i][:20])
        expect(row.locator("td")).to_have_count(3)
        expect(row.locator("td").nth(i)).to_have_text("1.00")
    close = float(matrix.locator("tbody tr").nth(0).locator("td").nth(1).inner_text())
    far = float(matrix.locator("tbody tr").nth(0).locator("td").nth(2).inner_text())
    assert close > far
    expect(page.get_by_test_id("vector-count")).to_have_text("3")
    expect(page.get_by_test_id("vector-dimensions")).to_have_text("1536")
    expect(field).to_have_value("\n".join(texts))  # ready to change and embed again

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert re.fullmatch(r"embeddings-\d{8}-\d{6}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8-sig") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert rows[0][:3] == ["index", "text", "dim_1"] and len(rows[0]) == 2 + 1536
    assert [row[1] for row in rows[1:]] == texts
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-embeddings.png"), full_page=True)


def test_phone_width_has_no_sideways_scroll(browser, stack):
    context = browser.new_context(
        base_url=stack.url, viewport={"width": 360, "height": 740}, color_scheme="dark"
    )
    page = context.new_page()
    try:
        sign_in(page, "admin", stack.admin_password)
        for path in ("/playground/", "/playground/embeddings/"):
            page.goto(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} scrolls sideways at 360 px ({width} px wide)"
        page.get_by_label("Texts", exact=True).fill("\n".join(f"text number {n}" for n in range(8)))
        page.get_by_role("button", name="Embed").click()
        expect(page.get_by_test_id("similarity-matrix")).to_be_visible()
        # A wide matrix scrolls inside its own box, not the page.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "playground-phone-dark.png"), full_page=True)
    finally:
        context.close()
