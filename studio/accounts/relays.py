"""The relay allowlist: the environment's UPSTREAM_ALLOWED_BASE_URLS plus relays staff approve at
run time. `allowed_base_urls()` is the ONE answer to "which relays may be used": the settings
form offers it, saving a key checks it, and asset downloads trust those hosts.

Read from the database on every call (one small query), so every web process and worker sees an
edit at once; nothing here is cached.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from studio.accounts import audit
from studio.accounts.models import ApprovedRelay, RelayCredential


def environment_base_urls() -> list[str]:
    """The relays approved in the environment (the site's default relay first)."""
    return list(settings.UPSTREAM_ALLOWED_BASE_URLS)


def approved_in_database() -> list[str]:
    return list(ApprovedRelay.objects.order_by("created_at", "pk").values_list("url", flat=True))


def allowed_base_urls() -> list[str]:
    """Every relay a user may choose: the environment's, then those staff approved."""
    return list(dict.fromkeys([*environment_base_urls(), *approved_in_database()]))


def normalize_url(raw: str) -> str:
    """A relay base URL as stored: http(s), a host, no credentials, query or fragment, no
    trailing slash. Raises ValidationError with what is wrong."""
    url = raw.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        raise ValidationError(_("Enter a valid web address.")) from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(_("A relay address starts with http:// or https:// and a host."))
    if parts.username or parts.password:
        raise ValidationError(_("A relay address must not contain a user name or password."))
    if parts.query or parts.fragment:
        raise ValidationError(_("A relay address has no ?query or #fragment."))
    if len(url) > 300:
        raise ValidationError(_("A relay address has at most 300 characters."))
    return url


def add_relay(url: str, *, note: str = "", by: User) -> ApprovedRelay:
    url = normalize_url(url)
    if url in allowed_base_urls():
        raise ValidationError(_("This relay is already approved."))
    try:
        with transaction.atomic():
            relay = ApprovedRelay.objects.create(url=url, note=note.strip()[:200], added_by=by)
    except IntegrityError as error:  # approved by someone else a moment ago
        raise ValidationError(_("This relay is already approved.")) from error
    audit.record(audit.Action.RELAY_ADDED, actor=by, target=url, data={"note": relay.note})
    return relay


def remove_relay(relay: ApprovedRelay, *, by: User) -> None:
    """Take a staff-approved relay off the list. Keys saved for it stay, unused (accounts.services
    refuses to send a key to a relay off the list), until their owners choose another relay.
    The environment's relays cannot be removed here."""
    url = relay.url
    relay.delete()
    audit.record(audit.Action.RELAY_REMOVED, actor=by, target=url)


def keys_per_relay() -> dict[str, int]:
    """How many saved keys point at each relay (to warn before removing one)."""
    rows = RelayCredential.objects.values("base_url").annotate(count=Count("pk"))
    return {row["base_url"]: row["count"] for row in rows}
