"""Luma video jobs end to end against the relay simulator over real HTTP: the form with its
frames, submit, the states, the wait for the download link, the stored video and thumbnail,
extending (the button and the form, extensions of extensions), and Luma's refusals."""

import hashlib
import io

import httpx
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
    Image.new("RGB", size, (200, 80, 40)).save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def new_luma(client, **fields):
    data = {
        "mode": "generate",
        "prompt": "A lighthouse in a storm, waves crashing",
        "aspect_ratio": "16:9",
        "expand_prompt": "on",
    }
    data.update(fields)
    return client.post("/jobs/new/luma/", data)


def created(response, user) -> Job:
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.filter(user=user, kind="luma").order_by("-created_at")[0]
    assert response["Location"] == f"/jobs/{job.id}/"
    return job


def generation(relay, generation_id: str) -> dict:
    """The simulator's own view of a generation (what "the relay" holds)."""
    response = httpx.get(
        f"{relay.url}/luma/generations/{generation_id}", headers=relay.headers(), timeout=10
    )
    assert response.status_code == 200
    return response.json()


def assert_video_and_thumbnail(client, job: Job) -> None:
    video, thumbnail = Asset.objects.filter(job=job).order_by("created_at")
    assert video.mime == "video/mp4" and video.sha256 == SAMPLE_SHA256
    assert thumbnail.mime == "image/jpeg" and (thumbnail.width, thumbnail.height) == (320, 180)
    status = client.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and status["progress"] == 100
    assert [asset["mime"] for asset in status["assets"]] == ["video/mp4", "image/jpeg"]
    response = client.get(status["assets"][0]["url"])
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == SAMPLE_SHA256


def test_a_luma_video_between_two_frames_runs_to_a_stored_video(
    signed_in, relay, user, other_user, client
):
    response = new_luma(
        signed_in,
        aspect_ratio="9:16",
        image=picture(),
        image_end=picture("end.jpg", image_format="JPEG"),
    )
    job = created(response, user)
    assert job.params["image"]["mime"] == "image/png"
    assert job.params["image_end"]["mime"] == "image/jpeg"

    seen: list[tuple[str, int]] = []
    job = drive(job, seen)

    assert job.status == "succeeded", job.error
    assert seen[0] == ("submitted", 0)
    running = [progress for status, progress in seen if status == "running"]
    assert running and all(0 < progress < 100 for progress in running)
    # "completed" came once before its download link did: the job waited for it at 99 %.
    assert ("running", 99) in seen
    assert job.result["generation_id"] == job.upstream_id
    held = generation(relay, job.upstream_id)
    assert held["aspect_ratio"] == "9:16" and held["video"]["download_url"]
    assert_video_and_thumbnail(signed_in, job)

    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert job.upstream_id in page and 'data-testid="luma-extend"' in page

    client.force_login(other_user)
    assert client.get(f"/jobs/{job.id}/").status_code == 404
    assert client.post(f"/jobs/{job.id}/action/", {"custom_id": "luma::extend"}).status_code == 404


def test_extending_a_luma_video_with_the_button_and_the_form_makes_a_chain(signed_in, relay, user):
    parent = drive(created(new_luma(signed_in), user))
    assert parent.status == "succeeded", parent.error
    status = signed_in.get(f"/jobs/{parent.id}/status.json").json()
    assert [action["custom_id"] for action in status["actions"]] == ["luma::extend"]

    # The button: a child job that continues the video with the same prompt.
    response = signed_in.post(f"/jobs/{parent.id}/action/", {"custom_id": "luma::extend"})
    child = Job.objects.get(parent=parent)
    assert response["Location"] == f"/jobs/{child.id}/"
    assert child.kind == "luma" and child.params["task_id"] == parent.upstream_id
    child = drive(child)
    assert child.status == "succeeded", child.error
    assert child.upstream_id != parent.upstream_id
    held = generation(relay, child.upstream_id)
    assert held["extend_of"] == parent.upstream_id and held["prompt"] == parent.params["prompt"]
    assert_video_and_thumbnail(signed_in, child)
    assert "Made from:" in signed_in.get(f"/jobs/{child.id}/").content.decode()

    # The form on the child's page: a new prompt, extending the extension.
    response = signed_in.post(
        "/jobs/new/luma/",
        {
            "mode": "extend",
            "generation_id": child.upstream_id,
            "aspect_ratio": "16:9",
            "prompt": "The storm clears and the sun comes out",
        },
    )
    grandchild = created(response, user)
    assert grandchild.params["generation_id"] == child.upstream_id
    assert grandchild.params["image"] is None
    grandchild = drive(grandchild)
    assert grandchild.status == "succeeded", grandchild.error
    held = generation(relay, grandchild.upstream_id)
    assert held["extend_of"] == child.upstream_id
    assert held["prompt"] == "The storm clears and the sun comes out"
    page = signed_in.get(f"/jobs/{grandchild.id}/").content.decode()
    assert "Extends Luma generation" in page and child.upstream_id in page


def test_an_unfinished_or_unknown_generation_cannot_be_extended(signed_in, relay, user):
    job = created(new_luma(signed_in), user)
    runner.advance(str(job.id))  # submitted, not finished
    response = signed_in.post(f"/jobs/{job.id}/action/", {"custom_id": "luma::extend"})
    assert response.status_code == 400 and not Job.objects.filter(parent=job).exists()

    response = new_luma(signed_in, mode="extend", generation_id="no-such-generation")
    failed = drive(created(response, user))
    assert failed.status == "failed" and failed.error_code == "bad_request"
    assert "Generation not found" in failed.error


def test_a_luma_generation_failing_upstream_shows_why(signed_in, relay, user):
    job = drive(created(new_luma(signed_in, prompt="A storm [[video:fail]]"), user))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "could not render it (simulated)" in job.error
    assert not Asset.objects.filter(job=job).exists()
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "could not render it" in page and 'data-testid="retry-job"' in page
    assert 'data-testid="luma-extend"' not in page


def test_luma_refusals_carry_its_own_words(signed_in, relay, user):
    job = drive(created(new_luma(signed_in, prompt="x [[video:refuse]]"), user))
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "flagged by our moderation system" in job.error

    job = drive(created(new_luma(signed_in, prompt="x [[luma:quota]]"), user))
    assert job.status == "failed" and job.error_code == "quota"
    assert "Insufficient credits" in job.error

    job = drive(created(new_luma(signed_in, prompt="x [[error:quota]]"), user))
    assert job.status == "failed" and job.error_code == "quota"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "Write a prompt"),
        ({"prompt": "x" * 5001}, "prompt", "at most 5000 characters"),
        ({"mode": "extend"}, "generation_id", "Give the id of the Luma video to extend"),
        ({"mode": "extend", "generation_id": "a/b"}, "generation_id", "only letters"),
        (
            {"image": SimpleUploadedFile("a.png", b"not an image")},
            "image",
            "a.png is not a PNG, JPEG or WebP image.",
        ),
        (
            {"image_end": picture("end.gif", image_format="GIF")},
            "image_end",
            "end.gif is not a PNG, JPEG or WebP image.",
        ),
        ({"aspect_ratio": "2:1"}, "aspect_ratio", "Select a valid choice"),
    ],
)
def test_a_bad_luma_form_keeps_what_was_typed(signed_in, relay, user, fields, field, message):
    typed = {"prompt": "A lighthouse with a red roof", **fields}
    response = new_luma(signed_in, **typed)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in " ".join(form.errors[field])
    page = response.content.decode()
    if field != "prompt":
        assert "A lighthouse with a red roof" in page
    if fields.get("mode") == "extend":
        assert 'value="extend" selected' in page
    assert not Job.objects.filter(user=user).exists()


def test_the_create_page_offers_luma(signed_in, relay):
    assert 'data-testid="kind-luma"' in signed_in.get("/jobs/").content.decode()
    assert signed_in.get("/jobs/new/luma/").status_code == 200
