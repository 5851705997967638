"""DALL·E 3 (and 2) through /v1/images/generations (upstream-api.md §3.3): synchronous."""

import base64
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import JobKind, Outcome, ResultFile
from studio.upstream import RelayClient, openai


class DalleForm(forms.Form):
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Describe the picture, up to 4,000 characters."),
    )
    model = forms.ChoiceField(
        label=_("Model"), choices=[("dall-e-3", "DALL·E 3"), ("dall-e-2", "DALL·E 2")]
    )
    size = forms.ChoiceField(
        label=_("Size"),
        choices=[
            ("1024x1024", _("Square 1024 x 1024")),
            ("1792x1024", _("Landscape 1792 x 1024")),
            ("1024x1792", _("Portrait 1024 x 1792")),
        ],
    )
    quality = forms.ChoiceField(
        label=_("Quality"), choices=[("standard", _("Standard")), ("hd", _("HD (finer detail)"))]
    )
    style = forms.ChoiceField(
        label=_("Style"),
        choices=[("vivid", _("Vivid")), ("natural", _("Natural"))],
    )
    n = forms.IntegerField(
        label=_("Images"),
        min_value=1,
        max_value=4,
        initial=1,
        help_text=_("DALL·E 3 makes one image per request."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("model") == "dall-e-3" and (data.get("n") or 1) > 1:
            self.add_error("n", _("DALL·E 3 makes one image per request."))
        return data


class DalleKind(JobKind):
    slug = "dalle"
    family = "openai"
    label = _("DALL·E image")
    description = _("One image from a text prompt, in three sizes.")
    form_class = DalleForm

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        images = await openai.generate_images(
            client,
            params.get("model", "dall-e-3"),
            params["prompt"],
            n=int(params.get("n") or 1),
            size=params.get("size"),
            quality=params.get("quality"),
            style=params.get("style"),
        )
        files = [
            ResultFile(url=image.url, name=f"image-{index}.png")
            if image.url
            else ResultFile(
                content=base64.b64decode(image.b64_json or ""),
                mime="image/png",
                name=f"image-{index}.png",
            )
            for index, image in enumerate(images, start=1)
        ]
        revised = next((image.revised_prompt for image in images if image.revised_prompt), "")
        return Outcome(done=True, files=files, result={"revised_prompt": revised})
