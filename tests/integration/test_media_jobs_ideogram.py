"""Ideogram jobs end to end against the relay simulator over real HTTP: generate, remix, upscale
and describe through the form, the runner and the job page; unsafe images withheld; Ideogram's
own error bodies shown in its words; forms that keep what was typed; and the same in the web
("reverse") format staff choose with the family option, polled through the task query."""

import asyncio
import io
import re
from datetime import timedelta
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from media_jobs import runner
from media_jobs.models import Asset, Job
from studio.accounts.models import FamilySetting
from studio.accounts.services import relay_credentials_for
from studio.upstream import BadRequestError, RelayClient, RelayCredentials, ideogram
from tests.factories import UserFactory
from tests.integration.job_helpers import drive

pytestmark = pytest.mark.django_db(transaction=True)


def picture(
    name: str = "photo.png", size: tuple[int, int] = (160, 120), comment: str = ""
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    info = PngInfo()
    if comment:
        info.add_text("Comment", comment)  # the simulator reads markers of prompt-less uploads here
    Image.new("RGB", size, (200, 60, 40)).save(buffer, "PNG", pnginfo=info)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def post(client, **fields):
    data = {
        "mode": "generate",
        "prompt": "A lighthouse on a cliff",
        "negative_prompt": "",
        "model": "V_2",
        "style_type": "",
        "aspect_ratio": "ASPECT_16_9",
        "magic_prompt_option": "AUTO",
        "color_palette": "",
        "num_images": "1",
        "image_weight": "50",
        "resemblance": "50",
        "detail": "50",
        "seed": "",
    }
    data.update(fields)
    return client.post("/jobs/new/ideogram/", data)


def created(response, user) -> Job:
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.filter(user=user, kind="ideogram").order_by("-created_at")[0]
    assert response["Location"] == f"/jobs/{job.id}/"
    return job


def run_job(response, user) -> Job:
    """Create the job and take its one step: Ideogram answers within the submit."""
    job = created(response, user)
    runner.advance(str(job.id))
    job.refresh_from_db()
    return job


def stored_images(job: Job) -> list[Asset]:
    assets = list(Asset.objects.filter(job=job))
    for asset in assets:
        assert asset.mime == "image/png" and asset.width and asset.height
        with asset.file.open("rb") as stored, Image.open(stored) as image:
            assert image.format == "PNG" and image.size == (asset.width, asset.height)
    return assets


# --- generate -------------------------------------------------------------------------------


def test_generate_keeps_the_images_the_prompt_ideogram_used_and_the_seed(signed_in, relay, user):
    job = run_job(post(signed_in, seed="2147483647", style_type="REALISTIC"), user)
    assert job.status == "succeeded", job.error
    (asset,) = stored_images(job)
    assert (asset.width, asset.height) == (1312, 736)  # Ideogram's 16:9 resolution
    assert job.result["seed"] == 2147483647
    assert job.result["images"] == [
        {
            "prompt": job.result["revised_prompt"],
            "seed": 2147483647,
            "resolution": "1312x736",
            "style_type": "REALISTIC",
        }
    ]
    # A short prompt with Magic Prompt on Auto comes back rewritten.
    assert job.result["revised_prompt"].startswith("A lighthouse on a cliff. A realistic")

    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "The relay rewrote the prompt as:" in page and "simulated Magic Prompt" in page
    assert 'data-testid="ideogram-images"' in page and "<code>2147483647</code>" in page
    assert 'data-testid="ideogram-withheld"' not in page
    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and len(status["assets"]) == 1


def test_magic_prompt_off_leaves_the_prompt_alone_and_v1_has_no_style(signed_in, relay, user):
    response = post(
        signed_in, model="V_1_TURBO", magic_prompt_option="OFF", aspect_ratio="ASPECT_1_3"
    )
    job = run_job(response, user)
    assert job.status == "succeeded", job.error
    (asset,) = stored_images(job)
    assert (asset.width, asset.height) == (512, 1536)
    assert job.result["revised_prompt"] == ""
    assert job.result["images"][0]["prompt"] == "A lighthouse on a cliff"
    assert job.result["images"][0]["style_type"] == ""


def test_unsafe_images_are_withheld_and_counted(signed_in, relay, user):
    response = post(
        signed_in, prompt="Two lighthouses [[ideogram:unsafe=2]]", num_images="3", seed="10"
    )
    job = run_job(response, user)
    assert job.status == "succeeded", job.error
    assert len(stored_images(job)) == 1
    assert job.result["withheld"] == 2
    assert [image["seed"] for image in job.result["images"]] == [12]  # the third one
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "Ideogram withheld 2 images that did not pass its safety check." in page


def test_a_job_whose_every_image_was_withheld_fails_and_says_so(signed_in, relay, user):
    job = run_job(post(signed_in, prompt="A lighthouse [[ideogram:unsafe]]"), user)
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert job.error == "Ideogram withheld the image: it did not pass Ideogram's safety check."
    assert not Asset.objects.filter(job=job).exists()
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "did not pass Ideogram&#x27;s safety check" in page and 'data-testid="retry-job"' in page


@pytest.mark.parametrize(
    ("marker", "code", "words"),
    [
        # Ideogram's own 422 body, {"detail": "..."}
        ("[[ideogram:unsafe-prompt]]", "bad_request", "Prompt failed the safety check."),
        # A relay that rewrites the refusal as {"error": "..."}
        ("[[ideogram:error]]", "bad_request", "Ideogram rejected the image request"),
        # The relay's own OpenAI-shaped refusals
        ("[[error:quota]]", "quota", "该令牌额度已用尽"),
        ("[[error:401]]", "auth", "无效的令牌"),
    ],
)
def test_refusals_fail_the_job_in_the_relays_words(signed_in, relay, user, marker, code, words):
    job = run_job(post(signed_in, prompt=f"A lighthouse {marker}"), user)
    assert job.status == "failed" and job.error_code == code
    assert words in job.error
    assert words in unescape(signed_in.get(f"/jobs/{job.id}/").content.decode())


def test_an_ideogram_server_error_is_retried_later(signed_in, relay, user):
    before = timezone.now()
    job = run_job(post(signed_in, prompt="A lighthouse [[ideogram:5xx]]"), user)
    assert job.status == "queued" and job.attempts == 1
    assert job.submit_started_at is None  # a 500 did nothing: sending again is safe
    assert "unavailable" in job.error and "Internal Server Error" in job.error
    assert job.next_step_at >= before + timedelta(seconds=5)


def test_an_expired_link_fails_the_download(signed_in, relay, user):
    job = run_job(post(signed_in, prompt="A lighthouse [[expire]]"), user)
    assert job.status == "failed" and job.error_code == "download"
    assert "no longer available (HTTP 403)" in job.error


def test_ideogram_validation_bodies_read_clearly(relay):
    """What Ideogram itself refuses (the form never sends these): its 400 and 422 bodies."""
    client = RelayClient(RelayCredentials(relay.url, relay.key))

    with pytest.raises(BadRequestError) as raised:
        asyncio.run(ideogram.generate(client, "x", model="V_1", style_type="ANIME"))
    assert raised.value.status == 400
    assert raised.value.message == (
        "Style type is only supported for models V_2 and V_2_TURBO, not V_1."
    )
    with pytest.raises(BadRequestError) as raised:
        asyncio.run(ideogram.generate(client, "x", aspect_ratio="ASPECT_5_4"))
    assert raised.value.status == 422
    assert raised.value.message.startswith("image_request.aspect_ratio: Input should be")
    with pytest.raises(BadRequestError) as raised:
        asyncio.run(ideogram.remix(client, ("a.png", picture().read(), "image/png"), ""))
    assert raised.value.message == "image_request.prompt: Field required"  # "" is not sent
    with pytest.raises(BadRequestError) as raised:
        asyncio.run(ideogram.describe(client, ("a.txt", b"not an image", "text/plain")))
    assert raised.value.message == "Invalid image file: it could not be read."


# --- remix, upscale, describe ---------------------------------------------------------------


def test_remix_makes_new_images_from_the_upload(signed_in, relay, user):
    response = post(
        signed_in,
        mode="remix",
        image=picture(),
        prompt="The same scene in winter",
        aspect_ratio="ASPECT_4_3",
        image_weight="90",
        num_images="2",
    )
    job = run_job(response, user)
    assert job.status == "succeeded", job.error
    assert job.params["image"]["mime"] == "image/png"
    first, second = stored_images(job)
    assert (first.width, first.height) == (second.width, second.height) == (1152, 864)
    with first.file.open("rb") as stored, Image.open(stored) as image:
        # At weight 90 the upload's colour dominates the picture.
        red, green, blue = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
        assert red > green and red > blue


def test_remix_without_a_safe_image_fails(signed_in, relay, user):
    response = post(signed_in, mode="remix", image=picture(), prompt="Winter [[ideogram:unsafe]]")
    job = run_job(response, user)
    assert job.status == "failed" and "did not pass Ideogram's safety check" in job.error


def test_upscale_doubles_the_upload(signed_in, relay, user):
    response = post(signed_in, mode="upscale", image=picture(size=(300, 200)), prompt="")
    job = run_job(response, user)
    assert job.status == "succeeded", job.error
    (asset,) = stored_images(job)
    assert (asset.width, asset.height) == (600, 400)
    assert job.result["images"][0]["resolution"] == "600x400"
    assert job.result["revised_prompt"] == ""  # no prompt was given: nothing was rewritten
    assert job.prompt == "photo.png"  # the job is named after its upload


@pytest.mark.parametrize(
    ("comment", "code", "words"),
    [
        ("[[ideogram:unsafe]]", "relay_failed", "did not pass Ideogram's safety check"),
        ("[[ideogram:unsafe-prompt]]", "bad_request", "Image failed the safety check."),
    ],
)
def test_upscale_refusals_without_a_prompt(signed_in, relay, user, comment, code, words):
    response = post(signed_in, mode="upscale", image=picture(comment=comment), prompt="")
    job = run_job(response, user)
    assert job.status == "failed" and job.error_code == code and words in job.error


def test_describe_lists_prompts_that_open_the_ideogram_form(signed_in, relay, user):
    job = run_job(post(signed_in, mode="describe", image=picture(), prompt="dropped"), user)
    assert job.status == "succeeded", job.error
    assert not Asset.objects.filter(job=job).exists()  # the result is text
    (text,) = job.result["descriptions"]
    assert "red-toned picture of 160x120 pixels" in text
    assert job.params["prompt"] == ""

    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="ideogram-descriptions"' in page and text in page
    assert 'data-testid="job-prompts"' not in page  # not Midjourney's list, whose links go there
    (link,) = re.findall(r'href="(/jobs/new/ideogram/\?prompt=[^"]+)"', page)
    form = signed_in.get(unescape(link))
    assert form.status_code == 200
    assert form.context["form"].initial["prompt"] == text


def test_describe_refused_by_ideogram(signed_in, relay, user):
    upload = picture(comment="[[ideogram:unsafe-prompt]]")
    job = run_job(post(signed_in, mode="describe", image=upload), user)
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "Image failed the safety check." in job.error


def test_remix_settings_can_be_used_again_with_the_stored_image(signed_in, relay, user):
    first = run_job(post(signed_in, mode="remix", image=picture(), prompt="Autumn"), user)
    assert first.status == "succeeded", first.error
    form = signed_in.get(f"/jobs/new/ideogram/?from={first.id}").content.decode()
    assert "Autumn" in form
    response = signed_in.post(
        f"/jobs/new/ideogram/?from={first.id}",
        {
            "mode": "upscale",
            "prompt": "",
            "model": "V_2",
            "aspect_ratio": "ASPECT_1_1",
            "magic_prompt_option": "AUTO",
            "num_images": "1",
        },
    )
    second = created(response, user)
    assert second.params["image"] == first.params["image"]  # the same stored file
    runner.advance(str(second.id))
    second.refresh_from_db()
    assert second.status == "succeeded", second.error
    (asset,) = stored_images(second)
    assert (asset.width, asset.height) == (320, 240)


def test_a_generated_image_can_be_upscaled_as_input(signed_in, relay, user):
    first = run_job(post(signed_in, aspect_ratio="ASPECT_1_1"), user)
    (asset,) = stored_images(first)
    use = next(
        index
        for index, item in enumerate(_kind().image_uses)
        if item.initial == {"mode": "upscale"}
    )
    page = signed_in.get(f"/jobs/new/ideogram/?input={asset.id}&use={use}")
    assert page.status_code == 200
    response = signed_in.post(
        f"/jobs/new/ideogram/?input={asset.id}&use={use}",
        {
            "mode": "upscale",
            "prompt": "",
            "model": "V_2",
            "aspect_ratio": "ASPECT_1_1",
            "magic_prompt_option": "AUTO",
            "num_images": "1",
            "input": str(asset.id),
            "use": str(use),
        },
    )
    second = created(response, user)
    runner.advance(str(second.id))
    second.refresh_from_db()
    assert second.status == "succeeded", second.error
    (bigger,) = stored_images(second)
    assert (bigger.width, bigger.height) == (2048, 2048)  # 1024 doubled


def _kind():
    from media_jobs.kinds import get_kind

    kind = get_kind("ideogram")
    assert kind is not None
    return kind


# --- forms ----------------------------------------------------------------------------------


def test_the_create_page_offers_ideogram(signed_in, relay):
    assert 'data-testid="kind-ideogram"' in signed_in.get("/jobs/").content.decode()
    page = signed_in.get("/jobs/new/ideogram/").content.decode()
    assert 'name="mode"' in page and 'name="image_weight"' in page


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "Write a prompt"),
        ({"mode": "remix"}, "image", "Upload the image to remix."),
        ({"mode": "upscale"}, "image", "Upload the image to upscale."),
        ({"mode": "describe"}, "image", "Upload the image to describe."),
        (
            {"mode": "upscale", "image": SimpleUploadedFile("x.png", b"not a picture")},
            "image",
            "x.png is not a PNG, JPEG or WebP image.",
        ),
        ({"model": "V_1", "style_type": "DESIGN"}, "style_type", "Ideogram 2.0 model"),
        ({"model": "V_1", "color_palette": "JUNGLE"}, "color_palette", "Ideogram 2.0 model"),
        ({"seed": "-1"}, "seed", "greater than or equal to 0"),
        ({"mode": "upscale", "image": picture(), "detail": "101"}, "detail", "less than"),
    ],
)
def test_a_bad_form_keeps_what_was_typed(signed_in, relay, user, fields, field, message):
    response = post(signed_in, negative_prompt="blurry, watermark", **fields)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors and message in " ".join(form.errors[field])
    page = response.content.decode()
    assert "blurry, watermark" in page  # what was typed is still there
    assert not Job.objects.filter(user=user).exists()


# --- web format ("reverse" group) -----------------------------------------------------------


def use_format(fmt: str) -> None:
    FamilySetting.objects.update_or_create(
        family="ideogram", defaults={"enabled": True, "options": {"ideogram_format": fmt}}
    )


def test_web_generate_is_polled_to_its_images(signed_in, relay, user):
    use_format("web")
    job = created(post(signed_in, seed="100", num_images="2", style_type="ANIME"), user)
    seen: list[tuple[str, int]] = []
    job = drive(job, seen)

    assert job.status == "succeeded", job.error
    assert job.upstream_id.startswith("web:generate:")
    # Submitted, then the task query's 0 %, 40 %, done.
    assert seen == [("submitted", 0), ("submitted", 0), ("running", 40), ("succeeded", 100)]
    first, second = stored_images(job)
    assert (first.width, first.height) == (second.width, second.height) == (1312, 736)
    assert [image["seed"] for image in job.result["images"]] == [100, 101]
    assert job.result["images"][0]["resolution"] == "1312x736"
    assert job.result["revised_prompt"] == ""  # the web answer carries the prompt as typed

    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="ideogram-images"' in page and "<code>101</code>" in page
    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and len(status["assets"]) == 2


def test_web_remix_and_upscale_run_to_their_images(signed_in, relay, user):
    use_format("web")
    response = post(
        signed_in,
        mode="remix",
        image=picture(),
        prompt="The same scene in winter",
        aspect_ratio="ASPECT_4_3",
        image_weight="90",
    )
    remixed = drive(created(response, user))
    assert remixed.status == "succeeded", remixed.error
    assert remixed.upstream_id.startswith("web:remix:")
    (asset,) = stored_images(remixed)
    assert (asset.width, asset.height) == (1152, 864)
    with asset.file.open("rb") as stored, Image.open(stored) as image:
        red, green, blue = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
        assert red > green and red > blue  # the upload's colour, at weight 90

    response = post(signed_in, mode="upscale", image=picture(size=(300, 200)), prompt="")
    upscaled = drive(created(response, user))
    assert upscaled.status == "succeeded", upscaled.error
    assert upscaled.upstream_id.startswith("web:upscale:")
    (asset,) = stored_images(upscaled)
    assert (asset.width, asset.height) == (600, 400)


def test_web_describe_lists_the_descriptions(signed_in, relay, user):
    use_format("web")
    job = drive(created(post(signed_in, mode="describe", image=picture()), user))
    assert job.status == "succeeded", job.error
    assert job.upstream_id.startswith("web:describe:")
    assert not Asset.objects.filter(job=job).exists()
    (text,) = job.result["descriptions"]
    assert "red-toned picture of 160x120 pixels" in text
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="ideogram-descriptions"' in page and text in page


@pytest.mark.parametrize(
    ("marker", "words"),
    [
        ("[[ideogram:unsafe]]", "Ideogram withheld the image: it did not pass"),
        ("[[ideogram:no-url]]", "Ideogram finished but sent no link to its image."),
    ],
)
def test_a_finished_web_request_without_an_image_fails_and_says_why(
    signed_in, relay, user, marker, words
):
    use_format("web")
    job = drive(created(post(signed_in, prompt=f"A lighthouse {marker}"), user))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert words in job.error
    assert not Asset.objects.filter(job=job).exists()
    assert words in unescape(signed_in.get(f"/jobs/{job.id}/").content.decode())


@pytest.mark.parametrize(
    ("marker", "code", "words"),
    [
        ("[[ideogram:unsafe-prompt]]", "bad_request", "Prompt failed the safety check."),
        ("[[ideogram:error]]", "bad_request", "Ideogram rejected the image request"),
        ("[[error:quota]]", "quota", "该令牌额度已用尽"),
        ("[[error:401]]", "auth", "无效的令牌"),
    ],
)
def test_web_refusals_fail_the_job_in_the_relays_words(signed_in, relay, user, marker, code, words):
    use_format("web")
    job = run_job(post(signed_in, prompt=f"A lighthouse {marker}"), user)
    assert job.status == "failed" and job.error_code == code
    assert words in job.error and not job.upstream_id
    assert words in unescape(signed_in.get(f"/jobs/{job.id}/").content.decode())


def test_a_request_the_relay_does_not_know_fails_the_poll(signed_in, relay, user):
    use_format("web")
    job = run_job(post(signed_in), user)
    assert job.status == "submitted"
    Job.objects.filter(pk=job.pk).update(upstream_id="web:generate:nobody-knows-this")
    job = drive(job)
    assert job.status == "failed"
    assert job.error == "The relay no longer knows this Ideogram request."


def test_staff_switch_the_format_and_a_running_job_keeps_its_own(signed_in, relay, user):
    client = Client()  # staff's own browser; signed_in is the user's
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    page = client.get("/staff/families/").content.decode()
    assert 'name="ideogram-option__ideogram_format"' in page
    assert "/ideogram/task-request" in page  # the task query's path, overridable

    # The official format, untouched: one synchronous step, no upstream id.
    job = run_job(post(signed_in), user)
    assert job.status == "succeeded" and job.upstream_id == ""

    form = {"ideogram-enabled": "on", "ideogram-option__ideogram_format": "reverse"}
    assert client.post("/staff/families/ideogram/", form).status_code == 400
    form["ideogram-option__ideogram_format"] = "web"
    form["ideogram-path__ideogram_web_task"] = "/ideogram/task-request/{id}"
    refused = client.post("/staff/families/ideogram/", form)
    assert refused.status_code == 400 and "Unknown placeholder {id}" in refused.content.decode()
    form["ideogram-path__ideogram_web_task"] = ""
    assert client.post("/staff/families/ideogram/", form).status_code == 302
    assert relay_credentials_for(user).options == {"ideogram_format": "web"}

    job = run_job(post(signed_in), user)
    assert job.status == "submitted" and job.upstream_id.startswith("web:generate:")
    # Staff switch back meanwhile: the job is polled in the format it was sent in.
    form["ideogram-option__ideogram_format"] = "official"
    assert client.post("/staff/families/ideogram/", form).status_code == 302
    job = drive(job)
    assert job.status == "succeeded", job.error
    assert len(stored_images(job)) == 1
    assert run_job(post(signed_in), user).upstream_id == ""  # new jobs: official again
