"""The Flux and Stability families against a fake transport: the bodies each endpoint is sent,
replies read leniently (statuses, progress, base64 images, raw image replies, finish reasons),
the providers' own error bodies mapped to our error types; and the two forms' per-model rules
and outcomes."""

import asyncio
import base64
import io
import json

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from PIL import Image

from media_jobs.kinds import flux as flux_kind
from media_jobs.kinds import stability as stability_kind
from studio.simulator.web import parse_multipart
from studio.upstream import flux, stability
from studio.upstream.client import RelayClient, RelayCredentials
from studio.upstream.errors import (
    AuthError,
    BadRequestError,
    ProtocolError,
    QuotaError,
    UnavailableError,
)

KEY = "sk-testSecret0123456789abcdEFGH"
BASE_URL = "https://relay.test"


def picture_bytes(fmt: str = "PNG", size: tuple[int, int] = (96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 90)).save(buffer, fmt)
    return buffer.getvalue()


PNG = picture_bytes("PNG")
JPEG = picture_bytes("JPEG")


class Relay:
    """Answers every request with the next reply (the last one repeats); records requests.
    A reply is (status, JSON body) or an httpx.Response."""

    def __init__(self, *replies: object) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, httpx.Response):
            return reply
        assert isinstance(reply, tuple)
        status, body = reply
        return httpx.Response(status, json=body)

    def client(self) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return RelayClient(RelayCredentials(BASE_URL, KEY), http_client=http)

    def last_json(self) -> dict:
        return json.loads(self.requests[-1].content)

    def multipart(self) -> tuple[dict[str, list[str]], dict]:
        request = self.requests[-1]
        return parse_multipart(request.headers["content-type"], request.content)


def run(coro):
    return asyncio.run(coro)


# --- Flux: calls ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path", "extra"),
    [
        ("flux-pro-1.1", "/flux/v1/flux-pro-1.1", {}),
        ("flux-pro", "/flux/v1/flux-pro", {"steps": 20, "guidance": 3.5, "interval": 1.5}),
        ("flux-dev", "/flux/v1/flux-dev", {"steps": 20, "guidance": 3.5}),
    ],
)
def test_a_flux_submit_sends_each_model_only_the_fields_it_takes(model, path, extra):
    relay = Relay((200, {"id": "task-1", "polling_url": "https://api.us1.bfl.ai/v1/get_result"}))
    submission = run(
        flux.generate(
            relay.client(),
            model,
            "a fox in the snow",
            width=1440,
            height=256,
            prompt_upsampling=False,
            seed=0,
            safety_tolerance=6,
            output_format="png",
            steps=20,
            guidance=3.5,
            interval=1.5,
        )
    )
    assert submission == flux.FluxSubmission("task-1", "https://api.us1.bfl.ai/v1/get_result")
    request = relay.requests[0]
    assert request.method == "POST" and request.url.path == path
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert relay.last_json() == {
        "prompt": "a fox in the snow",
        "width": 1440,
        "height": 256,
        "prompt_upsampling": False,
        "seed": 0,
        "safety_tolerance": 6,
        "output_format": "png",
        **extra,
    }


def test_flux_leaves_unset_fields_to_bfl_and_sends_an_image_as_raw_base64():
    relay = Relay((200, {"id": 42}))
    submission = run(flux.generate(relay.client(), "flux-dev", "x", image_prompt=PNG))
    assert submission.id == "42"  # ids are strings whatever the relay sends
    assert relay.last_json() == {"prompt": "x", "image_prompt": base64.b64encode(PNG).decode()}
    encoded = base64.b64encode(PNG).decode()
    assert flux.image_prompt_value(f"data:image/png;base64,{encoded}") == encoded


def test_an_unknown_flux_model_is_refused_before_any_request():
    relay = Relay((200, {"id": "x"}))
    with pytest.raises(BadRequestError):
        run(flux.generate(relay.client(), "flux-schnell", "x"))
    assert relay.requests == []


def test_a_flux_result_is_polled_with_the_id_in_the_query_string():
    relay = Relay((200, {"id": "a&b", "status": "Pending", "progress": 0.4}))
    result = run(flux.get_result(relay.client(), "a&b"))
    request = relay.requests[0]
    assert request.method == "GET" and request.url.path == "/flux/v1/get_result"
    assert request.url.params["id"] == "a&b" and b"id=a%26b" in request.url.raw_path
    assert result.status == flux.PENDING and result.progress == 40 and not result.finished


def test_a_submit_without_an_id_is_a_protocol_error_unless_it_carries_an_error():
    with pytest.raises(ProtocolError):
        flux.parse_submission({"polling_url": "x"})
    with pytest.raises(BadRequestError) as raised:
        flux.parse_submission({"detail": "Prompt is empty"})
    assert raised.value.message == "Prompt is empty"


# --- Flux: reading results ------------------------------------------------------------------


def test_a_ready_result_carries_the_sample_prompt_and_seed():
    payload = {
        "id": "t1",
        "status": "Ready",
        "result": {
            "sample": "https://delivery.bfl.ai/r/sample.jpeg?se=1",
            "prompt": "a fox, detailed",
            "seed": "42",
            "start_time": 1731467764.24,
            "end_time": 1731467769.30,
            "duration": 5.06,
        },
    }
    result = flux.parse_result(payload)
    assert result.ready and result.finished and not result.moderated
    assert result.sample == "https://delivery.bfl.ai/r/sample.jpeg?se=1"
    assert (result.prompt, result.seed, result.duration) == ("a fox, detailed", 42, 5.06)


@pytest.mark.parametrize(
    ("payload", "status", "details"),
    [
        (
            {"status": "request moderated", "details": {"Moderation Reasons": ["Derivative"]}},
            flux.REQUEST_MODERATED,
            "Moderation Reasons: Derivative",
        ),
        ({"status": "Content Moderated", "result": None}, flux.CONTENT_MODERATED, ""),
        ({"status": "Error", "result": "GPU fell over"}, flux.ERROR, "GPU fell over"),
        ({"status": "Task not found", "result": None}, flux.TASK_NOT_FOUND, ""),
    ],
)
def test_flux_statuses_are_read_in_any_case_with_their_reasons(payload, status, details):
    result = flux.parse_result(payload, task_id="t9")
    assert result.id == "t9" and result.status == status and result.details == details
    assert result.sample == ""


def test_a_result_url_sent_alone_is_accepted():
    result = flux.parse_result({"status": "Ready", "result": "https://cdn.test/s.png"})
    assert result.sample == "https://cdn.test/s.png"


def test_a_reply_without_status_raises_its_error_or_a_protocol_error():
    with pytest.raises(ProtocolError):
        flux.parse_result({"id": "x"})
    with pytest.raises(QuotaError):
        flux.parse_result({"message": "insufficient credits"})


@pytest.mark.parametrize(
    ("status", "body", "error_class", "message"),
    [
        (
            422,
            {"detail": [{"loc": ["body", "width"], "msg": "Input should be a multiple of 32"}]},
            BadRequestError,
            "width: Input should be a multiple of 32",
        ),
        (402, {"detail": "Insufficient credits"}, QuotaError, "Insufficient credits"),
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
        (503, {"detail": "Service busy"}, UnavailableError, "Service busy"),
    ],
)
def test_bfl_and_relay_errors_map_to_our_types(status, body, error_class, message):
    relay = Relay((status, body))
    with pytest.raises(error_class) as raised:
        run(flux.generate(relay.client(), "flux-pro-1.1", "x"))
    assert raised.value.message == message and raised.value.status == status


# --- Flux: the kind -------------------------------------------------------------------------


def test_the_flux_upstream_id_carries_creation_time_and_upsampling():
    value = flux_kind.upstream_id("6f1c-aa", 1_700_000_000.9, upsampled=True)
    assert value == "6f1c-aa@1700000000@upsampled"
    assert flux_kind.split_upstream_id(value) == ("6f1c-aa", 1_700_000_000.0, True)
    assert flux_kind.split_upstream_id("6f1c-aa@1700000000") == ("6f1c-aa", 1.7e9, False)
    assert flux_kind.split_upstream_id("plain-id") == ("plain-id", None, False)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://cdn.test/r/sample.jpeg?se=1&sig=2", "image.jpeg"),
        ("https://cdn.test/r/sample.PNG", "image.png"),
        ("https://cdn.test/r/sample", "image.jpg"),
        ("https://cdn.test/r/sample.exe", "image.jpg"),
    ],
)
def test_the_sample_keeps_its_extension(url, name):
    assert flux_kind.sample_name(url) == name


def test_flux_progress_believes_the_relay_else_estimates_from_age():
    with_progress = flux.FluxResult("t", progress=40)
    assert flux_kind.estimate_progress(with_progress, None, 0.0) == 40
    silent = flux.FluxResult("t")
    young = flux_kind.estimate_progress(silent, 100.0, 101.0)
    old = flux_kind.estimate_progress(silent, 100.0, 400.0)
    assert 1 <= young < old <= 95


def poll(relay: Relay, upstream_id: str):
    return run(flux_kind.FluxKind().poll(relay.client(), upstream_id))


def test_a_task_the_relay_does_not_know_yet_is_pending_then_fails(monkeypatch):
    relay = Relay((200, {"id": "t", "status": "Task not found", "result": None}))
    monkeypatch.setattr(flux_kind.time, "time", lambda: 1000.0)
    assert poll(relay, "t@990").progress == 0 and not poll(relay, "t@990").failure
    late = poll(relay, "t@900")
    assert "Task not found" in late.failure


def test_moderated_and_errored_tasks_fail_with_bfl_reason():
    relay = Relay(
        (200, {"status": "Request Moderated", "details": {"Moderation Reasons": ["NSFW"]}})
    )
    outcome = poll(relay, "t@1")
    assert outcome.failure.startswith("Flux's moderation refused the request.")
    assert "Moderation Reasons: NSFW" in outcome.failure
    relay = Relay((200, {"status": "Error", "details": {"error": "boom"}}))
    assert "status: Error" in poll(relay, "t@1").failure and "boom" in poll(relay, "t@1").failure


def test_a_ready_task_becomes_a_file_and_the_rewrite_shows_only_when_asked():
    body = {
        "status": "Ready",
        "result": {"sample": "https://cdn.test/x/sample.png", "prompt": "rich", "seed": 7},
    }
    outcome = poll(Relay((200, body)), "t@1@upsampled")
    assert outcome.done and outcome.files[0].url == "https://cdn.test/x/sample.png"
    assert outcome.files[0].name == "image.png"
    assert outcome.result["revised_prompt"] == "rich" and outcome.result["seed"] == 7
    assert poll(Relay((200, body)), "t@1").result["revised_prompt"] == ""
    empty = poll(Relay((200, {"status": "Ready", "result": {}})), "t@1")
    assert "sent no image" in empty.failure


FLUX_FORM = {
    "model": "flux-pro-1.1",
    "prompt": "a fox",
    "width": "1024",
    "height": "768",
    "output_format": "jpeg",
    "safety_tolerance": "2",
    "seed": "",
    "steps": "",
    "guidance": "",
    "interval": "",
}


def flux_form(files=None, **fields):
    return flux_kind.FluxForm({**FLUX_FORM, **fields}, MultiValueDict(files or {}))


def test_the_flux_form_accepts_a_plain_request_and_an_image_prompt():
    form = flux_form({"image_prompt": [SimpleUploadedFile("a.bin", PNG, "text/plain")]})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["image_prompt"].content_type == "image/png"
    assert form.cleaned_data["prompt_upsampling"] is False


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"width": "1000"}, "width", "multiple of 32 pixels: try 992 or 1024"),
        ({"height": "1472"}, "height", "less than or equal to 1440"),
        ({"width": "224"}, "width", "greater than or equal to 256"),
        ({"safety_tolerance": "7"}, "safety_tolerance", "less than or equal to 6"),
        ({"steps": "30"}, "steps", "FLUX1.1 [pro] does not take this setting"),
        ({"model": "flux-dev", "interval": "2"}, "interval", "FLUX.1 [dev] does not take"),
        ({"model": "flux-pro", "steps": "51"}, "steps", "less than or equal to 50"),
        ({"model": "flux-dev", "guidance": "1.4"}, "guidance", "greater than or equal to 1.5"),
        ({"prompt": ""}, "prompt", "required"),
    ],
)
def test_the_flux_form_checks_each_model_field(fields, field, message):
    form = flux_form(**fields)
    assert not form.is_valid()
    assert message in " ".join(form.errors[field]), form.errors


def test_flux_pro_takes_all_three_extra_settings():
    form = flux_form(model="flux-pro", steps="50", guidance="5", interval="4")
    assert form.is_valid(), form.errors


# --- Stability: v2beta ----------------------------------------------------------------------


def v2_reply(content: bytes = PNG, reason: str = "SUCCESS", seed: object = 343940597):
    return (
        200,
        {"image": base64.b64encode(content).decode(), "finish_reason": reason, "seed": seed},
    )


def test_stable_image_core_sends_multipart_fields_and_asks_for_json():
    relay = Relay(v2_reply())
    result = run(
        stability.generate(
            relay.client(),
            "core",
            "a lighthouse",
            negative_prompt="fog",
            aspect_ratio="16:9",
            seed=0,
            output_format="png",
            style_preset="anime",
            model="sd3-large",  # not a Core field: left out
        )
    )
    request = relay.requests[0]
    assert request.url.path == "/v2beta/stable-image/generate/core"
    assert request.headers["Accept"] == "application/json"
    fields, files = relay.multipart()
    assert fields == {
        "prompt": ["a lighthouse"],
        "negative_prompt": ["fog"],
        "aspect_ratio": ["16:9"],
        "seed": ["0"],
        "output_format": ["png"],
        "style_preset": ["anime"],
    }
    assert files == {}
    (image,) = result.images
    assert image.content == PNG and image.mime == "image/png" and image.seed == 343940597
    assert result.filtered == 0


def test_sd3_image_to_image_sends_the_image_mode_and_strength_without_aspect_ratio():
    relay = Relay(v2_reply(JPEG))
    result = run(
        stability.generate(
            relay.client(),
            "sd3",
            "make it autumn",
            aspect_ratio="16:9",
            output_format="png",
            style_preset="anime",  # not an SD3 field
            model="sd3.5-large-turbo",
            image=("leaf.png", PNG, "image/png"),
            strength=0.35,
        )
    )
    fields, files = relay.multipart()
    assert fields == {
        "prompt": ["make it autumn"],
        "output_format": ["png"],
        "model": ["sd3.5-large-turbo"],
        "strength": ["0.35"],
        "mode": ["image-to-image"],
    }
    assert files["image"].data == PNG and files["image"].filename == "leaf.png"
    # The bytes say JPEG, whatever was asked: the bytes win.
    assert result.images[0].mime == "image/jpeg"


def test_core_takes_no_input_image_and_unknown_endpoints_are_refused():
    relay = Relay(v2_reply())
    with pytest.raises(BadRequestError):
        run(stability.generate(relay.client(), "core", "x", image=("a.png", PNG, "image/png")))
    with pytest.raises(BadRequestError):
        run(stability.generate(relay.client(), "sd4", "x"))
    assert relay.requests == []


def test_a_raw_image_reply_is_read_with_its_headers():
    raw = httpx.Response(
        200,
        content=JPEG,
        headers={"content-type": "image/jpeg", "finish-reason": "SUCCESS", "seed": "12"},
    )
    result = run(stability.generate(Relay(raw).client(), "ultra", "x"))
    assert result.images == (stability.StabilityImage(JPEG, "image/jpeg", 12, "SUCCESS"),)


def test_a_filtered_v2_image_is_counted_not_kept():
    result = run(
        stability.generate(Relay(v2_reply(reason="CONTENT_FILTERED")).client(), "sd3", "x")
    )
    assert result.images == () and result.filtered == 1


def test_a_v2_reply_without_an_image_raises_its_error_or_a_protocol_error():
    with pytest.raises(ProtocolError):
        run(stability.generate(Relay((200, {"seed": 1})).client(), "core", "x"))
    body = {"id": "e1", "name": "content_moderation", "errors": ["flagged"]}
    with pytest.raises(BadRequestError) as raised:
        run(stability.generate(Relay((200, body)).client(), "core", "x"))
    assert raised.value.relay_code == "content_moderation"
    with pytest.raises(ProtocolError):
        run(stability.generate(Relay((200, {"image": "%%%not base64"})).client(), "core", "x"))


# --- Stability: v1 --------------------------------------------------------------------------


def test_sdxl_sends_weighted_prompts_and_reads_every_artifact():
    artifacts = [
        {"base64": base64.b64encode(PNG).decode(), "seed": 1, "finishReason": "SUCCESS"},
        {"base64": base64.b64encode(PNG).decode(), "seed": 2, "finishReason": "CONTENT_FILTERED"},
        {"base64": "", "seed": 3, "finishReason": "ERROR"},
        {"base64": base64.b64encode(JPEG).decode(), "seed": "4"},  # no reason: success
        "junk",
    ]
    relay = Relay((200, {"artifacts": artifacts}))
    result = run(
        stability.text_to_image(
            relay.client(),
            "stable-diffusion-xl-1024-v1-0",
            [("a castle", 1.0), ("blurry", -1.0)],
            width=1344,
            height=768,
            cfg_scale=7.0,
            sampler="K_DPMPP_2M",
            samples=4,
            seed=0,
            steps=30,
            style_preset="",
        )
    )
    request = relay.requests[0]
    assert request.url.path == "/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image"
    assert request.headers["Accept"] == "application/json"
    assert relay.last_json() == {
        "text_prompts": [{"text": "a castle", "weight": 1.0}, {"text": "blurry", "weight": -1.0}],
        "width": 1344,
        "height": 768,
        "cfg_scale": 7.0,
        "sampler": "K_DPMPP_2M",
        "samples": 4,
        "seed": 0,
        "steps": 30,
    }
    assert [image.seed for image in result.images] == [1, 4]
    assert [image.mime for image in result.images] == ["image/png", "image/jpeg"]
    assert (result.filtered, result.errored) == (1, 1)


def test_an_unknown_engine_is_refused_before_any_request():
    relay = Relay((200, {"artifacts": []}))
    with pytest.raises(BadRequestError):
        run(stability.text_to_image(relay.client(), "stable-diffusion-v9", [("x", 1.0)]))
    assert relay.requests == []


@pytest.mark.parametrize(
    ("status", "body", "error_class", "message", "relay_code"),
    [
        (
            403,
            {"id": "a", "name": "content_moderation", "errors": ["Your request was flagged"]},
            BadRequestError,
            "Your request was flagged",
            "content_moderation",
        ),
        (
            402,
            {"id": "a", "name": "payment_required", "errors": ["You lack sufficient credits"]},
            QuotaError,
            "You lack sufficient credits",
            "payment_required",
        ),
        (
            400,
            {"id": "a", "name": "bad_request", "errors": ["prompt: cannot be empty", "seed: x"]},
            BadRequestError,
            "prompt: cannot be empty; seed: x",
            "bad_request",
        ),
        (
            400,
            {"id": "a", "name": "invalid_prompts", "message": "contains filtered words."},
            BadRequestError,
            "contains filtered words.",
            "invalid_prompts",
        ),
        (
            403,
            {"id": "a", "name": "insufficient_balance", "message": "not enough balance"},
            QuotaError,
            "not enough balance",
            "insufficient_balance",
        ),
        (
            500,
            {"id": "a", "name": "internal_error", "errors": ["unexpected"]},
            UnavailableError,
            "unexpected",
            "internal_error",
        ),
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
            "invalid_api_key",
        ),
    ],
)
def test_stability_and_relay_errors_map_to_our_types(
    status, body, error_class, message, relay_code
):
    for call in (
        stability.generate(Relay((status, body)).client(), "ultra", "x"),
        stability.text_to_image(Relay((status, body)).client(), stability.SD16_ENGINE, [("x", 1)]),
    ):
        with pytest.raises(error_class) as raised:
            run(call)
        error = raised.value
        assert type(error) is error_class
        assert (error.message, error.status, error.relay_code) == (message, status, relay_code)


# --- Stability: the kind --------------------------------------------------------------------


def test_several_images_keep_the_good_ones_and_count_the_filtered():
    result = stability.StabilityResult(
        (
            stability.StabilityImage(PNG, "image/png", 5),
            stability.StabilityImage(JPEG, "image/jpeg", 6),
        ),
        filtered=2,
    )
    outcome = stability_kind.images_outcome(result, "sdxl")
    assert outcome.done and [file.name for file in outcome.files] == ["image-1.png", "image-2.jpg"]
    assert [file.mime for file in outcome.files] == ["image/png", "image/jpeg"]
    assert outcome.files[0].content == PNG
    assert outcome.result == {
        "mode": "sdxl",
        "seed": 5,
        "seeds": [5, 6],
        "filtered": 2,
        "errored": 0,
    }


def test_no_image_left_is_a_failure_that_says_why():
    one = stability_kind.images_outcome(stability.StabilityResult((), filtered=1), "core")
    assert one.failure == "Stability's content filter blocked the image (CONTENT_FILTERED)."
    three = stability_kind.images_outcome(stability.StabilityResult((), filtered=3), "sdxl")
    assert "blocked all 3 images" in three.failure
    errored = stability_kind.images_outcome(stability.StabilityResult((), errored=1), "sdxl")
    assert "finish reason ERROR" in errored.failure


STABILITY_FORM = {
    "mode": "core",
    "prompt": "a lighthouse",
    "negative_prompt": "",
    "strength": "0.6",
    "model": "sd3.5-large",
    "aspect_ratio": "1:1",
    "output_format": "png",
    "style_preset": "",
    "width": "1024",
    "height": "1024",
    "samples": "1",
    "cfg_scale": "7",
    "steps": "30",
    "sampler": "",
    "clip_guidance_preset": "",
    "seed": "",
}


def stability_form(files=None, **fields):
    return stability_kind.StabilityForm({**STABILITY_FORM, **fields}, MultiValueDict(files or {}))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"mode": "ultra", "output_format": "webp"},
        {"mode": "sd3", "model": "sd3-medium", "output_format": "jpeg"},
        {
            "mode": "sdxl",
            "width": "1536",
            "height": "640",
            "samples": "10",
            "style_preset": "anime",
        },
        {"mode": "sd1.6", "width": "320", "height": "1536", "sampler": "DDIM"},
        {"mode": "sd1.6", "width": "", "height": ""},
    ],
)
def test_the_stability_form_accepts_each_mode(fields):
    form = stability_form(**fields)
    assert form.is_valid(), form.errors


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"mode": "sd3", "output_format": "webp"}, "output_format", "PNG or JPEG files only"),
        ({"mode": "ultra", "style_preset": "anime"}, "style_preset", "takes no style preset"),
        (
            {"mode": "sd3", "model": "sd3-large-turbo", "negative_prompt": "fog"},
            "negative_prompt",
            "takes no negative prompt",
        ),
        ({"mode": "sdxl", "width": "1024", "height": "768"}, "width", "only at these sizes"),
        ({"mode": "sd1.6", "width": "1000"}, "width", "multiple of 64 from 320 to 1536"),
        ({"mode": "sd1.6", "height": ""}, "width", "Give both the width and the height"),
        ({"mode": "sdxl", "samples": "11"}, "samples", "less than or equal to 10"),
        ({"mode": "sdxl", "prompt": "x" * 2001}, "prompt", "up to 2,000 characters"),
        ({"prompt": ""}, "prompt", "required"),
    ],
)
def test_the_stability_form_checks_each_mode(fields, field, message):
    form = stability_form(**fields)
    assert not form.is_valid()
    assert message in " ".join(form.errors[field]), form.errors


def test_an_image_is_checked_and_kept_only_for_ultra_and_sd3():
    junk = {"image": [SimpleUploadedFile("a.png", b"not an image")]}
    core = stability_form(junk)
    assert core.is_valid(), core.errors
    assert core.cleaned_data["image"] is None
    ultra = stability_form(junk, mode="ultra")
    assert not ultra.is_valid() and "not a PNG, JPEG or WebP" in str(ultra.errors["image"])
    tiny = {"image": [SimpleUploadedFile("t.png", picture_bytes(size=(40, 200)))]}
    assert "at least 64" in str(stability_form(tiny, mode="sd3").errors["image"])
    good = {"image": [SimpleUploadedFile("g.png", PNG)]}
    no_strength = stability_form(good, mode="sd3", strength="")
    assert "how much of the image to change" in str(no_strength.errors["strength"])
    form = stability_form(good, mode="sd3")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["image"].content_type == "image/png"
