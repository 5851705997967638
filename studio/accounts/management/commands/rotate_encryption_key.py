"""Re-encrypt every stored API key under the first key of FIELD_ENCRYPTION_KEY.

Rotation: set FIELD_ENCRYPTION_KEY="<new>,<old>", run this command, then set it to "<new>".
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from studio.accounts import crypto
from studio.accounts.models import RelayCredential


class Command(BaseCommand):
    help = "Re-encrypt every stored relay API key under the first FIELD_ENCRYPTION_KEY."

    def handle(self, *args: Any, **options: Any) -> None:
        failed: list[str] = []
        rotated = 0
        with transaction.atomic():
            for credential in RelayCredential.objects.select_for_update().select_related("user"):
                try:
                    credential.api_key_encrypted = crypto.rotate(
                        bytes(credential.api_key_encrypted)
                    )
                except crypto.UndecryptableSecret:
                    failed.append(credential.user.get_username())
                    continue
                credential.save(update_fields=["api_key_encrypted"])
                rotated += 1
            if failed:
                raise CommandError(
                    "Nothing was changed: the keys of these users cannot be decrypted with any "
                    "configured FIELD_ENCRYPTION_KEY: " + ", ".join(sorted(failed))
                )
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rotated} key(s)."))
