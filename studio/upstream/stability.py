"""The Stability AI family (Stability's official format, upstream-api.md §12).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. Every call is
synchronous and the images come back in the reply, as base64 (we ask for JSON):

* Stable Image Ultra / Core / SD3: multipart `POST /v2beta/stable-image/generate/{endpoint}`,
  answering `{"image", "finish_reason", "seed"}` (or, from a relay that ignores our Accept
  header, the image's bytes with `finish-reason` and `seed` headers);
* SDXL & SD 1.6: JSON `POST /v1/generation/{engine_id}/text-to-image`, answering
  `{"artifacts": [{"base64", "seed", "finishReason"}]}`.

An image whose finish reason is CONTENT_FILTERED is Stability's blurred stand-in: it is never
handed out, only counted (`filtered`), like ERROR ones (`errored`).

Errors: v2beta bodies are `{"id", "name", "errors": [...]}`, v1 bodies `{"id", "name",
"message"}`. `name` says more than the status: `content_moderation` comes with HTTP 403 (a
refusal of the request, not of the key), `payment_required` / `insufficient_balance` mean no
credits left. The relay's own OpenAI-shaped errors are read as everywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from studio.upstream.client import LONG_TIMEOUT, RelayClient
from studio.upstream.errors import (
    AuthError,
    BadRequestError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
    error_from_payload,
)
from studio.upstream.lenient import as_int, as_str

ULTRA: Final = "ultra"
CORE: Final = "core"
SD3: Final = "sd3"
ENDPOINTS: Final = (ULTRA, CORE, SD3)
_ENDPOINT_PATHS: Final = {ULTRA: "stability_ultra", CORE: "stability_core", SD3: "stability_sd3"}

SDXL_ENGINE: Final = "stable-diffusion-xl-1024-v1-0"
SD16_ENGINE: Final = "stable-diffusion-v1-6"
ENGINES: Final = (SDXL_ENGINE, SD16_ENGINE)

SUCCESS: Final = "SUCCESS"
CONTENT_FILTERED: Final = "CONTENT_FILTERED"
ERROR: Final = "ERROR"

MAX_PROMPT_CHARS: Final = 10_000
MAX_SEED: Final = 4_294_967_294
ASPECT_RATIOS: Final = ("1:1", "16:9", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
OUTPUT_FORMATS: Final[dict[str, tuple[str, ...]]] = {
    ULTRA: ("png", "jpeg", "webp"),
    CORE: ("png", "jpeg", "webp"),
    SD3: ("png", "jpeg"),
}
IMAGE_ENDPOINTS: Final = frozenset({ULTRA, SD3})  # take `image` + `strength`
SD3_MODELS: Final = (
    "sd3.5-large",
    "sd3.5-large-turbo",
    "sd3.5-medium",
    "sd3-large",
    "sd3-large-turbo",
    "sd3-medium",
)
NO_NEGATIVE_MODELS: Final = frozenset({"sd3-large-turbo", "sd3.5-large-turbo"})
STYLE_PRESETS: Final = (
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
)
# v1 text-to-image (§12.2)
SDXL_SIZES: Final = (
    (1024, 1024),
    (1152, 896),
    (896, 1152),
    (1216, 832),
    (832, 1216),
    (1344, 768),
    (768, 1344),
    (1536, 640),
    (640, 1536),
)
SD16_SIDE_RANGE: Final = (320, 1536)
SIDE_STEP: Final = 64
CFG_RANGE: Final = (0.0, 35.0)
STEPS_RANGE: Final = (10, 50)
MAX_SAMPLES: Final = 10
MAX_V1_SEED: Final = 4_294_967_295
SAMPLERS: Final = (
    "DDIM",
    "DDPM",
    "K_DPMPP_2M",
    "K_DPMPP_2S_ANCESTRAL",
    "K_DPM_2",
    "K_DPM_2_ANCESTRAL",
    "K_EULER",
    "K_EULER_ANCESTRAL",
    "K_HEUN",
    "K_LMS",
)
CLIP_GUIDANCE_PRESETS: Final = ("NONE", "FAST_BLUE", "FAST_GREEN", "SIMPLE", "SLOW", "SLOWER")

_JSON: Final = {"Accept": "application/json"}
_MIMES: Final = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}
# Stability's error names that say more than the HTTP status they come with.
_NAME_CLASSES: Final[dict[str, type[UpstreamError]]] = {
    "content_moderation": BadRequestError,  # HTTP 403, but the request was refused, not the key
    "invalid_prompts": BadRequestError,
    "payment_required": QuotaError,
    "insufficient_balance": QuotaError,
    "rate_limit_exceeded": RateLimitedError,
    "unauthorized": AuthError,
    "server_error": UnavailableError,
    "internal_error": UnavailableError,
}

type ImageUpload = tuple[str, bytes, str]  # (file name, bytes, media type), as httpx takes it


@dataclass(frozen=True)
class StabilityImage:
    content: bytes
    mime: str
    seed: int | None = None
    finish_reason: str = SUCCESS


@dataclass(frozen=True)
class StabilityResult:
    """The images of one call that may be kept, and how many Stability filtered or failed."""

    images: tuple[StabilityImage, ...]
    filtered: int = 0
    errored: int = 0


def sdxl_size_allowed(width: int, height: int) -> bool:
    return (width, height) in SDXL_SIZES


def sd16_side_allowed(side: int) -> bool:
    low, high = SD16_SIDE_RANGE
    return low <= side <= high and side % SIDE_STEP == 0


# --- calls ----------------------------------------------------------------------------------


async def generate(
    client: RelayClient,
    endpoint: str,
    prompt: str,
    *,
    negative_prompt: str | None = None,
    aspect_ratio: str | None = None,
    seed: int | None = None,
    output_format: str | None = None,
    style_preset: str | None = None,
    model: str | None = None,
    image: ImageUpload | None = None,
    strength: float | None = None,
) -> StabilityResult:
    """One image from Stable Image Ultra, Core or SD3 (multipart, §12.1). With `image` (Ultra
    and SD3) it is image to image, `strength` (0-1) saying how much of the image to replace;
    SD3 is then told `mode=image-to-image`, and the aspect ratio follows the image."""
    try:
        path_name = _ENDPOINT_PATHS[endpoint]
    except KeyError:
        raise BadRequestError(f"unknown Stability endpoint {endpoint!r}") from None
    if image is not None and endpoint not in IMAGE_ENDPOINTS:
        raise BadRequestError(f"Stable Image {endpoint} does not take an input image")
    fields: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "aspect_ratio": aspect_ratio if image is None else None,
        "seed": seed,
        "output_format": output_format,
        "style_preset": style_preset if endpoint == CORE else None,
        "model": model if endpoint == SD3 else None,
        "strength": strength if image is not None else None,
    }
    if endpoint == SD3 and image is not None:
        fields["mode"] = "image-to-image"
    # Every field as a part of its own (no file name): the body is multipart/form-data, as
    # Stability requires, even without an image.
    parts: dict[str, Any] = {
        key: (None, str(value))
        for key, value in fields.items()
        if value is not None and value != ""
    }
    if image is not None:
        parts["image"] = image
    response = await _send(client, path_name, files=parts, headers=_JSON, timeout=LONG_TIMEOUT)
    return parse_v2_response(response, output_format=output_format, secret=_secret(client))


async def text_to_image(
    client: RelayClient,
    engine_id: str,
    text_prompts: Sequence[tuple[str, float]],
    *,
    width: int | None = None,
    height: int | None = None,
    cfg_scale: float | None = None,
    clip_guidance_preset: str | None = None,
    sampler: str | None = None,
    samples: int | None = None,
    seed: int | None = None,
    steps: int | None = None,
    style_preset: str | None = None,
) -> StabilityResult:
    """Images from SDXL or SD 1.6 (JSON, §12.2). `text_prompts` are (text, weight) pairs: a
    negative weight is what to avoid."""
    if engine_id not in ENGINES:
        raise BadRequestError(f"unknown Stability engine {engine_id!r}")
    body: dict[str, Any] = {
        "text_prompts": [{"text": text, "weight": weight} for text, weight in text_prompts],
        "width": width,
        "height": height,
        "cfg_scale": cfg_scale,
        "clip_guidance_preset": clip_guidance_preset or None,
        "sampler": sampler or None,
        "samples": samples,
        "seed": seed,
        "steps": steps,
        "style_preset": style_preset or None,
    }
    body = {key: value for key, value in body.items() if value is not None}
    response = await _send(
        client,
        "stability_text_to_image",
        json=body,
        headers=_JSON,
        timeout=LONG_TIMEOUT,
        path_params={"engine_id": engine_id},
    )
    payload = _json_object(response)
    return parse_artifacts(payload, secret=_secret(client))


async def _send(client: RelayClient, path_name: str, **kwargs: Any) -> httpx.Response:
    response = await client._request("POST", path_name, raise_for_status=False, **kwargs)
    if not response.is_success:
        raise with_stability_class(client._error_from(response), response.content)
    return response


def _secret(client: RelayClient) -> str:
    return client.credentials.api_key


# --- parsing --------------------------------------------------------------------------------


def with_stability_class(error: UpstreamError, body: bytes) -> UpstreamError:
    """Reclassify `error` by the Stability error `name` in `body`, which says more than the
    HTTP status (a 403 `content_moderation` refuses the prompt, not the key), and add the
    name as the relay code when the generic reader did not keep it (v1 bodies)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return error
    if not isinstance(payload, Mapping) or "error" in payload:
        return error  # the relay's own shape: already read
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        return error
    name = name.strip()
    error_class = _NAME_CLASSES.get(name.casefold(), type(error))
    if error_class is type(error) and error.relay_code:
        return error
    return error_class(
        error.message,
        status=error.status,
        relay_code=error.relay_code or name,
        retry_after=error.retry_after,
    )


def parse_v2_response(
    response: httpx.Response, *, output_format: str | None = None, secret: str | None = None
) -> StabilityResult:
    """A v2beta reply: JSON `{image, finish_reason, seed}`, or raw bytes with headers."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith("image/"):
        image = StabilityImage(
            content=response.content,
            mime=sniff_mime(response.content) or content_type,
            seed=as_int(response.headers.get("seed")),
            finish_reason=_reason(response.headers.get("finish-reason")),
        )
        return _result([image])
    return parse_v2_payload(_json_object(response), output_format=output_format, secret=secret)


def parse_v2_payload(
    payload: Mapping[str, Any], *, output_format: str | None = None, secret: str | None = None
) -> StabilityResult:
    encoded = payload.get("image")
    if not isinstance(encoded, str) or not encoded.strip():
        _raise_embedded_error(payload, secret)
        raise ProtocolError("Stability's reply has no image")
    content = _decode(encoded)
    fallback = _MIMES.get((output_format or "png").lower(), "image/png")
    image = StabilityImage(
        content=content,
        mime=sniff_mime(content) or fallback,
        seed=as_int(payload.get("seed")),
        finish_reason=_reason(payload.get("finish_reason", payload.get("finishReason"))),
    )
    return _result([image])


def parse_artifacts(payload: Mapping[str, Any], *, secret: str | None = None) -> StabilityResult:
    """A v1 reply: `{"artifacts": [{base64, seed, finishReason}]}`."""
    artifacts = payload.get("artifacts")
    if not isinstance(artifacts, list):
        _raise_embedded_error(payload, secret)
        raise ProtocolError("Stability's reply has no artifacts")
    images = []
    for item in artifacts:
        if not isinstance(item, Mapping):
            continue
        reason = _reason(item.get("finishReason", item.get("finish_reason")))
        encoded = item.get("base64")
        if not isinstance(encoded, str) or not encoded.strip():
            if reason == SUCCESS:
                continue  # nothing to keep, nothing to count
            content = b""
        else:
            content = _decode(encoded)
        images.append(
            StabilityImage(
                content=content,
                mime=sniff_mime(content) or "image/png",
                seed=as_int(item.get("seed")),
                finish_reason=reason,
            )
        )
    return _result(images)


def _result(images: Sequence[StabilityImage]) -> StabilityResult:
    kept = tuple(image for image in images if image.finish_reason == SUCCESS and image.content)
    filtered = sum(1 for image in images if image.finish_reason == CONTENT_FILTERED)
    errored = len(images) - len(kept) - filtered
    return StabilityResult(kept, filtered, errored)


def sniff_mime(content: bytes) -> str:
    """The image type from its first bytes; "" when it is none of PNG, JPEG, WebP."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return ""


def _decode(encoded: str) -> bytes:
    text = encoded.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("Stability's image is not valid base64") from None


def _reason(value: object) -> str:
    text = as_str(value).strip().upper()
    return text or SUCCESS  # older replies leave it out when all went well


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        raise ProtocolError(
            f"expected JSON from Stability, got "
            f"{response.headers.get('content-type') or 'no content type'}",
            status=response.status_code,
        ) from None
    if not isinstance(payload, dict):
        raise ProtocolError(f"expected a JSON object, got {type(payload).__name__}")
    return payload


def _raise_embedded_error(payload: Mapping[str, Any], secret: str | None) -> None:
    """A 2xx reply carrying an error body (some relays answer 200 with the provider's error)."""
    if any(payload.get(key) for key in ("error", "errors", "message", "detail")):
        error = error_from_payload(payload, status=200, secret=secret)
        raise with_stability_class(error, json.dumps(payload).encode())
