from django.urls import path

from media_jobs import views

app_name = "media_jobs"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/<slug:kind>/", views.new, name="new"),
    path("<uuid:job_id>/", views.detail, name="detail"),
    path("<uuid:job_id>/status.json", views.status_json, name="status"),
    path("<uuid:job_id>/cancel/", views.cancel, name="cancel"),
    path("<uuid:job_id>/retry/", views.retry, name="retry"),
    path("<uuid:job_id>/action/", views.action, name="action"),
    path("<uuid:job_id>/seed/", views.seed, name="seed"),
    path("<uuid:job_id>/delete/", views.delete, name="delete"),
    path("assets/<uuid:asset_id>/", views.asset, name="asset"),
    path("assets/<uuid:asset_id>/thumbnail/", views.thumbnail, name="thumbnail"),
]
