"""The audit log: an event, with who, when and from where, for each action that matters; never a
password or a key; read-only on /staff/audit/ and in the Django admin."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import serializers
from django.test import Client
from django.utils import timezone

from studio.accounts.models import ApprovedRelay, AuditEvent, RelayCredential
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-invalid-audit-0123456789QRST"  # not a simulator key: 401
BROWSER = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "TestBrowser/1.0"}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root(db, password):
    return UserFactory(username="root", password=password, is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(root):
    client = Client(**BROWSER)
    client.force_login(root)
    return client


def events(action: str):
    return list(AuditEvent.objects.filter(action=action))


def nothing_secret_in_the_log(*secrets: str) -> None:
    dumped = serializers.serialize("json", AuditEvent.objects.all())
    for secret in secrets:
        assert secret not in dumped


def test_sign_in_failure_sign_in_and_sign_out_are_recorded_without_passwords(user, password):
    browser = Client(**BROWSER)
    browser.post("/accounts/login/", {"username": "alice", "password": "wrong password 1"})
    browser.post("/accounts/login/", {"username": "nobody", "password": "wrong password 2"})
    browser.post("/accounts/login/", {"username": "alice", "password": password})
    browser.post("/accounts/logout/")

    failed = events("sign_in_failed")
    assert [event.target for event in failed] == ["nobody", "alice"]  # newest first
    assert all(event.actor is None and event.ip == "203.0.113.7" for event in failed)
    (signed_in,) = events("sign_in")
    assert signed_in.actor == user and signed_in.actor_name == "alice"
    assert signed_in.ip == "203.0.113.7" and signed_in.user_agent == "TestBrowser/1.0"
    (signed_out,) = events("sign_out")
    assert signed_out.actor == user
    nothing_secret_in_the_log(password, "wrong password 1", "wrong password 2")


def test_key_saved_verified_and_removed_are_recorded_masked(settings, simulator, user):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    browser = Client(**BROWSER)
    browser.force_login(user)
    browser.post("/settings/", {"base_url": simulator.url, "api_key": SECRET})
    browser.post("/settings/verify/")  # the simulator does not know this key: it fails
    credential = RelayCredential.objects.get(user=user)
    credential.set_api_key(simulator.key)
    credential.save()
    browser.post("/settings/verify/")
    browser.post("/settings/remove-key/")

    (saved,) = events("key_saved")
    assert saved.actor == user and saved.target == f"sk-…QRST @ {simulator.url}"
    assert saved.ip == "203.0.113.7"
    (failed,) = events("key_verify_failed")
    assert failed.data["error"]
    (verified,) = events("key_verified")
    assert verified.data["models"] > 0
    (removed,) = events("key_removed")
    assert removed.actor == user
    nothing_secret_in_the_log(SECRET, simulator.key)


def test_staff_actions_are_recorded(staff_client, root, user, other_user):
    staff_client.post(
        f"/staff/users/{user.pk}/",
        {"tokens_per_month": "1000", "jobs_at_once": "2", "allowed_models": "gpt-4o"},
    )
    staff_client.post(f"/staff/users/{user.pk}/", {"tokens_per_month": "1000", "jobs_at_once": "2"})
    staff_client.post(f"/staff/users/{user.pk}/active/", {"active": "0"})
    staff_client.post(f"/staff/users/{user.pk}/active/", {"active": "1"})
    staff_client.post(f"/staff/users/{other_user.pk}/delete/")
    staff_client.post("/staff/relays/", {"url": "https://relay.two.example"})
    relay = ApprovedRelay.objects.get()
    staff_client.post(f"/staff/relays/{relay.pk}/remove/")
    staff_client.post("/staff/invites/", {"note": "for Erin"})

    first, second = reversed(events("quota_changed"))
    assert first.actor == root and first.target == f"alice (#{user.pk})"
    assert first.data["tokens_per_month"] == [None, 1000]
    assert first.data["jobs_at_once"] == [4, 2] and first.data["allowed_models"] == [[], ["gpt-4o"]]
    assert second.data == {"allowed_models": [["gpt-4o"], []]}  # only what changed
    assert events("user_deactivated")[0].target == f"alice (#{user.pk})"
    assert events("user_reactivated")[0].actor == root
    (deleted,) = events("user_deleted")
    assert deleted.target == f"bob (#{other_user.pk})" and deleted.ip == "203.0.113.7"
    assert events("relay_added")[0].target == "https://relay.two.example"
    assert events("relay_removed")[0].target == "https://relay.two.example"
    assert events("invite_created")[0].target == "for Erin"

    # Saving the same quota again changes nothing and records nothing.
    staff_client.post(f"/staff/users/{user.pk}/", {"tokens_per_month": "1000", "jobs_at_once": "2"})
    assert len(events("quota_changed")) == 2


def test_invite_use_is_recorded_for_the_new_user(staff_client):
    response = staff_client.post("/staff/invites/", {"note": "for Erin"})
    path = response.content.decode().split('value="http://testserver', 1)[1].split('"', 1)[0]
    Client(**BROWSER).post(
        path,
        {
            "username": "erin",
            "password1": "harbour lights 9911",
            "password2": "harbour lights 9911",
        },
    )
    (used,) = events("invite_used")
    assert used.actor == User.objects.get(username="erin") and used.target == "for Erin"
    assert events("sign_in")[0].actor_name == "erin"  # signed in by the invite page
    nothing_secret_in_the_log("harbour lights 9911")


def test_django_admin_actions_are_recorded_single_and_bulk(staff_client, root):
    response = staff_client.post(
        "/admin/accounts/approvedrelay/add/", {"url": "https://relay.one.example/", "note": ""}
    )
    assert response.status_code == 302
    assert ApprovedRelay.objects.get().url == "https://relay.one.example"
    (added,) = events("admin_added")
    assert added.actor == root and added.target == "approved relay: https://relay.one.example"
    assert added.ip == "203.0.113.7" and added.data["model"] == "accounts.approvedrelay"

    ApprovedRelay.objects.create(url="https://relay.two.example")
    ids = [str(pk) for pk in ApprovedRelay.objects.values_list("pk", flat=True)]
    response = staff_client.post(
        "/admin/accounts/approvedrelay/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302 and not ApprovedRelay.objects.exists()
    deleted = {event.target for event in events("admin_deleted")}
    assert deleted == {
        "approved relay: https://relay.one.example",
        "approved relay: https://relay.two.example",
    }


def test_audit_log_is_read_only_in_the_django_admin(staff_client, user):
    staff_client.post(f"/staff/users/{user.pk}/active/", {"active": "0"})
    event = AuditEvent.objects.get(action="user_deactivated")
    assert staff_client.get("/admin/accounts/auditevent/").status_code == 200
    assert staff_client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert staff_client.get(f"/admin/accounts/auditevent/{event.pk}/delete/").status_code == 403
    staff_client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"target": "edited"})
    event.refresh_from_db()
    assert event.target == f"alice (#{user.pk})"
    assert staff_client.get("/admin/accounts/usagerecord/add/").status_code == 403


def test_audit_page_filters_and_pages(staff_client, user, signed_in):
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                action="sign_in", actor=user, actor_name="alice", at=now - timedelta(minutes=n)
            )
            for n in range(60)
        ]
    )
    AuditEvent.objects.create(action="sign_in_failed", target="alice", at=now)
    AuditEvent.objects.create(
        action="relay_added",
        actor_name="root",
        target="https://x.example",
        at=now - timedelta(days=3),
    )
    page = staff_client.get("/staff/audit/").content.decode()
    assert page.count('data-testid="audit-row"') == 50 and "Page 1 of 2" in page
    assert (
        staff_client.get("/staff/audit/?page=2").content.decode().count('data-testid="audit-row"')
        > 0
    )

    failed = staff_client.get("/staff/audit/?action=sign_in_failed").content.decode()
    assert failed.count('data-testid="audit-row"') == 1
    alice = staff_client.get("/staff/audit/?who=ALICE&action=sign_in_failed").content.decode()
    assert alice.count('data-testid="audit-row"') == 1  # a failure is found by the name typed
    relays = staff_client.get("/staff/audit/?q=x.example").content.decode()
    assert relays.count('data-testid="audit-row"') == 1
    day = (now - timedelta(days=3)).astimezone(timezone.get_current_timezone()).date()
    dated = staff_client.get(f"/staff/audit/?since={day}&until={day}").content.decode()
    assert dated.count('data-testid="audit-row"') == 1 and "https://x.example" in dated
    second = staff_client.get("/staff/audit/?action=sign_in&page=2").content.decode()
    assert 'href="?page=1&amp;action=sign_in"' in second
    bad = staff_client.get("/staff/audit/?since=yesterday")
    assert bad.status_code == 400

    assert signed_in.get("/staff/audit/").status_code == 404
    assert json.dumps(list(AuditEvent.objects.values("target")))  # plain data, nothing hidden
