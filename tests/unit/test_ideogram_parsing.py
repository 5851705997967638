"""The Ideogram family against a fake transport: the JSON and multipart bodies of each endpoint,
replies read leniently, unsafe images withheld, Ideogram's own error bodies and the relay's
mapped to our error types; the web ("reverse") format's request ids and task query; and the
Ideogram form's per-mode rules and outcomes."""

import asyncio
import io
import json

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from PIL import Image

from media_jobs.kinds import ideogram as ideogram_kind
from studio.simulator.web import parse_multipart
from studio.upstream import ideogram
from studio.upstream.client import RelayClient, RelayCredentials
from studio.upstream.errors import (
    AuthError,
    BadRequestError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
)

KEY = "sk-testSecret0123456789abcdEFGH"
BASE_URL = "https://relay.test"
PNG = ("cat.png", b"\x89PNG\r\n\x1a\n fake bytes", "image/png")


class Relay:
    """Answers every request with (status, body); records what was sent."""

    def __init__(self, status: int, body: object) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        if isinstance(self.body, bytes):
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json=self.body)

    def client(self, fmt: str | None = None) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        options = {"ideogram_format": fmt} if fmt else {}
        return RelayClient(RelayCredentials(BASE_URL, KEY, options=options), http_client=http)

    def multipart(self) -> tuple[dict[str, list[str]], dict]:
        request = self.requests[-1]
        return parse_multipart(request.headers["content-type"], request.content)


def run(coro):
    return asyncio.run(coro)


def image(**extra) -> dict:
    return {
        "url": "https://ideogram.ai/api/images/ephemeral/abc.png?exp=1",
        "prompt": "A lighthouse at dawn, in watercolour",
        "resolution": "1312x736",
        "is_image_safe": True,
        "seed": 12345,
        "style_type": "REALISTIC",
        **extra,
    }


def reply(*images) -> dict:
    return {"created": "2024-12-15T17:32:00+00:00", "data": list(images)}


# --- requests -------------------------------------------------------------------------------


def test_generate_sends_an_image_request_without_empty_fields():
    relay = Relay(200, reply(image()))
    result = run(
        ideogram.generate(
            relay.client(),
            "A lighthouse",
            aspect_ratio="ASPECT_16_9",
            model="V_2",
            magic_prompt_option="OFF",
            style_type="REALISTIC",
            negative_prompt="",
            seed=0,
            color_palette="PASTEL",
        )
    )
    sent = relay.requests[-1]
    assert sent.method == "POST" and sent.url == f"{BASE_URL}/ideogram/generate"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.content) == {
        "image_request": {
            "prompt": "A lighthouse",
            "aspect_ratio": "ASPECT_16_9",
            "model": "V_2",
            "magic_prompt_option": "OFF",
            "style_type": "REALISTIC",
            "seed": 0,  # a real value, not an empty one
            "color_palette": {"name": "PASTEL"},
        }
    }
    (kept,) = result.images
    assert kept.url.startswith("https://ideogram.ai/") and kept.seed == 12345
    assert kept.resolution == "1312x736" and kept.style_type == "REALISTIC"
    assert result.withheld == 0 and result.created == "2024-12-15T17:32:00+00:00"


def test_remix_sends_the_image_request_as_a_json_string_beside_the_file():
    relay = Relay(200, reply(image()))
    run(
        ideogram.remix(
            relay.client(), PNG, "Make it winter", image_weight=80, aspect_ratio="ASPECT_1_1"
        )
    )
    assert relay.requests[-1].url.path == "/ideogram/remix"
    fields, files = relay.multipart()
    assert json.loads(fields["image_request"][0]) == {
        "prompt": "Make it winter",
        "aspect_ratio": "ASPECT_1_1",
        "image_weight": 80,
    }
    upload = files["image_file"]
    assert (upload.filename, upload.data, upload.content_type) == PNG


def test_upscale_sends_only_its_own_fields():
    relay = Relay(200, reply(image(resolution="2048x2048")))
    result = run(ideogram.upscale(relay.client(), PNG, resemblance=70, detail=30, seed=7))
    assert relay.requests[-1].url.path == "/ideogram/upscale"
    fields, files = relay.multipart()
    assert json.loads(fields["image_request"][0]) == {"seed": 7, "resemblance": 70, "detail": 30}
    assert files["image_file"].data == PNG[1]
    assert result.images[0].resolution == "2048x2048"


def test_describe_sends_the_file_alone_and_reads_the_texts_leniently():
    body = {"descriptions": [{"text": " A red fox in snow "}, "A plain string", {"text": ""}, 3]}
    relay = Relay(200, body)
    texts = run(ideogram.describe(relay.client(), PNG))
    assert relay.requests[-1].url.path == "/ideogram/describe"
    fields, files = relay.multipart()
    assert fields == {} and list(files) == ["image_file"]
    assert texts == ("A red fox in snow", "A plain string", "3")


def test_a_path_override_moves_the_call():
    relay = Relay(200, reply(image()))
    http = httpx.AsyncClient(transport=httpx.MockTransport(relay))
    credentials = RelayCredentials(
        BASE_URL, KEY, path_overrides={"ideogram_generate": "/ideo/v1/generate"}
    )
    run(ideogram.generate(RelayClient(credentials, http_client=http), "x"))
    assert relay.requests[-1].url.path == "/ideo/v1/generate"


# --- replies --------------------------------------------------------------------------------


def test_unsafe_images_are_withheld_even_with_a_link():
    result = ideogram.parse_images(
        reply(
            image(seed=1),
            image(seed=2, is_image_safe=False),  # a link, but flagged: never handed out
            image(seed=3, is_image_safe="false", url=None),
            image(seed=4, is_image_safe=0),
        )
    )
    assert [kept.seed for kept in result.images] == [1]
    assert result.withheld == 3


def test_images_are_read_leniently():
    result = ideogram.parse_images(
        reply(
            {"url": "https://x.test/a.png"},  # no safety flag: older replies lack it
            image(seed="42", is_image_safe="true"),
            image(seed="not a number", style_type=None),
            image(url=""),  # safe but no link: nothing to keep, nothing withheld
            "junk",
        )
    )
    assert [kept.seed for kept in result.images] == [None, 42, None]
    assert result.images[0].prompt == "" and result.images[2].style_type == ""
    assert result.withheld == 0


def test_a_reply_without_images_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="no image list"):
        ideogram.parse_images({"created": "2024-12-15T17:32:00+00:00"})
    with pytest.raises(ProtocolError, match="no descriptions"):
        ideogram.parse_descriptions({"data": []})


def test_an_error_inside_a_200_reply_raises_it():
    with pytest.raises(BadRequestError) as raised:
        run(
            ideogram.generate(
                Relay(200, {"detail": "Prompt failed the safety check."}).client(), "x"
            )
        )
    assert raised.value.message == "Prompt failed the safety check."
    with pytest.raises(QuotaError):
        run(ideogram.describe(Relay(200, {"error": "insufficient credits"}).client(), PNG))


# --- errors ---------------------------------------------------------------------------------

VALIDATION = {
    "detail": [
        {
            "type": "enum",
            "loc": ["body", "image_request", "aspect_ratio"],
            "msg": "Input should be 'ASPECT_1_1', 'ASPECT_16_9'",
        }
    ]
}


@pytest.mark.parametrize(
    ("status", "body", "error_class", "message"),
    [
        (422, {"detail": "Prompt failed the safety check."}, BadRequestError, "safety check"),
        (422, VALIDATION, BadRequestError, "image_request.aspect_ratio: Input should be"),
        (400, {"detail": "Style type is only supported for V_2"}, BadRequestError, "V_2"),
        (400, {"error": "Ideogram rejected the image request"}, BadRequestError, "rejected"),
        (500, {"detail": "Internal Server Error"}, UnavailableError, "Internal Server Error"),
        (
            401,
            {
                "error": {
                    "message": "无效的令牌",
                    "type": "new_api_error",
                    "code": "invalid_api_key",
                }
            },
            AuthError,
            "无效的令牌",
        ),
        (
            403,
            {"error": {"message": "该令牌额度已用尽", "type": "new_api_error", "code": None}},
            QuotaError,
            "额度",
        ),
        (
            429,
            {"error": {"message": "当前分组上游负载已饱和", "type": "new_api_error"}},
            RateLimitedError,
            "饱和",
        ),
        (502, b"<html><title>502 Bad Gateway</title></html>", UnavailableError, "502 Bad Gateway"),
    ],
)
def test_ideogram_and_relay_error_bodies_map_to_our_errors(status, body, error_class, message):
    for call in (
        lambda client: ideogram.generate(client, "x"),
        lambda client: ideogram.remix(client, PNG, "x"),
        lambda client: ideogram.upscale(client, PNG),
        lambda client: ideogram.describe(client, PNG),
    ):
        with pytest.raises(error_class) as raised:
            run(call(Relay(status, body).client()))
        assert raised.value.status == status and message in raised.value.message


def test_style_and_palette_belong_to_version_2_models():
    assert ideogram.supports_style("V_2") and ideogram.supports_style("V_2_TURBO")
    assert ideogram.supports_style(None)  # Ideogram's default model is V_2
    assert not ideogram.supports_style("V_1") and not ideogram.supports_style("V_1_TURBO")


# --- the form -------------------------------------------------------------------------------

FIELDS = {
    "mode": "generate",
    "prompt": "A lighthouse",
    "model": "V_2",
    "aspect_ratio": "ASPECT_1_1",
    "magic_prompt_option": "AUTO",
    "num_images": "1",
}


def picture(name="photo.png", image_format="PNG") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def form(files=None, **fields) -> ideogram_kind.IdeogramForm:
    uploads = MultiValueDict({name: [upload] for name, upload in (files or {}).items()})
    return ideogram_kind.IdeogramForm(data={**FIELDS, **fields}, files=uploads)


@pytest.mark.parametrize(
    ("fields", "files", "field", "message"),
    [
        ({"prompt": "  "}, {}, "prompt", "Write a prompt"),
        ({"mode": "remix", "prompt": ""}, {"image": picture()}, "prompt", "Write a prompt"),
        ({"mode": "remix"}, {}, "image", "Upload the image to remix."),
        ({"mode": "upscale"}, {}, "image", "Upload the image to upscale."),
        ({"mode": "describe"}, {}, "image", "Upload the image to describe."),
        (
            {"mode": "describe"},
            {"image": SimpleUploadedFile("a.gif", b"GIF89a nonsense")},
            "image",
            "a.gif is not a PNG, JPEG or WebP image.",
        ),
        ({"model": "V_1", "style_type": "ANIME"}, {}, "style_type", "Ideogram 2.0 model"),
        ({"model": "V_1_TURBO", "color_palette": "EMBER"}, {}, "color_palette", "2.0 model"),
        ({"seed": str(ideogram.MAX_SEED + 1)}, {}, "seed", "less than or equal to 2147483647"),
        ({"num_images": "9"}, {}, "num_images", "less than or equal to 8"),
        ({"mode": "remix", "image_weight": "0"}, {"image": picture()}, "image_weight", "1."),
        ({"aspect_ratio": "16:9"}, {}, "aspect_ratio", "Select a valid choice"),
    ],
)
def test_each_mode_asks_for_what_it_needs(fields, files, field, message):
    bound = form(files, **fields)
    assert not bound.is_valid()
    assert message in " ".join(bound.errors[field]), bound.errors


def test_options_of_other_modes_do_not_block_a_mode():
    # A V_1 model with a style is fine to upscale: the model's options are not sent then.
    bound = form({"image": picture()}, mode="upscale", prompt="", model="V_1", style_type="ANIME")
    assert bound.is_valid(), bound.errors
    # A junk file left in the form does not stop a generate, and is not kept.
    junk = SimpleUploadedFile("notes.txt", b"not a picture")
    bound = form({"image": junk})
    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["image"] is None
    # Describe sends only the image: a typed prompt is dropped.
    bound = form({"image": picture("p.jpg", "JPEG")}, mode="describe", prompt="ignored")
    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["prompt"] == ""
    assert bound.cleaned_data["image"].content_type == "image/jpeg"


# --- outcomes -------------------------------------------------------------------------------


def _result(*images, withheld=0) -> ideogram.IdeogramResult:
    return ideogram.IdeogramResult(tuple(images), withheld)


def test_kept_images_become_files_with_prompt_and_seed_in_the_result():
    first = ideogram.IdeogramImage("https://x.test/1.png", "A lighthouse, golden hour", seed=9)
    second = ideogram.IdeogramImage("https://x.test/2.png", "A lighthouse", seed=10)
    outcome = ideogram_kind.images_outcome(
        _result(first, second, withheld=1), {"mode": "generate", "prompt": "A lighthouse"}
    )
    assert outcome.done and not outcome.failure
    assert [file.url for file in outcome.files] == ["https://x.test/1.png", "https://x.test/2.png"]
    assert outcome.result["revised_prompt"] == "A lighthouse, golden hour"
    assert outcome.result["seed"] == 9 and outcome.result["withheld"] == 1
    assert [item["seed"] for item in outcome.result["images"]] == [9, 10]

    unchanged = ideogram.IdeogramImage("https://x.test/1.png", "A lighthouse", seed=9)
    outcome = ideogram_kind.images_outcome(_result(unchanged), {"prompt": "A lighthouse"})
    assert outcome.result["revised_prompt"] == ""  # Magic Prompt left it as written


def test_nothing_to_keep_fails_and_says_why():
    outcome = ideogram_kind.images_outcome(_result(withheld=1), {"prompt": "x"})
    assert not outcome.done and "did not pass Ideogram's safety check" in outcome.failure
    outcome = ideogram_kind.images_outcome(_result(withheld=3), {"prompt": "x"})
    assert "withheld all 3 images" in outcome.failure
    outcome = ideogram_kind.images_outcome(_result(), {"prompt": "x"})
    assert "sent no image" in outcome.failure
    assert "no description" in ideogram_kind.descriptions_outcome(()).failure
    described = ideogram_kind.descriptions_outcome(("A fox",))
    assert described.done and described.result["descriptions"] == ["A fox"]


# --- web format ("reverse" group, §11.2) ----------------------------------------------------


def sampling(**extra) -> dict:
    """One sampling request of the task query, finished, with two images."""
    return {
        "request_id": "req-1",
        "is_completed": True,
        "completion_percentage": 100,
        "has_started": True,
        "can_upscale": True,
        "aspect_ratio": "16:9",
        "width": 1312,
        "height": 736,
        "model_version": "V_2",
        "user_prompt": "A lighthouse",
        "seed": 77,
        "responses": [
            {"response_id": "a", "url": "https://ideogram.ai/web/a.png"},
            {"response_id": "b", "url": "https://ideogram.ai/web/b.png", "seed": 78},
        ],
        **extra,
    }


def test_the_format_comes_from_the_family_option():
    assert ideogram.format_of(Relay(200, {}).client()) == "official"
    assert ideogram.format_of(Relay(200, {}).client("web")) == "web"
    assert ideogram.format_of(Relay(200, {}).client("web"), "official") == "official"
    with pytest.raises(BadRequestError, match="unknown Ideogram format"):
        ideogram.format_of(Relay(200, {}).client("reverse"))


@pytest.mark.parametrize(
    ("body", "request_id"),
    [
        ({"request_id": "Xk3aQ9b2Rz6tLp0mNc1yWg"}, "Xk3aQ9b2Rz6tLp0mNc1yWg"),
        ({"request_id": 1730621718151844}, "1730621718151844"),
        ({"code": 200, "data": {"request_id": " r-7 "}}, "r-7"),
        ({"data": {"request_id": 42.0}}, "42"),
        ({"sampling_requests": [{"request_id": "r-8", "is_completed": False}]}, "r-8"),
    ],
)
def test_a_web_submit_answers_a_request_id_in_any_of_its_shapes(body, request_id):
    relay = Relay(200, body)
    submitted = run(
        ideogram.web_generate(relay.client(), "A lighthouse", aspect_ratio="ASPECT_16_9")
    )
    sent = relay.requests[-1]
    assert sent.method == "POST" and sent.url.path == "/ideogram/web/generate"
    # The same body as the official format: the only guess we have.
    assert json.loads(sent.content) == {
        "image_request": {"prompt": "A lighthouse", "aspect_ratio": "ASPECT_16_9"}
    }
    assert submitted == ideogram.WebSubmission(request_id=request_id)


def test_web_remix_upscale_and_describe_send_the_official_multipart_bodies():
    relay = Relay(200, {"request_id": "r"})
    run(ideogram.web_remix(relay.client(), PNG, "Winter", image_weight=70))
    assert relay.requests[-1].url.path == "/ideogram/web/remix"
    fields, files = relay.multipart()
    assert json.loads(fields["image_request"][0]) == {"prompt": "Winter", "image_weight": 70}
    assert files["image_file"].data == PNG[1]

    run(ideogram.web_upscale(relay.client(), PNG, resemblance=60))
    assert relay.requests[-1].url.path == "/ideogram/web/upscale"
    fields, _files = relay.multipart()
    assert json.loads(fields["image_request"][0]) == {"resemblance": 60}

    submitted = run(ideogram.web_describe(relay.client(), PNG))
    assert relay.requests[-1].url.path == "/ideogram/web/describe"
    fields, files = relay.multipart()
    assert fields == {} and list(files) == ["image_file"]
    assert submitted.request_id == "r"


def test_a_web_submit_that_answers_at_once_in_the_official_shape_is_the_result():
    submitted = run(ideogram.web_generate(Relay(200, reply(image())).client(), "x"))
    assert not submitted.request_id and submitted.result is not None
    assert submitted.result.images[0].seed == 12345
    body = {"descriptions": [{"text": "A red fox"}]}
    described = run(ideogram.web_describe(Relay(200, body).client(), PNG))
    assert described.descriptions == ("A red fox",)


def test_a_web_submit_without_request_id_or_result_raises():
    with pytest.raises(ProtocolError, match="sent no request_id"):
        run(ideogram.web_generate(Relay(200, {"ok": True}).client(), "x"))
    with pytest.raises(ProtocolError, match="sent no request_id"):
        run(ideogram.web_describe(Relay(200, {"data": []}).client(), PNG))  # images: not a text
    with pytest.raises(ProtocolError, match="too long"):
        run(ideogram.web_generate(Relay(200, {"request_id": "x" * 101}).client(), "x"))
    with pytest.raises(BadRequestError) as raised:
        run(
            ideogram.web_generate(
                Relay(200, {"detail": "Prompt failed the safety check."}).client(), "x"
            )
        )
    assert raised.value.message == "Prompt failed the safety check."


@pytest.mark.parametrize(
    ("status", "body", "error_class", "message"),
    [
        (422, {"detail": "Prompt failed the safety check."}, BadRequestError, "safety check"),
        (422, VALIDATION, BadRequestError, "image_request.aspect_ratio: Input should be"),
        (500, {"detail": "Internal Server Error"}, UnavailableError, "Internal Server Error"),
        (
            401,
            {
                "error": {
                    "message": "无效的令牌",
                    "type": "new_api_error",
                    "code": "invalid_api_key",
                }
            },
            AuthError,
            "无效的令牌",
        ),
        (
            403,
            {"error": {"message": "该令牌额度已用尽", "type": "new_api_error", "code": None}},
            QuotaError,
            "额度",
        ),
        (
            404,
            {"error": {"message": "Invalid URL (POST /ideogram/web/generate)", "type": "x"}},
            BadRequestError,
            "Invalid URL",
        ),
    ],
)
def test_web_calls_map_error_bodies_like_the_official_ones(status, body, error_class, message):
    for call in (
        lambda client: ideogram.web_generate(client, "x"),
        lambda client: ideogram.web_remix(client, PNG, "x"),
        lambda client: ideogram.web_upscale(client, PNG),
        lambda client: ideogram.web_describe(client, PNG),
        lambda client: ideogram.web_task(client, "req-1"),
    ):
        with pytest.raises(error_class) as raised:
            run(call(Relay(status, body).client()))
        assert raised.value.status == status and message in raised.value.message


def test_the_task_query_posts_the_request_id_and_reads_the_finished_images():
    relay = Relay(200, {"sampling_requests": [sampling()]})
    task = run(ideogram.web_task(relay.client(), "req-1"))
    sent = relay.requests[-1]
    assert sent.method == "POST" and sent.url.path == "/ideogram/task-request"
    assert json.loads(sent.content) == {"request_id": "req-1"}
    assert task is not None and task.completed and task.progress == 100 and task.started
    assert task.prompt == "A lighthouse"
    first, second = task.result.images
    assert (first.url, first.seed, first.resolution) == (
        "https://ideogram.ai/web/a.png",
        77,
        "1312x736",
    )
    assert second.seed == 78  # a response's own seed wins over the request's
    assert first.prompt == "A lighthouse"  # no rewrite sent: the prompt as typed
    assert task.unlinked == 0 and task.result.withheld == 0


@pytest.mark.parametrize(
    ("fields", "progress", "started", "completed"),
    [
        ({"completion_percentage": 0, "has_started": False}, 0, False, False),
        ({"completion_percentage": 40, "has_started": True}, 40, True, False),
        ({"completion_percentage": "45%"}, 45, True, False),
        ({"completion_percentage": "60"}, 60, True, False),
        ({"completion_percentage": 0.4}, 40, True, False),  # a fraction
        ({"completion_percentage": 1}, 1, True, False),  # a percentage: 1 %, not done
        ({"completion_percentage": None, "has_started": "true"}, 0, True, False),
        ({"completion_percentage": 100, "is_completed": None}, 100, True, True),
        ({"completion_percentage": 70, "is_completed": "true"}, 100, True, True),
    ],
)
def test_the_task_query_reads_progress_leniently(fields, progress, started, completed):
    base = sampling(is_completed=False, has_started=False, responses=[])
    task = ideogram.parse_task({"sampling_requests": [{**base, **fields}]}, request_id="req-1")
    assert task is not None
    assert (task.progress, task.started, task.completed) == (progress, started, completed)


def test_the_task_query_is_read_inside_data_and_picks_the_request_asked_for():
    other = sampling(request_id="req-0", user_prompt="Another")
    payload = {"code": 200, "data": {"sampling_requests": ["junk", other, sampling()]}}
    task = ideogram.parse_task(payload, request_id="req-1")
    assert task is not None and task.request_id == "req-1" and task.prompt == "A lighthouse"
    # Ids as numbers; an id not listed falls back to the only request there is.
    task = ideogram.parse_task({"sampling_requests": [sampling(request_id=9)]}, request_id="9")
    assert task is not None and task.request_id == "9"


def test_responses_without_a_link_are_skipped_and_unsafe_ones_withheld():
    responses = [
        {"response_id": "a"},  # no link yet (or ever): not kept
        {"response_id": "b", "url": "https://x.test/b.png", "is_image_safe": False},
        {"response_id": "c", "url": " https://x.test/c.png "},
        "junk",
    ]
    task = ideogram.parse_task({"sampling_requests": [sampling(responses=responses)]})
    assert task is not None
    assert [image.url for image in task.result.images] == ["https://x.test/c.png"]
    assert task.unlinked == 1 and task.result.withheld == 1

    empty = ideogram.parse_task({"sampling_requests": [sampling(responses=None)]})
    assert empty is not None and empty.completed and empty.result.images == ()


def test_an_empty_or_missing_task_list():
    assert ideogram.parse_task({"sampling_requests": []}, request_id="req-1") is None
    with pytest.raises(ProtocolError, match="no sampling_requests"):
        ideogram.parse_task({"data": None})
    with pytest.raises(BadRequestError, match="not found"):
        ideogram.parse_task({"detail": "Request not found"})


def test_a_web_describe_finds_its_texts_leniently():
    described = sampling(
        responses=[{"response_id": "a", "description": " A fox "}, {"text": "A red fox"}]
    )
    task = ideogram.parse_task({"sampling_requests": [described]})
    assert task is not None and task.descriptions == ("A fox", "A red fox")
    assert task.result.images == () and task.unlinked == 0

    in_request = sampling(responses=[], descriptions=[{"text": "In the request"}])
    task = ideogram.parse_task({"sampling_requests": [in_request]})
    assert task is not None and task.descriptions == ("In the request",)
    at_top = {"sampling_requests": [sampling(responses=[])], "descriptions": ["At the top"]}
    task = ideogram.parse_task(at_top)
    assert task is not None and task.descriptions == ("At the top",)


# --- the kind in the web format -------------------------------------------------------------


def test_the_kind_submits_in_the_format_the_option_names():
    kind = ideogram_kind.IdeogramKind()
    params = {**FIELDS, "prompt": "A lighthouse"}
    relay = Relay(200, {"request_id": "req-1"})
    outcome = run(kind.submit(relay.client("web"), params))
    assert relay.requests[-1].url.path == "/ideogram/web/generate"
    assert outcome.upstream_id == "web:generate:req-1" and not outcome.done
    assert outcome.progress == 0

    relay = Relay(200, reply(image()))
    outcome = run(kind.submit(relay.client(), params))
    assert relay.requests[-1].url.path == "/ideogram/generate"
    assert outcome.done and not outcome.upstream_id
    # A web relay that answers at once finishes the job in submit, like the official format.
    outcome = run(kind.submit(Relay(200, reply(image())).client("web"), params))
    assert outcome.done and len(outcome.files) == 1


def test_the_kind_polls_a_web_request_until_it_is_done():
    kind = ideogram_kind.IdeogramKind()
    running = sampling(is_completed=False, completion_percentage=40, responses=[])
    # The option no longer matters: the upstream id says the request is a web one.
    outcome = run(
        kind.poll(Relay(200, {"sampling_requests": [running]}).client(), "web:generate:req-1")
    )
    assert outcome.progress == 40 and not outcome.done and not outcome.failure

    done = sampling(
        responses=[
            {"response_id": "a", "url": "https://x.test/a.png", "prompt": "A lighthouse, at dusk"}
        ]
    )
    outcome = run(kind.poll(Relay(200, {"sampling_requests": [done]}).client(), "web:remix:req-1"))
    assert outcome.done and [file.url for file in outcome.files] == ["https://x.test/a.png"]
    assert outcome.result["mode"] == "remix" and outcome.result["seed"] == 77
    assert outcome.result["revised_prompt"] == "A lighthouse, at dusk"


@pytest.mark.parametrize(
    ("upstream_id", "body", "failure"),
    [
        ("web:generate:req-1", {"sampling_requests": []}, "no longer knows this Ideogram request"),
        (
            "web:generate:req-1",
            {
                "sampling_requests": [
                    sampling(responses=[{"response_id": "a"}, {"response_id": "b"}])
                ]
            },
            "sent no link to any of its 2 images",
        ),
        (
            "web:upscale:req-1",
            {
                "sampling_requests": [
                    sampling(responses=[{"response_id": "a", "is_image_safe": False}])
                ]
            },
            "did not pass Ideogram's safety check",
        ),
        ("web:generate:req-1", {"sampling_requests": [sampling(responses=[])]}, "sent no image"),
        ("web:describe:req-1", {"sampling_requests": [sampling(responses=[])]}, "no description"),
    ],
)
def test_a_finished_web_request_without_a_result_fails_and_says_why(upstream_id, body, failure):
    outcome = run(ideogram_kind.IdeogramKind().poll(Relay(200, body).client(), upstream_id))
    assert not outcome.done and failure in outcome.failure


def test_a_web_describe_poll_keeps_the_texts():
    body = {
        "sampling_requests": [sampling(responses=[{"response_id": "a", "description": "A fox"}])]
    }
    outcome = run(ideogram_kind.IdeogramKind().poll(Relay(200, body).client(), "web:describe:r"))
    assert outcome.done and outcome.result == {"mode": "describe", "descriptions": ["A fox"]}
    assert outcome.files == []


@pytest.mark.parametrize(
    "upstream_id", ["", "req-1", "web:req-1", "web:paint:req-1", "b:generate:r"]
)
def test_a_reference_that_is_not_a_web_request_is_refused(upstream_id):
    with pytest.raises(BadRequestError, match="not an Ideogram request reference"):
        ideogram_kind.WebRef.parse(upstream_id)
    assert ideogram_kind.WebRef.parse("web:describe:a:b") == ideogram_kind.WebRef("describe", "a:b")
