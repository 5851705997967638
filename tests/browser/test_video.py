"""Create a Kling text-to-video job in the browser and watch its page follow it to a video that
Debian's chromium can play."""

from playwright.sync_api import expect

from tests.browser.conftest import sign_in


def test_kling_job_page_updates_live_to_a_playing_video(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.get_by_role("link", name="Create", exact=True).click()
    page.get_by_test_id("kind-kling").click()
    page.get_by_label("Make the video from").select_option("text2video")
    page.get_by_label("Prompt", exact=True).fill("A paper boat drifting down a rainy street")
    page.get_by_label("Shape").select_option("9:16")
    page.get_by_role("button", name="Create").click()

    page.wait_for_url("**/jobs/*/")
    status = page.get_by_test_id("job-status")
    expect(status).not_to_have_attribute("data-status", "succeeded")  # it starts unfinished
    expect(status).to_have_attribute("data-status", "succeeded", timeout=60_000)

    video = page.get_by_test_id("job-assets").locator("video")
    expect(video).to_be_visible()
    assert video.get_attribute("controls") is not None
    page.wait_for_function(
        "v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle(), timeout=15_000
    )
    assert page.evaluate("v => v.duration", video.element_handle()) > 1
    assert page.evaluate("v => [v.videoWidth, v.videoHeight]", video.element_handle()) == [320, 180]
    assert page.evaluate("v => v.error", video.element_handle()) is None
    expect(page.get_by_role("link", name="Download")).to_be_visible()
