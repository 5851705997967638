"""The /settings/ page: save a key (encrypted), see it masked, verify it against the simulator."""

import pytest
from django.test import override_settings

from studio.accounts.models import Profile, RelayCredential
from tests.simulator_fixture import NOQUOTA_KEY

pytestmark = pytest.mark.django_db

SECRET = "sk-sim-alice-0123456789abcdefWXYZ"


@pytest.fixture
def relay(settings, simulator):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url, "https://relay.example.com"]
    settings.UPSTREAM_API_KEY = ""
    return simulator


def save_key(client, relay_url, key=SECRET):
    return client.post("/settings/", {"base_url": relay_url, "api_key": key}, follow=True)


def test_anonymous_user_is_sent_to_sign_in(client):
    response = client.get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_new_user_is_told_to_add_a_key(signed_in, relay):
    page = signed_in.get("/settings/").content.decode()
    assert 'data-testid="no-key-notice"' in page
    assert relay.url in page  # the approved relay is offered as a choice


def test_saved_key_is_encrypted_and_shown_masked(signed_in, relay, user):
    response = save_key(signed_in, relay.url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "sk-…WXYZ" in page
    assert SECRET not in page
    credential = RelayCredential.objects.get(user=user)
    assert SECRET.encode() not in bytes(credential.api_key_encrypted)
    assert credential.api_key == SECRET


def test_key_field_is_never_filled_back_in(signed_in, relay):
    save_key(signed_in, relay.url)
    page = signed_in.get("/settings/").content.decode()
    assert 'name="api_key"' in page
    assert 'value="sk-' not in page


def test_relay_outside_the_allowlist_is_refused(signed_in, relay, user):
    response = signed_in.post(
        "/settings/", {"base_url": "http://169.254.169.254", "api_key": SECRET}
    )
    assert response.status_code == 400
    assert "169.254.169.254" in response.content.decode()  # what was typed is shown back
    assert not RelayCredential.objects.filter(user=user).exists()


def test_empty_key_is_refused_with_a_message(signed_in, relay):
    response = signed_in.post("/settings/", {"base_url": relay.url, "api_key": ""})
    assert response.status_code == 400
    assert "Enter an API key." in response.content.decode()


def test_changing_only_the_relay_keeps_the_key(signed_in, relay, user):
    save_key(signed_in, relay.url)
    signed_in.post("/settings/", {"base_url": "https://relay.example.com", "api_key": ""})
    credential = RelayCredential.objects.get(user=user)
    assert credential.base_url == "https://relay.example.com"
    assert credential.api_key == SECRET


def test_verify_reports_the_number_of_models(signed_in, relay, user):
    save_key(signed_in, relay.url, relay.key)
    page = signed_in.post("/settings/verify/", follow=True).content.decode()
    credential = RelayCredential.objects.get(user=user)
    assert credential.verified_model_count and credential.verified_model_count > 3
    assert f"{credential.verified_model_count} models are available" in page
    assert "Verified" in page


def test_verify_shows_the_relays_own_message_for_a_wrong_key(signed_in, relay, user):
    save_key(signed_in, relay.url, "sk-wrong-key-0000")
    page = signed_in.post("/settings/verify/", follow=True).content.decode()
    assert "无效的令牌" in page  # the relay's own words
    assert "rejected the API key" in page  # and plain words around them
    assert RelayCredential.objects.get(user=user).verified_at is None


def test_verify_explains_an_exhausted_quota(signed_in, relay):
    save_key(signed_in, relay.url, NOQUOTA_KEY)
    page = signed_in.post("/settings/verify/", follow=True).content.decode()
    assert "no quota" in page


def test_verify_explains_a_relay_that_is_down(signed_in, settings, user):
    settings.UPSTREAM_ALLOWED_BASE_URLS = ["http://127.0.0.1:9"]  # discard port: nothing listens
    save_key(signed_in, "http://127.0.0.1:9")
    page = signed_in.post("/settings/verify/", follow=True).content.decode()
    assert "The relay is unavailable" in page


def test_remove_key_asks_first_then_removes(signed_in, relay, user):
    save_key(signed_in, relay.url)
    confirm = signed_in.get("/settings/remove-key/")
    assert "Remove your API key?" in confirm.content.decode()
    assert RelayCredential.objects.filter(user=user).exists()
    page = signed_in.post("/settings/remove-key/", follow=True).content.decode()
    assert not RelayCredential.objects.filter(user=user).exists()
    assert "Your API key was removed." in page


@pytest.mark.parametrize("path", ["/chat/", "/jobs/"])
def test_features_tell_a_user_without_key_to_add_one(signed_in, relay, path):
    page = signed_in.get(path).content.decode()
    assert 'data-testid="missing-key"' in page
    assert 'href="/settings/"' in page


@pytest.mark.parametrize("path", ["/chat/", "/jobs/"])
def test_site_key_is_used_only_where_an_admin_allowed_it(signed_in, relay, settings, user, path):
    settings.UPSTREAM_API_KEY = "sk-sim-site"
    assert 'data-testid="missing-key"' in signed_in.get(path).content.decode()
    Profile.objects.create(user=user, allow_site_key=True)
    assert 'data-testid="missing-key"' not in signed_in.get(path).content.decode()


def test_one_users_key_is_not_anothers(client, relay, user, other_user):
    client.force_login(user)
    save_key(client, relay.url)
    client.force_login(other_user)
    page = client.get("/settings/").content.decode()
    assert "sk-…WXYZ" not in page
    assert 'data-testid="no-key-notice"' in page


@override_settings(UPSTREAM_ALLOWED_BASE_URLS=[])
def test_no_relay_configured_says_so(signed_in):
    assert "No relay is configured" in signed_in.get("/settings/").content.decode()


def test_default_model_is_saved_and_used_for_new_chats(signed_in, user):
    page = signed_in.post(
        "/settings/default-model/", {"default_model": " gpt-4o-mini "}, follow=True
    ).content.decode()
    assert "New conversations will start with gpt-4o-mini." in page
    assert Profile.objects.get(user=user).default_model == "gpt-4o-mini"
    assert 'value="gpt-4o-mini"' in page
