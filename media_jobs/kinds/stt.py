"""Speech to text through /v1/audio/transcriptions and /v1/audio/translations
(upstream-api.md §3.6-3.7): synchronous; the transcript is kept as a file and as job.result."""

import re
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import read_upload
from studio.upstream import RelayClient, openai

MAX_AUDIO_BYTES = 25 * 1024 * 1024  # the relay's (and Whisper's) upload limit

# response_format -> (mime of the kept file, its extension)
TRANSCRIPT_FILES = {
    "json": ("application/json", "json"),
    "verbose_json": ("application/json", "json"),
    "text": ("text/plain", "txt"),
    "srt": ("application/x-subrip", "srt"),
    "vtt": ("text/vtt", "vtt"),
}


def sniff_audio(head: bytes) -> str:
    """The media type of an audio/video container judged by its first bytes, or "" when the
    bytes are not one we know (the name and the browser's claimed type are not trusted)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm"
    return ""


class SttForm(forms.Form):
    audio = forms.FileField(
        label=_("Audio file"),
        help_text=_("WAV, MP3, OGG, FLAC, M4A/MP4 or WebM, up to 25 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": "audio/*,video/mp4,video/webm"}),
    )
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=[
            ("transcribe", _("Transcribe in the spoken language")),
            ("translate", _("Translate into English")),
        ],
    )
    language = forms.CharField(
        label=_("Language"),
        required=False,
        max_length=2,
        help_text=_("Optional, for transcription: the spoken language as two letters (en, zh…)."),
    )
    prompt = forms.CharField(
        label=_("Hint"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional: names or words the audio contains, to spell them right."),
    )
    response_format = forms.ChoiceField(
        label=_("Format"),
        initial="json",
        choices=[
            ("json", _("Plain transcript")),
            ("verbose_json", _("Transcript with segments (JSON)")),
            ("text", _("Text file")),
            ("srt", _("SubRip subtitles (SRT)")),
            ("vtt", _("WebVTT subtitles")),
        ],
    )

    def clean_audio(self) -> Any:
        audio = self.cleaned_data.get("audio")
        if not isinstance(audio, UploadedFile):
            return audio  # "use these settings again" keeps the stored reference
        if (audio.size or 0) > MAX_AUDIO_BYTES:
            raise forms.ValidationError(
                _("The file is %(size)s; the limit is %(limit)s.")
                % {
                    "size": filesizeformat(audio.size or 0),
                    "limit": filesizeformat(MAX_AUDIO_BYTES),
                }
            )
        audio.seek(0)
        head = audio.read(16)
        audio.seek(0)
        mime = sniff_audio(head)
        if not mime:
            raise forms.ValidationError(
                _("This file is not audio we recognise: use WAV, MP3, OGG, FLAC, M4A or WebM.")
            )
        audio.content_type = mime  # what the bytes are, not what the browser claimed
        return audio

    def clean_language(self) -> str:
        language = (self.cleaned_data.get("language") or "").strip().lower()
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise forms.ValidationError(_("Use the two-letter ISO 639-1 code, such as en or zh."))
        return language

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "translate" and data.get("language"):
            self.add_error(
                "language", _("Translation always gives English: leave the language empty.")
            )
        return data


class SttKind(JobKind):
    slug = "stt"
    family = "openai"
    label = _("Speech to text")
    description = _("A transcript or English translation of an audio file, or its subtitles.")
    form_class = SttForm
    # Only transcription takes the spoken language (clean() refuses one to translate).
    field_modes = {"language": ("transcribe",)}

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        upload = params["audio"]
        content = await sync_to_async(read_upload)(upload)
        response_format = params.get("response_format") or "json"
        upload_args = (upload.get("name") or "audio", content, upload.get("mime") or "audio/wav")
        if params.get("mode") == "translate":
            result = await openai.translate(
                client,
                *upload_args,
                prompt=params.get("prompt") or None,
                response_format=response_format,
            )
        else:
            result = await openai.transcribe(
                client,
                *upload_args,
                language=params.get("language") or None,
                prompt=params.get("prompt") or None,
                response_format=response_format,
            )
        mime, extension = TRANSCRIPT_FILES.get(response_format, ("text/plain", "txt"))
        file = ResultFile(
            content=result.raw.encode("utf-8"), mime=mime, name=f"transcript.{extension}"
        )
        return Outcome(
            done=True,
            files=[file] if result.raw else [],
            result={"text": result.text, "language": result.language, "duration": result.duration},
        )
