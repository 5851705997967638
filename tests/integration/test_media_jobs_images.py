"""gpt-4-all image jobs and InsightFace face swaps end to end: the forms, the runner, the relay
simulator over real HTTP, the stored pictures and the pages."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from media_jobs import runner, services
from media_jobs.models import Asset, Job
from tests.integration.job_helpers import drive, use_relay
from tests.simulator_fixture import start_simulator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def realtime_simulator():
    """At real speed a face swap takes 15 s, so each poll sees it one step further."""
    with start_simulator(speed=1.0) as running:
        yield running


@pytest.fixture
def realtime_relay(settings, realtime_simulator, tmp_path, user):
    return use_relay(settings, realtime_simulator, tmp_path, user)


def step(job: Job) -> Job:
    """One step now, whenever it was due."""
    Job.objects.filter(pk=job.pk).update(next_step_at=None)
    runner.advance(str(job.id))
    job.refresh_from_db()
    return job


def picture(
    name: str = "face.png",
    colour: str = "orange",
    size: tuple[int, int] = (64, 48),
    image_format: str = "PNG",
    comment: str = "",
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    info = PngInfo()
    if comment:
        info.add_text("Comment", comment)  # the simulator reads face-swap markers from here
    options = {"pnginfo": info} if image_format == "PNG" else {}
    Image.new("RGB", size, colour).save(buffer, image_format, **options)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def new_gpt4_image(client, user, prompt: str, model: str = "gpt-4-all") -> Job:
    response = client.post("/jobs/new/gpt4-image/", {"prompt": prompt, "model": model})
    assert response.status_code == 302, response.content.decode()[:2000]
    return Job.objects.filter(user=user).order_by("-created_at")[0]


def new_faceswap(client, user, **files) -> Job:
    data = {"source": picture(), "target": picture("scene.jpg", "navy", (200, 120), "JPEG")}
    data.update(files)
    response = client.post("/jobs/new/faceswap/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Job.objects.filter(user=user).order_by("-created_at")[0]


def assert_only_the_owner_sees(client, other_user, job: Job) -> None:
    client.force_login(other_user)
    paths = [f"/jobs/{job.id}/", f"/jobs/{job.id}/status.json"]
    for asset in Asset.objects.filter(job=job):
        paths += [f"/jobs/assets/{asset.id}/", f"/jobs/assets/{asset.id}/thumbnail/"]
    assert len(paths) > 2, "the job has no files to check"
    for path in paths:
        assert client.get(path).status_code == 404, path
    assert client.get(f"/jobs/new/{job.kind}/?from={job.id}").status_code == 404


# --- the Create page -------------------------------------------------------------------------


def test_both_kinds_are_offered_with_their_explanations(signed_in, relay):
    page = signed_in.get("/jobs/").content.decode()
    assert 'data-testid="kind-gpt4-image"' in page and 'data-testid="kind-faceswap"' in page
    assert "GPT-4 All image" in page and "Put the face from one photo into another" in page

    form = signed_in.get("/jobs/new/gpt4-image/").content.decode()
    assert "up to 4,000 characters" in form and 'value="gpt-4-all" selected' in form
    assert form.index('value="gpt-4-all"') < form.index('value="gpt-4o-all"')

    form = signed_in.get("/jobs/new/faceswap/").content.decode()
    assert 'enctype="multipart/form-data"' in form
    assert form.count("PNG, JPEG or WebP, up to 10 MB.") == 2
    assert 'accept="image/png,image/jpeg,image/webp"' in form
    assert "js/upload-preview.js" in form


# --- gpt-4-all -------------------------------------------------------------------------------


def test_gpt4_image_keeps_the_pictures_and_the_reply(signed_in, relay, user, other_user, client):
    job = new_gpt4_image(signed_in, user, "A fox in the snow <b>bold</b>")
    assert job.status == "queued"
    job = drive(job)
    assert job.status == "succeeded", job.error
    # The reply shows the image and links the same file for download: one picture kept.
    (asset,) = Asset.objects.filter(job=job)
    assert asset.mime == "image/png" and (asset.width, asset.height) == (1024, 1024)
    assert asset.thumbnail and len(asset.sha256) == 64 and "/files/" in asset.source_url
    reply = job.result["reply"]
    assert "正在生成图片" in reply and "![image](" in reply and job.result["model"] == "gpt-4-all"

    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and status["result"]["reply"] == reply
    assert status["assets"][0]["url"] == f"/jobs/assets/{asset.id}/"
    download = signed_in.get(f"/jobs/assets/{asset.id}/")
    assert b"".join(download.streaming_content).startswith(b"\x89PNG")

    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="job-reply"' in page and "正在生成图片" in page
    # The model's words are text, never markup: the echoed prompt arrives escaped.
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page

    assert_only_the_owner_sees(client, other_user, job)


def test_gpt4o_all_draws_too(signed_in, relay, user):
    job = drive(new_gpt4_image(signed_in, user, "A lighthouse", model="gpt-4o-all"))
    assert job.status == "succeeded", job.error
    assert job.result["model"] == "gpt-4o-all" and Asset.objects.filter(job=job).count() == 1


def test_a_reply_without_an_image_fails_quoting_the_model(signed_in, relay, user):
    job = drive(new_gpt4_image(signed_in, user, "Something it declines [[gpt4:no-image]]"))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert job.error.startswith("The model answered without an image:")
    assert "抱歉，我无法根据这个描述生成图片" in job.error  # noqa: RUF001 - the model's words
    assert not Asset.objects.filter(job=job).exists()
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "The model answered without an image" in page and 'data-testid="retry-job"' in page


def test_a_busy_relay_is_asked_again_later(signed_in, relay, user):
    job = step(new_gpt4_image(signed_in, user, "Busy relay [[error:429]]"))
    assert job.status == "queued" and job.attempts == 1
    assert job.submit_started_at is None  # refused before anything was drawn: safe to resend
    assert job.next_step_at >= timezone.now() + timedelta(seconds=6)  # Retry-After: 7
    assert "busy" in job.error and "当前分组上游负载已饱和" in job.error


def test_a_rejected_key_fails_with_the_relays_words(signed_in, relay, user):
    job = step(new_gpt4_image(signed_in, user, "Who am I [[error:401]]"))
    assert job.status == "failed" and job.error_code == "auth"
    assert "rejected the API key" in job.error and "无效的令牌" in job.error


def test_an_error_in_the_middle_of_the_reply_fails_and_is_not_resent(signed_in, relay, user):
    job = step(new_gpt4_image(signed_in, user, "Interrupted [[error:midstream]]"))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "upstream stream interrupted: context deadline exceeded" in job.error
    assert job.attempts == 0 and job.submit_started_at is not None
    assert not Asset.objects.filter(job=job).exists()


def test_a_reply_cut_short_fails_and_is_not_resent(signed_in, relay, user):
    job = step(new_gpt4_image(signed_in, user, "Cut [[die]]"))
    assert job.status == "failed" and job.attempts == 0
    assert "stream ended before [DONE]" in job.error


def test_an_expired_picture_link_fails_with_a_clear_reason(signed_in, relay, user):
    job = drive(new_gpt4_image(signed_in, user, "Gone too soon [[expire]]"))
    assert job.status == "failed" and job.error_code == "download"
    assert "could not be kept" in job.error


def test_a_bad_gpt4_form_keeps_the_prompt(signed_in, relay, user):
    response = signed_in.post(
        "/jobs/new/gpt4-image/", {"prompt": "A quiet harbour", "model": "gpt-5-imaginary"}
    )
    page = response.content.decode()
    assert response.status_code == 400 and "A quiet harbour" in page
    assert "Select a valid choice" in page
    response = signed_in.post("/jobs/new/gpt4-image/", {"prompt": "x" * 4001})
    assert response.status_code == 400 and "at most 4000 characters" in response.content.decode()
    assert not Job.objects.exists()


# --- face swap -------------------------------------------------------------------------------


def test_a_face_swap_runs_to_the_swapped_picture(
    signed_in, realtime_relay, user, other_user, client
):
    job = new_faceswap(signed_in, user)
    assert job.params["source"]["name"] == "face.png" and job.prompt == "face.png"
    assert job.params["target"]["name"] == "scene.jpg"

    job = step(job)
    assert job.status == "submitted" and job.upstream_id.isdigit()
    for _ in range(3):  # NOT_START, SUBMITTED, then IN_PROGRESS 10 %
        job = step(job)
        if job.status == "running":
            break
    assert job.status == "running" and 0 < job.progress < 100
    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "running" and status["progress"] == job.progress

    job = drive(job)
    assert job.status == "succeeded", job.error
    assert job.result["upstream_action"] == "SWAP_FACE" and status["actions"] == []
    (asset,) = Asset.objects.filter(job=job)
    assert asset.mime == "image/png" and (asset.width, asset.height) == (200, 120)  # the target's
    stored = b"".join(signed_in.get(f"/jobs/assets/{asset.id}/").streaming_content)
    with Image.open(io.BytesIO(stored)) as swapped:
        centre = swapped.convert("RGB").getpixel((100, 60))
        corner = swapped.convert("RGB").getpixel((2, 2))
    assert centre[0] > 200 and corner[2] > 100  # the orange face in the middle of the navy scene
    assert signed_in.get(f"/jobs/{job.id}/status.json").json()["progress"] == 100

    assert_only_the_owner_sees(client, other_user, job)


def test_a_face_swap_failing_on_the_relay_shows_its_reason(signed_in, relay, user):
    job = drive(new_faceswap(signed_in, user, source=picture(comment="[[mj:fail]]")))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "simulated failure" in job.error
    assert not Asset.objects.filter(job=job).exists()
    assert "simulated failure" in signed_in.get(f"/jobs/{job.id}/").content.decode()


def test_the_relays_refusal_of_a_missing_picture_is_clear(relay, user):
    # The form never sends one picture alone; a job made without one shows the relay's refusal.
    job = services.create_job(user, "faceswap", {"source": picture(), "target": None})
    job = drive(job)
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "refused the request" in job.error and "needs both pictures" in job.error
    assert "sour_base64_and_target_base64_is_required" in job.error


def test_a_saturated_relay_is_asked_again_later(signed_in, relay, user):
    job = step(new_faceswap(signed_in, user, target=picture(comment="[[error:429]]")))
    assert job.status == "queued" and job.attempts == 1 and job.submit_started_at is None


@pytest.mark.parametrize(
    ("files", "field", "message"),
    [
        ({"target": None}, "target", "This field is required."),
        ({"source": None}, "source", "This field is required."),
        (
            {"target": SimpleUploadedFile("notes.png", b"not a picture", "image/png")},
            "target",
            "notes.png is not a PNG, JPEG or WebP image.",
        ),
        (
            {"source": picture("moving.gif", image_format="GIF")},
            "source",
            "moving.gif is not a PNG, JPEG or WebP image.",
        ),
    ],
)
def test_the_face_swap_form_says_what_is_wrong(signed_in, relay, user, files, field, message):
    data = {"source": picture(), "target": picture("scene.png", "navy")}
    data.update(files)
    response = signed_in.post(
        "/jobs/new/faceswap/", {key: value for key, value in data.items() if value is not None}
    )
    page = response.content.decode()
    assert response.status_code == 400 and message in page
    # The message sits with its own field.
    assert page.index(message) > page.index(f'id="id_{field}"')
    assert not Job.objects.exists()


def test_a_face_swap_can_be_run_again_with_the_same_pictures(signed_in, relay, user):
    first = drive(new_faceswap(signed_in, user))
    assert first.status == "succeeded", first.error
    form = signed_in.get(f"/jobs/new/faceswap/?from={first.id}")
    assert form.status_code == 200
    # No new files: the browser sends only its CSRF token, and the stored pictures are reused.
    response = signed_in.post(f"/jobs/new/faceswap/?from={first.id}", {"csrfmiddlewaretoken": "t"})
    assert response.status_code == 302, response.content.decode()[:2000]
    again = Job.objects.exclude(pk=first.pk).get()
    assert again.params == first.params  # the stored pictures, not new copies
    assert drive(again).status == "succeeded"
