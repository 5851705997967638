"""Midjourney jobs end to end against the relay simulator: imagine, buttons as child jobs,
describe, shorten, blend, the proxy's refusals, the modal flow (Vary Region with a mask,
Custom Zoom with a prompt) and image seeds."""

import base64
import io
import json
from urllib.parse import quote

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs import runner
from media_jobs.forms import check_zoom, with_zoom
from media_jobs.kinds.midjourney import MidjourneyKind
from media_jobs.models import Asset, Job
from studio.upstream import RelayClient, RelayCredentials
from tests.integration.job_helpers import drive

pytestmark = pytest.mark.django_db(transaction=True)


def png(colour=(200, 40, 40), size=(64, 48)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return SimpleUploadedFile("picture.png", buffer.getvalue(), content_type="image/png")


def create(client, **fields):
    data = {"mode": "imagine", "prompt": "", "bot_type": "MID_JOURNEY", "dimensions": "SQUARE"}
    data.update(fields)
    return client.post("/jobs/new/midjourney/", data)


def imagine(client, user, prompt="A lighthouse at dawn --ar 3:2") -> Job:
    response = create(client, prompt=prompt)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Job.objects.filter(user=user).order_by("-created_at")[0]


def test_imagine_then_upscale_as_a_child_job(signed_in, relay, user):
    job = drive(imagine(signed_in, user))
    assert job.status == "succeeded", job.error
    assert job.upstream_id and job.result["upstream_action"] == "IMAGINE"
    assets = list(Asset.objects.filter(job=job))
    assert len(assets) == 5  # the grid and its four images
    assert all(asset.mime == "image/png" for asset in assets)
    assert assets[0].width == 2 * assets[1].width  # the grid first, then its cells

    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    labels = [action["label"] for action in status["actions"]]
    assert labels[:4] == ["U1", "U2", "U3", "U4"] and "V1" in labels and "🔄" in labels
    upscale_1 = status["actions"][0]
    assert upscale_1["url"] == f"/jobs/{job.id}/action/"
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="job-actions"' in page and upscale_1["custom_id"] in page

    response = signed_in.post(upscale_1["url"], {"custom_id": upscale_1["custom_id"]})
    child = Job.objects.get(parent=job)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{child.id}/"
    assert child.params["mode"] == "action" and child.params["task_id"] == job.upstream_id
    assert child.params["custom_id"] == upscale_1["custom_id"] and child.params["label"] == "U1"

    child = drive(child)
    assert child.status == "succeeded", child.error
    assert child.result["upstream_action"] == "UPSCALE"
    (single,) = Asset.objects.filter(job=child)
    assert single.width == 2 * assets[1].width  # one image, twice a cell
    offered = [action["custom_id"] for action in _actions(signed_in, child)]
    assert any("Outpaint" in custom_id for custom_id in offered)  # zoom
    assert any("pan_left" in custom_id for custom_id in offered)
    assert any("high_variation" in custom_id for custom_id in offered)
    # The buttons of the modal flow open a dialog instead of posting at once.
    dialogs = {action["dialog"] for action in _actions(signed_in, child) if action["dialog"]}
    assert dialogs == {"vary_region", "custom_zoom"}

    child_page = signed_in.get(f"/jobs/{child.id}/").content.decode()
    assert f"/jobs/{job.id}/" in child_page  # its parent
    assert f"/jobs/{child.id}/" in signed_in.get(f"/jobs/{job.id}/").content.decode()

    # A button of the upscale (zoom out) runs as a grandchild.
    zoom = next(custom_id for custom_id in offered if "Outpaint::50" in custom_id)
    signed_in.post(f"/jobs/{child.id}/action/", {"custom_id": zoom})
    grandchild = drive(Job.objects.get(parent=child))
    assert grandchild.status == "succeeded" and grandchild.result["upstream_action"] == "ZOOM"


def _actions(client, job):
    return client.get(f"/jobs/{job.id}/status.json").json()["actions"]


def test_unknown_or_hidden_actions_are_refused(signed_in, relay, user):
    job = drive(imagine(signed_in, user))
    response = signed_in.post(f"/jobs/{job.id}/action/", {"custom_id": "MJ::JOB::upsample::9::x"})
    assert response.status_code == 400
    assert not Job.objects.filter(parent=job).exists()


def test_another_user_gets_404_on_the_action_endpoint(signed_in, relay, user, other_user, client):
    job = drive(imagine(signed_in, user))
    custom_id = job.result["buttons"][0]["custom_id"]
    client.force_login(other_user)
    assert client.post(f"/jobs/{job.id}/action/", {"custom_id": custom_id}).status_code == 404
    assert not Job.objects.filter(parent=job).exists()


def test_actions_are_not_offered_before_success(signed_in, relay, user):
    job = imagine(signed_in, user)
    assert _actions(signed_in, job) == []
    assert signed_in.post(f"/jobs/{job.id}/action/", {"custom_id": "x"}).status_code == 400


def test_a_banned_word_fails_the_job_naming_the_word(signed_in, relay, user):
    job = drive(imagine(signed_in, user, "Something rude [[mj:banned]]"))
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "nsfw" in job.error


def test_a_full_queue_is_retried_later_not_failed(signed_in, relay, user):
    job = imagine(signed_in, user, "Busy [[mj:queue-full]]")
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 1
    assert job.submit_started_at is None  # nothing was created: safe to send again
    assert job.error


def test_a_task_failing_on_the_relay_fails_with_its_reason(signed_in, relay, user):
    job = drive(imagine(signed_in, user, "Doomed [[mj:fail]]"))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "simulated failure" in job.error
    assert not Asset.objects.filter(job=job).exists()


def test_describe_offers_four_prompts_to_use(signed_in, relay, user):
    response = signed_in.post(
        "/jobs/new/midjourney/",
        {
            "mode": "describe",
            "prompt": "",
            "bot_type": "MID_JOURNEY",
            "dimensions": "SQUARE",
            "images": [png()],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = drive(Job.objects.get(user=user))
    assert job.status == "succeeded", job.error
    prompts = job.result["prompts"]
    assert len(prompts) == 4 and all("red" in p and "\u20e3" not in p for p in prompts)
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert page.count("Use this prompt") == 4
    link = f"/jobs/new/midjourney/?prompt={quote(prompts[0], safe='')}"
    assert link.replace("&", "&amp;") in page or link in page
    assert 'data-testid="job-actions"' not in page  # the pick buttons are not offered
    form = signed_in.get(link).content.decode()
    assert prompts[0].split(",")[0] in form


def test_shorten_offers_its_options(signed_in, relay, user):
    response = create(signed_in, mode="shorten", prompt="a very long and flowery prompt about cats")
    assert response.status_code == 302
    job = drive(Job.objects.get(user=user))
    assert job.status == "succeeded", job.error
    assert len(job.result["prompts"]) == 5
    assert job.result["prompts"][-1]  # shortest option
    assert not Asset.objects.filter(job=job).exists()
    assert "Use this prompt" in signed_in.get(f"/jobs/{job.id}/").content.decode()


def test_blend_of_uploaded_images(signed_in, relay, user):
    response = signed_in.post(
        "/jobs/new/midjourney/",
        {
            "mode": "blend",
            "prompt": "",
            "bot_type": "MID_JOURNEY",
            "dimensions": "LANDSCAPE",
            "images": [png((200, 0, 0)), png((0, 0, 200))],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = drive(Job.objects.get(user=user))
    assert job.status == "succeeded", job.error
    assert job.result["upstream_action"] == "BLEND"
    assert Asset.objects.filter(job=job).count() == 5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "imagine"}, "Write a prompt."),
        ({"mode": "shorten"}, "Write a prompt."),
        ({"mode": "describe"}, "Describe takes exactly one image."),
        ({"mode": "blend", "images": "one"}, "Blend takes 2 to 5 images."),
        ({"mode": "describe", "images": "text"}, "is not a PNG, JPEG, WebP or GIF image."),
    ],
)
def test_the_form_checks_each_mode(signed_in, relay, user, fields, message):
    data = {"mode": "imagine", "prompt": "", "bot_type": "MID_JOURNEY", "dimensions": "SQUARE"}
    data.update(fields)
    if data.get("images") == "one":
        data["images"] = [png()]
    elif data.get("images") == "text":
        data["images"] = [SimpleUploadedFile("fake.png", b"not an image", "image/png")]
    response = signed_in.post("/jobs/new/midjourney/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Job.objects.exists()


def test_suggestions_are_split_on_keycaps_or_numbers():
    from media_jobs.kinds.midjourney import split_prompts

    keycaps = "1\ufe0f\u20e3 a red fox --ar 1:1\n\n2\ufe0f\u20e3 a blue owl\n\n3\u20e3 a cat"
    assert split_prompts(keycaps) == ["a red fox --ar 1:1", "a blue owl", "a cat"]
    assert split_prompts("1. first one\n2) second one\n") == ["first one", "second one"]
    assert split_prompts(" just one ") == ["just one"]
    assert split_prompts("") == []


# ---------------------------------------------------------------- the modal flow


def upscaled(client, user) -> Job:
    """A finished upscale (U1 of a finished grid): the job that offers Vary Region and zoom."""
    grid = drive(imagine(client, user, "A harbour at night --ar 3:2"))
    u1 = next(a for a in _actions(client, grid) if a["label"] == "U1")
    client.post(u1["url"], {"custom_id": u1["custom_id"]})
    job = drive(Job.objects.get(parent=grid))
    assert job.status == "succeeded", job.error
    return job


def _dialog_action(client, job, dialog):
    return next(a for a in _actions(client, job) if a["dialog"] == dialog)


def mask_uri(size, box=(10, 10, 60, 40), fmt="PNG", mode="RGB") -> str:
    image = Image.new(mode, size, "black")
    if box:
        image.paste("white", box)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    mime = "image/png" if fmt == "PNG" else f"image/{fmt.lower()}"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def relay_task(simulator, task_id):
    response = httpx.get(
        f"{simulator.url}/mj/task/{task_id}/fetch", headers=simulator.headers(), timeout=10
    )
    response.raise_for_status()
    return response.json()


def test_vary_region_sends_the_mask_through_the_modal(signed_in, relay, user):
    job = upscaled(signed_in, user)
    (image,) = Asset.objects.filter(job=job)
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="dialog-vary_region"' in page
    assert f'width="{image.width}" height="{image.height}"' in page  # the canvas: image pixels
    assert "A harbour at night --ar 3:2</textarea>" in page  # the prompt, prefilled

    action = _dialog_action(signed_in, job, "vary_region")
    mask = mask_uri((image.width, image.height))
    response = signed_in.post(
        action["url"], {"custom_id": action["custom_id"], "prompt": "a red lantern", "mask": mask}
    )
    child = Job.objects.get(parent=job)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{child.id}/"
    assert child.params["custom_id"] == action["custom_id"]
    assert child.params["task_id"] == job.upstream_id
    assert child.params["prompt"] == "a red lantern" and child.params["mask"] == mask

    child = drive(child)
    assert child.status == "succeeded", child.error
    assert child.result["upstream_action"] == "INPAINT"
    assert Asset.objects.filter(job=child).exists()
    task = relay_task(relay, child.upstream_id)
    assert task["maskBase64"] == mask  # the relay got the mask, through /mj/submit/modal
    assert task["prompt"] == "a red lantern"


def test_vary_region_without_a_prompt_keeps_the_images_prompt(signed_in, relay, user):
    job = upscaled(signed_in, user)
    (image,) = Asset.objects.filter(job=job)
    action = _dialog_action(signed_in, job, "vary_region")
    mask = mask_uri((image.width, image.height))
    signed_in.post(action["url"], {"custom_id": action["custom_id"], "prompt": " ", "mask": mask})
    child = drive(Job.objects.get(parent=job))
    assert child.status == "succeeded", child.error
    assert relay_task(relay, child.upstream_id)["prompt"] == job.prompt


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        ("", "Paint the region to redraw first."),
        ("jpeg", "The mask must be a PNG image."),
        ("data:image/png;base64,@@not base64@@", "The mask could not be read."),
        ("data:image/png;base64," + base64.b64encode(b"GIF89a....").decode(), "could not be read"),
        ("black", "The mask is empty: paint the region to redraw."),
        ("small", "The mask must be as large as the image"),
        ("huge", "The mask is larger than 5 MB."),
    ],
)
def test_vary_region_refuses_a_bad_mask(signed_in, relay, user, settings, mask, message):
    job = upscaled(signed_in, user)
    (image,) = Asset.objects.filter(job=job)
    size = (image.width, image.height)
    mask = {
        "jpeg": mask_uri(size, fmt="JPEG"),
        "black": mask_uri(size, box=None),
        "small": mask_uri((64, 64)),
        "huge": "data:image/png;base64," + "A" * (7 * 1024 * 1024),
    }.get(mask, mask)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = None  # reach the form's own 5 MB cap
    action = _dialog_action(signed_in, job, "vary_region")
    response = signed_in.post(
        action["url"], {"custom_id": action["custom_id"], "prompt": "kept as typed", "mask": mask}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert "data-open-on-load" in page  # the dialog opens again, with what was typed
    assert "kept as typed</textarea>" in page
    assert not Job.objects.filter(parent=job).exists()


def test_vary_region_refuses_a_prompt_that_is_too_long(signed_in, relay, user):
    job = upscaled(signed_in, user)
    (image,) = Asset.objects.filter(job=job)
    action = _dialog_action(signed_in, job, "vary_region")
    response = signed_in.post(
        action["url"],
        {
            "custom_id": action["custom_id"],
            "prompt": "x" * 4001,
            "mask": mask_uri((image.width, image.height)),
        },
    )
    assert response.status_code == 400
    assert "at most 4000 characters" in response.content.decode()
    assert not Job.objects.filter(parent=job).exists()


def test_custom_zoom_sends_the_prompt_through_the_modal(signed_in, relay, user):
    job = upscaled(signed_in, user)
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "A harbour at night --ar 3:2 --zoom 2</textarea>" in page

    action = _dialog_action(signed_in, job, "custom_zoom")
    prompt = "A harbour at night, wider --ar 3:2 --zoom 1.5"
    response = signed_in.post(action["url"], {"custom_id": action["custom_id"], "prompt": prompt})
    child = Job.objects.get(parent=job)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{child.id}/"
    assert child.params["prompt"] == prompt and "mask" not in child.params

    child = drive(child)
    assert child.status == "succeeded", child.error
    assert child.result["upstream_action"] == "CUSTOM_ZOOM"
    assert relay_task(relay, child.upstream_id)["prompt"] == prompt


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("wider --zoom 3", "must be above 1 and at most 2"),
        ("wider --zoom 1", "must be above 1 and at most 2"),
        ("wider --zoom abc", "must be above 1 and at most 2"),
        ("wider --zoom --ar 3:2", "must be above 1 and at most 2"),
        ("wider", "Add --zoom and a factor"),
        ("wider --zoom 1.5 --zoom 2", "Give --zoom only once."),
        ("", "Write a prompt ending with --zoom"),
    ],
)
def test_custom_zoom_refuses_a_bad_zoom(signed_in, relay, user, prompt, message):
    job = upscaled(signed_in, user)
    action = _dialog_action(signed_in, job, "custom_zoom")
    response = signed_in.post(action["url"], {"custom_id": action["custom_id"], "prompt": prompt})
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f"{prompt}</textarea>" in page
    assert not Job.objects.filter(parent=job).exists()


def test_a_refused_confirmation_fails_the_child_with_the_reason(signed_in, relay, user):
    job = upscaled(signed_in, user)
    action = _dialog_action(signed_in, job, "custom_zoom")
    signed_in.post(
        action["url"], {"custom_id": action["custom_id"], "prompt": "rude [[mj:banned]] --zoom 2"}
    )
    child = drive(Job.objects.get(parent=job))
    assert child.status == "failed" and child.error_code == "relay_failed"
    assert "confirmation" in child.error and "nsfw" in child.error


def test_another_user_cannot_use_the_dialogs(signed_in, relay, user, other_user, client):
    job = upscaled(signed_in, user)
    (image,) = Asset.objects.filter(job=job)
    region = _dialog_action(signed_in, job, "vary_region")
    zoom = _dialog_action(signed_in, job, "custom_zoom")
    client.force_login(other_user)
    mask = mask_uri((image.width, image.height))
    fields = {"custom_id": region["custom_id"], "prompt": "mine now", "mask": mask}
    assert client.post(region["url"], fields).status_code == 404
    fields = {"custom_id": zoom["custom_id"], "prompt": "mine --zoom 2"}
    assert client.post(zoom["url"], fields).status_code == 404
    assert not Job.objects.filter(parent=job).exists()


def test_a_relay_that_answers_1_still_gets_the_confirmation():
    """new-api relays may rewrite code 21 to 1 (§2.2): the task itself then says MODAL."""
    sent: list[tuple[str, dict]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        sent.append((request.url.path, body))
        if request.url.path.endswith("/fetch"):
            return httpx.Response(200, json={"id": "77", "status": "MODAL", "progress": "0%"})
        return httpx.Response(200, json={"code": 1, "description": "提交成功", "result": "77"})

    async def submit():
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            client = RelayClient(RelayCredentials("http://relay.test", "sk-x"), http_client=http)
            params = {
                "mode": "action",
                "task_id": "12",
                "custom_id": "MJ::CustomZoom::abc",
                "prompt": "sea --zoom 1.5",
                "dialog": "custom_zoom",
            }
            return await MidjourneyKind().submit(client, params)

    outcome = async_to_sync(submit)()
    assert outcome.upstream_id == "77" and not outcome.failure
    assert [path for path, _ in sent] == [
        "/mj/submit/action",
        "/mj/task/77/fetch",
        "/mj/submit/modal",
    ]
    assert sent[-1][1] == {"taskId": "77", "prompt": "sea --zoom 1.5"}


def test_zoom_prompts():
    assert with_zoom("sea --zoom 1.2 --ar 3:2") == "sea --ar 3:2 --zoom 2"
    assert with_zoom("") == "--zoom 2"
    assert check_zoom("sea --zoom=1.25") == 1.25
    assert check_zoom("sea --ZOOM 2") == 2.0


# ---------------------------------------------------------------- image seed


def test_show_seed_keeps_the_relays_seed(signed_in, relay, user):
    job = drive(imagine(signed_in, user))
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="show-seed"' in page and f"/jobs/{job.id}/seed/" in page

    response = signed_in.post(f"/jobs/{job.id}/seed/")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.id}/"
    job.refresh_from_db()
    seed = job.result["seed"]
    assert seed.isdigit()
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert f'<code data-testid="job-seed">{seed}</code>' in page and "Copy seed" in page
    assert 'data-testid="show-seed"' not in page
    assert signed_in.get(f"/jobs/{job.id}/status.json").json()["result"]["seed"] == seed


def test_show_seed_says_when_the_relay_has_none(signed_in, relay, user):
    job = imagine(signed_in, user)
    runner.advance(str(job.id))  # submitted: the relay's task is still running
    job.refresh_from_db()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    response = signed_in.post(f"/jobs/{job.id}/seed/", follow=True)
    page = response.content.decode()
    assert "The relay has no seed for this image: 关联任务状态错误" in page
    job.refresh_from_db()
    assert "seed" not in job.result
    assert 'data-testid="show-seed"' in page  # the user may ask again later


def test_show_seed_of_a_task_the_relay_does_not_know(signed_in, relay, user):
    job = Job.objects.create(
        user=user,
        kind="midjourney",
        params={"mode": "imagine", "prompt": "gone"},
        status=Job.Status.SUCCEEDED,
        upstream_id="1000000000000001",
        result={"upstream_action": "IMAGINE", "buttons": []},
    )
    page = signed_in.post(f"/jobs/{job.id}/seed/", follow=True).content.decode()
    assert "The relay has no seed for this image: task_no_found" in page


def test_no_seed_for_text_results_or_unfinished_jobs(signed_in, relay, user):
    job = imagine(signed_in, user)
    assert signed_in.post(f"/jobs/{job.id}/seed/").status_code == 400
    job = drive(create_shorten(signed_in, user))
    assert 'data-testid="show-seed"' not in signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert signed_in.post(f"/jobs/{job.id}/seed/").status_code == 400


def create_shorten(client, user) -> Job:
    assert create(client, mode="shorten", prompt="a long prompt about owls").status_code == 302
    return Job.objects.filter(user=user).order_by("-created_at")[0]


def test_another_user_cannot_ask_for_the_seed(signed_in, relay, user, other_user, client):
    job = drive(imagine(signed_in, user))
    client.force_login(other_user)
    assert client.post(f"/jobs/{job.id}/seed/").status_code == 404
    job.refresh_from_db()
    assert "seed" not in job.result
    assert client.get(f"/jobs/{job.id}/seed/").status_code == 405
