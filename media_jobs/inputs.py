"""Use as input: an image one job made, sent to another kind that takes an image (upscale,
remove background, vectorize, image to video, face swap, describe…) in one click.

A kind declares how it takes an image (`JobKind.image_uses`); the job page links every raster
image it shows to each of those uses; the link opens the target's form with the image in place
(`?input=<asset id>&use=<index>`). When the form is sent without a file of its own, the asset
is handed to the form as if it had been uploaded, so it goes through the same content checks.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.datastructures import MultiValueDict

from media_jobs.kinds import ImageUse, JobKind, StrOrPromise, offered_kinds
from media_jobs.models import Asset
from media_jobs.selectors import asset_for

# What can be sent on: the still formats every image-taking kind accepts (not SVG or GIF).
INPUT_MIMES = frozenset({"image/png", "image/jpeg", "image/webp"})


@dataclass(frozen=True)
class InputLink:
    label: StrOrPromise
    kind_label: StrOrPromise
    url: str


def links_for(asset: Asset, kinds: dict[str, JobKind] | None = None) -> list[InputLink]:
    """Every way the asset can be used as input by the kinds users may start now."""
    if asset.mime not in INPUT_MIMES:
        return []
    links = []
    for slug, kind in (kinds if kinds is not None else offered_kinds()).items():
        for index, use in enumerate(kind.image_uses):
            query = urlencode({"input": str(asset.id), "use": index})
            url = f"{reverse('media_jobs:new', kwargs={'kind': slug})}?{query}"
            links.append(InputLink(label=use.label, kind_label=kind.label, url=url))
    return links


@dataclass(frozen=True)
class ChosenInput:
    asset: Asset
    use: ImageUse
    index: int


def chosen_input(user: User, kind: JobKind, data: Any) -> ChosenInput | None:
    """The image and use named by `data` (GET or POST: `input`, `use`), the user's own asset or
    a 404; None when the request names none or a use the kind does not have."""
    asset_id = (data.get("input") or "").strip()
    raw_index = (data.get("use") or "").strip()
    if not asset_id or not raw_index.isdigit():
        return None
    index = int(raw_index)
    if index >= len(kind.image_uses):
        return None
    asset = asset_for(user, asset_id)  # Http404 for another user's file
    if asset.mime not in INPUT_MIMES:
        return None
    return ChosenInput(asset=asset, use=kind.image_uses[index], index=index)


def files_with_input(files: MultiValueDict[str, Any], chosen: ChosenInput) -> MultiValueDict:
    """The request's files, with the chosen image in its field unless the user uploaded one."""
    merged = files.copy()
    if not merged.get(chosen.use.form_field):
        with chosen.asset.file.open("rb") as handle:
            content = handle.read()
        name = f"{chosen.asset.job_id}{_suffix(chosen.asset.mime)}"
        merged[chosen.use.form_field] = SimpleUploadedFile(name, content, chosen.asset.mime)
    return merged


def _suffix(mime: str) -> str:
    return {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}.get(mime, "")
