"""Signals shared between apps without importing each other."""

from django.dispatch import Signal

# Sent once when a worker process starts, before it takes tasks: apps re-enqueue the work of
# anything left unfinished (media_jobs picks up every job that is not done). kwargs: worker_id.
worker_started = Signal()
