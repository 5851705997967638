"""Asset downloads: streamed by Django, or handed to nginx with X-Accel-Redirect, in both cases
only after the owner check (another user and an anonymous visitor learn nothing)."""

import hashlib

import pytest
from django.core.files.base import ContentFile

from media_jobs.models import Asset, Job

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"pretend picture bytes" * 10


@pytest.fixture
def asset(settings, tmp_path, user):
    settings.MEDIA_ROOT = tmp_path / "media"
    job = Job.objects.create(user=user, kind="dalle", params={"prompt": "x"}, status="succeeded")
    asset = Asset(job=job, mime="image/png", bytes=len(PNG), sha256=hashlib.sha256(PNG).hexdigest())
    asset.file.save("result.png", ContentFile(PNG), save=False)
    asset.thumbnail.save("thumb.webp", ContentFile(b"RIFF....WEBPVP8 "), save=False)
    asset.save()
    return asset


@pytest.fixture
def behind_nginx(settings):
    settings.ASSETS_X_ACCEL_REDIRECT = "/protected-media/"
    return settings


def test_without_the_setting_the_file_is_streamed(signed_in, asset):
    response = signed_in.get(f"/jobs/assets/{asset.id}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert "X-Accel-Redirect" not in response
    assert response["Content-Type"] == "image/png"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_behind_nginx_the_owner_gets_an_empty_answer_naming_the_file(
    behind_nginx, signed_in, asset
):
    response = signed_in.get(f"/jobs/assets/{asset.id}/?download=1")
    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{asset.file.name}"
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response["Content-Disposition"].endswith('.png"')
    assert response["Cache-Control"] == "private, max-age=86400"
    # The name nginx is given is the stored one: under MEDIA_ROOT, no way out of it.
    assert (behind_nginx.MEDIA_ROOT / asset.file.name).read_bytes() == PNG


def test_behind_nginx_thumbnails_too(behind_nginx, signed_in, asset):
    response = signed_in.get(f"/jobs/assets/{asset.id}/thumbnail/")
    assert response["X-Accel-Redirect"] == f"/protected-media/{asset.thumbnail.name}"
    assert response["Content-Type"] == "image/webp"
    assert response["Content-Disposition"].startswith("inline; filename=")


@pytest.mark.parametrize("path", ["", "thumbnail/"])
def test_behind_nginx_another_user_gets_404_and_no_redirect(
    behind_nginx, client, other_user, asset, path
):
    client.force_login(other_user)
    response = client.get(f"/jobs/assets/{asset.id}/{path}")
    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response


def test_behind_nginx_an_anonymous_visitor_is_sent_to_sign_in(behind_nginx, client, asset):
    response = client.get(f"/jobs/assets/{asset.id}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert "X-Accel-Redirect" not in response
