"""The simulator, seen from a client: real HTTP against ``python -m studio.simulator``.

Plain httpx on purpose (not studio.upstream): these tests pin down what the fake relay sends,
so the real client's tests can trust it. Each test asserts what a caller would notice.
"""

from __future__ import annotations

import base64
import io
import json
import math
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.simulator_fixture import (
    BANNED_KEY,
    EXTRA_KEY,
    INVALID_KEY,
    KEY,
    NOQUOTA_KEY,
    OTHER_KEY,
    ROOT,
    RunningSimulator,
    free_port,
    start_simulator,
)

SATURATED = "当前分组上游负载已饱和，请稍后再试"  # noqa: RUF001 - the relay's exact words


@pytest.fixture
def client(simulator: RunningSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.url, headers=simulator.headers(), timeout=20) as c:
        yield c


def chat(client: httpx.Client, text: str, **extra: Any) -> httpx.Response:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}
    return client.post("/v1/chat/completions", json=body)


def read_sse(response: httpx.Response) -> tuple[list[Any], list[str]]:
    """Minimal SSE reader: (decoded data payloads, comment lines). "[DONE]" is kept as a str."""
    events: list[Any] = []
    comments: list[str] = []
    for line in response.iter_lines():
        if line.startswith(":"):
            comments.append(line)
        elif line.startswith("data:"):
            data = line[5:].strip()
            events.append(data if data == "[DONE]" else json.loads(data))
    return events, comments


def png_data_uri(colour: str = "red", size: tuple[int, int] = (64, 48)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def download_png(url: str) -> Image.Image:
    response = httpx.get(url, timeout=10)  # no auth: result URLs behave like a CDN
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def assert_openai_error(response: httpx.Response, status: int, code: Any = ...) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    if code is not ...:
        assert error["code"] == code
    return error


# ---------------------------------------------------------------- auth, routing, models


def test_health_needs_no_auth(simulator: RunningSimulator) -> None:
    response = httpx.get(f"{simulator.url}/__health")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/mj/task/1/fetch")],
)
def test_missing_token_is_401_everywhere(
    simulator: RunningSimulator, method: str, path: str
) -> None:
    response = httpx.request(method, f"{simulator.url}{path}", json={})
    error = assert_openai_error(response, 401, "invalid_api_key")
    assert error["type"] == "new_api_error"
    assert error["message"].startswith("无效的令牌 (request id: ")


def test_unknown_token_is_401(simulator: RunningSimulator) -> None:
    response = httpx.get(f"{simulator.url}/v1/models", headers=simulator.headers(INVALID_KEY))
    assert_openai_error(response, 401, "invalid_api_key")


def test_token_works_with_or_without_sk_prefix_and_from_simulator_keys(
    simulator: RunningSimulator,
) -> None:
    for token in (KEY, KEY.removeprefix("sk-"), EXTRA_KEY, EXTRA_KEY.removeprefix("sk-")):
        response = httpx.get(f"{simulator.url}/v1/models", headers=simulator.headers(token))
        assert response.status_code == 200, token


def test_mj_api_secret_header_only_counts_on_mj_paths(simulator: RunningSimulator) -> None:
    secret = {"mj-api-secret": KEY}
    mj = httpx.post(f"{simulator.url}/mj/submit/imagine", headers=secret, json={"prompt": "a cat"})
    assert mj.status_code == 200
    assert mj.json()["code"] == 1
    v1 = httpx.get(f"{simulator.url}/v1/models", headers=secret)
    assert v1.status_code == 401


def test_noquota_token(simulator: RunningSimulator) -> None:
    v1 = httpx.get(f"{simulator.url}/v1/models", headers=simulator.headers(NOQUOTA_KEY))
    error = assert_openai_error(v1, 403, "insufficient_quota")
    assert "额度已用尽" in error["message"]
    mj = httpx.post(
        f"{simulator.url}/mj/submit/imagine",
        headers=simulator.headers(NOQUOTA_KEY),
        json={"prompt": "x"},
    )
    assert mj.status_code == 400
    assert mj.json() == {"description": "quota_not_enough", "type": "upstream_error", "code": 4}


def test_banned_token(simulator: RunningSimulator) -> None:
    response = httpx.get(f"{simulator.url}/v1/models", headers=simulator.headers(BANNED_KEY))
    assert "封禁" in assert_openai_error(response, 403)["message"]


def test_unknown_route_is_invalid_url(client: httpx.Client) -> None:
    response = client.post("/v1/xxx", json={})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["message"] == "Invalid URL (POST /v1/xxx)"
    assert error["type"] == "invalid_request_error"


def test_models_list(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    ids = {m["id"] for m in body["data"]}
    assert {
        "gpt-4o",
        "gpt-4-all",
        "dall-e-3",
        "tts-1",
        "whisper-1",
        "text-embedding-3-small",
    } <= ids
    assert all(m["object"] == "model" and m["owned_by"] for m in body["data"])


# ---------------------------------------------------------------- chat


def test_chat_stream_follows_the_openai_chunk_protocol(client: httpx.Client) -> None:
    body = {
        "model": "gpt-4o",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Explain streams"}],
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events, comments = read_sse(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert not chunks[0]["choices"][0]["delta"].get("content")
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    content_chunks = chunks[1:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in content_chunks)
    assert [c["choices"][0]["finish_reason"] for c in content_chunks[:-1]] == [None] * (
        len(content_chunks) - 1
    )
    assert content_chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
    assert "Explain streams" in text
    assert "\n## " in text and "\n- " in text and "```python" in text
    assert usage_chunk["usage"]["completion_tokens"] == len(content_chunks)
    assert comments and all(c.startswith(": ping") for c in comments)
    # Same prompt, same answer, streamed or not.
    plain = chat(client, "Explain streams").json()
    assert plain["choices"][0]["message"]["content"] == text
    assert plain["choices"][0]["finish_reason"] == "stop"
    assert plain["usage"]["completion_tokens"] == len(content_chunks)


def test_stream_without_include_usage_has_no_usage_chunk(client: httpx.Client) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as response:
        events, _ = read_sse(response)
    assert events[-1] == "[DONE]"
    assert all(e["choices"] for e in events[:-1])


def test_chat_content_parts_and_length_knobs(client: httpx.Client) -> None:
    parts = [
        {"type": "text", "text": "Describe [[tokens=7]]"},
        {"type": "image_url", "image_url": {"url": "x"}},
    ]
    body = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": parts}]},
    ).json()
    assert body["usage"]["completion_tokens"] == 7
    assert "[[" not in body["choices"][0]["message"]["content"]
    long = chat(client, "write a lot [[tokens=400]]").json()
    assert long["usage"]["completion_tokens"] == 400
    capped = chat(client, "hello", max_tokens=5).json()
    assert capped["choices"][0]["finish_reason"] == "length"
    assert capped["usage"]["completion_tokens"] == 5


def test_tps_marker_paces_the_stream(client: httpx.Client) -> None:
    started = time.monotonic()
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "gpt-4o",
            "stream": True,
            "messages": [{"role": "user", "content": "[[tps=25]] [[tokens=10]]"}],
        },
    ) as response:
        events, _ = read_sse(response)
    assert time.monotonic() - started >= 10 / 25 - 0.05
    assert len(events) == 1 + 10 + 1  # role chunk, ten tokens, [DONE]


def test_gpt_4_all_reply_links_a_real_png(client: httpx.Client) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "gpt-4-all",
            "stream": True,
            "messages": [{"role": "user", "content": "draw a fox"}],
        },
    ) as response:
        events, comments = read_sse(response)
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert comments, "the long drawing pause is filled with keep-alive pings"
    start = text.index("![image](") + len("![image](")
    url = text[start : text.index(")", start)]
    assert url.startswith(str(client.base_url).rstrip("/") + "/files/")
    assert download_png(url).size == (1024, 1024)


@pytest.mark.parametrize("stream", [False, True])
def test_429_saturated_with_retry_after(client: httpx.Client, stream: bool) -> None:
    response = chat(client, "hi [[error:429]]", stream=stream)
    error = assert_openai_error(response, 429)
    assert SATURATED in error["message"]
    assert response.headers["retry-after"] == "7"


def test_503_no_channel(client: httpx.Client) -> None:
    error = assert_openai_error(chat(client, "hi [[error:503]]"), 503)
    assert "no available channel for model gpt-4o" in error["message"]
    unknown = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-unknown-9", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert (
        "no available channel for model gpt-unknown-9"
        in assert_openai_error(unknown, 503)["message"]
    )


def test_html_error_body_is_not_json(client: httpx.Client) -> None:
    response = chat(client, "hi [[error:500-html]]")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_400_and_quota_errors(client: httpx.Client) -> None:
    assert (
        assert_openai_error(chat(client, "[[error:400]]"), 400)["type"] == "invalid_request_error"
    )
    assert_openai_error(chat(client, "[[error:quota]]"), 403, "insufficient_quota")
    assert_openai_error(client.post("/v1/chat/completions", json={"model": "gpt-4o"}), 400)
    bad_json = client.post(
        "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_openai_error(bad_json, 400)


def test_die_cuts_the_stream_without_done(client: httpx.Client) -> None:
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "gpt-4o",
                "stream": True,
                "messages": [{"role": "user", "content": "[[die]]"}],
            },
        ) as response:
            assert response.status_code == 200
            received.extend(response.iter_lines())
    assert any(line.startswith("data: {") for line in received)
    assert "data: [DONE]" not in received


def test_midstream_error_event(client: httpx.Client) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "gpt-4o",
            "stream": True,
            "messages": [{"role": "user", "content": "[[error:midstream]]"}],
        },
    ) as response:
        events, _ = read_sse(response)
    assert "[DONE]" not in events
    assert "choices" in events[1]
    assert events[-1]["error"]["message"]


def test_sleep_marker_trips_a_client_read_timeout(simulator: RunningSimulator) -> None:
    timeout = httpx.Timeout(10, read=0.5)
    with httpx.Client(
        base_url=simulator.url, headers=simulator.headers(), timeout=timeout
    ) as client:
        with pytest.raises(httpx.ReadTimeout):
            with client.stream(
                "POST",
                "/v1/chat/completions",
                json={
                    "model": "gpt-4o",
                    "stream": True,
                    "messages": [{"role": "user", "content": "[[sleep=3]]"}],
                },
            ) as response:
                list(response.iter_lines())
        with pytest.raises(httpx.ReadTimeout):
            chat(client, "[[slow]]")  # 60 s / SIMULATOR_SPEED, still longer than the 0.5 s budget


# ---------------------------------------------------------------- completions, embeddings


def test_completions_stream_and_plain(client: httpx.Client) -> None:
    plain = client.post(
        "/v1/completions", json={"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon"}
    ).json()
    assert plain["object"] == "text_completion"
    assert (
        plain["choices"][0]["finish_reason"] == "length"
    )  # the endpoint's default max_tokens is 16
    assert plain["usage"]["completion_tokens"] == 16
    body = {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "Once upon",
        "stream": True,
        "max_tokens": 200,
    }
    with client.stream("POST", "/v1/completions", json=body) as response:
        events, _ = read_sse(response)
    assert events[-1] == "[DONE]"
    texts = [e["choices"][0]["text"] for e in events[:-1]]
    assert "".join(texts).startswith(plain["choices"][0]["text"])
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


def test_embeddings_are_deterministic_unit_vectors(client: httpx.Client) -> None:
    def get(**extra: Any) -> dict[str, Any]:
        response = client.post("/v1/embeddings", json={"model": "text-embedding-3-small", **extra})
        assert response.status_code == 200, response.text
        return response.json()

    first = get(input=["alpha", "beta"])
    again = get(input="alpha")
    assert [d["index"] for d in first["data"]] == [0, 1]
    vec = first["data"][0]["embedding"]
    assert len(vec) == 1536 and vec == again["data"][0]["embedding"]
    assert vec != first["data"][1]["embedding"]
    assert math.isclose(math.sqrt(sum(v * v for v in vec)), 1.0, rel_tol=1e-5)
    assert len(get(input="alpha", dimensions=256)["data"][0]["embedding"]) == 256
    packed = get(input="alpha", encoding_format="base64")["data"][0]["embedding"]
    assert len(base64.b64decode(packed)) == 4 * 1536
    assert first["usage"]["prompt_tokens"] > 0


# ---------------------------------------------------------------- images, files


def test_dalle3_url_downloads_a_png_of_the_requested_size(client: httpx.Client) -> None:
    response = client.post(
        "/v1/images/generations",
        json={"model": "dall-e-3", "prompt": "a lighthouse", "size": "1792x1024"},
    )
    assert response.status_code == 200, response.text
    item = response.json()["data"][0]
    assert "lighthouse" in item["revised_prompt"]
    assert download_png(item["url"]).size == (1792, 1024)


def test_dalle3_b64_json(client: httpx.Client) -> None:
    body = {
        "model": "dall-e-3",
        "prompt": "tall",
        "size": "1024x1792",
        "response_format": "b64_json",
    }
    item = client.post("/v1/images/generations", json=body).json()["data"][0]
    assert "url" not in item
    assert Image.open(io.BytesIO(base64.b64decode(item["b64_json"]))).size == (1024, 1792)


@pytest.mark.parametrize(
    ("extra", "param"), [({"n": 2}, "n"), ({"size": "512x512"}, "size"), ({"prompt": ""}, "prompt")]
)
def test_dalle3_validation(client: httpx.Client, extra: dict[str, Any], param: str) -> None:
    body = {"model": "dall-e-3", "prompt": "x", **extra}
    error = assert_openai_error(client.post("/v1/images/generations", json=body), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_expired_result_urls(client: httpx.Client) -> None:
    body = {"model": "dall-e-3", "prompt": "gone soon [[expire]]"}
    url = client.post("/v1/images/generations", json=body).json()["data"][0]["url"]
    assert httpx.get(url).status_code == 403
    fresh = client.post("/v1/images/generations", json={"model": "dall-e-3", "prompt": "fresh"})
    fresh_url = fresh.json()["data"][0]["url"]
    assert httpx.get(fresh_url).status_code == 200
    expired = httpx.get(fresh_url, params={"expired": "1"})
    assert expired.status_code == 403 and "expired" in expired.text
    assert httpx.get(fresh_url.rsplit("/", 1)[0] + "/does-not-exist.png").status_code == 404


def test_files_expire_after_the_ttl() -> None:
    with start_simulator(env={"SIMULATOR_FILE_TTL": "1"}) as sim:
        response = httpx.post(
            f"{sim.url}/v1/images/generations",
            headers=sim.headers(),
            json={"model": "dall-e-3", "prompt": "p"},
        )
        url = response.json()["data"][0]["url"]
        assert httpx.get(url).status_code == 200
        time.sleep(1.2)
        assert httpx.get(url).status_code == 403


# ---------------------------------------------------------------- audio


def test_speech_is_a_playable_wav_whose_length_follows_the_text(client: httpx.Client) -> None:
    def speak(text: str, **extra: Any) -> httpx.Response:
        return client.post(
            "/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": text, **extra}
        )

    short = speak("Hello.", response_format="wav")
    assert short.status_code == 200
    assert short.headers["content-type"] == "audio/wav"
    long = speak("Hello there, this is a much longer sentence to read aloud for the test.")
    assert long.headers["content-type"] == "audio/wav"  # mp3 asked (default), honest WAV served

    def frames(data: bytes) -> int:
        with wave.open(io.BytesIO(data)) as wav:
            assert wav.getnchannels() == 1
            return wav.getnframes()

    assert 0 < frames(short.content) < frames(long.content)
    pcm = speak("Hello.", response_format="pcm")
    assert pcm.headers["content-type"] == "audio/pcm"
    assert len(pcm.content) == 2 * frames(short.content)
    assert_openai_error(speak(""), 400)


def test_transcription_formats(client: httpx.Client) -> None:
    audio = client.post(
        "/v1/audio/speech",
        json={"model": "tts-1", "voice": "nova", "input": "one two", "response_format": "wav"},
    ).content

    def transcribe(fmt: str, path: str = "/v1/audio/transcriptions") -> httpx.Response:
        files = {"file": ("speech.wav", audio, "audio/wav")}
        return client.post(path, files=files, data={"model": "whisper-1", "response_format": fmt})

    as_json = transcribe("json")
    assert as_json.headers["content-type"].startswith("application/json")
    text = as_json.json()["text"]
    as_text = transcribe("text")
    assert as_text.headers["content-type"].startswith("text/plain")
    assert as_text.text.strip() == text
    verbose = transcribe("verbose_json").json()
    assert verbose["text"] == text and verbose["task"] == "transcribe" and verbose["segments"]
    srt = transcribe("srt")
    assert srt.text.startswith("1\n00:00:00,000 --> ")
    assert transcribe("vtt").text.startswith("WEBVTT")
    translated = transcribe("json", "/v1/audio/translations").json()["text"]
    assert "English" in translated
    missing = client.post("/v1/audio/transcriptions", files={"model": (None, "whisper-1")})
    assert assert_openai_error(missing, 400)["param"] == "file"


# ---------------------------------------------------------------- midjourney


def mj_submit(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/mj/submit/{path}" if not path.startswith("/") else path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def mj_wait(
    client: httpx.Client, task_id: str, limit: int = 40
) -> tuple[dict[str, Any], list[str]]:
    statuses: list[str] = []
    for _ in range(limit):
        response = client.get(f"/mj/task/{task_id}/fetch")
        assert response.status_code == 200, response.text
        task = response.json()
        statuses.append(task["status"])
        if task["status"] in ("SUCCESS", "FAILURE", "MODAL"):
            return task, statuses
    raise AssertionError(f"task {task_id} never finished: {statuses}")


def test_imagine_runs_to_success_with_a_grid_and_buttons(client: httpx.Client) -> None:
    submitted = mj_submit(client, "imagine", {"prompt": "a red fox --ar 16:9", "state": "mine"})
    assert submitted["code"] == 1 and submitted["description"] == "提交成功"
    task_id = submitted["result"]
    assert isinstance(task_id, str) and len(task_id) == 16 and task_id.isdigit()
    task, statuses = mj_wait(client, task_id)
    assert statuses[0] == "NOT_START" and "SUBMITTED" in statuses and "IN_PROGRESS" in statuses
    assert task["status"] == "SUCCESS" and task["progress"] == "100%"
    assert task["action"] == "IMAGINE" and task["state"] == "mine"
    assert task["properties"]["finalPrompt"] == "a red fox --ar 16:9"
    assert task["submitTime"] <= task["startTime"] <= task["finishTime"]
    grid = download_png(task["imageUrl"])
    assert grid.size == (1024, 576)
    assert [download_png(u["url"]).size for u in task["imageUrls"]] == [(512, 288)] * 4
    labels = [b["label"] or b["emoji"] for b in task["buttons"]]
    assert labels == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    assert all(b["customId"].startswith("MJ::JOB::") for b in task["buttons"])


def test_progress_is_a_percentage_ladder(client: httpx.Client) -> None:
    task_id = mj_submit(client, "imagine", {"prompt": "ladder"})["result"]
    seen = [client.get(f"/mj/task/{task_id}/fetch").json()["progress"] for _ in range(12)]
    assert seen[-1] == "100%"
    numbers = [int(p.rstrip("%")) for p in seen]
    assert numbers == sorted(numbers)
    assert any(0 < n < 100 for n in numbers)


def test_upscale_then_upscaled_buttons_and_seed(client: httpx.Client) -> None:
    grid, _ = mj_wait(client, mj_submit(client, "imagine", {"prompt": "castle"})["result"])
    u1 = next(b["customId"] for b in grid["buttons"] if b["label"] == "U1")
    submitted = mj_submit(client, "action", {"taskId": grid["id"], "customId": u1})
    assert submitted["code"] == 1
    task, _ = mj_wait(client, submitted["result"])
    assert task["action"] == "UPSCALE" and task["status"] == "SUCCESS"
    assert task["imageUrls"] == []
    assert download_png(task["imageUrl"]).size == (1024, 1024)
    labels = {b["label"] for b in task["buttons"]}
    assert {
        "Upscale (Subtle)",
        "Vary (Strong)",
        "Vary (Region)",
        "Zoom Out 2x",
        "Custom Zoom",
    } <= labels
    assert {b["emoji"] for b in task["buttons"]} >= {"⬅️", "➡️", "⬆️", "⬇️"}
    seed = client.get(f"/mj/task/{task['id']}/image-seed").json()
    assert seed["code"] == 1 and seed["description"] == "成功" and seed["result"].isdigit()


def test_custom_zoom_waits_for_the_modal(client: httpx.Client) -> None:
    grid, _ = mj_wait(client, mj_submit(client, "imagine", {"prompt": "bridge"})["result"])
    upscaled, _ = mj_wait(
        client,
        mj_submit(
            client, "action", {"taskId": grid["id"], "customId": grid["buttons"][0]["customId"]}
        )["result"],
    )
    zoom = next(
        b["customId"] for b in upscaled["buttons"] if b["customId"].startswith("MJ::CustomZoom::")
    )
    answered = mj_submit(client, "action", {"taskId": upscaled["id"], "customId": zoom})
    assert answered["code"] == 21 and answered["properties"]["status"] == "MODAL"
    new_id = answered["result"]
    for _ in range(3):  # fetching does not move a MODAL task
        assert client.get(f"/mj/task/{new_id}/fetch").json()["status"] == "MODAL"
    assert mj_submit(client, "modal", {"taskId": new_id})["code"] == 4  # Custom Zoom needs a prompt
    assert mj_submit(client, "modal", {"taskId": new_id, "prompt": "bridge --zoom 2"})["code"] == 1
    task, statuses = mj_wait(client, new_id)
    assert "MODAL" not in statuses
    assert task["status"] == "SUCCESS" and task["action"] == "CUSTOM_ZOOM"
    assert len(task["imageUrls"]) == 4


def test_vary_region_needs_a_mask(client: httpx.Client) -> None:
    grid, _ = mj_wait(client, mj_submit(client, "imagine", {"prompt": "garden"})["result"])
    up, _ = mj_wait(
        client,
        mj_submit(
            client, "action", {"taskId": grid["id"], "customId": grid["buttons"][1]["customId"]}
        )["result"],
    )
    region = next(b["customId"] for b in up["buttons"] if b["customId"].startswith("MJ::Inpaint::"))
    new_id = mj_submit(client, "action", {"taskId": up["id"], "customId": region})["result"]
    assert mj_submit(client, "modal", {"taskId": new_id, "prompt": "roses"})["code"] == 4
    bad = mj_submit(client, "modal", {"taskId": new_id, "maskBase64": "data:image/png;base64,@@@"})
    assert bad == {**bad, "code": 4, "description": "base64格式错误"}
    ok = mj_submit(
        client, "modal", {"taskId": new_id, "prompt": "roses", "maskBase64": png_data_uri("white")}
    )
    assert ok["code"] == 1
    task, _ = mj_wait(client, new_id)
    assert task["status"] == "SUCCESS" and task["action"] == "INPAINT"


@pytest.mark.parametrize(
    ("marker", "code"),
    [("[[mj:queue-full]]", 23), ("[[mj:banned]]", 24), ("[[mj:no-instance]]", 3)],
)
def test_refusals_create_no_task(client: httpx.Client, marker: str, code: int) -> None:
    answer = mj_submit(client, "imagine", {"prompt": f"a cat {marker}"})
    assert answer["code"] == code and answer["result"] is None
    if code == 24:
        assert answer["properties"]["bannedWord"]


def test_failing_task(client: httpx.Client) -> None:
    task, statuses = mj_wait(
        client, mj_submit(client, "imagine", {"prompt": "doomed [[mj:fail]]"})["result"]
    )
    assert "IN_PROGRESS" in statuses
    assert task["status"] == "FAILURE" and task["failReason"] and task["buttons"] == []


def test_task_not_found_and_token_scoping(
    simulator: RunningSimulator, client: httpx.Client
) -> None:
    expected = {"description": "task_no_found ", "type": "upstream_error", "code": 4}
    missing = client.get("/mj/task/1234567890123456/fetch")
    assert missing.status_code == 400 and missing.json() == expected
    task_id = mj_submit(client, "imagine", {"prompt": "private"})["result"]
    other = httpx.get(
        f"{simulator.url}/mj/task/{task_id}/fetch", headers=simulator.headers(OTHER_KEY)
    )
    assert other.status_code == 400 and other.json() == expected


def test_action_and_submit_errors(client: httpx.Client) -> None:
    def wrapper(path: str, body: dict[str, Any]) -> str:
        response = client.post(f"/mj/{path}", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "upstream_error" and response.json()["code"] == 4
        return str(response.json()["description"])

    pending = mj_submit(client, "imagine", {"prompt": "not yet"})["result"]
    u1 = "MJ::JOB::upsample::1::3dbbd469-36af-4a0f-8f02-df6c579e7011"
    assert (
        wrapper("submit/action", {"taskId": "1234567890123456", "customId": u1}) == "task_not_found"
    )
    assert (
        wrapper("submit/action", {"taskId": pending, "customId": u1}) == "task_status_not_success"
    )
    assert (
        wrapper("submit/action", {"taskId": pending, "customId": "MJ::Bogus::1"})
        == "unknown_action:MJ::Bogus::1"
    )
    assert wrapper("submit/imagine", {"prompt": ""}) == "prompt_is_required"
    assert (
        wrapper("insight-face/swap", {"sourceBase64": png_data_uri()})
        == "sour_base64_and_target_base64_is_required"
    )
    seed = client.get(f"/mj/task/{pending}/image-seed")
    assert seed.status_code == 400 and seed.json()["code"] == 4


def test_base64_validation_and_blend(client: httpx.Client) -> None:
    assert mj_submit(client, "blend", {"base64Array": [png_data_uri()]})["code"] == 4
    assert mj_submit(client, "blend", {"base64Array": [png_data_uri()] * 6})["code"] == 4
    bad = mj_submit(client, "imagine", {"prompt": "x", "base64Array": ["not-a-data-uri"]})
    assert bad["code"] == 4 and bad["description"] == "base64格式错误"
    blend = mj_submit(
        client,
        "blend",
        {"base64Array": [png_data_uri("red"), png_data_uri("blue")], "dimensions": "LANDSCAPE"},
    )
    task, _ = mj_wait(client, blend["result"])
    assert task["action"] == "BLEND" and task["status"] == "SUCCESS" and len(task["buttons"]) == 9
    assert download_png(task["imageUrl"]).size == (1024, 682)


def test_describe_and_shorten(client: httpx.Client) -> None:
    described, _ = mj_wait(
        client, mj_submit(client, "describe", {"base64": png_data_uri("green", (90, 60))})["result"]
    )
    final = described["properties"]["finalPrompt"]
    assert described["action"] == "DESCRIBE" and described["status"] == "SUCCESS"
    assert all(k in final for k in ("1️⃣", "2️⃣", "3️⃣", "4️⃣")) and "green" in final
    assert download_png(described["imageUrl"]).size == (90, 60)
    shortened, _ = mj_wait(
        client,
        mj_submit(
            client, "shorten", {"prompt": "a very detailed oil painting of an old harbour at dusk"}
        )["result"],
    )
    assert shortened["action"] == "SHORTEN" and "1️⃣" in shortened["properties"]["finalPrompt"]


def test_face_swap(client: httpx.Client) -> None:
    body = {
        "sourceBase64": png_data_uri("yellow"),
        "targetBase64": png_data_uri("navy", (200, 120)),
    }
    task, _ = mj_wait(client, mj_submit(client, "/mj/insight-face/swap", body)["result"])
    assert task["action"] == "SWAP_FACE" and task["status"] == "SUCCESS" and task["buttons"] == []
    assert download_png(task["imageUrl"]).size == (200, 120)


def test_mode_prefix_and_expiring_mj_images(client: httpx.Client) -> None:
    submitted = client.post(
        "/mj-relax/mj/submit/imagine", json={"prompt": "fast fade [[expire]]"}
    ).json()
    task, _ = mj_wait(client, submitted["result"])
    assert task["status"] == "SUCCESS"
    assert httpx.get(task["imageUrl"]).status_code == 403


# ---------------------------------------------------------------- process


def test_cli_prints_its_address_and_exits_cleanly_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "studio.simulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"simulator listening on http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/__health").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
