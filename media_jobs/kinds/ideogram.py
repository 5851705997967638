"""Ideogram (upstream-api.md §11): generate, remix, upscale and describe, in two formats.

The relay speaks one of two Ideogram formats, chosen by staff with the family option
`ideogram_format` (`studio.upstream.ideogram.format_of`):

* "official" (§11.1, the default): synchronous, the relay answers with the result, so the job
  finishes in submit.
* "web", the relay's "reverse" group (§11.2): submit queues the work and gets a `request_id`;
  the job's upstream id is `web:<mode>:<request_id>` (`WebRef`), so it is polled with the task
  query in the web format even if the option changed meanwhile. A relay that answers a web
  submit at once, in the official shape, finishes the job in submit as the official format
  does.

Images come as short-lived links, downloaded as the job's assets; images Ideogram flags as
unsafe are never kept, only counted (`result["withheld"]`, shown on the job page), and a job
whose every image was withheld fails with that reason. Describe's result is text: the
descriptions stay in `result["descriptions"]` and the job page lists them with "Use this
prompt". Both formats end in the same `images_outcome` / `descriptions_outcome`.

Uploaded images are kept with `services.store_uploads` (as for Kling and Runway) and sent as
the multipart `image_file`.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import STILL_IMAGE_FORMATS, clean_image_upload, read_upload
from studio.upstream import BadRequestError, ProtocolError, RelayClient, ideogram

GENERATE, REMIX, UPSCALE, DESCRIBE = "generate", "remix", "upscale", "describe"
MODES = (GENERATE, REMIX, UPSCALE, DESCRIBE)
PROMPT_MODES = frozenset({GENERATE, REMIX})  # a prompt is required, and the model's options apply
IMAGE_MODES = frozenset({REMIX, UPSCALE, DESCRIBE})
MAX_PROMPT_CHARS = 4000

_IMAGE_REQUIRED = {
    REMIX: _("Upload the image to remix."),
    UPSCALE: _("Upload the image to upscale."),
    DESCRIBE: _("Upload the image to describe."),
}


def _weight_field(label: Any, help_text: Any) -> forms.IntegerField:
    low, high = ideogram.WEIGHT_RANGE
    return forms.IntegerField(
        label=label, required=False, min_value=low, max_value=high, initial=50, help_text=help_text
    )


class IdeogramForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Mode"),
        choices=[
            (GENERATE, _("Generate: images from a prompt")),
            (REMIX, _("Remix: new images from an uploaded image and a prompt")),
            (UPSCALE, _("Upscale: a larger, sharper copy of an uploaded image")),
            (DESCRIBE, _("Describe: prompts that describe an uploaded image")),
        ],
        initial=GENERATE,
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_("For Remix, Upscale and Describe. PNG, JPEG or WebP, up to 10 MB."),
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Required to generate and remix; optional to upscale (it guides the new detail). "
            "Not used to describe."
        ),
    )
    negative_prompt = forms.CharField(
        label=_("Avoid"),
        max_length=MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional, to generate and remix: what should not appear."),
    )
    model = forms.ChoiceField(
        label=_("Model"),
        choices=[
            ("V_2", "Ideogram 2.0"),
            ("V_2_TURBO", _("Ideogram 2.0 Turbo (faster)")),
            ("V_1", "Ideogram 1.0"),
            ("V_1_TURBO", _("Ideogram 1.0 Turbo (faster)")),
        ],
        initial=ideogram.DEFAULT_MODEL,
        help_text=_("To generate and remix."),
    )
    style_type = forms.ChoiceField(
        label=_("Style"),
        required=False,
        choices=[
            ("", _("The model's choice")),
            ("AUTO", _("Auto")),
            ("GENERAL", _("General")),
            ("REALISTIC", _("Realistic")),
            ("DESIGN", _("Design")),
            ("RENDER_3D", _("3D render")),
            ("ANIME", _("Anime")),
        ],
        help_text=_("Ideogram 2.0 models only."),
    )
    aspect_ratio = forms.ChoiceField(
        label=_("Shape"),
        choices=[
            ("ASPECT_1_1", _("Square 1:1")),
            ("ASPECT_16_9", _("Landscape 16:9")),
            ("ASPECT_9_16", _("Portrait 9:16")),
            ("ASPECT_4_3", _("Landscape 4:3")),
            ("ASPECT_3_4", _("Portrait 3:4")),
            ("ASPECT_3_2", _("Landscape 3:2")),
            ("ASPECT_2_3", _("Portrait 2:3")),
            ("ASPECT_16_10", _("Landscape 16:10")),
            ("ASPECT_10_16", _("Portrait 10:16")),
            ("ASPECT_3_1", _("Banner 3:1")),
            ("ASPECT_1_3", _("Tall banner 1:3")),
        ],
        initial="ASPECT_1_1",
        help_text=_("To generate and remix."),
    )
    magic_prompt_option = forms.ChoiceField(
        label=_("Magic Prompt"),
        choices=[
            ("AUTO", _("Auto: Ideogram decides whether to improve the prompt")),
            ("ON", _("On: Ideogram rewrites the prompt with more detail")),
            ("OFF", _("Off: use the prompt as written")),
        ],
        initial="AUTO",
        help_text=_("Not used to describe."),
    )
    color_palette = forms.ChoiceField(
        label=_("Colour palette"),
        required=False,
        choices=[("", _("None"))] + [(name, name.title()) for name in ideogram.COLOR_PALETTES],
        help_text=_("Optional, to generate and remix with an Ideogram 2.0 model."),
    )
    num_images = forms.IntegerField(
        label=_("Images"),
        required=False,
        min_value=1,
        max_value=ideogram.MAX_NUM_IMAGES,
        initial=1,
        help_text=_("To generate and remix: 1 to 8 images."),
    )
    image_weight = _weight_field(
        _("Image weight"),
        _("Remix: how closely the new images follow the uploaded one, 1 to 100."),
    )
    resemblance = _weight_field(
        _("Resemblance"), _("Upscale: how faithful to the original, 1 to 100.")
    )
    detail = _weight_field(_("Detail"), _("Upscale: how much new detail to add, 1 to 100."))
    seed = forms.IntegerField(
        label=_("Seed"),
        required=False,
        min_value=0,
        max_value=ideogram.MAX_SEED,
        help_text=_("Optional: the same seed and settings give the same image again."),
    )

    def clean_image(self) -> Any:
        if self.data.get(self.add_prefix("mode")) == GENERATE:
            return None  # a file left in the form is not sent to generate: nothing to check
        return clean_image_upload(self.cleaned_data.get("image"), formats=STILL_IMAGE_FORMATS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode = data.get("mode")
        if mode in IMAGE_MODES and not data.get("image") and "image" not in self.errors:
            self.add_error("image", _IMAGE_REQUIRED[mode])
        if mode in PROMPT_MODES:
            if not (data.get("prompt") or "").strip() and "prompt" not in self.errors:
                self.add_error("prompt", _("Write a prompt: it says what Ideogram should make."))
            self._check_model_options(data)
        if mode == GENERATE:
            data["image"] = None  # do not keep a file the job will not use
        if mode == DESCRIBE:
            data["prompt"] = ""  # describe sends only the image
        return data

    def _check_model_options(self, data: dict[str, Any]) -> None:
        model = data.get("model")
        if not model or ideogram.supports_style(model):
            return
        if data.get("style_type"):
            self.add_error(
                "style_type",
                _("Styles need an Ideogram 2.0 model: choose one, or leave the style empty."),
            )
        if data.get("color_palette"):
            self.add_error(
                "color_palette",
                _("Colour palettes need an Ideogram 2.0 model: choose one, or no palette."),
            )


@dataclass(frozen=True)
class WebRef:
    """A web-format job's upstream id: the mode (how its result reads) and the request id."""

    mode: str
    request_id: str

    PREFIX = ideogram.FORMAT_WEB

    def __str__(self) -> str:
        return f"{self.PREFIX}:{self.mode}:{self.request_id}"

    @classmethod
    def parse(cls, value: str) -> "WebRef":
        prefix, _sep, rest = str(value).partition(":")
        mode, _sep, request_id = rest.partition(":")
        if prefix != cls.PREFIX or mode not in MODES or not request_id:
            raise BadRequestError(f"not an Ideogram request reference: {value!r}")
        return cls(mode, request_id)


class IdeogramKind(JobKind):
    slug = "ideogram"
    family = "ideogram"
    label = _("Ideogram")
    description = _(
        "Images from a prompt, with legible text in them; remix or upscale an uploaded image, "
        "or get prompts that describe it."
    )
    form_class = IdeogramForm
    result_template = "media_jobs/results/ideogram.html"
    image_uses = (
        ImageUse(form_field="image", label=_("Remix (Ideogram)"), initial={"mode": REMIX}),
        ImageUse(form_field="image", label=_("Upscale (Ideogram)"), initial={"mode": UPSCALE}),
        ImageUse(form_field="image", label=_("Describe (Ideogram)"), initial={"mode": DESCRIBE}),
    )
    # submit(): generate and remix send the prompt with the image-request options
    # (_model_options), remix its image weight too; upscale sends the prompt, resemblance,
    # detail, Magic Prompt and seed (_upscale_options); describe sends the image alone.
    field_modes = {
        "image": (REMIX, UPSCALE, DESCRIBE),
        "prompt": (GENERATE, REMIX, UPSCALE),
        "negative_prompt": (GENERATE, REMIX),
        "model": (GENERATE, REMIX),
        "style_type": (GENERATE, REMIX),
        "aspect_ratio": (GENERATE, REMIX),
        "magic_prompt_option": (GENERATE, REMIX, UPSCALE),
        "color_palette": (GENERATE, REMIX),
        "num_images": (GENERATE, REMIX),
        "image_weight": (REMIX,),
        "resemblance": (UPSCALE,),
        "detail": (UPSCALE,),
        "seed": (GENERATE, REMIX, UPSCALE),
    }
    # Web format only (the official one finishes in submit): a web request takes seconds.
    first_poll = timedelta(seconds=2)
    poll_every = timedelta(seconds=3)
    give_up_after = timedelta(minutes=5)

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        mode = params.get("mode") or GENERATE
        if mode not in MODES:
            raise BadRequestError(f"unknown Ideogram mode {mode!r}")
        if ideogram.format_of(client) == ideogram.FORMAT_WEB:
            return await _submit_web(client, mode, params)
        if mode == GENERATE:
            result = await ideogram.generate(client, params["prompt"], **_model_options(params))
            return images_outcome(result, params)
        image = await _upload(params["image"])
        if mode == DESCRIBE:
            return descriptions_outcome(await ideogram.describe(client, image))
        if mode == REMIX:
            result = await ideogram.remix(client, image, params["prompt"], **_remix_options(params))
        else:
            result = await ideogram.upscale(client, image, **_upscale_options(params))
        return images_outcome(result, params)

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        """A web-format request, through the task query."""
        ref = WebRef.parse(upstream_id)
        task = await ideogram.web_task(client, ref.request_id)
        if task is None:
            return Outcome(failure=gettext("The relay no longer knows this Ideogram request."))
        if not task.completed:
            return Outcome(progress=task.progress)
        if ref.mode == DESCRIBE:
            return descriptions_outcome(task.descriptions)
        if not task.result.images and not task.result.withheld and task.unlinked:
            return Outcome(
                failure=ngettext(
                    "Ideogram finished but sent no link to its image.",
                    "Ideogram finished but sent no link to any of its %(count)d images.",
                    task.unlinked,
                )
                % {"count": task.unlinked}
            )
        # The prompt as typed is the request's user_prompt: a rewrite shows as revised.
        return images_outcome(task.result, {"mode": ref.mode, "prompt": task.prompt})


async def _submit_web(client: RelayClient, mode: str, params: dict[str, Any]) -> Outcome:
    """Send the job in the web format: a request to poll, or a result the relay sent at once."""
    if mode == GENERATE:
        submitted = await ideogram.web_generate(client, params["prompt"], **_model_options(params))
    else:
        image = await _upload(params["image"])
        if mode == DESCRIBE:
            submitted = await ideogram.web_describe(client, image)
        elif mode == REMIX:
            submitted = await ideogram.web_remix(
                client, image, params["prompt"], **_remix_options(params)
            )
        else:
            submitted = await ideogram.web_upscale(client, image, **_upscale_options(params))
    if submitted.request_id:
        return Outcome(upstream_id=str(WebRef(mode, submitted.request_id)), progress=0)
    if submitted.descriptions is not None:
        return descriptions_outcome(submitted.descriptions)
    if submitted.result is not None:
        return images_outcome(submitted.result, params)
    raise ProtocolError("the relay's Ideogram reply has neither a request id nor a result")


def images_outcome(result: ideogram.IdeogramResult, params: dict[str, Any]) -> Outcome:
    """The kept images as files; the prompt Ideogram used, the seeds and the withheld count
    in the result. No image to keep is a failure that says why."""
    if not result.images:
        if result.withheld:
            failure = ngettext(
                "Ideogram withheld the image: it did not pass Ideogram's safety check.",
                "Ideogram withheld all %(count)d images: they did not pass its safety check.",
                result.withheld,
            ) % {"count": result.withheld}
        else:
            failure = gettext("The relay reported success but sent no image.")
        return Outcome(failure=failure)
    typed = str(params.get("prompt") or "").strip()
    revised = next(
        (image.prompt for image in result.images if typed and image.prompt not in ("", typed)), ""
    )
    return Outcome(
        done=True,
        files=[
            ResultFile(url=image.url, name=f"image-{index}.png")
            for index, image in enumerate(result.images, start=1)
        ],
        result={
            "mode": params.get("mode") or GENERATE,
            "revised_prompt": revised,
            "seed": result.images[0].seed,
            "images": [
                {
                    "prompt": image.prompt,
                    "seed": image.seed,
                    "resolution": image.resolution,
                    "style_type": image.style_type,
                }
                for image in result.images
            ],
            "withheld": result.withheld,
        },
    )


def descriptions_outcome(descriptions: tuple[str, ...]) -> Outcome:
    if not descriptions:
        return Outcome(failure=gettext("Ideogram sent no description of the image."))
    return Outcome(done=True, result={"mode": DESCRIBE, "descriptions": list(descriptions)})


def _model_options(params: dict[str, Any]) -> dict[str, Any]:
    """The image-request fields generate and remix share."""
    model = params.get("model") or None
    styled = ideogram.supports_style(model)
    count = _number(params.get("num_images"))
    return {
        "aspect_ratio": params.get("aspect_ratio") or None,
        "model": model,
        "magic_prompt_option": params.get("magic_prompt_option") or None,
        "style_type": (params.get("style_type") or None) if styled else None,
        "negative_prompt": params.get("negative_prompt") or None,
        "seed": _number(params.get("seed")),
        "color_palette": (params.get("color_palette") or None) if styled else None,
        # Sent only when more than one is asked for: one is Ideogram's default.
        "num_images": count if count and count > 1 else None,
    }


def _remix_options(params: dict[str, Any]) -> dict[str, Any]:
    return {"image_weight": _number(params.get("image_weight")), **_model_options(params)}


def _upscale_options(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": params.get("prompt") or None,
        "resemblance": _number(params.get("resemblance")),
        "detail": _number(params.get("detail")),
        "magic_prompt_option": params.get("magic_prompt_option") or None,
        "seed": _number(params.get("seed")),
    }


def _number(value: Any) -> int | None:
    return int(value) if value is not None and value != "" else None


async def _upload(reference: dict[str, Any]) -> ideogram.ImageUpload:
    content = await sync_to_async(read_upload)(reference)
    return (
        str(reference.get("name") or "image.png"),
        content,
        str(reference.get("mime") or "image/png"),
    )
