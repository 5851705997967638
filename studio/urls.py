from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from studio.accounts.login import AdminLockoutAuthenticationForm, LoginView
from studio.accounts.urls import language_urlpatterns
from studio.health import healthz

# /admin/login/ shares the sign-in lockout (same counters, same message).
admin.site.login_form = AdminLockoutAuthenticationForm

urlpatterns = [
    path("", RedirectView.as_view(url="/chat/", permanent=False)),
    # Before Django's auth URLs: the same /accounts/login/, with the sign-in lockout.
    path("accounts/login/", LoginView.as_view(), name="login"),
    # Django's auth views without password reset: Studio sends no mail; staff set passwords
    # (Django admin) or send a one-time invite link.
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("", include("studio.accounts.urls")),
    *language_urlpatterns,
    path("chat/", include("chat.urls")),
    path("jobs/", include("media_jobs.urls")),
    path("playground/", include("playground.urls")),
    path("staff/", include("studio.accounts.staff_urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
