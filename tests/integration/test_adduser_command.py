"""manage.py adduser: password and key from standard input, never from arguments."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from studio.accounts.models import Profile, RelayCredential

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def relay_settings(settings):
    settings.UPSTREAM_BASE_URL = "https://relay.example.com"
    settings.UPSTREAM_ALLOWED_BASE_URLS = ["https://relay.example.com"]


def adduser(monkeypatch, stdin_text, *args):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin_text))
    out = io.StringIO()
    call_command("adduser", *args, stdout=out)
    return out.getvalue()


def test_creates_a_user_who_can_sign_in(monkeypatch, client, relay_settings):
    output = adduser(monkeypatch, "a long enough passphrase 9\n", "carol")
    assert "Created user 'carol'" in output
    assert client.login(username="carol", password="a long enough passphrase 9")
    user = User.objects.get(username="carol")
    assert not user.is_staff
    assert not Profile.objects.get(user=user).allow_site_key


def test_staff_and_site_key_flags(monkeypatch, relay_settings):
    adduser(monkeypatch, "a long enough passphrase 9\n", "dave", "--staff", "--allow-site-key")
    user = User.objects.get(username="dave")
    assert user.is_staff and user.is_superuser
    assert Profile.objects.get(user=user).allow_site_key


def test_second_line_is_the_api_key_stored_encrypted(monkeypatch, relay_settings):
    output = adduser(monkeypatch, "a long enough passphrase 9\nsk-from-stdin-1234\n", "erin")
    assert "sk-from-stdin-1234" not in output
    credential = RelayCredential.objects.get(user__username="erin")
    assert credential.api_key == "sk-from-stdin-1234"
    assert credential.base_url == "https://relay.example.com"


def test_existing_user_is_an_error(monkeypatch, relay_settings, user):
    with pytest.raises(CommandError, match="already exists"):
        adduser(monkeypatch, "a long enough passphrase 9\n", user.username)


def test_weak_password_is_rejected_and_nothing_created(monkeypatch, relay_settings):
    with pytest.raises(CommandError, match="Password rejected"):
        adduser(monkeypatch, "123\n", "frank")
    assert not User.objects.filter(username="frank").exists()


def test_empty_stdin_is_an_error(monkeypatch, relay_settings):
    with pytest.raises(CommandError, match="No password"):
        adduser(monkeypatch, "", "gina")


def test_password_cannot_be_given_as_an_argument(monkeypatch, relay_settings):
    with pytest.raises(CommandError):
        adduser(monkeypatch, "a long enough passphrase 9\n", "hank", "--password", "x")
