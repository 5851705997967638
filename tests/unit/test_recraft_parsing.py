"""The Recraft family against a fake transport: request bodies (JSON and multipart), lenient
reading of every reply shape, Recraft's own errors and the relay's mapped to our types; and the
kind's form rules and result checks."""

import asyncio
import base64
import io
import json

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from PIL import Image

from media_jobs.kinds import recraft as recraft_kind
from media_jobs.kinds.recraft import RecraftForm, RecraftKind, ResultRefused, checked_result
from media_jobs.svg import SVG_MIME
from studio.simulator.recraft import hostile_svg
from studio.upstream import recraft
from studio.upstream.client import RelayClient, RelayCredentials
from studio.upstream.errors import (
    AuthError,
    BadRequestError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
    user_message,
)

KEY = "sk-testSecret0123456789abcdEFGH"
BASE_URL = "https://relay.test"


class Relay:
    """Answers every request with the next (status, body) of `replies` (the last one repeats);
    a str body goes as plain text."""

    def __init__(self, *replies: tuple[int, object]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        status, body = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    def client(self) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return RelayClient(RelayCredentials(BASE_URL, KEY), http_client=http)

    def last_json(self) -> dict:
        return json.loads(self.requests[-1].content)


def run(coro):
    return asyncio.run(coro)


def png_bytes(size=(32, 24), colour=(10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def multipart_parts(request: httpx.Request) -> list[tuple[str, str, bytes]]:
    """(field name, filename or "", body) of every part, in order."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    parts = []
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        disposition = head.decode().split("\r\n")[0]
        name = disposition.split('name="')[1].split('"')[0]
        filename = (
            disposition.split('filename="')[1].split('"')[0] if "filename" in head.decode() else ""
        )
        parts.append((name, filename, body))
    return parts


# --- generate -------------------------------------------------------------------------------


def test_generate_sends_only_given_fields_and_reads_the_images():
    relay = Relay(
        (
            200,
            {
                "created": 1731000000,
                "data": [
                    {"url": "https://img.recraft.ai/a.png", "image_id": "img-1"},
                    {"b64_json": base64.b64encode(b"raw").decode(), "image_id": 42},
                ],
            },
        )
    )
    images = run(
        recraft.generate(
            relay.client(),
            "a red fox",
            style="digital_illustration",
            substyle="hand_drawn",
            size="1365x1024",
            n=2,
            model="",
            colors=[(255, 0, 0)],
            background_color=(0, 0, 0),
        )
    )
    request = relay.requests[0]
    assert request.method == "POST" and request.url.path == "/recraft/v1/images/generations"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert relay.last_json() == {
        "prompt": "a red fox",
        "style": "digital_illustration",
        "substyle": "hand_drawn",
        "size": "1365x1024",
        "n": 2,
        "controls": {"colors": [{"rgb": [255, 0, 0]}], "background_color": {"rgb": [0, 0, 0]}},
    }
    assert images[0] == recraft.RecraftImage(url="https://img.recraft.ai/a.png", image_id="img-1")
    assert images[1].image_id == "42" and images[1].content() == b"raw"


def test_style_and_style_id_are_refused_together_before_any_request():
    relay = Relay((200, {"data": []}))
    with pytest.raises(BadRequestError, match="either a style or a style_id"):
        run(recraft.generate(relay.client(), "x", style="icon", style_id="abc"))
    assert relay.requests == []


def test_a_custom_style_goes_as_style_id():
    relay = Relay((200, {"data": [{"url": "https://x/1.png"}]}))
    run(recraft.generate(relay.client(), "x", style_id="229b2a75"))
    assert relay.last_json() == {"prompt": "x", "style_id": "229b2a75"}


@pytest.mark.parametrize(
    ("payload", "urls"),
    [
        ({"data": [{"url": " https://a/1.png "}]}, ["https://a/1.png"]),
        ({"data": {"url": "https://a/1.png"}}, ["https://a/1.png"]),
        ({"data": ["https://a/1.png", "https://a/2.png"]}, ["https://a/1.png", "https://a/2.png"]),
        ({"images": [{"url": "https://a/1.png"}]}, ["https://a/1.png"]),
        (
            {"data": [{"url": ""}, {"nothing": 1}, None, {"url": "https://a/2.png"}]},
            ["https://a/2.png"],
        ),
        ({"data": None}, []),
        ({}, []),
    ],
)
def test_generations_are_read_leniently(payload, urls):
    assert [image.url for image in recraft.parse_generation(payload)] == urls


def test_a_generation_without_images_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="without any image"):
        run(recraft.generate(Relay((200, {"created": 1, "data": []})).client(), "x"))


def test_broken_base64_is_a_protocol_error():
    image = recraft.RecraftImage(b64_json="@@not base64@@")
    with pytest.raises(ProtocolError, match="base64"):
        image.content()
    encoded = base64.b64encode(b"svg bytes").decode()
    assert recraft.RecraftImage(b64_json=f"data:image/svg+xml;base64,{encoded}").content() == (
        b"svg bytes"
    )


# --- styles and image operations ------------------------------------------------------------


def test_create_style_sends_the_base_style_and_every_reference_image():
    relay = Relay((200, {"id": "229b2a75-05e4-4580-85f9-b47ee521a00d"}))
    files = [
        recraft.UploadFile("a.png", png_bytes(), "image/png"),
        recraft.UploadFile("b.webp", b"webp bytes", "image/webp"),
    ]
    style_id = run(recraft.create_style(relay.client(), "digital_illustration", files))
    assert style_id == "229b2a75-05e4-4580-85f9-b47ee521a00d"
    request = relay.requests[0]
    assert request.url.path == "/recraft/v1/styles"
    assert request.headers["content-type"].startswith("multipart/form-data")
    parts = multipart_parts(request)
    assert ("style", "", b"digital_illustration") in parts
    assert [(name, filename) for name, filename, _ in parts if filename] == [
        ("files", "a.png"),
        ("files", "b.webp"),
    ]
    assert [body for name, _, body in parts if name == "files"][1] == b"webp bytes"


@pytest.mark.parametrize(
    ("payload", "style_id"),
    [
        ({"id": "s-1"}, "s-1"),
        ({"style_id": 7}, "7"),
        ({"data": {"id": "s-2"}}, "s-2"),
        ({"code": "success", "data": {"style_id": "s-3"}}, "s-3"),
        ({"id": ""}, ""),
        ({}, ""),
    ],
)
def test_style_ids_are_read_leniently(payload, style_id):
    assert recraft.parse_style_id(payload) == style_id


def test_a_style_without_id_is_a_protocol_error():
    relay = Relay((200, {"ok": True}))
    with pytest.raises(ProtocolError, match="no id"):
        run(recraft.create_style(relay.client(), "icon", [recraft.UploadFile("a.png", b"x")]))


@pytest.mark.parametrize(
    ("operation", "path"),
    [
        ("vectorize", "/recraft/v1/images/vectorize"),
        ("remove_background", "/recraft/v1/images/removeBackground"),
        ("clarity_upscale", "/recraft/v1/images/clarityUpscale"),
        ("generative_upscale", "/recraft/v1/images/generativeUpscale"),
    ],
)
def test_image_operations_send_the_file_to_their_path(operation, path):
    relay = Relay((200, {"image": {"url": "https://img.recraft.ai/out"}}))
    image = run(
        recraft.process_image(relay.client(), operation, recraft.UploadFile("in.png", b"png!"))
    )
    assert image.url == "https://img.recraft.ai/out"
    request = relay.requests[0]
    assert request.url.path == path
    assert multipart_parts(request) == [("file", "in.png", b"png!")]


def test_the_named_helpers_call_their_operation():
    relay = Relay((200, {"image": {"url": "https://img/out.svg"}}))
    run(recraft.vectorize(relay.client(), recraft.UploadFile("in.png", b"x")))
    run(recraft.generative_upscale(relay.client(), recraft.UploadFile("in.png", b"x")))
    assert [r.url.path.rsplit("/", 1)[1] for r in relay.requests] == [
        "vectorize",
        "generativeUpscale",
    ]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"image": {"url": "https://a/x.svg"}}, recraft.RecraftImage(url="https://a/x.svg")),
        ({"image": "https://a/x.svg"}, recraft.RecraftImage(url="https://a/x.svg")),
        ({"image": {"b64_json": "AAAA"}}, recraft.RecraftImage(b64_json="AAAA")),
        ({"url": "https://a/y.png"}, recraft.RecraftImage(url="https://a/y.png")),
        ({"data": [{"url": "https://a/z.png"}]}, recraft.RecraftImage(url="https://a/z.png")),
        ({"image": None, "x": 1}, recraft.RecraftImage()),
    ],
)
def test_image_results_are_read_leniently(payload, expected):
    assert recraft.parse_image_result(payload) == expected


def test_an_operation_without_an_image_is_a_protocol_error_and_unknown_ones_are_refused():
    relay = Relay((200, {"image": {}}))
    with pytest.raises(ProtocolError, match="without an image"):
        run(recraft.vectorize(relay.client(), recraft.UploadFile("in.png", b"x")))
    with pytest.raises(BadRequestError, match="unknown Recraft image operation"):
        run(recraft.process_image(relay.client(), "inpaint", recraft.UploadFile("a", b"x")))


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error_class", "words"),
    [
        # Recraft's own shape, passed through by the relay.
        (
            400,
            {"code": "invalid_size", "message": "size 9x9 is not supported"},
            BadRequestError,
            "size 9x9",
        ),
        (
            400,
            {"code": "not_enough_credits", "message": "Not enough API units"},
            QuotaError,
            "API units",
        ),
        (
            404,
            {"code": "style_not_found", "message": "style abc not found"},
            BadRequestError,
            "style abc",
        ),
        (
            500,
            {"code": "internal_error", "message": "Internal server error"},
            UnavailableError,
            "Internal",
        ),
        (
            429,
            {"code": "rate_limit_exceeded", "message": "slow down"},
            RateLimitedError,
            "slow down",
        ),
        (401, "request unauthorized", AuthError, "request unauthorized"),
        # The relay's own OpenAI shape.
        (
            403,
            {
                "error": {
                    "message": "该令牌额度已用尽",
                    "type": "new_api_error",
                    "code": "insufficient_quota",
                }
            },
            QuotaError,
            "额度",
        ),
        (
            503,
            {
                "error": {
                    "message": "no available channel for model recraftv3",
                    "type": "new_api_error",
                }
            },
            UnavailableError,
            "no available channel",
        ),
        (
            404,
            {
                "error": {
                    "message": "Invalid URL (POST /recraft/v1/styles)",
                    "type": "invalid_request_error",
                }
            },
            BadRequestError,
            "Invalid URL",
        ),
    ],
)
def test_errors_map_to_our_types_with_the_relays_words(status, body, error_class, words):
    relay = Relay((status, body))
    with pytest.raises(error_class) as raised:
        run(recraft.generate(relay.client(), "x"))
    assert type(raised.value) is error_class
    assert raised.value.status == status and words in raised.value.message
    assert words in user_message(raised.value)


def test_the_recraft_code_is_kept_for_people_to_quote():
    relay = Relay((400, {"code": "prompt_moderation", "message": "rejected by moderation"}))
    with pytest.raises(BadRequestError) as raised:
        run(recraft.vectorize(relay.client(), recraft.UploadFile("a.png", b"x")))
    assert raised.value.relay_code == "prompt_moderation"
    assert str(raised.value) == "rejected by moderation (HTTP 400, prompt_moderation)"


def test_a_recraft_error_inside_a_200_reply_is_raised():
    relay = Relay((200, {"code": "not_enough_credits", "message": "Not enough API units"}))
    with pytest.raises(QuotaError, match="API units"):
        run(recraft.create_style(relay.client(), "icon", [recraft.UploadFile("a.png", b"x")]))
    relay = Relay((200, {"code": "invalid_image", "message": "bad file"}))
    with pytest.raises(BadRequestError, match="bad file"):
        run(recraft.clarity_upscale(relay.client(), recraft.UploadFile("a.png", b"x")))


def test_a_server_word_in_a_4xx_code_does_not_make_it_retryable():
    error = BadRequestError("bad", status=400, relay_code="internal_error_in_input")
    assert recraft.with_recraft_class(error) is error


# --- the kind's form ------------------------------------------------------------------------


def form(files=None, **fields):
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
    data.update(fields)
    lists = {
        key: value if isinstance(value, list) else [value] for key, value in (files or {}).items()
    }
    return RecraftForm(data, MultiValueDict(lists))


def upload(name="in.png", content=None, size=(40, 30)):
    return SimpleUploadedFile(name, content if content is not None else png_bytes(size))


def test_a_generate_form_cleans_to_what_the_relay_takes():
    bound = form(style="icon", substyle="colored_outline", n="3", image=upload())
    assert bound.is_valid(), bound.errors
    data = bound.cleaned_data
    assert data["image"] is None and "files" not in data  # nothing of other modes is kept
    assert (data["style"], data["substyle"], data["n"]) == ("icon", "colored_outline", 3)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"prompt": ""}, "prompt", "Write a prompt"),
        ({"prompt": "x" * 1001}, "prompt", "at most 1000"),
        ({"style": "icon", "style_id": "abc-123"}, "style_id", "not both"),
        ({"substyle": "hand_drawn"}, "substyle", "Pick the style"),
        ({"style": "any", "substyle": "hand_drawn"}, "substyle", "Pick the style"),
        ({"style_id": "abc", "substyle": "hand_drawn"}, "substyle", "no substyle"),
        ({"style": "digital_illustration", "substyle": "Hand Drawn!"}, "substyle", "lower case"),
        ({"style_id": "<script>"}, "style_id", "A style id"),
        ({"n": "7"}, "n", "less than or equal to 6"),
        ({"size": "999x999"}, "size", "valid choice"),
        ({"model": "recraftv9"}, "model", "valid choice"),
    ],
)
def test_generate_form_refusals_are_clear(fields, field, words):
    bound = form(**fields)
    assert not bound.is_valid()
    assert words in " ".join(bound.errors[field]), bound.errors


def test_create_style_needs_a_base_style_and_1_to_5_images():
    bound = form(mode="create_style", style="any", prompt="")
    assert not bound.is_valid()
    assert "builds on" in bound.errors["style"][0]
    assert "Upload 1 to 5" in bound.errors["files"][0]

    six = [upload(f"ref{i}.png") for i in range(6)]
    bound = form({"files": six}, mode="create_style", style="icon")
    assert not bound.is_valid() and "at most five" in bound.errors["files"][0]

    bad = [upload("ok.png"), upload("notes.png", b"just text")]
    bound = form({"files": bad}, mode="create_style", style="icon")
    assert not bound.is_valid() and "notes.png" in bound.errors["files"][0]

    two = [upload("a.png"), upload("b.png")]
    bound = form({"files": two}, mode="create_style", style="icon", style_id="ignored")
    assert bound.is_valid(), bound.errors
    data = bound.cleaned_data
    assert [data["files_1"].name, data["files_2"].name] == ["a.png", "b.png"]
    assert "files" not in data and data["image"] is None
    assert data["prompt"] == "" and data["style_id"] == ""


@pytest.mark.parametrize("mode", recraft_kind.IMAGE_MODES)
def test_image_modes_need_a_real_image(mode):
    bound = form(mode=mode, prompt="")
    assert not bound.is_valid() and "Upload the image" in bound.errors["image"][0]
    bound = form({"image": upload("doc.png", b"%PDF-1.4")}, mode=mode, prompt="")
    assert not bound.is_valid() and "doc.png is not a PNG, JPEG or WebP" in bound.errors["image"][0]
    bound = form({"image": upload()}, mode=mode, prompt="ignored", style="icon")
    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["image"].content_type == "image/png"
    assert bound.cleaned_data["prompt"] == "" and bound.cleaned_data["style"] == ""


def test_the_form_is_prefilled_by_a_style_link_but_not_against_an_input():
    kind = RecraftKind()
    prefilled = kind.make_form(None, query={"mode": "generate", "style_id": " s-1 "})
    assert prefilled.initial == {"mode": "generate", "style_id": "s-1", "style": "", "substyle": ""}
    used = kind.make_form(
        None, initial={"mode": "vectorize"}, query={"mode": "generate", "input": "x", "use": "0"}
    )
    assert used.initial["mode"] == "vectorize"
    assert kind.make_form(None, query={"mode": "evil"}).initial == {}


def test_every_image_use_names_the_image_field_and_a_mode():
    uses = RecraftKind.image_uses
    assert {use.initial["mode"] for use in uses} == set(recraft_kind.IMAGE_MODES)
    assert all(use.form_field == "image" for use in uses)
    assert "Vectorize (Recraft)" in [str(use.label) for use in uses]


# --- results as kept ------------------------------------------------------------------------


def test_an_svg_result_is_kept_sanitised():
    kept = checked_result(hostile_svg().encode(), "image/svg+xml", "vector")
    assert kept.mime == SVG_MIME and kept.name == "vector.svg"
    assert b"script" not in kept.content and b"evil.example" not in kept.content
    assert b'id="keep"' in kept.content
    # Recognised by its bytes too, whatever the server called it.
    assert checked_result(hostile_svg().encode(), "application/octet-stream", "x").mime == SVG_MIME


def test_raster_results_are_kept_by_what_pillow_finds():
    kept = checked_result(png_bytes(), "image/webp", "image-1")
    assert (kept.mime, kept.name) == ("image/png", "image-1.png")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"<html><body>Access denied</body></html>", "neither an image nor an SVG"),
        (b"\x89PNG\r\n\x1a\ntruncated", "neither an image nor an SVG"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><g>', "not well-formed"),
        (b'<!DOCTYPE svg [<!ENTITY a "b">]><svg/>', "DOCTYPE"),
    ],
)
def test_unusable_results_are_refused_with_a_reason(content, words):
    with pytest.raises(ResultRefused, match=words):
        checked_result(content, "image/svg+xml" if b"svg" in content else "image/png", "x")
