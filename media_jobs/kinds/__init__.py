"""Job kinds: one module per relay family, each a `JobKind` with its form, submit, poll and
how its results become files. The registry maps the URL slug (ARCHITECTURE.md §3) to the kind."""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from django import forms
from django.utils.functional import Promise

from studio.upstream import RelayClient

type StrOrPromise = str | Promise  # a plain or lazily translated string


@dataclass(frozen=True)
class ResultFile:
    """A result to keep: a URL to download (relay URLs expire) or bytes already in hand."""

    url: str = ""
    content: bytes = b""
    mime: str = ""
    name: str = "result"


@dataclass(frozen=True)
class ImageUse:
    """One way a kind can take an image made by another job ("Use as input"): the form's file
    field that receives it, and the form values that go with it (e.g. {"mode": "vectorize"})."""

    form_field: str
    label: StrOrPromise
    initial: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What one submit or poll learned about the job."""

    upstream_id: str = ""
    progress: int | None = None
    done: bool = False
    files: list[ResultFile] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    failure: str = ""  # the relay's reason, in its own words, when the job failed there


class JobKind(ABC):
    slug: ClassVar[str]
    # The relay family (studio.upstream.families) whose switch shows or hides this kind.
    family: ClassVar[str]
    label: ClassVar[StrOrPromise]
    description: ClassVar[StrOrPromise] = ""
    form_class: ClassVar[type[forms.Form]]
    # Polling (upstream-api.md §1.3); synchronous kinds finish in submit and never poll.
    first_poll: ClassVar[timedelta] = timedelta(seconds=5)
    poll_every: ClassVar[timedelta] = timedelta(seconds=5)
    give_up_after: ClassVar[timedelta] = timedelta(minutes=10)
    # A template included on the job page below the generic asset list, for results that need
    # more than files (e.g. music clips with cover, lyrics and players). "" = none.
    result_template: ClassVar[str] = ""
    # The ways this kind can take an image result of another job, offered as "Use as input".
    image_uses: ClassVar[tuple[ImageUse, ...]] = ()
    # Fields that apply to some modes only. `mode_field` names the form's choice field that picks
    # the mode; `field_modes` maps a form field to the values of that field in which the kind
    # uses it (as its form's clean() and its submit() read it). On the form page
    # (static/js/job-form.js) such a field is hidden and disabled in the other modes, so it is
    # not sent; the view then fills it in with its default (`views.new`), as a page without
    # JavaScript, which shows every field, would send it untouched. Fields not listed always
    # show. tests/unit/test_field_modes.py checks the names against the form.
    mode_field: ClassVar[str] = "mode"
    field_modes: ClassVar[dict[str, tuple[str, ...]]] = {}

    @abstractmethod
    async def submit(self, client: RelayClient, params: dict[str, Any]) -> Outcome:
        """Send the job to the relay: the result itself (synchronous kinds) or its task id."""

    async def poll(self, client: RelayClient, upstream_id: str) -> Outcome:
        """Ask the relay how the task is doing (asynchronous kinds override this)."""
        raise TypeError(f"{self.slug} finishes in submit and is never polled")

    def actions(self, job: Any) -> list[dict[str, Any]]:
        """Follow-up actions offered on a job (e.g. Midjourney's buttons): each a dict with
        `custom_id`, `label`, `title` and the `url` to POST to. Most kinds offer none."""
        return []

    def make_form(
        self,
        user: Any,
        data: Any = None,
        files: Any = None,
        *,
        initial: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> forms.Form:
        """The form of the kind's page for `user`. Kinds whose form shows what the user's relay
        offers (Viggle's templates and credits) override this; `query` is the page's GET
        parameters (filters such as a template tag)."""
        return self.form_class(data, files, initial=initial)


def registry() -> dict[str, JobKind]:
    from media_jobs.kinds.cogvideox import CogVideoXKind
    from media_jobs.kinds.dalle import DalleKind
    from media_jobs.kinds.faceswap import FaceSwapKind
    from media_jobs.kinds.flux import FluxKind
    from media_jobs.kinds.gpt4_image import Gpt4ImageKind
    from media_jobs.kinds.ideogram import IdeogramKind
    from media_jobs.kinds.kling import KlingKind
    from media_jobs.kinds.luma import LumaKind
    from media_jobs.kinds.midjourney import MidjourneyKind
    from media_jobs.kinds.recraft import RecraftKind
    from media_jobs.kinds.runway import RunwayKind
    from media_jobs.kinds.stability import StabilityKind
    from media_jobs.kinds.stt import SttKind
    from media_jobs.kinds.suno import SunoKind
    from media_jobs.kinds.tts import TtsKind
    from media_jobs.kinds.viggle import ViggleKind

    kinds: list[JobKind] = [
        DalleKind(),
        Gpt4ImageKind(),
        TtsKind(),
        SttKind(),
        MidjourneyKind(),
        FaceSwapKind(),
        KlingKind(),
        RunwayKind(),
        LumaKind(),
        CogVideoXKind(),
        SunoKind(),
        FluxKind(),
        IdeogramKind(),
        StabilityKind(),
        RecraftKind(),
        ViggleKind(),
    ]
    return {kind.slug: kind for kind in kinds}


def get_kind(slug: str) -> JobKind | None:
    return registry().get(slug)


def offered_kinds() -> dict[str, JobKind]:
    """The kinds users may start now: those whose relay family staff have not switched off
    (studio.accounts.families; one small query)."""
    from studio.accounts.families import enabled_families

    enabled = enabled_families()
    return {slug: kind for slug, kind in registry().items() if kind.family in enabled}
