"""Recraft jobs end to end against the relay simulator over real HTTP: every mode, the stored
files (SVG sanitised before it is kept, served so it cannot run), created styles used again,
Recraft's own errors and the relay's, and forms that refuse clearly and keep what was typed."""

import hashlib
import io
import re
import xml.etree.ElementTree as ET

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from media_jobs import runner
from media_jobs.models import Asset, Job
from media_jobs.svg import SVG_NS
from media_jobs.views import SVG_ASSET_CSP

pytestmark = pytest.mark.django_db(transaction=True)

SVG_MIME = "image/svg+xml"


def picture(
    name: str = "in.png", size: tuple[int, int] = (120, 80), comment: str = ""
) -> SimpleUploadedFile:
    """A white picture with a coloured square in the middle (a background to remove)."""
    image = Image.new("RGB", size, (255, 255, 255))
    ImageDraw.Draw(image).rectangle(
        (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=(200, 40, 40)
    )
    info = PngInfo()
    if comment:
        info.add_text("Comment", comment)  # where the simulator reads an upload's markers
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def fields(**overrides) -> dict:
    data = {
        "mode": "generate",
        "prompt": "A lighthouse at dusk",
        "style": "",
        "substyle": "",
        "style_id": "",
        "model": "recraftv3",
        "size": "1024x1024",
        "n": "1",
    }
    data.update(overrides)
    return data


def post(client, url: str = "/jobs/new/recraft/", **overrides):
    return client.post(url, fields(**overrides))


def created(response, user) -> Job:
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.filter(user=user, kind="recraft").order_by("-created_at")[0]
    assert response["Location"] == f"/jobs/{job.id}/"
    return job


def run(job: Job) -> Job:
    """A synchronous kind: one step submits and finishes the job."""
    runner.advance(str(job.id))
    job.refresh_from_db()
    return job


def run_new(client, user, **overrides) -> Job:
    return run(created(post(client, **overrides), user))


def stored(job: Job) -> list[Asset]:
    return list(Asset.objects.filter(job=job).order_by("created_at"))


def content(asset: Asset) -> bytes:
    with asset.file.open("rb") as handle:
        return handle.read()


def opened(asset: Asset) -> Image.Image:
    image = Image.open(io.BytesIO(content(asset)))
    image.load()
    return image


def svg_root(data: bytes) -> ET.Element:
    assert b"<!DOCTYPE" not in data
    return ET.fromstring(data)  # noqa: S314 - no DTD (checked above); our stored output


def assert_served_safely(client, asset: Asset) -> bytes:
    response = client.get(f"/jobs/assets/{asset.id}/")
    assert response.status_code == 200
    assert response["Content-Type"] == SVG_MIME
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == SVG_ASSET_CSP
    assert "default-src 'none'" in SVG_ASSET_CSP and "sandbox" in SVG_ASSET_CSP
    assert "script-src" not in SVG_ASSET_CSP
    body = b"".join(response.streaming_content)
    assert body == content(asset)
    return body


# --- generate -------------------------------------------------------------------------------


def test_generate_keeps_every_picture(signed_in, relay, user, other_user, client):
    job = run_new(signed_in, user, n="2", style="digital_illustration", substyle="hand_drawn")
    assert job.status == "succeeded", job.error
    assets = stored(job)
    assert [asset.mime for asset in assets] == ["image/png", "image/png"]
    for asset in assets:
        assert opened(asset).size == (1024, 1024) and (asset.width, asset.height) == (1024, 1024)
        assert asset.thumbnail
        assert asset.sha256 == hashlib.sha256(content(asset)).hexdigest()
    assert len(job.result["image_ids"]) == 2 and job.result["svg_cleaned"] is False
    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and len(status["assets"]) == 2
    assert all(item["thumbnail"] for item in status["assets"])

    client.force_login(other_user)
    assert client.get(f"/jobs/{job.id}/").status_code == 404
    assert client.get(f"/jobs/assets/{assets[0].id}/").status_code == 404


def test_a_vector_style_gives_an_svg_kept_sanitised_and_shown_as_an_image(signed_in, relay, user):
    job = run_new(signed_in, user, style="vector_illustration", size="1365x1024", prompt="A <fox>")
    assert job.status == "succeeded", job.error
    (asset,) = stored(job)
    assert asset.mime == SVG_MIME and str(asset.file.name).endswith(".svg")
    assert not asset.thumbnail and asset.width is None  # Pillow cannot draw SVG: no thumbnail
    root = svg_root(assert_served_safely(signed_in, asset))
    assert root.tag == f"{{{SVG_NS}}}svg" and root.get("viewBox") == "0 0 1365 1024"
    assert len(root.findall(f"{{{SVG_NS}}}circle")) == 4
    assert root.find(f"{{{SVG_NS}}}text").text == "A <fox>"

    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    (listed,) = status["assets"]
    assert listed["mime"] == SVG_MIME and listed["thumbnail"] is None
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="recraft-svg-note"' in page
    gallery = signed_in.get("/jobs/").content.decode()
    # No thumbnail can be made of an SVG: a small one is shown as it is, sanitised.
    assert f'<img src="/jobs/assets/{asset.id}/"' in gallery
    assert "gallery-placeholder" not in gallery


# --- styles ---------------------------------------------------------------------------------


def test_a_created_style_is_offered_and_generates(signed_in, relay, user):
    response = signed_in.post(
        "/jobs/new/recraft/",
        fields(
            mode="create_style",
            style="vector_illustration",
            prompt="",
            files=[picture("ref-1.png"), picture("ref-2.png", (64, 64))],
        ),
    )
    job = created(response, user)
    assert job.params["files_1"]["mime"] == "image/png" and job.params["files_2"]["path"]
    assert "files" not in job.params and job.prompt == "ref-1.png"
    job = run(job)
    assert job.status == "succeeded", job.error
    style_id = job.result["style_id"]
    assert (
        re.fullmatch(r"[0-9a-f-]{36}", style_id)
        and job.result["base_style"] == "vector_illustration"
    )
    assert stored(job) == []

    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert f'data-testid="recraft-style-id">{style_id}<' in page
    link = f"/jobs/new/recraft/?mode=generate&amp;style_id={style_id}"
    assert link in page and "Generate with this style" in page

    form = signed_in.get(link.replace("&amp;", "&")).content.decode()
    assert f'name="style_id" value="{style_id}"' in form
    assert re.search(r'<option value="generate" selected>', form)

    second = run_new(signed_in, user, style_id=style_id, prompt="A cat in my style")
    assert second.status == "succeeded", second.error
    (asset,) = stored(second)
    assert asset.mime == SVG_MIME  # the style was built on a vector style: SVG results
    svg_root(content(asset))


def test_an_unknown_style_id_fails_with_recrafts_words(signed_in, relay, user):
    job = run_new(signed_in, user, style_id="00000000-0000-0000-0000-000000000000")
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "style 00000000-0000-0000-0000-000000000000 not found" in job.error
    assert "refused the request" in job.error and stored(job) == []


# --- image operations -----------------------------------------------------------------------


def test_vectorize_keeps_a_real_svg_of_the_picture(signed_in, relay, user):
    job = run_new(signed_in, user, mode="vectorize", prompt="", image=picture(size=(120, 80)))
    assert job.status == "succeeded", job.error
    assert job.prompt == "in.png" and job.params["prompt"] == ""
    (asset,) = stored(job)
    assert asset.mime == SVG_MIME
    root = svg_root(assert_served_safely(signed_in, asset))
    assert root.get("viewBox") == "0 0 120 80"
    fills = {rect.get("fill") for rect in root.iter(f"{{{SVG_NS}}}rect")}
    assert "#ffffff" in fills and len(fills) > 1  # the white border and the red square


def test_a_hostile_svg_is_stored_sanitised_and_served_inert(signed_in, relay, user):
    image = picture(comment="[[recraft:svg-hostile]]")
    job = run_new(signed_in, user, mode="vectorize", prompt="", image=image)
    assert job.status == "succeeded", job.error
    (asset,) = stored(job)
    data = content(asset)
    assert asset.bytes == len(data) and asset.sha256 == hashlib.sha256(data).hexdigest()
    lowered = data.lower()
    for word in (b"<script", b"onload", b"onclick", b"onmouseover", b"javascript", b"alert"):
        assert word not in lowered, word
    for word in (b"foreignobject", b"evil.example", b"@import", b"<image", b"<set", b"<animate"):
        assert word not in lowered, word
    root = svg_root(assert_served_safely(signed_in, asset))
    # What was a drawing is still there.
    (rect,) = [r for r in root.iter(f"{{{SVG_NS}}}rect") if r.get("id") == "keep"]
    assert rect.get("fill") == "url(#grad)"
    assert root.find(f".//{{{SVG_NS}}}circle").get("fill") == "#123456"
    assert job.result["svg_cleaned"] is True


@pytest.mark.parametrize(
    ("marker", "reason"),
    [
        ("[[recraft:svg-entity]]", "declares a DOCTYPE or entities"),
        ("[[recraft:svg-broken]]", "not well-formed XML"),
    ],
)
def test_an_svg_that_cannot_be_read_safely_fails_the_job(signed_in, relay, user, marker, reason):
    job = run_new(signed_in, user, mode="vectorize", prompt="", image=picture(comment=marker))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "could not be made safe to show" in job.error and reason in job.error
    assert stored(job) == []
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert reason in page


def test_remove_background_keeps_a_png_with_transparency(signed_in, relay, user):
    job = run_new(signed_in, user, mode="remove_background", prompt="", image=picture())
    assert job.status == "succeeded", job.error
    (asset,) = stored(job)
    image = opened(asset)
    assert asset.mime == "image/png" and image.mode == "RGBA" and image.size == (120, 80)
    alpha = image.getchannel("A")
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((60, 40)) == 255
    assert asset.thumbnail


@pytest.mark.parametrize(
    ("mode", "mime", "size"),
    [
        ("clarity_upscale", "image/png", (240, 160)),
        ("generative_upscale", "image/webp", (480, 320)),
    ],
)
def test_upscales_keep_a_larger_picture(signed_in, relay, user, mode, mime, size):
    job = run_new(signed_in, user, mode=mode, prompt="", image=picture(size=(120, 80)))
    assert job.status == "succeeded", job.error
    (asset,) = stored(job)
    assert asset.mime == mime and opened(asset).size == size == (asset.width, asset.height)
    response = signed_in.get(f"/jobs/assets/{asset.id}/")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_generated_picture_can_be_vectorized_as_input(signed_in, relay, user):
    first = run_new(signed_in, user)
    (asset,) = stored(first)
    from media_jobs.kinds import get_kind

    kind = get_kind("recraft")
    use = next(i for i, item in enumerate(kind.image_uses) if item.initial["mode"] == "vectorize")
    page = signed_in.get(f"/jobs/new/recraft/?input={asset.id}&use={use}").content.decode()
    assert '<option value="vectorize" selected>' in page
    response = signed_in.post(
        f"/jobs/new/recraft/?input={asset.id}&use={use}",
        fields(mode="vectorize", prompt="", input=str(asset.id), use=str(use)),
    )
    second = run(created(response, user))
    assert second.status == "succeeded", second.error
    (vector,) = stored(second)
    assert vector.mime == SVG_MIME
    assert svg_root(content(vector)).get("viewBox") == "0 0 1024 1024"


# --- errors ---------------------------------------------------------------------------------


def test_recrafts_own_refusal_fails_the_job_with_its_words(signed_in, relay, user):
    job = run_new(signed_in, user, prompt="Something [[recraft:error]]")
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "rejected by the content moderation" in job.error
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "rejected by the content moderation" in page and 'data-testid="retry-job"' in page

    image = picture(comment="[[recraft:error]]")
    job = run_new(signed_in, user, mode="clarity_upscale", prompt="", image=image)
    assert job.status == "failed" and "content moderation" in job.error


def test_a_spent_balance_is_a_quota_failure(signed_in, relay, user):
    job = run_new(signed_in, user, prompt="x [[recraft:credits]]")
    assert job.status == "failed" and job.error_code == "quota"
    assert "no quota left" in job.error and "Not enough API units" in job.error


def test_a_recraft_server_error_is_retried_later(signed_in, relay, user):
    job = run_new(signed_in, user, prompt="x [[recraft:5xx]]")
    assert job.status == "queued" and job.attempts == 1
    assert job.submit_started_at is None  # refused before any work: safe to send again
    assert "Internal server error" in job.error


def test_the_relays_own_errors_reach_the_job(signed_in, relay, user):
    job = run_new(signed_in, user, prompt="x [[error:401]]")
    assert job.status == "failed" and job.error_code == "auth" and "无效的令牌" in job.error


# --- forms ----------------------------------------------------------------------------------


def test_the_form_offers_every_mode_and_field(signed_in, relay):
    page = signed_in.get("/jobs/new/recraft/").content.decode()
    for mode in (
        "generate",
        "create_style",
        "vectorize",
        "remove_background",
        "clarity_upscale",
        "generative_upscale",
    ):
        assert f'value="{mode}"' in page
    for name in ("prompt", "style", "substyle", "style_id", "model", "size", "n", "image", "files"):
        assert f'name="{name}"' in page
    assert 'enctype="multipart/form-data"' in page and "multiple" in page


def test_a_refused_form_says_why_and_keeps_what_was_typed(signed_in, relay, user):
    response = post(
        signed_in, style="icon", style_id="my-style-123", substyle="outline", prompt="Keep me"
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Use either a style or a custom style id, not both" in page
    assert "A custom style takes no substyle" in page
    assert 'value="my-style-123"' in page and "Keep me</textarea>" in page
    assert '<option value="icon" selected>' in page
    assert not Job.objects.filter(user=user).exists()

    response = post(signed_in, mode="create_style", style="any", prompt="")
    page = response.content.decode()
    assert response.status_code == 400 and "Upload 1 to 5 reference images" in page
    assert "builds on" in page and '<option value="create_style" selected>' in page

    response = post(
        signed_in, mode="vectorize", prompt="", image=SimpleUploadedFile("x.png", b"hi")
    )
    page = response.content.decode()
    assert response.status_code == 400 and "x.png is not a PNG, JPEG or WebP image" in page

    response = post(signed_in, prompt="", size="1024x1707", n="4")
    page = response.content.decode()
    assert response.status_code == 400 and "Write a prompt" in page
    assert '<option value="1024x1707" selected>' in page and 'value="4"' in page
    assert not Job.objects.filter(user=user).exists()


def test_settings_can_be_used_again_with_the_same_upload(signed_in, relay, user):
    first = run_new(signed_in, user, mode="clarity_upscale", prompt="", image=picture())
    assert first.status == "succeeded", first.error
    response = signed_in.post(
        f"/jobs/new/recraft/?from={first.id}", fields(mode="clarity_upscale", prompt="")
    )
    second = run(created(response, user))
    assert second.params["image"] == first.params["image"]
    assert second.status == "succeeded", second.error
