"""Images from gpt-4-all style chat models through /v1/chat/completions (upstream-api.md §3.1):
synchronous. The model answers in Markdown with progress text and image links on the relay's
file host; the links expire, so they become ResultFiles that the runner downloads and guards.

The reply is streamed (the relay's proxies cut long silent requests) with a long gap allowed
between chunks, because drawing takes the model tens of seconds in one go.
"""

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import JobKind, Outcome, ResultFile
from studio.upstream import LONG_TIMEOUT, RelayClient, UpstreamError, UpstreamTimeout, openai
from studio.upstream import user_message as upstream_user_message

MODELS = [("gpt-4-all", "gpt-4-all"), ("gpt-4o-all", "gpt-4o-all")]
MAX_IMAGES = 4  # a reply linking more is not one picture request; keep the first few
REPLY_EXCERPT_CHARS = 200
# The runner takes a submit that runs longer than its grace period (6 min) for one whose
# worker died; stop well before that, however steadily the chunks keep coming.
MAX_REPLY_SECONDS = 300
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "gif")
SYSTEM_PROMPT = (
    "Draw the picture the user describes with your image tool and answer with the image. "
    "If you cannot draw it, say why."
)

# ![alt](url), ![alt](<url>) and ![alt](url "title"); http(s) only.
_MARKDOWN_IMAGE = re.compile(
    r"!\[[^\]\n]*\]\(\s*<?(?P<url>https?://[^\s<>()]+)>?(?:\s+[\"'(][^)\n]*)?\s*\)",
    re.IGNORECASE,
)
# Any http(s) URL standing alone or inside a plain link; kept only if it names an image file.
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?*_~"


def image_urls(reply: str) -> list[str]:
    """The image links of a model's Markdown reply, in order, without repeats.

    Markdown images are what the model shows; only when it shows none do bare URLs that name
    an image file (…/a.png, …/b.jpg?sig=…) count, because replies often add a download link to
    the same picture under another address, which would otherwise be fetched twice.
    """
    found = [match.group("url") for match in _MARKDOWN_IMAGE.finditer(reply)]
    if not found:
        bare = (match.group(0).rstrip(_TRAILING_PUNCTUATION) for match in _BARE_URL.finditer(reply))
        found = [url for url in bare if _extension(url) in IMAGE_EXTENSIONS]
    return list(dict.fromkeys(found))[:MAX_IMAGES]


def _extension(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def _file_extension(url: str) -> str:
    # Only a picture's own extension reaches our disk; the stored type comes from the download.
    extension = _extension(url)
    return extension if extension in IMAGE_EXTENSIONS else "png"


def reply_excerpt(reply: str) -> str:
    """The start of a reply on one line, for a message that quotes it."""
    text = " ".join(reply.split())
    if len(text) <= REPLY_EXCERPT_CHARS:
        return text
    return text[: REPLY_EXCERPT_CHARS - 1].rstrip() + "…"


class Gpt4ImageForm(forms.Form):
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Describe the picture, up to 4,000 characters, in any language. The model may "
            "answer with more than one image, or with words only if it declines."
        ),
    )
    model = forms.ChoiceField(
        label=_("Model"),
        choices=MODELS,
        initial="gpt-4-all",
        help_text=_("A chat model with an image tool. Drawing usually takes 20 to 60 seconds."),
    )


class Gpt4ImageKind(JobKind):
    slug = "gpt4-image"
    family = "openai"
    label = _("GPT-4 All image")
    description = _(
        "Pictures drawn by the gpt-4-all chat model from a text prompt; its written reply is "
        "kept with them."
    )
    form_class = Gpt4ImageForm

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        model = params.get("model") or "gpt-4-all"
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": params["prompt"]},
        ]
        parts: list[str] = []
        try:
            async with asyncio.timeout(MAX_REPLY_SECONDS):
                async for delta in openai.stream_chat(
                    client, model, messages, timeout=LONG_TIMEOUT
                ):
                    parts.append(delta.text)
        except TimeoutError:
            minutes = MAX_REPLY_SECONDS // 60
            raise UpstreamTimeout(f"the reply took longer than {minutes} minutes") from None
        except UpstreamError as error:
            if not _reached_the_model(error, parts):
                raise  # refused or unreachable: the runner retries what is transient
            # The model had the request (and it may be billed): never send it again.
            return Outcome(failure=upstream_user_message(error))
        reply = "".join(parts)
        urls = image_urls(reply)
        if not urls:
            return Outcome(failure=_no_image_message(reply))
        files = [
            ResultFile(url=url, name=f"image-{index}.{_file_extension(url)}")
            for index, url in enumerate(urls, start=1)
        ]
        return Outcome(done=True, files=files, result={"reply": reply, "model": model})


def _reached_the_model(error: UpstreamError, received: list[str]) -> bool:
    """Whether the error came inside the stream, after the relay accepted the request.

    An HTTP error status is the relay refusing it up front, and a network failure chained from
    httpx may have struck before anything was sent; anything else (an error object in the
    stream, a stream cut before `[DONE]`) came after the request was accepted.
    """
    return bool(received) or (error.status is None and error.__cause__ is None)


def _no_image_message(reply: str) -> str:
    if not reply.strip():
        return gettext("The model sent an empty reply, without an image.")
    return gettext("The model answered without an image: “%(reply)s”") % {
        "reply": reply_excerpt(reply)
    }
