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
