"""Production mode (DJANGO_DEBUG=0): refuses insecure secrets, and `check --deploy` is clean."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k3Jx9-QzL2m8VbN4tR7yW1eH6uA0sD5fG9hJ2kL4zX8cV6bN1mQ3wE7rT5yU0iO9pA"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "FIELD_", "UPSTREAM_", "DATABASE_URL", "REDIS_URL"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_DOTENV": "0", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_a_secret_key(tmp_path):
    result = manage(
        "check",
        DJANGO_DEBUG="0",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        STUDIO_DATA_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_refuses_the_development_secret_key(tmp_path):
    result = manage(
        "check",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="django-insecure-studio-development-key-do-not-use-in-production",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        STUDIO_DATA_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_refuses_to_start_without_an_encryption_key(tmp_path):
    result = manage(
        "check", DJANGO_DEBUG="0", DJANGO_SECRET_KEY=GOOD_SECRET, STUDIO_DATA_DIR=str(tmp_path)
    )
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY must be set" in result.stderr


def test_check_deploy_reports_no_issue(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=GOOD_SECRET,
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="studio.example.com",
        STUDIO_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


PRODUCTION_PROBE = """
import json
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

call_command("migrate", verbosity=0)
call_command("collectstatic", interactive=False, verbosity=0)  # production serves the manifest
User.objects.create_user("probe", password="probe-password-1234567")
client = Client()
page = client.get("/accounts/login/", secure=True, HTTP_HOST="studio.example.com")
signed_in = client.post(
    "/accounts/login/",
    {"username": "probe", "password": "probe-password-1234567"},
    secure=True,
    HTTP_HOST="studio.example.com",
)
plain = Client().get("/accounts/login/", HTTP_HOST="studio.example.com")
names = [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY", "LANGUAGE_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
]
print(json.dumps({
    "settings": {name: getattr(settings, name) for name in names},
    "csrf_cookie": page.cookies[settings.CSRF_COOKIE_NAME].output(),
    "login_status": signed_in.status_code,
    "session_cookie": signed_in.cookies[settings.SESSION_COOKIE_NAME].output(),
    "plain_http": [plain.status_code, plain.get("Location", "")],
    "hsts": page.get("Strict-Transport-Security", ""),
}))
"""


def test_production_cookies_are_secure_and_http_is_redirected(tmp_path):
    """Under DJANGO_DEBUG=0: the session and CSRF cookies a real sign-in sets are Secure,
    HttpOnly and SameSite=Lax; plain HTTP is redirected to HTTPS; HSTS is sent."""
    import json

    result = manage(
        "shell",
        "-c",
        PRODUCTION_PROBE,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=GOOD_SECRET,
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="studio.example.com",
        STUDIO_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    values = probe["settings"]
    assert values["DEBUG"] is False
    for name in (
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "CSRF_COOKIE_SECURE",
        "CSRF_COOKIE_HTTPONLY",
        "LANGUAGE_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_CONTENT_TYPE_NOSNIFF",
    ):
        assert values[name] is True, name
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_REFERRER_POLICY"] == "same-origin"
    assert values["SECURE_CROSS_ORIGIN_OPENER_POLICY"] == "same-origin"

    assert probe["login_status"] == 302  # really signed in, so the session cookie is real
    for cookie in (probe["session_cookie"], probe["csrf_cookie"]):
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"secure", "httponly", "samesite"} <= flags, cookie
        assert "SameSite=Lax" in cookie, cookie
    assert probe["plain_http"][0] == 301
    assert probe["plain_http"][1].startswith("https://studio.example.com/")
    assert probe["hsts"].startswith("max-age=31536000") and "includeSubDomains" in probe["hsts"]
