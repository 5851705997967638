"""The Viggle family against a fake transport: the envelope and its errors (credits → quota),
uploads, template lists, render bodies per mode, task states, credits in every form, the
catalog a form shows when part of it fails; and the kind's video check, form and progress."""

import asyncio
import io
import json

import httpx
import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict
from PIL import Image

from media_jobs.kinds import viggle as viggle_kind
from studio.simulator.video import SAMPLE_VIDEO
from studio.upstream import viggle
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
    """Answers each request by its path with (status, body); unknown paths get a 404."""

    def __init__(self, routes: dict[str, tuple[int, object]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        path = request.url.raw_path.decode().partition("?")[0]
        status, body = self.routes.get(path, (404, {"error": {"message": "nope"}}))
        if isinstance(body, Exception):
            raise body
        return httpx.Response(status, json=body)

    def client(self) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return RelayClient(RelayCredentials(BASE_URL, KEY), http_client=http)


def run(coro):
    return asyncio.run(coro)


def ok(data) -> dict:
    return {"code": 0, "message": "ok", "data": data}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 96), (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


# --- the envelope ---------------------------------------------------------------------------


def test_the_envelope_gives_its_data_and_tolerates_a_missing_code():
    assert viggle.read_envelope(ok([1])) == [1]
    assert viggle.read_envelope({"code": "0", "data": {"a": 1}}) == {"a": 1}
    assert viggle.read_envelope({"code": 200, "msg": "success", "data": 5}) == 5
    assert viggle.read_envelope({"data": []}) == []
    with pytest.raises(ProtocolError):
        viggle.read_envelope({"message": "ok"})


@pytest.mark.parametrize(
    ("payload", "error_class"),
    [
        ({"code": 40013, "message": "Insufficient credits, please recharge"}, QuotaError),
        ({"code": 40013, "message": "积分不足"}, QuotaError),
        ({"code": 1, "message": "not enough credits for this model"}, QuotaError),
        ({"code": 40001, "message": "bgMode must be 0, 1, 2 or 3"}, BadRequestError),
        ({"code": 40029, "message": "Too many requests, rate limit"}, RateLimitedError),
        ({"code": 401, "message": "invalid token"}, AuthError),
    ],
)
def test_a_non_zero_code_in_a_200_reply_raises_in_the_relays_words(payload, error_class):
    relay = Relay({"/viggle/template2/tag": (200, {**payload, "data": None})})
    with pytest.raises(error_class) as raised:
        run(viggle.template_tags(relay.client()))
    assert raised.value.message == payload["message"]
    assert raised.value.relay_code == str(payload["code"])


@pytest.mark.parametrize(
    ("status", "message", "error_class"),
    [
        (403, "Insufficient credits: this video needs 10, 4 left (积分不足)", QuotaError),
        (400, "积分不足，请充值", QuotaError),  # noqa: RUF001 - the relay's own words
        (403, "用户已被封禁", AuthError),
        (400, "template not found: 9", BadRequestError),
        (503, "no available channel", UnavailableError),
    ],
)
def test_a_failing_status_with_the_envelope_is_classified_by_its_words(
    status, message, error_class
):
    relay = Relay({"/viggle/credits": (status, {"code": 40013, "message": message, "data": None})})
    with pytest.raises(error_class) as raised:
        run(viggle.credits(relay.client()))
    assert raised.value.status == status and raised.value.message == message


def test_credit_shortage_words():
    assert viggle.is_credit_shortage("Insufficient credits")
    assert viggle.is_credit_shortage("You have run out of credits")
    assert viggle.is_credit_shortage("credits not enough")
    assert viggle.is_credit_shortage("积分不足")
    assert not viggle.is_credit_shortage("credits: 300")
    assert not viggle.is_credit_shortage("")


# --- uploads ----------------------------------------------------------------------------------


def test_an_image_upload_is_multipart_file_and_gives_the_asset():
    asset = {"id": 7, "url": "https://cdn.test/a.png", "width": 64, "height": 96}
    relay = Relay({"/viggle/asset/image": (200, ok(asset))})
    found = run(viggle.upload_image(relay.client(), "me.png", png(), "image/png"))
    assert found == viggle.ViggleAsset(id="7", url="https://cdn.test/a.png", width=64, height=96)
    request = relay.requests[0]
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="file"; filename="me.png"' in request.content
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_a_video_upload_goes_to_its_images_path_and_reads_the_cover():
    asset = {
        "id": "v1",
        "name": "m.mp4",
        "url": "https://cdn.test/v.mp4",
        "coverURL": "https://cdn.test/c.png",
    }
    relay = Relay({"/viggle/asset/video/img%2F1": (200, ok(asset))})
    found = run(viggle.upload_video(relay.client(), "img/1", "m.mp4", b"\0\0\0\x18ftypmp42"))
    assert found.id == "v1" and found.cover_url == "https://cdn.test/c.png"
    assert relay.requests[0].url.raw_path == b"/viggle/asset/video/img%2F1"  # quoted


def test_an_upload_without_an_id_is_a_protocol_error():
    relay = Relay({"/viggle/asset/image": (200, ok({"url": "https://cdn.test/a.png"}))})
    with pytest.raises(ProtocolError, match="sent no id"):
        run(viggle.upload_image(relay.client(), "me.png", png()))


# --- templates ------------------------------------------------------------------------------


def test_templates_are_asked_with_the_filters_and_read_leniently():
    items = [
        {
            "id": 1002,
            "description": "Hip-hop shuffle",
            "webCommand": "/mix --template hiphop",
            "processedURL": "https://cdn.test/1002.mp4",
            "processedCoverURL": "https://cdn.test/1002.png",
            "gifURL": "https://cdn.test/1002.gif",
            "width": "320",
            "height": 180,
            "unknown": {"nested": True},
        },
        {"id": "2001", "characterCount": 2, "gifURL": "https://cdn.test/2001.gif"},
        {"description": "no id: skipped"},
        "junk",
    ]
    relay = Relay({"/viggle/template2": (200, ok({"list": items, "total": 3}))})
    found = run(
        viggle.templates(relay.client(), template_type=1, tag_id="3", search="walk", page=2)
    )
    assert [template.id for template in found] == ["1002", "2001"]
    first, second = found
    assert first.command == "/mix --template hiphop" and first.width == 320
    assert first.preview_url == "https://cdn.test/1002.mp4"
    assert second.characters == 2 and second.preview_url == "https://cdn.test/2001.gif"
    query = dict(relay.requests[0].url.params)
    assert query == {
        "page": "2",
        "pageSize": "48",
        "searchKeyword": "walk",
        "tagID": "3",
        "type": "1",
    }


def test_tags_come_in_their_sort_order():
    tags = [{"id": 2, "name": "Meme", "sort": 2}, {"id": 1, "name": "Dance", "sort": 1}, {"id": 3}]
    assert viggle.parse_tags(tags) == [
        viggle.ViggleTag("1", "Dance", 1),
        viggle.ViggleTag("2", "Meme", 2),
    ]


# --- render requests ------------------------------------------------------------------------


def test_a_mix_body_is_exactly_the_shape_seen_elsewhere():
    body = viggle.task_body("mix", ["img"], template_id="1002", bg_mode=2, model_info_id=3)
    assert body == {
        "imageID": "img",
        "templateID": "1002",
        "bgMode": 2,
        "modelInfoID": 3,
        "watermark": 0,
    }


def test_multi_and_move_bodies():
    multi = viggle.task_body("multi", ["a", "b"], video_id="v", bg_mode=0, watermark=True)
    assert multi == {
        "imageID": "a",
        "imageIDs": ["a", "b"],
        "videoID": "v",
        "bgMode": 0,
        "modelInfoID": 3,
        "watermark": 1,
        "type": 1,
    }
    move = viggle.task_body("move", ["a"], template_id="1004", bg_mode=3, model_info_id=2)
    assert move == {
        "imageID": "a",
        "templateID": "1004",
        "modelInfoID": 2,
        "watermark": 0,
        "type": 2,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "dance", "image_ids": ["a"], "template_id": "1"},
        {"mode": "mix", "image_ids": [], "template_id": "1"},
        {"mode": "mix", "image_ids": ["a"]},
        {"mode": "mix", "image_ids": ["a"], "template_id": "1", "video_id": "v"},
    ],
)
def test_impossible_bodies_are_refused_before_sending(kwargs):
    mode, image_ids = kwargs.pop("mode"), kwargs.pop("image_ids")
    with pytest.raises(ValueError):
        viggle.task_body(mode, image_ids, **kwargs)


def test_create_task_posts_to_the_modes_path_and_reads_the_task_id(settings):
    settings.UPSTREAM_PATHS = {"viggle_video_task_move": "/viggle/move-task"}
    relay = Relay(
        {
            "/viggle/video-task": (200, ok({"taskID": "t1", "mqType": 1})),
            "/viggle/move-task": (200, ok({"taskId": 99})),
        }
    )
    mix = run(viggle.create_task(relay.client(), "mix", ["a"], template_id="1"))
    assert mix == viggle.ViggleSubmitted("t1", "1")
    move = run(viggle.create_task(relay.client(), "move", ["a"], video_id="v"))
    assert move.task_id == "99"
    assert json.loads(relay.requests[1].content)["type"] == 2

    empty = Relay({"/viggle/video-task": (200, ok({"mqType": 1}))})
    with pytest.raises(ProtocolError, match="no taskID"):
        run(viggle.create_task(empty.client(), "mix", ["a"], template_id="1"))


# --- task states ----------------------------------------------------------------------------


def test_a_finished_task_has_its_video_and_cover():
    task = viggle.parse_task(
        {
            "taskID": "t1",
            "status": 0,
            "result": "https://cdn.test/r.mp4",
            "resultCover": "https://cdn.test/r.png",
            "videoDuration": 2,
            "createdAt": "2025-01-02T03:04:05.000Z",
        }
    )
    assert task.succeeded and task.finished and not task.failed
    assert task.result_cover == "https://cdn.test/r.png" and task.video_duration == "2"
    assert task.created_at == 1735787045.0


@pytest.mark.parametrize(
    ("data", "failed", "finished"),
    [
        ({"status": 1}, False, False),
        ({"status": "2"}, False, False),
        ({"status": -1, "errMsg": "pose lost"}, True, True),
        ({"status": "failed", "failReason": "pose lost"}, True, True),
        ({"status": 0, "errorMsg": "pose lost"}, True, True),  # finished without a video
        ({"status": 0}, False, True),  # finished, no video, no words: the kind says so
        ({}, False, False),
    ],
)
def test_task_states(data, failed, finished):
    task = viggle.parse_task({"taskID": "t", **data})
    assert task.failed is failed and task.finished is finished and not task.succeeded
    if failed:
        assert task.failure == "pose lost"


def test_get_task_finds_its_task_or_none():
    relay = Relay(
        {
            "/viggle/video-task/by-ids": (
                200,
                ok([{"taskID": "other", "status": 1}, {"taskID": "t1", "status": 2}]),
            )
        }
    )
    assert run(viggle.get_task(relay.client(), "t1")).status == 2
    assert json.loads(relay.requests[0].content) == {"ids": ["t1"]}
    assert run(viggle.get_task(relay.client(), "missing")) is None


# --- credits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "total"),
    [
        (285, 285),
        ("12.5", 12.5),
        ({"credits": 40}, 40),
        ({"remainingCredits": "7"}, 7),
        ({"freeCredits": 90, "planCredits": 200, "purchasedCredits": 0}, 290),
        ({"freeCredits": 5}, 5),
    ],
)
def test_credits_in_every_form(data, total):
    assert viggle.parse_credits(data).total == total


def test_credits_buckets_and_a_reply_without_a_number():
    found = viggle.parse_credits({"freeCredits": 1, "planCredits": 2, "totalCredits": 3})
    assert (found.total, found.free, found.plan, found.purchased) == (3, 1, 2, None)
    assert found.display == "3"
    with pytest.raises(ProtocolError):
        viggle.parse_credits({"plan": "gold"})


def test_the_catalog_comes_in_parts_when_some_fail():
    relay = Relay(
        {
            "/viggle/credits": (200, ok({"freeCredits": 10})),
            "/viggle/template2/tag": (200, ok([{"id": 1, "name": "Dance", "sort": 1}])),
            "/viggle/template2": (503, {"error": {"message": "no available channel"}}),
        }
    )
    catalog = run(viggle.load_catalog(relay.client(), tag_id="1"))
    assert catalog.credits is not None and catalog.credits.total == 10
    assert [tag.name for tag in catalog.tags] == ["Dance"]
    assert catalog.templates == {}
    assert "no available channel" in catalog.templates_error
    assert catalog.credits_error == "" and catalog.tags_error == ""

    down = Relay({"/viggle/credits": (200, httpx.ConnectError("refused"))})
    catalog = run(viggle.load_catalog(down.client()))
    assert catalog.credits is None and "could not reach" in catalog.credits_error
    assert "The relay" in catalog.templates_error  # the 404s of the fake, in words


# --- the kind ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (SAMPLE_VIDEO.read_bytes()[:64], "video/mp4"),
        (b"\0\0\0\x14ftypqt  \0\0\0\0qt  ", "video/quicktime"),
        (b"\0\0\0\x08wide\0\0\0\0mdat", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", ""),
        (b"RIFF\0\0\0\0WAVEfmt ", ""),
        (b"<html>", ""),
        (b"", ""),
    ],
)
def test_motion_videos_are_judged_by_their_bytes(head, mime):
    assert viggle_kind.sniff_video(head) == mime


def test_a_video_upload_is_labelled_with_its_real_type_and_size_checked():
    upload = SimpleUploadedFile("clip.bin", SAMPLE_VIDEO.read_bytes(), "application/octet-stream")
    assert viggle_kind.clean_video_upload(upload).content_type == "video/mp4"
    with pytest.raises(forms.ValidationError, match=r"clip\.bin is 12\.9.*the limit is 10"):
        viggle_kind.clean_video_upload(upload, max_bytes=10)
    reference = {"path": "uploads/1/x.mp4", "mime": "video/mp4"}
    assert viggle_kind.clean_video_upload(reference) is reference


FIELDS = {"mode": "mix", "source": "template", "templateID": "1002", "bgMode": "2"}
FIELDS |= {"modelInfoID": "3"}


def _form(files=None, **fields):
    uploads = MultiValueDict({name: [upload] for name, upload in (files or {}).items()})
    return viggle_kind.ViggleForm(data={**FIELDS, **fields}, files=uploads)


def _picture(name="me.png", image_format="PNG") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 60), (1, 2, 3)).save(buffer, image_format)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def test_the_form_cleans_to_what_submit_needs():
    form = _form({"image": _picture(image_format="JPEG"), "image_2": _picture("x.txt")})
    assert form.is_valid(), form.errors
    data = form.cleaned_data
    assert data["image"].content_type == "image/jpeg"
    assert data["image_2"] is None and data["video"] is None  # not used by Mix: not kept
    assert (data["bgMode"], data["modelInfoID"], data["watermark"]) == (2, 3, False)


def test_the_form_asks_for_what_each_choice_needs():
    errors = _form({"image": _picture()}, mode="multi", templateID="").errors
    assert errors["image_2"] == ["Multi needs at least two characters: add the second here."]
    assert errors["templateID"] == ["Choose a template, or upload a motion video instead."]
    errors = _form({"image": _picture()}, source="video").errors
    assert errors["video"] == ["Upload the motion video, or choose a template."]
    errors = _form({"image": _picture(), "image_3": _picture()}, mode="multi").errors
    assert "Multi needs at least two characters" in errors["image_2"][0]
    assert _form({}).errors["image"] == ["Upload the picture of the character."]
    assert _form({"image": _picture()}, templateID="../x").errors["templateID"] == [
        "This is not a template of the list."
    ]
    gif = _picture("anim.gif", image_format="GIF")
    assert _form({"image": gif}).errors["image"] == ["anim.gif is not a PNG, JPEG or WebP image."]


def test_a_video_form_drops_the_template_and_keeps_the_video():
    video = SimpleUploadedFile("m.mov", SAMPLE_VIDEO.read_bytes(), "video/quicktime")
    form = _form({"image": _picture(), "video": video}, source="video", mode="move")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["templateID"] == ""
    assert form.cleaned_data["video"].content_type == "video/mp4"  # what its bytes are


def test_progress_is_estimated_from_the_tasks_age():
    task = viggle.ViggleTask("t", status=2, created_at=1000.0)
    assert viggle_kind.estimate_progress(task, now=1000.0) == 5
    assert 50 < viggle_kind.estimate_progress(task, now=1000.0 + 120) < 70
    assert viggle_kind.estimate_progress(task, now=1000.0 + 3600) == 95
    assert viggle_kind.estimate_progress(viggle.ViggleTask("t", status=2)) == 10
    assert viggle_kind.estimate_progress(viggle.ViggleTask("t", progress=40)) == 40


def test_links_from_the_relay_reach_the_page_only_when_http():
    assert viggle_kind._safe_url("https://cdn.test/a.mp4") == "https://cdn.test/a.mp4"
    assert viggle_kind._safe_url("javascript:alert(1)") == ""
    assert viggle_kind._safe_url("data:text/html,hi") == ""


def test_the_kind_takes_an_image_from_another_job():
    (use,) = viggle_kind.ViggleKind.image_uses
    assert use.form_field == "image" and use.initial == {"mode": "mix"}
    assert viggle_kind.ViggleKind.family == "viggle" and viggle_kind.ViggleKind.slug == "viggle"


def _poll(answer):
    relay = Relay({"/viggle/video-task/by-ids": (200, ok(answer))})
    return run(viggle_kind.ViggleKind().poll(relay.client(), "t1"))


def test_poll_reads_each_state_of_the_task():
    done = _poll(
        [
            {
                "taskID": "t1",
                "status": 0,
                "result": "https://cdn.test/r.mp4",
                "resultCover": "https://cdn.test/r.png",
                "videoDuration": 3,
            }
        ]
    )
    assert done.done and [item.url for item in done.files] == [
        "https://cdn.test/r.mp4",
        "https://cdn.test/r.png",
    ]
    assert done.result == {"task_id": "t1", "video_duration": "3"}
    running = _poll([{"taskID": "t1", "status": 2, "progress": "30%"}])
    assert not running.done and running.progress == 30 and not running.failure
    failed = _poll([{"taskID": "t1", "status": -1, "errMsg": "pose lost"}])
    assert failed.failure == "pose lost"
    empty = _poll([{"taskID": "t1", "status": 0}])
    assert empty.failure == "The relay reported success but sent no video."
    # A task the relay does not list (yet) is retried by the runner, then given up.
    with pytest.raises(UnavailableError, match="does not list the Viggle task t1"):
        _poll([{"taskID": "other", "status": 1}])


def test_submit_uploads_the_characters_and_the_video_then_creates(monkeypatch):
    monkeypatch.setattr(viggle_kind, "read_upload", lambda reference: reference["path"].encode())
    uploaded = iter(["img-a", "img-b"])
    relay = Relay({})

    async def answer(request: httpx.Request) -> httpx.Response:
        await request.aread()
        relay.requests.append(request)
        path = request.url.path
        if path == "/viggle/asset/image":
            return httpx.Response(200, json=ok({"id": next(uploaded), "url": "u"}))
        if path.startswith("/viggle/asset/video/"):
            return httpx.Response(200, json=ok({"id": "vid", "url": "u"}))
        return httpx.Response(200, json=ok({"taskID": "task-9", "mqType": 1}))

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    client = RelayClient(RelayCredentials(BASE_URL, KEY), http_client=http)
    reference = {"name": "a.png", "mime": "image/png", "path": "a"}
    params = {
        "mode": "multi",
        "image": reference,
        "image_2": {**reference, "path": "b"},
        "image_3": None,
        "source": "video",
        "video": {"name": "m.mp4", "mime": "video/mp4", "path": "m"},
        "templateID": "",
        "bgMode": 0,
        "modelInfoID": 2,
        "watermark": True,
    }
    outcome = run(viggle_kind.ViggleKind().submit(client, params))
    assert outcome.upstream_id == "task-9" and outcome.progress == 0
    paths = [request.url.path for request in relay.requests]
    assert paths == [
        "/viggle/asset/image",
        "/viggle/asset/image",
        "/viggle/asset/video/img-a",  # the motion belongs to the first character
        "/viggle/video-task",
    ]
    assert json.loads(relay.requests[-1].content) == {
        "imageID": "img-a",
        "imageIDs": ["img-a", "img-b"],
        "videoID": "vid",
        "bgMode": 0,
        "modelInfoID": 2,
        "watermark": 1,
        "type": 1,
    }
