"""The simulator's ASGI application: routing, authentication and the fake CDN.

Serve it with ``daphne studio.simulator.app:application`` or ``python -m studio.simulator``.
It deliberately shares no code with ``studio.upstream`` (a misreading of the protocol in one
must not hide in the other) and does not import Django.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from studio.simulator import (
    cogvideox,
    flux,
    ideogram,
    luma,
    midjourney,
    openai,
    openai_media,
    recraft,
    stability,
    suno,
    video,
    viggle,
)
from studio.simulator.config import Config
from studio.simulator.state import Context
from studio.simulator.web import (
    BadRequestBody,
    ClientGone,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    cut_connection,
    json_response,
    mj_wrapper_error,
    openai_error,
    read_request,
    send_response,
)

logger = logging.getLogger("studio.simulator")

Handler = Callable[[Request, Context], Awaitable[Response | None]]


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool = True


def route(methods: str, path: str, handler: Handler, *, auth: bool = True) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(tuple(methods.split("|")), re.compile(f"^{regex}$"), handler, auth)


async def health(req: Request, ctx: Context) -> Response:
    return json_response({"ok": True})


async def serve_file(req: Request, ctx: Context) -> Response:
    state, stored = ctx.files.lookup(req.params["name"])
    if state == "missing" or stored is None:
        return Response(404, b"404 page not found", "text/plain; charset=utf-8")
    if state == "expired" or req.query.get("expired") == "1":
        # What an expired signed object-storage link answers: 403 with an XML error document.
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            "<Message>Request has expired</Message></Error>\n"
        )
        return Response(403, body.encode(), "application/xml")
    return Response(
        200, stored.data, stored.content_type, [("Cache-Control", "private, max-age=3600")]
    )


async def mj_image(req: Request, ctx: Context) -> Response:
    name = midjourney.task_image_name(ctx, req.params["task_id"])
    if name is None:
        return Response(404, b"404 page not found", "text/plain; charset=utf-8")
    req.params["name"] = name
    return await serve_file(req, ctx)


ROUTES: list[Route] = [
    route("GET|HEAD", "/__health", health, auth=False),
    route("GET|HEAD", "/files/{name}", serve_file, auth=False),
    route("GET|HEAD", "/mj/image/{task_id}", mj_image, auth=False),
    route("GET", "/v1/models", openai.list_models),
    route("POST", "/v1/chat/completions", openai.chat_completions),
    route("POST", "/v1/completions", openai.completions),
    route("POST", "/v1/embeddings", openai.embeddings),
    route("POST", "/v1/images/generations", openai_media.images_generations),
    route("POST", "/v1/audio/speech", openai_media.audio_speech),
    route("POST", "/v1/audio/transcriptions", openai_media.audio_transcriptions),
    route("POST", "/v1/audio/translations", openai_media.audio_translations),
    route("POST", "/mj/submit/imagine", midjourney.imagine),
    route("POST", "/mj/submit/blend", midjourney.blend),
    route("POST", "/mj/submit/describe", midjourney.describe),
    route("POST", "/mj/submit/shorten", midjourney.shorten),
    route("POST", "/mj/submit/action", midjourney.action),
    route("POST", "/mj/submit/modal", midjourney.modal),
    route("POST", "/mj/insight-face/swap", midjourney.swap_face),
    route("GET", "/mj/task/{task_id}/fetch", midjourney.fetch),
    route("GET", "/mj/task/{task_id}/image-seed", midjourney.image_seed),
    route("POST", "/mj/task/list-by-condition", midjourney.list_by_condition),
    route("POST", "/kling/v1/videos/text2video", video.kling_text2video),
    route("POST", "/kling/v1/videos/image2video", video.kling_image2video),
    route("GET", "/kling/v1/videos/text2video/{task_id}", video.kling_text2video_task),
    route("GET", "/kling/v1/videos/image2video/{task_id}", video.kling_image2video_task),
    route("POST", "/kling/v1/images/generations", video.kling_images),
    route("GET", "/kling/v1/images/generations/{task_id}", video.kling_images_task),
    route("POST", "/runwayml/v1/image_to_video", video.runway_image_to_video),
    route("GET", "/runwayml/v1/tasks/{task_id}", video.runway_task),
    route("POST", "/luma/generations", luma.create),
    route("GET", "/luma/generations/{generation_id}", luma.fetch),
    route("POST", "/luma/generations/{generation_id}/extend", luma.extend),
    route("POST", "/cogvideox/v4/videos/generations", cogvideox.generate),
    route("GET", "/cogvideox/v4/async-result/{task_id}", cogvideox.result),
    route("POST", "/recraft/v1/images/generations", recraft.generate),
    route("POST", "/recraft/v1/styles", recraft.create_style),
    route("POST", "/recraft/v1/images/vectorize", recraft.vectorize),
    route("POST", "/recraft/v1/images/removeBackground", recraft.remove_background),
    route("POST", "/recraft/v1/images/clarityUpscale", recraft.clarity_upscale),
    route("POST", "/recraft/v1/images/generativeUpscale", recraft.generative_upscale),
    route("POST", "/viggle/asset/image", viggle.upload_image),
    route("POST", "/viggle/asset/video/{image_id}", viggle.upload_video),
    route("GET", "/viggle/template2/tag", viggle.template_tags),
    route("GET", "/viggle/template2", viggle.templates),
    route("POST", "/viggle/video-task", viggle.create_task),
    route("POST", "/viggle/video-task/by-ids", viggle.tasks_by_ids),
    route("GET", "/viggle/credits", viggle.remaining_credits),
    route("GET|HEAD", "/viggle/media/{name}", viggle.serve_media, auth=False),
    route("POST", "/suno/v1/v3.0/music", suno.a_generate_v30),
    route("POST", "/suno/v1/v3.5/music", suno.a_generate_v35),
    route("POST", "/suno/v1/v3.0/music/concat", suno.a_concat),
    route("GET", "/suno/v1/v3.0/music/{task_id}", suno.a_fetch),
    route("GET", "/suno/v1/v3.5/music/{task_id}", suno.a_fetch),
    route("POST", "/suno/submit/music", suno.b_submit_music),
    route("POST", "/suno/submit/concat", suno.b_submit_concat),
    route("GET", "/suno/fetch/{task_id}", suno.b_fetch),
    route("POST", "/suno/fetch", suno.b_fetch_batch),
    route("POST", "/ideogram/generate", ideogram.generate),
    route("POST", "/ideogram/remix", ideogram.remix),
    route("POST", "/ideogram/upscale", ideogram.upscale),
    route("POST", "/ideogram/describe", ideogram.describe),
    route("POST", "/ideogram/web/generate", ideogram.web_generate),
    route("POST", "/ideogram/web/remix", ideogram.web_remix),
    route("POST", "/ideogram/web/upscale", ideogram.web_upscale),
    route("POST", "/ideogram/web/describe", ideogram.web_describe),
    route("POST", "/ideogram/task-request", ideogram.web_task),
    route("POST", "/flux/v1/flux-pro-1.1", flux.flux_pro_1_1),
    route("POST", "/flux/v1/flux-pro", flux.flux_pro),
    route("POST", "/flux/v1/flux-dev", flux.flux_dev),
    route("GET", "/flux/v1/get_result", flux.get_result),
    route("POST", "/v2beta/stable-image/generate/ultra", stability.generate_ultra),
    route("POST", "/v2beta/stable-image/generate/core", stability.generate_core),
    route("POST", "/v2beta/stable-image/generate/sd3", stability.generate_sd3),
    route("POST", "/v1/generation/{engine_id}/text-to-image", stability.text_to_image),
]

# "/mj-relax/mj/submit/imagine" etc. choose a speed mode on the relay (§4.1); same protocol.
_MODE_PREFIX = re.compile(r"^/mj-[A-Za-z0-9-]+(?=/mj/)")


def resolve(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    path = _MODE_PREFIX.sub("", path)
    for candidate in ROUTES:
        match = candidate.pattern.match(path)
        if match and method in candidate.methods:
            return candidate, match.groupdict()
    return None


def authenticate(req: Request, config: Config) -> Response | None:
    """Check the token the way the relay does; on success store it (sans "sk-") on the request."""
    is_mj = req.path.startswith("/mj")
    header = req.headers.get("authorization", "").strip()
    token = re.sub(r"^bearer\s+", "", header, flags=re.IGNORECASE).strip()
    if not token and is_mj:
        token = req.headers.get("mj-api-secret", "").strip()
    token = token.removeprefix("sk-")
    if not token or not (token.startswith("sim-") or token in config.extra_keys):
        return openai_error(401, "无效的令牌", code="invalid_api_key")
    if "banned" in token:
        return openai_error(403, "用户已被封禁")
    if "noquota" in token:
        if is_mj:
            return mj_wrapper_error("quota_not_enough")
        return openai_error(
            403, "该令牌额度已用尽 token quota is exhausted", code="insufficient_quota"
        )
    req.token = token
    return None


def not_found(method: str, path: str) -> Response:
    # gin's NoRoute in new-api: OpenAI shape, no request id.
    return json_response(
        {
            "error": {
                "message": f"Invalid URL ({method} {path})",
                "type": "invalid_request_error",
                "param": "",
                "code": "",
            }
        },
        404,
    )


def make_app(config: Config | None = None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    ctx = Context.create(config or Config.from_env())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here; daphne closes them
        try:
            req = await read_request(scope, receive, send, ctx.config.public_url)
        except BadRequestBody as exc:
            await send_response(send, openai_error(413, str(exc)))
            return
        head = req.method == "HEAD"
        found = resolve(req.method, req.path)
        if found is None:
            await send_response(send, not_found(req.method, req.path), head_only=head)
            return
        matched, params = found
        req.params = params
        response = authenticate(req, ctx.config) if matched.auth else None
        if response is None and ctx.config.request_log:
            record_request(ctx.config.request_log, req)
        if response is None:
            try:
                response = await matched.handler(req, ctx)
            except ClientGone:
                return  # the caller hung up while we were "working"; nobody to answer
            except ConnectionAbortedError:
                raise  # a deliberate cut on a server other than daphne (see web.cut_connection)
            except Exception:
                logger.error("simulator handler crashed:\n%s", traceback.format_exc())
                if req.started:
                    await cut_connection(send)
                    return
                response = openai_error(500, "simulator internal error", type_="new_api_error")
        if response is not None:  # None: the handler streamed its own answer
            await send_response(send, response, head_only=head)

    return app


def record_request(path: str, req: Request) -> None:
    try:
        body = json.loads(req.body or b"{}") if req.method == "POST" else {}
    except ValueError:
        body = {}
    prompt = body.get("prompt", "") if isinstance(body, dict) else ""
    line = json.dumps(
        {"t": time.time(), "method": req.method, "path": req.path, "prompt": str(prompt)}
    )
    with open(path, "a", encoding="utf-8") as log:  # one short append: atomic enough for tests
        log.write(line + "\n")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = make_app()
