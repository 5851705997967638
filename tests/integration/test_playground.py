"""The playground against the simulator over real HTTP: a legacy completion streamed to the page
(and its errors before and in the middle of the stream), form errors, quotas and rate limits,
and embeddings with their similarity table and owner-only downloads."""

import csv
import io
import json
import math
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.http import StreamingHttpResponse
from django.test import AsyncClient

from playground import results, services
from playground.similarity import cosine_similarity
from studio.accounts.models import Quota, UsageRecord
from studio.upstream import RelayCredentials
from tests.factories import UserFactory

STREAM = "/playground/completions/stream/"
PAGE = "/playground/"
EMBEDDINGS = "/playground/embeddings/"
MODEL = "gpt-3.5-turbo-instruct"


def completion(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, "max_tokens": "200", **extra}


async def signed_in_async(user: User) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def stream(client: AsyncClient, data: dict[str, Any]) -> tuple[int, Any, list[bytes]]:
    """(status, events or JSON body, the raw chunks as they came)."""
    response = await client.post(STREAM, data)
    if not response.streaming:
        return response.status_code, response.json(), []
    assert response["Content-Type"] == "application/x-ndjson"
    assert isinstance(response, StreamingHttpResponse)
    chunks = [bytes(chunk) async for chunk in response.streaming_content]
    events = [json.loads(line) for line in b"".join(chunks).decode().splitlines()]
    return response.status_code, events, chunks


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(event["text"] for event in events if event["type"] == "delta")


def usage_rows(user: User) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(user=user).order_by("at"))


# --- completions: streaming -----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_completion_streams_token_by_token_and_counts_its_usage(relay, user):
    client = await signed_in_async(user)
    status, events, chunks = await stream(client, completion("Once upon a time [[tokens=24]]"))

    assert status == 200
    deltas = [event for event in events if event["type"] == "delta"]
    assert len(deltas) == 24 and len(chunks) >= 24  # one event per relay token, as they came
    assert events[-1] == {
        "type": "done",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 4, "completion_tokens": 24, "estimated": False},
    }
    # The same text as the whole, non-streamed completion of the page without JavaScript.
    page = await client.post(PAGE, completion("Once upon a time [[tokens=24]]"))
    assert page.status_code == 200
    assert text_of(events).strip() in page.content.decode()

    rows = await sync_to_async(usage_rows)(user)
    assert [(r.source, r.model, r.completion_tokens, r.estimated) for r in rows] == [
        ("chat", MODEL, 24, False),
        ("chat", MODEL, 24, False),
    ]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_echo_and_max_tokens_reach_the_relay(relay, user):
    client = await signed_in_async(user)
    _, events, _ = await stream(
        client, completion("Tell me [[tokens=40]]", max_tokens="5", echo="on", stop="\\n\nEND")
    )
    # echo puts the prompt (markers stripped) first; max_tokens cuts the text to 5 tokens.
    assert text_of(events).startswith("Tell me")
    assert events[-1]["finish_reason"] == "length"
    assert events[-1]["usage"]["completion_tokens"] == 6  # the echoed prompt and 5 tokens


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_relay_error_before_the_stream_is_an_error_event_in_the_relays_words(relay, user):
    client = await signed_in_async(user)
    status, events, _ = await stream(client, completion("Hello [[error:429]]"))
    assert status == 200
    assert [event["type"] for event in events] == ["error"]
    assert events[0]["code"] == "rate_limited"
    assert "当前分组上游负载已饱和" in events[0]["detail"]  # the relay's words
    assert events[0]["retry_after"] == 7
    assert await sync_to_async(usage_rows)(user) == []  # nothing was written: nothing spent


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_error_mid_stream_keeps_the_text_so_far(relay, user):
    client = await signed_in_async(user)
    status, events, _ = await stream(client, completion("Hello [[tokens=30]] [[error:midstream]]"))
    assert status == 200
    types = [event["type"] for event in events]
    assert types[-1] == "error" and types.count("delta") >= 2 and "done" not in types
    assert events[-1]["code"] == "unavailable"
    assert "upstream stream interrupted" in events[-1]["detail"]
    # The relay sent no usage before failing: Studio estimated what was written.
    [row] = await sync_to_async(usage_rows)(user)
    assert row.estimated and row.completion_tokens > 0


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_cut_connection_mid_stream_is_reported_after_the_text(relay, user):
    client = await signed_in_async(user)
    _, events, _ = await stream(client, completion("Hello [[tokens=30]] [[die]]"))
    assert events[0]["type"] == "delta" and events[-1]["type"] == "error"
    assert events[-1]["code"] == "protocol"
    assert "[DONE]" in events[-1]["detail"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_stream_stopped_by_the_reader_still_records_its_usage(relay, user, simulator):
    """The Stop button aborts the fetch; Django then closes the event generator."""
    call = services.CompletionCall(
        user_id=user.pk,
        credentials=RelayCredentials(base_url=simulator.url, api_key=simulator.key),
        model=MODEL,
        prompt="A long story [[tokens=200]] [[tps=50]]",
        params={"max_tokens": 500},
    )
    events = services.stream_completion(call)
    received = [await anext(events) for _ in range(3)]
    await events.aclose()
    assert [event["type"] for event in received] == ["delta"] * 3
    [row] = await sync_to_async(usage_rows)(user)
    assert row.estimated and 0 < row.completion_tokens < 200


# --- completions: refusals ------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_bad_form_is_answered_with_field_errors(relay, user):
    client = await signed_in_async(user)
    status, body, _ = await stream(
        client,
        completion("   ", max_tokens="0", temperature="3", stop="a\nb\nc\nd\ne"),
    )
    assert status == 400
    errors = {name: [e["message"] for e in messages] for name, messages in body["errors"].items()}
    assert errors["prompt"] == ["Type a prompt first."]
    assert set(errors) == {"prompt", "max_tokens", "temperature", "stop"}
    assert errors["stop"] == ["At most 4 stop sequences."]
    assert await sync_to_async(usage_rows)(user) == []


def test_without_javascript_a_bad_form_shows_its_errors_and_keeps_the_input(relay, signed_in):
    response = signed_in.post(
        PAGE, completion("", model="my-own-model", temperature="9", stop="###")
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Type a prompt first." in page
    assert "Ensure this value is less than or equal to 2." in page
    assert 'value="my-own-model"' in page and "###" in page


def test_without_javascript_the_whole_completion_is_shown(relay, signed_in):
    response = signed_in.post(PAGE, completion("Once upon [[tokens=10]]", max_tokens="4"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Finished (length)." in page and "Tokens: 2 in, 4 out." in page
    assert 'data-state="done"' in page


def test_without_javascript_a_relay_error_is_shown(relay, signed_in):
    response = signed_in.post(PAGE, completion("Hi [[error:401]]"))
    page = response.content.decode()
    assert "The relay rejected the API key: 无效的令牌" in page
    assert 'data-state="error"' in page


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_token_quota_is_checked_before_the_relay(relay, user):
    await Quota.objects.acreate(user=user, tokens_per_month=100)
    await UsageRecord.objects.acreate(user=user, source="chat", model=MODEL, prompt_tokens=100)
    client = await signed_in_async(user)
    status, body, _ = await stream(client, completion("Hello"))
    assert status == 403 and body["code"] == "quota"
    assert "You have used your 100 tokens for this month." in body["error"]
    assert await UsageRecord.objects.filter(user=user).acount() == 1

    await Quota.objects.filter(user=user).aupdate(tokens_per_month=None, allowed_models=["gpt-4o"])
    status, body, _ = await stream(client, completion("Hello"))
    assert status == 403 and "may not use the model gpt-3.5-turbo-instruct" in body["error"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_chat_rate_limit_applies(relay, user, settings):
    settings.RATELIMIT_CHAT = (1, 60)
    client = await signed_in_async(user)
    status, _, _ = await stream(client, completion("One [[tokens=2]]"))
    assert status == 200
    response = await client.post(STREAM, completion("Two [[tokens=2]]"))
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited" and int(response["Retry-After"]) > 0
    assert "too quickly" in response.json()["error"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_user_without_a_key_is_told_to_add_one(settings):
    settings.UPSTREAM_API_KEY = ""
    keyless = await sync_to_async(UserFactory)(username="keyless")
    client = await signed_in_async(keyless)
    status, body, _ = await stream(client, completion("Hello"))
    assert status == 403 and body["code"] == "no_key"
    assert "Add your relay API key in Settings" in body["error"]
    page = await client.get(PAGE)
    assert 'data-testid="missing-key"' in page.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for path in (PAGE, EMBEDDINGS, f"{EMBEDDINGS}download.json", f"{EMBEDDINGS}download.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.post(STREAM, completion("Hello"))
    assert response.status_code == 401 and "signed out" in response.json()["error"]


def test_the_page_has_the_form_the_nav_link_and_the_script(relay, signed_in):
    page = signed_in.get(PAGE).content.decode()
    assert 'href="/playground/" aria-current="page"' in page
    assert 'value="gpt-3.5-turbo-instruct"' in page and 'list="completion-models"' in page
    assert (
        "js/playground.js" in page and 'data-stream-url="/playground/completions/stream/"' in page
    )


# --- embeddings -----------------------------------------------------------------------------

TEXTS = ["the cat sat on the mat", "the cat sat on a mat", "quantum physics lecture notes"]


def embed(client, texts: list[str], **extra: Any):
    return client.post(
        EMBEDDINGS, {"model": "text-embedding-3-small", "input": "\n".join(texts), **extra}
    )


def test_embeddings_show_counts_and_a_similarity_matrix_that_matches_the_vectors(relay, signed_in):
    response = embed(signed_in, ["", *TEXTS, "   "])  # blank lines are skipped
    assert response.status_code == 302 and response["Location"] == EMBEDDINGS
    page = signed_in.get(EMBEDDINGS).content.decode()
    assert 'data-testid="vector-count">3<' in page
    assert 'data-testid="vector-dimensions">1536<' in page
    assert "Cosine similarity of 3 texts" in page
    assert page.count('<td class="pg-cell sim-10">1.00</td>') >= 3  # the diagonal

    data = json.loads(signed_in.get(f"{EMBEDDINGS}download.json").content)
    vectors = [entry["embedding"] for entry in data["inputs"]]
    assert [entry["text"] for entry in data["inputs"]] == TEXTS
    assert len(vectors) == 3 and all(len(vector) == 1536 for vector in vectors)
    for i in range(3):
        for j in range(3):
            expected = cosine_similarity(vectors[i], vectors[j])
            assert math.isclose(data["similarity"][i][j], expected, abs_tol=1e-9)
    # The simulator's vectors behave like real ones: shared words, closer texts.
    assert data["similarity"][0][1] > 0.6 > 0.2 > abs(data["similarity"][0][2])
    cell = f"{data['similarity'][0][1]:.2f}"
    assert f">{cell}</td>" in page
    assert data["usage"]["prompt_tokens"] > 0 and data["model"] == "text-embedding-3-small"
    # The form shows the texts again, ready to change.
    assert "quantum physics lecture notes</textarea>" in page


def test_dimensions_are_honoured_and_usage_recorded(relay, signed_in, user):
    embed(signed_in, ["alpha", "beta"], dimensions="64")
    data = json.loads(signed_in.get(f"{EMBEDDINGS}download.json").content)
    assert data["dimensions"] == 64 and data["requested_dimensions"] == 64
    [row] = usage_rows(user)
    assert (row.source, row.model, row.completion_tokens) == ("chat", "text-embedding-3-small", 0)
    assert row.prompt_tokens == data["usage"]["prompt_tokens"] > 0 and not row.estimated


def test_csv_download_has_a_row_per_text_and_defuses_formulas(relay, signed_in):
    embed(signed_in, ["plain text", '=HYPERLINK("http://evil.example")', "中文 文本"])
    response = signed_in.get(f"{EMBEDDINGS}download.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="embeddings-')
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["index", "text", "dim_1"] and rows[0][-1] == "dim_1536"
    assert [row[1] for row in rows[1:]] == [
        "plain text",
        '\'=HYPERLINK("http://evil.example")',
        "中文 文本",
    ]
    data = json.loads(signed_in.get(f"{EMBEDDINGS}download.json").content)
    assert [float(value) for value in rows[3][2:]] == data["inputs"][2]["embedding"]


def test_downloads_are_the_owners_only(relay, signed_in, other_user, client):
    embed(signed_in, ["Alice's secret text"])
    client.force_login(other_user)
    for name in ("download.json", "download.csv"):
        response = client.get(f"{EMBEDDINGS}{name}")
        assert response.status_code == 404
        assert b"secret" not in response.content
    page = client.get(EMBEDDINGS).content.decode()
    assert "secret" not in page and 'data-testid="embedding-result"' not in page


def test_embedding_form_errors_keep_the_input(relay, signed_in):
    response = embed(signed_in, [f"line {n}" for n in range(65)], dimensions="0")
    assert response.status_code == 400
    page = response.content.decode()
    assert "At most 64 texts at once; this has 65." in page
    assert "Ensure this value is greater than or equal to 1." in page
    assert "line 64" in page
    response = embed(signed_in, ["short", "x" * 8001])
    assert "Text 2 is longer than 8,000 characters." in response.content.decode()
    response = signed_in.post(EMBEDDINGS, {"model": "text-embedding-3-small", "input": " \n "})
    assert "Type at least one text." in response.content.decode()


def test_a_relay_refusal_is_shown_on_the_form(relay, signed_in, user):
    response = embed(signed_in, ["hello"], model="text-embedding-ada-002", dimensions="8")
    assert response.status_code == 400
    assert "This model does not support specifying dimensions." in response.content.decode()
    response = embed(signed_in, ["hello [[error:quota]]"])
    assert "The key has no quota left" in response.content.decode()
    assert results.load_last(user) is None and usage_rows(user) == []


def test_a_deleted_user_takes_their_result_along(relay, signed_in, user):
    embed(signed_in, ["one", "two"])
    assert results.load_last(user) is not None
    user_id = user.pk
    user.delete()
    assert not (results._path(user_id)).exists()


def test_embeddings_keep_to_the_quota_and_show_texts_as_text(relay, signed_in, user):
    Quota.objects.create(user=user, allowed_models=["gpt-4o"])
    response = embed(signed_in, ["hello"])
    assert response.status_code == 400
    assert "may not use the model text-embedding-3-small" in response.content.decode()
    assert results.load_last(user) is None

    Quota.objects.filter(user=user).update(allowed_models=[])
    embed(signed_in, ['<img src=x onerror="alert(1)">', "plain"])
    page = signed_in.get(EMBEDDINGS).content.decode()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_the_playground_is_refused_when_staff_switch_the_openai_family_off(signed_in, relay):
    from studio.accounts.models import FamilySetting

    FamilySetting.objects.create(family="openai", enabled=False)
    response = signed_in.post(
        "/playground/embeddings/", {"model": "text-embedding-3-small", "input": "one\ntwo"}
    )
    assert response.status_code == 400  # the form again, with the reason
    assert "switched off by the administrator" in response.content.decode()
