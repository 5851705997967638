"""The clear API key appears in no HTTP response, no log record and no database column."""

import logging

import pytest
from django.db import connection

from studio.accounts.models import RelayCredential

pytestmark = pytest.mark.django_db

PAGES = [
    "/settings/",
    "/settings/remove-key/",
    "/chat/",
    "/jobs/",
    "/healthz",
    "/admin/auth/user/",
    "/admin/accounts/relaycredential/",
    "/admin/accounts/workerheartbeat/",
]


@pytest.fixture
def admin_user(user):
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def all_database_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value).decode("latin-1"))
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks)


def test_clear_key_is_nowhere_but_in_the_users_own_request(
    client, admin_user, settings, simulator, caplog
):
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    secret = simulator.key + "-leakcheck-QWERTY"
    caplog.set_level(logging.DEBUG)
    client.force_login(admin_user)

    responses = [
        client.post("/settings/", {"base_url": simulator.url, "api_key": secret}, follow=True),
        client.post("/settings/verify/", follow=True),
    ]
    credential = RelayCredential.objects.get(user=admin_user)
    responses += [client.get(path) for path in PAGES]
    responses.append(client.get(f"/admin/auth/user/{admin_user.pk}/change/"))

    for response in responses:
        assert response.status_code in (200, 503), response.request["PATH_INFO"]
        body = response.content.decode()
        assert secret not in body, response.request["PATH_INFO"]
        assert secret not in str(response.headers)
    assert "sk-…ERTY" in responses[0].content.decode()  # the masked form is shown
    assert credential.api_key == secret  # the key really is stored (encrypted)

    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.args)
    assert secret not in all_database_text()
