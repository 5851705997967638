"""/staff/ — the staff dashboard (studio.accounts.staff_views)."""

from django.urls import path

from studio.accounts import staff_views

app_name = "staff"

urlpatterns = [
    path("", staff_views.users_list, name="users"),
    path("users/<int:user_id>/", staff_views.user_detail, name="user"),
    path("users/<int:user_id>/active/", staff_views.user_active, name="user_active"),
    path("users/<int:user_id>/delete/", staff_views.user_delete, name="user_delete"),
    path("usage/", staff_views.site_usage, name="usage"),
    path("invites/", staff_views.invite_list, name="invites"),
    path("invites/<int:invite_id>/revoke/", staff_views.invite_revoke, name="invite_revoke"),
    path("relays/", staff_views.relay_list, name="relays"),
    path("relays/<int:relay_id>/remove/", staff_views.relay_remove, name="relay_remove"),
    path("families/", staff_views.family_list, name="families"),
    path("families/<slug:slug>/", staff_views.family_save, name="family_save"),
    path("families/<slug:slug>/probe/", staff_views.family_probe, name="family_probe"),
    path("audit/", staff_views.audit_log, name="audit"),
]
