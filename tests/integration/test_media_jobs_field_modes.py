"""Job forms whose fields depend on the mode: the page tells job-form.js which rows belong to
which mode, and a form sent as that script leaves it (the fields the mode does not use disabled,
so missing, required ones included) makes a job that runs against the relay simulator."""

import io
import json
import re
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs import runner
from media_jobs.kinds import registry
from media_jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def picture(name: str = "photo.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (160, 120), (40, 90, 200)).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def field_modes_on(page: str) -> dict:
    match = re.search(
        r'<script id="job-field-modes" type="application/json">(.*?)</script>', page, re.S
    )
    assert match, "the page has no field modes"
    return json.loads(unescape(match.group(1)))


def run_new(response, user, kind: str) -> Job:
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.filter(user=user, kind=kind).order_by("-created_at")[0]
    runner.advance(str(job.id))
    job.refresh_from_db()
    return job


def test_the_form_page_names_its_rows_and_their_modes(signed_in):
    page = signed_in.get("/jobs/new/kling/").content.decode()
    for name in registry()["kling"].form_class.base_fields:
        assert f'class="form-row" data-field="{name}"' in page
    modes = field_modes_on(page)
    assert modes["field"] == "source"
    assert modes["modes"]["image_tail"] == ["image2video"]
    assert modes["modes"]["n"] == ["text2image"]
    assert "js/job-form.js" in page

    page = signed_in.get("/jobs/new/ideogram/").content.decode()
    assert field_modes_on(page) == {
        "field": "mode",
        "modes": {k: list(v) for k, v in registry()["ideogram"].field_modes.items()},
    }
    # A kind without mode-specific fields has every row and nothing to switch.
    page = signed_in.get("/jobs/new/dalle/").content.decode()
    assert 'data-field="prompt"' in page and "job-field-modes" not in page


def test_ideogram_describe_sent_without_its_hidden_fields(signed_in, relay, user):
    """Describe uses the image alone: model, shape and Magic Prompt (required) are not sent."""
    response = signed_in.post("/jobs/new/ideogram/", {"mode": "describe", "image": picture()})
    job = run_new(response, user, "ideogram")
    assert job.status == "succeeded", job.error
    assert job.result["descriptions"]
    assert job.params["model"] == "V_2" and job.params["aspect_ratio"] == "ASPECT_1_1"


def test_recraft_vectorize_sent_without_its_hidden_fields(signed_in, relay, user):
    response = signed_in.post("/jobs/new/recraft/", {"mode": "vectorize", "image": picture()})
    job = run_new(response, user, "recraft")
    assert job.status == "succeeded", job.error
    assert [asset.mime for asset in job.assets.all()] == ["image/svg+xml"]


def test_a_required_field_of_the_mode_is_still_required(signed_in, relay, user):
    """Only the fields the chosen mode does not use are filled in: Blend's shape is Blend's."""
    response = signed_in.post("/jobs/new/midjourney/", {"mode": "blend", "bot_type": "MID_JOURNEY"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Job.objects.filter(user=user).exists()


def test_midjourney_imagine_sent_without_the_blend_shape(signed_in, relay, user):
    response = signed_in.post(
        "/jobs/new/midjourney/",
        {"mode": "imagine", "prompt": "A lighthouse at dawn", "bot_type": "MID_JOURNEY"},
    )
    job = run_new(response, user, "midjourney")
    assert job.status == "submitted" and job.upstream_id, job.error  # the relay took it
    assert job.params["dimensions"] == "SQUARE" and job.params["images"] == []
