"""The Flux family (`/flux/v1/*`, Black Forest Labs' official format, upstream-api.md §7).

Plain async functions taking a `RelayClient`, returning frozen dataclasses. A submit to one of
the model endpoints (flux-pro-1.1, flux-pro, flux-dev) answers `{"id", "polling_url"?}`; the
task is then read with `GET /flux/v1/get_result?id=<id>` until its `status` is final:

    Pending → Ready (`result.sample`: a URL that expires within minutes)
            → Request Moderated / Content Moderated / Error
    Task not found: an id the relay does not know (yet)

`polling_url` points at BFL itself (a regional host the user's relay key is not for): it is kept
for the record, never polled. BFL's errors are FastAPI bodies (`{"detail": [...]}` with 422 for
validation, `{"detail": "..."}` otherwise), read by `error_from_response`; a 2xx reply that
carries one instead of an id or a status raises the same way.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from studio.upstream.client import MEDIA_TIMEOUT, QUICK_TIMEOUT, RelayClient
from studio.upstream.errors import BadRequestError, ProtocolError, error_from_payload
from studio.upstream.lenient import as_int, as_str
from studio.upstream.progress import parse_progress

FLUX_PRO_1_1: Final = "flux-pro-1.1"
FLUX_PRO: Final = "flux-pro"
FLUX_DEV: Final = "flux-dev"
MODELS: Final = (FLUX_PRO_1_1, FLUX_PRO, FLUX_DEV)
_SUBMIT_PATHS: Final = {FLUX_PRO_1_1: "flux_pro_1_1", FLUX_PRO: "flux_pro", FLUX_DEV: "flux_dev"}

TASK_NOT_FOUND: Final = "Task not found"
PENDING: Final = "Pending"
REQUEST_MODERATED: Final = "Request Moderated"
CONTENT_MODERATED: Final = "Content Moderated"
READY: Final = "Ready"
ERROR: Final = "Error"
STATUSES: Final = (TASK_NOT_FOUND, PENDING, REQUEST_MODERATED, CONTENT_MODERATED, READY, ERROR)
MODERATED: Final = frozenset({REQUEST_MODERATED, CONTENT_MODERATED})
FINISHED: Final = frozenset({READY, ERROR, *MODERATED})

# Limits of BFL's API (§7).
SIDE_RANGE: Final = (256, 1440)
SIDE_STEP: Final = 32
DEFAULT_WIDTH: Final = 1024
DEFAULT_HEIGHT: Final = 768
SAFETY_RANGE: Final = (0, 6)
DEFAULT_SAFETY: Final = 2
OUTPUT_FORMATS: Final = ("jpeg", "png")
STEPS_RANGE: Final = (1, 50)
GUIDANCE_RANGE: Final = (1.5, 5.0)
INTERVAL_RANGE: Final = (1.0, 4.0)
# Per model: the extra fields it takes, with BFL's defaults (§7).
MODEL_DEFAULTS: Final[dict[str, dict[str, float]]] = {
    FLUX_PRO_1_1: {},
    FLUX_PRO: {"steps": 40, "guidance": 2.5, "interval": 2},
    FLUX_DEV: {"steps": 28, "guidance": 3},
}

_CANONICAL_STATUS: Final = {status.casefold(): status for status in STATUSES}


@dataclass(frozen=True)
class FluxSubmission:
    id: str
    polling_url: str = ""


@dataclass(frozen=True)
class FluxResult:
    id: str
    status: str = PENDING
    sample: str = ""  # the image's URL once Ready; it expires within minutes
    prompt: str = ""  # the prompt BFL used (rewritten when prompt_upsampling was on)
    seed: int | None = None
    duration: float | None = None  # seconds BFL spent on it
    progress: int | None = None  # 0-100, when the relay says
    details: str = ""  # moderation reasons or the error, in BFL's words

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def ready(self) -> bool:
        return self.status == READY

    @property
    def moderated(self) -> bool:
        return self.status in MODERATED


def takes(model: str, field: str) -> bool:
    """Whether `model` takes the model-specific `field` (steps, guidance, interval)."""
    return field in MODEL_DEFAULTS.get(model, {})


def image_prompt_value(image: str | bytes) -> str:
    """An image as BFL's `image_prompt` wants it: raw base64 (bytes encoded, a `data:`
    prefix dropped); a URL passes as it is."""
    if isinstance(image, bytes):
        return base64.b64encode(image).decode("ascii")
    text = image.strip()
    if text.startswith("data:") and "," in text:
        return text.split(",", 1)[1]
    return text


# --- calls ----------------------------------------------------------------------------------


async def generate(
    client: RelayClient,
    model: str,
    prompt: str,
    *,
    image_prompt: str | bytes | None = None,
    width: int | None = None,
    height: int | None = None,
    prompt_upsampling: bool | None = None,
    seed: int | None = None,
    safety_tolerance: int | None = None,
    output_format: str | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    interval: float | None = None,
) -> FluxSubmission:
    """Start a Flux task on `model`'s endpoint. Unset values are left out (BFL's defaults
    apply); `steps`, `guidance` and `interval` are sent only to the models that take them."""
    try:
        path_name = _SUBMIT_PATHS[model]
    except KeyError:
        raise BadRequestError(f"unknown Flux model {model!r}") from None
    body: dict[str, Any] = {
        "prompt": prompt,
        "image_prompt": image_prompt_value(image_prompt) if image_prompt else None,
        "width": width,
        "height": height,
        "prompt_upsampling": prompt_upsampling,
        "seed": seed,
        "safety_tolerance": safety_tolerance,
        "output_format": output_format or None,
    }
    for name, value in (("steps", steps), ("guidance", guidance), ("interval", interval)):
        if takes(model, name):
            body[name] = value
    body = {key: value for key, value in body.items() if value is not None}
    payload = await client._request_json("POST", path_name, json=body, timeout=MEDIA_TIMEOUT)
    return parse_submission(payload, secret=client.credentials.api_key)


async def get_result(client: RelayClient, task_id: str) -> FluxResult:
    """The task's state (GET /flux/v1/get_result?id=…)."""
    payload = await client._request_json(
        "GET", "flux_get_result", path_params={"id": task_id}, timeout=QUICK_TIMEOUT
    )
    return parse_result(payload, task_id=task_id, secret=client.credentials.api_key)


# --- parsing --------------------------------------------------------------------------------


def parse_submission(payload: Mapping[str, Any], *, secret: str | None = None) -> FluxSubmission:
    task_id = as_str(payload.get("id")).strip()
    if not task_id:
        _raise_embedded_error(payload, secret)
        raise ProtocolError("the relay accepted the Flux task but sent no id")
    return FluxSubmission(id=task_id, polling_url=as_str(payload.get("polling_url")).strip())


def parse_result(
    payload: Mapping[str, Any], *, task_id: str = "", secret: str | None = None
) -> FluxResult:
    """A get_result reply, read leniently: status spelled in any case, `result` as an object
    (or, from some relays, the sample URL alone), `progress` as a fraction or a percentage."""
    raw_status = as_str(payload.get("status")).strip()
    if not raw_status:
        _raise_embedded_error(payload, secret)
        raise ProtocolError("the relay's Flux reply has no status")
    status = _CANONICAL_STATUS.get(raw_status.casefold(), raw_status)
    result = payload.get("result")
    sample = prompt = ""
    seed: int | None = None
    duration: float | None = None
    if isinstance(result, Mapping):
        sample = as_str(result.get("sample") or result.get("url")).strip()
        prompt = as_str(result.get("prompt")).strip()
        seed = as_int(result.get("seed"))
        duration = _float(result.get("duration"))
    elif isinstance(result, str) and result.strip().startswith(("http://", "https://")):
        sample = result.strip()
    details = _details_text(payload.get("details"))
    if not details and status != READY and isinstance(result, str) and not sample:
        details = result.strip()  # an Error's reason sometimes comes as its result
    return FluxResult(
        id=as_str(payload.get("id")).strip() or task_id,
        status=status,
        sample=sample,
        prompt=prompt,
        seed=seed,
        duration=duration,
        progress=parse_progress(payload.get("progress")),
        details=details,
    )


def _details_text(value: object) -> str:
    """BFL's `details`, e.g. {"Moderation Reasons": ["Derivative Works Filter"]}, as words."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return ", ".join(part for part in (_details_text(item) for item in value) if part)
    if isinstance(value, Mapping):
        parts = []
        for key, item in value.items():
            text = _details_text(item)
            if text:
                parts.append(f"{key}: {text}")
        return "; ".join(parts)
    return str(value)


def _raise_embedded_error(payload: Mapping[str, Any], secret: str | None) -> None:
    """A 2xx reply carrying an error body instead of the answer (some relays do that)."""
    if any(payload.get(key) for key in ("error", "detail", "message")):
        raise error_from_payload(payload, status=200, secret=secret)


def _float(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        return None
