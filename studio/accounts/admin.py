from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from studio.accounts import families
from studio.accounts.models import (
    ApprovedRelay,
    AuditEvent,
    FamilySetting,
    Invite,
    Profile,
    Quota,
    RelayCredential,
    UsageRecord,
    WorkerHeartbeat,
)
from studio.accounts.relays import normalize_url
from studio.accounts.signals import record_admin_entry
from studio.upstream.families import FAMILIES

User = get_user_model()


class AuditedAdmin(admin.ModelAdmin):
    """Bulk deletions write their LogEntry rows with bulk_create, which sends no signal: record
    them here (single actions are recorded by the LogEntry post_save receiver)."""

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        entries = super().log_deletions(request, queryset)
        if isinstance(entries, list) and len(entries) > 1:
            for entry in entries:
                record_admin_entry(entry)
        return entries


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records nobody edits: visible in the admin, never added, changed or deleted there."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class QuotaInline(admin.StackedInline):
    model = Quota
    can_delete = False
    fields = [
        "tokens_per_month",
        "jobs_per_day",
        "jobs_at_once",
        "allowed_models",
        "allowed_job_kinds",
    ]


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ["allow_site_key", "language"]


class RelayCredentialInline(admin.StackedInline):
    model = RelayCredential
    can_delete = True
    # The key itself is never shown, not even encrypted; only its masked form.
    fields = ["base_url", "masked_key", "verified_at", "verified_model_count", "last_error"]
    readonly_fields = ["masked_key", "verified_at", "verified_model_count", "last_error"]
    extra = 0
    max_num = 1

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are added by their owner on /settings/ or with `adduser`


admin.site.unregister(User)


@admin.register(User)
class StudioUserAdmin(AuditedAdmin, UserAdmin):
    inlines = [ProfileInline, QuotaInline, RelayCredentialInline]
    list_display = ["username", "email", "is_staff", "is_active", "has_key", "last_login"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        own_key = RelayCredential.objects.filter(user=OuterRef("pk"))
        return super().get_queryset(request).annotate(has_own_key=Exists(own_key))

    @admin.display(boolean=True, description="own key", ordering="has_own_key")
    def has_key(self, obj: Any) -> bool:
        return bool(obj.has_own_key)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "pid", "worker_id", "started_at", "last_seen"]
    readonly_fields = ["worker_id", "hostname", "pid", "started_at", "last_seen"]


@admin.register(RelayCredential)
class RelayCredentialAdmin(AuditedAdmin):
    list_display = ["user", "base_url", "masked_key", "verified_at", "verified_model_count"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    readonly_fields = (
        "user",
        "base_url",
        "masked_key",
        "verified_at",
        "verified_model_count",
        "last_error",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are added by their owner on /settings/ or with `adduser`


@admin.register(Quota)
class QuotaAdmin(AuditedAdmin):
    list_display = ["user", "tokens_per_month", "jobs_per_day", "jobs_at_once", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "at",
        "user",
        "source",
        "model",
        "kind",
        "prompt_tokens",
        "completion_tokens",
        "jobs",
        "estimated",
    ]
    list_filter = ["source", "estimated"]
    list_select_related = ["user"]
    search_fields = ["user__username", "model", "kind"]
    date_hierarchy = "at"


@admin.register(Invite)
class InviteAdmin(AuditedAdmin):
    """Invites are made on /staff/invites/ (the only place the link can be shown); here they
    can be looked at and deleted (revoked). The token's hash is never shown."""

    list_display = ["__str__", "created_by", "created_at", "expires_at", "used_at", "used_by"]
    list_select_related = ["created_by", "used_by"]
    fields = ("note", "allow_site_key", "created_by", "created_at", "expires_at", "used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApprovedRelayForm(forms.ModelForm):
    class Meta:
        model = ApprovedRelay
        fields = ["url", "note"]

    def clean_url(self) -> str:
        return normalize_url(self.cleaned_data["url"])


@admin.register(ApprovedRelay)
class ApprovedRelayAdmin(AuditedAdmin):
    form = ApprovedRelayForm
    list_display = ["url", "note", "added_by", "created_at"]
    list_select_related = ["added_by"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.added_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_name", "action", "target", "ip"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target", "ip"]
    date_hierarchy = "at"
    fields = ["at", "actor", "actor_name", "action", "target", "ip", "user_agent", "data"]


class FamilySettingForm(forms.ModelForm):
    """The same checks as /staff/families/: a known family, paths it owns, valid overrides."""

    class Meta:
        model = FamilySetting
        fields = ["family", "enabled", "path_overrides", "options"]
        widgets = {"family": forms.Select(choices=[(slug, slug) for slug in FAMILIES])}

    def clean_family(self) -> str:
        family = self.cleaned_data["family"]
        if family not in FAMILIES:
            raise forms.ValidationError(_("Unknown family."))
        return str(family)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        family = FAMILIES.get(cleaned.get("family") or "")
        if family is None:
            return cleaned
        overrides = cleaned.get("path_overrides") or {}
        if not isinstance(overrides, dict):
            self.add_error("path_overrides", _("Enter an object of endpoint name → path."))
        else:
            kept = {}
            for name, value in overrides.items():
                if name not in family.path_names:
                    self.add_error(
                        "path_overrides",
                        _("%(name)s is not an endpoint of this family.") % {"name": name},
                    )
                    continue
                try:
                    if path := families.clean_path_override(name, str(value)):
                        kept[name] = path
                except forms.ValidationError as error:
                    self.add_error("path_overrides", f"{name}: {' '.join(error.messages)}")
            cleaned["path_overrides"] = kept
        options = cleaned.get("options") or {}
        if not isinstance(options, dict):
            self.add_error("options", _("Enter an object of option → value."))
        else:
            for name, value in options.items():
                if name not in family.options:
                    self.add_error(
                        "options", _("%(name)s is not an option of this family.") % {"name": name}
                    )
                    continue
                try:
                    families.clean_option(name, str(value))
                except forms.ValidationError as error:
                    self.add_error("options", f"{name}: {' '.join(error.messages)}")
        return cleaned


@admin.register(FamilySetting)
class FamilySettingAdmin(AuditedAdmin):
    form = FamilySettingForm
    list_display = ["family", "enabled", "probe_verdict", "probed_at", "updated_at"]
    readonly_fields = ["probed_at", "probe_verdict", "probe_detail", "updated_at", "updated_by"]
