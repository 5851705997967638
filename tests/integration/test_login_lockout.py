"""Sign-in lockout: per username and per address, the same for accounts that exist and ones that
do not, shown on the sign-in page with the username kept, and over when its window ends."""

import re

import pytest
from django.contrib.auth.backends import ModelBackend

from studio.ratelimit import backends

pytestmark = pytest.mark.django_db(transaction=True)

LOCKED = "Too many failed sign-in attempts. Try again in"
WRONG = "Please enter a correct username and password"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.REDIS_URL = ""  # the database counter, whose clock the tests move
    settings.RATELIMIT_LOGIN_USERNAME = (3, 900)
    settings.RATELIMIT_LOGIN_IP = (100, 900)
    # A fast hasher: these tests sign in dozens of times; what they check is not the hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = 1_800_000_000_000

        def advance(self, seconds: float) -> None:
            self.now += int(seconds * 1000)

    fake = Clock()
    monkeypatch.setattr(backends, "now_ms", lambda: fake.now)
    return fake


@pytest.fixture
def password_checks(monkeypatch):
    """How many times a password was checked (ModelBackend.authenticate calls)."""
    calls: list[str] = []
    original = ModelBackend.authenticate

    def counting(self, request, username=None, password=None, **kwargs):
        calls.append(username)
        return original(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counting)
    return calls


def sign_in(client, username, password, address="127.0.0.1", path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in_as(client):
    return client.session.get("_auth_user_id")


def error_block(response) -> str:
    """The page's error notice, which is what differs between a wrong password and a lockout."""
    found = re.search(r'<div class="notice notice-error".*?</div>', response.content.decode(), re.S)
    return found.group(0) if found else ""


def test_after_too_many_failures_even_the_right_password_waits(client, user, password, clock):
    for _ in range(3):
        response = sign_in(client, user.username, "wrong password")
        assert response.status_code == 200 and WRONG in response.content.decode()

    locked = sign_in(client, user.username, password)
    page = locked.content.decode()
    assert locked.status_code == 429 and locked["Retry-After"] == "900"
    assert LOCKED + " 15 minutes." in page
    assert 'role="alert"' in error_block(locked)
    assert f'value="{user.username}"' in page  # the username stays in its field
    assert not signed_in_as(client)


def test_a_lockout_says_and_does_the_same_for_an_account_that_does_not_exist(
    client, user, clock, password_checks
):
    answers = {}
    for name in (user.username, "nobody-by-this-name"):
        failures = [sign_in(client, name, "wrong password") for _ in range(3)]
        assert {r.status_code for r in failures} == {200}
        checked_before = len(password_checks)
        locked = sign_in(client, name, "wrong password")
        # Locked out: no password is checked at all, for an account or for no account.
        assert len(password_checks) == checked_before
        answers[name] = (locked.status_code, locked["Retry-After"], error_block(locked))
        answers[name + ":failure"] = error_block(failures[0])
    assert answers[user.username] == answers["nobody-by-this-name"]
    assert answers[user.username + ":failure"] == answers["nobody-by-this-name:failure"]
    assert LOCKED in answers[user.username][2]


def test_the_lockout_ends_with_its_window(client, user, password, clock):
    for _ in range(3):
        sign_in(client, user.username, "wrong password")
    clock.advance(600)
    assert "Try again in 5 minutes." in sign_in(client, user.username, password).content.decode()
    clock.advance(300)
    response = sign_in(client, user.username, password)
    assert response.status_code == 302 and signed_in_as(client) == str(user.pk)


def test_a_good_sign_in_clears_the_failures_of_that_username(client, user, password, clock):
    sign_in(client, user.username, "wrong password")
    sign_in(client, user.username, "wrong password")
    assert sign_in(client, user.username, password).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(3):
        assert WRONG in sign_in(client, user.username, "wrong password").content.decode()
    assert LOCKED in sign_in(client, user.username, "wrong").content.decode()


def test_usernames_lock_out_whatever_their_case(client, user, clock):
    for name in ("alice", "ALICE", "Alice"):
        sign_in(client, name, "wrong password")
    assert LOCKED in sign_in(client, "aLiCe", "wrong password").content.decode()


def test_one_address_trying_many_usernames_is_locked_out(settings, client, user, password, clock):
    settings.RATELIMIT_LOGIN_IP = (4, 900)
    for index in range(4):
        assert sign_in(client, f"guess{index}", "x", address="198.51.100.7").status_code == 200
    locked = sign_in(client, user.username, password, address="198.51.100.7")
    assert locked.status_code == 429 and LOCKED in locked.content.decode()
    # Another address, and the same account, are not held up by it.
    assert sign_in(client, user.username, password, address="198.51.100.8").status_code == 302


def test_good_sign_ins_do_not_use_up_the_address_allowance(settings, client, user, password, clock):
    settings.RATELIMIT_LOGIN_IP = (2, 900)
    for _ in range(5):
        assert sign_in(client, user.username, password).status_code == 302
        client.post("/accounts/logout/")
    sign_in(client, user.username, "wrong password")
    assert WRONG in sign_in(client, "someone", "wrong password").content.decode()
    assert LOCKED in sign_in(client, "someone-else", "wrong password").content.decode()


def test_an_empty_field_is_no_attempt(client, user, clock):
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": user.username, "password": ""})
        assert response.status_code == 200 and LOCKED not in response.content.decode()


def test_the_admin_sign_in_shares_the_lockout(client, django_user_model, clock):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123456")
    for _ in range(3):
        sign_in(client, "root", "wrong password", path="/admin/login/")
    response = sign_in(client, "root", "pw-root-123456", path="/admin/login/")
    assert LOCKED in response.content.decode()
    assert signed_in_as(client) is None
    # The counters are shared: the site's own page says the same.
    assert LOCKED in sign_in(client, admin.username, "pw-root-123456").content.decode()
