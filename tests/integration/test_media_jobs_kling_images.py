"""Kling image generation (the Kling kind's "text2image" source) end to end against the relay
simulator over real HTTP: n pictures in the asked shape, a reference image, a task failing
upstream, Kling's refusals and the form's image limits."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs import runner
from media_jobs.models import Asset, Job
from tests.integration.job_helpers import drive

pytestmark = pytest.mark.django_db(transaction=True)


def picture(name="ref.png", size=(480, 320), image_format="PNG") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 160, 60)).save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def new_images(client, **fields):
    data = {
        "source": "text2image",
        "prompt": "A red kite over a beach at sunset",
        "negative_prompt": "",
        "model_name": "kling-v1",
        "mode": "std",
        "duration": "5",
        "aspect_ratio": "4:3",
        "cfg_scale": "0.5",
        "n": "2",
        "image_fidelity": "0.5",
        "image_reference": "subject",
    }
    data.update(fields)
    return client.post("/jobs/new/kling/", data)


def created(response, user) -> Job:
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.filter(user=user, kind="kling").order_by("-created_at")[0]
    assert response["Location"] == f"/jobs/{job.id}/"
    return job


def test_two_kling_images_become_two_stored_pictures(signed_in, relay, user, other_user, client):
    job = created(new_images(signed_in), user)
    assert job.params["source"] == "text2image" and job.params["n"] == 2
    seen: list[tuple[str, int]] = []
    job = drive(job, seen)

    assert job.status == "succeeded", job.error
    assert job.upstream_id.startswith("images:")
    assert seen[0] == ("submitted", 0)
    assert job.result["images"] == 2
    assets = list(Asset.objects.filter(job=job).order_by("created_at"))
    assert len(assets) == 2
    for asset in assets:
        assert asset.mime == "image/png" and (asset.width, asset.height) == (1024, 768)
        assert asset.thumbnail  # shown in the gallery
    assert assets[0].sha256 != assets[1].sha256  # two pictures, not one twice
    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert [asset["mime"] for asset in status["assets"]] == ["image/png", "image/png"]
    response = signed_in.get(status["assets"][1]["url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"

    client.force_login(other_user)
    assert client.get(f"/jobs/assets/{assets[0].id}/").status_code == 404


def test_kling_images_can_follow_a_reference_picture(signed_in, relay, user):
    response = new_images(
        signed_in, model_name="kling-v1-5", n="1", aspect_ratio="1:1", image=picture()
    )
    job = created(response, user)
    assert job.params["image"]["mime"] == "image/png"
    job = drive(job)
    assert job.status == "succeeded", job.error
    (asset,) = Asset.objects.filter(job=job)
    assert (asset.width, asset.height) == (1024, 1024)


def test_kling_images_failing_upstream_show_why(signed_in, relay, user):
    job = drive(created(new_images(signed_in, prompt="A kite [[video:fail]]"), user))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "risk control system" in job.error
    assert not Asset.objects.filter(job=job).exists()


def test_kling_image_refusals_carry_the_relay_message(signed_in, relay, user):
    job = drive(created(new_images(signed_in, prompt="x [[video:refuse]]"), user))
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "the content was flagged" in job.error

    job = created(new_images(signed_in, prompt="x [[kling:quota]]"), user)
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "quota" and "资源包已用完" in job.error


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "what the images show"),
        ({"prompt": "x" * 501}, "prompt", "at most 500 characters"),
        ({"negative_prompt": "y" * 201}, "negative_prompt", "at most 200 characters"),
        (
            {"negative_prompt": "blurry", "image": picture()},
            "negative_prompt",
            "no “Avoid” text with a reference image",
        ),
        ({"model_name": "kling-v1-6"}, "model_name", "v1 or v1.5 only"),
        ({"n": "0"}, "n", "greater than or equal to 1"),
        ({"n": "10"}, "n", "less than or equal to 9"),
        ({"image": picture(size=(1000, 300))}, "image", "too narrow or too wide"),
        ({"source": "text2video", "aspect_ratio": "3:2"}, "aspect_ratio", "for images"),
    ],
)
def test_a_bad_kling_images_form_keeps_what_was_typed(
    signed_in, relay, user, fields, field, message
):
    typed = {"prompt": "A red kite with a long tail", **fields}
    response = new_images(signed_in, **typed)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in " ".join(form.errors[field])
    if field != "prompt":
        assert "A red kite with a long tail" in response.content.decode()
    assert not Job.objects.filter(user=user).exists()
