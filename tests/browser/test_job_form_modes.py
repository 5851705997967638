"""Job forms show only the fields of the chosen mode (static/js/job-form.js): switching the mode
hides and disables the other rows and shows them again; a form sent back with errors shows the
rows of the mode it was sent in; jobs sent with rows hidden run to the end; a phone's width
never scrolls sideways."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import sign_in

JOB_PAGE = re.compile(r".*/jobs/[0-9a-f-]{36}/$")
IDEOGRAM_ROWS = {
    # mode -> (rows shown, rows hidden), from IdeogramKind.field_modes
    "generate": (
        ["prompt", "negative_prompt", "model", "aspect_ratio", "num_images", "seed"],
        ["image", "image_weight", "resemblance", "detail"],
    ),
    "remix": (
        ["image", "prompt", "model", "aspect_ratio", "image_weight"],
        ["resemblance", "detail"],
    ),
    "upscale": (
        ["image", "prompt", "magic_prompt_option", "resemblance", "detail", "seed"],
        ["negative_prompt", "model", "style_type", "aspect_ratio", "num_images", "image_weight"],
    ),
    "describe": (
        ["image"],
        ["prompt", "model", "magic_prompt_option", "seed", "resemblance", "color_palette"],
    ),
}


def row(page, name: str):
    return page.locator(f'form.job-form .form-row[data-field="{name}"]')


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= 360")


def controls(page, name: str) -> list:
    expect(row(page, name)).to_have_count(1)  # a hidden row is still there, not missing
    found = row(page, name).locator("input, select, textarea").all()
    assert found, name
    return found


def expect_rows(page, shown: list[str], hidden: list[str]) -> None:
    for name in shown:
        expect(row(page, name)).to_be_visible()
        for control in controls(page, name):
            expect(control).to_be_enabled()
    for name in hidden:
        expect(row(page, name)).to_be_hidden()
        for control in controls(page, name):
            expect(control).to_be_disabled()


def test_ideogram_rows_follow_the_mode_and_a_job_runs_with_rows_hidden(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/jobs/new/ideogram/")
    mode = page.get_by_label("Mode", exact=True)
    expect(mode).to_have_value("generate")
    expect_rows(page, *IDEOGRAM_ROWS["generate"])  # as soon as the page is there
    expect(row(page, "image").locator("input[type=file]")).to_be_disabled()
    assert no_sideways_scroll(page)

    for chosen in ("upscale", "describe", "remix", "generate"):
        mode.select_option(chosen)
        expect_rows(page, *IDEOGRAM_ROWS[chosen])
        assert no_sideways_scroll(page), chosen

    # Generate with the image row hidden (and its required-elsewhere fields left out).
    page.get_by_label("Prompt", exact=True).fill("A lighthouse on a cliff at dusk")
    page.get_by_label("Shape").select_option("ASPECT_16_9")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(JOB_PAGE)
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    expect(page.get_by_test_id("job-assets").locator("img")).to_have_count(1)
    assert no_sideways_scroll(page)


def test_suno_form_sent_back_shows_its_mode_then_generates_with_rows_hidden(
    page_expecting_400, stack
):
    page = page_expecting_400
    sign_in(page, "admin", stack.admin_password)
    page.goto("/jobs/new/suno/")
    mode = page.get_by_label("Mode", exact=True)
    expect_rows(page, ["prompt", "make_instrumental", "mv"], ["title", "tags", "continue_at"])

    mode.select_option("concat")  # join: only the clip id
    expect_rows(page, ["continue_clip_id", "mv"], ["prompt", "title", "make_instrumental"])
    mode.select_option("extend")
    expect_rows(page, ["prompt", "title", "tags", "continue_clip_id", "continue_at"], [])
    page.get_by_role("button", name="Create").click()  # no clip: sent back with the errors

    page.wait_for_load_state()
    expect(page.get_by_text("Give the id of the clip to continue.")).to_be_visible()
    expect(page.get_by_label("Mode", exact=True)).to_have_value("extend")
    expect_rows(page, ["prompt", "title", "tags", "continue_clip_id", "continue_at"], [])

    page.get_by_label("Mode", exact=True).select_option("generate")
    expect_rows(page, ["prompt"], ["title", "tags", "continue_clip_id", "continue_at"])
    page.get_by_label("Description or lyrics").fill("A calm song about the sea at night")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(JOB_PAGE)
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=60_000
    )
    expect(page.get_by_test_id("music-clip")).to_have_count(2)
