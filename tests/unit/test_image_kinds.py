"""The image kinds' pure parts: image links in a gpt-4-all reply, the swap_face request, and
the upload check every kind that takes pictures shares (Midjourney, face swap, Kling, Runway)."""

import asyncio
import base64
import io
import json

import httpx
import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media_jobs.kinds.gpt4_image import MAX_IMAGES, image_urls, reply_excerpt
from media_jobs.kinds.uploads import (
    IMAGE_FORMATS,
    MAX_IMAGE_BYTES,
    PNG_OR_JPEG_FORMATS,
    STILL_IMAGE_FORMATS,
    check_image,
    clean_image_upload,
)
from studio.upstream import midjourney
from studio.upstream.client import RelayClient, RelayCredentials
from studio.upstream.errors import BadRequestError, UnavailableError

# --- image links in a gpt-4-all reply --------------------------------------------------------


def test_markdown_images_in_order_without_repeats():
    reply = (
        '```\n{"prompt": "a cat"}\n```\n> 正在生成图片…\n\n'
        "![image](https://files.example.com/a.png)\n\n"
        "[下载链接](https://files.example.com/download/a.png)\n\n"
        '![second](<https://files.example.com/b> "the second one")\n'
        "![image](https://files.example.com/a.png)\n"
    )
    assert image_urls(reply) == ["https://files.example.com/a.png", "https://files.example.com/b"]


def test_markdown_images_win_over_download_links_to_the_same_picture():
    reply = "![img](https://cdn.example.com/x/1.webp)\n[下载](https://cdn.example.com/dl/1.webp)"
    assert image_urls(reply) == ["https://cdn.example.com/x/1.webp"]


def test_bare_image_urls_when_the_reply_has_no_markdown_image():
    reply = (
        "Here you go: https://files.example.com/a.PNG?sig=abc&e=1, and also "
        "[this link](https://files.example.com/b.jpg). Again: https://files.example.com/a.PNG?sig=abc&e=1."
    )
    assert image_urls(reply) == [
        "https://files.example.com/a.PNG?sig=abc&e=1",
        "https://files.example.com/b.jpg",
    ]


def test_links_that_are_not_images_are_ignored():
    reply = (
        "See https://openai.com/policies and [the docs](https://example.com/guide.html) "
        "or ftp://files.example.com/a.png or data:image/png;base64,AAAA "
        "or https://example.com/png/page"
    )
    assert image_urls(reply) == []
    assert image_urls("![local](/files/a.png) ![js](javascript:alert(1))") == []


def test_a_reply_without_any_image():
    assert image_urls("抱歉，我无法生成这张图片。") == []  # noqa: RUF001 - the model's words
    assert image_urls("") == []


def test_at_most_a_few_images_are_kept():
    reply = "\n".join(f"![i](https://files.example.com/{n}.png)" for n in range(10))
    assert image_urls(reply) == [f"https://files.example.com/{n}.png" for n in range(MAX_IMAGES)]


def test_reply_excerpt_is_one_short_line():
    assert reply_excerpt("  I can't\n\n draw   that. ") == "I can't draw that."
    long = reply_excerpt("word " * 100)
    assert len(long) <= 200 and long.endswith("…")


# --- swap_face on the wire -------------------------------------------------------------------


class Relay:
    def __init__(self, status: int, body: object) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    def client(self) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return RelayClient(
            RelayCredentials("https://relay.test", "sk-test0123456789"), http_client=http
        )


def test_swap_face_posts_both_data_uris_and_returns_the_task():
    relay = Relay(200, {"code": 1, "description": "提交成功", "result": 1730621718151844})
    submitted = asyncio.run(
        midjourney.swap_face(
            relay.client(), "data:image/png;base64,AAA", "data:image/jpeg;base64,BBB"
        )
    )
    assert submitted.task_id == "1730621718151844"
    request = relay.requests[0]
    assert request.method == "POST" and request.url.path == "/mj/insight-face/swap"
    assert json.loads(request.content) == {
        "sourceBase64": "data:image/png;base64,AAA",
        "targetBase64": "data:image/jpeg;base64,BBB",
    }


def test_swap_face_refusal_of_a_missing_image_is_a_bad_request():
    body = {
        "description": "sour_base64_and_target_base64_is_required",
        "type": "upstream_error",
        "code": 4,
    }
    with pytest.raises(BadRequestError) as refused:
        asyncio.run(midjourney.swap_face(Relay(400, body).client(), "", ""))
    assert refused.value.message == "sour_base64_and_target_base64_is_required"
    assert refused.value.status == 400 and refused.value.relay_code == "4"


# --- the upload check ------------------------------------------------------------------------


def _upload(
    image_format: str, name: str = "face.img", size: tuple[int, int] = (8, 8)
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def _refusal(upload, **limits) -> list[str]:
    with pytest.raises(forms.ValidationError) as refused:
        check_image(upload, **limits)
    return refused.value.messages


def test_images_are_judged_by_their_content_not_their_name():
    checked = check_image(_upload("JPEG", "photo.png", (40, 30)))
    assert (checked.mime, checked.width, checked.height) == ("image/jpeg", 40, 30)
    webp = _upload("WEBP")
    uri = check_image(webp).data_uri
    assert uri == "data:image/webp;base64," + base64.b64encode(webp.read()).decode("ascii")


def test_each_family_says_which_formats_it_takes():
    gif = _upload("GIF", "moving.gif")
    assert check_image(gif).mime == "image/gif"  # Midjourney takes it
    assert _refusal(gif, formats=STILL_IMAGE_FORMATS) == [
        "moving.gif is not a PNG, JPEG or WebP image."
    ]
    assert _refusal(_upload("WEBP", "a.webp"), formats=PNG_OR_JPEG_FORMATS) == [
        "a.webp is not a PNG or JPEG image."
    ]
    text = SimpleUploadedFile("fake.png", b"not an image", "image/png")
    assert _refusal(text) == ["fake.png is not a PNG, JPEG, WebP or GIF image."]
    assert STILL_IMAGE_FORMATS.accept == "image/png,image/jpeg,image/webp"
    assert set(IMAGE_FORMATS.mimes) == {"PNG", "JPEG", "WEBP", "GIF"}


def test_the_byte_limit_names_the_file_and_the_limit():
    big = SimpleUploadedFile("big.png", b"\0" * (MAX_IMAGE_BYTES + 1), "image/png")
    # filesizeformat puts a no-break space between the number and the unit.
    assert _refusal(big) == ["big.png is larger than 10.0\xa0MB."]
    picture = _upload("PNG", "small.png", (64, 64))
    limit = len(picture.read()) - 1
    assert _refusal(picture, max_bytes=limit) == [f"small.png is larger than {limit}\xa0bytes."]
    assert check_image(picture, max_bytes=limit + 1).mime == "image/png"


class Unsized(io.BytesIO):
    """A file that does not say its size (the check then counts what it reads)."""

    name = "unsized.png"
    size = None


def test_the_byte_limit_holds_for_a_file_that_does_not_say_its_size():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buffer, "PNG")
    content = buffer.getvalue()
    assert check_image(Unsized(content), max_bytes=len(content)).content == content
    messages = _refusal(Unsized(content), max_bytes=len(content) - 1)
    assert messages == [f"unsized.png is larger than {len(content) - 1}\xa0bytes."]


def test_the_smallest_side_and_the_widest_shape_are_checked_when_asked():
    limits = {"min_side": 300, "max_ratio": 2.5}
    assert check_image(_upload("PNG", "ok.png", (750, 300)), **limits).width == 750
    assert check_image(_upload("PNG", "tiny.png", (200, 200))).width == 200  # not asked
    assert _refusal(_upload("PNG", "tiny.png", (200, 400)), **limits) == [
        "tiny.png is 200 x 400 pixels; each side must be at least 300."
    ]
    for size in ((1000, 300), (300, 1000)):
        assert _refusal(_upload("PNG", "strip.png", size), **limits) == [
            "strip.png is too narrow or too wide: keep it between 1:2.5 and 2.5:1."
        ]


def test_a_form_value_is_labelled_with_its_real_type_and_a_stored_one_passes():
    upload = _upload("JPEG", "photo.png")
    assert clean_image_upload(upload, formats=STILL_IMAGE_FORMATS) is upload
    assert upload.content_type == "image/jpeg"
    stored = {"path": "uploads/1/abc.png", "name": "photo.png", "mime": "image/png"}
    assert clean_image_upload(stored, formats=PNG_OR_JPEG_FORMATS, min_side=300) is stored
    assert clean_image_upload(None) is None
    with pytest.raises(forms.ValidationError, match=r"small\.png is 8 x 8 pixels"):
        clean_image_upload(_upload("PNG", "small.png"), min_side=300)


# --- what the gpt-4-all kind leaves to the runner's retries ----------------------------------


def _sse(*events: str) -> bytes:
    return "".join(f"data: {event}\n\n" for event in events).encode()


def _kind_submit(handler) -> object:
    from media_jobs.kinds.gpt4_image import Gpt4ImageKind

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = RelayClient(
        RelayCredentials("https://relay.test", "sk-test0123456789"), http_client=http
    )
    return asyncio.run(Gpt4ImageKind().submit(client, {"prompt": "a cat", "model": "gpt-4-all"}))


def test_an_unreachable_relay_is_raised_for_the_runner_to_retry():
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(UnavailableError):
        _kind_submit(unreachable)


def test_an_error_inside_the_stream_fails_the_job_even_before_any_text():
    error = json.dumps({"error": {"message": "upstream overloaded", "type": "upstream_error"}})
    role = json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})

    def stream(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["stream"] is True and body["messages"][-1]["content"] == "a cat"
        return httpx.Response(
            200, content=_sse(role, error), headers={"content-type": "text/event-stream"}
        )

    outcome = _kind_submit(stream)
    assert outcome.failure and "upstream overloaded" in outcome.failure and not outcome.files


def test_a_streamed_reply_becomes_files_to_download():
    chunks = [
        json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})
        for text in ("Here: ", "![cat](https://files.example.com/c", "at.jpg)")
    ]

    def stream(request: httpx.Request) -> httpx.Response:
        content = _sse(*chunks, "[DONE]")
        return httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})

    outcome = _kind_submit(stream)
    assert outcome.done and [(f.url, f.name) for f in outcome.files] == [
        ("https://files.example.com/cat.jpg", "image-1.jpg")
    ]
    assert outcome.result == {
        "reply": "Here: ![cat](https://files.example.com/cat.jpg)",
        "model": "gpt-4-all",
    }
