"""Stability AI, official format (upstream-api.md §12): Stable Image Ultra, Core and SD3, and
SDXL 1.0 / SD 1.6 text to image. One kind, the engine chosen with the form's `mode`.

Synchronous: the relay answers with the images themselves (base64), kept as the job's assets in
the submit. Images Stability's filter blurred (finish reason CONTENT_FILTERED) are never kept:
with several samples the others are, and the page says how many were filtered
(`result["filtered"]`); a job left without any image fails with that reason.

Ultra and SD3 also take an uploaded image (image to image, with `strength`), kept with
`services.store_uploads` as for the other kinds and sent as the multipart `image`.
"""

from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import STILL_IMAGE_FORMATS, clean_image_upload, read_upload
from studio.upstream import BadRequestError, RelayClient, stability

ULTRA, CORE, SD3, SDXL, SD16 = "ultra", "core", "sd3", "sdxl", "sd1.6"
MODES = (ULTRA, CORE, SD3, SDXL, SD16)
V2_MODES = frozenset({ULTRA, CORE, SD3})  # Stable Image, multipart
ENGINES = {SDXL: stability.SDXL_ENGINE, SD16: stability.SD16_ENGINE}  # v1, JSON
IMAGE_MODES = frozenset({ULTRA, SD3})
STYLE_MODES = frozenset({CORE, SDXL, SD16})
MAX_V1_PROMPT_CHARS = 2000
MAX_SEED = stability.MAX_SEED

_MODE_NAMES = {
    ULTRA: "Stable Image Ultra",
    CORE: "Stable Image Core",
    SD3: "Stable Diffusion 3",
    SDXL: "SDXL 1.0",
    SD16: "SD 1.6",
}
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _label(name: str) -> str:
    return name.replace("-", " ").capitalize().replace("3d", "3D")


class StabilityForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Model"),
        choices=[
            (ULTRA, _("Stable Image Ultra: the most detailed, also from an image")),
            (CORE, _("Stable Image Core: fast, with style presets")),
            (SD3, _("Stable Diffusion 3: choice of SD3 models, also from an image")),
            (SDXL, _("SDXL 1.0: several images at fixed sizes")),
            (SD16, _("SD 1.6: several images, any size from 320 to 1536")),
        ],
        initial=CORE,
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=stability.MAX_PROMPT_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Describe the picture: up to 10,000 characters (2,000 for SDXL and SD 1.6)."),
    )
    negative_prompt = forms.CharField(
        label=_("Avoid"),
        max_length=stability.MAX_PROMPT_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional: what should not appear (not with the Turbo SD3 models)."),
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
        help_text=_(
            "Optional, Ultra and SD3: start from this image instead of noise. PNG, JPEG or "
            "WebP, up to 10 MB, at least 64 pixels a side."
        ),
    )
    strength = forms.FloatField(
        label=_("Strength"),
        required=False,
        min_value=0.0,
        max_value=1.0,
        initial=0.6,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text=_("With an image: 0 keeps it as it is, 1 replaces it entirely."),
    )
    model = forms.ChoiceField(
        label=_("SD3 model"),
        choices=[(name, name) for name in stability.SD3_MODELS],
        initial=stability.SD3_MODELS[0],
        help_text=_("Stable Diffusion 3 only."),
    )
    aspect_ratio = forms.ChoiceField(
        label=_("Shape"),
        choices=[
            ("1:1", _("Square 1:1")),
            ("16:9", _("Landscape 16:9")),
            ("21:9", _("Wide 21:9")),
            ("3:2", _("Landscape 3:2")),
            ("5:4", _("Landscape 5:4")),
            ("2:3", _("Portrait 2:3")),
            ("4:5", _("Portrait 4:5")),
            ("9:16", _("Portrait 9:16")),
            ("9:21", _("Tall 9:21")),
        ],
        initial="1:1",
        help_text=_("Ultra, Core and SD3 from a prompt; from an image the shape is the image's."),
    )
    output_format = forms.ChoiceField(
        label=_("File format"),
        choices=[("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WebP")],
        initial="png",
        help_text=_("Ultra, Core and SD3 (SD3: PNG or JPEG). SDXL and SD 1.6 make PNG."),
    )
    style_preset = forms.ChoiceField(
        label=_("Style preset"),
        required=False,
        choices=[("", _("None"))] + [(name, _label(name)) for name in stability.STYLE_PRESETS],
        help_text=_("Core, SDXL and SD 1.6."),
    )
    width = forms.IntegerField(
        label=_("Width"),
        required=False,
        min_value=stability.SD16_SIDE_RANGE[0],
        max_value=stability.SD16_SIDE_RANGE[1],
        initial=1024,
        widget=forms.NumberInput(attrs={"step": stability.SIDE_STEP}),
        help_text=_(
            "SDXL and SD 1.6. SDXL takes 1024x1024, 1152x896, 896x1152, 1216x832, 832x1216, "
            "1344x768, 768x1344, 1536x640 or 640x1536; SD 1.6 any multiple of 64 from 320 "
            "to 1536."
        ),
    )
    height = forms.IntegerField(
        label=_("Height"),
        required=False,
        min_value=stability.SD16_SIDE_RANGE[0],
        max_value=stability.SD16_SIDE_RANGE[1],
        initial=1024,
        widget=forms.NumberInput(attrs={"step": stability.SIDE_STEP}),
        help_text=_("SDXL and SD 1.6."),
    )
    samples = forms.IntegerField(
        label=_("Images"),
        required=False,
        min_value=1,
        max_value=stability.MAX_SAMPLES,
        initial=1,
        help_text=_("SDXL and SD 1.6: 1 to 10 images. The others make one."),
    )
    cfg_scale = forms.FloatField(
        label=_("Prompt strength (CFG scale)"),
        required=False,
        min_value=stability.CFG_RANGE[0],
        max_value=stability.CFG_RANGE[1],
        initial=7.0,
        widget=forms.NumberInput(attrs={"step": "0.5"}),
        help_text=_("SDXL and SD 1.6: 0 to 35, how closely to follow the prompt (7 by default)."),
    )
    steps = forms.IntegerField(
        label=_("Steps"),
        required=False,
        min_value=stability.STEPS_RANGE[0],
        max_value=stability.STEPS_RANGE[1],
        initial=30,
        help_text=_("SDXL and SD 1.6: 10 to 50 diffusion steps (30 by default)."),
    )
    sampler = forms.ChoiceField(
        label=_("Sampler"),
        required=False,
        choices=[("", _("Stability's choice"))] + [(name, name) for name in stability.SAMPLERS],
        help_text=_("SDXL and SD 1.6."),
    )
    clip_guidance_preset = forms.ChoiceField(
        label=_("CLIP guidance"),
        required=False,
        choices=[("", _("None"))]
        + [(name, name) for name in stability.CLIP_GUIDANCE_PRESETS if name != "NONE"],
        help_text=_("SDXL and SD 1.6, with an ancestral sampler."),
    )
    seed = forms.IntegerField(
        label=_("Seed"),
        required=False,
        min_value=0,
        max_value=MAX_SEED,
        help_text=_("Optional: the same seed and settings give the same image again."),
    )

    def clean_image(self) -> Any:
        if self.data.get(self.add_prefix("mode")) not in IMAGE_MODES:
            return None  # a file left in the form is not sent: nothing to check
        return clean_image_upload(
            self.cleaned_data.get("image"), formats=STILL_IMAGE_FORMATS, min_side=64
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode = data.get("mode")
        if mode in V2_MODES:
            self._check_stable_image(mode, data)
        elif mode in ENGINES:
            self._check_v1(mode, data)
        if data.get("style_preset") and mode in _MODE_NAMES and mode not in STYLE_MODES:
            self.add_error(
                "style_preset",
                _("%(mode)s takes no style preset: choose None, or Core, SDXL or SD 1.6.")
                % {"mode": _MODE_NAMES[mode]},
            )
        if mode not in IMAGE_MODES:
            data["image"] = None  # do not keep a file the job will not use
        return data

    def _check_stable_image(self, mode: str, data: dict[str, Any]) -> None:
        output_format = data.get("output_format")
        if output_format and output_format not in stability.OUTPUT_FORMATS[mode]:
            self.add_error(
                "output_format",
                _("%(mode)s makes PNG or JPEG files only.") % {"mode": _MODE_NAMES[mode]},
            )
        if data.get("image") and data.get("strength") is None and "strength" not in self.errors:
            self.add_error("strength", _("Say how much of the image to change, from 0 to 1."))
        model = data.get("model")
        if mode == SD3 and model in stability.NO_NEGATIVE_MODELS and data.get("negative_prompt"):
            self.add_error(
                "negative_prompt",
                _("%(model)s takes no negative prompt: leave it empty or choose another model.")
                % {"model": model},
            )

    def _check_v1(self, mode: str, data: dict[str, Any]) -> None:
        for name in ("prompt", "negative_prompt"):
            if len(data.get(name) or "") > MAX_V1_PROMPT_CHARS and name not in self.errors:
                self.add_error(
                    name,
                    _("%(mode)s takes up to 2,000 characters here.") % {"mode": _MODE_NAMES[mode]},
                )
        width, height = data.get("width"), data.get("height")
        if width is None or height is None:
            if (width, height) != (None, None) and not {"width", "height"} & self.errors.keys():
                self.add_error("width", _("Give both the width and the height, or neither."))
            return
        if mode == SDXL and not stability.sdxl_size_allowed(width, height):
            self.add_error(
                "width",
                _(
                    "SDXL makes %(width)d x %(height)d only at these sizes: 1024x1024, "
                    "1152x896, 896x1152, 1216x832, 832x1216, 1344x768, 768x1344, 1536x640, "
                    "640x1536."
                )
                % {"width": width, "height": height},
            )
        if mode == SD16:
            for name, side in (("width", width), ("height", height)):
                if not stability.sd16_side_allowed(side):
                    self.add_error(name, _("SD 1.6 needs a multiple of 64 from 320 to 1536."))


def images_outcome(result: stability.StabilityResult, mode: str) -> Outcome:
    """The kept images as files, the seeds and the filtered count in the result; no image to
    keep is a failure that says why."""
    if not result.images:
        if result.filtered:
            failure = ngettext(
                "Stability's content filter blocked the image (CONTENT_FILTERED).",
                "Stability's content filter blocked all %(count)d images (CONTENT_FILTERED).",
                result.filtered,
            ) % {"count": result.filtered}
        elif result.errored:
            failure = gettext("Stability could not make the image (finish reason ERROR).")
        else:
            failure = gettext("The relay reported success but sent no image.")
        return Outcome(failure=failure)
    files = [
        ResultFile(
            content=image.content,
            mime=image.mime,
            name=f"image-{index}.{_EXTENSIONS.get(image.mime, 'png')}",
        )
        for index, image in enumerate(result.images, start=1)
    ]
    seeds = [image.seed for image in result.images]
    return Outcome(
        done=True,
        files=files,
        result={
            "mode": mode,
            "seed": seeds[0],
            "seeds": seeds,
            "filtered": result.filtered,
            "errored": result.errored,
        },
    )


class StabilityKind(JobKind):
    slug = "stability"
    family = "stability"
    label = _("Stability AI image")
    description = _(
        "Images from a prompt with Stable Image Ultra, Core, Stable Diffusion 3, SDXL or "
        "SD 1.6; Ultra and SD3 can also start from an uploaded image."
    )
    form_class = StabilityForm
    result_template = "media_jobs/results/stability.html"
    image_uses = (
        ImageUse(
            form_field="image",
            label=_("Stable Image Ultra from this image"),
            initial={"mode": ULTRA},
        ),
        ImageUse(form_field="image", label=_("SD3 image to image"), initial={"mode": SD3}),
    )
    # Stable Image (ultra, core, sd3; stability.generate) takes the shape and file format, an
    # image with its strength (ultra, sd3) and an SD3 model (sd3); the v1 engines (sdxl, sd1.6;
    # stability.text_to_image) take the size, count and diffusion settings; style presets go
    # to core and the v1 engines (clean() refuses one elsewhere).
    field_modes = {
        "image": (ULTRA, SD3),
        "strength": (ULTRA, SD3),
        "model": (SD3,),
        "aspect_ratio": (ULTRA, CORE, SD3),
        "output_format": (ULTRA, CORE, SD3),
        "style_preset": (CORE, SDXL, SD16),
        "width": (SDXL, SD16),
        "height": (SDXL, SD16),
        "samples": (SDXL, SD16),
        "cfg_scale": (SDXL, SD16),
        "steps": (SDXL, SD16),
        "sampler": (SDXL, SD16),
        "clip_guidance_preset": (SDXL, SD16),
    }

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        mode = params.get("mode") or CORE
        if mode in ENGINES:
            prompts = [(str(params["prompt"]), 1.0)]
            if negative := str(params.get("negative_prompt") or "").strip():
                prompts.append((negative, -1.0))
            result = await stability.text_to_image(
                client,
                ENGINES[mode],
                prompts,
                width=_int(params.get("width")),
                height=_int(params.get("height")),
                cfg_scale=_float(params.get("cfg_scale")),
                clip_guidance_preset=params.get("clip_guidance_preset") or None,
                sampler=params.get("sampler") or None,
                samples=_int(params.get("samples")),
                seed=_int(params.get("seed")),
                steps=_int(params.get("steps")),
                style_preset=params.get("style_preset") or None,
            )
            return images_outcome(result, mode)
        if mode not in V2_MODES:
            raise BadRequestError(f"unknown Stability mode {mode!r}")
        image = await _upload(params["image"]) if params.get("image") else None
        result = await stability.generate(
            client,
            mode,
            str(params["prompt"]),
            negative_prompt=params.get("negative_prompt") or None,
            aspect_ratio=params.get("aspect_ratio") or None,
            seed=_int(params.get("seed")),
            output_format=params.get("output_format") or None,
            style_preset=params.get("style_preset") or None,
            model=params.get("model") or None,
            image=image,
            strength=_float(params.get("strength")) if image else None,
        )
        return images_outcome(result, mode)


def _int(value: Any) -> int | None:
    return int(value) if value is not None and value != "" else None


def _float(value: Any) -> float | None:
    return float(value) if value is not None and value != "" else None


async def _upload(reference: dict[str, Any]) -> stability.ImageUpload:
    content = await sync_to_async(read_upload)(reference)
    return (
        str(reference.get("name") or "image.png"),
        content,
        str(reference.get("mime") or "image/png"),
    )
