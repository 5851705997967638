"""Encryption of secrets at rest with Fernet keys from FIELD_ENCRYPTION_KEY.

The first key encrypts; every listed key decrypts. Rotation: put the new key first, keep the old
one after it, run `manage.py rotate_encryption_key`, then drop the old key.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> bytes:
    return current().encrypt(plaintext.encode())


class UndecryptableSecret(Exception):
    """The stored secret was encrypted under a key that is no longer configured."""


def decrypt(token: bytes) -> str:
    try:
        return current().decrypt(token).decode()
    except InvalidToken as exc:
        raise UndecryptableSecret(
            "A stored key cannot be decrypted with FIELD_ENCRYPTION_KEY."
        ) from exc


def rotate(token: bytes) -> bytes:
    """Re-encrypt under the first configured key (decrypting with any of them)."""
    try:
        return current().rotate(token)
    except InvalidToken as exc:
        raise UndecryptableSecret("A stored key cannot be decrypted for rotation.") from exc
