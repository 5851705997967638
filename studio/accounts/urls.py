from django.urls import path

from studio.accounts import language, views

app_name = "accounts"

urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("settings/verify/", views.verify_key, name="verify"),
    path("settings/remove-key/", views.remove_key, name="remove_key"),
    path("settings/default-model/", views.default_model, name="default_model"),
    path("accounts/invite/<str:token>/", views.invite, name="invite"),
]

# set_language is top level (name "set_language", as Django's own i18n view is called).
language_urlpatterns = [path("i18n/setlang/", language.set_language, name="set_language")]
