"""Luma, CogVideoX and Kling image generation against a fake transport: request bodies, the
paths asked, lenient reading of replies, each family's error shape mapped to Studio's errors,
progress estimates, and the forms' rules."""

import asyncio
import base64
import io
import json

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from PIL import Image

from media_jobs.kinds import cogvideox as cogvideox_kind
from media_jobs.kinds import kling as kling_kind
from media_jobs.kinds import luma as luma_kind
from studio.upstream import cogvideox, kling, luma
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


class Relay:
    """Answers every request with the next (status, body) of `replies` (the last one repeats);
    a body that is bytes is sent as it is, anything else as JSON."""

    def __init__(self, *replies: tuple[int, object]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        status, body = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(body, bytes):
            return httpx.Response(status, content=body, headers={"Content-Type": "text/html"})
        return httpx.Response(status, json=body)

    def client(self) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return RelayClient(RelayCredentials(BASE_URL, KEY), http_client=http)

    def last_json(self) -> dict:
        return json.loads(self.requests[-1].content)


def run(coro):
    return asyncio.run(coro)


def png(size=(640, 360)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, "PNG")
    return buffer.getvalue()


# --- Luma -----------------------------------------------------------------------------------

GENERATION = {
    "id": "fc7fb008-5fe6-4fa4-9cde-3e1c2d4b3a2f",
    "prompt": "cat dance",
    "state": "pending",
    "created_at": "2024-07-22T12:47:28.55Z",
    "video": None,
    "liked": None,
    "estimate_wait_seconds": None,
    "thumbnail": None,
    "last_frame": None,
}


def test_generate_sends_luma_field_names_and_only_what_was_given():
    relay = Relay((201, GENERATION))
    generation = run(
        luma.generate(
            relay.client(),
            "cat dance",
            aspect_ratio="9:16",
            expand_prompt=False,
            loop=None,
            image_url="data:image/png;base64,AAAA",
            image_end_url="",
        )
    )
    assert generation.id == GENERATION["id"] and generation.state == "pending"
    assert not generation.ready and not generation.failed
    request = relay.requests[0]
    assert request.method == "POST" and request.url.path == "/luma/generations"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    # expand_prompt False is a value; unset and empty ones are left to Luma's defaults
    assert relay.last_json() == {
        "user_prompt": "cat dance",
        "aspect_ratio": "9:16",
        "expand_prompt": False,
        "image_url": "data:image/png;base64,AAAA",
    }


def test_extend_posts_the_same_body_to_the_generation_it_continues():
    relay = Relay((200, [{**GENERATION, "id": "new-one"}]))  # some upstreams answer a list
    generation = run(luma.extend(relay.client(), "fc7fb008", "and then it jumps", loop=True))
    assert generation.id == "new-one"
    assert relay.requests[0].url.path == "/luma/generations/fc7fb008/extend"
    assert relay.last_json() == {"user_prompt": "and then it jumps", "loop": True}


def test_get_generation_asks_for_the_generation_by_id():
    relay = Relay((200, {**GENERATION, "state": "dreaming"}))
    generation = run(luma.get_generation(relay.client(), "fc7fb008"))
    assert relay.requests[0].method == "GET"
    assert relay.requests[0].url.path == "/luma/generations/fc7fb008"
    assert generation.state == "dreaming"


def test_a_completed_generation_is_ready_only_with_its_download_url():
    video = {"url": "https://cdn.test/v.mp4", "width": 1360, "height": 752, "thumbnail": None}
    early = luma.parse_generation({**GENERATION, "state": "completed", "video": video})
    assert early.completed and not early.ready
    late = luma.parse_generation(
        {
            **GENERATION,
            "state": "COMPLETED",
            "video": {**video, "download_url": "https://cdn.test/d.mp4", "thumbnail": "t.jpg"},
            "thumbnail": {"url": "https://cdn.test/thumb.jpg", "width": 1360, "height": 752},
        }
    )
    assert late.ready and late.video is not None
    assert late.video.download_url == "https://cdn.test/d.mp4"
    assert (late.video.width, late.video.height) == (1360, 752)
    assert late.thumbnail_url == "https://cdn.test/thumb.jpg"  # the generation's own first
    only_video_thumbnail = luma.parse_generation(
        {**GENERATION, "video": {**video, "thumbnail": "https://cdn.test/vt.jpg"}}
    )
    assert only_video_thumbnail.thumbnail_url == "https://cdn.test/vt.jpg"


def test_a_failed_generation_keeps_luma_reason():
    generation = luma.parse_generation(
        {**GENERATION, "state": "failed", "failure_reason": "The prompt could not be rendered"}
    )
    assert generation.failed and generation.failure == "The prompt could not be rendered"


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2024-07-22T12:47:28.55Z", 1721652448.55),
        ("2024-07-22T12:47:28+00:00", 1721652448.0),
        ("2024-07-22T12:47:28", None),  # no zone: no guess
        ("yesterday", None),
        ("", None),
    ],
)
def test_luma_creation_times_are_read_as_iso_8601(created_at, expected):
    generation = luma.LumaGeneration("g", created_at=created_at)
    assert generation.created_timestamp() == expected


def test_luma_progress_is_estimated_from_state_and_age():
    created = "2024-07-22T12:47:28Z"
    start = 1721652448.0
    waiting = luma.LumaGeneration("g", state="queued", created_at=created)
    assert luma_kind.estimate_progress(waiting, now=start + 60) == 0
    working = luma.LumaGeneration("g", state="processing", created_at=created)
    early = luma_kind.estimate_progress(working, now=start + 5)
    later = luma_kind.estimate_progress(working, now=start + 100)
    assert 5 <= early < later <= 95
    assert luma_kind.estimate_progress(working, now=start + 10_000) == 95
    no_link = luma.LumaGeneration("g", state="completed", video=luma.LumaVideo(url="u"))
    assert luma_kind.estimate_progress(no_link) == 99


@pytest.mark.parametrize(
    ("status", "body", "error_class", "words"),
    [
        (
            422,
            {"detail": [{"loc": ["body", "user_prompt"], "msg": "field required"}]},
            BadRequestError,
            "user_prompt: field required",
        ),
        (400, {"detail": "Your prompt was flagged"}, BadRequestError, "Your prompt was flagged"),
        (402, {"detail": "Insufficient credits"}, QuotaError, "Insufficient credits"),
        (404, {"detail": "Generation not found"}, BadRequestError, "Generation not found"),
        (
            403,
            {"error": {"message": "该令牌额度已用尽", "type": "new_api_error"}},
            QuotaError,
            "该令牌额度已用尽",
        ),
        (
            503,
            {"error": {"message": "no available channel for model luma", "type": "x"}},
            UnavailableError,
            "no available channel",
        ),
        # an error object inside a 200 reply is an error all the same
        (
            200,
            {"error": {"message": "bad upstream answer", "type": "upstream_error"}},
            BadRequestError,
            "bad upstream",
        ),
    ],
)
def test_luma_errors_become_upstream_errors(status, body, error_class, words):
    with pytest.raises(error_class) as raised:
        run(luma.generate(Relay((status, body)).client(), "x"))
    assert words in raised.value.message


def test_unreadable_luma_replies_are_protocol_errors():
    with pytest.raises(ProtocolError):
        run(luma.get_generation(Relay((200, b"<html>oops</html>")).client(), "g"))
    with pytest.raises(ProtocolError):
        run(luma.generate(Relay((200, {"state": "pending"})).client(), "x"))  # no id
    with pytest.raises(ProtocolError):
        run(luma.get_generation(Relay((200, ["nothing"])).client(), "g"))


def test_luma_data_uri():
    assert luma.data_uri(b"\x89PNG", "image/png") == "data:image/png;base64,iVBORw=="


def picture_upload(name="frame.png", size=(640, 360), image_format="PNG") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


LUMA_FIELDS = {"mode": "generate", "prompt": "a cat dancing", "aspect_ratio": "16:9"}


def luma_form(files=None, **fields) -> luma_kind.LumaForm:
    return luma_kind.LumaForm({**LUMA_FIELDS, **fields}, MultiValueDict(files or {}))


def test_the_luma_form_checks_frames_and_what_an_extension_needs():
    form = luma_form(
        {"image": [picture_upload()], "image_end": [picture_upload("end.jpg", image_format="JPEG")]}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["image"].content_type == "image/png"
    assert form.cleaned_data["image_end"].content_type == "image/jpeg"
    assert form.cleaned_data["generation_id"] == ""

    bad = luma_form({"image": [SimpleUploadedFile("a.gif", b"GIF89a nonsense")]})
    assert not bad.is_valid() and "a.gif is not a PNG, JPEG or WebP image." in bad.errors["image"]

    extend = luma_form({"image": [picture_upload()]}, mode="extend", generation_id=" fc7f-b008 ")
    assert extend.is_valid(), extend.errors
    assert extend.cleaned_data["generation_id"] == "fc7f-b008"
    assert extend.cleaned_data["image"] is None  # an extension starts from the video's end

    missing = luma_form(mode="extend")
    assert not missing.is_valid() and "Give the id" in missing.errors["generation_id"][0]
    odd = luma_form(mode="extend", generation_id="../../etc")
    assert not odd.is_valid() and "only letters" in odd.errors["generation_id"][0]
    no_prompt = luma_form(prompt="")
    assert not no_prompt.is_valid() and "Write a prompt" in no_prompt.errors["prompt"][0]


def test_luma_offers_extend_only_on_a_finished_job():
    class FakeJob:
        id = "7c1f6b8e-0000-4000-8000-000000000000"
        upstream_id = "fc7fb008"
        status = "running"

    job = FakeJob()
    kind = luma_kind.LumaKind()
    assert kind.actions(job) == []
    job.status = "succeeded"
    (action,) = kind.actions(job)
    assert action["custom_id"] == "luma::extend" and action["label"] == "Extend"
    assert action["url"] == f"/jobs/{job.id}/action/"


# --- CogVideoX ------------------------------------------------------------------------------

SUBMITTED = {"id": "8012-98765432101234567", "request_id": "r1", "model": "cogvideox-flash"}
SUBMITTED |= {"task_status": "PROCESSING"}


@pytest.mark.parametrize(
    ("model", "sent_options"),
    [
        ("cogvideox", {}),
        ("cogvideox-flash", {"with_audio": True, "size": "1920x1080", "fps": 60}),
        (
            "cogvideox-3",
            {"quality": "quality", "with_audio": True, "size": "1920x1080", "fps": 60},
        ),
    ],
)
def test_cogvideox_sends_only_the_options_the_model_takes(model, sent_options):
    relay = Relay((200, SUBMITTED))
    task = run(
        cogvideox.generate(
            relay.client(),
            model,
            prompt="a kite over the sea",
            image_url="data:image/png;base64,AAAA",
            quality="quality",
            with_audio=True,
            size="1920x1080",
            fps=60,
        )
    )
    assert task.id == "8012-98765432101234567" and task.status == "PROCESSING"
    assert not task.finished
    request = relay.requests[0]
    assert request.method == "POST" and request.url.path == "/cogvideox/v4/videos/generations"
    assert relay.last_json() == {
        "model": model,
        "prompt": "a kite over the sea",
        "image_url": "data:image/png;base64,AAAA",
        **sent_options,
    }


def test_cogvideox_results_are_read_leniently():
    relay = Relay(
        (
            200,
            {
                "model": "cogvideox",
                "request_id": "r1",
                "task_status": "success",
                "video_result": [
                    {"url": "https://cdn.test/v.mp4", "cover_image_url": "https://cdn.test/c.png"},
                    {"url": ""},
                    "https://cdn.test/second.mp4",
                ],
            },
        )
    )
    task = run(cogvideox.get_result(relay.client(), "8012-9876"))
    assert relay.requests[0].url.path == "/cogvideox/v4/async-result/8012-9876"
    assert task.id == "8012-9876" and task.succeeded and task.finished
    assert task.videos == (
        cogvideox.CogVideo("https://cdn.test/v.mp4", "https://cdn.test/c.png"),
        cogvideox.CogVideo("https://cdn.test/second.mp4"),
    )
    processing = cogvideox.parse_task({"task_status": "PROCESSING"}, task_id="t")
    assert processing.id == "t" and not processing.finished and processing.videos == ()


def test_a_failed_cogvideox_task_keeps_its_reason_if_given():
    failed = cogvideox.parse_task(
        {"task_status": "FAIL", "error": {"code": "1301", "message": "不安全或敏感内容"}}
    )
    assert failed.failed and failed.failure == "不安全或敏感内容 (1301)"
    assert cogvideox.parse_task({"task_status": "FAIL"}).failure == ""
    # FAIL with an error object in a 200 reply is a task result, not a refused request
    relay = Relay((200, {"task_status": "FAIL", "error": {"code": "500", "message": "失败"}}))
    assert run(cogvideox.get_result(relay.client(), "t")).failure == "失败 (500)"


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (429, "1113", QuotaError),  # account in arrears, sent with 429: not a reason to retry
        (400, "1301", BadRequestError),  # unsafe content
        (400, "1214", BadRequestError),
        (400, "1211", BadRequestError),
        (429, "1302", RateLimitedError),
        (429, "1303", RateLimitedError),
        (429, "1304", QuotaError),  # daily limit
        (401, "1002", AuthError),
        (403, "1112", AuthError),
        (500, "500", UnavailableError),
        (200, "1301", BadRequestError),  # the same body inside a 200 reply
    ],
)
def test_zhipu_codes_decide_the_error_class(status, code, error_class):
    relay = Relay((status, {"error": {"code": code, "message": "智谱的说明"}}))
    with pytest.raises(error_class) as raised:
        run(cogvideox.generate(relay.client(), "cogvideox", prompt="x"))
    assert type(raised.value) is error_class
    assert raised.value.message == "智谱的说明" and raised.value.relay_code == code


def test_the_relay_own_errors_keep_their_class_on_cogvideox_paths():
    relay = Relay((429, {"error": {"message": "当前分组上游负载已饱和", "type": "new_api_error"}}))
    with pytest.raises(RateLimitedError):
        run(cogvideox.get_result(relay.client(), "t"))
    relay = Relay((403, {"error": {"message": "额度不足", "code": "insufficient_quota"}}))
    with pytest.raises(QuotaError):
        run(cogvideox.get_result(relay.client(), "t"))


def test_unreadable_cogvideox_replies_are_protocol_errors():
    with pytest.raises(ProtocolError):
        run(cogvideox.get_result(Relay((200, b"<html>gateway</html>")).client(), "t"))
    with pytest.raises(ProtocolError):
        run(cogvideox.generate(Relay((200, {"task_status": "PROCESSING"})).client(), "cogvideox"))


def test_cogvideox_upstream_id_carries_the_creation_time():
    value = cogvideox_kind.upstream_id("8012-9876", 1733851336.9)
    assert value == "8012-9876@1733851336"
    assert cogvideox_kind.split_upstream_id(value) == ("8012-9876", 1733851336.0)
    assert cogvideox_kind.split_upstream_id("8012-9876") == ("8012-9876", None)
    early = cogvideox_kind.estimate_progress(1000.0, now=1001.0)
    later = cogvideox_kind.estimate_progress(1000.0, now=1080.0)
    assert 5 <= early < later <= 95
    assert cogvideox_kind.estimate_progress(None) == 10


COG_FIELDS = {"model": "cogvideox-flash", "prompt": "a kite", "quality": "speed"}


def cog_form(files=None, **fields) -> cogvideox_kind.CogVideoXForm:
    return cogvideox_kind.CogVideoXForm({**COG_FIELDS, **fields}, MultiValueDict(files or {}))


def test_the_cogvideox_form_refuses_options_the_model_does_not_take():
    form = cog_form(with_audio="on", size="1920x1080", fps="60")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["fps"] == 60 and form.cleaned_data["with_audio"] is True

    flash_quality = cog_form(quality="quality")
    assert not flash_quality.is_valid()
    assert "CogVideoX Flash does not take this option" in flash_quality.errors["quality"][0]
    first = cog_form(model="cogvideox", with_audio="on", fps="30")
    assert not first.is_valid()
    assert set(first.errors) == {"with_audio", "fps"}
    assert cog_form(model="cogvideox-3", quality="quality").is_valid()


def test_the_cogvideox_form_wants_a_prompt_or_an_image_of_at_most_5_mb():
    empty = cog_form(prompt="")
    assert not empty.is_valid() and "prompt, upload an image" in empty.errors["prompt"][0]
    image_only = cog_form({"image": [picture_upload()]}, prompt="")
    assert image_only.is_valid(), image_only.errors
    webp = cog_form({"image": [picture_upload("a.webp", image_format="WEBP")]})
    assert not webp.is_valid() and "a.webp is not a PNG or JPEG image." in webp.errors["image"]
    big = SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (5 * 1024 * 1024))
    large = cog_form({"image": [big]})
    assert not large.is_valid() and "larger than 5.0" in large.errors["image"][0]
    assert not cog_form(prompt="x" * 501).is_valid()


# --- Kling image generation -----------------------------------------------------------------


def kling_reply(data) -> dict:
    return {"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}


def test_kling_images_send_raw_base64_and_poll_the_images_path():
    relay = Relay((200, kling_reply({"task_id": "8275", "task_status": "submitted"})))
    picture = png()
    task = run(
        kling.generate_images(
            relay.client(),
            "a red kite",
            model_name="kling-v1-5",
            image=picture,
            image_fidelity=0.0,
            image_reference="face",
            n=2,
            aspect_ratio="4:3",
            negative_prompt="",
        )
    )
    assert task.task_id == "8275" and task.endpoint == "images"
    assert relay.requests[0].url.path == "/kling/v1/images/generations"
    assert relay.last_json() == {
        "model_name": "kling-v1-5",
        "prompt": "a red kite",
        "image": base64.b64encode(picture).decode(),
        "image_fidelity": 0.0,
        "image_reference": "face",
        "n": 2,
        "aspect_ratio": "4:3",
    }
    run(kling.fetch_images(relay.client(), "8275"))
    assert relay.requests[1].method == "GET"
    assert relay.requests[1].url.path == "/kling/v1/images/generations/8275"


def test_kling_images_are_read_in_index_order():
    result = {
        "images": [
            {"index": 1, "url": "https://cdn.test/b.png"},
            {"index": 0, "url": "https://cdn.test/a.png"},
            {"index": 2, "url": ""},
            "https://cdn.test/c.png",
        ]
    }
    data = {"task_id": "8275", "task_status": "succeed", "task_result": result}
    task = kling.parse_task(kling.read_envelope(kling_reply(data)), endpoint="images")
    assert task.succeeded and task.videos == ()
    assert [image.url for image in task.images] == [
        "https://cdn.test/a.png",
        "https://cdn.test/b.png",
        "https://cdn.test/c.png",
    ]


def test_kling_image_tasks_have_their_own_upstream_id_and_a_quicker_estimate():
    task = kling.KlingTask("8275", "images")
    assert kling_kind.split_upstream_id(kling_kind.upstream_id(task)) == ("images", "8275")
    created = 1_700_000_000_000
    images = kling.KlingTask("1", "images", status="processing", created_at=created)
    video = kling.KlingTask("1", "text2video", status="processing", created_at=created)
    now = created / 1000 + 30
    assert kling_kind.estimate_progress(images, now=now) > kling_kind.estimate_progress(
        video, now=now
    )
    with pytest.raises(BadRequestError):
        run(kling.fetch_video(Relay((200, {})).client(), "images", "1"))


KLING_IMAGE_FIELDS = {
    "source": "text2image",
    "prompt": "a red kite over a beach",
    "model_name": "kling-v1",
    "mode": "std",
    "duration": "5",
    "aspect_ratio": "4:3",
    "n": "3",
}


def kling_form(files=None, **fields) -> kling_kind.KlingForm:
    data = {**KLING_IMAGE_FIELDS, **fields}
    return kling_kind.KlingForm(data, MultiValueDict(files or {}))


def test_the_kling_form_for_images():
    form = kling_form({"image_tail": [SimpleUploadedFile("junk.txt", b"not checked")]})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["n"] == 3 and form.cleaned_data["image_tail"] is None
    with_reference = kling_form({"image": [picture_upload()]}, model_name="kling-v1-5")
    assert with_reference.is_valid(), with_reference.errors

    cases = [
        (kling_form(prompt="x" * 501), "prompt", "at most 500 characters"),
        (kling_form(prompt=""), "prompt", "what the images show"),
        (kling_form(negative_prompt="y" * 201), "negative_prompt", "at most 200 characters"),
        (
            kling_form({"image": [picture_upload()]}, negative_prompt="blur"),
            "negative_prompt",
            "no “Avoid” text with a reference image",
        ),
        (kling_form(model_name="kling-v1-6"), "model_name", "v1 or v1.5 only"),
        (kling_form(n="10"), "n", "less than or equal to 9"),
        (kling_form({"image": [picture_upload(size=(200, 200))]}), "image", "at least 300"),
        (kling_form(source="text2video"), "aspect_ratio", "the other shapes are for images"),
    ]
    for form, field, words in cases:
        assert not form.is_valid()
        assert words in " ".join(form.errors[field]), (field, form.errors)
