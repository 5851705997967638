"""FIELD_ENCRYPTION_KEY rotation with manage.py rotate_encryption_key."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from studio.accounts import crypto
from studio.accounts.models import RelayCredential

pytestmark = pytest.mark.django_db


def store_key(user, api_key):
    credential = RelayCredential(user=user, base_url="https://relay.example.com")
    credential.set_api_key(api_key)
    credential.save()
    return credential


def test_rotation_re_encrypts_every_key_under_the_new_key(settings, user, other_user):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    store_key(user, "sk-alice-secret-1111")
    store_key(other_user, "sk-bob-secret-2222")

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_key")

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone: every key must still read
    assert RelayCredential.objects.get(user=user).api_key == "sk-alice-secret-1111"
    assert RelayCredential.objects.get(user=other_user).api_key == "sk-bob-secret-2222"


def test_a_key_under_an_unknown_encryption_key_stops_the_rotation(settings, user, other_user):
    lost, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [lost]
    store_key(user, "sk-alice-secret-1111")
    settings.FIELD_ENCRYPTION_KEYS = [new]
    store_key(other_user, "sk-bob-secret-2222")
    before = bytes(RelayCredential.objects.get(user=other_user).api_key_encrypted)

    with pytest.raises(CommandError, match="alice"):
        call_command("rotate_encryption_key")
    # Nothing was changed: the transaction rolled back.
    assert bytes(RelayCredential.objects.get(user=other_user).api_key_encrypted) == before


def test_reading_a_key_without_its_encryption_key_says_why(settings, user):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    credential = store_key(user, "sk-alice-secret-1111")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.UndecryptableSecret):
        _ = credential.api_key
