from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.new, name="new"),
    path("models.json", views.models, name="models"),
    path("search/", views.search, name="search"),
    path("<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("<uuid:conversation_id>/rename/", views.rename, name="rename"),
    path("<uuid:conversation_id>/archive/", views.archive, name="archive"),
    path("<uuid:conversation_id>/delete/", views.delete, name="delete"),
    path("<uuid:conversation_id>/settings/", views.update_settings, name="settings"),
    path("<uuid:conversation_id>/branch/", views.select_branch, name="branch"),
    path(
        "<uuid:conversation_id>/messages/<uuid:message_id>/delete/",
        views.delete_message,
        name="delete_message",
    ),
    path("<uuid:conversation_id>/export.md", views.export_markdown, name="export_md"),
    path("<uuid:conversation_id>/export.json", views.export_json, name="export_json"),
]
