"""Flux jobs end to end against the relay simulator over real HTTP: the form, submit, polls,
the sample downloaded as the job's image, moderation and errors in BFL's words, BFL's own
validation bodies, a task the relay never finds, and "use as input"."""

import asyncio
import io
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs import runner
from media_jobs.models import Asset, Job
from studio.upstream import BadRequestError, RelayClient, RelayCredentials, flux
from tests.integration.test_media_jobs_video import created, drive

pytestmark = pytest.mark.django_db(transaction=True)


def picture(size=(200, 150), image_format="PNG", name="guide.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (230, 120, 20)).save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def new_flux(client, **fields):
    data = {
        "model": "flux-pro-1.1",
        "prompt": "A red fox in fresh snow",
        "width": "512",
        "height": "384",
        "output_format": "jpeg",
        "safety_tolerance": "2",
        "seed": "",
        "steps": "",
        "guidance": "",
        "interval": "",
    }
    data.update(fields)
    return client.post("/jobs/new/flux/", data)


def stored_image(job: Job, mime: str, size: tuple[int, int]) -> Asset:
    (asset,) = Asset.objects.filter(job=job)
    assert asset.mime == mime and (asset.width, asset.height) == size
    with asset.file.open("rb") as stored, Image.open(stored) as image:
        assert image.format == {"image/png": "PNG", "image/jpeg": "JPEG"}[mime]
        assert image.size == size
    return asset


def test_a_flux_job_polls_to_a_stored_png_with_the_rewritten_prompt(signed_in, relay, user):
    response = new_flux(signed_in, output_format="png", prompt_upsampling="on", seed="7")
    job = created(response, user, "flux")
    assert job.params["prompt_upsampling"] is True and job.params["seed"] == 7

    seen: list[tuple[str, int]] = []
    job = drive(job, seen)

    assert job.status == "succeeded", job.error
    assert seen[0] == ("submitted", 0)  # the submit, then the polls
    running = [progress for status, progress in seen if status == "running"]
    assert running and running == sorted(running) and all(0 < p < 100 for p in running)
    asset = stored_image(job, "image/png", (512, 384))
    assert str(asset.file.name).endswith(".png")
    assert job.result["seed"] == 7
    assert job.result["revised_prompt"].startswith("A red fox in fresh snow, rendered in fine")

    page = unescape(signed_in.get(f"/jobs/{job.id}/").content.decode())
    assert "The relay rewrote the prompt as:" in page and "simulated upsampling" in page
    assert 'data-testid="flux-seed"' in page and "<code>7</code>" in page
    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and status["assets"][0]["mime"] == "image/png"


def test_flux_dev_with_an_image_prompt_makes_a_jpeg(signed_in, relay, user):
    response = new_flux(
        signed_in,
        model="flux-dev",
        steps="12",
        guidance="3.5",
        width="256",
        height="320",
        image_prompt=picture(),
    )
    job = created(response, user, "flux")
    assert job.params["image_prompt"]["mime"] == "image/png"
    job = drive(job)
    assert job.status == "succeeded", job.error
    stored_image(job, "image/jpeg", (256, 320))
    assert job.result["revised_prompt"] == ""  # not asked to rewrite: nothing to show


@pytest.mark.parametrize(
    ("marker", "words"),
    [
        ("[[flux:moderate]]", "Flux's moderation withheld the image it made."),
        ("[[flux:moderate-request]]", "Flux's moderation refused the request."),
        ("[[flux:error]]", "Flux could not make the image (status: Error)."),
    ],
)
def test_a_flux_task_that_ends_without_an_image_fails_with_the_reason(
    signed_in, relay, user, marker, words
):
    job = drive(created(new_flux(signed_in, prompt=f"A fox {marker}"), user, "flux"))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert job.error.startswith(words)
    assert "(simulated)" in job.error  # BFL's own details follow
    assert not Asset.objects.filter(job=job).exists()
    page = unescape(signed_in.get(f"/jobs/{job.id}/").content.decode())
    assert words in page and 'data-testid="retry-job"' in page


def test_bfl_validation_and_credit_errors_fail_the_job_in_bfl_words(signed_in, relay, user):
    job = drive(created(new_flux(signed_in, prompt="A fox [[flux:422]]"), user, "flux"))
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "The relay refused the request: prompt: Value error" in job.error

    job = drive(created(new_flux(signed_in, prompt="A fox [[flux:credits]]"), user, "flux"))
    assert job.status == "failed" and job.error_code == "quota"
    assert "Insufficient credits" in job.error


def test_the_simulated_bfl_validates_like_fastapi(relay):
    client = RelayClient(RelayCredentials(relay.url, relay.key))

    async def submit(**fields):
        return await flux.generate(client, "flux-pro", "A fox", **fields)

    with pytest.raises(BadRequestError) as raised:
        asyncio.run(submit(width=1000))
    assert raised.value.status == 422
    assert raised.value.message == "width: Input should be a multiple of 32"
    with pytest.raises(BadRequestError) as raised:
        asyncio.run(submit(interval=5.0))
    assert raised.value.message == "interval: Input should be less than or equal to 4"

    unknown = asyncio.run(flux.get_result(client, "no-such-task"))
    assert unknown.status == flux.TASK_NOT_FOUND and not unknown.finished


def test_a_task_the_relay_never_finds_fails_after_the_grace_period(signed_in, relay, user):
    job = created(new_flux(signed_in, prompt="A fox [[flux:lost]]"), user, "flux")
    runner.advance(str(job.id))  # submit
    Job.objects.filter(pk=job.pk).update(next_step_at=None)
    runner.advance(str(job.id))  # Task not found, but the task is young: pending
    job.refresh_from_db()
    assert job.status == "submitted" and not job.error

    task_id, _, created_at = job.upstream_id.partition("@")
    Job.objects.filter(pk=job.pk).update(
        upstream_id=f"{task_id}@{int(created_at) - 60}", next_step_at=None
    )
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "failed" and "Task not found" in job.error


def test_an_expired_sample_fails_the_download(signed_in, relay, user):
    job = drive(created(new_flux(signed_in, prompt="A fox [[expire]]"), user, "flux"))
    assert job.status == "failed" and job.error_code == "download"
    assert "no longer available (HTTP 403)" in job.error


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"width": "1000"}, "width", "multiple of 32 pixels: try 992 or 1024"),
        ({"height": "1600"}, "height", "less than or equal to 1440"),
        ({"steps": "20"}, "steps", "FLUX1.1 [pro] does not take this setting"),
        ({"model": "flux-dev", "interval": "2"}, "interval", "FLUX.1 [dev] does not take"),
        ({"safety_tolerance": "9"}, "safety_tolerance", "less than or equal to 6"),
        (
            {"image_prompt": SimpleUploadedFile("x.png", b"GIF89a nope")},
            "image_prompt",
            "x.png is not a PNG, JPEG or WebP image.",
        ),
    ],
)
def test_a_bad_flux_form_keeps_what_was_typed(signed_in, relay, user, fields, field, message):
    response = new_flux(signed_in, prompt="A fox by the frozen lake", **fields)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in unescape(" ".join(form.errors[field]))
    page = response.content.decode()
    assert "A fox by the frozen lake" in page
    if field in ("width", "height"):
        assert f'value="{fields[field]}"' in page
    assert not Job.objects.filter(user=user).exists()


def test_a_flux_image_can_guide_the_next_flux_job(signed_in, relay, user):
    first = drive(created(new_flux(signed_in), user, "flux"))
    assert first.status == "succeeded", first.error
    asset = first.assets.get()
    page = unescape(signed_in.get(f"/jobs/{first.id}/").content.decode())
    assert "Flux with this image as prompt" in page

    url = f"/jobs/new/flux/?input={asset.id}&use=0"
    assert 'data-testid="chosen-input"' in signed_in.get(url).content.decode()
    response = new_flux(signed_in, prompt="The same fox at night", input=str(asset.id), use="0")
    second = created(response, user, "flux")
    assert second.params["image_prompt"]["mime"] == "image/jpeg"
    second = drive(second)
    assert second.status == "succeeded", second.error
