"""Per-user settings, relay credentials, quotas, usage, invites, approved relays, audit log.

The API key is stored only encrypted (Fernet, FIELD_ENCRYPTION_KEY); `key_hint` keeps the last
four characters so the key can be shown masked without decrypting it.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from studio.accounts import crypto
from studio.upstream.masking import mask_key


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    language = models.CharField(
        _("language"), max_length=16, blank=True, choices=settings.LANGUAGES
    )
    default_model = models.CharField(
        _("default chat model"),
        max_length=200,
        blank=True,
        help_text=_("New conversations start with this model."),
    )
    allow_site_key = models.BooleanField(
        _("may use the site key"),
        default=False,
        help_text=_("Without a key of their own, this user's requests use UPSTREAM_API_KEY."),
    )

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return str(self.user)


class RelayCredential(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="relay_credential"
    )
    base_url = models.URLField(_("relay"), max_length=300)
    api_key_encrypted = models.BinaryField(editable=False)
    key_hint = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    verified_model_count = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("relay credential")
        verbose_name_plural = _("relay credentials")

    def __str__(self) -> str:
        return f"{self.user} @ {self.base_url} ({self.masked_key})"

    @property
    def api_key(self) -> str:
        return crypto.decrypt(bytes(self.api_key_encrypted))

    def set_api_key(self, api_key: str) -> None:
        self.api_key_encrypted = crypto.encrypt(api_key)
        self.key_hint = api_key[-4:]
        self.verified_at = None
        self.verified_model_count = None
        self.last_error = ""

    @property
    def masked_key(self) -> str:
        return mask_key(self.key_hint, hint_only=True)


class WorkerHeartbeat(models.Model):
    """One row per worker process; /healthz reads the newest."""

    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid}"


# --- Quotas, usage, invites, approved relays, audit (staff dashboard, issue 6) ----------------

# How many unfinished jobs a user may have at once when no quota says otherwise.
DEFAULT_JOBS_AT_ONCE = 4


class Quota(models.Model):
    """Per-user limits; a user without a row has no limit but DEFAULT_JOBS_AT_ONCE.

    Empty lists allow everything. Model entries may end in `*` ("gpt-4o*").
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota"
    )
    tokens_per_month = models.PositiveBigIntegerField(
        _("tokens per month"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    jobs_per_day = models.PositiveIntegerField(
        _("jobs per day"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    jobs_at_once = models.PositiveSmallIntegerField(_("jobs at once"), default=DEFAULT_JOBS_AT_ONCE)
    allowed_models = models.JSONField(_("chat models allowed"), default=list, blank=True)
    allowed_job_kinds = models.JSONField(_("job kinds allowed"), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")

    def __str__(self) -> str:
        return str(self.user)


class UsageRecord(models.Model):
    """One chat reply (its tokens) or one job (created). Kept when the user is deleted, so the
    site's totals stay true; `ref` (message or job id) makes recording the same thing twice a
    no-op."""

    class Source(models.TextChoices):
        CHAT = "chat", _("Chat")
        JOB = "job", _("Job")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
    )
    at = models.DateTimeField(_("when"), default=timezone.now)
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    model = models.CharField(_("model"), max_length=200, blank=True)
    kind = models.CharField(_("job kind"), max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    jobs = models.PositiveSmallIntegerField(default=0)
    estimated = models.BooleanField(
        default=False, help_text=_("The relay sent no token counts; Studio estimated them.")
    )
    ref = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")
        ordering = ["-at"]
        indexes = [models.Index(fields=["user", "at"]), models.Index(fields=["at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "ref"],
                name="accounts_usage_unique_ref",
                condition=~models.Q(ref=""),
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.model or self.kind} {self.at:%Y-%m-%d}"


class Invite(models.Model):
    """A one-time sign-up link. Only the SHA-256 of its token is stored: the link is shown once,
    to the staff member who made it."""

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    note = models.CharField(
        _("for"),
        max_length=200,
        blank=True,
        help_text=_("Who the link is for (only staff see it)."),
    )
    allow_site_key = models.BooleanField(_("may use the site key"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("invite")
        verbose_name_plural = _("invites")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.note or f"invite #{self.pk}"

    @property
    def is_used(self) -> bool:
        return self.used_at is not None

    @property
    def is_expired(self) -> bool:
        return not self.is_used and self.expires_at <= timezone.now()

    @property
    def is_pending(self) -> bool:
        return not self.is_used and not self.is_expired


class ApprovedRelay(models.Model):
    """A relay base URL staff approved at run time, on top of UPSTREAM_ALLOWED_BASE_URLS."""

    url = models.URLField(_("relay base URL"), max_length=300, unique=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("approved relay")
        verbose_name_plural = _("approved relays")
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url


class FamilySetting(models.Model):
    """Staff's run-time settings for one relay family (studio.upstream.families): switched on or
    off for users, paths that replace the defaults, options, and the last probe's verdict.
    A family without a row follows the UPSTREAM_FAMILIES_ENABLED setting."""

    family = models.CharField(_("family"), max_length=32, unique=True)
    enabled = models.BooleanField(_("shown to users"), default=True)
    path_overrides = models.JSONField(_("path overrides"), default=dict, blank=True)
    options = models.JSONField(_("options"), default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    probed_at = models.DateTimeField(_("last probe"), null=True, blank=True)
    probe_verdict = models.CharField(max_length=16, blank=True)
    probe_detail = models.CharField(max_length=400, blank=True)

    class Meta:
        verbose_name = _("relay family")
        verbose_name_plural = _("relay families")
        ordering = ["family"]

    def __str__(self) -> str:
        return self.family


class AuditEvent(models.Model):
    """Who did what, when, from where. Written by studio.accounts.audit only; never edited."""

    class Action(models.TextChoices):
        SIGN_IN = "sign_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Sign-in failed")
        SIGN_OUT = "sign_out", _("Signed out")
        KEY_SAVED = "key_saved", _("API key saved")
        KEY_REMOVED = "key_removed", _("API key removed")
        KEY_VERIFIED = "key_verified", _("API key verified")
        KEY_VERIFY_FAILED = "key_verify_failed", _("API key verification failed")
        QUOTA_CHANGED = "quota_changed", _("Quota changed")
        INVITE_CREATED = "invite_created", _("Invite created")
        INVITE_USED = "invite_used", _("Invite used")
        INVITE_REVOKED = "invite_revoked", _("Invite revoked")
        USER_DEACTIVATED = "user_deactivated", _("User deactivated")
        USER_REACTIVATED = "user_reactivated", _("User reactivated")
        USER_DELETED = "user_deleted", _("User deleted")
        RELAY_ADDED = "relay_added", _("Relay approved")
        RELAY_REMOVED = "relay_removed", _("Relay removed")
        FAMILY_CHANGED = "family_changed", _("Relay family settings changed")
        FAMILY_PROBED = "family_probed", _("Relay family probed")
        ADMIN_ADDED = "admin_added", _("Added in the Django admin")
        ADMIN_CHANGED = "admin_changed", _("Changed in the Django admin")
        ADMIN_DELETED = "admin_deleted", _("Deleted in the Django admin")

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The actor's username at the time: it outlives the account.
    actor_name = models.CharField(_("who"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=32, choices=Action.choices)
    target = models.CharField(_("target"), max_length=300, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["action", "-at"]),
            models.Index(fields=["actor", "-at"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name or '-'} {self.action}"
