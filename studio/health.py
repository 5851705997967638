"""/healthz: is the database up, does the channel layer carry a message, is a worker alive."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from studio.accounts.models import WorkerHeartbeat


def _database() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


async def _channel_layer() -> dict[str, object]:
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer configured"}
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "healthz.ping"})
    message = await asyncio.wait_for(layer.receive(channel), timeout=2)
    return {"ok": message.get("type") == "healthz.ping", "backend": type(layer).__name__}


def _worker() -> dict[str, object]:
    newest = WorkerHeartbeat.objects.order_by("-last_seen").first()
    if newest is None:
        return {"ok": False, "error": "no worker has ever started"}
    age = (timezone.now() - newest.last_seen).total_seconds()
    alive = timezone.now() - newest.last_seen < timedelta(seconds=settings.WORKER_STALE_SECONDS)
    return {"ok": alive, "last_seen": newest.last_seen.isoformat(), "age_seconds": round(age, 1)}


async def _check(probe: Callable[[], Awaitable[dict[str, object]]]) -> dict[str, object]:
    try:
        return await probe()
    except Exception as error:  # a health check reports every failure instead of raising
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}


@never_cache
async def healthz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": await _check(sync_to_async(_database)),
        "channel_layer": await _check(_channel_layer),
        "worker": await _check(sync_to_async(_worker)),
    }
    ok = all(check["ok"] for check in checks.values())
    return JsonResponse({"ok": ok, **checks}, status=200 if ok else 503)
