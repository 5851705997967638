from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        from studio.signals import worker_started

        worker_started.connect(_interrupt_dead_generations, dispatch_uid="chat-interrupted")


def _interrupt_dead_generations(**kwargs: object) -> None:
    """When a worker starts (with the site, after a crash), replies left streaming by a dead
    web process become `interrupted` with their text kept."""
    from chat.services import mark_interrupted

    mark_interrupted()
