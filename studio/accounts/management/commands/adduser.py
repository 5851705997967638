"""manage.py adduser USERNAME [--staff] [--allow-site-key]

The password and an optional relay API key come from standard input, never from arguments
(arguments are visible to every user in the process list). On a terminal it prompts; from a
script, line 1 is the password and line 2 (optional) the API key.
"""

import getpass
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from studio.accounts import services
from studio.accounts.models import Profile


class Command(BaseCommand):
    help = "Create a user; password and optional API key are read from standard input."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="staff and superuser (admin)")
        parser.add_argument(
            "--allow-site-key",
            action="store_true",
            help="without a key of their own, the user may use UPSTREAM_API_KEY",
        )
        parser.add_argument("--relay", help="relay base URL for the key (default: the site's)")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            raise CommandError(f"User {username!r} already exists.")
        password, api_key = self._read_secrets()
        user = User(username=username, is_staff=options["staff"], is_superuser=options["staff"])
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError("Password rejected: " + " ".join(error.messages)) from error
        relay = options["relay"] or settings.UPSTREAM_BASE_URL
        with transaction.atomic():
            user.set_password(password)
            user.save()
            Profile.objects.create(user=user, allow_site_key=options["allow_site_key"])
            if api_key:
                try:
                    services.save_credential(user, base_url=relay, api_key=api_key)
                except ValidationError as error:
                    raise CommandError(
                        f"Relay {relay!r} is not in UPSTREAM_ALLOWED_BASE_URLS."
                    ) from error
        role = "staff user" if options["staff"] else "user"
        key_note = " with an API key" if api_key else ""
        self.stdout.write(self.style.SUCCESS(f"Created {role} {username!r}{key_note}."))

    def _read_secrets(self) -> tuple[str, str]:
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("The passwords do not match.")
            api_key = getpass.getpass("Relay API key (optional, Enter to skip): ")
        else:
            lines = sys.stdin.read().splitlines()
            password = lines[0] if lines else ""
            api_key = lines[1] if len(lines) > 1 else ""
        if not password:
            raise CommandError("No password given on standard input.")
        return password, api_key.strip()
