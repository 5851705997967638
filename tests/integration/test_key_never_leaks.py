"""The clear API key appears in no HTTP response, no log record and no database column."""

import http.server
import json
import logging
import threading
import uuid

import pytest
from django.db import connection

from studio.accounts.models import RelayCredential

pytestmark = pytest.mark.django_db

PAGES = [
    "/settings/",
    "/settings/remove-key/",
    "/chat/",
    "/jobs/",
    "/healthz",
    "/admin/auth/user/",
    "/admin/accounts/relaycredential/",
    "/admin/accounts/workerheartbeat/",
]


@pytest.fixture
def admin_user(user):
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def all_database_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value).decode("latin-1"))
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks)


def test_clear_key_is_nowhere_but_in_the_users_own_request(
    client, admin_user, settings, simulator, caplog
):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    secret = simulator.key + "-leakcheck-QWERTY"
    caplog.set_level(logging.DEBUG)
    client.force_login(admin_user)

    responses = [
        client.post("/settings/", {"base_url": simulator.url, "api_key": secret}, follow=True),
        client.post("/settings/verify/", follow=True),
    ]
    credential = RelayCredential.objects.get(user=admin_user)
    responses += [client.get(path) for path in PAGES]
    responses.append(client.get(f"/admin/auth/user/{admin_user.pk}/change/"))

    for response in responses:
        assert response.status_code in (200, 503), response.request["PATH_INFO"]
        body = response.content.decode()
        assert secret not in body, response.request["PATH_INFO"]
        assert secret not in str(response.headers)
    assert "sk-…ERTY" in responses[0].content.decode()  # the masked form is shown
    assert credential.api_key == secret  # the key really is stored (encrypted)

    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.args)
    assert secret not in all_database_text()


# ---------------------------------------------------------------- jobs, exports, admin, logs


def assert_nowhere(secret: str, responses: list, caplog) -> None:
    """Not in any response (body or headers), log record, or database column."""
    for response in responses:
        if getattr(response, "streaming", False):
            body = b"".join(response.streaming_content).decode("utf-8", errors="replace")
        else:
            body = response.content.decode("utf-8", errors="replace")
        where = response.request["PATH_INFO"]
        assert secret not in body, where
        assert secret.removeprefix("sk-") not in body, where
        assert secret not in str(response.headers), where
    for record in caplog.records:
        text = record.getMessage() + str(record.args) + str(record.exc_info or "")
        assert secret not in text and secret.removeprefix("sk-") not in text, record.getMessage()
    assert secret not in all_database_text()
    assert secret.removeprefix("sk-") not in all_database_text()


def drive(job_id) -> None:
    from media_jobs import runner
    from media_jobs.models import Job

    for _ in range(30):
        runner.advance(str(job_id))
        job = Job.objects.get(pk=job_id)
        if job.finished:
            return
        Job.objects.filter(pk=job_id).update(next_step_at=None)
    raise AssertionError(f"the job did not finish: {job.status}")


def admin_pages(client) -> list:
    """Every registered model's list page and the change page of each of its objects."""
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    responses = []
    for model, _model_admin in admin.site._registry.items():
        meta = model._meta
        try:
            changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        except NoReverseMatch:
            continue
        responses.append(client.get(changelist))
        for obj in model._default_manager.all()[:20]:
            responses.append(
                client.get(
                    reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
                )
            )
    return responses


def staff_pages(client, user) -> list:
    """The staff dashboard's pages, for those that exist."""
    from django.urls import NoReverseMatch, reverse

    responses = []
    for name, kwargs in [
        ("staff:users", {}),
        ("staff:user", {"user_id": user.pk}),
        ("staff:usage", {}),
        ("staff:audit", {}),
        ("staff:relays", {}),
        ("staff:invites", {}),
    ]:
        try:
            responses.append(client.get(reverse(name, kwargs=kwargs)))
        except NoReverseMatch:
            continue
    return responses


@pytest.mark.django_db(transaction=True)
def test_key_stays_out_of_jobs_exports_admin_and_logs(
    client, admin_user, settings, simulator, caplog, tmp_path
):
    from chat.models import Conversation, Message
    from media_jobs.models import Asset, Job

    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.MEDIA_ROOT = tmp_path / "media"
    secret = simulator.key + "-jobs-leakcheck-ZXCVB"
    caplog.set_level(logging.DEBUG)
    client.force_login(admin_user)
    client.post("/settings/", {"base_url": simulator.url, "api_key": secret})

    dalle = {"model": "dall-e-3", "size": "1024x1024", "quality": "standard", "style": "vivid"}
    for prompt in ("A lighthouse", "Refuse this [[error:400]]", "Break [[error:500]]"):
        assert (
            client.post("/jobs/new/dalle/", {**dalle, "n": "1", "prompt": prompt}).status_code
            == 302
        )
    for job in Job.objects.all():
        drive(job.id)
    assert set(Job.objects.values_list("status", flat=True)) == {"succeeded", "failed"}
    asset = Asset.objects.get()
    conversation = Conversation.objects.create(user=admin_user, title="Keys", model="gpt-4o")
    Message.objects.create(conversation=conversation, role="user", content="hello")

    responses = []
    for job in Job.objects.all():
        responses += [client.get(f"/jobs/{job.id}/"), client.get(f"/jobs/{job.id}/status.json")]
    responses += [
        client.get("/jobs/"),
        client.get(f"/jobs/assets/{asset.id}/"),
        client.get(f"/jobs/assets/{asset.id}/thumbnail/"),
        client.get(f"/chat/{conversation.id}/"),
        client.get(f"/chat/{conversation.id}/export.md"),
        client.get(f"/chat/{conversation.id}/export.json"),
        client.get("/chat/models.json"),
        client.get("/settings/"),
    ]
    responses += admin_pages(client)
    responses += staff_pages(client, admin_user)
    assert all(r.status_code == 200 for r in responses), [
        (r.request["PATH_INFO"], r.status_code) for r in responses if r.status_code != 200
    ]
    assert len(responses) > 20
    assert_nowhere(secret, responses, caplog)


@pytest.mark.django_db
def test_a_wrong_key_is_not_logged_or_shown_when_verified(
    client, user, settings, simulator, caplog
):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    secret = "sk-invalid-wrong-key-leakcheck-PLMOK"
    caplog.set_level(logging.DEBUG)
    client.force_login(user)
    client.post("/settings/", {"base_url": simulator.url, "api_key": secret})
    verified = client.post("/settings/verify/", follow=True)
    page = verified.content.decode()
    assert "sk-…LMOK" in page  # the masked key, and the relay's refusal, are shown
    assert RelayCredential.objects.get(user=user).last_error
    responses = [verified, client.get("/settings/"), client.get("/chat/models.json")]
    assert_nowhere(secret, responses, caplog)


# ---------------------------------------------------------------- a relay that echoes the key

ECHO_KEY = "sk-echo-leakcheck-0123456789abcdef-QAZWS"


class EchoingRelay(http.server.BaseHTTPRequestHandler):
    """A badly behaved relay: every error it sends quotes the key it was given, in the ways
    real ones have (OpenAI's "Incorrect API key provided: sk-…", the token without its "sk-",
    the whole Authorization header in a plain-text 500, an error event mid-stream)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def send(self, status, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ")
        message = f"Incorrect API key provided: {key}. Token {key.removeprefix('sk-')} is invalid."
        error = {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}
        self.send(401, json.dumps({"error": error}).encode(), "application/json")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ")
        if self.path.startswith("/v1/chat/completions"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            delta = {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}
            error = {"error": {"message": f"quota used up for {key}", "type": "insufficient_quota"}}
            self.wfile.write(f"data: {json.dumps(delta)}\n\ndata: {json.dumps(error)}\n\n".encode())
            self.close_connection = True
            return
        self.send(500, f"upstream failure; request had {auth}".encode(), "text/plain")


@pytest.fixture
def echoing_relay(settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoingRelay)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.UPSTREAM_BASE_URL = url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [url]
    yield url
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_key_the_relay_echoes_back_is_masked_everywhere(
    client, user, echoing_relay, caplog, tmp_path, settings
):
    from media_jobs.models import Job

    settings.MEDIA_ROOT = tmp_path / "media"
    caplog.set_level(logging.DEBUG)
    client.force_login(user)
    client.post("/settings/", {"base_url": echoing_relay, "api_key": ECHO_KEY})
    verified = client.post("/settings/verify/", follow=True)
    assert "Incorrect API key provided" in verified.content.decode()  # the relay's words, masked
    job_form = {"prompt": "A kite", "model": "dall-e-3", "size": "1024x1024", "n": "1"}
    job_form.update(quality="standard", style="vivid")
    assert client.post("/jobs/new/dalle/", job_form).status_code == 302
    job = Job.objects.get()
    drive(job.id)
    job.refresh_from_db()
    assert job.status == "failed" and job.error
    responses = [
        verified,
        client.get("/settings/"),
        client.get("/chat/models.json"),
        client.get(f"/jobs/{job.id}/"),
        client.get(f"/jobs/{job.id}/status.json"),
        client.get("/jobs/"),
    ]
    assert_nowhere(ECHO_KEY, responses, caplog)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_key_echoed_in_a_chat_stream_error_is_masked(user, echoing_relay, caplog):
    from asgiref.sync import sync_to_async

    from chat.models import Conversation, Message
    from tests.integration.chat_helpers import frames_until, open_socket

    caplog.set_level(logging.DEBUG)
    credential = RelayCredential(user=user, base_url=echoing_relay)
    credential.set_api_key(ECHO_KEY)
    await credential.asave()
    conversation = await Conversation.objects.acreate(user=user, model="gpt-4o", title="t")
    socket, connected, _code = await open_socket(conversation.id, user)
    assert connected
    await socket.send_json_to({"type": "send", "content": "hi", "client_id": str(uuid.uuid4())})
    frames = await frames_until(socket, lambda f: f["type"] in ("done", "error"), seconds=15)
    await socket.disconnect()
    assert any(f["type"] in ("done", "error") for f in frames)
    reply = await Message.objects.filter(conversation=conversation, role="assistant").afirst()
    assert reply is not None and reply.status == "error" and reply.error_detail

    def pages():
        from django.test import Client

        client = Client()
        client.force_login(user)
        return [
            client.get(f"/chat/{conversation.id}/"),
            client.get(f"/chat/{conversation.id}/export.md"),
            client.get(f"/chat/{conversation.id}/export.json"),
        ]

    for frame in frames:
        assert ECHO_KEY.removeprefix("sk-") not in json.dumps(frame)
    await sync_to_async(assert_nowhere)(ECHO_KEY, await sync_to_async(pages)(), caplog)
