from django.apps import AppConfig


class MediaJobsConfig(AppConfig):
    name = "media_jobs"
    verbose_name = "Media jobs"

    def ready(self) -> None:
        from media_jobs import signals  # noqa: F401 - connects the file clean-up receivers
        from studio.signals import worker_started, worker_sweep

        worker_started.connect(_resume_jobs, dispatch_uid="media-jobs-resume")
        worker_sweep.connect(_sweep_jobs, dispatch_uid="media-jobs-sweep")


def _resume_jobs(**kwargs: object) -> None:
    """A worker that starts picks up every job that is not finished (none is ever lost)."""
    from media_jobs.runner import resume_unfinished

    resume_unfinished()


def _sweep_jobs(**kwargs: object) -> None:
    """A running worker re-enqueues the jobs whose task died with another worker."""
    from media_jobs.runner import sweep_stalled

    sweep_stalled()
