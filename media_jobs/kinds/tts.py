"""Text to speech through /v1/audio/speech (upstream-api.md §3.5): synchronous."""

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import JobKind, Outcome, ResultFile
from media_jobs.kinds.stt import sniff_audio
from studio.upstream import RelayClient, openai

MAX_INPUT_CHARS = 4096  # the speech models' limit

# What the relay's content type says the bytes are -> the stored file's extension.
EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/aac": "aac",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/pcm": "pcm",
    "audio/l16": "pcm",
    "audio/mp4": "m4a",
    "audio/webm": "webm",
}


class TtsForm(forms.Form):
    prompt = forms.CharField(
        label=_("Text"),
        max_length=MAX_INPUT_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("The text to read aloud, up to 4,096 characters (the model's limit)."),
    )
    model = forms.ChoiceField(
        label=_("Model"),
        choices=[("tts-1", _("tts-1 (faster)")), ("tts-1-hd", _("tts-1-hd (higher quality)"))],
    )
    voice = forms.ChoiceField(
        label=_("Voice"),
        choices=[
            (voice, voice.capitalize())
            for voice in ("alloy", "echo", "fable", "onyx", "nova", "shimmer")
        ],
    )
    response_format = forms.ChoiceField(
        label=_("Format"),
        choices=[
            ("mp3", "MP3"),
            ("opus", "Opus"),
            ("aac", "AAC"),
            ("flac", "FLAC"),
            ("wav", "WAV"),
            ("pcm", _("PCM (raw 24 kHz 16-bit samples)")),
        ],
    )
    speed = forms.FloatField(
        label=_("Speed"),
        min_value=0.25,
        max_value=4.0,
        initial=1.0,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text=_("From 0.25 to 4; 1 is the normal pace."),
    )


class TtsKind(JobKind):
    slug = "tts"
    family = "openai"
    label = _("Text to speech")
    description = _("Spoken audio from text, in six voices.")
    form_class = TtsForm

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        speed = params.get("speed")
        audio = await openai.speech(
            client,
            params.get("model") or "tts-1",
            params["prompt"],
            params.get("voice") or "alloy",
            response_format=params.get("response_format") or "mp3",
            speed=float(speed) if speed is not None else None,
        )
        mime = audio.content_type.lower()
        if mime == "application/octet-stream":
            mime = sniff_audio(audio.content[:16])  # an unlabelled body: trust only its bytes
        if not mime.startswith("audio/"):
            return Outcome(
                failure=gettext("The relay sent %(type)s instead of audio.")
                % {"type": audio.content_type or gettext("an unlabelled file")}
            )
        extension = EXTENSIONS.get(mime, "audio")
        return Outcome(
            done=True,
            files=[ResultFile(content=audio.content, mime=mime, name=f"speech.{extension}")],
        )
