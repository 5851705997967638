"""The route walker: every URL pattern of the project, requested as the owner of the objects it
names, as another signed-in user and as nobody.

The apps in this field keep shipping the same hole: an object URL that trusts the id in it
(LobeChat CVE-2026-23522, LibreChat #3588). So the walker does not trust a list of "the
important URLs": it enumerates `get_resolver()` and fails when a pattern is missing from ROUTES
below, so whoever adds a route must say here who may use it. For each route:

* another user (B) gets 404 (or 403) for anything that names one of A's objects, exactly as for
  an id that does not exist, and sees none of A's titles, texts, prompts, key or ids anywhere;
* nobody (anonymous) is sent to the sign-in page (pages) or gets 401 (JSON endpoints);
* neither of them changes anything of A's (every row and file of A's is compared before/after);
* the owner (A) gets the page or the action;
* every POST is made with a CSRF token (clients enforce CSRF checks), and without one every
  pattern answers 403 (no view is csrf_exempt);
* the Django admin and the /staff/ pages are for staff only (a non-staff user gets 404 or the
  admin's sign-in page, and changes nothing).

The chat websocket gets the same treatment with WebsocketCommunicator: only the owner connects,
only from an allowed Origin, and ids of someone else's messages in frames find nothing.
"""

from __future__ import annotations

import io
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern
from PIL import Image

from chat.models import Conversation, Message
from media_jobs.models import Asset, Job
from studio.accounts import invites
from studio.accounts.models import ApprovedRelay, Invite, Profile, Quota, RelayCredential
from tests.factories import UserFactory
from tests.integration.chat_helpers import open_socket

pytestmark = pytest.mark.django_db

LOGIN_PATH = "/accounts/login/"
ADMIN_LOGIN_PATH = "/admin/login/"

# What only A may see. B's and anonymous answers must contain none of these (nor A's ids).
TITLE = "Alpine picnic plans for Alice"
QUESTION = "Where is the hidden lake near the pass?"
REPLY = "The hidden lake lies north of the old hut."
PROMPT = "A lighthouse on a cliff painted by Alice"
ALICE_KEY = "sk-sim-alice-private-Q7ZK"
BOB_KEY = "sk-sim-bob-private-M3WX"
UPSCALE = "MJ::JOB::upsample::1::5a1e3b9c"
ALICE_EMAIL = "alice.private@example.com"


# ---------------------------------------------------------------- the objects A owns


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Hundreds of users are made here; what is tested is who may do what, not the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    alice: User
    bob: User
    staff: User
    conversation: Conversation
    question: Message
    reply: Message
    job: Job
    asset: Asset
    bob_conversation: Conversation
    relay_url: str
    invite: Invite
    invite_token: str
    approved_relay: ApprovedRelay

    def ids(self) -> dict[str, str]:
        return {
            "conversation": str(self.conversation.id),
            "message": str(self.reply.id),
            "question": str(self.question.id),
            "job": str(self.job.id),
            "asset": str(self.asset.id),
            "bob_conversation": str(self.bob_conversation.id),
        }

    def placeholders(self) -> dict[str, str]:
        """What ROUTES' paths and data may name: A's objects, and what staff pages act on."""
        return {
            **self.ids(),
            "relay": self.relay_url,
            "alice_id": str(self.alice.pk),
            "invite": str(self.invite.pk),
            "invite_token": self.invite_token,
            "approved_relay": str(self.approved_relay.pk),
        }

    def secrets(self, *, ids: bool = True) -> list[str]:
        """Text that must never reach B or an anonymous visitor (nor A's ids, unless B sent
        them and an error names them back)."""
        texts = [TITLE, QUESTION, REPLY, PROMPT, ALICE_KEY, ALICE_KEY[-4:], ALICE_EMAIL]
        if ids:
            texts += [value for name, value in self.ids().items() if name != "bob_conversation"]
        return texts


def png_bytes(size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def webp_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (30, 120, 200)).save(buffer, "WEBP")
    return buffer.getvalue()


def give_key(user: User, relay_url: str, key: str) -> None:
    credential = RelayCredential(user=user, base_url=relay_url)
    credential.set_api_key(key)
    credential.save()


@pytest.fixture
def world(settings, simulator, tmp_path, user, other_user, staff_user) -> World:
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.MEDIA_ROOT = tmp_path / "media"
    User.objects.filter(pk=user.pk).update(email=ALICE_EMAIL)
    user.refresh_from_db()
    give_key(user, simulator.url, ALICE_KEY)
    give_key(other_user, simulator.url, BOB_KEY)
    Profile.objects.create(user=user, default_model="gpt-4o")

    conversation = Conversation.objects.create(user=user, title=TITLE, model="gpt-4o")
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=QUESTION
    )
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content=REPLY,
        parent=question,
        model="gpt-4o",
        seq=3,
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=reply)
    conversation.refresh_from_db()

    job = Job.objects.create(
        user=user,
        kind="midjourney",
        params={"mode": "imagine", "prompt": PROMPT, "bot_type": "MID_JOURNEY"},
        status=Job.Status.SUCCEEDED,
        progress=100,
        upstream_id="1700000000000001",
        result={
            "upstream_action": "IMAGINE",
            "buttons": [{"custom_id": UPSCALE, "label": "U1", "emoji": ""}],
        },
    )
    image = png_bytes()
    asset = Asset(job=job, mime="image/png", bytes=len(image), sha256="0" * 64, width=32, height=24)
    asset.file.save("grid.png", ContentFile(image), save=False)
    asset.thumbnail.save("grid.webp", ContentFile(webp_bytes()), save=False)
    asset.save()

    bob_conversation = Conversation.objects.create(user=other_user, title="Bob's own chat")
    invite, token = invites.create_invite(by=staff_user, note="for Carol")
    approved = ApprovedRelay.objects.create(url="https://relay.example", added_by=staff_user)
    return World(
        alice=user,
        bob=other_user,
        staff=staff_user,
        invite=invite,
        invite_token=token,
        approved_relay=approved,
        conversation=conversation,
        question=question,
        reply=reply,
        job=job,
        asset=asset,
        bob_conversation=bob_conversation,
        relay_url=simulator.url,
    )


def state_of(world: World) -> dict[str, Any]:
    """Every row and file of A's that a request could change."""
    alice = world.alice
    assets = list(Asset.objects.filter(job__user=alice).order_by("id").values())
    files = [
        Path(settings.MEDIA_ROOT, str(name)).read_bytes()
        for row in assets
        for name in (row["file"], row["thumbnail"])
        if name
    ]
    return {
        "user": list(
            User.objects.filter(pk=alice.pk).values(
                "username", "password", "is_active", "is_staff", "is_superuser", "email"
            )
        ),
        "profile": list(Profile.objects.filter(user=alice).values()),
        "credential": [
            {**row, "api_key_encrypted": bytes(row["api_key_encrypted"])}
            for row in RelayCredential.objects.filter(user=alice).values()
        ],
        "conversations": list(Conversation.objects.filter(user=alice).order_by("id").values()),
        "messages": list(Message.objects.filter(conversation__user=alice).order_by("id").values()),
        "jobs": list(Job.objects.filter(user=alice).order_by("id").values()),
        "assets": assets,
        "files": files,
        "quota": list(Quota.objects.filter(user=alice).values()),
        "invites": list(Invite.objects.order_by("pk").values()),
        "approved_relays": list(ApprovedRelay.objects.order_by("pk").values()),
    }


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Call:
    """One request to a route. `path` and `data` values may hold {conversation}, {message},
    {question}, {job}, {asset}, {bob_conversation} and {relay}."""

    method: str
    path: str
    owner_status: int | tuple[int, ...]
    data: dict[str, str] = field(default_factory=dict)
    # The path names one of A's objects: B must get 404/403, as for an id that does not exist.
    scoped: bool = True
    # Called by the page's scripts with fetch(): anonymous gets 401, not a redirect.
    json: bool = False
    # Anyone may call it (sign-in, language, health): only "no leak, no change" is checked.
    public: bool = False
    # Staff only: anonymous and signed-in non-staff users are turned away.
    staff: bool = False


def get(path: str, owner_status: int | tuple[int, ...] = 200, **flags: Any) -> Call:
    return Call("get", path, owner_status, **flags)


def post(path: str, owner_status: int | tuple[int, ...] = 302, **flags: Any) -> Call:
    data = flags.pop("data", {})
    return Call("post", path, owner_status, data=data, **flags)


CHAT = "/chat/{conversation}"
JOB = "/jobs/{job}"
ASSET = "/jobs/assets/{asset}"
DALLE = {
    "prompt": "A kite over hills",
    "model": "dall-e-3",
    "size": "1024x1024",
    "quality": "standard",
    "style": "vivid",
    "n": "1",
}
EMBED = {"model": "text-embedding-3-small", "input": "one\ntwo"}

# Every URL pattern of the project except the Django admin's (checked by its own rule below).
# Within a route the calls run in order for each client: keep destructive ones last.
ROUTES: dict[str, list[Call]] = {
    "": [get("/", 302, public=True)],
    # Django's auth views.
    "accounts/login/": [
        get(LOGIN_PATH, public=True),
        post(LOGIN_PATH, 200, data={"username": "nobody", "password": "wrong"}, public=True),
    ],
    "accounts/logout/": [post("/accounts/logout/", public=True)],
    "accounts/password_change/": [
        get("/accounts/password_change/", scoped=False),
        post("/accounts/password_change/", 200, data={"old_password": "wrong"}, scoped=False),
    ],
    "accounts/password_change/done/": [get("/accounts/password_change/done/", scoped=False)],
    # A one-time sign-up link: anyone holding it (a signed-in user is told they are signed in).
    "accounts/invite/<str:token>/": [
        get("/accounts/invite/{invite_token}/", public=True),
        get("/accounts/invite/not-a-real-token/", (404,), public=True),
        post("/accounts/invite/{invite_token}/", (200, 400), data={"username": ""}, public=True),
    ],
    "i18n/setlang/": [post("/i18n/setlang/", data={"language": "en", "next": "/"}, public=True)],
    "healthz": [get("/healthz", (200, 503), public=True)],
    # The user's own settings: not an object in the URL, but A's key must stay A's.
    "settings/": [
        get("/settings/", scoped=False),
        post("/settings/", data={"base_url": "{relay}", "api_key": ""}, scoped=False),
    ],
    "settings/verify/": [post("/settings/verify/", scoped=False)],
    "settings/default-model/": [
        post("/settings/default-model/", data={"default_model": "gpt-4o-mini"}, scoped=False)
    ],
    "settings/remove-key/": [
        get("/settings/remove-key/", scoped=False),
        post("/settings/remove-key/", scoped=False),
    ],
    # Chat.
    "chat/": [get("/chat/", scoped=False), get("/chat/?archived=1", scoped=False)],
    "chat/new/": [post("/chat/new/", data={"model": "gpt-4o"}, scoped=False)],
    "chat/models.json": [get("/chat/models.json", scoped=False, json=True)],
    "chat/search/": [
        get("/chat/search/?q=hidden+lake", scoped=False),
        get("/chat/search/?q=Alpine+picnic", scoped=False),
    ],
    "chat/<uuid:conversation_id>/": [get(f"{CHAT}/")],
    "chat/<uuid:conversation_id>/rename/": [
        post(f"{CHAT}/rename/", 200, data={"title": "Renamed"}, json=True)
    ],
    "chat/<uuid:conversation_id>/archive/": [post(f"{CHAT}/archive/", 200, json=True)],
    "chat/<uuid:conversation_id>/settings/": [
        post(f"{CHAT}/settings/", 200, data={"model": "gpt-4o", "temperature": "0.5"}, json=True)
    ],
    "chat/<uuid:conversation_id>/branch/": [
        post(f"{CHAT}/branch/", 200, data={"leaf_id": "{message}"}, json=True)
    ],
    "chat/<uuid:conversation_id>/messages/<uuid:message_id>/delete/": [
        post(f"{CHAT}/messages/{{message}}/delete/", 200, json=True)
    ],
    "chat/<uuid:conversation_id>/export.md": [get(f"{CHAT}/export.md")],
    "chat/<uuid:conversation_id>/export.json": [get(f"{CHAT}/export.json")],
    "chat/<uuid:conversation_id>/delete/": [get(f"{CHAT}/delete/"), post(f"{CHAT}/delete/")],
    # Media jobs.
    "jobs/": [get("/jobs/", scoped=False), get("/jobs/?q=lighthouse", scoped=False)],
    "jobs/new/<slug:kind>/": [
        get("/jobs/new/dalle/", scoped=False),
        get("/jobs/new/midjourney/?from={job}"),  # "use these settings again" names A's job
        post("/jobs/new/dalle/", data=DALLE, scoped=False),
    ],
    "jobs/<uuid:job_id>/": [get(f"{JOB}/")],
    "jobs/<uuid:job_id>/status.json": [get(f"{JOB}/status.json", json=True)],
    "jobs/<uuid:job_id>/action/": [post(f"{JOB}/action/", data={"custom_id": UPSCALE})],
    "jobs/<uuid:job_id>/seed/": [post(f"{JOB}/seed/")],
    "jobs/<uuid:job_id>/retry/": [post(f"{JOB}/retry/")],
    "jobs/<uuid:job_id>/cancel/": [post(f"{JOB}/cancel/")],
    "jobs/assets/<uuid:asset_id>/": [get(f"{ASSET}/"), get(f"{ASSET}/?download=1")],
    "jobs/assets/<uuid:asset_id>/thumbnail/": [get(f"{ASSET}/thumbnail/")],
    "jobs/<uuid:job_id>/delete/": [get(f"{JOB}/delete/"), post(f"{JOB}/delete/")],
    # The playground: no object in any URL; the downloads are the signed-in user's own last
    # result (B first makes one of B's own, which must not be A's).
    "playground/": [
        get("/playground/", scoped=False),
        post("/playground/", 400, data={"prompt": ""}, scoped=False),
    ],
    "playground/completions/stream/": [
        post("/playground/completions/stream/", 400, data={"prompt": ""}, scoped=False, json=True)
    ],
    "playground/embeddings/": [
        get("/playground/embeddings/", scoped=False),
        post("/playground/embeddings/", data=EMBED, scoped=False),
    ],
    "playground/embeddings/download.json": [
        post("/playground/embeddings/", data=EMBED, scoped=False),
        get("/playground/embeddings/download.json", scoped=False),
    ],
    "playground/embeddings/download.csv": [
        post("/playground/embeddings/", data=EMBED, scoped=False),
        get("/playground/embeddings/download.csv", scoped=False),
    ],
    # The staff dashboard: staff only (B, not staff, gets 404; "owner" is a member of staff).
    "staff/": [get("/staff/", staff=True), get("/staff/?q=alice", staff=True)],
    "staff/usage/": [get("/staff/usage/", staff=True)],
    "staff/audit/": [get("/staff/audit/", staff=True)],
    "staff/users/<int:user_id>/": [
        get("/staff/users/{alice_id}/", staff=True),
        post("/staff/users/{alice_id}/", data={"jobs_at_once": "2"}, staff=True),
    ],
    "staff/users/<int:user_id>/active/": [
        post("/staff/users/{alice_id}/active/", data={"active": "0"}, staff=True)
    ],
    "staff/invites/": [
        get("/staff/invites/", staff=True),
        post("/staff/invites/", 200, data={"note": "for Dave"}, staff=True),
    ],
    "staff/invites/<int:invite_id>/revoke/": [post("/staff/invites/{invite}/revoke/", staff=True)],
    "staff/relays/": [
        get("/staff/relays/", staff=True),
        post("/staff/relays/", data={"url": "https://other-relay.example"}, staff=True),
    ],
    "staff/relays/<int:relay_id>/remove/": [
        post("/staff/relays/{approved_relay}/remove/", staff=True)
    ],
    "staff/families/": [get("/staff/families/", staff=True)],
    "staff/families/<slug:slug>/": [
        post("/staff/families/flux/", data={"flux-enabled": "on"}, staff=True)
    ],
    "staff/families/<slug:slug>/probe/": [post("/staff/families/flux/probe/", staff=True)],
    "staff/users/<int:user_id>/delete/": [
        get("/staff/users/{alice_id}/delete/", staff=True),
        post("/staff/users/{alice_id}/delete/", staff=True),
    ],
}

# Patterns that are not in ROUTES because a rule below covers them all.
ADMIN_NAMESPACE = "admin"
# Future staff pages (the dashboard, usage, audit log) must be listed in ROUTES with staff=True.
STAFF_PREFIXES = ("staff/",)


# ---------------------------------------------------------------- walking the resolver


@dataclass(frozen=True)
class Pattern:
    route: str  # the full pattern, as ROUTES spells it
    namespaces: tuple[str, ...]
    sample: str  # a concrete path that resolves to it (ids are random)


def _sample(piece: str, regex: bool) -> str:
    """A concrete path piece for one pattern: every converter filled with a made-up value."""
    if regex:
        # ^(?P<app_label>auth|accounts)/$ -> auth/ ; (?P<url>.*)$ -> no-such-page/
        piece = piece.lstrip("^").rstrip("$")
        piece = re.sub(r"\(\?P<\w+>([\w|]+)\)", lambda match: match.group(1).split("|")[0], piece)
        return re.sub(r"\(\?P<\w+>[^)]*\)", "no-such-page/", piece)
    samples = {"uuid": str(uuid.uuid4()), "int": "1", "slug": "dalle", "path": "1"}
    return re.sub(
        r"<(?:(\w+):)?(\w+)>", lambda match: samples.get(match.group(1) or "", "x"), piece
    )


def all_patterns() -> list[Pattern]:
    found: list[Pattern] = []

    def walk(entries: list[Any], route: str, sample: str, namespaces: tuple[str, ...]) -> None:
        for entry in entries:
            piece = str(entry.pattern)
            regex = isinstance(entry.pattern, RegexPattern)
            here = (route + piece, sample + _sample(piece, regex))
            if isinstance(entry, URLResolver):
                spaces = (*namespaces, entry.namespace) if entry.namespace else namespaces
                walk(entry.url_patterns, *here, spaces)
            else:
                assert isinstance(entry, URLPattern)
                found.append(Pattern(here[0], namespaces, "/" + here[1]))

    walk(get_resolver().url_patterns, "", "", ())
    return found


def admin_patterns() -> list[Pattern]:
    return [p for p in all_patterns() if ADMIN_NAMESPACE in p.namespaces]


def test_every_route_is_in_the_walkers_table():
    """A new URL pattern fails here until ROUTES says who may use it."""
    routes = [p.route for p in all_patterns() if ADMIN_NAMESPACE not in p.namespaces]
    missing = sorted(set(routes) - ROUTES.keys())
    assert not missing, (
        f"routes not covered by the security walker: {missing}; add them to ROUTES in "
        "tests/integration/test_security_routes.py (scoped / json / public / staff)"
    )
    stale = sorted(ROUTES.keys() - set(routes))
    assert not stale, f"ROUTES lists patterns that no longer exist: {stale}"
    for route in routes:
        if route.startswith(STAFF_PREFIXES):
            assert all(call.staff for call in ROUTES[route]), f"{route} must be staff only"
    # Everything under /admin/ is the admin site's (its own rule covers it).
    strays = [p.route for p in all_patterns() if p.route.startswith("admin/")]
    assert {p.route for p in admin_patterns()} == set(strays)


def test_the_walker_reaches_a_view_for_every_pattern():
    """The sample paths the CSRF and admin checks use really resolve to their patterns."""
    resolver = get_resolver()
    for pattern in all_patterns():
        match = resolver.resolve(pattern.sample.split("?")[0])
        assert match.route == pattern.route or pattern.route.startswith("admin/"), pattern


# ---------------------------------------------------------------- clients and checks


def csrf_client(user: User | None = None) -> Client:
    """A client that enforces CSRF like a browser's requests would meet it."""
    client = Client(enforce_csrf_checks=True)
    client.cookies[settings.CSRF_COOKIE_NAME] = secrets.token_hex(16)
    if user is not None:
        client.force_login(user)
    return client


def request(
    client: Client,
    call: Call,
    world: World,
    *,
    token: bool = True,
    ids: dict[str, str] | None = None,
) -> Any:
    """Make the call with A's ids filled in (or `ids`: made-up ones)."""
    values = {**world.placeholders(), **(ids or {})}
    path = call.path.format(**values)
    if call.method == "get":
        return client.get(path)
    data = {name: value.format(**values) for name, value in call.data.items()}
    if token:
        data["csrfmiddlewaretoken"] = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client.post(path, data)


def body_of(response: Any) -> str:
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
    else:
        content = response.content
    return content.decode("utf-8", errors="replace")


PER_RESPONSE = re.compile(r'(nonce|value)="[A-Za-z0-9+/=_-]{16,}"')


def comparable(body: str) -> str:
    """A page without what differs on every response (CSP nonce, CSRF token)."""
    return PER_RESPONSE.sub(r'\1=""', body)


def assert_no_leak(response: Any, world: World, where: str) -> None:
    body = body_of(response)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "location"}
    for secret in world.secrets():
        assert secret not in body, f"{where}: the answer shows {secret!r}"
        assert secret not in str(headers), f"{where}: a header shows {secret!r}"


def assert_sent_to_sign_in(response: Any, where: str, login: str = LOGIN_PATH) -> None:
    assert response.status_code == 302, f"{where}: {response.status_code}, not a redirect"
    assert response["Location"].startswith(login), f"{where}: sent to {response['Location']}"


def statuses(expected: int | tuple[int, ...]) -> tuple[int, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


@pytest.fixture
def staff_user(db) -> User:
    return cast(User, UserFactory(username="root", is_staff=True, is_superuser=True))


def route_ids() -> list[str]:
    return [route or "/" for route in ROUTES]


# ---------------------------------------------------------------- the walk


@pytest.mark.parametrize("route", list(ROUTES), ids=route_ids())
def test_route_keeps_to_its_owner(route, world):
    calls = ROUTES[route]
    nobody, bob, alice = csrf_client(), csrf_client(world.bob), csrf_client(world.alice)
    before = state_of(world)

    for call in calls:
        where = f"{call.method.upper()} {call.path}"
        # Anonymous.
        response = request(nobody, call, world)
        assert response.status_code < 500 or call.public, f"anonymous {where}"
        assert response.status_code != 500, f"anonymous {where}"
        assert_no_leak(response, world, f"anonymous {where}")
        if not call.public:
            if call.json:
                assert response.status_code in (401, 403), f"anonymous {where}"
                assert response["Content-Type"].startswith("application/json")
            else:
                assert_sent_to_sign_in(response, f"anonymous {where}")

        # Another signed-in user.
        response = request(bob, call, world)
        assert response.status_code < 500 or call.public, f"B {where}: {response.status_code}"
        assert response.status_code != 500, f"B {where}"
        assert_no_leak(response, world, f"B {where}")
        if call.staff:
            assert response.status_code in (302, 403, 404), f"non-staff {where}"
        elif call.scoped and not call.public:
            assert response.status_code in (403, 404), f"B {where}: {response.status_code}"
            # Exactly what an id that does not exist gets: no hint that A's object is there.
            made_up = {name: str(uuid.uuid4()) for name in world.ids()}
            ghost = request(bob, call, world, ids=made_up)
            assert ghost.status_code == response.status_code, where
            assert comparable(body_of(ghost)) == comparable(body_of(response)), where

    assert state_of(world) == before, f"{route}: B or an anonymous visitor changed A's data"

    # The owner (or, for staff pages, a member of staff).
    owner = csrf_client(world.staff) if any(c.staff for c in calls) else alice
    for call in calls:
        response = request(owner, call, world)
        where = f"owner {call.method.upper()} {call.path}"
        assert response.status_code in statuses(call.owner_status), (
            f"{where}: {response.status_code} {body_of(response)[:300]}"
        )
        if response.status_code == 302 and not call.public:
            assert not response["Location"].startswith(LOGIN_PATH), where


def test_the_owner_really_acted(world):
    """A few owner calls, checked for their effect (the walk above only checks statuses)."""
    alice = csrf_client(world.alice)
    rename = ROUTES["chat/<uuid:conversation_id>/rename/"][0]
    assert request(alice, rename, world).json()["title"] == "Renamed"
    delete = ROUTES["chat/<uuid:conversation_id>/delete/"][1]
    request(alice, delete, world)
    assert not Conversation.objects.filter(pk=world.conversation.pk).exists()
    asset = request(alice, ROUTES["jobs/assets/<uuid:asset_id>/"][0], world)
    assert b"".join(asset.streaming_content) == Path(world.asset.file.path).read_bytes()


def test_b_cannot_reach_a_through_its_own_objects(world):
    """B's own conversation with A's message ids: the ids are checked against the
    conversation, not only the conversation against the user."""
    bob = csrf_client(world.bob)
    before = state_of(world)
    own = f"/chat/{world.bob_conversation.id}"
    token = bob.cookies[settings.CSRF_COOKIE_NAME].value
    deleted = bob.post(f"{own}/messages/{world.reply.id}/delete/", {"csrfmiddlewaretoken": token})
    branch = bob.post(
        f"{own}/branch/", {"leaf_id": str(world.reply.id), "csrfmiddlewaretoken": token}
    )
    for response in (deleted, branch):
        assert response.status_code == 404
        assert_no_leak(response, world, "B with A's message id")
    assert state_of(world) == before
    world.bob_conversation.refresh_from_db()
    assert world.bob_conversation.current_leaf_id is None


# ---------------------------------------------------------------- CSRF on every route


@pytest.mark.parametrize("pattern", all_patterns(), ids=lambda p: p.route or "/")
def test_post_without_a_csrf_token_is_refused_everywhere(pattern, world, staff_user):
    """No view is csrf_exempt: a cross-site form posted at any URL is refused before the view
    runs, for a signed-in user and a member of staff alike."""
    before = state_of(world)
    for user in (world.alice, staff_user):
        client = csrf_client(user)
        response = client.post(pattern.sample, {"title": "cross-site"})
        assert response.status_code == 403, f"{pattern.route}: {response.status_code}"
    assert state_of(world) == before


def test_owner_posts_without_a_token_change_nothing(world):
    """Every POST call of the table, by the owner with a right session but no token."""
    alice = csrf_client(world.alice)
    before = state_of(world)
    for calls in ROUTES.values():
        for call in calls:
            if call.method == "post":
                response = request(alice, call, world, token=False)
                assert response.status_code == 403, call.path
    assert state_of(world) == before


# ---------------------------------------------------------------- the Django admin


@pytest.mark.parametrize("pattern", admin_patterns(), ids=lambda p: p.route)
def test_admin_is_for_staff_only(pattern, world):
    public = pattern.route in ("admin/login/",)
    before = state_of(world)
    for client in (csrf_client(), csrf_client(world.bob)):
        response = client.get(pattern.sample)
        assert_no_leak(response, world, f"GET {pattern.sample}")
        if public:
            assert response.status_code in (200, 302)
            continue
        # Turned away before the view: to the admin's sign-in (or its index, for logout).
        assert response.status_code == 302, f"{pattern.sample}: {response.status_code}"
        assert response["Location"].startswith((ADMIN_LOGIN_PATH, "/admin/")), pattern.sample
        token = client.cookies[settings.CSRF_COOKIE_NAME].value
        response = client.post(pattern.sample, {"csrfmiddlewaretoken": token, "is_staff": "on"})
        assert response.status_code in (302, 405), f"POST {pattern.sample}"
    assert state_of(world) == before


def test_admin_pages_open_for_staff(world, staff_user):
    staff = csrf_client(staff_user)
    credential = RelayCredential.objects.get(user=world.alice)
    for path in (
        "/admin/",
        "/admin/auth/user/",
        f"/admin/auth/user/{world.alice.pk}/change/",
        "/admin/accounts/relaycredential/",
        f"/admin/accounts/relaycredential/{credential.pk}/change/",
    ):
        response = staff.get(path)
        assert response.status_code == 200, path
        assert ALICE_KEY not in body_of(response), path


# ---------------------------------------------------------------- the chat websocket

WEBSOCKET_ROUTES = {"ws/chat/<uuid:conversation_id>/"}


def websocket_patterns() -> Iterator[str]:
    from studio.routing import websocket_urlpatterns

    for entry in websocket_urlpatterns:
        yield str(entry.pattern)


def test_every_websocket_route_is_checked():
    assert set(websocket_patterns()) == WEBSOCKET_ROUTES, (
        "a new websocket route: add owner / anonymous / origin checks for it here"
    )


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_chat_socket_is_for_its_owner_only(world):
    conversation = world.conversation.id
    socket, connected, code = await open_socket(conversation, None)
    assert not connected and code == 4401
    socket, connected, code = await open_socket(conversation, world.bob)
    assert not connected and code == 4404
    for origin in (b"https://evil.example", b"http://localhost.evil.example", b"null"):
        socket, connected, _code = await open_socket(conversation, world.alice, origin=origin)
        assert not connected, origin
    socket, connected, _code = await open_socket(conversation, world.alice)
    assert connected
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_chat_socket_without_an_origin_is_refused(world):
    from channels.testing import WebsocketCommunicator

    from studio.asgi import application
    from tests.integration.chat_helpers import session_cookie

    cookie = (await session_cookie(world.alice)).encode()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/chat/{world.conversation.id}/",
        [(b"host", b"localhost"), (b"cookie", cookie)],
    )
    connected, _code = await communicator.connect(timeout=5)
    assert not connected


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_frames_naming_someone_elses_messages_find_nothing(world):
    """B, on B's own conversation, sends frames with A's message ids: every one is 'not found',
    A's text never comes back, and nothing of A's changes."""
    before = await sync_to_async(state_of)(world)
    socket, connected, _code = await open_socket(world.bob_conversation.id, world.bob)
    assert connected
    reply, question = str(world.reply.id), str(world.question.id)
    frames = [
        {"type": "resume", "message_id": reply, "after_seq": 0},
        {"type": "regenerate", "message_id": reply},
        {"type": "edit", "message_id": question, "content": "hijack"},
        {"type": "stop", "message_id": reply},
        {
            "type": "send",
            "content": "attach me to A",
            "client_id": str(uuid.uuid4()),
            "parent_id": question,
            "model": "gpt-4o",
        },
    ]
    answers = []
    for frame in frames:
        await socket.send_json_to(frame)
        if frame["type"] != "stop":  # stop is fire-and-forget: nothing comes back
            answers.append(await socket.receive_json_from(timeout=5))
    await socket.disconnect()
    for answer in answers:
        assert answer["type"] == "error" and answer["code"] == "not_found", answer
        for secret in world.secrets(ids=False):
            assert secret not in str(answer)
    assert await sync_to_async(state_of)(world) == before
    assert not await Message.objects.filter(conversation=world.bob_conversation).aexists()


# ---------------------------------------------------------------- security headers

SCRIPT_TAG = re.compile(r"<script\b[^>]*>", re.IGNORECASE)


def policy(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_security_headers(response: Any, where: str) -> None:
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") == "same-origin", where
    assert headers.get("Cross-Origin-Opener-Policy") == "same-origin", where
    assert "Content-Security-Policy" in headers, where
    csp = policy(headers["Content-Security-Policy"])
    framing = headers.get("X-Frame-Options") == "DENY" or csp.get("frame-ancestors") == ["'none'"]
    assert framing, f"{where}: may be framed"
    scripts = csp.get("script-src", csp.get("default-src"))
    assert scripts is not None, f"{where}: no script-src"
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & set(
        scripts
    ), f"{where}: script-src {scripts}"
    if not headers.get("Content-Type", "").startswith("text/html"):
        return
    # An HTML page: frames refused both ways, plugins off, <base> pinned.
    assert headers.get("X-Frame-Options") == "DENY", where
    assert csp.get("frame-ancestors") == ["'none'"], where
    assert csp.get("object-src") == ["'none'"], where
    assert csp.get("base-uri") in (["'self'"], ["'none'"]), where
    tags = SCRIPT_TAG.findall(body_of(response))
    if tags:
        nonces = [value for value in scripts if value.startswith("'nonce-")]
        assert len(nonces) == 1, f"{where}: script-src has no nonce"
        nonce = nonces[0][len("'nonce-") : -1]
        assert len(nonce) >= 16, where
        for tag in tags:
            if 'type="application/json"' in tag:
                continue  # json_script data: never run
            # Every script, inline or not, is one this response vouched for.
            assert f'nonce="{nonce}"' in tag, f"{where}: {tag}"


def test_every_page_has_the_security_headers(world):
    """Every GET in the walker's table (as its owner or staff), the sign-in page, the admin,
    error pages: a CSP with a per-response nonce and no 'unsafe-inline' for scripts, nosniff,
    a referrer policy, no framing, a cross-origin opener policy."""
    alice, staff, nobody = (
        csrf_client(world.alice),
        csrf_client(world.staff),
        csrf_client(),
    )
    seen_nonces = set()
    responses = []
    for calls in ROUTES.values():
        for call in calls:
            if call.method == "get":
                client = staff if call.staff else alice
                responses.append((f"GET {call.path}", request(client, call, world)))
    credential = RelayCredential.objects.get(user=world.alice)
    for path in (
        "/admin/",
        "/admin/auth/user/",
        f"/admin/auth/user/{world.alice.pk}/change/",
        f"/admin/accounts/relaycredential/{credential.pk}/change/",
    ):
        responses.append((f"staff GET {path}", staff.get(path)))
    responses += [
        ("sign-in page", nobody.get(LOGIN_PATH)),
        ("admin sign-in page", nobody.get(ADMIN_LOGIN_PATH)),
        ("404 page", alice.get(f"/chat/{uuid.uuid4()}/")),
        ("405 page", alice.get("/chat/new/")),
        ("CSRF failure page", alice.post("/chat/new/")),
        ("signed-out JSON", nobody.get("/chat/models.json")),
    ]
    html = 0
    for where, response in responses:
        assert_security_headers(response, where)
        if response.headers.get("Content-Type", "").startswith("text/html"):
            html += 1
            found = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
            if found:
                seen_nonces.add(found.group(1))
    assert html > 30
    # A fresh nonce per response: one that repeats could be learnt and reused.
    assert len(seen_nonces) > 30


def test_served_files_cannot_run_as_pages(world):
    """An asset (whatever it holds) is served with a sandboxing CSP and nosniff."""
    alice = csrf_client(world.alice)
    for path in (f"/jobs/assets/{world.asset.id}/", f"/jobs/assets/{world.asset.id}/thumbnail/"):
        response = alice.get(path)
        csp = policy(response["Content-Security-Policy"])
        assert "sandbox" in csp and csp.get("default-src") == ["'none'"], path
        assert response["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------- redirects stay on the site

OFFSITE = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "https:evil.example",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", OFFSITE)
def test_next_never_leads_off_the_site(world, target, password):
    """The sign-in page and the language switch take a `next`: only a path on this site."""
    nobody = csrf_client()
    token = nobody.cookies[settings.CSRF_COOKIE_NAME].value
    switched = nobody.post(
        "/i18n/setlang/", {"language": "en", "next": target, "csrfmiddlewaretoken": token}
    )
    signed_in = nobody.post(
        f"{LOGIN_PATH}?next={target}",
        {"username": "alice", "password": password, "csrfmiddlewaretoken": token},
    )
    assert signed_in.wsgi_request.user.is_authenticated  # the sign-in itself worked
    for response in (switched, signed_in):
        assert response.status_code == 302
        location = response["Location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
