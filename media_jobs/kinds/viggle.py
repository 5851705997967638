"""Viggle dances (upstream-api.md §15, grade C): a character picture set in motion.

Three modes: Mix (the character takes the dancer's place in a motion video or an official
template), Multi (two or three characters dance together) and Move (the picture itself moves,
its own scene kept). The motion is an official template, chosen from the relay's list shown on
the form, or a video the user uploads.

Submit is one step, as the runner calls it once: upload the character image(s), upload the
motion video for the first character if there is one, then create the render. A crash between
the uploads and the render leaves only unused assets in the relay's library: sending the job
again (Retry) uploads them again, which is harmless and costs no credits. Poll asks the task by
its id until Viggle has the video; the video and its cover are kept as the job's files.

The form shows the account's remaining Viggle credits and the template list, both asked from
the relay when the page is drawn (not when a valid form is sent) through the service layer;
when the relay cannot be reached the form says so and a motion video can still be uploaded.
"""

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlencode, urlsplit

from asgiref.sync import async_to_sync, sync_to_async
from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.stt import sniff_audio
from media_jobs.kinds.uploads import STILL_IMAGE_FORMATS, clean_image_upload, read_upload
from studio.accounts.services import MissingCredential, relay_credentials_for
from studio.upstream import RelayClient, UnavailableError, viggle

MAX_VIDEO_BYTES = 50 * 1024 * 1024
VIDEO_ACCEPT = "video/mp4,video/quicktime,video/webm"
TEMPLATE = "template"
VIDEO = "video"
CHARACTER_FIELDS = ("image", "image_2", "image_3")
# A typical render takes a couple of minutes; the estimate approaches 95 % and never claims more.
TYPICAL_RENDER_SECONDS = 120.0
_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def sniff_video(head: bytes) -> str:
    """The media type of a motion video judged by its first bytes (MP4, QuickTime MOV or
    WebM), or "" for anything else. Built on the audio check of speech to text, which knows
    the same containers; QuickTime files without an `ftyp` box start with another atom."""
    container = sniff_audio(head)
    if container == "audio/mp4":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if container == "audio/webm":
        # EBML is also Matroska (.mkv); WebM names itself in the header's DocType.
        return "video/webm" if b"webm" in head[:64] else ""
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video/quicktime"
    return ""


def clean_video_upload(value: Any, *, max_bytes: int = MAX_VIDEO_BYTES) -> Any:
    """A motion video upload checked by its content (type and size), labelled with its real
    media type; anything else (nothing, a stored reference) passes unchanged."""
    if not isinstance(value, UploadedFile):
        return value
    name = value.name or ""
    if (value.size or 0) > max_bytes:
        raise forms.ValidationError(
            gettext("%(name)s is %(size)s; the limit is %(limit)s.")
            % {
                "name": name,
                "size": filesizeformat(value.size or 0),
                "limit": filesizeformat(max_bytes),
            }
        )
    value.seek(0)
    head = value.read(64)
    value.seek(0)
    mime = sniff_video(head)
    if not mime:
        raise forms.ValidationError(
            gettext("%(name)s is not a video we recognise: use MP4, MOV or WebM.") % {"name": name}
        )
    value.content_type = mime
    return value


# --- what the relay offers, for the form --------------------------------------------------


@dataclass(frozen=True)
class TagLink:
    name: str
    url: str
    current: bool


class FormCatalog:
    """The user's credits and the relay's templates for one form page, asked from the relay on
    first use (when the page is drawn) and kept for the rest of it. `query` is the page's GET
    parameters: `tag` and `page` choose the templates shown; the others are kept in links."""

    def __init__(self, user: Any, query: Mapping[str, str] | None = None) -> None:
        self.user = user
        self.query = {key: str(value) for key, value in (query or {}).items()}
        self.tag = self.query.get("tag", "").strip()[:64]
        page = self.query.get("page", "")
        self.page = max(1, min(int(page), 1000)) if page.isdigit() else 1

    @cached_property
    def loaded(self) -> viggle.ViggleCatalog:
        try:
            credentials = relay_credentials_for(self.user)
        except MissingCredential as missing:
            return viggle.ViggleCatalog(credits_error=str(missing), templates_error=str(missing))

        async def load() -> viggle.ViggleCatalog:
            async with viggle.own_connection(credentials) as client:
                return await viggle.load_catalog(client, tag_id=self.tag, page=self.page)

        return async_to_sync(load)()

    def link(self, **changes: Any) -> str:
        """This page's address with `changes` applied to its query (None drops a parameter)."""
        query = {key: value for key, value in self.query.items() if key not in changes}
        query.update({key: str(value) for key, value in changes.items() if value is not None})
        return f"?{urlencode(query)}" if query else "?"

    def tag_links(self) -> list[TagLink]:
        links = [TagLink(gettext("All"), self.link(tag=None, page=None), not self.tag)]
        for tag in self.loaded.tags:
            links.append(TagLink(tag.name, self.link(tag=tag.id, page=None), tag.id == self.tag))
        return links

    def credits_text(self) -> str:
        catalog = self.loaded
        if catalog.credits is not None:
            return gettext("Your Viggle credits: %(credits)s left.") % {
                "credits": catalog.credits.display
            }
        if catalog.credits_error:
            return gettext("Your Viggle credits could not be read: %(reason)s") % {
                "reason": catalog.credits_error
            }
        return ""


def _safe_url(url: str) -> str:
    """Only http(s) links from the relay's answers reach a page."""
    return url if urlsplit(url).scheme in ("http", "https") else ""


class TemplatePicker(forms.Widget):
    """The relay's official templates as radio buttons (Mix and Move use the Mix list, Multi
    its own), with the tag filter and page links; the relay's error when it could not list them.
    The account's credits head it. Everything is asked from the relay when it is drawn, so a
    valid form, which is never drawn, costs no relay call."""

    template_name = "media_jobs/viggle_templates.html"
    catalog: FormCatalog | None = None

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        chosen = str(value or "")
        catalog = self.catalog
        loaded = catalog.loaded if catalog is not None else None
        groups: list[dict[str, Any]] = []
        listed: set[str] = set()
        for mode, label in (
            (viggle.MIX, gettext("Mix and Move templates")),
            (viggle.MULTI, gettext("Multi templates")),
        ):
            if loaded is None or mode not in loaded.templates:
                continue
            items = [
                {
                    "template": template,
                    "preview": _safe_url(template.preview_url),
                    "cover": _safe_url(template.cover_url),
                }
                for template in loaded.templates[mode]
            ]
            listed.update(template.id for template in loaded.templates[mode])
            groups.append({"mode": mode, "label": label, "items": items})
        context: dict[str, Any] = {
            "name": name,
            "id": (attrs or {}).get("id") or f"id_{name}",
            "chosen": chosen,
            "chosen_unlisted": chosen if chosen and chosen not in listed else "",
            "groups": groups,
            "catalog": loaded,
            "credits": catalog.credits_text() if catalog is not None else "",
        }
        if catalog is not None and loaded is not None:
            full_page = any(len(group["items"]) >= viggle.PAGE_SIZE for group in groups)
            context["tag_links"] = catalog.tag_links() if loaded.tags else []
            context["more_link"] = catalog.link(page=catalog.page + 1) if full_page else ""
            if catalog.page > 1:
                context["previous_link"] = catalog.link(
                    page=catalog.page - 1 if catalog.page > 2 else None
                )
        return SafeString(render_to_string(self.template_name, context))

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name)


class ViggleForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=[
            (viggle.MIX, _("Mix: one character")),
            (viggle.MULTI, _("Multi: two or three characters")),
            (viggle.MOVE, _("Move: the picture itself moves")),
        ],
        initial=viggle.MIX,
        help_text=_(
            "Mix puts your character in the dancer's place; Multi has several characters "
            "dance together; Move sets the picture itself in motion, its own scene kept."
        ),
    )
    image = forms.FileField(
        label=_("Character"),
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_(
            "A clear full-body picture of one person. PNG, JPEG or WebP, up to 10 MB. "
            "For Multi, the first character."
        ),
        error_messages={"required": _("Upload the picture of the character.")},
    )
    image_2 = forms.FileField(
        label=_("Second character"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_("Multi only, required there."),
    )
    image_3 = forms.FileField(
        label=_("Third character"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_("Multi only, optional."),
    )
    source = forms.ChoiceField(
        label=_("Motion from"),
        choices=[
            (TEMPLATE, _("A template from the list below")),
            (VIDEO, _("My own video")),
        ],
        initial=TEMPLATE,
    )
    templateID = forms.CharField(  # the relay's name
        label=_("Template"),
        required=False,
        max_length=64,
        widget=TemplatePicker,
        help_text=_("Multi takes a Multi template; Mix and Move take the others."),
    )
    video = forms.FileField(
        label=_("Motion video"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": VIDEO_ACCEPT}),
        help_text=_(
            "When the motion comes from your video: one person dancing or moving, "
            "MP4, MOV or WebM, up to 50 MB."
        ),
    )
    bgMode = forms.TypedChoiceField(  # the relay's name
        label=_("Background"),
        coerce=int,
        choices=[
            (2, _("The motion video's background")),
            (3, _("The character picture's background")),
            (0, _("White")),
            (1, _("Green screen")),
        ],
        initial=2,
        help_text=_("Mix and Multi; Move always keeps the picture's own scene."),
    )
    modelInfoID = forms.TypedChoiceField(  # the relay's name
        label=_("Model"),
        coerce=int,
        choices=[
            (3, _("V2 Turbo: faster")),
            (2, _("V2")),
            (4, _("Newest model (4)")),
        ],
        initial=3,
    )
    watermark = forms.BooleanField(
        label=_("Viggle watermark"),
        required=False,
        initial=False,
        help_text=_("Leave it off for a clean video, if the account allows it."),
    )

    def __init__(self, *args: Any, catalog: FormCatalog | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        picker = self.fields["templateID"].widget
        assert isinstance(picker, TemplatePicker)
        picker.catalog = catalog  # the form's own copy of the widget

    def clean_image(self) -> Any:
        return clean_image_upload(self.cleaned_data.get("image"), formats=STILL_IMAGE_FORMATS)

    def clean_image_2(self) -> Any:
        return self._extra_character("image_2")

    def clean_image_3(self) -> Any:
        return self._extra_character("image_3")

    def _extra_character(self, name: str) -> Any:
        if self.data.get(self.add_prefix("mode")) != viggle.MULTI:
            return None  # a file left in the form is not sent by Mix or Move: nothing to check
        return clean_image_upload(self.cleaned_data.get(name), formats=STILL_IMAGE_FORMATS)

    def clean_video(self) -> Any:
        if self.data.get(self.add_prefix("source")) != VIDEO:
            return None
        return clean_video_upload(self.cleaned_data.get("video"))

    def clean_templateID(self) -> str:
        value = (self.cleaned_data.get("templateID") or "").strip()
        if self.data.get(self.add_prefix("source")) != TEMPLATE:
            return ""
        if value and not _TEMPLATE_ID.match(value):
            raise forms.ValidationError(_("This is not a template of the list."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode, source = data.get("mode"), data.get("source")
        if mode == viggle.MULTI:
            if not data.get("image_2") and "image_2" not in self.errors:
                self.add_error(
                    "image_2", _("Multi needs at least two characters: add the second here.")
                )
            if data.get("image_3") and not data.get("image_2") and "image_2" not in self.errors:
                self.add_error("image_2", _("Fill the second character before the third."))
        else:
            data["image_2"] = data["image_3"] = None
        if source == TEMPLATE:
            if not data.get("templateID") and "templateID" not in self.errors:
                self.add_error(
                    "templateID", _("Choose a template, or upload a motion video instead.")
                )
            data["video"] = None
        elif source == VIDEO:
            if not data.get("video") and "video" not in self.errors:
                self.add_error("video", _("Upload the motion video, or choose a template."))
            data["templateID"] = ""
        return data


# --- the kind -----------------------------------------------------------------------------


def estimate_progress(task: viggle.ViggleTask, now: float | None = None) -> int:
    """A percentage for the progress bar. Viggle sends none (a relay that does is believed):
    a rendering task's age stands in, approaching 95 % over a typical render."""
    if task.progress is not None:
        return task.progress
    if not task.created_at:
        return 10
    age = max(0.0, (time.time() if now is None else now) - task.created_at)
    return max(5, min(95, round(95 * (1 - math.exp(-age / TYPICAL_RENDER_SECONDS)))))


class ViggleKind(JobKind):
    slug = "viggle"
    family = "viggle"
    label = _("Viggle dance")
    description = _(
        "A character picture set in motion: dancing in its place in a template or your video "
        "(Mix), with friends (Multi), or the picture itself moving (Move)."
    )
    form_class = ViggleForm
    first_poll = timedelta(seconds=10)
    poll_every = timedelta(seconds=6)
    give_up_after = timedelta(minutes=20)
    image_uses = (
        ImageUse(
            form_field="image", label=_("Viggle dance from this image"), initial={"mode": "mix"}
        ),
    )
    # submit() uploads the extra characters for Multi only; viggle.task_body sends no
    # background for Move. (The template / video choice is the form's other axis, `source`.)
    field_modes = {
        "image_2": (viggle.MULTI,),
        "image_3": (viggle.MULTI,),
        "bgMode": (viggle.MIX, viggle.MULTI),
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
        initial = dict(initial or {})
        mode = (query or {}).get("mode", "")
        if mode in viggle.MODES and "mode" not in initial:
            initial["mode"] = mode  # a tag link keeps the mode chosen
        return ViggleForm(data, files, initial=initial, catalog=FormCatalog(user, query))

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        mode = params.get("mode") or viggle.MIX
        fields = CHARACTER_FIELDS if mode == viggle.MULTI else CHARACTER_FIELDS[:1]
        image_ids = []
        for reference in (params[name] for name in fields if params.get(name)):
            content = await sync_to_async(read_upload)(reference)
            asset = await viggle.upload_image(
                client,
                reference.get("name") or "character.png",
                content,
                reference.get("mime") or "image/png",
            )
            image_ids.append(asset.id)
        video_id = ""
        if params.get("source") == VIDEO and params.get("video"):
            reference = params["video"]
            content = await sync_to_async(read_upload)(reference)
            video = await viggle.upload_video(
                client,
                image_ids[0],
                reference.get("name") or "motion.mp4",
                content,
                reference.get("mime") or "video/mp4",
            )
            video_id = video.id
        submitted = await viggle.create_task(
            client,
            mode,
            image_ids,
            video_id=video_id,
            template_id="" if video_id else str(params.get("templateID") or ""),
            bg_mode=2 if params.get("bgMode") is None else int(params["bgMode"]),
            model_info_id=int(params.get("modelInfoID") or 3),
            watermark=bool(params.get("watermark")),
        )
        return Outcome(upstream_id=submitted.task_id, progress=0)

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        task = await viggle.get_task(client, upstream_id)
        if task is None:
            # Retried by the runner a few times: a relay may list a new task a moment late.
            raise UnavailableError(
                gettext("the relay does not list the Viggle task %(id)s") % {"id": upstream_id}
            )
        if task.failed:
            return Outcome(failure=task.failure or gettext("Viggle could not make the video."))
        if not task.finished:
            return Outcome(progress=estimate_progress(task))
        if not task.result:
            return Outcome(failure=gettext("The relay reported success but sent no video."))
        files = [ResultFile(url=task.result, name="viggle.mp4")]
        if task.result_cover:
            files.append(ResultFile(url=task.result_cover, name="cover.png"))
        return Outcome(
            done=True,
            files=files,
            result={"task_id": task.task_id, "video_duration": task.video_duration},
        )
