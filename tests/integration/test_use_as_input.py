"""Use as input: a finished job's image offered to every kind that takes an image, the target
form opened with it in place, and the job made from it end to end against the simulator; other
users' files and non-images are refused."""

import base64
import hashlib

import pytest
from django.test import Client

from media_jobs.models import Asset, Job
from studio.accounts.models import FamilySetting
from tests.integration.test_media_jobs_video import created, drive

pytestmark = pytest.mark.django_db(transaction=True)

DALLE = {
    "prompt": "A lighthouse on a cliff at dawn",
    "model": "dall-e-3",
    "size": "1024x1024",
    "quality": "standard",
    "style": "vivid",
    "n": "1",
}


@pytest.fixture
def image_job(signed_in, user, relay) -> Job:
    job = drive(created(signed_in.post("/jobs/new/dalle/", DALLE), user, "dalle"))
    assert job.status == "succeeded", job.error
    return job


def menu_links(client, job) -> dict[str, str]:
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert 'data-testid="use-as-input"' in page
    section = page.split('data-testid="use-as-input"', 1)[1].split("</ul>\n  </div>", 1)[0]
    links = {}
    for chunk in section.split('<li><a href="')[1:]:
        url, rest = chunk.split('">', 1)
        links[rest.split("</a>", 1)[0]] = url.replace("&amp;", "&")
    return links


def test_an_image_result_offers_every_kind_that_takes_an_image(signed_in, image_job):
    links = menu_links(signed_in, image_job)
    assert "Runway video from this image" in links
    assert "Face swap: change the face in this image" in links
    assert "Describe (Midjourney)" in links
    asset = image_job.assets.get()
    assert all(f"input={asset.id}" in url for url in links.values())


def test_one_click_opens_the_form_with_the_image_and_the_job_runs_from_it(
    signed_in, user, image_job
):
    url = menu_links(signed_in, image_job)["Describe (Midjourney)"]
    form_page = signed_in.get(url)
    page = form_page.content.decode()
    assert 'data-testid="chosen-input"' in page
    assert '<option value="describe" selected>' in page  # the use's form values are set
    asset = image_job.assets.get()

    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    response = signed_in.post(
        url.split("?")[0],
        {"mode": "describe", "bot_type": "MID_JOURNEY", "dimensions": "SQUARE", **query},
    )
    describe = drive(created(response, user, "midjourney"))
    assert describe.status == "succeeded", describe.error
    header, encoded = describe.params["images"][0].split(",", 1)
    assert header == f"data:{asset.mime};base64"
    # The very image went to the relay, checked on the way like an upload.
    assert hashlib.sha256(base64.b64decode(encoded)).hexdigest() == asset.sha256
    assert describe.result.get("prompts")


def test_the_runway_chain_makes_a_video_from_the_image(signed_in, user, image_job):
    url = menu_links(signed_in, image_job)["Runway video from this image"]
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    response = signed_in.post(
        "/jobs/new/runway/",
        {
            "prompt": "The light turns slowly",
            "model": "gen3a_turbo",
            "duration": "5",
            "ratio": "1280:768",
            **query,
        },
    )
    video = drive(created(response, user, "runway"))
    assert video.status == "succeeded", video.error
    assert video.assets.get().mime == "video/mp4"


def test_another_users_image_cannot_be_used(image_job, other_user, relay):
    intruder = Client()
    intruder.force_login(other_user)
    asset = image_job.assets.get()
    response = intruder.get(f"/jobs/new/runway/?input={asset.id}&use=0")
    assert response.status_code == 404
    response = intruder.post("/jobs/new/runway/", {"input": str(asset.id), "use": "0"})
    assert response.status_code == 404
    assert not Job.objects.filter(user=other_user).exists()


def test_a_use_the_kind_does_not_have_falls_back_to_a_plain_form(signed_in, image_job):
    asset = image_job.assets.get()
    page = signed_in.get(f"/jobs/new/runway/?input={asset.id}&use=7").content.decode()
    assert 'data-testid="chosen-input"' not in page


def test_non_images_and_switched_off_kinds_are_not_offered(signed_in, user, image_job):
    FamilySetting.objects.create(family="runway", enabled=False)
    links = menu_links(signed_in, image_job)
    assert "Runway video from this image" not in links
    assert "Describe (Midjourney)" in links
    Asset.objects.filter(job=image_job).update(mime="image/gif")
    page = signed_in.get(f"/jobs/{image_job.id}/").content.decode()
    assert 'data-testid="use-as-input"' not in page
