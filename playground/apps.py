from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PlaygroundConfig(AppConfig):
    name = "playground"
    verbose_name = _("Playground")

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete

        from playground.results import forget_deleted_user

        # A user's last embedding result (their texts) goes with the account.
        post_delete.connect(
            forget_deleted_user, sender=get_user_model(), dispatch_uid="playground-forget-user"
        )
