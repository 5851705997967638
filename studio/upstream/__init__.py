"""Studio's service layer for the relay: the only code that speaks HTTP to it.

It knows nothing about Django models: it takes plain values and returns frozen dataclasses.
Endpoint families live in their own modules (`studio.upstream.openai`, ...) as async functions
taking a `RelayClient`.
"""

from studio.upstream.client import (
    LONG_TIMEOUT,
    MEDIA_TIMEOUT,
    QUICK_TIMEOUT,
    STREAM_TIMEOUT,
    RelayClient,
    RelayCredentials,
    aclose_http_clients,
    get_http_client,
    tls_context,
)
from studio.upstream.errors import (
    AuthError,
    BadRequestError,
    ProtocolError,
    QuotaError,
    RateLimitedError,
    UnavailableError,
    UpstreamError,
    UpstreamTimeout,
    error_from_payload,
    error_from_response,
    user_message,
)
from studio.upstream.masking import mask_key
from studio.upstream.midjourney import MidjourneyError, MJTask, SubmitResult
from studio.upstream.openai import (
    AudioResult,
    ChatDelta,
    ChatResult,
    CompletionResult,
    EmbeddingResult,
    GeneratedImage,
    ModelInfo,
    TranscriptionResult,
    Usage,
)
from studio.upstream.sse import SSEEvent, SSEParser, iter_json_events

__all__ = [
    "LONG_TIMEOUT",
    "MEDIA_TIMEOUT",
    "QUICK_TIMEOUT",
    "STREAM_TIMEOUT",
    "AudioResult",
    "AuthError",
    "BadRequestError",
    "ChatDelta",
    "ChatResult",
    "CompletionResult",
    "EmbeddingResult",
    "GeneratedImage",
    "MJTask",
    "MidjourneyError",
    "ModelInfo",
    "ProtocolError",
    "QuotaError",
    "RateLimitedError",
    "RelayClient",
    "RelayCredentials",
    "SSEEvent",
    "SSEParser",
    "SubmitResult",
    "TranscriptionResult",
    "UnavailableError",
    "UpstreamError",
    "UpstreamTimeout",
    "Usage",
    "aclose_http_clients",
    "error_from_payload",
    "error_from_response",
    "get_http_client",
    "iter_json_events",
    "mask_key",
    "tls_context",
    "user_message",
]
