"""Stability jobs end to end against the relay simulator over real HTTP: every mode through the
form and the runner (images arrive as base64 and are kept in the submit), image to image,
filtered images kept apart, Stability's own error bodies shown in its words, forms that keep
what was typed, and "use as input"."""

import asyncio
import io
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs import runner
from media_jobs.models import Asset, Job
from studio.upstream import BadRequestError, RelayClient, RelayCredentials, stability
from tests.integration.test_media_jobs_video import created

pytestmark = pytest.mark.django_db(transaction=True)

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def picture(size=(300, 200), name="start.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 90, 200)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def new_stability(client, **fields):
    data = {
        "mode": "core",
        "prompt": "A lighthouse in a storm",
        "negative_prompt": "",
        "strength": "0.6",
        "model": "sd3.5-large",
        "aspect_ratio": "1:1",
        "output_format": "png",
        "style_preset": "",
        "width": "1024",
        "height": "1024",
        "samples": "1",
        "cfg_scale": "7",
        "steps": "30",
        "sampler": "",
        "clip_guidance_preset": "",
        "seed": "",
    }
    data.update(fields)
    return client.post("/jobs/new/stability/", data)


def run_job(response, user) -> Job:
    """Create the job and take its one step: Stability answers within the submit."""
    job = created(response, user, "stability")
    runner.advance(str(job.id))
    job.refresh_from_db()
    return job


def stored_images(job: Job, mime: str) -> list[Asset]:
    assets = list(Asset.objects.filter(job=job))
    for asset in assets:
        assert asset.mime == mime and asset.width and asset.height
        with asset.file.open("rb") as stored, Image.open(stored) as image:
            assert image.format == FORMATS[mime] and image.size == (asset.width, asset.height)
    return assets


@pytest.mark.parametrize(
    ("fields", "mime", "size"),
    [
        (
            {"mode": "core", "aspect_ratio": "16:9", "style_preset": "cinematic"},
            "image/png",
            (1344, 768),
        ),
        (
            {"mode": "ultra", "aspect_ratio": "9:21", "output_format": "webp"},
            "image/webp",
            (640, 1536),
        ),
        (
            {"mode": "sd3", "model": "sd3-medium", "aspect_ratio": "4:5", "output_format": "jpeg"},
            "image/jpeg",
            (896, 1088),
        ),
    ],
)
def test_stable_image_modes_keep_one_image_in_the_asked_format(
    signed_in, relay, user, fields, mime, size
):
    job = run_job(new_stability(signed_in, seed="4294967294", **fields), user)
    assert job.status == "succeeded", job.error
    (asset,) = stored_images(job, mime)
    assert (asset.width, asset.height) == size
    assert job.result["seed"] == 4294967294 and job.result["filtered"] == 0
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="stability-seeds"' in page and "<code>4294967294</code>" in page
    assert 'data-testid="stability-filtered"' not in page


def test_sd3_image_to_image_keeps_the_uploads_proportions(signed_in, relay, user):
    response = new_stability(
        signed_in, mode="sd3", image=picture((300, 200)), strength="0.3", aspect_ratio="9:16"
    )
    job = created(response, user, "stability")
    assert job.params["image"]["mime"] == "image/png" and job.params["strength"] == 0.3
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    (asset,) = stored_images(job, "image/png")
    assert (asset.width, asset.height) == (1280, 832)  # 3:2 like the upload, not 9:16


def test_a_file_left_in_a_core_form_is_not_kept(signed_in, relay, user):
    junk = SimpleUploadedFile("notes.txt", b"not a picture")
    job = created(new_stability(signed_in, image=junk), user, "stability")
    assert job.params["image"] is None and job.upload_paths() == set()


def test_sdxl_keeps_the_good_samples_and_says_how_many_were_filtered(signed_in, relay, user):
    response = new_stability(
        signed_in,
        mode="sdxl",
        prompt="A castle [[stability:filtered=1]]",
        negative_prompt="fog",
        width="1216",
        height="832",
        samples="3",
        sampler="K_EULER_ANCESTRAL",
        clip_guidance_preset="FAST_BLUE",
        style_preset="fantasy-art",
        seed="100",
    )
    job = run_job(response, user)
    assert job.status == "succeeded", job.error
    assets = stored_images(job, "image/png")
    assert [(asset.width, asset.height) for asset in assets] == [(1216, 832)] * 2
    assert job.result["filtered"] == 1 and job.result["seeds"] == [101, 102]
    page = unescape(signed_in.get(f"/jobs/{job.id}/").content.decode())
    assert 'data-testid="stability-filtered"' in page
    assert "Stability's content filter blocked 1 image; the others are kept." in page


def test_sd16_makes_any_multiple_of_64(signed_in, relay, user):
    job = run_job(new_stability(signed_in, mode="sd1.6", width="320", height="576"), user)
    assert job.status == "succeeded", job.error
    (asset,) = stored_images(job, "image/png")
    assert (asset.width, asset.height) == (320, 576)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"prompt": "A storm [[stability:filtered]]"},
            "Stability's content filter blocked the image (CONTENT_FILTERED).",
        ),
        (
            {"mode": "sd1.6", "samples": "2", "prompt": "A storm [[stability:filtered=2]]"},
            "Stability's content filter blocked all 2 images (CONTENT_FILTERED).",
        ),
    ],
)
def test_only_filtered_images_fail_the_job(signed_in, relay, user, fields, words):
    job = run_job(new_stability(signed_in, **fields), user)
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert job.error == words
    assert not Asset.objects.filter(job=job).exists()
    assert words in unescape(signed_in.get(f"/jobs/{job.id}/").content.decode())


@pytest.mark.parametrize(
    ("mode", "marker", "code", "words"),
    [
        ("ultra", "[[stability:moderation]]", "bad_request", "flagged by our content moderation"),
        ("sdxl", "[[stability:moderation]]", "bad_request", "contains filtered words"),
        ("core", "[[stability:credits]]", "quota", "lack sufficient credits"),
        ("sd1.6", "[[stability:credits]]", "quota", "not have enough balance"),
        ("sd3", "[[error:401]]", "auth", "无效的令牌"),
    ],
)
def test_stability_errors_fail_the_job_in_stability_words(
    signed_in, relay, user, mode, marker, code, words
):
    job = run_job(new_stability(signed_in, mode=mode, prompt=f"A storm {marker}"), user)
    assert job.status == "failed" and job.error_code == code
    assert words in job.error


def test_a_stability_server_error_is_retried_later(signed_in, relay, user):
    job = run_job(new_stability(signed_in, prompt="A storm [[stability:500]]"), user)
    assert job.status == "queued" and job.attempts == 1
    assert "unexpected server error" in job.error


def test_the_simulated_stability_refuses_bad_input_in_its_own_shape(relay):
    client = RelayClient(RelayCredentials(relay.url, relay.key))

    with pytest.raises(BadRequestError) as raised:
        asyncio.run(stability.generate(client, "core", "   "))
    error = raised.value
    assert (error.status, error.relay_code, error.message) == (
        400,
        "bad_request",
        "prompt: cannot be empty",
    )
    with pytest.raises(BadRequestError) as raised:
        asyncio.run(stability.generate(client, "sd3", "x", output_format="webp"))
    assert raised.value.message == "output_format: must be one of png, jpeg"
    with pytest.raises(BadRequestError) as raised:
        image = ("a.png", picture().read(), "image/png")
        asyncio.run(stability.generate(client, "ultra", "x", image=image))
    assert raised.value.message == "strength: is required when an image is sent"
    with pytest.raises(BadRequestError) as raised:
        asyncio.run(
            stability.text_to_image(
                client, stability.SDXL_ENGINE, [("a castle", 1.0)], width=1024, height=768
            )
        )
    assert raised.value.relay_code == "bad_request"
    assert "allowed dimensions are 1024x1024" in raised.value.message


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"mode": "sdxl", "width": "1024", "height": "768"}, "width", "only at these sizes"),
        ({"mode": "sd1.6", "width": "1000"}, "width", "multiple of 64 from 320 to 1536"),
        ({"mode": "sd3", "output_format": "webp"}, "output_format", "PNG or JPEG files only"),
        ({"mode": "ultra", "style_preset": "anime"}, "style_preset", "takes no style preset"),
        ({"mode": "sdxl", "samples": "12"}, "samples", "less than or equal to 10"),
        ({"mode": "sd3", "image": picture(), "strength": "1.5"}, "strength", "less than or equal"),
        (
            {"mode": "ultra", "image": SimpleUploadedFile("x.gif", b"GIF89a nope")},
            "image",
            "x.gif is not a PNG, JPEG or WebP image.",
        ),
    ],
)
def test_a_bad_stability_form_keeps_what_was_typed(signed_in, relay, user, fields, field, message):
    response = new_stability(signed_in, negative_prompt="blurry, watermark", **fields)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in unescape(" ".join(form.errors[field]))
    page = response.content.decode()
    assert "blurry, watermark" in page and "A lighthouse in a storm" in page
    assert not Job.objects.filter(user=user).exists()


def test_a_stability_image_can_start_an_sd3_image_to_image_job(signed_in, relay, user):
    first = run_job(new_stability(signed_in), user)
    assert first.status == "succeeded", first.error
    asset = first.assets.get()
    page = unescape(signed_in.get(f"/jobs/{first.id}/").content.decode())
    assert "Stable Image Ultra from this image" in page and "SD3 image to image" in page

    form_page = signed_in.get(f"/jobs/new/stability/?input={asset.id}&use=1").content.decode()
    assert 'data-testid="chosen-input"' in form_page
    assert '<option value="sd3" selected>' in form_page
    response = new_stability(
        signed_in, mode="sd3", prompt="The lighthouse at dawn", input=str(asset.id), use="1"
    )
    second = run_job(response, user)
    assert second.status == "succeeded", second.error
    assert second.params["image"]["mime"] == "image/png"
    (made,) = stored_images(second, "image/png")
    assert (made.width, made.height) == (1024, 1024)  # square in, square out
