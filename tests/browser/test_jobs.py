"""Create a DALL·E job in the browser and watch its page follow it to the finished image."""

from playwright.sync_api import expect

from tests.browser.conftest import sign_in


def test_dalle_job_page_updates_live_to_the_image(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.get_by_role("link", name="Create", exact=True).click()
    page.get_by_test_id("kind-dalle").click()
    page.get_by_label("Prompt").fill("A red kite over green hills [[sleep=1]]")
    page.get_by_label("Size").select_option("1792x1024")
    page.get_by_role("button", name="Create").click()

    page.wait_for_url("**/jobs/*/")
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    image = page.get_by_test_id("job-assets").locator("img")
    expect(image).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", image.element_handle()) == 1792
    expect(page.get_by_role("link", name="Download")).to_be_visible()

    page.get_by_role("link", name="Create", exact=True).click()
    expect(page.get_by_test_id("gallery").locator("img")).to_have_count(1)


def test_a_bad_form_keeps_the_prompt(page_expecting_400, stack):
    page = page_expecting_400
    sign_in(page, "admin", stack.admin_password)
    page.goto("/jobs/new/dalle/")
    page.get_by_label("Prompt").fill("Two at once please")
    page.get_by_label("Images").fill("2")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("DALL·E 3 makes one image per request.").first).to_be_visible()
    expect(page.get_by_label("Prompt")).to_have_value("Two at once please")
