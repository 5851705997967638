"""CogVideoX video jobs end to end against the relay simulator over real HTTP: text and image to
video, the stored video and cover, a task failing upstream, Zhipu's error bodies (content
safety, an account in arrears sent with HTTP 429) and the form's rules."""

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs import runner
from media_jobs.models import Asset, Job
from studio.simulator.video import SAMPLE_VIDEO
from tests.integration.job_helpers import drive

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE_SHA256 = hashlib.sha256(SAMPLE_VIDEO.read_bytes()).hexdigest()


def picture(name="frame.png", size=(480, 270), image_format="PNG") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 60, 220)).save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def new_cogvideox(client, **fields):
    data = {
        "model": "cogvideox-flash",
        "prompt": "A red kite dancing over the sea",
        "quality": "speed",
        "size": "",
        "fps": "",
    }
    data.update(fields)
    return client.post("/jobs/new/cogvideox/", data)


def created(response, user) -> Job:
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.filter(user=user, kind="cogvideox").order_by("-created_at")[0]
    assert response["Location"] == f"/jobs/{job.id}/"
    return job


def assert_video_and_cover(client, job: Job) -> None:
    video, cover = Asset.objects.filter(job=job).order_by("created_at")
    assert video.mime == "video/mp4" and video.sha256 == SAMPLE_SHA256
    assert cover.mime == "image/png" and cover.width and cover.thumbnail
    status = client.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and status["progress"] == 100
    assert [asset["mime"] for asset in status["assets"]] == ["video/mp4", "image/png"]
    response = client.get(status["assets"][0]["url"])
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == SAMPLE_SHA256


def test_a_cogvideox_text_to_video_runs_to_a_stored_video(
    signed_in, relay, user, other_user, client
):
    response = new_cogvideox(signed_in, with_audio="on", size="1920x1080", fps="60")
    job = created(response, user)
    assert job.params["fps"] == 60 and job.params["with_audio"] is True
    seen: list[tuple[str, int]] = []
    job = drive(job, seen)
    assert job.status == "succeeded", job.error
    assert seen[0] == ("submitted", 0)
    assert "@" in job.upstream_id  # the task id and when it was made
    running = [progress for status, progress in seen if status == "running"]
    assert running and all(0 < progress < 100 for progress in running)
    assert job.result["model"] == "cogvideox-flash"
    assert_video_and_cover(signed_in, job)

    client.force_login(other_user)
    assert client.get(f"/jobs/{job.id}/status.json").status_code == 404


def test_a_cogvideox_image_to_video_needs_no_prompt(signed_in, relay, user):
    response = new_cogvideox(
        signed_in, model="cogvideox-3", prompt="", quality="quality", image=picture()
    )
    job = created(response, user)
    assert job.params["image"]["mime"] == "image/png"
    job = drive(job)
    assert job.status == "succeeded", job.error
    assert_video_and_cover(signed_in, job)


def test_a_cogvideox_task_failing_upstream_shows_why(signed_in, relay, user):
    job = drive(created(new_cogvideox(signed_in, prompt="Storm [[video:fail]]"), user))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "视频生成失败" in job.error and "(500)" in job.error
    assert not Asset.objects.filter(job=job).exists()
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "视频生成失败" in page and 'data-testid="retry-job"' in page


def test_zhipu_error_bodies_fail_the_job_with_their_words(signed_in, relay, user):
    job = drive(created(new_cogvideox(signed_in, prompt="x [[video:refuse]]"), user))
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "不安全或敏感内容" in job.error

    # An account in arrears comes with HTTP 429, yet it is no reason to try again.
    job = created(new_cogvideox(signed_in, prompt="x [[cogvideox:quota]]"), user)
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "quota" and job.attempts == 0
    assert "您的账户已欠费" in job.error and "no quota left" in job.error


def test_a_busy_relay_is_retried_later(signed_in, relay, user):
    job = created(new_cogvideox(signed_in, prompt="Busy [[error:429]]"), user)
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 1 and "busy" in job.error


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "Write a prompt, upload an image, or both."),
        ({"prompt": "x" * 501}, "prompt", "at most 500 characters"),
        ({"quality": "quality"}, "quality", "CogVideoX Flash does not take this option"),
        ({"model": "cogvideox", "with_audio": "on"}, "with_audio", "CogVideoX does not take"),
        ({"model": "cogvideox", "size": "1280x720"}, "size", "CogVideoX does not take"),
        ({"fps": "24"}, "fps", "Select a valid choice"),
        (
            {"image": picture("a.webp", image_format="WEBP")},
            "image",
            "a.webp is not a PNG or JPEG image.",
        ),
    ],
)
def test_a_bad_cogvideox_form_keeps_what_was_typed(signed_in, relay, user, fields, field, message):
    typed = {"prompt": "A kite with a long blue tail", **fields}
    response = new_cogvideox(signed_in, **typed)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in " ".join(form.errors[field])
    if field != "prompt":
        assert "A kite with a long blue tail" in response.content.decode()
    assert not Job.objects.filter(user=user).exists()


def test_the_create_page_offers_cogvideox(signed_in, relay):
    assert 'data-testid="kind-cogvideox"' in signed_in.get("/jobs/").content.decode()
    assert signed_in.get("/jobs/new/cogvideox/").status_code == 200
