"""InsightFace face swap through the relay's Midjourney proxy (upstream-api.md §5):
asynchronous. Submit both pictures as data URIs, then poll the task like a Midjourney one
(action SWAP_FACE, no buttons, the swapped picture in `imageUrl`).

The uploads are kept on our disk (services.store_uploads) rather than as data URIs in the
job's params: two pictures of up to 10 MB would otherwise ride along with every job row read.
"""

from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.core.files.storage import default_storage
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from media_jobs.kinds import ImageUse, JobKind, Outcome, ResultFile
from media_jobs.kinds.uploads import STILL_IMAGE_FORMATS, check_image, clean_image_upload
from studio.upstream import BadRequestError, RelayClient, midjourney

MISSING_IMAGES = "sour_base64_and_target_base64_is_required"  # the relay's token (§2.3), sic


def _image_field(label: Any, help_text: Any) -> forms.FileField:
    return forms.FileField(
        label=label,
        help_text=help_text,
        widget=forms.ClearableFileInput(attrs={"accept": STILL_IMAGE_FORMATS.accept}),
    )


class FaceSwapForm(forms.Form):
    source = _image_field(
        _("Face to use"),
        _(
            "A photo showing the face to put in, one face, seen from the front. "
            "PNG, JPEG or WebP, up to 10 MB."
        ),
    )
    target = _image_field(
        _("Picture to change"),
        _(
            "The picture whose face is replaced; the rest of it stays as it is. "
            "PNG, JPEG or WebP, up to 10 MB."
        ),
    )

    def clean_source(self) -> Any:
        return clean_image_upload(self.cleaned_data.get("source"), formats=STILL_IMAGE_FORMATS)

    def clean_target(self) -> Any:
        return clean_image_upload(self.cleaned_data.get("target"), formats=STILL_IMAGE_FORMATS)


class MissingUpload(Exception):
    """A stored upload the job refers to is gone (its files were deleted) or unreadable."""


def _stored_data_uri(reference: Any) -> str:
    """The stored upload as a data URI; "" when the job has none (the relay then says which
    image it needs)."""
    if not isinstance(reference, dict) or not reference.get("path"):
        return ""
    try:
        with default_storage.open(str(reference["path"]), "rb") as stored:
            return check_image(stored, formats=STILL_IMAGE_FORMATS).data_uri
    except FileNotFoundError:
        raise MissingUpload(str(reference.get("name") or "")) from None
    except forms.ValidationError as invalid:
        raise MissingUpload(str(reference.get("name") or "")) from invalid


class FaceSwapKind(JobKind):
    slug = "faceswap"
    family = "midjourney"
    label = _("Face swap")
    description = _(
        "Put the face from one photo into another picture (InsightFace). Takes about a minute."
    )
    form_class = FaceSwapForm
    image_uses = (
        ImageUse(form_field="target", label=_("Face swap: change the face in this image")),
        ImageUse(form_field="source", label=_("Face swap: use the face in this image")),
    )
    # Midjourney's timing (upstream-api.md §1.3): the swap runs on the same proxy.
    first_poll = timedelta(seconds=5)
    poll_every = timedelta(seconds=3)
    give_up_after = timedelta(minutes=10)

    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        try:
            source = await sync_to_async(_stored_data_uri)(params.get("source"))
            target = await sync_to_async(_stored_data_uri)(params.get("target"))
        except MissingUpload as missing:
            message = gettext(
                "The uploaded picture %(name)s is no longer available; upload it again."
            )
            return Outcome(failure=message % {"name": str(missing)})
        try:
            submitted = await midjourney.swap_face(client, source, target)
        except BadRequestError as error:
            if MISSING_IMAGES in error.message:
                raise BadRequestError(
                    gettext("it needs both pictures, the face and the picture to change")
                    + f" ({error.message.strip()})",
                    status=error.status,
                    relay_code=error.relay_code,
                ) from error
            raise
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
        if task.status != "SUCCESS":
            return Outcome(progress=task.progress)
        if not task.image_url:
            return Outcome(failure=gettext("The relay finished the face swap without a picture."))
        return Outcome(
            done=True,
            files=[ResultFile(url=task.image_url, name="face-swap.png")],
            result={"upstream_action": task.action},
        )
