"""Relay error bodies of every shape become the UpstreamError a caller can act on."""

import json
import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.utils import translation

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

KEY = "sk-liveSecretKey0123456789abcdWXYZ"
# The relay's own punctuation is full-width.
SATURATED = "当前分组上游负载已饱和，请稍后再试"  # noqa: RUF001
NOT_ALLOWED = "该令牌无权使用模型：gpt-4o"  # noqa: RUF001


def from_json(status: int, body: object, headers: dict[str, str] | None = None) -> UpstreamError:
    return error_from_response(status, headers or {}, json.dumps(body, ensure_ascii=False).encode())


# --- §2.1 OpenAI shape ----------------------------------------------------------------------


def test_openai_shape_invalid_token_is_auth_error():
    error = from_json(
        401, {"error": {"message": "无效的令牌 (request id: 2024)", "type": "new_api_error"}}
    )
    assert isinstance(error, AuthError)
    assert error.code == "auth"
    assert error.status == 401
    assert error.message == "无效的令牌 (request id: 2024)"
    assert error.relay_code == "new_api_error"


def test_openai_shape_prefers_code_over_type():
    error = from_json(
        404,
        {
            "error": {
                "message": "model gpt-9 not found",
                "type": "invalid_request_error",
                "param": "",
                "code": "model_not_found",
            }
        },
    )
    assert isinstance(error, BadRequestError)
    assert error.relay_code == "model_not_found"


def test_token_quota_exhausted_on_401_is_quota_error():
    # one-api answers a spent token with 401 and this message.
    error = from_json(401, {"error": {"message": "该令牌额度已用尽", "type": "one_api_error"}})
    assert isinstance(error, QuotaError)


def test_403_with_quota_wording_is_quota_error_and_without_it_auth_error():
    quota = from_json(403, {"error": {"message": "用户额度不足, 剩余额度: $0.01"}})
    banned = from_json(403, {"error": {"message": NOT_ALLOWED}})
    assert isinstance(quota, QuotaError)
    assert isinstance(banned, AuthError)


def test_insufficient_quota_type_on_400_is_quota_error():
    error = from_json(
        400, {"error": {"message": "You exceeded it", "type": "insufficient_quota", "code": None}}
    )
    assert isinstance(error, QuotaError)
    assert error.relay_code == "insufficient_quota"


def test_402_is_quota_error():
    assert isinstance(from_json(402, {"error": {"message": "pay up"}}), QuotaError)


def test_429_with_chinese_message_and_retry_after_is_rate_limited():
    error = from_json(
        429,
        {"error": {"message": SATURATED, "type": "new_api_error"}},
        headers={"Retry-After": "7"},
    )
    assert isinstance(error, RateLimitedError)
    assert error.message == SATURATED
    assert error.retry_after == 7.0


def test_retry_after_as_http_date():
    when = datetime.now(UTC) + timedelta(seconds=120)
    error = from_json(
        429,
        {"error": {"message": "slow down"}},
        {"retry-after": format_datetime(when, usegmt=True)},
    )
    assert error.retry_after is not None
    assert 100 < error.retry_after <= 120


def test_unreadable_retry_after_is_ignored():
    error = from_json(429, {"error": {"message": "x"}}, {"Retry-After": "soon"})
    assert error.retry_after is None


def test_503_no_available_channel_is_unavailable():
    error = from_json(
        503,
        {
            "error": {
                "message": "当前分组 default 下对于模型 gpt-4-all 无可用渠道",
                "type": "new_api_error",
                "code": "model_not_found",
            }
        },
    )
    assert isinstance(error, UnavailableError)
    assert "无可用渠道" in error.message


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_unavailable(status):
    error = from_json(status, {"error": {"message": "no available channel for model x"}})
    assert isinstance(error, UnavailableError)


@pytest.mark.parametrize("status", [504, 524, 408])
def test_gateway_timeouts_are_timeouts(status):
    assert isinstance(error_from_response(status, {}, b""), UpstreamTimeout)


# --- §2.3 Midjourney wrapper, §2.4 task relay -----------------------------------------------


def test_mj_wrapper_quota_not_enough():
    error = from_json(
        400, {"description": "quota_not_enough ", "type": "upstream_error", "code": 4}
    )
    assert isinstance(error, QuotaError)
    assert error.message == "quota_not_enough"
    assert error.relay_code == "4"


def test_mj_wrapper_task_not_found_is_bad_request():
    error = from_json(400, {"description": "task_no_found ", "type": "upstream_error", "code": 4})
    assert isinstance(error, BadRequestError)
    assert error.message == "task_no_found"


def test_mj_wrapper_saturated_group_is_rate_limited():
    error = from_json(
        429, {"description": "当前分组负载已饱和", "type": "upstream_error", "code": 30}
    )
    assert isinstance(error, RateLimitedError)


def test_task_relay_quota_token():
    error = from_json(403, {"code": "quota_not_enough", "message": "额度不足", "data": None})
    assert isinstance(error, QuotaError)
    assert error.relay_code == "quota_not_enough"
    assert error.message == "额度不足"


def test_task_relay_task_not_exist():
    error = from_json(400, {"code": "task_not_exist", "message": "task_not_exist", "data": None})
    assert isinstance(error, BadRequestError)
    assert error.relay_code == "task_not_exist"


def test_task_relay_do_request_failed_is_unavailable():
    error = from_json(500, {"code": "do_request_failed", "message": "dial tcp: timeout"})
    assert isinstance(error, UnavailableError)


# --- §2.5 provider-native bodies ------------------------------------------------------------


def test_kling_envelope_with_http_200_and_quota_wording():
    error = from_json(
        200, {"code": 1102, "message": "Account balance not enough", "request_id": "r"}
    )
    assert isinstance(error, QuotaError)
    assert error.relay_code == "1102"


def test_kling_envelope_invalid_parameter():
    error = from_json(400, {"code": 1201, "message": "Invalid model_name", "request_id": "r"})
    assert isinstance(error, BadRequestError)
    assert error.message == "Invalid model_name"


def test_runway_plain_error_string():
    error = from_json(400, {"error": "Invalid asset aspect ratio"})
    assert isinstance(error, BadRequestError)
    assert error.message == "Invalid asset aspect ratio"


def test_bfl_validation_detail_list():
    error = from_json(
        422,
        {
            "detail": [
                {"loc": ["body", "width"], "msg": "must be a multiple of 32", "type": "value_error"}
            ]
        },
    )
    assert isinstance(error, BadRequestError)
    assert error.message == "width: must be a multiple of 32"


def test_goapi_style_keeps_both_messages():
    error = from_json(500, {"code": 500, "message": "failed", "error_message": "suno is down"})
    assert isinstance(error, UnavailableError)
    assert error.message == "failed — suno is down"


def test_stability_errors_list():
    error = from_json(400, {"id": "abc", "name": "bad_request", "errors": ["prompt: required"]})
    assert isinstance(error, BadRequestError)
    assert error.relay_code == "bad_request"
    assert error.message == "prompt: required"


# --- bodies that are not JSON ---------------------------------------------------------------


def test_html_page_from_a_proxy_gives_its_title():
    page = (
        b"<html><head><title>502 Bad Gateway</title><style>body{}</style></head>"
        b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
    )
    error = error_from_response(502, {"content-type": "text/html"}, page)
    assert isinstance(error, UnavailableError)
    assert error.message == "502 Bad Gateway"


def test_html_without_title_gives_stripped_short_text():
    page = b"<html><body><script>var x = 1;</script><p>Upstream   is\n down</p>" + b"x" * 1000
    error = error_from_response(500, {}, page + b"</body></html>")
    assert error.message.startswith("Upstream is down")
    assert "<" not in error.message and "var x" not in error.message
    assert len(error.message) <= 300


def test_plain_text_body():
    error = error_from_response(400, {}, b"  bad things happened \n")
    assert isinstance(error, BadRequestError)
    assert error.message == "bad things happened"


def test_empty_body_gives_the_reason_phrase():
    error = error_from_response(503, {}, b"")
    assert error.message == "Service Unavailable"


def test_json_without_a_known_shape_gives_the_reason_phrase():
    assert error_from_response(404, {}, b'{"weird": true}').message == "Not Found"


def test_redirect_is_a_protocol_error_naming_the_target():
    error = error_from_response(301, {"Location": "https://relay.example/v1/models"}, b"")
    assert isinstance(error, ProtocolError)
    assert "https://relay.example/v1/models" in error.message


# --- errors inside a 200 reply or a stream --------------------------------------------------


def test_payload_error_without_status_defaults_to_unavailable():
    error = error_from_payload({"error": {"message": "upstream closed", "type": "server_error"}})
    assert isinstance(error, UnavailableError)
    assert error.status is None


def test_payload_error_with_rate_limit_words():
    error = error_from_payload({"error": {"message": "Rate limit reached", "code": "rate_limit"}})
    assert isinstance(error, RateLimitedError)


# --- keys never leak ------------------------------------------------------------------------


def test_echoed_key_is_masked_in_message_str_and_repr():
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    error = from_json(401, body)
    assert isinstance(error, AuthError)
    for text in (error.message, str(error), repr(error), user_message(error)):
        assert KEY not in text
        assert "sk-…WXYZ" in text


def test_key_without_its_prefix_is_masked_when_the_secret_is_known():
    bare = KEY.removeprefix("sk-")
    error = error_from_response(
        401, {}, f'{{"error": {{"message": "token {bare} banned"}}}}'.encode(), secret=KEY
    )
    assert bare not in str(error) and bare not in repr(error)


def test_directly_constructed_error_masks_keys_too():
    error = UnavailableError(f"could not use {KEY}")
    assert KEY not in str(error) and KEY not in repr(error)


def test_error_survives_pickling_with_its_attributes():
    error = from_json(429, {"error": {"message": "busy", "code": "x"}}, {"Retry-After": "3"})
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(copy) is RateLimitedError
    assert (copy.status, copy.relay_code, copy.message, copy.retry_after) == (429, "x", "busy", 3.0)


# --- words for people -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AuthError("无效的令牌"), "The relay rejected the API key: 无效的令牌"),
        (QuotaError("额度不足"), "The key has no quota left: 额度不足"),
        (
            RateLimitedError("饱和", retry_after=2.2),
            "The relay is busy; try again in 3 seconds: 饱和",
        ),
        (RateLimitedError("饱和", retry_after=1), "The relay is busy; try again in 1 second: 饱和"),
        (RateLimitedError("饱和"), "The relay is busy; try again later: 饱和"),
        (UnavailableError("down"), "The relay is unavailable: down"),
        (UpstreamTimeout("silent"), "The relay did not answer in time: silent"),
        (BadRequestError("no"), "The relay refused the request: no"),
        (ProtocolError("garbled"), "The relay sent a reply Studio could not read: garbled"),
    ],
)
def test_user_message(error, expected):
    with translation.override("en"):
        assert user_message(error) == expected


def test_user_message_without_relay_message_uses_the_reason_phrase():
    with translation.override("en"):
        assert user_message(UnavailableError(status=503)) == (
            "The relay is unavailable: Service Unavailable"
        )


def test_every_error_class_has_its_own_code():
    classes = [
        AuthError,
        QuotaError,
        RateLimitedError,
        BadRequestError,
        UnavailableError,
        UpstreamTimeout,
        ProtocolError,
    ]
    assert [cls.code for cls in classes] == [
        "auth",
        "quota",
        "rate_limited",
        "bad_request",
        "unavailable",
        "timeout",
        "protocol",
    ]
