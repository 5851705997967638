"""Use as input in the browser: a DALL·E picture goes into a face swap in one click (only the
face is uploaded), and the swapped picture goes on into a Runway video."""

from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_images import png_payload


def wait_for_success(page) -> None:
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=60_000
    )


def send_first_image_to(page, label: str) -> None:
    menu = page.get_by_test_id("use-as-input")
    menu.locator("summary").first.click()
    menu.get_by_role("link", name=label).click()


def test_an_image_travels_from_dalle_through_face_swap_into_a_video(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.goto("/jobs/new/dalle/")
    page.get_by_label("Prompt").fill("A portrait of a sailor in a yellow coat")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/jobs/*/")
    wait_for_success(page)
    dalle_url = page.url

    send_first_image_to(page, "Face swap: change the face in this image")
    page.wait_for_url("**/jobs/new/faceswap/?input=*")
    chosen = page.get_by_test_id("chosen-input")
    expect(chosen).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", chosen.locator("img").element_handle()) > 0
    # Only the face is uploaded: the picture to change is the DALL·E result.
    page.get_by_label("Face to use").set_input_files(png_payload("face.png", "orange", (80, 80)))
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/jobs/*/")
    assert page.url != dalle_url
    wait_for_success(page)
    expect(page.get_by_test_id("job-assets").locator("img")).to_be_visible()

    send_first_image_to(page, "Runway video from this image")
    page.wait_for_url("**/jobs/new/runway/?input=*")
    page.get_by_label("Motion").fill("The coat flaps in the wind")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/jobs/*/")
    wait_for_success(page)
    video = page.get_by_test_id("job-assets").locator("video")
    expect(video).to_be_visible()
    page.wait_for_function(
        "v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle(), timeout=15_000
    )
