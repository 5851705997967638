"""The staff dashboard: who may see it, the users list (aggregates, query count), the user page
(quota form, charts, deactivate, delete), site usage, and the run-time relay allowlist."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.models import Conversation, Message
from media_jobs.downloads import DownloadRefused, check_url
from media_jobs.models import Job
from studio.accounts.models import (
    ApprovedRelay,
    AuditEvent,
    Profile,
    Quota,
    RelayCredential,
    UsageRecord,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-alice-very-secret-key-9Z8Y"

STAFF_GETS = ["/staff/", "/staff/usage/", "/staff/invites/", "/staff/relays/", "/staff/audit/"]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_user(db, password):
    return UserFactory(username="root", password=password, is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def give_key(user, *, verified=True, base_url="https://relay.example.com"):
    credential = RelayCredential(user=user, base_url=base_url)
    credential.set_api_key(SECRET)
    if verified:
        credential.verified_at = timezone.now()
    credential.save()
    return credential


def chat_usage(user, model, prompt, completion, *, at=None, ref=""):
    return UsageRecord.objects.create(
        user=user,
        source="chat",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        at=at or timezone.now(),
        ref=ref,
    )


def job_usage(user, kind, *, at=None):
    return UsageRecord.objects.create(
        user=user, source="job", kind=kind, jobs=1, at=at or timezone.now()
    )


# --- access ------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, user):
    for path in [*STAFF_GETS, f"/staff/users/{user.pk}/", f"/staff/users/{user.pk}/delete/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path


def test_non_staff_users_get_not_found_everywhere(signed_in, user, other_user):
    relay = ApprovedRelay.objects.create(url="https://relay.two.example")
    gets = [*STAFF_GETS, f"/staff/users/{other_user.pk}/", f"/staff/users/{other_user.pk}/delete/"]
    for path in gets:
        assert signed_in.get(path).status_code == 404, path
    posts = {
        f"/staff/users/{other_user.pk}/": {"jobs_at_once": "9"},
        f"/staff/users/{other_user.pk}/active/": {"active": "0"},
        f"/staff/users/{other_user.pk}/delete/": {},
        "/staff/invites/": {"note": "x"},
        "/staff/relays/": {"url": "https://evil.example"},
        f"/staff/relays/{relay.pk}/remove/": {},
    }
    for path, data in posts.items():
        assert signed_in.post(path, data).status_code == 404, path
    other_user.refresh_from_db()
    assert other_user.is_active
    assert not Quota.objects.exists()
    assert ApprovedRelay.objects.filter(pk=relay.pk).exists()
    assert not ApprovedRelay.objects.filter(url="https://evil.example").exists()


def test_staff_see_every_page_and_the_nav_link(staff_client, user, signed_in_as_user_client):
    for path in [*STAFF_GETS, f"/staff/users/{user.pk}/", f"/staff/users/{user.pk}/delete/"]:
        assert staff_client.get(path).status_code == 200, path
    assert 'href="/staff/"' in staff_client.get("/settings/").content.decode()
    assert 'href="/staff/"' not in signed_in_as_user_client.get("/settings/").content.decode()


@pytest.fixture
def signed_in_as_user_client(user):
    from django.test import Client

    other = Client()
    other.force_login(user)
    return other


# --- users list --------------------------------------------------------------------------------


def test_users_list_shows_keys_usage_and_counts_but_never_contents(staff_client, user, other_user):
    give_key(user)
    Profile.objects.create(user=other_user, allow_site_key=True)
    chat_usage(user, "gpt-4o", 100, 23)
    chat_usage(user, "gpt-4o", 10, 5)
    chat_usage(user, "claude-3", 7, 3)
    chat_usage(user, "gpt-4o", 5000, 5000, at=timezone.now() - timedelta(days=45))  # not this month
    job_usage(user, "dalle")
    job_usage(user, "dalle")
    job_usage(user, "tts")
    chat = Conversation.objects.create(user=user, title="My secret plans", model="gpt-4o")
    Message.objects.create(conversation=chat, role="user", content="the password is hunter2")
    Conversation.objects.create(user=user)
    Job.objects.create(user=user, kind="dalle", params={"prompt": "a private portrait"})

    page = staff_client.get("/staff/").content.decode()
    row = _row(page, "alice")
    assert "sk-…9Z8Y" in row and "verified" in row
    assert _cell(row, "tokens").startswith("148")  # 123 + 15 + 10
    assert "gpt-4o</span> 138" in row and "claude-3</span> 10" in row
    assert _cell(row, "jobs-month").startswith("3")
    assert "dalle</span> 2" in row and "tts</span> 1" in row
    assert _cell(row, "conversations") == "2" and _cell(row, "jobs") == "1"
    bob = _row(page, "bob")
    assert "allowed" in bob and "none" in bob and _cell(bob, "tokens").startswith("0")
    for private in ("My secret plans", "hunter2", "a private portrait", SECRET):
        assert private not in page


def _row(page: str, username: str) -> str:
    match = re.search(
        rf'<tr data-testid="user-row" data-username="{username}">(.*?)</tr>', page, re.S
    )
    assert match, f"no row for {username}"
    return match.group(1)


def _cell(row: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}">\s*(.*?)\s*(?:<ul|</div>)', row, re.S)
    assert match, testid
    return match.group(1).strip()


def _populate(count: int, start: int) -> None:
    for n in range(start, start + count):
        user = User.objects.create(username=f"member{n:03d}")
        give_key(user)
        Profile.objects.create(user=user, allow_site_key=n % 2 == 0)
        chat_usage(user, "gpt-4o", 10, n)
        chat_usage(user, "gpt-4o-mini", 1, 1)
        job_usage(user, "dalle")
        Conversation.objects.create(user=user)
        Job.objects.create(user=user, kind="tts", params={})


def test_users_list_query_count_does_not_grow_with_users(staff_client):
    _populate(3, 0)
    with CaptureQueriesContext(connection) as few:
        response = staff_client.get("/staff/")
    assert response.content.decode().count('data-testid="user-row"') == 4  # with the staff user
    _populate(27, 3)
    with CaptureQueriesContext(connection) as many:
        response = staff_client.get("/staff/")
    assert response.content.decode().count('data-testid="user-row"') == 31
    assert len(many.captured_queries) == len(few.captured_queries), [
        q["sql"] for q in many.captured_queries
    ]


def test_users_list_filters_and_paginates(staff_client, user, other_user):
    other_user.is_active = False
    other_user.save()
    page = staff_client.get("/staff/?status=inactive").content.decode()
    assert 'data-username="bob"' in page and 'data-username="alice"' not in page
    page = staff_client.get("/staff/?q=ALI").content.decode()
    assert 'data-username="alice"' in page and 'data-username="bob"' not in page
    _populate(55, 0)
    first = staff_client.get("/staff/").content.decode()
    assert first.count('data-testid="user-row"') == 50 and "Page 1 of 2" in first
    second = staff_client.get("/staff/?page=2").content.decode()
    assert second.count('data-testid="user-row"') == 8


# --- user page ---------------------------------------------------------------------------------


def test_user_page_has_usage_and_a_chart_per_model(staff_client, user):
    give_key(user)
    chat_usage(user, "gpt-4o", 100, 50)
    chat_usage(user, "gpt-4o", 30, 20, at=timezone.now() - timedelta(days=3))
    chat_usage(user, "claude-3", 5, 5, at=timezone.now() - timedelta(days=3))
    chat_usage(user, "old-model", 5, 5, at=timezone.now() - timedelta(days=40))  # outside
    job_usage(user, "midjourney")
    page = staff_client.get(f"/staff/users/{user.pk}/").content.decode()
    chart = page[page.index('data-testid="tokens-chart"') :]
    chart = chart[: chart.index("</figure>")]
    assert "<svg" in chart and 'role="img"' in chart
    rects = re.findall(r'<rect class="(series-\d)"[^>]*><title>([^<]*)</title>', chart)
    assert len(rects) == 3  # today: gpt-4o; three days ago: gpt-4o and claude-3
    titles = [title for _css, title in rects]
    assert any("gpt-4o: 150 tokens" in title for title in titles)
    assert any("gpt-4o: 50 tokens" in title for title in titles)
    assert any("claude-3: 10 tokens" in title for title in titles)
    assert "old-model" not in chart
    # The biggest series gets the first colour, in the bars and the legend alike.
    assert {css for css, title in rects if "gpt-4o" in title} == {"series-0"}
    assert 'data-testid="jobs-chart"' in page and "midjourney: 1 jobs" in page
    assert 'data-testid="own-key"' in page and "sk-…9Z8Y" in page and SECRET not in page


def test_quota_form_saves_and_keeps_what_was_typed_on_error(staff_client, user):
    url = f"/staff/users/{user.pk}/"
    page = staff_client.get(url).content.decode()
    assert 'name="jobs_at_once" value="4"' in page  # the default
    bad = staff_client.post(
        url, {"tokens_per_month": "-5", "jobs_at_once": "2", "allowed_models": "gpt-4o"}
    )
    assert bad.status_code == 400
    text = bad.content.decode()
    assert "greater than or equal to 0" in text and "gpt-4o</textarea>" in text
    assert not Quota.objects.exists()

    response = staff_client.post(
        url,
        {
            "tokens_per_month": "50000",
            "jobs_per_day": "10",
            "jobs_at_once": "2",
            "allowed_models": "gpt-4o*, claude-3\ngpt-4o*",
            "allowed_job_kinds": ["dalle", "tts"],
            "allow_site_key": "on",
        },
        follow=True,
    )
    assert response.status_code == 200 and "was saved" in response.content.decode()
    quota = Quota.objects.get(user=user)
    assert (quota.tokens_per_month, quota.jobs_per_day, quota.jobs_at_once) == (50000, 10, 2)
    assert quota.allowed_models == ["gpt-4o*", "claude-3"]
    assert quota.allowed_job_kinds == ["dalle", "tts"]
    assert Profile.objects.get(user=user).allow_site_key

    unknown = staff_client.post(url, {"jobs_at_once": "2", "allowed_job_kinds": ["nope"]})
    assert unknown.status_code == 400


def test_deactivated_user_cannot_sign_in_and_loses_their_session(
    staff_client, user, password, signed_in_as_user_client
):
    assert signed_in_as_user_client.get("/settings/").status_code == 200
    response = staff_client.post(f"/staff/users/{user.pk}/active/", {"active": "0"}, follow=True)
    assert "can no longer sign in" in response.content.decode()
    user.refresh_from_db()
    assert not user.is_active
    # The open session is over, and signing in again fails like a wrong password.
    assert signed_in_as_user_client.get("/settings/").status_code == 302
    from django.test import Client

    browser = Client()
    login = browser.post("/accounts/login/", {"username": "alice", "password": password})
    assert login.status_code == 200 and "_auth_user_id" not in browser.session

    staff_client.post(f"/staff/users/{user.pk}/active/", {"active": "1"})
    login = browser.post("/accounts/login/", {"username": "alice", "password": password})
    assert login.status_code == 302 and browser.session["_auth_user_id"] == str(user.pk)


def test_staff_cannot_deactivate_themselves_and_only_superusers_touch_staff(
    staff_client, staff_user, client, password
):
    response = staff_client.post(f"/staff/users/{staff_user.pk}/active/", {"active": "0"})
    assert response.status_code == 302
    staff_user.refresh_from_db()
    assert staff_user.is_active
    helper = UserFactory(username="helper", password=password, is_staff=True)
    client.force_login(helper)
    client.post(f"/staff/users/{staff_user.pk}/active/", {"active": "0"})
    client.post(f"/staff/users/{staff_user.pk}/delete/")
    staff_user.refresh_from_db()
    assert staff_user.is_active


def test_delete_asks_first_then_deletes_everything_but_usage(staff_client, user):
    give_key(user)
    Conversation.objects.create(user=user)
    Conversation.objects.create(user=user)
    Job.objects.create(user=user, kind="dalle", params={})
    record = chat_usage(user, "gpt-4o", 1, 2)
    confirm = staff_client.get(f"/staff/users/{user.pk}/delete/").content.decode()
    assert "Delete the account alice?" in confirm
    assert "2 conversations" in confirm and "1 job," in confirm
    assert Conversation.objects.filter(user=user).count() == 2  # GET changed nothing

    response = staff_client.post(f"/staff/users/{user.pk}/delete/", follow=True)
    assert "The account alice was deleted." in response.content.decode()
    assert not type(user).objects.filter(pk=user.pk).exists()
    assert not Conversation.objects.exists() and not Job.objects.exists()
    assert not RelayCredential.objects.exists()
    record.refresh_from_db()
    assert record.user is None  # the site's totals keep it
    assert staff_client.get(f"/staff/users/{user.pk}/").status_code == 404


def test_site_usage_page_sums_everyone(staff_client, user, other_user):
    chat_usage(user, "gpt-4o", 10, 10)
    chat_usage(other_user, "gpt-4o", 100, 100)
    chat_usage(other_user, "claude-3", 1, 1)
    job_usage(user, "tts")
    page = staff_client.get("/staff/usage/").content.decode()
    assert 'data-testid="site-tokens-chart"' in page and "<svg" in page
    assert "gpt-4o: 220 tokens" in page and "claude-3: 2 tokens" in page
    top = page[page.index('data-testid="top-users"') :]
    assert top.index("bob") < top.index("alice")


# --- relay allowlist ---------------------------------------------------------------------------


def test_relay_approved_by_staff_is_offered_and_usable_then_removed(
    staff_client, settings, signed_in_as_user_client, user
):
    settings.UPSTREAM_ALLOWED_BASE_URLS = ["https://env-relay.example.com"]
    page = staff_client.get("/staff/relays/").content.decode()
    assert "https://env-relay.example.com" in page and "environment" in page

    bad = staff_client.post("/staff/relays/", {"url": "ftp://relay.example.com"})
    assert bad.status_code == 400 and "ftp://relay.example.com" in bad.content.decode()
    for wrong in ("https://user:pw@relay.example.com", "https://relay.example.com/?a=1"):
        assert staff_client.post("/staff/relays/", {"url": wrong}).status_code == 400
    duplicate = staff_client.post("/staff/relays/", {"url": "https://env-relay.example.com/"})
    assert duplicate.status_code == 400 and "already approved" in duplicate.content.decode()

    response = staff_client.post(
        "/staff/relays/", {"url": "http://127.0.0.1:8123/", "note": "lab relay"}, follow=True
    )
    assert "http://127.0.0.1:8123 is approved." in response.content.decode()
    relay = ApprovedRelay.objects.get()
    assert relay.url == "http://127.0.0.1:8123"

    settings_page = signed_in_as_user_client.get("/settings/").content.decode()
    assert '<option value="http://127.0.0.1:8123"' in settings_page
    saved = signed_in_as_user_client.post(
        "/settings/", {"base_url": "http://127.0.0.1:8123", "api_key": SECRET}
    )
    assert saved.status_code == 302
    assert RelayCredential.objects.get(user=user).base_url == "http://127.0.0.1:8123"
    assert check_url("http://127.0.0.1:8123/files/a.png") == ["127.0.0.1"]  # downloads trust it

    staff_client.post(f"/staff/relays/{relay.pk}/remove/")
    assert not ApprovedRelay.objects.exists()
    assert '<option value="http://127.0.0.1:8123"' not in (
        signed_in_as_user_client.get("/settings/").content.decode()
    )
    refused = signed_in_as_user_client.post(
        "/settings/", {"base_url": "http://127.0.0.1:8123", "api_key": SECRET}
    )
    assert refused.status_code == 400
    with pytest.raises(DownloadRefused):
        check_url("http://127.0.0.1:8123/files/a.png")
    page = staff_client.get("/staff/relays/").content.decode()
    assert 'data-testid="orphaned-keys"' in page  # alice's key still points at it
    assert AuditEvent.objects.filter(
        action="relay_removed", target="http://127.0.0.1:8123"
    ).exists()
