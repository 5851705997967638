"""Suno music (upstream-api.md §6): songs from a description or your own lyrics, continued from a
moment of a clip, and the continuation joined with its original into one song. Asynchronous.

Modes of the form: generate (inspiration mode: a description; Suno writes lyrics, title and
style), custom (lyrics, title, style tags), extend (continue a clip from a second you choose)
and concat (join an extension clip with the song it continues). Finished jobs offer, per clip,
"Continue" (a child job that continues the clip from its end in the same style) and, on a job
that continued a clip, "Join into one song" (a child concat job). The result page also links
each clip to this form filled in for extend mode (`make_form` reads the link's query), to
continue from a chosen second with new lyrics.

The relay speaks one of two Suno formats (the family option `suno_format`); a job is polled in
the format, path family and model version it was submitted with, which its upstream id keeps:
`<format>:<route>:<mv>:<task_id>` (e.g. `a:v35:chirp-v3-5:<uuid>`).

Each clip's audio and cover are downloaded as the job's assets, in order: audio, cover, audio,
cover… `result["clips"]` names each clip's files by their position in the job's asset list
(`audio_index`, `cover_index`), which is how the result template pairs a player with its cover.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django import forms
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import JobKind, Outcome, ResultFile
from studio.upstream import BadRequestError, RelayClient, suno

if TYPE_CHECKING:
    from media_jobs.models import Job

GENERATE = "generate"
CUSTOM = "custom"
EXTEND = "extend"
CONCAT = "concat"
MODES = (GENERATE, CUSTOM, EXTEND, CONCAT)
# Form fields a link may fill in (`/jobs/new/suno/?mode=extend&continue_clip_id=…`).
PREFILL_FIELDS = ("mode", "title", "tags", "mv", "continue_clip_id", "continue_at")
PREFILL_MAX_CHARS = 200
MAX_CONTINUE_AT = 1200.0  # seconds; Suno songs are at most a few minutes, joined ones longer

_CLIP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_AUDIO_EXTENSIONS = ("mp3", "wav", "m4a", "ogg", "flac", "aac", "webm")
_IMAGE_EXTENSIONS = ("jpeg", "jpg", "png", "webp")


class SunoForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=[
            (GENERATE, _("Describe the song: Suno writes the lyrics, title and style")),
            (CUSTOM, _("Custom: your own lyrics, title and style")),
            (EXTEND, _("Continue a clip from a moment you choose")),
            (CONCAT, _("Join a continuation with the song it continues")),
        ],
        initial=GENERATE,
    )
    prompt = forms.CharField(
        label=_("Description or lyrics"),
        max_length=suno.MAX_LYRICS_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_(
            "Describe: what the song is about, up to 200 characters. Custom and Continue: the "
            "lyrics, with section tags such as [Verse] and [Chorus], up to 3,000 characters."
        ),
    )
    title = forms.CharField(
        label=_("Title"),
        max_length=suno.MAX_TITLE_CHARS,
        required=False,
        help_text=_("Custom and Continue; Suno picks one when you describe the song."),
    )
    tags = forms.CharField(
        label=_("Style"),
        max_length=suno.MAX_TAGS_CHARS,
        required=False,
        help_text=_(
            "Custom and Continue: style tags separated by commas, e.g. dreamy, city pop, "
            "female vocals."
        ),
    )
    make_instrumental = forms.BooleanField(label=_("Instrumental (no vocals)"), required=False)
    mv = forms.ChoiceField(
        label=_("Model"),
        choices=[(suno.MV_V30, "Suno v3"), (suno.MV_V35, "Suno v3.5")],
        initial=suno.MV_V30,
    )
    continue_clip_id = forms.CharField(
        label=_("Clip id"),
        max_length=64,
        required=False,
        help_text=_(
            "Continue: the clip to continue. Join: the continuation to join with its "
            "original. Every music job's page shows its clips' ids."
        ),
    )
    continue_at = forms.FloatField(
        label=_("Continue at (seconds)"),
        required=False,
        min_value=0.0,
        max_value=MAX_CONTINUE_AT,
        widget=forms.NumberInput(attrs={"step": "0.1"}),
        help_text=_("Continue: the moment of the clip where the new part starts."),
    )

    def clean_continue_clip_id(self) -> str:
        value = (self.cleaned_data.get("continue_clip_id") or "").strip()
        uses_clip = self.data.get(self.add_prefix("mode")) in (EXTEND, CONCAT)
        if value and uses_clip and not _CLIP_ID.match(value):
            raise forms.ValidationError(_("This is not a Suno clip id."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode = data.get("mode")
        prompt = (data.get("prompt") or "").strip()
        if mode == GENERATE:
            self._check_description(prompt)
            # Suno writes these itself in inspiration mode: nothing else is sent.
            data.update(title="", tags="", continue_clip_id="", continue_at=None)
        elif mode == CUSTOM:
            if not prompt and not data.get("make_instrumental"):
                self._error("prompt", _("Write the lyrics, or tick Instrumental."))
            elif not prompt and not (data.get("tags") or "").strip():
                self._error("tags", _("An instrumental needs a style: give a few style tags."))
            data.update(continue_clip_id="", continue_at=None)
        elif mode == EXTEND:
            if not data.get("continue_clip_id"):
                self._error("continue_clip_id", _("Give the id of the clip to continue."))
            if data.get("continue_at") is None:
                self._error("continue_at", _("Say from which second to continue the clip."))
        elif mode == CONCAT:
            if not data.get("continue_clip_id"):
                self._error(
                    "continue_clip_id", _("Give the id of the continuation to join into one song.")
                )
            data.update(prompt="", title="", tags="", make_instrumental=False, continue_at=None)
        return data

    def _check_description(self, prompt: str) -> None:
        if not prompt:
            self._error("prompt", _("Describe the song you want: Suno writes the rest."))
        elif len(prompt) > suno.MAX_DESCRIPTION_CHARS:
            self._error(
                "prompt",
                _(
                    "Keep the description to %(limit)d characters (Suno's limit); it has "
                    "%(count)d. For longer text, choose Custom and write lyrics."
                )
                % {"limit": suno.MAX_DESCRIPTION_CHARS, "count": len(prompt)},
            )

    def _error(self, field: str, message: Any) -> None:
        if field not in self.errors:
            self.add_error(field, message)


@dataclass(frozen=True)
class TaskRef:
    """Where a job's task lives: format, format a's path family, model version, task id."""

    format: str
    route: str
    mv: str
    task_id: str

    def __str__(self) -> str:
        return f"{self.format}:{self.route}:{self.mv}:{self.task_id}"

    @classmethod
    def of(cls, submission: suno.SunoSubmission, mv: str) -> "TaskRef":
        return cls(submission.format, submission.route, mv, submission.task_id)

    @classmethod
    def parse(cls, value: str) -> "TaskRef":
        parts = str(value).split(":", 3)
        if (
            len(parts) != 4
            or parts[0] not in suno.FORMATS
            or parts[1] not in (suno.ROUTE_V30, suno.ROUTE_V35, suno.ROUTE_B)
            or not parts[3]
        ):
            raise BadRequestError(f"not a Suno task reference: {value!r}")
        return cls(*parts)


def estimate_progress(task: suno.SunoTask) -> int:
    """Format b says how far it is; format a says only pending / processing, so clips that
    already stream count as more than halfway."""
    if task.progress is not None:
        return task.progress
    if task.status == suno.PENDING:
        return 0
    if any(clip.status == "streaming" for clip in task.clips):
        return 60
    return 25


def length_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _extension(url: str, allowed: tuple[str, ...], default: str) -> str:
    suffix = urlsplit(url).path.rsplit(".", 1)[-1].lower() if "." in url else ""
    return suffix if suffix in allowed else default


def results(task: suno.SunoTask, ref: TaskRef) -> tuple[list[ResultFile], dict[str, Any]]:
    """The files to keep (each clip's audio, then its cover) and the result the page shows."""
    files: list[ResultFile] = []
    clips: list[dict[str, Any]] = []
    for number, clip in enumerate(task.playable_clips, start=1):
        audio = _extension(clip.audio_url, _AUDIO_EXTENSIONS, "mp3")
        entry: dict[str, Any] = {
            "id": clip.id,
            "title": clip.title,
            "tags": clip.tags,
            "lyrics": clip.lyrics,
            "duration": clip.duration,
            "length": length_text(clip.duration),
            # The page's "continue from…" form starts at the last whole second.
            "continue_from": int(clip.duration) if clip.duration else None,
            "audio_index": len(files),
            "cover_index": None,
        }
        files.append(ResultFile(url=clip.audio_url, name=f"clip-{number}.{audio}"))
        if clip.cover_url:
            cover = _extension(clip.cover_url, _IMAGE_EXTENSIONS, "jpeg")
            entry["cover_index"] = len(files)
            files.append(ResultFile(url=clip.cover_url, name=f"cover-{number}.{cover}"))
        clips.append(entry)
    return files, {"task_id": task.task_id, "format": ref.format, "mv": ref.mv, "clips": clips}


def is_continuation(job: "Job") -> bool:
    """Whether the job continued a clip: its clips can be joined with their original."""
    mode = job.params.get("mode")
    custom_id = str(job.params.get("custom_id") or "")
    return mode == EXTEND or (mode == "action" and custom_id.startswith("continue:"))


class SunoKind(JobKind):
    slug = "suno"
    family = "suno"
    label = _("Suno music")
    description = _(
        "Two songs with cover art from a description or your own lyrics. Continue a clip, "
        "then join the parts into one song."
    )
    form_class = SunoForm
    first_poll = timedelta(seconds=10)
    poll_every = timedelta(seconds=5)
    give_up_after = timedelta(minutes=10)
    result_template = "media_jobs/results/suno.html"
    # clean() and submit(): a description (generate) or lyrics (custom, extend), none to join;
    # title and style for custom and extend; the clip for extend and concat, the moment for
    # extend. The model stays in every mode: it is part of the job's upstream id.
    field_modes = {
        "prompt": (GENERATE, CUSTOM, EXTEND),
        "title": (CUSTOM, EXTEND),
        "tags": (CUSTOM, EXTEND),
        "make_instrumental": (GENERATE, CUSTOM, EXTEND),
        "continue_clip_id": (EXTEND, CONCAT),
        "continue_at": (EXTEND,),
    }

    def make_form(
        self,
        user: Any,
        data: Any = None,
        files: Any = None,
        *,
        initial: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> forms.Form:
        """The form, filled in from the page's query where it names form fields: a clip's
        "Continue with new lyrics…" link opens it in extend mode for that clip."""
        prefill = {
            name: str(query[name])[:PREFILL_MAX_CHARS]
            for name in PREFILL_FIELDS
            if query and query.get(name)
        }
        return self.form_class(data, files, initial={**(initial or {}), **prefill})

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        mode = params.get("mode") or GENERATE
        mv = params.get("mv") or suno.MV_V30
        instrumental = bool(params.get("make_instrumental"))
        if mode == GENERATE:
            submitted = await suno.generate(
                client,
                gpt_description_prompt=params["prompt"],
                make_instrumental=instrumental,
                mv=mv,
            )
        elif mode == CUSTOM:
            submitted = await suno.generate(
                client,
                prompt=params.get("prompt") or "",
                title=params.get("title") or None,
                tags=params.get("tags") or None,
                make_instrumental=instrumental,
                mv=mv,
            )
        elif mode == EXTEND:
            submitted = await suno.extend(
                client,
                params["continue_clip_id"],
                float(params["continue_at"]),
                prompt=params.get("prompt") or "",
                title=params.get("title") or None,
                tags=params.get("tags") or None,
                make_instrumental=instrumental,
                mv=mv,
            )
        elif mode == CONCAT:
            submitted = await suno.concat(client, params["continue_clip_id"])
        elif mode == "action":
            return await _follow_up(client, params)
        else:
            raise BadRequestError(f"unknown Suno mode {mode!r}")
        return Outcome(upstream_id=str(TaskRef.of(submitted, mv)), progress=0)

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        ref = TaskRef.parse(upstream_id)
        task = await suno.fetch(client, ref.task_id, fmt=ref.format, route=ref.route)
        if task.failed:
            return Outcome(failure=task.fail_reason or gettext("Suno could not make the song."))
        if not task.succeeded:
            return Outcome(progress=estimate_progress(task))
        if not task.playable_clips:
            return Outcome(failure=gettext("The relay reported success but sent no music."))
        files, result = results(task, ref)
        return Outcome(done=True, files=files, result=result)

    def actions(self, job: "Job") -> list[dict[str, Any]]:
        """Per clip "Continue" (from its end, same style); on a continuation, "Join"."""
        if job.status != "succeeded" or not job.upstream_id:
            return []
        url = reverse("media_jobs:action", kwargs={"job_id": job.id})
        clips = [clip for clip in job.result.get("clips") or [] if clip.get("id")]
        offered = []
        for number, clip in enumerate(clips, start=1):
            title = str(clip.get("title") or "") or gettext("Untitled")
            offered.append(
                {
                    "custom_id": f"continue:{clip['id']}",
                    "label": gettext("Continue clip %(number)d") % {"number": number},
                    "title": gettext(
                        "Continue “%(title)s” from its end in the same style (a new job)"
                    )
                    % {"title": title},
                    "url": url,
                }
            )
        if is_continuation(job):
            for number, clip in enumerate(clips, start=1):
                offered.append(
                    {
                        "custom_id": f"concat:{clip['id']}",
                        "label": gettext("Join clip %(number)d into one song") % {"number": number},
                        "title": gettext(
                            "Join this continuation with the song it continues into one "
                            "full-length song (a new job)"
                        ),
                        "url": url,
                    }
                )
        return offered


async def _follow_up(client: RelayClient, params: dict[str, Any]) -> Outcome:
    """A pressed action of a finished job (`task_id` is that job's upstream id)."""
    parent = TaskRef.parse(str(params.get("task_id") or ""))
    verb, _sep, clip_id = str(params.get("custom_id") or "").partition(":")
    if verb == "concat" and clip_id:
        submitted = await suno.concat(client, clip_id, fmt=parent.format)
    elif verb == "continue" and clip_id:
        task = await suno.fetch(client, parent.task_id, fmt=parent.format, route=parent.route)
        clip = task.clip(clip_id)
        if clip is None:
            return Outcome(failure=gettext("The relay no longer knows this clip."))
        if not clip.duration:
            return Outcome(
                failure=gettext(
                    "The relay did not say how long the clip is. Continue it from the form, "
                    "from a moment you choose."
                )
            )
        submitted = await suno.extend(
            client,
            clip.id,
            clip.duration,
            title=clip.title or None,
            tags=clip.tags or None,
            mv=parent.mv,
            task_id=parent.task_id,
            fmt=parent.format,
        )
    else:
        raise BadRequestError(f"unknown Suno action {params.get('custom_id')!r}")
    return Outcome(upstream_id=str(TaskRef.of(submitted, parent.mv)), progress=0)
