"""Special markers in prompts that make the simulator misbehave on purpose.

A marker is ``[[name]]`` or ``[[name=value]]`` anywhere in the text the caller controls: the last
user message (chat), ``prompt`` (completions, images, transcription, MJ), ``input`` (speech,
embeddings) and, on /mj/*, also ``state``. They let the tests of every other part of the project
reach each failure branch over real HTTP without a control API. Markers are stripped from echoes.

/v1/* (and "unknown" in the model name → 503 no channel):
  [[error:429]]        429 "group saturated" (Chinese message) + ``Retry-After: 7``
  [[error:503]]        503 "no available channel for model X under group default (distributor)"
  [[error:500-html]]   502 with an nginx HTML body (not JSON)
  [[error:500]]        500 upstream_error "bad response status code 500"
  [[error:400]]        400 invalid_request_error
  [[error:401]]        401 invalid_api_key
  [[error:quota]]      403 insufficient_quota
  [[die]]              stream: a few chunks, then the TCP connection is dropped (no [DONE]);
                       non-stream: connection dropped without any response
  [[error:midstream]]  stream: a few chunks, then ``data: {"error": {...}}`` and the end
  [[slow]]             60 s / SIMULATOR_SPEED of silence before the first byte of the answer
  [[sleep=N]]          exactly N seconds of silence (not scaled)
  [[tps=N]]            stream at N tokens per second (not scaled)
  [[tokens=N]]         reply exactly N tokens long
  [[echo]]             chat: the reply is the user's text verbatim (only the markers removed)
  [[expire]]           generated files (images, MJ results) are expired from the start
  [[gpt4:no-image]]    gpt-4-all / gpt-4o-all: the reply declines in words, without an image link
/mj/*:
  [[error:429]] → 429 code 30; [[error:503]] → 503; [[error:500-html]] → 502 HTML;
  [[error:quota]] → 400 quota_not_enough; [[mj:banned]] → code 24; [[mj:queue-full]] → 23;
  [[mj:no-instance]] → 3; [[mj:system-error]] → 9; [[mj:queued]] → 22 (task created);
  [[mj:fail]] → the task ends in FAILURE; [[expire]], [[sleep=N]], [[slow]] as above.
  A face swap has no prompt: its markers go in ``state`` or in a text comment of either image
  (a PNG ``Comment`` text chunk, a JPEG comment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from studio.simulator.config import Config
from studio.simulator.web import Request, Response, html_error, mj_wrapper_error, openai_error

MARKER = re.compile(r"\[\[\s*([A-Za-z0-9:_\-]+)\s*(?:=\s*([^\]]*?)\s*)?\]\]")

SATURATED = "当前分组上游负载已饱和，请稍后再试"  # noqa: RUF001 - the relay's own words
QUOTA_EXHAUSTED = "该令牌额度已用尽 token quota is exhausted"


@dataclass
class Markers:
    flags: set[str] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.flags

    def number(self, name: str) -> float | None:
        try:
            return float(self.values[name])
        except (KeyError, ValueError):
            return None


def parse_markers(*texts: str) -> Markers:
    markers = Markers()
    for text in texts:
        for name, value in MARKER.findall(text or ""):
            key = name.lower()
            markers.flags.add(key)
            if value:
                markers.values[key] = value
    return markers


def strip_markers(text: str) -> str:
    return re.sub(r"[ \t]{2,}", " ", MARKER.sub("", text or "")).strip()


def no_channel(model: str) -> Response:
    return openai_error(
        503,
        f"no available channel for model {model} under group default (distributor)",
        code="model_not_found",
    )


def openai_special_error(markers: Markers, model: str = "") -> Response | None:
    """The error a /v1 call should fail with, or None to carry on normally."""
    if "unknown" in model.lower():
        return no_channel(model)
    if markers.has("error:429"):
        return openai_error(429, SATURATED, headers=[("Retry-After", "7")])
    if markers.has("error:503"):
        return no_channel(model or "gpt-4o")
    if markers.has("error:500-html"):
        return html_error(502, "Bad Gateway")
    if markers.has("error:500"):
        return openai_error(
            500,
            "bad response status code 500",
            type_="upstream_error",
            code="bad_response_status_code",
        )
    if markers.has("error:400"):
        return openai_error(
            400,
            "Invalid request: the upstream rejected this input (simulated)",
            type_="invalid_request_error",
            code="invalid_request_error",
            param="messages",
        )
    if markers.has("error:401"):
        return openai_error(401, "无效的令牌", code="invalid_api_key")
    if markers.has("error:quota"):
        return openai_error(403, QUOTA_EXHAUSTED, code="insufficient_quota")
    return None


def mj_special_error(markers: Markers) -> Response | None:
    """Relay-level failures on /mj/* (the proxy-level codes live in midjourney.py)."""
    if markers.has("error:429"):
        # Code 30 is the relay's "group saturated" and travels with HTTP 429.
        return mj_wrapper_error(SATURATED, status=429, code=30)
    if markers.has("error:503"):
        return no_channel("midjourney")
    if markers.has("error:500-html"):
        return html_error(502, "Bad Gateway")
    if markers.has("error:quota"):
        return mj_wrapper_error("quota_not_enough")
    return None


def initial_delay(markers: Markers, config: Config) -> float:
    """Silence before the first byte of the answer: explicit seconds, or a scaled "slow"."""
    explicit = markers.number("sleep")
    if explicit is not None:
        return max(0.0, explicit)
    if markers.has("slow"):
        return config.scaled(60.0)
    return 0.0


async def pause(req: Request, markers: Markers, config: Config) -> None:
    await req.sleep(initial_delay(markers, config))
