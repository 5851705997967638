"""The Midjourney family against a fake transport: every submit result code, task parsing."""

import asyncio
import json

import httpx
import pytest

from studio.upstream import midjourney
from studio.upstream.client import RelayClient, RelayCredentials
from studio.upstream.errors import (
    BadRequestError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
)
from studio.upstream.midjourney import Button, MidjourneyError

KEY = "sk-testSecret0123456789abcdEFGH"
BASE_URL = "https://relay.test"


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
        return RelayClient(RelayCredentials(BASE_URL, KEY), http_client=http)

    def last_json(self) -> dict:
        return json.loads(self.requests[-1].content)


def run(coro):
    return asyncio.run(coro)


def submit_result(code, description="", result=None, properties=None) -> dict:
    return {"code": code, "description": description, "result": result, "properties": properties}


def test_imagine_sends_the_prompt_and_returns_the_task_id():
    relay = Relay(200, submit_result(1, "提交成功", "1730621718151844", {}))
    submitted = run(
        midjourney.imagine(
            relay.client(), "pig --v 6.1", bot_type="NIJI_JOURNEY", base64_array=["data:x"]
        )
    )
    assert submitted.task_id == "1730621718151844" and not submitted.needs_modal
    request = relay.requests[0]
    assert request.method == "POST" and request.url.path == "/mj/submit/imagine"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert relay.last_json() == {
        "prompt": "pig --v 6.1",
        "botType": "NIJI_JOURNEY",
        "base64Array": ["data:x"],
    }


@pytest.mark.parametrize(
    ("call", "path", "body"),
    [
        (
            lambda c: midjourney.blend(c, ["a", "b"], dimensions="PORTRAIT"),
            "/mj/submit/blend",
            {"base64Array": ["a", "b"], "dimensions": "PORTRAIT", "botType": "MID_JOURNEY"},
        ),
        (
            lambda c: midjourney.describe(c, "data:image/png;base64,AA=="),
            "/mj/submit/describe",
            {"base64": "data:image/png;base64,AA==", "botType": "MID_JOURNEY"},
        ),
        (
            lambda c: midjourney.shorten(c, "long prompt"),
            "/mj/submit/shorten",
            {"prompt": "long prompt", "botType": "MID_JOURNEY"},
        ),
        (
            lambda c: midjourney.action(c, "17", "MJ::JOB::upsample::1::h"),
            "/mj/submit/action",
            {"taskId": "17", "customId": "MJ::JOB::upsample::1::h"},
        ),
    ],
)
def test_each_submit_posts_its_fields(call, path, body):
    relay = Relay(200, submit_result(1, "ok", "42"))
    assert run(call(relay.client())).task_id == "42"
    assert relay.requests[0].url.path == path and relay.last_json() == body


def test_queued_and_existing_are_accepted():
    assert (
        run(midjourney.shorten(Relay(200, submit_result(22, "排队中", "7")).client(), "p")).code
        == 22
    )
    existing = run(midjourney.shorten(Relay(200, submit_result(21, "exists", "8")).client(), "p"))
    assert existing.task_id == "8" and not existing.needs_modal


@pytest.mark.parametrize(
    ("description", "properties"),
    [("Waiting for window confirm", {}), ("", {"status": "MODAL", "remix": True})],
)
def test_code_21_needing_a_modal_is_flagged(description, properties):
    relay = Relay(200, submit_result(21, description, "9", properties))
    submitted = run(midjourney.action(relay.client(), "1", "MJ::CustomZoom::h"))
    assert submitted.task_id == "9" and submitted.needs_modal


def test_queue_full_is_rate_limited():
    relay = Relay(200, submit_result(23, "队列已满，请稍后尝试", None, {"numberOfQueues": 10}))  # noqa: RUF001
    with pytest.raises(RateLimitedError) as caught:
        run(midjourney.imagine(relay.client(), "p"))
    assert "queue is full" in caught.value.message and caught.value.relay_code == "23"


def test_a_banned_word_is_named():
    relay = Relay(200, submit_result(24, "可能包含敏感词", None, {"bannedWord": "nsfw"}))
    with pytest.raises(BadRequestError) as caught:
        run(midjourney.imagine(relay.client(), "p"))
    assert "nsfw" in caught.value.message and "可能包含敏感词" in caught.value.message


@pytest.mark.parametrize(
    ("code", "description", "error_class"),
    [
        (3, "无可用的账号实例", UnavailableError),
        (3, "No available account instance", UnavailableError),
        (3, "关联任务不存在", BadRequestError),
        (4, "prompt不能为空", BadRequestError),
        (9, "系统异常", MidjourneyError),
        (42, "something new", MidjourneyError),
    ],
)
def test_other_codes_raise_with_the_description(code, description, error_class):
    relay = Relay(200, submit_result(code, description))
    with pytest.raises(error_class) as caught:
        run(midjourney.imagine(relay.client(), "p"))
    assert isinstance(caught.value, UpstreamError)
    assert description in caught.value.message and caught.value.relay_code == str(code)


def test_accepted_without_a_task_id_is_a_protocol_error():
    with pytest.raises(UpstreamError, match="no task id"):
        run(midjourney.imagine(Relay(200, submit_result(1, "ok", None)).client(), "p"))


def test_the_relays_400_wrapper_is_mapped():
    relay = Relay(400, {"description": "quota_not_enough ", "type": "upstream_error", "code": 4})
    with pytest.raises(QuotaError):
        run(midjourney.imagine(relay.client(), "p"))
    relay = Relay(400, {"description": "unknown_action:MJ::x", "type": "upstream_error", "code": 4})
    with pytest.raises(BadRequestError, match="unknown_action"):
        run(midjourney.action(relay.client(), "1", "MJ::x"))
    relay = Relay(400, {"description": "task_no_found ", "type": "upstream_error", "code": 4})
    with pytest.raises(BadRequestError, match="task_no_found"):
        run(midjourney.fetch(relay.client(), "1"))


def test_fetch_reads_a_finished_task():
    relay = Relay(
        200,
        {
            "id": "1730621826053455",
            "action": "IMAGINE",
            "status": "SUCCESS",
            "progress": "100%",
            "imageUrl": "https://relay.test/mj/image/1",
            "imageUrls": [{"url": "https://a/1.png"}, "https://a/2.png", {"nope": 1}, ""],
            "failReason": "",
            "buttons": [
                {"customId": "MJ::JOB::upsample::1::h", "emoji": "", "label": "U1", "type": 2},
                {"customId": "MJ::JOB::reroll::0::h::SOLO", "emoji": "🔄", "label": ""},
                {"label": "no id"},
                "junk",
            ],
            "prompt": "pig",
            "properties": {"finalPrompt": "pig --v 6.1"},
            "extra": {"ignored": True},
        },
    )
    task = run(midjourney.fetch(relay.client(), "1730621826053455"))
    assert relay.requests[0].url.path == "/mj/task/1730621826053455/fetch"
    assert task.finished and task.status == "SUCCESS" and task.progress == 100
    assert task.image_urls == ("https://a/1.png", "https://a/2.png")
    assert task.buttons == (
        Button("MJ::JOB::upsample::1::h", "U1", ""),
        Button("MJ::JOB::reroll::0::h::SOLO", "", "🔄"),
    )
    assert task.final_prompt == "pig --v 6.1" and task.prompt == "pig"


def test_fetch_tolerates_a_sparse_task():
    task = run(midjourney.fetch(Relay(200, {"status": "", "progress": None}).client(), "5"))
    assert task.id == "5" and task.progress == 0 and not task.finished
    assert task.buttons == () and task.image_urls == () and task.image_url == ""
    modal = run(midjourney.fetch(Relay(200, {"id": "6", "status": "MODAL"}).client(), "6"))
    assert modal.needs_modal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("45%", 45),
        ("0%", 0),
        ("100%", 100),
        (45, 45),
        (45.7, 45),
        ("57.5%", 57),
        ("", 0),
        (None, 0),
        ("n/a", 0),
        (150, 100),
        (True, 0),
    ],
)
def test_progress_parsing(value, expected):
    assert midjourney.parse_progress(value) == expected


def test_image_seed_is_the_result_string():
    relay = Relay(200, submit_result(1, "成功", "3785123456"))
    assert run(midjourney.image_seed(relay.client(), "77")) == "3785123456"
    assert relay.requests[0].url.path == "/mj/task/77/image-seed"
    relay = Relay(400, submit_result(4, "关联任务状态错误"))
    with pytest.raises(BadRequestError, match="关联任务状态错误"):
        run(midjourney.image_seed(relay.client(), "77"))
