"""Per-user settings and relay credentials.

The API key is stored only encrypted (Fernet, FIELD_ENCRYPTION_KEY); `key_hint` keeps the last
four characters so the key can be shown masked without decrypting it.
"""

from django.conf import settings
from django.db import models
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
