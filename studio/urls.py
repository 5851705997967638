from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from studio.accounts.urls import language_urlpatterns
from studio.health import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/chat/", permanent=False)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("studio.accounts.urls")),
    *language_urlpatterns,
    path("chat/", include("chat.urls")),
    path("jobs/", include("media_jobs.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
