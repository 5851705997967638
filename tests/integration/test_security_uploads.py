"""Uploads: judged by their content, never by their name or claimed type; kept under generated
names inside MEDIA_ROOT whatever the name says (path traversal, absolute paths, NUL bytes, very
long names, a script's extension); the name the user gave is kept only as text to show."""

import io
import re
import struct
import wave
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs.models import Job
from tests.integration.job_helpers import use_relay

pytestmark = pytest.mark.django_db

STORED = re.compile(r"^uploads/(\d+)/([0-9a-f]{32})(\.[a-z0-9]{2,4})?$")


@pytest.fixture
def relay(settings, simulator, tmp_path, user):
    settings.RATELIMIT_JOBS = (1000, 60)  # many jobs are made here on purpose
    return use_relay(settings, simulator, tmp_path, user)


def png(size: tuple[int, int] = (48, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 40, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack("<800h", *([0] * 800)))
    return buffer.getvalue()


def faceswap(client, source: SimpleUploadedFile, target: SimpleUploadedFile | None = None):
    target = target or SimpleUploadedFile("scene.png", png((64, 40)), content_type="image/png")
    return client.post("/jobs/new/faceswap/", {"source": source, "target": target})


def every_file(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


HOSTILE_NAMES = [
    "../../etc/passwd.png",
    "../../../../../../srv/escaped.png",
    "/etc/passwd.png",
    "/srv/absolute.png",
    "..\\..\\windows\\win.ini.png",
    "C:\\Windows\\evil.png",
    "a\x00b.png",
    "evil.png\x00.php",
    "shell.php",
    "page.html",
    "x" * 300 + ".png",
    "<img src=x onerror=alert(1)>.png",
    "....png",
    ".htaccess",
    "%2e%2e%2fetc%2fpasswd.png",
    "face .png ",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:40]))
def test_upload_names_never_choose_where_a_file_is_stored(signed_in, relay, user, tmp_path, name):
    content = png()
    response = faceswap(signed_in, SimpleUploadedFile(name, content, content_type="image/png"))
    assert response.status_code == 302, response.content.decode()[:1500]
    job = Job.objects.get(user=user)
    reference = job.params["source"]

    # A generated name under the user's folder, with the extension of what the bytes are.
    match = STORED.match(reference["path"])
    assert match, reference["path"]
    assert match.group(1) == str(user.pk)
    assert match.group(3) == ".png"
    media = Path(relay_media(tmp_path)).resolve()
    stored = (media / reference["path"]).resolve()
    assert stored.is_relative_to(media) and stored.read_bytes() == content
    # Nothing was written anywhere else: only the two uploads, both inside MEDIA_ROOT.
    assert sorted(p.resolve() for p in every_file(tmp_path)) == sorted(
        p.resolve() for p in every_file(media)
    )
    assert len(every_file(media)) == 2
    assert not Path("/srv/escaped.png").exists() and not Path("/srv/absolute.png").exists()

    # The name is kept as text to show: no folders, no control characters, bounded.
    shown = reference["name"]
    assert "/" not in shown and "\\" not in shown and "\x00" not in shown
    assert shown.isprintable() and 0 < len(shown) <= 200
    assert reference["mime"] == "image/png"
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "<img src=x onerror" not in page  # shown escaped, if at all


def relay_media(tmp_path: Path) -> Path:
    return tmp_path / "media"


LIES = [
    # (file name, claimed type, content)
    ("avatar.png", "image/png", b"<?php system($_GET['c']); ?>"),
    ("avatar.png", "image/png", b"<html><script>alert(1)</script></html>"),
    ("avatar.png", "image/png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("avatar.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 not really a jpeg <script>"),
    ("avatar.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),  # a PNG header, no image
    ("avatar.gif", "image/gif", b"GIF89a<script>alert(1)</script>"),
    ("avatar.png", "image/png", b""),
    ("avatar.png", "image/png", b"MZ\x90\x00 an executable"),
]


@pytest.mark.parametrize(("name", "claimed", "content"), LIES, ids=lambda v: repr(v)[:30])
def test_an_image_upload_that_is_not_an_image_is_refused(
    signed_in, relay, user, tmp_path, name, claimed, content
):
    response = faceswap(signed_in, SimpleUploadedFile(name, content, content_type=claimed))
    assert response.status_code == 400
    assert not Job.objects.exists()
    assert every_file(relay_media(tmp_path)) == []
    page = response.content.decode()
    assert "is not a PNG, JPEG or WebP image" in page or "empty" in page


def test_a_gif_is_refused_where_only_stills_are_taken(signed_in, relay, tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(buffer, "GIF")
    response = faceswap(
        signed_in, SimpleUploadedFile("still.png", buffer.getvalue(), content_type="image/png")
    )
    assert response.status_code == 400
    assert every_file(relay_media(tmp_path)) == []


@pytest.mark.parametrize(
    ("name", "claimed", "content"),
    [
        ("talk.mp3", "audio/mpeg", b"<html><script>alert(1)</script></html>"),
        ("talk.wav", "audio/wav", b"<?php echo 1; ?>"),
        ("talk.wav", "audio/wav", png()),
        ("talk.mp3", "audio/mpeg", b""),
    ],
    ids=["html-as-mp3", "php-as-wav", "png-as-wav", "empty"],
)
def test_an_audio_upload_that_is_not_audio_is_refused(
    signed_in, relay, tmp_path, name, claimed, content
):
    response = signed_in.post(
        "/jobs/new/stt/",
        {
            "audio": SimpleUploadedFile(name, content, content_type=claimed),
            "mode": "transcribe",
            "response_format": "json",
        },
    )
    assert response.status_code == 400
    assert not Job.objects.exists()
    assert every_file(relay_media(tmp_path)) == []


def test_real_audio_under_a_script_name_is_kept_as_audio(signed_in, relay, user, tmp_path):
    """Judged by its bytes: a WAV named .php with a claimed HTML type is a WAV, stored as .wav."""
    response = signed_in.post(
        "/jobs/new/stt/",
        {
            "audio": SimpleUploadedFile("../../run.php", wav(), content_type="text/html"),
            "mode": "transcribe",
            "response_format": "json",
        },
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    reference = Job.objects.get(user=user).params["audio"]
    match = STORED.match(reference["path"])
    assert match and match.group(3) == ".wav", reference
    assert reference["mime"] == "audio/wav" and reference["name"] == "run.php"


def test_an_upload_larger_than_the_limit_is_refused_before_it_is_kept(signed_in, relay, tmp_path):
    big = png((16, 16)) + b"\x00" * (10 * 1024 * 1024)
    response = faceswap(signed_in, SimpleUploadedFile("big.png", big, content_type="image/png"))
    assert response.status_code == 400
    assert "larger than" in response.content.decode()
    assert every_file(relay_media(tmp_path)) == []
