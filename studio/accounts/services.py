"""Relay credentials: saving, verifying, removing, and choosing which key a user's requests use.
Every key change is written to the audit log (masked key only).

Chat and media jobs call `relay_credentials_for(user)` and never read keys themselves.
"""

from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from studio.accounts import audit, families, quotas, relays
from studio.accounts.models import Profile, RelayCredential
from studio.upstream import RelayClient, RelayCredentials, UpstreamError, openai, user_message


class MissingCredential(Exception):
    """The user has no key of their own and may not use the site key."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _("Add your relay API key in Settings to use this feature."))


class RelayNotApproved(MissingCredential):
    """The user's key is saved for a relay that is not on the allowlist (any more): the key is
    not sent there. Staff withdrew the relay, or the URL was set behind the settings form's
    back (the admin, the database); either way no request goes out to it."""

    def __init__(self) -> None:
        super().__init__(
            _("The relay your key is saved for is no longer approved. Choose a relay in Settings.")
        )


def allowed_base_urls() -> list[str]:
    """The relays users may choose (environment and staff-approved; see accounts.relays)."""
    return relays.allowed_base_urls()


def validate_base_url(base_url: str) -> str:
    base_url = base_url.strip().rstrip("/")
    if base_url not in allowed_base_urls():
        raise ValidationError(_("Choose one of the relays an administrator has approved."))
    return base_url


def default_model(user: User) -> str:
    """The model new conversations start with ("" when the user chose none)."""
    return Profile.objects.filter(user=user).values_list("default_model", flat=True).first() or ""


def site_key_allowed(user: User) -> bool:
    if not settings.UPSTREAM_API_KEY or not settings.UPSTREAM_BASE_URL:
        return False
    return Profile.objects.filter(user=user, allow_site_key=True).exists()


@transaction.atomic
def save_credential(user: User, *, base_url: str, api_key: str) -> RelayCredential:
    """Store (or replace) the user's relay key, encrypted; the relay must be on the allowlist.

    An empty api_key keeps the stored key and only changes the relay.
    """
    base_url = validate_base_url(base_url)
    api_key = api_key.strip()
    credential = RelayCredential.objects.select_for_update().filter(user=user).first()
    if credential is None:
        if not api_key:
            raise ValidationError(_("Enter an API key."))
        credential = RelayCredential(user=user)
    if api_key:
        credential.set_api_key(api_key)
    elif credential.base_url != base_url:
        credential.verified_at = None
        credential.verified_model_count = None
    credential.base_url = base_url
    credential.save()
    cache.delete(_models_cache_key(user))
    audit.record(
        audit.Action.KEY_SAVED,
        actor=user,
        target=f"{credential.masked_key} @ {base_url}",
        data={"new_key": bool(api_key)},
    )
    return credential


def remove_credential(user: User) -> bool:
    credential = RelayCredential.objects.filter(user=user).first()
    if credential is None:
        return False
    credential.delete()
    cache.delete(_models_cache_key(user))
    audit.record(
        audit.Action.KEY_REMOVED,
        actor=user,
        target=f"{credential.masked_key} @ {credential.base_url}",
    )
    return True


def relay_credentials_for(user: User) -> RelayCredentials:
    """The relay and key this user's requests go out with, or MissingCredential."""
    credential = RelayCredential.objects.filter(user=user).first()
    if credential is not None:
        if credential.base_url not in allowed_base_urls():
            raise RelayNotApproved()
        base_url, api_key = credential.base_url, credential.api_key
    elif site_key_allowed(user):
        base_url, api_key = settings.UPSTREAM_BASE_URL, settings.UPSTREAM_API_KEY
    else:
        raise MissingCredential()
    overrides, options = families.runtime_paths_and_options()
    return RelayCredentials(
        base_url=base_url, api_key=api_key, path_overrides=overrides, options=options
    )


def missing_key_message(user: User) -> str | None:
    """What to tell a user who cannot call the relay yet, or None when they can."""
    try:
        relay_credentials_for(user)
    except MissingCredential as missing:
        return str(missing)
    return None


@dataclass(frozen=True)
class VerifyOutcome:
    ok: bool
    model_count: int | None
    message: str


async def verify_credential(credential: RelayCredential) -> VerifyOutcome:
    """Ask the relay for its model list with this key and record what it said. A relay that is
    not on the allowlist is not asked: the key never goes there."""
    if credential.base_url not in await sync_to_async(allowed_base_urls)():
        return VerifyOutcome(ok=False, model_count=None, message=str(RelayNotApproved()))
    client = RelayClient(RelayCredentials(base_url=credential.base_url, api_key=credential.api_key))
    try:
        models = await openai.list_models(client)
    except UpstreamError as error:
        credential.verified_at = None
        credential.verified_model_count = None
        credential.last_error = user_message(error)
        await credential.asave(update_fields=["verified_at", "verified_model_count", "last_error"])
        await sync_to_async(_audit_verify)(credential, ok=False)
        return VerifyOutcome(ok=False, model_count=None, message=credential.last_error)
    credential.verified_at = timezone.now()
    credential.verified_model_count = len(models)
    credential.last_error = ""
    await credential.asave(update_fields=["verified_at", "verified_model_count", "last_error"])
    await sync_to_async(_audit_verify)(credential, ok=True)
    return VerifyOutcome(ok=True, model_count=len(models), message="")


def _audit_verify(credential: RelayCredential, *, ok: bool) -> None:
    action = audit.Action.KEY_VERIFIED if ok else audit.Action.KEY_VERIFY_FAILED
    data = {"models": credential.verified_model_count} if ok else {"error": credential.last_error}
    audit.record(
        action,
        actor=credential.user,
        target=f"{credential.masked_key} @ {credential.base_url}",
        data=data,
    )


MODELS_CACHE_SECONDS = 300


@dataclass(frozen=True)
class ModelList:
    models: list[str]
    error: str | None  # what to tell the user when the list could not be fetched


def _models_cache_key(user: User) -> str:
    return f"relay-models:{user.pk}"


async def available_models(user: User, *, refresh: bool = False) -> ModelList:
    """The relay's model ids for this user's key, cached per user for a few minutes."""
    key = _models_cache_key(user)
    if not refresh and (cached := await cache.aget(key)) is not None:
        return ModelList(models=await sync_to_async(quotas.usable_models)(user, cached), error=None)
    try:
        credentials = await sync_to_async(relay_credentials_for)(user)
    except MissingCredential as missing:
        return ModelList(models=[], error=str(missing))
    try:
        models = await openai.list_models(RelayClient(credentials))
    except UpstreamError as error:
        return ModelList(models=[], error=user_message(error))
    ids = sorted(model.id for model in models)
    await cache.aset(key, ids, MODELS_CACHE_SECONDS)
    # The cache keeps the relay's whole list: a quota change applies at once.
    return ModelList(models=await sync_to_async(quotas.usable_models)(user, ids), error=None)
