import re
from typing import Any

from django import forms
from django.apps import apps
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from studio.accounts import families
from studio.accounts.models import AuditEvent
from studio.accounts.quotas import MAX_LIST_ENTRIES
from studio.accounts.relays import normalize_url
from studio.accounts.services import allowed_base_urls
from studio.upstream import paths
from studio.upstream.families import OPTION_CHOICES, Family


class RelayCredentialForm(forms.Form):
    base_url = forms.ChoiceField(label=_("Relay"))
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        strip=True,
        max_length=512,
        # The key is write-only: never rendered back into the page.
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, has_key: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.has_key = has_key
        base_url = self.fields["base_url"]
        assert isinstance(base_url, forms.ChoiceField)
        base_url.choices = [(url, url) for url in allowed_base_urls()]
        if has_key:
            self.fields["api_key"].help_text = _("Leave empty to keep the saved key.")
            self.fields["api_key"].widget.attrs["placeholder"] = _("Paste a new key to replace it")
        else:
            self.fields["api_key"].widget.attrs["placeholder"] = "sk-…"

    def clean_api_key(self) -> str:
        key: str = self.cleaned_data["api_key"]
        if not key and not self.has_key:
            raise forms.ValidationError(_("Enter an API key."))
        if key and (any(ch.isspace() for ch in key) or not key.isprintable()):
            raise forms.ValidationError(_("An API key has no spaces or line breaks."))
        return key


# --- staff pages ---------------------------------------------------------------------------


def job_kind_choices() -> list[tuple[str, str]]:
    """The job kinds media_jobs offers. Imported when asked: accounts sits below media_jobs and
    must not import it when it loads (ARCHITECTURE.md §1)."""
    if not apps.is_installed("media_jobs"):
        return []
    from media_jobs.kinds import registry

    return [(slug, f"{kind.label} ({slug})") for slug, kind in registry().items()]


class QuotaForm(forms.Form):
    tokens_per_month = forms.IntegerField(
        label=_("Tokens per month"),
        required=False,
        min_value=0,
        max_value=10**12,
        help_text=_("Prompt and reply tokens of chat, per calendar month. Empty: no limit."),
    )
    jobs_per_day = forms.IntegerField(
        label=_("Jobs per day"),
        required=False,
        min_value=0,
        max_value=100_000,
        help_text=_(
            "Media jobs started per day, retries and follow-ups included. Empty: no limit."
        ),
    )
    jobs_at_once = forms.IntegerField(
        label=_("Jobs at once"),
        min_value=1,
        max_value=100,
        help_text=_("Unfinished jobs a user may have at the same time."),
    )
    allowed_models = forms.CharField(
        label=_("Chat models allowed"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text=_(
            "One per line or separated by commas; * matches anything (gpt-4o*). Empty: every model."
        ),
    )
    allowed_job_kinds = forms.MultipleChoiceField(
        label=_("Job kinds allowed"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every kind."),
    )
    allow_site_key = forms.BooleanField(
        label=_("May use the site key"),
        required=False,
        help_text=_("Without a key of their own, this user's requests use UPSTREAM_API_KEY."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kinds = self.fields["allowed_job_kinds"]
        assert isinstance(kinds, forms.MultipleChoiceField)
        kinds.choices = job_kind_choices()

    def clean_allowed_models(self) -> list[str]:
        raw: str = self.cleaned_data["allowed_models"]
        entries = [entry.strip() for entry in re.split(r"[,\n]", raw) if entry.strip()]
        if len(entries) > MAX_LIST_ENTRIES:
            raise forms.ValidationError(
                _("At most %(count)d models.") % {"count": MAX_LIST_ENTRIES}
            )
        for entry in entries:
            if len(entry) > 200 or any(ch.isspace() for ch in entry):
                raise forms.ValidationError(
                    _("“%(entry)s” is not a model name (no spaces, at most 200 characters).")
                    % {"entry": entry[:60]}
                )
        return list(dict.fromkeys(entries))


class InviteForm(forms.Form):
    note = forms.CharField(
        label=_("For"),
        required=False,
        max_length=200,
        help_text=_("Who the link is for, as a reminder (only staff see it)."),
    )
    allow_site_key = forms.BooleanField(label=_("May use the site key"), required=False)


class InviteAcceptForm(UserCreationForm):
    """Username and password twice, checked by the site's password validators."""


class RelayForm(forms.Form):
    url = forms.CharField(
        label=_("Relay base URL"),
        max_length=300,
        widget=forms.TextInput(
            attrs={"placeholder": "https://relay.example.com", "spellcheck": "false"}
        ),
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=200)

    def clean_url(self) -> str:
        return normalize_url(self.cleaned_data["url"])


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"), required=False)
    who = forms.CharField(label=_("Who"), required=False, max_length=150)
    q = forms.CharField(label=_("Target contains"), required=False, max_length=200)
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        action = self.fields["action"]
        assert isinstance(action, forms.ChoiceField)
        action.choices = [("", _("All actions")), *AuditEvent.Action.choices]


class FamilyForm(forms.Form):
    """One relay family's switch, path overrides (one field per path name, empty = default)
    and options, as staff edit them on /staff/families/."""

    enabled = forms.BooleanField(label=_("Shown to users"), required=False)

    def __init__(self, *args: Any, family: Family, **kwargs: Any) -> None:
        kwargs["prefix"] = family.slug
        super().__init__(*args, **kwargs)
        self.family = family
        for name in family.path_names:
            self.fields[f"path__{name}"] = forms.CharField(
                label=name,
                required=False,
                max_length=families.MAX_PATH_CHARS,
                widget=forms.TextInput(
                    attrs={"placeholder": paths.DEFAULT_PATHS[name], "spellcheck": "false"}
                ),
            )
        for option in family.options:
            self.fields[f"option__{option}"] = forms.ChoiceField(
                label=OPTION_LABELS.get(option, option),
                choices=[(value, value) for value in OPTION_CHOICES[option]],
            )

    def path_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("path__")]

    def option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("option__")]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for key in list(cleaned):
            if key.startswith("path__"):
                try:
                    cleaned[key] = families.clean_path_override(
                        key.removeprefix("path__"), cleaned[key] or ""
                    )
                except forms.ValidationError as error:
                    self.add_error(key, error)
        return cleaned

    @property
    def overrides(self) -> dict[str, str]:
        return {
            key.removeprefix("path__"): value
            for key, value in self.cleaned_data.items()
            if key.startswith("path__") and value
        }

    @property
    def options(self) -> dict[str, str]:
        return {
            key.removeprefix("option__"): value
            for key, value in self.cleaned_data.items()
            if key.startswith("option__")
        }


OPTION_LABELS = {
    "suno_format": _("Request format (a: /suno/v1/v3.x/music, b: /suno/submit and /suno/fetch)"),
    "ideogram_format": _(
        "Request format (official: /ideogram/generate and others, answered at once; web: the "
        "reverse group, polled with /ideogram/task-request)"
    ),
}
