"""Kling and Runway video jobs end to end against the relay simulator over real HTTP: the forms,
submit, progress, the stored video, the relay's refusals and failures, and owner checks."""

import asyncio
import hashlib
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from media_jobs import runner
from media_jobs.models import Asset, Job
from studio.simulator.video import SAMPLE_VIDEO
from studio.upstream import BadRequestError, RelayClient, RelayCredentials, kling
from tests.integration.job_helpers import drive

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE_SHA256 = hashlib.sha256(SAMPLE_VIDEO.read_bytes()).hexdigest()


def picture(size=(480, 320), image_format="PNG", name="frame.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 120, 200)).save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def new_kling(client, **fields):
    data = {
        "source": "text2video",
        "prompt": "A paper boat drifting down a rainy street",
        "negative_prompt": "",
        "model_name": "kling-v1",
        "mode": "std",
        "duration": "5",
        "aspect_ratio": "16:9",
        "cfg_scale": "0.5",
    }
    data.update(fields)
    return client.post("/jobs/new/kling/", data)


def new_runway(client, **fields):
    data = {
        "image": picture(),
        "prompt": "The waves roll in slowly",
        "model": "gen3a_turbo",
        "duration": "5",
        "ratio": "1280:768",
        "seed": "",
    }
    data.update(fields)
    return client.post("/jobs/new/runway/", data)


def created(response, user, kind) -> Job:
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.filter(user=user, kind=kind).order_by("-created_at")[0]
    assert response["Location"] == f"/jobs/{job.id}/"
    return job


def assert_stored_video(client, job: Job) -> Asset:
    (asset,) = Asset.objects.filter(job=job)
    assert asset.mime == "video/mp4" and str(asset.file.name).endswith(".mp4")
    assert asset.sha256 == SAMPLE_SHA256 and asset.bytes == SAMPLE_VIDEO.stat().st_size
    status = client.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and status["progress"] == 100
    (listed,) = status["assets"]
    assert listed["mime"] == "video/mp4" and listed["bytes"] == asset.bytes
    response = client.get(listed["url"])
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == SAMPLE_SHA256
    download = client.get(f"{listed['url']}?download=1")
    assert download["Content-Disposition"].startswith("attachment")
    return asset


# --- Kling ----------------------------------------------------------------------------------


def test_kling_text_to_video_runs_to_a_stored_video(signed_in, relay, user, other_user, client):
    job = created(new_kling(signed_in), user, "kling")
    assert job.status == "queued"
    assert job.params["source"] == "text2video" and job.params["image"] is None

    seen: list[tuple[str, int]] = []
    job = drive(job, seen)

    assert job.status == "succeeded", job.error
    assert job.upstream_id.startswith("text2video:")
    assert seen[0] == ("submitted", 0)  # the submit, then the polls
    running = [progress for status, progress in seen if status == "running"]
    assert running and all(0 < progress < 100 for progress in running)
    assert job.result["video_duration"] == "2.0"
    asset = assert_stored_video(signed_in, job)

    client.force_login(other_user)
    assert client.get(f"/jobs/{job.id}/").status_code == 404
    assert client.get(f"/jobs/{job.id}/status.json").status_code == 404
    assert client.get(f"/jobs/assets/{asset.id}/").status_code == 404
    assert client.post(f"/jobs/{job.id}/retry/").status_code == 404


def test_a_file_left_in_a_text_to_video_form_is_ignored(signed_in, relay, user):
    junk = SimpleUploadedFile("notes.txt", b"not a picture at all")
    job = created(new_kling(signed_in, image=junk), user, "kling")
    assert job.params["image"] is None and job.upload_paths() == set()


def test_kling_image_to_video_polls_the_image2video_path(signed_in, relay, user):
    response = new_kling(
        signed_in, source="image2video", prompt="", image=picture(), image_tail=picture()
    )
    job = created(response, user, "kling")
    assert job.params["image"]["mime"] == "image/png" and job.params["image_tail"]["path"]
    job = drive(job)
    assert job.status == "succeeded", job.error
    assert job.upstream_id.startswith("image2video:")
    assert_stored_video(signed_in, job)

    # Kling finds the task only on the path of the endpoint that made it.
    task_id = job.upstream_id.split(":", 1)[1]
    client = RelayClient(RelayCredentials(relay.url, relay.key))

    async def fetch(endpoint: str) -> kling.KlingTask:
        return await kling.fetch_video(client, endpoint, task_id)

    assert asyncio.run(fetch("image2video")).succeeded
    with pytest.raises(BadRequestError) as raised:
        asyncio.run(fetch("text2video"))
    assert raised.value.status == 404 and raised.value.relay_code == "1203"


def test_a_kling_task_failing_on_the_relay_shows_why_and_can_be_retried(signed_in, relay, user):
    job = drive(created(new_kling(signed_in, prompt="A storm [[video:fail]]"), user, "kling"))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "risk control system" in job.error
    assert not Asset.objects.filter(job=job).exists()
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "risk control system" in page and 'data-testid="retry-job"' in page

    response = signed_in.post(f"/jobs/{job.id}/retry/")
    again = Job.objects.exclude(pk=job.pk).get(user=user)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{again.id}/"
    assert again.params == job.params and again.status == "queued"
    runner.advance(str(again.id))
    again.refresh_from_db()
    assert again.status == "submitted" and again.upstream_id != job.upstream_id


def test_kling_refusals_carry_the_relay_message(signed_in, relay, user):
    # A non-zero Kling code inside an HTTP 200 reply.
    job = drive(
        created(new_kling(signed_in, prompt="x [[video:refuse]] [[kling:http200]]"), user, "kling")
    )
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "the content was flagged" in job.error

    # Kling's "resource pack used up" comes with HTTP 429, but it is no reason to retry.
    job = drive(created(new_kling(signed_in, prompt="x [[kling:quota]]"), user, "kling"))
    assert job.status == "failed" and job.error_code == "quota"
    assert "资源包已用完" in job.error


def test_a_busy_relay_is_retried_later_not_failed(signed_in, relay, user):
    job = created(new_kling(signed_in, prompt="Busy [[error:429]]"), user, "kling")
    before = timezone.now()
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 1
    assert job.submit_started_at is None  # refused for load: safe to send again
    assert "try again in 7 seconds" in job.error
    assert job.next_step_at >= before + timedelta(seconds=7)
    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "queued" and "busy" in status["error"]


def test_a_rejected_key_fails_the_job(signed_in, relay, user):
    job = drive(created(new_kling(signed_in, prompt="x [[error:401]]"), user, "kling"))
    assert job.status == "failed" and job.error_code == "auth"
    assert "rejected the API key" in job.error and "无效的令牌" in job.error


def test_an_expired_result_url_fails_the_download(signed_in, relay, user):
    job = drive(created(new_kling(signed_in, prompt="Slow river [[expire]]"), user, "kling"))
    assert job.status == "failed" and job.error_code == "download"
    assert "no longer available (HTTP 403)" in job.error
    assert not Asset.objects.filter(job=job).exists()


# --- Runway ---------------------------------------------------------------------------------


def test_runway_image_to_video_runs_to_a_stored_video(signed_in, relay, user, other_user, client):
    job = created(new_runway(signed_in, seed="4294967295"), user, "runway")
    assert job.params["image"]["mime"] == "image/png" and job.params["seed"] == 4294967295

    seen: list[tuple[str, int]] = []
    job = drive(job, seen)

    assert job.status == "succeeded", job.error
    # The relay did not know the task at the first poll: still pending, not failed.
    assert seen[:2] == [("submitted", 0), ("submitted", 0)]
    running = [progress for status, progress in seen if status == "running"]
    assert running == sorted(running) and 0 < running[0] < running[-1] < 100
    asset = assert_stored_video(signed_in, job)

    client.force_login(other_user)
    assert client.get(f"/jobs/{job.id}/").status_code == 404
    assert client.get(f"/jobs/{job.id}/status.json").status_code == 404
    assert client.get(f"/jobs/assets/{asset.id}/").status_code == 404


def test_a_runway_failure_names_reason_and_code(signed_in, relay, user):
    job = drive(created(new_runway(signed_in, prompt="Waves [[video:fail]]"), user, "runway"))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "simulated failure" in job.error and "(INTERNAL.BAD_OUTPUT.CODE01)" in job.error


def test_a_runway_task_the_relay_never_finds_fails_after_the_grace_period(signed_in, relay, user):
    job = created(new_runway(signed_in, prompt="Lost [[video:lost]]"), user, "runway")
    runner.advance(str(job.id))  # submit
    Job.objects.filter(pk=job.pk).update(next_step_at=None)
    runner.advance(str(job.id))  # task_not_exist, young task: pending
    job.refresh_from_db()
    assert job.status == "submitted" and not job.error

    task_id, _, created_at = job.upstream_id.rpartition("@")
    Job.objects.filter(pk=job.pk).update(
        upstream_id=f"{task_id}@{int(created_at) - 60}", next_step_at=None
    )
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "task_not_exist" in job.error


def test_runway_settings_can_be_used_again_with_the_stored_image(signed_in, relay, user):
    first = drive(created(new_runway(signed_in), user, "runway"))
    assert first.status == "succeeded", first.error
    form = signed_in.get(f"/jobs/new/runway/?from={first.id}").content.decode()
    assert "The waves roll in slowly" in form
    response = signed_in.post(
        f"/jobs/new/runway/?from={first.id}",
        {"prompt": "Faster waves", "model": "gen3a_turbo", "duration": "10", "ratio": "768:1280"},
    )
    second = created(response, user, "runway")
    assert second.params["image"] == first.params["image"]  # the same stored file
    second = drive(second)
    assert second.status == "succeeded", second.error


# --- forms ----------------------------------------------------------------------------------


def test_the_create_page_offers_both_video_kinds(signed_in, relay):
    page = signed_in.get("/jobs/").content.decode()
    assert 'data-testid="kind-kling"' in page and 'data-testid="kind-runway"' in page
    for kind in ("kling", "runway"):
        assert signed_in.get(f"/jobs/new/{kind}/").status_code == 200


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "Write a prompt"),
        ({"prompt": "x" * 2501}, "prompt", "at most 2500 characters"),
        ({"source": "image2video"}, "image", "Upload the image"),
        ({"source": "image2video", "image": picture((200, 200))}, "image", "at least 300"),
        (
            {"source": "image2video", "image": picture((1000, 300))},
            "image",
            "too narrow or too wide",
        ),
        (
            {"source": "image2video", "image": SimpleUploadedFile("a.png", b"not an image")},
            "image",
            "a.png is not a PNG or JPEG image.",
        ),
        (
            {"source": "image2video", "image": picture(image_format="WEBP", name="a.webp")},
            "image",
            "a.webp is not a PNG or JPEG image.",
        ),
        ({"cfg_scale": "1.5"}, "cfg_scale", "less than or equal to 1"),
        ({"duration": "7"}, "duration", "Select a valid choice"),
    ],
)
def test_a_bad_kling_form_keeps_what_was_typed(signed_in, relay, user, fields, field, message):
    typed = {"negative_prompt": "blurry, text overlays", **fields}
    response = new_kling(signed_in, **typed)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in " ".join(form.errors[field])
    page = response.content.decode()
    assert "blurry, text overlays" in page  # what was typed is still there
    assert not Job.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"image": ""}, "image", "required"),
        (
            {"image": SimpleUploadedFile("a.jpg", b"GIF89a nonsense")},
            "image",
            "a.jpg is not a PNG, JPEG or WebP image.",
        ),
        ({"prompt": "y" * 513}, "prompt", "at most 512 characters"),
        ({"seed": "4294967296"}, "seed", "less than or equal to 4294967295"),
        ({"ratio": "16:9"}, "ratio", "Select a valid choice"),
    ],
)
def test_a_bad_runway_form_keeps_what_was_typed(signed_in, relay, user, fields, field, message):
    response = new_runway(signed_in, **fields)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in " ".join(form.errors[field])
    if field != "prompt":
        assert "The waves roll in slowly" in response.content.decode()
    assert not Job.objects.filter(user=user).exists()
