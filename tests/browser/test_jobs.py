"""Media jobs in the browser: a DALL·E job followed live to its image, Midjourney's buttons as a
family of child jobs, Vary Region's painted mask reaching the relay, and speech that plays."""

import base64
import io
import re

import httpx
from PIL import Image
from playwright.sync_api import expect

from studio.launcher import DEMO_SITE_KEY
from tests.browser.conftest import sign_in


def test_dalle_job_page_updates_live_to_the_image(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.get_by_role("link", name="Create", exact=True).click()
    page.get_by_test_id("kind-dalle").click()
    page.get_by_label("Prompt").fill("A red kite over green hills [[sleep=1]]")
    page.get_by_label("Size").select_option("1792x1024")
    page.get_by_role("button", name="Create").click()

    page.wait_for_url("**/jobs/*/")
    job_path = page.url.removeprefix(stack.url)
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    image = page.get_by_test_id("job-assets").locator("img")
    expect(image).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", image.element_handle()) == 1792
    expect(page.get_by_role("link", name="Download")).to_be_visible()

    page.get_by_role("link", name="Create", exact=True).click()
    # Other tests share the demo's admin: find this job's card, newest first, with its thumbnail.
    card = page.get_by_test_id("gallery").locator(f'a[href="{job_path}"]').first
    expect(card.locator("img")).to_have_attribute("src", re.compile(r"/thumbnail/$"))


def test_a_bad_form_keeps_the_prompt(page_expecting_400, stack):
    page = page_expecting_400
    sign_in(page, "admin", stack.admin_password)
    page.goto("/jobs/new/dalle/")
    page.get_by_label("Prompt").fill("Two at once please")
    page.get_by_label("Images").fill("2")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("DALL·E 3 makes one image per request.").first).to_be_visible()
    expect(page.get_by_label("Prompt")).to_have_value("Two at once please")


# ---------------------------------------------------------------- Midjourney and speech

JOB_PAGE = re.compile(r".*/jobs/[0-9a-f-]{36}/$")


def finish(page, assets: int) -> None:
    """Wait until the job page (updating itself live) shows the finished job's files."""
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=45_000
    )
    expect(page.get_by_test_id("job-assets").locator("img")).to_have_count(assets)


def press(page, name: str) -> str:
    """Press a follow-up button; return the new job page's URL once it is there and has not
    finished yet (it is the page, not a reload, that brings the result)."""
    before = page.url
    page.get_by_test_id("job-actions").get_by_role("button", name=re.compile(name)).click()
    page.wait_for_url(lambda url: url != before and JOB_PAGE.match(url) is not None)
    expect(page.get_by_test_id("job-status")).not_to_have_attribute("data-status", "succeeded")
    return page.url


def imagine(page, stack, prompt: str) -> str:
    sign_in(page, "admin", stack.admin_password)
    page.goto("/jobs/new/midjourney/")
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(JOB_PAGE)
    finish(page, 5)  # the grid and its four images
    return page.url


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_midjourney_buttons_make_child_jobs_in_a_family_tree(page, stack):
    grid = imagine(page, stack, "A lighthouse at dawn")
    upscale = press(page, r"^U2\b")
    finish(page, 1)
    family = page.get_by_test_id("job-family")
    expect(family.locator(f'a[href="{path_of(grid)}"]')).to_be_visible()  # made from the grid

    zoom = press(page, "Zoom Out 2x")
    finish(page, 5)
    expect(
        page.get_by_test_id("job-family").locator(f'a[href="{path_of(upscale)}"]')
    ).to_be_visible()

    page.goto(upscale)
    family = page.get_by_test_id("job-family")
    expect(family.locator(f'a[href="{path_of(grid)}"]')).to_be_visible()
    expect(family.locator(f'a[href="{path_of(zoom)}"]')).to_be_visible()
    page.goto(grid)
    expect(
        page.get_by_test_id("job-family").locator(f'a[href="{path_of(upscale)}"]')
    ).to_be_visible()


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def relay_mask(stack, job_url: str) -> Image.Image:
    """The mask the simulator received for the job's task (its fetch reports maskBase64)."""
    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    shell = f"from media_jobs.models import Job; print(Job.objects.get(pk='{job_id}').upstream_id)"
    task_id = stack.manage("shell", "-c", shell).stdout.strip().splitlines()[-1]
    response = httpx.get(
        f"{stack.simulator_url}/mj/task/{task_id}/fetch",
        headers={"Authorization": f"Bearer {DEMO_SITE_KEY}"},
        timeout=10,
    )
    data_uri = response.json()["maskBase64"]
    assert data_uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))).convert("L")


def test_vary_region_paints_a_mask_the_relay_receives(page, stack):
    page.set_viewport_size({"width": 360, "height": 740})  # a phone
    imagine(page, stack, "A quiet harbour")
    upscale = press(page, r"^U1\b")
    finish(page, 1)
    natural = (
        page.get_by_test_id("job-assets")
        .locator("img")
        .evaluate("img => [img.naturalWidth, img.naturalHeight]")
    )
    assert no_sideways_scroll(page)

    opener = page.get_by_role("button", name=re.compile(r"Vary \(Region\)"))
    opener.click()
    dialog = page.get_by_test_id("dialog-vary_region")
    expect(dialog).to_be_visible()
    assert no_sideways_scroll(page)
    page.keyboard.press("Escape")  # Esc closes it, and focus goes back to its button
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    opener.click()

    submit = dialog.get_by_test_id("dialog-submit")
    submit.click()  # nothing painted: the dialog says so and sends nothing
    expect(dialog.get_by_test_id("mask-error")).to_have_text("Paint the region to redraw first.")
    assert page.url == upscale

    canvas = dialog.get_by_test_id("mask-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + box["width"] * x, box["y"] + box["height"] * y

    def mouse_stroke(y: float) -> None:
        page.mouse.move(*at(0.2, y))
        page.mouse.down()
        page.mouse.move(*at(0.6, y), steps=8)
        page.mouse.up()

    mouse_stroke(0.3)  # kept
    finger_stroke(page, [at(x / 10, 0.7) for x in range(3, 8)])  # kept
    mouse_stroke(0.5)
    dialog.get_by_role("button", name="Undo").click()  # takes back the last stroke only
    expect(dialog.get_by_test_id("mask-error")).to_be_hidden()
    expect(dialog.get_by_label("Prompt (optional)")).to_have_value("A quiet harbour")
    dialog.get_by_label("Prompt (optional)").fill("a red lantern on the pier")
    submit.click()

    page.wait_for_url(lambda url: url != upscale and JOB_PAGE.match(url) is not None)
    finish(page, 5)  # Vary Region answers with a new grid
    expect(
        page.get_by_test_id("job-family").locator(f'a[href="{path_of(upscale)}"]')
    ).to_be_visible()

    mask = relay_mask(stack, page.url)
    assert list(mask.size) == natural  # as many pixels as the image
    width, height = mask.size
    painted = [(0.4, 0.3), (0.5, 0.7)]  # white: redraw
    kept = [(0.4, 0.5), (0.05, 0.3), (0.9, 0.9)]  # black: the undone stroke, untouched parts
    assert [mask.getpixel((int(width * x), int(height * y))) for x, y in painted] == [255, 255]
    assert [mask.getpixel((int(width * x), int(height * y))) for x, y in kept] == [0, 0, 0]


def finger_stroke(page, points: list[tuple[float, float]]) -> None:
    """A real touch drag (Chrome's input pipeline, so pointer events of type "touch")."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    first, *rest = points
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [_touch(first)]})
    for point in rest:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [_touch(point)]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": False})
    cdp.detach()


def _touch(point: tuple[float, float]) -> dict[str, float]:
    return {"x": point[0], "y": point[1]}


def test_text_to_speech_plays_in_the_page(page, stack):
    sign_in(page, "admin", stack.admin_password)
    page.goto("/jobs/new/tts/")
    page.get_by_label("Text").fill("Hello from the browser test.")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(JOB_PAGE)
    expect(page.get_by_test_id("job-status")).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    audio = page.get_by_test_id("job-assets").locator("audio")
    expect(audio).to_be_visible()
    page.wait_for_function(
        "audio => audio.readyState >= 1 && audio.duration > 0", arg=audio.element_handle()
    )
    assert audio.evaluate("audio => audio.error") is None
