from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "studio.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from studio.accounts import signals

        signals.connect()
