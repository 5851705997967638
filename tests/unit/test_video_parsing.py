"""The Kling and Runway families against a fake transport: envelopes, error codes, statuses,
progress in every form, the path a Kling task is polled on, and Runway's task_not_exist; and
their forms' image checks."""

import asyncio
import base64
import io
import json
import math
import os

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.datastructures import MultiValueDict
from PIL import Image

from media_jobs.kinds import kling as kling_kind
from media_jobs.kinds import runway as runway_kind
from studio.upstream import kling, runway
from studio.upstream.client import RelayClient, RelayCredentials
from studio.upstream.errors import (
    AuthError,
    BadRequestError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
    UpstreamTimeout,
)
from studio.upstream.progress import parse_progress

KEY = "sk-testSecret0123456789abcdEFGH"
BASE_URL = "https://relay.test"


class Relay:
    """Answers every request with the next (status, body) of `replies` (the last one repeats)."""

    def __init__(self, *replies: tuple[int, object]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        status, body = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return httpx.Response(status, json=body)

    def client(self) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return RelayClient(RelayCredentials(BASE_URL, KEY), http_client=http)

    def last_json(self) -> dict:
        return json.loads(self.requests[-1].content)


def run(coro):
    return asyncio.run(coro)


def envelope(data=None, code=0, message="SUCCEED") -> dict:
    return {"code": code, "message": message, "request_id": "CjMT7WdSwWcAAAAAALvB3g", "data": data}


def kling_data(status="submitted", **extra) -> dict:
    return {
        "task_id": 827574871634235396,  # a number: ids are read as strings
        "task_status": status,
        "task_status_msg": "",
        "created_at": 1733851336696,
        "updated_at": 1733851336696,
        **extra,
    }


# --- progress -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("45%", 45),
        ("45", 45),
        (45, 45),
        (45.6, 46),
        (0.45, 45),
        ("0.3", 30),
        (1, 100),  # Runway's "progress": 1 on success
        ("1%", 1),
        (0, 0),
        ("100%", 100),
        (150, 100),
        (-5, 0),
        (None, None),
        ("", None),
        ("soon", None),
        (True, None),
        (float("nan"), None),
    ],
)
def test_progress_is_read_in_every_form(value, expected):
    assert parse_progress(value) == expected


# --- Kling ----------------------------------------------------------------------------------


def test_text_to_video_sends_only_given_fields_and_reads_the_envelope():
    relay = Relay((200, envelope(kling_data())))
    task = run(
        kling.text_to_video(
            relay.client(), "a cat surfing", mode="pro", duration=10, cfg_scale=0.0, aspect_ratio=""
        )
    )
    assert task.task_id == "827574871634235396" and task.endpoint == "text2video"
    assert task.status == "submitted" and task.progress is None and not task.finished
    request = relay.requests[0]
    assert request.method == "POST" and request.url.path == "/kling/v1/videos/text2video"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    # cfg_scale 0 is a value; an empty aspect ratio and unset fields are left to Kling's defaults
    assert relay.last_json() == {
        "prompt": "a cat surfing",
        "mode": "pro",
        "duration": "10",
        "cfg_scale": 0.0,
    }


def test_image_to_video_sends_raw_base64_without_data_prefix():
    relay = Relay((200, envelope(kling_data())))
    picture = b"\x89PNG fake bytes"
    encoded = base64.b64encode(picture).decode()
    run(
        kling.image_to_video(
            relay.client(), picture, image_tail=f"data:image/png;base64,{encoded}", prompt="wave"
        )
    )
    assert relay.requests[0].url.path == "/kling/v1/videos/image2video"
    sent = relay.last_json()
    assert sent["image"] == encoded and sent["image_tail"] == encoded and sent["prompt"] == "wave"
    assert kling.image_value(" https://cdn.test/a.png ") == "https://cdn.test/a.png"


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [
        ("text2video", "/kling/v1/videos/text2video/8275"),
        ("image2video", "/kling/v1/videos/image2video/8275"),
    ],
)
def test_a_task_is_polled_on_the_path_of_its_endpoint(endpoint, path):
    relay = Relay((200, envelope(kling_data("processing"))))
    task = run(kling.fetch_video(relay.client(), endpoint, "8275"))
    assert relay.requests[0].method == "GET" and relay.requests[0].url.path == path
    assert task.endpoint == endpoint and task.status == "processing"


def test_an_unknown_endpoint_is_refused_before_any_request():
    relay = Relay((200, envelope(kling_data())))
    with pytest.raises(BadRequestError):
        run(kling.fetch_video(relay.client(), "images", "8275"))
    assert relay.requests == []


def test_a_finished_task_lists_its_videos():
    result = {"videos": [{"id": "v1", "url": "https://cdn.test/v.mp4", "duration": "5.1"}]}
    data = kling_data("SUCCEED", task_result=result)
    task = kling.parse_task(kling.read_envelope(envelope(data)), endpoint="text2video")
    assert task.succeeded and task.finished
    assert task.videos == (kling.KlingVideo("https://cdn.test/v.mp4", "v1", "5.1"),)


def test_a_failed_task_keeps_kling_reason():
    data = kling_data("failed", task_status_msg="Failure to pass the risk control system")
    task = kling.parse_task(kling.read_envelope(envelope(data)), endpoint="image2video")
    assert task.failed and task.status_msg == "Failure to pass the risk control system"
    assert task.videos == ()


def test_a_relay_that_adds_a_percentage_is_believed():
    task = kling.parse_task(kling_data("processing", progress="45%"), endpoint="text2video")
    assert task.progress == 45


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (1000, AuthError),
        (1004, AuthError),
        (1100, AuthError),
        (1101, QuotaError),
        (1102, QuotaError),
        (1103, AuthError),
        (1201, BadRequestError),
        (1203, BadRequestError),
        (1301, BadRequestError),
        (1302, RateLimitedError),
        (1303, RateLimitedError),
        (1304, AuthError),
        (5000, UnavailableError),
        (5001, UnavailableError),
        (5002, UpstreamTimeout),
    ],
)
def test_a_nonzero_code_in_a_200_reply_raises_the_matching_error(code, error_class):
    relay = Relay((200, envelope(None, code=code, message="参数错误 prompt is too long")))
    with pytest.raises(error_class) as raised:
        run(kling.text_to_video(relay.client(), "x"))
    assert type(raised.value) is error_class
    assert raised.value.message == "参数错误 prompt is too long"
    assert raised.value.relay_code == str(code)


def test_an_undocumented_code_is_judged_by_its_words():
    with pytest.raises(QuotaError):
        kling.read_envelope({"code": 9001, "message": "insufficient balance", "data": None})
    with pytest.raises(BadRequestError):
        kling.read_envelope({"code": "9002", "message": "something odd", "data": None})


def test_the_code_in_a_failing_reply_refines_the_status():
    # Kling sends "resource pack used up" with HTTP 429: a spent quota, not a busy relay.
    relay = Relay((429, {"code": 1102, "message": "资源包已用完", "request_id": "r"}))
    with pytest.raises(QuotaError) as raised:
        run(kling.text_to_video(relay.client(), "x"))
    assert raised.value.status == 429 and raised.value.message == "资源包已用完"
    # The relay's own errors keep their class.
    relay = Relay((401, {"error": {"message": "无效的令牌", "type": "new_api_error"}}))
    with pytest.raises(AuthError):
        run(kling.fetch_video(relay.client(), "text2video", "1"))


@pytest.mark.parametrize(
    "payload",
    [
        {"message": "SUCCEED", "data": {}},  # no code
        {"code": 0, "message": "SUCCEED", "data": None},  # no data
    ],
)
def test_an_unreadable_envelope_is_a_protocol_error(payload):
    with pytest.raises(ProtocolError):
        kling.read_envelope(payload)


def test_a_submit_without_task_id_is_a_protocol_error():
    relay = Relay((200, envelope({"task_status": "submitted"})))
    with pytest.raises(ProtocolError):
        run(kling.text_to_video(relay.client(), "x"))


def test_kling_progress_is_estimated_from_the_task_age():
    created = 1_700_000_000_000
    task = kling.KlingTask("1", "text2video", status="processing", created_at=created)
    early = kling_kind.estimate_progress(task, now=created / 1000 + 1)
    later = kling_kind.estimate_progress(task, now=created / 1000 + 120)
    much_later = kling_kind.estimate_progress(task, now=created / 1000 + 3600)
    assert 5 <= early < later < much_later <= 95
    submitted = kling.KlingTask("1", "text2video", status="submitted", created_at=created)
    assert kling_kind.estimate_progress(submitted, now=created / 1000 + 60) == 0
    told = kling.KlingTask("1", "text2video", status="processing", progress=61)
    assert kling_kind.estimate_progress(told) == 61


def test_kling_upstream_id_names_the_endpoint():
    task = kling.KlingTask("8275", "image2video")
    assert kling_kind.split_upstream_id(kling_kind.upstream_id(task)) == ("image2video", "8275")
    with pytest.raises(BadRequestError):
        kling_kind.split_upstream_id("8275")


# --- Runway ---------------------------------------------------------------------------------


def test_image_to_video_sends_the_version_header_and_runway_field_names():
    relay = Relay((200, {"id": "3d957031-9a2a-45e2-9dc7-bc8513059c50"}))
    task = run(
        runway.image_to_video(
            relay.client(),
            "data:image/png;base64,AAAA",
            prompt_text="waves roll in",
            seed=4294967295,
            duration=5,
            ratio="768:1280",
        )
    )
    assert task.id == "3d957031-9a2a-45e2-9dc7-bc8513059c50" and task.status == "PENDING"
    request = relay.requests[0]
    assert request.url.path == "/runwayml/v1/image_to_video"
    assert request.headers["X-Runway-Version"] == "2024-11-06"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert relay.last_json() == {
        "promptImage": "data:image/png;base64,AAAA",
        "model": "gen3a_turbo",
        "promptText": "waves roll in",
        "seed": 4294967295,
        "duration": 5,
        "ratio": "768:1280",
    }


def test_first_and_last_frames_go_as_a_list():
    relay = Relay((200, {"id": "t"}))
    frames = [{"uri": "https://a.test/1.png", "position": "first"}]
    run(runway.image_to_video(relay.client(), frames))
    assert relay.last_json()["promptImage"] == frames


@pytest.mark.parametrize(
    ("payload", "status", "progress"),
    [
        ({"id": "t", "status": "PENDING"}, "PENDING", None),
        ({"id": "t", "status": "throttled"}, "THROTTLED", None),
        ({"id": "t", "status": "RUNNING", "progress": 0.3}, "RUNNING", 30),
        ({"id": "t", "status": "RUNNING", "progress": "70%"}, "RUNNING", 70),
        ({"id": "t", "status": "SUCCEEDED", "progress": 1, "output": ["u"]}, "SUCCEEDED", 100),
        ({"id": "t"}, "PENDING", None),
    ],
)
def test_runway_statuses_and_progress(payload, status, progress):
    task = runway.parse_task(payload)
    assert task.status == status and task.progress == progress
    assert task.finished == (status == "SUCCEEDED")


def test_a_failed_runway_task_carries_failure_and_code():
    task = runway.parse_task(
        {
            "id": "t",
            "status": "FAILED",
            "failure": "Our moderation system flagged your input.",
            "failureCode": "SAFETY.INPUT.TEXT",
        }
    )
    assert task.finished and not task.succeeded
    assert task.failure == "Our moderation system flagged your input."
    assert task.failure_code == "SAFETY.INPUT.TEXT"


def test_output_is_read_leniently():
    assert runway.parse_task({"output": "https://a.test/v.mp4"}).output == ("https://a.test/v.mp4",)
    assert runway.parse_task({"output": [{"url": "https://a/v"}, "", None]}).output == (
        "https://a/v",
    )
    assert runway.parse_task({"output": None}).output == ()


TASK_NOT_EXIST = (400, {"code": "task_not_exist", "message": "task_not_exist", "data": None})


def test_task_not_exist_is_pending_within_the_grace_period():
    relay = Relay(TASK_NOT_EXIST)
    task = run(runway.get_task(relay.client(), "t", created_at=1000.0, now=1029.0))
    assert task.status == "PENDING" and task.not_yet_visible
    request = relay.requests[0]
    assert request.url.path == "/runwayml/v1/tasks/t"
    assert request.headers["X-Runway-Version"] == "2024-11-06"


def test_task_not_exist_is_an_error_after_the_grace_period_or_without_a_creation_time():
    with pytest.raises(BadRequestError) as raised:
        run(runway.get_task(Relay(TASK_NOT_EXIST).client(), "t", created_at=1000.0, now=1031.0))
    assert raised.value.relay_code == "task_not_exist"
    with pytest.raises(BadRequestError):
        run(runway.get_task(Relay(TASK_NOT_EXIST).client(), "t"))


def test_other_errors_are_not_mistaken_for_a_task_not_yet_visible():
    relay = Relay((429, {"error": {"message": "当前分组上游负载已饱和", "type": "new_api_error"}}))
    with pytest.raises(RateLimitedError):
        run(runway.get_task(relay.client(), "t", created_at=1000.0, now=1001.0))
    relay = Relay((400, {"error": "Validation of body failed"}))
    with pytest.raises(BadRequestError) as raised:
        run(runway.get_task(relay.client(), "t", created_at=1000.0, now=1001.0))
    assert raised.value.message == "Validation of body failed"


def test_runway_upstream_id_carries_the_creation_time():
    value = runway_kind.upstream_id("3d95-7031", 1733851336.9)
    assert value == "3d95-7031@1733851336"
    assert runway_kind.split_upstream_id(value) == ("3d95-7031", 1733851336.0)
    assert runway_kind.split_upstream_id("plain-id") == ("plain-id", None)


# --- the video forms' image checks (media_jobs.kinds.uploads, with each family's limits) ------


def _picture(name: str, size=(640, 360), image_format="PNG", noise=False) -> SimpleUploadedFile:
    image = Image.new("RGB", size, "teal")
    if noise:  # incompressible, so that the file is as large as its pixels
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


KLING_FIELDS = {"source": "image2video", "model_name": "kling-v1", "mode": "std"}
KLING_FIELDS |= {"duration": "5", "aspect_ratio": "16:9"}


def _kling_errors(**files) -> dict:
    uploads = MultiValueDict({name: [upload] for name, upload in files.items()})
    form = kling_kind.KlingForm(data=KLING_FIELDS, files=uploads)
    return {} if form.is_valid() else form.errors


def test_the_kling_form_checks_both_images_by_content_and_shape():
    first = _picture("first.png", image_format="JPEG")
    form = kling_kind.KlingForm(data=KLING_FIELDS, files={"image": first})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["image"].content_type == "image/jpeg"  # what is stored as its mime
    assert _kling_errors(image=_picture("a.webp", image_format="WEBP"))["image"] == [
        "a.webp is not a PNG or JPEG image."
    ]
    errors = _kling_errors(image=_picture("first.png"), image_tail=_picture("end.png", (299, 600)))
    assert errors["image_tail"] == ["end.png is 299 x 600 pixels; each side must be at least 300."]
    assert _kling_errors(image=_picture("pano.png", (1000, 300)))["image"] == [
        "pano.png is too narrow or too wide: keep it between 1:2.5 and 2.5:1."
    ]


def test_the_runway_form_takes_webp_up_to_what_fits_in_a_5_mb_data_uri():
    fields = {"model": "gen3a_turbo", "duration": "5", "ratio": "1280:768"}
    webp = _picture("still.webp", image_format="WEBP")
    form = runway_kind.RunwayForm(data=fields, files={"image": webp})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["image"].content_type == "image/webp"
    big = _picture("big.png", (1200, 1200), noise=True)
    assert runway_kind.MAX_IMAGE_BYTES < big.size <= 10 * 1024 * 1024
    form = runway_kind.RunwayForm(data=fields, files={"image": big})
    assert not form.is_valid()
    limit = filesizeformat(runway_kind.MAX_IMAGE_BYTES)
    assert form.errors["image"] == [f"big.png is larger than {limit}."]
    # The largest image allowed still fits in Runway's 5 MB once made a data URI.
    longest = len("data:image/webp;base64,") + 4 * math.ceil(runway_kind.MAX_IMAGE_BYTES / 3)
    assert longest <= runway.MAX_DATA_URI_BYTES
