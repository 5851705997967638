"""The Suno family against a fake transport, in both of the relay's formats: the requests each
sends, envelopes, statuses, clips as an object or a list, failure reasons, error shapes; and the
kind's form, upstream ids, progress and result files."""

import asyncio
import json

import httpx
import pytest
from django.utils.datastructures import MultiValueDict

from media_jobs.kinds import suno as suno_kind
from studio.upstream import suno
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
CLIP_1 = "56ea8da3-8507-4118-9f1e-111111111111"
CLIP_2 = "56ea8da3-8507-4118-9f1e-222222222222"


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

    def client(self, fmt: str | None = None) -> RelayClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        options = {"suno_format": fmt} if fmt else {}
        return RelayClient(RelayCredentials(BASE_URL, KEY, options=options), http_client=http)

    def last_json(self) -> dict:
        return json.loads(self.requests[-1].content)

    def last_path(self) -> str:
        return self.requests[-1].url.path


def run(coro):
    return asyncio.run(coro)


def clip(clip_id=CLIP_1, status="complete", **metadata) -> dict:
    return {
        "id": clip_id,
        "title": "Rainy Tokyo",
        "status": status,
        "audio_url": f"https://cdn1.suno.ai/{clip_id}.mp3",
        "video_url": f"https://cdn1.suno.ai/{clip_id}.mp4",
        "image_url": f"https://cdn1.suno.ai/image_{clip_id}.jpeg",
        "image_large_url": f"https://cdn1.suno.ai/image_large_{clip_id}.jpeg",
        "model_name": "chirp-v3",
        "metadata": {
            "tags": "city pop",
            "prompt": "[Verse]\nNeon rain",
            "duration": 123.4,
            "error_type": None,
            "error_message": None,
            **metadata,
        },
    }


def task_a(status="completed", clips=None, **extra) -> dict:
    clips = [clip(CLIP_1), clip(CLIP_2)] if clips is None else clips
    return {
        "code": 200,
        "message": "success",
        "data": {
            "task_id": "t-1",
            "status": status,
            "input": '{"custom_mode":false}',
            "clips": {item["id"]: item for item in clips},
            **extra,
        },
    }


def task_b(status="SUCCESS", clips=None, progress="100%", **extra) -> dict:
    return {
        "code": "success",
        "message": "",
        "data": {
            "task_id": "t-2",
            "action": "MUSIC",
            "status": status,
            "fail_reason": "",
            "submit_time": 1730000000,
            "progress": progress,
            "data": [clip(CLIP_1), clip(CLIP_2)] if clips is None else clips,
            **extra,
        },
    }


ACCEPTED_A = {"code": 200, "data": {"task_id": "t-1"}, "message": "success"}
ACCEPTED_B = {"code": "success", "message": "", "data": "t-2"}


# --- requests -------------------------------------------------------------------------------


def test_format_a_is_the_default_and_sends_inspiration_mode_in_input():
    relay = Relay((200, ACCEPTED_A))
    submitted = run(suno.generate(relay.client(), gpt_description_prompt="rainy tokyo"))
    assert submitted == suno.SunoSubmission("t-1", "a", "v30")
    assert relay.last_path() == "/suno/v1/v3.0/music"
    assert relay.last_json() == {
        "custom_mode": False,
        "input": {
            "gpt_description_prompt": "rainy tokyo",
            "make_instrumental": False,
            "mv": "chirp-v3-0",
        },
    }


def test_format_a_custom_mode_with_v35_uses_the_v35_paths():
    relay = Relay((200, ACCEPTED_A), (200, task_a()))
    client = relay.client("a")
    submitted = run(
        suno.generate(client, prompt="[Verse]\nla", title="T", tags="pop", mv=suno.MV_V35)
    )
    assert relay.last_path() == "/suno/v1/v3.5/music"
    body = relay.last_json()
    assert body["custom_mode"] is True
    assert body["input"] == {
        "prompt": "[Verse]\nla",
        "title": "T",
        "tags": "pop",
        "make_instrumental": False,
        "mv": "chirp-v3-5",
    }
    assert submitted.route == "v35"
    run(suno.fetch(client, submitted.task_id, route=submitted.route))
    assert relay.last_path() == "/suno/v1/v3.5/music/t-1"


def test_format_b_sends_flat_fields_and_reads_a_bare_task_id():
    relay = Relay((200, ACCEPTED_B))
    submitted = run(
        suno.extend(relay.client("b"), CLIP_1, 30.0, prompt="more", tags="pop", task_id="t-0")
    )
    assert submitted == suno.SunoSubmission("t-2", "b", "b")
    assert relay.last_path() == "/suno/submit/music"
    assert relay.last_json() == {
        "prompt": "more",
        "tags": "pop",
        "make_instrumental": False,
        "mv": "chirp-v3-0",
        "continue_clip_id": CLIP_1,
        "continue_at": 30,
        "task_id": "t-0",
    }


def test_extend_in_format_a_is_custom_mode_with_the_clip_and_second():
    relay = Relay((200, ACCEPTED_A))
    run(suno.extend(relay.client(), CLIP_1, 61.25, title="T"))
    assert relay.last_json() == {
        "custom_mode": True,
        "input": {
            "title": "T",
            "make_instrumental": False,
            "mv": "chirp-v3-0",
            "continue_clip_id": CLIP_1,
            "continue_at": 61.25,
        },
    }


@pytest.mark.parametrize(
    ("fmt", "reply", "path", "body"),
    [
        ("a", ACCEPTED_A, "/suno/v1/v3.0/music/concat", {"clip_id": CLIP_1}),
        ("b", ACCEPTED_B, "/suno/submit/concat", {"clip_id": CLIP_1, "is_infill": False}),
    ],
)
def test_concat_in_each_format(fmt, reply, path, body):
    relay = Relay((200, reply))
    submitted = run(suno.concat(relay.client(fmt), CLIP_1))
    assert relay.last_path() == path and relay.last_json() == body
    assert submitted.format == fmt and submitted.route in ("v30", "b")


def test_an_explicit_format_wins_over_the_option_and_a_bad_one_is_refused():
    relay = Relay((200, task_b()))
    task = run(suno.fetch(relay.client("a"), "t-2", fmt="b"))
    assert relay.last_path() == "/suno/fetch/t-2" and task.format == "b"
    with pytest.raises(BadRequestError, match="unknown Suno format"):
        run(suno.fetch(relay.client("c"), "t-2"))


# --- replies --------------------------------------------------------------------------------


def test_format_a_clips_keyed_by_id_are_read():
    relay = Relay((200, task_a()))
    task = run(suno.fetch(relay.client(), "t-1"))
    assert task.succeeded and task.finished and task.raw_status == "completed"
    assert [c.id for c in task.clips] == [CLIP_1, CLIP_2]
    first = task.clips[0]
    assert first.title == "Rainy Tokyo" and first.tags == "city pop"
    assert first.lyrics == "[Verse]\nNeon rain" and first.duration == 123.4
    assert first.cover_url.endswith(f"image_large_{CLIP_1}.jpeg")
    assert task.progress is None


@pytest.mark.parametrize(
    ("raw", "status", "progress"),
    [
        ("NOT_START", suno.PENDING, "0%"),
        ("SUBMITTED", suno.PENDING, "0%"),
        ("QUEUED", suno.PENDING, "0%"),
        ("IN_PROGRESS", suno.PROCESSING, "45%"),
        ("SUCCESS", suno.COMPLETED, "100%"),
        ("FAILURE", suno.FAILED, "40%"),
    ],
)
def test_format_b_statuses_and_progress(raw, status, progress):
    relay = Relay((200, task_b(raw, progress=progress)))
    task = run(suno.fetch(relay.client("b"), "t-2"))
    assert task.status == status
    assert task.progress == int(progress.rstrip("%"))


def test_a_failed_task_carries_the_relay_reason_in_either_format():
    failed_clip = clip(status="error", error_message="Lyrics flagged by moderation")
    task = suno.parse_task_a(task_a("failed", [failed_clip])["data"])
    assert task.failed and task.fail_reason == "Lyrics flagged by moderation"
    task = suno.parse_task_a(task_a("failed", [], error={"code": 1, "message": "boom"})["data"])
    assert task.fail_reason == "boom"
    task = suno.parse_task_b(task_b("FAILURE", fail_reason="上游超时")["data"])
    assert task.failed and task.fail_reason == "上游超时"


def test_streaming_clips_are_not_finished_and_errors_are_not_playable():
    streaming = clip(status="streaming", duration=None)
    task = suno.parse_task_a(task_a("processing", [streaming])["data"])
    assert not task.finished and task.clips[0].duration is None
    assert task.playable_clips == task.clips  # Suno's streaming audio already plays
    broken = {**clip(CLIP_2), "status": "error"}
    task = suno.parse_task_a(task_a("completed", [clip(), broken])["data"])
    assert [c.id for c in task.playable_clips] == [CLIP_1]


def test_clips_are_read_leniently():
    clips = suno.parse_clips(
        [
            {"id": 12345, "status": "complete", "audio_url": "https://x/a.mp3"},
            {"id": "b", "metadata": {"duration": "61.5"}, "tags": "t", "image_url": None},
            {"no": "id"},
            "junk",
            {"id": "c", "metadata": {"duration": "n/a"}},
        ]
    )
    assert [c.id for c in clips] == ["12345", "b", "c"]
    assert clips[1].duration == 61.5 and clips[1].tags == "t" and clips[1].image_url == ""
    assert clips[2].duration is None
    assert suno.parse_clips(None) == ()


def test_a_task_without_a_status_is_judged_by_its_clips():
    assert suno.normalise_status("", (suno.SunoClip("a", status="complete"),)) == suno.COMPLETED
    assert suno.normalise_status("", (suno.SunoClip("a", status="error"),)) == suno.FAILED
    assert suno.normalise_status("", (suno.SunoClip("a", status="streaming"),)) == suno.PROCESSING
    assert suno.normalise_status("", ()) == suno.PENDING


def test_the_batch_fetch_list_is_read_for_the_task_asked():
    data = [
        {**task_b()["data"], "task_id": "other"},
        {**task_b("IN_PROGRESS", progress="20%")["data"]},
    ]
    task = suno.parse_task_b(data, task_id="t-2")
    assert task.task_id == "t-2" and task.progress == 20


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error_class", "words"),
    [
        # GoAPI's own shape inside an HTTP 200 reply
        ({"code": 400, "message": "bad", "error_message": "prompt too long"}, BadRequestError, ""),
        ({"code": 401, "message": "invalid api key"}, AuthError, ""),
        ({"code": 429, "message": "too many requests"}, RateLimitedError, ""),
        ({"code": 500, "message": "upstream failed"}, UnavailableError, ""),
        ({"code": 10001, "message": "insufficient credits"}, QuotaError, ""),
        # the task relay's envelope on a format a path
        ({"code": "quota_not_enough", "message": "quota_not_enough", "data": None}, QuotaError, ""),
    ],
)
def test_a_failing_code_in_a_200_reply_raises_the_matching_error(body, error_class, words):
    relay = Relay((200, body))
    with pytest.raises(error_class) as raised:
        run(suno.generate(relay.client(), gpt_description_prompt="x"))
    assert raised.value.relay_code == str(body["code"])
    assert raised.value.message.startswith(str(body["message"]))


def test_goapi_error_message_and_detail_are_both_kept():
    relay = Relay((400, {"code": 400, "message": "bad", "error_message": "prompt too long"}))
    with pytest.raises(BadRequestError) as raised:
        run(suno.generate(relay.client(), gpt_description_prompt="x"))
    assert raised.value.status == 400
    assert "bad" in raised.value.message and "prompt too long" in raised.value.message


@pytest.mark.parametrize(
    ("status", "token", "error_class"),
    [
        (403, "quota_not_enough", QuotaError),
        (400, "task_not_exist", BadRequestError),
        (400, "invalid_request", BadRequestError),
        (500, "do_request_failed", UnavailableError),
    ],
)
def test_task_relay_errors_in_format_b(status, token, error_class):
    relay = Relay((status, {"code": token, "message": f"{token} said", "data": None}))
    with pytest.raises(error_class) as raised:
        run(suno.fetch(relay.client("b"), "t-2"))
    assert raised.value.relay_code == token and raised.value.message == f"{token} said"


def test_a_non_success_code_with_http_200_in_format_b_raises():
    relay = Relay((200, {"code": "fail_to_fetch_task", "message": "boom", "data": None}))
    with pytest.raises(BadRequestError, match="boom"):
        run(suno.fetch(relay.client("b"), "t-2"))


@pytest.mark.parametrize(
    "payload",
    [{"code": 200, "data": {}}, {"code": 200, "data": None}, {"code": "success", "data": ""}],
)
def test_an_accepted_task_without_id_is_a_protocol_error(payload):
    relay = Relay((200, payload))
    with pytest.raises(ProtocolError):
        run(suno.generate(relay.client(), gpt_description_prompt="x"))


def test_a_fetch_without_a_task_object_is_a_protocol_error():
    relay = Relay((200, {"code": 200, "message": "success", "data": "nope"}))
    with pytest.raises(ProtocolError):
        run(suno.fetch(relay.client(), "t-1"))


# --- the kind -------------------------------------------------------------------------------


def form_errors(**fields) -> dict:
    data = {"mode": "generate", "mv": "chirp-v3-0", **fields}
    form = suno_kind.SunoForm(MultiValueDict({k: [v] for k, v in data.items()}))
    form.is_valid()
    return {name: " ".join(str(m) for m in messages) for name, messages in form.errors.items()}


def test_the_form_checks_each_mode():
    assert form_errors(prompt="a song about rain") == {}
    assert "Describe the song" in form_errors(prompt="")["prompt"]
    assert "200 characters" in form_errors(prompt="x" * 201)["prompt"]
    assert "Write the lyrics" in form_errors(mode="custom")["prompt"]
    assert "needs a style" in form_errors(mode="custom", make_instrumental="on")["tags"]
    assert form_errors(mode="custom", make_instrumental="on", tags="ambient") == {}
    errors = form_errors(mode="extend")
    assert "clip to continue" in errors["continue_clip_id"]
    assert "which second" in errors["continue_at"]
    assert form_errors(mode="extend", continue_clip_id=CLIP_1, continue_at="30") == {}
    assert (
        "not a Suno clip id"
        in form_errors(mode="concat", continue_clip_id="../x")["continue_clip_id"]
    )
    assert "join" in form_errors(mode="concat")["continue_clip_id"]
    assert form_errors(prompt="a song", continue_clip_id="../x") == {}  # not used when describing


def test_the_upstream_id_keeps_format_route_and_model():
    ref = suno_kind.TaskRef.of(suno.SunoSubmission("t:1", "a", "v35"), "chirp-v3-5")
    assert str(ref) == "a:v35:chirp-v3-5:t:1"
    assert suno_kind.TaskRef.parse(str(ref)) == ref
    for bad in ("t-1", "c:v30:chirp-v3-0:t", "a:v40:chirp-v3-0:t", "a:v30:chirp-v3-0:"):
        with pytest.raises(BadRequestError):
            suno_kind.TaskRef.parse(bad)


def test_progress_is_estimated_when_the_relay_gives_none():
    pending = suno.SunoTask("t", "a", status=suno.PENDING)
    queued = suno.SunoTask("t", "a", status=suno.PROCESSING, clips=(suno.SunoClip("c"),))
    streaming = suno.SunoTask(
        "t", "a", status=suno.PROCESSING, clips=(suno.SunoClip("c", status="streaming"),)
    )
    assert suno_kind.estimate_progress(pending) == 0
    assert 0 < suno_kind.estimate_progress(queued) < suno_kind.estimate_progress(streaming) < 100
    assert suno_kind.estimate_progress(suno.SunoTask("t", "b", progress=42)) == 42


def test_results_pair_each_clip_with_its_audio_and_cover():
    no_cover = {**clip(CLIP_2), "image_url": None, "image_large_url": None}
    no_cover["audio_url"] = "https://cdn.example/x.wav?sig=1"
    task = suno.parse_task_a(task_a("completed", [clip(), no_cover])["data"])
    ref = suno_kind.TaskRef("a", "v30", "chirp-v3-0", "t-1")
    files, result = suno_kind.results(task, ref)
    assert [f.name for f in files] == ["clip-1.mp3", "cover-1.jpeg", "clip-2.wav"]
    first, second = result["clips"]
    assert (first["audio_index"], first["cover_index"]) == (0, 1)
    assert (second["audio_index"], second["cover_index"]) == (2, None)
    assert files[first["audio_index"]].url == task.clips[0].audio_url
    assert first["length"] == "2:03" and first["continue_from"] == 123
    assert result["mv"] == "chirp-v3-0" and result["task_id"] == "t-1"
