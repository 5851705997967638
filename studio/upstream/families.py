"""The relay's endpoint families (upstream-api.md §0): which paths each owns, how sure we are of
them, whether the relay's index lists them as enabled, and how to probe one cheaply.

This module knows nothing of the database: the run-time switches, path overrides and options
that staff set live in `studio.accounts.families`, which hands them to the client through
`RelayCredentials.path_overrides` / `.options`.

A probe sends one request that costs nothing on the relay (a fetch of a task that does not
exist, a list, or a request the relay refuses as incomplete before it reaches a provider) and
reads the answer: any answer in the family's own shape means the route is mounted; the relay's
"Invalid URL" 404, a 501 or a non-JSON 404 mean it is not.
"""

from __future__ import annotations

import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from studio.upstream import paths
from studio.upstream.client import QUICK_TIMEOUT, RelayClient
from studio.upstream.errors import AuthError, UpstreamError

type Grade = Literal["A", "B", "C"]

PROBE_TASK_ID: Final = "studio-probe-0"


@dataclass(frozen=True)
class Probe:
    method: str
    path_name: str
    path_params: tuple[tuple[str, str], ...] = ()
    json: Any = None  # a body the relay refuses as incomplete, never a billable request


@dataclass(frozen=True)
class Family:
    slug: str
    label: str  # a proper name, not translated
    path_names: tuple[str, ...]
    grade: Grade
    enabled_on_relay: bool  # listed in the enabled part of the relay's index (upstream-api §0.1)
    probe: Probe
    options: tuple[str, ...] = ()  # option names staff may set (see OPTION_CHOICES)
    # Probes for a request format other than the default: (option, value, probe).
    format_probes: tuple[tuple[str, str, Probe], ...] = ()

    def probe_for(self, options: Mapping[str, str]) -> Probe:
        """The probe of the request format staff chose (a family option), else the default."""
        for option, value, format_probe in self.format_probes:
            if options.get(option) == value:
                return format_probe
        return self.probe


def _names(prefix: str, *extra: str) -> tuple[str, ...]:
    return (*(name for name in paths.DEFAULT_PATHS if name.startswith(prefix)), *extra)


_TASK = (("id", PROBE_TASK_ID),)
_TASK_ID = (("task_id", PROBE_TASK_ID),)

FAMILIES: Final[dict[str, Family]] = {
    family.slug: family
    for family in (
        Family(
            "openai",
            "OpenAI",
            (
                "chat_completions",
                "completions",
                "images_generations",
                "embeddings",
                "audio_speech",
                "audio_transcriptions",
                "audio_translations",
                "models",
            ),
            "A",
            True,
            Probe("GET", "models"),
        ),
        Family(
            "midjourney", "Midjourney", _names("mj_"), "A", True, Probe("GET", "mj_fetch", _TASK)
        ),
        Family(
            "suno",
            "Suno",
            _names("suno_"),
            "B",
            False,
            Probe("GET", "suno_v30_fetch", _TASK_ID),
            options=("suno_format",),
            format_probes=(("suno_format", "b", Probe("GET", "suno_fetch", _TASK_ID)),),
        ),
        Family("flux", "Flux", _names("flux_"), "B", False, Probe("GET", "flux_get_result", _TASK)),
        Family(
            "runway", "Runway", _names("runway_"), "B", False, Probe("GET", "runway_task", _TASK)
        ),
        Family(
            "kling",
            "Kling",
            _names("kling_"),
            "A",
            False,
            Probe("GET", "kling_text2video_task", _TASK_ID),
        ),
        Family("luma", "Luma", _names("luma_"), "B", False, Probe("GET", "luma_task", _TASK)),
        Family(
            "ideogram",
            "Ideogram",
            _names("ideogram_"),
            "A",
            False,
            Probe("POST", "ideogram_generate", json={"image_request": {}}),
            options=("ideogram_format",),
            format_probes=(
                (
                    "ideogram_format",
                    "web",
                    Probe("POST", "ideogram_web_task", json={"request_id": PROBE_TASK_ID}),
                ),
            ),
        ),
        Family(
            "stability",
            "Stability AI",
            _names("stability_"),
            "B",
            False,
            Probe(
                "POST",
                "stability_text_to_image",
                (("engine_id", "stable-diffusion-xl-1024-v1-0"),),
                json={"text_prompts": []},
            ),
        ),
        Family(
            "recraft",
            "Recraft",
            _names("recraft_"),
            "B",
            False,
            Probe("POST", "recraft_generate", json={}),
        ),
        Family(
            "cogvideox",
            "CogVideoX",
            _names("cogvideox_"),
            "C",
            False,
            Probe("GET", "cogvideox_result", _TASK),
        ),
        Family(
            "viggle", "Viggle", _names("viggle_"), "C", False, Probe("GET", "viggle_template_tags")
        ),
    )
}

OPTION_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    # Suno's two request formats (upstream-api.md §6): "a" the reseller's template
    # (/suno/v1/v3.x/music), "b" new-api's native /suno/submit + /suno/fetch.
    "suno_format": ("a", "b"),
    # Ideogram's two request formats (upstream-api.md §11): "official" the synchronous
    # /ideogram/generate…, "web" the "reverse" group, polled with the task query.
    "ideogram_format": ("official", "web"),
}


def family_of_path(path_name: str) -> Family | None:
    return next((f for f in FAMILIES.values() if path_name in f.path_names), None)


def placeholders(template: str) -> set[str]:
    """The `{name}` fields of a path template."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


# --- probing ---------------------------------------------------------------------------------


type ProbeVerdict = Literal["answers", "not_mounted", "key_refused", "unreachable"]


@dataclass(frozen=True)
class ProbeResult:
    verdict: ProbeVerdict
    status: int | None  # the HTTP status, None when nothing answered
    detail: str  # what the relay said, shortened, for staff
    elapsed_ms: int
    path: str  # the path that was asked

    @property
    def ok(self) -> bool:
        return self.verdict == "answers"


async def probe(client: RelayClient, family: Family) -> ProbeResult:
    spec = family.probe_for(client.credentials.options)
    params = dict(spec.path_params)
    asked = paths.path(spec.path_name, overrides=client.credentials.path_overrides, **params)
    started = time.perf_counter()
    try:
        response = await client._request(
            spec.method,
            spec.path_name,
            json=spec.json,
            path_params=params,
            timeout=QUICK_TIMEOUT,
            raise_for_status=False,
        )
    except AuthError as error:
        return _result("key_refused", error.status, str(error), started, asked)
    except UpstreamError as error:  # connection refused, timeout, TLS…
        return _result("unreachable", error.status, str(error), started, asked)
    status = response.status_code
    body = response.text[:300]
    if status in (401, 403):
        return _result("key_refused", status, body, started, asked)
    if status == 501 or (status == 404 and _is_unknown_route(response)):
        return _result("not_mounted", status, body, started, asked)
    if status >= 502:
        return _result("unreachable", status, body, started, asked)
    return _result("answers", status, body, started, asked)


def _is_unknown_route(response: Any) -> bool:
    """A 404 from the router (no such path), not a family's own "task not found" answer."""
    try:
        payload = response.json()
    except ValueError:
        return True
    if not isinstance(payload, dict) or not payload:
        return True
    error = payload.get("error")
    message = error.get("message", "") if isinstance(error, dict) else ""
    code = error.get("code", "") if isinstance(error, dict) else ""
    return str(message).startswith("Invalid URL") or code in ("api_not_implemented", "not_found")


def _result(
    verdict: ProbeVerdict, status: int | None, detail: str, started: float, asked: str
) -> ProbeResult:
    elapsed = int((time.perf_counter() - started) * 1000)
    return ProbeResult(verdict, status, " ".join(detail.split())[:300], elapsed, asked)
