"""The image kinds in the browser: face swap uploads previewed before sending, and a gpt-4-all
job page that follows the job to its picture and shows the model's reply as text."""

import io

from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import sign_in


def png_payload(name: str, colour: str, size: tuple[int, int]) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return {"name": name, "mimeType": "image/png", "buffer": buffer.getvalue()}


def test_face_swap_previews_both_pictures_then_shows_the_swap(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.goto("/jobs/")
    page.get_by_test_id("kind-faceswap").click()

    page.get_by_label("Face to use").set_input_files(png_payload("face.png", "orange", (80, 80)))
    page.get_by_label("Picture to change").set_input_files(
        png_payload("scene.png", "navy", (320, 200))
    )
    previews = page.get_by_test_id("upload-preview").locator("img")
    expect(previews).to_have_count(2)
    expect(previews.first).to_have_attribute("alt", "face.png")
    for index in range(2):
        expect(previews.nth(index)).to_be_visible()
        assert page.evaluate("img => img.naturalWidth", previews.nth(index).element_handle()) > 0

    # Choosing another file replaces the preview rather than adding to it.
    page.get_by_label("Face to use").set_input_files(png_payload("other.png", "red", (40, 40)))
    expect(previews).to_have_count(2)
    expect(previews.first).to_have_attribute("alt", "other.png")

    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/jobs/*/")
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    image = page.get_by_test_id("job-assets").locator("img")
    expect(image).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", image.element_handle()) == 320


def test_gpt4_image_page_shows_the_picture_and_the_reply_as_text(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/jobs/new/gpt4-image/")
    page.get_by_label("Prompt").fill("A paper boat on a pond <i>not markup</i>")
    page.get_by_role("button", name="Create").click()

    page.wait_for_url("**/jobs/*/")
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    image = page.get_by_test_id("job-assets").locator("img")
    expect(image).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", image.element_handle()) == 1024
    reply = page.get_by_test_id("job-reply")
    expect(reply).to_contain_text("正在生成图片")
    expect(reply).to_contain_text("<i>not markup</i>")  # shown as typed, not as HTML
    expect(reply.locator("i")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
