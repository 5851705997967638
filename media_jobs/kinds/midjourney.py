"""Midjourney through the relay's midjourney-proxy (upstream-api.md §4): asynchronous.

Modes: imagine, describe, shorten and blend from the form; "action" (a pressed button of a
finished job: U1-U4, V1-V4, reroll, upscale variants, zoom, pan, vary) is internal and runs as
a child job of the job whose button was pressed. Vary Region and Custom Zoom need more than a
press: the page asks for a mask and/or a prompt in a dialog (media_jobs.forms), and the child's
submit answers the relay's "modal" confirmation with them (§4.1 step 5). The describe/shorten
"pick" buttons are not offered: the pages offer "Use this prompt" for them instead.
"""

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile, StrOrPromise
from media_jobs.kinds.uploads import check_image
from studio.upstream import BadRequestError, RelayClient, UpstreamError, midjourney, user_message

if TYPE_CHECKING:
    from media_jobs.models import Job

MODES = ("imagine", "describe", "shorten", "blend")

# Buttons Studio does not offer: the describe / shorten picks, which new-api relays often refuse
# (unknown_action, §4.9).
HIDDEN_BUTTON_PREFIXES = ("MJ::Job::PicReader::", "MJ::Job::PromptAnalyzer::")

# Buttons whose press opens a dialog on the page (the relay then waits for a modal confirmation
# carrying what the dialog asked for): customId prefix -> dialog name (see media_jobs.forms).
DIALOG_BUTTONS = {"MJ::Inpaint::": "vary_region", "MJ::CustomZoom::": "custom_zoom"}

# Results that are images, which Midjourney keeps a seed for (§4.11); describe and shorten are text.
SEED_ACTIONS_EXCLUDED = frozenset({"DESCRIBE", "SHORTEN"})

# Titles for buttons that carry only an emoji (or to explain a terse label).
BUTTON_TITLES: dict[str, StrOrPromise] = {
    "reroll": _("Reroll: a new grid from the same prompt"),
    "pan_left": _("Pan left"),
    "pan_right": _("Pan right"),
    "pan_up": _("Pan up"),
    "pan_down": _("Pan down"),
    "upsample": _("Upscale this image"),
    "variation": _("Variations of this image"),
    "low_variation": _("Vary (subtle)"),
    "high_variation": _("Vary (strong)"),
    "Outpaint": _("Zoom out"),
    "Inpaint": _("Vary (Region): paint the part to redraw"),
    "CustomZoom": _("Custom Zoom: zoom out by a factor you choose"),
}

_KEYCAP = re.compile(r"([1-9])\ufe0f?\u20e3")
_NUMBERED = re.compile(r"^\s*(\d{1,2})[.)、:]\s+(.+?)\s*$", re.MULTILINE)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Django's documented pattern for several files in one field: cleans to a list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        single_clean = super().clean
        if isinstance(data, list | tuple):
            return [single_clean(item, initial) for item in data if item]
        return [single_clean(data, initial)] if data else []


class MidjourneyForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=[
            ("imagine", _("Imagine: a grid of four images from a prompt")),
            ("describe", _("Describe: four prompts for an uploaded image")),
            ("shorten", _("Shorten: shorter versions of a prompt")),
            ("blend", _("Blend: mix 2 to 5 uploaded images")),
        ],
        initial="imagine",
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For Imagine and Shorten. Parameters such as --ar 16:9 go at the end."),
    )
    bot_type = forms.ChoiceField(
        label=_("Bot"),
        choices=[("MID_JOURNEY", "Midjourney"), ("NIJI_JOURNEY", "Niji")],
        initial="MID_JOURNEY",
    )
    images = MultipleFileField(
        label=_("Uploaded images"),
        required=False,
        help_text=_(
            "For Describe one image, for Blend 2 to 5; for Imagine optional reference images. "
            "PNG, JPEG, WebP or GIF, up to 10 MB each."
        ),
    )
    dimensions = forms.ChoiceField(
        label=_("Blend shape"),
        choices=[
            ("SQUARE", _("Square 1:1")),
            ("PORTRAIT", _("Portrait 2:3")),
            ("LANDSCAPE", _("Landscape 3:2")),
        ],
        initial="SQUARE",
    )

    def clean_images(self) -> list[str]:
        """Each upload checked by its content, then turned into a data URI for the relay."""
        uploads: list[UploadedFile] = self.cleaned_data.get("images") or []
        if len(uploads) > 5:
            raise forms.ValidationError(_("Upload at most five images."))
        return [check_image(upload).data_uri for upload in uploads]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode = data.get("mode")
        images = data.get("images") or []
        if "images" in self.errors:
            return data
        if mode in ("imagine", "shorten") and not (data.get("prompt") or "").strip():
            self.add_error("prompt", _("Write a prompt."))
        if mode == "describe" and len(images) != 1:
            self.add_error("images", _("Describe takes exactly one image."))
        if mode == "blend" and not 2 <= len(images) <= 5:
            self.add_error("images", _("Blend takes 2 to 5 images."))
        if mode == "shorten":
            data["images"] = []
        return data


def split_prompts(text: str) -> list[str]:
    """The suggestions of a describe / shorten result: items after keycap emojis (1️⃣ …), or
    numbered lines ("1. …"), else the whole text as one prompt."""
    marks = list(_KEYCAP.finditer(text))
    if marks:
        prompts = []
        for mark, following in zip(marks, [*marks[1:], None], strict=True):
            end = following.start() if following else len(text)
            item = text[mark.end() : end].strip().split("\n\n", 1)[0].strip()
            if item:
                prompts.append(item)
        return prompts
    numbered = [match.group(2) for match in _NUMBERED.finditer(text)]
    if numbered:
        return numbered
    return [text.strip()] if text.strip() else []


def button_title(custom_id: str) -> StrOrPromise:
    parts = custom_id.split("::")
    for part in parts[1:3]:
        if part in BUTTON_TITLES:
            return BUTTON_TITLES[part]
        if "upsample" in part:
            return BUTTON_TITLES["upsample"]
    return ""


def is_offered(custom_id: str) -> bool:
    return bool(custom_id) and not custom_id.startswith(HIDDEN_BUTTON_PREFIXES)


def dialog_for(custom_id: str) -> str:
    """The dialog a button opens ("vary_region", "custom_zoom"), or "" for a plain press."""
    return next(
        (name for prefix, name in DIALOG_BUTTONS.items() if custom_id.startswith(prefix)), ""
    )


def offers_seed(job: "Job") -> bool:
    """Whether the job's page offers "Show seed": a finished Midjourney image (§4.11)."""
    return (
        job.kind == MidjourneyKind.slug
        and job.status == "succeeded"
        and bool(job.upstream_id)
        and str(job.result.get("upstream_action") or "") not in SEED_ACTIONS_EXCLUDED
    )


class MidjourneyKind(JobKind):
    slug = "midjourney"
    family = "midjourney"
    label = _("Midjourney")
    description = _(
        "Imagine a grid of four images, describe or blend uploaded images, or shorten a prompt. "
        "Finished images offer Midjourney's buttons: upscale, vary, zoom, pan."
    )
    form_class = MidjourneyForm
    image_uses = (
        ImageUse(
            form_field="images", label=_("Describe (Midjourney)"), initial={"mode": "describe"}
        ),
        ImageUse(
            form_field="images",
            label=_("Imagine with this image as reference (Midjourney)"),
            initial={"mode": "imagine"},
        ),
    )
    # submit(): the prompt goes to imagine and shorten, the uploads to imagine (as references),
    # describe and blend (clean() drops them for shorten), the shape to blend only.
    field_modes = {
        "prompt": ("imagine", "shorten"),
        "images": ("imagine", "describe", "blend"),
        "dimensions": ("blend",),
    }
    first_poll = timedelta(seconds=5)
    poll_every = timedelta(seconds=3)
    give_up_after = timedelta(minutes=10)

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        mode = params.get("mode") or "imagine"
        bot_type = params.get("bot_type") or "MID_JOURNEY"
        images = [image for image in params.get("images") or [] if isinstance(image, str)]
        if mode == "imagine":
            submitted = await midjourney.imagine(
                client, params["prompt"], bot_type=bot_type, base64_array=images or None
            )
        elif mode == "describe":
            submitted = await midjourney.describe(client, images[0], bot_type=bot_type)
        elif mode == "shorten":
            submitted = await midjourney.shorten(client, params["prompt"], bot_type=bot_type)
        elif mode == "blend":
            submitted = await midjourney.blend(
                client,
                images,
                dimensions=params.get("dimensions") or "SQUARE",
                bot_type=bot_type,
            )
        elif mode == "action":
            return await _press(client, params)
        else:
            raise BadRequestError(f"unknown Midjourney mode {mode!r}")
        if submitted.needs_modal:
            return Outcome(upstream_id=submitted.task_id, failure=_modal_failure())
        return Outcome(upstream_id=submitted.task_id, progress=0)

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        task = await midjourney.fetch(client, upstream_id)
        if task.status in ("FAILURE", "CANCEL"):
            reason = task.fail_reason or (
                gettext("The task was cancelled on the relay.")
                if task.status == "CANCEL"
                else gettext("The task failed on the relay.")
            )
            return Outcome(failure=reason)
        if task.needs_modal:
            return Outcome(failure=_modal_failure())
        if task.status != "SUCCESS":
            return Outcome(progress=task.progress)
        return Outcome(done=True, files=_files(task), result=_result(task))

    def actions(self, job: "Job") -> list[dict[str, Any]]:
        """The buttons offered on a finished job, as the status JSON and the page show them."""
        if job.status != "succeeded":
            return []
        url = reverse("media_jobs:action", kwargs={"job_id": job.id})
        offered = []
        for button in job.result.get("buttons") or []:
            custom_id = str(button.get("custom_id") or "")
            if not is_offered(custom_id):
                continue
            label = str(button.get("label") or "")
            emoji = str(button.get("emoji") or "")
            title = str(button_title(custom_id))
            offered.append(
                {
                    "custom_id": custom_id,
                    "label": " ".join(part for part in (emoji, label) if part) or title,
                    "title": title or label,
                    "url": url,
                    "dialog": dialog_for(custom_id),
                }
            )
        return offered


async def _press(client: RelayClient, params: dict[str, Any]) -> Outcome:
    """Press a button; when the relay waits for the modal confirmation (Vary Region, Custom Zoom,
    or any button while Remix is on), send it at once with the dialog's prompt and mask."""
    submitted = await midjourney.action(client, params["task_id"], params["custom_id"])
    task_id = submitted.task_id
    try:
        needs_modal = submitted.needs_modal
        if not needs_modal and params.get("dialog"):
            # Relays that rewrite code 21 to 1 leave the task waiting in status MODAL (§4.1).
            needs_modal = (await midjourney.fetch(client, task_id)).needs_modal
        if needs_modal:
            confirmed = await midjourney.modal(
                client,
                task_id,
                prompt=str(params.get("prompt") or ""),
                mask_base64=str(params.get("mask") or ""),
            )
            task_id = confirmed.task_id or task_id
    except UpstreamError as error:
        # The button was pressed (and maybe billed): never press it again on a retry of this
        # step; the job fails with the reason and the user decides whether to try again.
        message = gettext("The relay did not take the confirmation: %(reason)s") % {
            "reason": user_message(error)
        }
        return Outcome(upstream_id=task_id, failure=message)
    return Outcome(upstream_id=task_id, progress=0)


def _modal_failure() -> str:
    return gettext(
        "The relay is waiting for a confirmation (Remix mode) that Studio cannot send for this "
        "task."
    )


def _files(task: midjourney.MJTask) -> list[ResultFile]:
    if task.action in ("DESCRIBE", "SHORTEN"):
        return []  # the result is text; describe's image is the user's own upload
    files = [ResultFile(url=task.image_url, name="grid.png")] if task.image_url else []
    if len(task.image_urls) > 1:
        files += [
            ResultFile(url=url, name=f"image-{index}.png")
            for index, url in enumerate(task.image_urls, start=1)
        ]
    return files


def _result(task: midjourney.MJTask) -> dict[str, Any]:
    prompts: list[str] = []
    if task.action in ("DESCRIBE", "SHORTEN"):
        prompts = split_prompts(task.final_prompt or task.prompt or task.description)
    return {
        "buttons": [
            {"custom_id": b.custom_id, "label": b.label, "emoji": b.emoji} for b in task.buttons
        ],
        "final_prompt": task.final_prompt,
        "prompts": prompts,
        "upstream_action": task.action,
    }
