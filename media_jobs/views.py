"""Job pages: the gallery, a form per kind, a live status page, and owner-only file downloads."""

from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    QueryDict,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from media_jobs import inputs, runner, services
from media_jobs.forms import DIALOG_FORMS, MAX_MASK_BYTES, ActionDialogForm
from media_jobs.kinds import JobKind, offered_kinds, registry
from media_jobs.kinds.midjourney import offers_seed
from media_jobs.models import Asset, Job
from media_jobs.selectors import asset_for, gallery, job_for, status_data
from studio.accounts.services import missing_key_message
from studio.http import AuthenticatedHttpRequest, login_required_json


@login_required
@require_GET
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    query = request.GET.get("q", "").strip()[:200]
    page = Paginator(gallery(request.user, kind=kind, status=status, query=query), 24).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "media_jobs/index.html",
        {
            "kinds": offered_kinds().values(),
            "all_kinds": registry().values(),
            "page": page,
            "kind": kind,
            "status": status,
            "query": query,
            "statuses": Job.Status.choices,
            "missing_key": missing_key_message(request.user),
        },
    )


@login_required
def new(request: AuthenticatedHttpRequest, kind: str) -> HttpResponse:
    job_kind = registry().get(kind)
    if job_kind is None:
        raise Http404("No such kind of job")
    if kind not in offered_kinds():
        return render(request, "media_jobs/kind_off.html", {"kind": job_kind}, status=404)
    initial: dict[str, Any] = {}
    if reuse := request.GET.get("from"):
        initial = job_for(request.user, reuse).params  # "use these settings again"
    if prompt := request.GET.get("prompt", "").strip():
        initial = {**initial, "prompt": prompt[:4000]}  # "use this prompt" (Midjourney)
    # "Use as input": another job's image fills the form's image field (media_jobs.inputs).
    chosen = inputs.chosen_input(
        request.user, job_kind, request.POST if request.method == "POST" else request.GET
    )
    files = request.FILES
    if chosen is not None:
        initial = {**initial, **chosen.use.initial}
        if request.method == "POST":
            files = inputs.files_with_input(request.FILES, chosen)
    data = _with_unused_defaults(job_kind, request.POST) if request.POST else None
    form = job_kind.make_form(request.user, data, files or None, initial=initial, query=request.GET)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.create_job(request.user, kind, form.cleaned_data)
        except services.JobRefused as refused:
            form.add_error(None, str(refused))
        else:
            return redirect("media_jobs:detail", job_id=job.id)
    return render(
        request,
        "media_jobs/new.html",
        {
            "kind": job_kind,
            "form": form,
            "chosen_input": chosen,
            "missing_key": missing_key_message(request.user),
            # For static/js/job-form.js: which rows apply to which mode (JobKind.field_modes).
            "field_modes": (
                {"field": job_kind.mode_field, "modes": job_kind.field_modes}
                if job_kind.field_modes
                else None
            ),
        },
        status=400 if form.errors else 200,
    )


def _with_unused_defaults(job_kind: JobKind, posted: QueryDict) -> QueryDict:
    """The posted form with the fields the chosen mode does not use (JobKind.field_modes)
    filled in with their defaults where they are missing: job-form.js disables them, so they
    are not sent, and a required one must still pass. The mode ignores them either way; this is
    what a page without JavaScript sends for a field left untouched."""
    mode = posted.get(job_kind.mode_field, "")
    fields = job_kind.form_class.base_fields
    data = posted.copy()
    for name, modes in job_kind.field_modes.items():
        field = fields.get(name)
        if mode in modes or name in posted or field is None or isinstance(field, forms.FileField):
            continue
        default = field.initial() if callable(field.initial) else field.initial
        if default is not None:
            data[name] = str(default)
    return data


@login_required
@require_GET
def detail(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    return _render_detail(request, job_for(request.user, job_id))


def _render_detail(
    request: AuthenticatedHttpRequest,
    job: Job,
    *,
    bound: dict[str, ActionDialogForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The job page; `bound` holds a dialog's form that was sent back with errors (by custom
    id), so that dialog opens again with the message and what was typed."""
    data = status_data(job)
    image = next((asset for asset in data["assets"] if asset["mime"].startswith("image/")), None)
    bound = bound or {}
    dialogs = [
        {
            "action": action,
            "form": bound.get(action["custom_id"]) or _dialog_form(job, action["dialog"]),
            "image": image,
        }
        for action in data["actions"]
        if action.get("dialog") in DIALOG_FORMS
    ]
    return render(
        request,
        "media_jobs/detail.html",
        {
            "job": job,
            "kind": registry().get(job.kind),
            "status": data,
            "dialogs": dialogs,
            "mask_max_chars": _mask_max_chars(),
            "seed_offered": offers_seed(job),
            "input_menus": _input_menus(job),
        },
        status=status,
    )


def _input_menus(job: Job) -> list[tuple[Asset, list[inputs.InputLink]]]:
    """For each image the job made, the kinds it can be sent to ("Use as input")."""
    if job.status != Job.Status.SUCCEEDED:
        return []
    kinds = offered_kinds()
    menus = [(asset, inputs.links_for(asset, kinds)) for asset in job.assets.all()]
    return [(asset, links) for asset, links in menus if links]


def _dialog_form(job: Job, dialog: str, data: Any = None) -> ActionDialogForm:
    image = job.assets.filter(mime__startswith="image/", width__isnull=False).first()
    size = (image.width, image.height) if image and image.width and image.height else None
    return DIALOG_FORMS[dialog](data, job=job, image_size=size)


def _mask_max_chars() -> int:
    # The mask travels as a form field, so Django's cap on a request's form data applies too.
    upload_cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or MAX_MASK_BYTES * 2
    return min(MAX_MASK_BYTES * 4 // 3, upload_cap - 64 * 1024)


@login_required_json
@require_GET
def status_json(request: AuthenticatedHttpRequest, job_id: str) -> JsonResponse:
    return JsonResponse(status_data(job_for(request.user, job_id)))


@login_required
@require_POST
def cancel(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    job = job_for(request.user, job_id)
    if runner.cancel(job):
        messages.info(request, _("The job was cancelled."))
    return redirect("media_jobs:detail", job_id=job.id)


@login_required
@require_POST
def retry(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    job = job_for(request.user, job_id)
    try:
        again = services.retry_job(job)
    except services.JobRefused as refused:
        messages.error(request, str(refused))
        return redirect("media_jobs:detail", job_id=job.id)
    return redirect("media_jobs:detail", job_id=again.id)


@login_required
@require_POST
def action(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    """Press one of a finished job's buttons (Midjourney U1, V2, zoom...): a child job. Buttons
    with a dialog (Vary Region, Custom Zoom) bring its fields, checked before the child exists."""
    job = job_for(request.user, job_id)
    kind = registry().get(job.kind)
    custom_id = request.POST.get("custom_id", "")
    offered = {item["custom_id"]: item for item in (kind.actions(job) if kind else [])}
    if custom_id not in offered:
        return HttpResponseBadRequest(_("This job offers no such action."))
    params = {
        "mode": "action",
        "task_id": job.upstream_id,
        "custom_id": custom_id,
        "label": offered[custom_id]["label"],
        "prompt": job.prompt,
    }
    if dialog := offered[custom_id].get("dialog"):
        form = _dialog_form(job, dialog, request.POST)
        if not form.is_valid():
            return _render_detail(request, job, bound={custom_id: form}, status=400)
        params.update(form.job_params(), dialog=dialog)
    try:
        child = services.create_job(request.user, job.kind, params, parent=job)
    except services.JobRefused as refused:
        messages.error(request, str(refused))
        return redirect("media_jobs:detail", job_id=job.id)
    return redirect("media_jobs:detail", job_id=child.id)


@login_required
@require_POST
async def seed(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    """Fetch and keep the seed of a finished Midjourney image, then show it on the job's page."""
    user = await request.auser()
    assert isinstance(user, User)  # login_required let only signed-in users through
    job = await sync_to_async(job_for)(user, job_id)
    if not offers_seed(job):
        return HttpResponseBadRequest(_("This job has no seed to show."))
    try:
        await services.fetch_image_seed(user, job)
    except services.JobRefused as refused:
        messages.error(request, str(refused))
    return redirect("media_jobs:detail", job_id=job.id)


@login_required
def delete(request: AuthenticatedHttpRequest, job_id: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes the job and its files."""
    job = job_for(request.user, job_id)
    if request.method == "POST":
        services.delete_job(job)
        messages.success(request, _("The job and its files were deleted."))
        return redirect("media_jobs:index")
    return render(request, "media_jobs/delete.html", {"job": job})


def _serve(
    request: AuthenticatedHttpRequest, asset_id: str, *, thumbnail: bool
) -> HttpResponseBase:
    """The owner's file: streamed by this process, or, with ASSETS_X_ACCEL_REDIRECT set, handed
    to nginx (an empty answer naming the file under the proxy's internal location), which
    keeps the Content-Type, Content-Disposition and Cache-Control given here."""
    asset = asset_for(request.user, asset_id)
    stored = asset.thumbnail if thumbnail else asset.file
    if not stored:
        raise Http404("No such file")
    download = request.GET.get("download") == "1"
    filename = f"{asset.job.kind}-{asset.id.hex[:8]}.{(stored.name or '').rsplit('.', 1)[-1]}"
    content_type = "image/webp" if thumbnail else _with_charset(asset.mime)
    response: HttpResponseBase
    if prefix := settings.ASSETS_X_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = f"{prefix.rstrip('/')}/{quote(stored.name or '')}"
        response["Content-Disposition"] = content_disposition_header(download, filename) or ""
    else:
        response = FileResponse(
            stored.open("rb"), as_attachment=download, filename=filename, content_type=content_type
        )
    response["Cache-Control"] = "private, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    # Served from our origin: never let a stored file run as a page. An SVG (sanitised when it
    # was kept, media_jobs.svg) opened on its own may use its inline styles, nothing else.
    svg = not thumbnail and asset.mime == "image/svg+xml"
    response["Content-Security-Policy"] = SVG_ASSET_CSP if svg else "default-src 'none'; sandbox"
    return response


SVG_ASSET_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _with_charset(mime: str) -> str:
    # Transcripts are stored as UTF-8; say so, or a browser may garble Chinese text.
    return f"{mime}; charset=utf-8" if mime.startswith("text/") else mime


@login_required
@require_GET
def asset(request: AuthenticatedHttpRequest, asset_id: str) -> HttpResponseBase:
    return _serve(request, asset_id, thumbnail=False)


@login_required
@require_GET
def thumbnail(request: AuthenticatedHttpRequest, asset_id: str) -> HttpResponseBase:
    return _serve(request, asset_id, thumbnail=True)
