"""Midjourney jobs end to end against the relay simulator: imagine, buttons as child jobs,
describe, shorten, blend, and the proxy's refusals."""

import io
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs import runner
from media_jobs.models import Asset, Job
from studio.accounts.models import RelayCredential

pytestmark = pytest.mark.django_db(transaction=True)

MAX_STEPS = 30


@pytest.fixture
def relay(settings, simulator, tmp_path, user):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.MEDIA_ROOT = tmp_path / "media"
    credential = RelayCredential(user=user, base_url=simulator.url)
    credential.set_api_key(simulator.key)
    credential.save()
    return simulator


def drive(job: Job) -> Job:
    """Advance the job until it finishes, without waiting for the real polling delays."""
    for _ in range(MAX_STEPS):
        runner.advance(str(job.id))
        job.refresh_from_db()
        if job.finished:
            return job
        Job.objects.filter(pk=job.pk).update(next_step_at=None)
    raise AssertionError(f"job did not finish: {job.status} {job.progress}% {job.error}")


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
    # The modal flow is not offered.
    assert not any(custom_id.startswith(("MJ::Inpaint", "MJ::CustomZoom")) for custom_id in offered)

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
