"""Invites: staff make a one-time link; the invitee picks a username and password with it once,
before it expires; nobody can sign up with what the database holds."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from studio.accounts.models import AuditEvent, Invite, Profile
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a long and quiet harbour 77"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_client(client, password):
    client.force_login(UserFactory(username="root", password=password, is_staff=True))
    return client


def make_invite(staff_client, **fields) -> str:
    response = staff_client.post("/staff/invites/", {"note": "for Erin", **fields})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    link = re.search(
        r'value="(http://testserver/accounts/invite/[^"]+/)"', response.content.decode()
    )
    assert link, "the link is shown"
    return link.group(1).removeprefix("http://testserver")


def sign_up(path, username="erin", password=NEW_PASSWORD):
    browser = Client()
    response = browser.post(
        path, {"username": username, "password1": password, "password2": password}
    )
    return browser, response


def test_an_invite_link_works_once(staff_client):
    path = make_invite(staff_client, allow_site_key="on")
    token = path.rstrip("/").rsplit("/", 1)[-1]
    invite = Invite.objects.get()
    assert invite.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in invite.token_hash and invite.note == "for Erin"

    page = Client().get(path)
    assert page.status_code == 200 and 'name="password1"' in page.content.decode()

    browser, response = sign_up(path)
    assert response.status_code == 302 and response["Location"] == "/settings/"
    erin = User.objects.get(username="erin")
    assert erin.check_password(NEW_PASSWORD) and erin.is_active and not erin.is_staff
    assert Profile.objects.get(user=erin).allow_site_key
    assert browser.session["_auth_user_id"] == str(erin.pk)  # signed in straight away
    invite.refresh_from_db()
    assert invite.used_by == erin and invite.used_at is not None

    again = Client().get(path)
    assert again.status_code == 404 and "does not work" in again.content.decode()
    _browser, second = sign_up(path, username="mallory")
    assert second.status_code == 404
    assert not User.objects.filter(username="mallory").exists()
    listing = staff_client.get("/staff/invites/").content.decode()
    assert "Used" in listing and ">erin</a>" in listing


def test_an_expired_invite_does_not_work(staff_client):
    path = make_invite(staff_client)
    Invite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(path).status_code == 404
    _browser, response = sign_up(path)
    assert response.status_code == 404 and not User.objects.filter(username="erin").exists()
    assert "Expired" in staff_client.get("/staff/invites/").content.decode()


def test_invites_expire_after_the_configured_days(staff_client, settings):
    settings.INVITE_EXPIRY_DAYS = 2
    make_invite(staff_client)
    left = Invite.objects.get().expires_at - timezone.now()
    assert timedelta(days=1, hours=23) < left <= timedelta(days=2)


def test_a_made_up_token_gets_the_same_page_as_a_used_one(client):
    response = client.get("/accounts/invite/not-a-real-token/")
    assert response.status_code == 404 and "does not work" in response.content.decode()


def test_a_weak_password_is_refused_and_the_username_kept(staff_client, user):
    path = make_invite(staff_client)
    _browser, weak = sign_up(path, password="12345678")
    assert weak.status_code == 400
    page = weak.content.decode()
    assert 'value="erin"' in page and "too common" in page
    _browser, taken = sign_up(path, username="alice")  # the `user` fixture's name
    assert taken.status_code == 400 and "already exists" in taken.content.decode()
    assert Invite.objects.get().used_at is None  # still usable


def test_a_revoked_invite_stops_working(staff_client):
    path = make_invite(staff_client)
    invite = Invite.objects.get()
    staff_client.post(f"/staff/invites/{invite.pk}/revoke/")
    assert not Invite.objects.exists()
    assert Client().get(path).status_code == 404
    assert AuditEvent.objects.filter(action="invite_revoked", target="for Erin").exists()


def test_a_signed_in_user_is_told_to_sign_out_first(staff_client, user):
    path = make_invite(staff_client)
    browser = Client()
    browser.force_login(user)
    page = browser.get(path).content.decode()
    assert "Sign out first" in page and 'name="password1"' not in page
    assert Invite.objects.get().used_at is None
