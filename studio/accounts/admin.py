from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest

from studio.accounts.models import Profile, RelayCredential, WorkerHeartbeat

User = get_user_model()


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
class StudioUserAdmin(UserAdmin):
    inlines = [ProfileInline, RelayCredentialInline]
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
class RelayCredentialAdmin(admin.ModelAdmin):
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
